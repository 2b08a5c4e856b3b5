"""`playbookctl new NAME --action-type TYPE`: scaffold a playbook that releases as it stands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from playbookctl.config import Config
from playbookctl.errors import GitError
from playbookctl.scaffold import display_path, scaffold


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "new",
        help="scaffold a new playbook directory (and its ActionType if missing)",
        description=(
            "Create playbooks/NAME/ with workflow.yaml, Containerfile, remediate.sh, rbac.yaml "
            "and .dockerignore. If registry/action-types/ defines no ActionType TYPE, create "
            "one. The result passes `playbookctl lint` as it stands; fill in the TODOs."
        ),
    )
    parser.add_argument("name", metavar="NAME", help="playbook name (a DNS-1123 label)")
    parser.add_argument(
        "--action-type",
        required=True,
        metavar="TYPE",
        help="the ActionType the workflow implements (PascalCase, e.g. RestartDeployment)",
    )
    parser.add_argument(
        "--description",
        default=None,
        metavar="TEXT",
        help="what the playbook does (description.what); default: a TODO",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    result = scaffold(config, args.name, args.action_type, args.description)
    shown = display_path(result.playbook_dir, config)
    print(f"created {shown}/")
    for rel in result.files:
        print(f"  {shown}/{rel}")
    at = display_path(result.action_type_file, config)
    _track(
        config,
        [result.playbook_dir, *([result.action_type_file] if result.action_type_created else [])],
    )
    if result.action_type_created:
        print(f"created ActionType {args.action_type} in {at}")
    else:
        print(f"ActionType {args.action_type} already exists in {at}")
    print(
        f"next: fill in the TODOs in {shown}/workflow.yaml and remediate.sh, then run "
        f"`playbookctl lint {shown}` and open a pull request"
    )
    return 0


def _track(config: Config, paths: list[Path]) -> None:
    """In a git checkout, `git add` the new files: images, dry runs and `try` are made from
    git's objects, so an untracked file is in none of them (lint's playbook.untracked). Staged,
    not committed; outside git nothing happens."""
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415 - git only when asked

    try:
        repo = GitRepo(config.root)
    except GitError:
        return  # not a git checkout: the directory is all there is
    top = repo.root.resolve()
    try:
        repo.stage([p.resolve().relative_to(top).as_posix() for p in paths])
    except GitError as exc:
        print(f"new: warning: {exc}; run git add on the new files", file=sys.stderr)
        return
    print("staged for git (git add): commit them with the rest of your change")
