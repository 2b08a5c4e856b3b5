"""A local stand-in for playbooks' base images, for the tests, the demo and `dev up`.

Docker Hub is out of reach on development and CI machines, and a playbook's FROM line must stay
what production needs. So the demo and the tests make a FROM-scratch image that gives a
playbook's script what the production base (alpine/k8s) gives it, push it to the loopback
registry, and map every FROM reference found in the playbooks' Containerfiles to it
(PLAYBOOKCTL_BASE_IMAGE_OVERRIDES). The publish stage refuses to push such builds anywhere but a
loopback registry.

What the stand-in holds, for each platform, from Debian bookworm's packages *for that
architecture*, fetched from Debian's archive and verified as apt verifies them
(debian_archive.py: whatever the host's distribution, no apt or dpkg-deb involved), unpacked
here, so nothing runs at build time and no emulation is needed to make it:
- busybox-static: /bin/sh, /usr/bin/env and the coreutils (every applet, as a symlink);
- bash-static: /bin/bash (the samples' scripts start with `#!/usr/bin/env bash`);
- kubernetes-client: /usr/bin/kubectl (a real, statically linked kubectl; Debian 12 ships 1.20,
  older than production's, which is enough for a smoke run's `kubectl version --client`);
- /etc/passwd and /etc/group with root and the non-root user 65532 ("playbook"), and /tmp.
Its arm64 child therefore holds aarch64 binaries: the smoke run starts it for real (through
QEMU on an amd64 machine). Production's jq is not in it (Debian's is not statically linked).

The image is assembled here, without an engine (one deterministic gzip layer per platform), and
cached per machine under `cache_dir()`, keyed by the packages' versions and SHA256s: the .debs
are downloaded and the layers built once, then every test session or demo fetches InRelease
(to learn whether Debian published new packages) and only pushes the cached layers.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from playbookctl.build import Engine, registry_host
from playbookctl.config import DEFAULT_PLATFORMS, Config
from playbookctl.errors import FatalError
from playbookctl.lint.cache import cache_root
from playbookctl.oci import (
    DOCKER_MANIFEST,
    RegistryClient,
    image_index,
    parse_reference,
    sha256_digest,
)
from playbookctl.platforms import Platform, kernel_architecture
from playbookctl.playbook import CONTAINERFILES
from playbookctl_dev.debian_archive import (
    DEBIAN_KEYRING,
    MIRROR_ENV,
    ArchiveError,
    Deb,
    download,
    extract,
    fetch,
    inrelease_url,
    mirror_url,
    resolve,
    verify_inrelease,
)

# Debian package -> where its binary goes in the stand-in.
PACKAGES = {
    "busybox-static": ("bin/busybox", "bin/busybox"),
    "bash-static": ("bin/bash-static", "bin/bash"),
    "kubernetes-client": ("usr/bin/kubectl", "usr/bin/kubectl"),
}
# Bumped when the layout below changes, so a cached layer made by an older builder is not used.
LAYOUT_VERSION = "2"
STAND_IN_LABEL = "dev.playbookctl.stand-in"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# /etc/passwd content, no secret
PASSWD = "".join(
    f"{user}:x:{uid}:{uid}:{user}:{home}:{shell}\n"
    for user, uid, home, shell in (
        ("root", 0, "/root", "/bin/sh"),
        ("playbook", 65532, "/tmp", "/bin/sh"),  # noqa: S108 - a home inside the image
        ("nobody", 65534, "/nonexistent", "/bin/false"),
    )
)
GROUP = "root:x:0:\nplaybook:x:65532:\nnogroup:x:65534:\n"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_EPOCH = "1970-01-01T00:00:00Z"  # the layers' and config's time: the same packages, same digests
_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(?P<image>\S+)", re.IGNORECASE | re.MULTILINE)
# Debian's names for the architectures the stand-in can hold.
_DEBIAN_ARCH = {"amd64": "amd64", "arm64": "arm64", "arm": "armhf", "386": "i386"}
# Beside the layers: the last verified InRelease and what was resolved from it.
INRELEASE_FILE = "InRelease"
STATE_FILE = "resolved.json"


class StandInError(FatalError):
    """The stand-in base cannot be made on this machine (Debian's archive out of reach with
    nothing cached, a package or architecture missing from it, or what it served not verified)."""


def cache_dir() -> Path:
    """Where the built layers are kept: PLAYBOOKCTL_STAND_IN_CACHE, else stand-in/ in the cache
    directory lint and `dev` use ($PLAYBOOKCTL_CACHE_DIR, default ~/.cache/playbookctl)."""
    explicit = os.environ.get("PLAYBOOKCTL_STAND_IN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    return cache_root() / "stand-in"


def debian_arch(platform: Platform) -> str:
    arch = _DEBIAN_ARCH.get(platform.architecture)
    if arch is None:
        raise StandInError(f"the stand-in base has no recipe for {platform}")
    return arch


def native_arch() -> str | None:
    """This machine's Debian architecture (whose busybox can run here), if the stand-in has it."""
    return _DEBIAN_ARCH.get(kernel_architecture(os.uname().machine))


@dataclass(frozen=True)
class Layer:
    """One platform's layer in the cache: its gzip file and identities."""

    path: Path
    digest: str  # of the gzip bytes
    diff_id: str  # of the uncompressed tar
    size: int
    packages: dict[str, str]  # package -> version


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One builder per cache at a time (parallel test processes share it)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class _State:
    """What the cache knows of the archive: the last verified InRelease (its SHA256) and the
    packages resolved from it, `package:arch` -> Deb."""

    inrelease: str = ""
    debs: dict[str, Deb] = field(default_factory=dict)

    @classmethod
    def read(cls, cache: Path) -> _State:
        try:
            data = json.loads((cache / STATE_FILE).read_text())
            return cls(
                str(data["inrelease_sha256"]),
                {k: Deb.from_json(v) for k, v in data["debs"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError):
            return cls()

    def has(self, archs: Sequence[str]) -> bool:
        return all(f"{p}:{a}" in self.debs for a in archs for p in PACKAGES)

    def of(self, arch: str) -> dict[str, Deb]:
        return {p: self.debs[f"{p}:{arch}"] for p in PACKAGES}

    def write(self, cache: Path, signed: bytes) -> None:
        data = {
            "inrelease_sha256": self.inrelease,
            "debs": {k: d.to_json() for k, d in sorted(self.debs.items())},
        }
        for name, content in ((INRELEASE_FILE, signed), (STATE_FILE, _json(data))):
            tmp = cache / f".{name}.tmp"
            tmp.write_bytes(content)
            tmp.rename(cache / name)


def _json(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _key(arch: str, debs: dict[str, Deb]) -> str:
    """The cache entry of one architecture's layer: the layout and the packages' identities."""
    ids = {p: [d.version, d.sha256] for p, d in sorted(debs.items())}
    return hashlib.sha256(json.dumps([LAYOUT_VERSION, arch, ids]).encode()).hexdigest()[:16]


def stand_in_layers(
    platforms: Sequence[Platform],
    cache: Path | None = None,
    *,
    keyring: Path = DEBIAN_KEYRING,
) -> dict[str, Layer]:
    """platform -> its stand-in layer, built (downloading the packages from Debian's archive)
    unless cached. `keyring` is Debian's; the tests alone pass another, for a mirror of theirs.

    Only InRelease is fetched when the cache is warm: the Packages indexes are read again only
    when its content changed. With the mirror out of reach, the cached layers are used."""
    cache = cache or cache_dir()
    archs = sorted({debian_arch(p) for p in platforms})
    native = native_arch()
    # busybox's applet list is read by running the package's busybox: this machine's arch's.
    needed = sorted({*archs, *([native] if native else [])})
    mirror = mirror_url()
    url = inrelease_url(mirror)
    try:
        signed: bytes | None = fetch(url)
        unreachable = None
    except ArchiveError as exc:
        signed, unreachable = None, exc
    with _locked(cache):
        state = _State.read(cache)
        if signed is None:
            if not (state.has(archs) and all(_cached(cache, a, state.of(a)) for a in archs)):
                raise StandInError(
                    f"the stand-in base is made from Debian's archive at {mirror} (set"
                    f" {MIRROR_ENV} for another mirror), which cannot be read: {unreachable};"
                    f" and no stand-in is cached in {cache}"
                )
            print(
                f"warning: Debian's archive cannot be read ({unreachable}): using the stand-in"
                f" base cached in {cache}",
                file=sys.stderr,
            )
        else:
            digest = hashlib.sha256(signed).hexdigest()
            if state.inrelease != digest:
                state = _State(digest)
            missing = [a for a in needed if not state.has([a])]
            if missing:
                try:
                    release = verify_inrelease(signed, keyring, url=url)
                    state.debs.update(
                        {
                            f"{d.package}:{d.arch}": d
                            for d in resolve(mirror, release, list(PACKAGES), missing)
                        }
                    )
                except ArchiveError as exc:
                    raise StandInError(str(exc)) from None
            todo = [a for a in archs if not _cached(cache, a, state.of(a))]
            if todo:
                _build_layers(cache, mirror, state, todo, native)
            state.write(cache, signed)
            # Layers of packages since replaced go: the cache holds one set (a build's temporary
            # directory, a dot name, is its builder's).
            keep = {_key(a, state.of(a)) for a in {d.arch for d in state.debs.values()}}
            for old in cache.iterdir():
                if old.is_dir() and not old.name.startswith(".") and old.name not in keep:
                    shutil.rmtree(old, ignore_errors=True)
    layers: dict[str, Layer] = {}
    for platform in platforms:
        arch = debian_arch(platform)
        here = cache / _key(arch, state.of(arch)) / arch
        meta = json.loads((here / "layer.json").read_text())
        layers[str(platform)] = Layer(
            path=here / "layer.tar.gz",
            digest=meta["digest"],
            diff_id=meta["diff_id"],
            size=meta["size"],
            packages=meta["packages"],
        )
    return layers


def _cached(cache: Path, arch: str, debs: dict[str, Deb]) -> bool:
    return (cache / _key(arch, debs) / arch / "layer.json").is_file()


def _build_layers(
    cache: Path, mirror: str, state: _State, archs: Sequence[str], native: str | None
) -> None:
    """Download every package first (each checked), then unpack and write each arch's
    layer.tar.gz + layer.json: a refused package leaves nothing in the cache."""
    with tempfile.TemporaryDirectory(prefix=".build-", dir=cache) as tmp:
        work = Path(tmp)
        binaries: dict[str, dict[str, Path]] = {}
        try:
            for arch in archs:
                (work / arch).mkdir()
                binaries[arch] = {}
                for package, (inside, _target) in PACKAGES.items():
                    deb = download(mirror, state.debs[f"{package}:{arch}"], work / arch)
                    binaries[arch][package] = extract(deb, inside, work / arch / package)
                    deb.unlink()
            if native is None:
                raise StandInError(
                    f"the stand-in base lists busybox's applets by running Debian's busybox,"
                    f" and there is none for this machine ({os.uname().machine})"
                )
            busybox = binaries.get(native, {}).get("busybox-static")
            if busybox is None:
                (work / "native").mkdir()
                deb = download(mirror, state.debs[f"busybox-static:{native}"], work / "native")
                busybox = extract(deb, PACKAGES["busybox-static"][0], work / "native" / "busybox")
        except ArchiveError as exc:
            raise StandInError(str(exc)) from None
        busybox.chmod(0o755)
        applets = _busybox_applets(busybox)
        for arch in archs:
            debs = state.of(arch)
            _write_layer(
                work / arch,
                cache / _key(arch, debs) / arch,
                binaries[arch],
                applets,
                {p: d.version for p, d in debs.items()},
            )


def _write_layer(
    work: Path,
    dest: Path,
    binaries: dict[str, Path],
    applets: list[str],
    versions: dict[str, str],
) -> None:
    """Write layer.tar.gz + layer.json for one arch's unpacked binaries, then move them in."""
    raw = work / "layer.tar"
    with raw.open("wb") as fh:
        _write_rootfs(fh, binaries, applets, versions)
    diff_id = sha256_digest_file(raw)
    layer = work / "layer.tar.gz"
    # mtime 0 and no file name: the same tar gives the same gzip bytes.
    with (
        raw.open("rb") as src,
        layer.open("wb") as out,
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="", compresslevel=6) as gz,
    ):
        shutil.copyfileobj(src, gz, 1 << 20)
    raw.unlink()
    meta = {
        "digest": sha256_digest_file(layer),
        "diff_id": diff_id,
        "size": layer.stat().st_size,
        "packages": versions,
    }
    final = work / "out"
    final.mkdir()
    layer.rename(final / "layer.tar.gz")
    (final / "layer.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    final.rename(dest)


def _busybox_applets(busybox: Path) -> list[str]:
    """Every applet's install path (`usr/bin/env`, ...), from Debian's busybox of this machine's
    architecture: the list is a build-time setting of the package, the same for each
    architecture of one version (the foreign one is not run, as it may need emulation), and
    the host's own busybox may be another version (Ubuntu's)."""
    out = _run([str(busybox), "--list-full"], cwd=Path("/"), what="listing busybox's applets")
    return sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})


def _run(argv: list[str], *, cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=600
        )
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise StandInError(f"{what}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise StandInError(f"{what}: {' / '.join(tail) or f'exit {done.returncode}'}")
    return done.stdout


def sha256_digest_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def _write_rootfs(
    fh: io.BufferedWriter,
    binaries: dict[str, Path],
    applets: list[str],
    versions: dict[str, str],
) -> None:
    """The stand-in's one layer: sorted entries, owner root, time 0, so it is reproducible."""
    entries: dict[str, tarfile.TarInfo] = {}
    data: dict[str, bytes | Path] = {}

    def add_dir(name: str, mode: int = 0o755) -> None:
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in entries:
                info = tarfile.TarInfo(sub)
                info.type, info.mode = tarfile.DIRTYPE, mode if sub == name else 0o755
                entries[sub] = info

    def add_file(name: str, content: bytes | Path, mode: int = 0o644) -> None:
        add_dir(name.rpartition("/")[0])
        info = tarfile.TarInfo(name)
        info.mode = mode
        info.size = content.stat().st_size if isinstance(content, Path) else len(content)
        entries[name], data[name] = info, content

    def add_link(name: str, target: str) -> None:
        add_dir(name.rpartition("/")[0])
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        entries[name] = info

    for applet in applets:
        if applet != "bin/busybox":
            add_link(applet, "/bin/busybox")
    for package, (_inside, target) in PACKAGES.items():
        add_file(target, binaries[package], 0o755)
    add_file("etc/passwd", PASSWD.encode())
    add_file("etc/group", GROUP.encode())
    notice = "playbookctl's stand-in base (playbookctl_dev/base_image.py), from Debian:\n"
    notice += "".join(f"  {p} {v}\n" for p, v in sorted(versions.items()))
    add_file("etc/playbookctl-stand-in", notice.encode())
    add_dir("tmp", 0o1777)
    add_dir("root", 0o700)
    add_dir("usr/local/bin")
    with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            info = entries[name]
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            content = data.get(name)
            if isinstance(content, Path):
                with content.open("rb") as src:
                    tar.addfile(info, src)
            elif content is not None:
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)


def image_config(platform: Platform, layer: Layer) -> bytes:
    """The stand-in's image config for `platform` (no USER: root, as alpine/k8s)."""
    packages = ", ".join(f"{p} {v}" for p, v in sorted(layer.packages.items()))
    config = {
        "architecture": platform.architecture,
        "os": platform.os,
        **({"variant": platform.variant} if platform.variant else {}),
        "created": _EPOCH,
        "config": {
            "Env": [f"PATH={PATH}"],
            "Cmd": ["/bin/sh"],
            "Labels": {STAND_IN_LABEL: f"Debian {packages}"},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [
            {"created": _EPOCH, "created_by": f"playbookctl_dev stand-in base: {packages}"}
        ],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def make_base_image(
    engine_url: str | None,
    workdir: Path,
    ref: str,
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    *,
    cache: Path | None = None,
) -> str:
    """Push the stand-in as an index of `platforms` under `ref` (a `registry/repo:tag` on a
    loopback registry) and return the index digest. With an engine, its native child is also
    pulled and tagged `ref` there, for builds FROM `ref` without a platform."""
    wanted = [Platform.parse(p) for p in platforms]
    layers = stand_in_layers(wanted, cache)
    workdir.mkdir(parents=True, exist_ok=True)
    r = parse_reference(ref)
    config = Config(root=workdir, registry=registry_host(ref))
    children = []
    with RegistryClient(config) as client:
        for platform in wanted:
            layer = layers[str(platform)]
            client.push_blob(r.repository, layer.path.read_bytes(), layer.digest)
            config_bytes = image_config(platform, layer)
            config_digest = client.push_blob(r.repository, config_bytes)
            manifest = {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {
                    "mediaType": DOCKER_CONFIG,
                    "digest": config_digest,
                    "size": len(config_bytes),
                },
                "layers": [{"mediaType": DOCKER_LAYER, "digest": layer.digest, "size": layer.size}],
            }
            data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
            child_digest = sha256_digest(data)
            client.push_manifest(r.repository, child_digest, data, DOCKER_MANIFEST)
            children.append(
                (
                    client.read_back(f"{r.name}@{child_digest}"),
                    {
                        "os": platform.os,
                        "architecture": platform.architecture,
                        "variant": platform.variant,
                    },
                )
            )
        index, index_type = image_index(children)
        digest = client.push_manifest(r.repository, r.tag or "latest", index, index_type)
    if engine_url is not None:
        with Engine(engine_url) as engine:
            native = Platform("linux", kernel_architecture(engine.native_architecture()))
            if native in wanted:
                engine.pull(ref, platform=str(native))
    return digest


def from_references(playbooks_dir: Path) -> list[str]:
    """Every external FROM reference of the playbooks' Containerfiles (stage names excluded)."""
    found: set[str] = set()
    for d in sorted(p for p in playbooks_dir.iterdir() if p.is_dir()):
        for name in CONTAINERFILES:
            path = d / name
            if path.is_file():
                text = path.read_text("utf-8", errors="replace")
                stages = set(re.findall(r"\bAS\s+(\S+)", text, re.IGNORECASE))
                found |= {
                    m.group("image")
                    for m in _FROM.finditer(text)
                    if m.group("image") not in stages and m.group("image") != "scratch"
                }
    return sorted(found)


def overrides_for(playbooks_dir: Path, stand_in: str) -> dict[str, str]:
    """FROM reference -> stand-in, for every base the playbooks use."""
    return dict.fromkeys(from_references(playbooks_dir), stand_in)
