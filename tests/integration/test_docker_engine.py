"""playbookctl_dev.docker_engine: find the engine that answers, else start (and stop) a dockerd."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import docker
import pytest

from playbookctl_dev import trust
from playbookctl_dev.docker_engine import (
    MARK,
    TEMP_DIR,
    TEMP_PREFIX,
    DockerEngine,
    descendants,
    existing_engine,
    ping,
    start_dockerd,
)
from playbookctl_dev.docker_engine import docker_engine as engine_context
from playbookctl_dev.subids import SUBID_FILES, SubidRegistration
from tests.support.docker_engine import needs_root_for_private_dockerd, rootless_engine_or_skip
from tests.support.nobody import NOBODY

pytestmark = pytest.mark.integration


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize(
    "url",
    [
        "unix:///nonexistent/docker.sock",
        "ftp://127.0.0.1:21",
        "tcp://127.0.0.1:{port}",
    ],
)
def test_ping_is_false_where_no_engine_answers(url: str) -> None:
    assert ping(url.format(port=_free_tcp_port()), timeout=0.5) is False


def test_existing_engine_answers_only_when_it_pings(docker_engine: str, tmp_path: Path) -> None:
    assert ping(docker_engine)
    assert existing_engine({"DOCKER_HOST": docker_engine}) == docker_engine
    # a DOCKER_HOST that does not answer is not silently replaced by another engine
    assert existing_engine({"DOCKER_HOST": f"unix://{tmp_path}/none.sock"}) is None
    # TLS engines are taken as configured (checking needs the client certificates)
    tls = {"DOCKER_HOST": "tcp://docker.example.com:2376", "DOCKER_TLS_VERIFY": "1"}
    assert existing_engine(tls) == "tcp://docker.example.com:2376"


def test_an_existing_engine_is_used_and_left_running(docker_engine: str) -> None:
    with engine_context(env={"DOCKER_HOST": docker_engine}) as engine:
        assert engine == DockerEngine(url=docker_engine)
    assert ping(docker_engine)


@pytest.mark.skipif(shutil.which("dockerd") is None, reason="dockerd is not installed")
@needs_root_for_private_dockerd
def test_private_dockerd_starts_and_stops_without_leftovers() -> None:
    with start_dockerd() as engine:
        assert engine.started
        assert engine.workdir is not None
        assert len(str(engine.workdir / "x" / "containerd" / "containerd.sock")) < 100
        assert ping(engine.url)
        workdir = engine.workdir
    assert not ping(engine.url)
    assert not workdir.exists()
    mounts = Path("/proc/self/mounts").read_text()
    assert str(workdir) not in mounts


# A process that starts a private engine the way the tests, the demo and the benchmarks do
# (docker_engine(), with no engine answering), says its dockerd's pid, and waits to be killed.
# With no workdir argument, the engine makes its own (as docker_engine() does by default).
_ENGINE_OWNER = (
    "import json, sys, time\n"
    "from pathlib import Path\n"
    "from playbookctl_dev.docker_engine import docker_engine\n"
    "where = Path(sys.argv[1]) if len(sys.argv) > 1 else None\n"
    "with docker_engine(where, env={'DOCKER_HOST': 'unix:///nonexistent.sock'}) as e:\n"
    "    print(json.dumps({'pid': e.process.pid, 'url': e.url, 'workdir': str(e.workdir)}),\n"
    "          flush=True)\n"
    "    time.sleep(600)\n"
)


def _engine_owner(*args: str) -> subprocess.Popen[str]:
    tooling = str(Path(__file__).resolve().parents[2] / "tooling")
    return subprocess.Popen(
        [sys.executable, "-c", _ENGINE_OWNER, *args], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": tooling, "DOCKER_HOST": "unix:///nonexistent.sock"},
    )  # fmt: skip


@needs_root_for_private_dockerd
def test_a_private_dockerd_stops_when_its_owner_is_killed(tmp_path: Path) -> None:
    """A pytest or demo killed with -9 never stops its engine: the kernel does (the parent-death
    signal), and dockerd takes its containerd with it."""
    workdir = Path(tempfile.mkdtemp(prefix="pbd-", dir="/tmp"))  # short: containerd's socket
    owner = _engine_owner(str(workdir))
    pids: list[int] = []
    try:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
        pid, url = int(started["pid"]), str(started["url"])
        pids.append(pid)
        assert ping(url)
        below = descendants(pid)
        assert below, "dockerd started no containerd"
        pids += below
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in (pid, *below)):
            time.sleep(0.1)
        assert [p for p in (pid, *below) if _alive(p)] == [], "the engine outlived its owner"
        assert not ping(url)
    finally:
        with contextlib.suppress(ProcessLookupError):
            owner.kill()
        owner.wait(timeout=10)
        for left in (p for p in pids if _alive(p)):  # had the engine outlived its owner
            os.kill(left, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        # what dockerd leaves mounted when it dies uncleanly (DockerEngine.stop does the same)
        subprocess.run(["umount", str(workdir / "x" / "netns" / "default")], check=False,
                       capture_output=True)  # fmt: skip
        shutil.rmtree(workdir, ignore_errors=True)


@needs_root_for_private_dockerd
def test_a_killed_owners_engine_dir_goes_with_the_next_engine_and_nothing_else() -> None:
    """A pytest or demo killed with -9 leaves the workdir of the engine it made (a data root
    holding a base image or two): the next private engine removes it once that engine is gone
    too, and nothing else: not a live engine's dir, not a dir without the mark."""
    unmarked = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=TEMP_DIR))
    (unmarked / "data").write_text("not known to be ours\n")
    owner: subprocess.Popen[str] | None = None
    pids: list[int] = []
    left: Path | None = None
    try:
        with start_dockerd() as alive:
            assert alive.workdir is not None
            assert (alive.workdir / MARK).is_file()
            owner = _engine_owner()
            assert owner.stdout is not None
            started = json.loads(owner.stdout.readline())
            pid, left = int(started["pid"]), Path(started["workdir"])
            pids += [pid, *(p for p, _ in descendants(pid))]
            # dockerd holds the mark as well: its dir is not abandoned while it runs.
            held = {os.path.realpath(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}
            assert str(left / MARK) in held
            owner.send_signal(signal.SIGKILL)
            owner.wait(timeout=10)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(_exited(p) for p in pids):
                time.sleep(0.1)
            assert all(_exited(p) for p in pids), "the engine outlived its owner"
            assert left.is_dir()  # nobody has removed it yet
            with start_dockerd() as nxt:
                assert nxt.workdir != left
                assert not left.exists()
                assert alive.workdir.is_dir()
                assert ping(alive.url)
                assert (unmarked / "data").is_file()
    finally:
        if owner is not None:
            with contextlib.suppress(ProcessLookupError):
                owner.kill()
            owner.wait(timeout=10)
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGTERM)
        shutil.rmtree(unmarked, ignore_errors=True)
        if left is not None:
            shutil.rmtree(left, ignore_errors=True)


def _exited(pid: int) -> bool:
    """Gone, or a zombie whose every thread has exited: a Go program's main thread is a zombie
    while its other threads still hold its files (the mark's lock among them)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z" and threads == [str(pid)]


def _alive(pid: int) -> bool:
    """Running: not gone and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _build_chowning(api: docker.APIClient, uid: int) -> str:
    """The output of a build whose RUN step gives a file to `uid` (FROM scratch + busybox)."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        tar.add(shutil.which("busybox") or "/bin/busybox", arcname="busybox")
        steps = f"/bin/busybox touch /f && /bin/busybox chown {uid} /f"
        run = f'RUN ["/bin/busybox", "sh", "-c", "{steps}"]'
        dockerfile = f"FROM scratch\nCOPY busybox /bin/busybox\n{run}\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    lines = api.build(
        fileobj=io.BytesIO(context.getvalue()), custom_context=True, network_mode="none",
        rm=True, decode=True,
    )  # fmt: skip
    return "".join(str(line.get("stream") or line.get("error") or "") for line in lines)


def _live_record(reg: SubidRegistration, path: Path) -> bool:
    lines = path.read_bytes().split(b"\n")
    return any(a == reg.marker_line and b == reg.range_line for a, b in itertools.pairwise(lines))


@pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootless dockerd as nobody: needs root")
def test_a_rootless_dockerd_runs_as_its_user_and_stops_without_leftovers() -> None:
    """As nobody, in a user namespace and a network namespace of its own; stopped, it leaves
    no process, no mount, no subordinate id range and no directory, and the machine's
    /dev/net/tun as it was (the engine's own node was mounted over it in its namespace only)."""
    tun_mode = Path("/dev/net/tun").stat().st_mode
    with rootless_engine_or_skip() as engine:
        assert engine.workdir is not None
        assert engine.subids is not None
        assert engine.process is not None
        workdir, reg = engine.workdir, engine.subids
        assert engine.url == f"unix://{workdir}/run/docker.sock"
        assert ping(engine.url)
        pid = int((workdir / "run" / "docker.pid").read_text())
        status = Path(f"/proc/{pid}/status").read_text()
        assert f"Uid:\t{NOBODY}\t" in status
        assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert all(_live_record(reg, path) for path in SUBID_FILES)
        api = docker.APIClient(base_url=engine.url, version="auto")
        try:
            info = api.info()
            # Ids in images are those the user's ranges give (README): 65534 is one; the first
            # id past them (65537 with one range; more while another engine is registered) not.
            maps = Path(f"/proc/{pid}/uid_map").read_text().split("\n")
            beyond = max(int(f[0]) + int(f[2]) for line in maps if (f := line.split()))
            built = {uid: _build_chowning(api, uid) for uid in (65534, beyond)}
        finally:
            api.close()
        assert "name=rootless" in info["SecurityOptions"]
        assert info["Driver"] == "overlay2"
        assert "Successfully built" in built[65534], built[65534]
        assert beyond >= 65537
        assert "chown: /f: Invalid argument" in built[beyond], built[beyond]
        assert engine.certs_dir == workdir / "home" / ".config" / "docker" / "certs.d"
        started = [(p, trust.start_time(p)) for p, _ in descendants(engine.process.pid)]
        assert pid in {p for p, _ in started}
    assert not ping(engine.url)
    assert not workdir.exists()
    assert str(workdir) not in Path("/proc/self/mounts").read_text()
    assert [p for p, t in started if trust.start_time(p) == t] == []
    assert not any(_live_record(reg, path) for path in SUBID_FILES)
    assert Path("/dev/net/tun").stat().st_mode == tun_mode
