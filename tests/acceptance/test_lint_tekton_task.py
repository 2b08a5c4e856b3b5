"""Standalone Tekton Task files through `playbookctl lint`: the task fixtures, end to end."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from playbookctl import cli
from tests.support.lintrepo import make_repo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tekton" / "task"
_EXPECT = re.compile(r"# expect: (\S+) (\d+):(\d+)$")


@pytest.mark.parametrize(
    "name",
    ["step-results.yaml", "v1beta1-deprecated-step-fields.yaml", "step-fields-complete.yaml"],
)
def test_valid_task_file_passes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    make_repo(root)
    shutil.copyfile(FIXTURES / "valid" / name, root / name)
    monkeypatch.chdir(root)
    code = cli.main(["lint", "--format", "json", name])
    out, err = capsys.readouterr()
    assert (code, err, json.loads(out)) == (0, "", [])


@pytest.mark.parametrize(
    "name",
    ["wrong-json-types.yaml", "array-not-isolated.yaml", "v1beta1-resources-disallowed.yaml"],
)
def test_invalid_task_file_reports_every_finding(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = FIXTURES / "invalid" / name
    root = tmp_path / "repo"
    make_repo(root)
    shutil.copyfile(source, root / name)
    monkeypatch.chdir(root)
    code = cli.main(["lint", "--format", "json", name])
    out, err = capsys.readouterr()
    assert code == 1
    assert err == ""
    expected = sorted(
        (m.group(1), int(m.group(2)), int(m.group(3)))
        for m in map(_EXPECT.match, source.read_text().splitlines())
        if m
    )
    got = sorted((f["rule"], f["line"], f["column"]) for f in json.loads(out))
    assert got == expected
    assert all(f["file"] == name and f["severity"] == "error" for f in json.loads(out))
