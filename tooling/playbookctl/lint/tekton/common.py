"""Shared pieces of the Tekton rules: names, `$(...)` references, param types, finding helpers.

The reference syntax mirrors Tekton's `pkg/substitution`: the same regular expression (Go's RE2 and
Python's `re` agree on this leftmost-first, lazy pattern), so that what we extract is what the
webhook extracts, including its quirks (the prefix is used as a pattern, not a literal).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from playbookctl.findings import Finding, Severity
from playbookctl.load import Document, YamlPath

Names = set[str] | frozenset[str]

TEKTON_GROUP = "tekton.dev"
API_VERSIONS = ("tekton.dev/v1", "tekton.dev/v1beta1")

PARAM_STRING = "string"
PARAM_ARRAY = "array"
PARAM_OBJECT = "object"
PARAM_TYPES = (PARAM_STRING, PARAM_ARRAY, PARAM_OBJECT)

# --- names ---------------------------------------------------------------------------------------

DNS1123_LABEL_MAX = 63
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS1123_LABEL_FMT_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def _length_and_format_errors(
    value: str, max_len: int, pattern: re.Pattern[str], format_msg: str
) -> list[str]:
    """Kubernetes' messages for a name: its length, then its format (each independently)."""
    errs: list[str] = []
    if len(value) > max_len:
        errs.append(f"must be no more than {max_len} characters")
    if not pattern.match(value):
        errs.append(format_msg)
    return errs


def dns1123_label_errors(value: str) -> list[str]:
    """Kubernetes' IsDNS1123Label messages for value (empty when it is a valid label)."""
    return _length_and_format_errors(
        value, DNS1123_LABEL_MAX, _DNS1123_LABEL, DNS1123_LABEL_FMT_MSG
    )


# Kubernetes object names (metadata.name) are DNS-1123 subdomains.
DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_SUBDOMAIN = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"
)
DNS1123_SUBDOMAIN_FMT_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def dns1123_subdomain_errors(value: str) -> list[str]:
    """Kubernetes' IsDNS1123Subdomain messages for value (empty when it is a valid subdomain)."""
    return _length_and_format_errors(
        value, DNS1123_SUBDOMAIN_MAX, _DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_FMT_MSG
    )


# Kubernetes' IsQualifiedName, which Tekton applies to a taskRef name: an optional DNS subdomain
# prefix and '/', then a name part of letters, digits, '-', '_' and '.' (any case).
QUALIFIED_NAME_MAX = 63
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT + r"\Z")
_QUALIFIED_NAME_REGEX_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{_QUALIFIED_NAME_FMT}')"
)


def qualified_name_errors(value: str) -> list[str]:
    """Kubernetes' IsQualifiedName messages for value (empty when it is a valid qualified name)."""
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    else:
        return [
            f"a qualified name {_QUALIFIED_NAME_REGEX_MSG} with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append(f"name part must be no more than {QUALIFIED_NAME_MAX} characters")
    if not _QUALIFIED_NAME.match(name):
        errs.append("name part " + _QUALIFIED_NAME_REGEX_MSG)
    return errs


# Tekton's RefNameLikeUrl: a ref name holding a scheme is the concise resolver syntax.
_URL_LIKE = re.compile(r"[\w-]+:/+", re.ASCII)


def ref_name_like_url(name: str) -> bool:
    return bool(_URL_LIKE.search(name))


# --- $(...) references ---------------------------------------------------------------------------

# Tekton's braceMatchingRegex with parameterSubstitution `.*?(\[\*\])?` in all three slots.
_SUBST = r".*?(?:\[\*\])?"
_BRACE = r"\$\(%s(?:\.(?P<var1>%s)|\[\"(?P<var2>%s)\"\]|\['(?P<var3>%s)'\])\)"
_ARRAY_INDEXING = re.compile(r"\[([0-9])*\*?\]")
_INT_INDEX = re.compile(r"\[[0-9]+\]")


@lru_cache(maxsize=64)
def reference_pattern(prefix: str) -> re.Pattern[str]:
    """The pattern Tekton uses to find `$(<prefix>.X)`, `$(<prefix>["X"])` and `$(<prefix>['X'])`.

    As in Tekton, prefix is spliced in as a regular expression (so `context.pipeline` also matches
    `contextXpipeline`); callers pass it unescaped to keep that behaviour.
    """
    try:
        return re.compile(_BRACE % (prefix, _SUBST, _SUBST, _SUBST))
    except re.error:  # Go fails to compile such a pattern too, and then reports nothing
        return _NEVER


_NEVER = re.compile(r"(?!)(?P<var1>)(?P<var2>)(?P<var3>)")


@dataclass(frozen=True)
class Reference:
    """One `$(...)` match: the whole expression and the name after the prefix as written."""

    expression: str
    raw: str  # e.g. "foo", "foo[*]", "obj.key", "a.b.c" (the text the regex captured)
    dotted: bool  # written with dot notation (the only form whose dots are significant)


def iter_references(value: str, prefix: str) -> Iterator[Reference]:
    if "$(" not in value:
        return
    for m in reference_pattern(prefix).finditer(value):
        v1 = m.group("var1")
        if v1:
            yield Reference(m.group(0), v1, True)
            continue
        yield Reference(m.group(0), m.group("var2") or m.group("var3") or "", False)


def too_many_dots_message(value: str, prefix: str) -> str:
    return (
        f'Invalid referencing of parameters in "{value}"! Only two dot-separated components '
        f'after the prefix "{prefix}" are allowed.'
    )


def extract_variables(value: str, prefix: str) -> tuple[list[str], bool, str]:
    """Tekton's ExtractVariablesFromString: (names, present, error text).

    A dotted name keeps only its first component (`obj.key` gives `obj`); a name with more than
    two dotted components is an error. Names keep a trailing `[*]` or `[i]`.
    """
    names: list[str] = []
    present = False
    for ref in iter_references(value, prefix):
        present = True
        if ref.dotted and "." in ref.raw:
            if len(ref.raw.split(".")) > 2:
                return names, True, too_many_dots_message(value, prefix)
            names.append(ref.raw.split(".", 1)[0])
        else:
            names.append(ref.raw)
    return names, present, ""


def extract_entire_variables(value: str, prefix: str) -> list[str]:
    """Tekton's extractEntireVariablesFromString: the captured names, dots and all."""
    return [ref.raw for ref in iter_references(value, prefix)]


def trim_array_index(name: str) -> str:
    """Tekton's TrimArrayIndex: drop every `[i]` and `[*]`."""
    return _ARRAY_INDEXING.sub("", name)


def strip_star(name: str) -> str:
    return name[:-3] if name.endswith("[*]") else name


def unknown_variable_message(value: str) -> str:
    return f"non-existent variable in {go_quote(value)}"


def go_quote(value: str) -> str:
    """Go's %q for the strings we meet (double quotes, backslash escapes)."""
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def unknown_references(value: str, prefix: str, known: Names) -> str | None:
    """Tekton's ValidateNoReferencesToUnknownVariables: an error text, or None."""
    names, present, err = extract_variables(value, prefix)
    if not present:
        return None
    if err:
        return err
    for name in names:
        if trim_array_index(name) not in known:
            return unknown_variable_message(value)
    return None


def prohibited_references(value: str, prefix: str, prohibited: Names) -> str | None:
    """Tekton's ValidateNoReferencesToProhibitedVariables: an error text, or None."""
    names, present, err = extract_variables(value, prefix)
    if not present:
        return None
    if err:
        return err
    for name in names:
        if strip_star(name) in prohibited:
            return f"variable type invalid in {go_quote(value)}"
    return None


def entire_prohibited_references(value: str, prefix: str, prohibited: Names) -> str | None:
    """Tekton's ValidateNoReferencesToEntireProhibitedVariables: whole array/object uses."""
    for name in extract_entire_variables(value, prefix):
        if strip_star(name) in prohibited:
            return f"variable type invalid in {go_quote(value)}"
    return None


def first_expression(value: str, prefix: str) -> str:
    m = reference_pattern(prefix).search(value)
    return m.group(0) if m else ""


def not_isolated_references(value: str, prefix: str, names_: Names) -> str | None:
    """Tekton's ValidateVariableReferenceIsIsolated: a reference to names_ must be all of value."""
    names, present, err = extract_variables(value, prefix)
    if not present:
        return None
    if err:
        return err
    first = first_expression(value, prefix)
    for name in names:
        if strip_star(name) in names_ and len(value) != len(first):
            return f"variable is not properly isolated in {go_quote(value)}"
    return None


_WHOLE_REF_NAME = r"[_a-zA-Z0-9.-]+\[\*\]"


@lru_cache(maxsize=16)
def _isolated_whole_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        "^" + _BRACE % (prefix, _WHOLE_REF_NAME, _WHOLE_REF_NAME, _WHOLE_REF_NAME) + r"\Z"
    )


def is_isolated_whole_reference(value: str, prefix: str) -> bool:
    """True for a value that is exactly `$(<prefix>.name[*])` (Tekton's isolated whole ref)."""
    return bool(_isolated_whole_pattern(prefix).match(value))


# Tekton's VariableSubstitutionRegex: the `$(...)` expressions its result-reference,
# execution-status and pipeline-result rules look at.
_VAR_SUBSTITUTION = re.compile(r"\$\([_a-zA-Z0-9.-]+(\.[_a-zA-Z0-9.-]+)*(\[([0-9]+|\*)\])?\)")


def var_sub_expressions(value: str) -> list[str]:
    """The contents of each `$(...)` Tekton's VariableSubstitutionRegex finds in value."""
    if "$(" not in value:
        return []
    return [m.group(0)[2:-1] for m in _VAR_SUBSTITUTION.finditer(value)]


# --- walking string values -----------------------------------------------------------------------


def iter_strings(data: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
    """Every string value under data (mapping keys excluded), with its path."""
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from iter_strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from iter_strings(v, (*path, i))


# --- params --------------------------------------------------------------------------------------


def value_type(value: Any) -> str:
    """The ParamValue type Tekton's decoder gives a JSON value.

    A list of strings is an array, a mapping of strings an object; anything else (numbers,
    booleans, mixed lists) decodes as a string, as in ParamValue.UnmarshalJSON. A null element
    decodes into a Go string as "" without error, so it does not spoil an array or object.
    """
    if isinstance(value, list) and all(v is None or isinstance(v, str) for v in value):
        return PARAM_ARRAY
    if isinstance(value, dict) and all(v is None or isinstance(v, str) for v in value.values()):
        return PARAM_OBJECT
    return PARAM_STRING


def param_spec_type(spec: Any) -> str:
    """A ParamSpec's type after Tekton's defaulting (explicit type, properties, then default)."""
    if not isinstance(spec, dict):
        return PARAM_STRING
    declared = spec.get("type")
    if isinstance(declared, str) and declared:
        return declared
    if spec.get("properties") is not None:
        return PARAM_OBJECT
    if "default" not in spec or spec["default"] is None:
        return PARAM_STRING
    return value_type(spec["default"])


def object_keys(spec: Any) -> list[str]:
    """The declared keys of an object ParamSpec (its properties)."""
    if not isinstance(spec, dict):
        return []
    props = spec.get("properties")
    return [k for k in props if isinstance(k, str)] if isinstance(props, dict) else []


# --- emitting findings ---------------------------------------------------------------------------


@dataclass
class Ctx:
    """Collects findings for one document; rules call ctx.error(rule, path, message)."""

    doc: Document
    findings: list[Finding] = field(default_factory=list)

    def error(self, rule: str, path: YamlPath, message: str, *, at_key: bool = False) -> None:
        self.findings.append(self.doc.finding(rule, path, message, Severity.ERROR, at_key=at_key))

    def get(self, path: YamlPath, default: Any = None) -> Any:
        return self.doc.get(path, default)


def field_path(path: YamlPath) -> str:
    """A Tekton-style field path for messages: spec.tasks[0].name."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# The fields of a PipelineSpec and a TaskSpec: a path starting with one is relative to a spec.
_SPEC_FIELDS = (
    "description|displayName|params|resources|tasks|finally|workspaces|results|steps|"
    "sidecars|stepTemplate|volumes"
)
_RELATIVE_PATH = re.compile(rf"(?:{_SPEC_FIELDS})(?:\[[^\]]*\]|\.[^\s.,\[\]]+)*")


def via_field(prefix: str, message: str) -> str:
    """knative's FieldError.ViaField(prefix) on a rendered message (`message: path, path` on
    its first line, details after): each spec-relative path gets `prefix.` in front, as
    Pipeline.Validate does to PipelineSpec.Validate's errors. A message whose tail is not a
    list of such paths is left as it is."""
    first, nl, rest = message.partition("\n")
    head, sep, tail = first.rpartition(": ")
    if not sep:
        return message
    paths = tail.split(", ")
    if not all(_RELATIVE_PATH.fullmatch(p) for p in paths):
        return message
    return head + sep + ", ".join(f"{prefix}.{p}" for p in paths) + nl + rest


def missing_field(path: YamlPath) -> str:
    return f"missing field(s): {field_path(path)}"
