"""The sample playbooks: lint clean, files agree with each other, scripts refuse bad input.

There is no API server here, so the scripts' cluster paths are not run; what is run is every
check they make before touching the cluster, which is what stops a bad parameter from acting.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from playbookctl.config import load_config
from playbookctl.lint import lint_paths

OSD, RD, CDN = "oomkill-scale-down", "restart-deployment", "cordon-drain-node"
SAMPLES = (OSD, RD, CDN)


def test_samples_and_their_action_types_lint_clean(repo_root: Path) -> None:
    config = load_config(repo_root, env={})
    paths = [repo_root / "playbooks" / name for name in SAMPLES]
    paths.append(repo_root / "registry" / "action-types")
    assert lint_paths(paths, config) == []


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_files_agree(repo_root: Path, name: str) -> None:
    pb = repo_root / "playbooks" / name
    wf = yaml.safe_load((pb / "workflow.yaml").read_text())
    assert wf["metadata"] == {"name": name, "namespace": "kubernaut-system"}
    execution = wf["spec"]["execution"]
    assert execution["engine"] == "tekton"
    assert "bundle" not in execution  # the release fills it in
    rbac = list(yaml.safe_load_all((pb / "rbac.yaml").read_text()))
    accounts = [d["metadata"] for d in rbac if d["kind"] == "ServiceAccount"]
    assert accounts == [
        {
            "name": execution["serviceAccountName"],
            "namespace": "kubernaut-workflows",
            "labels": {"kubernaut.ai/workflow": name},
        }
    ]
    at_files = list((repo_root / "registry" / "action-types").glob("*.yaml"))
    defined = {yaml.safe_load(f.read_text())["spec"]["name"] for f in at_files}
    assert wf["spec"]["actionType"] in defined
    assert os.access(pb / "remediate.sh", os.X_OK)


def test_cordon_drain_pipeline_phases(repo_root: Path) -> None:
    pipeline = yaml.safe_load((repo_root / "playbooks/cordon-drain-node/pipeline.yaml").read_text())
    tasks = pipeline["spec"]["tasks"]
    assert [t["name"] for t in tasks] == ["validate", "cordon-and-drain", "verify"]
    assert [t.get("runAfter") for t in tasks] == [None, ["validate"], ["cordon-and-drain"]]
    assert [t["taskSpec"]["steps"][0]["args"] for t in tasks] == [["validate"], ["act"], ["verify"]]
    assert [w["name"] for w in pipeline["spec"]["workspaces"]] == ["configmap-drain-policy"]


def _run_script(
    repo_root: Path, name: str, env: dict[str, str], args: list[str]
) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"]}
    return subprocess.run(
        [str(repo_root / "playbooks" / name / "remediate.sh"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


OOM = {
    "TARGET_RESOURCE_KIND": "Deployment",
    "TARGET_RESOURCE_NAME": "web",
    "TARGET_RESOURCE_NAMESPACE": "prod",
}
RESTART = {"TARGET_RESOURCE_NAME": "web", "TARGET_RESOURCE_NAMESPACE": "prod"}
DRAIN = {"TARGET_RESOURCE_NAME": "node-1", "DRAIN_POLICY_DIR": "/nonexistent"}


@pytest.mark.parametrize(
    ("name", "env", "args", "message"),
    [
        (OSD, {}, [], "parameter TARGET_RESOURCE_KIND is required"),
        (OSD, {**OOM, "TARGET_RESOURCE_KIND": "Pod"}, [], "Deployment or StatefulSet"),
        (OSD, {**OOM, "TARGET_RESOURCE_NAME": "Web_1"}, [], "not a valid resource name"),
        (OSD, {**OOM, "TARGET_RESOURCE_NAMESPACE": "a;b"}, [], "not a valid namespace name"),
        (OSD, {**OOM, "SCALE_TARGET_REPLICAS": "two"}, [], "integer from 0 to 1000"),
        (OSD, {**OOM, "SCALE_TARGET_REPLICAS": "1001"}, [], "integer from 0 to 1000"),
        (OSD, {**OOM, "SCALE_TARGET_REPLICAS": "-1"}, [], "integer from 0 to 1000"),
        (OSD, OOM, ["rollback"], "unknown phase 'rollback'"),
        (RD, {}, [], "parameter TARGET_RESOURCE_NAME is required"),
        (RD, {**RESTART, "TARGET_RESOURCE_KIND": "StatefulSet"}, [], "must be Deployment"),
        (RD, {**RESTART, "ROLLOUT_TIMEOUT_SECONDS": "10"}, [], "from 30 to 1500"),
        (RD, {**RESTART, "ROLLOUT_TIMEOUT_SECONDS": "1e3"}, [], "from 30 to 1500"),
        (RD, RESTART, ["bogus"], "unknown phase 'bogus'"),
        (CDN, {}, [], "parameter TARGET_RESOURCE_NAME is required"),
        (CDN, {**DRAIN, "TARGET_RESOURCE_KIND": "Pod"}, [], "must be Node"),
        (CDN, {**DRAIN, "DELETE_EMPTYDIR_DATA": "maybe"}, [], "must be true or false"),
        (CDN, {**DRAIN, "DRAIN_TIMEOUT_SECONDS": "59"}, [], "from 60 to 1200"),
        (CDN, {**DRAIN, "TARGET_RESOURCE_NAME": "-node"}, [], "not a valid node name"),
        (CDN, DRAIN, ["bogus"], "unknown phase 'bogus'"),
    ],
)  # fmt: skip
def test_scripts_refuse_bad_input(
    repo_root: Path, name: str, env: dict[str, str], args: list[str], message: str
) -> None:
    proc = _run_script(repo_root, name, env, args)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr
    assert f"[{name}] ERROR:" in proc.stderr


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max-unschedulable-nodes", "many", "drain-policy key max-unschedulable-nodes"),
        ("min-ready-nodes", "-2", "drain-policy key min-ready-nodes"),
        ("grace-period-seconds", "-5", "drain-policy key grace-period-seconds"),
    ],
)
def test_drain_policy_values_are_checked(
    repo_root: Path, tmp_path: Path, key: str, value: str, message: str
) -> None:
    (tmp_path / key).write_text(value + "\n")
    proc = _run_script(
        repo_root, "cordon-drain-node", {**DRAIN, "DRAIN_POLICY_DIR": str(tmp_path)}, []
    )
    assert proc.returncode == 1
    assert message in proc.stderr
