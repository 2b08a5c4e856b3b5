"""RegistryClient: the facade the rest of playbookctl uses, over transport, auth, blobs and
manifests; and `call`, one logical request (authentication answered, transient failures retried
within registry-deadline), which joins transport and auth for blobs.py and manifests.py."""

from __future__ import annotations

import logging
import time
from types import TracebackType

import requests

from playbookctl.config import Config
from playbookctl.errors import RegistryError
from playbookctl.oci.auth import ENV_PASSWORD, ENV_USERNAME, Authenticator
from playbookctl.oci.blobs import MAX_BLOB_BYTES, Blobs
from playbookctl.oci.manifests import Descriptor, Manifests
from playbookctl.oci.reference import Reference, parse_reference
from playbookctl.oci.tls import describe_tls_failure
from playbookctl.oci.transport import (
    MAX_OTHER_BYTES,
    RETRY_STATUSES,
    Transport,
    _error_detail,
    _SendFailedError,
)

log = logging.getLogger("playbookctl.oci")


class RegistryClient:
    """A small, explicit OCI distribution client (see the package docstring)."""

    def __init__(
        self, config: Config, *, timeout: float | None = None, retries: int | None = None
    ) -> None:
        self.config = config
        # Seconds for one request, the whole answer read (registry-timeout), and for one
        # operation, its retries included (registry-deadline).
        self.timeout = config.registry_timeout if timeout is None else timeout
        self.deadline = max(config.registry_deadline, self.timeout)
        self.retries = config.registry_retries if retries is None else retries
        self.transport = Transport(config, timeout=self.timeout)
        self.auth = Authenticator(config, self.transport)
        self.blobs = Blobs(self)
        self.manifests = Manifests(self)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryClient(registry={self.config.registry!r})"

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (token requests and retries included), for benchmarks."""
        return self.transport.request_count

    # -- public API (each delegates to the module of its part of the protocol) -----------------

    def resolve(self, ref: str | Reference) -> Descriptor | None:
        """The manifest descriptor a tag or digest points at, or None if there is none."""
        return self.manifests.resolve(ref)

    def read_back(self, ref: str | Reference) -> Descriptor:
        """Confirm that a pushed manifest (`ref` names its digest) is stored, by digest."""
        return self.manifests.read_back(ref)

    def tag_exists(self, ref: str | Reference) -> bool:
        return self.manifests.resolve(ref) is not None

    def get_manifest(self, ref: str | Reference) -> tuple[bytes, str, str]:
        """(bytes, media type, digest), the digest computed from the bytes."""
        return self.manifests.get(ref)

    def push_manifest(
        self,
        repo: str,
        reference: str,
        data: bytes,
        media_type: str,
        *,
        registry: str | None = None,
    ) -> str:
        """PUT a manifest under a tag or digest; return its digest."""
        return self.manifests.push(repo, reference, data, media_type, registry=registry)

    def blob_exists(self, repo: str, digest: str, *, registry: str | None = None) -> bool:
        return self.blobs.exists(repo, digest, registry=registry)

    def get_blob(
        self,
        repo: str,
        digest: str,
        *,
        registry: str | None = None,
        max_bytes: int = MAX_BLOB_BYTES,
    ) -> bytes:
        """A blob's bytes, checked against its digest, at most max_bytes."""
        return self.blobs.get(repo, digest, registry=registry, max_bytes=max_bytes)

    def push_blob(
        self,
        repo: str,
        data: bytes,
        digest: str | None = None,
        *,
        registry: str | None = None,
        check: bool = True,
    ) -> str:
        """Upload a blob unless the repository has it; return its digest."""
        return self.blobs.push(repo, data, digest, registry=registry, check=check)

    def mount_blob(
        self, repo: str, digest: str, from_repo: str, *, registry: str | None = None
    ) -> bool:
        """Cross-repository mount; False if the registry would not mount (then push instead)."""
        return self.blobs.mount(repo, digest, from_repo, registry=registry)

    def parse_reference(self, ref: str) -> Reference:
        return parse_reference(ref)

    def scheme(self, host: str) -> str:
        """https, except for loopback registries and configured insecure ones."""
        return self.transport.scheme(host)

    # -- one logical request ----------------------------------------------------------------------

    def call(
        self,
        method: str,
        host: str,
        repo: str,
        path: str,
        *,
        what: str,
        ok: tuple[int, ...],
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        push: bool = False,
        extra_scopes: tuple[str, ...] = (),
        max_bytes: int = MAX_OTHER_BYTES,
    ) -> requests.Response:
        """One logical request: auth challenges answered, transient failures retried with
        exponential backoff and jitter, all within registry-deadline seconds; each try has
        registry-timeout seconds for its whole answer, body included (at most max_bytes of it
        when the status is one of `ok`)."""
        url = self.transport.url(host, repo, path)
        scopes = (f"repository:{repo}:{'pull,push' if push else 'pull'}", *extra_scopes)
        deadline = time.monotonic() + self.deadline
        attempt = 0
        auth_rounds = 0
        last = ""
        while True:
            hdrs = dict(headers or {})
            auth = self.auth.header(host, scopes)
            if auth:
                hdrs["Authorization"] = auth
            resp: requests.Response | None = None
            try:
                resp = self.transport.send(
                    method,
                    url,
                    deadline=deadline,
                    what=f"registry {host}: {what}",
                    ok=ok,
                    max_bytes=max_bytes,
                    registry=host,
                    headers=hdrs,
                    data=data,
                    allow_redirects=True,
                )
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    f"registry {host}: cannot {what}: "
                    + describe_tls_failure(exc, host, self.transport.trust.certs_dir)
                ) from None
            except _SendFailedError as exc:
                last = str(exc)
                log.debug("%s %s: %s (attempt %d)", method, url, last, attempt + 1)
            else:
                log.debug("%s %s -> %d", method, url, resp.status_code)
                if resp.status_code in ok:
                    return resp
                if resp.status_code == 401:
                    # Round 1 answers the challenge; round 2 covers a cached token that expired.
                    if auth_rounds < 2:
                        auth_rounds += 1
                        challenge = resp.headers.get("WWW-Authenticate", "")
                        if self.auth.answer(host, challenge, scopes, deadline, auth):
                            continue
                    raise RegistryError(
                        f"registry {host}: authentication required to {what} "
                        + (
                            "(the credentials were refused or lack permission)"
                            if self.auth.credentials(host) is not None
                            else "(no credentials found: docker login, or set "
                            f"{ENV_USERNAME}/{ENV_PASSWORD})"
                        )
                    )
                if resp.status_code == 403:
                    raise RegistryError(
                        f"registry {host}: access denied to {what} (HTTP 403): the credentials "
                        "lack permission for this repository"
                    )
                if resp.status_code not in RETRY_STATUSES:
                    detail = _error_detail(resp) if method != "HEAD" else ""
                    raise RegistryError(
                        f"registry {host}: {what} failed: HTTP {resp.status_code}"
                        + (f" ({detail})" if detail else "")
                    )
                last = f"HTTP {resp.status_code}"
            delay = self.transport.backoff(attempt, resp)
            attempt += 1
            if attempt > self.retries or time.monotonic() + delay >= deadline:
                raise RegistryError(
                    f"registry {host}: {what} failed after {attempt} attempt(s): {last}"
                )
            time.sleep(delay)
