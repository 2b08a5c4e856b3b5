"""The GitHub workflows, proven without GitHub: schema, zizmor, least privilege, pinning."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yaml"))
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict[str, Any]:
    # PyYAML reads the `on:` key as True; normalise it back.
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def _steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job_id, step) for job_id, job in workflow["jobs"].items() for step in job.get("steps", [])
    ]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (make venv installs it)")
    return found


def test_the_workflows_exist() -> None:
    assert [p.name for p in FILES] == ["mutants.yaml", "pr.yaml", "release.yaml"]


def test_the_mutation_check_runs_on_a_schedule_read_only() -> None:
    workflow = _load(WORKFLOWS / "mutants.yaml")
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["on"]["schedule"]
    runs = [s.get("run") for _, s in _steps(workflow)]
    assert "make mutants" in runs


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_valid_against_github_workflow_schema(path: Path) -> None:
    proc = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_offline_has_no_medium_or_higher_finding() -> None:
    proc = subprocess.run(
        [
            _tool("zizmor"),
            "--offline",
            "--format",
            "json",
            "--min-severity",
            "medium",
            str(WORKFLOWS),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 14) or proc.stdout.strip().startswith("["), proc.stderr
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=2)[:4000]


def test_zizmor_would_catch_an_injection(tmp_path: Path) -> None:
    """The zizmor check can fail: a workflow expanding the PR title in a shell is flagged."""
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "bad.yaml").write_text(
        "on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        '    steps:\n      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    proc = subprocess.run(
        [_tool("zizmor"), "--offline", "--format", "json", "--min-severity", "medium", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    idents = {f["ident"] for f in json.loads(proc.stdout or "[]")}
    assert "template-injection" in idents


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_pinned_by_sha_with_version_comment(path: Path) -> None:
    text = path.read_text()
    uses_lines = [line.strip() for line in text.splitlines() if "uses:" in line]
    assert uses_lines
    for line in uses_lines:
        ref = line.split("uses:", 1)[1].split("#", 1)[0].strip()
        assert PINNED.match(ref), f"not pinned by full commit SHA: {line}"
        assert re.search(r"#\s*v\d+(\.\d+)*\s*$", line), f"no version comment: {line}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_job_has_a_timeout(path: Path) -> None:
    for job_id, job in _load(path)["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), job_id


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_run_steps_call_make_or_playbookctl_only(path: Path) -> None:
    for job_id, step in _steps(_load(path)):
        if "run" not in step:
            continue
        command = step["run"].strip()
        assert "\n" not in command, f"{job_id}: multi-line script: {command}"
        assert command.startswith(("make ", ".venv/bin/playbookctl ")), f"{job_id}: {command}"
        for bad in (";", "&&", "||", "|", "`", "$("):
            assert bad not in command, f"{job_id}: shell logic in run: {command}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_expression_expansion_inside_run(path: Path) -> None:
    for job_id, step in _steps(_load(path)):
        assert "${{" not in step.get("run", ""), f"{job_id}: ${{{{ }}}} inside run:"


def test_pr_workflow_is_safe_for_untrusted_contributions() -> None:
    pr = _load(WORKFLOWS / "pr.yaml")
    assert set(pr["on"]) == {"pull_request"}
    assert pr["permissions"] == {"contents": "read"}
    code = "\n".join(
        line
        for line in (WORKFLOWS / "pr.yaml").read_text().splitlines()
        if not line.lstrip().startswith("#")
    )
    assert "pull_request_target" not in code
    assert "secrets." not in code
    for job_id, job in pr["jobs"].items():
        assert "permissions" not in job, f"{job_id} widens permissions"
    for _, step in _steps(pr):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_pr_workflow_has_the_required_jobs() -> None:
    runs = [s.get("run", "") for _, s in _steps(_load(WORKFLOWS / "pr.yaml"))]
    assert "make lint" in runs
    assert "make test" in runs
    plan = next(r for r in runs if " plan " in r)
    assert "--base" in plan
    assert "--forbid-generated-changes" in plan
    assert any("publish --dry-run" in r for r in runs)
    # registry/ is proven on every pull request: no hand edit, the kustomization builds.
    assert ".venv/bin/playbookctl verify --offline" in runs


def test_release_workflow_least_privilege_and_serialised_register() -> None:
    rel = _load(WORKFLOWS / "release.yaml")
    assert rel["permissions"] == {}
    assert set(rel["on"]) == {"push", "workflow_dispatch"}
    assert rel["on"]["push"]["branches"] == ["main"]
    jobs = rel["jobs"]
    assert jobs["plan"]["permissions"] == {"contents": "read", "packages": "read"}
    # The release trusts no registration the registry does not bear out before it skips one.
    (plan_run,) = [s["run"] for s in jobs["plan"]["steps"] if " plan " in s.get("run", "")]
    assert "--verify-registrations" in plan_run
    assert jobs["publish"]["permissions"] == {"contents": "read", "packages": "write"}
    assert jobs["register"]["permissions"] == {"contents": "write"}
    assert jobs["register"]["concurrency"]["cancel-in-progress"] is False
    # Without it GitHub cancels a pending register when a newer one queues (May 2026).
    assert jobs["register"]["concurrency"]["queue"] == "max"
    assert jobs["publish"]["needs"] == "plan"
    assert set(jobs["register"]["needs"]) == {"plan", "publish"}
    assert jobs["publish"]["if"] == "needs.plan.outputs.has-work == 'true'"
    # deletions alone still reach register; a cancelled run or a refused plan never does
    assert jobs["register"]["if"] == (
        "${{ !cancelled() && needs.plan.result == 'success' "
        "&& needs.plan.outputs.has-changes == 'true' }}"
    )
    assert jobs["publish"]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"


def test_publish_job_publishes_what_its_matrix_entry_names() -> None:
    """One playbook per job, or a batch of them beyond GitHub's 256-job matrix limit: the step
    publishes matrix.playbooks and names its result file after the entry."""
    publish = _load(WORKFLOWS / "release.yaml")["jobs"]["publish"]
    step = next(s for s in publish["steps"] if "publish" in s.get("run", ""))
    assert step["env"]["PLAYBOOKS"] == "${{ matrix.playbooks }}"
    assert step["env"]["JOB_NAME"] == "${{ matrix.name }}"
    assert step["run"].startswith(".venv/bin/playbookctl publish $PLAYBOOKS ")
    assert '"publish-results/$JOB_NAME.json"' in step["run"]


@pytest.mark.parametrize(("file", "job"), [("release.yaml", "publish"), ("pr.yaml", "build")])
def test_every_platform_is_built_in_the_job_that_publishes(file: str, job: str) -> None:
    """QEMU is set up before publish in the same job: one publish builds every platform, then
    the index, then (release) the bundle; the PR gate builds every platform it can."""
    steps = _load(WORKFLOWS / file)["jobs"][job]["steps"]
    uses = [str(s.get("uses", "")).split("@", 1)[0] for s in steps]
    runs = [str(s.get("run", "")) for s in steps]
    qemu = uses.index("docker/setup-qemu-action")
    publish = next(i for i, r in enumerate(runs) if "playbookctl publish" in r)
    assert qemu < publish
    assert steps[qemu]["with"]["platforms"] == "arm64"
    assert "--platform" not in runs[publish]  # the configured platforms, all of them
