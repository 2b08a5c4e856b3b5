"""playbookctl_dev/trust.py on a scratch hosts file and certs.d: only our lines are ever touched,
dead owners' lines and directories go, live ones stay."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from playbookctl_dev import trust

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
    text = hosts.read_text()
    assert stale not in text
    assert live.name in text
    assert fresh.name in text
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
    assert name not in hosts.read_text()


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
