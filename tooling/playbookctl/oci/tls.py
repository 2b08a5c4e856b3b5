"""TLS trust for registries, as docker has it (see TrustStore); used by transport.py."""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path

import certifi

from playbookctl.errors import RegistryError

# -- TLS: trust what docker trusts -------------------------------------------------------------
#
# docker verifies a registry's certificate against the system trust store (which SSL_CERT_FILE
# and SSL_CERT_DIR replace, as Go's crypto/x509 reads them) plus every `*.crt` in
# /etc/docker/certs.d/<host[:port]>/, and presents the client certificate `*.cert` with its
# `*.key` found there (Harbor's mutual TLS). One CA installation must serve the engine and us,
# so TrustStore builds the same trust per host. requests alone would use certifi's bundle and
# read neither SSL_CERT_FILE nor certs.d. REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, which the client
# honoured before, stay an additional source.

ENV_CERTS_DIR = "PLAYBOOKCTL_REGISTRY_CERTS_DIR"


def host_key(host: str, port: int | None) -> str:
    """How docker names a registry's certs.d directory: host, or host:port when a port is given."""
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


_ENV_READ = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_SHARED: dict[tuple[object, ...], ssl.SSLContext] = {}  # TrustStore._shared
_SHARED_LOCK = threading.Lock()


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _pem_files(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_file())
    except OSError:  # absent or unreadable: no CAs from there, as Go's loader does
        return []


class TrustStore:
    """The TLS context for each (host, registry) pair, built once: the system trust store (or
    SSL_CERT_FILE / SSL_CERT_DIR), REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, and certs.d's CAs and
    client certificate for the host and for the registry it serves (a token realm on another
    host is reached with the registry's trust, as the engine does: one transport per registry).
    Verification is always on; there is no switch to turn it off."""

    def __init__(self, certs_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.certs_dir = certs_dir
        self._env = dict(os.environ if env is None else env)
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context(self, host_key: str, registry: str | None) -> ssl.SSLContext:
        key = (host_key, registry or host_key)
        with self._lock:
            ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._shared(*key)
            with self._lock:
                ctx = self._contexts.setdefault(key, ctx)
        return ctx

    def _shared(self, host_key: str, registry: str) -> ssl.SSLContext:
        """The process's context for these inputs: building one reads the system's CA bundle
        (~50 ms), and a release makes several clients. The key is every input: the
        environment variables read, certs.d's directory, and the name, size and time of each
        file they name and of each file in the host's directories there (a CA or a client
        certificate changed on disk makes a new context)."""
        files = tuple(
            (str(p), st.st_size, st.st_mtime_ns)
            for d in self.host_dirs(host_key, registry)
            for p in _pem_files(d)
            if (st := _stat(p)) is not None
        )
        env = tuple(self._env.get(k, "") for k in _ENV_READ)
        named = [Path(p) for v in env for p in v.split(":") if p]  # what those variables name
        read = tuple(
            (str(p), st.st_size, st.st_mtime_ns)
            for n in named
            for p in (_pem_files(n) if n.is_dir() else [n])
            if (st := _stat(p)) is not None
        )
        key = (str(self.certs_dir), env, read, host_key, registry, files)
        with _SHARED_LOCK:
            ctx = _SHARED.get(key)
        if ctx is None:
            ctx = self._build(host_key, registry)
            with _SHARED_LOCK:
                ctx = _SHARED.setdefault(key, ctx)
        return ctx

    def host_dirs(self, host_key: str, registry: str) -> list[Path]:
        """The certs.d directories that apply: the host's own, then its registry's."""
        names: list[str] = []
        for name in (registry, registry.lower(), host_key, host_key.lower()):
            if name and name not in names and "/" not in name and name not in (".", ".."):
                names.append(name)
        return [self.certs_dir / n for n in names if (self.certs_dir / n).is_dir()]

    def _build(self, host_key: str, registry: str) -> ssl.SSLContext:
        # create_default_context reads the system store through OpenSSL, which honours
        # SSL_CERT_FILE and SSL_CERT_DIR (each replaces the system's file or directory).
        ctx = ssl.create_default_context()
        env = self._env
        defaults = ssl.get_default_verify_paths()
        if not (env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR")) and not (
            defaults.cafile or defaults.capath
        ):
            ctx.load_verify_locations(certifi.where())  # a system without a trust store
        # OpenSSL reads SSL_CERT_DIR only through c_rehash'ed names; Go (docker) reads every
        # file in it. Do as docker does.
        for cert_dir in filter(None, env.get("SSL_CERT_DIR", "").split(":")):
            for path in _pem_files(Path(cert_dir)):
                with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                    ctx.load_verify_locations(cafile=str(path))
        extra = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
        if extra:
            self._load_ca(ctx, Path(extra), what="REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE")
        for directory in self.host_dirs(host_key, registry):
            files = _pem_files(directory)
            for path in files:
                if path.suffix == ".crt":
                    self._load_ca(ctx, path, what=f"{path} (registry-certs-dir)")
            for cert in (p for p in files if p.suffix == ".cert"):
                key = cert.with_suffix(".key")
                if not key.is_file():
                    raise RegistryError(
                        f"{cert}: client certificate without its key {key.name} "
                        "(docker refuses this too)"
                    )
                self._load_client_cert(ctx, cert, key)
            for key in (p for p in files if p.suffix == ".key"):
                if not key.with_suffix(".cert").is_file():
                    raise RegistryError(
                        f"{key}: client key without its certificate {key.stem}.cert "
                        "(docker refuses this too)"
                    )
        return ctx

    @staticmethod
    def _load_ca(ctx: ssl.SSLContext, path: Path, *, what: str) -> None:
        try:
            if path.is_dir():
                ctx.load_verify_locations(capath=str(path))
            else:
                ctx.load_verify_locations(cafile=str(path))
        except (ssl.SSLError, ValueError):
            raise RegistryError(f"{what}: not a PEM CA certificate") from None
        except OSError as exc:
            raise RegistryError(f"{what}: cannot read: {exc.strerror or exc}") from None

    @staticmethod
    def _load_client_cert(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
        def no_passphrase() -> bytes:
            # An encrypted key would make OpenSSL prompt on the terminal; docker refuses it too.
            raise RegistryError(f"{key}: the client key is encrypted; docker needs it plain")

        try:
            ctx.load_cert_chain(str(cert), str(key), password=no_passphrase)
        except ssl.SSLError as exc:
            raise RegistryError(
                f"{cert}: cannot use it with {key.name} as a client certificate "
                f"({exc.reason or 'not a PEM certificate and matching key'})"
            ) from None
        except OSError as exc:
            raise RegistryError(
                f"{cert}: cannot read it or its key: {exc.strerror or exc} (a user who cannot "
                "read docker's certs.d can point registry-certs-dir at a copy of their own)"
            ) from None


def describe_tls_failure(exc: BaseException, host: str, certs_dir: Path) -> str:
    """One line for a failed TLS handshake: what was wrong, and how docker users fix it."""
    cause: BaseException | None = exc
    verify: ssl.SSLCertVerificationError | None = None
    seen = 0
    while cause is not None and seen < 10:
        if isinstance(cause, ssl.SSLCertVerificationError):
            verify = cause
            break
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        reason = getattr(cause, "reason", None)
        cause = (
            (reason if isinstance(reason, BaseException) else None)
            or nested
            or cause.__cause__
            or cause.__context__
        )
        seen += 1
    if verify is not None:
        reason = verify.verify_message or "certificate verify failed"
        return (
            f"the TLS certificate of {host} is not trusted ({reason}); install its CA as "
            f"docker does, in {certs_dir}/{host}/ca.crt (setting registry-certs-dir), or in the "
            "system trust store, or name it in SSL_CERT_FILE"
        )
    text = str(exc)
    m = re.search(r"\[SSL: ([A-Z_0-9]+)\]|(alert [a-z ]+)", text)
    what = m.group(1) or m.group(2) if m else type(exc).__name__
    # A server that wants a client certificate alerts "certificate required" (TLS 1.3) or "bad
    # certificate" (TLS 1.2) when none, or one it does not accept, was presented.
    hint = (
        f"; the registry wants a client certificate it accepts: {certs_dir}/{host}/client.cert "
        "and client.key, as docker reads them"
        if any(a in text.upper() for a in ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE"))
        else ""
    )
    return (
        f"TLS handshake with {host} failed ({what}){hint}; plain HTTP is used only for loopback "
        "registries and insecure-registries"
    )
