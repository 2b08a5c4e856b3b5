"""Lint against what Kubernaut's code reads (jordigilh/kubernaut @ d5a4a870, v1.6.0 release
candidates). Each case cites the Go code that decides the expected value; the values themselves
are in tooling/playbookctl/references/kubernaut.json (playbookctl.contract)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from playbookctl import contract
from playbookctl.findings import Finding, Severity
from playbookctl.lint.execution_time import check_execution_timeout, duration_seconds
from playbookctl.lint.workflow import check_workflow, target_lookalike
from playbookctl.load import load_text
from playbookctl.render import to_yaml


def _workflow(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": "1.0.0",
        "description": {"what": "Scales down", "whenToUse": "OOM"},
        "actionType": "ScaleDown",
        "labels": {
            "severity": ["critical"],
            "environment": ["*"],
            "component": ["apps/v1/Deployment"],
            "priority": "P1",
        },
        "execution": {"engine": "tekton", "serviceAccountName": "scale-down-runner"},
        "parameters": [
            {"name": "TARGET_RESOURCE_NAME", "type": "string", "required": True, "description": "n"}
        ],
    }
    base.update(spec)
    return {
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "RemediationWorkflow",
        "metadata": {"name": "scale-down", "namespace": "kubernaut-system"},
        "spec": base,
    }


def _param(
    name: str, *, required: bool = False, no_default: bool = False, **more: Any
) -> dict[str, Any]:
    """A string parameter; an optional one gets a default unless no_default."""
    p: dict[str, Any] = {"name": name, "type": "string", "required": required, "description": "d"}
    if not required and not no_default:
        p["default"] = "x"
    p.update(more)
    return p


def _lint(data: dict[str, Any], **kwargs: Any) -> list[Finding]:
    loaded = load_text(to_yaml(data), "playbooks/scale-down/workflow.yaml")
    assert not loaded.findings
    return check_workflow(
        loaded.documents[0], action_types=None, expected_name="scale-down", **kwargs
    )


def _rules(found: list[Finding]) -> list[tuple[str, str]]:
    return sorted((f.rule, str(f.severity)) for f in found)


# --- the table ---------------------------------------------------------------------------------


def test_the_table_holds_what_kubernauts_code_fills() -> None:
    """InjectTargetResourceParameters (internal/kubernautagent/investigator/
    investigator_phases.go): NAME, KIND, NAMESPACE always, API_VERSION when known; and
    BuildPipelineRun (pkg/workflowexecution/executor/tekton.go) appends TARGET_RESOURCE."""
    filled = {p.name: p.always for p in contract.filled_parameters()}
    assert filled == {
        "TARGET_RESOURCE_NAME": True,
        "TARGET_RESOURCE_KIND": True,
        "TARGET_RESOURCE_NAMESPACE": True,
        "TARGET_RESOURCE_API_VERSION": False,
    }
    assert contract.run_parameter() == "TARGET_RESOURCE"
    # applyTimeoutDefaults (internal/controller/remediationorchestrator/reconciler.go):
    # Executing = 30 * time.Minute
    assert contract.executing_timeout_seconds() == 30 * 60
    # DetectedLabels' bool fields (pkg/shared/types/enrichment.go) that the catalog reads
    assert set(contract.boolean_detected_labels()) == {
        "gitOpsManaged",
        "pdbProtected",
        "hpaEnabled",
        "stateful",
        "helmManaged",
        "networkIsolated",
        "virtualMachine",
        "liveMigratable",
        "cdiManaged",
    }
    # BuildPipelineRun's label and annotation keys
    assert set(contract.label_keys().values()) == {
        "kubernaut.ai/workflow-execution",
        "kubernaut.ai/workflow-id",
        "kubernaut.ai/target-resource",
        "kubernaut.ai/source-namespace",
    }
    assert list(contract.annotation_keys().values()) == ["kubernaut.ai/target-resource"]


def test_the_table_says_where_each_value_comes_from() -> None:
    table = contract.table()
    prov = table["provenance"]
    assert prov["commit"].startswith("d5a4a870")
    assert prov["license"] == "Apache-2.0"
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in prov["sources"].values())
    cited = [p.source for p in contract.filled_parameters()] + [
        table[k]["source"]
        for k in (
            "runParameter",
            "dependsOn",
            "pipelineRun",
            "executingTimeoutMinutes",
            "executionEngineRequired",
            "detectedLabels",
            "clusterLabel",
        )
    ]
    for source in cited:
        files = re.findall(r"[\w/.-]+\.(?:go|yaml)", source)
        assert files, source
        assert set(files) <= set(prov["sources"]), f"{source}: not pinned in provenance.sources"


# --- workflow.target-parameter / workflow.target-api-version -----------------------------------

LOOKALIKES = [
    ("TARGET_NAMESPACE", "TARGET_RESOURCE_NAMESPACE"),  # the sample's mistake (issue 16)
    ("TARGET_NS", "TARGET_RESOURCE_NAMESPACE"),
    ("RESOURCE_NAMESPACE", "TARGET_RESOURCE_NAMESPACE"),
    ("TARGET_RESOURCE_NS", "TARGET_RESOURCE_NAMESPACE"),
    ("TARGET_NAME", "TARGET_RESOURCE_NAME"),
    ("RESOURCE_NAME", "TARGET_RESOURCE_NAME"),
    ("TARGET_KIND", "TARGET_RESOURCE_KIND"),
    ("TARGET_API_VERSION", "TARGET_RESOURCE_API_VERSION"),
    ("TARGET_RESOURCE_APIVERSION", "TARGET_RESOURCE_API_VERSION"),
    ("TARGET_GROUP_VERSION", "TARGET_RESOURCE_API_VERSION"),
]
NOT_LOOKALIKES = [
    "TARGET_RESOURCE_NAME",  # filled
    "TARGET_RESOURCE_NAMESPACE",
    "TARGET_RESOURCE_KIND",
    "TARGET_RESOURCE_API_VERSION",
    "SCALE_TARGET_REPLICAS",  # a value the model chooses
    "TARGET_REPLICAS",
    "TARGET_VERSION",  # a version to roll to, not the target's apiVersion
    "NAMESPACE",  # no target/resource word: a parameter of its own
    "SOURCE_NAMESPACE",
    "TARGET_POD_NAME",  # more than a part: its own parameter
]


@pytest.mark.parametrize(("name", "meant"), LOOKALIKES)
def test_a_lookalike_target_parameter_is_an_error_naming_the_right_one(
    name: str, meant: str
) -> None:
    data = _workflow(parameters=[_param(name, required=True)])
    found = _lint(data)
    assert _rules(found) == [("workflow.target-parameter", "error")]
    message = found[0].message
    assert f"Kubernaut never fills {name}" in message
    assert f"rename it {meant}" in message
    assert "investigator_phases.go" in message
    lines = to_yaml(data).splitlines()
    assert lines[found[0].line - 1].strip() == f"- name: {name}"  # at the parameter's name


@pytest.mark.parametrize("name", NOT_LOOKALIKES)
def test_names_that_are_not_lookalikes(name: str) -> None:
    assert target_lookalike(name) is None
    found = _lint(_workflow(parameters=[_param(name)]))
    assert [f for f in found if f.rule == "workflow.target-parameter"] == []


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        # filled only "when known": required makes every other target's run miss it
        (_param("TARGET_RESOURCE_API_VERSION", required=True), "workflow.target-api-version"),
        (_param("TARGET_RESOURCE_API_VERSION", default="apps/v1"), None),
        # the other three are always filled: required is right
        (_param("TARGET_RESOURCE_NAMESPACE", required=True), None),
    ],
    ids=["api-version-required", "api-version-optional", "namespace-required"],
)
def test_target_api_version_is_filled_only_when_known(
    param: dict[str, Any], expected: str | None
) -> None:
    found = _lint(_workflow(parameters=[param]))
    assert [f.rule for f in found] == ([expected] if expected else [])
    assert all(f.severity is Severity.WARNING for f in found)


# --- workflow.depends-on-presence -----------------------------------------------------------

# validateDependsOn (internal/kubernautagent/parser/validator.go): for a parameter present in
# the model's answer, every dependsOn name must be a key of the parameters; defaults are never
# added by the agent, and the parameters it fills itself are present (TARGET_RESOURCE_API_VERSION
# only when known).
API, NS = "TARGET_RESOURCE_API_VERSION", "TARGET_RESOURCE_NAMESPACE"
DEPENDS = [
    (
        "required on optional with default",
        [_param("A", required=True, dependsOn=["B"]), _param("B", default="b")],
        "A is required and depends on B, so Kubernaut refuses every run without B",
    ),
    (
        "required on optional without default",
        [_param("A", required=True, dependsOn=["B"]), _param("B", no_default=True)],
        "declare B required: true",
    ),
    (
        "optional on optional with default",
        [_param("A", dependsOn=["B"]), _param("B", default="b")],
        "B's default does not satisfy it",
    ),
    # the agent validates the model's answer (SelfCorrect, before the merge) and fills its own
    # parameters in afterwards (InjectTargetResourceParameters): they count only when the model
    # passes them itself
    (
        "on the api version",
        [_param("A", dependsOn=[API]), _param(API)],
        "TARGET_RESOURCE_API_VERSION is filled in by the agent only after it has checked",
    ),
    (
        "optional on optional without default",
        [_param("A", dependsOn=["B"]), _param("B", no_default=True)],
        None,
    ),
    ("on a required one", [_param("A", dependsOn=["B"]), _param("B", required=True)], None),
    (
        "on an always-filled one",
        [_param("A", required=True, dependsOn=[NS]), _param(NS, required=True)],
        "counts only when the model passes TARGET_RESOURCE_NAMESPACE itself",
    ),
]


@pytest.mark.parametrize(
    ("params", "message"), [c[1:] for c in DEPENDS], ids=[c[0] for c in DEPENDS]
)
def test_depends_on_is_satisfied_only_by_presence(
    params: list[dict[str, Any]], message: str | None
) -> None:
    found = [f for f in _lint(_workflow(parameters=params)) if f.rule.startswith("workflow.dep")]
    if message is None:
        assert found == []
        return
    assert [(f.rule, f.severity) for f in found] == [
        ("workflow.depends-on-presence", Severity.WARNING)
    ]
    assert message in found[0].message
    assert "parser/validator.go" in found[0].message


# --- workflow.detected-labels, workflow.engine, workflow.fleet-cluster -------------------------


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"hpaEnabled": True, "gitOpsTool": "argocd"}, None),
        ({"hpaEnabled": "true"}, "write the YAML boolean true, unquoted: a string is refused"),
        ({"stateful": "True"}, "write the YAML boolean true"),
        ({"pdbProtected": "false"}, "remove it: a string is refused"),
        ({"pdbProtected": False}, "false means the same as leaving pdbProtected out"),
    ],
    ids=["boolean", "string-true", "string-True", "string-false", "boolean-false"],
)
def test_detected_label_booleans_are_yaml_booleans(
    labels: dict[str, Any], message: str | None
) -> None:
    """crdDetectedLabelsToModel (internal/kubernautagent/workflowcatalog/cache_convert.go)
    json.Unmarshals into bool fields; listFromCache returns the first error: no catalog."""
    found = _lint(_workflow(detectedLabels=labels))
    if message is None:
        assert found == []
        return
    assert [f.rule for f in found] == ["workflow.detected-labels"]
    assert message in found[0].message
    if "string" in message:
        assert "aborts its whole workflow catalog listing" in found[0].message
        assert "cache_convert.go" in found[0].message


def test_engine_is_required() -> None:
    """validateSelectedWorkflow (pkg/remediationorchestrator/creator/workflowexecution.go)."""
    data = _workflow(execution={"serviceAccountName": "scale-down-runner"})
    found = _lint(data)
    assert [f.rule for f in found] == ["workflow.engine"]
    assert "selectedWorkflow.executionEngine is required" in found[0].message
    assert "write engine: tekton" in found[0].message


@pytest.mark.parametrize(
    ("fleet", "cluster", "warned"),
    [
        (False, None, False),  # outside a fleet the label is never consulted
        (True, None, True),
        (True, [], True),
        (True, ["*"], False),
        (True, ["edge-1"], False),
    ],
)
def test_fleet_cluster(fleet: bool, cluster: list[str] | None, warned: bool) -> None:
    """matchesArrayLabel (internal/kubernautagent/workflowcatalog/cache_filter.go): with a
    cluster filter, an empty labels.cluster never matches; "*" always does."""
    data = _workflow()
    if cluster is not None:
        data["spec"]["labels"]["cluster"] = cluster
    found = _lint(data, fleet=fleet)
    assert [(f.rule, f.severity) for f in found] == (
        [("workflow.fleet-cluster", Severity.WARNING)] if warned else []
    )


# --- playbook.execution-timeout ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("40m", 2400.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("90s", 90.0),
        ("0", 0.0),
        ("500ms", 0.5),
        ("", None),
        ("10", None),
        ("-5m", None),
        ("m", None),
        ("5x", None),
    ],
)
def test_duration_seconds_reads_go_durations(text: str, seconds: float | None) -> None:
    assert duration_seconds(text) == seconds


def _task(name: str, timeout: str | None = None, after: list[str] | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {"name": name, "taskRef": {"name": "t"}}
    if timeout is not None:
        task["timeout"] = timeout
    if after:
        task["runAfter"] = after
    return task


TIMEOUTS = [
    ("within", {"tasks": [_task("a", "30m")]}, []),
    ("over", {"tasks": [_task("a", "40m")]}, ["task 'a' may run for 40m"]),
    ("hours", {"tasks": [_task("a", "1h")]}, ["task 'a' may run for 1h"]),
    ("no limit", {"tasks": [_task("a", "0")]}, ["task 'a' has timeout '0', no limit"]),
    ("finally", {"tasks": [_task("a")], "finally": [_task("f", "45m")]}, ["finally task 'f'"]),
    (
        "step",
        {"tasks": [{"name": "a", "taskSpec": {"steps": [{"name": "s", "timeout": "31m"}]}}]},
        ["step 's' of 'a' may run for 31m"],
    ),
    (
        "chain over",
        {"tasks": [_task("a", "20m"), _task("b", "15m", ["a"]), _task("c", "1m")]},
        ["tasks a -> b run one after another and may take 35 minutes"],
    ),
    ("chain within", {"tasks": [_task("a", "10m"), _task("b", "10m", ["a"])]}, []),
    ("parallel", {"tasks": [_task("a", "20m"), _task("b", "20m")]}, []),
    ("not a duration", {"tasks": [_task("a", "forever")]}, []),  # tekton.* reports it
    ("cycle", {"tasks": [_task("a", "20m", ["b"]), _task("b", "20m", ["a"])]}, []),
]


@pytest.mark.parametrize(
    ("spec", "messages"), [c[1:] for c in TIMEOUTS], ids=[c[0] for c in TIMEOUTS]
)
def test_execution_timeout(spec: dict[str, Any], messages: list[str]) -> None:
    """Kubernaut waits 30 minutes in Executing (applyTimeoutDefaults,
    internal/controller/remediationorchestrator/reconciler.go) and sets no run timeout."""
    data = {"apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": "workflow"}}
    loaded = load_text(to_yaml({**data, "spec": spec}), "playbooks/x/pipeline.yaml")
    found = check_execution_timeout(loaded.documents[0])
    assert len(found) == len(messages)
    for finding, message in zip(found, messages, strict=True):
        assert finding.rule == "playbook.execution-timeout"
        assert finding.severity is Severity.WARNING
        assert message in finding.message
        assert "30 minutes" in finding.message
