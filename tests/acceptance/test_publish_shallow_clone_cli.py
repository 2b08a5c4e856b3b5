"""A publish from a shallow clone does not record the wrong revision.

An image and its bundle record the revision they were made from: the last commit that touched
the playbook's directory, not the run's HEAD, so that releases of the same content from any
clone and any later commit push the same bytes (README "Same content, same bytes"; the
revision's commit time is the image layers' clamped mtime too). A shallow clone
(actions/checkout's default, fetch-depth 1) does not hold that commit: `git log` there stops at
the clone's boundary, which seems to touch every path. publish used to take the boundary for
the revision, silently: a release job in such a clone pushed other bytes, and another
provenance, than any full clone of the same commit. It now refuses, saying to fetch more
history, before anything is pushed; a dry run (the pull request's build) still runs there.

Through the CLI, with real git remotes and the real HTTPS token-auth registry.
"""

from __future__ import annotations

import json

import pytest

from playbookctl.bundle import ANNOTATION_REVISION
from playbookctl.cli import main
from playbookctl.config import load_config
from playbookctl.oci import RegistryClient
from playbookctl_dev.registry import LocalRegistry
from tests.support.engineless import release_without_engine
from tests.support.gitrepos import MakeRepo, git

pytestmark = pytest.mark.integration


def test_publish_in_a_shallow_clone_asks_for_history_instead_of_recording_the_wrong_revision(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release_without_engine(monkeypatch, registry, "shallow")
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    alpha_commit = repo.head()
    # A later merge that does not touch alpha: the commit a release job checks out.
    (repo.path / "NOTES.md").write_text("unrelated\n")
    repo.commit_all("notes")
    repo.push()

    shallow = tmp_path_factory.mktemp("ci") / "checkout"
    git(shallow.parent, "clone", "--quiet", "--depth", "1", repo.remote.as_uri(), str(shallow))
    capsys.readouterr()
    assert main(["-C", str(shallow), "publish", "alpha"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("playbookctl: ")]
    assert lines, err
    assert "shallow clone" in err
    assert "playbooks/alpha" in err
    assert "fetch-depth: 0" in err
    config = load_config(shallow)
    with RegistryClient(config) as client:  # nothing pushed
        assert client.resolve(f"{config.bundle_ref('alpha')}:1.0.0") is None
        assert client.resolve(f"{config.image_ref('alpha')}:1.0.0") is None
    # A dry run (the pull request's build, a shallow checkout too) still runs.
    assert main(["-C", str(shallow), "publish", "alpha", "--dry-run"]) == 0

    # With the history, the revision is alpha's own commit, as from a full clone.
    git(shallow, "fetch", "--quiet", "--unshallow", "origin")
    assert main(["-C", str(shallow), "publish", "alpha"]) == 0
    with RegistryClient(config) as client:
        manifest, _, _ = client.get_manifest(f"{config.bundle_ref('alpha')}:1.0.0")
    annotations = json.loads(manifest)["annotations"]
    assert annotations[ANNOTATION_REVISION] == alpha_commit
