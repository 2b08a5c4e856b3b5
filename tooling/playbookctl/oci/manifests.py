"""Manifests: media types, image indexes, and reading and writing manifests by tag or digest
(the digest is always what the bytes hash to, never a header taken on trust)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from playbookctl.errors import RegistryError
from playbookctl.oci.blobs import Blobs
from playbookctl.oci.errors import (
    DigestMismatchError,
    ManifestNotFoundError,
    ManifestRefusedError,
)
from playbookctl.oci.reference import Reference, parse_reference, sha256_digest, tag_problem
from playbookctl.oci.transport import Caller, Response, _error_detail

log = logging.getLogger("playbookctl.oci")

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_MEDIA_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX)
INDEX_MEDIA_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class Descriptor(NamedTuple):
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def preferred_index_type(child_types: Sequence[str]) -> str:
    """A Docker manifest list when every child is a Docker manifest (what a Docker engine
    pushes), else an OCI index."""
    return DOCKER_MANIFEST_LIST if all(t == DOCKER_MANIFEST for t in child_types) else OCI_INDEX


def image_index(
    children: Sequence[tuple[Descriptor, Mapping[str, str]]], media_type: str | None = None
) -> tuple[bytes, str]:
    """An image index listing each child manifest with its platform (os, architecture and
    variant); returns (bytes, media type). Of `media_type` (one of INDEX_MEDIA_TYPES, what the
    registry accepts: Manifests.index_media_type), else preferred_index_type. The same children
    in the same order give the same bytes, so the same digest."""
    if media_type is None:
        media_type = preferred_index_type([d.media_type for d, _ in children])
    elif media_type not in INDEX_MEDIA_TYPES:
        raise ValueError(f"not an index media type: {media_type}")
    manifests = []
    for descriptor, platform in children:
        entry = descriptor.as_dict()
        entry["platform"] = {k: v for k, v in platform.items() if v}
        manifests.append(entry)
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode(), media_type


def _ref(ref: str | Reference) -> Reference:
    return ref if isinstance(ref, Reference) else parse_reference(ref)


class Manifests:
    """The manifest half of the protocol for one client. It remembers what it pushed, so that a
    read of a just-pushed manifest that the registry does not serve yet (an eventually
    consistent one: S3-backed storage behind several nodes) is retried for a while instead of
    failing; and which index media type each repository takes."""

    def __init__(self, caller: Caller, blobs: Blobs) -> None:
        self._caller = caller
        self._blobs = blobs
        self._lock = threading.Lock()
        self._pushed: set[tuple[str, str, str]] = set()  # (host, repo, tag or digest)
        # (host, type) -> taken: a registry's media types are its own, not a repository's
        # (distribution, Quay's FEATURE_GENERAL_OCI_SUPPORT, Harbor: registry-wide settings).
        self._index_types: dict[tuple[str, str], bool] = {}
        # One probe per registry and type at a time: the jobs that ask together wait for the
        # first one's verdict instead of each probing (a release's first four playbooks did).
        self._probe_locks: dict[tuple[str, str], threading.Lock] = {}

    def resolve(self, ref: str | Reference) -> Descriptor | None:
        """The manifest descriptor a tag or digest points at, or None if there is none.

        A GET, not a HEAD: the digest is what the manifest's bytes hash to, never a header
        taken on trust (one request either way; a manifest is a few KiB)."""
        try:
            data, media_type, digest = self.get(ref)
        except ManifestNotFoundError:
            return None
        return Descriptor(media_type, digest, len(data))

    def read_back(self, ref: str | Reference) -> Descriptor:
        """Confirm that what a push reported is stored: fetch `ref` (which names a digest) by
        digest and hash it, waiting a while (with backoff, within registry-deadline) for a
        registry that acknowledges a write before it serves it. A registry that acknowledged a
        push it did not keep, or keeps other bytes under that digest, is a RegistryError naming
        the digest."""
        r = _ref(ref)
        if not r.digest:
            raise RegistryError(f"read back {r}: a digest is needed")
        data, media_type, digest = self._get(r, wait=True)
        return Descriptor(media_type, digest, len(data))

    def get(self, ref: str | Reference) -> tuple[bytes, str, str]:
        """(bytes, media type, digest); the digest is computed from the bytes and checked against
        the reference's digest when it has one. ManifestNotFoundError if missing (after a
        bounded wait when this client pushed that tag or digest)."""
        r = _ref(ref)
        with self._lock:
            wait = (r.registry, r.repository, r.reference) in self._pushed
        return self._get(r, wait=wait)

    def _get(self, r: Reference, *, wait: bool) -> tuple[bytes, str, str]:
        if not wait:
            return self._get_once(r)
        started = time.monotonic()
        end = started + self._caller.deadline
        delay = 0.1
        while True:
            try:
                return self._get_once(r, deadline=end)
            except ManifestNotFoundError:
                if time.monotonic() + delay >= end:
                    waited = time.monotonic() - started
                    raise RegistryError(
                        f"{r.name}@{r.digest or r.reference}: the push was acknowledged but the "
                        "registry does not have that manifest (not stored, or not readable yet "
                        f"after {waited:.1f} s of waiting within registry-deadline: an eventually "
                        "consistent registry may serve it later, then run again); nothing was "
                        "published under it"
                    ) from None
                log.debug("%s not readable yet; again in %.2f s", r, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _get_once(self, r: Reference, *, deadline: float | None = None) -> tuple[bytes, str, str]:
        resp = self._caller.call(
            "GET",
            r.registry,
            r.repository,
            f"manifests/{r.reference}",
            what=f"get manifest {r}",
            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)},
            ok=(200, 404),
            max_bytes=MAX_MANIFEST_BYTES,
            deadline=deadline,
        )
        if resp.status_code == 404:
            raise ManifestNotFoundError(f"{r}: manifest not found in registry {r.registry}")
        data = resp.content
        digest = sha256_digest(data)
        if r.digest and digest != r.digest:
            raise DigestMismatchError(
                f"{r}: the registry sent a manifest that hashes to {digest}, not to {r.digest}"
            )
        answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            # The header would be what gets reported and registered: never trust it over bytes.
            raise DigestMismatchError(
                f"{r}: the registry answered Docker-Content-Digest {answered}, but the manifest "
                f"it sent hashes to {digest}; refusing both"
            )
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            try:
                media_type = str(json.loads(data).get("mediaType", ""))
            except (ValueError, AttributeError):
                media_type = ""
        return data, media_type, digest

    def push(
        self,
        repo: str,
        reference: str,
        data: bytes,
        media_type: str,
        *,
        registry: str | None = None,
        blobs: Mapping[str, bytes] | None = None,
    ) -> str:
        """PUT a manifest under a tag or digest; return its digest (checked with the registry's).

        `blobs` (digest -> bytes) are the blobs the manifest references: when the registry
        refuses the manifest because one is unknown (MANIFEST_BLOB_UNKNOWN, or DIGEST_INVALID
        from a concurrent writer's upload of the same blob), each is checked again, uploaded if
        missing, and the PUT retried once."""
        host = registry or self._caller.config.registry
        digest = sha256_digest(data)
        if reference.startswith("sha256:"):
            if reference != digest:
                raise RegistryError(f"push manifest to {host}/{repo}@{reference}: digest mismatch")
        elif problem := tag_problem(reference):
            raise RegistryError(f"push manifest to {host}/{repo}: {problem}")
        what = f"push manifest {host}/{repo}:{reference}"
        for retried in (False, True):
            resp = self._caller.call(
                "PUT",
                host,
                repo,
                f"manifests/{reference}",
                what=what,
                headers={"Content-Type": media_type},
                data=data,
                ok=(201, 400, 404, 415) if blobs and not retried else (201, 400, 415),
                push=True,
            )
            if resp.status_code == 201:
                break
            codes = _error_codes(resp)
            if not (codes & BLOB_REFUSALS and blobs and not retried):
                detail = _error_detail(resp)
                refused = resp.status_code == 415 or bool(codes & TYPE_REFUSALS)
                raise (ManifestRefusedError if refused else RegistryError)(
                    f"registry {host}: {what} failed: HTTP {resp.status_code}"
                    + (f" ({detail})" if detail else "")
                )
            log.debug("%s: %s; checking its blobs again", what, ", ".join(sorted(codes)))
            for blob_digest, blob in (blobs or {}).items():
                self._blobs.forget(host, repo, blob_digest)
                self._blobs.push(repo, blob, blob_digest, registry=host, check=True)
        answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(
                f"push manifest {host}/{repo}:{reference}: registry stored {answered}, "
                f"expected {digest}"
            )
        with self._lock:
            self._pushed.update({(host, repo, reference), (host, repo, digest)})
        return digest

    def index_media_type(self, repo: str, *, registry: str | None = None, prefer: str) -> str:
        """The image index media type `repo` accepts, `prefer` first. publish asks before the
        first child of an index is pushed, so a registry that takes only one of the two never
        ends up with children and no index; push_index asks again with the children's natural
        type (answered from what was learnt, or with one more probe).

        How it probes: it PUTs an empty index of that type (no children, so nothing it could
        refer to is missing) under its own digest, untagged: the same bytes every time, so one
        such manifest per type and repository at most, which tag listings do not show and
        garbage collection removes. 201: that type is taken. A refusal that names the manifest
        or its media type (400 MANIFEST_INVALID/UNSUPPORTED, 415): the other type is probed.
        Anything else (or both refused): `prefer`, and the real push reports what the registry
        says. Verdicts are kept per registry and type, for the client's life (one run): which
        manifest types a registry takes is a setting of the registry, not of a repository, so
        a release of 200 playbooks probes once, not 200 times."""
        host = registry or self._caller.config.registry
        other = OCI_INDEX if prefer == DOCKER_MANIFEST_LIST else DOCKER_MANIFEST_LIST
        for media_type in (prefer, other):
            with self._lock:
                probing = self._probe_locks.setdefault((host, media_type), threading.Lock())
            with probing:
                with self._lock:
                    verdict = self._index_types.get((host, media_type))
                if verdict is None:
                    verdict = self._probe_index(host, repo, media_type)
                    if verdict is None:
                        return prefer  # no verdict on the type: let the real push say
                    with self._lock:
                        self._index_types[(host, media_type)] = verdict
            if verdict:
                return media_type
        return prefer

    def _probe_index(self, host: str, repo: str, media_type: str) -> bool | None:
        probe = _empty_index(media_type)
        resp = self._caller.call(
            "PUT",
            host,
            repo,
            f"manifests/{sha256_digest(probe)}",
            what=f"probe whether {host}/{repo} takes {media_type}",
            headers={"Content-Type": media_type},
            data=probe,
            ok=(201, 400, 404, 415),
            push=True,
        )
        if resp.status_code == 201:
            return True
        if resp.status_code == 415 or _error_codes(resp) & TYPE_REFUSALS:
            log.debug("%s/%s refuses %s (HTTP %d)", host, repo, media_type, resp.status_code)
            return False
        return None


# A manifest refused for its blobs: one unknown (gone, or not linked yet), or a concurrent
# writer's upload of the same blob being verified while the manifest checks it.
BLOB_REFUSALS = frozenset({"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN", "DIGEST_INVALID"})
# A manifest refused for what it is (its media type or schema), not for what it refers to.
TYPE_REFUSALS = frozenset({"MANIFEST_INVALID", "UNSUPPORTED", "MANIFEST_UNVERIFIED"})


def _empty_index(media_type: str) -> bytes:
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": []}
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode()


def _error_codes(resp: Response) -> set[str]:
    try:
        errors = resp.json().get("errors", [])
        return {str(e.get("code", "")) for e in errors if isinstance(e, dict)}
    except (ValueError, AttributeError):
        return set()
