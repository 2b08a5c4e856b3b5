"""Reproducible images on a real Docker engine: the same content on the same base gives the
same pushed digest, whoever builds it and whenever it was checked out.

The engine's build cache would make a second build trivially identical, so before each rebuild
the first build's own (raw) image is removed: the rebuild really runs, as on another machine.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest

from playbookctl import build
from playbookctl_dev.registry import LocalRegistry
from playbookctl_dev.sample_repo import write_playbook
from tests.support.gitrepos import TEST_BASE_IMAGE

pytestmark = pytest.mark.integration
EPOCH = 1_700_000_000
_ids = itertools.count()


def build_and_push(
    engine: build.Engine, directory: Path, ref: str, base_image: str, *, epoch: int | None
) -> tuple[build.BuiltImage, str]:
    built = build.build_playbook_image(
        engine,
        directory,
        containerfile="Containerfile",
        ref=ref,
        labels={"org.opencontainers.image.version": "1.0.0"},
        overrides={TEST_BASE_IMAGE: base_image},
        epoch=epoch,
    )
    return built, build.push_image(engine, ref)


def forget(engine: build.Engine, built: build.BuiltImage) -> None:
    """Drop the engine's raw build (and its intermediate images): no cache for the next one."""
    engine._api.remove_image(built.built_id or built.image_id, force=True)


def checkout(tmp_path: Path, name: str, *, late: bool) -> Path:
    """A fresh copy of one playbook; `late`: other mtimes, other permission bits for group and
    others, as a later checkout under another umask gives."""
    d = write_playbook(tmp_path / name, "alpha", "1.0.0")
    if late:
        later = time.time() + 3600
        for p in d.rglob("*"):
            os.utime(p, (later, later))
            p.chmod(p.stat().st_mode & ~0o077)
    return d


def test_two_checkouts_built_apart_push_the_same_digest(
    docker_engine: str, registry: LocalRegistry, base_image: str, tmp_path: Path
) -> None:
    n = next(_ids)
    first_dir = checkout(tmp_path, "first", late=False)
    second_dir = checkout(tmp_path, "second", late=True)
    with build.Engine(docker_engine) as engine:
        first, d1 = build_and_push(
            engine, first_dir, f"{registry.host}/repro{n}/a:1.0.0", base_image, epoch=EPOCH
        )
        forget(engine, first)
        time.sleep(1.1)  # another second on the build's clock
        second, d2 = build_and_push(
            engine, second_dir, f"{registry.host}/repro{n}/b:1.0.0", base_image, epoch=EPOCH
        )
    assert first.not_reproducible is None
    assert second.built_id != first.built_id  # the engine really built it again, differently
    assert second.image_id == first.image_id
    assert d1 == d2


def test_without_the_rewrite_the_engine_gives_another_digest(
    docker_engine: str, registry: LocalRegistry, base_image: str, tmp_path: Path
) -> None:
    """The measurement behind the rewrite: the classic builder stamps each build with its time."""
    n = next(_ids)
    d = checkout(tmp_path, "only", late=False)
    with build.Engine(docker_engine) as engine:
        first, d1 = build_and_push(
            engine, d, f"{registry.host}/raw{n}/a:1.0.0", base_image, epoch=None
        )
        forget(engine, first)
        time.sleep(1.1)
        _, d2 = build_and_push(engine, d, f"{registry.host}/raw{n}/b:1.0.0", base_image, epoch=None)
    assert d1 != d2
