"""HTTPS registries trusted the way docker trusts them: a real `docker-registry` serving TLS
with a certificate from the test's own CA, under a name that is not loopback (so the production
path: TLS, verified). Trusted through registry-certs-dir (docker's certs.d layout), SSL_CERT_FILE
or SSL_CERT_DIR; refused with one line when not trusted; mutual TLS with certs.d's client.cert."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from playbookctl import cli
from playbookctl.config import Config, load_config
from playbookctl.errors import RegistryError
from playbookctl.oci import OCI_MANIFEST, RegistryClient, sha256_digest, transport
from playbookctl_dev.registry import LocalRegistry
from tests.support.connectproxy import ConnectProxy
from tests.support.faultproxy import FaultProxy
from tests.support.handshakecut import HandshakeCutter
from tests.support.socksproxy import SocksProxy
from tests.support.timing import ends_by
from tests.support.tls import TestCA, TLSRegistry, registry_name

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("resolve_test_names")]


def _certs_dir(tmp_path: Path, host: str, *files: Path, names: tuple[str, ...] = ()) -> Path:
    """A certs.d tree: <tmp>/certs.d/<host>/ holding `files` (renamed to `names` if given)."""
    root = tmp_path / "certs.d"
    (root / host).mkdir(parents=True)
    for i, f in enumerate(files):
        shutil.copy(f, root / host / (names[i] if names else f.name))
    return root


def _config(tmp_path: Path, reg: TLSRegistry, certs_dir: Path) -> Config:
    return Config(
        root=tmp_path,
        registry=reg.host,
        registry_certs_dir=str(certs_dir),
        registry_timeout=5.0,
        registry_deadline=8.0,
    )


def _round_trip(client: RegistryClient, reg: TLSRegistry, repo: str) -> None:
    config, layer = b"{}", f"layer of {repo}".encode()
    client.push_blob(repo, config)
    client.push_blob(repo, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256_digest(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    digest = client.push_manifest(repo, "1.0.0", manifest, OCI_MANIFEST)
    assert client.get_manifest(f"{reg.host}/{repo}:1.0.0") == (manifest, OCI_MANIFEST, digest)
    assert client.get_blob(repo, sha256_digest(layer)) == layer


def test_trusted_through_certs_dir(
    tls_registry: TLSRegistry, test_ca: TestCA, tmp_path: Path
) -> None:
    certs = _certs_dir(tmp_path, tls_registry.host, test_ca.cert)
    with RegistryClient(_config(tmp_path, tls_registry, certs)) as client:
        assert client.scheme(tls_registry.host) == "https"
        _round_trip(client, tls_registry, "tls/certs-dir")


def test_certs_dir_from_the_environment_and_any_crt_name(
    tls_registry: TLSRegistry, test_ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docker reads every *.crt in the host's directory, not only ca.crt.
    certs = _certs_dir(tmp_path, tls_registry.host, test_ca.cert, names=("corp-root.crt",))
    (tmp_path / "pyproject.toml").write_text("[tool.playbookctl]\n")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_CERTS_DIR", str(certs))
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", tls_registry.host)
    config = load_config(tmp_path)
    assert config.registry_certs_dir == str(certs)
    with RegistryClient(config) as client:
        _round_trip(client, tls_registry, "tls/certs-env")


def test_trusted_through_ssl_cert_file(
    tls_registry: TLSRegistry, test_ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.cert))
    with RegistryClient(_config(tmp_path, tls_registry, tmp_path / "no-certs.d")) as client:
        _round_trip(client, tls_registry, "tls/ssl-cert-file")


def test_trusted_through_ssl_cert_dir_without_rehash(
    tls_registry: TLSRegistry, test_ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Go (docker) reads every file of SSL_CERT_DIR; OpenSSL alone would need c_rehash names.
    cert_dir = tmp_path / "cadir"
    cert_dir.mkdir()
    shutil.copy(test_ca.cert, cert_dir / "our-ca.pem")
    monkeypatch.setenv("SSL_CERT_DIR", str(cert_dir))
    with RegistryClient(_config(tmp_path, tls_registry, tmp_path / "no-certs.d")) as client:
        _round_trip(client, tls_registry, "tls/ssl-cert-dir")


def test_untrusted_registry_is_one_line_exit_1(
    tls_registry: TLSRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.playbookctl]\n")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_CERTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_DEADLINE", "8")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    code = cli.main(["-C", str(tmp_path), "inspect", f"{tls_registry.host}/tls/untrusted:1.0.0"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1, err
    assert f"the TLS certificate of {tls_registry.host} is not trusted" in err
    assert f"{tmp_path / 'empty'}/{tls_registry.host}/ca.crt" in err
    assert "internal error" not in err


def test_a_certificate_for_another_name_is_refused(test_ca: TestCA, tmp_path: Path) -> None:
    with TLSRegistry(test_ca) as reg:
        other = TLSRegistry(test_ca)  # a second name, never started
        certs = _certs_dir(tmp_path, reg.host, test_ca.cert)
        # The registry serves its own name's certificate; reach it under the other name.
        host = f"{other.name}:{reg.port}"
        (certs / host).mkdir()
        shutil.copy(test_ca.cert, certs / host / "ca.crt")
        config = Config(
            root=tmp_path,
            registry=host,
            registry_certs_dir=str(certs),
            registry_timeout=5.0,
            registry_deadline=8.0,
        )
        with (
            RegistryClient(config) as client,
            pytest.raises(RegistryError, match=r"not trusted.*[Hh]ostname mismatch"),
        ):
            client.blob_exists("tls/mismatch", sha256_digest(b"x"))


def test_client_certificate_from_certs_dir(test_ca: TestCA, tmp_path: Path) -> None:
    """Harbor-style mutual TLS: client.cert and client.key beside ca.crt."""
    client_ca = TestCA(tmp_path / "client-ca", name="playbookctl test client CA")
    with TLSRegistry(test_ca, client_ca=client_ca) as reg:
        without = _certs_dir(tmp_path / "a", reg.host, test_ca.cert)
        with (
            RegistryClient(_config(tmp_path, reg, without)) as client,
            pytest.raises(RegistryError, match=f"registry {reg.host}") as failed,
        ):
            client.blob_exists("tls/mtls", sha256_digest(b"x"))
        message = str(failed.value)
        assert "\n" not in message
        assert f"{without}/{reg.host}/client.cert and client.key" in message, message
        # The registry's alert is final: one connection, no retry (counted through a front).
        with HandshakeCutter(reg.port) as front:
            host = f"{reg.name}:{front.port}"
            certs = _certs_dir(tmp_path / "c", host, test_ca.cert)
            config = Config(root=tmp_path, registry=host, registry_certs_dir=str(certs))
            with (
                RegistryClient(config) as client,
                pytest.raises(RegistryError, match=r"client\.cert and client\.key"),
            ):
                client.blob_exists("tls/mtls", sha256_digest(b"x"))
            assert front.connections == 1

        cert = client_ca.issue("harbor-client", client=True)
        with_cert = _certs_dir(
            tmp_path / "b",
            reg.host,
            test_ca.cert,
            cert,
            cert.with_suffix(".key"),
            names=("ca.crt", "client.cert", "client.key"),
        )
        with RegistryClient(_config(tmp_path, reg, with_cert)) as client:
            _round_trip(client, reg, "tls/mtls")


def test_a_client_certificate_without_its_key_is_named(
    tls_registry: TLSRegistry, test_ca: TestCA, tmp_path: Path
) -> None:
    certs = _certs_dir(tmp_path, tls_registry.host, test_ca.cert, test_ca.cert, names=(
        "ca.crt", "client.cert"
    ))  # fmt: skip
    with (
        RegistryClient(_config(tmp_path, tls_registry, certs)) as client,
        pytest.raises(RegistryError, match=r"client\.cert: client certificate without its key"),
    ):
        client.blob_exists("tls/nokey", sha256_digest(b"x"))


# -- a handshake cut short: retried like any dropped connection ----------------------------------
#
# A load balancer, a registry restarting or a flaky network that closes (FIN) or resets (RST) the
# connection right after our ClientHello: the same transient failure as a connection dropped
# after the handshake, so retried (registry-retries, within registry-deadline); what no retry
# changes (a certificate not trusted) stays immediate. The front (HandshakeCutter) hangs up on
# the first connections, then relays to the real TLS server behind it.


def _cut_config(tmp_path: Path, host: str, test_ca: TestCA, **kw: object) -> Config:
    certs = _certs_dir(tmp_path, host, test_ca.cert, names=("ca.crt",))
    values: dict[str, object] = {
        "registry_certs_dir": str(certs),
        "registry_timeout": 5.0,
        "registry_deadline": 15.0,
    }
    values.update(kw)
    return Config(root=tmp_path, registry=host, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_handshake_cut_short_is_retried_and_the_push_succeeds(
    tls_registry: TLSRegistry, test_ca: TestCA, tmp_path: Path, reset: bool
) -> None:
    with HandshakeCutter(tls_registry.port, cut=2, reset=reset) as front:
        host = f"{tls_registry.name}:{front.port}"
        data = f"pushed through a flaky front ({reset=})".encode()
        with RegistryClient(_cut_config(tmp_path, host, test_ca, registry_retries=3)) as client:
            digest = client.push_blob("tls/cut-short", data)
            assert client.get_blob("tls/cut-short", digest) == data
        assert front.cuts == 2
        assert front.connections > 2  # the two cut, then the ones relayed


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_handshake_always_cut_short_fails_after_the_retries_in_one_line(
    tls_registry: TLSRegistry,
    test_ca: TestCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    reset: bool,
) -> None:
    with HandshakeCutter(tls_registry.port, cut=-1, reset=reset) as front:
        host = f"{tls_registry.name}:{front.port}"
        certs = _certs_dir(tmp_path, host, test_ca.cert, names=("ca.crt",))
        (tmp_path / "pyproject.toml").write_text("[tool.playbookctl]\n")
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_CERTS_DIR", str(certs))
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_RETRIES", "2")
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_DEADLINE", "15")
        code = cli.main(["-C", str(tmp_path), "inspect", f"{host}/tls/always-cut:1.0.0"])
        err = capsys.readouterr().err
        assert code == 1, err
        assert err.count("\n") == 1, err
        how = "reset" if reset else "closed"
        assert f"the registry {how} the connection during the TLS handshake" in err, err
        assert "after 3 attempt(s)" in err, err
        assert "not trusted" not in err, err
        assert "plain HTTP" not in err, err
        assert "internal error" not in err, err
        assert "Traceback" not in err, err
        assert front.connections == 3  # one try and registry-retries 2


def test_a_handshake_left_unanswered_is_a_timeout_retried(
    tls_registry: TLSRegistry, test_ca: TestCA, tmp_path: Path
) -> None:
    with HandshakeCutter(tls_registry.port, cut=-1, hold=True) as front:
        host = f"{tls_registry.name}:{front.port}"
        # registry-timeout 30: the connect timeout (5 s) bounds the handshake, long before it.
        config = _cut_config(
            tmp_path,
            host,
            test_ca,
            registry_timeout=30.0,
            registry_deadline=90.0,
            registry_retries=1,
        )
        started = time.monotonic()
        with (
            RegistryClient(config) as client,
            pytest.raises(RegistryError) as failed,
        ):
            client.blob_exists("tls/held", sha256_digest(b"x"))
        message = str(failed.value)
        assert "failed after 2 attempt(s)" in message, message
        assert "no answer to the TLS handshake in time" in message, message
        assert front.connections == 2
        # 2 handshakes cut at the connect timeout and <= 0.25 s of backoff; were registry-timeout
        # what ends them, 2 x 30 s.
        tries = 2 * transport.CONNECT_TIMEOUT + 0.25
        assert time.monotonic() - started < ends_by(tries, runaway=2 * 30.0)


def test_an_untrusted_certificate_is_not_retried(tls_registry: TLSRegistry, tmp_path: Path) -> None:
    with HandshakeCutter(tls_registry.port) as front:  # relays every connection
        host = f"{tls_registry.name}:{front.port}"
        config = Config(
            root=tmp_path,
            registry=host,
            registry_certs_dir=str(tmp_path / "empty"),
            registry_timeout=5.0,
            registry_deadline=15.0,
            registry_retries=4,
        )
        with (
            RegistryClient(config) as client,
            pytest.raises(RegistryError, match=f"the TLS certificate of {host} is not trusted"),
        ):
            client.blob_exists("tls/untrusted-once", sha256_digest(b"x"))
        assert front.connections == 1  # final at once: no retry


USER, PASSWORD = "robot", "token-service-secret"


@pytest.fixture
def tls_token_front(
    plain_registry: LocalRegistry, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultProxy]:
    """An HTTPS front for the plain registry that demands a token from its own /token, which
    the client is sent to through a HandshakeCutter (set as `proxy.cutter`, cutting nothing
    until told)."""
    name = registry_name()
    cert = test_ca.issue(name.split(".")[0], dns=(name,))
    with (
        FaultProxy(plain_registry.host, tls=(cert, cert.with_suffix(".key")), name=name) as proxy,
        HandshakeCutter(proxy.port) as cutter,
    ):
        proxy.require_token(USER, PASSWORD, realm=f"https://{name}:{cutter.port}/token")
        proxy.cutter = cutter  # type: ignore[attr-defined]
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", USER)
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", PASSWORD)
        yield proxy


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_token_service_handshake_cut_short_is_retried(
    tls_token_front: FaultProxy, test_ca: TestCA, tmp_path: Path, reset: bool
) -> None:
    cutter: HandshakeCutter = tls_token_front.cutter  # type: ignore[attr-defined]
    cutter.cut, cutter.reset = 2, reset
    data = f"pushed with a token from a flaky token service ({reset=})".encode()
    config = _cut_config(tmp_path, tls_token_front.host, test_ca, registry_retries=3)
    with RegistryClient(config) as client:
        digest = client.push_blob("tls/token-cut", data)
        assert client.get_blob("tls/token-cut", digest) == data
    assert cutter.cuts == 2
    assert tls_token_front.token_auth is not None
    assert tls_token_front.token_auth.token_requests  # a token was got, after the cuts


def test_a_token_service_always_cutting_the_handshake_fails_after_the_retries(
    tls_token_front: FaultProxy, test_ca: TestCA, tmp_path: Path
) -> None:
    cutter: HandshakeCutter = tls_token_front.cutter  # type: ignore[attr-defined]
    cutter.cut = -1
    config = _cut_config(tmp_path, tls_token_front.host, test_ca, registry_retries=2)
    with (
        RegistryClient(config) as client,
        pytest.raises(RegistryError) as failed,
    ):
        client.blob_exists("tls/token-always-cut", sha256_digest(b"x"))
    message = str(failed.value)
    assert "\n" not in message
    assert "token service" in message, message
    assert "the token service closed the connection during the TLS handshake" in message, message
    assert "after 3 attempt(s)" in message, message
    assert "not trusted" not in message, message
    assert "plain HTTP" not in message, message
    assert cutter.connections == 3


# -- a handshake cut short behind a proxy ---------------------------------------------------------
#
# Through an HTTP CONNECT proxy or a SOCKS one the TLS handshake runs inside the tunnel: a
# registry that hangs up during it reaches the client as the tunnel closing, which is also what a
# proxy dropping the tunnel looks like (after the proxy granted it, the two are the same bytes).
# Both are retried as a direct cut is; the line names the proxy beside the registry, never the
# registry alone. The proxies are the real ones of tests/support; the registry's cuts are the
# HandshakeCutter's, in front of it.


@pytest.fixture(params=["connect", "socks5h"])
def tunnel_proxy(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConnectProxy | SocksProxy]:
    """A CONNECT or a SOCKS5 proxy (names resolved by it) on loopback, in HTTPS_PROXY (and only
    it: none from the machine's environment)."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    if request.param == "connect":
        with ConnectProxy() as connect:
            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{connect.port}")
            yield connect
    else:
        with SocksProxy() as socks:
            monkeypatch.setenv("HTTPS_PROXY", socks.url("socks5h"))
            yield socks


def _proxy_url(proxy: ConnectProxy | SocksProxy) -> str:
    return (
        f"http://127.0.0.1:{proxy.port}"
        if isinstance(proxy, ConnectProxy)
        else proxy.url("socks5h")
    )


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_handshake_the_registry_cuts_behind_a_proxy_is_retried_and_the_push_succeeds(
    tls_registry: TLSRegistry,
    test_ca: TestCA,
    tunnel_proxy: ConnectProxy | SocksProxy,
    tmp_path: Path,
    reset: bool,
) -> None:
    with HandshakeCutter(tls_registry.port, cut=2, reset=reset) as front:
        host = f"{tls_registry.name}:{front.port}"
        data = f"pushed through a proxy to a flaky front ({reset=})".encode()
        with RegistryClient(_cut_config(tmp_path, host, test_ca, registry_retries=3)) as client:
            digest = client.push_blob("tls/proxy-cut-short", data)
            assert client.get_blob("tls/proxy-cut-short", digest) == data
        assert front.cuts == 2
        assert front.connections > 2
    assert len(tunnel_proxy.tunnels) == front.connections  # every connection went through it


def test_a_handshake_the_registry_always_cuts_behind_a_proxy_fails_after_the_retries(
    tls_registry: TLSRegistry,
    test_ca: TestCA,
    tunnel_proxy: ConnectProxy | SocksProxy,
    tmp_path: Path,
) -> None:
    """The registry's close reaches the client as the tunnel's (the proxy relays it): one line
    saying the handshake was cut, naming the proxy beside the registry, after the retries; not a
    proxy refusal, not a certificate."""
    with HandshakeCutter(tls_registry.port, cut=-1) as front:
        host = f"{tls_registry.name}:{front.port}"
        config = _cut_config(tmp_path, host, test_ca, registry_retries=2)
        with RegistryClient(config) as client, pytest.raises(RegistryError) as failed:
            client.blob_exists("tls/proxy-always-cut", sha256_digest(b"x"))
        assert front.connections == 3  # one try and registry-retries 2
    message = str(failed.value)
    assert "\n" not in message
    assert (
        f"ConnectionError (the registry or the proxy {_proxy_url(tunnel_proxy)} closed the "
        "connection during the TLS handshake)" in message
    ), message
    assert "after 3 attempt(s)" in message, message
    assert "ProxyError" not in message, message
    assert "not trusted" not in message, message


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_proxy_cutting_the_tunnel_during_the_handshake_is_retried_and_named(
    tls_registry: TLSRegistry,
    test_ca: TestCA,
    tunnel_proxy: ConnectProxy | SocksProxy,
    tmp_path: Path,
    reset: bool,
) -> None:
    """The proxy grants the tunnel, then hangs up on the ClientHello (nothing reaches the
    registry): retried like any cut handshake, the push then succeeds; always cut, the one line
    names the proxy (the client cannot tell its close from the registry's: it does not blame
    the registry alone)."""
    host = tls_registry.host
    tunnel_proxy.cut_handshakes(2, reset=reset)
    data = f"pushed through a proxy that drops tunnels ({reset=})".encode()
    with RegistryClient(_cut_config(tmp_path, host, test_ca, registry_retries=3)) as client:
        digest = client.push_blob("tls/proxy-drops", data)
        assert client.get_blob("tls/proxy-drops", digest) == data
    assert tunnel_proxy.cuts == 2

    tunnel_proxy.cut_handshakes(-1, reset=reset)
    (tmp_path / "again").mkdir()
    config = _cut_config(tmp_path / "again", host, test_ca, registry_retries=2)
    with RegistryClient(config) as client, pytest.raises(RegistryError) as failed:
        client.blob_exists("tls/proxy-drops", digest)
    assert tunnel_proxy.cuts == 2 + 3
    message = str(failed.value)
    assert "\n" not in message
    how = "reset" if reset else "closed"
    assert (
        f"ConnectionError (the registry or the proxy {_proxy_url(tunnel_proxy)} {how} the "
        "connection during the TLS handshake)" in message
    ), message
    assert "after 3 attempt(s)" in message, message
    assert "not trusted" not in message, message


def test_a_connect_proxy_hanging_up_on_the_request_is_a_proxy_error(
    tls_registry: TLSRegistry, test_ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before any tunnel: the proxy reads CONNECT and closes without an answer. A ProxyError
    saying the proxy closed the connection, retried; never the registry blamed (http.client's
    RemoteDisconnected is a ConnectionResetError: it read as the registry's reset)."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        proxy.cut_requests(-1)
        config = _cut_config(tmp_path, tls_registry.host, test_ca, registry_retries=2)
        with RegistryClient(config) as client, pytest.raises(RegistryError) as failed:
            client.blob_exists("tls/proxy-hangs-up", sha256_digest(b"x"))
        assert proxy.cuts == 3
    message = str(failed.value)
    assert "\n" not in message
    shown = f"http://127.0.0.1:{proxy.port}"
    assert f"ProxyError (the proxy {shown} closed the connection without a tunnel)" in message, (
        message
    )
    assert "after 3 attempt(s)" in message, message
    assert "registry closed" not in message, message
