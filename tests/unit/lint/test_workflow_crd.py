"""Our RemediationWorkflow/ActionType schemas against Kubernaut's own CRDs.

The CRDs' openAPIV3Schema, made strict the way the API server decodes (unknown fields are
errors unless x-kubernetes-preserve-unknown-fields), is the reference: whatever it accepts our
schema and rules accept too, whatever it rejects we reject too. Where we are stricter, the case
is listed with the contract sentence that says so.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from playbookctl.findings import Severity
from playbookctl.lint.action_type import check_action_type
from playbookctl.lint.schema import validator
from playbookctl.lint.workflow import check_workflow
from playbookctl.load import Document, load_text
from playbookctl.render import to_yaml

BUNDLE = "ghcr.io/acme/bundles/restart:1.0.0@sha256:" + "c" * 64


def _reference(repo_root: Path) -> Path:
    # vendored from jordigilh/kubernaut, see tests/references/kubernaut-crds/PROVENANCE.json
    return repo_root / "tests" / "references" / "kubernaut-crds"


def _strict(schema: Any) -> Any:
    """openAPIV3Schema -> JSON Schema with the API server's strict decoding."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _strict(v)
        for k, v in schema.items()
        if not k.startswith("x-kubernetes-") and k != "description"
    }
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    if "properties" in out:
        # descriptions named "description" are properties here, not annotations: keep them
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
    return out


def _crd_validator(repo_root: Path, name: str) -> Draft202012Validator:
    crd = yaml.safe_load((_reference(repo_root) / name).read_text())
    (version,) = crd["spec"]["versions"]
    return Draft202012Validator(_strict(version["schema"]["openAPIV3Schema"]))


def _base() -> dict[str, Any]:
    return {
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "RemediationWorkflow",
        "metadata": {"name": "restart", "namespace": "kubernaut-system"},
        "spec": {
            "version": "1.0.0",
            "description": {"what": "Restarts", "whenToUse": "Wedged"},
            "actionType": "RestartDeployment",
            "labels": {
                "severity": ["critical"],
                "environment": ["*"],
                "component": ["apps/v1/Deployment"],
                "priority": "P1",
            },
            "execution": {"engine": "tekton", "bundle": BUNDLE},
            "parameters": [
                {
                    "name": "TARGET_RESOURCE_NAME",
                    "type": "string",
                    "required": True,
                    "description": "name",
                }
            ],
        },
    }


def _with(path: str, value: Any) -> dict[str, Any]:
    """The base workflow with one dotted path set (value ... deletes it)."""
    doc = _base()
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    cur: Any = doc
    for p in parents:
        cur = cur[p]
    if value is ...:
        del cur[last]
    else:
        cur[last] = value
    return doc


PARAM = {"name": "LIMIT", "type": "integer", "required": False, "description": "d"}

VALID = [
    ("base", _base()),
    (
        "full",
        _with(
            "spec",
            {
                **_base()["spec"],
                "version": "2.10.3-rc.1",
                "description": {
                    "what": "a",
                    "whenToUse": "b",
                    "whenNotToUse": "c",
                    "preconditions": "d",
                },
                "maintainers": [{"name": "Ops", "email": "ops@example.com"}],
                "labels": {
                    "severity": ["critical", "high", "warning", "info"],
                    "environment": ["prod"],
                    "component": ["v1/Pod", "*", "apps/v1/StatefulSet"],
                    "priority": "*",
                    "cluster": ["edge"],
                },
                "customLabels": {"team": "sre"},
                "detectedLabels": {
                    "gitOpsManaged": True,
                    "gitOpsTool": "argocd",
                    "serviceMesh": "istio",
                    "storageBackend": "odf-ceph",
                    "hpaEnabled": True,
                    "cdiManaged": True,
                },
                "execution": {
                    "engine": "tekton",
                    "bundle": BUNDLE,
                    "bundleDigest": "sha256:" + "c" * 64,
                    "serviceAccountName": "restart-sa",
                    "engineConfig": {"timeout": "5m"},
                },
                "dependencies": {"secrets": [{"name": "token"}], "configMaps": [{"name": "cfg"}]},
                "parameters": [
                    {
                        "name": "TARGET_RESOURCE_NAME",
                        "type": "string",
                        "required": True,
                        "description": "n",
                        "pattern": "^[a-z0-9-]+$",
                        "default": "web",
                    },
                    {
                        **PARAM,
                        "minimum": 1,
                        "maximum": 10,
                        "default": 3,
                        "dependsOn": ["TARGET_RESOURCE_NAME"],
                    },
                    {
                        "name": "RATIO",
                        "type": "float",
                        "required": False,
                        "description": "r",
                        "minimum": 0.5,
                        "maximum": 1.5,
                        "default": 1,
                    },
                    {
                        "name": "FORCE",
                        "type": "boolean",
                        "required": False,
                        "description": "f",
                        "default": False,
                    },
                    {
                        "name": "NODES",
                        "type": "array",
                        "required": False,
                        "description": "l",
                        "default": ["a"],
                    },
                    {
                        "name": "MODE",
                        "type": "string",
                        "required": False,
                        "description": "m",
                        "enum": ["a", "b"],
                        "default": "b",
                    },
                ],
                "rollbackParameters": [
                    {"name": "REVISION", "type": "string", "required": False, "description": "r"}
                ],
            },
        ),
    ),
    ("no namespace", _with("metadata.namespace", ...)),
    ("cluster-scoped component", _with("spec.labels.component", ["v1/Node"])),
]

# (id, document): the CRD rejects these, and so must we.
INVALID = [
    ("missing version", _with("spec.version", ...)),
    ("version with v", _with("spec.version", "v1.0.0")),
    ("version too long", _with("spec.version", "1.0.0-" + "a" * 45)),
    ("version a number", _with("spec.version", 1.2)),
    ("missing description.what", _with("spec.description", {"whenToUse": "x"})),
    ("actionType snake", _with("spec.actionType", "restart_pod")),
    (
        "missing labels.priority",
        _with(
            "spec.labels", {"severity": ["critical"], "environment": ["*"], "component": ["v1/Pod"]}
        ),
    ),
    ("severity empty", _with("spec.labels.severity", [])),
    ("environment empty", _with("spec.labels.environment", [])),
    ("component empty", _with("spec.labels.component", [])),
    ("parameters empty", _with("spec.parameters", [])),
    ("parameters missing", _with("spec.parameters", ...)),
    ("parameter type", _with("spec.parameters.0.type", "int")),
    ("parameter without description", _with("spec.parameters.0.description", ...)),
    ("parameter required a string", _with("spec.parameters.0.required", "yes")),
    ("parameter enum of numbers", _with("spec.parameters.0.enum", [1, 2])),
    ("parameter minimum a string", _with("spec.parameters", [{**PARAM, "minimum": "1"}])),
    ("parameter unknown field", _with("spec.parameters.0.secret", True)),
    (
        "rollback parameter missing type",
        _with("spec.rollbackParameters", [{"name": "A", "required": False, "description": "d"}]),
    ),
    ("engine argo", _with("spec.execution.engine", "argo")),
    ("execution resources", _with("spec.execution.resources", {"cpu": "1"})),
    ("maintainer email", _with("spec.maintainers", [{"name": "a", "email": "nobody"}])),
    ("maintainer without name", _with("spec.maintainers", [{"email": "a@b.co"}])),
    ("dependency without name", _with("spec.dependencies", {"secrets": [{}]})),
    ("customLabels value a number", _with("spec.customLabels", {"a": 1})),
    ("unknown spec field", _with("spec.owner", "me")),
    ("unknown top-level field", _with("extra", 1)),
    ("execution missing", _with("spec.execution", ...)),
]

# (id, document, contract reason): the CRD accepts these; the contract says they are wrong.
STRICTER = [
    (
        "version build metadata",
        _with("spec.version", "2.10.3-rc.1+build.7"),
        "the version is the image and bundle tag; an OCI tag cannot contain '+'",
    ),
    (
        "status present",
        _with("status", {"catalogStatus": "Active"}),
        "the webhook writes status; manifests never carry status",
    ),
    (
        "severity value",
        _with("spec.labels.severity", ["urgent"]),
        "severity: each in critical, high, warning, info, *",
    ),
    ("priority value", _with("spec.labels.priority", "P9"), "priority: P0, P1, P2, P3 or *"),
    (
        "component kind lower-case",
        _with("spec.labels.component", ["apps/v1/deployment"]),
        "component: a GVK, Kind capitalised",
    ),
    (
        "detected label unknown",
        _with("spec.detectedLabels", {"cloud": "aws"}),
        "detectedLabels: only known keys",
    ),
    (
        "detected label false",
        _with("spec.detectedLabels", {"stateful": False}),
        "false is what absent means to Kubernaut's Go bool: misleading, so refused",
    ),
    (
        "detected label a string",
        _with("spec.detectedLabels", {"hpaEnabled": "true"}),
        "Kubernaut's agent json.Unmarshals detectedLabels into Go bools: a string fails and "
        "aborts its whole catalog listing (cache_convert.go @ d5a4a870)",
    ),
    (
        "engine missing",
        _with("spec.execution.engine", ...),
        "the CRD leaves it optional, but Kubernaut's orchestrator refuses a workflow without "
        "it (selectedWorkflow.executionEngine is required, creator/workflowexecution.go)",
    ),
    (
        "bundle tag only",
        _with("spec.execution.bundle", "ghcr.io/a/b:1.0.0"),
        "the bundle must be digest-pinned (Kubernaut issue #89)",
    ),
    ("engine job", _with("spec.execution.engine", "job"), "this repository's engine is tekton"),
    (
        "duplicate dependency",
        _with("spec.dependencies", {"secrets": [{"name": "a"}, {"name": "a"}]}),
        "dependency names unique per list",
    ),
    (
        "empty dependency name",
        _with("spec.dependencies", {"configMaps": [{"name": ""}]}),
        "dependency names non-empty",
    ),
    (
        "parameter name case",
        _with("spec.parameters.0.name", "targetName"),
        "parameter names in UPPER_SNAKE_CASE (DD-WORKFLOW-003)",
    ),
    (
        "enum on integer",
        _with("spec.parameters", [{**PARAM, "enum": ["1"]}]),
        "enum/pattern only on strings",
    ),
    (
        "minimum above maximum",
        _with("spec.parameters", [{**PARAM, "minimum": 5, "maximum": 1}]),
        "min <= max",
    ),
    (
        "default outside range",
        _with("spec.parameters", [{**PARAM, "maximum": 5, "default": 9}]),
        "a default must satisfy its own type",
    ),
    ("pattern with lookahead", _with("spec.parameters.0.pattern", "(?=a)"), "pattern: RE2"),
    ("pattern too long", _with("spec.parameters.0.pattern", "a" * 1025), "at most 1024 chars"),
    (
        "dependsOn undeclared",
        _with("spec.parameters.0.dependsOn", ["NOPE"]),
        "dependsOn names declared parameters",
    ),
]


def _doc(data: dict[str, Any]) -> Document:
    result = load_text(to_yaml(data), "workflow.yaml")
    assert not result.findings
    return result.documents[0]


def _ours(data: dict[str, Any]) -> list[str]:
    """Our errors (refusals); warnings are advice the CRD has no counterpart for."""
    return [
        f.rule
        for f in check_workflow(
            _doc(data), action_types=None, expected_name="restart", authored=False
        )
        if f.severity is Severity.ERROR
    ]


@pytest.mark.parametrize("data", [c[1] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_everywhere(repo_root: Path, data: dict[str, Any]) -> None:
    crd = _crd_validator(repo_root, "kubernaut.ai_remediationworkflows.yaml")
    assert [e.message for e in crd.iter_errors(data)] == []
    assert [e.message for e in validator("remediationworkflow").iter_errors(data)] == []
    assert _ours(data) == []


@pytest.mark.parametrize("data", [c[1] for c in INVALID], ids=[c[0] for c in INVALID])
def test_crd_rejects_so_do_we(repo_root: Path, data: dict[str, Any]) -> None:
    crd = _crd_validator(repo_root, "kubernaut.ai_remediationworkflows.yaml")
    assert list(crd.iter_errors(data)), "corpus case must be invalid for the CRD"
    assert list(validator("remediationworkflow").iter_errors(data))
    assert _ours(data)


@pytest.mark.parametrize(
    ("data", "reason"), [c[1:] for c in STRICTER], ids=[c[0] for c in STRICTER]
)
def test_stricter_only_where_the_contract_says(
    repo_root: Path, data: dict[str, Any], reason: str
) -> None:
    crd = _crd_validator(repo_root, "kubernaut.ai_remediationworkflows.yaml")
    assert list(crd.iter_errors(data)) == [], f"the CRD accepts it; we reject because {reason}"
    assert _ours(data)


def test_every_crd_spec_field_is_in_our_schema(repo_root: Path) -> None:
    """Our schema must not forget a field (we would reject valid manifests) nor add one."""
    for crd_file, schema_name in (
        ("kubernaut.ai_remediationworkflows.yaml", "remediationworkflow"),
        ("kubernaut.ai_actiontypes.yaml", "actiontype"),
    ):
        crd = yaml.safe_load((_reference(repo_root) / crd_file).read_text())
        theirs = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ours = copy.deepcopy(validator(schema_name).schema)
        defs = ours["$defs"]

        def fields(node: dict[str, Any], prefix: str, defs: dict[str, Any] = defs) -> set[str]:
            if "$ref" in node:
                node = defs[node["$ref"].rsplit("/", 1)[1]]
            if node.get("type") == "array" or "items" in node:
                return fields(node.get("items", {}), prefix + "[]")
            out = set()
            for k, v in node.get("properties", {}).items():
                out.add(prefix + k)
                out |= fields(v, prefix + k + ".")
            return out

        # the CRD leaves detectedLabels open (preserve-unknown-fields); the contract lists its keys
        mine = {
            f for f in fields(ours["properties"]["spec"], "") if not f.startswith("detectedLabels.")
        }
        assert mine == fields(theirs, ""), crd_file


ACTION_TYPE = {
    "apiVersion": "kubernaut.ai/v1alpha1",
    "kind": "ActionType",
    "metadata": {
        "name": "restart-deployment",
        "namespace": "kubernaut-system",
        # not the CRD's rule but this repository's (action-type.sync-wave)
        "annotations": {"argocd.argoproj.io/sync-wave": "-2"},
    },
    "spec": {"name": "RestartDeployment", "description": {"what": "a", "whenToUse": "b"}},
}
AT_CASES = [
    ("valid", ACTION_TYPE, True),
    ("name empty", {**ACTION_TYPE, "spec": {**ACTION_TYPE["spec"], "name": ""}}, False),
    ("name kebab", {**ACTION_TYPE, "spec": {**ACTION_TYPE["spec"], "name": "restart-pod"}}, False),
    ("name 256", {**ACTION_TYPE, "spec": {**ACTION_TYPE["spec"], "name": "A" * 256}}, False),
    ("no description", {**ACTION_TYPE, "spec": {"name": "A"}}, False),
    ("unknown field", {**ACTION_TYPE, "spec": {**ACTION_TYPE["spec"], "x": 1}}, False),
]


@pytest.mark.parametrize(("data", "valid"), [c[1:] for c in AT_CASES], ids=[c[0] for c in AT_CASES])
def test_action_type_agrees_with_crd(repo_root: Path, data: dict[str, Any], valid: bool) -> None:
    crd = _crd_validator(repo_root, "kubernaut.ai_actiontypes.yaml")
    assert (not list(crd.iter_errors(data))) is valid
    assert (not check_action_type(_doc(data))) is valid
