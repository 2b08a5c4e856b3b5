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

A private ROOTLESS dockerd (`start_rootless_dockerd`; root only: it drops to a throwaway user)
is the engine a self-hosted runner with rootless Docker has: Docker's own dockerd-rootless.sh
under rootlesskit, run as an unprivileged user given a subordinate id range (subids.py), with
its data, exec root and XDG_RUNTIME_DIR under a temporary directory, and rootless Docker's
default network: a network namespace of its own (owned by its user namespace) that
slirp4netns connects to the outside, the host's loopback excluded (--disable-host-loopback).
Choices, and why:
- Not rootlesskit's `--net=host`, though it would reach the test registries on the host's
  loopback directly: a user namespace cannot re-enter a network namespace it does not own, so
  each container's network setup leaves one of dockerd's threads in the container's namespace,
  and a later registry request that runs on that thread fails with "connect: cannot assign
  requested address" (seen on the second platform's FROM).
- The test registries are on the host's loopback, which the engine's namespace cannot see:
  `reach()` opens a listener on the same address and port inside the engine's namespace (root
  enters it with nsenter) and carries each connection to the host's (a runner's engine reaches
  its registry through slirp4netns instead).
- slirp4netns opens /dev/net/tun inside the user namespace, where a 0600 node of root's (a
  machine without udev; Debian's udev makes it 0666) is closed to it: the engine then gets a
  0666 node of its own mounted over /dev/net/tun in a mount namespace of its own. Nothing of
  the machine's changes.
- Storage driver overlay2, which the kernel allows in a user namespace since 5.11 (Docker then
  diffs layers itself, "Native Overlay Diff: false"): no fuse-overlayfs needed; vfs would copy
  the whole filesystem for every layer.
Such an engine reads registry CAs from `~/.config/docker/certs.d`, not /etc/docker/certs.d
(`certs_dir`), and on a cgroup v1 host it has no cgroups at all ("Cgroup Driver: none").

A killed owner's private engine stops with it (`owner.dies_with_owner`), and the next private
engine removes the workdir it left (ownedtemp: a data root holds a base image or two).

This module speaks only `/_ping` over a socket; everything else goes through build.py.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from playbookctl.errors import FatalError
from playbookctl_dev import ownedtemp, owner, subids, trust

DEFAULT_SOCKET = "/var/run/docker.sock"
# Any loopback registry, whatever port it got; CIDRs are valid insecure-registry entries.
LOOPBACK_INSECURE = "127.0.0.0/8"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
# A private engine's own workdir: short (containerd's socket is under it), and marked
# (ownedtemp) so that the next private engine removes it if its owner was killed with -9.
TEMP_DIR = "/tmp"  # noqa: S108 - a private mkdtemp inside it
TEMP_PREFIX = "pbd-"
MARK = ".playbookctl-engine-owner"
TUN = Path("/dev/net/tun")
# Docker's rootless launcher: docker-ce has it on PATH, Debian's docker.io in contrib.
ROOTLESS_SCRIPTS = ("dockerd-rootless.sh", "/usr/share/docker.io/contrib/dockerd-rootless.sh")
# The daemon flags both kinds of private engine share: no bridge, no iptables (a build's RUN
# steps get only a loopback of their own), and all of 127.0.0.0/8 insecure (see above).
_PRIVATE_FLAGS = [
    "--iptables=false", "--ip6tables=false", "--bridge=none",
    "--ip-forward=false", "--ip-masq=false",
    "--storage-driver=overlay2",
    "--default-ulimit", "nofile=20000:20000",
]  # fmt: skip


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
    # A rootless engine's user, and the subordinate ids registered for it (removed by stop()).
    user: str | None = None
    subids: subids.SubidRegistration | None = field(default=None, repr=False)
    relays: list[_Relay] = field(default_factory=list, repr=False)
    # The lock on the workdir's mark (ownedtemp) when start_dockerd made the workdir.
    mark_fd: int | None = field(default=None, repr=False)

    @property
    def exec_root(self) -> Path | None:
        return self.workdir / "x" if self.workdir else None

    @property
    def home(self) -> Path | None:
        """A rootless engine's HOME (its user's, for the runner's processes too)."""
        return self.workdir / "home" if self.workdir and self.user else None

    @property
    def certs_dir(self) -> Path:
        """Where this engine reads a registry's CA (`<dir>/<host:port>/ca.crt`): a rootless
        engine reads its user's `~/.config/docker/certs.d`, never /etc/docker/certs.d."""
        home = self.home
        if home is not None:
            return home / ".config" / "docker" / "certs.d"
        return Path("/etc/docker/certs.d")

    def env(self) -> dict[str, str]:
        """Variables that point a client (the docker SDK, the docker CLI) at this engine."""
        return {"DOCKER_HOST": self.url}

    def reach(self, address: str, port: int) -> None:
        """Let this rootless engine reach `address:port` on the host's loopback (a test
        registry, its token service): a listener on the same address and port inside the
        engine's network namespace carries each connection to the host's."""
        if self.user is None or self.workdir is None:
            raise DockerEngineError("only a rootless engine has a network namespace to reach")
        pid = int((self.workdir / "run" / "docker.pid").read_text().strip())
        self.relays.append(_Relay(_listen_in_netns(pid, address, port), address, port))

    def stop(self) -> None:
        if not self.started or self.process is None:
            return
        for relay in self.relays:
            relay.close()
        self.relays.clear()
        proc, self.process = self.process, None
        # A rootless engine's processes: rootlesskit's child, slirp4netns, dockerd, containerd.
        below = descendants(proc.pid) if self.user is not None else []
        if proc.poll() is None:
            # rootlesskit passes the signal on to dockerd, which stops containerd.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        for pid, started in below:  # left over where the engine did not stop cleanly
            if trust.start_time(pid) == started:  # still that process, not a recycled pid
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if self.user is not None and self.workdir is not None:
            # containerd's shims are no one's children (they daemonize) but name the workdir
            # on their command lines.
            _kill_naming(f"{self.workdir}/")
        if self.subids is not None:
            subids.unregister(self.subids)
            self.subids = None
        # dockerd leaves its default network namespace mounted when it dies uncleanly; an
        # unmounted tree is what lets the directory go away.
        if self.exec_root is not None:
            netns = self.exec_root / "netns" / "default"
            if _is_mountpoint(netns):
                subprocess.run(["umount", str(netns)], check=False, capture_output=True)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.mark_fd is not None:  # after the dir is gone: nobody may take it before
            os.close(self.mark_fd)
            self.mark_fd = None

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


def descendants(root: int) -> list[tuple[int, int]]:
    """The processes below `root`, each with its start time."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat_line[stat_line.rindex(")") + 2 :].split()[1])
    found: list[tuple[int, int]] = []
    below = {root}
    while True:
        new = {pid for pid, parent in parents.items() if parent in below and pid not in below}
        if not new:
            break
        below |= new
        for pid in new:
            started = trust.start_time(pid)
            if started is not None:
                found.append((pid, started))
    return found


# Run by root inside an engine's network namespace (nsenter): bind the address and port there
# and hand the listening socket back over the inherited socket (fd argv[3]).
_LISTEN_HERE = """
import socket, sys
address, port, channel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
server = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((address, port))
server.listen(64)
socket.send_fds(socket.socket(fileno=channel), [b"ok"], [server.fileno()])
"""


def _listen_in_netns(pid: int, address: str, port: int) -> socket.socket:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        done = subprocess.run(
            ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", _LISTEN_HERE,
             address, str(port), str(theirs.fileno())],
            pass_fds=[theirs.fileno()], capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise DockerEngineError(
                f"cannot listen on {address}:{port} in the engine's network namespace: "
                f"{done.stderr.strip()[-500:]}"
            )
        _msg, fds, _flags, _addr = socket.recv_fds(ours, 16, 1)
    return socket.socket(fileno=fds[0])


class _Relay:
    """Connections accepted inside an engine's network namespace, carried to the same address
    and port in ours, each by two threads (one a direction)."""

    def __init__(self, listener: socket.socket, address: str, port: int) -> None:
        self.listener, self.address, self.port = listener, address, port
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._carry, args=(conn,), daemon=True).start()

    def _carry(self, conn: socket.socket) -> None:
        with conn:
            try:
                upstream = socket.create_connection((self.address, self.port), timeout=10)
            except OSError:
                return
            with upstream:
                upstream.settimeout(None)
                back = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
                back.start()
                _pump(conn, upstream)
                back.join()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way
        self.listener.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _kill_naming(text: str) -> None:
    """SIGKILL every process whose command line holds `text` (a private engine's workdir/)."""
    needle = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)


def start_dockerd(
    workdir: Path | None = None,
    insecure_registries: tuple[str, ...] = (LOOPBACK_INSECURE,),
    timeout: float = START_TIMEOUT,
    *,
    dies_with_owner: bool = False,
) -> DockerEngine:
    """Start a private dockerd and wait until it answers `/_ping`. `dies_with_owner`: the
    kernel stops it (SIGTERM: it stops its containerd) when this process dies, even killed
    with -9 (owner.dies_with_owner); the tests', the demo's and the benchmarks' engines, not
    `playbookctl dev`'s, which outlives the command that started it."""
    binary = shutil.which("dockerd")
    if binary is None:
        raise DockerEngineError(
            "no Docker engine answers (DOCKER_HOST, /var/run/docker.sock) and dockerd is not "
            "installed: apt-get install docker.io"
        )
    mark_fd: int | None = None
    if workdir is None:
        # A killed owner's engine dirs go now (its dockerd stopped with it, dies_with_owner).
        ownedtemp.remove_abandoned(TEMP_PREFIX, MARK, [TEMP_DIR])
        # Short on purpose: containerd's socket lives under the exec root.
        workdir, mark_fd = ownedtemp.make(TEMP_PREFIX, TEMP_DIR, MARK)
    workdir.mkdir(parents=True, exist_ok=True)
    sock = workdir / "docker.sock"
    cmd = [
        binary,
        "-H", f"unix://{sock}",
        "--data-root", str(workdir / "data"),
        "--exec-root", str(workdir / "x"),
        "--pidfile", str(workdir / "pid"),
        *_PRIVATE_FLAGS,
    ]  # fmt: skip
    for reg in insecure_registries:
        cmd += ["--insecure-registry", reg]
    if dies_with_owner:
        cmd = owner.dies_with_owner(cmd)
    # dockerd holds the mark too (and its containerd, which inherits it): a dir is abandoned
    # only once the engine that uses it is gone as well as its owner.
    marks = () if mark_fd is None else (mark_fd,)
    try:
        proc = _spawn(cmd, workdir, {**os.environ, "GODEBUG": "netdns=cgo"}, pass_fds=marks)
    except BaseException:
        if mark_fd is not None:
            shutil.rmtree(workdir, ignore_errors=True)
            os.close(mark_fd)
        raise
    engine = DockerEngine(
        url=f"unix://{sock}", started=True, workdir=workdir, process=proc, mark_fd=mark_fd
    )
    return _ready(engine, proc, workdir, timeout)


def start_rootless_dockerd(
    user: str = "nobody",
    workdir: Path | None = None,
    insecure_registries: tuple[str, ...] = (LOOPBACK_INSECURE,),
    timeout: float = START_TIMEOUT,
) -> DockerEngine:
    """Start a private rootless dockerd as `user` (by root, which registers the user's
    subordinate ids and drops to it) and wait until it answers `/_ping`. Its socket is
    `$XDG_RUNTIME_DIR/docker.sock`, as `dockerd-rootless-setuptool.sh` sets DOCKER_HOST."""
    if os.geteuid() != 0:
        raise DockerEngineError(
            "starting a rootless dockerd for another user needs root (it registers the "
            "user's subordinate ids in /etc/subuid and /etc/subgid, then drops to the user)"
        )
    script = next(filter(None, (shutil.which(s) for s in ROOTLESS_SCRIPTS)), None)
    missing = [
        package
        for package, found in (
            ("docker.io", shutil.which("dockerd") and script),
            ("rootlesskit", shutil.which("rootlesskit")),
            ("slirp4netns", shutil.which("slirp4netns")),
            ("uidmap", shutil.which("newuidmap") and shutil.which("newgidmap")),
            ("util-linux", shutil.which("setpriv") and shutil.which("nsenter")),
        )
        if not found
    ]
    if missing or script is None:
        raise DockerEngineError(
            "a rootless dockerd needs dockerd-rootless.sh, rootlesskit, slirp4netns, "
            "newuidmap/newgidmap, setpriv and nsenter: "
            f"apt-get install {' '.join(missing)} (make system-deps)"
        )
    if not TUN.exists():
        raise DockerEngineError(f"a rootless dockerd's slirp4netns needs {TUN}: modprobe tun")
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise DockerEngineError(f"no user {user!r} to run a rootless dockerd as") from None
    if account.pw_uid == 0:
        raise DockerEngineError(f"{user!r} is root: a rootless dockerd runs as another user")
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="pbr-", dir="/tmp"))  # short: see start_dockerd
    try:
        return _start_rootless(account, script, workdir, insecure_registries, timeout)
    except subids.SubidError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise DockerEngineError(f"cannot give {user!r} subordinate ids: {exc}") from None


def _start_rootless(
    account: pwd.struct_passwd,
    script: str,
    workdir: Path,
    insecure_registries: tuple[str, ...],
    timeout: float,
) -> DockerEngine:
    user = account.pw_name
    run = workdir / "run"  # XDG_RUNTIME_DIR: the user's alone
    for directory in (workdir, run, workdir / "home"):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, account.pw_uid, account.pw_gid)
    workdir.chmod(0o711)  # root's processes and the user's get through to the socket
    run.chmod(0o700)
    own_tun: list[str] = []
    tun = TUN.stat()
    if tun.st_mode & 0o006 != 0o006:
        node = workdir / "tun"
        os.mknod(node, stat.S_IFCHR | 0o666, tun.st_rdev)
        node.chmod(0o666)  # past the umask
        own_tun = [
            "unshare", "--mount", "--propagation", "private",
            "sh", "-c", f'mount --bind "$0" {TUN} && exec "$@"', str(node),
        ]  # fmt: skip
    sock = run / "docker.sock"
    uid, gid = account.pw_uid, account.pw_gid
    cmd = [
        *own_tun,
        "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--",
        script,
        "-H", f"unix://{sock}",
        "--data-root", str(workdir / "data"),
        "--exec-root", str(workdir / "x"),
        "--pidfile", str(run / "docker.pid"),
        *_PRIVATE_FLAGS,
    ]  # fmt: skip
    for reg in insecure_registries:
        cmd += ["--insecure-registry", reg]
    path = os.environ.get("PATH", "/usr/bin:/bin")
    env = {
        # dockerd is in /usr/sbin, which a user's PATH may lack
        "PATH": f"{path}:/usr/sbin:/sbin" if "/usr/sbin" not in path.split(":") else path,
        "HOME": str(workdir / "home"),
        "XDG_RUNTIME_DIR": str(run),
        "GODEBUG": "netdns=cgo",
        "DOCKERD_ROOTLESS_ROOTLESSKIT_NET": "slirp4netns",
        "LANG": "C.UTF-8",
    }
    # The ranges held still until rootlesskit has mapped them (see subids.py).
    with subids.held() as locks:
        registration = subids.register(user, os.getpid(), locks=locks)
        try:
            proc = _spawn(cmd, workdir, env)
            _wait_mapped(proc, timeout)
        except BaseException:
            subids.unregister(registration, locks=locks)
            raise
    engine = DockerEngine(
        url=f"unix://{sock}",
        started=True,
        workdir=workdir,
        process=proc,
        user=user,
        subids=registration,
    )
    return _ready(engine, proc, workdir, timeout)


def _wait_mapped(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until a process under rootlesskit (`proc`) has its user namespace's ids mapped (its own
    id and at least one range), or rootlesskit has exited (its log says why), or `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for pid, _started in descendants(proc.pid):
            with contextlib.suppress(OSError):
                if len(Path(f"/proc/{pid}/uid_map").read_text().splitlines()) >= 2:
                    return
        time.sleep(0.02)


def _spawn(
    cmd: list[str], workdir: Path, env: dict[str, str], pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[bytes]:
    log = (workdir / "dockerd.log").open("wb")
    try:
        return subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            pass_fds=pass_fds,
        )
    finally:
        log.close()


def _ready(
    engine: DockerEngine, proc: subprocess.Popen[bytes], workdir: Path, timeout: float
) -> DockerEngine:
    """`engine` once it answers `/_ping`; stopped, and its log's tail raised, if it does not."""
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
    """The existing engine when one answers, else a private dockerd stopped on exit (and
    with this process, however it ends)."""
    url = existing_engine(env)
    if url is not None:
        yield DockerEngine(url=url)
        return
    with start_dockerd(workdir, dies_with_owner=True) as engine:
        yield engine
