"""bundle.build_bundle: the artifact layout and tkn's, byte-for-byte determinism, and the limits
Tekton imposes."""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from playbookctl.bundle import (
    ANNOTATION_SOURCE_HASH,
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    EMPTY_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    OCI_LAYER_MEDIA_TYPE,
    BundleError,
    build_bundle,
    canonical_json,
    decode_strict,
)
from playbookctl.oci import sha256_digest

REPO_ROOT = Path(__file__).resolve().parents[2]


def pipeline(
    name: str = "workflow", image: str = "r.example/i:1@sha256:" + "a" * 64
) -> dict[str, Any]:
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "params": [{"name": "TARGET", "type": "string"}],
            "tasks": [
                {
                    "name": "remediate",
                    "taskSpec": {
                        "steps": [{"name": "run", "image": image, "script": "a && b > c"}]
                    },
                }
            ],
        },
    }


def task(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {"steps": [{"name": "s", "image": "x"}]},
    }


ANNOTATIONS = {
    "org.opencontainers.image.source": "https://github.com/example/playbooks",
    "org.opencontainers.image.revision": "0" * 40,
    "org.opencontainers.image.version": "1.2.3",
    ANNOTATION_SOURCE_HASH: "sha256:" + "b" * 64,
}

# Pinned: any change to a layout, JSON, tar or gzip encoding changes these digests, and with them
# every published bundle's. If one changes on purpose, say so in the README. (tkn's changed once,
# on 2026-12-07, from sha256:dfcab96a...: layers became stored gzip, the same bytes on every
# machine, where zlib's deflate was the host's. The artifact layout, the default since
# 2026-12-07, has the same layers.)
GOLDEN_DIGEST = {
    "tkn": "sha256:876aaeb841074ba6d3d032c907d3bf5350aeaae3d58758ba41b69c511781e35c",
    "artifact": "sha256:e3f063f6cd5a18c51975db3ff0ababf6a57ce0df485e61278de9e63256f0e4ab",
}


def test_artifact_layout() -> None:
    """An OCI artifact (image-spec 1.1): artifactType, the empty config, OCI layer media types,
    the same layers and annotations as tkn's layout."""
    b = build_bundle([pipeline(), task("helper")], ANNOTATIONS)
    t = build_bundle([pipeline(), task("helper")], ANNOTATIONS, layout="tkn")
    m = json.loads(b.manifest)
    assert m["schemaVersion"] == 2
    assert (m["mediaType"], b.media_type) == ("application/vnd.oci.image.manifest.v1+json",) * 2
    assert m["artifactType"] == ARTIFACT_TYPE
    assert b.config == b"{}"
    assert m["config"] == {
        "mediaType": EMPTY_MEDIA_TYPE,
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    assert m["annotations"] == ANNOTATIONS
    assert [layer["mediaType"] for layer in m["layers"]] == [OCI_LAYER_MEDIA_TYPE] * 2
    tkn_layers = json.loads(t.manifest)["layers"]
    assert [{**x, "mediaType": ""} for x in m["layers"]] == [
        {**x, "mediaType": ""} for x in tkn_layers
    ]
    assert [x.data for x in b.layers] == [x.data for x in t.layers]
    # The config is the same two bytes whatever the objects: one blob for every bundle.
    other = build_bundle([pipeline(image="r.example/j:2")], {})
    assert other.config_descriptor == b.config_descriptor


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(BundleError, match="bundle layout 'oci': expected one of artifact, tkn"):
        build_bundle([pipeline()], ANNOTATIONS, layout="oci")


def test_manifest_layout_matches_tkn() -> None:
    b = build_bundle([pipeline(), task("helper")], ANNOTATIONS, layout="tkn")
    m = json.loads(b.manifest)
    assert m["schemaVersion"] == 2
    assert m["mediaType"] == MANIFEST_MEDIA_TYPE
    assert m["config"] == {
        "mediaType": CONFIG_MEDIA_TYPE,
        "digest": sha256_digest(b.config),
        "size": len(b.config),
    }
    assert m["annotations"] == ANNOTATIONS
    assert [layer["mediaType"] for layer in m["layers"]] == [LAYER_MEDIA_TYPE] * 2
    digests = [layer["digest"] for layer in m["layers"]]
    assert digests == sorted(digests)  # tkn sorts layers by digest
    by_name = {layer["annotations"]["dev.tekton.image.name"]: layer for layer in m["layers"]}
    assert by_name["workflow"]["annotations"] == {
        "dev.tekton.image.apiVersion": "v1",
        "dev.tekton.image.kind": "pipeline",
        "dev.tekton.image.name": "workflow",
    }
    assert by_name["helper"]["annotations"]["dev.tekton.image.kind"] == "task"
    assert b.digest == sha256_digest(b.manifest)
    for layer in b.layers:
        assert layer.descriptor.digest == sha256_digest(layer.data)
        assert layer.descriptor.size == len(layer.data)
    config = json.loads(b.config)
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert len(config["rootfs"]["diff_ids"]) == 2


def test_layer_is_a_gzip_tar_with_one_fixed_entry() -> None:
    obj = pipeline()
    b = build_bundle([obj], ANNOTATIONS)
    blob = b.layers[0].data
    # gzip header: magic, deflate, flags 0 (no FNAME), mtime 0, xfl, OS 255 (unknown)
    assert blob[:4] == b"\x1f\x8b\x08\x00"
    assert blob[4:8] == b"\x00\x00\x00\x00"
    assert blob[9] == 255
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as tar:
        members = tar.getmembers()
        assert len(members) == 1
        entry = members[0]
        assert (entry.name, entry.mode, entry.mtime, entry.uid, entry.gid) == (
            "workflow",
            0o600,
            0,
            0,
            0,
        )
        assert (entry.uname, entry.gname, entry.isreg()) == ("", "", True)
        content = tar.extractfile(entry).read()  # type: ignore[union-attr]
    assert content == canonical_json(obj)
    assert json.loads(content) == obj
    assert b", " not in content
    assert b": " not in content
    assert b'"apiVersion":"tekton.dev/v1","kind":"Pipeline","metadata"' in content  # sorted keys


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ({"b": 1, "a": [1, 2]}, b'{"a":[1,2],"b":1}'),
        ({"s": "a<b>&c"}, b'{"s":"a\\u003cb\\u003e\\u0026c"}'),  # as Go's encoding/json
        ({"s": "é\u2028"}, '{"s":"é\\u2028"}'.encode()),
        ({"n": None, "t": True}, b'{"n":null,"t":true}'),
    ],
)
def test_canonical_json(value: Any, encoded: bytes) -> None:
    assert canonical_json(value) == encoded
    assert json.loads(encoded) == value


def test_same_input_same_bytes_whatever_the_order() -> None:
    a = build_bundle([pipeline(), task("t1"), task("t2")], ANNOTATIONS)
    shuffled = [task("t2"), pipeline(), task("t1")]
    reordered_keys = [dict(reversed(list(o.items()))) for o in shuffled]
    b = build_bundle(reordered_keys, dict(reversed(list(ANNOTATIONS.items()))))
    assert (a.manifest, a.config, [x.data for x in a.layers]) == (
        b.manifest,
        b.config,
        [x.data for x in b.layers],
    )


def test_content_changes_change_the_digest() -> None:
    base = build_bundle([pipeline()], ANNOTATIONS).digest
    assert build_bundle([pipeline(image="r.example/i:2")], ANNOTATIONS).digest != base
    assert build_bundle([pipeline()], {**ANNOTATIONS, ANNOTATION_SOURCE_HASH: "x"}).digest != base


_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.unit.test_bundle import ANNOTATIONS, pipeline, task
from playbookctl.bundle import build_bundle
b = build_bundle([pipeline(), task("helper")], ANNOTATIONS)
out = {"digest": b.digest, "manifest": b.manifest.hex(), "config": b.config.hex(),
       "layers": [layer.data.hex() for layer in b.layers]}
print(json.dumps(out))
"""


def test_identical_bytes_across_processes_and_directories(tmp_path: Path) -> None:
    runs = []
    for i, tz in enumerate(("UTC", "Asia/Kolkata")):
        cwd = tmp_path / f"clone{i}"
        cwd.mkdir()
        env = {
            **os.environ,
            "TZ": tz,
            "PYTHONHASHSEED": str(i + 1),
            "SOURCE_DATE_EPOCH": "1700000000",
        }
        proc = subprocess.run(
            [sys.executable, "-c", _SCRIPT, str(REPO_ROOT)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(proc.stdout))
    assert runs[0] == runs[1]
    assert runs[0]["digest"] == build_bundle([pipeline(), task("helper")], ANNOTATIONS).digest


@pytest.mark.parametrize("layout", sorted(GOLDEN_DIGEST))
def test_golden_digest(layout: str) -> None:
    """The same objects give this digest on any machine (gzip, tarfile and json included)."""
    digest = build_bundle([pipeline(), task("helper")], ANNOTATIONS, layout=layout).digest
    assert digest == GOLDEN_DIGEST[layout]


def _bad(mutate: Any) -> list[dict[str, Any]]:
    objs = [pipeline(), task("helper")]
    mutate(objs)
    return objs


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ([], "at least one object"),
        ([pipeline()] + [task(f"t{i}") for i in range(20)], "21 objects"),
        ([pipeline(), pipeline()], "duplicate Pipeline 'workflow'"),
        ([task("x"), {**task("x"), "kind": "TASK"}], "duplicate TASK 'x'"),
        ([{**pipeline(), "apiVersion": "v1", "kind": "ConfigMap"}], "not a Tekton one"),
        ([{**pipeline(), "apiVersion": "tekton.dev"}], "has no version"),
        ([{**pipeline(), "kind": None}], "not a Tekton kind"),
        ([{**pipeline(), "metadata": {}}], "metadata.name None"),
        ([{**pipeline(), "metadata": {"name": "../x"}}], "not a valid name"),
        (["not a mapping"], "not a mapping"),
        ([{**pipeline(), "spec": {"when": {1, 2}}}], "not JSON-serialisable"),
    ],
)
def test_refused(objects: list[Any], message: str) -> None:
    with pytest.raises(BundleError, match=message.replace("(", r"\(").replace(".", r"\.")):
        build_bundle(objects, ANNOTATIONS)


def test_twenty_objects_is_the_limit_not_beyond() -> None:
    b = build_bundle([pipeline()] + [task(f"t{i}") for i in range(19)], ANNOTATIONS)
    assert len(b.layers) == 20


def test_annotations_must_be_strings() -> None:
    with pytest.raises(BundleError, match="must be strings"):
        build_bundle([pipeline()], {"k": 1})  # type: ignore[dict-item]


def test_input_objects_are_not_modified() -> None:
    objs = [pipeline(), task("t")]
    before = copy.deepcopy(objs)
    build_bundle(objs, ANNOTATIONS)
    assert objs == before


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"a": 1}', None),
        ('{"a": 1, "a": 2}', "duplicate field 'a'"),
        ('{"a": {"b": 1, "b": 1}}', "duplicate field 'b'"),
        ("a: 1\nb: 2\n", None),
        ("a: 1\na: 2\n", "duplicate field 'a' \\(line 2\\)"),
        ("a:\n  b: 1\n  b: 2\n", "duplicate field 'b'"),
        ("a: [1, 2", "flow sequence"),
    ],
)
def test_decode_strict(text: str, error: str | None) -> None:
    if error is None:
        assert isinstance(decode_strict(text.encode()), dict)
    else:
        with pytest.raises(ValueError, match=error):
            decode_strict(text.encode())
