"""A real loopback OCI registry (CNCF distribution, Debian's `docker-registry`) for tests, the
demo and the benchmarks.

Each instance gets its own config, a storage directory in a private temp dir (in memory when
/dev/shm is there), and a free loopback port; with `auth=True` it demands a login (htpasswd
with a bcrypt hash made by `htpasswd -Bbn`).
Use it as a context manager, or call start()/stop().
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from playbookctl.errors import FatalError

BINARY = "docker-registry"
START_TIMEOUT = 15.0


class RegistryStartError(FatalError):
    """The loopback registry could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the registry binds it a few ms later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _memory_dir() -> str | None:
    """The shared-memory directory when usable, else None (the system temp dir).

    The registry syncs every blob and manifest to disk, which on a virtual disk costs 10-25 ms
    a write (4x the whole publish of a bundle); its data is throwaway, so memory is right."""
    shm = Path("/dev/shm")  # noqa: S108 - only a private mkdtemp inside it
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class LocalRegistry:
    """`docker-registry serve` on 127.0.0.1:<free port>, storage in a temp dir."""

    def __init__(
        self,
        *,
        auth: bool = False,
        username: str = "playbookctl",
        password: str | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.auth = auth
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(16)
        self._own_workdir = workdir is None
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """host:port, what goes in a reference (`127.0.0.1:PORT/repo:tag`)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def __repr__(self) -> str:  # no password
        return f"LocalRegistry(host={self.host!r}, auth={self.auth})"

    def _write_config(self, workdir: Path) -> Path:
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            "version: 0.1",
            "log: {level: error, accesslog: {disabled: true}}",
            f"storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}, "
            "cache: {blobdescriptor: inmemory}}",
            f"http: {{addr: '{self.host}', secret: {secrets.token_hex(16)}}}",
        ]
        if self.auth:
            htpasswd = workdir / "htpasswd"
            made = subprocess.run(
                ["htpasswd", "-Bbn", self.username, self.password],
                capture_output=True,
                check=False,
            )
            if made.returncode != 0:
                raise RegistryStartError("htpasswd failed (is apache2-utils installed?)")
            htpasswd.write_bytes(made.stdout)
            lines.append(f"auth: {{htpasswd: {{realm: playbookctl-test, path: {htpasswd}}}}}")
        config = workdir / "config.yml"
        config.write_text("\n".join(lines) + "\n", "utf-8")
        return config

    def start(self) -> LocalRegistry:
        if shutil.which(BINARY) is None:
            raise RegistryStartError(
                f"{BINARY} not found: apt-get install docker-registry (or `make system-deps`)"
            )
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="playbookctl-registry-", dir=_memory_dir()))
        last_error = ""
        for _ in range(5):  # the free port can be taken between probing and binding: retry
            self.port = free_port()
            config = self._write_config(self.workdir)
            log = (self.workdir / "registry.log").open("ab")
            self.process = subprocess.Popen(
                [BINARY, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
            )
            log.close()
            if self._wait_ready():
                return self
            last_error = (self.workdir / "registry.log").read_text("utf-8", "replace")[-500:]
            self._kill()
        raise RegistryStartError(f"{BINARY} did not become ready: {last_error.strip()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        return True
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and self.auth:  # up, and asking for a login as it should
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def stop(self) -> None:
        self._kill()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
