"""`playbookctl rules [ID]`: the lint rule catalogue, one rule explained, or the generated docs.

Exit 0; an unknown id is a usage error (exit 2) that suggests the nearest ids.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from playbookctl.config import Config
from playbookctl.errors import UsageError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "rules",
        help="list the lint rules, or explain one",
        description="Without ID: every lint rule with its default severity and summary. With ID "
        "(e.g. playbook.script-injection, shellcheck.SC2086): its explanation with a bad and a "
        "good example.",
    )
    parser.add_argument("rule", nargs="?", metavar="ID")
    out = parser.add_mutually_exclusive_group()
    out.add_argument(
        "--markdown", action="store_true", help="print RULES.md (every rule, explained)"
    )
    out.add_argument("--markdown-table", action="store_true", help="print the README's rule table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.lint import catalogue  # noqa: PLC0415 - keeps start fast

    if args.markdown:
        sys.stdout.write(catalogue.markdown_document())
        return 0
    if args.markdown_table:
        sys.stdout.write(catalogue.markdown_table())
        return 0
    if args.rule is None:
        width = max(len(r) for r in catalogue.RULES)
        for entry in catalogue.RULES.values():
            sys.stdout.write(f"{entry.id:<{width}}  {entry.severity!s:<7}  {entry.summary}\n")
        return 0
    rule = catalogue.lookup(args.rule)
    if rule is None:
        near = catalogue.suggest(args.rule)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise UsageError(
            f"rules: unknown rule {args.rule!r}{hint} (`playbookctl rules` lists them)"
        )
    sys.stdout.write(catalogue.explain(rule, args.rule))
    return 0
