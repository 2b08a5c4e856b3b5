"""Through the CLI: a tab in the indentation says "tab", a duplicate key is one finding.

Each file a playbook repository holds is tried (workflow.yaml, pipeline.yaml, rbac.yaml, an
ActionType, an Argo CD file of registry/), with the repository linted whole and with the same
files named more than once on the command line (as pre-commit passes them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from playbookctl.cli import main
from tests.support.lintrepo import edit, good_playbook, make_repo

REPO = Path(__file__).resolve().parents[2]
PB = "playbooks/restart-deployment"
FILES = {
    f"{PB}/workflow.yaml": "  namespace: kubernaut-system\n",
    f"{PB}/pipeline.yaml": "  name: workflow\n",
    f"{PB}/rbac.yaml": '    verbs: ["get", "patch"]\n',
    "registry/action-types/restart-deployment.yaml": "  namespace: kubernaut-system\n",
    "registry/argocd/application.yaml": "  project: kubernaut-playbooks\n",
}


def _repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(good_playbook(pipeline=True))})
    shutil.copytree(REPO / "registry" / "argocd", root / "registry" / "argocd")
    return root


def _lint(root: Path, capsys: pytest.CaptureFixture[str], *paths: str) -> list[dict[str, object]]:
    capsys.readouterr()
    main(["-C", str(root), "lint", "--no-external", "--format", "json", *paths])
    findings: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return findings


@pytest.mark.parametrize("rel", sorted(FILES))
def test_a_duplicate_key_is_one_finding(
    tmp_path: Path, rel: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _repo(tmp_path)
    assert _lint(root, capsys) == []
    path = root / rel
    line = FILES[rel]
    path.write_text(edit(path.read_text(), line, line + line))
    named = [str(root / p) for p in (PB, f"{PB}/workflow.yaml", rel, "registry")]
    for paths in [[], named]:
        errors = [f for f in _lint(root, capsys, *paths) if f["severity"] == "error"]
        assert [(f["file"], f["rule"]) for f in errors] == [(rel, "load.duplicate-key")], paths


@pytest.mark.parametrize("rel", sorted(FILES))
def test_a_tab_in_the_indentation_says_tab(
    tmp_path: Path, rel: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _repo(tmp_path)
    path = root / rel
    line = FILES[rel]
    path.write_text(edit(path.read_text(), line, "\t" + line.lstrip(" ")))
    # (a broken ActionType also leaves the workflow naming a missing one: that is another file)
    (finding,) = [f for f in _lint(root, capsys) if f["severity"] == "error" and f["file"] == rel]
    assert (finding["file"], finding["rule"], finding["column"]) == (rel, "load.syntax", 1)
    assert "tab character in the indentation" in str(finding["message"])
