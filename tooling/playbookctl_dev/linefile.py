"""A system file other programs read and write too (/etc/hosts, /etc/subuid, /etc/subgid),
edited in place: under an exclusive flock, by offset, a line at a time, so no line of anyone
else's ever moves (trust.py and subids.py say why each file needs that)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Line:
    offset: int
    text: bytes  # without its newline


@contextlib.contextmanager
def locked(path: Path) -> Iterator[int]:
    """`path` open for reading and writing, its exclusive flock held, for the block."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def lines_of(data: bytes) -> list[Line]:
    """The lines as a reader sees them (each ended by a newline, but the last may not be)."""
    lines: list[Line] = []
    offset = 0
    for raw in data.split(b"\n"):
        if offset < len(data):
            lines.append(Line(offset, raw))
        offset += len(raw) + 1
    return lines


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n
