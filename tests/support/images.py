"""Images pushed by hand, for tests that need a tag to hold something publish did not make: a
minimal index (one empty layer per platform) carrying the labels publish reads."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from playbookctl.bundle import CONFIG_MEDIA_TYPE
from playbookctl.oci import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    Descriptor,
    RegistryClient,
    image_index,
    sha256_digest,
)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def config_only_manifest(config: bytes, *, oci: bool = False) -> bytes:
    """The manifest of an image that is `config` and no layer, in Docker's media types or OCI's
    (its own media type: DOCKER_MANIFEST or OCI_MANIFEST)."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG if oci else CONFIG_MEDIA_TYPE,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()


def empty_layer() -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT):
        pass
    tar = raw.getvalue()
    return gzip.compress(tar, mtime=0), "sha256:" + hashlib.sha256(tar).hexdigest()


def push_labelled_index(client: RegistryClient, ref: str, labels: dict[str, str]) -> str:
    """A minimal image (one empty layer) with these labels, as publish pushes it: one child per
    default platform, then their index under the tag; returns the index digest."""
    repo = client.parse_reference(ref)
    layer, diff_id = empty_layer()
    children = []
    for arch in ("amd64", "arm64"):
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Labels": labels, "User": "65532:65532"},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            },
            sort_keys=True,
        ).encode()
        blobs = []
        for data, media in ((config, "application/vnd.oci.image.config.v1+json"),
                            (layer, "application/vnd.oci.image.layer.v1.tar+gzip")):  # fmt: skip
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            client.push_blob(repo.repository, data, digest, registry=repo.registry, check=False)
            blobs.append({"mediaType": media, "digest": digest, "size": len(data)})
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": blobs[0], "layers": blobs[1:]}
        ).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        client.push_manifest(
            repo.repository, digest, manifest, OCI_MANIFEST, registry=repo.registry
        )
        descriptor = Descriptor(OCI_MANIFEST, digest, len(manifest))
        children.append((descriptor, {"os": "linux", "architecture": arch}))
    index, media_type = image_index(children)
    return client.push_manifest(
        repo.repository, repo.tag or "latest", index, media_type, registry=repo.registry
    )
