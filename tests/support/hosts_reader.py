"""`mapped`: what a hosts file maps, as a resolver reads it. And, run as a script, a process that
reads a hosts file over and over while another registers and removes names in it
(tests/unit/dev/test_trust_concurrency.py), the way resolvers read it. Standard library only: it
runs as a script, in a mount namespace of its own for `resolve`.

    hosts_reader.py parse HOSTS SPEC OUT STOP
    hosts_reader.py resolve HOSTS SPEC OUT STOP

SPEC (JSON) holds `lines`, the complete lines that can ever be live (index = the name's number;
the system lines are `system`), and for `resolve` `names` and `counter`, a file holding the
number of the newest registered name (8 bytes, little-endian) and `pool`, how many are live.
Until STOP exists:

- `parse`: opens the file, reads it 4 KiB at a time (what the C library's stdio does), parses
  every line as a resolver would (a `#` starts a comment), and records when the read began and
  ended, which of SPEC's lines it saw live (their numbers, in file order), how many system lines
  in their order, and any live line that is none of those (torn);
- `resolve`: looks up, with the C library's resolver (`getaddrinfo`: /etc/hosts is HOSTS in
  this namespace), one of the newest registered names, and records when, which and whether it
  resolved.

Then it writes the records to OUT (JSON) and exits. The test decides, from its own log of when
each name was registered and removed, which records had to see a name.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import socket
import sys
import time
from pathlib import Path

CHUNK = 4096


def mapped(text: str) -> dict[str, str]:
    """Name -> address, as the C library reads a hosts file: `#` starts a comment, a line is an
    address and its names, the first line naming a name wins."""
    names: dict[str, str] = {}
    for line in text.splitlines():
        address, *aliases = line.split("#", 1)[0].split() or [""]
        for alias in aliases:
            names.setdefault(alias, address)
    return names


def parse(hosts: Path, spec: dict[str, list[str]], stop: Path) -> list[object]:
    known = {line: i for i, line in enumerate(spec["lines"])}
    system = spec["system"]
    records: list[object] = []
    while len(records) % 64 or not stop.exists():  # a stat every 64 reads, not each
        t0 = time.monotonic()
        fd = os.open(hosts, os.O_RDONLY)
        chunks = []
        while chunk := os.read(fd, CHUNK):
            chunks.append(chunk)
        os.close(fd)
        t1 = time.monotonic()
        seen: list[int] = []
        torn: list[str] = []
        in_order = 0
        for raw in b"".join(chunks).decode("utf-8", "replace").split("\n"):
            if not raw.split("#", 1)[0].split():
                continue  # blank or a comment: a resolver skips it
            line = raw.rstrip()
            if in_order < len(system) and line == system[in_order]:
                in_order += 1
            elif line in known:
                seen.append(known[line])
            elif line not in system:
                torn.append(line)
        records.append([t0, t1, seen, in_order, torn])
    return records


def resolve(spec: dict[str, object], stop: Path) -> list[object]:
    names = spec["names"]
    pool = spec["pool"]
    assert isinstance(names, list)
    assert isinstance(pool, int)
    with open(str(spec["counter"]), "rb") as f:
        counter = mmap.mmap(f.fileno(), 8, access=mmap.ACCESS_READ)
    records: list[object] = []
    while len(records) % 64 or not stop.exists():  # a stat every 64 reads, not each
        newest = int.from_bytes(counter[:8], "little")
        i = max(0, newest - random.randrange(pool // 2))
        t0 = time.monotonic()
        try:
            socket.getaddrinfo(names[i], None, socket.AF_INET6, socket.SOCK_STREAM)
            ok = True
        except socket.gaierror:
            ok = False
        records.append([t0, time.monotonic(), i, ok])
    return records


def main() -> None:
    mode, hosts, spec_file, out, stop = sys.argv[1:6]
    spec = json.loads(Path(spec_file).read_text())
    Path(out + ".ready").touch()
    read = parse(Path(hosts), spec, Path(stop)) if mode == "parse" else resolve(spec, Path(stop))
    Path(out).write_text(json.dumps(read))


if __name__ == "__main__":
    main()
