"""Tekton bundles: build one byte-for-byte reproducibly, push it, read it back as Tekton does.

Two layouts (the `bundle-layout` setting), the same layers in both: one gzip'd tar layer per
object whose only entry is the object as compact JSON with sorted keys, the three
`dev.tekton.image.*` annotations on each layer, layers sorted by digest; the gzip is stored
blocks, not the host's deflate (oci/storedgzip.py), so the same objects give the same digest on
any machine.
- `artifact` (the default): an OCI image manifest used as an artifact (image-spec 1.1's
  guidelines): `artifactType` ARTIFACT_TYPE and the empty config `{}`
  (`application/vnd.oci.empty.v1+json`). A bundle is not a runnable image, so it claims no
  platform; and its config is the same two bytes for every bundle, so a release uploads it once
  and mounts it into each other bundle repository (one request, not two: publish.py).
- `tkn`: `tkn bundle push`'s own (the README's "Bundle layout"): a Docker schema 2 manifest and an
  image config naming the layers' diff_ids, with a fixed `created` time.
Tekton's bundles resolver reads neither config (it reads the manifest's layers and their
annotations), nor does Kubernaut.
`read_bundle` applies the checks Tekton's bundles resolver applies (plus the ones nobody upstream
makes, such as duplicate names) and reports them as findings.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import yaml

from playbookctl.concurrently import concurrently
from playbookctl.config import BUNDLE_LAYOUTS
from playbookctl.errors import FatalError
from playbookctl.findings import Finding, Severity
from playbookctl.oci import (
    DOCKER_MANIFEST,
    INDEX_MEDIA_TYPES,
    OCI_MANIFEST,
    Descriptor,
    DigestMismatchError,
    ManifestNotFoundError,
    RegistryClient,
    ResponseTooLargeError,
    parse_reference,
    sha256_digest,
)
from playbookctl.oci.storedgzip import stored_gzip

# tkn's layout
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_MEDIA_TYPE = DOCKER_MANIFEST
# The artifact layout. No artifact type is registered for Tekton bundles (tektoncd/cli#2421 asks
# tkn for OCI artifacts, open): this one is ours, in Tekton's vendor tree as Tekton's own
# artifacts name theirs; nothing reads it but registries' listings.
ARTIFACT_TYPE = "application/vnd.tekton.bundle.v1"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
EMPTY_CONFIG_DIGEST = sha256_digest(EMPTY_CONFIG)
OCI_LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYOUTS = BUNDLE_LAYOUTS  # the `bundle-layout` setting

ANNOTATION_API_VERSION = "dev.tekton.image.apiVersion"
ANNOTATION_KIND = "dev.tekton.image.kind"
ANNOTATION_NAME = "dev.tekton.image.name"
LAYER_ANNOTATIONS = (ANNOTATION_API_VERSION, ANNOTATION_KIND, ANNOTATION_NAME)

ANNOTATION_SOURCE = "org.opencontainers.image.source"
ANNOTATION_REVISION = "org.opencontainers.image.revision"
ANNOTATION_VERSION = "org.opencontainers.image.version"
ANNOTATION_SOURCE_HASH = "dev.playbookctl.source-hash"
MANIFEST_ANNOTATIONS = (
    ANNOTATION_SOURCE,
    ANNOTATION_REVISION,
    ANNOTATION_VERSION,
    ANNOTATION_SOURCE_HASH,
)

MAX_OBJECTS = 20  # Tekton's bundles resolver refuses more layers
TEKTON_GROUP = "tekton.dev"
WORKFLOW_NAME = "workflow"  # the Pipeline Kubernaut runs
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LAYER_BYTES = 8 * 1024 * 1024  # decompressed; a Pipeline is a few KiB


class BundleError(FatalError):
    """The objects cannot be made into a valid Tekton bundle."""


@dataclass(frozen=True)
class Layer:
    data: bytes
    descriptor: Descriptor
    kind: str  # as in the object (`Pipeline`)
    name: str
    api_version: str  # as in the object (`tekton.dev/v1`)


@dataclass(frozen=True)
class Bundle:
    manifest: bytes
    digest: str
    config: bytes
    config_descriptor: Descriptor
    layers: tuple[Layer, ...]
    annotations: Mapping[str, str]
    media_type: str  # the manifest's: OCI_MANIFEST (artifact) or MANIFEST_MEDIA_TYPE (tkn)
    layout: str  # one of LAYOUTS


def canonical_json(obj: Any) -> bytes:
    """Compact JSON with sorted keys, escaped like Go's encoding/json (which tkn uses)."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"object is not JSON-serialisable: {exc}") from None
    # Go escapes <, >, & and the JS line separators inside strings; outside strings none occur.
    for raw, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return text.encode("utf-8")


def _tar_gz(name: str, content: bytes) -> tuple[bytes, bytes]:
    """(gzip'd tar, uncompressed tar) holding one regular file with fixed headers."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o600
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    # Stored blocks, not the host's deflate: the same bytes, so the same digest, on every
    # machine (oci/storedgzip.py); a Pipeline's JSON is a few kilobytes.
    return stored_gzip(tar_bytes), tar_bytes


def _api_version_short(api_version: str) -> str:
    return api_version.split("/", 1)[1] if "/" in api_version else api_version


def _check_object(index: int, obj: Any) -> tuple[str, str, str]:
    if not isinstance(obj, dict):
        raise BundleError(f"object {index}: not a mapping")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(api_version, str) or api_version.split("/", 1)[0] != TEKTON_GROUP:
        raise BundleError(
            f"object {index}: apiVersion {api_version!r} is not a Tekton one ({TEKTON_GROUP}/...)"
        )
    if "/" not in api_version or not _api_version_short(api_version):
        raise BundleError(f"object {index}: apiVersion {api_version!r} has no version")
    if not isinstance(kind, str) or not kind.isalpha():
        raise BundleError(f"object {index}: kind {kind!r} is not a Tekton kind")
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise BundleError(f"object {index} ({kind}): metadata.name {name!r} is not a valid name")
    return api_version, kind, name


def build_bundle(
    objects: Sequence[Mapping[str, Any]],
    annotations: Mapping[str, str],
    *,
    created: datetime | None = None,
    layout: str = "artifact",
) -> Bundle:
    """Build a bundle in `layout` (one of LAYOUTS); the same objects, annotations and layout
    give the same bytes and digest.

    `created` (tkn's layout only: the artifact has no config to hold it) defaults to the Unix
    epoch. We do not read SOURCE_DATE_EPOCH implicitly (tkn does): a bundle's digest must
    depend only on its content, or two CI machines would disagree.
    """
    if layout not in LAYOUTS:
        raise BundleError(f"bundle layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    tkn = layout == "tkn"
    if not objects:
        raise BundleError("a bundle needs at least one object")
    if len(objects) > MAX_OBJECTS:
        raise BundleError(
            f"{len(objects)} objects: Tekton's bundles resolver accepts at most {MAX_OBJECTS}"
        )
    for key, value in annotations.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise BundleError(f"annotation {key!r}: keys and values must be strings")
    seen: set[tuple[str, str]] = set()
    layers: list[tuple[Layer, str]] = []
    for i, obj in enumerate(objects):
        api_version, kind, name = _check_object(i, obj)
        if (kind.lower(), name) in seen:
            raise BundleError(f"duplicate {kind} {name!r}: names must be unique per kind")
        seen.add((kind.lower(), name))
        blob, tar_bytes = _tar_gz(name, canonical_json(obj))
        desc = Descriptor(
            LAYER_MEDIA_TYPE if tkn else OCI_LAYER_MEDIA_TYPE,
            sha256_digest(blob),
            len(blob),
            {
                ANNOTATION_API_VERSION: _api_version_short(api_version),
                ANNOTATION_KIND: kind.lower(),
                ANNOTATION_NAME: name,
            },
        )
        layers.append((Layer(blob, desc, kind, name, api_version), sha256_digest(tar_bytes)))
    layers.sort(key=lambda pair: pair[0].descriptor.digest)  # as tkn orders them
    manifest_obj: dict[str, Any] = {"schemaVersion": 2}
    if tkn:
        when = (created or EPOCH).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        config = canonical_json(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": when,
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
            }
        )
        config_desc = Descriptor(CONFIG_MEDIA_TYPE, sha256_digest(config), len(config))
        media_type = MANIFEST_MEDIA_TYPE
    else:
        config = EMPTY_CONFIG
        config_desc = Descriptor(EMPTY_MEDIA_TYPE, EMPTY_CONFIG_DIGEST, len(EMPTY_CONFIG))
        media_type = OCI_MANIFEST
        manifest_obj["artifactType"] = ARTIFACT_TYPE
    manifest_obj["mediaType"] = media_type
    manifest_obj["config"] = config_desc.as_dict()
    manifest_obj["layers"] = [layer.descriptor.as_dict() for layer, _ in layers]
    if annotations:
        manifest_obj["annotations"] = dict(annotations)
    manifest = canonical_json(manifest_obj)
    return Bundle(
        manifest=manifest,
        digest=sha256_digest(manifest),
        config=config,
        config_descriptor=config_desc,
        layers=tuple(layer for layer, _ in layers),
        annotations=dict(annotations),
        media_type=media_type,
        layout=layout,
    )


def push_bundle(
    client: RegistryClient, ref: str, bundle: Bundle, *, config_from: str | None = None
) -> str:
    """Push blobs (skipping those the registry has), then the manifest under the ref's tag.

    The manifest goes last, so a tag never points at a bundle with missing blobs; a failure part
    way leaves only unreferenced blobs. The caller checks the tag does not exist first (versions
    are immutable): this function does not overwrite-check, to keep it one job. `config_from`:
    a repository of the same registry holding the config, mounted from there (a registry that
    does not mount answers with an upload session, which then takes the upload). A registry
    that refuses the manifest for its type raises ManifestRefusedError (publish then pushes
    tkn's layout).
    """
    r = parse_reference(ref)
    if r.digest and r.digest != bundle.digest:
        raise BundleError(f"{ref}: the reference's digest is not the bundle's ({bundle.digest})")
    # No HEAD per blob: the tag is new, so its blobs almost always are, and an upload of a few
    # KiB costs two requests where HEAD + upload costs three (see RegistryClient.push_blob).
    blobs = [(bundle.config, bundle.config_descriptor.digest)]
    blobs += [(layer.data, layer.descriptor.digest) for layer in bundle.layers]
    # Together: the manifest waits for the slowest blob, not for their sum.
    concurrently(
        [
            partial(
                client.push_blob,
                r.repository,
                data,
                digest,
                registry=r.registry,
                check=False,
                mount_from=config_from if digest == bundle.config_descriptor.digest else None,
            )
            for data, digest in blobs
        ]
    )
    target = r.tag if r.tag else bundle.digest
    pushed = client.push_manifest(
        r.repository,
        target,
        bundle.manifest,
        bundle.media_type,
        registry=r.registry,
        # Uploaded again if the registry then says one is unknown (a concurrent writer's).
        blobs={digest: data for data, digest in blobs},
    )
    if pushed != bundle.digest:  # pragma: no cover - push_manifest computes it from the bytes
        raise BundleError(f"{ref}: pushed digest {pushed} is not the bundle's {bundle.digest}")
    return pushed


# -- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleObject:
    kind: str  # the layer's dev.tekton.image.kind
    name: str  # the layer's dev.tekton.image.name
    api_version: str  # the layer's dev.tekton.image.apiVersion
    layer_digest: str
    object: dict[str, Any] | None  # the decoded first tar entry, None if it did not decode


@dataclass
class ReadBundle:
    ref: str
    digest: str | None = None
    media_type: str | None = None
    manifest: dict[str, Any] | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    objects: list[BundleObject] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    def workflow(self) -> dict[str, Any] | None:
        for o in self.objects:
            if o.kind == "pipeline" and o.name == WORKFLOW_NAME and o.object is not None:
                return o.object
        return None


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(f"duplicate field {k!r}")
        out[k] = v
    return out


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, as Kubernetes' strict decoding does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in keys:
                raise _DuplicateKeyError(
                    f"duplicate field {key!r} (line {key_node.start_mark.line + 1})"
                )
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def decode_strict(data: bytes) -> Any:
    """Decode a YAML or JSON object, refusing duplicate fields; ValueError on failure."""
    text = data.decode("utf-8")
    if text.lstrip().startswith("{"):
        return json.loads(text, object_pairs_hook=_no_duplicates)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from None


def _first_entry(blob: bytes) -> tuple[bytes | None, str | None]:
    """(content of the first tar entry, None) or (None, problem)."""
    if blob[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(blob)) as gz:
                raw = gz.read(MAX_LAYER_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            return None, f"gzip data is corrupt ({exc})"
        if len(raw) > MAX_LAYER_BYTES:
            return None, f"layer is larger than {MAX_LAYER_BYTES} bytes decompressed"
    elif blob[:4] == b"\x28\xb5\x2f\xfd":
        return None, "zstd layers are accepted by Tekton but playbookctl cannot read them"
    else:
        raw = blob
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            member = tar.next()
            if member is None:
                return None, "layer tar is empty"
            if not member.isreg():
                return None, f"first tar entry {member.name!r} is not a regular file"
            fh = tar.extractfile(member)
            if fh is None:  # pragma: no cover - a regular file always has content
                return None, "first tar entry has no content"
            return fh.read(), None
    except tarfile.TarError:
        return None, "layer is not a tar archive (Tekton would fall back to YAML; tkn would fail)"


def read_bundle(client: RegistryClient, ref: str) -> ReadBundle:
    """Fetch a bundle and check it the way Tekton's bundles resolver reads it.

    Registry failures raise RegistryError; everything about the content is a finding (rule
    `bundle.*`, file = the ref), including a missing manifest (`bundle.missing`) and content
    that does not hash to its digest (`bundle.digest`).
    """
    out = ReadBundle(ref=ref)
    r = parse_reference(ref)
    try:
        data, media_type, digest = client.get_manifest(r)
    except ManifestNotFoundError:
        out.findings.append(
            Finding(
                "bundle.missing",
                Severity.ERROR,
                ref,
                0,
                0,
                f"no manifest for {ref} in the registry",
            )
        )
        return out
    except DigestMismatchError as exc:  # Tekton refuses such a bundle too
        out.findings.append(Finding("bundle.digest", Severity.ERROR, ref, 0, 0, str(exc)))
        return out
    return _check_read(
        out,
        data,
        media_type,
        digest,
        lambda layer: client.get_blob(
            r.repository, layer, registry=r.registry, max_bytes=MAX_LAYER_BYTES
        ),
    )


def check_built(bundle: Bundle, ref: str) -> ReadBundle:
    """The checks `read_bundle` makes, on a bundle built here, before it is pushed: what Tekton's
    resolver would read from these bytes (once stored, the registry serves them by digest)."""
    blobs = {layer.descriptor.digest: layer.data for layer in bundle.layers}

    def layer_bytes(digest: str) -> bytes:
        data = blobs[digest]
        if len(data) > MAX_LAYER_BYTES:
            raise ResponseTooLargeError(f"layer {digest} is {len(data)} bytes")
        return data

    return _check_read(
        ReadBundle(ref=ref), bundle.manifest, bundle.media_type, bundle.digest, layer_bytes
    )


def _check_read(
    out: ReadBundle,
    data: bytes,
    media_type: str,
    digest: str,
    layer_bytes: Callable[[str], bytes],
) -> ReadBundle:
    """Check a bundle's manifest bytes and each layer (`layer_bytes(digest)`, which may raise
    DigestMismatchError or ResponseTooLargeError) as Tekton's bundles resolver reads them."""
    ref = out.ref

    def finding(rule: str, message: str, severity: Severity = Severity.ERROR) -> None:
        out.findings.append(Finding(rule, severity, ref, 0, 0, message))

    out.digest, out.media_type = digest, media_type
    if media_type in INDEX_MEDIA_TYPES:
        finding("bundle.index", "is an image index; publish a bundle as a single image manifest")
        return out
    if media_type not in (DOCKER_MANIFEST, OCI_MANIFEST):
        finding("bundle.media-type", f"manifest media type {media_type!r} is not an image manifest")
        return out
    try:
        manifest = json.loads(data, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        finding("bundle.manifest", f"manifest is not valid JSON: {exc}")
        return out
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list) or manifest.get("schemaVersion") != 2:
        finding("bundle.manifest", "manifest is not a schema 2 image manifest with layers")
        return out
    out.manifest = manifest
    raw_ann = manifest.get("annotations") or {}
    out.annotations = (
        {str(k): str(v) for k, v in raw_ann.items()} if isinstance(raw_ann, dict) else {}
    )
    missing_ann = [k for k in MANIFEST_ANNOTATIONS if not out.annotations.get(k)]
    if missing_ann:
        finding(
            "bundle.manifest-annotations",
            f"manifest lacks annotation(s) {', '.join(missing_ann)}",
            Severity.WARNING,
        )
    if len(layers) > MAX_OBJECTS:
        finding(
            "bundle.too-many-layers",
            f"{len(layers)} layers: Tekton's bundles resolver accepts at most {MAX_OBJECTS}",
        )
        return out
    seen: set[tuple[str, str]] = set()
    for i, layer in enumerate(layers):
        where = f"layer {i}"
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            finding("bundle.layer", f"{where}: not a descriptor with a digest")
            continue
        raw_layer_ann = layer.get("annotations")
        ann: dict[str, Any] = raw_layer_ann if isinstance(raw_layer_ann, dict) else {}
        missing = [k for k in LAYER_ANNOTATIONS if not isinstance(ann.get(k), str) or not ann[k]]
        if missing:
            # The resolver checks these on every layer, so one bad layer breaks the whole bundle.
            finding(
                "bundle.layer-annotations", f"{where}: missing annotation(s) {', '.join(missing)}"
            )
            continue
        kind, name, api = ann[ANNOTATION_KIND], ann[ANNOTATION_NAME], ann[ANNOTATION_API_VERSION]
        where = f"layer {i} ({kind}/{name})"
        if kind != kind.lower():
            finding("bundle.kind-case", f"{where}: {ANNOTATION_KIND} must be lower case")
        if "/" in api:
            finding(
                "bundle.api-version",
                f"{where}: {ANNOTATION_API_VERSION} is {api!r}; tkn writes the version only",
                Severity.WARNING,
            )
        if (kind.lower(), name) in seen:
            finding("bundle.duplicate", f"{where}: a second {kind} named {name!r}")
        seen.add((kind.lower(), name))
        try:
            # Bounded: compressed or not, a layer is never read past MAX_LAYER_BYTES.
            blob = layer_bytes(layer["digest"])
        except DigestMismatchError as exc:
            finding("bundle.digest", f"{where}: {exc}")
            out.objects.append(BundleObject(kind, name, api, layer["digest"], None))
            continue
        except ResponseTooLargeError:
            finding(
                "bundle.layer-size",
                f"{where}: the layer is larger than {MAX_LAYER_BYTES} bytes; not read "
                "(a Pipeline is a few KiB)",
            )
            out.objects.append(BundleObject(kind, name, api, layer["digest"], None))
            continue
        content, problem = _first_entry(blob)
        obj: dict[str, Any] | None = None
        if problem is not None or content is None:
            finding("bundle.layer-content", f"{where}: {problem}")
        else:
            try:
                decoded = decode_strict(content)
            except ValueError as exc:  # UnicodeDecodeError is one
                finding("bundle.decode", f"{where}: does not decode strictly: {exc}")
            else:
                if not isinstance(decoded, dict):
                    finding("bundle.decode", f"{where}: the first tar entry is not an object")
                else:
                    obj = decoded
        if obj is not None:
            raw_meta = obj.get("metadata")
            meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
            if meta.get("name") != name:
                finding(
                    "bundle.name-mismatch",
                    f"{where}: object's metadata.name is {meta.get('name')!r}, not {name!r}",
                )
            obj_kind = obj.get("kind")
            if not isinstance(obj_kind, str) or obj_kind.lower() != kind.lower():
                finding("bundle.kind-mismatch", f"{where}: object's kind is {obj_kind!r}")
            obj_api = obj.get("apiVersion")
            if not isinstance(obj_api, str) or _api_version_short(obj_api) != _api_version_short(
                api
            ):
                finding("bundle.api-version", f"{where}: object's apiVersion is {obj_api!r}")
        out.objects.append(BundleObject(kind, name, api, layer["digest"], obj))
    if not any(o.kind.lower() == "pipeline" and o.name == WORKFLOW_NAME for o in out.objects):
        finding("bundle.no-workflow", f"no Pipeline named {WORKFLOW_NAME!r} (Kubernaut runs it)")
    return out
