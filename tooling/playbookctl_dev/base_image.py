"""A local stand-in for playbooks' base images, for the demo and the benchmarks.

Docker Hub is out of reach on development and CI machines, and a playbook's FROM line must stay
what production needs. So the demo builds a tiny FROM-scratch image holding Debian's statically
linked busybox and a non-root user, pushes it to the loopback registry, and maps every FROM
reference found in the playbooks' Containerfiles to it (PLAYBOOKCTL_BASE_IMAGE_OVERRIDES). The
publish stage refuses to push such builds anywhere but a loopback registry.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from playbookctl.build import Engine
from playbookctl.errors import FatalError
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


def make_base_image(engine_url: str, workdir: Path, ref: str) -> str:
    """Build the busybox base as `ref` on the engine, push it, return its digest."""
    if not BUSYBOX.is_file():
        raise FatalError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, workdir / "busybox")
    (workdir / "Containerfile").write_text(CONTAINERFILE)
    (workdir / "passwd").write_text(PASSWD)
    (workdir / "group").write_text(GROUP)
    with Engine(engine_url) as engine:
        engine.build(workdir, tag=ref, containerfile="Containerfile")
        return engine.push(ref)


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
