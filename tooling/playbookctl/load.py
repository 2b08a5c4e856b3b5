"""Load stage: YAML files into plain data plus a position index, never raising on bad input.

PyYAML's C composer gives speed and node marks; we construct the Python values ourselves so that
duplicate keys, unknown tags and alias-expansion bombs become findings with a position instead of
silently winning, being ignored, or exhausting memory.
"""

from __future__ import annotations

import datetime as _dt
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from playbookctl.findings import Finding, Severity

try:  # libyaml is an order of magnitude faster; fall back when PyYAML was built without it
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

YamlPath = tuple[str | int, ...]

DEFAULT_MAX_BYTES = 1024 * 1024
# Kubernetes' YAML decoder refuses documents whose aliases expand far beyond their size; we bound
# the number of nodes an alias may re-materialise the same way.
MAX_ALIAS_EXPANSION = 10_000

_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_KNOWN_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:binary",
}
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class Position(NamedTuple):  # a NamedTuple: one is made per YAML node, so it must be cheap
    line: int
    column: int


_ORIGIN = Position(1, 1)


@dataclass
class Document:
    """One YAML document: its data and where each value (and each mapping key) starts."""

    file: str
    data: Any
    index: int = 0
    start: Position = _ORIGIN
    positions: dict[YamlPath, Position] = field(default_factory=dict)
    key_positions: dict[YamlPath, Position] = field(default_factory=dict)

    def pos(self, path: YamlPath, *, at_key: bool = False) -> Position:
        """Position of the value at path (or its key), else of the nearest ancestor present."""
        p = tuple(path)
        if at_key and p in self.key_positions:
            return self.key_positions[p]
        while p:
            if p in self.positions:
                return self.positions[p]
            p = p[:-1]
        return self.positions.get((), self.start)

    def finding(
        self,
        rule: str,
        path: YamlPath,
        message: str,
        severity: Severity = Severity.ERROR,
        *,
        at_key: bool = False,
    ) -> Finding:
        where = self.pos(path, at_key=at_key)
        return Finding(rule, severity, self.file, where.line, where.column, message)

    def get(self, path: YamlPath, default: Any = None) -> Any:
        cur: Any = self.data
        for part in path:
            if isinstance(part, int):
                if not isinstance(cur, list) or part >= len(cur):
                    return default
            elif not isinstance(cur, dict) or part not in cur:
                return default
            cur = cur[part]
        return cur


@dataclass
class LoadResult:
    file: str
    documents: list[Document]
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


class _AliasBombError(Exception):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__("alias expansion")
        self.mark = mark


class _Builder:
    def __init__(self, doc: Document, errors: list[Finding]) -> None:
        self.doc = doc
        self.errors = errors
        self.expanded = 0
        self.active: set[int] = set()
        # PyYAML's composer resolves an alias to the very node object its anchor made, so a node
        # seen before is being re-materialised through an alias.
        self.built: set[int] = set()

    def _mark(self, node: yaml.Node) -> Position:
        m = node.start_mark
        return Position(m.line + 1, m.column + 1)

    def build(self, node: yaml.Node, path: YamlPath, via_alias: bool) -> Any:
        via_alias = via_alias or id(node) in self.built
        self.built.add(id(node))
        if via_alias:
            self.expanded += 1
            if self.expanded > MAX_ALIAS_EXPANSION:
                raise _AliasBombError(node.start_mark)
        if id(node) in self.active:  # a recursive alias: infinite expansion
            raise _AliasBombError(node.start_mark)
        self.doc.positions.setdefault(path, self._mark(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    self._unknown_tag(node, path)
                return [
                    self.build(child, (*path, i), via_alias) for i, child in enumerate(node.value)
                ]
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP:
                    self._unknown_tag(node, path)
                return self._mapping(node, path, via_alias)
        finally:
            self.active.discard(id(node))
        raise TypeError(f"unexpected node {node!r}")  # pragma: no cover

    def _unknown_tag(self, node: yaml.Node, path: YamlPath) -> None:
        self.errors.append(self.doc.finding("load.tag", path, f"unsupported YAML tag {node.tag!r}"))

    def _scalar(self, node: yaml.ScalarNode, path: YamlPath) -> Any:
        tag = node.tag
        # Fast paths for the tags nearly every value has; the constructor's generic dispatch
        # costs more than the rest of loading.
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return _SCALAR_CONSTRUCTOR.bool_values[node.value.lower()]
        if tag not in _KNOWN_SCALAR_TAGS:
            self._unknown_tag(node, path)
            return node.value
        try:
            value = _SCALAR_CONSTRUCTOR.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            self.errors.append(
                self.doc.finding("load.syntax", path, f"invalid scalar {node.value!r}: {exc}")
            )
            return node.value
        # Kubernetes' decoder turns timestamps back into strings; so do we, to compare like it.
        if isinstance(value, _dt.date):
            return node.value
        return value

    def _mapping(self, node: yaml.MappingNode, path: YamlPath, via_alias: bool) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged = self._merge_sources(value_node, path)
                for k, v in merged.items():
                    result.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.errors.append(
                    self.doc.finding("load.key", path, "mapping keys must be scalars")
                )
                continue
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                key = key_node.value  # JSON (and so Kubernetes) object keys are strings
            child_path = (*path, key)
            if key in explicit:
                m = self._mark(key_node)
                if not via_alias:
                    self.errors.append(
                        Finding(
                            "load.duplicate-key",
                            Severity.ERROR,
                            self.doc.file,
                            m.line,
                            m.column,
                            f"duplicate key {key!r} (an earlier one is at line "
                            f"{self.doc.key_positions[child_path].line})",
                        )
                    )
                continue
            explicit.add(key)
            self.doc.key_positions.setdefault(child_path, self._mark(key_node))
            result[key] = self.build(value_node, child_path, via_alias)
        return result

    def _merge_sources(self, node: yaml.Node, path: YamlPath) -> dict[Any, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[Any, Any] = {}
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                self.errors.append(
                    self.doc.finding("load.syntax", path, "a merge key '<<' needs a mapping")
                )
                continue
            value = self.build(src, path, False)
            for k, v in value.items():
                merged.setdefault(k, v)
        return merged


def _decode(raw: bytes, file: str) -> tuple[str | None, list[Finding]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, [
            Finding(
                "load.encoding",
                Severity.ERROR,
                file,
                line,
                col,
                f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            )
        ]
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, []


TAB_MESSAGE = "a tab character in the indentation: YAML indents with spaces only"


def _tab_at(text: str, line: int, column: int) -> bool:
    """Whether the scanner stopped on a tab in a line's indentation (it reports that as a
    character that 'cannot start any token', which names neither the tab nor the fix)."""
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return False
    indent = lines[line - 1][:column]
    return "\t" in indent and not indent.replace("\t", "").replace(" ", "")


def load_text(text: str, file: str) -> LoadResult:
    findings: list[Finding] = []
    documents: list[Document] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{exc.context}: {problem}"
        if _tab_at(text, line, col):
            problem = TAB_MESSAGE
        return LoadResult(
            file, [], [Finding("load.syntax", Severity.ERROR, file, line, col, problem)]
        )
    except yaml.YAMLError as exc:  # e.g. a reader error on a control character
        offset = int(getattr(exc, "position", 0) or 0)
        before = text[:offset]
        line = before.count("\n") + 1
        col = offset - (before.rfind("\n") + 1) + 1
        return LoadResult(
            file,
            [],
            [
                Finding(
                    "load.syntax",
                    Severity.ERROR,
                    file,
                    line,
                    col,
                    f"invalid YAML: {str(exc).splitlines()[0]}",
                )
            ],
        )
    for index, node in enumerate(nodes):
        start = Position(node.start_mark.line + 1, node.start_mark.column + 1)
        doc = Document(file=file, data=None, index=index, start=start)
        errors: list[Finding] = []
        builder = _Builder(doc, errors)
        try:
            doc.data = builder.build(node, (), False)
        except _AliasBombError as bomb:
            m = bomb.mark
            findings.append(
                Finding(
                    "load.alias-bomb",
                    Severity.ERROR,
                    file,
                    (m.line + 1) if m else start.line,
                    (m.column + 1) if m else start.column,
                    f"aliases expand to more than {MAX_ALIAS_EXPANSION} nodes "
                    "(or refer to themselves); refusing to expand",
                )
            )
            continue
        except RecursionError:
            findings.append(
                Finding(
                    "load.syntax",
                    Severity.ERROR,
                    file,
                    start.line,
                    start.column,
                    "document nests too deeply",
                )
            )
            continue
        findings.extend(errors)
        if doc.data is None:  # an empty document (e.g. a trailing `---`), skipped as kubectl does
            continue
        documents.append(doc)
    return LoadResult(file, documents, findings)


def read_text_file(
    path: Path, display: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[str | None, list[Finding]]:
    """A file's text, or None and the finding that says why not (not a regular file, over
    max_bytes, unreadable, not UTF-8). A leading BOM is dropped. Never raises."""
    file = display if display is not None else str(path)

    def problem(rule: str, message: str) -> tuple[None, list[Finding]]:
        return None, [Finding(rule, Severity.ERROR, file, 1, 1, message)]

    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or device would block the read forever or never end.
            return problem("load.io", "not a regular file")
        if st.st_size > max_bytes:
            return problem(
                "load.too-large", f"file is {st.st_size} bytes, over the {max_bytes}-byte bound"
            )
        raw = path.read_bytes()
    except OSError as exc:
        return problem("load.io", f"cannot read: {exc.strerror}")
    return _decode(raw, file)


def load_file(
    path: Path, display: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> LoadResult:
    """Load every document of a YAML file. Problems come back as findings, never as exceptions."""
    file = display if display is not None else str(path)
    text, errors = read_text_file(path, file, max_bytes)
    if text is None:
        return LoadResult(file, [], errors)
    return load_text(text, file)


def iter_paths(data: Any, path: YamlPath = ()) -> Iterator[tuple[YamlPath, Any]]:
    """Every (path, value) in data, depth first, the root included."""
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from iter_paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from iter_paths(v, (*path, i))
