"""Pytest plugin: a real Docker engine and a tiny base image made locally.

`docker_engine` is the DOCKER_HOST URL of the engine a machine already runs (a GitHub runner),
else of a private dockerd started for the session. `base_image` is a reference, in the session's
loopback registry, to a FROM-scratch image holding Debian's statically linked busybox (its applets
installed as /bin/*) and a non-root user: the stand-in that test playbooks' production FROM lines
are overridden to (PLAYBOOKCTL_BASE_IMAGE_OVERRIDES). Nothing is pulled from the internet.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playbookctl.build import Engine
from playbookctl.devenv.docker_engine import docker_engine as _docker_engine

BUSYBOX = Path("/bin/busybox")
BASE_CONTAINERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY passwd group /etc/
"""
PASSWD = "root:x:0:0:root:/root:/bin/sh\nplaybook:x:65532:65532:playbook:/tmp:/bin/sh\n"
GROUP = "root:x:0:\nplaybook:x:65532:\n"


def registry_address(registry: Any) -> str:
    """host:port of the `registry` fixture, whatever shape it takes (a string or an object)."""
    if isinstance(registry, str):
        return registry
    for attr in ("host", "address", "netloc", "hostport"):
        value = getattr(registry, attr, None)
        if isinstance(value, str) and ":" in value:
            return value
    raise TypeError(f"cannot find host:port on the registry fixture {registry!r}")


def make_base_image(engine_url: str, workdir: Path, ref: str) -> str:
    """Build the busybox base image as `ref`, push it, return `ref`."""
    if not BUSYBOX.is_file():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, workdir / "busybox")
    (workdir / "Containerfile").write_text(BASE_CONTAINERFILE)
    (workdir / "passwd").write_text(PASSWD)
    (workdir / "group").write_text(GROUP)
    with Engine(engine_url) as engine:
        engine.build(workdir, tag=ref, containerfile="Containerfile")
        engine.push(ref)
    return ref


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[str]:
    with _docker_engine() as engine:
        yield engine.url


@pytest.fixture(scope="session")
def base_image(docker_engine: str, registry: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    ref = f"{registry_address(registry)}/test-base/busybox:1"
    return make_base_image(docker_engine, tmp_path_factory.mktemp("base-image"), ref)
