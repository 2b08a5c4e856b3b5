"""A registry that lost what the registrations pin: the release says so, with advice that works.

Storage wiped or garbage-collected (or the configured registry is another one at the same
address): every registration in git pins a bundle the registry no longer holds. The release
used to refuse each as "not published by a release; restore the registration the release
wrote, or bump the version": the registration was exactly what the release wrote, and
restoring it changes nothing. It now says the registry does not hold what is pinned, and why
that happens.

Through the CLI, with a real git remote and the real HTTPS token-auth registry, its storage
for this test's namespace removed on disk.
"""

from __future__ import annotations

import shutil

import pytest

from playbookctl_dev.registry import LocalRegistry
from tests.support.clirun import run
from tests.support.engineless import released_without_engine
from tests.support.gitrepos import MakeRepo

pytestmark = pytest.mark.integration


def _wipe(registry: LocalRegistry, space: str) -> None:
    """What a wiped or garbage-collected registry leaves of the namespace's images and bundles:
    nothing (the base image's stand-in, a mirror of a public base elsewhere, is left)."""
    assert registry.data_dir is not None
    for what in ("images", "bundles"):
        where = registry.data_dir / "docker/registry/v2/repositories" / space / what
        assert where.is_dir(), where
        shutil.rmtree(where)


def test_a_release_against_a_registry_that_lost_the_bundles_says_so(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = released_without_engine(
        monkeypatch, registry, "lost", playbook_repo_factory, {"alpha": "1.0.0"}, capsys
    )
    root = str(repo.path)
    pushed = repo.remote_head()

    _wipe(registry, "lost")
    code, out, err = run(capsys, "-C", root, "release")
    assert code == 1, out + err
    bundle = repo.git("show", "HEAD:registry/workflows/alpha.yaml").split("bundle: ")[1].split()[0]
    released = repo.git("log", "-1", "--format=%h", "--abbrev=12", "--", "registry/workflows")
    assert (
        f"release refused: alpha: the registry does not hold {bundle} that "
        "registry/workflows/alpha.yaml pins (the registry lost it: wiped, garbage-collected, or "
        f"a different registry; the release that registered it in {released} published it); "
        "restore the registry's storage, or bump the version (`playbookctl bump alpha patch`)"
    ) in err, err
    assert "not published by a release" not in err
    assert "restore the registration" not in err
    assert repo.remote_head() == pushed  # nothing committed or pushed
    # The release workflow's plan job refuses it the same way, before any job publishes.
    code, _, err = run(capsys, "-C", root, "plan", "--verify-registrations")
    assert code == 1
    assert "the registry lost it" in err, err

    # The advice works: a new version is published and registered.
    code, _, err = run(capsys, "-C", root, "bump", "alpha", "patch")
    assert code == 0, err
    repo.commit_all("alpha 1.0.1: the registry lost 1.0.0")
    repo.push()
    code, out, err = run(capsys, "-C", root, "release")
    assert code == 0, out + err
    repo.git("pull", "--quiet", "--ff-only")
    assert "alpha:1.0.1@sha256:" in (repo.path / "registry/workflows/alpha.yaml").read_text()
