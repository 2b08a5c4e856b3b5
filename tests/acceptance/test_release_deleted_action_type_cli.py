"""An ActionType deleted while a registered workflow still names it is not released.

A pull request that deletes `registry/action-types/<x>.yaml` while a registration names that
ActionType is a lint error (workflow.action-type, on the registration). Merged anyway, the
release used to regenerate the kustomization without the ActionType, commit and push it: Argo CD
prunes the ActionType, and the cluster refuses the workflows that name it. register (so the
release) now refuses it first, with lint's own finding, before anything is committed or pushed.

Through the CLI, with real git remotes and the real HTTPS token-auth registry.
"""

from __future__ import annotations

import json

import pytest

from playbookctl.cli import main
from playbookctl_dev.registry import LocalRegistry
from tests.support.engineless import release_without_engine
from tests.support.gitrepos import MakeRepo, git

pytestmark = pytest.mark.integration


def test_deleting_an_action_type_a_registration_names_is_refused_by_the_release(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release_without_engine(monkeypatch, registry, "at-gone")
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    root = str(repo.path)
    assert main(["-C", root, "release"]) == 0
    repo.git("pull", "--quiet", "--ff-only")

    git(repo.path, "rm", "--quiet", "registry/action-types/restart-deployment.yaml")
    repo.commit_all("drop the RestartDeployment ActionType")
    repo.push()
    pushed = repo.remote_head()
    capsys.readouterr()
    # What the pull request's lint said.
    assert main(["-C", root, "lint", "--no-external", "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)
    first = next(
        f
        for f in findings
        if f["rule"] == "workflow.action-type" and f["file"] == "registry/workflows/alpha.yaml"
    )
    where = f"registry/workflows/alpha.yaml:{first['line']}:{first['column']}"

    assert main(["-C", root, "release"]) == 1
    err = capsys.readouterr().err
    assert f"refusing to register: {where}: [workflow.action-type]" in err, err
    assert repo.remote_head() == pushed  # nothing committed or pushed
    assert not repo.git("status", "--porcelain")
    assert (repo.path / "registry/workflows/alpha.yaml").is_file()
    assert (
        "action-types/restart-deployment.yaml"
        in (repo.path / "registry/kustomization.yaml").read_text()
    )
