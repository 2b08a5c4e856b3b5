"""Bad git situations through the command line: one clear line, exit 1, nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.cli import main
from tests.support.gitrepos import PlaybookRepo, git

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("shallow", "hint"),
    [
        (False, ""),
        (True, "; this is a shallow clone: fetch more history (actions/checkout fetch-depth: 0)"),
    ],
)
def test_missing_base_says_why(
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    shallow: bool,
    hint: str,
) -> None:
    playbook_repo.write_playbook("alpha", "1.1.0", marker="v2")
    playbook_repo.commit_all("bump")
    path = playbook_repo.path
    if shallow:
        # What actions/checkout makes by default: one commit, no parent to diff against.
        path = tmp_path / "shallow"
        git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{playbook_repo.path}", str(path))
    assert main(["-C", str(path), "plan", "--base", "HEAD~50"]) == 1
    err = capsys.readouterr().err
    assert err == f"playbookctl: error: cannot resolve 'HEAD~50': no such commit in {path}{hint}\n"
