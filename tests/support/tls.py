"""A certificate authority of the test's own, and a real `docker-registry` serving HTTPS with it.

The CA and its certificates are made by `openssl` (Debian's, installed with ca-certificates):
EC P-256 keys, valid two days, in a temp dir. The registry is distribution itself serving TLS
(`http: {tls: {certificate, key[, clientcas]}}`), reached under a name that is not loopback
(`reg-<hex>.playbookctl.test`), so the client takes the production path: HTTPS with the
certificate verified. `resolve_test_names` makes such names resolve to 127.0.0.1 inside the test
process (a stand-in for the DNS entry or /etc/hosts line production has; nothing system-wide
changes).
"""

from __future__ import annotations

import http.client
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playbookctl_dev.registry import START_TIMEOUT, LocalRegistry

TEST_DOMAIN = ".playbookctl.test"


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")


class TestCA:
    """A CA (`ca.crt`, `ca.key`) in `directory`, issuing server and client certificates."""

    __test__ = False  # not a test class

    def __init__(self, directory: Path, name: str = "playbookctl test CA") -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.cert = directory / "ca.crt"
        self.key = directory / "ca.key"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )  # fmt: skip

    def issue(self, stem: str, *, dns: tuple[str, ...] = (), client: bool = False) -> Path:
        """Issue `<stem>.crt` and `<stem>.key`; a server certificate for `dns` names, or a
        client certificate. Returns the certificate's path."""
        ext = self.dir / f"{stem}.ext"
        lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature"]
        if client:
            lines.append("extendedKeyUsage=clientAuth")
        else:
            lines += ["extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(
                f"DNS:{d}" for d in dns
            )]  # fmt: skip
        ext.write_text("\n".join(lines) + "\n")
        cn = dns[0] if dns else stem
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={cn}",
            cwd=self.dir,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-set_serial", str(secrets.randbits(63)), "-days", "2", "-extfile", ext.name,
            "-out", f"{stem}.crt",
            cwd=self.dir,
        )  # fmt: skip
        return self.dir / f"{stem}.crt"


def registry_name() -> str:
    """A fresh name under the test domain, e.g. reg-1a2b3c4d.playbookctl.test."""
    return f"reg-{secrets.token_hex(4)}{TEST_DOMAIN}"


class TLSRegistry(LocalRegistry):
    """`docker-registry` serving HTTPS on 127.0.0.1:<port> under `name`, with a certificate
    from `ca`; with `client_ca`, it demands a client certificate that CA issued."""

    def __init__(
        self,
        ca: TestCA,
        *,
        name: str | None = None,
        client_ca: TestCA | None = None,
        **kwargs: Any,
    ) -> None:
        # LocalRegistry's own TLS (the default test world's: /etc/hosts, certs.d, tokens) is off:
        # this class adds its TLS itself, with the test's CA and in-process name resolution.
        super().__init__(**{"tls": False, **kwargs})
        self.name = name or registry_name()
        self.ca = ca
        self.client_ca = client_ca
        stem = self.name.split(".")[0]
        self.cert = ca.issue(stem, dns=(self.name,))
        self.key = self.cert.with_suffix(".key")
        # The readiness probe's own client certificate, when one is demanded.
        self._probe_cert = client_ca.issue(f"{stem}-probe", client=True) if client_ca else None

    @property
    def host(self) -> str:
        return f"{self.name}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def _write_config(self, workdir: Path) -> Path:
        config = super()._write_config(workdir)
        text = config.read_text("utf-8").replace(
            f"addr: '{self.host}'", f"addr: '127.0.0.1:{self.port}'"
        )
        tls = f"tls: {{certificate: {self.cert}, key: {self.key}"
        if self.client_ca is not None:
            tls += f", clientcas: [{self.client_ca.cert}]"
        text = text.replace("http: {", "http: {" + tls + "}, ", 1)
        config.write_text(text, "utf-8")
        return config

    def _wait_ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca.cert))
        if self._probe_cert is not None:
            ctx.load_cert_chain(self._probe_cert, self._probe_cert.with_suffix(".key"))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
                    conn = http.client.HTTPSConnection(self.name, self.port, context=ctx)
                    conn.sock = ctx.wrap_socket(raw, server_hostname=self.name)
                    conn.request("GET", "/v2/")
                    status = conn.getresponse().status
                    if status == 200 or (status == 401 and self.auth):
                        return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)
        return False


@pytest.fixture
def resolve_test_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names under .playbookctl.test resolve to 127.0.0.1 in this process (as an /etc/hosts
    line would); every other name resolves as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.lower().endswith(TEST_DOMAIN):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def tls_registry(test_ca: TestCA) -> Iterator[TLSRegistry]:
    """An HTTPS registry whose certificate `test_ca` issued (nobody trusts it until told)."""
    with TLSRegistry(test_ca) as reg:
        yield reg
