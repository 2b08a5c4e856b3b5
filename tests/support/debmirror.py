"""A Debian archive of the tests' own (playbookctl_dev/debian_archive.py's refusals): a loopback
HTTP server over a temporary directory laid out as deb.debian.org's bookworm, whose InRelease is
signed by a throwaway key (gpg in a temporary GNUPGHOME), with small .debs made here.

Faults are made by editing the served files after `publish()`: a .deb's bytes, a Packages.xz
that InRelease does not list, an InRelease unsigned, signed by another key, or altered."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import lzma
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What the stand-in takes from each package (base_image.PACKAGES), made small: busybox is a
# script answering `--list-full` (base_image runs it to list the applets).
FAKE_BUSYBOX = b"#!/bin/sh\nprintf '/bin/sh\\n/usr/bin/env\\n/bin/ls\\n'\n"


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n"
        out.write(header.encode())
        out.write(data)
        if len(data) % 2:
            out.write(b"\n")
    return out.getvalue()


def make_deb(files: dict[str, bytes], compression: str = "xz") -> bytes:
    """A .deb holding `files` (path -> content) in data.tar.<compression>."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(f"./{path}")
            info.size, info.mode = len(content), 0o755
            tar.addfile(info, io.BytesIO(content))
    data = raw.getvalue()
    if compression == "xz":
        packed = lzma.compress(data)
    elif compression == "gz":
        packed = gzip.compress(data)
    else:
        packed = data  # named .zst and the like but not compressed: it must be refused by name
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w"):
        pass
    control = lzma.compress(empty.getvalue())
    return _ar(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", control),
            (f"data.tar.{compression}", packed),
        ]
    )


@dataclass
class Signer:
    """A throwaway OpenPGP key in its own GNUPGHOME, and its public keyring file."""

    home: Path
    keyring: Path

    def sign(self, text: bytes) -> bytes:
        done = subprocess.run(
            ["gpg", "--batch", "--yes", "--homedir", str(self.home), "--clearsign"],
            input=text,
            capture_output=True,
            check=True,
            timeout=60,
        )
        return done.stdout


@contextlib.contextmanager
def signer(name: str) -> Iterator[Signer]:
    # A short directory: gpg-agent's socket path must fit a sockaddr_un.
    home = Path(tempfile.mkdtemp(prefix="pbgpg-"))
    try:
        home.chmod(0o700)
        gpg = ["gpg", "--batch", "--homedir", str(home)]
        subprocess.run(
            [
                *(*gpg, "--passphrase", "", "--quick-gen-key"),
                *(f"{name} <{name}@example.invalid>", "ed25519", "sign", "never"),
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        keyring = home / "keyring.gpg"
        keyring.write_bytes(
            subprocess.run([*gpg, "--export"], capture_output=True, check=True).stdout
        )
        yield Signer(home, keyring)
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False
        )
        shutil.rmtree(home, ignore_errors=True)


class _Handler(http.server.SimpleHTTPRequestHandler):
    served: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.served.append(self.path)


@dataclass
class Mirror:
    """The archive's directory, its URL while served, and every path requested."""

    root: Path
    signer: Signer
    url: str = ""
    requests: list[str] = field(default_factory=list)
    debs: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def add(
        self, package: str, arch: str, files: dict[str, bytes], compression: str = "xz"
    ) -> None:
        self.debs[(package, arch)] = make_deb(files, compression)

    def path(self, relative: str) -> Path:
        return self.root / relative

    def publish(self, archs: tuple[str, ...] = ("amd64", "arm64")) -> None:
        """Write the pool, each arch's Packages.xz and a signed InRelease listing them."""
        listed: list[tuple[str, int, str]] = []
        for arch in archs:
            stanzas = []
            for (package, deb_arch), deb in sorted(self.debs.items()):
                if deb_arch != arch:
                    continue
                filename = f"pool/main/{package[0]}/{package}/{package}_1.0-1_{arch}.deb"
                self.path(filename).parent.mkdir(parents=True, exist_ok=True)
                self.path(filename).write_bytes(deb)
                stanzas.append(
                    f"Package: {package}\nVersion: 1.0-1\nArchitecture: {arch}\n"
                    f"Filename: {filename}\nSize: {len(deb)}\n"
                    f"SHA256: {hashlib.sha256(deb).hexdigest()}\nDescription: test\n"
                )
            index = lzma.compress("\n".join(stanzas).encode())
            relative = f"main/binary-{arch}/Packages.xz"
            self.path(f"dists/bookworm/{relative}").parent.mkdir(parents=True, exist_ok=True)
            self.path(f"dists/bookworm/{relative}").write_bytes(index)
            listed.append((hashlib.sha256(index).hexdigest(), len(index), relative))
        release = (
            "Origin: Test\nSuite: oldstable\nCodename: bookworm\n"
            "Date: Sat, 11 Jul 2026 10:16:37 UTC\nArchitectures: amd64 arm64\n"
            "Components: main\nSHA256:\n" + "".join(f" {h} {n:>8} {p}\n" for h, n, p in listed)
        ).encode()
        self.path("dists/bookworm/Release").write_bytes(release)
        self.path("dists/bookworm/InRelease").write_bytes(self.signer.sign(release))


@contextlib.contextmanager
def serve(mirror: Mirror) -> Iterator[Mirror]:
    """Serve mirror.root on a loopback port; mirror.url points at it until the block ends."""
    mirror.root.mkdir(parents=True, exist_ok=True)

    class Handler(_Handler):
        served = mirror.requests

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(mirror.root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}/debian-test"
    # The URL's path is the mirror's root, as /debian on deb.debian.org.
    Handler.translate_path = _strip_prefix(Handler.translate_path, "/debian-test")  # type: ignore[method-assign]
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _strip_prefix(translate: Any, prefix: str) -> Any:
    def inner(self: Any, path: str) -> Any:
        return translate(self, path.removeprefix(prefix))

    return inner


def stand_in_files(arch: str) -> dict[str, dict[str, bytes]]:
    """package -> its files, as base_image takes them, for `arch`."""
    return {
        "busybox-static": {"bin/busybox": FAKE_BUSYBOX},
        "bash-static": {"bin/bash-static": f"bash for {arch}\n".encode()},
        "kubernetes-client": {"usr/bin/kubectl": f"kubectl for {arch}\n".encode()},
    }
