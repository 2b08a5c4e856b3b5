"""The stand-in base (playbookctl_dev/base_image.py): a real base for each platform, made from
Debian's packages for that architecture, read back from the registry it was pushed to."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from playbookctl.config import Config
from playbookctl.oci import RegistryClient, parse_reference
from playbookctl.smoke import elf_architecture
from playbookctl_dev.base_image import STAND_IN_LABEL, make_base_image
from playbookctl_dev.registry import LocalRegistry
from tests.support.paths import STAND_IN_CACHE

pytestmark = pytest.mark.integration


def _layer(
    registry: LocalRegistry, ref: str, platform: str
) -> tuple[dict[str, object], tarfile.TarFile]:
    config = Config(root=Path("/"), registry=registry.host)
    r = parse_reference(ref)
    with RegistryClient(config) as client:
        index = json.loads(client.get_manifest(ref)[0])
        entry = next(
            m
            for m in index["manifests"]
            if f"{m['platform']['os']}/{m['platform']['architecture']}" == platform
        )
        manifest = json.loads(client.get_manifest(f"{r.name}@{entry['digest']}")[0])
        blob = json.loads(client.get_blob(r.repository, manifest["config"]["digest"]))
        (layer,) = manifest["layers"]
        data = gzip.decompress(client.get_blob(r.repository, layer["digest"]))
    return blob, tarfile.open(fileobj=io.BytesIO(data))


def _head(tar: tarfile.TarFile, path: str) -> bytes:
    fh = tar.extractfile(path)
    assert fh is not None
    return fh.read(64)


@pytest.mark.parametrize(("platform", "arch"), [("linux/amd64", "amd64"), ("linux/arm64", "arm64")])
def test_each_child_holds_that_architectures_bash_busybox_and_kubectl(
    registry: LocalRegistry, base_image: str, platform: str, arch: str
) -> None:
    config, tar = _layer(registry, base_image, platform)
    assert (config["os"], config["architecture"]) == tuple(platform.split("/"))
    labels = config["config"]["Labels"]  # type: ignore[index]
    assert "bash-static" in labels[STAND_IN_LABEL]
    assert "kubernetes-client" in labels[STAND_IN_LABEL]
    with tar:
        members = {m.name: m for m in tar.getmembers()}
        # real binaries of this architecture (the old stand-in's arm64 child was amd64's)
        for path in ("bin/bash", "bin/busybox", "usr/bin/kubectl"):
            assert elf_architecture(_head(tar, path)) == arch, path
            assert members[path].mode == 0o755
        assert members["bin/sh"].linkname == "/bin/busybox"
        assert members["usr/bin/env"].linkname == "/bin/busybox"
        assert members["tmp"].mode == 0o1777
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None
        assert "playbook:x:65532:65532:" in passwd.read().decode()
        # reproducible: owner root, time 0
        assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, 0)}


def test_the_cached_stand_in_pushes_the_same_digest_again(
    registry: LocalRegistry, base_image: str, tmp_path: Path
) -> None:
    config = Config(root=Path("/"), registry=registry.host)
    with RegistryClient(config) as client:
        first = client.resolve(base_image)
    again = make_base_image(
        None, tmp_path, f"{registry.host}/test-base/again:1", cache=STAND_IN_CACHE
    )
    assert first is not None
    assert again == first.digest
