"""The strict-decoding field tables (lint/tekton/fields.py) against Tekton v1.14.1's swagger.

`tests/references/tekton-swagger/{v1,v1beta1}/swagger.json` are `pkg/apis/pipeline/{v1,v1beta1}/
swagger.json` at tag v1.14.1 (vendored, see its PROVENANCE.json): every field of every Tekton
type. For each Tekton type a Pipeline or Task can contain, our table must list exactly the
swagger's fields, each of the same JSON shape (string, integer, boolean, list, map, or the
same struct). corev1/metav1 types (EnvVar, ResourceRequirements, ObjectMeta...) are outside
these files and are not compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from playbookctl.lint.tekton.fields import table_for

SWAGGER = Path(__file__).resolve().parents[2] / "references" / "tekton-swagger"
FILES = {"v1": "v1/swagger.json", "v1beta1": "v1beta1/swagger.json"}
# Our names for types the swagger spells differently or we decode specially.
SPECIAL = {"ParamValue": "pv"}
OPAQUE = "*"  # a corev1/metav1 struct: not in the swagger, any struct of ours is accepted


def _definitions(version: str) -> dict[str, Any]:
    data = json.loads((SWAGGER / FILES[version]).read_text())
    prefix = version + "."
    return {k[len(prefix) :]: v for k, v in data["definitions"].items() if k.startswith(prefix)}


def _shape(prop: dict[str, Any], tekton: set[str], version: str) -> str:
    ref = prop.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1].split(".", 1)[-1]
        if ref.rsplit("/", 1)[-1].startswith(version + ".") and name in tekton:
            return SPECIAL.get(name, name)
        return OPAQUE
    kind = prop.get("type")
    if kind == "array":
        return f"[{_shape(prop['items'], tekton, version)}]"
    if kind == "object" and "additionalProperties" in prop:
        return "{" + _shape(prop["additionalProperties"], tekton, version) + "}"
    return {"string": "str", "integer": "int", "boolean": "bool"}.get(str(kind), str(kind))


def _reachable(defs: dict[str, Any], version: str, table: dict[str, dict[str, str]]) -> set[str]:
    """Tekton types a Pipeline or Task can hold, except below fields we keep opaque ("any":
    v1beta1's PipelineResources, decoded then refused by validation)."""
    seen: set[str] = set()
    todo = ["Pipeline", "Task"]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        for field, prop in defs[name].get("properties", {}).items():
            if table.get(name, {}).get(field) in ("any", "[any]"):
                continue
            text = json.dumps(prop)
            for part in text.split(f'"#/definitions/{version}.')[1:]:
                todo.append(part.split('"', 1)[0])
    return seen


# Go embeds ResolverRef (resolver, params) in these without `json:",inline"`, so openapi-gen
# leaves its fields out of the swagger; encoding/json still decodes them as fields of the type.
EMBEDDED = {"TaskRef": "ResolverRef", "PipelineRef": "ResolverRef", "Ref": "ResolverRef"}


def _same(ours: str, theirs: str) -> bool:
    if ours == "any" or theirs == OPAQUE:
        return not (theirs.startswith("[") and ours.startswith("{"))
    if theirs.startswith("[") and ours.startswith("["):
        return _same(ours[1:-1], theirs[1:-1])
    if theirs.startswith("{") and ours.startswith("{"):
        return _same(ours[1:-1], theirs[1:-1])
    return ours == theirs


@pytest.mark.parametrize("version", sorted(FILES))
def test_field_tables_match_the_swagger(version: str) -> None:
    defs = _definitions(version)
    table = table_for(f"tekton.dev/{version}")
    tekton = set(defs)
    wanted = _reachable(defs, version, table) - {"ParamValue"}
    missing = sorted(wanted - set(table))
    assert missing == [], f"{version} types a Pipeline or Task can hold, not in our table"
    problems: list[str] = []
    for name in sorted(wanted):
        props = dict(defs[name].get("properties", {}))
        if name in EMBEDDED:
            props.update(defs[EMBEDDED[name]]["properties"])
        theirs = {field: _shape(prop, tekton, version) for field, prop in props.items()}
        ours = table[name]
        for field in sorted(set(theirs) - set(ours)):
            problems.append(f"{name}.{field}: in the swagger, not in our table")
        for field in sorted(set(ours) - set(theirs)):
            problems.append(f"{name}.{field}: in our table, not in the swagger")
        for field in sorted(set(ours) & set(theirs)):
            if not _same(ours[field], theirs[field]):
                problems.append(f"{name}.{field}: ours {ours[field]}, swagger {theirs[field]}")
    assert problems == [], "\n".join(problems)
