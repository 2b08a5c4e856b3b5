"""Engine builds never use the host's network: a RUN step cannot reach a socket the test opens on
the runner's loopback (the registry, the engine's TCP socket, any service there would be just as
reachable), with or without the hermetic setting; hermetic builds have no network at all."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from playbookctl import build
from playbookctl.config import load_config
from playbookctl_dev.registry import LocalRegistry

pytestmark = pytest.mark.integration


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket listening on the host's loopback, as a runner's own service would."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    yield server
    server.close()


def _probe(tmp_path: Path, base_image: str, port: int) -> Path:
    # busybox nc, bounded by timeout (a connection the test never answers would hold it
    # open); whether it got through is counted at the test's socket, where it queues.
    (tmp_path / "Containerfile").write_text(
        f"FROM {base_image}\n"
        f"RUN timeout 5 sh -c 'echo hello | nc 127.0.0.1 {port}'; "
        "echo interfaces: $(ls /sys/class/net)\n"
    )
    return tmp_path


def _connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return count
        conn.close()
        count += 1


def test_the_probe_reaches_the_host_on_the_host_network(
    docker_engine: str,
    base_image: str,
    tmp_path: Path,
    listener: socket.socket,
) -> None:
    """The control: with the host's network (what build.py used before), the same RUN step
    reaches the test's socket, so the tests below can fail."""
    ctx = _probe(tmp_path, base_image, listener.getsockname()[1])
    client = docker.APIClient(base_url=docker_engine, version="auto")
    try:
        out = [
            str(item.get("stream", ""))
            for item in client.build(
                path=str(ctx), dockerfile="Containerfile", network_mode="host", decode=True, rm=True
            )
        ]
    finally:
        client.close()
    assert any("interfaces:" in line for line in out), out
    assert _connections(listener) == 1


@pytest.mark.parametrize("hermetic", [False, True])
def test_a_run_step_cannot_reach_the_hosts_loopback(
    docker_engine: str,
    base_image: str,
    registry: LocalRegistry,
    tmp_path: Path,
    listener: socket.socket,
    hermetic: bool,
) -> None:
    ctx = _probe(tmp_path, base_image, listener.getsockname()[1])
    lines: list[str] = []
    with build.Engine(docker_engine, hermetic=hermetic) as engine:
        engine.build(ctx, tag=f"{registry.host}/network/probe:1", on_line=lines.append)
    assert _connections(listener) == 0
    if hermetic:
        # No network at all: the container's own loopback only.
        assert any(line.endswith("interfaces: lo") for line in lines), lines


@pytest.mark.parametrize(
    ("pyproject", "env", "flag", "expected"),
    [
        ("", None, None, False),
        ("hermetic = true\n", None, None, True),
        ("hermetic = true\n", "false", None, False),
        ("", "1", None, True),
        ("hermetic = true\n", None, False, False),
        ("", None, True, True),
    ],
)
def test_the_hermetic_setting_global_env_and_flag(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pyproject: str,
    env: str | None,
    flag: bool | None,
    expected: bool,
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.playbookctl]\n" + pyproject)
    if env is None:
        monkeypatch.delenv("PLAYBOOKCTL_HERMETIC", raising=False)
    else:
        monkeypatch.setenv("PLAYBOOKCTL_HERMETIC", env)
    config = load_config(tmp_path).with_overrides(hermetic=flag)
    assert config.hermetic is expected
    assert build.build_network_mode(config.hermetic) == ("none" if expected else None)
