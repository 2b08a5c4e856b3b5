"""Bundles through a real registry: pushed by push_bundle, read back by digest and checked the way
Tekton's bundles resolver reads them; and hand-made broken bundles, each caught by its rule."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from playbookctl.bundle import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_HASH,
    ANNOTATION_VERSION,
    CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    build_bundle,
    push_bundle,
    read_bundle,
)
from playbookctl.config import Config
from playbookctl.oci import OCI_INDEX, OCI_MANIFEST, RegistryClient, sha256_digest
from playbookctl_dev.registry import LocalRegistry

pytestmark = pytest.mark.integration

ANNOTATIONS = {
    ANNOTATION_SOURCE: "https://github.com/example/playbooks",
    ANNOTATION_REVISION: "c" * 40,
    ANNOTATION_VERSION: "1.0.0",
    ANNOTATION_SOURCE_HASH: "sha256:" + "d" * 64,
}


def obj(kind: str = "Pipeline", name: str = "workflow") -> dict[str, Any]:
    spec: dict[str, Any] = (
        {"tasks": [{"name": "t", "taskRef": {"name": "helper"}}]}
        if kind == "Pipeline"
        else {"steps": [{"name": "s", "image": "registry.example/i:1@sha256:" + "e" * 64}]}
    )
    return {"apiVersion": "tekton.dev/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def client(registry: LocalRegistry, tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(Config(root=tmp_path, registry=registry.host)) as c:
        yield c


@pytest.mark.parametrize(
    ("layout", "media_type"), [("artifact", OCI_MANIFEST), ("tkn", MANIFEST_MEDIA_TYPE)]
)
@pytest.mark.parametrize(
    "world", ["https", pytest.param("plain", marks=pytest.mark.plain_http)]
)  # the demo path on plain HTTP too (README "The test world")
def test_push_then_read_back_by_digest(
    client: RegistryClient, registry: LocalRegistry, world: str, layout: str, media_type: str
) -> None:
    objects = [obj(), obj("Task", "helper")]
    bundle = build_bundle(objects, ANNOTATIONS, layout=layout)
    ref = f"{registry.host}/rt/good-{layout}:1.0.0"
    assert push_bundle(client, ref, bundle) == bundle.digest
    rb = read_bundle(client, f"{registry.host}/rt/good-{layout}@{bundle.digest}")
    assert rb.findings == []
    assert rb.ok
    assert rb.digest == bundle.digest
    assert rb.media_type == media_type
    assert rb.annotations == ANNOTATIONS
    assert sorted((o.kind, o.name, o.api_version) for o in rb.objects) == [
        ("pipeline", "workflow", "v1"),
        ("task", "helper", "v1"),
    ]
    assert rb.workflow() == objects[0]
    assert {o.layer_digest for o in rb.objects} == {x.descriptor.digest for x in bundle.layers}
    # by tag too, and a second push of the same bundle writes nothing but the manifest
    assert read_bundle(client, ref).digest == bundle.digest
    before = client.request_count
    push_bundle(client, f"{registry.host}/rt/good-{layout}:1.0.1", bundle)
    assert client.request_count - before == 1  # blobs known: just the manifest PUT
    # As the registry stores and serves it: the manifest's own bytes, its config's.
    stored = json.loads(client.get_manifest(ref)[0])
    config = client.get_blob(f"rt/good-{layout}", stored["config"]["digest"])
    assert config == bundle.config
    assert (stored.get("artifactType"), config == b"{}") == (
        ("application/vnd.tekton.bundle.v1", True) if layout == "artifact" else (None, False)
    )


def test_the_artifacts_config_is_mounted_not_uploaded(
    client: RegistryClient, registry: LocalRegistry
) -> None:
    """Every artifact bundle has the same config, `{}`: into a second repository it is mounted
    from the first (one request, where an upload is two), and the bundle reads as Tekton
    reads it. tkn's layout has a config of each bundle's own: uploaded (POST and PUT)."""
    first = build_bundle([obj(), obj("Task", "helper")], ANNOTATIONS)
    push_bundle(client, f"{registry.host}/rt/anchor:1.0.0", first)
    second = build_bundle([obj()], ANNOTATIONS)
    assert second.config_descriptor == first.config_descriptor
    before = client.request_count
    ref = f"{registry.host}/rt/mounted:1.0.0"
    push_bundle(client, ref, second, config_from="rt/anchor")
    # The config mounted (1), the layer uploaded (POST, PUT), the manifest (1).
    assert client.request_count - before == 4
    rb = read_bundle(client, ref)
    assert (rb.ok, rb.digest) == (True, second.digest)
    assert client.get_blob("rt/mounted", second.config_descriptor.digest) == b"{}"
    tkn = build_bundle([obj()], ANNOTATIONS, layout="tkn")
    before = client.request_count
    push_bundle(client, f"{registry.host}/rt/tkn:1.0.0", tkn, config_from="rt/anchor")
    assert client.request_count - before == 5  # its config not in rt/anchor: uploaded
    assert read_bundle(client, f"{registry.host}/rt/tkn:1.0.0").ok


# -- hand-made bundles, one defect each -----------------------------------------------------------

LayerSpec = tuple[bytes, dict[str, str]]


def tar_of(entries: list[tuple[str, bytes | None]], *, compress: bool = True) -> bytes:
    """A tar with the given entries (content None = a directory)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0) if compress else raw.getvalue()


def layer(
    o: dict[str, Any] | None = None,
    *,
    kind: str | None = None,
    name: str | None = None,
    api: str = "v1",
    blob: bytes | None = None,
    drop: str | None = None,
) -> LayerSpec:
    o = obj() if o is None else o
    ann = {
        "dev.tekton.image.apiVersion": api,
        "dev.tekton.image.kind": kind or o["kind"].lower(),
        "dev.tekton.image.name": name or o["metadata"]["name"],
    }
    if drop:
        del ann[drop]
    data = blob if blob is not None else tar_of([(o["metadata"]["name"], json.dumps(o).encode())])
    return data, ann


def craft(client: RegistryClient, repo: str, layers: list[LayerSpec]) -> str:
    config = b"{}"
    client.push_blob(repo, config)
    descs = []
    for data, ann in layers:
        client.push_blob(repo, data)
        descs.append(
            {
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": sha256_digest(data),
                "size": len(data),
                "annotations": ann,
            }
        )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256_digest(config), "size": 2},
            "layers": descs,
            "annotations": ANNOTATIONS,
        }
    ).encode()
    return client.push_manifest(repo, "v", manifest, MANIFEST_MEDIA_TYPE)


CASES: list[tuple[str, Callable[[], list[LayerSpec]], list[str]]] = [
    ("valid", lambda: [layer(), layer(obj("Task", "helper"))], []),
    (
        "plain tar and YAML content are what Tekton accepts too",
        lambda: [
            layer(
                blob=tar_of(
                    [
                        (
                            "workflow",
                            b"apiVersion: tekton.dev/v1\nkind: Pipeline\n"
                            b"metadata:\n  name: workflow\nspec: {}\n",
                        )
                    ],
                    compress=False,
                )
            )
        ],
        [],
    ),
    (
        "missing layer annotation",
        lambda: [layer(), layer(obj("Task", "h"), drop="dev.tekton.image.kind")],
        ["bundle.layer-annotations"],
    ),
    ("kind not lower case", lambda: [layer(kind="Pipeline")], ["bundle.kind-case"]),
    ("apiVersion with group", lambda: [layer(api="tekton.dev/v1")], ["bundle.api-version"]),
    (
        "not a tar",
        lambda: [layer(blob=json.dumps(obj()).encode())],
        ["bundle.layer-content"],
    ),
    (
        "first entry a directory",
        lambda: [layer(blob=tar_of([("dir", None), ("workflow", b"{}")]))],
        ["bundle.layer-content"],
    ),
    (
        "duplicate field",
        lambda: [
            layer(
                blob=tar_of(
                    [
                        (
                            "workflow",
                            b'{"kind":"Pipeline","kind":"Pipeline","metadata":{"name":"workflow"}}',
                        )
                    ]
                )
            )
        ],
        ["bundle.decode"],
    ),
    (
        "name differs from annotation",
        lambda: [layer(name="workflow", o=obj(name="other"))],
        ["bundle.name-mismatch"],
    ),
    (
        "kind differs from annotation",
        lambda: [layer(), layer(obj("Task", "x"), kind="pipeline")],
        ["bundle.kind-mismatch"],
    ),
    ("no workflow pipeline", lambda: [layer(obj("Task", "helper"))], ["bundle.no-workflow"]),
    (
        "duplicate objects",
        lambda: [
            layer(),
            layer(obj(), blob=tar_of([("workflow", json.dumps(obj()).encode() + b" ")])),
        ],
        ["bundle.duplicate"],
    ),
    (
        "21 layers",
        lambda: [layer()] + [layer(obj("Task", f"t{i}")) for i in range(20)],
        ["bundle.too-many-layers"],
    ),
]


@pytest.mark.parametrize(("case", "layers", "rules"), CASES, ids=[c[0] for c in CASES])
def test_contract_checks(
    client: RegistryClient,
    registry: LocalRegistry,
    case: str,
    layers: Callable[[], list[LayerSpec]],
    rules: list[str],
) -> None:
    repo = "rt/" + "".join(ch if ch.isalnum() else "-" for ch in case.lower()).strip("-")
    digest = craft(client, repo, layers())
    rb = read_bundle(client, f"{registry.host}/{repo}@{digest}")
    assert sorted({f.rule for f in rb.findings}) == sorted(rules)
    assert all(f.file == f"{registry.host}/{repo}@{digest}" for f in rb.findings)


def test_index_is_refused(client: RegistryClient, registry: LocalRegistry) -> None:
    inner = craft(client, "rt/index", [layer()])
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": MANIFEST_MEDIA_TYPE,
                    "digest": inner,
                    "size": len(client.get_manifest(f"{registry.host}/rt/index@{inner}")[0]),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()
    digest = client.push_manifest("rt/index", "idx", index, OCI_INDEX)
    rb = read_bundle(client, f"{registry.host}/rt/index@{digest}")
    assert [f.rule for f in rb.findings] == ["bundle.index"]


def test_missing_ref_is_a_finding(client: RegistryClient, registry: LocalRegistry) -> None:
    rb = read_bundle(client, f"{registry.host}/rt/absent:9.9.9")
    assert [f.rule for f in rb.findings] == ["bundle.missing"]
    assert not rb.ok


def test_missing_manifest_annotations_warn(client: RegistryClient, registry: LocalRegistry) -> None:
    bundle = build_bundle([obj()], {ANNOTATION_VERSION: "1.0.0"})
    push_bundle(client, f"{registry.host}/rt/bare:1", bundle)
    rb = read_bundle(client, f"{registry.host}/rt/bare@{bundle.digest}")
    assert [(f.rule, f.severity.value) for f in rb.findings] == [
        ("bundle.manifest-annotations", "warning")
    ]
    assert rb.ok
