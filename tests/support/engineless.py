"""A release world without a Docker engine, through the environment the CLI reads: the session's
HTTPS token-auth registry, a namespace of its own in it, the test base image's stand-in pushed
there (so every playbook is assembled, never built), and no engine answering."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from playbookctl.cli import main
from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.registry import LocalRegistry
from tests.support.clirun import run
from tests.support.gitrepos import TEST_BASE_IMAGE, MakeRepo, PlaybookRepo


def release_without_engine(
    monkeypatch: pytest.MonkeyPatch, registry: LocalRegistry, space: str
) -> str:
    """Point the CLI at `registry` under `space/` (images, bundles) with no engine; returns the
    stand-in base it pushed there."""
    base = f"{registry.host}/{space}/base:1"
    push_base_image(registry.host, base)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", registry.host)
    monkeypatch.setenv("PLAYBOOKCTL_IMAGE_REPO", f"{space}/images")
    monkeypatch.setenv("PLAYBOOKCTL_BUNDLE_REPO", f"{space}/bundles")
    monkeypatch.setenv("PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", json.dumps({TEST_BASE_IMAGE: base}))
    return base


def released_without_engine(
    monkeypatch: pytest.MonkeyPatch,
    registry: LocalRegistry,
    space: str,
    factory: MakeRepo,
    versions: Mapping[str, str],
    capsys: pytest.CaptureFixture[str] | None = None,
) -> PlaybookRepo:
    """A repository of `versions` (playbook -> version) released through the CLI into `space/` of
    `registry` without an engine, its clone pulled up to the release's commit. With `capsys` the
    release's output is consumed (and checked for tracebacks, as clirun.run does); without, it
    stays in the test's captured output."""
    release_without_engine(monkeypatch, registry, space)
    repo = factory(dict(versions))
    if capsys is None:
        assert main(["-C", str(repo.path), "release"]) == 0
    else:
        code, _, err = run(capsys, "-C", str(repo.path), "release")
        assert code == 0, err
    repo.git("pull", "--quiet", "--ff-only")
    return repo
