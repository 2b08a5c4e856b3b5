"""`playbookctl bump NAME [patch|minor|major]`: raise spec.version, keeping the file's layout."""

from __future__ import annotations

import argparse
from typing import Any

from playbookctl.bump import PARTS, bump
from playbookctl.config import Config


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bump",
        help="raise a playbook's spec.version (patch, minor or major) in place",
        description="Edit spec.version in playbooks/NAME/workflow.yaml: patch 1.2.3 -> 1.2.4, "
        "minor -> 1.3.0, major -> 2.0.0. Only the version's characters change; comments, "
        "quoting and layout stay byte-for-byte.",
    )
    parser.add_argument("name", metavar="NAME", help="playbook directory under playbooks/")
    parser.add_argument(
        "part", nargs="?", default="patch", choices=PARTS, help="which part (default: patch)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    done = bump(config, args.name, args.part)
    past = ""
    if done.past is not None:
        past = f" (past {done.past}, the version registry/workflows/{args.name}.yaml registers)"
    print(f"{done.file}: spec.version {done.old} -> {done.new}{past}")
    return 0
