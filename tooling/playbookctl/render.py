"""Render stage: the Tekton Pipeline a playbook's bundle holds.

An authored `pipeline.yaml` is taken as written; without one, the standard wrapper is generated
from `workflow.yaml`: one task, one step running the playbook's image, every workflow parameter
passed as an environment variable of the same name, `TARGET_RESOURCE` declared, a read-only
workspace per dependency and a non-root security context.

At lint time the image placeholder (`playbook://self`) stays; at publish time every step, sidecar
and stepTemplate image equal to the placeholder becomes the pushed `repo:tag@sha256:...`.

The result is a `Document` so that the Tekton and playbook rules can report positions: into
`pipeline.yaml` when authored, into the parts of `workflow.yaml` a wrapper field came from
otherwise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from playbookctl.config import Config
from playbookctl.errors import FatalError
from playbookctl.load import ClusterQuoting, Document, Position, YamlPath
from playbookctl.playbook import Playbook

TARGET_RESOURCE = "TARGET_RESOURCE"
PIPELINE_API_VERSION = "tekton.dev/v1"
PIPELINE_NAME = "workflow"
WRAPPER_TASK = "remediate"
SECRETS_MOUNT = "/run/kubernaut/secrets"
CONFIGMAPS_MOUNT = "/run/kubernaut/configmaps"
# What Kubernaut's pod template already demands, repeated on the step so the pipeline stands on
# its own (and passes restricted Pod Security wherever it runs).
NON_ROOT_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


class RenderError(FatalError):
    """The pipeline cannot be rendered (its pipeline.yaml did not load)."""


@dataclass
class RenderedPipeline:
    document: Document
    authored: bool

    @property
    def data(self) -> Any:
        return self.document.data

    @property
    def file(self) -> str:
        return self.document.file


def dependency_workspaces(pb: Playbook) -> list[tuple[str, str, str, int]]:
    """(workspace, mount path, dependency kind, index in its list) per dependency, secrets first."""
    deps = pb.spec.get("dependencies")
    out: list[tuple[str, str, str, int]] = []
    if not isinstance(deps, dict):
        return out
    seen: set[str] = set()
    for kind, prefix, mount in (
        ("secrets", "secret-", SECRETS_MOUNT),
        ("configMaps", "configmap-", CONFIGMAPS_MOUNT),
    ):
        items = deps.get(kind)
        for i, item in enumerate(items if isinstance(items, list) else []):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name:
                continue
            ws = prefix + name
            if ws not in seen:  # duplicates are a workflow.* finding; render each once
                seen.add(ws)
                out.append((ws, f"{mount}/{name}", kind, i))
    return out


def default_as_string(value: Any) -> str:
    """A schema default as the string Kubernaut would pass (JSON spelling for non-strings)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def iter_step_images(data: Any) -> Iterator[tuple[YamlPath, Any]]:
    """(path, image) of every step, sidecar and stepTemplate image of a Pipeline's inline tasks."""
    spec = data.get("spec") if isinstance(data, dict) else None
    if not isinstance(spec, dict):
        return
    for section in ("tasks", "finally"):
        tasks = spec.get(section)
        if not isinstance(tasks, list):
            continue
        for i, task in enumerate(tasks):
            ts = task.get("taskSpec") if isinstance(task, dict) else None
            if not isinstance(ts, dict):
                continue
            base: YamlPath = ("spec", section, i, "taskSpec")
            for kind in ("steps", "sidecars"):
                items = ts.get(kind)
                if isinstance(items, list):
                    for j, item in enumerate(items):
                        if isinstance(item, dict) and "image" in item:
                            yield (*base, kind, j, "image"), item["image"]
            tmpl = ts.get("stepTemplate")
            if isinstance(tmpl, dict) and "image" in tmpl:
                yield (*base, "stepTemplate", "image"), tmpl["image"]


def _set(data: Any, path: YamlPath, value: Any) -> None:
    cur = data
    for part in path[:-1]:
        cur = cur[part]
    cur[path[-1]] = value


def _pipeline_params(pb: Playbook) -> list[tuple[dict[str, Any], int]]:
    """The wrapper's params, each with the index of the workflow parameter it came from (-1)."""
    out: list[tuple[dict[str, Any], int]] = []
    seen: set[str] = set()
    raw = pb.spec.get("parameters")
    for i, p in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or p["name"] in seen:
            continue
        name = p["name"]
        seen.add(name)
        param: dict[str, Any] = {"name": name, "type": "string"}
        if isinstance(p.get("description"), str):
            param["description"] = p["description"]
        if p.get("required") is not True:
            # Nobody injects schema defaults: an optional parameter needs one here.
            param["default"] = default_as_string(p.get("default"))
        out.append((param, i))
    if TARGET_RESOURCE not in seen:
        out.append(
            (
                {
                    "name": TARGET_RESOURCE,
                    "type": "string",
                    "description": "The remediation target: namespace/kind/name, or kind/name "
                    "for cluster-scoped targets (supplied by Kubernaut).",
                },
                -1,
            )
        )
    return out


def standard_wrapper(pb: Playbook, image: str) -> tuple[dict[str, Any], dict[YamlPath, YamlPath]]:
    """The wrapper Pipeline, and for each of its paths the workflow.yaml path it derives from."""
    origin: dict[YamlPath, YamlPath] = {}
    params = _pipeline_params(pb)
    workspaces = dependency_workspaces(pb)
    task_base: YamlPath = ("spec", "tasks", 0)
    for k, (_, wf_index) in enumerate(params):
        if wf_index >= 0:
            wf_path: YamlPath = ("spec", "parameters", wf_index)
            origin[("spec", "params", k)] = wf_path
            origin[(*task_base, "params", k)] = wf_path
            origin[(*task_base, "taskSpec", "params", k)] = wf_path
            origin[(*task_base, "taskSpec", "steps", 0, "env", k)] = wf_path
    for k, (_, _, kind, dep_index) in enumerate(workspaces):
        dep_path: YamlPath = ("spec", "dependencies", kind, dep_index)
        origin[("spec", "workspaces", k)] = dep_path
        origin[(*task_base, "workspaces", k)] = dep_path
        origin[(*task_base, "taskSpec", "workspaces", k)] = dep_path
    origin[(*task_base, "taskSpec", "steps", 0)] = ("spec", "execution")

    step: dict[str, Any] = {
        "name": WRAPPER_TASK,
        "image": image,
        "env": [{"name": p["name"], "value": f"$(params.{p['name']})"} for p, _ in params],
        "securityContext": copy.deepcopy(NON_ROOT_SECURITY_CONTEXT),
    }
    task_spec: dict[str, Any] = {
        "params": [{"name": p["name"], "type": "string"} for p, _ in params],
    }
    task: dict[str, Any] = {
        "name": WRAPPER_TASK,
        "params": [{"name": p["name"], "value": f"$(params.{p['name']})"} for p, _ in params],
    }
    spec: dict[str, Any] = {"params": [p for p, _ in params]}
    if workspaces:
        spec["workspaces"] = [{"name": ws} for ws, _, _, _ in workspaces]
        task["workspaces"] = [{"name": ws, "workspace": ws} for ws, _, _, _ in workspaces]
        task_spec["workspaces"] = [
            {"name": ws, "mountPath": mount, "readOnly": True} for ws, mount, _, _ in workspaces
        ]
    task_spec["steps"] = [step]
    task["taskSpec"] = task_spec
    spec["tasks"] = [task]
    data: dict[str, Any] = {
        "apiVersion": PIPELINE_API_VERSION,
        "kind": "Pipeline",
        "metadata": {"name": PIPELINE_NAME},
        "spec": spec,
    }
    return data, origin


def _wrapper_document(
    pb: Playbook, data: dict[str, Any], origin: dict[YamlPath, YamlPath]
) -> Document:
    wf = pb.workflow
    file = wf.file if wf is not None else pb.rel(pb.workflow_path)
    start = wf.start if wf is not None else Position(1, 1)
    positions: dict[YamlPath, Position] = {(): start}
    if wf is not None:
        spec_pos = wf.positions.get(("spec",), start)
        positions[("spec",)] = spec_pos
        for path, source in origin.items():
            positions[path] = wf.pos(source)
    return Document(file=file, data=data, start=start, positions=positions)


def render_pipeline(pb: Playbook, config: Config, image: str | None = None) -> RenderedPipeline:
    """The Pipeline for pb; with image, every placeholder image is replaced by it."""
    target = image if image is not None else config.placeholder
    if pb.pipeline is not None:
        data = copy.deepcopy(pb.pipeline.data)
        if image is not None:
            for path, value in list(iter_step_images(data)):
                if value == config.placeholder:
                    _set(data, path, image)
        src = pb.pipeline
        doc = Document(
            file=src.file,
            data=data,
            index=src.index,
            start=src.start,
            positions=src.positions,
            key_positions=src.key_positions,
        )
        return RenderedPipeline(doc, authored=True)
    if pb.pipeline_path.is_file():
        raise RenderError(
            f"{pb.rel(pb.pipeline_path)}: cannot render, the file did not load "
            "(run playbookctl lint for the details)"
        )
    data, origin = standard_wrapper(pb, target)
    return RenderedPipeline(_wrapper_document(pb, data, origin), authored=False)


class _Dumper(ClusterQuoting, yaml.SafeDumper):
    """Block style, insertion order kept (our dicts are built in Kubernetes' customary order)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent sequences under their key, as kubectl and most authors write them.
        super().increase_indent(flow, False)


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def to_yaml(data: Any) -> str:
    """Deterministic YAML: key order as built, block style, literal blocks for multi-line text."""
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
    return text


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
