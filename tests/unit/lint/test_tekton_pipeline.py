"""Table tests for the Pipeline side of the `tekton.*` rules.

Most cases are ported from Tekton's own pipeline_validation_test.go into YAML fixtures under
tests/fixtures/tekton/pipeline/: every document in valid/*.yaml must raise nothing, and every
document in invalid/*.yaml must raise at least the rule ids its `metadata.annotations.expect`
lists (a comma-separated list). The inline table at the end pins positions and messages.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from playbookctl.findings import Severity
from playbookctl.lint.tekton import check_document, check_pipeline, is_tekton_object
from playbookctl.lint.tekton.common import extract_variables, var_sub_expressions
from playbookctl.load import Document, load_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tekton" / "pipeline"


def _cases(kind: str) -> list[object]:
    out: list[object] = []
    for path in sorted((FIXTURES / kind).glob("*.yaml")):
        result = load_text(path.read_text(encoding="utf-8"), path.name)
        assert not result.findings, result.findings
        for doc in result.documents:
            annotations = doc.data["metadata"].get("annotations", {})
            expect = {r.strip() for r in annotations.get("expect", "").split(",") if r.strip()}
            out.append(pytest.param(doc, expect, id=f"{path.stem}: {annotations['case']}"))
    return out


@pytest.mark.parametrize(("doc", "expect"), _cases("valid"))
def test_valid_pipelines_raise_nothing(doc: Document, expect: set[str]) -> None:
    assert not expect
    assert check_document(doc) == []


@pytest.mark.parametrize(("doc", "expect"), _cases("invalid"))
def test_invalid_pipelines_raise_their_rules(doc: Document, expect: set[str]) -> None:
    assert expect, "an invalid case must name the rules it expects"
    findings = check_document(doc)
    assert expect <= {f.rule for f in findings}, findings
    assert all(f.severity is Severity.ERROR for f in findings)


def _doc(text: str) -> Document:
    result = load_text(text, "pipeline.yaml")
    assert not result.findings
    return result.documents[0]


HEAD = "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: p\nspec:\n"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            "  tasks:\n    - name: a\n      taskRef: {name: t}\n      runAfter: [b]\n",
            [
                (
                    "tekton.run-after",
                    9,
                    18,
                    "invalid value: couldn't add link between a and b: task a depends on b but b "
                    "wasn't present in Pipeline: spec.tasks",
                )
            ],
            id="runAfter missing task points at the entry",
        ),
        pytest.param(
            "  tasks:\n    - name: a\n      taskRef: {name: t}\n"
            "      params: [{name: x, value: $(params.nope)}]\n",
            [
                (
                    "tekton.param-reference",
                    9,
                    33,
                    'non-existent variable in "$(params.nope)": spec.tasks[0].params[x]',
                )
            ],
            id="undeclared param points at the value",
        ),
        pytest.param(
            "  params: [{name: a, type: array}]\n  tasks:\n    - name: a\n"
            "      taskRef: {name: t}\n"
            "      params: [{name: x, value: 'pre-$(params.a)'}]\n",
            [
                (
                    "tekton.param-reference",
                    10,
                    33,
                    'variable type invalid in "pre-$(params.a)": spec.tasks[0].params[x]',
                )
            ],
            id="array param in a string",
        ),
        pytest.param(
            "  tasks:\n    - {name: a, taskRef: {name: t}, runAfter: [b]}\n"
            "    - {name: b, taskRef: {name: t}, runAfter: [a]}\n",
            [
                (
                    "tekton.cycle",
                    7,
                    14,
                    'invalid value: cycle detected; task "a" depends on "b": spec.tasks',
                )
            ],
            id="cycle names the first task in order",
        ),
        pytest.param(
            "  tasks:\n    - {name: a, taskRef: {name: t}}\n  finally:\n"
            "    - {name: f, taskRef: {name: t}, runAfter: [a]}\n",
            [
                (
                    "tekton.finally",
                    9,
                    37,
                    "invalid value: no runAfter allowed under spec.finally, final task f has "
                    "runAfter specified: spec.finally[0]",
                )
            ],
            id="runAfter in finally",
        ),
        pytest.param(
            "  tasks:\n    - {name: a, taskRef: {name: t}}\n"
            "  results: [{name: r, value: $(tasks.b.results.x)}]\n",
            [
                (
                    "tekton.pipeline-result",
                    8,
                    30,
                    "invalid value: referencing a nonexistent task: spec.results[0].value",
                )
            ],
            id="pipeline result names a missing task",
        ),
        pytest.param(
            "  tasks:\n    - {name: a, taskRef: {name: _t}}\n",
            [
                (
                    "tekton.task-ref",
                    7,
                    33,
                    "invalid value: name part must consist of alphanumeric characters, '-', '_' "
                    "or '.', and must start and end with an alphanumeric character (e.g. "
                    "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'): spec.tasks[0].taskRef.name",
                )
            ],
            id="taskRef name that is not a qualified name",
        ),
        pytest.param(
            "  tasks:\n    - {name: a, taskRef: {name: t, resolver: git}}\n",
            [
                (
                    "tekton.task-ref",
                    7,
                    33,
                    "invalid value: invalid URI for request: spec.tasks[0].taskRef.name",
                )
            ],
            id="taskRef name next to a resolver must be a URL",
        ),
        pytest.param(
            "  params: [{name: o, type: object}]\n"
            "  tasks:\n    - {name: a, taskSpec: {steps: [{image: alpine}]}}\n",
            [
                (
                    "tekton.param-properties",
                    6,
                    12,
                    "missing field(s): spec.tasks[0].o.properties",
                )
            ],
            id="object param without properties seen by an embedded spec",
        ),
    ],
)
def test_positions_and_messages(spec: str, expected: list[tuple[str, int, int, str]]) -> None:
    findings = check_pipeline(_doc(HEAD + spec))
    assert [(f.rule, f.line, f.column, f.message) for f in findings] == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"apiVersion": "tekton.dev/v1", "kind": "Pipeline"}, True),
        ({"apiVersion": "tekton.dev/v1beta1", "kind": "Task"}, True),
        ({"apiVersion": "tekton.dev/v1alpha1", "kind": "Pipeline"}, False),
        ({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun"}, False),
        (["tekton.dev/v1"], False),
    ],
)
def test_is_tekton_object(data: object, expected: bool) -> None:
    assert is_tekton_object(data) is expected


@pytest.mark.parametrize(
    ("value", "prefix", "expected"),
    [
        ("$(params.a) $(params.b)", "params", (["a", "b"], True, "")),
        ("$(params[\"a.b\"]) $(params['c'])", "params", (["a.b", "c"], True, "")),
        (
            "$(params.obj.key) $(params.arr[*]) $(params.arr[1])",
            "params",
            (["obj", "arr[*]", "arr[1]"], True, ""),
        ),
        ("no reference", "params", ([], False, "")),
        ("$(inputs.params.a)", "params", ([], False, "")),
        ("$(context.pipeline.name)", r"context\.pipeline", (["name"], True, "")),
        ("$(context.pipelineRun.name)", r"context\.pipeline", ([], False, "")),
    ],
)
def test_extract_variables_like_tekton(
    value: str, prefix: str, expected: tuple[list[str], bool, str]
) -> None:
    assert extract_variables(value, prefix) == expected


def test_too_many_dots_is_an_error() -> None:
    _, present, err = extract_variables("$(params.a.b.c)", "params")
    assert present
    assert err.startswith('Invalid referencing of parameters in "$(params.a.b.c)"')


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(tasks.a.results.b) and $(params.c[*])", ["tasks.a.results.b", "params.c[*]"]),
        ("$(tasks.a.results.b.key)", ["tasks.a.results.b.key"]),
        ("$(not valid)", []),
    ],
)
def test_var_sub_expressions(value: str, expected: list[str]) -> None:
    assert var_sub_expressions(value) == expected


def test_malformed_shapes_never_raise() -> None:
    for spec in (
        "  tasks: 5\n",
        "  tasks: [5, null, {name: 3, taskRef: 7, params: {x: 1}, when: [1]}]\n",
        "  params: [{name: a, default: [1, {x: 2}]}, 3]\n  tasks: [{name: a, runAfter: 5}]\n",
        "  results: [{value: {a: 1}}, 4]\n  workspaces: [1, {name: 2}]\n",
        "  tasks: [{name: a, matrix: {params: 5, include: [{params: [{name: x}]}]}}]\n",
    ):
        findings = check_pipeline(_doc(HEAD + spec))
        assert findings  # each of these is invalid somewhere


_JUNK: list[object] = [None, 1, "x", [], {}, [1], {"a": 1}, True, "$(params.x", {"name": None}]


def _mutate(rng: random.Random, data: object) -> None:
    if isinstance(data, dict):
        if data and rng.random() < 0.3:
            data[rng.choice(list(data))] = rng.choice(_JUNK)
        for value in data.values():
            _mutate(rng, value)
    elif isinstance(data, list):
        if data and rng.random() < 0.3:
            data[rng.randrange(len(data))] = rng.choice(_JUNK)
        for value in data:
            _mutate(rng, value)


def test_mutated_fixtures_never_raise() -> None:
    """Every fixture with values swapped for junk of the wrong shape: findings, never a crash."""
    rng = random.Random(20261125)
    sources = [
        doc.data
        for path in sorted(FIXTURES.glob("*/*.yaml"))
        for doc in load_text(path.read_text(encoding="utf-8"), path.name).documents
    ]
    for _ in range(600):
        data = copy.deepcopy(rng.choice(sources))
        _mutate(rng, data)
        findings = check_pipeline(Document(file="mutated.yaml", data=data))
        assert all(f.file == "mutated.yaml" for f in findings)


# --- properties of the valid fixtures (a false alarm is as wrong as a miss) -----------------------

TEKTON_FIXTURES = FIXTURES.parent
VALID_DOCS = [
    pytest.param(doc, id=f"{path.parent.parent.name}/{path.stem}[{i}]")
    for path in sorted(TEKTON_FIXTURES.glob("*/valid/*.yaml"))
    for i, doc in enumerate(load_text(path.read_text(encoding="utf-8"), path.name).documents)
]


def test_valid_fixtures_cover_pipelines_and_tasks() -> None:
    kinds = {p.values[0].data["kind"] for p in VALID_DOCS}  # type: ignore[union-attr]
    assert kinds == {"Pipeline", "Task"}
    assert len(VALID_DOCS) > 100


@pytest.mark.parametrize("doc", VALID_DOCS)
def test_every_valid_fixture_is_clean_including_strict_decoding(doc: Document) -> None:
    """Pipelines and Tasks Tekton accepts: no finding at all, and above all no decoding error."""
    findings = check_document(doc)
    assert not [f for f in findings if f.rule in ("tekton.unknown-field", "tekton.field-type")]
    assert findings == []


@pytest.mark.parametrize("doc", VALID_DOCS)
def test_valid_fixtures_stay_clean_as_compact_json(doc: Document) -> None:
    """A bundle layer holds the object as compact JSON; the same object must lint the same."""
    text = json.dumps(doc.data, separators=(",", ":"), sort_keys=True)
    result = load_text(text, "layer.json")
    assert not result.findings
    assert check_document(result.documents[0]) == []


def _with_optional_fields(data: dict[str, Any]) -> dict[str, Any]:
    """data plus documented optional fields that change no verdict (labels, display names)."""
    out = copy.deepcopy(data)
    meta = out.setdefault("metadata", {})
    meta.setdefault("labels", {})["app.kubernetes.io/version"] = "0.1"
    spec = out.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("displayName", "Display name")
        spec.setdefault("description", "described")
        for section in ("tasks", "finally"):
            for task in spec.get(section) or []:
                if isinstance(task, dict):
                    task.setdefault("displayName", "A task")
                    task.setdefault("description", "described")
    return out


@pytest.mark.parametrize("doc", VALID_DOCS)
def test_valid_fixtures_accept_optional_documented_fields(doc: Document) -> None:
    data = _with_optional_fields(doc.data)
    assert check_document(Document(file="extended.yaml", data=data)) == []
