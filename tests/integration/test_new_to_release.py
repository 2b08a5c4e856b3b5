"""`playbookctl new` to a registered, verified playbook, as a first-time contributor goes (issue 8).

Everything through the CLI, on a real bare git remote, the loopback registry and the Docker
engine: new (with a brand-new ActionType), lint, commit, push, release, verify. The files `new`
wrote are released as they stand; the only stand-in is the base image (tests never pull a public
image), mapped through PLAYBOOKCTL_BASE_IMAGE_OVERRIDES as the README documents.
"""

from __future__ import annotations

import json

import pytest
import yaml

from playbookctl.cli import main
from playbookctl.scaffold import BASE_IMAGE
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import MakeRepo, git

pytestmark = pytest.mark.integration


def test_new_then_release_then_verify(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    docker_engine: str,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = playbook_repo_factory({})  # an ActionType RestartDeployment, no playbook yet
    root = str(repo.path)
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", registry.host)
    monkeypatch.setenv("PLAYBOOKCTL_IMAGE_REPO", "new-to-release/images")
    monkeypatch.setenv("PLAYBOOKCTL_BUNDLE_REPO", "new-to-release/bundles")
    monkeypatch.setenv("PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", json.dumps({BASE_IMAGE: base_image}))

    assert main(["-C", root, "new", "fix-thing", "--action-type", "FixThing"]) == 0
    out = capsys.readouterr().out
    assert "created ActionType FixThing in registry/action-types/fix-thing.yaml" in out

    # lint passes as the pull request runs it (hadolint and shellcheck included): warnings
    # only, and exactly for the placeholders left to fill in
    assert main(["-C", root, "lint", "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    # info: what lint cannot check statically (the scaffold's `kubectl get "$KIND"`)
    assert {f["rule"] for f in findings if f["severity"] == "info"} <= {"script.unchecked"}
    findings = [f for f in findings if f["severity"] != "info"]
    assert {f["severity"] for f in findings} == {"warning"}
    assert {f["rule"] for f in findings} == {
        "playbook.placeholder-text",
        "action-type.placeholder-text",
    }

    repo.commit_all("add fix-thing")
    repo.push()
    # git kept the script's executable bit (playbook.executable would have said otherwise)
    staged = git(repo.path, "ls-files", "--stage", "playbooks/fix-thing/remediate.sh")
    assert staged.startswith("100755 ")

    assert main(["-C", root, "release"]) == 0
    out = capsys.readouterr().out
    assert "fix-thing" in out
    assert "pushed" in out

    # registered: the remote's registry/ holds it, the kustomization lists it and the
    # ActionType, and the ActionType's sync wave orders it first
    kustomization = yaml.safe_load(
        git(repo.remote, "show", "refs/heads/main:registry/kustomization.yaml")
    )
    assert "workflows/fix-thing.yaml" in kustomization["resources"]
    assert "action-types/fix-thing.yaml" in kustomization["resources"]
    docs = list(
        yaml.safe_load_all(
            git(repo.remote, "show", "refs/heads/main:registry/workflows/fix-thing.yaml")
        )
    )
    workflow = docs[-1]
    assert workflow["kind"] == "RemediationWorkflow"
    assert workflow["spec"]["execution"]["bundle"].startswith(
        f"{registry.host}/new-to-release/bundles/fix-thing:0.1.0@sha256:"
    )

    # verified: every registration's bundle and image are in the registry at their digests
    git(repo.path, "pull", "--quiet", "--ff-only", "origin", "main")
    assert main(["-C", root, "verify"]) == 0, capsys.readouterr()
    # and a second release has nothing to do
    assert main(["-C", root, "release"]) == 0
    assert "no change: nothing committed, nothing pushed" in capsys.readouterr().out
