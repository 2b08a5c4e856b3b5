"""The PipelineRun Kubernaut creates for a registered workflow (contract section 1).

An operator runs a playbook by hand exactly as Kubernaut would (`BuildPipelineRun`,
pkg/workflowexecution/executor/tekton.go; the values are in playbookctl/references/kubernaut.json,
see playbookctl.contract): the registered bundle through the bundles resolver (`name=workflow`,
`kind=pipeline`), every supplied parameter as a string plus TARGET_RESOURCE, one workspace per
dependency, the workflow's service account and a non-root pod template; named
`wfe-<first 16 hex of sha256(TARGET_RESOURCE)>` (Kubernaut's per-target lock: while this run
exists, Kubernaut cannot start a remediation of the same target, and the reverse) and labelled
and annotated as Kubernaut labels its runs. Values are checked against the workflow's parameter
schema first, and every bad value is reported at once.

Two labels name Kubernaut objects a manual run does not have: `kubernaut.ai/workflow-execution`
(Kubernaut's WorkflowExecution, `we-<RemediationRequest>`; default `manual`, which no
WorkflowExecution is ever called, so Kubernaut neither adopts nor deletes the run) and
`kubernaut.ai/workflow-id` (the registration's status.workflowId, a UUID Kubernaut's webhook
computes; default: the workflow's name).

Like Kubernaut, we do not inject schema defaults: a parameter left out takes the Pipeline's own
default (the playbook.* lint rules make sure every optional parameter has one).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from playbookctl import contract
from playbookctl.config import Config
from playbookctl.errors import FatalError, UsageError
from playbookctl.findings import Severity
from playbookctl.lint import re2
from playbookctl.load import load_file
from playbookctl.register import check_registration, workflow_documents

TARGET_PARAM = contract.run_parameter()
# Parameters Kubernaut's agent fills in from the target; we do the same from --target
# (TARGET_RESOURCE_API_VERSION too is filled by the agent, when it knows it: --param here).
_PART_INDEX = {"namespace": 0, "kind": 1, "name": 2}
TARGET_PARTS = {p.name: _PART_INDEX[p.part] for p in contract.filled_parameters() if p.always}
PIPELINE_NAME = "workflow"
MANUAL_EXECUTION = "manual"  # never a WorkflowExecution's name (Kubernaut's are we-<rr>)
_INT_RE = re.compile(r"^[-+]?[0-9]+$")
_BOOLEANS = ("true", "false")


@dataclass(frozen=True)
class Registered:
    """A registered workflow: the file it came from and its RemediationWorkflow."""

    name: str
    file: str
    workflow: dict[str, Any]

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.workflow.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def parameters(self) -> list[dict[str, Any]]:
        params = self.spec.get("parameters")
        return [p for p in params if isinstance(p, dict)] if isinstance(params, list) else []

    @property
    def execution(self) -> dict[str, Any]:
        ex = self.spec.get("execution")
        return ex if isinstance(ex, dict) else {}


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """--param KEY=VALUE flags into a mapping; a malformed or repeated key is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
        if key in out:
            raise UsageError(f"--param {key} given twice")
        out[key] = value
    return out


def load_registered(config: Config, name: str) -> Registered:
    """The RemediationWorkflow of registry/workflows/NAME.yaml, checked as a registration."""
    path = config.registry_dir / "workflows" / f"{name}.yaml"
    display = f"registry/workflows/{name}.yaml"
    if not path.is_file():
        base = path.parent
        known = sorted(p.stem for p in base.glob("*.yaml")) if base.is_dir() else []
        raise FatalError(
            f"{name} is not registered: no {display} "
            f"(registered: {', '.join(known) or 'none'}; `playbookctl release` registers; "
            f"for a playbook tried in the dev environment: pipelinerun {name} --tried)"
        )
    loaded = load_file(path, display, config.max_file_bytes)
    docs = workflow_documents(loaded)
    if not docs and not any(f.severity is Severity.ERROR for f in loaded.findings):
        raise FatalError(f"{display} holds no RemediationWorkflow")
    check_registration(
        config,
        name,
        loaded,
        docs[:1],
        None,
        prefix=f"{display} is not a valid registration",
        more_hint="; run playbookctl lint",
    )
    return Registered(name, display, docs[0].data)


def parse_target(target: str) -> tuple[str, str, str]:
    """NS/KIND/NAME or KIND/NAME (cluster-scoped) into (namespace, kind, name)."""
    parts = target.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(
            f"--target {target!r}: expected NAMESPACE/KIND/NAME, or KIND/NAME for a "
            "cluster-scoped resource"
        )
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return parts[0], parts[1], parts[2]


def _value_problem(p: Mapping[str, Any], value: str) -> str | None:
    """Why a string value does not satisfy parameter p's declaration, or None."""
    ptype = p.get("type")
    number: float | None = None
    if ptype == "integer":
        if not _INT_RE.match(value):
            return f"{value!r} is not an integer"
        number = int(value)
    elif ptype == "float":
        try:
            number = float(value)
        except ValueError:
            return f"{value!r} is not a number"
        if not math.isfinite(number):
            return f"{value!r} is not a finite number"
    elif ptype == "boolean":
        if value not in _BOOLEANS:
            return f"{value!r} is not a boolean (true or false)"
    elif ptype == "array":
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if not isinstance(items, list):
            return f'{value!r} is not an array (give a JSON list, e.g. ["a","b"])'
    elif ptype == "string":
        enum = p.get("enum")
        if isinstance(enum, list) and enum and value not in enum:
            return f"{value!r} is not one of {', '.join(str(e) for e in enum)}"
        pattern = p.get("pattern")
        if isinstance(pattern, str):
            compiled = re2.check(pattern).compiled
            if compiled is not None and not compiled.search(value):
                return f"{value!r} does not match the pattern {pattern!r}"
    if number is not None:
        lo, hi = p.get("minimum"), p.get("maximum")
        if isinstance(lo, int | float) and not isinstance(lo, bool) and number < lo:
            return f"{value} is below the minimum {lo}"
        if isinstance(hi, int | float) and not isinstance(hi, bool) and number > hi:
            return f"{value} is above the maximum {hi}"
    return None


def check_values(
    parameters: Sequence[Mapping[str, Any]],
    values: Mapping[str, str],
    *,
    missing_ok: bool = False,
    unchecked: frozenset[str] = frozenset(),
) -> list[str]:
    """Every problem with the values against the parameter schema (empty: all good);
    `missing_ok`: a required parameter left out is not one (a template with placeholders);
    `unchecked`: values the agent fills in without validating them (kaManagedParams)."""
    problems: list[str] = []
    declared = {p["name"]: p for p in parameters if isinstance(p.get("name"), str)}
    for key in values:
        if key not in declared and key != TARGET_PARAM:
            problems.append(
                f"{key}: not a parameter of this workflow (declared: {', '.join(declared)})"
            )
    for name, p in declared.items():
        if name not in values:
            if p.get("required") is True and not missing_ok:
                problems.append(f"{name}: required, but not given")
            continue
        problem = None if name in unchecked else _value_problem(p, values[name])
        if problem:
            problems.append(f"{name}: {problem}")
        # Kubernaut's agent: a dependency is satisfied only by being present in the
        # parameters, never by its default (validateDependsOn, parser/validator.go).
        deps = p.get("dependsOn")
        for dep in deps if isinstance(deps, list) else []:
            if dep not in values:
                problems.append(
                    f"{name}: depends on {dep}, which is not given (Kubernaut counts only a "
                    "given value, not a default)"
                )
    return problems


def _workspace(key: str, name: str) -> dict[str, Any]:
    """The PipelineRun workspace binding for one dependency (secret-<n> / configmap-<n>)."""
    if key == "secrets":
        return {"name": f"secret-{name}", "secret": {"secretName": name}}
    return {"name": f"configmap-{name}", "configMap": {"name": name}}


@dataclass(frozen=True)
class RunLabels:
    """What Kubernaut's labels name that a manual run has no object for."""

    workflow_execution: str = MANUAL_EXECUTION
    workflow_id: str | None = None  # None: the workflow's name


def run_metadata(config: Config, reg: Registered, target: str, run: RunLabels) -> dict[str, Any]:
    """BuildPipelineRun's ObjectMeta: name, namespace, labels, annotation (values checked)."""
    labels, annotations = contract.label_keys(), contract.annotation_keys()
    if target == placeholder(TARGET_PARAM):
        name = "wfe-<first 16 hex of sha256(TARGET_RESOURCE)>"
        target_label = placeholder(TARGET_PARAM)
    else:
        name = contract.pipelinerun_name(target)
        target_label = contract.target_label_value(target)
    return {
        "name": name,
        "namespace": config.run_namespace,
        "labels": {
            labels["workflowExecution"]: run.workflow_execution,
            labels["workflowId"]: run.workflow_id if run.workflow_id is not None else reg.name,
            labels["targetResource"]: target_label,
            # the WorkflowExecution's namespace: that of its RemediationRequest, which
            # Kubernaut's gateway creates in its own namespace, the workflows' one
            labels["sourceNamespace"]: config.workflow_namespace,
        },
        "annotations": {annotations["targetResource"]: target},
    }


def label_problems(config: Config, reg: Registered, target: str, run: RunLabels) -> list[str]:
    """Label values the API server would refuse, each said with why."""
    if target == placeholder(TARGET_PARAM):
        return []
    problems = []
    meta = run_metadata(config, reg, target, run)
    for key, value in meta["labels"].items():
        problem = contract.label_value_problem(value)
        if problem is None:
            continue
        if key == contract.label_keys()["targetResource"]:
            problems.append(
                f"--target {target!r}: Kubernaut's label {key}={value!r} (every / as __, cut at "
                f"63 bytes, nothing trimmed: sanitizeLabelValue) is not a valid label value "
                f"({problem}); the API server refuses the PipelineRun Kubernaut itself would "
                "create for this target"
            )
        else:
            problems.append(f"label {key}={value!r}: {problem}")
    return problems


def build_pipelinerun(
    config: Config,
    reg: Registered,
    values: Mapping[str, str],
    target: str,
    run: RunLabels | None = None,
) -> dict[str, Any]:
    """The PipelineRun document (values already checked)."""
    declared = [p["name"] for p in reg.parameters if isinstance(p.get("name"), str)]
    params = [{"name": n, "value": values[n]} for n in declared if n in values]
    params.append({"name": TARGET_PARAM, "value": target})
    workspaces: list[dict[str, Any]] = []
    deps = reg.spec.get("dependencies")
    deps = deps if isinstance(deps, dict) else {}
    for key in ("secrets", "configMaps"):
        items = deps.get(key)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                workspaces.append(_workspace(key, item["name"]))
    task_run_template: dict[str, Any] = {}
    sa = reg.execution.get("serviceAccountName")
    if isinstance(sa, str) and sa:
        task_run_template["serviceAccountName"] = sa
    task_run_template["podTemplate"] = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    }
    spec: dict[str, Any] = {
        "pipelineRef": {
            "resolver": "bundles",
            "params": [
                {"name": "bundle", "value": reg.execution["bundle"]},
                {"name": "name", "value": PIPELINE_NAME},
                {"name": "kind", "value": "pipeline"},
            ],
        },
        "params": params,
    }
    if workspaces:
        spec["workspaces"] = workspaces
    spec["taskRunTemplate"] = task_run_template
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": run_metadata(config, reg, target, run or RunLabels()),
        "spec": spec,
    }


def tried_workflow(config: Config, name: str, bundle: str) -> Registered:
    """The working tree's workflow of playbook NAME run from `bundle` (what `try` published),
    as if registered: not in registry/, so nothing but `try` and `pipelinerun --tried` see it."""
    path = config.playbooks_dir / name / "workflow.yaml"
    display = f"playbooks/{name}/workflow.yaml"
    if not path.is_file():
        raise FatalError(f"no playbook {name}: {display} does not exist")
    loaded = load_file(path, display, config.max_file_bytes)
    docs = workflow_documents(loaded)
    if not docs or not isinstance(docs[0].data.get("spec"), dict):
        raise FatalError(f"{display} holds no RemediationWorkflow; run playbookctl lint")
    workflow = json.loads(json.dumps(docs[0].data))  # a copy: the bundle goes into it
    execution = workflow["spec"].get("execution")
    if not isinstance(execution, dict):
        execution = workflow["spec"]["execution"] = {}
    execution["bundle"] = bundle
    return Registered(name, display, workflow)


def placeholder(name: str) -> str:
    """What a value nobody gave looks like in a PipelineRun template (`try` without values)."""
    return f"<{name}>"


def pipelinerun(
    config: Config,
    name: str,
    values: Mapping[str, str],
    target: str | None,
    *,
    registered: Registered | None = None,
    placeholders: bool = False,
    run: RunLabels | None = None,
) -> dict[str, Any]:
    """Check the values and build the PipelineRun for registered workflow NAME (or for
    `registered`, a tried one).

    Raises FatalError listing every bad value; the target parameters Kubernaut's agent fills in
    (TARGET_RESOURCE_NAMESPACE/KIND/NAME) are taken from --target when declared and not given;
    a cluster-scoped target's TARGET_RESOURCE_NAMESPACE is the empty string, as Kubernaut's.
    With `placeholders`, a missing target or required value becomes `<NAME>` (a template to
    fill in) instead of an error; values that are given are still checked.
    """
    reg = registered if registered is not None else load_registered(config, name)
    values = dict(values)
    declared = {p.get("name") for p in reg.parameters}
    problems: list[str] = []
    if TARGET_PARAM in values:
        problems.append(f"{TARGET_PARAM}: give it as --target, not --param")
    if target is None:
        kind, res = values.get("TARGET_RESOURCE_KIND"), values.get("TARGET_RESOURCE_NAME")
        if kind and res:
            ns = values.get("TARGET_RESOURCE_NAMESPACE", "")
            target = f"{ns}/{kind}/{res}" if ns else f"{kind}/{res}"
        elif placeholders:
            target = placeholder(TARGET_PARAM)
        else:
            problems.append(
                "--target NAMESPACE/KIND/NAME (or KIND/NAME) is required: Kubernaut always "
                f"passes {TARGET_PARAM}"
            )
    unchecked: dict[str, str] = {}  # filled by the agent, which does not validate them
    if target is not None and target != placeholder(TARGET_PARAM):
        parts = parse_target(target)
        for param, index in TARGET_PARTS.items():
            if param not in declared:
                continue
            if param not in values:
                if parts[index]:
                    values[param] = parts[index]
                else:
                    unchecked[param] = ""  # InjectTargetResourceParameters sets it, empty
            elif values[param] != parts[index]:
                problems.append(
                    f"{param}: {values[param]!r} contradicts --target ({parts[index]!r})"
                )
    values.update(unchecked)
    problems += check_values(
        reg.parameters, values, missing_ok=placeholders, unchecked=frozenset(unchecked)
    )
    if placeholders:
        for p in reg.parameters:
            pname = p.get("name")
            if isinstance(pname, str) and p.get("required") is True and pname not in values:
                values[pname] = placeholder(pname)
    if problems:
        raise FatalError(
            f"cannot run {name} {reg.spec.get('version', '')}: {len(problems)} bad value(s):\n  "
            + "\n  ".join(problems)
        )
    if target is None:  # pragma: no cover - reported as a problem above
        raise FatalError("--target is required")
    run = run or RunLabels()
    bad_labels = label_problems(config, reg, target, run)
    if bad_labels:
        raise FatalError(f"cannot run {name}: " + "; ".join(bad_labels))
    return build_pipelinerun(config, reg, values, target, run)
