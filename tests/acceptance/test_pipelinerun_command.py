"""`playbookctl pipelinerun` through the CLI: output formats, exit codes, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from playbookctl.cli import main
from tests.unit.test_pipelinerun import BUNDLE, REGISTRATION


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "registry" / "workflows").mkdir(parents=True)
    (tmp_path / "registry" / "workflows" / "scale-down.yaml").write_text(REGISTRATION)
    return tmp_path


def run(root: Path, *args: str) -> list[str]:
    return ["-C", str(root), "pipelinerun", "scale-down", *args]


def test_yaml_output(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        run(
            root, "--param", "REPLICAS=3", "--param", "MODE=fast", "--target", "shop/Deployment/web"
        )
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = yaml.safe_load(out.out)
    assert doc["kind"] == "PipelineRun"
    assert doc["spec"]["pipelineRef"]["params"][0] == {"name": "bundle", "value": BUNDLE}
    assert {p["name"]: p["value"] for p in doc["spec"]["params"]} == {
        "TARGET_RESOURCE_NAME": "web",
        "TARGET_RESOURCE_NAMESPACE": "shop",
        "REPLICAS": "3",
        "MODE": "fast",
        "TARGET_RESOURCE": "shop/Deployment/web",
    }


def test_json_output(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            run(
                root, "--param", "REPLICAS=0", "--target", "shop/Deployment/web", "--format", "json"
            )
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["metadata"]["name"] == "wfe-84b75d055c99349c"
    assert doc["metadata"]["namespace"] == "kubernaut-workflows"


# What Kubernaut's own code names and labels the run for each target: ExecutionResourceName
# and sanitizeLabelValue, pkg/workflowexecution/executor/tekton.go @ d5a4a870. Each expected
# value below was produced by those two Go functions, compiled unchanged (go 1.19) and run on
# the target, and is derived by hand in the comment:
# - name: "wfe-" + hex(sha256(target bytes))[:16], lower-case hex (hex.EncodeToString);
# - label: strings.ReplaceAll(target, "/", "__"), then result[:63] when len(result) > 63: Go
#   counts and cuts bytes, and trims nothing after the cut.
KUBERNAUT_RUNS = [
    # namespaced: 3 parts, 2 slashes -> 4 underscores; 21 bytes, not cut
    ("shop/Deployment/web", "wfe-84b75d055c99349c", "shop__Deployment__web"),
    # cluster-scoped: kind/name, one slash
    ("Node/worker-1", "wfe-94e99fa683de6e08", "Node__worker-1"),
    # a node's DNS name: dots stay (valid in a label value), 45 bytes
    (
        "Node/ip-10-0-1-23.eu-west-1.compute.internal",
        "wfe-7822ce8445f59cc4",
        "Node__ip-10-0-1-23.eu-west-1.compute.internal",
    ),
    # 69 bytes after the replacement: cut to the first 63 (the name loses "plica-0")
    (
        "payments-production-eu-west-1/StatefulSet/postgres-primary-replica-0",
        "wfe-9ca89dda53f80fb1",
        "payments-production-eu-west-1__StatefulSet__postgres-primary-re",
    ),
    # 70 bytes: the cut keeps exactly 63 and may end in the middle of the name
    (
        "team-a/Deployment/abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklm",
        "wfe-7c4c671db1219009",
        "team-a__Deployment__abcdefghijklmnopqrstuvwxyz0123456789-abcdef",
    ),
]


@pytest.mark.parametrize(
    ("target", "name", "label"), KUBERNAUT_RUNS, ids=[t for t, _, _ in KUBERNAUT_RUNS]
)
def test_kubernaut_names_and_labels_its_runs(
    root: Path, capsys: pytest.CaptureFixture[str], target: str, name: str, label: str
) -> None:
    code = main(run(root, "--param", "REPLICAS=1", "--target", target, "--format", "json"))
    out = capsys.readouterr()
    assert code == 0, out.err
    meta = json.loads(out.out)["metadata"]
    assert meta == {
        "name": name,
        "namespace": "kubernaut-workflows",
        "labels": {
            # a manual run is no WorkflowExecution's (Kubernaut's are we-<RemediationRequest>)
            "kubernaut.ai/workflow-execution": "manual",
            "kubernaut.ai/workflow-id": "scale-down",
            "kubernaut.ai/target-resource": label,
            # the WorkflowExecution's namespace, that of the RemediationRequest
            "kubernaut.ai/source-namespace": "kubernaut-system",
        },
        # the annotation keeps the whole target, unsanitised
        "annotations": {"kubernaut.ai/target-resource": target},
    }
    assert len(label.encode()) <= 63


def test_the_labels_of_a_run_kubernaut_would_own(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--remediation-request: the WorkflowExecution Kubernaut creates is we-<RR> (creator/
    workflowexecution.go); --workflow-id: the registration's status.workflowId."""
    uuid = "0b1c9e62-5d8f-5a7e-9c3d-2f4e6a8b0c1d"
    args = ["--param", "REPLICAS=1", "--target", "shop/Deployment/web", "--format", "json"]
    code = main(run(root, *args, "--remediation-request", "rr-7f3a", "--workflow-id", uuid))
    labels = json.loads(capsys.readouterr().out)["metadata"]["labels"]
    assert code == 0
    assert labels["kubernaut.ai/workflow-execution"] == "we-rr-7f3a"
    assert labels["kubernaut.ai/workflow-id"] == uuid


# Targets whose label Kubernaut's own code makes invalid: sanitizeLabelValue cuts at 63 bytes and
# trims nothing, so the value can end in "_" or "-", which a label value may not; the API server
# refuses the PipelineRun Kubernaut itself creates. We say so rather than print a run that
# cannot be created.
BROKEN_BY_KUBERNAUT = [
    # a 62-character namespace: byte 63 is the first "_" of "__"
    # (Go: "team-xxx...x_", 63 bytes, name wfe-235ad19c321510b9)
    ("team-" + "x" * 57 + "/Deployment/web", "team-" + "x" * 57 + "_"),
    # "prod__Deployment__" is 18 bytes; a "-" at byte 63 ends the cut value
    # (Go: "prod__Deployment__aaa...a-", 63 bytes, name wfe-689d261b194bbd34)
    ("prod/Deployment/" + "a" * 44 + "-tail", "prod__Deployment__" + "a" * 44 + "-"),
]


@pytest.mark.parametrize(("target", "label"), BROKEN_BY_KUBERNAUT, ids=["ends-_", "ends--"])
def test_a_target_kubernaut_cannot_label_is_refused(
    root: Path, capsys: pytest.CaptureFixture[str], target: str, label: str
) -> None:
    assert len(label) == 63
    code = main(run(root, "--param", "REPLICAS=1", "--target", target))
    out = capsys.readouterr()
    assert code == 1
    assert out.out == ""
    assert f"kubernaut.ai/target-resource={label!r}" in out.err
    assert "the API server refuses the PipelineRun Kubernaut itself" in out.err
    assert "Traceback" not in out.err


def test_bad_values_exit_1_listing_each(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        run(
            root,
            "--param",
            "REPLICAS=many",
            "--param",
            "DRY_RUN=maybe",
            "--target",
            "shop/Deployment/web",
        )
    )
    out = capsys.readouterr()
    assert code == 1
    assert out.out == ""
    assert "2 bad value(s)" in out.err
    assert "REPLICAS: 'many' is not an integer" in out.err
    assert "DRY_RUN: 'maybe' is not a boolean" in out.err
    assert "Traceback" not in out.err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--param", "REPLICAS"], 2, "expected KEY=VALUE"),
        (["--param", "REPLICAS=1", "--target", "web"], 2, "expected NAMESPACE/KIND/NAME"),
        (["--param", "REPLICAS=1", "--format", "xml"], 2, "invalid choice"),
    ],
)
def test_usage_errors(
    root: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert main(run(root, *args)) == code
    assert message in capsys.readouterr().err


def test_unregistered(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(root), "pipelinerun", "nope", "--target", "Node/n"]) == 1
    assert "nope is not registered" in capsys.readouterr().err
