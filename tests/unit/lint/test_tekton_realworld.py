"""The tekton.* rules against published Tekton files (tests/fixtures/tekton/realworld).

- accepted/: Tasks and Pipelines Tekton v1.14 (default feature flags, enable-api-fields "beta")
  admits: tektoncd/pipeline's examples/v1 outside alpha/ (its e2e tests apply them) and catalog
  tasks. Every one must give no tekton.* finding at all: a false alarm counts as much as a miss.
- alpha/ and rejected/: files Tekton refuses with default flags (alpha features) or on the bundle
  path (strict decoding, removed fields). Each names the rules it must raise in an
  `# expect: rule, rule` header line, and must raise nothing else.

A PipelineRun's pipelineSpec or a TaskRun's taskSpec is checked as a Pipeline or Task of its own,
with the run's params and workspaces declared in it: Tekton propagates them into embedded specs,
so an embedded spec may use them without declaring them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from playbookctl.findings import Finding
from playbookctl.lint.tekton import check_document
from playbookctl.load import load_text

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "tekton" / "realworld"
ACCEPTED = sorted((ROOT / "accepted").glob("*.yaml"))
EXPECTING = sorted((ROOT / "alpha").glob("*.yaml")) + sorted((ROOT / "rejected").glob("*.yaml"))


def _value_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _with_propagated(run: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """spec with the run's params and workspaces declared (as Tekton propagates them)."""
    spec = dict(spec)
    run_spec = run.get("spec") or {}
    params = list(spec.get("params") or [])
    declared = {p.get("name") for p in params if isinstance(p, dict)}
    for p in run_spec.get("params") or []:
        if p.get("name") not in declared:
            decl: dict[str, Any] = {"name": p["name"], "type": _value_type(p.get("value"))}
            if isinstance(p.get("value"), dict):
                decl["properties"] = {k: {"type": "string"} for k in p["value"]}
            params.append(decl)
    if params:
        spec["params"] = params
    workspaces = list(spec.get("workspaces") or [])
    bound = {w.get("name") for w in workspaces if isinstance(w, dict)}
    for w in run_spec.get("workspaces") or []:
        if w.get("name") not in bound:
            workspaces.append({"name": w["name"]})
    if workspaces:
        spec["workspaces"] = workspaces
    return spec


def _embedded(data: dict[str, Any]) -> dict[str, Any] | None:
    """A PipelineRun's pipelineSpec or a TaskRun's taskSpec as a Pipeline or Task object."""
    kind = data.get("kind")
    key = {"PipelineRun": "pipelineSpec", "TaskRun": "taskSpec"}.get(str(kind))
    spec = (data.get("spec") or {}).get(key) if key else None
    if not isinstance(spec, dict):
        return None
    return {
        "apiVersion": data.get("apiVersion"),
        "kind": str(kind)[: -len("Run")],
        "metadata": {"name": "embedded"},
        "spec": _with_propagated(data, spec),
    }


def tekton_findings(text: str, file: str) -> Iterator[Finding]:
    """Every tekton.* finding for the Pipelines and Tasks in text, embedded specs included."""
    loaded = load_text(text, file)
    assert loaded.ok, [f.message for f in loaded.findings]
    for doc in loaded.documents:
        yield from check_document(doc)
        embedded = _embedded(doc.data) if isinstance(doc.data, dict) else None
        if embedded is not None:
            inner = load_text(yaml.safe_dump(embedded, sort_keys=False), f"{file}#embedded")
            for inner_doc in inner.documents:
                yield from check_document(inner_doc)


def _findings(path: Path) -> list[Finding]:
    return [f for f in tekton_findings(path.read_text(), path.name) if f.rule.startswith("tekton.")]


def _expected(path: Path) -> set[str]:
    for line in path.read_text().splitlines():
        if line.startswith("# expect:"):
            return {r.strip() for r in line.split(":", 1)[1].split(",") if r.strip()}
    raise AssertionError(f"{path.name} has no '# expect:' line")


def test_enough_real_world_files() -> None:
    assert len(ACCEPTED) + len(EXPECTING) >= 60
    for path in ACCEPTED + EXPECTING:
        assert path.read_text().startswith("# Source: "), path.name
        assert path.stat().st_size <= 30_000, path.name


@pytest.mark.parametrize("path", ACCEPTED, ids=lambda p: p.name)
def test_accepted_files_give_no_finding(path: Path) -> None:
    assert [(f.rule, f.line, f.message) for f in _findings(path)] == []


@pytest.mark.parametrize("path", EXPECTING, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_refused_files_give_exactly_the_expected_rules(path: Path) -> None:
    assert {f.rule for f in _findings(path)} == _expected(path)


# --- mutations: an accepted file made invalid must be caught ------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _tasks(d: dict[str, Any]) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = d["spec"]["tasks"]
    return tasks


def _steps(d: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = d["spec"]["steps"]
    return steps


def _dup_task(d: dict[str, Any]) -> None:
    _tasks(d)[1]["name"] = _tasks(d)[0]["name"]


def _missing_run_after(d: dict[str, Any]) -> None:
    _tasks(d)[1]["runAfter"] = ["no-such-task"]


def _undeclared_pipeline_param(d: dict[str, Any]) -> None:
    _tasks(d)[0]["params"][0]["value"] = "$(params.not-declared)"


def _bad_step_name(d: dict[str, Any]) -> None:
    _steps(d)[0]["name"] = "Bad_Step"


def _dup_step_name(d: dict[str, Any]) -> None:
    _steps(d).append(dict(_steps(d)[0]))


def _undeclared_task_param(d: dict[str, Any]) -> None:
    _steps(d)[0]["script"] += "\necho $(params.not-declared)\n"


def _result_of_unknown_task(d: dict[str, Any]) -> None:
    _tasks(d)[1]["params"][0]["value"] = "$(tasks.ghost.results.sum)"


def _cycle(d: dict[str, Any]) -> None:
    _tasks(d)[0]["runAfter"] = [_tasks(d)[1]["name"]]


def _unknown_field(d: dict[str, Any]) -> None:
    _tasks(d)[0]["runafter"] = []


def _bad_when_operator(d: dict[str, Any]) -> None:
    d["spec"]["tasks"][0]["when"] = [{"input": "a", "operator": "equals", "values": ["a"]}]


def _status_outside_finally(d: dict[str, Any]) -> None:
    _tasks(d)[1]["params"][0]["value"] = "$(tasks.status)"


def _array_in_string(d: dict[str, Any]) -> None:
    _steps(d)[0]["script"] = "aws $(params.ARGS[*])"


def _script_and_command(d: dict[str, Any]) -> None:
    _steps(d)[0]["command"] = ["sh"]


def _step_without_image(d: dict[str, Any]) -> None:
    del _steps(d)[0]["image"]


def _undeclared_result(d: dict[str, Any]) -> None:
    _steps(d)[0]["script"] += "\necho x > $(results.nope.path)\n"


def _finally_run_after(d: dict[str, Any]) -> None:
    d["spec"]["finally"][0]["runAfter"] = [_tasks(d)[0]["name"]]


def _pipeline_result_unknown_task(d: dict[str, Any]) -> None:
    d["spec"]["results"] = [{"name": "r", "value": "$(tasks.ghost.results.sum)"}]


def _unbound_workspace(d: dict[str, Any]) -> None:
    _tasks(d)[0]["workspaces"] = [{"name": "output", "workspace": "not-declared"}]


def _dup_pipeline_param(d: dict[str, Any]) -> None:
    d["spec"]["params"].append(dict(d["spec"]["params"][0]))


def _bad_default_type(d: dict[str, Any]) -> None:
    d["spec"]["params"][0]["default"] = ["not", "a", "string"]


def _task_name_not_dns(d: dict[str, Any]) -> None:
    _tasks(d)[0]["name"] = "Sum_Two"


MUTATIONS: list[tuple[str, Mutation, str]] = [
    ("pipeline-with-displayname.yaml", _dup_task, "tekton.duplicate-task"),
    ("pipeline-with-displayname.yaml", _missing_run_after, "tekton.run-after"),
    ("pipeline-with-displayname.yaml", _undeclared_pipeline_param, "tekton.param-reference"),
    ("pipeline-with-displayname.yaml", _result_of_unknown_task, "tekton.result-reference"),
    ("pipeline-with-displayname.yaml", _cycle, "tekton.cycle"),
    ("pipeline-with-displayname.yaml", _unknown_field, "tekton.unknown-field"),
    ("pipeline-with-displayname.yaml", _bad_when_operator, "tekton.when"),
    ("pipeline-with-displayname.yaml", _status_outside_finally, "tekton.execution-status"),
    ("pipeline-with-displayname.yaml", _finally_run_after, "tekton.finally"),
    ("pipeline-with-displayname.yaml", _pipeline_result_unknown_task, "tekton.pipeline-result"),
    ("pipeline-with-displayname.yaml", _dup_pipeline_param, "tekton.duplicate-param"),
    ("pipeline-with-displayname.yaml", _bad_default_type, "tekton.param-type"),
    ("pipeline-with-displayname.yaml", _task_name_not_dns, "tekton.name"),
    ("catalog-42crunch-pipeline.yaml", _unbound_workspace, "tekton.workspace"),
    ("catalog-buildah-0.1-v1beta1.yaml", _bad_step_name, "tekton.step-name"),
    ("catalog-buildah-0.1-v1beta1.yaml", _dup_step_name, "tekton.step-name"),
    ("catalog-buildah-0.1-v1beta1.yaml", _undeclared_task_param, "tekton.param-reference"),
    ("catalog-git-clone-0.10.yaml", _undeclared_result, "tekton.result-reference"),
    ("catalog-aws-cli-0.3.yaml", _array_in_string, "tekton.param-usage"),
    ("catalog-aws-cli-0.3.yaml", _script_and_command, "tekton.step-script"),
    ("catalog-aws-cli-0.3.yaml", _step_without_image, "tekton.step-image"),
]


def _first_object(path: Path, kind: str) -> dict[str, Any]:
    for data in yaml.safe_load_all(path.read_text()):
        if isinstance(data, dict) and data.get("kind") == kind:
            return data
    raise AssertionError(f"no {kind} in {path.name}")


@pytest.mark.parametrize(
    ("name", "mutate", "rule"), MUTATIONS, ids=[f"{n}-{m.__name__}" for n, m, _ in MUTATIONS]
)
def test_mutated_accepted_file_is_caught(name: str, mutate: Mutation, rule: str) -> None:
    path = ROOT / "accepted" / name
    kind = "Pipeline" if "pipeline" in name else "Task"
    data = _first_object(path, kind)
    assert [f.rule for f in tekton_findings(yaml.safe_dump(data), name)] == []
    mutate(data)
    rules = {f.rule for f in tekton_findings(yaml.safe_dump(data), name)}
    assert rule in rules, rules
