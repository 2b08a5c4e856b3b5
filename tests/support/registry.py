"""Registry fixtures: real `docker-registry` instances, and a fault-injecting proxy.

`registry` is the default, set up the way production registries are (playbookctl_dev/registry.py,
README "The test world"): HTTPS under a unique `*.playbookctl.test` name with a CA of its own
installed in /etc/docker/certs.d, and Bearer token auth with short-lived tokens. One per session
(per xdist worker); every test gets a login for it in its own Docker config (`DOCKER_CONFIG`,
set per test by conftest's `_isolate_home`), as `docker login` leaves it on a CI runner, so
playbookctl and the engine authenticate the way they do in production.

`plain_registry` is the plain-HTTP loopback registry (`127.0.0.1:PORT`, no auth): the demo path
before this test world, covered by a smaller set of tests. `auth_registry` demands a Basic login
(htpasswd) over plain HTTP. `fault_proxy` is per test, in front of the session's plain registry;
a test using it, or marked `plain_http`, gets the plain registry as `registry` too.

Mapping the name and installing the CA need root. A non-root session gets a registry a root
process prepared (PLAYBOOKCTL_TEST_REGISTRY, see `attached`): tests/integration/test_non_root.py
hands this session's registry to `nobody` that way; without one, the tests that need it skip,
saying why (inside GitHub Actions they fail: `no_test_world`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from playbookctl.config import Config
from playbookctl_dev import trust
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy

# A registry prepared by a root process (JSON: host, username, password, ca_file), for a
# non-root session that cannot write /etc/hosts or /etc/docker/certs.d itself.
ATTACH_VAR = "PLAYBOOKCTL_TEST_REGISTRY"
# Read once, as the session starts: conftest's _isolate_home takes every GITHUB_ variable out of
# each test's environment.
INSIDE_GITHUB_ACTIONS = os.environ.get("GITHUB_ACTIONS") == "true"


def attached(spec: str) -> LocalRegistry:
    """A LocalRegistry object for a registry someone else started (never stopped by us)."""
    data = json.loads(spec)
    reg = LocalRegistry(username=data["username"], password=data["password"])
    reg.hostname, _, port = data["host"].rpartition(":")
    reg.port = int(port)
    return reg


def attach_spec(reg: LocalRegistry) -> str:
    return json.dumps(
        {"host": reg.host, "username": reg.username, "password": reg.password,
         "ca_file": str(reg.ca_file)}
    )  # fmt: skip


@contextlib.contextmanager
def logged_in(reg: LocalRegistry, docker_config: Path) -> Iterator[None]:
    """DOCKER_CONFIG set to `docker_config`, holding a login for `reg`, for the block: for
    session- and module-scoped fixtures, which run before a test's own Docker config exists."""
    reg.login(docker_config)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_CONFIG", str(docker_config))
        yield


def no_test_world(why: str) -> NoReturn:
    """The test needs the HTTPS registry and this session cannot set it up: it skips, saying why,
    except inside GitHub Actions, where it fails. A runner's user is not root, so there every test
    of the registry would skip and `make test` pass with most of the integration suite unrun; the
    workflows run it as root (`make test AS_ROOT=1`), and a job that does not must not be green."""
    if INSIDE_GITHUB_ACTIONS:
        pytest.fail(
            f"{why}; inside GitHub Actions the suite must run as root: make test AS_ROOT=1",
            pytrace=False,
        )
    pytest.skip(why)


def start_registry(**kwargs: object) -> LocalRegistry:
    """A started LocalRegistry of a test's own (HTTPS with tokens unless `tls=False`); the test
    skips (fails inside GitHub Actions: no_test_world), saying why, where an HTTPS one cannot be
    set up (not root)."""
    if kwargs.get("tls", True):
        why = trust.can_install()
        if why is not None:
            no_test_world(f"an HTTPS test registry needs root: {why}")
    return LocalRegistry(**kwargs).start()  # type: ignore[arg-type]


@pytest.fixture
def own_registry() -> Iterator[LocalRegistry]:
    """An HTTPS token-auth registry of this test's own, which the test may stop or break."""
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def session_registry() -> Iterator[LocalRegistry]:
    spec = os.environ.get(ATTACH_VAR)
    if spec:
        yield attached(spec)
        return
    why = trust.can_install()
    if why is not None:
        no_test_world(
            "needs the HTTPS token-auth test registry: mapping its name in /etc/hosts and "
            f"installing its CA in /etc/docker/certs.d needs root ({why}), and no root-prepared "
            f"registry was given ({ATTACH_VAR})"
        )
    # Its own private temp dir (in memory where possible; removed on stop): see
    # playbookctl_dev.registry.
    with LocalRegistry() as reg:
        yield reg


@pytest.fixture(autouse=True)
def _registry_login(request: pytest.FixtureRequest, _isolate_home: None) -> None:
    """Every test that uses the session registry (directly, or through `base_image` and the
    like) has a login for it in its own Docker config, as `docker login` leaves it."""
    if "session_registry" in request.fixturenames:
        reg: LocalRegistry = request.getfixturevalue("session_registry")
        reg.login(Path(os.environ["DOCKER_CONFIG"]))


@pytest.fixture
def registry(request: pytest.FixtureRequest, _isolate_home: None) -> LocalRegistry:
    """The session's HTTPS token-auth registry, logged in to in this test's Docker config.

    The plain-HTTP loopback one instead for a test marked `plain_http`, and for a test that
    uses `fault_proxy` (a plain-HTTP proxy in front of the plain registry: the test's direct
    reads and its reads through the proxy see the same storage)."""
    if "fault_proxy" in request.fixturenames or request.node.get_closest_marker("plain_http"):
        plain: LocalRegistry = request.getfixturevalue("plain_registry")
        return plain
    reg: LocalRegistry = request.getfixturevalue("session_registry")
    reg.login(Path(os.environ["DOCKER_CONFIG"]))
    return reg


@pytest.fixture(scope="session")
def plain_registry() -> Iterator[LocalRegistry]:
    """Plain HTTP on 127.0.0.1, no auth: what a loopback demo registry is."""
    with LocalRegistry(tls=False) as reg:
        yield reg


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[LocalRegistry]:
    """A plain-HTTP loopback registry that demands a Basic login (htpasswd); `.username` /
    `.password` are the htpasswd user's."""
    with LocalRegistry(tls=False, auth="htpasswd") as reg:
        yield reg


@pytest.fixture
def fault_proxy(plain_registry: LocalRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(plain_registry.host) as proxy:
        yield proxy


@pytest.fixture
def registry_config(registry: LocalRegistry, tmp_path: Path) -> Config:
    """A Config pointing at the session registry, with short timeouts for fast failure tests."""
    return Config(root=tmp_path, registry=registry.host, registry_timeout=5.0)
