"""`playbookctl plan`: which playbooks a release publishes, refuses and unregisters."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from playbookctl.config import Config


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "plan",
        help="show which playbooks need publishing, are refused, or were deleted",
        description="Compare playbooks with their registrations under registry/workflows/. "
        "With --base, only playbooks changed between BASE and HEAD (base...head, or base..head "
        "when the two share no history) are considered; deletions are always reported. Exit 1 "
        "when a playbook is refused (content changed without a version bump).",
    )
    parser.add_argument("--base", default=None, metavar="REV", help="compare changes since REV")
    parser.add_argument(
        "--head",
        default=None,
        metavar="REV",
        help="the revision to plan for (default: the working tree)",
    )
    parser.add_argument(
        "--format",
        choices=("human", "json", "matrix"),
        default="human",
        help='matrix: a GitHub Actions matrix {"include": [{name, version}, ...]}; inside '
        "Actions, matrix/has-work/has-changes are also appended to $GITHUB_OUTPUT",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415
    from playbookctl.plan import format_human, make_plan, write_github_output  # noqa: PLC0415

    repo = GitRepo(config.root)
    plan = make_plan(config, repo, base=args.base, head=args.head)
    if args.format == "json":
        sys.stdout.write(json.dumps(plan.to_json(), indent=2) + "\n")
    elif args.format == "matrix":
        sys.stdout.write(json.dumps(plan.matrix(), separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(format_human(plan) + "\n")
    if os.environ.get("GITHUB_OUTPUT"):
        write_github_output(plan, Path(os.environ["GITHUB_OUTPUT"]))
    for entry in plan.refused:
        print(f"playbookctl: refused: {entry.name}: {entry.reason}", file=sys.stderr)
    return 1 if plan.refused else 0
