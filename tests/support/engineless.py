"""A release world without a Docker engine, through the environment the CLI reads: the session's
HTTPS token-auth registry, a namespace of its own in it, the test base image's stand-in pushed
there (so every playbook is assembled, never built), and no engine answering."""

from __future__ import annotations

import json

import pytest

from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import TEST_BASE_IMAGE


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
