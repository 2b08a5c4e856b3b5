"""Registry fixtures: real loopback `docker-registry` instances, and a fault-injecting proxy.

`registry` and `auth_registry` are session-scoped (a registry starts in tens of milliseconds, but
one per session keeps the suite quiet); tests use their own repository names to stay apart.
`fault_proxy` is per test, in front of the session's plain registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from playbookctl.config import Config
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy


@pytest.fixture(scope="session")
def registry() -> Iterator[LocalRegistry]:
    # Its own private temp dir (in memory where possible; removed on stop): see
    # playbookctl_dev.registry.
    with LocalRegistry() as reg:
        yield reg


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[LocalRegistry]:
    """A registry that demands a login; `.username` / `.password` are the htpasswd user's."""
    with LocalRegistry(auth=True) as reg:
        yield reg


@pytest.fixture
def fault_proxy(registry: LocalRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host) as proxy:
        yield proxy


@pytest.fixture
def registry_config(registry: LocalRegistry, tmp_path: Path) -> Config:
    """A Config pointing at the session registry, with short timeouts for fast failure tests."""
    return Config(root=tmp_path, registry=registry.host, registry_timeout=5.0)
