"""A name that is in the hosts file all along resolves all along, while other names are registered
and removed beside it (playbookctl_dev/trust.py says why that takes lines that never move).

A real reader process hammers a scratch hosts file while this process registers and removes
names in it, oldest first (so that each removal has lines after it, as when test workers stop
their registries in another order than they started them): `parse` reads it the way the C
library does (4 KiB at a time) and checks every line; `resolve` is the C library's resolver
itself, in a mount namespace of its own where /etc/hosts is the scratch file (no other session
on the machine sees it). Each read is judged against the writer's log: a name registered before
the read began and not removed before it ended must be there, whole, once.

Both fail with the whole-file rewrite trust.py did before (tens of failed reads or lookups in
the 2 seconds), and pass with lines that stay put."""

from __future__ import annotations

import bisect
import json
import mmap
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from playbookctl_dev import trust

READER = Path(__file__).resolve().parents[2] / "support" / "hosts_reader.py"
DURATION = 2.0  # seconds of hammering: hundreds of edits on a busy 2-core machine
CHUNK = 4096  # what the C library reads at a time: a rewrite between two reads shifts lines
# Another tool's lines, before ours (2.6 KiB) and after the first ones we add.
HEAD = [f"10.1.{i // 250}.{i % 250}\tbuild-cache-{i:03}.internal" for i in range(80)]
TAIL = [f"10.2.0.{i}\tartifact-mirror-{i:02}.internal" for i in range(8)]
MIN_OVERLAPS = 100  # reads that overlapped an edit: fewer, and the run proved nothing


@dataclass
class Log:
    """When (time.monotonic, the same clock in every process) each name's registration and
    removal began and ended. One writer adds and removes names in the order of their numbers,
    so each list is in time order and a time finds its place by bisection."""

    added: list[tuple[float, float]] = field(default_factory=list)  # name i's is added[i]
    removed: list[tuple[float, float]] = field(default_factory=list)  # likewise

    @cached_property
    def _added_ends(self) -> list[float]:
        return [end for _, end in self.added]

    @cached_property
    def _removal_starts(self) -> list[float]:
        return [begin for begin, _ in self.removed]

    @cached_property
    def _edits(self) -> list[tuple[float, float]]:
        return sorted(self.added + self.removed)

    def staying(self, t0: float, t1: float) -> range:
        """The names there from before t0 until after t1: a reader must see each, once."""
        added_before = bisect.bisect_left(self._added_ends, t0)
        removed_by = bisect.bisect_right(self._removal_starts, t1)
        return range(removed_by, added_before)

    def gone(self, i: int, t0: float, t1: float) -> bool:
        """Name i was not there at any moment from t0 to t1: a reader must not see it."""
        return self.added[i][0] > t1 or (i < len(self.removed) and self.removed[i][1] < t0)

    def edits_during(self, t0: float, t1: float) -> bool:
        k = bisect.bisect_left(self._edits, (t1,))
        return k > 0 and self._edits[k - 1][1] > t0


@dataclass(frozen=True)
class Run:
    records: list[list[Any]]  # JSON from the reader: hosts_reader.py says what each holds
    log: Log
    system: list[str]  # the other tool's lines a parse must see, in order


def hammer(tmp_path: Path, mode: str, prefix: list[str], pool: int, align: bool = False) -> Run:
    """Register and remove names for DURATION seconds, `pool` of them there at any time, while
    `mode`'s reader (started with `prefix` in front) reads. `align`: the other tool's lines are
    as long as puts the reader's first 4 KiB boundary near the end of our second line, so that
    the removal of our first line makes a rewrite lose the third one, which is one of the newest
    two, those a `resolve` reader looks up."""
    hosts, certs, ca = tmp_path / "hosts", tmp_path / "certs.d", tmp_path / "ca.crt"
    ca.write_text("not parsed here\n")
    owner = os.getpid()
    start = trust.start_time(owner)
    names = [trust.unique_name() for _ in range(5000)]
    lines = [f"::1\t{name}\t{trust.MARKER}{owner}:{start}" for name in names]
    head = list(HEAD)
    if align:  # 20 bytes before the end of the second line: in the marker, the same in all
        size = CHUNK - 2 * (len(lines[0]) + 1) + 20 - sum(len(x) + 1 for x in TAIL)
        head.append("#" * (size - sum(len(x) + 1 for x in head) - 1))
    hosts.write_text("".join(f"{line}\n" for line in head))
    counter = tmp_path / "counter"
    counter.write_bytes((pool - 1).to_bytes(8, "little"))
    system = HEAD + TAIL
    spec = {"lines": lines, "system": system, "names": names, "pool": pool, "counter": str(counter)}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    log = Log()

    def add(i: int) -> trust.Registration:
        t0 = time.monotonic()
        reg = trust.register(names[i], "::1", [1], ca, owner, hosts=hosts, certs_dir=certs)
        log.added.append((t0, time.monotonic()))
        return reg

    live = deque(add(i) for i in range(pool))
    with hosts.open("a") as f:  # another tool appends its lines after ours
        f.write("".join(f"{line}\n" for line in TAIL))
    out, stop = tmp_path / "records.json", tmp_path / "stop"
    args = [mode, str(hosts), str(tmp_path / "spec.json"), str(out), str(stop)]
    reader = subprocess.Popen([*prefix, sys.executable, str(READER), *args])
    try:
        deadline = time.monotonic() + 10
        while not Path(f"{out}.ready").exists():
            assert reader.poll() is None, f"the reader exited with {reader.returncode}"
            assert time.monotonic() < deadline, "the reader did not start"
            time.sleep(0.01)
        with counter.open("r+b") as f, mmap.mmap(f.fileno(), 8) as newest:
            deadline = time.monotonic() + DURATION
            for i in range(pool, len(names)):
                if time.monotonic() > deadline:
                    break
                t0 = time.monotonic()
                trust.unregister(live.popleft())
                log.removed.append((t0, time.monotonic()))
                live.append(add(i))
                newest[:8] = i.to_bytes(8, "little")
        stop.touch()
        assert reader.wait(timeout=30) == 0
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    return Run(json.loads(out.read_text()), log, system)


def test_a_reader_of_the_file_always_sees_every_line_that_stays(tmp_path: Path) -> None:
    run = hammer(tmp_path, "parse", [], pool=32)  # 2.5 KiB of our lines, across 4 KiB
    bad: list[str] = []
    overlaps = 0
    for t0, t1, seen, in_order, torn in run.records:
        overlaps += run.log.edits_during(t0, t1)
        missing = [i for i in run.log.staying(t0, t1) if seen.count(i) != 1]
        stale = [i for i in seen if run.log.gone(i, t0, t1)]
        if missing or stale or in_order != len(run.system):
            bad.append(
                f"read at {t0:.6f}: names {missing} not there once, {stale} there though gone, "
                f"{in_order} of {len(run.system)} other lines in order; torn: {torn}"
            )
    assert overlaps >= MIN_OVERLAPS, f"only {overlaps} of {len(run.records)} reads met an edit"
    assert not bad, f"{len(bad)} of {len(run.records)} reads ({overlaps} during an edit):\n" + (
        "\n".join(bad[:5])
    )


@pytest.fixture
def namespace(tmp_path: Path) -> list[str]:
    """The command prefix that runs a process in a mount namespace of its own where /etc/hosts
    is tmp_path/hosts and names come from the hosts file only (no DNS query leaves), or a skip
    saying why there is none."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a mount namespace of its own needs root and unshare(1)")
    nss = tmp_path / "nsswitch.conf"
    nss.write_text("hosts: files\n")
    (tmp_path / "hosts").touch()
    script = (
        f"mount --bind {tmp_path / 'hosts'} /etc/hosts && "
        f'mount --bind {nss} /etc/nsswitch.conf && exec "$@"'
    )
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.strip()}")
    return prefix


def test_the_c_library_resolves_every_name_that_stays(tmp_path: Path, namespace: list[str]) -> None:
    run = hammer(tmp_path, "resolve", namespace, pool=4, align=True)
    required, overlaps = 0, 0
    failed: list[float] = []
    for t0, t1, i, ok in run.records:
        if i in run.log.staying(t0, t1):
            required += 1
            overlaps += run.log.edits_during(t0, t1)
            if not ok:
                failed.append(t0)
    assert overlaps >= MIN_OVERLAPS, f"only {overlaps} of {required} lookups met an edit"
    assert not failed, (
        f"{len(failed)} of {required} lookups of names there all along failed "
        f"({overlaps} during an edit), the first at {failed[0]:.6f}"
    )
