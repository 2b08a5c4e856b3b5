"""Every connection the transport opens (to the registry, its token service, an HTTP or SOCKS
proxy; socks5 and socks4 resolve the registry's name here too) resolves its host name within
the request's limits: a resolver that stalls ends each try at registry-timeout and the operation
within registry-deadline, with one line naming the host, the seconds and the setting; a stall
that ends is ridden out by a retry waiting on the same lookup
(README "Everything is bounded").

Against the real HTTPS token-auth registry (`registry`). The stalled resolver is the injected
fault (socket.getaddrinfo monkeypatched for one name, as test_oci_socks.py's socks4 test does):
nothing on loopback makes the C library's resolver stall without root."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from playbookctl import cli
from playbookctl.config import Config
from playbookctl.errors import RegistryError
from playbookctl.oci import RegistryClient
from playbookctl_dev.registry import LocalRegistry
from tests.support.connectproxy import ConnectProxy
from tests.support.socksproxy import SocksProxy
from tests.support.timing import SLACK, ends_by, least_backoff

pytestmark = pytest.mark.integration

# Retries enough that only registry-deadline ends them in time: 11 tries of 1 s (registry-timeout)
# and the backoff between them would take 24.9 s at the least.
RETRIES = 10
RETRIES_WITHOUT_DEADLINE = 11 * 1.0 + least_backoff(RETRIES)
STALL = 30.0  # a resolver that stalls: longer than anything the limits allow


def _one_line_by_the_deadline(message: str, elapsed: float, *, retried: bool = False) -> None:
    """One line, ended by registry-deadline (3 s here), not by the retries or the stall;
    `retried`: it says the request was tried twice or more (each try waiting on one lookup)."""
    assert "\n" not in message
    assert elapsed < ends_by(3.0, runaway=min(STALL, RETRIES_WITHOUT_DEADLINE)), elapsed
    if retried:
        tries = re.search(r"after (\d+) attempt", message)
        assert tries is not None, message
        assert int(tries[1]) >= 2, message


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the proxy a test sets: none from the machine's environment."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


class StalledName:
    """socket.getaddrinfo for this process, except that a lookup of `name` (after the first
    `answered` ones, which answer at once) waits until `stall` seconds after the first such
    lookup began, then answers as the resolver does (for `address` instead, when given: a name
    the machine does not map). `stalled`: how many lookups began before that."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        name: str,
        *,
        stall: float = STALL,
        answered: int = 0,
        address: str | None = None,
    ) -> None:
        self.name = name
        self.stall = stall
        self.answered = answered
        self.address = address
        self.asked = 0
        self.stalled = 0
        self.released = threading.Event()
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self._getaddrinfo)

    def _getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == self.name:
            with self._lock:
                self.asked += 1
                stalls = self.asked > self.answered and not self.released.is_set()
                if stalls:
                    self.stalled += 1
                    if self._timer is None:
                        self._timer = threading.Timer(self.stall, self.released.set)
                        self._timer.daemon = True
                        self._timer.start()
            if stalls:
                self.released.wait()
            host = self.address or host
        return self._real(host, *args, **kwargs)

    def release(self) -> None:
        self.released.set()
        if self._timer is not None:
            self._timer.cancel()


@pytest.fixture
def stall_lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., StalledName]]:
    """StalledName(monkeypatch, ...), each released at the test's end (no thread left waiting)."""
    made: list[StalledName] = []

    def make(name: str, **kwargs: Any) -> StalledName:
        made.append(StalledName(monkeypatch, name, **kwargs))
        return made[-1]

    yield make
    for resolver in made:
        resolver.release()


def _cfg(tmp_path: Path, host: str, **kw: object) -> Config:
    return Config(root=tmp_path, registry=host, **kw)  # type: ignore[arg-type]


def _bounded(tmp_path: Path, host: str, deadline: float = 3.0) -> Config:
    return _cfg(
        tmp_path, host, registry_timeout=1.0, registry_deadline=deadline, registry_retries=RETRIES
    )


def _retried_lookups(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    """The retries the client logged for a lookup of `name` that gave no answer in time."""
    text = f"the name lookup of {name} gave no answer within 1 s (registry-timeout)"
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.timeout(90)
def test_a_registry_name_lookup_that_stalls_ends_at_the_deadline_naming_the_host(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stall_lookups: Callable[..., StalledName],
) -> None:
    """A direct request whose name lookup stalls: each try ends at registry-timeout, the
    operation within registry-deadline, one line naming the host, the seconds and the setting;
    every try waits on the one lookup (one stalled thread, not one per try)."""
    name = registry.hostname
    resolver = stall_lookups(name)
    start = time.monotonic()
    with (
        RegistryClient(_bounded(tmp_path, registry.host)) as c,
        pytest.raises(RegistryError) as err,
    ):
        c.get_manifest(f"{registry.host}/lookup/stalled:1")
    elapsed = time.monotonic() - start
    message = str(err.value)
    _one_line_by_the_deadline(message, elapsed, retried=True)
    assert message.startswith(f"registry {registry.host}: "), message
    assert f"the name lookup of {name} gave no answer within 1 s (registry-timeout)" in message
    assert (resolver.asked, resolver.stalled) == (1, 1), message


@pytest.mark.timeout(90)
def test_a_lookup_that_stalls_once_then_answers_is_ridden_out(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    stall_lookups: Callable[..., StalledName],
) -> None:
    """The resolver answers 2.5 s late: the first try ends at registry-timeout (1 s), the
    retries wait on the same lookup, and once it answers the request is sent to the address it
    gave (TLS still verified for the name) and succeeds."""
    data = b"resolved late"
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        digest = c.push_blob("lookup/late", data)
    name = registry.hostname
    resolver = stall_lookups(name, stall=2.5)
    caplog.set_level(logging.DEBUG, logger="playbookctl.oci")
    with RegistryClient(_bounded(tmp_path, registry.host, deadline=30.0)) as c:
        assert c.get_blob("lookup/late", digest) == data
    assert _retried_lookups(caplog, name), caplog.text  # the stall failed a try: retried
    assert resolver.stalled == 1  # ... on the lookup under way, not on new ones


@pytest.mark.timeout(90)
def test_the_token_services_name_lookup_is_bounded_too(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stall_lookups: Callable[..., StalledName],
) -> None:
    """The token service has the registry's name on a port of its own (another connection, its
    own lookup): the registry's lookup answers, the token service's stalls, and the line says it
    was the token service that could not be reached, naming the host and the setting."""
    assert registry.token_port not in (0, registry.port)  # another connection, its own lookup
    name = registry.hostname
    resolver = stall_lookups(name, answered=1)
    start = time.monotonic()
    with (
        RegistryClient(_bounded(tmp_path, registry.host)) as c,
        pytest.raises(RegistryError) as err,
    ):
        c.get_manifest(f"{registry.host}/lookup/token:1")
    elapsed = time.monotonic() - start
    message = str(err.value)
    _one_line_by_the_deadline(message, elapsed, retried=True)
    assert message.startswith(
        f"registry {registry.host}: token service unreachable (the name lookup of {name} gave "
        "no answer within 1 s (registry-timeout))"
    ), message
    assert (resolver.asked, resolver.stalled) == (2, 1), message


@pytest.mark.timeout(90)
def test_an_http_proxys_own_name_lookup_is_bounded(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    stall_lookups: Callable[..., StalledName],
) -> None:
    """HTTPS_PROXY names an HTTP proxy by a name whose lookup answers 2.5 s late: the proxy's
    own connection resolves through the bounded lookup (a try ends at registry-timeout naming the
    proxy's name, and is retried), then the tunnel carries the request to the registry, named
    in CONNECT and verified by its name."""
    name = "proxy.lookup.playbookctl.test"
    data = b"through a proxy resolved late"
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        digest = c.push_blob("lookup/proxy", data)
    stall_lookups(name, stall=2.5, address="127.0.0.1")
    caplog.set_level(logging.DEBUG, logger="playbookctl.oci")
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://{name}:{proxy.port}")
        with RegistryClient(_bounded(tmp_path, registry.host, deadline=30.0)) as c:
            assert c.get_blob("lookup/proxy", digest) == data
        assert registry.host in {target for target, _auth in proxy.tunnels}
    assert _retried_lookups(caplog, name), caplog.text


@pytest.mark.timeout(90)
def test_a_socks_proxys_own_name_lookup_is_bounded(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    stall_lookups: Callable[..., StalledName],
) -> None:
    """ALL_PROXY names a socks5h proxy by a name whose lookup answers 2.5 s late: PySocks is
    given the address of the bounded lookup (a try ends at registry-timeout naming the proxy's
    name, and is retried), and the proxy is still sent the registry's name."""
    name = "socks.lookup.playbookctl.test"
    data = b"through a SOCKS proxy resolved late"
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        digest = c.push_blob("lookup/socks", data)
    stall_lookups(name, stall=2.5, address="127.0.0.1")
    caplog.set_level(logging.DEBUG, logger="playbookctl.oci")
    with SocksProxy() as proxy:
        monkeypatch.setenv("ALL_PROXY", f"socks5h://{name}:{proxy.port}")
        with RegistryClient(_bounded(tmp_path, registry.host, deadline=30.0)) as c:
            assert c.get_blob("lookup/socks", digest) == data
        targets = {(t.kind, t.host, t.port) for t in proxy.tunnels}
    assert ("name", registry.hostname, registry.port) in targets
    assert _retried_lookups(caplog, name), caplog.text


@pytest.mark.timeout(90)
def test_socks5s_lookup_of_the_registrys_name_is_bounded(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stall_lookups: Callable[..., StalledName],
) -> None:
    """socks5 (not socks5h) resolves the registry's name here: a stalled lookup ends within
    registry-deadline, one line naming the registry's name and the setting, the proxy never
    asked for a tunnel."""
    name = registry.hostname
    resolver = stall_lookups(name)
    with SocksProxy() as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url("socks5"))
        start = time.monotonic()
        with (
            RegistryClient(_bounded(tmp_path, registry.host)) as c,
            pytest.raises(RegistryError) as err,
        ):
            c.get_manifest(f"{registry.host}/lookup/socks5:1")
        elapsed = time.monotonic() - start
        assert not proxy.tunnels
    message = str(err.value)
    _one_line_by_the_deadline(message, elapsed)
    assert f"the name lookup of {name} gave no answer within 1 s (registry-timeout)" in message
    assert resolver.stalled == 1, message


@pytest.mark.timeout(90)
def test_inspect_of_a_registry_whose_lookup_stalls_is_one_line_and_exit_1(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stall_lookups: Callable[..., StalledName],
) -> None:
    """Through the CLI: `playbookctl inspect` of a reference on a registry whose name lookup
    stalls ends within registry-deadline, exit 1, one line naming the host and the setting, no
    traceback."""
    stall_lookups(registry.hostname)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_TIMEOUT", "1")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_DEADLINE", "3")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_RETRIES", str(RETRIES))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    start = time.monotonic()
    code = cli.main(["inspect", f"{registry.host}/lookup/cli:1"])
    elapsed = time.monotonic() - start
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 1, (out, err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("playbookctl: error: "), lines
    assert (
        f"the name lookup of {registry.hostname} gave no answer within 1 s (registry-timeout)"
        in lines[0]
    ), lines
    assert "Traceback" not in err
    assert elapsed < ends_by(3.0, runaway=min(STALL, RETRIES_WITHOUT_DEADLINE)), elapsed


def test_a_name_that_does_not_resolve_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name the resolver has no address for keeps its message, at once. The resolver's answer
    is injected (what glibc raises for NXDOMAIN): a real lookup of an unmapped name would ask the
    machine's nameserver, and tests use no network."""
    name = "no-such-registry.lookup.playbookctl.test"
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    start = time.monotonic()
    with (
        RegistryClient(_cfg(tmp_path, f"{name}:5000", registry_retries=0)) as c,
        pytest.raises(RegistryError) as err,
    ):
        c.get_manifest(f"{name}:5000/lookup/none:1")
    message = str(err.value)
    assert message.endswith(
        "failed after 1 attempt(s): ConnectionError (cannot resolve the host name)"
    ), message
    assert time.monotonic() - start < SLACK


def test_every_address_of_the_name_is_tried_in_order(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name's first address refuses (nothing listens on 127.0.0.2 at the registry's port:
    it binds its own address only); the connection goes on to the next, as urllib3's does, and
    TLS is verified for the name, not the address."""
    name = registry.hostname
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        infos = real(host, *args, **kwargs)
        if host == name:
            asked.append(host)
            dead = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 0))
            return [dead, *infos]
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    data = b"the second address"
    with RegistryClient(_cfg(tmp_path, registry.host, registry_retries=0)) as c:
        digest = c.push_blob("lookup/order", data)
        assert c.get_blob("lookup/order", digest) == data
    assert asked
