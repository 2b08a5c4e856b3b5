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

These are the only writes outside temporary directories, and only as root: a non-root caller
gets `TrustError` and the caller falls back (tests skip, saying so). Every line and directory is
ours by construction: the line carries a marker naming its owner (a pid and that process's start
time, so a recycled pid is not mistaken for the owner); the directories are named after a
`*.playbookctl.test` name. Registration and removal happen under an exclusive `flock` on
/etc/hosts itself (every process running this code takes the same lock), and each registration
first removes the lines of owners that are gone and the certs.d directories of names no line
maps any more: a session killed with -9 leaves a line that the next run removes, and nothing
that could break it (the names are unique, so a stale line never shadows a new one).

/etc/hosts is rewritten in place (same inode): in a container it is often a bind mount that a
rename would not replace.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playbookctl.errors import FatalError

HOSTS_FILE = Path("/etc/hosts")
CERTS_DIR = Path("/etc/docker/certs.d")
DOMAIN = "playbookctl.test"
MARKER = "# playbookctl-test-world owner="
_LINE = re.compile(
    r"^\S+\s+(?P<name>[a-z0-9-]+\." + re.escape(DOMAIN) + r")\s+" + re.escape(MARKER)
    + r"(?P<pid>\d+):(?P<start>\d+)\s*$"
)  # fmt: skip


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


@contextlib.contextmanager
def _hosts_locked(hosts: Path) -> Iterator[int]:
    fd = os.open(hosts, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _write(fd: int, text: str) -> None:
    data = text.encode()
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)
    os.ftruncate(fd, len(data))


def _clean(text: str, certs_dir: Path, drop: str | None = None) -> str:
    """`text` without the lines of dead owners (and `drop`'s line); removes the certs.d
    directories of our names that no remaining line maps."""
    kept: list[str] = []
    live: set[str] = set()
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is not None:
            if m["name"] == drop or not _alive(int(m["pid"]), int(m["start"])):
                continue
            live.add(m["name"])
        kept.append(line)
    if certs_dir.is_dir():
        for entry in certs_dir.iterdir():
            host = entry.name.rsplit(":", 1)[0]
            if host.endswith("." + DOMAIN) and host not in live:
                shutil.rmtree(entry, ignore_errors=True)
    return "\n".join(kept) + "\n" if kept else ""


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
    with _hosts_locked(hosts) as fd:
        text = _clean(_read(fd), certs_dir, drop=name)
        for hp in host_ports:
            target = certs_dir / hp
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ca_file, target / "ca.crt")
        _write(fd, f"{text}{address}\t{name}\t{MARKER}{owner}:{start}\n")
    return Registration(name, host_ports, hosts, certs_dir)


def unregister(reg: Registration) -> None:
    """Remove `reg`'s line and directories (and any stale ones found on the way)."""
    with _hosts_locked(reg.hosts) as fd:
        _write(fd, _clean(_read(fd), reg.certs_dir, drop=reg.name))
        for hp in reg.host_ports:
            shutil.rmtree(reg.certs_dir / hp, ignore_errors=True)
