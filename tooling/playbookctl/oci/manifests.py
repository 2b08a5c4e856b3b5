"""Manifests: media types, image indexes, and reading and writing manifests by tag or digest
(the digest is always what the bytes hash to, never a header taken on trust)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from playbookctl.errors import RegistryError
from playbookctl.oci.errors import DigestMismatchError, ManifestNotFoundError
from playbookctl.oci.reference import Reference, parse_reference, sha256_digest
from playbookctl.oci.transport import Caller

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


def image_index(children: Sequence[tuple[Descriptor, Mapping[str, str]]]) -> tuple[bytes, str]:
    """An image index listing each child manifest with its platform (os, architecture and
    variant); returns (bytes, media type). A Docker manifest list when every child is a Docker
    manifest (what a Docker engine pushes), else an OCI index. The same children in the same
    order give the same bytes, so the same digest."""
    docker = all(d.media_type == DOCKER_MANIFEST for d, _ in children)
    media_type = DOCKER_MANIFEST_LIST if docker else OCI_INDEX
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
    """The manifest half of the protocol for one client."""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller

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
        digest and hash it. A registry that acknowledged a push it did not keep, or keeps other
        bytes under that digest, is a RegistryError naming the digest."""
        r = _ref(ref)
        if not r.digest:
            raise RegistryError(f"read back {r}: a digest is needed")
        try:
            data, media_type, digest = self.get(r)
        except ManifestNotFoundError:
            raise RegistryError(
                f"{r.name}@{r.digest}: the push was acknowledged but the registry does not have "
                "that manifest (not stored); nothing was published under it"
            ) from None
        return Descriptor(media_type, digest, len(data))

    def get(self, ref: str | Reference) -> tuple[bytes, str, str]:
        """(bytes, media type, digest); the digest is computed from the bytes and checked against
        the reference's digest when it has one. RegistryError if missing."""
        r = _ref(ref)
        resp = self._caller.call(
            "GET",
            r.registry,
            r.repository,
            f"manifests/{r.reference}",
            what=f"get manifest {r}",
            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)},
            ok=(200, 404),
            max_bytes=MAX_MANIFEST_BYTES,
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
    ) -> str:
        """PUT a manifest under a tag or digest; return its digest (checked with the registry's)."""
        host = registry or self._caller.config.registry
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"push manifest to {host}/{repo}@{reference}: digest mismatch")
        resp = self._caller.call(
            "PUT",
            host,
            repo,
            f"manifests/{reference}",
            what=f"push manifest {host}/{repo}:{reference}",
            headers={"Content-Type": media_type},
            data=data,
            ok=(201,),
            push=True,
        )
        answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(
                f"push manifest {host}/{repo}:{reference}: registry stored {answered}, "
                f"expected {digest}"
            )
        return digest
