"""A local loop cannot hurt main: registrations pinned to a loopback registry reach only a
remote on this machine. Through the CLI, with real git remotes and the real loopback registry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import TEST_BASE_IMAGE, MakeRepo, git

# The dev loop's registry is plain HTTP on a literal loopback address (what `dev up` runs), not
# the test world's HTTPS registry, whose name only resolves to loopback.
pytestmark = [pytest.mark.integration, pytest.mark.plain_http]


@pytest.fixture
def loopback_env(
    registry: LocalRegistry,
    session_registry: LocalRegistry,
    base_image: str,
    docker_engine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> LocalRegistry:
    # The stand-in base lives in the session's token registry: log in to read it.
    session_registry.login(Path(os.environ["DOCKER_CONFIG"]))
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", registry.host)
    monkeypatch.setenv("PLAYBOOKCTL_IMAGE_REPO", "loopback/images")
    monkeypatch.setenv("PLAYBOOKCTL_BUNDLE_REPO", "loopback/bundles")
    monkeypatch.setenv(
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", json.dumps({TEST_BASE_IMAGE: base_image})
    )
    return registry


@pytest.mark.parametrize(
    "push_url",
    ["git@github.com:example/playbooks.git", "https://github.com/example/playbooks.git"],
)
def test_release_refuses_loopback_registrations_for_a_remote_off_this_machine(
    playbook_repo_factory: MakeRepo,
    loopback_env: LocalRegistry,
    push_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    # origin fetches from the bare remote but pushes to the real repository, as a
    # contributor's clone would (the bare remote shows whether anything was pushed).
    git(repo.path, "remote", "set-url", "--push", "origin", push_url)
    before = repo.remote_head()
    head = repo.head()

    assert main(["-C", str(repo.path), "release"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("playbookctl: error:")]
    assert len(lines) == 1, err
    assert f"loopback registry {loopback_env.host}" in lines[0]
    assert push_url in lines[0]
    assert "playbookctl dev remote" in lines[0]
    assert repo.remote_head() == before
    assert repo.head() == head  # no release commit made either
    assert "publishing" not in err  # refused before anything was built or pushed


def test_dev_remote_is_the_safe_local_recipe(
    playbook_repo_factory: MakeRepo,
    loopback_env: LocalRegistry,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    git(repo.path, "remote", "set-url", "--push", "origin", "git@github.com:example/pb.git")
    origin_before, head = repo.remote_head(), repo.head()
    root = str(repo.path)

    assert main(["-C", root, "dev", "remote"]) == 0
    err = capsys.readouterr().err
    assert "playbookctl release --remote dev" in err
    assert main(["-C", root, "dev", "remote"]) == 0  # idempotent: the same remote, updated
    capsys.readouterr()
    dev_url = git(repo.path, "remote", "get-url", "dev")
    assert dev_url.endswith("dev-remote.git")

    assert main(["-C", root, "release", "--remote", "dev", "--branch", "dev-release"]) == 0
    released = git(repo.path, "--git-dir", dev_url, "rev-parse", "refs/heads/dev-release")
    registration = git(
        repo.path, "--git-dir", dev_url, "show", f"{released}:registry/workflows/alpha.yaml"
    )
    assert loopback_env.host in registration
    # Nothing reached origin, and the checked-out branch is untouched.
    assert repo.remote_head() == origin_before
    assert repo.head() == head


def test_dev_remote_refuses_a_name_taken_by_another_remote(
    playbook_repo_factory: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    assert main(["-C", str(repo.path), "dev", "remote", "--name", "origin"]) == 1
    err = capsys.readouterr().err
    assert "remote 'origin' already exists" in err


def test_a_dev_registry_on_a_new_port_is_noticed_by_plan_and_verify(
    playbook_repo_factory: MakeRepo,
    loopback_env: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`dev down` then `dev up`: the registry answers on another port, and the registrations
    still pin the old one, which answers no more. plan must not call them up to date, verify
    says why, and a release publishes and registers there again."""
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    root = str(repo.path)
    with LocalRegistry(tls=False) as before:
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", before.host)
        assert main(["-C", root, "release"]) == 0
        assert main(["-C", root, "plan"]) == 0
        assert "up-to-date" in capsys.readouterr().out
        # While the old registry still runs, a pin on it is not "moved": it stays the proof's
        # and verify's business (a forged registration looks the same offline).
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", loopback_env.host)
        assert main(["-C", root, "plan", "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out)["publish"] == []
    old = before.host

    with LocalRegistry(tls=False) as moved:
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", moved.host)
        assert main(["-C", root, "plan", "--format", "json"]) == 0
        entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)["playbooks"]}
        assert entries["alpha"]["status"] == "publish"
        assert old in entries["alpha"]["reason"]
        assert moved.host in entries["alpha"]["reason"]

        assert main(["-C", root, "verify"]) == 1
        out = capsys.readouterr()
        text = out.out + out.err
        assert "verify.location" in text
        assert f"registered in registry {old}" in text
        assert "release again" in text

        assert main(["-C", root, "release"]) == 0
        capsys.readouterr()
        registration = git(repo.remote, "show", "refs/heads/main:registry/workflows/alpha.yaml")
        assert moved.host in registration
        assert old not in registration
        assert main(["-C", root, "verify"]) == 0, capsys.readouterr()
