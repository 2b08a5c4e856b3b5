"""A SOCKS5 proxy on loopback (RFC 1928, with RFC 1929 username/password auth; SOCKS4 and 4a
too), as corporate networks run them (Dante, `ssh -D`).

Not a fake: it relays the bytes of the real TLS session between the client and the registry and
reads none of them (the standard library only: no proxy package is installed on the test
machines). It records each tunnel (how the target was named, the target, the user it
authenticated as), so a test counts connections and sees whether the client resolved the name
(`socks5`) or left it to the proxy (`socks5h`). Faults a real proxy shows under load: `stall`
holds the answers of new tunnels after the handshake. It connects to loopback targets only and
refuses the rest (reply 0x02, "not allowed by ruleset"), so a test cannot reach anywhere else.
A target it cannot connect to gets a failure reply (SOCKS5 0x05, SOCKS4 0x5B), as Dante sends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
import time
from dataclasses import dataclass
from socketserver import BaseRequestHandler, ThreadingTCPServer
from types import TracebackType

_NO_AUTH, _USER_PASS, _NO_METHOD = 0x00, 0x02, 0xFF
_IPV4, _NAME, _IPV6 = 0x01, 0x03, 0x04
_SUCCEEDED, _FAILURE, _NOT_ALLOWED, _HOST_UNREACHABLE = 0, 1, 2, 4
_CONN_REFUSED, _CMD_UNSUPPORTED = 5, 7


@dataclass(frozen=True)
class Tunnel:
    """One CONNECT the proxy was asked for."""

    kind: str  # how the client named the target: "ipv4", "ipv6" or "name" (resolved here)
    host: str  # as sent: an address, or the name (socks5h)
    port: int
    user: str  # the username it authenticated with, "" without auth


class SocksProxy:
    """`credentials`: the (username, password) it demands (RFC 1929); None: no auth."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.tunnels: list[Tunnel] = []
        self.refused: list[str] = []  # why each refused handshake was refused
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._hold: tuple[int, int | None] | None = None
        self._cut = 0  # tunnels still to cut after their first bytes (-1: all)
        self._cut_reset = False
        self.cuts = 0  # tunnels granted, then cut after the client's first bytes
        proxy = self

        class Handler(BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):  # a client gone mid-handshake: nothing to do
                    proxy._handle(self.request)

        self._server = ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, scheme: str = "socks5h", *, userinfo: str = "") -> str:
        return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def stall(self, *, after: int = 0, rate: int | None = None) -> None:
        """From now on, each new tunnel's answers (target -> client) flow for `after` bytes, then
        stall: nothing more (rate None), or a crawl of `rate` bytes a second, in slices every
        1/20 s. A crawl fast enough to complete a TLS record (16 KiB) within any socket timeout
        (CPython's TLS reads wait for a whole record: a byte now and then is not enough) ends
        only at a deadline over the whole request. The client's bytes still reach the target."""
        with self._lock:
            self._hold = (after, rate)

    def cut_handshakes(self, count: int = -1, *, reset: bool = False) -> None:
        """The next `count` tunnels (-1: all) are granted, then closed (or reset: SO_LINGER 0)
        once the client's first bytes (its TLS ClientHello) arrive, before any reach the target:
        a proxy that drops tunnels (restarting, overloaded, an idle timeout gone wrong)."""
        with self._lock:
            self._cut, self._cut_reset = count, reset

    def __enter__(self) -> SocksProxy:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed.set()  # held tunnels stop dripping
        self._server.shutdown()
        self._server.server_close()

    def _refuse(self, why: str) -> None:
        with self._lock:
            self.refused.append(why)

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(30)  # a client that stops mid-handshake does not hold a thread
        (version,) = _recv(client, 1)
        if version == 5:
            request = self._socks5_request(client)
        elif version == 4:
            request = self._socks4_request(client)
        else:
            self._refuse(f"SOCKS version {version}")
            return
        if request is None:
            return
        cmd, tunnel = request
        with self._lock:
            self.tunnels.append(tunnel)
            hold = self._hold
        reply = self._reply5 if version == 5 else self._reply4
        if cmd != 1:  # CONNECT only: BIND and UDP ASSOCIATE are not what a registry client asks
            reply(client, _CMD_UNSUPPORTED)
            return
        try:
            # A name is resolved here (socks5h, socks4a): /etc/hosts maps the test registries'.
            infos = socket.getaddrinfo(tunnel.host, tunnel.port, type=socket.SOCK_STREAM)
        except OSError:
            reply(client, _HOST_UNREACHABLE)
            return
        if not all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos):
            reply(client, _NOT_ALLOWED)
            self._refuse(f"{tunnel.host} is not loopback")
            return
        try:
            upstream = socket.create_connection((tunnel.host, tunnel.port), timeout=30)
        except OSError:  # as Dante does: a failure reply, not a silent close
            reply(client, _CONN_REFUSED)
            self._refuse(f"{tunnel.host}:{tunnel.port} unreachable")
            return
        with upstream:
            client.settimeout(None)
            upstream.settimeout(None)
            reply(client, _SUCCEEDED)
            with self._lock:
                cut, reset = self._cut != 0, self._cut_reset
                self._cut -= 1 if self._cut > 0 else 0
            if cut:
                with self._lock:  # counted before the hang-up the client may act on at once
                    self.cuts += 1
                _cut(client, reset)
                return
            pump = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            pump.start()
            self._pump(upstream, client, hold)
            pump.join(30)

    def _socks5_request(self, client: socket.socket) -> tuple[int, Tunnel] | None:
        """RFC 1928's method negotiation, RFC 1929's login when demanded, then the request:
        (command, tunnel), or None when refused (the refusal sent and recorded)."""
        (count,) = _recv(client, 1)
        methods = _recv(client, count)
        wanted = _USER_PASS if self.credentials else _NO_AUTH
        if wanted not in methods:
            client.sendall(bytes([5, _NO_METHOD]))
            self._refuse(f"no acceptable method in {list(methods)}")
            return None
        client.sendall(bytes([5, wanted]))
        user = ""
        if self.credentials:
            _ver, ulen = _recv(client, 2)
            user = _recv(client, ulen).decode("utf-8", "replace")
            (plen,) = _recv(client, 1)
            password = _recv(client, plen).decode("utf-8", "replace")
            if (user, password) != self.credentials:
                client.sendall(b"\x01\x01")
                self._refuse(f"wrong credentials for {user!r}")
                return None
            client.sendall(b"\x01\x00")
        _ver, cmd, _rsv, atyp = _recv(client, 4)
        if atyp == _IPV4:
            kind, host = "ipv4", socket.inet_ntop(socket.AF_INET, _recv(client, 4))
        elif atyp == _IPV6:
            kind, host = "ipv6", socket.inet_ntop(socket.AF_INET6, _recv(client, 16))
        elif atyp == _NAME:
            (length,) = _recv(client, 1)
            kind, host = "name", _recv(client, length).decode("idna")
        else:
            self._reply5(client, _FAILURE)
            self._refuse(f"address type {atyp}")
            return None
        (port,) = struct.unpack(">H", _recv(client, 2))
        return cmd, Tunnel(kind, host, port, user)

    def _socks4_request(self, client: socket.socket) -> tuple[int, Tunnel] | None:
        """SOCKS4 (an IPv4 address) and 4a (0.0.0.x, then the name): no password, a user id
        only, which must be the demanded username when there is one."""
        cmd, port_hi, port_lo = _recv(client, 3)
        address = _recv(client, 4)
        user = _recv_until_nul(client).decode("utf-8", "replace")
        if address[:3] == b"\0\0\0" and address[3]:
            kind, host = "name", _recv_until_nul(client).decode("idna")
        else:
            kind, host = "ipv4", socket.inet_ntop(socket.AF_INET, address)
        if self.credentials and user != self.credentials[0]:
            self._reply4(client, _FAILURE)
            self._refuse(f"wrong user id {user!r}")
            return None
        return cmd, Tunnel(kind, host, port_hi << 8 | port_lo, user)

    @staticmethod
    def _reply5(client: socket.socket, code: int) -> None:
        # BND.ADDR/BND.PORT: nobody binds through us; 0.0.0.0:0 as many servers send.
        client.sendall(bytes([5, code, 0, _IPV4, 0, 0, 0, 0, 0, 0]))

    @staticmethod
    def _reply4(client: socket.socket, code: int) -> None:
        # 0x5A granted, 0x5B rejected or failed: SOCKS4 has no finer codes.
        client.sendall(bytes([0, 0x5A if code == _SUCCEEDED else 0x5B, 0, 0, 0, 0, 0, 0]))

    def _pump(
        self,
        src: socket.socket,
        dst: socket.socket,
        hold: tuple[int, int | None] | None = None,
    ) -> None:
        budget = hold[0] if hold else -1
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if budget < 0:
                    dst.sendall(data)
                    continue
                dst.sendall(data[:budget])
                rest, budget = data[budget:], max(0, budget - len(data))
                if rest:
                    self._trickle(rest, src, dst, hold[1] if hold else None)
                    return
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _trickle(
        self, data: bytes, src: socket.socket, dst: socket.socket, rate: int | None
    ) -> None:
        """The held answer: `rate` bytes a second (the rest of the answer as it comes), or
        nothing, until the client gives up or the proxy stops."""
        if rate is None:
            self._closed.wait()
            return
        piece = max(1, rate // 20)
        src.settimeout(0.05)
        while not self._closed.is_set():
            if len(data) < piece:
                try:
                    more = src.recv(65536)
                except TimeoutError:
                    more = b""
                else:
                    if not more and not data:
                        return  # the target closed and all it sent is delivered
                data += more
            dst.sendall(data[:piece])
            data = data[piece:]
            time.sleep(0.05)


def _cut(client: socket.socket, reset: bool) -> None:
    """Reads the client's first bytes, then hangs up on it (an RST when `reset`)."""
    client.recv(65536)
    if reset:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def _recv_until_nul(sock: socket.socket, limit: int = 512) -> bytes:
    out = b""
    while not out.endswith(b"\0"):
        if len(out) > limit:
            raise ConnectionError("a SOCKS4 field without its end")
        out += _recv(sock, 1)
    return out[:-1]


def _recv(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        got = sock.recv(n - len(out))
        if not got:
            raise ConnectionError("the client closed the connection mid-handshake")
        out += got
    return out
