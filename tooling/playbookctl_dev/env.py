"""`playbookctl dev`: a development environment that stays up between commands.

`up` starts (or finds running) a loopback OCI registry, a Docker engine (the machine's own when
one answers, else a private dockerd) and the base-image stand-in, each detached from the
terminal (its own session, no controlling tty, output to a log file), and records them in
`state.json`. `down` stops what `up` started and removes the whole directory. Everything lives in
one directory, `dev_dir()`: `$PLAYBOOKCTL_CACHE_DIR/dev`, default `$XDG_CACHE_HOME/playbookctl/dev`.

Idempotent: `up` on a running environment changes nothing; after a reboot (or a kill -9) it
restarts what died, on the same registry port when that is free, and the registry's storage (in
the directory) keeps what was pushed. One `up`/`down` at a time (a lock file in the directory).

Processes are identified by pid *and* their command line naming this directory, so a recycled
pid is never signalled; `down` also finds our processes when `state.json` was lost or damaged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from playbookctl.errors import FatalError
from playbookctl.lint.cache import cache_root
from playbookctl_dev.base_image import make_base_image, overrides_for
from playbookctl_dev.docker_engine import existing_engine, ping, start_dockerd
from playbookctl_dev.registry import BINARY as REGISTRY_BINARY
from playbookctl_dev.registry import free_port

STATE_FILE = "state.json"
LOCK_FILE = "lock"
STATE_VERSION = 1
# Renamed when its content changes, so an older dev environment makes the new one.
STAND_IN = "dev/base/stand-in:2"
REGISTRY_START_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0
# containerd's sockets live under the engine's exec root and a unix socket path has ~108 bytes;
# a longer directory gets a short one in /tmp (recorded in the state, removed by `down`).
MAX_ENGINE_DIR = 60
# Only these are ever signalled, and only with this directory on their command line.
OUR_PROGRAMS = frozenset(
    {REGISTRY_BINARY, "registry", "dockerd", "containerd", "containerd-shim-runc-v2"}
)

Log = Callable[[str], None]


class DevEnvError(FatalError):
    """The development environment could not be started, stopped or read."""


def dev_dir() -> Path:
    return cache_root() / "dev"


@dataclass
class DevState:
    """What runs where (state.json)."""

    directory: str
    registry: str  # host:port
    registry_pid: int
    engine_url: str
    engine_pid: int | None  # None: the machine's own engine, not ours to stop
    engine_dir: str | None
    stand_in: str  # the base-image stand-in's reference in the registry
    started: float
    made_parent: bool = False  # the cache directory above was made by `up`: `down` removes it

    @property
    def engine_is_ours(self) -> bool:
        return self.engine_pid is not None

    def overrides(self, playbooks_dir: Path) -> dict[str, str]:
        """Every base image the playbooks name -> the stand-in."""
        return overrides_for(playbooks_dir, self.stand_in) if playbooks_dir.is_dir() else {}

    def exports(self, playbooks_dir: Path | None = None) -> dict[str, str]:
        """The variables that point playbookctl and docker at this environment."""
        out = {"PLAYBOOKCTL_REGISTRY": self.registry, "DOCKER_HOST": self.engine_url}
        if playbooks_dir is not None and playbooks_dir.is_dir():
            out["PLAYBOOKCTL_BASE_IMAGE_OVERRIDES"] = json.dumps(
                self.overrides(playbooks_dir), sort_keys=True
            )
        return out


def read_state(directory: Path) -> DevState | None:
    """The recorded state, or None when there is none (or it is unreadable: `down` still
    cleans up by command line)."""
    path = directory / STATE_FILE
    try:
        raw = json.loads(path.read_text("utf-8"))
        if raw.pop("version", None) != STATE_VERSION:
            return None
        return DevState(**raw)
    except (OSError, ValueError, TypeError):
        return None


def _write_state(directory: Path, state: DevState) -> None:
    tmp = directory / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps({"version": STATE_VERSION, **asdict(state)}, indent=2), "utf-8")
    tmp.replace(directory / STATE_FILE)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One up/down at a time. `down` deletes the lock file with the directory, so a waiter
    that wakes on a deleted file tries again on the new one."""
    while True:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)


# --- processes -------------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str] | None:
    """The command line of a live (not zombie) process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return None
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a] or None


def _is_ours(pid: int, marker: str) -> bool:
    args = _cmdline(pid)
    return (
        args is not None
        and os.path.basename(args[0]) in OUR_PROGRAMS
        and any(marker in a for a in args)
    )


def our_processes(markers: list[str]) -> list[int]:
    """Live processes of OUR_PROGRAMS whose command line names one of the directories."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if any(_is_ours(pid, m) for m in markers):
                found.append(pid)
    return sorted(found)


def _reap(pid: int) -> None:
    # When `up` ran in this very process (tests), its children must not linger as zombies.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _stop_pid(pid: int, marker: str, timeout: float = STOP_TIMEOUT) -> None:
    if not _is_ours(pid, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if _cmdline(pid) is None:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        _reap(pid)
        if _cmdline(pid) is None:
            return
        time.sleep(0.05)


def mounts_under(paths: list[str]) -> list[str]:
    """Mount points at or below any of the paths (deepest first, so they unmount in order)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split(" ")
        if len(parts) > 1:
            target = parts[1].replace("\\040", " ")
            if any(target == p or target.startswith(p.rstrip("/") + "/") for p in paths):
                found.append(target)
    return sorted(found, key=len, reverse=True)


# --- the registry ----------------------------------------------------------------------------


def _registry_answers(host: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/v2/", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def _port_free(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the registry (Go) binds: a port whose old connections linger in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_registry(directory: Path, preferred_port: int | None) -> tuple[str, int]:
    if shutil.which(REGISTRY_BINARY) is None:
        raise DevEnvError(
            f"{REGISTRY_BINARY} not found: apt-get install docker-registry (or `make system-deps`)"
        )
    reg_dir = directory / "registry"
    (reg_dir / "data").mkdir(parents=True, exist_ok=True)
    last = ""
    for attempt in range(5):  # a free port can be taken between probing and binding
        port = (
            preferred_port
            if attempt == 0 and preferred_port and _port_free(preferred_port)
            else free_port()
        )
        host = f"127.0.0.1:{port}"
        config = reg_dir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: error, accesslog: {disabled: true}}\n"
            f"storage: {{filesystem: {{rootdirectory: {reg_dir / 'data'}}}, "
            "cache: {blobdescriptor: inmemory}}\n"
            f"http: {{addr: '{host}', secret: {secrets.token_hex(16)}}}\n",
            "utf-8",
        )
        with (reg_dir / "registry.log").open("ab") as log:
            proc = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # no controlling terminal: outlives the shell
                env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
            )
        deadline = time.monotonic() + REGISTRY_START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _registry_answers(host):
                return host, proc.pid
            time.sleep(0.05)
        last = (reg_dir / "registry.log").read_text("utf-8", "replace")[-400:].strip()
        _stop_pid(proc.pid, str(directory), timeout=5)
    raise DevEnvError(f"{REGISTRY_BINARY} did not become ready: {last or 'no output'}")


def _has_manifest(host: str, ref: str) -> bool:
    repo, _, tag = ref.rpartition(":")
    req = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


# --- up / down / status ----------------------------------------------------------------------


def _engine_dir(directory: Path) -> Path:
    inside = directory / "engine"
    if len(str(inside)) <= MAX_ENGINE_DIR:
        return inside
    return Path(tempfile.mkdtemp(prefix="pbd-dev-", dir="/tmp"))


def up(directory: Path | None = None, log: Log = lambda _m: None) -> DevState:
    """Start what is not running; return the state. Idempotent."""
    directory = (directory or dev_dir()).absolute()
    made_parent = not directory.parent.exists()
    with _locked(directory):
        old = read_state(directory)
        marker = str(directory)
        if old is None:
            # No state but processes of ours: an `up` killed before it wrote state.json.
            for pid in our_processes([marker]):
                _stop_pid(pid, marker)
                log(f"stopped leftover process {pid} of an interrupted `dev up`")
        started: list[tuple[int, str]] = []  # (pid, its marker) of what this call started
        engine_dir_made: Path | None = None
        try:
            # The registry.
            if old and _is_ours(old.registry_pid, marker) and _registry_answers(old.registry):
                registry, registry_pid = old.registry, old.registry_pid
                log(f"registry {registry} already running (pid {registry_pid})")
            else:
                if old:
                    _stop_pid(old.registry_pid, marker, timeout=5)
                preferred = int(old.registry.rsplit(":", 1)[1]) if old else None
                registry, registry_pid = _start_registry(directory, preferred)
                started.append((registry_pid, marker))
                log(f"registry {registry} started (pid {registry_pid})")

            # The engine: ours if still alive, else the machine's own, else a new dockerd.
            engine_pid: int | None = None
            engine_dir: str | None = None
            old_dir = old.engine_dir if old else None
            if (
                old
                and old.engine_is_ours
                and old.engine_pid
                and old_dir
                and (_is_ours(old.engine_pid, old_dir) and ping(old.engine_url))
            ):
                engine_url, engine_pid, engine_dir = old.engine_url, old.engine_pid, old_dir
                log(f"docker engine {engine_url} already running (pid {engine_pid})")
            elif (machine := existing_engine()) is not None:
                engine_url = machine
                log(f"docker engine {engine_url}: the machine's own, used as it is")
            else:
                if old and old.engine_pid and old_dir:
                    # Gone after a crash; its containerd may live on, holding the directory.
                    _stop_pid(old.engine_pid, old_dir)
                    for pid in our_processes([old_dir]):
                        _stop_pid(pid, old_dir)
                    _cleanup_engine_dir(Path(old_dir))
                if os.geteuid() != 0:
                    raise DevEnvError(
                        "no Docker engine answers (DOCKER_HOST, /var/run/docker.sock) and a "
                        "private dockerd needs root: start Docker (rootless Docker works) and "
                        "set DOCKER_HOST, or run `playbookctl dev up` as root"
                    )
                where = _engine_dir(directory)
                if not str(where).startswith(marker):
                    engine_dir_made = where
                engine = start_dockerd(where)
                if engine.process is None:  # pragma: no cover - start_dockerd always sets it
                    raise DevEnvError("dockerd started without a process")
                engine_url, engine_pid, engine_dir = engine.url, engine.process.pid, str(where)
                started.append((engine_pid, engine_dir))
                log(f"docker engine {engine_url} started (pid {engine_pid})")

            # The base-image stand-in, in the registry.
            stand_in = f"{registry}/{STAND_IN}"
            if _has_manifest(registry, STAND_IN):
                log(f"base-image stand-in {stand_in} present")
            else:
                make_base_image(engine_url, directory / "base", stand_in)
                shutil.rmtree(directory / "base", ignore_errors=True)
                log(f"base-image stand-in {stand_in} built and pushed")
        except BaseException:
            # Whatever this call started goes again; a fresh directory goes entirely.
            for pid, its_marker in reversed(started):
                _stop_pid(pid, its_marker)
            if engine_dir_made is not None:
                for pid in our_processes([str(engine_dir_made)]):
                    _stop_pid(pid, str(engine_dir_made))
                _cleanup_engine_dir(engine_dir_made)
            if old is None:
                for pid in our_processes([marker]):
                    _stop_pid(pid, marker)
                _remove(directory)
            raise
        state = DevState(
            directory=marker,
            registry=registry,
            registry_pid=registry_pid,
            engine_url=engine_url,
            engine_pid=engine_pid,
            engine_dir=engine_dir,
            stand_in=stand_in,
            started=old.started if old and not started else time.time(),
            made_parent=old.made_parent if old else made_parent,
        )
        _write_state(directory, state)
        return state


def _cleanup_engine_dir(path: Path) -> None:
    for mount in mounts_under([str(path)]):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def _remove(directory: Path) -> None:
    for mount in mounts_under([str(directory)]):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    shutil.rmtree(directory, ignore_errors=True)
    if directory.exists():
        raise DevEnvError(f"could not remove {directory}; remove it by hand")


def down(directory: Path | None = None, log: Log = lambda _m: None) -> bool:
    """Stop what `up` started and remove the directory. False when nothing was there."""
    directory = (directory or dev_dir()).absolute()
    if not directory.exists():
        return False
    with _locked(directory):
        state = read_state(directory)
        marker = str(directory)
        markers = [marker]
        if state and state.engine_dir:
            markers.append(state.engine_dir)
        if state and state.engine_is_ours and state.engine_pid and state.engine_dir:
            # The engine first: it stops its containers and its containerd.
            _stop_pid(state.engine_pid, state.engine_dir)
            log(f"stopped docker engine (pid {state.engine_pid})")
        if state:
            _stop_pid(state.registry_pid, marker)
            log(f"stopped registry {state.registry} (pid {state.registry_pid})")
        # Anything of ours left (state lost, a containerd orphaned by a kill -9).
        for pid in our_processes(markers):
            _stop_pid(pid, next(m for m in markers if _is_ours(pid, m)))
            log(f"stopped leftover process {pid}")
        if state and not state.engine_is_ours:
            _remove_images(state, log)
        if state and state.engine_dir and not state.engine_dir.startswith(marker):
            _cleanup_engine_dir(Path(state.engine_dir))
        _remove(directory)
        log(f"removed {directory}")
    if state and state.made_parent:
        with contextlib.suppress(OSError):
            directory.parent.rmdir()  # only when empty: the lint cache may live there too
    return True


def _remove_images(state: DevState, log: Log) -> None:
    """The images built in the machine's own engine for this registry (stand-in, tries)."""
    if not ping(state.engine_url):
        log(f"docker engine {state.engine_url} does not answer: its images are left alone")
        return
    from playbookctl.build import Engine  # noqa: PLC0415 - docker SDK only when needed

    with Engine(state.engine_url) as engine:
        removed = engine.remove_images(f"{state.registry}/")
    if removed:
        log(f"removed {len(removed)} image tag(s) of {state.registry} from {state.engine_url}")


@dataclass(frozen=True)
class Component:
    name: str
    where: str
    running: bool
    detail: str


def status(directory: Path | None = None) -> tuple[DevState | None, list[Component]]:
    directory = (directory or dev_dir()).absolute()
    state = read_state(directory)
    if state is None:
        return None, []
    marker = str(directory)
    reg_ok = _is_ours(state.registry_pid, marker) and _registry_answers(state.registry)
    if state.engine_is_ours and state.engine_pid and state.engine_dir:
        eng_ok = _is_ours(state.engine_pid, state.engine_dir) and ping(state.engine_url)
        eng_detail = f"private dockerd, pid {state.engine_pid}, in {state.engine_dir}"
    else:
        eng_ok = ping(state.engine_url)
        eng_detail = "the machine's own engine (not stopped by `dev down`)"
    base_ok = reg_ok and _has_manifest(state.registry, STAND_IN)
    return state, [
        Component(
            "registry",
            state.registry,
            reg_ok,
            f"docker-registry, pid {state.registry_pid}, storage {directory / 'registry'}",
        ),
        Component("docker engine", state.engine_url, eng_ok, eng_detail),
        Component(
            "base-image stand-in",
            state.stand_in,
            base_ok,
            "busybox, bash, kubectl; non-root user 65532",
        ),
    ]


def running_state(directory: Path | None = None) -> DevState:
    """The state of a running environment, or a DevEnvError saying how to start one."""
    state, components = status(directory)
    if state is None:
        raise DevEnvError("no dev environment is running: start one with `playbookctl dev up`")
    down_ = [c.name for c in components if not c.running]
    if down_:
        raise DevEnvError(
            f"the dev environment is not healthy ({', '.join(down_)} not answering): run "
            "`playbookctl dev up` again"
        )
    return state


def _try_path(root: Path, name: str, directory: Path | None = None) -> Path:
    # Several checkouts can share one environment: tries are kept per repository root.
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return (directory or dev_dir()) / "tries" / key / f"{name}.json"


def record_try(
    root: Path, name: str, record: dict[str, Any], directory: Path | None = None
) -> None:
    """What `playbookctl try` published for NAME, for `pipelinerun NAME --tried`."""
    path = _try_path(root, name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True), "utf-8")
    tmp.replace(path)


def load_try(root: Path, name: str, directory: Path | None = None) -> dict[str, Any] | None:
    try:
        data = json.loads(_try_path(root, name, directory).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def as_json(state: DevState, components: list[Component]) -> dict[str, Any]:
    return {
        "directory": state.directory,
        "components": [asdict(c) for c in components],
    }


__all__ = [
    "Component",
    "DevEnvError",
    "DevState",
    "as_json",
    "dev_dir",
    "down",
    "load_try",
    "our_processes",
    "read_state",
    "record_try",
    "running_state",
    "status",
    "up",
]
