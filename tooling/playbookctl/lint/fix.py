"""`playbookctl lint --fix`: the mechanical fixes, made in place with the fewest bytes changed.

- A plain scalar YAML reads as something other than the text written (`load.yaml-1.1`: `1e3`,
  `y`; a string field's `yes`/`on` that became a boolean, "quote it as written") is quoted as
  written: `enum: [yes, no]` becomes `enum: ["yes", "no"]`, every other byte as it was. In a
  workflow parameter's `minimum`, `maximum` or integer/float/boolean `default` the value the
  cluster reads is right and a string is not: it is written as read (`1e3` -> `1000`).
- A playbook whose spec.version is registered with other content (`playbook.version-bump`) gets
  its patch version raised, as `playbookctl bump NAME` does (ruamel.yaml finds the value).

Positions come from the loader (the same Document lint judged), and a scalar is rewritten only
when the bytes at that position are exactly its text, so a file changed meanwhile is left alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from playbookctl.bump import bump
from playbookctl.config import Config
from playbookctl.errors import FatalError
from playbookctl.findings import Finding
from playbookctl.lint.cluster_yaml import WRITE_AS, written_as_read
from playbookctl.load import load_file

QUOTE_RULES = frozenset(("load.yaml-1.1",))
QUOTE_AS_WRITTEN = "quote it as written"


@dataclass
class Fixed:
    quoted: dict[str, int] = field(default_factory=dict)  # file -> scalars quoted
    # file -> typed scalars written as the value the cluster reads (`1e3` -> `1000`)
    rewritten: dict[str, int] = field(default_factory=dict)
    bumped: list[str] = field(default_factory=list)  # "name old -> new"

    @property
    def count(self) -> int:
        return sum(self.quoted.values()) + sum(self.rewritten.values()) + len(self.bumped)


def fixable(f: Finding) -> bool:
    return (
        (f.rule in QUOTE_RULES and "quote it" in f.message and "unquoted key" not in f.message)
        or (f.rule in QUOTE_RULES and f"{WRITE_AS} as " in f.message)
        or QUOTE_AS_WRITTEN in f.message
        or f.rule == "playbook.version-bump"
    )


def apply_fixes(findings: Iterable[Finding], config: Config) -> Fixed:
    fixed = Fixed()
    by_file: dict[str, set[tuple[int, int]]] = {}
    bumps: set[str] = set()
    for f in findings:
        if not fixable(f):
            continue
        if f.rule == "playbook.version-bump":
            parts = Path(f.file).parts
            if len(parts) >= 2 and parts[0] == "playbooks":
                bumps.add(parts[1])
            continue
        by_file.setdefault(f.file, set()).add((f.line, f.column))
    for display, positions in sorted(by_file.items()):
        quoted, rewritten = _quote(config.root / display, display, positions, config)
        if quoted:
            fixed.quoted[display] = quoted
        if rewritten:
            fixed.rewritten[display] = rewritten
    for name in sorted(bumps):
        done = bump(config, name, "patch")
        fixed.bumped.append(f"{name} {done.old} -> {done.new}")
    return fixed


def _quote(
    path: Path, display: str, positions: set[tuple[int, int]], config: Config
) -> tuple[int, int]:
    """(scalars quoted, typed scalars written as read) in the file at path."""
    if not path.is_file():
        return 0, 0
    loaded = load_file(path, display, config.max_file_bytes)
    texts: dict[tuple[int, int], str] = {}
    # A typed field is rewritten as the value the cluster reads (`1e3` -> `1000`), not quoted.
    plain: dict[tuple[int, int], str] = {}
    for doc in loaded.documents:
        for r in doc.rereads:
            if not r.at_key:
                texts[(r.position.line, r.position.column)] = r.text
                as_read = written_as_read(doc, r)
                if as_read is not None:
                    plain[(r.position.line, r.position.column)] = as_read
        for yaml_path, text in doc.written.items():
            where = doc.positions.get(yaml_path)
            if where is not None:
                texts[(where.line, where.column)] = text
    raw = path.read_bytes()
    bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
    lines = raw[len(bom) :].decode("utf-8").split("\n")
    quoted = rewritten = 0
    # Right to left on each line, so earlier columns stay where the loader saw them.
    for line, column in sorted(positions & texts.keys(), reverse=True):
        text = texts[(line, column)]
        row = lines[line - 1]
        start = column - 1
        if row[start : start + len(text)] != text:
            continue  # not the bytes lint judged: leave it
        new = plain.get((line, column), json.dumps(text, ensure_ascii=False))
        if not new:
            continue  # a typed field with no plain spelling both readers agree on
        lines[line - 1] = row[:start] + new + row[start + len(text) :]
        if (line, column) in plain:
            rewritten += 1
        else:
            quoted += 1
    if quoted or rewritten:
        _replace(path, bom + "\n".join(lines).encode("utf-8"))
    return quoted, rewritten


def _replace(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=".fix-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FatalError(f"{path}: cannot write the fix: {exc.strerror or exc}") from None
