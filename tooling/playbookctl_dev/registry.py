"""A real OCI registry (CNCF distribution, Debian's `docker-registry`) for tests, the demo, the
benchmarks and `playbookctl dev`, set up by default the way production registries are.

`LocalRegistry()` (the default, "production" mode) is what GHCR, Quay or Harbor look like to a
client: HTTPS under a host name (`reg-<random>.playbookctl.test`, mapped to a loopback address in
/etc/hosts), a certificate from a CA of its own installed where the Docker engine and
playbookctl look for it (`/etc/docker/certs.d/<name>:<port>/ca.crt`), and Bearer token auth:
distribution's own `auth: token`, whose realm is a small HTTPS token service
(token_service.py) that checks a username and password and issues short-lived ES256 JWTs the
registry verifies against its `rootcertbundle`. Clients log in the way they do in production: an
`auths` entry in a Docker config (`login()`). Only the token requests go through Python; pushes
and pulls go straight to the registry.

`LocalRegistry(tls=False, auth="none")` is the plain-HTTP loopback registry
(`127.0.0.1:<port>`) the demo path used before, kept for the few tests that cover it;
`auth="htpasswd"` gives a registry that demands a Basic login (htpasswd with a bcrypt hash made
by `htpasswd -Bbn`).

The /etc/hosts line and the certs.d directory are the only writes outside the registry's private
temp dirs (in memory when /dev/shm is there); they need root (`trust.py` says why and how they
are cleaned up). Use it as a context manager, or call start()/stop().

A process killed with -9 never runs stop(). Its docker-registry dies with it (the kernel's
parent-death signal, `owner.dies_with_owner`) and its token service follows it within a second,
but the temp dirs it made (its blobs, in memory) stay behind; each new LocalRegistry removes
those whose owners are gone (`remove_abandoned`). Each
such dir holds an `flock` on a file of its own for as long as its owner or the registry process
it started lives (ownedtemp.py says why that and nothing else decides).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Literal

from playbookctl.errors import FatalError
from playbookctl_dev import ownedtemp, trust
from playbookctl_dev.owner import dies_with_owner
from playbookctl_dev.pki import Pki, make_pki

BINARY = "docker-registry"
START_TIMEOUT = 15.0
# Long enough that a normal test never sees one expire, short enough to be "short-lived" (GHCR
# and Docker Hub give 300 s). Tests that exercise expiry start a registry with 2-3 s.
DEFAULT_TOKEN_LIFETIME = 300
TOKEN_ISSUER = "playbookctl-test-token-service"  # noqa: S105 - a name, not a secret

Auth = Literal["token", "htpasswd", "none"]
# Where a registry keeps blobs and manifests: in memory (the default: _memory_dir says why),
# or on disk in its workdir (a benchmark's comparison with a registry that syncs to disk).
Storage = Literal["memory", "disk"]
_GRANTS_ALL = [
    {"type": "repository", "pattern": "*", "actions": ["*"]},
    {"type": "registry", "pattern": "catalog", "actions": ["*"]},
]
_GRANTS_PULL = [{"type": "repository", "pattern": "*", "actions": ["pull"]}]
# distribution's access log is Apache's combined format: `... "GET /v2/ HTTP/1.1" 401 ...`.
_ACCESS_LINE = re.compile(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/[\d.]+" \d{3} ')


class RegistryStartError(FatalError):
    """The loopback registry could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the registry binds it a few ms later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _memory_dir() -> str | None:
    """The shared-memory directory when usable, else None (the system temp dir).

    The registry syncs every blob and manifest to disk, which on a virtual disk costs 10-25 ms
    a write (4x the whole publish of a bundle); its data is throwaway, so memory is right."""
    shm = Path("/dev/shm")  # noqa: S108 - only a private mkdtemp inside it
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


# Every temp dir a LocalRegistry makes is named so (its workdir, its blobs' dir), and holds OWNER
# (see the module doc): remove_abandoned looks at nothing else.
TEMP_PREFIX = "playbookctl-registry-"
OWNER = ".playbookctl-registry-owner"


def _temp_dirs() -> list[str]:
    """Where a LocalRegistry makes its temp dirs: the memory dir, and the system temp dir."""
    return list(dict.fromkeys(d for d in (_memory_dir(), tempfile.gettempdir()) if d))


def remove_abandoned(where: list[str] | None = None) -> list[Path]:
    """Remove the temp dirs of registries whose owner and registry process are both gone (a
    session killed with -9); returns them (ownedtemp.remove_abandoned says which are ours)."""
    return ownedtemp.remove_abandoned(
        TEMP_PREFIX, OWNER, where if where is not None else _temp_dirs()
    )


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


class LocalRegistry:
    """`docker-registry serve`, by default over HTTPS with token auth (see the module doc)."""

    def __init__(
        self,
        *,
        tls: bool = True,
        auth: Auth | bool | None = None,
        username: str = "playbookctl",
        password: str | None = None,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
        readers: dict[str, str] | None = None,
        access_log: bool = False,
        workdir: Path | None = None,
        storage: Storage = "memory",
        address: str | None = None,
    ) -> None:
        self.tls = tls
        # The loopback address an HTTPS registry binds and its name maps to: trust's choice
        # (::1 where there is IPv6) unless a test needs another (127.0.0.1: what socks4, IPv4
        # only, can reach).
        self._address = address
        if isinstance(auth, bool):  # the older spelling: auth=True was the htpasswd registry
            auth = "htpasswd" if auth else "none"
        self.auth: Auth = auth if auth is not None else ("token" if tls else "none")
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(16)
        # Users allowed to pull only (name -> password): the token service's scope check.
        self.readers = dict(readers or {})
        self.token_lifetime = token_lifetime
        # Every request in registry.log (`requests()`): what a benchmark counts on HTTPS, where
        # no counting proxy can sit in the middle.
        self.access_log = access_log
        self._own_workdir = workdir is None
        self.workdir = workdir
        # Blobs and manifests: in memory unless asked otherwise (see _memory_dir), whatever
        # `workdir` (config, logs, keys) is; `data_dir` once started.
        self.storage: Storage = storage
        self.data_dir: Path | None = None
        self.port = 0
        self.token_port = 0
        self.hostname = "127.0.0.1"
        self.address = "127.0.0.1"
        self.pki: Pki | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.token_process: subprocess.Popen[bytes] | None = None
        # The OWNER locks of the temp dirs this registry made, passed to its processes too.
        self._owner_fds: list[int] = []
        self._registration: trust.Registration | None = None
        # name -> its credentials (the token service takes one, or a list)
        self._users: dict[str, list[dict[str, object]]] = {}

    @property
    def host(self) -> str:
        """host:port, what goes in a reference (`reg-x.playbookctl.test:PORT/repo:tag`, or
        `127.0.0.1:PORT/...` for a plain one)."""
        return f"{self.hostname}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def ca_file(self) -> Path | None:
        """The CA that signed the registry's (and the token service's) certificate."""
        return self.pki.ca.cert if self.pki is not None else None

    @property
    def token_log(self) -> Path | None:
        """One JSON line per token issued (token mode), for tests that count logins."""
        return self.workdir / "tokens.log" if self.auth == "token" and self.workdir else None

    def tokens_issued(self, user: str | None = None) -> int:
        log = self.token_log
        if log is None or not log.exists():
            return 0
        lines = [json.loads(x) for x in log.read_text("utf-8").splitlines() if x.strip()]
        return sum(1 for x in lines if user is None or x["user"] == user)

    def token_scopes(self, user: str | None = None) -> list[list[str]]:
        """The scopes each token issued was asked for (token mode), as the token service
        received them, in order."""
        log = self.token_log
        if log is None or not log.exists():
            return []
        lines = [json.loads(x) for x in log.read_text("utf-8").splitlines() if x.strip()]
        return [list(x["scopes"]) for x in lines if user is None or x["user"] == user]

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request the registry answered (needs `access_log=True`)."""
        if self.workdir is None or not self.access_log:
            raise RegistryStartError("requests(): start the registry with access_log=True")
        log = (self.workdir / "registry.log").read_text("utf-8", "replace")
        return [(m[1], m[2]) for m in _ACCESS_LINE.finditer(log)]

    def __repr__(self) -> str:  # no password
        return f"LocalRegistry(host={self.host!r}, tls={self.tls}, auth={self.auth!r})"

    # -- credentials, as production hands them over ----------------------------------------

    def docker_auth(self, username: str | None = None, password: str | None = None) -> str:
        user = username or self.username
        secret = password if password is not None else self.password
        return base64.b64encode(f"{user}:{secret}".encode()).decode()

    def login(
        self, docker_config: Path, username: str | None = None, password: str | None = None
    ) -> None:
        """What `docker login` does: an `auths` entry for this registry in
        `docker_config/config.json` (other entries kept). No-op for a registry without auth."""
        if self.auth == "none":
            return
        docker_config.mkdir(parents=True, exist_ok=True)
        path = docker_config / "config.json"
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict):
            data = {}
        auths = data.setdefault("auths", {})
        auths[self.host] = {"auth": self.docker_auth(username, password)}
        path.write_text(json.dumps(data, indent=2), "utf-8")
        path.chmod(0o600)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this registry's CA only."""
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    # -- lifecycle ---------------------------------------------------------------------------

    def _data_dir(self, workdir: Path) -> Path:
        """Blobs go in a directory of their own in memory (removed by stop()) unless storage is
        disk (then `workdir/data`), whatever the workdir is."""
        if self.data_dir is None:
            if self.storage == "memory":
                self.data_dir = self._own_tempdir(TEMP_PREFIX + "data-", _memory_dir())
            else:
                self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def _own_tempdir(self, prefix: str, where: str | None) -> Path:
        path, fd = ownedtemp.make(prefix, where, OWNER)
        self._owner_fds.append(fd)
        return path

    def _write_config(self, workdir: Path) -> Path:
        data = self._data_dir(workdir)
        http = [f"addr: '{_bracket(self.address)}:{self.port}'", f"secret: {secrets.token_hex(16)}"]
        if self.tls:
            pki = self._pki()
            http.append(f"tls: {{certificate: {pki.server.cert}, key: {pki.server.key}}}")
        lines = [
            "version: 0.1",
            "log: {level: error, accesslog: {disabled: %s}}"
            % ("false" if self.access_log else "true"),
            f"storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}, "
            "cache: {blobdescriptor: inmemory}}",
            "http: {" + ", ".join(http) + "}",
        ]
        if self.auth == "htpasswd":
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
        elif self.auth == "token":
            lines.append(
                f"auth: {{token: {{realm: '{self.token_realm}', service: '{self.hostname}', "
                f"issuer: {TOKEN_ISSUER}, rootcertbundle: {self._pki().ca.cert}}}}}"
            )
        config = workdir / "config.yml"
        config.write_text("\n".join(lines) + "\n", "utf-8")
        return config

    @property
    def token_realm(self) -> str:
        return f"{self.scheme}://{self.hostname}:{self.token_port}/token"

    def start(self) -> LocalRegistry:
        if shutil.which(BINARY) is None:
            raise RegistryStartError(
                f"{BINARY} not found: apt-get install docker-registry (or `make system-deps`)"
            )
        if self.tls:
            why = trust.can_install()
            if why is not None:
                raise trust.TrustError(
                    f"an HTTPS registry needs its name in /etc/hosts and its CA in "
                    f"/etc/docker/certs.d: {why}"
                )
        remove_abandoned()
        if self.workdir is None:
            where = _memory_dir() if self.storage == "memory" else None
            self.workdir = self._own_tempdir(TEMP_PREFIX, where)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            if self.tls:
                self.address = self._address or trust.loopback_address()
                self.hostname = trust.unique_name()
                self.pki = make_pki(self.workdir / "pki", self.hostname)
            if self.auth == "token":
                self._start_token_service(self.workdir)
            return self._start_registry(self.workdir)
        except BaseException:
            self.stop()
            raise

    def add_user(
        self, username: str, password: str, *, pull_only: bool = False, also: bool = False
    ) -> None:
        """Another account the token service accepts from now on (a CI job's own credentials,
        say: GitHub's actor and GITHUB_TOKEN). `also`: one more password for the account, with
        its own grants, beside those it has (GitHub's actor with each job's GITHUB_TOKEN, which
        may read packages or also write them as the job's permissions say)."""
        if self.auth != "token":
            raise RegistryStartError("add_user: only a token-auth registry has accounts to add")
        grants = _GRANTS_PULL if pull_only else _GRANTS_ALL
        credential: dict[str, object] = {"password": password, "grants": grants}
        if also:
            self._users.setdefault(username, []).append(credential)
        else:
            self._users[username] = [credential]
        self._write_users()

    def allow_anonymous_pull(self, allowed: bool = True) -> None:
        """Requests without credentials get pull tokens (a public package), or a 401 again."""
        if allowed:
            self.add_user("", "", pull_only=True)
        else:
            self._users.pop("", None)
            self._write_users()

    def _write_users(self) -> None:
        if self.workdir is None:
            raise RegistryStartError("the registry is not started")
        path = self.workdir / "token-users.json"
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self._users, f)
        tmp.replace(path)

    def _pki(self) -> Pki:
        if self.pki is None:
            raise RegistryStartError("no certificates: an HTTPS registry makes them in start()")
        return self.pki

    def _start_token_service(self, workdir: Path) -> None:
        pki = self._pki()
        ready = workdir / "token-service.port"
        self._users = {self.username: [{"password": self.password, "grants": _GRANTS_ALL}]}
        for name, secret in self.readers.items():
            self._users[name] = [{"password": secret, "grants": _GRANTS_PULL}]
        self._write_users()
        settings = {
            "host": self.address,
            "port": 0,
            "cert": str(pki.server.cert),
            "key": str(pki.server.key),
            "signing_cert": str(pki.token_signer.cert),
            "signing_key": str(pki.token_signer.key),
            "issuer": TOKEN_ISSUER,
            "service": self.hostname,
            "lifetime": self.token_lifetime,
            "users_file": str(workdir / "token-users.json"),
            "ready": str(ready),
            "log": str(workdir / "tokens.log"),
            "exit_with": os.getpid(),
        }
        config = workdir / "token-service.json"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(settings, f)
        log = (workdir / "token-service.log").open("ab")
        tooling = str(Path(__file__).resolve().parent.parent)
        self.token_process = subprocess.Popen(
            [sys.executable, "-m", "playbookctl_dev.token_service", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": tooling},
            pass_fds=self._owner_fds,  # it writes to the workdir until it follows its owner
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if ready.exists():
                self.token_port = int(ready.read_text("utf-8"))
                return
            if self.token_process.poll() is not None:
                break
            time.sleep(0.02)
        tail = (workdir / "token-service.log").read_text("utf-8", "replace")[-800:]
        raise RegistryStartError(f"the token service did not start: {tail.strip()}")

    def _start_registry(self, workdir: Path) -> LocalRegistry:
        last_error = ""
        for _ in range(5):  # the free port can be taken between probing and binding: retry
            self.port = free_port(self.address)
            if self.tls:
                # The name resolves, and both ports trust the CA, before anyone connects.
                if self._registration is not None:
                    trust.unregister(self._registration)
                ports = [self.port] + ([self.token_port] if self.token_port else [])
                self._registration = trust.register(
                    self.hostname, self.address, ports, self._pki().ca.cert, os.getpid()
                )
            config = self._write_config(workdir)
            log = (workdir / "registry.log").open("ab")
            self.process = subprocess.Popen(
                dies_with_owner([BINARY, "serve", str(config)]),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
                # Its blobs stay while it runs (orphaned only where dies_with_owner cannot
                # tie it to its owner).
                pass_fds=self._owner_fds,
            )
            log.close()
            if self._wait_ready():
                return self
            last_error = (workdir / "registry.log").read_text("utf-8", "replace")[-500:]
            self._kill_registry()
        raise RegistryStartError(f"{BINARY} did not become ready: {last_error.strip()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        context = self.ssl_context() if self.tls else None
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own URL
                    f"{self.url}/v2/", timeout=1, context=context
                ) as resp:
                    if resp.status == 200:
                        return True
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and self.auth != "none":  # up, asking for a login as it should
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _kill_registry(self) -> None:
        _terminate(self.process)
        self.process = None

    def stop(self) -> None:
        self._kill_registry()
        _terminate(self.token_process)
        self.token_process = None
        if self._registration is not None:
            trust.unregister(self._registration)
            self._registration = None
        if self.storage == "memory" and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
            self.data_dir = None
        for fd in self._owner_fds:  # after the dirs are gone: nobody may take them before
            os.close(fd)
        self._owner_fds = []

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
