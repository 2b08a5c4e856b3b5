"""Reporters print findings: human lines, JSON, GitHub workflow-command annotations, or SARIF
2.1.0 (GitHub code scanning's upload format)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from playbookctl import __version__
from playbookctl.findings import Finding, Severity

FORMATS = ("human", "json", "github", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


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


# A remote git URL on a forge that serves files as <web>/blob/<commit>/<path>.
_FORGE_URL = re.compile(
    r"^(?:https?://(?:[^@/]+@)?|ssh://(?:[^@/]+@)?|git@)(?P<host>[^/:]+)(?::\d+)?[:/]"
    r"(?P<path>[^\s]+?)(?:\.git)?/?$"
)


def rules_url(
    env: Mapping[str, str] | None = None,
    *,
    remote_url: str | None = None,
    commit: str | None = None,
    root: Path | None = None,
) -> str:
    """The absolute URL of RULES.md: on GitHub at the commit being checked inside Actions;
    else on the forge the `origin` remote names, at `commit`; else the file on this machine
    (file://). Never a relative path: an annotation or a SARIF rule is read far from here."""
    from playbookctl.lint.catalogue import RULES_FILE  # noqa: PLC0415 - lint only

    env = os.environ if env is None else env
    repo = env.get("GITHUB_REPOSITORY")
    if repo:
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        ref = env.get("GITHUB_SHA") or "HEAD"
        return f"{server}/{repo}/blob/{ref}/{RULES_FILE}"
    match = _FORGE_URL.match(remote_url or "")
    if match:
        return f"https://{match['host']}/{match['path']}/blob/{commit or 'HEAD'}/{RULES_FILE}"
    return ((root or Path.cwd()).resolve() / RULES_FILE).as_uri()


def rule_link(
    rule_id: str, env: Mapping[str, str] | None = None, *, base: str | None = None
) -> str | None:
    """Where a rule is explained: the tool's own page for a hadolint/shellcheck code, else its
    entry in RULES.md at `base` (rules_url's answer; from the environment when None)."""
    from playbookctl.lint.catalogue import lookup  # noqa: PLC0415 - lint only

    rule = lookup(rule_id)
    if rule is None:
        return None  # not catalogued (policy refuses such a finding in lint)
    url = rule.url_for(rule_id)
    if url:
        return url
    return f"{base or rules_url(env)}#{rule.anchor}"


def report_github(findings: Sequence[Finding], out: TextIO, base: str | None = None) -> None:
    # An annotation carries no link of its own: the rule's explanation is named in the message.
    links: dict[str, str | None] = {}
    for f in findings:
        level = {Severity.ERROR: "error", Severity.WARNING: "warning"}.get(f.severity, "notice")
        if f.rule not in links:
            links[f.rule] = rule_link(f.rule, base=base)
        link = links[f.rule]
        message = f"{f.message} [{f.rule}: {link}]" if link else f.message
        out.write(
            f"::{level} file={_escape_property(f.file)},line={f.line},col={f.column},"
            f"title={_escape_property(f.rule)}::{_escape_data(message)}\n"
        )


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def sarif_log(findings: Sequence[Finding], base: str | None = None) -> dict[str, Any]:
    """One SARIF 2.1.0 run: every rule reported, described from the catalogue with its help
    link; results located by a repository-relative URI (GitHub code scanning's
    `%SRCROOT%`), line and column (1-based; a finding without a line has a file-only
    location)."""
    from playbookctl.lint.catalogue import lookup  # noqa: PLC0415 - lint only

    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for f in findings:
        if f.rule not in index:
            index[f.rule] = len(rules)
            rule = lookup(f.rule)
            descriptor: dict[str, Any] = {"id": f.rule}
            if rule is not None:
                descriptor["shortDescription"] = {"text": rule.summary}
                descriptor["fullDescription"] = {"text": rule.explanation}
                descriptor["defaultConfiguration"] = {"level": _SARIF_LEVEL[rule.severity]}
            link = rule_link(f.rule, base=base)
            if link:
                descriptor["helpUri"] = link
            rules.append(descriptor)
        region: dict[str, Any] = {}
        if f.line > 0:
            region["startLine"] = f.line
            if f.column > 0:
                region["startColumn"] = f.column
        physical: dict[str, Any] = {
            "artifactLocation": {"uri": f.file.replace("\\", "/"), "uriBaseId": "%SRCROOT%"}
        }
        if region:
            physical["region"] = region
        results.append(
            {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "level": _SARIF_LEVEL[f.severity],
                "message": {"text": f.message},
                "locations": [{"physicalLocation": physical}],
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "playbookctl",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def report_sarif(findings: Sequence[Finding], out: TextIO, base: str | None = None) -> None:
    json.dump(sarif_log(findings, base), out, indent=2)
    out.write("\n")


def _plain(
    report: Callable[[Sequence[Finding], TextIO], None],
) -> Callable[[Sequence[Finding], TextIO, str | None], None]:
    return lambda findings, out, _base: report(findings, out)


# Every reporter takes the findings, the stream and the absolute URL of RULES.md (rules_url).
REPORTERS: dict[str, Callable[[Sequence[Finding], TextIO, str | None], None]] = {
    "human": _plain(report_human),
    "json": _plain(report_json),
    "github": report_github,
    "sarif": report_sarif,
}


def default_format(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    return "github" if env.get("GITHUB_ACTIONS") == "true" else "human"
