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
    from playbookctl.lint import lint_paths  # noqa: PLC0415 - keeps other commands' start fast

    findings = lint_paths(
        list(args.paths), config, run_external=not args.no_external, use_cache=not args.no_cache
    )
    REPORTERS[args.format or default_format()](findings, sys.stdout)
    return 1 if has_errors(findings) else 0
