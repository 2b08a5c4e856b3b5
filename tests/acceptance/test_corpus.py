"""The malformed-input corpus: every case is answered by a clear finding and exit 1, never a
traceback.

tests/acceptance/corpus/<case>/ holds one of:
- input.yaml: a standalone file, linted as given;
- playbook/: files laid over the clean playbook of tests/support/lintrepo.py (with its authored
  pipeline when the overlay has a pipeline.yaml), plus an optional `delete` file naming files to
  remove; the playbook directory is linted;
- registry/: files laid over the repository's registry/, linted as the whole repository.
`expect` lists `RULE LINE` pairs that must all be reported; `env` sets variables for the run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from playbookctl import cli
from tests.support.lintrepo import good_playbook, make_repo, write_playbook

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(d.name for d in CORPUS.iterdir() if d.is_dir())
PLAYBOOK = "restart-deployment"


def prepare(case: Path, root: Path) -> list[str]:
    """Lay the case out in a fresh repository at root; the lint arguments for it."""
    make_repo(root)
    if (case / "input.yaml").is_file():
        shutil.copyfile(case / "input.yaml", root / "input.yaml")
        return ["input.yaml"]
    if (case / "registry").is_dir():
        shutil.copytree(case / "registry", root / "registry", dirs_exist_ok=True)
        return []
    overlay = case / "playbook"
    directory = root / "playbooks" / PLAYBOOK
    authored = (overlay / "pipeline.yaml").is_file()
    write_playbook(directory, dict(good_playbook(PLAYBOOK, pipeline=authored)))
    if overlay.is_dir():
        shutil.copytree(overlay, directory, dirs_exist_ok=True)
    if (case / "delete").is_file():
        for name in (case / "delete").read_text().split():
            (directory / name).unlink()
    return [f"playbooks/{PLAYBOOK}"]


def expectations(case: Path) -> list[tuple[str, int]]:
    out = []
    for line in (case / "expect").read_text().splitlines():
        if line.strip():
            rule, number = line.split()
            out.append((rule, int(number)))
    return out


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    for name in CASES:
        assert expectations(CORPUS / name), f"{name}: no expectation"


@pytest.mark.parametrize("name", CASES)
def test_malformed_input(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CORPUS / name
    root = tmp_path / "repo"
    args = prepare(case, root)
    if (case / "env").is_file():
        for line in (case / "env").read_text().splitlines():
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(root)
    code = cli.main(["lint", "--format", "json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err == ""
    assert code == 1
    findings = json.loads(out)
    reported = {(f["rule"], f["line"]) for f in findings}
    for rule, line in expectations(case):
        assert (rule, line) in reported, f"{name}: expected {rule} at line {line}; got {findings}"
    assert all(f["message"] and f["column"] >= 1 for f in findings)
