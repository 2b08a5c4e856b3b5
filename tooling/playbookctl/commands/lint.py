"""`playbookctl lint [PATH ...]`: the gate a pull request must pass.

Exit 0 when there is no error (warnings allowed), 1 when there are errors, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from playbookctl.commands._common import add_format_flag, rules_base
from playbookctl.config import Config, is_repository_root
from playbookctl.errors import UsageError
from playbookctl.findings import Finding, has_errors
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
    parser.add_argument(
        "--select",
        default=None,
        metavar="RULES",
        help="report only these rules (comma-separated ids, families `shellcheck.*` or "
        "`shellcheck`, codes `shellcheck.SC2086`); the exit status follows what is reported",
    )
    parser.add_argument(
        "--ignore",
        default=None,
        metavar="RULES",
        help="drop these rules' findings (as --select; a rule the cluster enforces cannot be "
        "ignored)",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="fix what is mechanical, in place (quote a scalar YAML reads as another type, as "
        "written; raise the patch version where playbook.version-bump fires), then report what "
        "is left",
    )
    parser.add_argument(
        "--statistics",
        action="store_true",
        help="print how many findings each rule has, instead of the findings",
    )
    parser.set_defaults(func=run)


def _selectors(flag: str, raw: str | None) -> list[str]:
    """The ids of --select/--ignore, each checked against the catalogue (a family's bare name
    stands for its family)."""
    from playbookctl.lint import catalogue  # noqa: PLC0415

    out: list[str] = []
    for part in (raw or "").split(","):
        item = part.strip()
        if not item:
            continue
        if "." not in item and any(r.startswith(f"{item}.") for r in catalogue.RULES):
            item = f"{item}.*"
        family = item.endswith(".*") and any(r.startswith(item[:-1]) for r in catalogue.RULES)
        if not family and catalogue.lookup(item) is None:
            near = catalogue.suggest(item)
            hint = f"; did you mean {' or '.join(near)}?" if near else ""
            raise UsageError(
                f"{flag}: unknown rule {item!r}{hint} (`playbookctl rules` lists them)"
            )
        out.append(item)
    return out


def _matches(rule_id: str, selectors: list[str]) -> bool:
    return any(rule_id == s or (s.endswith(".*") and rule_id.startswith(s[:-1])) for s in selectors)


def statistics(findings: list[Finding]) -> str:
    """ruff's --statistics: count, rule, severity, summary; most frequent first."""
    from playbookctl.lint.catalogue import lookup  # noqa: PLC0415

    counts = Counter(f.rule for f in findings)
    severity = {f.rule: f.severity for f in findings}
    width = max((len(r) for r in counts), default=0)
    lines = []
    for rule_id, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        rule = lookup(rule_id)
        summary = rule.summary if rule is not None else ""
        lines.append(f"{n:>5}  {rule_id:<{width}}  {severity[rule_id]!s:<7}  {summary}".rstrip())
    return "".join(line + "\n" for line in lines)


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.lint import catalogue, classify, lint_paths  # noqa: PLC0415 - fast start

    select = _selectors("--select", args.select)
    ignore = _selectors("--ignore", args.ignore)
    for item in ignore:
        rule = catalogue.RULES.get(item) or catalogue.lookup(item)
        if rule is not None and not rule.adjustable:
            raise UsageError(
                f"--ignore: {item!r} is enforced by the cluster (it refuses such objects); fix "
                "the cause instead"
            )
    targets = classify(list(args.paths), config)
    playbooks = len(targets.playbooks)
    files = len(targets.registry_files) + len(targets.standalone)
    # Nothing found where pointed: a CI job pointed at the wrong directory must not pass in
    # silence (eslint: "No files matching", exit 2). Only a repository that has no playbooks
    # yet (its root or its playbooks/ linted) passes, saying so. stderr keeps the json and
    # github outputs intact.
    nothing = 0
    if not playbooks and not files:
        nothing = _nothing_to_lint(list(args.paths), config)
    findings = lint_paths(
        list(args.paths), config, run_external=not args.no_external, use_cache=not args.no_cache
    )
    if args.fix:
        from playbookctl.lint.fix import apply_fixes  # noqa: PLC0415

        fixed = apply_fixes(
            [
                f
                for f in findings
                if (not select or _matches(f.rule, select))
                and not (ignore and _matches(f.rule, ignore))
            ],
            config,
        )
        for file, count in fixed.quoted.items():
            print(f"lint --fix: {file}: quoted {count} value(s) as written", file=sys.stderr)
        for file, count in fixed.rewritten.items():
            print(
                f"lint --fix: {file}: wrote {count} value(s) as the cluster reads them",
                file=sys.stderr,
            )
        for line in fixed.bumped:
            print(f"lint --fix: bumped {line}", file=sys.stderr)
        if fixed.count:
            findings = lint_paths(
                list(args.paths),
                config,
                run_external=not args.no_external,
                use_cache=not args.no_cache,
            )
    if select:
        findings = [f for f in findings if _matches(f.rule, select)]
    if ignore:
        # A family ignored never hides a rule of it the cluster enforces (tekton.*).
        findings = [
            f
            for f in findings
            if not _matches(f.rule, ignore)
            or not getattr(catalogue.lookup(f.rule), "adjustable", True)
        ]
    if args.statistics:
        sys.stdout.write(statistics(findings))
        return 1 if has_errors(findings) or nothing else 0
    fmt = args.format or default_format()
    REPORTERS[fmt](findings, sys.stdout, rules_base(config) if fmt in ("github", "sarif") else None)
    if fmt == "human" and not findings and (playbooks or files):
        print(
            f"All checks passed ({playbooks} playbook(s), {files} other file(s)).", file=sys.stderr
        )
    return 1 if has_errors(findings) or nothing else 0


def _nothing_to_lint(paths: list[Path], config: Config) -> int:
    """Say where lint looked and found nothing; the exit status that deserves: 0 for a
    repository with no playbooks yet (its root or its playbooks/ linted), else 1."""
    root = config.root.resolve()
    whole = all(p.resolve() in (root, config.playbooks_dir.resolve()) for p in paths)
    if whole and is_repository_root(root):
        print(
            f"playbookctl lint: no playbooks yet in {config.playbooks_dir} (and nothing in "
            "registry/); nothing to lint",
            file=sys.stderr,
        )
        return 0
    if paths:
        where = ", ".join(str(p) for p in paths)
        print(
            f"playbookctl lint: nothing to lint in {where} (no playbook, no registry/ file, no "
            "Tekton file)",
            file=sys.stderr,
        )
    else:
        print(
            f"playbookctl lint: nothing to lint under {root} (no playbook, no registry/ file, "
            "and no pyproject.toml with [tool.playbookctl]); pass paths, or -C the repository "
            "root",
            file=sys.stderr,
        )
    return 1
