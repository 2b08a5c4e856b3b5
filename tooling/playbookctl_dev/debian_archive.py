"""Debian's archive, read directly: the stand-in base's packages whatever the host distribution.

The stand-in (base_image.py) is made from Debian bookworm's packages for amd64 and arm64. The
host's apt cannot be asked for them everywhere: Ubuntu's archive serves no arm64 indexes (they
live on ports.ubuntu.com) and has no `kubernetes-client`. So this module reads the archive as
apt does, with apt's chain of trust:

- `dists/bookworm/InRelease`, verified with `gpgv` against Debian's keyring
  (/usr/share/keyrings/debian-archive-keyring.gpg, package debian-archive-keyring); only the
  signed text is used from then on;
- `main/binary-<arch>/Packages.xz`, whose size and SHA256 must be those InRelease lists;
- each package's Filename, Size and SHA256 from it, and the .deb, checked against them.

A .deb is unpacked here (an `ar` archive whose data.tar.xz/.gz holds the files), so neither
apt nor dpkg-deb is needed. Every failure is an ArchiveError, one line naming what failed.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.client
import io
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from playbookctl.errors import FatalError

DEFAULT_MIRROR = "https://deb.debian.org/debian"
MIRROR_ENV = "PLAYBOOKCTL_STAND_IN_MIRROR"
SUITE = "bookworm"
COMPONENT = "main"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
TIMEOUT = 60.0  # seconds without an answer from the mirror
_FIELD = re.compile(r"^([A-Za-z0-9-]+):[ \t]*(.*)$")


class ArchiveError(FatalError):
    """Debian's archive cannot be read, or what it served is not what its signature says."""


@dataclass(frozen=True)
class Deb:
    """One package of one architecture, as the verified Packages index gives it."""

    package: str
    arch: str
    version: str
    filename: str  # relative to the mirror (pool/main/...)
    size: int
    sha256: str  # hex

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deb:
        return cls(
            package=str(data["package"]),
            arch=str(data["arch"]),
            version=str(data["version"]),
            filename=str(data["filename"]),
            size=int(data["size"]),
            sha256=str(data["sha256"]),
        )


def mirror_url() -> str:
    """The mirror: PLAYBOOKCTL_STAND_IN_MIRROR, default deb.debian.org (a CDN in front of every
    official mirror, reachable from GitHub's runners)."""
    return (os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR).rstrip("/")


def inrelease_url(mirror: str) -> str:
    return f"{mirror}/dists/{SUITE}/InRelease"


def fetch(url: str) -> bytes:
    """GET `url` (urllib honours https_proxy/http_proxy/no_proxy); an ArchiveError otherwise."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:  # noqa: S310 - http(s) only
            data: bytes = resp.read()
            return data
    except urllib.error.HTTPError as exc:
        raise ArchiveError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ArchiveError(f"{url}: {reason or type(exc).__name__}") from None


def verify_inrelease(signed: bytes, keyring: Path, *, url: str) -> str:
    """The text InRelease's signature covers, if a key of `keyring` made a good signature and
    none is bad (what apt's gpgv method accepts); an ArchiveError naming what failed otherwise."""
    if not keyring.is_file():
        raise ArchiveError(
            f"{url}: cannot verify it: {keyring} is missing"
            " (`make system-deps` installs debian-archive-keyring)"
        )
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise ArchiveError(
            f"{url}: cannot verify it: gpgv is missing (`make system-deps` installs it)"
        )
    with tempfile.TemporaryDirectory(prefix="playbookctl-gpgv-") as tmp:
        src, out = Path(tmp) / "InRelease", Path(tmp) / "Release"
        src.write_bytes(signed)
        try:
            done = subprocess.run(
                # An empty home of its own: nothing of the user's GnuPG set-up is read or written.
                [
                    *(gpgv, "--homedir", f"{tmp}/home", "--status-fd", "1"),
                    *("--keyring", str(keyring), "--output", str(out), str(src)),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ArchiveError(f"{url}: gpgv failed: {exc}") from None
        status = [
            line.split()[1:]
            for line in done.stdout.splitlines()
            if line.startswith("[GNUPG:] ") and len(line.split()) > 1
        ]
        words = {s[0] for s in status}
        # Several keys sign Debian's InRelease: one unknown to the keyring (NO_PUBKEY) does not
        # void another's good signature, as with apt; a bad one voids everything.
        if "BADSIG" in words or not {"GOODSIG", "VALIDSIG"} <= words or not out.is_file():
            seen = sorted(words & {"BADSIG", "ERRSIG", "NO_PUBKEY", "EXPKEYSIG", "REVKEYSIG"})
            detail = ", ".join(seen) or (
                "no signature" if "NODATA" in words or not words else "no good signature"
            )
            raise ArchiveError(f"{url}: signature not verified against {keyring} ({detail})")
        text = out.read_bytes().decode("utf-8", errors="replace")
    fields = _fields(text.split("\n\n", 1)[0])
    if SUITE not in (fields.get("Codename"), fields.get("Suite")):
        raise ArchiveError(f"{url}: is not {SUITE}'s (Codename {fields.get('Codename')!r})")
    valid_until = fields.get("Valid-Until")
    if valid_until:
        try:
            until = email.utils.parsedate_to_datetime(valid_until).timestamp()
        except (TypeError, ValueError):
            raise ArchiveError(f"{url}: an unreadable Valid-Until: {valid_until}") from None
        if until < time.time():
            raise ArchiveError(f"{url}: expired (Valid-Until: {valid_until})")
    return text


def _fields(stanza: str) -> dict[str, str]:
    """One deb822 stanza's single-line fields (continuation lines are not needed here)."""
    fields: dict[str, str] = {}
    for line in stanza.splitlines():
        m = _FIELD.match(line)
        if m:
            fields[m.group(1)] = m.group(2).strip()
    return fields


def index_entry(release: str, path: str) -> tuple[str, int]:
    """(sha256, size) of `path` (e.g. main/binary-amd64/Packages.xz) in InRelease's SHA256
    list."""
    in_sha256 = False
    for line in release.splitlines():
        if not line.startswith((" ", "\t")):
            in_sha256 = line.rstrip() == "SHA256:"
            continue
        parts = line.split()
        if in_sha256 and len(parts) == 3 and parts[2] == path:
            return parts[0].lower(), int(parts[1])
    raise ArchiveError(f"{SUITE}'s InRelease lists no SHA256 for {path}")


def packages_index(mirror: str, release: str, arch: str) -> str:
    """main/binary-<arch>/Packages, checked against the verified InRelease, decompressed."""
    path = f"{COMPONENT}/binary-{arch}/Packages.xz"
    sha256, size = index_entry(release, path)
    base = f"{mirror}/dists/{SUITE}/{COMPONENT}/binary-{arch}"
    # By hash when the archive offers it (as apt does): a mirror updated between our two
    # requests then still serves the file InRelease names.
    by_hash = _fields(release.split("\n\n", 1)[0]).get("Acquire-By-Hash", "").lower() == "yes"
    url = f"{base}/by-hash/SHA256/{sha256}" if by_hash else f"{base}/Packages.xz"
    data = fetch(url)
    _check(data, sha256, size, f"{mirror}/dists/{SUITE}/{path}", "InRelease")
    try:
        return lzma.decompress(data).decode("utf-8", errors="replace")
    except lzma.LZMAError as exc:
        raise ArchiveError(f"{url}: not an xz file ({exc})") from None


def _check(data: bytes, sha256: str, size: int, what: str, source: str) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != sha256 or len(data) != size:
        raise ArchiveError(
            f"{what}: SHA256 {got} ({len(data)} bytes) is not the {sha256} ({size} bytes)"
            f" {source} lists: refused"
        )


def find_packages(index: str, arch: str, names: Iterable[str]) -> dict[str, Deb]:
    """name -> its Deb in one architecture's Packages text; an ArchiveError naming the first
    package the index does not hold."""
    wanted = set(names)
    found: dict[str, Deb] = {}
    for m in re.finditer(r"^Package: (\S+)\n", index, re.MULTILINE):
        if m.group(1) not in wanted or m.group(1) in found:
            continue
        end = index.find("\n\n", m.start())
        fields = _fields(index[m.start() : end if end >= 0 else len(index)])
        try:
            found[m.group(1)] = Deb(
                package=m.group(1),
                arch=arch,
                version=fields["Version"],
                filename=fields["Filename"],
                size=int(fields["Size"]),
                sha256=fields["SHA256"].lower(),
            )
        except (KeyError, ValueError) as exc:
            raise ArchiveError(
                f"{SUITE} {COMPONENT}/binary-{arch}: {m.group(1)}'s entry lacks {exc}"
            ) from None
    for name in sorted(wanted):
        if name not in found:
            raise ArchiveError(
                f"{SUITE} {COMPONENT}/binary-{arch} has no package {name} for {arch}"
            )
    return found


def resolve(mirror: str, release: str, packages: Sequence[str], archs: Sequence[str]) -> list[Deb]:
    """Every package of every arch, from the verified indexes."""
    debs: list[Deb] = []
    for arch in archs:
        found = find_packages(packages_index(mirror, release, arch), arch, packages)
        debs += [found[p] for p in packages]
    return debs


def download(mirror: str, deb: Deb, dest_dir: Path) -> Path:
    """The .deb, checked against its verified index entry, written into dest_dir."""
    url = f"{mirror}/{deb.filename}"
    data = fetch(url)
    _check(data, deb.sha256, deb.size, url, f"{SUITE} {COMPONENT}/binary-{deb.arch}/Packages")
    path = dest_dir / f"{deb.package}_{deb.arch}.deb"
    path.write_bytes(data)
    return path


def _ar_members(data: bytes, what: str) -> Iterable[tuple[str, bytes]]:
    """(name, content) of each member of an `ar` archive (a .deb's outer format)."""
    if not data.startswith(b"!<arch>\n"):
        raise ArchiveError(f"{what}: not a .deb (no ar header)")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        if header[58:60] != b"`\n":
            raise ArchiveError(f"{what}: a damaged ar member header at byte {pos}")
        name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise ArchiveError(f"{what}: a damaged ar member header at byte {pos}") from None
        yield name, data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)  # members are 2-byte aligned


def data_tar(deb: Path) -> bytes:
    """The uncompressed data.tar of a .deb (xz or gzip, as Debian builds them)."""
    for name, content in _ar_members(deb.read_bytes(), str(deb)):
        if not name.startswith("data.tar"):
            continue
        try:
            if name == "data.tar.xz":
                return lzma.decompress(content)
            if name == "data.tar.gz":
                return gzip.decompress(content)
        except (lzma.LZMAError, OSError, EOFError) as exc:
            raise ArchiveError(f"{deb.name}: {name} does not decompress ({exc})") from None
        if name == "data.tar":
            return content
        raise ArchiveError(f"{deb.name}: its {name} is compressed in a way not handled here")
    raise ArchiveError(f"{deb.name}: no data.tar member")


def extract(deb: Path, inside: str, dest: Path) -> Path:
    """Write the file `inside` (e.g. bin/busybox) of the .deb's data.tar to `dest`."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data_tar(deb)), mode="r:") as tar:
            for member in tar.getmembers():
                if member.name.removeprefix("./") == inside:
                    fh = tar.extractfile(member)  # a symlink's target inside the archive, if any
                    if fh is None:
                        break
                    with fh, dest.open("wb") as out:
                        shutil.copyfileobj(fh, out)
                    return dest
    except tarfile.TarError as exc:
        raise ArchiveError(f"{deb.name}: a damaged data.tar ({exc})") from None
    raise ArchiveError(f"{deb.name}: holds no regular file {inside}")
