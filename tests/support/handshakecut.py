"""A TCP front that hangs up during the TLS handshake: the transient failure a load balancer, a
restarting registry or a flaky network causes, which no real registry produces on demand.

It accepts a connection, reads the client's first bytes (its ClientHello) and closes the socket
(or resets it: SO_LINGER 0; or, `hold`, leaves it unanswered until stopped) for the next `cut`
connections (-1: all), then relays the bytes both ways, untouched, to the HTTPS server behind
it: the handshake is the real server's.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType


class HandshakeCutter:
    def __init__(
        self, upstream_port: int, *, cut: int = 0, reset: bool = False, hold: bool = False
    ) -> None:
        self.upstream_port = upstream_port
        self.cut = cut
        self.reset = reset
        self.hold = hold
        self.connections = 0  # accepted, cut ones included
        self.cuts = 0  # connections hung up on after their ClientHello
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:  # the listener closed: stop
                return
            with self._lock:
                self.connections += 1
                cut = self.cut != 0
                if self.cut > 0:
                    self.cut -= 1
            if cut:
                threading.Thread(target=self._hang_up, args=(conn,), daemon=True).start()
            else:
                threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _hang_up(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            hello = conn.recv(65536)
            with self._lock:
                self.cuts += 1 if hello else 0
            if self.hold:  # no answer: the client's timeout ends it
                self._stopping.wait(60)
            if self.reset:  # an RST instead of a FIN
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    def _relay(self, conn: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True)
        back.start()
        self._pipe(conn, upstream)
        back.join(30)
        conn.close()
        upstream.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):  # pass the end on: the other side sees EOF too
            dst.shutdown(socket.SHUT_WR)

    def start(self) -> HandshakeCutter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):  # wakes the accept() blocked in its thread (Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)

    def __enter__(self) -> HandshakeCutter:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
