"""Registry requests through a SOCKS proxy (`socks5h://`, `socks5://`, `socks4a://`,
`socks4://` in HTTPS_PROXY or ALL_PROXY), as a corporate network has them: the HTTPS token-auth
test registry (a name, not loopback: a loopback registry is never proxied; on 127.0.0.1 for
socks4, which cannot name ::1) through a real SOCKS server on loopback
(tests/support/socksproxy.py), its credentials, its stalls ending at the deadline, NO_PROXY and
the loopback rule; socks4's own name lookup ending at the deadline too; and the one-line
refusals of a scheme urllib3 cannot read, of a missing PySocks and of socks4 to an IPv6-only
registry (README "Talking to real registries", the proxy paragraph)."""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from playbookctl import cli
from playbookctl.config import Config
from playbookctl.errors import RegistryError
from playbookctl.oci import RegistryClient, transport
from playbookctl_dev.registry import LocalRegistry
from tests.integration.test_oci_faults import _push_bundle_with_layer, _tar
from tests.support.registry import start_registry
from tests.support.socksproxy import SocksProxy
from tests.support.timing import ends_by, least_backoff, most_attempts

pytestmark = pytest.mark.integration

PIPELINE = b"apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: workflow}\nspec: {}\n"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the proxy a test sets: none from the machine's environment."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


@pytest.fixture
def proxy() -> Iterator[SocksProxy]:
    with SocksProxy() as p:
        yield p


def _cfg(tmp_path: Path, host: str, **kw: object) -> Config:
    return Config(root=tmp_path, registry=host, **kw)  # type: ignore[arg-type]


def _bundle(client: RegistryClient, repo: str, padding: int = 0) -> str:
    """A one-layer bundle, its pipeline.yaml padded by a comment of `padding` bytes; returns
    the manifest digest."""
    pipeline = PIPELINE + (b"# " + b"x" * padding + b"\n" if padding else b"")
    return _push_bundle_with_layer(client, repo, _tar("pipeline.yaml", pipeline), LAYER_TAR)


def _inspect(
    ref: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> tuple[int, list[str]]:
    """`playbookctl inspect ref`: its exit code and its error lines."""
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    code = cli.main(["inspect", ref])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("scheme", "resolved_by_proxy"),
    [("socks5h", True), ("socks5", False), ("socks4a", True)],
    ids=["5h", "5", "4a"],
)
def test_blobs_and_manifests_go_through_a_socks_proxy(
    registry: LocalRegistry,
    plain_registry: LocalRegistry,
    proxy: SocksProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    scheme: str,
    resolved_by_proxy: bool,
) -> None:
    """Pushed (blobs, manifest) and read back (`inspect`: manifest, config, layer) through the
    proxy, the token service too; socks5h and socks4a leave the registry's name to the proxy,
    socks5 sends the address resolved here (socks4 can only send IPv4 ones: the test world's
    registries are on ::1 where the machine has IPv6; socks4 has tests of its own below).
    NO_PROXY naming the registry's domain bypasses the proxy, and so does a loopback registry,
    always."""
    monkeypatch.setenv("ALL_PROXY", proxy.url(scheme))
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        digest = _bundle(c, f"socks/{scheme}")
        data = b"through a SOCKS proxy"
        assert c.get_blob(f"socks/{scheme}", c.push_blob(f"socks/{scheme}", data)) == data
    code, err = _inspect(f"{registry.host}/socks/{scheme}:1", monkeypatch, capsys, tmp_path)
    assert code == 0, err
    assert not proxy.refused
    targets = {(t.kind, t.host, t.port) for t in proxy.tunnels}
    if resolved_by_proxy:
        assert ("name", registry.hostname, registry.port) in targets
        assert ("name", registry.hostname, registry.token_port) in targets  # the token service
    else:
        kind = "ipv6" if ":" in registry.address else "ipv4"
        assert (kind, registry.address, registry.port) in targets
        assert (kind, registry.address, registry.token_port) in targets
        assert not [t for t in proxy.tunnels if t.kind == "name"]
    seen = len(proxy.tunnels)

    domain = registry.hostname.split(".", 1)[1]
    monkeypatch.setenv("NO_PROXY", f"example.org,.{domain}")
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        assert c.get_manifest(f"{registry.host}/socks/{scheme}:1")[2] == digest
    monkeypatch.delenv("NO_PROXY")
    with RegistryClient(_cfg(tmp_path, plain_registry.host)) as c:
        loopback = _bundle(c, f"socks/{scheme}-loopback")
        assert c.get_manifest(f"{plain_registry.host}/socks/{scheme}-loopback:1")[2] == loopback
    assert len(proxy.tunnels) == seen


def test_the_proxy_credentials_of_the_url_are_sent_decoded(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SOCKS5 proxy demanding a login (RFC 1929) gets the user and password of its URL,
    percent-decoded; refused credentials are one line naming the proxy's refusal (not the
    registry's), without the password."""
    secret = "p@ss:w/rd%"
    with SocksProxy(credentials=("dante", secret)) as proxy:
        userinfo = f"dante:{quote(secret, safe='')}"
        monkeypatch.setenv("HTTPS_PROXY", proxy.url("socks5h", userinfo=userinfo))
        data = b"logged in to the proxy"
        with RegistryClient(_cfg(tmp_path, registry.host)) as c:
            digest = c.push_blob("socks/login", data)
            assert c.get_blob("socks/login", digest) == data
        assert proxy.tunnels
        assert {t.user for t in proxy.tunnels} == {"dante"}
        assert not proxy.refused

        wrong = "not-" + secret
        monkeypatch.setenv(
            "HTTPS_PROXY", proxy.url("socks5h", userinfo=f"dante:{quote(wrong, safe='')}")
        )
        cfg = _cfg(tmp_path, registry.host, registry_timeout=2.0, registry_deadline=3.0)
        with RegistryClient(cfg) as c, pytest.raises(RegistryError) as err:
            c.get_blob("socks/login", digest)
    message = str(err.value)
    assert "\n" not in message
    assert "ProxyError (SOCKS proxy: SOCKS5 authentication failed)" in message, message
    assert wrong not in message
    assert quote(wrong, safe="") not in message
    assert proxy.refused
    assert all("wrong credentials" in why for why in proxy.refused)


def test_a_target_the_socks_proxy_refuses_is_a_proxy_error_in_its_words(
    proxy: SocksProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy's ruleset refuses the target (here: anything not loopback, asked by address;
    nothing is sent there): the proxy's reply, not a registry refusing the connection."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("socks5"))
    host = "192.0.2.1:5000"  # TEST-NET-1: documentation only, never reached
    cfg = _cfg(tmp_path, host, registry_timeout=2.0, registry_deadline=3.0)
    with RegistryClient(cfg) as c, pytest.raises(RegistryError) as err:
        c.get_manifest(f"{host}/socks/refused:1")
    message = str(err.value)
    assert "\n" not in message
    assert "ProxyError (SOCKS proxy: 0x02: Connection not allowed by ruleset)" in message, message
    assert {(t.kind, t.host, t.port) for t in proxy.tunnels} == {("ipv4", "192.0.2.1", 5000)}
    assert proxy.refused
    assert all(why == "192.0.2.1 is not loopback" for why in proxy.refused)


@pytest.mark.timeout(60)
def test_a_socks_proxy_stalling_mid_answer_ends_inspect_at_the_deadline(
    registry: LocalRegistry,
    proxy: SocksProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The proxy relays 256 KiB of each answer, then crawls at 48 KiB/s: every TLS record
    (16 KiB) arrives well within registry-timeout, so no socket timeout fires and only the
    deadline over the whole request (the watchdog shutting the SOCKS connection's socket) ends
    it, with one line. Without it the 1.5 MiB layer would come through in about 27 s."""
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        _bundle(c, "socks/stall", padding=1536 * 1024)
    ref = f"{registry.host}/socks/stall:1"
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("socks5h"))
    code, err = _inspect(ref, monkeypatch, capsys, tmp_path)
    assert code == 0, err  # healthy: the 1.5 MiB layer comes through

    proxy.stall(after=256 * 1024, rate=48 * 1024)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_TIMEOUT", "2")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_DEADLINE", "4")
    # Retries enough that only the deadline ends them in time: 11 tries cut at 2 s (1 s past
    # the deadline) and the backoff between them would take 24.9 s at the least.
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_RETRIES", "10")
    start = time.monotonic()
    code, err = _inspect(ref, monkeypatch, capsys, tmp_path)
    elapsed = time.monotonic() - start
    assert code == 1
    assert len(err) == 1, err
    assert "no complete answer within 2 s (registry-timeout)" in err[0], err
    # Without the watchdog: the crawl, (1536 - 256) KiB at 48 KiB/s.
    assert elapsed < ends_by(4.0, runaway=min(1280 / 48, 11 + least_backoff(10))), elapsed


@pytest.mark.timeout(60)
def test_a_socks_proxy_silent_after_its_handshake_ends_at_the_deadline(
    registry: LocalRegistry, proxy: SocksProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy grants each tunnel, then relays nothing back (the registry's TLS handshake
    never arrives): each try ends at registry-timeout, the operation within registry-deadline,
    with one line."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("socks5h"))
    proxy.stall()
    # Retries enough that only the deadline ends them in time: 11 tries of 1 s and the backoff
    # between them would take 24.9 s at the least.
    cfg = _cfg(
        tmp_path, registry.host, registry_timeout=1.0, registry_deadline=3.0, registry_retries=10
    )
    start = time.monotonic()
    with RegistryClient(cfg) as c, pytest.raises(RegistryError) as err:
        c.get_manifest(f"{registry.host}/socks/silent:1")
    elapsed = time.monotonic() - start
    message = str(err.value)
    assert "\n" not in message
    assert "no complete answer within 1 s (registry-timeout)" in message, message
    assert elapsed < ends_by(3.0, runaway=11 + least_backoff(10)), elapsed
    # granted, tried again, and stopped by the deadline (a tunnel a try)
    assert 2 <= len(proxy.tunnels) <= most_attempts(3.0, shortest=1.0), proxy.tunnels
    assert not proxy.refused


def test_an_unknown_socks_scheme_is_one_line_naming_the_ones_read(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`socks://` (curl reads it as SOCKS4, urllib3 not at all): refused before any connection,
    never with the proxy's password."""
    monkeypatch.setenv("HTTPS_PROXY", "socks://dante:hunter2@127.0.0.1:1080")
    code, err = _inspect(f"{registry.host}/socks/any:1", monkeypatch, capsys, tmp_path)
    assert code == 1
    assert len(err) == 1, err
    assert f"the proxy for https://{registry.host}" in err[0]
    assert "is socks://127.0.0.1:1080: unknown SOCKS scheme 'socks'" in err[0]
    assert "socks5h" in err[0]
    assert "hunter2" not in err[0]


def test_without_pysocks_a_socks_proxy_is_one_line_naming_the_package(
    registry: LocalRegistry,
    proxy: SocksProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """PySocks is a dependency; an installation without it (pip --no-deps) says what to install,
    at once (no retries of what no retry mends). The missing module is the injected fault."""
    monkeypatch.setitem(sys.modules, "socks", None)  # `import socks` raises ImportError
    monkeypatch.delitem(sys.modules, "urllib3.contrib.socks", raising=False)
    transport._socks_classes.cache_clear()
    monkeypatch.setenv("ALL_PROXY", proxy.url("socks5h", userinfo="dante:hunter2"))
    # Were it retried, 15 tries would wait 21.9 s between them at the least (within a deadline
    # that allows them).
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_RETRIES", "14")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_DEADLINE", "120")
    try:
        start = time.monotonic()
        code, err = _inspect(f"{registry.host}/socks/any:1", monkeypatch, capsys, tmp_path)
        elapsed = time.monotonic() - start
    finally:
        transport._socks_classes.cache_clear()
    assert code == 1
    assert len(err) == 1, err
    assert "needs the PySocks package, which is not installed: pip install PySocks" in err[0]
    assert f"is socks5h://127.0.0.1:{proxy.port}:" in err[0]
    assert "hunter2" not in err[0]
    assert elapsed < ends_by(0.0, runaway=least_backoff(14)), elapsed
    assert not proxy.tunnels


# -- socks4: IPv4 only, the name resolved here -----------------------------------------------------


@pytest.fixture(scope="module")
def ipv4_registry() -> Iterator[LocalRegistry]:
    """The production-like registry (HTTPS, token auth, its name in /etc/hosts) on 127.0.0.1:
    the session's is on ::1 where the machine has IPv6, which socks4 cannot name."""
    reg = start_registry(address="127.0.0.1")
    try:
        yield reg
    finally:
        reg.stop()


def test_socks4_pushes_and_pulls_by_the_ipv4_address_resolved_here(
    ipv4_registry: LocalRegistry,
    proxy: SocksProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """socks4://: the registry's name resolved here (to its IPv4 address), the proxy asked for
    that address: blobs and a manifest pushed, read back by `inspect`, the token service too."""
    ipv4_registry.login(Path(os.environ["DOCKER_CONFIG"]))
    monkeypatch.setenv("ALL_PROXY", proxy.url("socks4"))
    with RegistryClient(_cfg(tmp_path, ipv4_registry.host)) as c:
        _bundle(c, "socks/4")
        data = b"through a SOCKS4 proxy"
        assert c.get_blob("socks/4", c.push_blob("socks/4", data)) == data
    code, err = _inspect(f"{ipv4_registry.host}/socks/4:1", monkeypatch, capsys, tmp_path)
    assert code == 0, err
    assert not proxy.refused
    targets = {(t.kind, t.host, t.port) for t in proxy.tunnels}
    assert targets == {
        ("ipv4", "127.0.0.1", ipv4_registry.port),
        ("ipv4", "127.0.0.1", ipv4_registry.token_port),
    }, targets


@pytest.mark.parametrize("where", ["name", "address"])
def test_socks4_to_an_ipv6_only_registry_is_one_line_naming_the_address_family(
    registry: LocalRegistry,
    proxy: SocksProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    """A registry whose name resolves to IPv6 addresses only (the session's, on ::1), or named
    by an IPv6 address (a documentation one, never reached), cannot be reached through socks4:
    one line naming socks4, IPv6 and what to use instead, exit 1, at once (no retry mends it),
    nothing asked of the proxy."""
    if where == "name":
        if registry.address != "::1":
            pytest.skip("the session's registry is on IPv4 here (no IPv6 loopback)")
        host = registry.host
    else:
        host = "[2001:db8::1]:5000"
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("socks4", userinfo="dante:hunter2"))
    # Were it retried, 15 tries would wait 21.9 s between them at the least.
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_RETRIES", "14")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_DEADLINE", "120")
    start = time.monotonic()
    code, err = _inspect(f"{host}/socks/v6:1", monkeypatch, capsys, tmp_path)
    elapsed = time.monotonic() - start
    assert code == 1
    assert len(err) == 1, err
    assert f"is socks4://127.0.0.1:{proxy.port}" in err[0], err
    assert "socks4 reaches IPv4 addresses only" in err[0], err
    assert "IPv6" in err[0], err
    assert "socks5h" in err[0], err
    assert ("socks4a" in err[0]) is (where == "name"), err  # by the proxy: not for an address
    assert "hunter2" not in err[0]
    assert "Traceback" not in err[0]
    assert elapsed < ends_by(0.0, runaway=least_backoff(14)), elapsed
    assert not proxy.tunnels


@pytest.mark.timeout(90)
def test_socks4_name_lookup_that_stalls_ends_at_the_deadline_naming_the_host(
    ipv4_registry: LocalRegistry,
    proxy: SocksProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """socks4 resolves the registry's name here, before any connection. A resolver that stalls
    (the injected fault: nothing on loopback makes the C library's resolver stall) ends each try
    at registry-timeout and the operation within registry-deadline, with one line naming the
    host and the timeout; the tries wait on the same lookup (one thread, not one per try); the
    proxy is never asked."""
    ipv4_registry.login(Path(os.environ["DOCKER_CONFIG"]))
    monkeypatch.setenv("ALL_PROXY", proxy.url("socks4"))
    name = ipv4_registry.hostname
    stall = 30.0
    released = threading.Event()
    asked: list[str] = []
    real = socket.getaddrinfo

    def stalling(host: object, *args: object, **kwargs: object) -> object:
        if host == name:
            asked.append(name)
            released.wait(stall)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", stalling)
    # Retries enough that only the deadline ends them in time: 11 tries of 1 s and the backoff
    # between them would take 24.9 s at the least.
    cfg = _cfg(
        tmp_path, ipv4_registry.host, registry_timeout=1.0, registry_deadline=3.0,
        registry_retries=10,
    )  # fmt: skip
    try:
        start = time.monotonic()
        with RegistryClient(cfg) as c, pytest.raises(RegistryError) as err:
            c.get_manifest(f"{ipv4_registry.host}/socks/lookup:1")
        elapsed = time.monotonic() - start
    finally:
        released.set()
    message = str(err.value)
    assert "\n" not in message
    assert f"the name lookup of {name} (socks4 sends the proxy an address)" in message, message
    assert "gave no answer within 1 s (registry-timeout)" in message, message
    assert elapsed < ends_by(3.0, runaway=min(stall, 11 + least_backoff(10))), elapsed
    tries = re.search(r"failed after (\d+) attempt", message)
    assert tries is not None, message
    assert int(tries[1]) >= 2, message  # tried again, and every try waited on the one lookup
    assert asked == [name], message
    assert not proxy.tunnels
