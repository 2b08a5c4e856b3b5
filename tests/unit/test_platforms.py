"""platforms.py's pure parts (Containerfile reading, emulation detection, platform matching),
the `platforms` setting and the source hash over the platform list. End to end (engine and
registry): tests/integration/test_platforms.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest

from playbookctl.config import DEFAULT_PLATFORMS, Config, load_config
from playbookctl.errors import ConfigError, UsageError
from playbookctl.oci import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    RegistryClient,
    image_index,
)
from playbookctl.platforms import (
    BaseRef,
    Platform,
    api_reference,
    base_references,
    emulation_available,
    emulation_problem,
    engine_base,
    find_child,
    index_platforms,
    kernel_architecture,
    needs_emulation,
    pin_name,
    run_steps,
)
from playbookctl.playbook import source_hash

DIGEST = "sha256:" + "a" * 64
HUB = "registry-1.docker.io"
AMD64 = {"os": "linux", "architecture": "amd64", "variant": ""}
ARM64_V8 = {"os": "linux", "architecture": "arm64", "variant": "v8"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM a.io/x:1\nCOPY . /\n", [BaseRef(1, "a.io/x:1")]),
        ("# c\n\nFROM  --platform=$TARGETPLATFORM a.io/x:1 AS build\n", [BaseRef(3, "a.io/x:1")]),
        ("FROM scratch\nCOPY x /x\n", []),
        ("FROM a.io/x:1 AS b\nFROM b\nFROM B\n", [BaseRef(1, "a.io/x:1")]),
        ("ARG BASE=a.io/x@" + DIGEST + "\nFROM ${BASE}\n", [BaseRef(2, "a.io/x@" + DIGEST)]),
        ('ARG BASE="a.io/y:2"\nFROM $BASE\n', [BaseRef(2, "a.io/y:2")]),
        ("ARG NOPE\nFROM ${NOPE}\n", []),
        ("from a.io/x:1\nfrom c.io/z:3\n", [BaseRef(1, "a.io/x:1"), BaseRef(2, "c.io/z:3")]),
        ("RUN echo \\\nFROM not-an-instruction\nFROM a.io/x:1\n", [BaseRef(3, "a.io/x:1")]),
        # Read as the builders read it (dockerfile.scan): a BOM, a comment or a blank line
        # inside a continuation, a heredoc's body.
        ("\ufeffFROM a.io/x:1\n", [BaseRef(1, "a.io/x:1")]),
        ("FROM \\\n# the base\n\n  a.io/x:1\n", [BaseRef(1, "a.io/x:1")]),
        ("FROM a.io/x:1\nRUN <<EOF\nFROM b.io/y:2\nEOF\n", [BaseRef(1, "a.io/x:1")]),
    ],
)  # fmt: skip
def test_base_references(text: str, expected: list[BaseRef]) -> None:
    assert base_references(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM x\nCOPY a /a\nUSER 1:1\nENTRYPOINT [\"/a\"]\n", []),
        ("FROM x\nrun apk add jq\n", [(2, "run apk add jq")]),
        ("FROM x\n# RUN commented out\nRUN a && \\\n  b\n", [(3, "RUN a && b")]),
        ('FROM x\nRUN ["/bin/busybox", "--install"]\n', [(2, 'RUN ["/bin/busybox", "--install"]')]),
        ("FROM x\nLABEL run=yes\nENV RUN=1\n", []),
    ],
)  # fmt: skip
def test_run_steps(text: str, expected: list[tuple[int, str]]) -> None:
    assert [(s.line, s.text) for s in run_steps(text)] == expected


def _binfmt(tmp_path: Path, entries: dict[str, str], status: str | None = "enabled") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    if status is not None:
        (tmp_path / "status").write_text(status + "\n")
    for name, state in entries.items():
        (tmp_path / name).write_text(f"{state}\ninterpreter /usr/bin/{name}\nflags: F\n")
    return tmp_path


@pytest.mark.parametrize(
    ("entries", "status", "arch", "available"),
    [
        ({"qemu-aarch64": "enabled"}, "enabled", "arm64", True),
        ({"qemu-aarch64": "disabled"}, "enabled", "arm64", False),
        ({"qemu-aarch64": "enabled"}, "disabled", "arm64", False),  # binfmt_misc switched off
        ({"qemu-aarch64": "enabled"}, None, "arm64", True),
        ({"qemu-aarch64-static": "enabled"}, "enabled", "arm64", True),
        ({"qemu-x86_64": "enabled"}, "enabled", "amd64", True),
        ({"qemu-x86_64": "enabled"}, "enabled", "arm64", False),
        ({}, "enabled", "arm64", False),
        ({}, None, "arm64", False),
    ],
)  # fmt: skip
def test_emulation_available(
    tmp_path: Path, entries: dict[str, str], status: str | None, arch: str, available: bool
) -> None:
    assert emulation_available(arch, _binfmt(tmp_path, entries, status)) is available


def test_emulation_is_unavailable_without_binfmt_misc(tmp_path: Path) -> None:
    assert not emulation_available("arm64", tmp_path / "not-mounted")


@pytest.mark.parametrize(
    ("native", "platform", "needed"),
    [
        ("amd64", "linux/amd64", False),
        ("amd64", "linux/arm64", True),
        ("amd64", "linux/386", False),
        ("arm64", "linux/amd64", True),
        ("arm64", "linux/arm64/v8", False),
    ],
)
def test_needs_emulation(native: str, platform: str, needed: bool) -> None:
    assert needs_emulation(native, Platform.parse(platform)) is needed


def test_emulation_problem_names_the_step_and_both_ways_out(tmp_path: Path) -> None:
    text = "FROM x\nCOPY a /a\nRUN apk add --no-cache jq\nUSER 1:1\n"
    found = emulation_problem(
        "playbooks/p/Containerfile",
        text,
        [Platform.parse("linux/amd64"), Platform.parse("linux/arm64")],
        "amd64",
        _binfmt(tmp_path, {}),
    )
    assert found is not None
    platform, message = found
    assert str(platform) == "linux/arm64"
    assert message.startswith("playbooks/p/Containerfile:3: `RUN apk add --no-cache jq`")
    assert "qemu-aarch64" in message
    assert "install QEMU" in message
    assert "native arm64 runner" in message
    assert "\n" not in message


def test_no_emulation_problem_without_run_or_with_emulation(tmp_path: Path) -> None:
    both = [Platform.parse("linux/amd64"), Platform.parse("linux/arm64")]
    runless = "FROM x\nCOPY a /a\nUSER 1:1\n"
    assert emulation_problem("C", runless, both, "amd64", _binfmt(tmp_path / "a", {})) is None
    with_run = runless + "RUN true\n"
    qemu = _binfmt(tmp_path / "b", {"qemu-aarch64": "enabled"})
    assert emulation_problem("C", with_run, both, "amd64", qemu) is None


@pytest.mark.parametrize(
    ("machine", "arch"),
    [("x86_64", "amd64"), ("aarch64", "arm64"), ("armv7l", "arm"), ("s390x", "s390x")],
)
def test_kernel_architecture(machine: str, arch: str) -> None:
    assert kernel_architecture(machine) == arch


@pytest.mark.parametrize(
    ("platform", "entry", "matches"),
    [
        ("linux/amd64", {"os": "linux", "architecture": "amd64"}, True),
        ("linux/amd64", {"os": "linux", "architecture": "arm64"}, False),
        ("linux/amd64", {"os": "windows", "architecture": "amd64"}, False),
        ("linux/arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}, True),
        ("linux/arm64/v8", {"os": "linux", "architecture": "arm64"}, True),
        ("linux/arm/v7", {"os": "linux", "architecture": "arm", "variant": "v6"}, False),
        ("linux/arm/v7", {"os": "linux", "architecture": "arm", "variant": "v7"}, True),
        ("linux/arm/v7", {"os": "linux", "architecture": "arm"}, False),
    ],
)  # fmt: skip
def test_platform_matches(platform: str, entry: dict[str, str], matches: bool) -> None:
    assert Platform.parse(platform).matches(entry) is matches


def test_platform_tag_suffix_can_never_be_a_semver() -> None:
    assert Platform.parse("linux/arm64").tag_suffix == "_linux-arm64"
    assert Platform.parse("linux/arm/v7").tag_suffix == "_linux-arm-v7"


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "name"),
    [
        (f"docker.io/alpine/k8s:1@{DIGEST}", HUB, "alpine/k8s", "docker.io/alpine/k8s"),
        ("alpine:3.20", HUB, "library/alpine", "alpine"),
        ("alpine/k8s:1", HUB, "alpine/k8s", "alpine/k8s"),
        ("127.0.0.1:5000/base/bb:1", "127.0.0.1:5000", "base/bb", "127.0.0.1:5000/base/bb"),
        ("ghcr.io/o/r@" + DIGEST, "ghcr.io", "o/r", "ghcr.io/o/r"),
    ],
)  # fmt: skip
def test_api_reference_and_pin_name(ref: str, registry: str, repository: str, name: str) -> None:
    r = api_reference(ref)
    assert (r.registry, r.repository) == (registry, repository)
    assert pin_name(ref) == name


def test_image_index_is_a_manifest_list_of_docker_manifests_and_deterministic() -> None:
    children = [
        (Descriptor(DOCKER_MANIFEST, "sha256:" + "1" * 64, 10), AMD64),
        (Descriptor(DOCKER_MANIFEST, "sha256:" + "2" * 64, 11), ARM64_V8),
    ]
    data, media_type = image_index(children)
    assert media_type == DOCKER_MANIFEST_LIST
    assert image_index(children) == (data, media_type)
    index = json.loads(data)
    assert index["mediaType"] == DOCKER_MANIFEST_LIST
    assert index_platforms(index) == [
        ("linux/amd64", "sha256:" + "1" * 64),
        ("linux/arm64/v8", "sha256:" + "2" * 64),
    ]
    assert "variant" not in index["manifests"][0]["platform"]
    assert find_child(index, Platform.parse("linux/arm64")) == "sha256:" + "2" * 64
    assert find_child(index, Platform.parse("linux/s390x")) is None


def test_image_index_of_oci_manifests_is_an_oci_index() -> None:
    child = (Descriptor(OCI_MANIFEST, DIGEST, 5), {"os": "linux", "architecture": "amd64"})
    assert image_index([child])[1] == OCI_INDEX


# -- the setting ------------------------------------------------------------------------------


def _root(tmp_path: Path, table: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[tool.playbookctl]\n{table}")
    return tmp_path


def test_default_platforms_are_amd64_and_arm64(tmp_path: Path) -> None:
    assert load_config(_root(tmp_path), env={}).platforms == DEFAULT_PLATFORMS
    assert DEFAULT_PLATFORMS == ("linux/amd64", "linux/arm64")


def test_platforms_from_file_env_and_flag(tmp_path: Path) -> None:
    root = _root(tmp_path, 'platforms = ["linux/arm64"]\n')
    assert load_config(root, env={}).platforms == ("linux/arm64",)
    env = {"PLAYBOOKCTL_PLATFORMS": "linux/amd64, linux/arm/v7"}
    config = load_config(root, env=env)
    assert config.platforms == ("linux/amd64", "linux/arm/v7")
    assert config.with_overrides(platforms=("linux/s390x",)).platforms == ("linux/s390x",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "name at least one platform"),
        ("amd64", "is not os/architecture"),
        ("linux/AMD64", "is not os/architecture"),
        ("linux/amd64,linux/amd64", "listed twice"),
    ],
)
def test_bad_platforms_are_refused_where_they_are_set(
    tmp_path: Path, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(_root(tmp_path), env={"PLAYBOOKCTL_PLATFORMS": value})
    assert "PLAYBOOKCTL_PLATFORMS" in str(info.value)
    with pytest.raises(UsageError, match=message) as flag:
        Config(root=tmp_path).with_overrides(platforms=tuple(v for v in value.split(",") if v))
    assert str(flag.value).startswith("--platform ")


def test_source_hash_covers_the_platform_set(tmp_path: Path) -> None:
    d = tmp_path / "pb"
    d.mkdir()
    (d / "workflow.yaml").write_text("x: 1\n")
    both = source_hash(d, ("linux/amd64", "linux/arm64"))
    assert source_hash(d) == both  # the default list
    assert source_hash(d, ("linux/arm64", "linux/amd64")) == both  # a set: order is not content
    assert source_hash(d, ("linux/amd64",)) != both
    assert source_hash(d, ("linux/amd64", "linux/arm64", "linux/s390x")) != both


# -- labels as one LABEL step (build.append_labels) -------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("FROM x\nUSER 1\n", {"b": "2", "a": "1"}, 'FROM x\nUSER 1\nLABEL "a"="1" "b"="2"\n'),
        ("FROM x", {"a": "1"}, 'FROM x\nLABEL "a"="1"\n'),
        ("FROM x\n", {"k": 'q"u\\o$te ${X}'}, 'FROM x\nLABEL "k"="q\\"u\\\\o\\$te \\${X}"\n'),
        ("FROM x\n", {}, None),
        ("FROM x\n", {"k": "two\nlines"}, None),
        ("# escape=`\nFROM x\n", {"k": "v"}, None),
        ("FROM x\nRUN a \\\n", {"k": "v"}, None),
    ],
)  # fmt: skip
def test_append_labels(text: str, labels: dict[str, str], expected: str | None) -> None:
    from playbookctl.build import append_labels

    assert append_labels(text, labels) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ARG BASE\nFROM ${BASE}\nRUN true\n", "cannot be told from the Containerfile"),
        ("FROM registry.example/base:1\nRUN true\n", "not an image in a registry, pinned by"),
    ],
)
def test_an_engine_build_whose_base_is_not_pinned_is_left_to_the_engine(
    text: str, why: str
) -> None:
    """No base manifest to write the layers on: the engine pushes it as built (the reason is
    publish's message). The registry is not asked."""
    unused = cast(RegistryClient, None)
    base, reason = engine_base(unused, text, "registry.example/x/images/y")
    assert base is None
    assert why in reason


def test_an_engine_build_from_scratch_has_an_empty_base() -> None:
    unused = cast(RegistryClient, None)
    base, reason = engine_base(unused, "FROM scratch\nCOPY a /a\n", "r.example/x/y")
    assert base is not None
    assert reason == ""
    assert base.manifest["layers"] == []
    assert base.config["rootfs"]["diff_ids"] == []
