"""A blob held in a file, not in memory: an engine build's new layer can be gigabytes.

Its size and digest are known when it is made (the writer hashes what it writes); its bytes are
read from the file only as an upload sends them: a monolithic PUT streams it (each request gets
a fresh reader at offset 0, so a retried or re-authenticated request sends it all again), a
chunked upload reads one chunk at a time (`blob[a:b]`). Reads are positional (os.pread), so
readers never share a file offset.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zlib
from typing import IO, Any

READ_SIZE = 1 << 20  # what is held at once while a blob is written or read


class FileBlob:
    """A blob's bytes in an open (anonymous) temporary file, with its size and digest."""

    def __init__(self, file: IO[bytes], size: int, digest: str) -> None:
        self.file = file
        self.size = size
        self.digest = digest

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, part: slice) -> bytes:
        start, stop, step = part.indices(self.size)
        if step != 1:
            raise ValueError("a blob is read in contiguous parts")
        return self._read(start, max(0, stop - start))

    def __bytes__(self) -> bytes:
        """The whole blob in memory (for a caller that needs bytes, e.g. a test)."""
        return self._read(0, self.size)

    def reader(self) -> BlobReader:
        """A request body: the blob from its first byte, read as it is sent."""
        return BlobReader(self)

    def close(self) -> None:
        self.file.close()

    def _read(self, offset: int, n: int) -> bytes:
        parts = []
        while n > 0:
            got = os.pread(self.file.fileno(), min(n, READ_SIZE), offset)
            if not got:
                raise OSError(f"blob {self.digest[:19]}: its file ended early")
            parts.append(got)
            offset += len(got)
            n -= len(got)
        return b"".join(parts)


class BlobReader(io.RawIOBase):
    """A seekable, sized, read-only view of a FileBlob: the transport sends it from its first
    byte with the blob's size as Content-Length and reads it in blocks."""

    def __init__(self, blob: FileBlob) -> None:
        super().__init__()
        self.blob = blob
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.blob.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def __len__(self) -> int:
        # The whole size, as for a file (a client that takes a body's length as len() - tell(),
        # as requests does, then sends what is left from the position).
        return self.blob.size

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self.blob.size - self.pos)
        if n <= 0:
            return 0
        data = self.blob[self.pos : self.pos + n]
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)


def gzip_to_file(src: IO[bytes], gzip_level: int) -> FileBlob:
    """`src`'s content gzip-compressed into a temporary file: the very bytes
    `zlib.compress(data, level=gzip_level, wbits=31)` (gzip.compress with mtime=0) gives for
    the whole content at once (zlib's output does not depend on how its input is split when
    nothing is flushed), hashed as it is written, in bounded memory."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - the FileBlob owns it and closes it
    try:
        packer = zlib.compressobj(gzip_level, zlib.DEFLATED, 31)
        sha = hashlib.sha256()
        size = 0
        while True:
            block = src.read(READ_SIZE)
            packed = packer.compress(block) if block else packer.flush()
            sha.update(packed)
            out.write(packed)
            size += len(packed)
            if not block:
                break
        out.flush()
    except BaseException:
        out.close()
        raise
    return FileBlob(out, size, f"sha256:{sha.hexdigest()}")
