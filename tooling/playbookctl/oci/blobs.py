"""Blobs: existence checks, bounded reads checked against their digest, the upload protocol
(POST then PUT) and cross-repository mounts, as the distribution spec writes them."""

from __future__ import annotations

import logging
import threading

from playbookctl.errors import RegistryError
from playbookctl.oci.errors import DigestMismatchError
from playbookctl.oci.reference import sha256_digest
from playbookctl.oci.transport import Caller

log = logging.getLogger("playbookctl.oci")

MAX_BLOB_BYTES = 16 * 1024 * 1024  # the largest blob get reads unless told otherwise


class Blobs:
    """The blob half of the protocol for one client; remembers the blobs it saw per repository
    (a blob pushed or found once is not checked again)."""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller
        self._lock = threading.Lock()
        self._known: set[tuple[str, str, str]] = set()

    def known(self, host: str, repo: str, digest: str) -> bool:
        return (host, repo, digest) in self._known

    def remember(self, host: str, repo: str, digest: str) -> None:
        with self._lock:
            self._known.add((host, repo, digest))

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
        (refused before or while reading, never read whole)."""
        host = registry or self._caller.config.registry
        resp = self._caller.call(
            "GET",
            host,
            repo,
            f"blobs/{digest}",
            what=f"get blob {digest[:19]}",
            ok=(200, 404),
            max_bytes=max_bytes,
        )
        if resp.status_code == 404:
            raise RegistryError(f"{host}/{repo}: blob {digest} not found")
        data = resp.content
        if sha256_digest(data) != digest:
            raise DigestMismatchError(
                f"{host}/{repo}: blob {digest} content does not match its digest"
            )
        return data

    def push(
        self,
        repo: str,
        data: bytes,
        digest: str | None = None,
        *,
        registry: str | None = None,
        check: bool = True,
    ) -> str:
        """Upload a blob monolithically (POST then PUT), skipping it if the repository has it.

        check=False skips the HEAD for a blob that is probably new: for small blobs an upload
        (2 requests) is cheaper than HEAD + upload (3), and uploading a blob the registry already
        has is harmless. Blobs this client saw in the repository are skipped either way.
        """
        host = registry or self._caller.config.registry
        digest = digest or sha256_digest(data)
        if sha256_digest(data) != digest:
            raise RegistryError(f"push blob to {host}/{repo}: data does not match {digest}")
        if self.known(host, repo, digest) or (check and self.exists(repo, digest, registry=host)):
            return digest
        for attempt in range(2):
            location = self.start_upload(host, repo)
            sep = "&" if "?" in location else "?"
            resp = self._caller.call(
                "PUT",
                host,
                repo,
                f"{location}{sep}digest={digest}",
                what=f"upload blob {digest[:19]}",
                headers={"Content-Type": "application/octet-stream"},
                data=data,
                ok=(201, 404),
                push=True,
            )
            if resp.status_code == 201:
                self.remember(host, repo, digest)
                return digest
            # 404 BLOB_UPLOAD_UNKNOWN: a retried PUT whose first try completed, or an upload
            # session the registry lost (it restarted). Done if the blob is there, else restart.
            if self.exists(repo, digest, registry=host):
                return digest
            log.debug("upload session lost for %s (attempt %d), restarting", digest, attempt)
        raise RegistryError(f"{host}/{repo}: upload of blob {digest} failed: upload session lost")

    def mount(self, repo: str, digest: str, from_repo: str, *, registry: str | None = None) -> bool:
        """Cross-repository mount; False if the registry would not mount (then push instead)."""
        host = registry or self._caller.config.registry
        if self.known(host, repo, digest):
            return True
        resp = self._caller.call(
            "POST",
            host,
            repo,
            f"blobs/uploads/?mount={digest}&from={from_repo}",
            what=f"mount blob {digest[:19]} from {from_repo}",
            ok=(201, 202),
            push=True,
            extra_scopes=(f"repository:{from_repo}:pull",),
        )
        if resp.status_code == 201:
            self.remember(host, repo, digest)
            return True
        # 202: the registry opened an upload session instead; cancel it so it does not linger.
        location = resp.headers.get("Location")
        if location:
            try:
                self._caller.call(
                    "DELETE", host, repo, location, what="cancel upload", ok=(204, 404), push=True
                )
            except RegistryError:
                log.debug("could not cancel upload session after refused mount")
        return False

    def start_upload(self, host: str, repo: str) -> str:
        resp = self._caller.call(
            "POST", host, repo, "blobs/uploads/", what="start blob upload", ok=(202,), push=True
        )
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"{host}/{repo}: registry started an upload without a Location")
        return location
