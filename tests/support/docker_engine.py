"""Pytest plugin: a real Docker engine and a tiny base image made locally.

`docker_engine` is the DOCKER_HOST URL of the engine a machine already runs (a GitHub runner),
else of a private dockerd started for the session. `base_image` is a reference, in the session's
HTTPS test registry, to the stand-in base (playbookctl_dev/base_image.py): an index of linux/amd64
and linux/arm64, each a FROM-scratch image of Debian's static busybox, bash and kubectl for that
architecture, with a non-root user; test playbooks' production FROM lines are overridden to it
(PLAYBOOKCTL_BASE_IMAGE_OVERRIDES). Nothing is pulled from the internet; the packages are
downloaded from Debian once per machine and the layers kept in STAND_IN_CACHE, in the system's
temporary directory (so the test sessions after the first only push them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from playbookctl_dev.base_image import make_base_image
from playbookctl_dev.docker_engine import (
    DockerEngine,
    DockerEngineError,
    existing_engine,
    start_rootless_dockerd,
)
from playbookctl_dev.docker_engine import docker_engine as _docker_engine
from playbookctl_dev.registry import LocalRegistry
from tests.support.paths import STAND_IN_CACHE
from tests.support.registry import logged_in

# Why the engine tests skip for a user who has no engine and cannot start one (a GitHub-hosted
# runner always has one: /var/run/docker.sock, usable by its non-root user).
NEEDS_ROOT = (
    "needs a Docker engine: none answers (DOCKER_HOST, /var/run/docker.sock), and starting a "
    "private dockerd needs root"
)


# For the tests that start a dockerd of their own rather than use the session's engine: only
# root can (a GitHub-hosted runner's user cannot; it uses the runner's engine, and
# tests/integration/test_non_root.py proves that case when the suite runs as root).
PRIVATE_DOCKERD_NEEDS_ROOT = "starts a private dockerd of its own, which needs root"
needs_root_for_private_dockerd = pytest.mark.skipif(
    os.geteuid() != 0, reason=PRIVATE_DOCKERD_NEEDS_ROOT
)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[str]:
    if os.geteuid() != 0 and existing_engine() is None:
        pytest.skip(NEEDS_ROOT)
    with _docker_engine() as engine:
        yield engine.url


@pytest.fixture(scope="session")
def base_image(
    docker_engine: str, session_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory
) -> str:
    ref = f"{session_registry.host}/test-base/busybox:1"
    # Session scope runs before a test's own Docker config exists: a login of its own.
    with logged_in(session_registry, tmp_path_factory.mktemp("base-image-docker-config")):
        make_base_image(
            docker_engine, tmp_path_factory.mktemp("base-image"), ref, cache=STAND_IN_CACHE
        )
    return ref


def rootless_engine_or_skip(user: str = "nobody") -> DockerEngine:
    """A private rootless dockerd for `user` (start_rootless_dockerd); the test skips, saying
    why, only where that cannot be: not root, or a rootless package missing (make system-deps
    installs them)."""
    if os.geteuid() != 0:
        pytest.skip(f"starts a rootless dockerd as {user}, which needs root (subuid, setpriv)")
    try:
        return start_rootless_dockerd(user)
    except DockerEngineError as exc:
        if "apt-get install" in str(exc):
            pytest.skip(str(exc))
        raise
