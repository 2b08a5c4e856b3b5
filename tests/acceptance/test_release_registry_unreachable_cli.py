"""A release that cannot ask the registry says so in one line, and gives no wrong advice.

Before it skips a registered playbook, a release (and the release workflow's
`plan --verify-registrations`) asks the registry whether the registration is borne out. When the
registry cannot be asked at all (it is down, or it refuses the run's credentials: an expired or
revoked token), nothing about any registration is known: the run must stop with the registry's
own problem, once, before anything is built, pushed or committed. It used to refuse every
registered playbook as "not borne out by the registry ... not published by a release; restore
the registration the release wrote, or bump the version": one such line per playbook, and advice
that is wrong (the registrations are fine; bumping would spend a version for nothing).

Through the CLI, with real git remotes and real HTTPS token-auth registries.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import TEST_BASE_IMAGE, MakeRepo, PlaybookRepo, git

pytestmark = pytest.mark.integration

NO_ENGINE = "unix:///nonexistent/docker.sock"  # RUN-less playbooks are assembled: no engine


def _released(
    factory: MakeRepo, reg: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> PlaybookRepo:
    """alpha and beta released to `reg` by a user logged in to it; then alpha changed and
    bumped, so the next release has work to do (and beta's registration to take on trust)."""
    reg.login(Path(os.environ["DOCKER_CONFIG"]))
    base = f"{reg.host}/test-base/unreachable:1"
    push_base_image(reg.host, base)
    for key, value in {
        "DOCKER_HOST": NO_ENGINE,
        "PLAYBOOKCTL_REGISTRY": reg.host,
        "PLAYBOOKCTL_IMAGE_REPO": "unreachable/images",
        "PLAYBOOKCTL_BUNDLE_REPO": "unreachable/bundles",
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES": json.dumps({TEST_BASE_IMAGE: base}),
        # A registry that does not answer fails fast, as it would after its retries.
        "PLAYBOOKCTL_REGISTRY_TIMEOUT": "2",
        "PLAYBOOKCTL_REGISTRY_DEADLINE": "4",
        "PLAYBOOKCTL_REGISTRY_RETRIES": "1",
    }.items():
        monkeypatch.setenv(key, value)
    repo = factory({"alpha": "1.0.0", "beta": "2.0.0"})
    assert main(["-C", str(repo.path), "release"]) == 0
    repo.git("pull", "--quiet", "--ff-only")
    repo.write_playbook("alpha", "1.0.1")
    repo.commit_all("alpha 1.0.1")
    repo.push()
    return repo


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("playbookctl: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_release_whose_registry_is_down_fails_in_one_line_not_as_an_internal_error(
    playbook_repo_factory: MakeRepo,
    own_registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The token prefetch before the registrations are checked pings the registry once; a
    registry that does not answer at all (down, its name gone) made that ping raise past its
    best-effort handler: exit 3, "this is a bug in playbookctl"."""
    repo = _released(playbook_repo_factory, own_registry, monkeypatch)
    remote_before = repo.remote_head()
    own_registry.stop()
    capsys.readouterr()
    for args in (["release"], ["plan", "--verify-registrations"]):
        assert main(["-C", str(repo.path), *args]) == 1, args
        line = _one_error_line(capsys.readouterr().err)
        assert "internal error" not in line
        assert own_registry.host in line
    assert repo.remote_head() == remote_before


@pytest.mark.parametrize("how", ["credentials-refused", "registry-down"])
def test_a_release_that_cannot_ask_the_registry_stops_with_its_problem_once(
    playbook_repo_factory: MakeRepo,
    own_registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    repo = _released(playbook_repo_factory, own_registry, monkeypatch)
    registrations = git(repo.path, "rev-parse", "HEAD:registry")
    remote_before, head_before = repo.remote_head(), repo.head()
    if how == "credentials-refused":  # a revoked or expired secret in the user's login
        own_registry.login(Path(os.environ["DOCKER_CONFIG"]), password="not-the-password")
        cause = "authentication failed"
    else:
        own_registry.stop()
        cause = own_registry.host
    capsys.readouterr()

    assert main(["-C", str(repo.path), "release"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("playbookctl: error: cannot check registry/workflows/"), line
    assert cause in line
    assert "bump" not in line
    assert "restore the registration" not in line
    assert "not borne out" not in line
    # Nothing built, pushed or committed.
    assert repo.remote_head() == remote_before
    assert repo.head() == head_before
    assert git(repo.path, "rev-parse", "HEAD:registry") == registrations
    assert not repo.git("status", "--porcelain")

    # The release workflow's plan job says the same, once.
    assert main(["-C", str(repo.path), "plan", "--verify-registrations"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("playbookctl: error: cannot check registry/workflows/"), line
    assert cause in line
    assert "refused" not in line
