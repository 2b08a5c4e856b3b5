"""A throwaway certificate authority for the test world's HTTPS registries and token services.

Each registry (test session, `dev up`, demo, benchmark) gets a CA of its own, a server
certificate for its host name (a DNS name in the subjectAltName: Go, hence the registry and the
Docker engine, ignore the common name), and a token-signing certificate issued by the same CA
(distribution's `auth: token` verifies a token's `x5c` chain against the CA in
`rootcertbundle`). ECDSA P-256 keys: generated in a millisecond, and ES256 is what distribution's
libtrust verifies for an EC key.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for a `dev up` environment kept for a while; short enough that a leaked CA (it is
# trusted only for one host:port anyway, see trust.py) expires soon.
DEFAULT_VALIDITY = dt.timedelta(days=7)
# A clock a little behind the machine's (a container started from a snapshot) still accepts it.
BACKDATE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class CertFiles:
    """PEM files of one certificate and its private key (mode 0600)."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """The CA, the server certificate for `hostname` and the token-signing certificate."""

    hostname: str
    ca: CertFiles
    server: CertFiles
    token_signer: CertFiles


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "playbookctl test world"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, validity: dt.timedelta
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
    )


def make_pki(directory: Path, hostname: str, validity: dt.timedelta = DEFAULT_VALIDITY) -> Pki:
    """Write ca.crt/ca.key, server.crt/server.key (for `hostname`) and token.crt/token.key."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"playbookctl test CA for {hostname}")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key, validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_ski = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())

    def leaf(
        common_name: str, usage: x509.ObjectIdentifier, san: bool
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            _builder(_name(common_name), ca_name, key, validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(ca_ski, critical=False)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False
            )
        return builder.sign(ca_key, hashes.SHA256()), key

    server_cert, server_key = leaf(hostname, ExtendedKeyUsageOID.SERVER_AUTH, san=True)
    token_cert, token_key = leaf(
        f"token signer for {hostname}", ExtendedKeyUsageOID.CODE_SIGNING, False
    )

    pki = Pki(
        hostname=hostname,
        ca=CertFiles(directory / "ca.crt", directory / "ca.key"),
        server=CertFiles(directory / "server.crt", directory / "server.key"),
        token_signer=CertFiles(directory / "token.crt", directory / "token.key"),
    )
    for files, cert, key in (
        (pki.ca, ca_cert, ca_key),
        (pki.server, server_cert, server_key),
        (pki.token_signer, token_cert, token_key),
    ):
        _write_cert(files.cert, cert)
        _write_key(files.key, key)
    return pki
