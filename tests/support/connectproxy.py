"""A forward proxy on loopback that tunnels HTTPS (HTTP CONNECT), as a corporate proxy does.

Not a fake: it relays the bytes of the real TLS session between the client and the registry
and reads none of them (no proxy package is installed on the test machines, and CONNECT is all
an HTTPS registry needs of one). It records each tunnel's target and the Proxy-Authorization it
was asked with, and answers 407 when it demands credentials and gets others. Faults a real proxy
shows: `cut_handshakes` drops tunnels once the client's first bytes arrive (after the 200), and
`cut_requests` hangs up on CONNECT requests without an answer.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import struct
import threading
from socketserver import BaseRequestHandler, ThreadingTCPServer
from types import TracebackType


class ConnectProxy:
    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.expected = (
            "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
            if credentials
            else None
        )
        self.tunnels: list[tuple[str, str]] = []  # (host:port, Proxy-Authorization or "")
        self._lock = threading.Lock()
        self._cut = 0  # tunnels still to cut after their first bytes (-1: all)
        self._cut_reset = False
        self._cut_requests = 0  # CONNECT requests still to hang up on unanswered (-1: all)
        self.cuts = 0  # tunnels or requests hung up on
        proxy = self

        class Handler(BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self._server = ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def cut_handshakes(self, count: int = -1, *, reset: bool = False) -> None:
        """The next `count` tunnels (-1: all) are granted (200), then closed (or reset:
        SO_LINGER 0) once the client's first bytes (its TLS ClientHello) arrive, before any
        reach the target: a proxy that drops tunnels (restarting, overloaded)."""
        with self._lock:
            self._cut, self._cut_reset = count, reset

    def cut_requests(self, count: int = -1) -> None:
        """The next `count` CONNECT requests (-1: all) are read, then closed without an
        answer: a proxy restarting or shedding load before it tunnels anything."""
        with self._lock:
            self._cut_requests = count

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            got = client.recv(4096)
            if not got:
                return
            head += got
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        auth = headers.get("proxy-authorization", "")
        with self._lock:
            self.tunnels.append((target, auth))
        with self._lock:
            unanswered = self._cut_requests != 0
            self._cut_requests -= 1 if self._cut_requests > 0 else 0
            self.cuts += 1 if unanswered else 0
        if unanswered:
            client.close()
            return
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if self.expected is not None and auth != self.expected:
            client.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="proxy"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        host, _, port = target.rpartition(":")
        with socket.create_connection((host.strip("[]"), int(port)), timeout=30) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with self._lock:
                cut, reset = self._cut != 0, self._cut_reset
                self._cut -= 1 if self._cut > 0 else 0
            if cut:
                client.recv(65536)  # the ClientHello, never passed on
                # Counted before the hang-up: the client, seeing it, may give up and the test
                # read the count before this thread runs again.
                with self._lock:
                    self.cuts += 1
                if reset:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                return
            pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            pump.start()
            _pump(client, upstream)
            pump.join(30)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
