"""Findings are values: produced by rules, collected, then printed by a reporter."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"  # what lint could not check, said so (never fails a run)

    def __str__(self) -> str:
        return self.value


class Finding(NamedTuple):
    rule: str
    severity: Severity
    file: str
    line: int
    column: int
    message: str

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.rule, self.message)

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def sorted_unique(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(set(findings), key=Finding.sort_key)


# Findings that say a file, or part of it, could not be read as written (load.yaml-1.1 is a
# reading that differs, not a failure): what other rules say about the same playbook is computed
# from what did load, so these may be its cause and are listed first, as a compiler puts the
# syntax error before anything else.
_NOT_LOADED = frozenset({"playbook.missing-file", "playbook.empty-file"})


def is_load_problem(finding: Finding) -> bool:
    rule = finding.rule
    return (rule.startswith("load.") and rule != "load.yaml-1.1") or rule in _NOT_LOADED


def in_report_order(findings: Iterable[Finding], units: Iterable[str] = ()) -> list[Finding]:
    """sorted_unique, except that the findings of one unit (a playbook directory, as shown in
    findings: the files under it and itself) stay together and its load problems lead."""
    prefixes = frozenset(units)

    def unit(file: str) -> str:
        if file in prefixes:
            return file
        cut = file.find("/")
        while cut != -1:  # a few string slices per finding: no file system access
            if file[:cut] in prefixes:
                return file[:cut]
            cut = file.find("/", cut + 1)
        return file

    return sorted(
        set(findings), key=lambda f: (unit(f.file), not is_load_problem(f), *f.sort_key())
    )
