"""RegistryClient: the facade the rest of playbookctl uses, over transport, auth, blobs and
manifests; and `call`, one logical request (authentication answered, transient failures retried
within registry-deadline), which joins transport and auth for blobs.py and manifests.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from urllib.parse import urljoin, urlsplit

from playbookctl.config import Config
from playbookctl.errors import RegistryError
from playbookctl.oci.auth import (
    ENV_PASSWORD,
    ENV_USERNAME,
    Authenticator,
    origin,
    refuse_downgrade,
)
from playbookctl.oci.blobs import MAX_BLOB_BYTES, Blobs
from playbookctl.oci.fileblob import FileBlob
from playbookctl.oci.manifests import DOCKER_MANIFEST_LIST, Descriptor, Manifests
from playbookctl.oci.reference import Reference, parse_reference, repository_problem
from playbookctl.oci.tls import describe_tls_failure
from playbookctl.oci.transport import (
    MAX_OTHER_BYTES,
    Response,
    Retries,
    TLSError,
    Transport,
    _error_detail,
    _SendFailedError,
)

log = logging.getLogger("playbookctl.oci")

REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


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
        # The registry's requests and its token service's are retried alike (one policy).
        self.retrying = Retries(retries=self.retries, deadline=self.deadline)
        self.auth = Authenticator(config, self.transport, retrying=self.retrying)
        self.blobs = Blobs(self)
        self.manifests = Manifests(self, self.blobs)

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

    def prefetch_pull_tokens(self, refs: Iterable[str | Reference]) -> int:
        """Ask the token service of each registry for the pull scopes of every repository in
        `refs` in a few requests (Authenticator.prefetch), before many lookups in as many
        repositories go out: a release proving its registrations. Where the token service is
        not known yet, one request without credentials (`GET /v2/`) learns it from its
        challenge. Best effort: what fails here is left to the lookups, each asking alone.
        Returns the token requests made."""
        scopes: dict[str, list[str]] = {}
        for ref in refs:
            parsed = ref if isinstance(ref, Reference) else self.parse_reference(ref)
            scopes.setdefault(parsed.registry, []).append(f"repository:{parsed.repository}:pull")
        made = 0
        for host, wanted in scopes.items():
            deadline = time.monotonic() + self.deadline
            if self.auth.known_challenge(host) is None:
                try:
                    resp = self.transport.send(
                        "GET",
                        self.transport.url(host, "", "/v2/"),
                        deadline=deadline,
                        what=f"registry {host}: ping",
                        ok=(200, 401),
                        max_bytes=MAX_OTHER_BYTES,
                        registry=host,
                        headers={},
                        data=None,
                    )
                    if resp.status_code == 401:
                        self.auth.learn_challenge(host, resp.headers.get("WWW-Authenticate", ""))
                # _SendFailedError: no answer at all (down, a name that does not resolve); the
                # lookups that follow retry and say so in one line, as without this ping.
                except (RegistryError, TLSError, _SendFailedError) as exc:
                    log.debug("registry %s: ping before prefetching tokens: %s", host, exc)
                    continue
            made += self.auth.prefetch(host, wanted, deadline)
        return made

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
        blobs: Mapping[str, bytes] | None = None,
    ) -> str:
        """PUT a manifest under a tag or digest; return its digest. `blobs` (digest -> bytes):
        what it references, uploaded again if the registry says one is unknown."""
        return self.manifests.push(
            repo, reference, data, media_type, registry=registry, blobs=blobs
        )

    def index_media_type(self, ref: str | Reference, *, prefer: str = DOCKER_MANIFEST_LIST) -> str:
        """The image index media type the repository of `ref` accepts (probed once per
        repository, before any child is pushed: Manifests.index_media_type)."""
        r = ref if isinstance(ref, Reference) else parse_reference(ref)
        return self.manifests.index_media_type(r.repository, registry=r.registry, prefer=prefer)

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
        data: bytes | FileBlob,
        digest: str | None = None,
        *,
        registry: str | None = None,
        check: bool = True,
        mount_from: str | None = None,
    ) -> str:
        """Upload a blob unless the repository has it (mounted from `mount_from` when the
        registry offers that); return its digest."""
        return self.blobs.push(
            repo, data, digest, registry=registry, check=check, mount_from=mount_from
        )

    def mount_blob(
        self, repo: str, digest: str, from_repo: str, *, registry: str | None = None
    ) -> bool:
        """Cross-repository mount; False if the registry would not mount (then push instead)."""
        return self.blobs.mount(repo, digest, from_repo, registry=registry)

    def intend_push(self, ref: str | Reference) -> None:
        """Say that this run will write to the repository of `ref`: a token service is then
        asked for pull and push at once, the first time (one token request, not two)."""
        r = ref if isinstance(ref, Reference) else parse_reference(ref)
        self.auth.intend_push(r.registry, r.repository)

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
        data: bytes | FileBlob | None = None,
        push: bool = False,
        extra_scopes: tuple[str, ...] = (),
        max_bytes: int = MAX_OTHER_BYTES,
        deadline: float | None = None,
    ) -> Response:
        """One logical request: auth challenges answered, redirects followed, transient failures
        retried (transport.Retries, as the token service's are) with exponential backoff and
        jitter (or as long as Retry-After asks), all within
        registry-deadline seconds (or the caller's `deadline`, a time.monotonic() value); each
        try has registry-timeout seconds for its whole answer, body included (at most max_bytes
        of it when the status is one of `ok`).

        Credentials are scoped as a browser scopes cookies: the Authorization header goes only to
        the registry's own origin (scheme, host and port, compared case-insensitively); a
        redirect or upload Location elsewhere is followed without it, and one from HTTPS to
        plain HTTP is refused."""
        problem = repository_problem(host, repo) if repo else None
        if problem:  # refused here: a registry answers a bad name with 400s, 404s or 500s
            raise RegistryError(f"{host}/{repo}: {problem}")
        start = self.transport.url(host, repo, path)
        home = origin(f"{self.transport.scheme(host)}://{host}/")
        scopes = (f"repository:{repo}:{'pull,push' if push else 'pull'}", *extra_scopes)
        if deadline is None:
            deadline = time.monotonic() + self.deadline
        # Over all tries: round 1 answers the challenge; round 2 covers a cached token that expired.
        auth_rounds = 0

        def attempt() -> Response:
            """One try: from `start`, redirects followed and challenges answered; an answer with
            a status this does not handle is returned (self.retrying retries it or not)."""
            nonlocal auth_rounds
            url, verb, body, hops = start, method, data, 0
            while True:
                refuse_downgrade(host, home, url, what)
                hdrs = dict(headers or {})
                own = origin(url) == home
                auth = self.auth.header(host, scopes) if own else None
                known = self.auth.known_challenge(host) if own and auth is None else None
                if known is not None and auth_rounds == 0:
                    # A token service met before: the token first, not a request refused with 401.
                    auth_rounds = 1
                    if self.auth.answer(host, known, scopes, deadline, None):
                        auth = self.auth.header(host, scopes)
                if auth:
                    hdrs["Authorization"] = auth
                try:
                    resp = self.transport.send(
                        verb,
                        url,
                        deadline=deadline,
                        what=f"registry {host}: {what}",
                        ok=ok,
                        max_bytes=max_bytes,
                        registry=host,
                        headers=hdrs,
                        data=body,
                    )
                except TLSError as exc:
                    target = urlsplit(url).netloc
                    raise RegistryError(
                        f"registry {host}: cannot {what}: "
                        + describe_tls_failure(exc, target, self.transport.trust.certs_dir)
                    ) from None
                log.debug("%s %s -> %d", verb, url, resp.status_code)
                status = resp.status_code
                if status in ok:
                    return resp
                if status in REDIRECTS and resp.headers.get("Location"):
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        raise RegistryError(f"registry {host}: {what}: too many redirects")
                    url = urljoin(url, resp.headers["Location"])
                    if status == 303 and verb not in ("GET", "HEAD"):
                        verb, body = "GET", None
                    continue
                if status == 401 and not own:
                    raise RegistryError(
                        f"registry {host}: {what}: {urlsplit(url).netloc}, where the registry "
                        f"sent the request, asks for authentication; credentials for {host} "
                        "are sent to no other host"
                    )
                if status == 401:
                    if auth_rounds < 2:
                        auth_rounds += 1
                        challenge = resp.headers.get("WWW-Authenticate", "")
                        if self.auth.answer(host, challenge, scopes, deadline, auth):
                            url, verb, body, hops = start, method, data, 0
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
                if status == 403:
                    raise RegistryError(
                        f"registry {host}: access denied to {what} (HTTP 403): the credentials "
                        "lack permission for this repository"
                    )
                return resp

        resp = self.retrying.run(attempt, until=deadline, subject=f"registry {host}: {what}", ok=ok)
        if resp.status_code in ok:
            return resp
        # A HEAD answer has no body to take the registry's words from (the verb of the last
        # request is HEAD exactly when `method` is: a 303 turns only other verbs into GET).
        detail = _error_detail(resp) if method != "HEAD" else ""
        raise RegistryError(
            f"registry {host}: {what} failed: HTTP {resp.status_code}"
            + (f" ({detail})" if detail else "")
        )
