"""render: the standard wrapper from workflow.yaml, authored pipelines, image substitution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from playbookctl.config import load_config
from playbookctl.playbook import load_playbook
from playbookctl.render import (
    NON_ROOT_SECURITY_CONTEXT,
    RenderedPipeline,
    RenderError,
    default_as_string,
    render_pipeline,
    to_json,
    to_yaml,
)
from tests.support.lintrepo import DIGEST, good_playbook, make_repo

IMAGE = f"registry.example.com/images/demo:1.0.0@{DIGEST}"


def render(tmp_path: Path, files: dict[str, str], image: str | None = None) -> RenderedPipeline:
    root = make_repo(tmp_path / "repo", {"demo": dict(files)})
    config = load_config(root)
    pb = load_playbook(root / "playbooks" / "demo", root, config.max_file_bytes)
    return render_pipeline(pb, config, image=image)


def wrapper_files(parameters: str, dependencies: str = "") -> dict[str, str]:
    files = good_playbook("demo")
    wf = files["workflow.yaml"]
    head, _, _ = wf.partition("  dependencies:\n")
    files["workflow.yaml"] = head + dependencies + "  parameters:\n" + parameters
    return files


P_REQ = "    - {name: A, type: string, required: true, description: a}\n"
P_OPT_INT = "    - {name: B, type: integer, required: false, description: b, default: 5}\n"
P_OPT_NONE = "    - {name: C, type: string, required: false, description: c}\n"
P_OPT_BOOL = "    - {name: D, type: boolean, required: false, description: d, default: false}\n"
P_REQ_DEFAULT = "    - {name: E, type: string, required: true, description: e, default: x}\n"
P_TARGET = "    - {name: TARGET_RESOURCE, type: string, required: true, description: t}\n"
P_ARRAY = "    - {name: F, type: array, required: false, description: f, default: [a, b]}\n"


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (P_REQ, [("A", None)]),
        (P_OPT_INT, [("B", "5")]),
        (P_OPT_NONE, [("C", "")]),
        (P_OPT_BOOL, [("D", "false")]),
        # A required parameter is always supplied: no default, even when the schema has one.
        (P_REQ_DEFAULT, [("E", None)]),
        (P_ARRAY, [("F", '["a","b"]')]),
        (P_REQ + P_OPT_INT + P_OPT_NONE, [("A", None), ("B", "5"), ("C", "")]),
        # A duplicate is a workflow.* finding; the wrapper declares the name once.
        (P_REQ + P_REQ, [("A", None)]),
    ],
)
def test_wrapper_params(
    tmp_path: Path, parameters: str, expected: list[tuple[str, str | None]]
) -> None:
    r = render(tmp_path, wrapper_files(parameters))
    assert not r.authored
    params = r.data["spec"]["params"]
    got = [(p["name"], p.get("default")) for p in params]
    assert got == [*expected, ("TARGET_RESOURCE", None)]
    assert all(p["type"] == "string" for p in params)
    task = r.data["spec"]["tasks"][0]
    step = task["taskSpec"]["steps"][0]
    names = [n for n, _ in got]
    assert [e["name"] for e in step["env"]] == names
    assert all(e["value"] == f"$(params.{e['name']})" for e in step["env"])
    assert [p["name"] for p in task["params"]] == names
    assert [p["name"] for p in task["taskSpec"]["params"]] == names


def test_target_resource_declared_by_workflow_is_not_repeated(tmp_path: Path) -> None:
    r = render(tmp_path, wrapper_files(P_REQ + P_TARGET))
    assert [p["name"] for p in r.data["spec"]["params"]] == ["A", "TARGET_RESOURCE"]


@pytest.mark.parametrize(
    ("dependencies", "expected"),
    [
        ("", []),
        (
            "  dependencies:\n    secrets:\n      - name: creds\n",
            [("secret-creds", "/run/kubernaut/secrets/creds")],
        ),
        (
            "  dependencies:\n    configMaps:\n      - name: policy\n    secrets:\n"
            "      - name: a\n      - name: b\n",
            [
                ("secret-a", "/run/kubernaut/secrets/a"),
                ("secret-b", "/run/kubernaut/secrets/b"),
                ("configmap-policy", "/run/kubernaut/configmaps/policy"),
            ],
        ),
    ],
)
def test_wrapper_workspaces(
    tmp_path: Path, dependencies: str, expected: list[tuple[str, str]]
) -> None:
    r = render(tmp_path, wrapper_files(P_REQ, dependencies))
    spec = r.data["spec"]
    task = spec["tasks"][0]
    if not expected:
        assert "workspaces" not in spec
        assert "workspaces" not in task
        return
    assert [w["name"] for w in spec["workspaces"]] == [n for n, _ in expected]
    assert task["workspaces"] == [{"name": n, "workspace": n} for n, _ in expected]
    assert task["taskSpec"]["workspaces"] == [
        {"name": n, "mountPath": m, "readOnly": True} for n, m in expected
    ]


def test_wrapper_identity_image_and_security(tmp_path: Path) -> None:
    r = render(tmp_path, good_playbook("demo"))
    assert r.data["apiVersion"] == "tekton.dev/v1"
    assert r.data["kind"] == "Pipeline"
    assert r.data["metadata"] == {"name": "workflow"}
    step = r.data["spec"]["tasks"][0]["taskSpec"]["steps"][0]
    assert step["image"] == "playbook://self"
    assert step["securityContext"] == NON_ROOT_SECURITY_CONTEXT
    published = render(tmp_path / "again", good_playbook("demo"), image=IMAGE)
    assert published.data["spec"]["tasks"][0]["taskSpec"]["steps"][0]["image"] == IMAGE


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("spec", "params", 0), 24),  # TARGET_RESOURCE_NAME in workflow.yaml
        (("spec", "params", 1, "default"), 28),  # TIMEOUT_SECONDS
        (("spec", "workspaces", 0), 22),  # secrets: - name: creds
        (("spec", "tasks", 0, "taskSpec", "steps", 0, "image"), 18),  # spec.execution
        (("metadata", "name"), 1),
    ],
)
def test_wrapper_positions_point_into_workflow(
    tmp_path: Path, path: tuple[str | int, ...], line: int
) -> None:
    r = render(tmp_path, good_playbook("demo"))
    assert r.file == "playbooks/demo/workflow.yaml"
    assert r.document.pos(path).line == line


def test_authored_pipeline_keeps_positions_and_replaces_only_the_placeholder(
    tmp_path: Path,
) -> None:
    files = good_playbook("demo", pipeline=True)
    files["pipeline.yaml"] += (
        "    - name: notify\n      runAfter: [verify]\n      taskSpec:\n"
        "        stepTemplate:\n          image: playbook://self\n"
        "        sidecars:\n          - name: side\n            image: playbook://self\n"
        "        steps:\n          - name: other\n"
        f"            image: reg.example.com/x:1@{DIGEST}\n"
    )
    lint_time = render(tmp_path, files)
    assert lint_time.authored
    assert lint_time.file == "playbooks/demo/pipeline.yaml"
    assert lint_time.document.pos(("spec", "tasks", 0, "name")).line == 17
    published = render(tmp_path / "pub", files, image=IMAGE)
    tasks = published.data["spec"]["tasks"]
    assert tasks[0]["taskSpec"]["steps"][0]["image"] == IMAGE
    assert tasks[1]["taskSpec"]["steps"][0]["image"] == IMAGE
    assert tasks[2]["taskSpec"]["stepTemplate"]["image"] == IMAGE
    assert tasks[2]["taskSpec"]["sidecars"][0]["image"] == IMAGE
    assert tasks[2]["taskSpec"]["steps"][0]["image"] == f"reg.example.com/x:1@{DIGEST}"
    # Rendering never changes the playbook's own document.
    assert lint_time.data["spec"]["tasks"][0]["taskSpec"]["steps"][0]["image"] == "playbook://self"


def test_unloadable_pipeline_is_a_render_error(tmp_path: Path) -> None:
    files = good_playbook("demo")
    files["pipeline.yaml"] = "spec: [unclosed\n"
    with pytest.raises(RenderError, match=r"pipeline\.yaml"):
        render(tmp_path, files)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("x", "x"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (1.5, "1.5"),
        ([1, "a"], '[1,"a"]'),
        ({"b": 1, "a": 2}, '{"a":2,"b":1}'),
    ],
)
def test_default_as_string(value: Any, expected: str) -> None:
    assert default_as_string(value) == expected


def test_output_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    files = good_playbook("demo", pipeline=True)
    first = to_yaml(render(tmp_path / "a", files).data)
    second = to_yaml(render(tmp_path / "b", files).data)
    assert first == second
    assert yaml.safe_load(first) == render(tmp_path / "c", files).data
    # Multi-line scripts stay readable literal blocks.
    assert "script: |" in first
    wrapper = to_yaml(render(tmp_path / "d", good_playbook("demo")).data)
    assert wrapper.splitlines()[:4] == [
        "apiVersion: tekton.dev/v1",
        "kind: Pipeline",
        "metadata:",
        "  name: workflow",
    ]
    assert (
        yaml.safe_load(to_json(render(tmp_path / "e", good_playbook("demo")).data))["kind"]
        == "Pipeline"
    )
