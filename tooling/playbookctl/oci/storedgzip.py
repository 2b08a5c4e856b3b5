"""gzip every machine writes alike: the layers playbookctl makes itself, in deflate's stored
blocks, written here.

A gzip stream's bytes are its compressor's choices, not its content's: zlib, zlib-ng (the
system zlib of Fedora 40 and later, which Python there links) and IBM Z's hardware deflate each
compress the same tar into other bytes, so a layer compressed by the host's zlib has a digest
of that host's. Stored blocks involve no choice:
the header, each block of at most 65,535 bytes with its length, then the CRC-32 and the size.
So an assembled image's and a bundle's digests depend on their content only, on any machine
(`test_a_machine_whose_zlib_compresses_otherwise_publishes_the_same_images`). The cost is the
compression: these layers are a playbook's few files and a Pipeline's JSON, kilobytes each.
Layers an engine's RUN steps write can be large and are compressed by the host's zlib instead
(build.engine_image).
"""

from __future__ import annotations

import struct
import zlib

# magic, deflate, no flags, mtime 0, no extra flags, OS "unknown": as gzip.GzipFile(mtime=0)
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
MAX_BLOCK = 0xFFFF  # a stored block's length is 16 bits


def stored_gzip(data: bytes) -> bytes:
    """`data` as a gzip member of stored deflate blocks (the last one marked final; empty
    data is one empty final block), with a fixed header: the same bytes on every machine."""
    view = memoryview(data)
    out = bytearray(HEADER)
    offset = 0
    while True:
        block = view[offset : offset + MAX_BLOCK]
        offset += len(block)
        final = offset >= len(data)
        # BFINAL then BTYPE 00 (stored) in the first three bits, the rest of the byte padding
        out += struct.pack("<BHH", 1 if final else 0, len(block), len(block) ^ 0xFFFF)
        out += block
        if final:
            break
    out += struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return bytes(out)
