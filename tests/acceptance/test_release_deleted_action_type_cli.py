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
from playbookctl_dev.sample_repo import write_action_type
from tests.support.engineless import release_without_engine, released_without_engine
from tests.support.gitrepos import MakeRepo, PlaybookRepo, git

pytestmark = pytest.mark.integration


def test_deleting_an_action_type_a_registration_names_is_refused_by_the_release(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = released_without_engine(
        monkeypatch, registry, "at-gone", playbook_repo_factory, {"alpha": "1.0.0"}
    )
    root = str(repo.path)

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


def _released_with_beta_on_its_own_action_type(
    repo_factory: MakeRepo, registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch, tag: str
) -> PlaybookRepo:
    release_without_engine(monkeypatch, registry, tag)
    repo = repo_factory({"alpha": "1.0.0"})
    write_action_type(repo.path, "ScaleDown")
    repo.write_playbook("beta", "1.0.0", action_type="ScaleDown")
    repo.commit_all("beta, on an ActionType of its own")
    repo.push()
    assert main(["-C", str(repo.path), "release"]) == 0
    repo.git("pull", "--quiet", "--ff-only")
    assert (repo.path / "registry/workflows/beta.yaml").is_file()
    return repo


def _errors(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, [line for line in out.splitlines() if ": error [" in line]


def test_a_pull_request_deleting_a_playbook_with_its_action_type_is_told_to_run_register(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The natural pull request deletes playbooks/beta/ and the ActionType only beta names.
    The gate's lint and verify fail on beta's registration, which the release would remove;
    README's remedy (the pull request runs `playbookctl register`) is what both now say, and
    with it the gate passes and the release goes through."""
    repo = _released_with_beta_on_its_own_action_type(
        playbook_repo_factory, registry, monkeypatch, "pr-delete"
    )
    root = str(repo.path)
    git(repo.path, "rm", "-rq", "playbooks/beta", "registry/action-types/scale-down.yaml")
    repo.commit_all("delete beta and its ActionType")
    capsys.readouterr()

    code, errors = _errors(capsys, "-C", root, "lint", "--no-external")
    assert code == 1
    (error,) = errors
    assert error.startswith("registry/workflows/beta.yaml:")
    assert "[workflow.action-type] spec.actionType 'ScaleDown' names no ActionType" in error
    assert "playbooks/beta/ is gone" in error
    assert "run `playbookctl register` to remove it in this pull request" in error
    code, errors = _errors(capsys, "-C", root, "verify", "--offline")
    assert code == 1
    assert any("playbooks/beta/ is gone" in e and "playbookctl register" in e for e in errors)
    assert any(
        "action-types/scale-down.yaml does not exist (`playbookctl register` regenerates" in e
        for e in errors
    ), errors

    # The remedy, as the messages give it.
    assert main(["-C", root, "register"]) == 0
    repo.commit_all("register")
    capsys.readouterr()
    assert _errors(capsys, "-C", root, "lint", "--no-external") == (0, [])
    assert _errors(capsys, "-C", root, "verify", "--offline") == (0, [])
    base = repo.remote_head()
    assert main(["-C", root, "plan", "--base", base, "--forbid-generated-changes"]) == 0
    repo.push()
    assert main(["-C", root, "release"]) == 0


def test_a_pull_request_moving_a_playbook_off_an_action_type_it_deletes_is_told_to_keep_it(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """beta moves to RestartDeployment and ScaleDown is deleted in the same pull request: the
    registered beta, which the cluster runs until the release, still names ScaleDown, so lint
    and register say to keep the ActionType a release long, not only that it is missing."""
    repo = _released_with_beta_on_its_own_action_type(
        playbook_repo_factory, registry, monkeypatch, "pr-move"
    )
    root = str(repo.path)
    repo.write_playbook("beta", "1.1.0", action_type="RestartDeployment")
    git(repo.path, "rm", "-q", "registry/action-types/scale-down.yaml")
    repo.commit_all("beta to RestartDeployment, ScaleDown deleted")
    capsys.readouterr()
    keep = (
        "it is the registered version of beta, which the cluster runs until a release "
        "registers playbooks/beta/ (which names 'RestartDeployment'): keep ActionType "
        "'ScaleDown' until then"
    )
    code, errors = _errors(capsys, "-C", root, "lint", "--no-external")
    assert code == 1
    (error,) = errors
    assert error.startswith("registry/workflows/beta.yaml:")
    assert keep in error
    assert main(["-C", root, "register"]) == 1
    err = capsys.readouterr().err
    assert "refusing to register: registry/workflows/beta.yaml:" in err
    assert keep in err
