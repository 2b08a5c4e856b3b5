"""gitrepo's reading of push rejections (the real-remote cases are in tests/integration)."""

from __future__ import annotations

import pytest

from playbookctl.gitrepo import _remote_moved

# (porcelain summary plus the `remote:` text, the remote moved under the push?)
REJECTIONS = [
    # GitHub, two pushes racing for main
    (
        "[remote rejected] (cannot lock ref 'refs/heads/main': is at 1a2b but expected 3c4d)",
        True,
    ),
    # git receive-pack: the summary is generic, the reason is in the remote's own line
    ("[remote rejected] (failed to update ref) error: cannot lock ref 'refs/heads/main'", True),
    ("[remote rejected] (incorrect old value provided)", True),
    ("[remote rejected] (pre-receive hook declined) protected branch", False),
    ("[remote rejected] (failed to update ref) error: unable to write to disk", False),
    ("[remote rejected] (shallow update not allowed)", False),
]


@pytest.mark.parametrize(("text", "moved"), REJECTIONS)
def test_remote_moved(text: str, moved: bool) -> None:
    assert _remote_moved(text) is moved
