"""Two playbooks may not define the same object: the plan refuses it, so no release pushes it.

registry/ is one kustomization that Argo CD builds and syncs whole. A playbook whose rbac.yaml
defines an object another playbook's registration defines too (a Role named like a teammate's,
copied from their playbook) makes kustomize refuse to build registry/ at all ("may not add
resource with an already registered id"): nothing syncs any more, for any playbook. Lint did
not see it (each rbac.yaml is valid on its own; playbook.duplicate-object now reports it) and the
release used to commit and push it; only `verify` said so afterwards (verify.duplicate-object).
The plan now refuses the playbook that would bring the second definition, naming both files: on
the pull request (the gate's `plan --base`) and at release, before anything is built, pushed or
committed.

Through the CLI, with real git remotes and the real HTTPS token-auth registry.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl.config import load_config
from playbookctl.oci import RegistryClient
from playbookctl_dev.registry import LocalRegistry
from tests.support.engineless import released_without_engine
from tests.support.gitrepos import MakeRepo, PlaybookRepo, git

pytestmark = pytest.mark.integration

_ids = itertools.count()


@pytest.fixture
def released(
    playbook_repo_factory: MakeRepo, registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> PlaybookRepo:
    """alpha released to the session registry (no engine: its image is assembled)."""
    space = f"dup{next(_ids)}"
    return released_without_engine(
        monkeypatch, registry, space, playbook_repo_factory, {"alpha": "1.0.0"}
    )


def _add_dup_copying_alphas_role(repo: PlaybookRepo) -> Path:
    """dup, whose rbac.yaml names its Role and RoleBinding as alpha's are named."""
    d = repo.write_playbook("dup")
    rbac = d / "rbac.yaml"
    text = rbac.read_text()
    rbac.write_text(
        text.replace(
            "kind: Role\nmetadata:\n  name: dup-runner",
            "kind: Role\nmetadata:\n  name: alpha-runner",
        )
        .replace(
            "kind: RoleBinding\nmetadata:\n  name: dup-runner",
            "kind: RoleBinding\nmetadata:\n  name: alpha-runner",
        )
        .replace("kind: Role\n  name: dup-runner", "kind: Role\n  name: alpha-runner")
    )
    assert rbac.read_text().count("alpha-runner") == 3
    return rbac


def test_a_playbook_defining_another_registrations_object_is_refused_before_it_is_pushed(
    released: PlaybookRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = released
    main_before = repo.remote_head()
    git(repo.path, "checkout", "--quiet", "-b", "add-dup")
    _add_dup_copying_alphas_role(repo)
    repo.commit_all("add dup")
    # Each rbac.yaml is valid on its own, but lint reads them together: it says so first.
    capsys.readouterr()
    assert (
        main(["-C", str(repo.path), "lint", "--no-external", str(repo.path / "playbooks/dup")]) == 1
    )
    assert (
        "playbooks/dup/rbac.yaml:10:9: error [playbook.duplicate-object] playbooks/dup/rbac.yaml "
        "defines Role kubernaut-workflows/alpha-runner, which playbooks/alpha/rbac.yaml defines too"
    ) in capsys.readouterr().out
    refusal = (
        "refused: dup: playbooks/dup/rbac.yaml defines Role kubernaut-workflows/alpha-runner, "
        "which registry/workflows/alpha.yaml defines too: kustomize refuses to build registry/"
    )

    # The pull request's gate says so.
    capsys.readouterr()
    gate = ["plan", "--base", "origin/main", "--head", "HEAD", "--forbid-generated-changes"]
    assert main(["-C", str(repo.path), *gate]) == 1
    assert refusal in capsys.readouterr().err

    # Merged past the gate anyway: the release refuses it before building or pushing anything.
    git(repo.path, "checkout", "--quiet", "main")
    git(repo.path, "merge", "--quiet", "--ff-only", "add-dup")
    repo.push()
    pushed = repo.remote_head()
    capsys.readouterr()
    assert main(["-C", str(repo.path), "release"]) == 1
    err = capsys.readouterr().err
    assert "release refused: dup: playbooks/dup/rbac.yaml defines Role" in err
    assert repo.remote_head() == pushed  # nothing committed or pushed
    assert not (repo.path / "registry/workflows/dup.yaml").exists()
    config = load_config(repo.path)
    with RegistryClient(config) as client:  # nothing published
        assert client.resolve(f"{config.bundle_ref('dup')}:1.0.0") is None
        assert client.resolve(f"{config.image_ref('dup')}:1.0.0") is None
    assert main_before != pushed

    # Named on its own, it releases, and registry/ still builds.
    rbac = repo.path / "playbooks/dup/rbac.yaml"
    rbac.write_text(rbac.read_text().replace("alpha-runner", "dup-runner"))
    repo.commit_all("dup: a Role of its own")
    repo.push()
    assert main(["-C", str(repo.path), "release"]) == 0
    repo.git("pull", "--quiet", "--ff-only")
    capsys.readouterr()
    assert main(["-C", str(repo.path), "verify", "--offline"]) == 0, capsys.readouterr()


def test_two_new_playbooks_defining_one_object_are_both_refused(
    released: PlaybookRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = released
    for name in ("one", "two"):
        d = repo.write_playbook(name)
        rbac = d / "rbac.yaml"  # the same ClusterRole in both
        rbac.write_text(
            rbac.read_text()
            + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
            '  name: shared-reader\nrules:\n  - apiGroups: [""]\n    resources: [nodes]\n'
            "    verbs: [get]\n"
        )
    repo.commit_all("one and two")
    repo.push()
    pushed = repo.remote_head()
    capsys.readouterr()
    assert main(["-C", str(repo.path), "plan", "--format", "json"]) == 1
    out = capsys.readouterr()
    planned = json.loads(out.out)
    refused = {e["name"]: e["reason"] for e in planned["playbooks"] if e["status"] == "refused"}
    assert planned["refused"] == ["one", "two"]
    assert sorted(refused) == ["one", "two"], out
    assert refused["one"].startswith(
        "playbooks/one/rbac.yaml defines ClusterRole shared-reader, which "
        "playbooks/two/rbac.yaml defines too"
    )
    assert refused["two"].startswith(
        "playbooks/two/rbac.yaml defines ClusterRole shared-reader, which "
        "playbooks/one/rbac.yaml defines too"
    )
    assert main(["-C", str(repo.path), "release"]) == 1
    assert repo.remote_head() == pushed
