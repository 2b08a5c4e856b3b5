"""The GitHub workflows, proven without GitHub: schema, zizmor, least privilege, pinning."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from playbookctl.cli import COMMANDS, build_parser, registry_access

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
    assert "make mutants AS_ROOT=1" in runs


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


# Targets that run the suite's HTTPS registry tests: as a runner's (non-root) user they skip.
SUITE_TARGETS = ("test", "mutants")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_suite_runs_as_root_on_a_runner(path: Path) -> None:
    """A GitHub-hosted runner's user is not root, and the test world (the HTTPS registry's name
    in /etc/hosts, its CA in /etc/docker/certs.d) needs root: `make test` as that user skipped
    every test of the registry and passed; `make mutants` refused the skips and failed."""
    for job_id, step in _steps(_load(path)):
        words = str(step.get("run", "")).split()
        if words[:1] == ["make"] and set(words[1:]) & set(SUITE_TARGETS):
            assert "AS_ROOT=1" in words, f"{job_id}: {step['run']}"


@pytest.mark.parametrize("target", SUITE_TARGETS)
def test_as_root_runs_the_suite_through_sudo_without_a_prompt(target: str) -> None:
    """What `make <target> AS_ROOT=1` runs for a user who is not root (SUDO=sudo, as the
    Makefile sets it then), for root (no sudo), and without AS_ROOT (no sudo)."""
    root = WORKFLOWS.parents[1]
    command = "pytest" if target == "test" else "tooling/mutants/run.py"

    # sudo resets the environment: what the Makefile passes on must not come from this one's.
    passed = {"PLAYBOOKCTL_STAND_IN_MIRROR", *(p for v in ("http", "https", "no") for p in (
        f"{v}_proxy", f"{v.upper()}_PROXY"))}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in passed}

    def line(*args: str) -> str:
        done = subprocess.run(
            ["make", "-n", "-s", "-C", str(root), target, *args],
            capture_output=True, text=True, timeout=60, check=True, env=env,
        )  # fmt: skip
        return next(ln for ln in done.stdout.splitlines() if command in ln)

    assert line("AS_ROOT=1", "SUDO=sudo").startswith('sudo -n env "PATH=$PATH" .venv/bin/')
    # The stand-in base's mirror and the proxies reach the suite (when set), not sudo's reset.
    mirror = "PLAYBOOKCTL_STAND_IN_MIRROR=http://127.0.0.1:1/debian"
    assert line("AS_ROOT=1", "SUDO=sudo", mirror, "https_proxy=http://127.0.0.1:2").startswith(
        f'sudo -n env "PATH=$PATH" "{mirror}" "https_proxy=http://127.0.0.1:2" .venv/bin/'
    )
    assert line("AS_ROOT=1", "SUDO=").startswith(".venv/bin/")
    assert line("SUDO=sudo").startswith(".venv/bin/")


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
        # Only a job that reads the registry adds packages: read (job permissions replace the
        # workflow's); nothing else, and nothing that writes.
        if "permissions" in job:
            assert job["permissions"] == {"contents": "read", "packages": "read"}, job_id
    for _, step in _steps(pr):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_pr_workflow_has_the_required_jobs() -> None:
    runs = [s.get("run", "") for _, s in _steps(_load(WORKFLOWS / "pr.yaml"))]
    assert "make lint" in runs
    assert "make test AS_ROOT=1" in runs
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
    assert jobs["register"]["permissions"] == {"contents": "write", "packages": "read"}
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


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_job_of_a_plan_matrix_publishes_its_entrys_playbooks(path: Path) -> None:
    """Beyond 256 playbooks an entry's name is batch-NNN-of-MMM, not a playbook: a job of
    plan's matrix publishes (or builds) `matrix.playbooks`, never `matrix.name` (the pull
    request's build job once did, so a pull request changing 257 playbooks failed every build)."""
    for job_id, job in _load(path)["jobs"].items():
        if "fromJSON(needs.plan.outputs.matrix)" not in str(job.get("strategy", "")):
            continue
        runs = [s for s in job["steps"] if "playbookctl publish" in s.get("run", "")]
        assert runs, job_id
        for step in runs:
            assert "$PLAYBOOKS" in step["run"].split(), f"{job_id}: {step['run']}"
            assert step["env"]["PLAYBOOKS"] == "${{ matrix.playbooks }}", job_id


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


# -- registry credentials: every job gets what its playbookctl commands need, and no more ------

PLAYBOOKCTL = ".venv/bin/playbookctl"
RANK = {"none": 0, "read": 1, "write": 2}
# How a job's own token reaches playbookctl (oci/auth.py reads these two variables): GitHub's
# actor and the job's GITHUB_TOKEN, whose package access is the job's `packages` permission.
# pr.yaml names the token `github.token`, so that no `secrets.` appears in the gate at all.
USERNAME = "${{ github.actor }}"
TOKENS = ("${{ secrets.GITHUB_TOKEN }}", "${{ github.token }}")
CREDENTIAL_VARS = {"PLAYBOOKCTL_REGISTRY_USERNAME", "PLAYBOOKCTL_REGISTRY_PASSWORD",
                   "PLAYBOOKCTL_REGISTRY_TOKEN", "DOCKER_CONFIG"}  # fmt: skip


def _packages(workflow: dict[str, Any], job: dict[str, Any]) -> str:
    """The job token's package access: job permissions replace the workflow's (a key left out
    of a permissions map is none)."""
    perms = job.get("permissions", workflow.get("permissions", {}))
    if isinstance(perms, str):  # read-all / write-all
        return perms.removesuffix("-all")
    return str(perms.get("packages", "none"))


def _playbookctl_steps() -> list[tuple[str, str, dict[str, Any], dict[str, Any], str]]:
    """(file, job id, job, step, registry access) for every step that runs playbookctl; the
    access is the CLI's own answer for the step's arguments (playbookctl.cli.registry_access)."""
    out = []
    for path in FILES:
        for job_id, job in _load(path)["jobs"].items():
            for step in job.get("steps", []):
                run = str(step.get("run", "")).strip()
                if run.startswith(PLAYBOOKCTL + " "):
                    access = registry_access(shlex.split(run)[1:])
                    out.append((path.name, job_id, job, step, access))
    return out


STEPS = _playbookctl_steps()


def test_the_registry_access_of_each_workflow_job() -> None:
    """The jobs that talk to the registry, as the CLI derives them from their commands: a
    command that starts reading it (or stops) shows here first."""
    access: dict[tuple[str, str], str] = {}
    for file, job_id, _job, _step, step_access in STEPS:
        key = (file, job_id)
        access[key] = max(access.get(key, "none"), step_access, key=RANK.__getitem__)
    assert access == {
        ("pr.yaml", "registry"): "none",  # verify --offline
        ("pr.yaml", "plan"): "none",  # without --verify-registrations: files only
        ("pr.yaml", "build"): "read",  # publish --dry-run looks up what is published
        ("release.yaml", "plan"): "read",  # --verify-registrations
        ("release.yaml", "publish"): "write",
        ("release.yaml", "register"): "read",  # --push checks every bundle is in the registry
    }


@pytest.mark.parametrize(
    ("file", "job_id", "job", "step", "access"),
    STEPS,
    ids=[f"{f}:{j}:{shlex.split(s['run'])[1]}" for f, j, _, s, _ in STEPS],
)
def test_a_registry_reading_step_has_the_permission_and_credentials_it_needs_and_no_more(
    file: str, job_id: str, job: dict[str, Any], step: dict[str, Any], access: str
) -> None:
    """A private package answers 401 to a job without `packages: read` and a login (the
    register job once failed so, at the last step of a release); a job given more than its
    commands use breaks least privilege."""
    workflow = _load(WORKFLOWS / file)
    packages = _packages(workflow, job)
    env = step.get("env") or {}
    if access == "none":
        assert not CREDENTIAL_VARS & set(env), f"{job_id}: credentials for a files-only step"
        return
    assert RANK[packages] >= RANK[access], f"{job_id}: packages: {packages}, needs {access}"
    assert env.get("PLAYBOOKCTL_REGISTRY_USERNAME") == USERNAME, f"{job_id}: no username"
    assert env.get("PLAYBOOKCTL_REGISTRY_PASSWORD") in TOKENS, f"{job_id}: not the job's token"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_job_has_package_access_its_commands_do_not_use(path: Path) -> None:
    workflow = _load(path)
    for job_id, job in workflow["jobs"].items():
        used = [a for f, j, _, _, a in STEPS if (f, j) == (path.name, job_id)]
        needed = max(used, key=RANK.__getitem__, default="none")
        assert _packages(workflow, job) == needed, job_id


def test_every_command_that_opens_a_registry_client_declares_its_access() -> None:
    """registry_access is declared beside each command: one that opens a RegistryClient itself,
    or calls a module that does, and declares nothing would read as files-only above."""
    package = Path(importlib.import_module("playbookctl").__file__ or "").parent
    openers = {p.stem for p in package.glob("*.py") if "RegistryClient(" in p.read_text("utf-8")}
    assert {"publish", "release"} <= openers  # the scan finds what it must
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    choices: dict[str, Any] = dict(subparsers.choices or {})
    talking = []
    for name in COMMANDS:
        source = inspect.getsource(importlib.import_module(f"playbookctl.commands.{name}"))
        if "RegistryClient(" in source or any(f"playbookctl.{m} import" in source for m in openers):
            talking.append(name)
            command = name.rstrip("_")
            assert choices[command].get_default("registry_access") is not None, name
    assert {"plan", "verify", "publish", "register", "release", "inspect"} <= set(talking)
