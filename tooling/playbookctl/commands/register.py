"""`playbookctl register RESULTS...`: write registry/ from publish results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from playbookctl.config import Config


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "register",
        help="write registry/ from publish results",
        description="Write registry/workflows/<name>.yaml for each successful publish result "
        "(files from `publish --format json`, or directories of them from parallel jobs), "
        "remove the registrations of deleted playbooks and regenerate "
        "registry/kustomization.yaml. Unchanged playbooks give byte-identical files.",
    )
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULTS")
    parser.add_argument(
        "--commit",
        action="store_true",
        help="commit the registry/ changes (configured author); nothing changed, no commit",
    )
    parser.add_argument("--dry-run", action="store_true", help="report, write nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.register import (  # noqa: PLC0415
        GENERATED_PATHS,
        RegisterAction,
        register,
    )
    from playbookctl.release import commit_message  # noqa: PLC0415
    from playbookctl.results import read_results  # noqa: PLC0415

    results = read_results(args.results)
    outcome = register(config, results, dry_run=args.dry_run)
    for change in outcome.changes:
        detail = f" ({change.detail})" if change.detail else ""
        print(f"{change.action.value:<10} {change.name} {change.version} {change.bundle}{detail}")
    for path in outcome.written:
        print(f"{'would write' if args.dry_run else 'wrote'} {path}")
    for path in outcome.removed:
        print(f"{'would remove' if args.dry_run else 'removed'} {path}")
    if args.commit and not args.dry_run:
        from playbookctl.gitrepo import GitRepo  # noqa: PLC0415

        repo = GitRepo(config.root)
        sha = repo.commit(
            commit_message(outcome.changes),
            list(GENERATED_PATHS),
            config.git_author_name,
            config.git_author_email,
        )
        print(f"committed {sha}" if sha else "nothing to commit")
    skipped = [c for c in outcome.changes if c.action is RegisterAction.SKIPPED]
    for c in skipped:
        print(f"playbookctl: not registered: {c.name}: {c.detail}", file=sys.stderr)
    return 1 if skipped else 0
