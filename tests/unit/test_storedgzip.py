"""oci/storedgzip.py: gzip of stored blocks, the same bytes on every machine."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from zlib_ng import gzip_ng

from playbookctl.oci.storedgzip import HEADER, MAX_BLOCK, stored_gzip

TOOLING = str(Path(__file__).resolve().parents[2] / "tooling")


def _blocks(blob: bytes) -> list[tuple[bool, int]]:
    """(final, length) of each stored block, every header checked."""
    assert blob[:10] == HEADER
    out: list[tuple[bool, int]] = []
    at = 10
    while True:
        flags, length, inverse = struct.unpack_from("<BHH", blob, at)
        assert flags in (0, 1), flags  # BTYPE 00: stored, and nothing else in the byte
        assert length ^ 0xFFFF == inverse
        out.append((flags == 1, length))
        at += 5 + length
        if flags == 1:
            break
    assert len(blob) == at + 8  # CRC-32 and size, nothing after
    return out


# (input size, the blocks it is written in)
SIZES = [
    (0, [(True, 0)]),
    (1, [(True, 1)]),
    (MAX_BLOCK - 1, [(True, MAX_BLOCK - 1)]),
    (MAX_BLOCK, [(True, MAX_BLOCK)]),
    (MAX_BLOCK + 1, [(False, MAX_BLOCK), (True, 1)]),
    (3 * MAX_BLOCK, [(False, MAX_BLOCK), (False, MAX_BLOCK), (True, MAX_BLOCK)]),
]


@pytest.mark.parametrize(("size", "blocks"), SIZES, ids=[str(s) for s, _ in SIZES])
def test_stored_gzip_is_blocks_of_at_most_64k_that_every_gunzip_reads(
    size: int, blocks: list[tuple[bool, int]]
) -> None:
    data = os.urandom(size)
    blob = stored_gzip(data)
    assert _blocks(blob) == blocks
    assert gzip.decompress(blob) == data
    assert gzip_ng.decompress(blob) == data  # zlib-ng: what assemble reads layers with
    crc, length = struct.unpack("<II", blob[-8:])
    assert (crc, length) == (gzip.zlib.crc32(data), size)


def test_stored_gzip_bytes_are_fixed() -> None:
    """The bytes are a function of the input alone: any change here changes every assembled
    image's and bundle's digest, so it is made knowingly (a new version of every playbook
    is then a new digest, an old version is never rebuilt: see the README)."""
    data = b"".join(b"line %d of a playbook\n" % i for i in range(5000))  # 118,890 bytes
    assert hashlib.sha256(stored_gzip(data)).hexdigest() == (
        "bdaab9c0e93cd5f985ee40bf3bd461027d995a3f5db9f555127c269bed649cf6"
    )


def test_stored_gzip_does_not_depend_on_the_hosts_deflate() -> None:
    """Run where `zlib` is zlib-ng (a Python on Fedora 40 and later links it), the bytes are
    the same; the host's own gzip of the same data at zlib's default level is not."""
    data = (Path(__file__).resolve().parents[2] / "README.md").read_bytes()  # prose, 300 KB+
    script = (
        "import sys\n"
        "from zlib_ng import zlib_ng\n"
        "sys.modules['zlib'] = zlib_ng\n"
        "sys.modules.pop('gzip', None)\n"
        "import gzip, hashlib, json, zlib\n"
        "assert zlib is zlib_ng\n"
        "from playbookctl.oci.storedgzip import stored_gzip\n"
        "data = sys.stdin.buffer.read()\n"
        "print(json.dumps([hashlib.sha256(stored_gzip(data)).hexdigest(),\n"
        "  hashlib.sha256(gzip.compress(data, 6, mtime=0)).hexdigest()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=data, capture_output=True, check=True,
        env={**os.environ, "PYTHONPATH": TOOLING},
    )  # fmt: skip
    stored, deflated = json.loads(done.stdout)
    assert stored == hashlib.sha256(stored_gzip(data)).hexdigest()
    assert deflated != hashlib.sha256(gzip.compress(data, 6, mtime=0)).hexdigest()
