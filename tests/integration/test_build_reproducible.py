"""Reproducible engine builds on a real Docker engine: the same content on the same base gives
the same pushed digest, whoever builds it and whenever it was checked out, with nothing loaded
back into the engine and nothing pushed by it (build.engine_image, assemble.push_assembled).

The engine's build cache would make a second build trivially identical, so before each rebuild
the first build's own image is removed: the rebuild really runs, as on another machine.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from playbookctl import assemble, build, platforms
from playbookctl.config import Config
from playbookctl.oci import RegistryClient, sha256_digest
from playbookctl_dev.registry import LocalRegistry
from playbookctl_dev.sample_repo import write_playbook
from tests.support.gitrepos import TEST_BASE_IMAGE

pytestmark = pytest.mark.integration
EPOCH = 1_700_000_000
PLATFORM = "linux/amd64"
_ids = itertools.count()


def build_image(
    engine: build.Engine, client: RegistryClient, directory: Path, ref: str, base_image: str
) -> build.BuiltImage:
    overrides = {TEST_BASE_IMAGE: base_image}
    pins = platforms.platform_pins(
        client,
        directory / "Containerfile",
        "Containerfile",
        [platforms.Platform.parse(PLATFORM)],
        overrides,
    )
    return build.build_playbook_image(
        engine,
        directory,
        containerfile="Containerfile",
        ref=ref,
        labels={"org.opencontainers.image.version": "1.0.0"},
        overrides=overrides,
        platform=PLATFORM,
        pins=pins[PLATFORM],
    )


def build_and_push(
    engine: build.Engine, client: RegistryClient, directory: Path, repo: str, base_image: str
) -> tuple[build.BuiltImage, assemble.Assembled, str]:
    built = build_image(engine, client, directory, f"{repo}:1.0.0", base_image)
    base, why = platforms.engine_base(client, built.containerfile_text, repo)
    assert base is not None, why
    image = build.engine_image(engine, built, base, epoch=EPOCH, platform=PLATFORM)
    return built, image, assemble.push_assembled(client, repo, image)


def forget(engine: build.Engine, built: build.BuiltImage) -> None:
    """Drop the engine's build (and its intermediate images): no cache for the next one."""
    engine._api.remove_image(built.image_id, force=True)


def checkout(tmp_path: Path, name: str, *, late: bool, run: bool = False) -> Path:
    """A fresh copy of one playbook; `late`: other mtimes, other permission bits for group and
    others, as a later checkout under another umask gives. `run`: with a RUN step that
    creates directories and a file (their times are the build's)."""
    d = write_playbook(tmp_path / name, "alpha", "1.0.0")
    if run:
        cf = d / "Containerfile"
        cf.write_text(
            cf.read_text().replace(
                "USER 65532",
                "RUN mkdir -p /opt/playbook/state && echo ready > /opt/playbook/state/flag\n"
                "USER 65532",
            )
        )
    if late:
        later = time.time() + 3600
        for p in d.rglob("*"):
            os.utime(p, (later, later))
            p.chmod(p.stat().st_mode & ~0o077)
    return d


def image_events(engine: build.Engine, since: float) -> list[str]:
    """The engine's image events (load, push, save, tag...) since `since`."""
    events: Any = engine._api.events(
        since=int(since), until=int(time.time()) + 1, decode=True, filters={"type": "image"}
    )
    return [str(e.get("Action") or e.get("status")) for e in events]


@pytest.mark.parametrize("run", [False, True], ids=["copy", "run-step"])
def test_two_checkouts_built_apart_push_the_same_digest_and_load_nothing(
    docker_engine: str, registry: LocalRegistry, base_image: str, tmp_path: Path, run: bool
) -> None:
    n = next(_ids)
    first_dir = checkout(tmp_path, "first", late=False, run=run)
    second_dir = checkout(tmp_path, "second", late=True, run=run)
    started = time.time() - 1
    with (
        build.Engine(docker_engine) as engine,
        RegistryClient(Config(root=tmp_path, registry=registry.host)) as client,
    ):
        repo = f"{registry.host}/repro{n}/a"
        first, image1, d1 = build_and_push(engine, client, first_dir, repo, base_image)
        forget(engine, first)
        time.sleep(1.1)  # another second on the build's clock
        second, image2, d2 = build_and_push(
            engine, client, second_dir, f"{registry.host}/repro{n}/b", base_image
        )
        events = image_events(engine, started)
        local = {str(i["Id"]) for i in engine._api.images(all=True)}
    assert second.image_id != first.image_id  # the engine really built it again, differently
    assert d1 == d2 == image1.digest == image2.digest
    # Nothing went back into the engine, nothing was pushed by it: saved, never loaded.
    assert "save" in events
    assert "load" not in events, events
    assert "push" not in events, events
    assert sha256_digest(image1.config) not in local
    # The base's layers are the base manifest's own blobs; ours are gzip with a fixed header.
    base_layers = image1.base.manifest["layers"]
    assert len(image1.layers) >= 1
    for digest, data in image1.layers:
        assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
        assert digest not in {layer["digest"] for layer in base_layers}


def test_without_the_rewrite_the_engine_gives_another_digest(
    docker_engine: str, registry: LocalRegistry, base_image: str, tmp_path: Path
) -> None:
    """The measurement behind the rewrite: the classic builder stamps each build with its time,
    so the engine's own push of two builds of one context gives two digests."""
    n = next(_ids)
    d = checkout(tmp_path, "only", late=False)
    with (
        build.Engine(docker_engine) as engine,
        RegistryClient(Config(root=tmp_path, registry=registry.host)) as client,
    ):
        first = build_image(engine, client, d, f"{registry.host}/raw{n}/a:1.0.0", base_image)
        d1 = build.push_image(engine, f"{registry.host}/raw{n}/a:1.0.0")
        forget(engine, first)
        time.sleep(1.1)
        build_image(engine, client, d, f"{registry.host}/raw{n}/b:1.0.0", base_image)
        d2 = build.push_image(engine, f"{registry.host}/raw{n}/b:1.0.0")
    assert d1 != d2


def test_a_from_scratch_image_is_written_with_no_base_layers(
    docker_engine: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    """`FROM scratch` (which assemble.py leaves to the engine): no base manifest to mount, the
    build's one layer is all the image holds, compressed by us, and it is reproducible."""
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (tmp_path / "hello.txt").write_text("hello\n")
    n = next(_ids)
    repo = f"{registry.host}/scratch{n}/a"
    digests = []
    with (
        build.Engine(docker_engine) as engine,
        RegistryClient(Config(root=tmp_path, registry=registry.host)) as client,
    ):
        for _ in range(2):
            built = build.build_playbook_image(
                engine,
                tmp_path,
                containerfile="Containerfile",
                ref=f"{repo}:1",
                labels={},
                overrides={},
                platform=PLATFORM,
            )
            base, why = platforms.engine_base(client, built.containerfile_text, repo)
            assert base is not None, why
            image = build.engine_image(engine, built, base, epoch=EPOCH, platform=PLATFORM)
            digests.append(assemble.push_assembled(client, repo, image))
            forget(engine, built)
            time.sleep(1.1)
        data, _media_type, _digest = client.get_manifest(f"{repo}@{digests[0]}")
    assert digests[0] == digests[1]
    manifest = json.loads(data)
    assert [layer["digest"] for layer in manifest["layers"]] == [image.layers[0][0]]


LARGE = 32 * 1024 * 1024


def test_a_large_run_layer_is_rewritten_and_pushed_in_bounded_memory(
    docker_engine: str, registry: LocalRegistry, base_image: str, tmp_path: Path
) -> None:
    """A RUN step that writes 32 MB of random bytes (incompressible: its gzip is as large):
    build.engine_image clamps and compresses it, and push_assembled uploads it, through
    temporary files, so the Python heap's peak (tracemalloc) stays a fraction of the layer,
    where holding it in memory took the layer twice over. The bytes are the ones the in-memory
    way gives (gzip at build.GZIP_LEVEL, mtime 0, of the clamped layer): the same digest."""
    n = next(_ids)
    d = write_playbook(tmp_path / "large", "alpha", "1.0.0")
    cf = d / "Containerfile"
    cf.write_text(
        cf.read_text().replace(
            "USER 65532",
            "RUN mkdir -p /opt && dd if=/dev/urandom of=/opt/large bs=1048576 "
            f"count={LARGE // 1048576} 2>&1\nUSER 65532",
        )
    )
    repo = f"{registry.host}/large{n}/a"
    with (
        build.Engine(docker_engine) as engine,
        RegistryClient(Config(root=tmp_path, registry=registry.host)) as client,
    ):
        built = build_image(engine, client, d, f"{repo}:1.0.0", base_image)
        base, why = platforms.engine_base(client, built.containerfile_text, repo)
        assert base is not None, why
        tracemalloc.start()
        try:
            image = build.engine_image(engine, built, base, epoch=EPOCH, platform=PLATFORM)
            digest = assemble.push_assembled(client, repo, image)
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        try:
            (layer_digest, blob), *_rest = image.layers[::-1]  # the last layer: the RUN step
            packed = bytes(blob)
            assert len(packed) > LARGE
            assert client.blob_exists(f"large{n}/a", layer_digest, registry=registry.host)
            assert client.resolve(f"{repo}@{digest}") is not None
        finally:
            image.close()
    assert peak < LARGE // 4, f"peak {peak} bytes for a {LARGE}-byte layer"
    assert sha256_digest(packed) == layer_digest
    assert gzip.compress(gzip.decompress(packed), build.GZIP_LEVEL, mtime=0) == packed
