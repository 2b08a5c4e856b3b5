"""assemble.py without a registry: what goes to the engine and why, and layers as bytes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from playbookctl import assemble
from playbookctl.assemble import Refused

BASE = "registry.example/base@sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (f"FROM {BASE}\nRUN true\n", "line 2: RUN executes the base's programs"),
        (f"FROM {BASE} AS a\nFROM a\n", "line 2: several stages (a second FROM)"),
        (f"FROM {BASE}\nCOPY --from=x /a /b\n", "line 2: COPY --from=x"),
        (f"FROM --platform=linux/amd64 {BASE}\n", "line 1: FROM --platform=linux/amd64"),
        ("FROM scratch\nCOPY a /a\n", "line 1: FROM 'scratch' (no base to stack on)"),
        ("COPY a /a\n", "line 1: COPY before FROM"),
    ],
)
def test_plan_says_why_the_engine_builds_it(text: str, why: str) -> None:
    with pytest.raises(Refused) as info:
        assemble.plan(text)
    assert str(info.value) == why


@pytest.mark.parametrize(
    ("flag", "why"),
    [
        ("u+x", "only an octal mode is assembled (BuildKit's Dockerfile frontend before 0.16"),
        ("$MODE", "only an octal mode is assembled"),
        ("75", "only an octal mode is assembled"),
        ("4755", "the setuid, setgid and sticky bits are dropped by BuildKit before 0.13"),
        ("1777", "the setuid, setgid and sticky bits"),
    ],
)
def test_a_chmod_buildkit_versions_read_differently_goes_to_the_engine(flag: str, why: str) -> None:
    """Seen by plan (so lint's playbook.builder-flag names it): no engine version agrees."""
    with pytest.raises(Refused) as info:
        assemble.plan(f"FROM {BASE}\nCOPY --chmod={flag} f /usr/local/bin/f\n")
    assert str(info.value).startswith(f"line 2: --chmod={flag}: {why}")


_CONTEXT = {
    "": assemble.ContextFile("", "dir", 0o755),
    "f": assemble.ContextFile("f", "file", 0o644),
    "d": assemble.ContextFile("d", "dir", 0o755),
    "d/x": assemble.ContextFile("d/x", "file", 0o644),
}


def _assemble_copy(copy: str) -> assemble.Assembled:
    return assemble.assemble_image(
        assemble.plan(f"FROM {BASE}\n{copy}\n"), _base(), context=_CONTEXT,
        read=lambda p: b"x", epoch=1_700_000_000, platform="linux/arm64",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "dest", "created"),
    [
        ("0644", "/opt/new/f", "/opt"),  # a file's parents
        ("0700", "/etc/app/", "/etc/app"),
        ("0640", "/etc/tree", "/etc/tree"),  # a directory copy's destination (source d)
    ],
)
def test_a_chmod_that_creates_a_directory_goes_to_the_engine(
    mode: str, dest: str, created: str
) -> None:
    """BuildKit before 0.21 makes such a directory 0755, later ones give it the mode."""
    source = "d" if dest == "/etc/tree" else "f"
    with pytest.raises(Refused) as info:
        _assemble_copy(f"COPY --chmod={mode} {source} {dest}")
    assert str(info.value).startswith(f"line 2: --chmod={mode} creates {created}, which ")
    # 0755 is what every version gives it; into a directory that exists, nothing is created.
    _assemble_copy(f"COPY --chmod=0755 {source} {dest}")
    _assemble_copy(f"COPY --chmod={mode} {source} /etc/")


def test_arg_defaults_name_the_base() -> None:
    plan = assemble.plan(f"ARG BASE={BASE}\nFROM ${{BASE}}\nUSER 1\n")
    assert plan.base == BASE
    assert plan.base_line == 2


def _base() -> assemble.BaseImage:
    fs = assemble.BaseFS()
    fs.entries["usr"] = assemble.Entry("dir", 0o755, 0, 0, 100)
    fs.entries["usr/local"] = assemble.Entry("dir", 0o755, 0, 0, 100)
    fs.entries["etc"] = assemble.Entry("dir", 0o755, 0, 0, 100)
    fs.entries["lib"] = assemble.Entry("link", 0o777, 0, 0, 100, "usr/lib")
    config = {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "b" * 64]},
        "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "base"}],
    }
    return assemble.BaseImage(
        "registry.example/base", {"layers": []}, assemble.DOCKER_MANIFEST, config, fs
    )


def _assemble(text: str, files: dict[str, bytes]) -> assemble.Assembled:
    context = {"": assemble.ContextFile("", "dir", 0o755)}
    context.update({k: assemble.ContextFile(k, "file", 0o644) for k in files})
    return assemble.assemble_image(
        assemble.plan(text),
        _base(),
        context=context,
        read=files.__getitem__,
        epoch=1_700_000_000,
        platform="linux/arm64",
    )


def test_the_same_input_gives_the_same_bytes_and_the_config_follows_the_builder() -> None:
    text = f'FROM {BASE}\nENV A=1\nCOPY f /usr/local/bin/\nENTRYPOINT ["/usr/local/bin/f"]\n'
    one, two = _assemble(text, {"f": b"x"}), _assemble(text, {"f": b"x"})
    assert (one.manifest, one.config, one.layers) == (two.manifest, two.config, two.layers)
    config = json.loads(one.config)
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")
    assert config["config"]["Env"] == ["PATH=/bin", "A=1"]
    assert config["config"]["Cmd"] is None  # ENTRYPOINT resets an inherited CMD
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert [h.get("empty_layer", False) for h in config["history"]] == [False, True, False, True]
    ((_digest, data),) = one.layers
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        entries = [(m.name, m.mode, m.uid, m.mtime) for m in tar]
    assert entries == [
        ("usr", 0o755, 0, 100),  # copied up: its own time, not the build's
        ("usr/local", 0o755, 0, 1_700_000_000),  # modified: a directory was created in it
        ("usr/local/bin", 0o755, 0, 1_700_000_000),  # created
        ("usr/local/bin/f", 0o644, 0, 0),  # the context's time
    ]
    assert data[4:8] == b"\0\0\0\0"  # gzip header without a time


def test_a_destination_through_a_symbolic_link_goes_to_the_engine() -> None:
    with pytest.raises(Refused, match=r"/lib is a symbolic link in the image"):
        _assemble(f"FROM {BASE}\nCOPY f /lib/x\n", {"f": b"x"})


def test_an_archive_added_goes_to_the_engine() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("inner"))
    with pytest.raises(Refused, match=r"ADD of a\.tar, which the engine would unpack"):
        _assemble(f"FROM {BASE}\nADD a.tar /opt/\n", {"a.tar": buf.getvalue()})


def test_the_base_is_never_changed_by_an_image_made_on_it() -> None:
    """Every playbook and platform of a run shares one BaseImage: a layer's modified directory
    times must not leak into the next image (another revision has another time)."""
    base = _base()
    before = {k: (e.mtime, e.uid) for k, e in base.fs.entries.items()}
    for epoch in (1_700_000_000, 1_600_000_000):
        assemble.assemble_image(
            assemble.plan(f"FROM {BASE}\nCOPY f /usr/local/x\nWORKDIR /etc/new\n"),
            base,
            context={
                "": assemble.ContextFile("", "dir", 0o755),
                "f": assemble.ContextFile("f", "file", 0o644),
            },
            read=lambda _p: b"x",
            epoch=epoch,
            platform="linux/arm64",
        )
    assert {k: (e.mtime, e.uid) for k, e in base.fs.entries.items()} == before


def test_a_file_name_that_is_not_utf8_is_written_by_its_bytes() -> None:
    """File names are bytes end to end: lint refuses such a name (playbook.file-name), and the
    layer writer still never crashes on one; the tar holds the name's own bytes."""
    name = os.fsdecode(b"usr/bin/data-\xff")
    entry = assemble.LayerEntry(name, "file", 0o644, 0, 0, 0, "x")
    data = assemble.layer_tar([entry], lambda _s: b"x")
    with tarfile.open(fileobj=io.BytesIO(data), errors="surrogateescape") as tar:
        (member,) = tar.getmembers()
    assert os.fsencode(member.name) == b"usr/bin/data-\xff"


def _layer_tar() -> bytes:
    """A base layer as a registry holds them: directories, a link, the user database, a large
    file (its content is skipped), a whiteout and an opaque directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, data: bytes = b"", **kw: object) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data)
            for key, value in kw.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("etc", tarfile.DIRTYPE, mode=0o755, mtime=5)
        add("etc/passwd", tarfile.REGTYPE, b"root:x:0:0::/root:/bin/sh\n", mode=0o644)
        add("usr/local/bin", tarfile.DIRTYPE, mode=0o2775, uid=7, gid=8, mtime=9)
        add("usr/bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox", mode=0o777)
        add("opt/" + "long-name-" * 20, tarfile.REGTYPE, os.urandom(3 << 20), mode=0o755)
        add("var/.wh.cache", tarfile.REGTYPE)
        add("srv/.wh..wh..opq", tarfile.REGTYPE)
    return buf.getvalue()


def test_a_base_layer_summary_is_the_same_gzipped_or_plain() -> None:
    raw = _layer_tar()
    summary = assemble.summarise_layer(io.BytesIO(gzip.compress(raw)))
    assert summary == assemble.summarise_layer(io.BytesIO(raw))
    assert summary["entries"]["usr/local/bin"] == ["dir", 0o2775, 7, 8, 9, ""]
    assert summary["entries"]["usr/bin/sh"][0::5] == ["link", "/bin/busybox"]
    assert summary["entries"]["opt/" + "long-name-" * 20][:2] == ["file", 0o755]
    assert summary["files"] == {"etc/passwd": "root:x:0:0::/root:/bin/sh\n"}
    assert summary["whiteouts"] == ["var/cache"]
    assert summary["opaque"] == ["srv"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda gz: gz[: len(gz) // 2], id="truncated"),
        pytest.param(lambda gz: gz[:10] + b"\0" * 4096 + gz[4106:], id="deflate-garbage"),
        pytest.param(lambda gz: gz[:-8] + b"\0\0\0\0" + gz[-4:], id="bad-crc"),
        pytest.param(lambda gz: gz[:10], id="header-only"),
        pytest.param(lambda gz: b"not a tar" * 100, id="not-a-tar"),
        pytest.param(lambda gz: b"", id="empty"),
    ],
)
def test_a_damaged_base_layer_is_an_error_the_reader_turns_into_a_refusal(damage: Any) -> None:
    """_read_layer refuses (the engine builds it instead) on exactly these exceptions: anything
    else would end the playbook as an internal error."""
    data = damage(gzip.compress(_layer_tar()))
    with pytest.raises((tarfile.TarError, EOFError, OSError)):
        assemble.summarise_layer(io.BytesIO(data))


class _Blobs:
    """A registry that serves one layer and counts its downloads (only the count is faked: the
    bytes are a real gzipped layer)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.gets = 0

    def get_blob(self, repository: str, digest: str, **kw: object) -> bytes:
        self.gets += 1
        return self.data


_ENTRY = ["dir", 0o755, 0, 0, 5, ""]


def _summary(**changed: object) -> bytes:
    """A cached summary as JSON: an empty one with `changed` keys replaced (None: left out)."""
    value: dict[str, object] = {"entries": {}, "whiteouts": [], "opaque": [], "files": {}}
    value.update(changed)
    return json.dumps({k: v for k, v in value.items() if v is not None}).encode()


@pytest.mark.parametrize(
    "damaged",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[]", id="a-list"),
        pytest.param(b"{}", id="no-keys"),
        pytest.param(_summary(files=None), id="no-files"),
        pytest.param(_summary(extra=1), id="an-extra-key"),
        pytest.param(_summary(entries={"etc": _ENTRY[:5]}), id="short-entry"),
        pytest.param(_summary(entries={"etc": ["fifo", *_ENTRY[1:]]}), id="unknown-kind"),
        pytest.param(_summary(entries={"etc": ["dir", "755", *_ENTRY[2:]]}), id="mode-a-string"),
        pytest.param(_summary(entries={"etc": [*_ENTRY[:5], None]}), id="link-null"),
        pytest.param(_summary(whiteouts=[1]), id="whiteout-a-number"),
        pytest.param(_summary(opaque="srv"), id="opaque-a-string"),
        pytest.param(_summary(files={"etc/passwd": "\u2603"}), id="file-not-latin1"),
    ],
)
def test_a_damaged_cached_summary_is_read_again_from_the_layer(
    tmp_path: Path, damaged: bytes
) -> None:
    """The base-fs cache may be restored from elsewhere (CI's actions/cache): an entry that is not
    a layer summary costs a download (and is rewritten), never a traceback from apply_layer."""
    data = gzip.compress(_layer_tar())
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    layer = {"digest": digest, "size": len(data)}
    truth = assemble.summarise_layer(io.BytesIO(data))
    entry = tmp_path / f"{digest.replace(':', '-')}.json"
    entry.write_bytes(damaged)
    blobs = _Blobs(data)
    got = assemble.BaseCache(tmp_path)._read_layer(blobs, "r.invalid", "base", layer)  # type: ignore[arg-type]
    assert (got, blobs.gets) == (truth, 1)
    assert json.loads(entry.read_text()) == truth
    # The rewritten entry is used as it is: no download.
    again = _Blobs(b"")
    fs = assemble.BaseFS()
    assemble.apply_layer(
        fs, assemble.BaseCache(tmp_path)._read_layer(again, "r.invalid", "base", layer)
    )  # type: ignore[arg-type]
    assert again.gets == 0
    assert fs.files == {"etc/passwd": b"root:x:0:0::/root:/bin/sh\n"}
