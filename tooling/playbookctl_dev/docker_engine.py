"""A Docker engine for tests and demos: the one already running, or a private dockerd.

A machine that already has an engine (a GitHub-hosted runner; a developer laptop) is used as it
is: `DOCKER_HOST` if it answers, else /var/run/docker.sock if it answers `/_ping`. Otherwise a
private dockerd is started on short paths under /tmp (containerd's socket path has a ~108 byte
limit), without bridge networking or iptables (a build's RUN steps get only a loopback of their
own), and with all of 127.0.0.0/8 as insecure registries because the loopback registry's port is
only chosen at runtime.
(An existing engine treats 127.0.0.0/8 as insecure by default, so both cases push alike.) The
HTTPS test registries (registry.py) are on ::1 under a name, which Docker 20.10 does not count as
insecure: it verifies them against /etc/docker/certs.d like any production registry.

The private dockerd resolves names with the C library (GODEBUG=netdns=cgo), which reads
/etc/hosts on every lookup: Go's own resolver keeps /etc/hosts for 5 s, so a registry name
mapped a moment after the engine's last lookup would not resolve yet.

This module speaks only `/_ping` over a socket; everything else goes through build.py.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from playbookctl.errors import FatalError

DEFAULT_SOCKET = "/var/run/docker.sock"
# Any loopback registry, whatever port it got; CIDRs are valid insecure-registry entries.
LOOPBACK_INSECURE = "127.0.0.0/8"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


class DockerEngineError(FatalError):
    """No Docker engine answers, and none could be started."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def ping(url: str, timeout: float = 2.0) -> bool:
    """True when the engine at `url` (unix:///path or tcp://host:port) answers GET /_ping."""
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "unix":
        if not os.path.exists(parts.path):
            return False
        conn = _UnixHTTPConnection(parts.path, timeout)
    elif parts.scheme in ("tcp", "http"):
        conn = http.client.HTTPConnection(
            parts.hostname or "localhost", parts.port or 2375, timeout=timeout
        )
    elif parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname or "localhost", parts.port or 2376, timeout=timeout
        )
    else:
        return False
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        return resp.status == 200 and resp.read().strip() == b"OK"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def existing_engine(env: dict[str, str] | None = None) -> str | None:
    """The URL of an engine that already answers, or None.

    A DOCKER_HOST using TLS (DOCKER_TLS_VERIFY) is taken as given: checking it needs the client
    certificates, which the docker SDK finds itself.
    """
    env = dict(os.environ) if env is None else env
    host = env.get("DOCKER_HOST", "").strip()
    if host:
        if env.get("DOCKER_TLS_VERIFY") or ping(host):
            return host
        return None
    url = f"unix://{DEFAULT_SOCKET}"
    return url if ping(url) else None


@dataclass
class DockerEngine:
    """A running engine. `started` engines are ours and are stopped by `stop()` or `with`."""

    url: str
    started: bool = False
    workdir: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def exec_root(self) -> Path | None:
        return self.workdir / "x" if self.workdir else None

    def env(self) -> dict[str, str]:
        """Variables that point a client (the docker SDK, the docker CLI) at this engine."""
        return {"DOCKER_HOST": self.url}

    def stop(self) -> None:
        if not self.started or self.process is None:
            return
        proc, self.process = self.process, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        # dockerd leaves its default network namespace mounted when it dies uncleanly; an
        # unmounted tree is what lets the directory go away.
        if self.exec_root is not None:
            netns = self.exec_root / "netns" / "default"
            if _is_mountpoint(netns):
                subprocess.run(["umount", str(netns)], check=False, capture_output=True)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DockerEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _is_mountpoint(path: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return False
    target = str(path)
    return any(line.split(" ")[1] == target for line in mounts.splitlines() if " " in line)


def start_dockerd(
    workdir: Path | None = None,
    insecure_registries: tuple[str, ...] = (LOOPBACK_INSECURE,),
    timeout: float = START_TIMEOUT,
) -> DockerEngine:
    """Start a private dockerd and wait until it answers `/_ping`."""
    binary = shutil.which("dockerd")
    if binary is None:
        raise DockerEngineError(
            "no Docker engine answers (DOCKER_HOST, /var/run/docker.sock) and dockerd is not "
            "installed: apt-get install docker.io"
        )
    if workdir is None:
        # Short on purpose: containerd's socket lives under the exec root.
        workdir = Path(tempfile.mkdtemp(prefix="pbd-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    sock = workdir / "docker.sock"
    cmd = [
        binary,
        "-H", f"unix://{sock}",
        "--data-root", str(workdir / "data"),
        "--exec-root", str(workdir / "x"),
        "--pidfile", str(workdir / "pid"),
        "--iptables=false", "--ip6tables=false", "--bridge=none",
        "--ip-forward=false", "--ip-masq=false",
        "--storage-driver=overlay2",
        "--default-ulimit", "nofile=20000:20000",
    ]  # fmt: skip
    for reg in insecure_registries:
        cmd += ["--insecure-registry", reg]
    log = (workdir / "dockerd.log").open("wb")
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "GODEBUG": "netdns=cgo"},
        )
    finally:
        log.close()
    engine = DockerEngine(url=f"unix://{sock}", started=True, workdir=workdir, process=proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if ping(engine.url, timeout=1.0):
            return engine
        time.sleep(0.05)
    tail = _tail(workdir / "dockerd.log")
    engine.stop()
    raise DockerEngineError(f"dockerd did not become ready within {timeout:.0f}s:\n{tail}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def docker_engine(
    workdir: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[DockerEngine]:
    """The existing engine when one answers, else a private dockerd stopped on exit."""
    url = existing_engine(env)
    if url is not None:
        yield DockerEngine(url=url)
        return
    with start_dockerd(workdir) as engine:
        yield engine
