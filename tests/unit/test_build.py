"""build.py without an engine: FROM rewriting, the loopback rule, the build context."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from playbookctl.build import (
    BASE_OVERRIDE_LABEL,
    _Lines,
    _PushProgress,
    _transient,
    check_publishable,
    context_files,
    context_tar,
    is_loopback_registry,
    registry_host,
    rewrite_from,
    split_tag,
)
from playbookctl.errors import BuildError

PROD = "docker.io/alpine/k8s:1.34.1@sha256:" + "e" * 64
LOCAL = "127.0.0.1:5000/test-base/busybox:1"


@pytest.mark.parametrize(
    ("source", "expected", "used"),
    [
        (f"FROM {PROD}\n", f"FROM {LOCAL}\n", {PROD: LOCAL}),
        (f"from {PROD} AS build\n", f"from {LOCAL} AS build\n", {PROD: LOCAL}),
        (
            f"FROM --platform=linux/amd64 {PROD} as b\r\n",
            f"FROM --platform=linux/amd64 {LOCAL} as b\r\n",
            {PROD: LOCAL},
        ),
        # comments and other instructions mentioning the reference stay as written
        (f"# FROM {PROD}\nLABEL x={PROD}\n", f"# FROM {PROD}\nLABEL x={PROD}\n", {}),
        # only exact matches: another tag of the same image is not the overridden one
        ("FROM docker.io/alpine/k8s:1.35\n", "FROM docker.io/alpine/k8s:1.35\n", {}),
        # a continuation line is part of the previous instruction
        (
            f"RUN echo \\\nFROM {PROD}\n",
            f"RUN echo \\\nFROM {PROD}\n",
            {},
        ),
        (
            f"FROM {PROD} AS a\nRUN true\nFROM a\nCOPY --from=a /x /x\n",
            f"FROM {LOCAL} AS a\nRUN true\nFROM a\nCOPY --from=a /x /x\n",
            {PROD: LOCAL},
        ),
        ("FROM scratch", "FROM scratch", {}),
        # an ARG default that a FROM uses is where the reference is written
        (
            f"ARG BASE={PROD}\nFROM ${{BASE}}\n",
            f"ARG BASE={LOCAL}\nFROM ${{BASE}}\n",
            {PROD: LOCAL},
        ),
        (f'ARG BASE="{PROD}"\n', f'ARG BASE="{LOCAL}"\n', {PROD: LOCAL}),
        ("ARG VERSION=1.2\n", "ARG VERSION=1.2\n", {}),
    ],
)
def test_rewrite_from(source: str, expected: str, used: dict[str, str]) -> None:
    assert rewrite_from(source, {PROD: LOCAL}) == (expected, used)


def test_rewrite_from_without_overrides_is_identity() -> None:
    assert rewrite_from(f"FROM {PROD}\n", {}) == (f"FROM {PROD}\n", {})


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.0.0.1", True),
        ("127.8.9.10:443", True),
        ("localhost:5000", True),
        ("localhost", True),
        ("[::1]:5000", True),
        ("127.0.0.1:5000/images/foo:1", True),
        ("ghcr.io", False),
        ("ghcr.io/org/img:1", False),
        ("quay.io:443", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.com", False),
        ("127.0.0.1.nip.io", False),
        ("[2001:db8::1]:5000", False),
        ("library/busybox", False),
    ],
)
def test_is_loopback_registry(registry: str, loopback: bool) -> None:
    assert is_loopback_registry(registry) is loopback


@pytest.mark.parametrize(
    ("ref", "host"),
    [
        ("ghcr.io/o/i:1", "ghcr.io"),
        ("localhost:5000/i", "localhost:5000"),
        ("localhost/i", "localhost"),
        ("busybox:1", "busybox:1"),  # no "/": taken as a registry host, as config.registry is
        ("library/busybox:1", "docker.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_registry_host(ref: str, host: str) -> None:
    assert registry_host(ref) == host


@pytest.mark.parametrize(
    ("ref", "split"),
    [
        ("127.0.0.1:5000/a/b:1.2.0", ("127.0.0.1:5000/a/b", "1.2.0")),
        ("127.0.0.1:5000/a/b", ("127.0.0.1:5000/a/b", "latest")),
        ("ghcr.io/a/b:v1", ("ghcr.io/a/b", "v1")),
    ],
)
def test_split_tag(ref: str, split: tuple[str, str]) -> None:
    assert split_tag(ref) == split


@pytest.mark.parametrize(
    ("target", "labels", "refused"),
    [
        ("ghcr.io/o/img:1", {BASE_OVERRIDE_LABEL: json.dumps({PROD: LOCAL})}, True),
        ("quay.io/o/img:1", {BASE_OVERRIDE_LABEL: "{}x"}, True),
        ("127.0.0.1:5000/o/img:1", {BASE_OVERRIDE_LABEL: json.dumps({PROD: LOCAL})}, False),
        ("ghcr.io/o/img:1", {"org.opencontainers.image.version": "1"}, False),
    ],
)
def test_check_publishable(target: str, labels: dict[str, str], refused: bool) -> None:
    if refused:
        with pytest.raises(BuildError, match="base-image stand-in"):
            check_publishable(target, labels)
    else:
        check_publishable(target, labels)


def _tree(base: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return base


@pytest.mark.parametrize(
    ("dockerignore", "expected"),
    [
        (None, ["Containerfile", "README.md", "docs", "docs/a.md", "remediate.sh", "tests",
                "tests/t.sh"]),
        # Docker's rules: `*.md` matches at the root only
        ("tests\n*.md\n", ["Containerfile", "docs", "docs/a.md", "remediate.sh"]),
        ("# comment\n**/*.md\n!README.md\n", ["Containerfile", "README.md", "docs",
                                               "remediate.sh", "tests", "tests/t.sh"]),
        # the Containerfile is always sent, as Docker does
        ("*\n!remediate.sh\n", ["Containerfile", "remediate.sh"]),
    ],
)  # fmt: skip
def test_context_files_honour_dockerignore(
    tmp_path: Path, dockerignore: str | None, expected: list[str]
) -> None:
    files = {
        "Containerfile": "FROM scratch\n",
        "remediate.sh": "#!/bin/sh\n",
        "README.md": "x",
        "docs/a.md": "x",
        "tests/t.sh": "x",
    }
    if dockerignore is not None:
        files[".dockerignore"] = dockerignore
    _tree(tmp_path, files)
    got = [p for p in context_files(tmp_path, "Containerfile") if p != ".dockerignore"]
    assert got == expected


def test_context_tar_replaces_containerfile_and_normalises_headers(tmp_path: Path) -> None:
    _tree(tmp_path, {"Containerfile": f"FROM {PROD}\n", "bin/run.sh": "#!/bin/sh\n"})
    (tmp_path / "bin/run.sh").chmod(0o700)
    with (
        context_tar(tmp_path, "Containerfile", f"FROM {LOCAL}\n") as fh,
        tarfile.open(fileobj=fh) as tar,
    ):
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["Containerfile", "bin", "bin/run.sh"]
        assert tar.extractfile("Containerfile").read() == f"FROM {LOCAL}\n".encode()  # type: ignore[union-attr]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {
            (0, 0, 0, "", "")
        }
        assert members["bin/run.sh"].mode == 0o755
        assert members["Containerfile"].mode == 0o644
    # the playbook's own file is never touched
    assert (tmp_path / "Containerfile").read_text() == f"FROM {PROD}\n"


def test_context_tar_is_the_same_for_the_same_tree(tmp_path: Path) -> None:
    a = _tree(tmp_path / "a", {"Containerfile": "FROM scratch\n", "x/y": "1"})
    b = _tree(tmp_path / "b", {"x/y": "1", "Containerfile": "FROM scratch\n"})
    with context_tar(a, "Containerfile") as fa, context_tar(b, "Containerfile") as fb:
        assert fa.read() == fb.read()


def test_lines_track_step_and_tail() -> None:
    seen: list[str] = []
    lines = _Lines(seen.append)
    lines.feed("Step 1/2 : FROM x\n ---> abc\nStep 2/2 : RUN fa")
    lines.feed("lse\nout")
    lines.flush()
    assert seen == ["Step 1/2 : FROM x", " ---> abc", "Step 2/2 : RUN false", "out"]
    assert lines.step == "Step 2/2 : RUN false"
    for i in range(30):
        lines.feed(f"l{i}\n")
    assert len(lines.tail) == 20
    assert lines.tail[-1] == "l29"


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("received unexpected HTTP status: 500 Internal Server Error", True),
        ("dial tcp 127.0.0.1:5000: connect: connection refused", True),
        ("toomanyrequests: slow down", True),
        ("unauthorized: authentication required", False),
        ("denied: requested access to the resource is denied", False),
    ],
)
def test_transient_push_errors(message: str, transient: bool) -> None:
    assert _transient(message) is transient


def test_context_tar_skips_unreadable_kinds(tmp_path: Path) -> None:
    _tree(tmp_path, {"Containerfile": "FROM scratch\n"})
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to("Containerfile")
    with (
        context_tar(tmp_path, "Containerfile") as fh,
        tarfile.open(fileobj=io.BytesIO(fh.read())) as tar,
    ):
        names = tar.getnames()
    assert names == ["Containerfile", "link"]


def _pushing(layer: str, current: int, total: int) -> dict[str, object]:
    return {
        "status": "Pushing",
        "id": layer,
        "progressDetail": {"current": current, "total": total},
    }


@pytest.mark.parametrize(
    ("items", "where"),
    [
        ([], "before any layer started (the registry did not answer)"),
        (
            [{"status": "Preparing", "id": "aaa", "progressDetail": {}}],
            "before layer aaa started sending (Preparing)",
        ),
        (
            [
                {"status": "Layer already exists", "id": "aaa", "progressDetail": {}},
                _pushing("bbb", 1_500_000, 3_000_000),
            ],
            "on layer bbb (1.5 MB of 3.0 MB sent)",
        ),
        (
            # The engine counts bytes before compression: `current` may pass `total`.
            [_pushing("bbb", 3_100_000, 3_000_000), _pushing("ccc", 512, 0)],
            "on layer bbb (3.1 MB sent), layer ccc (512 B sent)",
        ),
        (
            [_pushing(f"l{i}", 1000 * (i + 1), 10**9) for i in range(5)],
            "on layer l0 (1.0 kB of 1.0 GB sent), layer l1 (2.0 kB of 1.0 GB sent), "
            "layer l2 (3.0 kB of 1.0 GB sent) and 2 more",
        ),
        (
            [_pushing("bbb", 10, 10), {"status": "Pushed", "id": "bbb", "progressDetail": {}}],
            "after every layer was sent (the image config or manifest upload)",
        ),
    ],
)
def test_push_progress_says_where_a_push_stalled(
    items: list[dict[str, object]], where: str
) -> None:
    progress = _PushProgress()
    for item in items:
        progress.feed(item)
    assert progress.stalled_at() == where


def test_push_progress_is_news_only() -> None:
    """Only a new report about a layer is progress: not the same bytes again, not a line
    about the repository, not an item without a layer."""
    progress = _PushProgress()
    assert not progress.feed({"status": "The push refers to repository [r/x]"})
    assert progress.feed(_pushing("aaa", 100, 1000))
    assert not progress.feed(_pushing("aaa", 100, 1000))
    assert progress.feed(_pushing("aaa", 200, 1000))
    assert progress.feed({"status": "Retrying in 5 seconds", "id": "aaa", "progressDetail": {}})
    assert progress.feed({"status": "Retrying in 4 seconds", "id": "aaa", "progressDetail": {}})
    assert progress.feed({"status": "Pushed", "id": "aaa", "progressDetail": {}})
    assert not progress.feed({"progressDetail": {}, "aux": {"Digest": "sha256:" + "0" * 64}})
