"""The busybox base-image stand-in, written straight into the registry: no Docker engine.

The same filesystem as base_image.py's engine build (`FROM scratch`, `COPY busybox /bin/busybox`,
`RUN busybox --install -s /bin`, `COPY passwd group /etc/`): three layers, /bin/busybox, one
symbolic link to /bin/busybox per applet (the applet list is what the host's statically linked
busybox says it has, the links `--install -s` makes), and /etc/passwd and /etc/group with the
non-root user 65532. Every platform's child is those layers under a config naming the platform,
as base_image.py does for the platforms the engine cannot run. For the demo and the tests on a
machine with no engine at all (a RUN-less release needs none: assemble.py).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

from playbookctl.build import registry_host
from playbookctl.config import DEFAULT_PLATFORMS, Config
from playbookctl.errors import FatalError
from playbookctl.oci import RegistryClient, image_index, parse_reference, sha256_digest
from playbookctl.platforms import Platform
from playbookctl_dev.base_image import BUSYBOX, GROUP, PASSWD

EPOCH = 0
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _tar(entries: Sequence[tuple[str, str, int, bytes | str]]) -> bytes:
    """(name, kind dir|file|link, mode, content or link target) -> an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, body in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime, info.uname, info.gname = mode, EPOCH, "root", "root"
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, str(body)
                tar.addfile(info)
            else:
                data = body if isinstance(body, bytes) else body.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _applets() -> list[str]:
    done = subprocess.run(
        [str(BUSYBOX), "--list"], check=True, capture_output=True, text=True, timeout=30
    )
    return sorted({a for a in done.stdout.split() if a and "/" not in a and a != "busybox"})


def layers() -> list[bytes]:
    """The three uncompressed layers of the stand-in."""
    if not BUSYBOX.is_file():
        raise FatalError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    binary = BUSYBOX.read_bytes()
    links = [(f"bin/{a}", "link", 0o777, "/bin/busybox") for a in _applets()]
    return [
        _tar([("bin", "dir", 0o755, b""), ("bin/busybox", "file", 0o755, binary)]),
        _tar([("bin", "dir", 0o755, b""), *links]),
        _tar(
            [
                ("etc", "dir", 0o755, b""),
                ("etc/group", "file", 0o644, GROUP),
                ("etc/passwd", "file", 0o644, PASSWD),
            ]
        ),
    ]


def push_base_image(registry: str, ref: str, platforms: Sequence[str] = DEFAULT_PLATFORMS) -> str:
    """Push the stand-in as an index of `platforms` under `ref`; return the index digest."""
    r = parse_reference(ref)
    raw = layers()
    packed = [gzip.compress(data, compresslevel=6, mtime=0) for data in raw]
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in raw]
    created_by = [
        "/bin/sh -c #(nop) COPY file:busybox in /bin/busybox ",
        "/bin/busybox --install -s /bin",
        "/bin/sh -c #(nop) COPY multi:passwd-group in /etc/ ",
    ]
    config = Config(root=Path("."), registry=registry_host(registry))
    with RegistryClient(config) as client:
        descriptors = []
        for data in packed:
            digest = client.push_blob(r.repository, data, registry=r.registry)
            descriptors.append({"mediaType": LAYER, "size": len(data), "digest": digest})
        children = []
        for name in platforms:
            platform = Platform.parse(name)
            image: dict[str, object] = {
                "architecture": platform.architecture,
                "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": None, "Labels": None},
                "created": "1970-01-01T00:00:00Z",
                "history": [
                    {"created": "1970-01-01T00:00:00Z", "created_by": c} for c in created_by
                ],
                "os": platform.os,
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
            if platform.variant:
                image["variant"] = platform.variant
            blob = json.dumps(image, sort_keys=True, separators=(",", ":")).encode()
            config_digest = client.push_blob(r.repository, blob, registry=r.registry)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": MANIFEST,
                    "config": {"mediaType": CONFIG, "size": len(blob), "digest": config_digest},
                    "layers": descriptors,
                },
                indent=3,
            ).encode()
            digest = sha256_digest(manifest)
            client.push_manifest(r.repository, digest, manifest, MANIFEST, registry=r.registry)
            children.append(
                (
                    client.read_back(f"{r.name}@{digest}"),
                    {
                        "os": platform.os,
                        "architecture": platform.architecture,
                        "variant": platform.variant,
                    },
                )
            )
        index, index_type = image_index(children)
        return client.push_manifest(
            r.repository, r.tag or "latest", index, index_type, registry=r.registry
        )
