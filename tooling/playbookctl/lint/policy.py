"""What the user tuned: `[tool.playbookctl.lint]` and `# playbookctl: disable=RULE reason` comments.

Every finding of a lint run (and of publish's gate) passes through `apply`:
1. its rule must be in the catalogue: a finding under an id the catalogue lacks is a bug in
   playbookctl, an internal error (exit 3), never printed as if it were documented;
2. `disable = [...]` drops the rule's findings, `severity = {RULE = "warning"}` changes theirs
   (an id may be a family glob, `shellcheck.*`, or one external code, `shellcheck.SC2086`);
3. a suppression comment on the finding's line, or alone on the line above it, drops it there.
Rules the cluster enforces (not `adjustable` in the catalogue) cannot be disabled, downgraded or
suppressed: configuration naming one is refused, a comment naming one is reported. A comment
that silences nothing, names an unknown rule or gives no reason is a `lint.suppression`
warning, so stale suppressions do not pile up.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from playbookctl.errors import ConfigError
from playbookctl.findings import Finding, Severity
from playbookctl.lint.catalogue import RULES, Rule, lookup

SUPPRESSION_RULE = "lint.suppression"
MARKER = b"playbookctl:"
MAX_SCAN_BYTES = 16 * 1024 * 1024
_DIRECTIVE = re.compile(r"#\s*playbookctl:\s*disable=([^\s#]*)(?:[ \t]+([^\n]*?))?[ \t]*$")
_ID = re.compile(r"[a-z][a-z0-9-]*\.(?:\*|[A-Za-z0-9][A-Za-z0-9-]*)\Z")


class UncataloguedRuleError(RuntimeError):
    """A check emitted a rule id the catalogue lacks (a bug: exit 3 with a log)."""


@dataclass(frozen=True)
class LintPolicy:
    disable: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls,
        disable: Iterable[str],
        severity: Mapping[str, str],
        origins: Mapping[str, str] | None = None,
    ) -> LintPolicy:
        """Checked against the catalogue: an unknown rule, a bad severity or a rule the cluster
        enforces is a configuration error naming it and where it was set (`origins`: "disable"
        and "severity" -> the pyproject table or the environment variable)."""
        origins = origins or {}
        by_origin: dict[str, list[str]] = {}

        def problem(which: str, text: str) -> None:
            where = origins.get(which, "[tool.playbookctl.lint]")
            if where.startswith("PLAYBOOKCTL_"):  # the variable names the setting already
                text = text.removeprefix(f"{which}: ")
            by_origin.setdefault(where, []).append(text)

        for rule_id in disable:
            for text in _setting_problem("disable", rule_id):
                problem("disable", text)
        levels: dict[str, Severity] = {}
        for rule_id, level in severity.items():
            for text in _setting_problem("severity", rule_id):
                problem("severity", text)
            if level not in ("error", "warning"):
                problem(
                    "severity",
                    f"severity of {rule_id!r} must be 'error' or 'warning', not {level!r}",
                )
            else:
                levels[rule_id] = Severity(level)
        if by_origin:
            raise ConfigError(
                "; ".join(f"{where}: {'; '.join(texts)}" for where, texts in by_origin.items())
            )
        return cls(frozenset(disable), levels)

    def _match(self, table: Iterable[str], rule_id: str) -> str | None:
        family = rule_id.split(".", 1)[0] + ".*"
        for key in (rule_id, family):
            if key in table:
                return key
        return None

    def apply(self, findings: Iterable[Finding], sources: Mapping[str, Path]) -> list[Finding]:
        """findings with the policy applied, plus the suppression comments' own findings.

        sources: every file the run covered, by the name its findings carry."""
        kept: list[tuple[Finding, Rule]] = []
        for f in findings:
            rule = lookup(f.rule)
            if rule is None:
                raise UncataloguedRuleError(
                    f"finding {f.rule!r} ({f.file}:{f.line}) has no entry in lint/catalogue.py"
                )
            if rule.adjustable and self._match(self.disable, f.rule):
                continue
            key = self._match(self.severity, f.rule) if rule.adjustable else None
            kept.append((f if key is None else f._replace(severity=self.severity[key]), rule))
        directives = _directives(sources, {f.file for f, _ in kept})
        out: list[Finding] = []
        for f, rule in kept:
            hit = None
            for d in directives.get(f.file, ()):
                if f.line in (d.line, d.line + 1) and d.covers(f.rule):
                    hit = d
                    if rule.adjustable:
                        d.used.add(d.covering(f.rule))
            if hit is None or not rule.adjustable:
                out.append(f)
        for file_directives in directives.values():
            for d in file_directives:
                out.extend(d.findings())
        if self._match(self.disable, SUPPRESSION_RULE):
            out = [f for f in out if f.rule != SUPPRESSION_RULE]
        elif SUPPRESSION_RULE in self.severity:
            level = self.severity[SUPPRESSION_RULE]
            out = [f._replace(severity=level) if f.rule == SUPPRESSION_RULE else f for f in out]
        return out


def _setting_problem(where: str, rule_id: str) -> list[str]:
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        return [f"{where}: {rule_id!r} is not a rule id (family.name, e.g. playbook.non-root)"]
    rule = RULES.get(rule_id) or lookup(rule_id)
    if rule is None or (rule_id.endswith(".*") and not rule.family):
        return [f"{where}: unknown rule {rule_id!r} (see `playbookctl rules`)"]
    if not rule.adjustable:
        return [
            f"{where}: {rule_id!r} is enforced by the cluster (it refuses such objects); fix the "
            "cause instead"
        ]
    return []


@dataclass
class _Directive:
    file: str
    line: int
    column: int
    rules: list[str]
    reason: str
    used: set[str] = field(default_factory=set)

    def covering(self, rule_id: str) -> str:
        family = rule_id.split(".", 1)[0] + ".*"
        return rule_id if rule_id in self.rules else family

    def covers(self, rule_id: str) -> bool:
        return rule_id in self.rules or rule_id.split(".", 1)[0] + ".*" in self.rules

    def findings(self) -> list[Finding]:
        def warn(message: str) -> Finding:
            return Finding(
                SUPPRESSION_RULE, Severity.WARNING, self.file, self.line, self.column, message
            )

        out: list[Finding] = []
        if not self.rules:
            return [warn("a suppression names no rule: # playbookctl: disable=RULE reason")]
        for rule_id in self.rules:
            rule = lookup(rule_id) if _ID.match(rule_id) else None
            if rule is None or (rule_id.endswith(".*") and not rule.family):
                out.append(
                    warn(f"unknown rule {rule_id!r} in a suppression (see `playbookctl rules`)")
                )
            elif not rule.adjustable:
                out.append(
                    warn(
                        f"{rule_id} cannot be suppressed: the cluster refuses such objects "
                        "whatever lint says; fix the cause"
                    )
                )
            elif rule_id not in self.used:
                out.append(
                    warn(
                        f"unused suppression of {rule_id}: nothing on this line or the next "
                        "reports it; remove the comment"
                    )
                )
        if not self.reason and any(r in self.used for r in self.rules):
            out.append(warn("a suppression without a reason: say why after the rule id"))
        return out


def _directives(
    sources: Mapping[str, Path], _with_findings: set[str]
) -> dict[str, list[_Directive]]:
    out: dict[str, list[_Directive]] = {}
    for shown, path in sources.items():
        try:
            st = path.stat()
            # A FIFO or device would block the read; a huge file has its own finding.
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SCAN_BYTES:
                continue
            raw = path.read_bytes()
        except OSError:
            continue  # unreadable files have their own finding
        if MARKER not in raw:
            continue  # nearly every file: no decoding, no line split
        text = raw.decode("utf-8", "replace")
        for number, line in enumerate(text.splitlines(), 1):
            if "playbookctl:" not in line:
                continue
            m = _DIRECTIVE.search(line)
            if m is None:
                continue
            rules = [r for r in m.group(1).split(",") if r]
            out.setdefault(shown, []).append(
                _Directive(shown, number, m.start() + 1, rules, (m.group(2) or "").strip())
            )
    return out
