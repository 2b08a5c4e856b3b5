"""The two system-wide writes the test world makes, and the cleanup that makes them safe.

A registry set up the way production registries are has a host name (not an IP literal, not
`localhost`: both are loopback to docker and to playbookctl, which then skip TLS verification)
and a certificate from a CA the clients are told to trust. On one machine that means:

- `/etc/hosts`: one line mapping the registry's unique name (`reg-<random>.playbookctl.test`,
  `.test` being reserved for exactly this, RFC 2606) to a loopback address. Nothing leaves the
  machine.
- `/etc/docker/certs.d/<name>:<port>/ca.crt`: the registry's CA, where the Docker engine looks
  for a registry's CA (read on every request, no restart) and playbookctl looks too (the same
  installation serves both, as in production). The token service's `<name>:<port>` gets the same
  file.

These are the only writes outside temporary directories but one (a rootless engine's
subordinate ids, subids.py, made the same way), and only as root: a non-root caller
gets `TrustError` and the caller falls back (tests skip, saying so). Every line and directory is
ours by construction: the line carries a marker naming its owner (a pid and that process's start
time, so a recycled pid is not mistaken for the owner); the directories are named after a
`*.playbookctl.test` name. Registration and removal happen under an exclusive `flock` on
/etc/hosts itself (every process running this code takes the same lock), and each registration
first removes the lines of owners that are gone and the certs.d directories of names no line
maps any more: a session killed with -9 leaves a line that the next run removes, and nothing
that could break it (the names are unique, so a stale line never shadows a new one).

/etc/hosts is edited in place (same inode: in a container it is often a bind mount that a
rename would not replace), and an edit never moves or changes a byte of any line but the one
added or removed: every other process resolves names from this file while we edit it (the other
test workers, the Docker engine, the registries), reading it from the start in pieces (the C
library reads 4 KiB at a time), and a rewrite of the whole file lets a reader that straddles it
see the lines after the edited one shifted or half old, half new, so a lookup of a name that
was there all along fails (2 in 385,000 lookups, measured under load). So:

- removal turns the line into a comment of the same length by writing one byte, a `#` over its
  first one (the rest stays, which is how a free slot is recognised: one of our lines with its
  address commented out);
- registration writes its line into the first free slot long enough (padded with spaces, which
  the line pattern allows), else appends it; either way the line is written with `#` in front
  first and made live last by a one-byte write of its first byte, so a reader sees the line
  complete or as a comment, never a partial name (a reader stalled between two of its reads
  across a removal *and* a reuse of the same slot can still see a mix of the two lines: a name
  nobody looks up);
- free slots at the end of the file are given back by truncating it (what is cut is only free
  slots: no other line moves);
- every edit re-reads the file under the lock and finds lines by their content, never by a
  remembered offset, so lines another tool moved or rewrote in between are still found.

The `flock` and the owner markers are what they were before lines stayed put, on purpose: every
checkout on a machine (other sessions, other branches, older code) edits the same /etc/hosts,
and the lock is what keeps their edits apart, the marker what lets each one's stale-owner
cleanup recognise the others' lines. An older copy reads a free slot as a line of ours (its
pattern lets the address start with `#`): it drops it once the owner is gone, as it should.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from playbookctl.errors import FatalError
from playbookctl_dev import linefile
from playbookctl_dev.linefile import Line, lines_of, pwrite_all, read_all

HOSTS_FILE = Path("/etc/hosts")
CERTS_DIR = Path("/etc/docker/certs.d")
DOMAIN = "playbookctl.test"
MARKER = "# playbookctl-test-world owner="
_BODY = (
    rb"\s+(?P<name>[a-z0-9-]+\." + re.escape(DOMAIN).encode() + rb")\s+"
    + re.escape(MARKER).encode() + rb"(?P<pid>\d+):(?P<start>\d+)\s*$"
)  # fmt: skip
_LINE = re.compile(rb"^[^#\s]\S*" + _BODY)  # one of ours, live
_SLOT = re.compile(rb"^#\S*" + _BODY)  # one of ours with its address commented out: free


class TrustError(FatalError):
    """The hosts entry or the CA could not be installed (not root, or a read-only /etc)."""


def can_install(hosts: Path = HOSTS_FILE, certs_dir: Path = CERTS_DIR) -> str | None:
    """None when this process may write both places, else why not (for a skip message)."""
    if not os.access(hosts, os.W_OK):
        return f"{hosts} is not writable (needs root)"
    parent = certs_dir
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        return f"{certs_dir} is not writable (needs root)"
    return None


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None
    when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _alive(pid: int, start: int) -> bool:
    return start_time(pid) == start


def unique_name(prefix: str = "reg") -> str:
    return f"{prefix}-{os.urandom(5).hex()}.{DOMAIN}"


def loopback_address() -> str:
    """The loopback address registries bind and names map to: `::1` where the kernel has IPv6,
    because Docker 20.10 treats a registry whose name resolves into 127.0.0.0/8 as insecure
    (skips certificate verification and falls back to plain HTTP) but not one on ::1, which it
    verifies against certs.d like any production registry (README "The test world")."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return "::1"
    except OSError:
        return "127.0.0.1"


@dataclass(frozen=True)
class Registration:
    """What `register` installed, for `unregister`."""

    name: str
    host_ports: tuple[str, ...]
    hosts: Path = HOSTS_FILE
    certs_dir: Path = CERTS_DIR


@dataclass
class _Hosts:
    """The file as read under the lock, kept up to date with our own writes."""

    size: int
    unterminated: bool  # the last line has no newline (another tool wrote it so)
    lines: list[Line]
    free: list[int]  # indexes into `lines` of the free slots, in file order


def _free_stale(fd: int, certs_dir: Path, drop: str | None) -> _Hosts:
    """Free the lines of dead owners (and `drop`'s), each by a one-byte write, and remove the
    certs.d directories of our names that no live line maps."""
    data = read_all(fd)
    lines = lines_of(data)
    free: list[int] = []
    live: set[str] = set()
    for i, line in enumerate(lines):
        m = _LINE.match(line.text)
        if m is not None:
            name = m["name"].decode()
            if name == drop or not _alive(int(m["pid"]), int(m["start"])):
                pwrite_all(fd, b"#", line.offset)
                lines[i] = Line(line.offset, b"#" + line.text[1:])
                free.append(i)
            else:
                live.add(name)
        elif _SLOT.match(line.text) is not None:
            free.append(i)
    if certs_dir.is_dir():
        for entry in certs_dir.iterdir():
            host = entry.name.rsplit(":", 1)[0]
            if host.endswith("." + DOMAIN) and host not in live:
                shutil.rmtree(entry, ignore_errors=True)
    return _Hosts(len(data), not data.endswith(b"\n") and data != b"", lines, free)


def _add(fd: int, hosts: _Hosts, text: bytes) -> None:
    """Write the line `text` into the first free slot long enough, else at the end: as a comment
    first (`#` for its first byte), made live by writing that byte last."""
    slot = next((i for i in hosts.free if len(hosts.lines[i].text) >= len(text)), None)
    if slot is None:
        newline = b"\n" if hosts.unterminated else b""
        offset = hosts.size + len(newline)
        pwrite_all(fd, newline + b"#" + text[1:] + b"\n", hosts.size)
        pwrite_all(fd, text[:1], offset)
        hosts.lines.append(Line(offset, text))
        hosts.size, hosts.unterminated = offset + len(text) + 1, False
        return
    line = hosts.lines[slot]
    padded = text.ljust(len(line.text))
    pwrite_all(fd, padded[1:], line.offset + 1)
    pwrite_all(fd, padded[:1], line.offset)
    hosts.lines[slot] = Line(line.offset, padded)
    hosts.free.remove(slot)


def _trim(fd: int, hosts: _Hosts) -> None:
    """Cut the free slots at the end of the file (what goes is free slots only: nothing moves)."""
    free = set(hosts.free)
    kept = len(hosts.lines)
    while kept > 0 and kept - 1 in free:
        kept -= 1
    if kept < len(hosts.lines):
        os.ftruncate(fd, hosts.lines[kept].offset)


def register(
    name: str,
    address: str,
    ports: list[int],
    ca_file: Path,
    owner: int,
    *,
    hosts: Path = HOSTS_FILE,
    certs_dir: Path = CERTS_DIR,
) -> Registration:
    """Map `name` to `address` and trust `ca_file` for `name:port` for each port, on behalf of
    process `owner` (its death makes both stale)."""
    if not name.endswith("." + DOMAIN):
        raise TrustError(f"{name}: only names under .{DOMAIN} are ever written")
    why = can_install(hosts, certs_dir)
    if why is not None:
        raise TrustError(why)
    start = start_time(owner)
    if start is None:
        raise TrustError(f"owner process {owner} is gone")
    host_ports = tuple(f"{name}:{port}" for port in ports)
    line = f"{address}\t{name}\t{MARKER}{owner}:{start}".encode()
    with linefile.locked(hosts) as fd:
        # The CA is in place before the name resolves (a client that sees the name may connect).
        state = _free_stale(fd, certs_dir, drop=name)
        for hp in host_ports:
            target = certs_dir / hp
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ca_file, target / "ca.crt")
        _add(fd, state, line)
        _trim(fd, state)
    return Registration(name, host_ports, hosts, certs_dir)


def unregister(reg: Registration) -> None:
    """Remove `reg`'s line and directories (and any stale ones found on the way)."""
    with linefile.locked(reg.hosts) as fd:
        _trim(fd, _free_stale(fd, reg.certs_dir, drop=reg.name))
        for hp in reg.host_ports:
            shutil.rmtree(reg.certs_dir / hp, ignore_errors=True)
