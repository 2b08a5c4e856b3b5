"""An ActionType file in a subdirectory of registry/action-types/ is an error, naming where it
must live.

registry/kustomization.yaml lists the files directly in registry/action-types/ (README: the
ActionType lives at `registry/action-types/<kebab-case of spec.name>.yaml`), and Argo CD syncs
only what it lists. A file at `registry/action-types/team/x.yaml` was neither listed nor
reported by lint or `verify --offline`: the pull request passed and the cluster never had the
ActionType. lint, verify and register (so the release) now report it as
`action-type.location`, and the file moved where the message says passes.

Through the CLI, on a real git repository.
"""

from __future__ import annotations

import pytest

from playbookctl_dev.sample_repo import write_action_type
from tests.support.clirun import run
from tests.support.gitrepos import MakeRepo, git

NESTED = "registry/action-types/team/scale-down.yaml"
WANTED = (
    f"{NESTED}:1:1: error [action-type.location] an ActionType file in a subdirectory of "
    "registry/action-types/ is not listed in registry/kustomization.yaml (register lists only "
    "the files directly in registry/action-types/), so Argo CD never syncs it: move it to "
    "registry/action-types/scale-down.yaml"
)


def test_an_action_type_in_a_subdirectory_is_reported_with_where_it_must_live(
    playbook_repo_factory: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    root = str(repo.path)
    flat = write_action_type(repo.path, "ScaleDown")
    nested = repo.path / NESTED
    nested.parent.mkdir()
    flat.rename(nested)
    repo.commit_all("ScaleDown, in a directory of its own")

    for argv in (
        ["lint", "--no-external"],
        ["lint", "--no-external", str(nested)],
        ["lint", "--no-external", str(repo.path / "registry")],
        ["verify", "--offline"],
    ):
        code, out, _ = run(capsys, "-C", root, *argv)
        assert code == 1, argv
        assert WANTED in out.splitlines(), (argv, out)
    kustomization = repo.path / "registry/kustomization.yaml"
    before = kustomization.read_text() if kustomization.exists() else None
    code, _, err = run(capsys, "-C", root, "register")
    assert code == 1
    assert "refusing to register: " + WANTED.replace(": error [", ": [") in err, err
    assert (kustomization.read_text() if kustomization.exists() else None) == before

    # Where the message says, it is an ActionType like any other.
    git(repo.path, "mv", NESTED, "registry/action-types/scale-down.yaml")
    code, out, _ = run(capsys, "-C", root, "lint", "--no-external")
    assert code == 0, out
    assert run(capsys, "-C", root, "register")[0] == 0
    assert "action-types/scale-down.yaml" in kustomization.read_text()
