"""Temp dirs that outlive a killed owner only until the next one of their kind is made.

A process killed with -9 never removes its temp dirs: a test registry's blobs in memory, a
private dockerd's data root (a base image or two: 100 MB and more each). Each such dir holds a
mark file on which an `flock` is held for as long as its owner, or a process it started and
passed the descriptor to, lives; the kernel drops the lock when the last of them is gone. The
next maker of the same kind removes the dirs whose mark nobody holds (`remove_abandoned`). No pid
is involved, so a recycled pid or one in another pid namespace cannot make a live dir look
abandoned; a dir without the mark (older code's, or one being made), another user's, or a link,
is never removed; nor is one with a mount still under it that will not come off.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path


def make(prefix: str, where: str | None, mark: str) -> tuple[Path, int]:
    """A new private temp dir and the descriptor that holds the lock on its `mark` (close it
    after the dir is removed; pass it to a child that uses the dir). The lock is taken before
    the mark has its name, so a dir whose mark is there but not locked is one whose holders are
    all gone."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=where))
    new = path / (mark + ".new")
    fd = os.open(new, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        new.rename(path / mark)
    except BaseException:
        os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path, fd


def remove_abandoned(prefix: str, mark: str, where: Iterable[str]) -> list[Path]:
    """Remove the dirs named `prefix`* in `where` whose `mark` nobody holds; returns them. Only
    our own: a directory (not a link) of this user, holding `mark` (a regular file of this
    user) whose lock nobody holds."""
    removed: list[Path] = []
    uid = os.geteuid()
    for base in where:
        try:
            entries = [e for e in os.scandir(base) if e.name.startswith(prefix)]
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to open
                if _remove_if_abandoned(Path(entry.path), mark, uid):
                    removed.append(Path(entry.path))
    return removed


def _remove_if_abandoned(path: Path, mark: str, uid: int) -> bool:
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(dfd).st_uid != uid:
            return False
        try:
            fd = os.open(mark, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:  # not made by this code, or being made: not ours to judge
            return False
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != uid:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its owner, or a process it started, lives
                return False
            # A dockerd that died uncleanly leaves its network namespace mounted: removing
            # files through a mount would reach whatever is mounted there.
            if not _unmounted_below(path):
                return False
            # Everything but the mark first: a removal cut short leaves a dir the next one finds.
            for name in os.listdir(dfd):
                if name == mark:
                    continue
                if stat.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode):
                    shutil.rmtree(name, dir_fd=dfd)
                else:
                    os.unlink(name, dir_fd=dfd)
            os.unlink(mark, dir_fd=dfd)
            path.rmdir()
            return True
        finally:
            os.close(fd)
    finally:
        os.close(dfd)


def mounts_below(path: Path) -> list[str]:
    """Mount points strictly under `path` (this process's view), deepest first."""
    inside = str(path).rstrip("/") + "/"
    found: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split(" ")
            if len(fields) > 4:
                point = _unescape(fields[4])
                if point.startswith(inside):
                    found.append(point)
    return sorted(found, key=len, reverse=True)


def _unmounted_below(path: Path) -> bool:
    """True once nothing is mounted under `path` (unmounting what is, where this user may)."""
    for point in mounts_below(path):
        subprocess.run(["umount", point], check=False, capture_output=True)
    return not mounts_below(path)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040...)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
