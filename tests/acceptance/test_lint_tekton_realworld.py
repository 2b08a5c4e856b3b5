"""Published Tekton files through `playbookctl lint`: no tekton.* false alarm end to end.

The unit table (tests/unit/lint/test_tekton_realworld.py) also checks embedded specs; here the
CLI sees each file as a user would, so only standalone Pipelines and Tasks are linted (a
PipelineRun document is reported as load.kind, which is not a tekton.* rule).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from playbookctl import cli
from tests.support.lintrepo import make_repo

REALWORLD = Path(__file__).resolve().parents[1] / "fixtures" / "tekton" / "realworld"

# Refused files whose refused object is a standalone Pipeline or Task, with the rule each raises.
REFUSED_STANDALONE = {
    "alpha/param-enum.yaml": "tekton.feature-gate",
    "alpha/pipelines-in-pipelines.yaml": "tekton.feature-gate",
    "rejected/v1beta1-helm-linting-resources.yaml": "tekton.disallowed-field",
    "rejected/v1beta1-s2i-jboss-push-to-quay.yaml": "tekton.disallowed-field",
}


def _lint(files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    root = tmp_path / "repo"
    make_repo(root)
    names = []
    for i, f in enumerate(files):
        name = f"{i:02d}-{f.name}"
        shutil.copyfile(f, root / name)
        names.append(name)
    monkeypatch.chdir(root)
    return cli.main(["lint", "--format", "json", "--no-external", *names])


def test_accepted_files_raise_no_tekton_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted((REALWORLD / "accepted").glob("*.yaml"))
    assert len(files) > 40
    _lint(files, tmp_path, monkeypatch)
    out, err = capsys.readouterr()
    findings = json.loads(out)
    assert err == ""
    assert [f for f in findings if str(f["rule"]).startswith("tekton.")] == []
    # Everything else is the CLI declining the non-Tekton documents (PipelineRuns, ConfigMaps).
    assert {f["rule"] for f in findings} <= {"load.kind"}


@pytest.mark.parametrize(("rel", "rule"), sorted(REFUSED_STANDALONE.items()))
def test_refused_files_raise_their_rule(
    rel: str,
    rule: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _lint([REALWORLD / rel], tmp_path, monkeypatch)
    out, err = capsys.readouterr()
    rules = {f["rule"] for f in json.loads(out)} - {"load.kind"}
    assert (code, err, rules) == (1, "", {rule})
