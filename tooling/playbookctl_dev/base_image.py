"""A local stand-in for playbooks' base images, for the demo and the benchmarks.

Docker Hub is out of reach on development and CI machines, and a playbook's FROM line must stay
what production needs. So the demo builds a tiny FROM-scratch image holding Debian's statically
linked busybox and a non-root user, pushes it to the loopback registry, and maps every FROM
reference found in the playbooks' Containerfiles to it (PLAYBOOKCTL_BASE_IMAGE_OVERRIDES). The
publish stage refuses to push such builds anywhere but a loopback registry.

The stand-in is an image index with one child per platform, as a real base is: the engine
builds the machine's own platform (its RUN runs natively), and every other platform's child is
the same layers under a config naming that platform. Nothing in the base is executed by a
RUN-less build, so those children serve a RUN-less playbook exactly as a real base would; a RUN
step for a foreign platform is refused before building unless emulation is present.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from playbookctl.build import Engine, registry_host
from playbookctl.config import DEFAULT_PLATFORMS, Config
from playbookctl.errors import FatalError
from playbookctl.oci import RegistryClient, image_index, parse_reference, sha256_digest
from playbookctl.platforms import Platform, kernel_architecture
from playbookctl.playbook import CONTAINERFILES

BUSYBOX = Path("/bin/busybox")
CONTAINERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY passwd group /etc/
"""
PASSWD = "root:x:0:0:root:/root:/bin/sh\nplaybook:x:65532:65532:playbook:/tmp:/bin/sh\n"  # noqa: S105 - /etc/passwd content, no secret
GROUP = "root:x:0:\nplaybook:x:65532:\n"
_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(?P<image>\S+)", re.IGNORECASE | re.MULTILINE)


def make_base_image(
    engine_url: str,
    workdir: Path,
    ref: str,
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
) -> str:
    """Build the busybox base on the engine and push it as an index of `platforms` under `ref`
    (a `registry/repo:tag` on a loopback registry); return the index digest."""
    if not BUSYBOX.is_file():
        raise FatalError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, workdir / "busybox")
    (workdir / "Containerfile").write_text(CONTAINERFILE)
    (workdir / "passwd").write_text(PASSWD)
    (workdir / "group").write_text(GROUP)
    r = parse_reference(ref)
    with Engine(engine_url) as engine:
        native = Platform("linux", kernel_architecture(engine.native_architecture()))
        native_ref = f"{r.name}:{r.tag}{native.tag_suffix}"
        engine.build(workdir, tag=native_ref, containerfile="Containerfile")
        engine.push(native_ref)
        # Also `ref` in the engine itself, as before it became an index: tests that build
        # FROM it without a platform, or read its labels, find the native image locally.
        engine.tag(native_ref, ref)
    config = Config(root=workdir, registry=registry_host(ref))
    with RegistryClient(config) as client:
        return _push_index(client, native_ref, ref, [Platform.parse(p) for p in platforms])


def _push_index(
    client: RegistryClient, native_ref: str, ref: str, platforms: list[Platform]
) -> str:
    """The index of `platforms` under `ref`, each child the native image's layers under a
    config naming that platform (the native child is the engine's image itself)."""
    r = parse_reference(ref)
    data, media_type, _digest = client.get_manifest(native_ref)
    manifest = json.loads(data)
    config_blob = json.loads(client.get_blob(r.repository, manifest["config"]["digest"]))
    children = []
    for platform in platforms:
        config = dict(config_blob)
        config["os"], config["architecture"] = platform.os, platform.architecture
        config.pop("variant", None)
        if platform.variant:
            config["variant"] = platform.variant
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_digest = client.push_blob(r.repository, config_bytes)
        child = dict(manifest)
        child["config"] = {
            **manifest["config"],
            "digest": config_digest,
            "size": len(config_bytes),
        }
        child_bytes = json.dumps(child, sort_keys=True, separators=(",", ":")).encode()
        child_digest = sha256_digest(child_bytes)
        client.push_manifest(r.repository, child_digest, child_bytes, media_type)
        descriptor = client.resolve(f"{r.name}@{child_digest}")
        if descriptor is None:  # pragma: no cover - just pushed
            raise FatalError(f"{r.name}@{child_digest}: not in the registry after its push")
        children.append(
            (
                descriptor,
                {
                    "os": platform.os,
                    "architecture": platform.architecture,
                    "variant": platform.variant,
                },
            )
        )
    index, index_type = image_index(children)
    return client.push_manifest(r.repository, r.tag or "latest", index, index_type)


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
