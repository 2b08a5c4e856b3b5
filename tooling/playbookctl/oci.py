"""The one module that talks to OCI registries (the distribution protocol over HTTP).

Nothing else in playbookctl talks to a registry: build, bundle, publish and verify call
RegistryClient. The HTTP calls are ours, over one `requests.Session`.

Why no oras-py: its `Registry` class is a 1,000-line catch-all whose gaps matter here.
- Its retry decorator sleeps 2+3**n seconds (3, 5, 11, 29, 83 s), retries only 500s and
  exceptions (not 429/502/503, no Retry-After) and sets no request timeout, so an unreachable or
  hanging registry takes minutes instead of failing within 30 s.
- Its token auth keeps one bearer token for all scopes (a mount needs pull on another repository),
  ignores `identitytoken` in the Docker config and `DOCKER_CONFIG` itself (it reads only
  ~/.docker/config.json), and logs token-endpoint response bodies at debug level.
- Its reference parser does not treat `localhost/repo` as a registry host.
- It offers no cross-repository mount and no blob-exists cache.
What was left of it here (four media-type strings, base64 of `user:password`, and its
`WWW-Authenticate` parser) is not worth a dependency, and the parser was wrong: it reads only
quoted values, so `Bearer realm="...",service=registry` (RFC 7235 allows a bare token) lost the
service. `parse_challenge` below reads both forms and backslash escapes.

Concurrency: one client is shared by publish's worker threads. `requests.Session` is used that
way widely (urllib3's pool is thread-safe); the pool is sized for the configured jobs. Our own
mutable state (token cache, known-blob cache, request counter) is guarded by a lock.

Credentials (first match wins, per registry host):
1. PLAYBOOKCTL_REGISTRY_TOKEN: a ready bearer token, sent as is (only to `config.registry`);
2. PLAYBOOKCTL_REGISTRY_USERNAME / PLAYBOOKCTL_REGISTRY_PASSWORD (only to `config.registry`);
3. the Docker config (`$DOCKER_CONFIG/config.json`, default ~/.docker/config.json): `auths`
   (`auth` base64 user:password, `username`/`password`, or `identitytoken`), then `credHelpers`
   / `credsStore` helpers (`docker-credential-<name> get`).
They are sent as basic auth when the registry asks for it, or exchanged for a bearer token at the
realm the registry names (`WWW-Authenticate: Bearer realm=...,service=...,scope=...`, as ghcr.io
and quay.io do); with no credentials an anonymous token is requested. Credentials never appear in
messages or logs: errors name the registry, the operation and the status only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import heapq
import ipaddress
import itertools
import json
import logging
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from playbookctl.config import Config
from playbookctl.errors import RegistryError, cap_text

log = logging.getLogger("playbookctl.oci")

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_MEDIA_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX)
INDEX_MEDIA_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)

ENV_USERNAME = "PLAYBOOKCTL_REGISTRY_USERNAME"
ENV_PASSWORD = "PLAYBOOKCTL_REGISTRY_PASSWORD"  # noqa: S105 - a variable name, not a secret
ENV_TOKEN = "PLAYBOOKCTL_REGISTRY_TOKEN"  # noqa: S105

CONNECT_TIMEOUT = 5.0
BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0
RETRY_AFTER_CAP = 10.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# What we read of an answer nobody asked a size for (an upload's 201, an error's JSON): the
# registry's error codes fit in far less, and a hostile body must not grow our memory.
MAX_OTHER_BYTES = 64 * 1024
MAX_BLOB_BYTES = 16 * 1024 * 1024  # the largest blob get_blob reads unless told otherwise
ERROR_TEXT_LIMIT = 1000  # a registry's error messages in ours: head and tail kept, the cut counted
_CHUNK = 64 * 1024

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_REPO_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


class ManifestNotFoundError(RegistryError):
    """The tag or digest does not exist in the registry."""


class DigestMismatchError(RegistryError):
    """Content fetched by digest does not hash to that digest (corrupted or tampered with), or
    the registry's Docker-Content-Digest names other content than it sent."""


class ResponseTooLargeError(RegistryError):
    """The registry's answer is larger than what the operation accepts (refused, not read)."""


# -- Deadlines over the whole response ------------------------------------------------------------
#
# requests' timeout bounds each socket read, not a request: a registry that drip-feeds a body
# (a byte every few seconds) holds a read for ever. So every request gets a deadline; a single
# watchdog thread shuts down the socket of a request still running at its deadline, which ends
# whatever read or write is blocked on it. The connection class below tells the watchdog which
# socket a request runs on (it records itself when the request is sent, in the sending thread).

_watch_lock = threading.Lock()
_current = threading.local()  # .watch: the _Watch of the request this thread is sending


class _Watch:
    __slots__ = ("conn", "deadline", "done", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.conn: Any = None
        self.done = False
        self.fired = False

    def expire(self) -> None:
        with _watch_lock:
            if self.done:
                return
            self.fired = True
            conn = self.conn
            # Only while the connection still serves this request: once back in the pool it may
            # carry another thread's request (which then recorded its own watch).
            sock = getattr(conn, "sock", None) if getattr(conn, "_watch", None) is self else None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to end
                sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with _watch_lock:
            self.done = True


class _Watchdog:
    """One daemon thread for every deadline of the process (a heap; finished ones are skipped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, watch: _Watch) -> None:
        with self._cond:
            heapq.heappush(self._heap, (watch.deadline, next(self._seq), watch))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="playbookctl-deadlines", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is watch:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    if self._heap and self._heap[0][2].done:
                        heapq.heappop(self._heap)
                        continue
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                watch = heapq.heappop(self._heap)[2]
            watch.expire()


_WATCHDOG = _Watchdog()


class _WatchMixin:
    """Registers the connection with the calling thread's deadline before each request. A mixin
    (not one class's method borrowed by the other) so that `super()` resolves in both the HTTP
    and the HTTPS connection class."""

    _watch: _Watch | None

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_current, "watch", None)
        with _watch_lock:
            self._watch = watch
            if watch is not None:
                watch.conn = self
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchMixin, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """Watched connections, and the TLS context of each request's host (`tls_for`): requests
    would give every HTTPS pool one CA bundle (certifi's, or REQUESTS_CA_BUNDLE) instead of the
    trust docker has for that host (see TrustStore)."""

    tls_for: Callable[[str, int | None], ssl.SSLContext] | None = None

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        kwargs: dict[str, Any] = dict(pool_kwargs)
        if host_params["scheme"] == "https" and self.tls_for is not None:
            for key in ("ca_certs", "ca_cert_dir", "cert_file", "key_file"):
                kwargs.pop(key, None)
            # The context is part of urllib3's pool key: one pool per host and trust.
            kwargs["ssl_context"] = self.tls_for(host_params["host"], host_params.get("port"))
            kwargs["cert_reqs"] = "CERT_REQUIRED"  # never off (urllib3 applies it to the context)
        return host_params, kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Nothing: the pool's ssl_context holds the whole trust (requests would add certifi's
        bundle to it here through conn.ca_certs)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS has connection classes of its own
            manager.pool_classes_by_scheme = {
                "http": _WatchedHTTPPool,
                "https": _WatchedHTTPSPool,
            }
        return manager


@dataclass(frozen=True)
class Reference:
    """`registry/repository[:tag][@sha256:...]`, parsed the way Docker does (the first path
    component is a registry host when it holds a `.` or `:` or is `localhost`)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(ref: str) -> Reference:
    """Parse a fully qualified reference; raise RegistryError (naming the ref) if it is not one."""
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise RegistryError(f"invalid reference {ref!r}: digest must be sha256:<64 hex>")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise RegistryError(f"invalid reference {ref!r}: bad tag {tag!r}")
    host, sep, repo = rest.partition("/")
    if not sep or not (("." in host) or (":" in host) or host == "localhost"):
        raise RegistryError(
            f"invalid reference {ref!r}: expected <registry>/<repository>[:tag][@digest]"
        )
    if not _REPO_RE.match(repo):
        raise RegistryError(f"invalid reference {ref!r}: bad repository name {repo!r}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(host, repo, tag, digest)


class Descriptor(NamedTuple):
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def image_index(children: Sequence[tuple[Descriptor, Mapping[str, str]]]) -> tuple[bytes, str]:
    """An image index listing each child manifest with its platform (os, architecture and
    variant); returns (bytes, media type). A Docker manifest list when every child is a Docker
    manifest (what a Docker engine pushes), else an OCI index. The same children in the same
    order give the same bytes, so the same digest."""
    docker = all(d.media_type == DOCKER_MANIFEST for d, _ in children)
    media_type = DOCKER_MANIFEST_LIST if docker else OCI_INDEX
    manifests = []
    for descriptor, platform in children:
        entry = descriptor.as_dict()
        entry["platform"] = {k: v for k, v in platform.items() if v}
        manifests.append(entry)
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode(), media_type


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (with or without a port)."""
    h = host
    if h.startswith("["):
        h = h[1 : h.find("]")] if "]" in h else h[1:]
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    if h.lower() == "localhost":  # the literal name only: never what a name resolves to
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


# -- TLS: trust what docker trusts -------------------------------------------------------------
#
# docker verifies a registry's certificate against the system trust store (which SSL_CERT_FILE
# and SSL_CERT_DIR replace, as Go's crypto/x509 reads them) plus every `*.crt` in
# /etc/docker/certs.d/<host[:port]>/, and presents the client certificate `*.cert` with its
# `*.key` found there (Harbor's mutual TLS). One CA installation must serve the engine and us,
# so TrustStore builds the same trust per host. requests alone would use certifi's bundle and
# read neither SSL_CERT_FILE nor certs.d. REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, which the client
# honoured before, stay an additional source.

ENV_CERTS_DIR = "PLAYBOOKCTL_REGISTRY_CERTS_DIR"


def _host_key(host: str, port: int | None) -> str:
    """How docker names a registry's certs.d directory: host, or host:port when a port is given."""
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


def _pem_files(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_file())
    except OSError:  # absent or unreadable: no CAs from there, as Go's loader does
        return []


class TrustStore:
    """The TLS context for each (host, registry) pair, built once: the system trust store (or
    SSL_CERT_FILE / SSL_CERT_DIR), REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, and certs.d's CAs and
    client certificate for the host and for the registry it serves (a token realm on another
    host is reached with the registry's trust, as the engine does: one transport per registry).
    Verification is always on; there is no switch to turn it off."""

    def __init__(self, certs_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.certs_dir = certs_dir
        self._env = dict(os.environ if env is None else env)
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context(self, host_key: str, registry: str | None) -> ssl.SSLContext:
        key = (host_key, registry or host_key)
        with self._lock:
            ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._build(*key)
            with self._lock:
                ctx = self._contexts.setdefault(key, ctx)
        return ctx

    def host_dirs(self, host_key: str, registry: str) -> list[Path]:
        """The certs.d directories that apply: the host's own, then its registry's."""
        names: list[str] = []
        for name in (registry, registry.lower(), host_key, host_key.lower()):
            if name and name not in names and "/" not in name and name not in (".", ".."):
                names.append(name)
        return [self.certs_dir / n for n in names if (self.certs_dir / n).is_dir()]

    def _build(self, host_key: str, registry: str) -> ssl.SSLContext:
        # create_default_context reads the system store through OpenSSL, which honours
        # SSL_CERT_FILE and SSL_CERT_DIR (each replaces the system's file or directory).
        ctx = ssl.create_default_context()
        env = self._env
        defaults = ssl.get_default_verify_paths()
        if not (env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR")) and not (
            defaults.cafile or defaults.capath
        ):
            ctx.load_verify_locations(certifi.where())  # a system without a trust store
        # OpenSSL reads SSL_CERT_DIR only through c_rehash'ed names; Go (docker) reads every
        # file in it. Do as docker does.
        for cert_dir in filter(None, env.get("SSL_CERT_DIR", "").split(":")):
            for path in _pem_files(Path(cert_dir)):
                with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                    ctx.load_verify_locations(cafile=str(path))
        extra = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
        if extra:
            self._load_ca(ctx, Path(extra), what="REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE")
        for directory in self.host_dirs(host_key, registry):
            files = _pem_files(directory)
            for path in files:
                if path.suffix == ".crt":
                    self._load_ca(ctx, path, what=f"{path} (registry-certs-dir)")
            for cert in (p for p in files if p.suffix == ".cert"):
                key = cert.with_suffix(".key")
                if not key.is_file():
                    raise RegistryError(
                        f"{cert}: client certificate without its key {key.name} "
                        "(docker refuses this too)"
                    )
                self._load_client_cert(ctx, cert, key)
            for key in (p for p in files if p.suffix == ".key"):
                if not key.with_suffix(".cert").is_file():
                    raise RegistryError(
                        f"{key}: client key without its certificate {key.stem}.cert "
                        "(docker refuses this too)"
                    )
        return ctx

    @staticmethod
    def _load_ca(ctx: ssl.SSLContext, path: Path, *, what: str) -> None:
        try:
            if path.is_dir():
                ctx.load_verify_locations(capath=str(path))
            else:
                ctx.load_verify_locations(cafile=str(path))
        except (ssl.SSLError, ValueError):
            raise RegistryError(f"{what}: not a PEM CA certificate") from None
        except OSError as exc:
            raise RegistryError(f"{what}: cannot read: {exc.strerror or exc}") from None

    @staticmethod
    def _load_client_cert(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
        def no_passphrase() -> bytes:
            # An encrypted key would make OpenSSL prompt on the terminal; docker refuses it too.
            raise RegistryError(f"{key}: the client key is encrypted; docker needs it plain")

        try:
            ctx.load_cert_chain(str(cert), str(key), password=no_passphrase)
        except ssl.SSLError as exc:
            raise RegistryError(
                f"{cert}: cannot use it with {key.name} as a client certificate "
                f"({exc.reason or 'not a PEM certificate and matching key'})"
            ) from None
        except OSError as exc:
            raise RegistryError(f"{cert}: cannot read: {exc.strerror or exc}") from None


def describe_tls_failure(exc: BaseException, host: str, certs_dir: Path) -> str:
    """One line for a failed TLS handshake: what was wrong, and how docker users fix it."""
    cause: BaseException | None = exc
    verify: ssl.SSLCertVerificationError | None = None
    seen = 0
    while cause is not None and seen < 10:
        if isinstance(cause, ssl.SSLCertVerificationError):
            verify = cause
            break
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        reason = getattr(cause, "reason", None)
        cause = (
            (reason if isinstance(reason, BaseException) else None)
            or nested
            or cause.__cause__
            or cause.__context__
        )
        seen += 1
    if verify is not None:
        reason = verify.verify_message or "certificate verify failed"
        return (
            f"the TLS certificate of {host} is not trusted ({reason}); install its CA as "
            f"docker does, in {certs_dir}/{host}/ca.crt (setting registry-certs-dir), or in the "
            "system trust store, or name it in SSL_CERT_FILE"
        )
    text = str(exc)
    m = re.search(r"\[SSL: ([A-Z_0-9]+)\]|(alert [a-z ]+)", text)
    what = m.group(1) or m.group(2) if m else type(exc).__name__
    # A server that wants a client certificate alerts "certificate required" (TLS 1.3) or "bad
    # certificate" (TLS 1.2) when none, or one it does not accept, was presented.
    hint = (
        f"; the registry wants a client certificate it accepts: {certs_dir}/{host}/client.cert "
        "and client.key, as docker reads them"
        if any(a in text.upper() for a in ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE"))
        else ""
    )
    return (
        f"TLS handshake with {host} failed ({what}){hint}; plain HTTP is used only for loopback "
        "registries and insecure-registries"
    )


_warned_insecure: set[str] = set()


def warn_insecure(host: str) -> None:
    """Once per process and host: a named registry reached without TLS."""
    with _watch_lock:
        if host in _warned_insecure:
            return
        _warned_insecure.add(host)
    print(
        f"playbookctl: warning: {host} is in insecure-registries: it is reached over plain HTTP, "
        "so the network between can read its credentials and change what is pushed and pulled",
        file=sys.stderr,
    )


# RFC 7235 auth-param: token BWS "=" BWS ( token / quoted-string ), comma-separated.
_AUTH_PARAM = re.compile(
    r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)"""
)


def parse_challenge(challenge: str) -> dict[str, str]:
    """The auth-params of one `WWW-Authenticate` challenge (`Bearer realm="...",service=x`),
    names lower-cased; quoted or bare values, backslash escapes undone."""
    _scheme, _, rest = challenge.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _AUTH_PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            break  # a malformed tail: keep what parsed so far
        quoted, bare = m.group(2), m.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params.setdefault(m.group(1).lower(), value)
        pos = m.end()
    return params


class _Creds(NamedTuple):
    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    bearer: str | None = None  # a ready token (PLAYBOOKCTL_REGISTRY_TOKEN)

    def __repr__(self) -> str:  # never let a repr leak a secret into a log or traceback
        return "_Creds(<redacted>)"

    @property
    def basic(self) -> str | None:
        if self.username is None or self.password is None:
            return None
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


def _docker_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def _auth_keys(host: str) -> list[str]:
    # The Docker CLI stores entries as `host`, `https://host` or (Docker Hub) `https://host/v1/`.
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/"]


def _credential_helper(helper: str, host: str) -> _Creds | None:
    try:
        proc = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=host.encode(),
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        log.debug("credential helper %s unavailable for %s", helper, host)
        return None
    if proc.returncode != 0:
        return None
    try:
        payload = json.loads(proc.stdout)
        user, secret = str(payload["Username"]), str(payload["Secret"])
    except (ValueError, KeyError, TypeError):
        return None
    # Helpers return `<token>` as the username for identity tokens, as the Docker CLI expects.
    if user == "<token>":
        return _Creds(identity_token=secret)
    return _Creds(username=user, password=secret)


def _utf8(
    creds: _Creds | None, origin: str, *, names: tuple[str, str] | None = None
) -> _Creds | None:
    """creds, if every part is UTF-8 text (what goes on the wire); else a one-line error that
    names where they came from and nothing about the value (not even its length). `names`: the
    variables the username and the password came from."""
    if creds is None:
        return None
    parts = (
        (creds.username, names[0] if names else origin),
        (creds.password, names[1] if names else origin),
        (creds.identity_token, origin),
        (creds.bearer, origin),
    )
    for part, where in parts:
        try:
            if part is not None:
                part.encode("utf-8")
        except UnicodeEncodeError:
            raise RegistryError(
                f"{where}: registry credentials must be UTF-8 text, and this is not"
            ) from None
    return creds


def load_credentials(
    host: str, config: Config, env: Mapping[str, str] | None = None
) -> _Creds | None:
    """Credentials for one registry host, or None (anonymous)."""
    env = os.environ if env is None else env
    if host == config.registry:
        if env.get(ENV_TOKEN):
            # a token read from a file ends in \n
            return _utf8(_Creds(bearer=env[ENV_TOKEN].strip()), ENV_TOKEN)
        if env.get(ENV_USERNAME) and env.get(ENV_PASSWORD) is not None:
            return _utf8(
                _Creds(username=env[ENV_USERNAME], password=env[ENV_PASSWORD]),
                "",
                names=(ENV_USERNAME, ENV_PASSWORD),
            )
    return _utf8(_docker_credentials(host, env), f"the Docker config's entry for {host}")


def _docker_credentials(host: str, env: Mapping[str, str]) -> _Creds | None:
    path = _docker_config_path(env)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        # Position and cause only: the text around a JSON error could be a credential.
        if isinstance(exc, json.JSONDecodeError):
            why = f"invalid JSON at line {exc.lineno} column {exc.colno}"
        elif isinstance(exc, UnicodeDecodeError):
            why = "not valid UTF-8"
        elif isinstance(exc, OSError) and exc.strerror:
            why = exc.strerror
        else:
            why = type(exc).__name__
        raise RegistryError(f"cannot read Docker config {path}: {why}") from None
    if not isinstance(data, dict):
        return None
    raw_auths = data.get("auths")
    auths: dict[str, Any] = raw_auths if isinstance(raw_auths, dict) else {}
    for key in _auth_keys(host):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            return _Creds(identity_token=str(entry["identitytoken"]))
        if entry.get("auth"):
            try:
                user, _, password = (
                    base64.b64decode(str(entry["auth"])).decode("utf-8").partition(":")
                )
            except (ValueError, UnicodeDecodeError):
                raise RegistryError(
                    f"Docker config {path}: the `auth` entry for {host} is not base64 user:password"
                ) from None
            return _Creds(username=user, password=password)
        if entry.get("username") and entry.get("password"):
            return _Creds(username=str(entry["username"]), password=str(entry["password"]))
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(host), str):
        return _credential_helper(helpers[host], host)
    if isinstance(data.get("credsStore"), str):
        return _credential_helper(data["credsStore"], host)
    return None


# What a transport error's text says, in words a user acts on (the text itself is a nested
# urllib3 repr with object addresses).
_TRANSPORT_REASONS = (
    ("Connection refused", "connection refused: is the registry running and the port right?"),
    ("Name or service not known", "cannot resolve the host name"),
    ("Temporary failure in name resolution", "cannot resolve the host name"),
    ("Failed to resolve", "cannot resolve the host name"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network is unreachable"),
    ("Connection reset", "connection reset by the registry"),
    ("RemoteDisconnected", "the registry closed the connection"),
)


def _transport_failure(exc: Exception, watch: _Watch, limit: float) -> str:
    name = type(exc).__name__
    if watch.fired:
        return f"no complete answer within {limit:g} s (registry-timeout)"
    if isinstance(exc, requests.Timeout):
        return f"{name} (no answer in time: registry-timeout)"
    text = str(exc)
    for needle, reason in _TRANSPORT_REASONS:
        if needle in text:
            return f"{name} ({reason})"
    return name


def _error_detail(resp: requests.Response) -> str:
    """The registry's error codes and messages (never request headers, which carry credentials)."""
    try:
        errors = resp.json().get("errors", [])
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors]
        if parts:
            return cap_text(" ".join("; ".join(parts).split()), ERROR_TEXT_LIMIT)
    except (ValueError, AttributeError):
        pass
    return cap_text(" ".join((resp.reason or "").split()), ERROR_TEXT_LIMIT)


class _SendFailedError(Exception):
    """A request got no complete answer (transport failure or deadline); str() says why."""


def _read_body(resp: requests.Response, limit: int, *, strict: bool, what: str) -> bytes:
    """At most `limit` bytes of the body. strict (an answer we asked for): more is a
    ResponseTooLargeError; otherwise (an error's text) the rest is dropped with the connection."""
    length = resp.headers.get("Content-Length", "")
    if strict and length.isdigit() and int(length) > limit:
        resp.close()
        raise ResponseTooLargeError(
            f"{what}: the answer is {int(length)} bytes, more than the {limit} accepted; not read"
        )
    chunks: list[bytes] = []
    total = 0
    for chunk in resp.iter_content(_CHUNK):
        total += len(chunk)
        if total > limit:
            resp.close()
            if strict:
                raise ResponseTooLargeError(
                    f"{what}: the answer is larger than the {limit} bytes accepted; refused "
                    "after reading that much"
                )
            chunks.append(chunk[: len(chunk) - (total - limit)])
            break
        chunks.append(chunk)
    return b"".join(chunks)


class RegistryClient:
    """A small, explicit OCI distribution client (see the module docstring)."""

    def __init__(
        self, config: Config, *, timeout: float | None = None, retries: int | None = None
    ) -> None:
        self.config = config
        # Seconds for one request, the whole answer read (registry-timeout), and for one
        # operation, its retries included (registry-deadline).
        self.timeout = config.registry_timeout if timeout is None else timeout
        self.deadline = max(config.registry_deadline, self.timeout)
        self.retries = config.registry_retries if retries is None else retries
        self.session = requests.Session()
        pool = max(16, config.jobs * 4)
        adapter = _WatchedAdapter(pool_connections=8, pool_maxsize=pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "playbookctl"
        # No compressed answers: a body's size limit must be the size we hold (no zip bombs).
        self.session.headers["Accept-Encoding"] = "identity"
        # requests re-reads proxy variables (all of os.environ) on every request when trust_env
        # is on: a third of our CPU per request. Read them once per host instead (_transport);
        # this also keeps ~/.netrc out of the credential sources, which are documented above.
        self.session.trust_env = False
        certs_dir = Path(config.registry_certs_dir).expanduser()
        # A relative registry-certs-dir (pyproject.toml) is the repository's.
        self.trust = TrustStore(certs_dir if certs_dir.is_absolute() else config.root / certs_dir)
        adapter.tls_for = self._tls_context
        self._proxy_cache: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._request_count = 0
        self._creds: dict[str, _Creds | None] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic_hosts: set[str] = set()
        self._known_blobs: set[tuple[str, str, str]] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryClient(registry={self.config.registry!r})"

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (token requests and retries included), for benchmarks."""
        return self._request_count

    # -- public API -------------------------------------------------------------------------------

    def resolve(self, ref: str | Reference) -> Descriptor | None:
        """The manifest descriptor a tag or digest points at, or None if there is none.

        A GET, not a HEAD: the digest is what the manifest's bytes hash to, never a header
        taken on trust (one request either way; a manifest is a few KiB)."""
        try:
            data, media_type, digest = self.get_manifest(ref)
        except ManifestNotFoundError:
            return None
        return Descriptor(media_type, digest, len(data))

    def read_back(self, ref: str | Reference) -> Descriptor:
        """Confirm that what a push reported is stored: fetch `ref` (which names a digest) by
        digest and hash it. A registry that acknowledged a push it did not keep, or keeps other
        bytes under that digest, is a RegistryError naming the digest."""
        r = self._ref(ref)
        if not r.digest:
            raise RegistryError(f"read back {r}: a digest is needed")
        try:
            data, media_type, digest = self.get_manifest(r)
        except ManifestNotFoundError:
            raise RegistryError(
                f"{r.name}@{r.digest}: the push was acknowledged but the registry does not have "
                "that manifest (not stored); nothing was published under it"
            ) from None
        return Descriptor(media_type, digest, len(data))

    def tag_exists(self, ref: str | Reference) -> bool:
        return self.resolve(ref) is not None

    def get_manifest(self, ref: str | Reference) -> tuple[bytes, str, str]:
        """(bytes, media type, digest); the digest is computed from the bytes and checked against
        the reference's digest when it has one. RegistryError if missing."""
        r = self._ref(ref)
        resp = self._call(
            "GET",
            r.registry,
            r.repository,
            f"manifests/{r.reference}",
            what=f"get manifest {r}",
            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)},
            ok=(200, 404),
            max_bytes=MAX_MANIFEST_BYTES,
        )
        if resp.status_code == 404:
            raise ManifestNotFoundError(f"{r}: manifest not found in registry {r.registry}")
        data = resp.content
        digest = sha256_digest(data)
        if r.digest and digest != r.digest:
            raise DigestMismatchError(
                f"{r}: the registry sent a manifest that hashes to {digest}, not to {r.digest}"
            )
        answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            # The header would be what gets reported and registered: never trust it over bytes.
            raise DigestMismatchError(
                f"{r}: the registry answered Docker-Content-Digest {answered}, but the manifest "
                f"it sent hashes to {digest}; refusing both"
            )
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            try:
                media_type = str(json.loads(data).get("mediaType", ""))
            except (ValueError, AttributeError):
                media_type = ""
        return data, media_type, digest

    def blob_exists(self, repo: str, digest: str, *, registry: str | None = None) -> bool:
        host = registry or self.config.registry
        if (host, repo, digest) in self._known_blobs:
            return True
        resp = self._call(
            "HEAD", host, repo, f"blobs/{digest}", what=f"check blob {digest[:19]}", ok=(200, 404)
        )
        if resp.status_code == 200:
            self._remember_blob(host, repo, digest)
            return True
        return False

    def get_blob(
        self,
        repo: str,
        digest: str,
        *,
        registry: str | None = None,
        max_bytes: int = MAX_BLOB_BYTES,
    ) -> bytes:
        """A blob's bytes, checked against its digest; ResponseTooLargeError past max_bytes
        (refused before or while reading, never read whole)."""
        host = registry or self.config.registry
        resp = self._call(
            "GET",
            host,
            repo,
            f"blobs/{digest}",
            what=f"get blob {digest[:19]}",
            ok=(200, 404),
            max_bytes=max_bytes,
        )
        if resp.status_code == 404:
            raise RegistryError(f"{host}/{repo}: blob {digest} not found")
        data = resp.content
        if sha256_digest(data) != digest:
            raise DigestMismatchError(
                f"{host}/{repo}: blob {digest} content does not match its digest"
            )
        return data

    def push_blob(
        self,
        repo: str,
        data: bytes,
        digest: str | None = None,
        *,
        registry: str | None = None,
        check: bool = True,
    ) -> str:
        """Upload a blob monolithically (POST then PUT), skipping it if the repository has it.

        check=False skips the HEAD for a blob that is probably new: for small blobs an upload
        (2 requests) is cheaper than HEAD + upload (3), and uploading a blob the registry already
        has is harmless. Blobs this client saw in the repository are skipped either way.
        """
        host = registry or self.config.registry
        digest = digest or sha256_digest(data)
        if sha256_digest(data) != digest:
            raise RegistryError(f"push blob to {host}/{repo}: data does not match {digest}")
        if (host, repo, digest) in self._known_blobs or (
            check and self.blob_exists(repo, digest, registry=host)
        ):
            return digest
        for attempt in range(2):
            location = self._start_upload(host, repo)
            sep = "&" if "?" in location else "?"
            resp = self._call(
                "PUT",
                host,
                repo,
                f"{location}{sep}digest={digest}",
                what=f"upload blob {digest[:19]}",
                headers={"Content-Type": "application/octet-stream"},
                data=data,
                ok=(201, 404),
                push=True,
            )
            if resp.status_code == 201:
                self._remember_blob(host, repo, digest)
                return digest
            # 404 BLOB_UPLOAD_UNKNOWN: a retried PUT whose first try completed, or an upload
            # session the registry lost (it restarted). Done if the blob is there, else restart.
            if self.blob_exists(repo, digest, registry=host):
                return digest
            log.debug("upload session lost for %s (attempt %d), restarting", digest, attempt)
        raise RegistryError(f"{host}/{repo}: upload of blob {digest} failed: upload session lost")

    def mount_blob(
        self, repo: str, digest: str, from_repo: str, *, registry: str | None = None
    ) -> bool:
        """Cross-repository mount; False if the registry would not mount (then push instead)."""
        host = registry or self.config.registry
        if (host, repo, digest) in self._known_blobs:
            return True
        resp = self._call(
            "POST",
            host,
            repo,
            f"blobs/uploads/?mount={digest}&from={from_repo}",
            what=f"mount blob {digest[:19]} from {from_repo}",
            ok=(201, 202),
            push=True,
            extra_scopes=(f"repository:{from_repo}:pull",),
        )
        if resp.status_code == 201:
            self._remember_blob(host, repo, digest)
            return True
        # 202: the registry opened an upload session instead; cancel it so it does not linger.
        location = resp.headers.get("Location")
        if location:
            try:
                self._call(
                    "DELETE", host, repo, location, what="cancel upload", ok=(204, 404), push=True
                )
            except RegistryError:
                log.debug("could not cancel upload session after refused mount")
        return False

    def push_manifest(
        self,
        repo: str,
        reference: str,
        data: bytes,
        media_type: str,
        *,
        registry: str | None = None,
    ) -> str:
        """PUT a manifest under a tag or digest; return its digest (checked with the registry's)."""
        host = registry or self.config.registry
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"push manifest to {host}/{repo}@{reference}: digest mismatch")
        resp = self._call(
            "PUT",
            host,
            repo,
            f"manifests/{reference}",
            what=f"push manifest {host}/{repo}:{reference}",
            headers={"Content-Type": media_type},
            data=data,
            ok=(201,),
            push=True,
        )
        answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(
                f"push manifest {host}/{repo}:{reference}: registry stored {answered}, "
                f"expected {digest}"
            )
        return digest

    def parse_reference(self, ref: str) -> Reference:
        return parse_reference(ref)

    # -- internals --------------------------------------------------------------------------------

    def _ref(self, ref: str | Reference) -> Reference:
        return ref if isinstance(ref, Reference) else parse_reference(ref)

    def _remember_blob(self, host: str, repo: str, digest: str) -> None:
        with self._lock:
            self._known_blobs.add((host, repo, digest))

    def scheme(self, host: str) -> str:
        """https, except for loopback registries and configured insecure ones (warned about)."""
        if is_loopback(host):
            return "http"
        if host.lower() in (h.lower() for h in self.config.insecure_registries):
            warn_insecure(host)
            return "http"
        return "https"

    def _tls_context(self, host: str, port: int | None) -> ssl.SSLContext:
        return self.trust.context(_host_key(host, port), getattr(_current, "registry", None))

    def _start_upload(self, host: str, repo: str) -> str:
        resp = self._call(
            "POST", host, repo, "blobs/uploads/", what="start blob upload", ok=(202,), push=True
        )
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"{host}/{repo}: registry started an upload without a Location")
        return location

    def _url(self, host: str, repo: str, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if path.startswith("/"):  # a Location header relative to the registry
            return f"{self.scheme(host)}://{host}{path}"
        return f"{self.scheme(host)}://{host}/v2/{repo}/{path}"

    def _credentials(self, host: str) -> _Creds | None:
        with self._lock:
            if host in self._creds:
                return self._creds[host]
        creds = load_credentials(host, self.config)
        with self._lock:
            self._creds[host] = creds
        return creds

    def _auth_header(self, host: str, scopes: tuple[str, ...]) -> str | None:
        creds = self._credentials(host)
        if creds is not None and creds.bearer:
            return f"Bearer {creds.bearer}"
        with self._lock:
            token = self._tokens.get((host, " ".join(scopes)))
            if token is None and scopes and scopes[0].endswith(":pull"):
                # A pull+push token for the same repository covers reads too.
                token = self._tokens.get((host, " ".join((scopes[0] + ",push", *scopes[1:]))))
            basic = host in self._basic_hosts
        if token:
            return f"Bearer {token}"
        if basic and creds is not None and creds.basic:
            return f"Basic {creds.basic}"
        return None

    def _authenticate(
        self,
        host: str,
        challenge: str,
        scopes: tuple[str, ...],
        deadline: float,
        sent: str | None,
    ) -> bool:
        """Answer a 401 challenge; True if there is something new to retry with.

        `sent` is the Authorization header the refused request carried: basic credentials are
        worth a retry only if that request did not already carry them (another thread may have
        switched the host to basic auth meanwhile, so "first time for this host" is not it)."""
        creds = self._credentials(host)
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if creds is None or creds.basic is None:
                return False
            with self._lock:
                self._basic_hosts.add(host)
            return sent != f"Basic {creds.basic}"
        if scheme != "bearer":
            return False
        params = parse_challenge(challenge)
        realm = params.get("realm", "")
        if not realm:
            return False
        realm_host = realm.split("/", 3)[2] if "://" in realm else ""
        if creds is not None and realm.startswith("http://") and self.scheme(realm_host) != "http":
            raise RegistryError(
                f"registry {host}: its token service {realm_host} is plain HTTP; refusing to "
                "send credentials there (allow it with insecure-registries)"
            )
        wanted = list(scopes)
        if params.get("scope"):
            for s in params["scope"].split(" "):
                if s and s not in wanted:
                    wanted.append(s)
        token = self._fetch_token(
            host,
            realm=realm,
            service=params.get("service"),
            scopes=wanted,
            creds=creds,
            deadline=deadline,
        )
        if token is None:
            return False
        with self._lock:
            self._tokens[(host, " ".join(scopes))] = token
        return True

    def _fetch_token(
        self,
        host: str,
        *,
        realm: str,
        service: str | None,
        scopes: list[str],
        creds: _Creds | None,
        deadline: float,
    ) -> str | None:
        try:
            if creds is not None and creds.identity_token:
                # OAuth2 refresh-token grant, as the Docker CLI does with an identity token.
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "client_id": "playbookctl",
                    "scope": " ".join(scopes),
                }
                if service:
                    form["service"] = service
                resp = self._send(
                    "POST", realm, deadline=deadline, what="token", registry=host, data=form
                )
            else:
                params: dict[str, str] = {"scope": " ".join(scopes)} if scopes else {}
                if service:
                    params["service"] = service
                headers = {}
                if creds is not None and creds.basic:
                    headers["Authorization"] = f"Basic {creds.basic}"
                resp = self._send(
                    "GET",
                    realm,
                    deadline=deadline,
                    what="token",
                    registry=host,
                    params=params,
                    headers=headers,
                )
        except requests.exceptions.SSLError as exc:
            realm_host = urlsplit(realm).netloc.rpartition("@")[2]
            raise RegistryError(
                f"registry {host}: its token service: "
                + describe_tls_failure(exc, realm_host, self.trust.certs_dir)
            ) from None
        except requests.RequestException as exc:
            raise RegistryError(
                f"registry {host}: token service unreachable ({type(exc).__name__})"
            ) from None
        except _SendFailedError as exc:
            raise RegistryError(f"registry {host}: token service unreachable ({exc})") from None
        if resp.status_code in (401, 403):
            raise RegistryError(
                f"registry {host}: authentication failed at its token service "
                f"(HTTP {resp.status_code}); check the credentials for {host}"
            )
        if resp.status_code != 200:
            raise RegistryError(f"registry {host}: token service answered HTTP {resp.status_code}")
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(f"registry {host}: token service answered without a token")
        return str(token)

    def _transport(self, url: str) -> dict[str, Any]:
        """Proxies (HTTP(S)_PROXY / NO_PROXY, read once per scheme and host) and CA bundle."""
        key = url.split("/", 3)[:3]
        origin = "/".join(key)
        proxies = self._proxy_cache.get(origin)
        if proxies is None:
            # A loopback registry is never reached through a proxy, as Docker does it: the
            # proxy could not reach our loopback anyway.
            loopback = len(key) == 3 and is_loopback(key[2])
            proxies = {} if loopback else requests.utils.get_environ_proxies(origin)
            with self._lock:
                self._proxy_cache[origin] = proxies
        return {"proxies": proxies}

    def _send(
        self,
        method: str,
        url: str,
        *,
        deadline: float,
        what: str,
        ok: tuple[int, ...] = (200,),
        max_bytes: int = MAX_OTHER_BYTES,
        registry: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTP request whose whole answer (headers and body) arrives within registry-timeout
        and the operation's deadline, else _SendFailedError; the body is read here, bounded.
        `registry`: the registry this request is for (its certs.d trust applies)."""
        now = time.monotonic()
        watch = _Watch(min(now + self.timeout, max(deadline, now + 1.0)))
        _WATCHDOG.arm(watch)
        _current.watch = watch
        _current.registry = registry
        resp: requests.Response | None = None
        try:
            self._count()
            resp = self.session.request(
                method,
                url,
                stream=True,
                timeout=self._timeouts(deadline),
                **kwargs,
                **self._transport(url),
            )
            _current.watch = None
            wanted = resp.status_code in ok
            body = _read_body(
                resp, max_bytes if wanted else MAX_OTHER_BYTES, strict=wanted, what=what
            )
            if watch.fired:  # a body without a length ends "cleanly" when its socket is shut
                raise _SendFailedError(_transport_failure(TimeoutError(), watch, self.timeout))
            resp._content = body
            return resp
        except requests.exceptions.SSLError:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if resp is not None:
                resp.close()
            raise _SendFailedError(_transport_failure(exc, watch, self.timeout)) from None
        finally:
            _current.watch = None
            _current.registry = None
            watch.finish()

    def _count(self) -> None:
        with self._lock:
            self._request_count += 1

    def _timeouts(self, deadline: float) -> tuple[float, float]:
        remaining = max(1.0, deadline - time.monotonic())
        return (min(CONNECT_TIMEOUT, self.timeout, remaining), min(self.timeout, remaining))

    def _backoff(self, attempt: int, resp: requests.Response | None) -> float:
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        delay: float = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)) * jitter
        if resp is not None and resp.status_code == 429:
            after = resp.headers.get("Retry-After", "")
            if after.strip().isdigit():
                delay = max(delay, min(RETRY_AFTER_CAP, float(after)))
        return delay

    def _call(
        self,
        method: str,
        host: str,
        repo: str,
        path: str,
        *,
        what: str,
        ok: tuple[int, ...],
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        push: bool = False,
        extra_scopes: tuple[str, ...] = (),
        max_bytes: int = MAX_OTHER_BYTES,
    ) -> requests.Response:
        """One logical request: auth challenges answered, transient failures retried with
        exponential backoff and jitter, all within registry-deadline seconds; each try has
        registry-timeout seconds for its whole answer, body included (at most max_bytes of it
        when the status is one of `ok`)."""
        url = self._url(host, repo, path)
        scopes = (f"repository:{repo}:{'pull,push' if push else 'pull'}", *extra_scopes)
        deadline = time.monotonic() + self.deadline
        attempt = 0
        auth_rounds = 0
        last = ""
        while True:
            hdrs = dict(headers or {})
            auth = self._auth_header(host, scopes)
            if auth:
                hdrs["Authorization"] = auth
            resp: requests.Response | None = None
            try:
                resp = self._send(
                    method,
                    url,
                    deadline=deadline,
                    what=f"registry {host}: {what}",
                    ok=ok,
                    max_bytes=max_bytes,
                    registry=host,
                    headers=hdrs,
                    data=data,
                    allow_redirects=True,
                )
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    f"registry {host}: cannot {what}: "
                    + describe_tls_failure(exc, host, self.trust.certs_dir)
                ) from None
            except _SendFailedError as exc:
                last = str(exc)
                log.debug("%s %s: %s (attempt %d)", method, url, last, attempt + 1)
            else:
                log.debug("%s %s -> %d", method, url, resp.status_code)
                if resp.status_code in ok:
                    return resp
                if resp.status_code == 401:
                    # Round 1 answers the challenge; round 2 covers a cached token that expired.
                    if auth_rounds < 2:
                        auth_rounds += 1
                        challenge = resp.headers.get("WWW-Authenticate", "")
                        if self._authenticate(host, challenge, scopes, deadline, auth):
                            continue
                    raise RegistryError(
                        f"registry {host}: authentication required to {what} "
                        + (
                            "(the credentials were refused or lack permission)"
                            if self._credentials(host) is not None
                            else "(no credentials found: docker login, or set "
                            f"{ENV_USERNAME}/{ENV_PASSWORD})"
                        )
                    )
                if resp.status_code == 403:
                    raise RegistryError(
                        f"registry {host}: access denied to {what} (HTTP 403): the credentials "
                        "lack permission for this repository"
                    )
                if resp.status_code not in RETRY_STATUSES:
                    detail = _error_detail(resp) if method != "HEAD" else ""
                    raise RegistryError(
                        f"registry {host}: {what} failed: HTTP {resp.status_code}"
                        + (f" ({detail})" if detail else "")
                    )
                last = f"HTTP {resp.status_code}"
            delay = self._backoff(attempt, resp)
            attempt += 1
            if attempt > self.retries or time.monotonic() + delay >= deadline:
                raise RegistryError(
                    f"registry {host}: {what} failed after {attempt} attempt(s): {last}"
                )
            time.sleep(delay)
