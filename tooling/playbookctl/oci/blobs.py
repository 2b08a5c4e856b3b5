"""Blobs: existence checks, bounded reads checked against their digest, the upload protocol
(POST then PUT) and cross-repository mounts, as the distribution spec writes them."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import NamedTuple
from urllib.parse import urljoin

from playbookctl.errors import RegistryError, RegistryUnavailableError
from playbookctl.oci.errors import DigestMismatchError
from playbookctl.oci.fileblob import FileBlob
from playbookctl.oci.reference import sha256_digest
from playbookctl.oci.transport import Caller, Response

log = logging.getLogger("playbookctl.oci")

MAX_BLOB_BYTES = 16 * 1024 * 1024  # the largest blob get reads unless told otherwise
# A monolithic PUT answered with one of these goes again in chunks: 413 from a body limit in
# front of the registry (nginx's client_max_body_size), the others from a registry that wants
# PATCH chunks (BLOB_UPLOAD_INVALID, method or range not allowed, not implemented).
MONOLITHIC_REFUSED = (400, 405, 413, 415, 416, 501)
FIRST_CHUNK = 4 * 1024 * 1024
MIN_CHUNK = 64 * 1024
MAX_CHUNK = 64 * 1024 * 1024  # an OCI-Chunk-Min-Length above this is ignored (hostile)
# Blobs up to this size are first offered as a single-request upload (POST ?digest= with the
# body): configs, bundles, a playbook's own layer. A registry may ignore the body and answer 202
# (distribution 2.8 does), and a Go server that did not read a body drains at most 256 KiB of it
# before closing the connection: a larger one would be cut off mid-send (a reset, not a 202).
SINGLE_REQUEST_MAX = 64 * 1024


class Blobs:
    """The blob half of the protocol for one client; remembers the blobs it saw per repository
    (a blob pushed or found once is not checked again)."""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller
        self._lock = threading.Lock()
        self._known: set[tuple[str, str, str]] = set()
        self._where: dict[tuple[str, str], str] = {}  # (host, digest) -> a repository holding it
        self._chunk_size: dict[str, int] = {}  # per host, once a monolithic PUT was refused
        # Per host: False once it did not complete a single-request upload (answered 202, or
        # refused it): its later blobs go as POST then PUT without offering the body twice.
        self._single_request: dict[str, bool] = {}

    def known(self, host: str, repo: str, digest: str) -> bool:
        return (host, repo, digest) in self._known

    def remember(self, host: str, repo: str, digest: str) -> None:
        with self._lock:
            self._known.add((host, repo, digest))
            self._where.setdefault((host, digest), repo)

    def forget(self, host: str, repo: str, digest: str) -> None:
        """The registry said it lacks a blob we saw: check it again next time."""
        with self._lock:
            self._known.discard((host, repo, digest))
            if self._where.get((host, digest)) == repo:
                del self._where[(host, digest)]

    def exists(self, repo: str, digest: str, *, registry: str | None = None) -> bool:
        host = registry or self._caller.config.registry
        if self.known(host, repo, digest):
            return True
        resp = self._caller.call(
            "HEAD", host, repo, f"blobs/{digest}", what=f"check blob {digest[:19]}", ok=(200, 404)
        )
        if resp.status_code == 200:
            self.remember(host, repo, digest)
            return True
        return False

    def get(
        self,
        repo: str,
        digest: str,
        *,
        registry: str | None = None,
        max_bytes: int = MAX_BLOB_BYTES,
    ) -> bytes:
        """A blob's bytes, checked against its digest; ResponseTooLargeError past max_bytes
        (refused before or while reading, never read whole). A blob this client pushed or saw
        there that reads as missing is waited for (backoff, within registry-deadline): an
        eventually consistent registry serves a write a little after acknowledging it."""
        host = registry or self._caller.config.registry
        started = time.monotonic()
        end = started + self._caller.deadline
        delay = 0.1
        while True:
            resp = self._caller.call(
                "GET",
                host,
                repo,
                f"blobs/{digest}",
                what=f"get blob {digest[:19]}",
                ok=(200, 404),
                max_bytes=max_bytes,
                deadline=end,
            )
            if resp.status_code != 404:
                break
            if not self.known(host, repo, digest):
                raise RegistryError(f"{host}/{repo}: blob {digest} not found")
            if time.monotonic() + delay >= end:
                raise RegistryError(
                    f"{host}/{repo}: blob {digest} was stored, but the registry still does not "
                    f"serve it after {time.monotonic() - started:.1f} s of waiting "
                    "(registry-deadline); an eventually consistent registry may serve it later: "
                    "run again"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        data = resp.content
        if sha256_digest(data) != digest:
            raise DigestMismatchError(
                f"{host}/{repo}: blob {digest} content does not match its digest"
            )
        return data

    def push(
        self,
        repo: str,
        data: bytes | FileBlob,
        digest: str | None = None,
        *,
        registry: str | None = None,
        check: bool = True,
        mount_from: str | None = None,
    ) -> str:
        """Upload a blob, skipping it if the repository has it; return its digest.

        The distribution spec's protocol: POST opens a session (with `mount_from`, as a
        cross-repository mount, which needs no upload when the registry offers it: 201), then a
        monolithic PUT of the whole body. A registry that refuses that PUT (413 from a body
        limit in front of it, 400/405/415/416/501 from one that wants chunks) gets the body in
        PATCH chunks instead, in a fresh session: each chunk's `Content-Range` follows the
        `Range` the registry acknowledged last (a 416 asks for the session's state and resumes
        from it), a 413 halves the chunk size (never below the `OCI-Chunk-Min-Length` the
        registry asked for), and the size that worked is used for this host's later blobs
        without trying a monolithic PUT again. Every `Location` is resolved against the URL of
        the request it answered (RFC 3986), so `<uuid>?_state=...` works as `/v2/...` does.

        check=False skips the HEAD for a blob that is probably new: for small blobs an upload
        (2 requests) is cheaper than HEAD + upload (3), and uploading a blob the registry already
        has is harmless. Blobs this client saw in the repository are skipped either way.
        """
        host = registry or self._caller.config.registry
        # A FileBlob's digest was taken as it was written; its bytes are read only to send them.
        actual = data.digest if isinstance(data, FileBlob) else sha256_digest(data)
        digest = digest or actual
        if actual != digest:
            raise RegistryError(f"push blob to {host}/{repo}: data does not match {digest}")
        if self.known(host, repo, digest) or (check and self.exists(repo, digest, registry=host)):
            return digest
        if mount_from is None:
            mount_from = self.seen_elsewhere(host, repo, digest)
        single: Upload | None = None
        if mount_from is None:
            outcome = self._single_request_upload(host, repo, data, digest)
            if outcome is True:
                return digest
            single = outcome or None
        for attempt in range(2):
            if single is not None:  # the session a 202 to the single-request upload opened
                session: Upload | None = single
                single = None
            elif mount_from:
                try:
                    session = self.start_upload(host, repo, mount=(digest, mount_from))
                except RegistryUnavailableError:
                    raise
                except RegistryError as exc:
                    # A mount refused outright (a token without pull on the source, a 403)
                    # rather than answered with a session: the bytes are here, so upload them.
                    log.debug(
                        "mount of %s from %s refused (%s): uploading", digest, mount_from, exc
                    )
                    mount_from = None
                    session = self.start_upload(host, repo)
            else:
                session = self.start_upload(host, repo)
            if session is None:  # mounted
                self.remember(host, repo, digest)
                return digest
            chunk = self._chunk_size.get(host)
            if chunk is None:
                resp = self._caller.call(
                    "PUT",
                    host,
                    repo,
                    _with_digest(session.url, digest),
                    what=f"upload blob {digest[:19]}",
                    headers={"Content-Type": "application/octet-stream"},
                    data=data,
                    ok=(201, 404, *MONOLITHIC_REFUSED),
                    push=True,
                )
                if resp.status_code == 201:
                    self.remember(host, repo, digest)
                    return digest
                if resp.status_code in MONOLITHIC_REFUSED:
                    log.debug(
                        "%s refused a monolithic upload (HTTP %d): chunks", host, resp.status_code
                    )
                    chunk = max(session.min_chunk, min(len(data), FIRST_CHUNK))
                    self._cancel(host, repo, session.url)
                    fresh = self.start_upload(host, repo)
                    if fresh is None:  # pragma: no cover - start_upload refuses a 201 unasked
                        raise RegistryError(f"{host}/{repo}: upload session refused")
                    session = fresh
                    done = self._upload_chunks(
                        host, repo, session, data, digest=digest, chunk=chunk
                    )
                    if done:
                        return digest
            elif self._upload_chunks(host, repo, session, data, digest=digest, chunk=chunk):
                return digest
            # 404 BLOB_UPLOAD_UNKNOWN: a retried PUT whose first try completed, or an upload
            # session the registry lost (it restarted). Done if the blob is there, else restart.
            if self.exists(repo, digest, registry=host):
                return digest
            log.debug("upload session lost for %s (attempt %d), restarting", digest, attempt)
        raise RegistryError(f"{host}/{repo}: upload of blob {digest} failed: upload session lost")

    def seen_elsewhere(self, host: str, repo: str, digest: str) -> str | None:
        """Another repository of `host` where this client pushed or found `digest`: a mount
        from there is one request where an upload is two (a layer two playbooks' images share;
        the bundles' shared config is mounted from the repository publish names, its anchor).
        A registry that does not mount answers with an upload session, which takes the upload:
        nothing is lost."""
        with self._lock:
            other = self._where.get((host, digest))
        return other if other != repo else None

    def _single_request_upload(
        self, host: str, repo: str, data: bytes | FileBlob, digest: str
    ) -> Upload | bool:
        """The distribution spec's single-request upload: `POST /v2/<repo>/blobs/uploads/
        ?digest=<digest>` with the whole body. True when the registry stored it (201, its
        Docker-Content-Digest checked); the upload session when it answered 202 instead (the
        spec allows it: the body is ignored and the upload goes on in that session, as PUT);
        False when not tried (a large blob, a host that answered 202 or refused it before, or
        one that wants chunks) or refused (the normal upload follows). Whatever this host did
        is remembered: a registry that does not take the body is not sent it again."""
        if (
            len(data) > SINGLE_REQUEST_MAX
            or self._single_request.get(host) is False
            or host in self._chunk_size
        ):
            return False
        resp = self._caller.call(
            "POST",
            host,
            repo,
            f"blobs/uploads/?digest={digest}",
            what=f"upload blob {digest[:19]}",
            headers={"Content-Type": "application/octet-stream"},
            data=data,
            ok=(201, 202, 404, *MONOLITHIC_REFUSED),
            push=True,
        )
        if resp.status_code == 201:
            answered = resp.headers.get("Docker-Content-Digest")
            if answered and answered != digest:
                raise DigestMismatchError(
                    f"{host}/{repo}: the registry stored blob {answered} for an upload of {digest}"
                )
            with self._lock:
                self._single_request[host] = True
            self.remember(host, repo, digest)
            return True
        with self._lock:
            self._single_request[host] = False
        log.debug("%s did not complete a single-request upload (HTTP %d)", host, resp.status_code)
        if resp.status_code == 202 and resp.headers.get("Location"):
            return _session(resp)
        return False

    def _upload_chunks(
        self,
        host: str,
        repo: str,
        session: Upload,
        data: bytes | FileBlob,
        *,
        digest: str,
        chunk: int,
    ) -> bool:
        """PATCH data in chunks, then PUT ?digest=; True when stored, False if the registry lost
        the session (404)."""
        url, offset = session.url, 0
        floor = max(session.min_chunk, MIN_CHUNK)
        while offset < len(data):
            part = data[offset : offset + chunk]
            resp = self._caller.call(
                "PATCH",
                host,
                repo,
                url,
                what=f"upload blob {digest[:19]} (bytes {offset}-{offset + len(part) - 1})",
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(part) - 1}",
                },
                data=part,
                ok=(202, 404, 413, 416),
                push=True,
            )
            if resp.status_code == 404:
                return False
            if resp.status_code == 413:
                if chunk <= floor:
                    raise RegistryError(
                        f"registry {host}: upload blob {digest[:19]}: a chunk of {len(part)} "
                        "bytes is refused as too large (HTTP 413), and the registry asks for "
                        f"chunks of at least {session.min_chunk} bytes"
                    )
                chunk = max(floor, chunk // 2)
                continue
            url = _location(resp, url)
            if resp.status_code == 416:  # out of step: ask where the session stands
                status = self._caller.call(
                    "GET", host, repo, url, what="read upload status", ok=(204, 404), push=True
                )
                if status.status_code == 404:
                    return False
                url = _location(status, url)
                held = _range_end(status, 0)
                # distribution writes an empty session's range as "0-0" (its end is size - 1,
                # floored at 0): one byte held is not a state our chunks ever leave.
                offset = 0 if held == 1 else held
                continue
            offset = _range_end(resp, offset + len(part))
        self._chunk_size[host] = chunk
        resp = self._caller.call(
            "PUT",
            host,
            repo,
            _with_digest(url, digest),
            what=f"finish upload of blob {digest[:19]}",
            headers={"Content-Type": "application/octet-stream"},
            data=b"",
            ok=(201, 404),
            push=True,
        )
        if resp.status_code == 201:
            self.remember(host, repo, digest)
            return True
        return False

    def _cancel(self, host: str, repo: str, url: str) -> None:
        try:
            self._caller.call(
                "DELETE", host, repo, url, what="cancel upload", ok=(204, 404), push=True
            )
        except RegistryError:
            log.debug("could not cancel an upload session on %s", host)

    def mount(self, repo: str, digest: str, from_repo: str, *, registry: str | None = None) -> bool:
        """Cross-repository mount; False if the registry would not mount (then push instead)."""
        host = registry or self._caller.config.registry
        if self.known(host, repo, digest):
            return True
        session = self.start_upload(host, repo, mount=(digest, from_repo))
        if session is None:
            self.remember(host, repo, digest)
            return True
        # The registry opened an upload session instead; cancel it so it does not linger.
        self._cancel(host, repo, session.url)
        return False

    def start_upload(
        self, host: str, repo: str, *, mount: tuple[str, str] | None = None
    ) -> Upload | None:
        """POST a new upload session (with mount=(digest, from_repo): a cross-repository mount,
        None when the registry mounted it). The session's URL is the answer's Location resolved
        against the POST's URL (RFC 3986)."""
        path = "blobs/uploads/"
        extra: tuple[str, ...] = ()
        what = "start blob upload"
        if mount is not None:
            path += f"?mount={mount[0]}&from={mount[1]}"
            extra = (f"repository:{mount[1]}:pull",)
            what = f"mount blob {mount[0][:19]} from {mount[1]}"
        resp = self._caller.call(
            "POST", host, repo, path, what=what, ok=(201, 202), push=True, extra_scopes=extra
        )
        if resp.status_code == 201:
            if mount is None:
                raise RegistryError(f"{host}/{repo}: registry answered an upload start with 201")
            return None
        if not resp.headers.get("Location"):
            raise RegistryError(f"{host}/{repo}: registry started an upload without a Location")
        return _session(resp)


class Upload(NamedTuple):
    url: str  # absolute
    min_chunk: int  # OCI-Chunk-Min-Length, 0 if not asked


def _session(resp: Response) -> Upload:
    """The upload session a 202 opened: its Location (resolved against the request's URL) and
    the chunk size it asks for."""
    minimum = resp.headers.get("OCI-Chunk-Min-Length", "").strip()
    return Upload(
        _location(resp, resp.url),
        int(minimum) if minimum.isdigit() and int(minimum) <= MAX_CHUNK else 0,
    )


def _location(resp: Response, base: str) -> str:
    """The answer's Location resolved against the request URL (RFC 3986 section 5), or base."""
    location = resp.headers.get("Location")
    return urljoin(resp.url or base, location) if location else base


def _with_digest(url: str, digest: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}digest={digest}"


def _range_end(resp: Response, default: int) -> int:
    """The next offset after a `Range: 0-<last>` header (the bytes the registry holds)."""
    m = re.fullmatch(r"(?:bytes=)?0-(\d+)", resp.headers.get("Range", "").strip())
    return int(m.group(1)) + 1 if m else default
