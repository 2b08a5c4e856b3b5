"""build's reproducibility rewrite, without an engine: which base, clamped layers, the config."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile

import pytest
from requests.utils import super_len

from playbookctl.build import GZIP_LEVEL, clamp_layer, final_base, normalise_config
from playbookctl.oci import sha256_digest
from playbookctl.oci.fileblob import READ_SIZE, gzip_to_file

BASES = [
    ("FROM a/b:1@sha256:" + "1" * 64 + "\nUSER 1:1\n", "a/b:1@sha256:" + "1" * 64),
    ("FROM golang:1 AS build\nRUN x\nFROM alpine:3\nCOPY --from=build /x /x\n", "alpine:3"),
    ("FROM alpine:3 AS base\nFROM base AS final\nUSER 1\n", "alpine:3"),
    ("FROM alpine:3 as Base\nFROM BASE\n", "alpine:3"),  # stage names are case-insensitive
    ("ARG BASE=busybox:1\nFROM ${BASE}\n", "busybox:1"),
    ("ARG BASE=busybox:1\nFROM $BASE\n", "busybox:1"),
    ("ARG BASE\nFROM ${BASE}\n", None),  # only known at build time
    ("# FROM commented:1\nFROM \\\n  --platform=linux/amd64 \\\n  real:2\n", "real:2"),
    ("FROM scratch\nCOPY x /x\n", "scratch"),
    # Read as the builders read it (dockerfile.scan).
    ("\ufeffFROM a/b:1\n", "a/b:1"),
    ("FROM \\\n# the base\n  a/b:1\n", "a/b:1"),
    ("FROM a/b:1\nCOPY <<EOF /x\nFROM c/d:2\nEOF\n", "a/b:1"),
    ("USER 1\n", None),
]


@pytest.mark.parametrize(("text", "base"), BASES)
def test_final_base(text: str, base: str | None) -> None:
    assert final_base(text) == base


def layer(entries: list[tuple[str, int, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mtime, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.uid, info.uname = 65532, "nonroot"
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o755
                info.pax_headers = {"atime": "1.5", "SCHILY.xattr.user.k": "v"}
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_clamp_layer_fixes_times_only_and_returns_the_diff_id() -> None:
    built_at = [("usr/local/bin", 1_800_000_000, None), ("usr/local/bin/x", 0, b"#!/bin/sh\n")]
    later = [("usr/local/bin", 1_800_000_999, None), ("usr/local/bin/x", 0, b"#!/bin/sh\n")]
    outs = []
    for entries in (built_at, later):
        dest = io.BytesIO()
        diff_id = clamp_layer(io.BytesIO(layer(entries)), dest, 1_700_000_000)
        assert diff_id == "sha256:" + hashlib.sha256(dest.getvalue()).hexdigest()
        outs.append(dest.getvalue())
    assert outs[0] == outs[1]  # built a thousand seconds apart: the same bytes
    with tarfile.open(fileobj=io.BytesIO(outs[0])) as tar:
        members = tar.getmembers()
        assert [(m.name, m.mtime, m.mode, m.uid, m.uname) for m in members] == [
            ("usr/local/bin", 1_700_000_000, 0o755, 65532, "nonroot"),
            ("usr/local/bin/x", 0, 0o755, 65532, "nonroot"),  # older than the epoch: kept
        ]
        assert members[1].pax_headers.get("SCHILY.xattr.user.k") == "v"
        assert "atime" not in members[1].pax_headers
        fh = tar.extractfile(members[1])
        assert fh is not None
        assert fh.read() == b"#!/bin/sh\n"


def test_clamp_layer_reads_a_layer_the_image_store_saved_compressed() -> None:
    """containerd's image store (Docker 29's default on new installs) saves a built layer as
    the gzipped blob it holds; the classic store, as a plain tar. Both clamp to the same bytes
    and the same diff_id."""
    entries = [("usr/local/bin", 1_800_000_000, None), ("usr/local/bin/x", 0, b"#!/bin/sh\n")]
    plain, packed = io.BytesIO(), io.BytesIO()
    diff_id = clamp_layer(io.BytesIO(layer(entries)), plain, 1_700_000_000)
    gzipped = gzip.compress(layer(entries), mtime=0)
    assert clamp_layer(io.BytesIO(gzipped), packed, 1_700_000_000) == diff_id
    assert packed.getvalue() == plain.getvalue()


def test_normalise_config_keeps_the_base_history_and_drops_the_build_containers() -> None:
    config = {
        "architecture": "amd64",
        "created": "2026-12-03T10:28:06.12855851Z",
        "container": "2909b608",
        "docker_version": "20.10.24+dfsg1",
        "container_config": {"Hostname": "vm", "Image": "sha256:34e5"},
        "config": {"Hostname": "", "Image": "sha256:34e5", "User": "65532:65532"},
        "history": [
            {"created": "2025-01-01T00:00:00Z", "created_by": "base step"},
            {"created": "2026-12-03T10:28:05.1Z", "created_by": "COPY remediate.sh"},
        ],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
    }
    out = normalise_config(config, base_history=1, epoch=1_700_000_000)
    assert out == {
        "architecture": "amd64",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Hostname": "", "Image": "", "User": "65532:65532"},
        "history": [
            {"created": "2025-01-01T00:00:00Z", "created_by": "base step"},
            {"created": "2023-11-14T22:13:20Z", "created_by": "COPY remediate.sh"},
        ],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
    }
    assert config["container"] == "2909b608"  # the input is not modified


@pytest.mark.parametrize(
    "size",
    [0, 1, READ_SIZE - 1, READ_SIZE, 3 * READ_SIZE + 17],
    ids=["empty", "one", "under-a-read", "a-read", "several-reads"],
)
@pytest.mark.parametrize("content", ["random", "compressible"])
def test_a_layer_compressed_through_a_file_is_the_in_memory_gzip_byte_for_byte(
    size: int, content: str
) -> None:
    """build.engine_image compresses a layer from a file into a file, a read at a time; the
    blob must be the very bytes the in-memory gzip (mtime 0, its level) gives the whole layer
    at once, or the engine path's digests would depend on how it was read."""
    data = (
        os.urandom(size) if content == "random" else (b"playbook layer " * (size // 15 + 1))[:size]
    )
    blob = gzip_to_file(io.BytesIO(data), GZIP_LEVEL)
    try:
        want = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
        assert (len(blob), blob.digest) == (len(want), sha256_digest(want))
        assert bytes(blob) == want
        assert blob[3:11] == want[3:11]  # a chunk, as a chunked upload reads it
        reader = blob.reader()
        assert super_len(reader) == len(want)  # its Content-Length, as requests takes it
        assert reader.read(5) == want[:5]
        assert (reader.tell(), super_len(reader)) == (min(5, len(want)), max(0, len(want) - 5))
        reader.seek(0)
        assert reader.read() == want
        assert blob.reader().read() == want  # a fresh reader starts again at 0
    finally:
        blob.close()
