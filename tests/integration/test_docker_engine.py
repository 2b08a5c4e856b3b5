"""playbookctl_dev.docker_engine: find the engine that answers, else start (and stop) a dockerd."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from playbookctl_dev.docker_engine import (
    DockerEngine,
    existing_engine,
    ping,
    start_dockerd,
)
from playbookctl_dev.docker_engine import docker_engine as engine_context
from tests.support.docker_engine import needs_root_for_private_dockerd

pytestmark = pytest.mark.integration


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize(
    "url",
    [
        "unix:///nonexistent/docker.sock",
        "ftp://127.0.0.1:21",
        "tcp://127.0.0.1:{port}",
    ],
)
def test_ping_is_false_where_no_engine_answers(url: str) -> None:
    assert ping(url.format(port=_free_tcp_port()), timeout=0.5) is False


def test_existing_engine_answers_only_when_it_pings(docker_engine: str, tmp_path: Path) -> None:
    assert ping(docker_engine)
    assert existing_engine({"DOCKER_HOST": docker_engine}) == docker_engine
    # a DOCKER_HOST that does not answer is not silently replaced by another engine
    assert existing_engine({"DOCKER_HOST": f"unix://{tmp_path}/none.sock"}) is None
    # TLS engines are taken as configured (checking needs the client certificates)
    tls = {"DOCKER_HOST": "tcp://docker.example.com:2376", "DOCKER_TLS_VERIFY": "1"}
    assert existing_engine(tls) == "tcp://docker.example.com:2376"


def test_an_existing_engine_is_used_and_left_running(docker_engine: str) -> None:
    with engine_context(env={"DOCKER_HOST": docker_engine}) as engine:
        assert engine == DockerEngine(url=docker_engine)
    assert ping(docker_engine)


@pytest.mark.skipif(shutil.which("dockerd") is None, reason="dockerd is not installed")
@needs_root_for_private_dockerd
def test_private_dockerd_starts_and_stops_without_leftovers() -> None:
    with start_dockerd() as engine:
        assert engine.started
        assert engine.workdir is not None
        assert len(str(engine.workdir / "x" / "containerd" / "containerd.sock")) < 100
        assert ping(engine.url)
        workdir = engine.workdir
    assert not ping(engine.url)
    assert not workdir.exists()
    mounts = Path("/proc/self/mounts").read_text()
    assert str(workdir) not in mounts
