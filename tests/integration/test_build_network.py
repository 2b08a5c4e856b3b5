"""Engine builds never use the host's network: a RUN step cannot reach a socket the test opens on
the runner's loopback (the registry, the engine's TCP socket, any service there would be just as
reachable), with or without the hermetic setting; hermetic builds have no network at all."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from playbookctl import build
from playbookctl.config import load_config
from playbookctl.errors import ConfigError, UsageError
from playbookctl.publish import publish
from playbookctl.results import Action
from playbookctl_dev.registry import LocalRegistry
from tests.support.lintrepo import CONTAINERFILE, edit, good_playbook, make_repo

pytestmark = pytest.mark.integration
PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
_probe_ids = itertools.count()


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


def _network_modes(
    engine_url: str, markers: dict[str, str], stop: threading.Event
) -> dict[str, str]:
    """The network mode of each running build container whose command carries a marker
    (marker -> mode), polled from the engine while the builds run: what each RUN step got."""
    client = docker.APIClient(base_url=engine_url, version="auto")
    seen: dict[str, str] = {}
    try:
        while not stop.is_set() and len(seen) < len(markers):
            for c in client.containers():
                command = str(c.get("Command") or "")
                for name, marker in markers.items():
                    if marker in command and name not in seen:
                        info = client.inspect_container(c["Id"])
                        seen[name] = str(info["HostConfig"]["NetworkMode"])
            stop.wait(0.1)
    finally:
        client.close()
    return seen


def test_a_hermetic_playbooks_run_step_has_no_network_while_its_neighbours_has_the_default(
    docker_engine: str, registry: LocalRegistry, base_image: str, tmp_path: Path
) -> None:
    """Per playbook: `hermetic-playbooks` lists one of two RUN playbooks; publish (a dry run:
    built, smoke-run, not pushed) builds that one's RUN step with network none, the other's
    with the engine's default, as the engine itself reports each running build container."""
    markers = {name: f"netprobe-{name}-{next(_probe_ids)}" for name in ("sealed", "open")}
    books = {}
    for name, marker in markers.items():
        files = good_playbook(name)
        files["Containerfile"] = edit(
            str(files["Containerfile"]),
            "USER 65532",
            f"RUN echo {marker} && sleep 3 && echo interfaces: $(ls /sys/class/net)\nUSER 65532",
        )
        books[name] = files
    root = make_repo(tmp_path / "repo", books)
    (root / "pyproject.toml").write_text(
        (root / "pyproject.toml").read_text() + 'hermetic-playbooks = ["sealed"]\n'
    )
    config = load_config(root, env={}).with_overrides(
        registry=registry.host, platforms=("linux/amd64",)
    )
    config = replace(config, base_image_overrides={PROD_FROM: base_image})
    assert config.is_hermetic("sealed")
    assert not config.is_hermetic("open")
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        watching = pool.submit(_network_modes, docker_engine, markers, stop)
        try:
            results = publish(
                config,
                None,
                jobs=2,
                dry_run=True,
                commit="ab" * 20,
                source_repository="",
                docker_host=docker_engine,
            )
        finally:
            stop.set()
        modes = watching.result()
    assert {r.name: (r.status, r.error) for r in results} == {
        "sealed": (Action.DRY_RUN, None),
        "open": (Action.DRY_RUN, None),
    }
    assert modes == {"sealed": "none", "open": "default"}


def test_the_hermetic_playbooks_setting_env_and_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.playbookctl]\nhermetic-playbooks = ["alpha", "beta"]\n'
    )
    monkeypatch.delenv("PLAYBOOKCTL_HERMETIC", raising=False)
    monkeypatch.delenv("PLAYBOOKCTL_HERMETIC_PLAYBOOKS", raising=False)
    config = load_config(tmp_path)
    assert config.hermetic_playbooks == ("alpha", "beta")
    assert [config.is_hermetic(n) for n in ("alpha", "gamma")] == [True, False]
    monkeypatch.setenv("PLAYBOOKCTL_HERMETIC_PLAYBOOKS", "gamma")
    config = load_config(tmp_path)
    assert [config.is_hermetic(n) for n in ("alpha", "gamma")] == [False, True]
    flagged = config.with_overrides(hermetic_playbooks=("alpha",))
    assert [flagged.is_hermetic(n) for n in ("alpha", "gamma")] == [True, False]
    everything = flagged.with_overrides(hermetic=True)
    assert everything.is_hermetic("gamma")
    monkeypatch.setenv("PLAYBOOKCTL_HERMETIC_PLAYBOOKS", "Not_A_Name")
    with pytest.raises(ConfigError, match="'Not_A_Name' is not a playbook name"):
        load_config(tmp_path)
    with pytest.raises(UsageError, match="--hermetic-playbook"):
        config.with_overrides(hermetic_playbooks=("../x",))
