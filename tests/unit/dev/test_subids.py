"""playbookctl_dev/subids.py on scratch subuid/subgid files: a registration is a marked range that
its removal takes back byte for byte; dead owners' records go, live ones stay, and no edit moves
any other line (the real /etc files are exercised by test_rootless.py and test_docker_engine.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from playbookctl_dev import subids

ADMIN = "runner:100000:65536\nci:165536:65536\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    uid, gid = tmp_path / "subuid", tmp_path / "subgid"
    uid.write_text(ADMIN)
    gid.write_text(ADMIN)
    return uid, gid


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def live_ranges(path: Path) -> list[str]:
    """The lines shadow's parser takes as ranges (user:start:count, nothing else)."""
    return [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]


def test_a_registration_is_a_marked_range_in_each_file_and_its_removal_restores_the_bytes(
    files: tuple[Path, Path],
) -> None:
    reg = subids.register("nobody", os.getpid(), files=files)
    for path in files:
        assert live_ranges(path) == [*ADMIN.splitlines(), "nobody:1000000000:65536"]
        assert f"{subids.MARKER}{os.getpid()}:" in path.read_text()
    subids.unregister(reg)
    for path in files:
        assert path.read_text() == ADMIN


def test_a_dead_owners_record_goes_at_the_next_registration_and_a_live_one_stays(
    files: tuple[Path, Path],
) -> None:
    uid, _ = files
    # What a session killed with -9 leaves behind.
    uid.write_text(ADMIN + f"{subids.MARKER}{dead_pid()}:12345\nnobody:1000000000:65536\n")
    other = subids.register("nobody", os.getppid(), files=files)  # alive: pytest's parent
    mine = subids.register("nobody", os.getpid(), files=files)
    # The dead one's range is free again: the next registration takes it.
    assert live_ranges(uid) == [
        *ADMIN.splitlines(),
        "nobody:1000000000:65536",
        "nobody:1000065536:65536",
    ]
    subids.unregister(other)
    assert live_ranges(uid) == [*ADMIN.splitlines(), "nobody:1000065536:65536"]
    subids.unregister(mine)
    assert uid.read_text() == ADMIN


def test_registrations_at_once_get_ranges_that_do_not_overlap(files: tuple[Path, Path]) -> None:
    """rootlesskit maps all of a user's ranges one after the other: two identical ones would
    overlap, which the kernel refuses (seen with two test workers)."""
    regs = [subids.register("nobody", os.getpid(), files=files) for _ in range(3)]
    assert [r.start for r in regs] == [1000000000, 1000065536, 1000131072]
    for path in files:
        assert live_ranges(path)[-3:] == [r.range_line.decode() for r in regs]
    subids.unregister(regs[0])
    again = subids.register("nobody", os.getpid(), files=files)
    assert again.start == 1000000000  # the lowest free one
    for reg in (regs[1], regs[2], again):
        subids.unregister(reg)
    for path in files:
        assert path.read_text() == ADMIN


def test_held_locks_are_the_ones_register_and_unregister_use(files: tuple[Path, Path]) -> None:
    with subids.held(files) as locks:
        reg = subids.register("nobody", os.getpid(), files=files, locks=locks)
        assert "nobody:1000000000:65536" in live_ranges(files[0])
        subids.unregister(reg, locks=locks)
    for path in files:
        assert path.read_text() == ADMIN


def test_a_removal_writes_one_byte_and_moves_no_line(files: tuple[Path, Path]) -> None:
    """A record freed in the middle keeps its place (a reader never sees lines shift): it is
    only cut once nothing live follows it."""
    uid, _ = files
    first = subids.register("nobody", os.getpid(), files=files)
    second = subids.register("nobody", os.getppid(), files=files)
    before = uid.read_bytes()
    subids.unregister(first)
    after = uid.read_bytes()
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1
    assert live_ranges(uid) == [*ADMIN.splitlines(), "nobody:1000065536:65536"]
    subids.unregister(second)
    assert uid.read_text() == ADMIN


def test_a_file_without_a_final_newline_keeps_its_last_range(tmp_path: Path) -> None:
    uid = tmp_path / "subuid"
    uid.write_text(ADMIN.rstrip("\n"))
    reg = subids.register("nobody", os.getpid(), files=(uid,))
    assert live_ranges(uid) == [*ADMIN.splitlines(), "nobody:1000000000:65536"]
    subids.unregister(reg)
    assert uid.read_text() == ADMIN  # the newline it lacked stays: the range line is whole


@pytest.mark.parametrize("user", ["", "a:b", "a\nb"])
def test_a_name_that_would_break_the_file_is_refused(files: tuple[Path, Path], user: str) -> None:
    with pytest.raises(subids.SubidError, match="not a user name"):
        subids.register(user, os.getpid(), files=files)
    for path in files:
        assert path.read_text() == ADMIN


def test_a_missing_file_is_refused_and_nothing_is_written(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    uid, _ = files
    with pytest.raises(subids.SubidError, match="does not exist"):
        subids.register("nobody", os.getpid(), files=(uid, tmp_path / "none"))
    assert uid.read_text() == ADMIN
