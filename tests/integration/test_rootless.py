"""A self-hosted runner with ROOTLESS Docker: the engine path of `playbookctl publish`, run as an
unprivileged user whose DOCKER_HOST is its own rootless engine.

Run as root (this machine, `make test` in a container), the test starts a private rootless
dockerd as `nobody` (playbookctl_dev.docker_engine.start_rootless_dockerd: Docker's own
dockerd-rootless.sh under rootlesskit and slirp4netns, nobody given a subordinate id range),
carries the session registry's ports into the engine's network namespace (the registry is on
the host's loopback, which that namespace cannot see), installs the registry's CA where a
rootless engine reads it (nobody's `~/.config/docker/certs.d`: /etc/docker/certs.d it ignores,
as the second test shows) and points playbookctl at the same directory
(PLAYBOOKCTL_REGISTRY_CERTS_DIR), as a runner's admin would. Then, as nobody, it publishes one
RUN playbook, hermetic, to the session's HTTPS token registry on linux/amd64 and linux/arm64
(arm64's RUN step under QEMU), with the smoke run required on both; and checks in the registry
what the rootless engine built: the RUN step's files with the owners it gave them (65532, and
65534, nobody's own id inside the image) and the network it had (a loopback of its own; the
host network would have shown slirp4netns's tap0). The same run pointed at a dead socket fails
in one line, exit 1, and pushes nothing.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from playbookctl import platforms
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl_dev.docker_engine import DockerEngine
from playbookctl_dev.registry import LocalRegistry
from tests.support.docker_engine import rootless_engine_or_skip
from tests.support.gitrepos import commit_new
from tests.support.lintrepo import CONTAINERFILE, edit, good_playbook, make_repo
from tests.support.nobody import NOBODY, python_for_nobody

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO_ROOT = Path(__file__).resolve().parents[2]
PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
NAME = "restart-deployment"
STATE = "opt/playbook/state"
_ids = (f"{uuid.uuid4().hex[:8]}-{n}" for n in itertools.count())


@pytest.fixture
def rootless_engine() -> Iterator[DockerEngine]:
    with rootless_engine_or_skip() as engine:
        yield engine


def _repo(root: Path) -> Path:
    """One playbook whose RUN step records its machine and its network interfaces (on this
    engine the host network would show slirp4netns's tap0 beside lo), and gives its files to
    65532 and to nobody (65534)."""
    files = good_playbook(NAME)
    files["Containerfile"] = edit(
        str(files["Containerfile"]),
        "USER 65532",
        f"RUN mkdir -p /{STATE} && uname -m > /{STATE}/arch && ls /sys/class/net > /{STATE}/net"
        f" && touch /{STATE}/nobody && chown 65534:65534 /{STATE}/nobody"
        f" && chown 65532:65532 /{STATE} /{STATE}/arch /{STATE}/net\n"
        "USER 65532",
    )
    repo = make_repo(root, {NAME: files})
    commit_new(repo, "a RUN playbook")
    return repo


def _installed(registry: LocalRegistry) -> list[Path]:
    """The certs.d directories root installed for the registry and its token service."""
    return sorted(Path("/etc/docker/certs.d").glob(f"{registry.hostname}:*"))


def _reach(engine: DockerEngine, registry: LocalRegistry) -> None:
    """The registry's ports (and its token service's), on the host's loopback, reachable from
    the engine's network namespace."""
    address = str(socket.getaddrinfo(registry.hostname, None)[0][4][0])
    for installed in _installed(registry):
        engine.reach(address, int(installed.name.rsplit(":", 1)[1]))


def _install_ca(engine: DockerEngine, registry: LocalRegistry) -> None:
    """The registry's CA (and its token service's) where the rootless engine reads them."""
    for installed in _installed(registry):
        shutil.copytree(installed, engine.certs_dir / installed.name)


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for path in root.rglob("*"):
        os.lchown(path, uid, uid)


def _state(client: RegistryClient, repository: str, child: str) -> dict[str, tuple[int, int, str]]:
    """The RUN step's files in the pushed image `child`: path under STATE -> uid, gid and
    content (a directory's is empty), as its layers hold them."""
    data, _media_type, _digest = client.get_manifest(f"{repository}@{child}")
    reference = client.parse_reference(repository)
    found: dict[str, tuple[int, int, str]] = {}
    for layer in json.loads(data)["layers"]:
        blob = client.get_blob(reference.repository, layer["digest"])
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix("./").rstrip("/")
                if name == STATE or name.startswith(STATE + "/"):
                    reader = tar.extractfile(member) if member.isfile() else None
                    content = reader.read().decode() if reader else ""
                    key = name.removeprefix(STATE).lstrip("/") or "."
                    found[key] = (member.uid, member.gid, content)
    return found


def test_a_runner_on_rootless_docker_publishes_a_hermetic_run_playbook_on_both_platforms(
    rootless_engine: DockerEngine,
    session_registry: LocalRegistry,
    base_image: str,
    request: pytest.FixtureRequest,
) -> None:
    if not platforms.emulation_available("arm64"):
        pytest.skip("no QEMU emulation for arm64 on this machine")
    engine = rootless_engine
    assert engine.home is not None
    scratch = tempfile.TemporaryDirectory(prefix="pb-rootless-", dir="/tmp")
    request.addfinalizer(scratch.cleanup)
    work = Path(scratch.name)
    work.chmod(0o755)
    python = python_for_nobody(work / "venv")
    repo = _repo(work / "repo")
    session_registry.login(work / "docker")
    _reach(engine, session_registry)
    _install_ca(engine, session_registry)
    for owned in (repo, work / "docker", engine.home / ".config"):
        _chown_tree(owned, NOBODY)

    n = next(_ids)
    image_repo = f"rootless{n}/images"
    env = {
        # this environment's tools (hadolint, shellcheck) first, as `make test` has them
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(engine.home),
        "DOCKER_HOST": engine.url,
        "DOCKER_CONFIG": str(work / "docker"),
        "PLAYBOOKCTL_REGISTRY": session_registry.host,
        "PLAYBOOKCTL_IMAGE_REPO": image_repo,
        "PLAYBOOKCTL_BUNDLE_REPO": f"rootless{n}/bundles",
        "PLAYBOOKCTL_REGISTRY_CERTS_DIR": str(engine.certs_dir),
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES": json.dumps({PROD_FROM: base_image}),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    cmd = [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
        "sh", "-c", 'echo "uid=$(id -u)"; exec "$@"', "sh",
        str(python), "-m", "playbookctl", "-C", str(repo), "publish", NAME,
        "--hermetic", "--smoke", "required", "--format", "json",
        "--source-repository", "https://example.invalid/playbooks",
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    out = done.stdout + done.stderr
    assert done.stdout.startswith(f"uid={NOBODY}\n"), out[-3000:]
    assert done.returncode == 0, out[-3000:]
    (result,) = json.loads(done.stdout.split("\n", 1)[1])["results"]
    assert result["status"] == "pushed", result
    assert result["image"]["platforms"] == ["linux/amd64", "linux/arm64"]
    messages = result["messages"]
    assert any(m.startswith("image built by the engine: ") for m in messages), messages
    assert "RUN steps built with no network at all (hermetic)" in messages, messages
    for platform in ("linux/amd64", "linux/arm64"):
        assert any(m.startswith(f"smoke: {platform} started") for m in messages), messages

    # The rootless engine built them (and holds what it built), as nobody.
    api = docker.APIClient(base_url=engine.url, version="auto")
    try:
        assert "name=rootless" in api.info()["SecurityOptions"]
        tags = [str(t) for i in api.images() for t in i.get("RepoTags") or []]
    finally:
        api.close()
    assert any(t.startswith(f"{session_registry.host}/{image_repo}/") for t in tags), tags

    config = Config(root=repo, registry=session_registry.host, image_repo=image_repo)
    repository = config.image_ref(NAME)
    with RegistryClient(config) as client:
        children = dict(platforms.index_entries(client, f"{repository}:{result['version']}"))
        assert sorted(children) == ["linux/amd64", "linux/arm64"]
        for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
            state = _state(client, repository, children[platform])
            # The owners the step gave, as ids in the image (not the engine's host ids); its
            # machine (arm64's under QEMU); no network but a loopback of its own.
            assert state == {
                ".": (65532, 65532, ""),
                "arch": (65532, 65532, f"{machine}\n"),
                "net": (65532, 65532, "lo\n"),
                "nobody": (65534, 65534, ""),
            }, platform

    # The same runner with DOCKER_HOST at a dead socket: one line, exit 1, nothing pushed.
    dead = work / "dead.sock"
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(str(dead))  # bound, never listening: connection refused
        os.chown(dead, NOBODY, NOBODY)
        other_repo = f"rootless{next(_ids)}/images"
        done = subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            env={**env, "DOCKER_HOST": f"unix://{dead}", "PLAYBOOKCTL_IMAGE_REPO": other_repo},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert f"cannot reach a Docker engine at unix://{dead}" in out, out[-3000:]
    assert "connection refused" in out, out[-3000:]
    assert done.stderr.count("cannot reach a Docker engine") == 1, done.stderr
    other = Config(root=repo, registry=session_registry.host, image_repo=other_repo)
    with RegistryClient(other) as client:
        assert client.resolve(f"{other.image_ref(NAME)}:{result['version']}") is None


def test_a_rootless_engine_trusts_the_registry_cas_of_its_users_config_not_etc_docker(
    rootless_engine: DockerEngine, session_registry: LocalRegistry, base_image: str
) -> None:
    """Why the runner above points PLAYBOOKCTL_REGISTRY_CERTS_DIR at ~/.config/docker/certs.d
    (README "A rootless Docker engine"): with the registry's CA in /etc/docker/certs.d alone,
    the rootless engine's pull fails on the certificate; with it in the user's directory too,
    the same pull succeeds."""
    engine = rootless_engine
    _reach(engine, session_registry)
    assert (Path("/etc/docker/certs.d") / session_registry.host / "ca.crt").is_file()
    repository, tag = base_image.rsplit(":", 1)
    auth = {"username": session_registry.username, "password": session_registry.password}
    api = docker.APIClient(base_url=engine.url, version="auto")

    def pull() -> str:
        try:
            lines = api.pull(repository, tag=tag, auth_config=auth, stream=True, decode=True)
            return "".join(f"{line.get('status', '')} {line.get('error', '')}\n" for line in lines)
        except docker.errors.APIError as exc:
            return str(exc)

    try:
        refused = pull()
        assert "x509: certificate signed by unknown authority" in refused, refused
        _install_ca(engine, session_registry)
        pulled = pull()
        assert "error" not in pulled.lower(), pulled
        assert api.images(name=repository), pulled
    finally:
        api.close()
