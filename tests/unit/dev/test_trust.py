"""playbookctl_dev/trust.py on a scratch hosts file and certs.d: only our lines are ever touched,
dead owners' lines and directories go, live ones stay, and no edit moves any other line
(test_trust_concurrency.py has readers hammer the file while it is edited)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from playbookctl_dev import trust
from tests.support.hosts_reader import mapped

SYSTEM_LINES = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.0.0.5 build-cache.internal\n"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path, Path]:
    hosts = tmp_path / "hosts"
    hosts.write_text(SYSTEM_LINES)
    certs = tmp_path / "certs.d"
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot parsed here\n-----END CERTIFICATE-----\n")
    return hosts, certs, ca


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_register_adds_one_marked_line_and_the_ca_per_port(world: tuple[Path, Path, Path]) -> None:
    hosts, certs, ca = world
    name = trust.unique_name()
    reg = trust.register(name, "::1", [5000, 5001], ca, os.getpid(), hosts=hosts, certs_dir=certs)
    text = hosts.read_text()
    assert text.startswith(SYSTEM_LINES)
    (ours,) = [line for line in text.splitlines() if name in line]
    assert ours.startswith(f"::1\t{name}\t{trust.MARKER}{os.getpid()}:")
    assert (certs / f"{name}:5000" / "ca.crt").read_text() == ca.read_text()
    assert (certs / f"{name}:5001" / "ca.crt").read_text() == ca.read_text()

    trust.unregister(reg)
    assert hosts.read_text() == SYSTEM_LINES
    assert list(certs.iterdir()) == []


def test_a_dead_owners_line_and_directories_are_removed_by_the_next_registration(
    world: tuple[Path, Path, Path],
) -> None:
    hosts, certs, ca = world
    stale = trust.unique_name()
    pid = dead_pid()
    # What a session killed with -9 leaves behind.
    hosts.write_text(SYSTEM_LINES + f"::1\t{stale}\t{trust.MARKER}{pid}:12345\n")
    (certs / f"{stale}:4000").mkdir(parents=True)
    (certs / f"{stale}:4000" / "ca.crt").write_text("old")
    # A live owner's (ours, registered with a recycled-pid-proof start time) stays.
    live = trust.register(
        trust.unique_name(), "::1", [1], ca, os.getpid(), hosts=hosts, certs_dir=certs
    )
    # Somebody else's directory, not under .playbookctl.test, is never touched.
    (certs / "registry.example.com:443").mkdir()

    fresh = trust.register(
        trust.unique_name(), "::1", [2], ca, os.getpid(), hosts=hosts, certs_dir=certs
    )
    names = mapped(hosts.read_text())
    assert stale not in names
    assert live.name in names
    assert fresh.name in names
    assert not (certs / f"{stale}:4000").exists()
    assert (certs / "registry.example.com:443").is_dir()
    assert (certs / f"{live.name}:1" / "ca.crt").is_file()


def test_a_recycled_pid_is_not_its_old_owner(world: tuple[Path, Path, Path]) -> None:
    hosts, certs, ca = world
    name = trust.unique_name()
    start = trust.start_time(os.getpid())
    assert start is not None
    # Our pid, but another start time: the process that wrote the line is gone.
    hosts.write_text(SYSTEM_LINES + f"::1\t{name}\t{trust.MARKER}{os.getpid()}:{start + 1}\n")
    trust.register(trust.unique_name(), "::1", [3], ca, os.getpid(), hosts=hosts, certs_dir=certs)
    assert name not in mapped(hosts.read_text())


def test_lines_that_only_look_like_ours_are_left_alone(world: tuple[Path, Path, Path]) -> None:
    hosts, certs, ca = world
    pid = dead_pid()
    others = (
        f"::1\treg-1.example.com\t{trust.MARKER}{pid}:1\n"  # not our domain
        f"::1\treg-2.playbookctl.test # a human's note owner={pid}:1\n"  # not our marker
    )
    hosts.write_text(SYSTEM_LINES + others)
    reg = trust.register(
        trust.unique_name(), "::1", [3], ca, os.getpid(), hosts=hosts, certs_dir=certs
    )
    trust.unregister(reg)
    assert hosts.read_text() == SYSTEM_LINES + others


def test_only_names_under_the_test_domain_are_written(world: tuple[Path, Path, Path]) -> None:
    hosts, certs, ca = world
    with pytest.raises(trust.TrustError, match="only names under"):
        trust.register("ghcr.io", "::1", [443], ca, os.getpid(), hosts=hosts, certs_dir=certs)
    assert hosts.read_text() == SYSTEM_LINES


def test_the_hosts_file_keeps_its_inode(world: tuple[Path, Path, Path]) -> None:
    """A container's /etc/hosts is a bind mount: it is rewritten in place, never replaced."""
    hosts, certs, ca = world
    inode = hosts.stat().st_ino
    reg = trust.register(
        trust.unique_name(), "::1", [9], ca, os.getpid(), hosts=hosts, certs_dir=certs
    )
    trust.unregister(reg)
    assert hosts.stat().st_ino == inode


def test_a_read_only_hosts_file_is_a_clear_refusal(world: tuple[Path, Path, Path]) -> None:
    hosts, certs, ca = world
    if os.geteuid() == 0:
        pytest.skip("root writes a read-only file anyway")
    hosts.chmod(0o444)
    with pytest.raises(trust.TrustError, match="not writable"):
        trust.register(
            trust.unique_name(), "::1", [9], ca, os.getpid(), hosts=hosts, certs_dir=certs
        )


SYS = SYSTEM_LINES.splitlines()
OTHER = "10.9.9.9 artifact-mirror.internal"
HUMAN = "# ::1 reg-h.playbookctl.test # playbookctl-test-world owner=1:1"  # a note, not a slot


@dataclass(frozen=True)
class Lines:
    """Lines of ours for the table below, owned by this process or by a dead one."""

    live: str
    dead: str

    def ours(self, name: str, *, address: str = "::1", dead: bool = False, pad: int = 0) -> str:
        owner = self.dead if dead else self.live
        line = f"{address}\treg-{name}.playbookctl.test\t{trust.MARKER}{owner}"
        return line + " " * pad

    def free(self, name: str, *, address: str = "::1") -> str:
        """The line as removal leaves it: its first byte a `#`, the rest where it was."""
        return "#" + self.ours(name, address=address)[1:]


def text(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


Case = Callable[[Lines], str]
Op = tuple[str, str, str]  # register|unregister, name, address
EDITS: list[tuple[str, Case, Op, Case]] = [
    (
        "a removal comments its line out in place: nothing after it moves",
        lambda o: text(*SYS, o.ours("a"), o.ours("b"), OTHER),
        ("unregister", "a", ""),
        lambda o: text(*SYS, o.free("a"), o.ours("b"), OTHER),
    ),
    (
        "a removal with only free slots after it gives them all back",
        lambda o: text(*SYS, o.free("a"), o.ours("b"), o.free("c")),
        ("unregister", "b", ""),
        lambda o: text(*SYS),
    ),
    (
        "removing the only line empties the file",
        lambda o: text(o.ours("a")),
        ("unregister", "a", ""),
        lambda o: "",
    ),
    (
        "a removal before another tool's last line keeps its slot",
        lambda o: text(*SYS, o.ours("b"), OTHER),
        ("unregister", "b", ""),
        lambda o: text(*SYS, o.free("b"), OTHER),
    ),
    (
        "a registration takes a free slot of its length",
        lambda o: text(*SYS, o.free("a"), o.ours("b")),
        ("register", "c", "::1"),
        lambda o: text(*SYS, o.ours("c"), o.ours("b")),
    ),
    (
        "a longer slot is padded with spaces",
        lambda o: text(*SYS, o.free("a-longer"), o.ours("b")),
        ("register", "c", "::1"),
        lambda o: text(*SYS, o.ours("c", pad=7), o.ours("b")),
    ),
    (
        "a slot too short is passed over for the first that fits",
        lambda o: text(
            *SYS,
            o.free("x"),
            o.free("y", address="127.0.0.1"),
            o.free("z", address="127.0.0.1"),
            o.ours("b"),
        ),
        ("register", "w", "127.0.0.1"),
        lambda o: text(
            *SYS,
            o.free("x"),
            o.ours("w", address="127.0.0.1"),
            o.free("z", address="127.0.0.1"),
            o.ours("b"),
        ),
    ),
    (
        "with no slot long enough the line is appended",
        lambda o: text(*SYS, o.free("c"), o.ours("b")),
        ("register", "a", "127.0.0.1"),
        lambda o: text(*SYS, o.free("c"), o.ours("b"), o.ours("a", address="127.0.0.1")),
    ),
    (
        "a dead owner's line is freed in place and can be the new line's slot",
        lambda o: text(*SYS, o.ours("a-dead-owner-s-line", dead=True), o.ours("b"), OTHER),
        ("register", "c", "::1"),
        lambda o: text(
            *SYS,
            o.ours("c", pad=len(o.ours("a-dead-owner-s-line", dead=True)) - len(o.ours("c"))),
            o.ours("b"),
            OTHER,
        ),
    ),
    (
        "a dead owner's line at the end goes with the removal before it",
        lambda o: text(*SYS, o.ours("b"), o.ours("a", dead=True)),
        ("unregister", "b", ""),
        lambda o: text(*SYS),
    ),
    (
        "a file without a last newline gets one before the new line",
        lambda o: "127.0.0.1 localhost",
        ("register", "a", "::1"),
        lambda o: text("127.0.0.1 localhost", o.ours("a")),
    ),
    (
        "a commented-out line a human wrote is no slot",
        lambda o: text(*SYS, HUMAN),
        ("register", "a", "::1"),
        lambda o: text(*SYS, HUMAN, o.ours("a")),
    ),
    (
        "registering a name again frees its old line",
        lambda o: text(*SYS, o.ours("a"), o.ours("b")),
        ("register", "a", "127.0.0.1"),
        lambda o: text(*SYS, o.free("a"), o.ours("b"), o.ours("a", address="127.0.0.1")),
    ),
]


@pytest.mark.parametrize(
    ("before", "op", "after"), [e[1:] for e in EDITS], ids=[e[0] for e in EDITS]
)
def test_edits_leave_every_other_line_where_it_was(
    world: tuple[Path, Path, Path], before: Case, op: Op, after: Case
) -> None:
    hosts, certs, ca = world
    o = Lines(live=f"{os.getpid()}:{trust.start_time(os.getpid())}", dead=f"{dead_pid()}:1")
    hosts.write_text(before(o))
    inode = hosts.stat().st_ino
    kind, name, address = op
    full = f"reg-{name}.playbookctl.test"
    if kind == "register":
        trust.register(full, address, [1], ca, os.getpid(), hosts=hosts, certs_dir=certs)
    else:
        trust.unregister(trust.Registration(full, (), hosts, certs))
    assert hosts.read_text() == after(o)
    assert hosts.stat().st_ino == inode


def test_lines_another_tool_moved_are_found_where_they_are_now(
    world: tuple[Path, Path, Path],
) -> None:
    """Nothing is remembered between edits: each reads the file again, under the lock."""
    hosts, certs, ca = world
    a, b = (
        trust.register(
            trust.unique_name(), "::1", [n], ca, os.getpid(), hosts=hosts, certs_dir=certs
        )
        for n in (1, 2)
    )
    ours = [line for line in hosts.read_text().splitlines() if trust.MARKER in line]
    # Another tool rewrites the file its own way: a line of its own first, its own after ours.
    hosts.write_text(text(OTHER, ours[0], *SYS, ours[1]))
    trust.unregister(a)
    assert hosts.read_text() == text(OTHER, "#" + ours[0][1:], *SYS, ours[1])
    assert mapped(hosts.read_text())[b.name] == "::1"
    trust.unregister(b)
    assert hosts.read_text() == text(OTHER, "#" + ours[0][1:], *SYS)
    assert list(certs.iterdir()) == []
