"""Transport: registry requests sent through urllib3 directly, with the guarantees it lacks.

Why urllib3 and not requests: requests' session machinery (setting merges, cookie jars, hooks,
runtime Protocol checks) doubled our CPU per request and we used none of it; the TLS, proxy and
deadline handling below had to work around it (trust_env off, cert_verify no-op, pool keys).

- A deadline over each whole request, body included (a watchdog thread shuts the socket of a
  request still running at its deadline: a socket timeout bounds one read only).
- A bound on each connection's name lookup, which urllib3 and PySocks leave to getaddrinfo
  (no timeout): the connection classes resolve through Transport.addresses instead (_Lookup, in
  a thread waited on until the request's deadline).
- TLS trusted the way docker trusts a registry (TrustStore, one context per host), verification
  always on.
- Proxies (HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, as requests read them) read once per origin;
  loopback never proxied. A ProxyManager per proxy URL (a SOCKSProxyManager for socks4/4a/5/5h,
  through PySocks), a PoolManager for the rest (keep-alive pools); every connection watched.
- Redirects are not followed here: client.call follows them, where the credential scope is ours
  (the Authorization header stays with the registry's origin; no HTTPS -> HTTP).
- Bounded reads of every answer (Response: status, headers, the body read), transport failures
  worded for users (named as requests named them: ConnectionError, ReadTimeout...), TLSError
  for a handshake that failed for good (one the peer closed or reset is a transport failure,
  retried), retry backoff and Retry-After, and the retry loop itself (Retries: what is retried,
  how long between tries, when to give up and how that reads), for the registry's requests and
  its token service's alike.

No credentials are handled here (auth.py); Caller is what blobs.py and manifests.py need of the
client: one logical request with authentication and retries (client.RegistryClient.call).
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import functools
import heapq
import ipaddress
import itertools
import json
import logging
import os
import random
import socket
import ssl
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from http.client import RemoteDisconnected
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import unquote, urlencode, urlsplit

from urllib3 import HTTPHeaderDict, Retry, Timeout
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.util import make_headers
from urllib3.util.connection import allowed_gai_family

from playbookctl.config import Config
from playbookctl.errors import RegistryError, RegistryUnavailableError, cap_text
from playbookctl.oci.errors import ResponseTooLargeError
from playbookctl.oci.fileblob import FileBlob
from playbookctl.oci.tls import TrustStore, host_key

if TYPE_CHECKING:  # imported at run time only for a SOCKS proxy (_socks_classes)
    from urllib3.contrib.socks import SOCKSProxyManager

log = logging.getLogger("playbookctl.oci")

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
# A socket timeout bounds each read, not a request: a registry that drip-feeds a body
# (a byte every few seconds) holds a read for ever. So every request gets a deadline; a single
# watchdog thread shuts down the socket of a request still running at its deadline, which ends
# whatever read or write is blocked on it. The connection class below tells the watchdog which
# socket a request runs on (it records itself when the request is sent, in the sending thread).

_watch_lock = threading.Lock()
_current = threading.local()  # .watch: the _Watch of the request this thread is sending


class _Watch:
    __slots__ = ("by_timeout", "conn", "deadline", "done", "fired")

    def __init__(self, deadline: float, *, by_timeout: bool = True) -> None:
        self.deadline = deadline
        # registry-timeout set the deadline (else the rest of registry-deadline did): messages
        # name the setting that ended a wait.
        self.by_timeout = by_timeout
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


class _ResolveMixin:
    """Opens the socket as urllib3's HTTPConnection._new_conn does, but with the host's
    addresses from the transport's bounded name lookup (Transport._lookup). urllib3 resolves
    with socket.getaddrinfo, which takes no timeout: a stalled resolver (resolv.conf's timeout x
    attempts x nameservers) would hold the request past registry-timeout and registry-deadline.
    Only the socket connects to an address: `host` (SNI, the certificate's name check, the Host
    header) stays the name. For a proxy, the connection's host is the proxy's (a tunnel's target
    is named in CONNECT, resolved by the proxy). Not mixed into the SOCKS classes: their
    _new_conn connects through the proxy (PySocks)."""

    host: str
    _dns_host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        transport = getattr(_current, "transport", None)
        watch = getattr(_current, "watch", None)
        if transport is None or watch is None:  # not opened by Transport.send: urllib3's own
            sock: socket.socket = super()._new_conn()  # type: ignore[misc]
            return sock
        try:
            sock = _connect(
                transport.addresses(self._dns_host, watch),
                self.port,
                self.timeout,
                self.source_address,
                self.socket_options,
            )
        except socket.gaierror as e:  # as urllib3 words each failure (_transport_failure reads it)
            raise u3.NameResolutionError(self.host, self, e) from e  # type: ignore[arg-type]
        except TimeoutError as e:
            raise u3.ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from e
        except OSError as e:
            raise u3.NewConnectionError(
                self,  # type: ignore[arg-type]
                f"Failed to establish a new connection: {e}",
            ) from e
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


def _connect(
    infos: list[tuple[Any, ...]],
    port: int,
    timeout: Any,
    source_address: tuple[str, int] | None,
    options: Any,
) -> socket.socket:
    """A socket connected to the first of `infos` (getaddrinfo's, in its order) that accepts,
    as urllib3's create_connection tries them; the last failure if none does."""
    err: OSError | None = None
    for family, socktype, proto, _, address in infos:
        sock = None
        try:
            sock = socket.socket(family, socktype, proto)
            for option in options or ():
                sock.setsockopt(*option)
            if timeout is None or isinstance(timeout, int | float):  # else urllib3's default
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect((address[0], port, *address[2:]))  # the lookup asked for no port
            # Drop an earlier address's failure: its traceback holds this frame and its callers'
            # (urllib3's, which then hold the answer read on this connection) past the request;
            # a HEAD answer kept alive so is never closed, and the connection's next request
            # fails (ResponseNotReady).
            err = None
            return sock
        except OSError as e:
            err = e
            if sock is not None:
                sock.close()
    if err is None:
        raise OSError("getaddrinfo returns an empty list")
    try:
        raise err
    finally:
        err = None  # the same cycle, as urllib3's create_connection breaks it


class _WatchedHTTPConnection(_WatchMixin, _ResolveMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchMixin, _ResolveMixin, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


@functools.cache
def _socks_classes() -> tuple[type[SOCKSProxyManager], dict[str, type[HTTPConnectionPool]]]:
    """The SOCKS proxy manager and its watched pools, made on first use: urllib3's SOCKS module
    imports PySocks, which only a SOCKS proxy needs (ImportError when it is not installed).
    SOCKS has connection classes of its own (their _new_conn goes through the proxy), so the
    watch is mixed into those too: a proxy that stalls mid-answer ends at the deadline; and so
    is the bounded name lookup (_ResolvingSOCKSConnection)."""
    # Without PySocks the module warns before it raises: our message says it instead.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u3.DependencyWarning)
        from urllib3.contrib.socks import (  # noqa: PLC0415 - see the docstring
            SOCKSConnection,
            SOCKSHTTPSConnection,
            SOCKSProxyManager,
        )
    import socks as pysocks  # type: ignore[import-untyped]  # noqa: PLC0415 - PySocks, as above

    class _ResolvingSOCKSConnection(SOCKSConnection):
        """PySocks resolves the proxy's name, and for socks5 and socks4 the registry's, with
        getaddrinfo or gethostbyname: no timeout (see _ResolveMixin). So both are resolved
        here, bounded (Transport.addresses), and PySocks is given addresses: each of the
        proxy's in turn (as PySocks tries them), and the registry's first (socks5, as PySocks
        picks it; socks4: its first IPv4 one). socks5h and socks4a still send the proxy the
        name. `host` is the name again before TLS reads it (SNI, the name check)."""

        def _new_conn(self) -> Any:
            transport = getattr(_current, "transport", None)
            watch = getattr(_current, "watch", None)
            if transport is None or watch is None:  # not opened by Transport.send
                return super()._new_conn()
            options = self._socks_options
            name = self._dns_host
            try:
                proxies = transport.addresses(str(options["proxy_host"]), watch)
                target = name
                if not options["rdns"]:
                    infos = transport.addresses(name, watch)
                    if options["socks_version"] == pysocks.PROXY_TYPE_SOCKS4:
                        infos = [info for info in infos if info[0] == socket.AF_INET]
                    if not infos:
                        raise OSError(f"{name} has no address socks can send")
                    target = str(infos[0][4][0])
            except OSError as e:  # as PySocks' own failure to resolve reads (urllib3's wording)
                why = f"Failed to establish a new connection: {e}"
                raise u3.NewConnectionError(self, why) from e
            err: Exception | None = None
            try:
                for proxy in proxies:
                    self._socks_options = {**options, "proxy_host": str(proxy[4][0])}
                    self._dns_host = target
                    try:
                        sock = super()._new_conn()
                    except (u3.NewConnectionError, u3.ConnectTimeoutError) as e:
                        err = e
                        continue
                    err = None  # its traceback would keep urllib3's frames alive (_connect)
                    return sock
            finally:
                self._socks_options, self._dns_host = options, name
            if err is None:
                raise u3.NewConnectionError(
                    self, "Failed to establish a new connection: getaddrinfo returns an empty list"
                )
            try:
                raise err
            finally:
                err = None

    class _WatchedSOCKSConnection(_WatchMixin, _ResolvingSOCKSConnection):
        pass

    class _WatchedSOCKSHTTPSConnection(
        _WatchMixin, _ResolvingSOCKSConnection, SOCKSHTTPSConnection
    ):
        pass

    class _WatchedSOCKSHTTPPool(HTTPConnectionPool):
        ConnectionCls = _WatchedSOCKSConnection

    class _WatchedSOCKSHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = _WatchedSOCKSHTTPSConnection

    class _SOCKSPools(_PerHostTLS, SOCKSProxyManager):
        pass

    return _SOCKSPools, {"http": _WatchedSOCKSHTTPPool, "https": _WatchedSOCKSHTTPSPool}


# What urllib3's SOCKSProxyManager reads a scheme as (version, names resolved by the proxy).
SOCKS_SCHEMES = ("socks5h", "socks5", "socks4a", "socks4")

# No retry and no redirect in urllib3 (client.call does both, within the deadline and the
# credential scope): a failure is raised as it is. Built once, not converted per request.
_NO_RETRIES = Retry(total=False, redirect=0)


class _PerHostTLS:
    """The TLS context of each HTTPS host (`tls_for`, docker's trust for it: TrustStore) in its
    pool's key: one pool per host and trust, verification required. For a proxy, the target's
    (a tunnel); the proxy's own connection keeps urllib3's default trust."""

    tls_for: Callable[[str, int | None], ssl.SSLContext]

    def connection_from_host(
        self,
        host: str | None,
        port: int | None = None,
        scheme: str | None = "http",
        pool_kwargs: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        if scheme == "https" and host:
            pool_kwargs = {
                **(pool_kwargs or {}),
                "ssl_context": self.tls_for(host, port),
                "cert_reqs": "CERT_REQUIRED",  # never off (urllib3 applies it to the context)
            }
        pool: HTTPConnectionPool = super().connection_from_host(  # type: ignore[misc]
            host, port, scheme, pool_kwargs
        )
        return pool


class _Pools(_PerHostTLS, PoolManager):
    pass


class _ProxyPools(_PerHostTLS, ProxyManager):
    pass


_M = TypeVar("_M", _Pools, _ProxyPools)


@functools.lru_cache(maxsize=256)  # asked several times per request, for a few hosts
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
# urllib3 repr with object addresses); {peer} is who was asked.
_TRANSPORT_REASONS = (
    ("Connection refused", "connection refused: is {peer} running and the port right?"),
    ("Name or service not known", "cannot resolve the host name"),
    ("Temporary failure in name resolution", "cannot resolve the host name"),
    ("Failed to resolve", "cannot resolve the host name"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network is unreachable"),
    ("Connection reset", "connection reset by {peer}"),
    ("RemoteDisconnected", "{peer} closed the connection"),
)


# The names requests gave urllib3's failures: users (and their scripts and our messages) know
# them, so a transport failure still reads "ConnectionError (connection refused: ...)".
def _failure_name(exc: BaseException, *, reading: bool = False) -> str:
    if isinstance(exc, u3.ProxyError):
        return "ProxyError"
    if isinstance(exc, u3.NewConnectionError):  # a subclass of ConnectTimeoutError
        return "ConnectionError"
    if isinstance(exc, u3.ConnectTimeoutError):
        return "ConnectTimeout"
    if isinstance(exc, u3.ReadTimeoutError | TimeoutError):
        return "ReadTimeout"
    if isinstance(exc, u3.DecodeError):
        return "ContentDecodingError"
    if isinstance(exc, u3.URLSchemeUnknown):
        return "InvalidSchema"
    if isinstance(exc, u3.LocationValueError):
        return "InvalidURL"
    if isinstance(exc, u3.ProtocolError):
        # Cut off while the body streamed, or before an answer came (a reset, a closed socket).
        return "ChunkedEncodingError" if reading else "ConnectionError"
    if isinstance(exc, u3.HTTPError | OSError):
        return "ConnectionError"
    return type(exc).__name__


def _socks_refusal(exc: BaseException) -> str | None:
    """What PySocks said when a SOCKS proxy failed us (unreachable, credentials refused, the
    target refused or not allowed), found in the chain urllib3 raises: its NewConnectionError
    alone reads as the registry refusing. None for any other failure."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain is short; never loop on a cycle
        if seen is None:
            return None
        if type(seen).__module__ == "socks":  # PySocks's errors (imported only with a proxy)
            # PySocks wraps the handshake's own error as "Socket error: ..."; that one says it.
            inner = getattr(seen, "socket_err", None)
            if type(inner).__module__ == "socks":
                seen = inner
            # PySocks names the proxy (host:port), never its credentials.
            return " ".join(str(seen).split())
        seen = seen.__cause__ or seen.__context__
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and what it wraps (urllib3's reason or first argument, then cause or context)."""
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(out) < 8 and seen not in out:  # short; never loop on a cycle
        out.append(seen)
        reason = getattr(seen, "reason", None)
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = (
            (reason if isinstance(reason, BaseException) else None)
            or nested
            or seen.__cause__
            or seen.__context__
        )
    return out


# What a peer that hangs up mid-handshake raises, as measured on Python 3.11 / OpenSSL 3.0 and
# urllib3 2.8 (tests/integration/test_oci_tls.py): a close after our ClientHello is
# ssl.SSLEOFError (UNEXPECTED_EOF_WHILE_READING) wrapped in urllib3's SSLError; a reset
# (SO_LINGER 0) a ConnectionResetError wrapped in ProtocolError. SSLZeroReturnError (a
# close_notify instead of an answer) and the other hang-ups are the same failure, not measured.
_CUT = (
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


def _cut_short(exc: BaseException) -> bool:
    """True when the peer closed or reset the connection (a TLS handshake cut short, or an
    answer): transient, as any dropped connection. False for a certificate not verified, a TLS
    alert, a protocol or cipher mismatch: no retry changes those (TLSError)."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError | u3.ProxyError):
            return False
        if isinstance(e, _CUT):
            return True
    return False


def _shown(proxy: str) -> str:
    """A proxy as scheme://host:port, for messages: never its credentials."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}"


def _transport_failure(
    exc: BaseException,
    watch: _Watch,
    limit: float,
    *,
    reading: bool,
    tls: bool = False,
    peer: str = "the registry",
    proxy: str | None = None,
) -> str:
    """One line for a request that got no complete answer. `tls`: an HTTPS URL; `peer`: who
    was asked (the registry, or its token service); `proxy`: the proxy it went through."""
    name = _failure_name(exc, reading=reading)
    # A socket timeout starts after the watch and lasts as long, so it ends at the deadline or
    # later: when it wins the race against the watchdog (a busy machine), the deadline is why.
    if watch.fired or time.monotonic() >= watch.deadline:
        return f"no complete answer within {limit:g} s (registry-timeout)"
    chain = _chain(exc)
    # No request was sent yet (the watch names the connection once one is), and no status line
    # came: before a request only an HTTP proxy's answer to CONNECT is read as one. Its
    # RemoteDisconnected is a ConnectionResetError, so it would read as the registry's reset.
    if (
        proxy is not None
        and watch.conn is None
        and any(isinstance(e, RemoteDisconnected) for e in chain)
    ):
        return f"ProxyError (the proxy {_shown(proxy)} closed the connection without a tunnel)"
    # No request was sent yet: a TCP connection was made (its failures are NewConnectionError),
    # so the TLS handshake is what failed.
    handshake = tls and watch.conn is None and not isinstance(exc, u3.NewConnectionError)
    if handshake and isinstance(exc, u3.ReadTimeoutError):  # urllib3's name for it
        return "ConnectTimeout (no answer to the TLS handshake in time: registry-timeout)"
    if handshake and _cut_short(exc):
        how = "reset" if any(isinstance(e, ConnectionResetError) for e in chain) else "closed"
        # Through a tunnel the peer's close arrives as the proxy's: the same bytes as a proxy
        # dropping the tunnel, so both are named.
        who = peer if proxy is None else f"{peer} or the proxy {_shown(proxy)}"
        return f"ConnectionError ({who} {how} the connection during the TLS handshake)"
    if name in ("ConnectTimeout", "ReadTimeout"):
        return f"{name} (no answer in time: registry-timeout)"
    socks = _socks_refusal(exc)
    if socks is not None:
        return f"ProxyError (SOCKS proxy: {cap_text(socks, ERROR_TEXT_LIMIT)})"
    text = str(exc)
    for needle, reason in _TRANSPORT_REASONS:
        if needle in text:
            # Who refused: a token service that is down is not "the registry" (it answers).
            return f"{name} ({reason.format(peer=peer)})"
    return name


class Response:
    """A registry's answer, its body read (bounded) by Transport.send: what the oci package uses
    of it. `headers` is case-insensitive (a repeated header's values joined by ", ")."""

    __slots__ = ("content", "headers", "reason", "status_code", "url")

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        *,
        content: bytes = b"",
        reason: str = "",
        url: str = "",
    ) -> None:
        self.status_code = status_code
        # urllib3's own (already case-insensitive) taken as is: no copy per request.
        self.headers = headers if isinstance(headers, HTTPHeaderDict) else HTTPHeaderDict(headers)
        self.content = content
        self.reason = reason
        self.url = url

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not (UnicodeDecodeError is one)."""
        return json.loads(self.content)

    def close(self) -> None:
        """Nothing to release: the body is read and the connection back in its pool (or closed)."""

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


def _error_detail(resp: Response) -> str:
    """The registry's error codes and messages (never request headers, which carry credentials)."""
    try:
        errors = resp.json().get("errors", [])
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors]
        if parts:
            return cap_text(" ".join("; ".join(parts).split()), ERROR_TEXT_LIMIT)
    except (ValueError, AttributeError):
        pass
    return cap_text(" ".join((resp.reason or "").split()), ERROR_TEXT_LIMIT)


def _server_error_words(resp: Response) -> str:
    """What a registry's 5xx answer says in distribution's error JSON, for the line that gives up
    on it; "" when it says nothing of the kind. Its `detail` counts here: distribution answers a
    storage failure with `UNKNOWN: unknown error` and puts the cause only there, a Go error whose
    errno is a number (`{"Enclosed": {"Op": "write", "Path": ..., "Err": 28}}`: its disk is
    full), which is said in words."""
    try:
        errors = resp.json().get("errors", [])
        parts = []
        for e in errors:
            said = f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
            cause = _detail_words(e.get("detail"))
            parts.append(f"{said} ({cause})" if said and cause else said or cause)
    except (ValueError, AttributeError, TypeError):
        return ""
    return cap_text(" ".join("; ".join(p for p in parts if p).split()), ERROR_TEXT_LIMIT)


def _detail_words(detail: object) -> str:
    """An error's `detail`: a Go path error as `<op> <path>: <errno's text>`, other text or JSON
    as it is (capped by the caller)."""
    if not detail:
        return ""
    if isinstance(detail, dict):
        inner = detail.get("Enclosed", detail)
        if isinstance(inner, dict) and isinstance(inner.get("Err"), int):
            errno = int(inner["Err"])
            where = " ".join(str(inner[k]) for k in ("Op", "Path") if inner.get(k))
            text = f"errno {errno}, {os.strerror(errno).lower()}"
            return f"{where}: {text}" if where else text
    if isinstance(detail, str):
        return detail
    return json.dumps(detail, separators=(",", ":"), sort_keys=True)


class _SendFailedError(Exception):
    """A request got no complete answer (transport failure or deadline); str() says why."""


class TLSError(Exception):
    """The TLS handshake with a registry or its token service failed for good (a certificate
    not trusted, an alert, a protocol mismatch; not a connection cut short: _cut_short). args[0]
    is urllib3's SSLError (its chain holds ssl's error), for tls.describe_tls_failure."""


def _read_body(raw: Any, limit: int, *, strict: bool, what: str) -> tuple[bytes, bool]:
    """(at most `limit` bytes of the body, whether all of it was read). strict (an answer we
    asked for): more is a ResponseTooLargeError; otherwise (an error's text) the rest is dropped
    with the connection."""
    length = raw.headers.get("Content-Length", "")
    if strict and length.isdigit() and int(length) > limit:
        raise ResponseTooLargeError(
            f"{what}: the answer is {int(length)} bytes, more than the {limit} accepted; not read"
        )
    chunks: list[bytes] = []
    total = 0
    for chunk in raw.stream(_CHUNK, decode_content=True):
        total += len(chunk)
        if total > limit:
            if strict:
                raise ResponseTooLargeError(
                    f"{what}: the answer is larger than the {limit} bytes accepted; refused "
                    "after reading that much"
                )
            chunks.append(chunk[: len(chunk) - (total - limit)])
            return b"".join(chunks), False
        chunks.append(chunk)
    return b"".join(chunks), True


def _discard(raw: Any) -> None:
    """A connection whose answer was not read to its end: closed, its pool slot given back."""
    with contextlib.suppress(Exception):  # a connection already broken: nothing to save
        raw.close()
        raw.release_conn()


def _environ_proxy(url: str) -> str | None:
    """The proxy the environment names for url (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY), chosen by
    requests' own rules (the library stays installed for the docker SDK): None for a direct
    connection. Asked once per origin (Transport.proxy), so its cost does not matter."""
    from requests.utils import get_environ_proxies, select_proxy  # noqa: PLC0415 - rarely

    return select_proxy(url, get_environ_proxies(url))


class _Lookup:
    """socket.getaddrinfo(host) in a daemon thread of its own, waited on for as long as a request
    may take. getaddrinfo takes no timeout and cannot be interrupted (the C library's resolver has
    its own, resolv.conf's, which is often longer than registry-timeout), so a stalled resolver
    would stall the request past its deadline; a thread can be given up on instead (it finishes
    in its own time; a daemon never holds up the exit). `infos` is empty for a name that does not
    resolve, and `error` says why (getaddrinfo's gaierror)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.infos: list[tuple[Any, ...]] = []
        self.error: OSError | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, name="playbookctl-lookup", daemon=True).start()

    def _run(self) -> None:
        try:
            self.infos = list(socket.getaddrinfo(self.host, None, type=socket.SOCK_STREAM))
        except OSError as e:
            self.error = e
        except UnicodeError:  # not a name IDNA can encode: it resolves to nothing
            pass
        finally:
            self.done.set()


class Transport:
    """Sends one HTTP request at a time for the client (see the module docstring); shared by
    publish's worker threads (urllib3's pools are thread-safe; our own state is locked)."""

    def __init__(self, config: Config, *, timeout: float) -> None:
        self.config = config
        self.timeout = timeout
        self._maxsize = max(16, config.jobs * 4)
        self.headers = {
            "User-Agent": "playbookctl",
            "Accept": "*/*",
            # No compressed answers: a body's size limit must be the size we hold (no zip bombs).
            "Accept-Encoding": "identity",
        }
        certs_dir = Path(config.registry_certs_dir).expanduser()
        # A relative registry-certs-dir (pyproject.toml) is the repository's.
        self.trust = TrustStore(certs_dir if certs_dir.is_absolute() else config.root / certs_dir)
        self._pools = self._managed(_Pools(num_pools=8, maxsize=self._maxsize, block=False))
        self._proxy_pools: dict[str, PoolManager] = {}
        self._proxy_cache: dict[str, str | None] = {}
        self._socks4_checked: set[str] = set()  # origins with an IPv4 address (socks4)
        # host -> its name lookup under way: a retry waits on it, not on one more.
        self._lookups: dict[str, _Lookup] = {}
        self._lock = threading.Lock()
        self.request_count = 0

    def _managed(self, manager: _M) -> _M:
        manager.tls_for = self._tls_context
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager

    def close(self) -> None:
        self._pools.clear()
        with self._lock:
            for manager in self._proxy_pools.values():
                manager.clear()
            self._proxy_pools.clear()

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

    def proxy(self, url: str) -> str | None:
        """The proxy for url (HTTP(S)_PROXY / NO_PROXY, read once per scheme and host), or
        None: a direct connection."""
        key = url.split("/", 3)[:3]
        origin = "/".join(key)
        try:
            return self._proxy_cache[origin]
        except KeyError:
            pass
        # A loopback registry is never reached through a proxy, as Docker does it: the proxy
        # could not reach our loopback anyway.
        loopback = len(key) == 3 and is_loopback(key[2])
        proxy = None if loopback else _environ_proxy(origin)
        with self._lock:
            self._proxy_cache[origin] = proxy
        return proxy

    def _manager(self, url: str, watch: _Watch) -> PoolManager:
        """The pool manager for url (direct, or its proxy's); `watch`: the request's deadline."""
        proxy = self.proxy(url)
        if proxy is None:
            return self._pools
        if proxy.lower().startswith("socks4://"):
            self._socks4_reaches(url, proxy, watch)
        with self._lock:
            manager = self._proxy_pools.get(proxy)
        if manager is not None:
            return manager
        url_of_proxy = proxy if "://" in proxy else f"http://{proxy}"
        parts = urlsplit(url_of_proxy)
        if parts.scheme.lower().startswith("socks"):
            manager = self._socks_manager(url, url_of_proxy)
        else:
            headers = {}
            if parts.username:  # requests sent a proxy URL's user:password as basic auth
                auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                headers = make_headers(proxy_basic_auth=auth)
            manager = self._managed(
                _ProxyPools(
                    url_of_proxy,
                    num_pools=8,
                    maxsize=self._maxsize,
                    block=False,
                    proxy_headers=headers,
                )
            )
        with self._lock:
            return self._proxy_pools.setdefault(proxy, manager)

    def _socks4_reaches(self, url: str, proxy: str, watch: _Watch) -> None:
        """A RegistryError, before any connection, when url's host has no IPv4 address: socks4
        can only ask the proxy for one (PySocks resolves the name with gethostbyname, which for
        a name mapped to ::1 answers 127.0.0.1 on glibc, or fails: the proxy then refuses, or
        the failure reads as the proxy's, retried for nothing). Checked once per origin; a name
        that does not resolve at all is left to fail as any unresolvable name does. The lookup
        ends by the request's deadline (_lookup)."""
        origin = "/".join(url.split("/", 3)[:3])
        with self._lock:
            if origin in self._socks4_checked:
                return
        host = urlsplit(origin).hostname or ""
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            infos = self._lookup(host, watch, why=" (socks4 sends the proxy an address)")
            families = {info[0] for info in infos}
            if families and socket.AF_INET not in families:
                addresses = sorted({str(info[4][0]) for info in infos})
                raise RegistryError(
                    f"{self._proxy_named(origin, proxy)}: socks4 reaches IPv4 addresses only, "
                    f"and {host} resolves to IPv6 only ({', '.join(addresses[:3])}); use "
                    "socks4a or socks5h (the proxy resolves the name) or socks5 (IPv6 too)"
                ) from None
        else:
            raise RegistryError(
                f"{self._proxy_named(origin, proxy)}: socks4 reaches IPv4 addresses only, and "
                f"{host} is an IPv6 address; use socks5h or socks5"
            )
        with self._lock:
            self._socks4_checked.add(origin)

    def addresses(self, host: str, watch: _Watch) -> list[tuple[Any, ...]]:
        """What a connection to host tries, in getaddrinfo's order (IPv4 only where Python has
        no IPv6, as urllib3 has it): an address as it is, a name through _lookup (bounded by
        the request's deadline). socket.gaierror for a name that does not resolve."""
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            lookup = self._lookup_of(host, watch)
            if lookup.error is not None:  # a new one per connection: one object, many threads
                raise socket.gaierror(*lookup.error.args) from None
            infos = lookup.infos
        else:  # no resolver involved for an address: no thread either
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        if allowed_gai_family() == socket.AF_INET:
            infos = [info for info in infos if info[0] == socket.AF_INET]
        return infos

    def _lookup(self, host: str, watch: _Watch, *, why: str = "") -> list[tuple[Any, ...]]:
        """host's addresses (getaddrinfo; none for a name that does not resolve), or
        _SendFailedError (_lookup_of)."""
        return self._lookup_of(host, watch, why=why).infos

    def _lookup_of(self, host: str, watch: _Watch, *, why: str = "") -> _Lookup:
        """host's name lookup, answered; or _SendFailedError (retried like a request without an
        answer) when it has not answered by the request's deadline: one line naming the host,
        the seconds and the setting (`why`: what needs the lookup, in it). A retry waits on the
        lookup already under way, so a stalled resolver holds one thread per host, not one per
        try."""
        start = time.monotonic()
        with self._lock:
            lookup = self._lookups.get(host)
            if lookup is None:
                lookup = self._lookups[host] = _Lookup(host)
        if not lookup.done.wait(max(0.0, watch.deadline - start)):
            if watch.by_timeout:
                within, limit = self.timeout, "registry-timeout"
            else:
                within, limit = round(watch.deadline - start, 1), "the rest of registry-deadline"
            raise _SendFailedError(
                f"the name lookup of {host}{why} gave no answer within {within:g} s ({limit})"
            )
        with self._lock:
            if self._lookups.get(host) is lookup:
                del self._lookups[host]
        return lookup

    @staticmethod
    def _proxy_named(origin: str, proxy: str) -> str:
        """Which proxy an origin is sent through and the variable that says so, for messages:
        never its credentials (scheme://host:port only)."""
        variable = "HTTPS_PROXY" if origin.lower().startswith("https:") else "HTTP_PROXY"
        return f"the proxy for {origin} ({variable} or ALL_PROXY) is {_shown(proxy)}"

    def _socks_manager(self, url: str, url_of_proxy: str) -> PoolManager:
        """A SOCKSProxyManager for the proxy, its connections watched. The URL's credentials
        (percent-decoded) are passed as urllib3's username/password, as requests passes them;
        socks5h and socks4a leave names to the proxy, socks5 and socks4 resolve them here.
        Without PySocks, or with a scheme urllib3 cannot read, a RegistryError: neither is
        transient, so no retry would help."""
        parts = urlsplit(url_of_proxy)
        scheme = parts.scheme.lower()
        origin = "/".join(url.split("/", 3)[:3])
        where = self._proxy_named(origin, url_of_proxy)
        if scheme not in SOCKS_SCHEMES:
            raise RegistryError(
                f"{where}: unknown SOCKS scheme {scheme!r}; use socks5h (names resolved by the "
                "proxy), socks5, socks4a or socks4"
            )
        try:
            manager_class, pools = _socks_classes()
        except ImportError:
            raise RegistryError(
                f"{where}: a SOCKS proxy needs the PySocks package, which is not installed: "
                "pip install PySocks"
            ) from None
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password or "") if username is not None else None
        manager = manager_class(
            url_of_proxy,
            username=username,
            password=password,
            num_pools=8,
            maxsize=self._maxsize,
            block=False,
        )
        manager.tls_for = self._tls_context  # type: ignore[attr-defined]
        # SOCKSProxyManager sets its own (unwatched) pools on the instance: ours replace them.
        manager.pool_classes_by_scheme = pools
        return manager

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
        headers: Mapping[str, str] | None = None,
        data: bytes | FileBlob | Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        peer: str = "the registry",
    ) -> Response:
        """One HTTP request whose whole answer (headers and body) arrives within registry-timeout
        and the operation's deadline, else _SendFailedError (TLSError for a handshake that
        failed for good: a handshake the peer cut short is a _SendFailedError, retried like any
        dropped connection); the body is read here, bounded; a redirect is answered, not
        followed. `registry`: the registry this request is for (its certs.d trust applies).
        `data`: bytes, a FileBlob (streamed from its first byte, with its length) or a form
        (urlencoded); `params`: the query string; `peer`: who is asked, in messages."""
        now = time.monotonic()
        rest = max(deadline, now + 1.0)
        watch = _Watch(min(now + self.timeout, rest), by_timeout=now + self.timeout <= rest)
        _WATCHDOG.arm(watch)
        _current.watch = watch
        _current.registry = registry
        _current.transport = self  # the connections it opens resolve through it (_ResolveMixin)
        hdrs = HTTPHeaderDict(self.headers)
        if headers:
            hdrs.update(headers)
        body: Any = data
        if isinstance(data, FileBlob):
            # Every request, a retry included, sends the blob from its first byte, streamed.
            body = data.reader()
            hdrs["Content-Length"] = str(data.size)
        elif isinstance(data, Mapping):
            body = urlencode(dict(data))
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(dict(params))}"
        raw: Any = None
        reading = False
        try:
            with self._lock:
                self.request_count += 1
            if not url.lower().startswith(("http://", "https://")):
                raise u3.URLSchemeUnknown(url.partition(":")[0])
            connect, read = self.timeouts(deadline)
            raw = self._manager(url, watch).urlopen(
                method,
                url,
                body=body,
                headers=hdrs,
                redirect=False,  # followed by client.call, where the credential scope is ours
                retries=_NO_RETRIES,
                preload_content=False,
                decode_content=True,
                timeout=Timeout(connect=connect, read=read),
            )
            _current.watch = None
            reading = True
            status = raw.status
            wanted = status in ok
            # A HEAD answer has no body: its Content-Length is the size a GET would send (a
            # 14 MB layer's HEAD is not a 14 MB answer).
            if method == "HEAD":
                # Read (nothing) all the same: that ends the answer for http.client, whose
                # connection otherwise refuses its next request while anything still holds
                # this answer (ResponseNotReady: a traceback's frames were enough).
                raw.read()
                content, whole = b"", True
            else:
                content, whole = _read_body(
                    raw, max_bytes if wanted else MAX_OTHER_BYTES, strict=wanted, what=what
                )
            watch.finish()  # before the connection goes back to its pool (another's, then)
            if watch.fired:  # a body without a length ends "cleanly" when its socket is shut
                raise _SendFailedError(
                    _transport_failure(TimeoutError(), watch, self.timeout, reading=True)
                )
            resp = Response(status, raw.headers, content=content, reason=raw.reason or "", url=url)
            if whole:
                raw.release_conn()
            else:
                _discard(raw)
            raw = None
            return resp
        except (u3.HTTPError, OSError) as exc:  # urllib3's and ssl's TLS errors among them
            tls_error = isinstance(exc, (u3.SSLError, ssl.SSLError))
            if tls_error and not _cut_short(exc):  # verification, an alert, a mismatch: final
                raise TLSError(exc) from exc
            raise _SendFailedError(
                _transport_failure(
                    exc,
                    watch,
                    self.timeout,
                    reading=reading,
                    tls=tls_error or url.lower().startswith("https:"),
                    peer=peer,
                    proxy=self.proxy(url),
                )
            ) from None
        finally:
            if raw is not None:
                _discard(raw)
            _current.watch = None
            _current.registry = None
            _current.transport = None
            watch.finish()

    def timeouts(self, deadline: float) -> tuple[float, float]:
        remaining = max(1.0, deadline - time.monotonic())
        return (min(CONNECT_TIMEOUT, self.timeout, remaining), min(self.timeout, remaining))

    @staticmethod
    def backoff(attempt: int, resp: Response | None) -> tuple[float, float | None]:
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


def retry_after(resp: Response) -> float | None:
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


class Retries:
    """How a request to a registry or to its token service is retried, for both (one place, so
    the two cannot drift apart): what is transient (no complete answer, _SendFailedError, a
    handshake cut short included; an answer whose status is in RETRY_STATUSES), how long to wait
    (Transport.backoff: exponential with jitter, or as long as Retry-After asks), when to give
    up (after `retries` retries, or when the wait would reach the operation's deadline) and the
    one line that then says so."""

    def __init__(self, *, retries: int, deadline: float) -> None:
        self.retries = retries  # registry-retries: tries after the first
        self.deadline = deadline  # registry-deadline (seconds), named when a wait reaches it

    def run(
        self,
        attempt: Callable[[], Response],
        *,
        until: float,
        subject: str,
        peer: str = "the registry",
        ok: tuple[int, ...] = (),
        service: bool = False,
    ) -> Response:
        """attempt() until it gets an answer that is not transient, which is returned (whatever
        its status: the caller reads it); every other failure attempt() raises goes through.
        `until`: the operation's deadline (a time.monotonic() value); `ok`: statuses the caller
        asked for, returned even where they would be retried; `subject`: what the final line
        starts with (`registry <host>: <what>`); `peer`: who is asked, in that line.

        `service`: the line names what a service the operation needed did (`<subject>
        unreachable (...)`, `<subject> answered HTTP 503`, then `after N attempt(s)` when there
        were several), instead of an operation that failed (`<subject> failed after N
        attempt(s): ...`). The token service's line is worded so because it is not the operation
        the user asked for; that wording predates its retries, which only added the count."""
        tries = 0
        while True:
            resp: Response | None = None
            try:
                resp = attempt()
            except _SendFailedError as exc:
                why = f"unreachable ({exc})" if service else str(exc)
            else:
                if resp.status_code in ok or resp.status_code not in RETRY_STATUSES:
                    return resp
                if service:
                    why = f"answered HTTP {resp.status_code}"
                else:
                    # The registry's own words, as a status it is not retried on gets them
                    # (client.call): a 500 for a full disk said only "HTTP 500" after its retries.
                    words = _server_error_words(resp)
                    why = f"HTTP {resp.status_code}" + (f" ({words})" if words else "")
            delay, asked = Transport.backoff(tries, resp)
            tries += 1
            late = time.monotonic() + delay >= until
            if asked is not None and late:
                raise RegistryError(
                    f"{subject} {why if service else f'failed: {why}'}, and {peer} asks to retry "
                    f"after {asked:g} s (Retry-After), past the operation's deadline "
                    f"(registry-deadline {self.deadline:g} s)"
                )
            if tries > self.retries or late:
                # No answer at all, however often asked: the registry (or its token service) is
                # down or out of reach, whatever the request was for.
                error = RegistryUnavailableError if resp is None else RegistryError
                if service:
                    count = f" after {tries} attempt(s)" if tries > 1 else ""
                    raise error(f"{subject} {why}{count}")
                raise error(f"{subject} failed after {tries} attempt(s): {why}")
            log.debug("%s: %s (attempt %d); again in %.2f s", subject, why, tries, delay)
            time.sleep(delay)


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
    ) -> Response: ...
