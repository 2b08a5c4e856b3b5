"""A release that refuses several playbooks says so one a line, as plan does.

It used to join every refusal with "; " into one line: some 70 KB for 200 playbooks, which no
log viewer shows whole and no one reads. Each refused playbook is now a line of its own,
`playbookctl: error: release refused: <name>: <why>`, the same refusals plan prints.

Through the CLI, with a real git remote and the real HTTPS token-auth registry.
"""

from __future__ import annotations

import pytest

from playbookctl_dev.registry import LocalRegistry
from tests.support.clirun import run
from tests.support.engineless import release_without_engine
from tests.support.gitrepos import MakeRepo

pytestmark = pytest.mark.integration


def test_a_release_refusing_several_playbooks_prints_one_line_each(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release_without_engine(monkeypatch, registry, "refusals")
    names = ("alpha", "beta", "gamma")
    repo = playbook_repo_factory(dict.fromkeys(names, "1.0.0"))
    root = str(repo.path)
    code, _, err = run(capsys, "-C", root, "release")
    assert code == 0, err
    repo.git("pull", "--quiet", "--ff-only")
    for name in names:
        repo.write_playbook(name, "1.0.0", marker="changed without a bump")
    repo.commit_all("change three playbooks without a bump")
    repo.push()
    pushed = repo.remote_head()

    code, _, planned = run(capsys, "-C", root, "plan")
    assert code == 1
    code, out, err = run(capsys, "-C", root, "release")
    assert code == 1, out + err
    lines = err.splitlines()
    refused = [line for line in lines if "refused" in line]
    assert len(refused) == len(names), err
    for name, line in zip(names, refused, strict=True):
        assert line.startswith(f"playbookctl: error: release refused: {name}: content changed")
        # The same refusal plan prints on a line of its own.
        assert f"playbookctl: refused: {name}: {line.split(f'{name}: ', 1)[1]}" in planned
    assert repo.remote_head() == pushed  # nothing committed or pushed
