"""Tekton Task validation, table-style: fixtures ported from Tekton's task_validation_test.go.

Each file under tests/fixtures/tekton/task/valid is a Task Tekton accepts (no finding allowed);
each file under invalid/ starts with `# expect: <rule> <line>:<col>` lines naming every finding.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playbookctl.lint.tekton.task import (
    check_task,
    check_task_spec,
    go_clean,
    go_duration,
    qualified_name_errors,
)
from playbookctl.load import load_file, load_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tekton" / "task"
_EXPECT = re.compile(r"# expect: (\S+) (\d+):(\d+)$")


def _fixtures(kind: str) -> list[Path]:
    return sorted((FIXTURES / kind).glob("*.yaml"))


def _findings(path: Path) -> list[tuple[str, int, int]]:
    loaded = load_file(path)
    assert not loaded.findings, loaded.findings
    (doc,) = loaded.documents
    return sorted((f.rule, f.line, f.column) for f in check_task(doc))


def _expected(path: Path) -> list[tuple[str, int, int]]:
    out = []
    for line in path.read_text().splitlines():
        m = _EXPECT.match(line)
        if m:
            out.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return sorted(out)


def test_fixture_corpus_is_large() -> None:
    assert len(_fixtures("valid")) >= 25
    assert len(_fixtures("invalid")) >= 60


@pytest.mark.parametrize("path", _fixtures("valid"), ids=lambda p: p.stem)
def test_valid_task_has_no_findings(path: Path) -> None:
    assert _findings(path) == []


@pytest.mark.parametrize("path", _fixtures("invalid"), ids=lambda p: p.stem)
def test_invalid_task_findings(path: Path) -> None:
    expected = _expected(path)
    assert expected, f"{path.name} names no expected finding"
    assert _findings(path) == expected


PIPELINE = """\
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: p
spec:
  params:
  - name: target
  - name: cfg
    type: object
    properties:
      ns: {}
  tasks:
  - name: t
    taskSpec:
      params:
      - name: local
      steps:
      - image: alpine
        args: {args}
"""


@pytest.mark.parametrize(
    ("args", "with_pipeline_params", "expected"),
    [
        # Pipeline params reach an embedded spec when the caller passes them.
        ('["$(params.target)", "$(params.local)"]', True, []),
        ('["$(params.cfg.ns)"]', True, []),
        ('["$(params.target)"]', False, [("tekton.param-reference", 19, 16)]),
        ('["$(params.nope)"]', True, [("tekton.param-reference", 19, 16)]),
        ('["$(params.cfg.zone)"]', True, [("tekton.param-reference", 19, 16)]),
        ('["$(params.cfg)"]', True, [("tekton.param-usage", 19, 16)]),
    ],
)
def test_embedded_task_spec_params(
    args: str, with_pipeline_params: bool, expected: list[tuple[str, int, int]]
) -> None:
    doc = load_text(PIPELINE.replace("{args}", args), "pipeline.yaml").documents[0]
    pparams = doc.get(("spec", "params")) if with_pipeline_params else None
    found = check_task_spec(
        doc, ("spec", "tasks", 0, "taskSpec"), api_version="tekton.dev/v1", pipeline_params=pparams
    )
    assert sorted((f.rule, f.line, f.column) for f in found) == expected


def test_embedded_task_spec_messages_name_the_embedded_path() -> None:
    doc = load_text(PIPELINE.replace("{args}", '["$(params.nope)"]'), "p.yaml").documents[0]
    (finding,) = check_task_spec(doc, ("spec", "tasks", 0, "taskSpec"), api_version="v1")
    assert finding.message == (
        'non-existent variable in "$(params.nope)": spec.tasks[0].taskSpec.steps[0].args[0]'
    )


def test_embedded_task_spec_without_steps() -> None:
    text = PIPELINE.replace("      steps:\n      - image: alpine\n        args: {args}\n", "")
    doc = load_text(text, "p.yaml").documents[0]
    found = check_task_spec(doc, ("spec", "tasks", 0, "taskSpec"), api_version="tekton.dev/v1")
    assert [(f.rule, f.message) for f in found] == [
        ("tekton.missing-steps", "missing field(s): spec.tasks[0].taskSpec.steps")
    ]


@pytest.mark.parametrize(
    "source",
    [
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec: [1, 2]\n",
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps: oops\n",
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps: [1, [2]]\n",
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: 5\nspec:\n  params: {a: b}\n",
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n"
        "  steps:\n  - image: 5\n    command: 7\n    env: {a: 1}\n    volumeMounts: [x]\n"
        "    ref: 3\n    results: [{name: 9}]\n    when: [1]\n  workspaces: [{name: [1]}]\n"
        "  results: [{name: r, type: 3, properties: 4}]\n  sidecars: [1]\n",
    ],
)
def test_malformed_shapes_give_findings_not_tracebacks(source: str) -> None:
    doc = load_text(source, "t.yaml").documents[0]
    found = check_task(doc)
    assert found
    assert all(f.rule.startswith("tekton.") for f in found)


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("/foo/", "/foo"),
        ("/workspace/a/../b", "/workspace/b"),
        ("//x//y/.", "/x/y"),
        ("", "."),
        ("a/..", "."),
        ("../a", "../a"),
        ("/..", "/"),
    ],
)
def test_go_clean(path: str, clean: str) -> None:
    assert go_clean(path) == clean


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (-10_000_000_000, "-10s"),
        (-90_000_000_000, "-1m30s"),
        (-3_600_000_000_000, "-1h0m0s"),
        (-1_500_000, "-1.5ms"),
        (-5, "-5ns"),
        (-1_500_000_000, "-1.5s"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_embedded_task_spec_accepts_params_as_mapping() -> None:
    doc = load_text(PIPELINE.replace("{args}", '["$(params.cfg.ns)"]'), "p.yaml").documents[0]
    by_name = {p["name"]: p for p in doc.get(("spec", "params"))}
    path = ("spec", "tasks", 0, "taskSpec")
    assert check_task_spec(doc, path, api_version="v1", pipeline_params=by_name) == []
    assert [f.rule for f in check_task_spec(doc, path, api_version="v1")] == [
        "tekton.param-reference"
    ]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("git-clone", 0),
        ("example.com/MyName", 0),
        ("my-actions/clone", 0),
        ("_foo", 1),
        ("/foo", 1),
        ("a/b/c", 1),
        ("Bad_Prefix/x", 1),
        ("x" * 64, 1),
    ],
)
def test_qualified_name_errors(name: str, count: int) -> None:
    assert len(qualified_name_errors(name)) == count


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # Workspaces may be propagated into an embedded spec: Tekton checks the variables of a
        # standalone Task only (tektoncd/pipeline#9707).
        ('["$(workspaces.undeclared.path)"]', []),
        ('["$(workspaces.undeclared.bogus)"]', []),
    ],
)
def test_embedded_task_spec_workspace_variables_unchecked(
    args: str, expected: list[tuple[str, int, int]]
) -> None:
    doc = load_text(PIPELINE.replace("{args}", args), "pipeline.yaml").documents[0]
    found = check_task_spec(doc, ("spec", "tasks", 0, "taskSpec"), api_version="tekton.dev/v1")
    assert sorted((f.rule, f.line, f.column) for f in found) == expected


@pytest.mark.parametrize(
    ("value", "rules"),
    [
        ("$(workspaces.src.path)", []),
        ("$(workspaces.src.bound) $(workspaces.src.claim) $(workspaces.src.volume)", []),
        ('$(workspaces["src"].path)', []),
        # v1.14 checks workspace variables of no Task (tektoncd/pipeline#9707 came later).
        ("$(workspaces.nope.path)", []),
        ("$(workspaces.src.mountPath)", []),
        ("$(workspaces.src-two.path)", []),
        ("$(workspace.src.path) $(inputs.workspaces.x)", []),
    ],
)
def test_standalone_task_workspace_variables(value: str, rules: list[str]) -> None:
    source = (
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n"
        "  workspaces: [{name: src}]\n  steps:\n  - image: alpine\n"
        f"    env: [{{name: A, value: '{value}'}}]\n"
    )
    doc = load_text(source, "task.yaml").documents[0]
    assert [f.rule for f in check_task(doc)] == rules
