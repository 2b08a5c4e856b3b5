"""A fault-injecting loopback HTTP proxy in front of a real registry: the only fake in the tests.

A real registry cannot fail on demand, so this proxy forwards every request to one and, when told
to, answers 5xx/429 instead, drops connections (a registry that dies, for a while or for good,
or in the middle of an upload), or demands a bearer token from a tiny token endpoint of its own
(the ghcr.io / quay.io flow, which Debian's registry cannot do without a JWT signing setup).
It also lies and stalls: a request held without an answer (a stalled upload), an answer
drip-fed a byte at a time, an upload read slowly (a slow link that still progresses), a
manifest PUT answered 201 but never stored, a wrong Docker-Content-Digest header.
It keeps the client's Host header, so the registry's upload `Location`s point back at the proxy.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import re
import secrets
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}

Match = Callable[[str, str], bool]  # (method, path) -> applies?


@dataclass
class Fault:
    match: Match
    remaining: int  # requests still to hit; -1 = forever
    status: int | None = None  # answer this status, or
    drop: bool = False  # close the connection without answering
    partial_body: bool = False  # (with drop) read half the request body first
    retry_after: str | None = None
    body: bytes | None = None  # (with status) the answer's body
    corrupt: bool = False  # forward, but flip a byte of the response body
    stall: float | None = None  # hold the request this long (unread), then drop it
    drip: float | None = None  # forward, sending the body one byte per `drip` seconds
    throttle: int | None = None  # read the request body at this many bytes a second, forward
    swallow: bool = False  # answer 201 as if stored, without forwarding
    digest_header: str | None = None  # forward, with this Docker-Content-Digest instead
    location: Callable[[str], str] | None = None  # forward, with the Location rewritten
    redirect: Callable[[str], str] | None = None  # answer 307 to redirect(path), unforwarded
    unsized: bool = False  # forward, the answer chunked, without a Content-Length


def _any(_method: str, _path: str) -> bool:
    return True


def _config_type(body: bytes) -> str | None:
    """The media type of a manifest's config, None when it has none (an index, not JSON)."""
    try:
        config = json.loads(body).get("config")
    except (ValueError, AttributeError):
        return None
    return config.get("mediaType") if isinstance(config, dict) else None


@dataclass
class TokenAuth:
    username: str
    password: str
    anonymous_pull: bool = False
    realm: str | None = None  # advertise another token service URL than our own /token
    tokens: dict[str, set[str]] = field(default_factory=dict)  # token -> granted scopes
    token_requests: list[dict[str, str]] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up (timeout and drop tests do that on purpose) is not an error.
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Reader:
    """Reads a request body, at most `rate` bytes a second over the whole body when given (a
    tenth of a second's worth at a time)."""

    def __init__(self, h: BaseHTTPRequestHandler, rate: int | None, stop: threading.Event) -> None:
        self.h, self.rate, self.stop = h, rate, stop
        self.started = time.monotonic()
        self.done = 0

    def __call__(self, n: int) -> bytes:
        if self.rate is None:
            return self.h.rfile.read(n)
        parts: list[bytes] = []
        while n > 0:
            ahead = self.done / self.rate - (time.monotonic() - self.started)
            if ahead > 0 and self.stop.wait(ahead):
                break
            part = self.h.rfile.read(min(max(1, self.rate // 10), n))
            if not part:
                break
            parts.append(part)
            n -= len(part)
            self.done += len(part)
        return b"".join(parts)


class FaultProxy:
    """`tls=(certificate, key)` serves HTTPS under `name` (the registry behind is told so with
    X-Forwarded-Proto, as a TLS-terminating proxy does, so its Locations say https)."""

    def __init__(
        self,
        upstream: str,
        *,
        tls: tuple[Path, Path] | None = None,
        name: str = "127.0.0.1",
    ) -> None:
        self.upstream = upstream  # host:port of the real registry
        self.name = name
        self.tls = tls
        self.log: list[tuple[str, str, int]] = []  # (method, path, status or -1 dropped)
        # Every request's (method, path, Authorization header or ""), in arrival order.
        self.seen: list[tuple[str, str, str]] = []
        # Every request's (method, path, framing of its body: "length N", "chunked" or "none").
        self.framing: list[tuple[str, str, str]] = []
        self.max_body: int | None = None  # larger request bodies: 413, as nginx answers
        self.refused_media_types: set[str] = set()  # manifest PUTs of these: 400
        # Manifest PUTs whose config has one of these media types: 400 MANIFEST_INVALID, as a
        # registry answers that takes images but not artifacts (Quay without the type allowed).
        self.refused_config_types: set[str] = set()
        self.chunk_min_length: int | None = None  # sent as OCI-Chunk-Min-Length on POST 202s
        # Complete single-request uploads (POST ?digest= with the body: 201), as the spec allows
        # and distribution 2.8 does not (it answers 202 and ignores the body).
        self.single_request_uploads = False
        self._faults: list[Fault] = []
        self._forwarded = 0
        self._die_after: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.token_auth: TokenAuth | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

        self.server = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"{self.name}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    # -- control ---------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int = 500,
        *,
        retry_after: str | None = None,
        match: Match = _any,
        body: bytes | None = None,
    ) -> None:
        """Answer the next n matching requests with `status` (and `body`, default a short
        distribution error)."""
        with self._lock:
            self._faults.append(Fault(match, n, status=status, retry_after=retry_after, body=body))

    def drop_next(self, n: int, *, match: Match = _any, partial_body: bool = False) -> None:
        """Close the connection on the next n matching requests (n=-1: forever)."""
        with self._lock:
            self._faults.append(Fault(match, n, drop=True, partial_body=partial_body))

    def corrupt_next(self, n: int, *, match: Match = _any) -> None:
        """Forward the next n matching requests but flip one byte of each response body."""
        with self._lock:
            self._faults.append(Fault(match, n, corrupt=True))

    def unsized_next(self, n: int, *, match: Match = _any) -> None:
        """Forward the next n matching requests, each answer sent chunked with no
        Content-Length (as a registry streaming a body from its storage does): only counting
        the bytes as they come can bound it."""
        with self._lock:
            self._faults.append(Fault(match, n, unsized=True))

    def stall_next(self, n: int, *, match: Match = _any, seconds: float = 300.0) -> None:
        """Hold the next n matching requests unanswered (body unread) for `seconds`, then drop
        them; stop() releases them at once."""
        with self._lock:
            self._faults.append(Fault(match, n, stall=seconds))

    def drip_next(self, n: int, *, match: Match = _any, delay: float = 0.5) -> None:
        """Forward the next n matching requests, answering with the body a byte per `delay` s."""
        with self._lock:
            self._faults.append(Fault(match, n, drip=delay))

    def throttle_next(self, n: int, *, match: Match = _any, rate: int = 100_000) -> None:
        """Forward the next n matching requests, reading each one's body at `rate` bytes a
        second (a slow uplink: the client's upload progresses, slowly)."""
        with self._lock:
            self._faults.append(Fault(match, n, throttle=rate))

    def swallow_next(self, n: int, *, match: Match = _any) -> None:
        """Answer the next n matching PUTs 201 with the right digest headers, storing nothing."""
        with self._lock:
            self._faults.append(Fault(match, n, swallow=True))

    def lie_digest_next(self, n: int, digest: str, *, match: Match = _any) -> None:
        """Forward the next n matching requests, answering Docker-Content-Digest: digest."""
        with self._lock:
            self._faults.append(Fault(match, n, digest_header=digest))

    def rewrite_location_next(
        self, n: int, rewrite: Callable[[str], str], *, match: Match = _any
    ) -> None:
        """Forward the next n matching requests, answering with Location: rewrite(location)."""
        with self._lock:
            self._faults.append(Fault(match, n, location=rewrite))

    def redirect_next(self, n: int, to: Callable[[str], str], *, match: Match = _any) -> None:
        """Answer the next n matching requests 307 Location: to(path), without forwarding."""
        with self._lock:
            self._faults.append(Fault(match, n, redirect=to))

    def die_after(self, n: int) -> None:
        """Forward n more requests, then drop every connection (a registry that died)."""
        with self._lock:
            self._die_after = self._forwarded + n

    def heal(self) -> None:
        with self._lock:
            self._faults.clear()
            self._die_after = None

    def require_token(
        self,
        username: str,
        password: str,
        *,
        anonymous_pull: bool = False,
        realm: str | None = None,
    ) -> None:
        self.token_auth = TokenAuth(username, password, anonymous_pull, realm)

    @property
    def request_count(self) -> int:
        return len(self.log)

    # -- serving ---------------------------------------------------------------------------------

    def _pick_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            if self._die_after is not None and self._forwarded >= self._die_after:
                return Fault(_any, -1, drop=True)
            for fault in self._faults:
                if fault.remaining != 0 and fault.match(method, path):
                    if fault.remaining > 0:
                        fault.remaining -= 1
                    return fault
        return None

    def _read_body(
        self, h: BaseHTTPRequestHandler, *, half: bool = False, rate: int | None = None
    ) -> bytes:
        read = _Reader(h, rate, self._stopping)
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":  # docker push's PATCH
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(read(size))
                h.rfile.readline()
                if half and len(chunks) > 1:
                    break
            return b"".join(chunks)
        length = int(h.headers.get("Content-Length") or 0)
        return read(length // 2 if half else length)

    def _drop(self, h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        with contextlib.suppress(OSError):
            h.connection.shutdown(socket.SHUT_RDWR)

    def _reply(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        method, path = h.command, h.path
        with self._lock:
            self.seen.append((method, path, h.headers.get("Authorization", "")))
            chunked = h.headers.get("Transfer-Encoding", "").lower() == "chunked"
            length = h.headers.get("Content-Length")
            self.framing.append(
                (method, path, "chunked" if chunked else f"length {length}" if length else "none")
            )
        fault = self._pick_fault(method, path)
        if fault is not None and fault.stall is not None:
            with self._lock:
                self.log.append((method, path, -2))
            self._stopping.wait(fault.stall)
            self._drop(h)
            return
        if fault is not None and fault.drop:
            if fault.partial_body:
                self._read_body(h, half=True)
            with self._lock:
                self.log.append((method, path, -1))
            self._drop(h)
            return
        body = self._read_body(h, rate=fault.throttle if fault is not None else None)
        if fault is not None and fault.redirect is not None:
            with self._lock:
                self.log.append((method, path, 307))
            self._reply(h, 307, headers={"Location": fault.redirect(path)})
            return
        if self.max_body is not None and len(body) > self.max_body:
            with self._lock:
                self.log.append((method, path, 413))
            html = b"<html><head><title>413 Request Entity Too Large</title></head></html>"
            self._reply(h, 413, html, {"Content-Type": "text/html"})
            return
        if (
            method == "PUT"
            and "/manifests/" in path
            and (
                h.headers.get("Content-Type", "") in self.refused_media_types
                or _config_type(body) in self.refused_config_types
            )
        ):
            with self._lock:
                self.log.append((method, path, 400))
            refusal = b'{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid",'
            refusal += b'"detail":"unsupported manifest media type"}]}'
            self._reply(h, 400, refusal, {"Content-Type": "application/json"})
            return
        if fault is not None and fault.status is not None:
            headers = {"Content-Type": "application/json"}
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            with self._lock:
                self.log.append((method, path, fault.status))
            default = b'{"errors":[{"code":"UNAVAILABLE","message":"x"}]}'
            self._reply(h, fault.status, default if fault.body is None else fault.body, headers)
            return
        if fault is not None and fault.swallow:
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            with self._lock:
                self.log.append((method, path, 201))
            self._reply(
                h,
                201,
                headers={"Docker-Content-Digest": digest, "Location": path.split("?")[0]},
            )
            return
        if self.token_auth is not None:
            if path.startswith("/token"):
                self._token_endpoint(h, body)
                return
            if not self._authorised(h, method, path):
                return
        with self._lock:
            self._forwarded += 1
        single = re.match(r"^(/v2/.+/blobs/uploads/)\?digest=(sha256:[0-9a-f]{64})$", path)
        if self.single_request_uploads and method == "POST" and single and body:
            self._single_request_upload(h, single.group(1), single.group(2), body)
            return
        self._forward(h, method, path, body, fault)

    def _single_request_upload(
        self, h: BaseHTTPRequestHandler, uploads: str, digest: str, body: bytes
    ) -> None:
        """POST ?digest= with the body, done as the registry behind can: POST, then PUT."""
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.pop("Content-Length", None)
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            conn.request("POST", uploads, body=b"", headers=headers)
            started = conn.getresponse()
            started.read()
            location = urlsplit(started.getheader("Location") or "")
            target = location.path + (f"?{location.query}&" if location.query else "?")
            conn.request("PUT", f"{target}digest={digest}", body=body, headers=headers)
            done = conn.getresponse()
            data = done.read()
        finally:
            conn.close()
        with self._lock:
            self.log.append(("POST", f"{uploads}?digest={digest}", done.status))
        if done.status != 201:
            self._reply(h, done.status, data, {"Content-Type": "application/json"})
            return
        blob = uploads.removesuffix("uploads/") + digest
        self._reply(h, 201, headers={"Location": blob, "Docker-Content-Digest": digest})

    # -- the token flow --------------------------------------------------------------------------

    def _token_endpoint(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        auth = self.token_auth
        assert auth is not None
        query = parse_qs(urlsplit(h.path).query)
        form = parse_qs(body.decode()) if h.command == "POST" else {}
        if form:  # the OAuth2 refresh-token grant (Docker's identity tokens)
            query = form
        scopes = set(" ".join(query.get("scope", [])).split())
        auth.token_requests.append(
            {
                "method": h.command,
                "service": ",".join(query.get("service", [])),
                "scope": " ".join(sorted(scopes)),
            }
        )
        header = h.headers.get("Authorization", "")
        expected = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        refresh = form.get("refresh_token", [""])[0] if form else ""
        if header == f"Basic {expected}" or (refresh and refresh == auth.password):
            granted = scopes
        elif not header and auth.anonymous_pull:
            granted = {s for s in scopes if s.endswith(":pull")}
        else:
            self.log.append((h.command, h.path, 401))
            self._reply(h, 401, b'{"details":"bad credentials"}')
            return
        token = secrets.token_hex(16)
        auth.tokens[token] = granted
        self.log.append((h.command, h.path, 200))
        self._reply(h, 200, f'{{"token":"{token}"}}'.encode(), {"Content-Type": "application/json"})

    def _authorised(self, h: BaseHTTPRequestHandler, method: str, path: str) -> bool:
        auth = self.token_auth
        assert auth is not None
        m = re.match(r"^/v2/(.+?)/(manifests|blobs|tags)/", path)
        if path.rstrip("/") == "/v2":
            needed: str | None = None
        elif m:
            action = "pull" if method in ("GET", "HEAD") else "pull,push"
            needed = f"repository:{m.group(1)}:{action}"
        else:
            needed = "registry:catalog:*"
        header = h.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        granted = auth.tokens.get(token)
        if granted is not None and (needed is None or self._covers(granted, needed)):
            del h.headers["Authorization"]
            return True
        realm = f'Bearer realm="{auth.realm or f"{self.url}/token"}",service="faultproxy"'
        if needed:
            realm += f',scope="{needed}"'
        self.log.append((method, path, 401))
        self._reply(h, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": realm})
        return False

    @staticmethod
    def _covers(granted: set[str], needed: str) -> bool:
        typ, name, actions = needed.split(":")  # repository names hold no ":"
        have: set[str] = set()
        for g in granted:
            parts = g.split(":")
            if len(parts) == 3 and parts[0] == typ and parts[1] == name:
                have.update(parts[2].split(","))
        return "*" in have or set(actions.split(",")) <= have

    # -- forwarding ------------------------------------------------------------------------------

    def _forward(
        self, h: BaseHTTPRequestHandler, method: str, path: str, body: bytes, fault: Fault | None
    ) -> None:
        corrupt = fault is not None and fault.corrupt
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
        if self.tls is not None:
            headers["X-Forwarded-Proto"] = "https"
        if h.headers.get("Transfer-Encoding"):  # de-chunked above: send with a length
            headers["Content-Length"] = str(len(body))
        try:
            sent = body if body or method in ("PUT", "POST", "PATCH") else None
            conn.request(method, path, body=sent, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if corrupt and data:
                data = bytes([data[0] ^ 0x20]) + data[1:]
        except OSError:
            with self._lock:
                self.log.append((method, path, -1))
            self._drop(h)
            return
        finally:
            conn.close()
        with self._lock:
            self.log.append((method, path, resp.status))
        h.send_response(resp.status)
        unsized = fault is not None and fault.unsized
        length_sent = False
        for k, v in resp.getheaders():
            if k.lower() in HOP_BY_HOP or (unsized and k.lower() == "content-length"):
                continue
            if k.lower() == "content-length":
                length_sent = True
            lie = fault.digest_header if fault is not None else None
            value = v
            if fault is not None and fault.location is not None and k.lower() == "location":
                value = fault.location(v)
            h.send_header(k, lie if lie and k.lower() == "docker-content-digest" else value)
        if method == "POST" and resp.status == 202 and self.chunk_min_length is not None:
            h.send_header("OCI-Chunk-Min-Length", str(self.chunk_min_length))
        if unsized:
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            if method != "HEAD":
                with contextlib.suppress(OSError):  # the client gave up reading: fine
                    for i in range(0, len(data), 65536):
                        piece = data[i : i + 65536]
                        h.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    h.wfile.write(b"0\r\n\r\n")
            return
        if not length_sent:
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if method != "HEAD":
            with contextlib.suppress(OSError):  # the client gave up (a timeout test): fine
                if fault is not None and fault.drip is not None:
                    for i in range(len(data)):
                        if self._stopping.wait(fault.drip):
                            break
                        h.wfile.write(data[i : i + 1])
                        h.wfile.flush()
                else:
                    h.wfile.write(data)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
