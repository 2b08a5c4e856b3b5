"""`playbookctl lint [PATH ...]`: the gate a pull request must pass.

Exit 0 when there is no error (warnings allowed), 1 when there are errors, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from playbookctl.commands._common import add_format_flag
from playbookctl.config import Config
from playbookctl.findings import has_errors
from playbookctl.reporters import REPORTERS, default_format


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "lint",
        help="validate playbooks, registry/ files and Tekton Pipeline/Task files",
        description="Lint playbook directories, registry/ files and standalone tekton.dev "
        "Pipeline or Task files; with no PATH, the whole repository.",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    add_format_flag(parser)
    parser.add_argument(
        "--no-external",
        action="store_true",
        help="skip hadolint and shellcheck",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the cache of hadolint and shellcheck verdicts "
        "(also PLAYBOOKCTL_NO_CACHE=1; location: PLAYBOOKCTL_CACHE_DIR, default "
        "$XDG_CACHE_HOME/playbookctl)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.lint import classify, lint_paths  # noqa: PLC0415 - keeps start fast

    targets = classify(list(args.paths), config)
    playbooks = len(targets.playbooks)
    files = len(targets.registry_files) + len(targets.standalone)
    if not playbooks and not files:
        # Run outside a repository (or in an empty one), a silent pass would hide that nothing
        # was checked; stderr keeps the json and github outputs intact.
        print(
            f"playbookctl lint: nothing to lint under {config.root} (no playbooks/, no "
            "registry/); pass paths, or -C the repository root",
            file=sys.stderr,
        )
    findings = lint_paths(
        list(args.paths), config, run_external=not args.no_external, use_cache=not args.no_cache
    )
    fmt = args.format or default_format()
    REPORTERS[fmt](findings, sys.stdout)
    if fmt == "human" and not findings and (playbooks or files):
        print(
            f"All checks passed ({playbooks} playbook(s), {files} other file(s)).", file=sys.stderr
        )
    return 1 if has_errors(findings) else 0
