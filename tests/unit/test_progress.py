"""progress: a live status line on a terminal, plain ordered lines anywhere else."""

from __future__ import annotations

import io

import pytest

from playbookctl.progress import PublishProgress, is_live

EVENTS = [
    ("", "lint", "linting 3 playbook(s)"),
    ("a", "build", "building r/a:1"),
    ("a", "output", "Step 1/3 : FROM base"),
    ("b", "bundle", "r/b:1 already published from this source: reused"),
    ("b", "done", "reused"),
    ("a", "push", "pushing r/a:1"),
    ("c", "done", "refused: content changed, bump the version: playbookctl bump c patch"),
    ("a", "bundle", "pushing bundle r/a:1"),
    ("a", "done", "pushed"),
]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_line_mode_is_one_plain_line_per_event_in_order() -> None:
    out = io.StringIO()
    progress = PublishProgress(out, live=False)
    for event in EVENTS:
        progress(*event)
    progress.close()
    assert out.getvalue().splitlines() == [
        "linting 3 playbook(s)",
        "[a] building r/a:1",
        "[a] Step 1/3 : FROM base",
        "[b] r/b:1 already published from this source: reused",
        "[b] reused",
        "[a] pushing r/a:1",
        "[c] refused: content changed, bump the version: playbookctl bump c patch",
        "[a] pushing bundle r/a:1",
        "[a] pushed",
    ]
    assert "\r" not in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_live_mode_redraws_one_status_line_and_keeps_one_line_per_playbook() -> None:
    out = _Tty()
    progress = PublishProgress(out, live=True)
    seen = []
    for event in EVENTS:
        progress(*event)
        seen.append(progress.status_line())
    progress.close()
    text = out.getvalue()
    assert "publish: 0/3 done | building a" in seen[1]
    assert seen[5] == "publish: 1/3 done (1 reused) | pushing a"
    assert seen[-1] == "publish: 3/3 done (1 pushed, 1 refused, 1 reused)"
    # What stays on screen once the carriage returns are applied: one line per finished
    # playbook, then the summary. Build output is not shown on a terminal.
    final = [line.rsplit("\r", 1)[-1].replace("\x1b[K", "") for line in text.split("\n")]
    assert [line for line in final if line] == [
        "  b: reused",
        "  c: refused: content changed, bump the version: playbookctl bump c patch",
        "  a: pushed",
        "publish: 3/3 done (1 pushed, 1 refused, 1 reused)",
    ]
    assert "Step 1/3" not in text
    assert text.endswith("\n")


def test_notes_stay_above_the_status_line() -> None:
    out = _Tty()
    progress = PublishProgress(out, live=True, label="release")
    progress("a", "build", "building r/a:1")
    progress.note("release: publishing a")
    progress("a", "done", "pushed")
    progress.close()
    final = [ln.rsplit("\r", 1)[-1].replace("\x1b[K", "") for ln in out.getvalue().split("\n")]
    assert [ln for ln in final if ln] == [
        "release: publishing a",
        "  a: pushed",
        "release: 1 done (1 pushed)",
    ]


def test_nothing_published_leaves_the_terminal_alone() -> None:
    out = _Tty()
    progress = PublishProgress(out, live=True)
    progress.close()
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("tty", "env", "live"),
    [
        (True, {"TERM": "xterm-256color"}, True),
        (True, {"TERM": "dumb"}, False),
        (True, {"TERM": "xterm", "CI": "true"}, False),  # GitHub Actions sets CI
        (False, {"TERM": "xterm"}, False),
    ],
)
def test_live_only_on_a_real_terminal_outside_ci(
    tty: bool, env: dict[str, str], live: bool
) -> None:
    out = _Tty() if tty else io.StringIO()
    assert is_live(out, env) is live
