"""JSON Schema validation whose errors become positioned findings.

Our schemas (playbookctl/schemas/*.json) are Draft 2020-12. Each jsonschema error becomes one
finding placed at the offending value, or at the key for unknown and missing fields; a rule-id
function picks the rule from the path, so `spec.version` problems are `workflow.version` whether
a schema or a hand-written rule found them. A subschema may carry `x-hint`, a plain-language
statement of what the value must look like, used instead of jsonschema's raw message.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from playbookctl.findings import Finding
from playbookctl.load import Document, YamlPath

RuleFor = Callable[[YamlPath, str], str]  # (subject path, jsonschema validator keyword) -> rule id


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = (
        resources.files("playbookctl").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def dotted(path: YamlPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def yaml_text(value: Any) -> str:
    """How YAML spells a plain scalar the loader turned into a bool or number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def quote_hint(value: Any, written: str | None = None) -> str:
    """The fix for a scalar YAML read as a boolean or number: quote what was written (`yes`
    quoted is "yes"; "true" would change its meaning)."""
    text = yaml_text(value)
    if written and written != text:
        return (
            f'YAML read {written} as the {_kind(value)} {text}; quote it as written ("{written}")'
        )
    return f'YAML read {text} as a {_kind(value)}; quote it ("{text}")'


def _schema(error: ValidationError) -> dict[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


def _allowed(error: ValidationError) -> list[Any]:
    value: Any = error.validator_value
    return [value] if error.validator == "const" else list(value)


def _message(error: ValidationError, where: str, written: str | None = None) -> str:
    hint = _schema(error).get("x-hint")
    value: Any = error.instance
    v = error.validator
    if v == "type":
        expected = error.validator_value
        if expected == "string" and isinstance(value, bool | int | float):
            return f"{where}: must be a string, but {quote_hint(value, written)}"
        article = "an" if str(expected)[0] in "aeiou" else "a"
        return f"{where}: must be {article} {expected}, not a {_kind(value)}"
    if v in {"enum", "const"}:
        allowed = _allowed(error)
        if isinstance(value, bool | int | float) and (written or yaml_text(value)) in allowed:
            text = written or yaml_text(value)
            return f'{where}: must be the string "{text}", but {quote_hint(value, written)}'
        if hint:
            return f"{where}: {value!r} is not allowed: {hint}"
        if len(allowed) == 1:
            return f"{where}: must be {allowed[0]!r}, not {value!r}"
        return f"{where}: {value!r} is not one of {', '.join(repr(a) for a in allowed)}"
    if v == "minItems":
        return f"{where}: needs at least {error.validator_value} item(s)"
    if v in {"pattern", "maxLength", "minLength"}:
        if v == "minLength" and error.validator_value == 1:
            return f"{where}: must not be empty"
        if v == "maxLength":
            return f"{where}: is {len(value)} characters, over the limit of {error.validator_value}"
        if hint:
            return f"{where}: {value!r} is not valid: {hint}"
    return f"{where}: {error.message}"


def _unknown_keys(error: ValidationError) -> list[str]:
    props = _schema(error).get("properties", {})
    return [k for k in error.instance if k not in props] if isinstance(error.instance, dict) else []


def _flatten(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        if error.context:  # anyOf/oneOf: report the branches' own errors
            yield from _flatten(iter(error.context))
        else:
            yield error


def schema_findings(
    doc: Document,
    schema_name: str,
    rule_for: RuleFor,
    *,
    skip: Sequence[YamlPath] = (),
    unknown_message: Callable[[YamlPath, str, list[str]], str | None] | None = None,
) -> list[Finding]:
    """One finding per schema problem in doc; problems under a path in `skip` are left out
    (a hand-written rule already reported them better)."""

    def skipped(path: YamlPath) -> bool:
        return any(path[: len(s)] == s for s in skip)

    out: list[Finding] = []
    reported: set[YamlPath] = set()
    for error in _flatten(validator(schema_name).iter_errors(doc.data)):
        path: YamlPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            known = sorted(_schema(error).get("properties", {}))
            for key in _unknown_keys(error):
                sub = (*path, key)
                if skipped(sub):
                    continue
                message = unknown_message(sub, key, known) if unknown_message else None
                if message is None:
                    close = difflib.get_close_matches(key, known, n=1)
                    message = f"{dotted(sub)}: unknown field" + (
                        f"; did you mean {close[0]!r}?"
                        if close
                        else f" (known: {', '.join(known)})"
                        if known
                        else ""
                    )
                out.append(
                    doc.finding(rule_for(sub, "additionalProperties"), sub, message, at_key=True)
                )
            continue
        if error.validator == "required":
            if not isinstance(error.instance, dict):
                continue
            required: Any = error.validator_value
            for key in required:
                sub = (*path, key)
                if key in error.instance or skipped(sub):
                    continue
                message = f"{dotted(path)}: missing required field {key!r}"
                out.append(doc.finding(rule_for(sub, "required"), path, message, at_key=True))
            continue
        if error.validator == "propertyNames":
            continue  # reported by the nested error below, which carries the key
        if error.absolute_schema_path and "propertyNames" in error.absolute_schema_path:
            sub = (*path, str(error.instance))
            if skipped(sub):
                continue
            hint = _schema(error).get("x-hint", "invalid key")
            out.append(
                doc.finding(
                    rule_for(sub, "propertyNames"),
                    sub,
                    f"{dotted(sub)}: invalid key {error.instance!r}: {hint}",
                    at_key=True,
                )
            )
            continue
        if skipped(path) or path in reported:
            continue  # several keywords failing on one value are one problem
        reported.add(path)
        out.append(
            doc.finding(
                rule_for(path, str(error.validator)),
                path,
                _message(error, dotted(path), doc.written_as(path)),
            )
        )
    # required errors are yielded once per parent and key; duplicates cannot arise otherwise
    return list(dict.fromkeys(out))
