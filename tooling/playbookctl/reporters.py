"""Reporters print findings: human lines, JSON, or GitHub workflow-command annotations."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from playbookctl.findings import Finding, Severity

FORMATS = ("human", "json", "github")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def report_human(findings: Sequence[Finding], out: TextIO) -> None:
    for f in findings:
        # Line 0: a finding about a whole object that has no lines (a bundle in a registry).
        where = f"{f.file}:{f.line}:{f.column}" if f.line else f.file
        out.write(f"{where}: {f.severity} [{f.rule}] {f.message}\n")
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    warnings = sum(1 for f in findings if f.severity is Severity.WARNING)
    infos = len(findings) - errors - warnings
    if findings:
        tail = f", {infos} info" if infos else ""
        out.write(f"{errors} error(s), {warnings} warning(s){tail}\n")


def report_json(findings: Sequence[Finding], out: TextIO) -> None:
    json.dump([f.as_dict() for f in findings], out, indent=2)
    out.write("\n")


def rule_link(rule_id: str, env: Mapping[str, str] | None = None) -> str | None:
    """Where a rule is explained: the tool's own page for a hadolint/shellcheck code, else its
    entry in RULES.md, on GitHub at the commit being checked when run inside Actions."""
    from playbookctl.lint.catalogue import RULES_FILE, lookup  # noqa: PLC0415 - lint only

    rule = lookup(rule_id)
    if rule is None:
        return None  # a bundle.*/verify.* finding of another command
    url = rule.url_for(rule_id)
    if url:
        return url
    env = os.environ if env is None else env
    repo = env.get("GITHUB_REPOSITORY")
    if not repo:
        return f"{RULES_FILE}#{rule.anchor}"
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    ref = env.get("GITHUB_SHA") or "HEAD"
    return f"{server}/{repo}/blob/{ref}/{RULES_FILE}#{rule.anchor}"


def report_github(findings: Sequence[Finding], out: TextIO) -> None:
    # An annotation carries no link of its own: the rule's explanation is named in the message.
    links: dict[str, str | None] = {}
    for f in findings:
        level = {Severity.ERROR: "error", Severity.WARNING: "warning"}.get(f.severity, "notice")
        if f.rule not in links:
            links[f.rule] = rule_link(f.rule)
        link = links[f.rule]
        message = f"{f.message} [{f.rule}: {link}]" if link else f.message
        out.write(
            f"::{level} file={_escape_property(f.file)},line={f.line},col={f.column},"
            f"title={_escape_property(f.rule)}::{_escape_data(message)}\n"
        )


REPORTERS: dict[str, Callable[[Sequence[Finding], TextIO], None]] = {
    "human": report_human,
    "json": report_json,
    "github": report_github,
}


def default_format(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    return "github" if env.get("GITHUB_ACTIONS") == "true" else "human"
