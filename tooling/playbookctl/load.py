"""Load stage: YAML files into plain data plus a position index, never raising on bad input.

PyYAML's C composer gives speed and node marks; we construct the Python values ourselves so that
duplicate keys, unknown tags and alias-expansion bombs become findings with a position instead of
silently winning, being ignored, or exhausting memory.

Plain scalars are read the way the cluster reads them, not the way PyYAML does: Kubernetes,
Tekton and Argo CD convert YAML to JSON with sigs.k8s.io/yaml, i.e. go-yaml v2's YAML 1.1
rules (`y`/`n` are booleans, `1e3` and `08` are numbers, `1:30` and `0o17`... differ too).
Every scalar whose reading differs from PyYAML's, and every mapping key the cluster turns into
other text (`on:` becomes the key "true"), is kept in `Document.rereads` so that lint can say
so; the data itself holds the cluster's reading, and numbers are kept as the JSON the cluster
sees (`2.0` becomes the integer 2, as Go's JSON encoder writes it).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from playbookctl.findings import Finding, Severity

try:  # libyaml is an order of magnitude faster; fall back when PyYAML was built without it
    _BaseLoader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader

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
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
# The tag our resolver gives a plain scalar that go-yaml v2 reads differently from PyYAML.
_REREAD = "tag:playbookctl,2026:reread"

# --- go-yaml v2 plain-scalar resolution (resolve.go), for the cluster's reading -----------------

_GO_WORDS: dict[str, Any] = {
    **dict.fromkeys(
        ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True
    ),
    **dict.fromkeys(
        ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False
    ),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
# First characters after which either reader may see something other than a string.
_HINTS = frozenset("yYnNtTfFoO~<=+-.0123456789")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_GO_DOT_FLOAT = re.compile(r"\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?\Z")
_GO_INT = re.compile(
    r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|(0[0-7]*)|([1-9][0-9]*))\Z"
)
_GO_TIMESTAMP = re.compile(r"[0-9]{4}-")
_INT64 = 1 << 63
_UINT64 = 1 << 64


def _json_number(value: float) -> int | float:
    # The cluster sees JSON, where 2.0 and 2 are one number, written "2" by Go's encoder.
    if value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def _go_number(text: str) -> int | float | None:
    if _GO_TIMESTAMP.match(text):
        return None  # timestamp-looking: a string to sigs.k8s.io/yaml, parsed or not
    plain = text.replace("_", "")
    m = _GO_INT.match(plain)
    if m:
        sign, hexa, octo, bina, octal0, dec = m.groups()
        if hexa is not None:
            n = int(hexa, 16)
        elif octo is not None:
            n = int(octo, 8)
        elif bina is not None:
            n = int(bina, 2)
        elif octal0 is not None:
            n = int(octal0, 8)
        else:
            n = int(dec)
        n = -n if sign == "-" else n
        if -_INT64 <= n < _INT64 or (sign != "-" and not sign and n < _UINT64):
            return n
    if _GO_FLOAT.match(plain):
        f = float(plain)
        return None if math.isinf(f) else _json_number(f)  # out of range: ParseFloat fails
    if plain.startswith(("0b", "-0b")):  # pragma: no cover - covered by _GO_INT above
        return None
    return None


def go_scalar(text: str) -> Any:
    """The value go-yaml v2 (YAML 1.1) gives the plain scalar `text`, numbers as JSON sees them."""
    if text in _GO_WORDS:
        return _GO_WORDS[text]
    first = text[:1]
    if first == ".":
        if _GO_DOT_FLOAT.match(text):
            return _json_number(float(text))
        return text
    if first and first in "+-0123456789":
        n = _go_number(text)
        return text if n is None else n
    return text


def go_reads_as_string(text: str) -> bool:
    """True when go-yaml v2 reads the plain scalar `text` as that very string (no quotes needed)."""
    return text[:1] not in _HINTS or (text != "<<" and go_scalar(text) == text)


def go_key(value: Any, text: str) -> str:
    """The JSON object key sigs.k8s.io/yaml makes of a mapping key go-yaml read as value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float32_text(value)
    if value is None:
        return text  # pragma: no cover - null keys are refused by the JSON conversion anyway
    return str(value)


def _go_float32_text(value: float) -> str:
    # strconv.FormatFloat(v, 'g', -1, 32), which sigs.k8s.io/yaml uses for float keys.
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    import struct  # noqa: PLC0415 - float keys are rare

    f32 = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{f32:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f32:
            break
    mantissa, _, exp = f"{float(text):.{digits - 1}e}".partition("e")
    exponent = int(exp)
    if exponent < -4 or exponent >= 6:
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    out = f"{float(text):.{max(digits - 1 - exponent, 0)}f}"
    return out.rstrip("0").rstrip(".") if "." in out else out


class _Loader(_BaseLoader):  # type: ignore[misc]
    """PyYAML's composer with go-yaml v2's resolution of plain scalars."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            if value[:1] not in _HINTS and value:
                return _STR
            if value == "<<":
                return _MERGE
            go = go_scalar(value)
            py_tag = super().resolve(kind, value, implicit)
            if _same_reading(go, py_tag, value):
                return _go_tag(go)
            return _REREAD
        tag: str = super().resolve(kind, value, implicit)
        return tag


class ClusterQuoting:
    """Mixin for a PyYAML Dumper: a string either reader would take for something else is
    quoted (PyYAML already quotes `yes` or `1:30`; this also quotes `y`, `n`, `1e3`, `08`...)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[misc]
        if (
            tag == _STR
            and kind is yaml.ScalarNode
            and implicit[0]
            and value[:1] in _HINTS
            and not go_reads_as_string(value)
        ):
            return _REREAD  # not the string tag: the emitter quotes the value
        return tag


def _go_tag(go: Any) -> str:
    if isinstance(go, str):
        return _STR
    if go is None:
        return _NULL
    if isinstance(go, bool):
        return _BOOL
    return _INT if isinstance(go, int) else _FLOAT


def _py_value(py_tag: str, value: str) -> Any:
    if py_tag in (_STR, _MERGE, "tag:yaml.org,2002:value", "tag:yaml.org,2002:timestamp"):
        return value  # timestamps: both sides end up with the text
    node = yaml.ScalarNode(py_tag, value)
    try:
        return _SCALAR_CONSTRUCTOR.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError):
        return value


_PY_RESOLVER: Any = yaml.resolver.Resolver()


def pyyaml_scalar(text: str) -> Any:
    """The value PyYAML's own (YAML 1.1-ish) resolution gives the plain scalar `text`."""
    return _py_value(_PY_RESOLVER.resolve(yaml.ScalarNode, text, (True, False)), text)


def _same_reading(go: Any, py_tag: str, value: str) -> bool:
    if py_tag in (_MERGE, "tag:yaml.org,2002:value"):
        return value in ("<<", go)
    py = _py_value(py_tag, value)
    if type(go) is not type(py):
        return False
    if isinstance(go, float) and math.isnan(go):
        return math.isnan(py)
    return bool(go == py)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return f"the number {value} (which JSON cannot hold)"
        return f"the number {value}"
    return f"the string {value!r}"


class Reread(NamedTuple):
    """A plain scalar the cluster (go-yaml v2) reads unlike PyYAML, or a key it renames."""

    path: YamlPath
    at_key: bool
    text: str
    cluster: Any  # what the cluster reads (a key: the JSON key it becomes)
    pyyaml: Any  # what PyYAML reads (a key: the text as written)
    position: Position

    def message(self) -> str:
        if self.at_key:
            return (
                f"the unquoted key {self.text!r} becomes the key {self.cluster!r} when the "
                f'cluster reads it (YAML 1.1); quote it: "{self.text}"'
            )
        return (
            f"the cluster reads the unquoted {self.text!r} (YAML 1.1, go-yaml v2) as "
            f"{_describe(self.cluster)}, PyYAML as {_describe(self.pyyaml)}; quote it: "
            f'"{self.text}"'
        )


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
    # Scalars the cluster reads differently from PyYAML (see the module docstring).
    rereads: list[Reread] = field(default_factory=list)
    # The text of plain scalars read as a boolean but not written `true`/`false` (`yes`, `on`):
    # "quote it" must quote what was written, not the boolean it became.
    written: dict[YamlPath, str] = field(default_factory=dict)

    def written_as(self, path: YamlPath) -> str | None:
        """How the plain scalar at path was written, when YAML read it as something else."""
        if path in self.written:
            return self.written[path]
        for r in self.rereads:
            if r.path == path and not r.at_key:
                return r.text
        return None

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
    # False when the file, or one of its documents, could not be read at all (not readable, not
    # UTF-8, a syntax error, an alias bomb): `documents` is then not all the file says.
    complete: bool = True

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

    def _scalar(self, node: yaml.ScalarNode, path: YamlPath, *, record: bool = True) -> Any:
        tag = node.tag
        # Fast paths for the tags nearly every value has; the constructor's generic dispatch
        # costs more than the rest of loading.
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            if record and node.value.lower() not in ("true", "false"):
                self.doc.written[path] = node.value
            return _GO_WORDS.get(node.value, node.value.lower() == "true")
        if tag == _REREAD:
            value = go_scalar(node.value)
            if record:
                self.doc.rereads.append(
                    Reread(
                        path, False, node.value, value, pyyaml_scalar(node.value), self._mark(node)
                    )
                )
            return value
        if tag in (_INT, _FLOAT) and not node.style:
            value = go_scalar(node.value)
            if isinstance(value, float) and not math.isfinite(value):
                self.errors.append(
                    self.doc.finding(
                        "load.json-value",
                        path,
                        f"the cluster cannot convert {node.value!r} to JSON (infinity and NaN "
                        f'are not JSON numbers), so it refuses the whole object; quote it: "'
                        f'{node.value}"',
                    )
                )
            if not isinstance(value, str):
                return value
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
            key = self._scalar(key_node, path, record=False)
            if not isinstance(key, str):
                # JSON (and so Kubernetes) object keys are strings: sigs.k8s.io/yaml writes
                # the value go-yaml read (`on:` becomes "true", `0755:` becomes "493").
                key = go_key(key, key_node.value)
            child_path = (*path, key)
            if not key_node.style and key != key_node.value:
                self.doc.rereads.append(
                    Reread(
                        child_path,
                        True,
                        key_node.value,
                        key,
                        key_node.value,
                        self._mark(key_node),
                    )
                )
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
            file, [], [Finding("load.syntax", Severity.ERROR, file, line, col, problem)], False
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
            False,
        )
    complete = True
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
            complete = False
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
            complete = False
            continue
        findings.extend(errors)
        if doc.data is None:  # an empty document (e.g. a trailing `---`), skipped as kubectl does
            continue
        documents.append(doc)
    return LoadResult(file, documents, findings, complete)


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
        return LoadResult(file, [], errors, False)
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
