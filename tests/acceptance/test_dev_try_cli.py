"""`playbookctl dev up|status|env|down`, `try` and `pipelinerun --tried` through the CLI, as an
author's day goes: each command a separate process (the environment must outlive them), against
a real registry, Docker engine and git checkout. `dev down` must leave no process, mount, file or
image behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from playbookctl.build import Engine
from tests.support.docker_engine import needs_root_for_private_dockerd
from tests.support.gitrepos import git

pytestmark = pytest.mark.integration


def _cli(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playbookctl", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _processes_naming(*paths: str) -> list[str]:
    """Every live process whose command line mentions one of the paths (any program)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if any(p in cmd for p in paths):
            found.append(f"{entry.name}: {cmd}")
    return found


def _mounts_under(*paths: str) -> list[str]:
    lines = Path("/proc/self/mounts").read_text().splitlines()
    return [line for line in lines if any(f" {p}" in line for p in paths)]


def _session_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])


@pytest.fixture
def author_repo(tmp_path: Path) -> Path:
    """A git checkout with one committed playbook made by `playbookctl new`."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.playbookctl]\n")
    git(root, "init", "-q", "-b", "main")
    return root


@pytest.fixture
def short_cache() -> Iterator[Path]:
    # A private dockerd's sockets live under the cache directory: keep it short.
    path = Path(tempfile.mkdtemp(prefix="pbc-", dir="/tmp"))
    yield path
    subprocess.run(
        [sys.executable, "-m", "playbookctl", "dev", "down"],
        env={**os.environ, "PLAYBOOKCTL_CACHE_DIR": str(path)},
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert not (path / "dev").exists()
    shutil.rmtree(path)  # the lint cache (publish lints first) is not the environment's


def test_an_authors_day_on_the_machines_engine(
    author_repo: Path, short_cache: Path, docker_engine: str
) -> None:
    env = {**os.environ, "PLAYBOOKCTL_CACHE_DIR": str(short_cache), "DOCKER_HOST": docker_engine}
    root = str(author_repo)
    dev = short_cache / "dev"

    up = _cli(env, "dev", "up")
    assert up.returncode == 0, up.stderr
    state = json.loads((dev / "state.json").read_text())
    registry = state["registry"]
    assert registry.startswith("127.0.0.1:")
    assert state["engine_url"] == docker_engine  # the machine's own engine, not a new one
    assert state["engine_pid"] is None
    # Detached: its own session, so closing the terminal (SIGHUP to ours) does not stop it.
    assert _session_of(state["registry_pid"]) == state["registry_pid"]
    assert _session_of(state["registry_pid"]) != os.getsid(0)

    again = _cli(env, "dev", "up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert json.loads((dev / "state.json").read_text())["registry_pid"] == state["registry_pid"]

    status = _cli(env, "dev", "status", "--format", "json")
    assert status.returncode == 0, status.stderr
    components = {c["name"]: c for c in json.loads(status.stdout)["components"]}
    assert components["registry"]["where"] == registry
    assert all(c["running"] for c in components.values())

    # `new`, commit, then an uncommitted edit: try publishes the working tree.
    assert _cli(env, "-C", root, "new", "x", "--action-type", "FixThing").returncode == 0
    git(author_repo, "add", "-A")
    git(author_repo, "commit", "-q", "-m", "x")
    script = author_repo / "playbooks" / "x" / "remediate.sh"
    script.write_text(script.read_text() + "\n# an uncommitted edit\n")

    exports = _cli(env, "-C", root, "dev", "env")
    assert exports.returncode == 0, exports.stderr
    assert f"export PLAYBOOKCTL_REGISTRY={registry}" in exports.stdout
    assert f"export DOCKER_HOST={docker_engine}" in exports.stdout
    assert "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES=" in exports.stdout
    shell = subprocess.run(
        ["sh", "-c", f'{exports.stdout}\nprintf %s "$PLAYBOOKCTL_BASE_IMAGE_OVERRIDES"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(json.loads(shell.stdout).values()) == {f"{registry}/dev/base/stand-in:2"}

    started = time.monotonic()
    tried = _cli(env, "-C", root, "try", "x", "--target", "prod/Deployment/web")
    elapsed = time.monotonic() - started
    assert tried.returncode == 0, tried.stdout + tried.stderr
    assert elapsed < 60
    out = tried.stdout
    bundle_line = next(line for line in out.splitlines() if line.startswith("bundle: "))
    bundle = bundle_line.removeprefix("bundle: ")
    assert bundle.startswith(f"{registry}/kubernaut-playbooks/bundles/x:0.1.0-dev.")
    assert "@sha256:" in bundle
    assert "working tree with uncommitted changes" in out
    assert "bundle contract: ok" in out
    head = git(author_repo, "rev-parse", "HEAD")
    assert f"org.opencontainers.image.revision: {head}-dirty" in out
    run = yaml.safe_load(out.split("== PipelineRun (kubectl create -f -)\n", 1)[1])
    assert run["kind"] == "PipelineRun"
    assert {"name": "bundle", "value": bundle} in run["spec"]["pipelineRef"]["params"]
    assert {"name": "TARGET_RESOURCE", "value": "prod/Deployment/web"} in run["spec"]["params"]
    # Not a real version: the workflow still says 0.1.0 and nothing was registered.
    assert 'version: "0.1.0"' in (author_repo / "playbooks/x/workflow.yaml").read_text()
    assert not (author_repo / "registry" / "workflows").exists()

    # pipelinerun --tried runs it again without the --target again: the try's stands.
    again = _cli(env, "-C", root, "pipelinerun", "x", "--tried")
    assert again.returncode == 0, again.stderr
    assert "--target prod/Deployment/web, as tried" in again.stderr
    doc = yaml.safe_load(again.stdout)
    assert {"name": "TARGET_RESOURCE", "value": "prod/Deployment/web"} in doc["spec"]["params"]
    assert {"name": "bundle", "value": bundle} in doc["spec"]["pipelineRef"]["params"]

    # The same tree again: the try is reused, nothing rebuilt.
    second = _cli(env, "-C", root, "try", "x")
    assert second.returncode == 0, second.stderr
    assert f"bundle: {bundle}" in second.stdout
    assert ", reused" in second.stdout
    assert "<TARGET_RESOURCE>" in second.stdout  # no --target: a template to fill in
    assert "fill in" in second.stderr

    # pipelinerun takes the tried, unregistered playbook.
    not_registered = _cli(env, "-C", root, "pipelinerun", "x", "--target", "prod/Deployment/web")
    assert not_registered.returncode == 1
    assert "--tried" in not_registered.stderr
    rerun = _cli(env, "-C", root, "pipelinerun", "x", "--tried", "--target", "ns/Deployment/a")
    assert rerun.returncode == 0, rerun.stderr
    doc = yaml.safe_load(rerun.stdout)
    assert {"name": "bundle", "value": bundle} in doc["spec"]["pipelineRef"]["params"]

    # Down: nothing of the environment is left, images in the machine's engine included.
    down = _cli(env, "dev", "down")
    assert down.returncode == 0, down.stderr
    assert not dev.exists()
    assert _processes_naming(str(dev)) == []
    assert _mounts_under(str(dev)) == []
    with Engine(docker_engine) as engine:
        assert engine.remove_images(f"{registry}/") == []  # none left to remove
    assert _cli(env, "dev", "status").returncode == 1
    gone = _cli(env, "-C", root, "try", "x")
    assert gone.returncode == 1
    assert "playbookctl dev up" in gone.stderr


@needs_root_for_private_dockerd
def test_a_private_engine_survives_kill_9_and_leaves_nothing(
    short_cache: Path, tmp_path: Path
) -> None:
    # DOCKER_HOST that answers nothing: dev up starts its own dockerd.
    env = {
        **os.environ,
        "PLAYBOOKCTL_CACHE_DIR": str(short_cache),
        "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock",
    }
    dev = short_cache / "dev"
    up = _cli(env, "dev", "up")
    assert up.returncode == 0, up.stderr
    state = json.loads((dev / "state.json").read_text())
    assert state["engine_pid"] is not None
    assert state["engine_dir"] == str(dev / "engine")
    assert _session_of(state["engine_pid"]) == state["engine_pid"]

    # A crash (or a reboot): both die without cleaning up.
    for pid in (state["engine_pid"], state["registry_pid"]):
        os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        Path(f"/proc/{p}").exists()
        and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        for p in (state["engine_pid"], state["registry_pid"])
    ):
        time.sleep(0.05)
    status = _cli(env, "dev", "status")
    assert status.returncode == 1
    assert "DOWN" in status.stdout

    again = _cli(env, "dev", "up")
    assert again.returncode == 0, again.stderr
    new = json.loads((dev / "state.json").read_text())
    assert new["registry_pid"] != state["registry_pid"]
    assert new["engine_pid"] != state["engine_pid"]
    assert new["registry"] == state["registry"]  # the same port again: exports stay valid
    assert "present" in again.stderr  # the registry's storage kept the stand-in

    down = _cli(env, "dev", "down")
    assert down.returncode == 0, down.stderr
    assert not dev.exists()
    assert _processes_naming(str(dev)) == []  # containerd orphaned by the kill -9 included
    assert _mounts_under(str(dev)) == []


def test_try_refuses_a_registry_that_is_not_loopback(author_repo: Path, short_cache: Path) -> None:
    env = {**os.environ, "PLAYBOOKCTL_CACHE_DIR": str(short_cache)}
    root = str(author_repo)
    assert _cli(env, "-C", root, "new", "x", "--action-type", "FixThing").returncode == 0
    done = _cli(env, "-C", root, "try", "x", "--registry", "ghcr.io")
    assert done.returncode == 1
    assert "only to a loopback registry" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (short_cache / "dev").exists()


def test_dev_says_so_when_the_dev_package_is_missing(tmp_path: Path) -> None:
    # A wheel install has playbookctl but not playbookctl_dev.
    code = (
        "import importlib.util, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'playbookctl_dev' else real(n, *a)\n"
        "from playbookctl.cli import main\n"
        "sys.exit(main(['dev', 'up']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PLAYBOOKCTL_CACHE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert "needs the development package playbookctl_dev" in done.stderr
    assert "make venv" in done.stderr
    assert list(tmp_path.iterdir()) == []


@needs_root_for_private_dockerd
def test_a_long_cache_path_puts_the_engine_in_a_short_directory(tmp_path: Path) -> None:
    cache = tmp_path / ("c" * 60)  # too long for containerd's socket paths
    env = {
        **os.environ,
        "PLAYBOOKCTL_CACHE_DIR": str(cache),
        "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock",
    }
    try:
        up = _cli(env, "dev", "up")
        assert up.returncode == 0, up.stderr
        state = json.loads((cache / "dev" / "state.json").read_text())
        engine_dir = state["engine_dir"]
        assert engine_dir.startswith("/tmp/pbd-dev-")
        assert state["engine_url"] == f"unix://{engine_dir}/docker.sock"
    finally:
        down = _cli(env, "dev", "down")
    assert down.returncode == 0, down.stderr
    assert not Path(engine_dir).exists()
    assert _processes_naming(engine_dir, str(cache)) == []
    assert _mounts_under(engine_dir, str(cache)) == []
    assert not (cache / "dev").exists()
    assert not cache.exists()  # `up` made it, so `down` removes it


def test_two_concurrent_ups_make_one_environment(short_cache: Path, docker_engine: str) -> None:
    env = {**os.environ, "PLAYBOOKCTL_CACHE_DIR": str(short_cache), "DOCKER_HOST": docker_engine}
    cmd = [sys.executable, "-m", "playbookctl", "dev", "up"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    errs = "".join(err for _, err in outs)
    assert errs.count("registry 127.0.0.1:") == 2
    assert errs.count(" started (pid") == 1  # one started it, the other found it running
    assert errs.count(" already running (pid") == 1
    state = json.loads((short_cache / "dev" / "state.json").read_text())
    registries = [
        line for line in _processes_naming(str(short_cache / "dev")) if "docker-registry" in line
    ]
    assert len(registries) == 1
    assert registries[0].startswith(f"{state['registry_pid']}:")


def test_try_of_a_playbook_with_lint_errors_publishes_nothing(author_repo: Path) -> None:
    root = str(author_repo)
    env = dict(os.environ)
    assert _cli(env, "-C", root, "new", "x", "--action-type", "FixThing").returncode == 0
    workflow = author_repo / "playbooks" / "x" / "workflow.yaml"
    workflow.write_text(workflow.read_text().replace('version: "0.1.0"', 'version: "one"'))
    # A loopback port nobody listens on: nothing may be looked up or pushed.
    done = _cli(env, "-C", root, "try", "x", "--registry", "127.0.0.1:9")
    assert done.returncode == 1
    assert ": skipped" in done.stderr
    assert "lint error" in done.stderr
    assert "playbooks/x/workflow.yaml" in done.stderr
    assert "Traceback" not in done.stderr
    assert "bundle:" not in done.stdout


def test_up_after_an_up_killed_before_its_state_was_written(
    short_cache: Path, docker_engine: str
) -> None:
    env = {**os.environ, "PLAYBOOKCTL_CACHE_DIR": str(short_cache), "DOCKER_HOST": docker_engine}
    dev = short_cache / "dev"
    assert _cli(env, "dev", "up").returncode == 0
    orphan = json.loads((dev / "state.json").read_text())["registry_pid"]
    (dev / "state.json").unlink()  # as if `up` had died before writing it
    again = _cli(env, "dev", "up")
    assert again.returncode == 0, again.stderr
    assert f"stopped leftover process {orphan}" in again.stderr
    registries = [p for p in _processes_naming(str(dev)) if "docker-registry" in p]
    assert len(registries) == 1
    assert not registries[0].startswith(f"{orphan}:")


def test_try_refuses_an_undeclared_param_before_building_anything(author_repo: Path) -> None:
    root = str(author_repo)
    env = dict(os.environ)
    assert _cli(env, "-C", root, "new", "x", "--action-type", "FixThing").returncode == 0
    # A loopback port nobody listens on and no engine: any build or push would fail otherwise.
    env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    done = _cli(
        env, "-C", root, "try", "x", "--registry", "127.0.0.1:9", "--param", "NOT_DECLARED=1"
    )
    assert done.returncode == 1, done.stderr
    assert "NOT_DECLARED: not a parameter of this workflow" in done.stderr
    assert "Traceback" not in done.stderr
    assert "lint" not in done.stderr  # refused before publish linted, built or pushed
    assert "[x]" not in done.stderr  # no progress line: nothing started
    assert done.stdout == ""
