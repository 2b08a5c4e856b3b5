"""Transport: one `requests.Session` for every registry, with the guarantees requests lacks.

- A deadline over each whole request, body included (a watchdog thread shuts the socket of a
  request still running at its deadline: requests' timeout bounds one socket read only).
- TLS trusted the way docker trusts a registry (TrustStore), verification always on.
- Proxies (HTTP(S)_PROXY / NO_PROXY) read once per origin; loopback never proxied.
- Bounded reads of every answer, transport failures worded for users, retry backoff.

No credentials are handled here (auth.py); Caller is what blobs.py and manifests.py need of the
client: one logical request with authentication and retries (client.RegistryClient.call).
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import heapq
import ipaddress
import itertools
import random
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from playbookctl.config import Config
from playbookctl.errors import cap_text
from playbookctl.oci.errors import ResponseTooLargeError
from playbookctl.oci.fileblob import FileBlob
from playbookctl.oci.tls import TrustStore, host_key

CONNECT_TIMEOUT = 5.0
BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# What we read of an answer nobody asked a size for (an upload's 201, an error's JSON): the
# registry's error codes fit in far less, and a hostile body must not grow our memory.
MAX_OTHER_BYTES = 64 * 1024
ERROR_TEXT_LIMIT = 1000  # a registry's error messages in ours: head and tail kept, the cut counted
_CHUNK = 64 * 1024


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


def loopback_answers(host: str, timeout: float = 1.0) -> bool:
    """True when something accepts a TCP connection at a loopback host[:port] (port 443 when
    none is given). Nothing is sent: it only tells a registry that is gone (a dev registry
    stopped, its port free) from one that runs. False for a host that is not loopback."""
    if not is_loopback(host):
        return False
    name, port = host, 443
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 443
    elif host.count(":") == 1:
        name, _, p = host.partition(":")
        port = int(p) if p.isdigit() else 443
    try:
        with socket.create_connection((name, port), timeout=timeout):
            return True
    except OSError:
        return False


_warned_insecure: set[str] = set()
_warned_lock = threading.Lock()


def warn_insecure(host: str) -> None:
    """Once per process and host: a named registry reached without TLS."""
    with _warned_lock:
        if host in _warned_insecure:
            return
        _warned_insecure.add(host)
    print(
        f"playbookctl: warning: {host} is in insecure-registries: it is reached over plain HTTP, "
        "so the network between can read its credentials and change what is pushed and pulled",
        file=sys.stderr,
    )


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


class Transport:
    """Sends one HTTP request at a time for the client (see the module docstring); shared by
    publish's worker threads (urllib3's pool is thread-safe; our own state is locked)."""

    def __init__(self, config: Config, *, timeout: float) -> None:
        self.config = config
        self.timeout = timeout
        self.session = requests.Session()
        pool = max(16, config.jobs * 4)
        adapter = _WatchedAdapter(pool_connections=8, pool_maxsize=pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "playbookctl"
        # No compressed answers: a body's size limit must be the size we hold (no zip bombs).
        self.session.headers["Accept-Encoding"] = "identity"
        # requests re-reads proxy variables (all of os.environ) on every request when trust_env
        # is on: a third of our CPU per request. Read them once per origin instead (options);
        # this also keeps ~/.netrc out of the credential sources (auth.py documents them).
        self.session.trust_env = False
        certs_dir = Path(config.registry_certs_dir).expanduser()
        # A relative registry-certs-dir (pyproject.toml) is the repository's.
        self.trust = TrustStore(certs_dir if certs_dir.is_absolute() else config.root / certs_dir)
        adapter.tls_for = self._tls_context
        self._proxy_cache: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.request_count = 0

    def close(self) -> None:
        self.session.close()

    def scheme(self, host: str) -> str:
        """https, except for loopback registries and configured insecure ones (warned about)."""
        if is_loopback(host):
            return "http"
        if host.lower() in (h.lower() for h in self.config.insecure_registries):
            warn_insecure(host)
            return "http"
        return "https"

    def _tls_context(self, host: str, port: int | None) -> ssl.SSLContext:
        return self.trust.context(host_key(host, port), getattr(_current, "registry", None))

    def url(self, host: str, repo: str, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if path.startswith("/"):  # a Location header relative to the registry
            return f"{self.scheme(host)}://{host}{path}"
        return f"{self.scheme(host)}://{host}/v2/{repo}/{path}"

    def options(self, url: str) -> dict[str, Any]:
        """requests' per-request options for url: its proxies (HTTP(S)_PROXY / NO_PROXY, read
        once per scheme and host)."""
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

    def send(
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
        if isinstance(kwargs.get("data"), FileBlob):
            # Every request, a retry included, sends the blob from its first byte, streamed.
            kwargs["data"] = kwargs["data"].reader()
        try:
            with self._lock:
                self.request_count += 1
            resp = self.session.request(
                method,
                url,
                stream=True,
                timeout=self.timeouts(deadline),
                **kwargs,
                **self.options(url),
            )
            _current.watch = None
            wanted = resp.status_code in ok
            # A HEAD answer has no body: its Content-Length is the size a GET would send (a
            # 14 MB layer's HEAD is not a 14 MB answer).
            body = (
                b""
                if method == "HEAD"
                else _read_body(
                    resp, max_bytes if wanted else MAX_OTHER_BYTES, strict=wanted, what=what
                )
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

    def timeouts(self, deadline: float) -> tuple[float, float]:
        remaining = max(1.0, deadline - time.monotonic())
        return (min(CONNECT_TIMEOUT, self.timeout, remaining), min(self.timeout, remaining))

    @staticmethod
    def backoff(attempt: int, resp: requests.Response | None) -> tuple[float, float | None]:
        """(seconds to wait before the next try, what the registry asked for or None):
        exponential backoff with jitter, or longer when a 429 or 503 carries Retry-After
        (seconds or an HTTP-date, RFC 9110), never capped here: the caller stops at the
        operation's deadline instead."""
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        delay: float = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)) * jitter
        asked = retry_after(resp) if resp is not None and resp.status_code in (429, 503) else None
        if asked is not None:
            delay = max(delay, asked)
        return delay, asked


def retry_after(resp: requests.Response) -> float | None:
    """Retry-After in seconds from now (delta-seconds or an HTTP-date), or None if absent or
    unreadable."""
    value = resp.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110's IMF-fixdate is GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


class Caller(Protocol):
    """What blobs.py and manifests.py need: the configuration, and one logical request with
    authentication answered and transient failures retried (client.RegistryClient.call)."""

    config: Config
    deadline: float  # registry-deadline: seconds for one operation, its retries included

    def call(
        self,
        method: str,
        host: str,
        repo: str,
        path: str,
        *,
        what: str,
        ok: tuple[int, ...],
        headers: dict[str, str] | None = None,
        data: bytes | FileBlob | None = None,
        push: bool = False,
        extra_scopes: tuple[str, ...] = (),
        max_bytes: int = MAX_OTHER_BYTES,
        deadline: float | None = None,
    ) -> requests.Response: ...
