"""A run with no registry credentials at all is told so, not to "check the credentials".

On a CI runner the usual cause of a token service's 401 is a job that never logged in: no Docker
config, and the workflow's `PLAYBOOKCTL_REGISTRY_USERNAME`/`PASSWORD` missing, or half of the
pair empty (a secret that does not exist expands to ""). The token service then refuses the
anonymous request, and the one line used to end "check the credentials for <registry>": advice
about credentials that were never read. It now says none were found and how to give them, and
which half of the environment's pair is missing when only one is set.

Through the CLI, with a real git remote and the real HTTPS token-auth registry.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl_dev.registry import LocalRegistry
from tests.support.engineless import released_without_engine
from tests.support.gitrepos import MakeRepo, PlaybookRepo

pytestmark = pytest.mark.integration

_ids = itertools.count()


@pytest.fixture
def released(
    playbook_repo_factory: MakeRepo, registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> PlaybookRepo:
    """alpha released to the session registry by a logged-in user."""
    space = f"nocreds{next(_ids)}"
    return released_without_engine(
        monkeypatch, registry, space, playbook_repo_factory, {"alpha": "1.0.0"}
    )


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("playbookctl: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("env", "note"),
    [
        ({}, None),
        (
            {"PLAYBOOKCTL_REGISTRY_USERNAME": "", "PLAYBOOKCTL_REGISTRY_PASSWORD": "ghs_secret1"},
            "PLAYBOOKCTL_REGISTRY_PASSWORD is set but PLAYBOOKCTL_REGISTRY_USERNAME is empty or "
            "unset, so neither was used",
        ),
        (
            {"PLAYBOOKCTL_REGISTRY_USERNAME": "ci-bot"},
            "PLAYBOOKCTL_REGISTRY_USERNAME is set but PLAYBOOKCTL_REGISTRY_PASSWORD is unset, so "
            "neither was used",
        ),
    ],
    ids=["nothing", "username-empty", "password-unset"],
)
def test_a_run_without_credentials_is_told_none_were_found(
    released: PlaybookRepo,
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    note: str | None,
) -> None:
    repo = released
    remote_before = repo.remote_head()
    # A fresh runner: a Docker config without any login.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-login"))
    for name in ("PLAYBOOKCTL_REGISTRY_USERNAME", "PLAYBOOKCTL_REGISTRY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()

    # The release workflow's plan job: it reads the registry to check alpha's registration.
    assert main(["-C", str(repo.path), "plan", "--verify-registrations"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "authentication failed at its token service (HTTP 401)" in line, line
    assert f"no credentials found for {registry.host}: docker login, or set " in line, line
    assert "PLAYBOOKCTL_REGISTRY_USERNAME/PLAYBOOKCTL_REGISTRY_PASSWORD" in line, line
    assert "check the credentials" not in line, line
    if note is None:
        assert "neither was used" not in line, line
    else:
        assert note in line, line
    assert "ghs_secret1" not in line  # a variable is named, never its value
    assert repo.remote_head() == remote_before


def test_credentials_that_are_refused_are_still_to_be_checked(
    released: PlaybookRepo,
    registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The other side: a login the token service refuses keeps its advice."""
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", registry.username)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", "not-the-password")
    capsys.readouterr()
    assert main(["-C", str(released.path), "plan", "--verify-registrations"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"(HTTP 401); check the credentials for {registry.host}" in line, line
    assert "no credentials found" not in line, line
