"""A validator that cannot run is an internal error (exit 3), never a pass.

The field case: an installed copy missing one of the lint modules (a packaging mistake, a
partial upgrade). It used to be looked up with a dynamic import that turned the ImportError into
"no findings", so every Task passed. Here a real copy of the package lacks lint/tekton/task.py
and runs as its own process on a Task that the complete package refuses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from playbookctl import cli

TOOLING = Path(__file__).resolve().parents[2] / "tooling"
BAD_TASK = """\
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: Not_A_Name
spec:
  steps:
    - image: alpine
      onError: sometimes
"""


def _lint(pythonpath: Path, target: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "TMPDIR": str(tmp)}
    return subprocess.run(
        [sys.executable, "-m", "playbookctl", "-C", str(target.parent), "lint", str(target)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_a_missing_validator_module_is_an_internal_error(tmp_path: Path) -> None:
    target = tmp_path / "work" / "task.yaml"
    target.parent.mkdir()
    target.write_text(BAD_TASK)
    complete = _lint(TOOLING, target, tmp_path)
    assert complete.returncode == 1, complete.stderr
    assert "tekton.metadata-name" in complete.stdout

    broken = tmp_path / "broken"
    shutil.copytree(TOOLING / "playbookctl", broken / "playbookctl")
    (broken / "playbookctl" / "lint" / "tekton" / "task.py").unlink()
    result = _lint(broken, target, tmp_path)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stdout == ""  # no findings printed as if the run had finished
    assert "internal error" in result.stderr
    assert "Traceback" not in result.stderr
    log = Path(result.stderr.rsplit("details are in ", 1)[1].strip())
    assert "playbookctl.lint.tekton.task" in log.read_text()


def test_a_validator_that_raises_is_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A bug inside a rule cannot be produced by a real input on purpose; stand one in.
    from playbookctl.lint import tekton

    def broken(*_: object, **__: object) -> list[object]:
        raise KeyError("a rule crashed")

    monkeypatch.setattr(tekton, "check_task", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    target = tmp_path / "task.yaml"
    target.write_text(BAD_TASK)
    code = cli.main(["-C", str(tmp_path), "lint", str(target)])
    out, err = capsys.readouterr()
    assert (code, out) == (3, "")
    assert "internal error: KeyError" in err


def test_a_finding_of_an_uncatalogued_rule_is_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A check emitting an id the catalogue lacks is a bug: never printed as if documented.
    from playbookctl.findings import Finding, Severity
    from playbookctl.lint import tekton

    def undocumented(*_: object, **__: object) -> list[Finding]:
        return [Finding("tekton.not-in-catalogue", Severity.ERROR, "task.yaml", 1, 1, "x")]

    monkeypatch.setattr(tekton, "check_task", undocumented)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    target = tmp_path / "task.yaml"
    target.write_text(BAD_TASK)
    code = cli.main(["-C", str(tmp_path), "lint", str(target)])
    out, err = capsys.readouterr()
    assert (code, out) == (3, "")
    assert "tekton.not-in-catalogue" in err
