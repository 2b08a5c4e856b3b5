"""HTTPS registries trusted the way docker trusts them: a real `docker-registry` serving TLS
with a certificate from the test's own CA, under a name that is not loopback (so the production
path: TLS, verified). Trusted through registry-certs-dir (docker's certs.d layout), SSL_CERT_FILE
or SSL_CERT_DIR; refused with one line when not trusted; mutual TLS with certs.d's client.cert."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from playbookctl import cli
from playbookctl.config import Config, load_config
from playbookctl.errors import RegistryError
from playbookctl.oci import OCI_MANIFEST, RegistryClient, sha256_digest
from tests.support.tls import TestCA, TLSRegistry

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
