"""A standalone Tekton file gets Tekton's verdict only: nothing Tekton accepts is flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playbookctl.cli import main

TASK = """\
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: echo
spec:
  params:
    - name: msg
      type: string
  steps:
    - name: hello
      image: alpine
      script: |
        echo $(params.msg)
        if [ $x == y ]; then echo hi; fi
        cd /foo
"""


def test_valid_task_with_unidiomatic_shell_has_no_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "task.yaml"
    path.write_text(TASK)
    code = main(["-C", str(tmp_path), "lint", "--format", "json", str(path)])
    assert json.loads(capsys.readouterr().out) == []
    assert code == 0


def test_invalid_task_still_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "task.yaml"
    path.write_text(TASK.replace("echo $(params.msg)", "echo $(params.nope)"))
    code = main(["-C", str(tmp_path), "lint", "--format", "json", str(path)])
    findings = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(f["rule"], f["line"]) for f in findings] == [("tekton.param-reference", 12)]
