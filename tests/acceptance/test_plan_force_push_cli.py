"""A force-push to main: the release plans without the base it was given, saying so.

After a force-push GitHub's `github.event.before` is the commit the push replaced, which no
fresh clone holds (nothing reachable names it). `plan --base` failed with "no such commit" and
that release run failed until the next push. Without a base the plan is the same (every
playbook is compared with its registration either way; a base only narrows what is listed),
so plan and release now plan every playbook against its registration, in one line saying why.
The pull-request gate (--forbid-generated-changes), which diffs against its base, still fails.

Through the CLI, with a real bare remote, a real force-push, a fresh clone over file:// (a
local-path clone would copy the replaced commit too) and the real HTTPS token-auth registry.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from playbookctl_dev.registry import LocalRegistry
from tests.support.clirun import run
from tests.support.engineless import released_without_engine
from tests.support.gitrepos import MakeRepo, git

pytestmark = pytest.mark.integration


def test_a_release_after_a_force_push_plans_without_the_base_it_lacks(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    repo = released_without_engine(
        monkeypatch, registry, "force-push", playbook_repo_factory, {"alpha": "1.0.0"}, capsys
    )

    repo.write_playbook("beta", "1.0.0")
    before = repo.commit_all("beta")
    repo.push()
    repo.git("reset", "--quiet", "--hard", "HEAD~1")
    repo.write_playbook("gamma", "1.0.0")
    after = repo.commit_all("gamma instead")
    repo.git("push", "--quiet", "--force", "origin", "HEAD:refs/heads/main")
    assert repo.remote_head() == after

    ci = tmp_path / "ci"
    git(tmp_path, "clone", "--quiet", f"file://{repo.remote}", str(ci))
    lacks = subprocess.run(["git", "cat-file", "-e", f"{before}^{{commit}}"], cwd=ci, check=False)
    assert lacks.returncode != 0  # what the release run's clone is given as its base
    note = (
        f"base {before} is not in this clone (history rewritten, such as a force-push): "
        "planning every playbook against its registration"
    )

    # The release workflow's plan job.
    code, out, err = run(
        capsys,
        "-C", str(ci),
        "plan", "--base", before, "--head", after, "--verify-registrations", "--format", "matrix",
    )  # fmt: skip
    assert code == 0, err
    assert err.splitlines() == [f"playbookctl: plan: {note}"]
    assert [e["name"] for e in json.loads(out)["include"]] == ["gamma"]
    # The gate needs its base: it still fails, naming it.
    gate = ("plan", "--base", before, "--forbid-generated-changes")
    code, _, err = run(capsys, "-C", str(ci), *gate)
    assert code == 1
    assert f"cannot resolve {before!r}: no such commit" in err

    code, out, err = run(capsys, "-C", str(ci), "release", "--base", before)
    assert code == 0, out + err
    assert f"note: {note}" in out + err
    git(ci, "pull", "--quiet", "--ff-only")
    assert (ci / "registry/workflows/gamma.yaml").is_file()
    assert not (ci / "registry/workflows/beta.yaml").exists()
    assert "alpha:1.0.0@sha256:" in (ci / "registry/workflows/alpha.yaml").read_text()
