"""The CLI run in-process as a user runs it: its exit code and output, never a traceback or an
internal error (exit 3)."""

from __future__ import annotations

import pytest

from playbookctl import cli

Run = tuple[int, str, str]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "internal error" not in err
    return code, out, err
