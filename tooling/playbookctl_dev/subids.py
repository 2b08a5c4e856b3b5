"""Subordinate id ranges in /etc/subuid and /etc/subgid, for a rootless Docker engine's user.

A rootless engine (docker_engine.start_rootless_dockerd) runs in a user namespace that
rootlesskit maps with newuidmap/newgidmap, which grant a user only the ranges these files list
for it: without one, an image can hold no uid but the user's own. A throwaway user (`nobody`)
has none, so the engine's starter registers one and removes it when the engine stops: the
third write outside temporary directories, made like the two of trust.py (read it for the
model), and only as root.

A registration is two lines appended to each file: a comment naming its owner (a pid and that
process's start time, so a recycled pid is not mistaken for it) and the range itself,
`user:start:count` (shadow's parser takes nothing after the count; it skips lines it cannot
parse, comments included). Each live registration has a range of its own (the lowest free
slot above SUBID_START): rootlesskit maps every range the user has, one after the other, and
two identical ones overlap, which the kernel refuses (`newuidmap: write to uid_map failed:
Invalid argument`, seen with two test workers). An engine started while another is registered
therefore maps both ranges (more ids, no harm).

Every edit happens under an exclusive flock on each file, in order (every process running this
code takes them), and in place: a removal writes one byte, `#` over the range line's first
one, so a reader never sees a line move or half change; freed records at the end of the file
are cut off. A rootless engine is started holding the locks (`held`) until rootlesskit has
mapped its ids: no range comes or goes between rootlesskit reading the file and newuidmap
checking it. Every registration first frees the records of owners that are gone (a session
killed with -9 leaves one; the next run removes it).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playbookctl.errors import FatalError
from playbookctl_dev import linefile
from playbookctl_dev.linefile import Line, lines_of, pwrite_all, read_all
from playbookctl_dev.trust import start_time

SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))
# Far above any range useradd hands out (it starts at 100000), 65536 ids: a whole 16-bit id
# space, so an image's 65532 and 65534 exist in the namespace.
SUBID_START = 1_000_000_000
SUBID_COUNT = 65536
MARKER = "# playbookctl-test-world subid owner="
_MARK = re.compile(rb"^" + re.escape(MARKER).encode() + rb"(?P<pid>\d+):(?P<start>\d+)$")
_RANGE = re.compile(rb"^[^#:][^:]*:(?P<start>\d+):\d+$")


class SubidError(FatalError):
    """The range could not be registered (not root, or a read-only /etc)."""


@dataclass(frozen=True)
class SubidRegistration:
    """What `register` added, for `unregister`."""

    user: str
    owner: int
    owner_start: int
    files: tuple[Path, ...] = SUBID_FILES
    start: int = SUBID_START
    count: int = SUBID_COUNT

    @property
    def range_line(self) -> bytes:
        return f"{self.user}:{self.start}:{self.count}".encode()

    @property
    def marker_line(self) -> bytes:
        return f"{MARKER}{self.owner}:{self.owner_start}".encode()


Held = dict[Path, int]  # each file's descriptor, its flock held


@contextlib.contextmanager
def held(files: tuple[Path, ...] = SUBID_FILES) -> Iterator[Held]:
    """Exclusive flocks on `files`, taken in order, for the block; pass the result to register
    and unregister inside it (a second flock of this process's own would wait forever)."""
    with contextlib.ExitStack() as stack:
        yield {path: stack.enter_context(linefile.locked(path)) for path in files}


def _lines(fd: int) -> tuple[bytes, list[Line]]:
    data = read_all(fd)
    return data, lines_of(data)


def _free(fd: int, drop: SubidRegistration | None) -> tuple[bytes, list[Line]]:
    """Free the records of dead owners (and one record of `drop`), one byte each; then cut the
    freed records at the end of the file. The lines as they are afterwards."""
    data, lines = _lines(fd)
    dropped = False
    for i, line in enumerate(lines[:-1]):
        m = _MARK.match(line.text)
        entry = lines[i + 1]
        if m is None or entry.text.startswith(b"#"):
            continue
        pid, start = int(m["pid"]), int(m["start"])
        mine = (
            drop is not None
            and not dropped
            and line.text == drop.marker_line
            and entry.text == drop.range_line
        )
        if mine or start_time(pid) != start:
            dropped = dropped or mine
            pwrite_all(fd, b"#", entry.offset)
            lines[i + 1] = Line(entry.offset, b"#" + entry.text[1:])
    kept = len(lines)
    while (
        kept >= 2
        and _MARK.match(lines[kept - 2].text) is not None
        and lines[kept - 1].text.startswith(b"#")
    ):
        kept -= 2
    if kept < len(lines):
        os.ftruncate(fd, lines[kept].offset)
        data, lines = data[: lines[kept].offset], lines[:kept]
    return data, lines


def _used_starts(lines: list[Line]) -> set[int]:
    """The starts of the live ranges our records hold."""
    used = set()
    for line, entry in itertools.pairwise(lines):
        m = _RANGE.match(entry.text)
        if _MARK.match(line.text) is not None and m is not None:
            used.add(int(m["start"]))
    return used


def register(
    user: str,
    owner: int,
    *,
    files: tuple[Path, ...] = SUBID_FILES,
    locks: Held | None = None,
) -> SubidRegistration:
    """Grant `user` a range of SUBID_COUNT ids of its own in each of `files`, on behalf of
    process `owner` (its death makes the record stale). `locks`: the files' locks, from `held`
    (else taken and released here)."""
    if ":" in user or "\n" in user or not user:
        raise SubidError(f"{user!r}: not a user name")
    owner_start = start_time(owner)
    if owner_start is None:
        raise SubidError(f"owner process {owner} is gone")
    for path in files:
        if not path.exists():
            raise SubidError(f"{path} does not exist (Debian's passwd package makes it)")
        if not os.access(path, os.W_OK):
            raise SubidError(f"{path} is not writable (needs root)")
    with contextlib.ExitStack() as stack:
        fds = locks if locks is not None else stack.enter_context(held(files))
        state = {path: _free(fds[path], None) for path in files}
        used = set().union(*(_used_starts(lines) for _data, lines in state.values()))
        start = next(
            SUBID_START + k * SUBID_COUNT for k in itertools.count()
            if SUBID_START + k * SUBID_COUNT not in used
        )  # fmt: skip
        reg = SubidRegistration(user, owner, owner_start, files, start)
        for path, (data, _lines) in state.items():
            newline = b"\n" if data and not data.endswith(b"\n") else b""
            entry = len(data) + len(newline) + len(reg.marker_line) + 1
            # The range is written as a comment and made live last, by its first byte.
            record = newline + reg.marker_line + b"\n#" + reg.range_line[1:] + b"\n"
            pwrite_all(fds[path], record, len(data))
            pwrite_all(fds[path], reg.range_line[:1], entry)
    return reg


def unregister(reg: SubidRegistration, *, locks: Held | None = None) -> None:
    """Remove `reg`'s record from each file (and any stale ones found on the way)."""
    files = tuple(p for p in reg.files if p.exists())
    with contextlib.ExitStack() as stack:
        fds = locks if locks is not None else stack.enter_context(held(files))
        for path in files:
            _free(fds[path], reg)
