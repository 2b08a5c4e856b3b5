"""gitrepo's reading of `git push --porcelain` and of the remote's words (whether a rejected
push is retried is decided from git's flags and the ref read back: tests/integration)."""

from __future__ import annotations

import pytest

from playbookctl.gitrepo import _porcelain_line, _remote_said

REF = "refs/heads/main"


@pytest.mark.parametrize(
    ("stdout", "line"),
    [
        ("To /r.git\n=\tHEAD:refs/heads/main\t[up to date]\nDone\n", ("=", "[up to date]")),
        (" \tHEAD:refs/heads/main\t1a2b..3c4d\nDone\n", (" ", "1a2b..3c4d")),
        (
            "To /r.git\n!\tHEAD:refs/heads/main\t[rejected] (fetch first)\nDone\n",
            ("!", "[rejected] (fetch first)"),
        ),
        (
            "!\tHEAD:refs/heads/main\t[remote rejected] (pre-receive hook declined)\n",
            ("!", "[remote rejected] (pre-receive hook declined)"),
        ),
        # another ref's line, and a ref that merely ends like ours, are not ours
        ("!\tHEAD:refs/heads/other\t[rejected] (fetch first)\n", None),
        ("!\tHEAD:refs/heads/x/refs/heads/main\t[rejected]\n", None),
        ("", None),
    ],
)
def test_porcelain_line(stdout: str, line: tuple[str, str] | None) -> None:
    assert _porcelain_line(stdout, REF) == line


def test_remote_said_is_one_clean_capped_line() -> None:
    stderr = (
        "remote: error: cannot lock ref 'refs/heads/main': is at 1 but expected 2\n"
        "remote: \x1b[31mfrozen\x1b[0m for the audit\x07\n"
        "remote:\n"
        "To /r.git\n"
        "error: failed to push some refs to '/r.git'\n"
    )
    said = _remote_said(stderr)
    assert said == (
        "error: cannot lock ref 'refs/heads/main': is at 1 but expected 2; "
        "[31mfrozen [0m for the audit"
    )
    assert _remote_said("remote: " + "x" * 1000, limit=50) == "x" * 47 + "..."
    assert _remote_said("error: failed to push some refs\n") == ""
