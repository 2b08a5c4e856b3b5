"""Progress of publish (and release, try) on stderr: publish's events in, lines out.

On a terminal one status line is redrawn in place (`publish: 12/200 done | building a, b |
pushing c`), and each playbook gets one permanent line when it finishes (pushed, reused,
failed, refused, skipped). Anywhere else (CI logs, a pipe, `TERM=dumb`) every event is one
plain line, `[name] message`, the engine's build and push output included, so a log says what
happened in order. Either way stdout is untouched: `--format json` output stays exactly the
JSON.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from typing import TextIO

# Redraws at most this often: 200 playbooks' build output must not flood a slow terminal.
REDRAW_INTERVAL = 0.1
ACTIVE = {"build": "building", "push": "pushing", "bundle": "bundling"}


def is_live(out: TextIO, env: dict[str, str] | None = None) -> bool:
    """A terminal that can redraw a line: a TTY, not TERM=dumb, not inside CI."""
    env = dict(os.environ) if env is None else env
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and env.get("TERM", "") != "dumb" and not env.get("CI")


class PublishProgress:
    """A publish EventCallback (`(name, stage, message)`); call close() at the end."""

    def __init__(self, out: TextIO, *, live: bool | None = None, label: str = "publish") -> None:
        self.out = out
        self.live = is_live(out) if live is None else live
        self.label = label
        self.total: int | None = None
        self.done: dict[str, str] = {}  # name -> final status
        self.active: dict[str, str] = {}  # name -> stage
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._drawn = False
        self._last_line = ""

    def __call__(self, name: str, stage: str, message: str) -> None:
        with self._lock:
            if stage == "lint" and not name:
                self.total = _leading_int(message)
            if not self.live:
                if message.strip():
                    self.out.write(f"[{name}] {message}\n" if name else f"{message}\n")
                    self.out.flush()
                return
            if stage == "done":
                self.active.pop(name, None)
                self.done[name] = message.split(":", 1)[0]
                self._clear()
                self.out.write(f"  {name}: {message}\n")
                self._draw(force=True)
            elif stage in ACTIVE:
                self.active[name] = stage
                self._draw(force=True)
            else:
                self._draw()

    def note(self, message: str) -> None:
        """A line of its own (release's steps), kept above the status line."""
        with self._lock:
            self._clear()
            self.out.write(message + "\n")
            if self.live and (self.active or self.done):
                self._draw(force=True)
            else:
                self.out.flush()

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False

    def status_line(self) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        parts = [f"{self.label}: {len(self.done)}{total} done"]
        counts: dict[str, int] = {}
        for status in self.done.values():
            counts[status] = counts.get(status, 0) + 1
        if counts:
            parts[0] += " (" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")"
        for stage, verb in ACTIVE.items():
            names = sorted(n for n, s in self.active.items() if s == stage)
            if names:
                shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
                parts.append(f"{verb} {shown}")
        return " | ".join(parts)  # ASCII: stderr may not be UTF-8

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < REDRAW_INTERVAL:
            return
        self._last_draw = now
        width = shutil.get_terminal_size((100, 20)).columns
        line = self.status_line()
        if self._drawn and line == self._last_line:
            return
        self._last_line = line
        if len(line) >= width:
            line = line[: max(width - 4, 10)] + "..."
        self.out.write("\r\x1b[K" + line)
        self._drawn = True
        self.out.flush()

    def close(self) -> None:
        """Leave the terminal on a fresh line (the summary stays, as the last line)."""
        with self._lock:
            if self.live and (self._drawn or self.done):
                self._clear()
                self.out.write(self.status_line() + "\n")
                self.out.flush()


def _leading_int(text: str) -> int | None:
    """N of publish's run-wide "linting N playbook(s)" event."""
    m = re.search(r"\d+", text)
    return int(m.group()) if m else None
