"""Shared fixtures. Real components only: the plugins below start a loopback OCI registry, a
Docker engine (or use the one a CI runner already has) and bare git remotes in temp directories."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import STAND_IN_CACHE

pytest_plugins = [
    "tests.support.registry",
    "tests.support.docker_engine",
    "tests.support.gitrepos",
    "tests.support.tls",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
# The vendored consumer references (Kubernaut CRDs, Tekton swagger and conformance corpus), each
# with its PROVENANCE.json: tests read these, never anything beside the checkout.
REFERENCES = REPO_ROOT / "tests" / "references"
# On GitHub nothing is beside the checkout. A test that opens `<repo>/../shared` (where a
# developer's machine may keep reference material) would pass here and fail there, so the whole
# session refuses it. An audit hook sees every open()/listdir/scandir of this process.
FORBIDDEN = str(REPO_ROOT.parent / "shared")
_GUARDED_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})


class OutsideCheckoutError(PermissionError):
    """A test reached for a file beside the checkout."""


def forbidden_path(path: object) -> bool:
    """Whether `path` (as given to open/listdir/scandir) is under `<repo>/../shared`."""
    if isinstance(path, int) or path is None:
        return False  # a file descriptor: its path was checked when it was opened
    try:
        text = os.path.abspath(os.fsdecode(path))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return text == FORBIDDEN or text.startswith(FORBIDDEN + os.sep)


def _refuse_outside_checkout(event: str, args: tuple[Any, ...]) -> None:
    if event in _GUARDED_EVENTS and args and forbidden_path(args[0]):
        raise OutsideCheckoutError(
            f"a test opened {args[0]!r}, beside the checkout: tests read only the repository "
            "(vendored references are in tests/references/, see README 'References')"
        )


sys.addaudithook(_refuse_outside_checkout)


@pytest.fixture(autouse=True)
def _isolate_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing a test runs may write to the real home directory or the real Docker config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.invalid")
    # The stand-in's mirror is the machine's (a proxy or a local copy of Debian's archive).
    mirror = os.environ.get("PLAYBOOKCTL_STAND_IN_MIRROR")
    for var in list(os.environ):
        if var.startswith(("PLAYBOOKCTL_", "GITHUB_")):
            monkeypatch.delenv(var)
    if mirror:
        monkeypatch.setenv("PLAYBOOKCTL_STAND_IN_MIRROR", mirror)
    # The stand-in base's downloaded packages and layers, shared by every test (`dev up` too):
    # built once per machine, in the system's temporary directory.
    monkeypatch.setenv("PLAYBOOKCTL_STAND_IN_CACHE", str(STAND_IN_CACHE))


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def references() -> Path:
    """tests/references/: the vendored consumer references."""
    return REFERENCES
