"""The test world's registry is set up the way production registries are (README "The test
world"): HTTPS under a name with a CA of its own installed where docker and playbookctl look,
Bearer tokens from a token service that checks passwords and scopes, tokens that expire; and a
session killed with -9 leaves nothing that breaks the next one."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from playbookctl.build import Engine, is_loopback_registry, registry_auth
from playbookctl.config import Config
from playbookctl.oci import RegistryClient, is_loopback
from playbookctl_dev import trust
from playbookctl_dev.registry import OWNER, TEMP_PREFIX, LocalRegistry
from tests.support.hosts_reader import mapped

pytestmark = pytest.mark.integration

CERTS_DIR = Path("/etc/docker/certs.d")
LIFETIME = 3  # seconds; distribution's own 60 s leeway is compensated by the token service


def own_registry(**kwargs: object) -> Iterator[LocalRegistry]:
    why = trust.can_install()
    if why is not None:
        pytest.skip(f"an HTTPS test registry needs root: {why}")
    with LocalRegistry(**kwargs) as reg:  # type: ignore[arg-type]
        yield reg


@pytest.fixture
def short_lived(_isolate_home: None) -> Iterator[LocalRegistry]:
    """A registry whose tokens live LIFETIME seconds, logged in to in this test's config."""
    for reg in own_registry(token_lifetime=LIFETIME, readers={"reader": "reader-secret"}):
        reg.login(Path(os.environ["DOCKER_CONFIG"]))
        yield reg


def get(url: str, context: ssl.SSLContext, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, Message, bytes]:  # fmt: skip
    """Status, headers (case-insensitive) and body of one request."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)  # noqa: S310 - ours
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as resp:  # noqa: S310
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def token(
    reg: LocalRegistry, scope: str, user: str, password: str
) -> tuple[int, dict[str, object]]:
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    status, _h, body = get(
        f"{reg.token_realm}?service={reg.hostname}&scope={scope}",
        reg.ssl_context(),
        {"Authorization": f"Basic {basic}"},
    )
    return status, json.loads(body) if status == 200 else {}


def test_the_default_registry_is_https_under_a_name_with_bearer_auth(
    registry: LocalRegistry,
) -> None:
    name = registry.hostname
    assert name.endswith(".playbookctl.test")
    assert not is_loopback(registry.host)  # playbookctl verifies it as any remote registry
    assert registry.url == f"https://{registry.host}"
    # The CA is where the engine (and playbookctl) look for it; it verifies the server.
    ca = CERTS_DIR / registry.host / "ca.crt"
    assert ca.is_file()
    context = ssl.create_default_context(cafile=str(ca))
    status, headers, _ = get(f"{registry.url}/v2/", context)
    assert status == 401
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="https://{name}:')
    assert f'service="{name}"' in challenge
    # Without the CA the certificate is refused: nothing trusts it by accident.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{registry.url}/v2/", timeout=10)  # noqa: S310 - our URL
    # And the name maps to loopback only, in /etc/hosts: the stand-in guard accepts it.
    assert mapped(Path("/etc/hosts").read_text())[name] in ("::1", "127.0.0.1")
    assert is_loopback_registry(f"{registry.host}/x/y:1")


def test_the_token_service_checks_the_password_and_the_scopes(short_lived: LocalRegistry) -> None:
    reg = short_lived
    status, _ = token(reg, "repository:a/b:pull", reg.username, "wrong")
    assert status == 401
    status, answer = token(reg, "repository:a/b:pull,push", "reader", "reader-secret")
    assert status == 200
    assert answer["expires_in"] == LIFETIME
    claims = json.loads(base64.urlsafe_b64decode(str(answer["token"]).split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": ["pull"]}]
    # The registry itself enforces the scope: a pull-only token cannot start an upload...
    bearer = {"Authorization": f"Bearer {answer['token']}"}
    status, headers, _ = get(f"{reg.url}/v2/a/b/blobs/uploads/", reg.ssl_context(), bearer, "POST")
    assert status == 401
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    # ... and a writer's token can.
    status, answer = token(reg, "repository:a/b:pull,push", reg.username, reg.password)
    bearer = {"Authorization": f"Bearer {answer['token']}"}
    status, _h, _ = get(f"{reg.url}/v2/a/b/blobs/uploads/", reg.ssl_context(), bearer, "POST")
    assert status == 202


def test_an_account_may_have_a_password_per_grant(short_lived: LocalRegistry) -> None:
    """GitHub's actor logs in with the GITHUB_TOKEN of the job, whose package access the job's
    permissions set: one account, each password with its own grants (the workflow replay)."""
    reg = short_lived
    reg.add_user("job-actor", "token-of-a-writing-job")
    reg.add_user("job-actor", "token-of-a-reading-job", pull_only=True, also=True)

    def access(password: str) -> object:
        status, answer = token(reg, "repository:a/b:pull,push", "job-actor", password)
        assert status == 200
        claims = json.loads(base64.urlsafe_b64decode(str(answer["token"]).split(".")[1] + "=="))
        return claims["access"]

    assert access("token-of-a-writing-job") == [
        {"type": "repository", "name": "a/b", "actions": ["pull", "push"]}
    ]
    assert access("token-of-a-reading-job") == [
        {"type": "repository", "name": "a/b", "actions": ["pull"]}
    ]
    assert token(reg, "repository:a/b:pull", "job-actor", "token-of-no-job")[0] == 401
    # Without `also` the account's passwords are replaced.
    reg.add_user("job-actor", "token-of-a-reading-job", pull_only=True)
    assert token(reg, "repository:a/b:pull", "job-actor", "token-of-a-writing-job")[0] == 401


def test_an_expired_token_is_refused_and_playbookctl_logs_in_again(
    short_lived: LocalRegistry, tmp_path: Path
) -> None:
    reg = short_lived
    status, answer = token(reg, "repository:expiry/t:pull", reg.username, reg.password)
    assert status == 200
    old = {"Authorization": f"Bearer {answer['token']}"}
    url = f"{reg.url}/v2/expiry/t/tags/list"
    assert get(url, reg.ssl_context(), old)[0] in (200, 404)  # accepted (no such repo yet)

    config = Config(root=tmp_path, registry=reg.host)
    with RegistryClient(config) as client:
        client.push_blob("expiry/t", b"before expiry")
        issued = reg.tokens_issued(reg.username)
        time.sleep(LIFETIME + 1.5)
        status, headers, _ = get(url, reg.ssl_context(), old)
        assert status == 401, "the registry accepted an expired token"
        assert 'error="invalid_token"' in headers["WWW-Authenticate"]
        # The same client, its token now expired: it gets a new one and carries on.
        client.push_blob("expiry/t", b"after expiry")
        assert client.tag_exists(f"{reg.host}/expiry/t:none") is False
    assert reg.tokens_issued(reg.username) > issued


def _tiny_image(engine: Engine, tmp_path: Path, tag: str, marker: str) -> None:
    context = tmp_path / marker
    context.mkdir()
    (context / "marker").write_text(marker)
    (context / "Containerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    engine.build(context, tag=tag, containerfile="Containerfile")


def test_the_engine_verifies_the_ca_and_logs_in_again_after_expiry(
    docker_engine: str, short_lived: LocalRegistry, tmp_path: Path
) -> None:
    """Docker 20.10 skips certificate verification for a registry whose name resolves into
    127.0.0.0/8; the test registries are on ::1, so the engine really verifies them."""
    reg = short_lived
    config = Config(root=tmp_path, registry=reg.host)
    auth = registry_auth(config, reg.host)  # from the Docker config, as publish does
    assert auth is not None
    engine = Engine(docker_engine)
    ref = f"{reg.host}/engine-trust/img:1"
    _tiny_image(engine, tmp_path, ref, "one")

    ca = CERTS_DIR / reg.host / "ca.crt"
    hidden = ca.with_name("ca.crt.hidden")
    ca.rename(hidden)
    try:
        with pytest.raises(Exception, match="certificate signed by unknown authority"):
            engine.push(ref, auth=auth)
    finally:
        hidden.rename(ca)
    engine.push(ref, auth=auth)
    issued = reg.tokens_issued(reg.username)

    time.sleep(LIFETIME + 1.5)  # every token the engine holds has expired at the registry
    ref2 = f"{reg.host}/engine-trust/img:2"
    _tiny_image(engine, tmp_path, ref2, "two")
    engine.push(ref2, auth=auth)
    assert reg.tokens_issued(reg.username) > issued
    with RegistryClient(config) as client:
        assert client.tag_exists(ref2)


def test_a_session_killed_with_9_leaves_nothing_that_breaks_the_next(tmp_path: Path) -> None:
    why = trust.can_install()
    if why is not None:
        pytest.skip(f"an HTTPS test registry needs root: {why}")
    script = (
        "import json, sys, time\n"
        "from playbookctl_dev.registry import LocalRegistry\n"
        "reg = LocalRegistry().start()\n"
        "print(json.dumps({'host': reg.host, 'dirs': [str(reg.workdir), str(reg.data_dir)],\n"
        "  'pids': [reg.process.pid, reg.token_process.pid]}), flush=True)\n"
        "time.sleep(600)\n"
    )
    tooling = str(Path(__file__).resolve().parents[2] / "tooling")
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": tooling},
    )  # fmt: skip
    assert child.stdout is not None
    started = json.loads(child.stdout.readline())
    host, (registry_pid, token_pid) = started["host"], started["pids"]
    name = host.rsplit(":", 1)[0]
    try:
        assert name in mapped(Path("/etc/hosts").read_text())
        assert (CERTS_DIR / host).is_dir()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        # The token service follows its owner within a second or two, the registry at once
        # (the kernel's parent-death signal).
        _wait_gone(registry_pid)
        deadline = time.monotonic() + 10
        while trust.start_time(token_pid) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert trust.start_time(token_pid) is None, "the token service outlived its owner"

        # The next registry cleans up the dead owner's line and CA, and works.
        with LocalRegistry() as nxt:
            assert name not in mapped(Path("/etc/hosts").read_text())
            assert not (CERTS_DIR / host).exists()
            assert nxt.hostname != name
    finally:
        with contextlib.suppress(ProcessLookupError):  # had it outlived its owner
            os.kill(registry_pid, signal.SIGTERM)
        subprocess.run(["rm", "-rf", *started["dirs"]], check=False)


# A LocalRegistry in a process of its own, killed with -9 by the test. Started from a worker
# thread, its docker-registry is not tied to its owner's life (see owner.dies_with_owner) and is
# orphaned by the kill, as one was before registries died with their owners.
_OWNER_SCRIPT = (
    "import json, sys, threading, time\n"
    "from playbookctl_dev.registry import LocalRegistry\n"
    "reg = LocalRegistry(tls=False)\n"
    "if sys.argv[1] == 'thread':\n"
    "    t = threading.Thread(target=reg.start); t.start(); t.join()\n"
    "else:\n"
    "    reg.start()\n"
    "print(json.dumps({'host': reg.host, 'dirs': [str(reg.workdir), str(reg.data_dir)],\n"
    "  'registry_pid': reg.process.pid}), flush=True)\n"
    "time.sleep(600)\n"
)


def _owner(*wrapper: str, start: str = "thread") -> tuple[subprocess.Popen[str], dict[str, object]]:
    tooling = str(Path(__file__).resolve().parents[2] / "tooling")
    child = subprocess.Popen(
        [*wrapper, sys.executable, "-c", _OWNER_SCRIPT, start], stdout=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": tooling},
    )  # fmt: skip
    assert child.stdout is not None
    return child, json.loads(child.stdout.readline())


def _wait_gone(pid: int) -> None:
    """Until every thread of process `pid` has exited (and so closed its files): the process
    is gone, or a zombie without threads (docker-registry has many; its first thread is a
    zombie while the others still run their exit)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return
        if stat[stat.rindex(")") + 2] == "Z" and threads == [str(pid)]:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not exit")


def _dirs(started: dict[str, object]) -> list[Path]:
    dirs = started["dirs"]
    assert isinstance(dirs, list)
    return [Path(d) for d in dirs]


def test_a_registry_dies_with_its_owner_and_its_temp_dirs_go_with_the_next() -> None:
    """An owner killed with -9 (a pytest or demo killed by CI) takes its docker-registry with
    it: nothing keeps serving, holding its blobs in memory, and the next LocalRegistry removes
    its dirs."""
    killed, started = _owner(start="main")
    orphan = int(str(started["registry_pid"]))
    leftovers = _dirs(started)
    try:
        assert all(d.is_dir() for d in leftovers), leftovers
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        _wait_gone(orphan)
        with LocalRegistry(tls=False) as nxt:
            assert nxt.workdir not in leftovers
            assert [d for d in leftovers if d.exists()] == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            killed.kill()
        killed.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)
        for d in leftovers:
            shutil.rmtree(d, ignore_errors=True)


def test_a_killed_registrys_temp_dirs_go_with_the_next_registry_and_nothing_else(
    tmp_path: Path,
) -> None:
    """A registry whose owner was killed with -9 leaves its temp dirs (its blobs, in memory:
    78 MB of them were found after a few killed sessions). The next LocalRegistry removes them
    once its orphaned docker-registry is gone too, and nothing else: not a live registry's (in
    this process, or owned in another pid namespace, where its pids mean nothing here), not a
    dir without the owner mark (older code's), not another user's, not a link."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        pytest.skip("no writable /dev/shm here")
    root = os.geteuid() == 0
    tag = os.urandom(4).hex()
    unmarked = shm / f"{TEMP_PREFIX}test-unmarked-{tag}"
    foreign = shm / f"{TEMP_PREFIX}test-foreign-{tag}"
    link = shm / f"{TEMP_PREFIX}test-link-{tag}"
    children: list[subprocess.Popen[str]] = []
    orphan = 0
    started: dict[str, object] = {}
    elsewhere: dict[str, object] = {}
    try:
        unmarked.mkdir()
        (unmarked / "data").write_text("not known to be ours\n")
        target = tmp_path / "target"
        target.mkdir()
        (target / OWNER).touch()  # a mark nobody holds, but behind a link
        link.symlink_to(target)
        if root:  # another user's dir, its mark held by nobody: never ours to remove
            foreign.mkdir()
            (foreign / OWNER).touch()
            for p in (foreign / OWNER, foreign):
                os.chown(p, 65534, 65534)
        if root and shutil.which("unshare"):
            child, elsewhere = _owner("unshare", "--pid", "--fork", "--kill-child")
            children.append(child)

        killed, started = _owner()
        children.append(killed)
        orphan = int(str(started["registry_pid"]))
        with RegistryClient(Config(root=tmp_path, registry=str(started["host"]))) as client:
            client.push_blob("world/killed", os.urandom(256 * 1024), check=False)
        leftovers = _dirs(started)
        assert all(d.is_relative_to(shm) for d in leftovers), leftovers

        with LocalRegistry(tls=False) as alive:
            with RegistryClient(Config(root=tmp_path, registry=alive.host)) as client:
                digest = client.push_blob("world/alive", b"still here\n", check=False)
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=10)
            # Its docker-registry, orphaned, still runs on them: they stay.
            with LocalRegistry(tls=False):
                assert all(d.is_dir() for d in leftovers), leftovers
            os.kill(orphan, signal.SIGKILL)
            _wait_gone(orphan)

            with LocalRegistry(tls=False) as nxt:
                assert nxt.workdir not in leftovers
                assert [d for d in leftovers if d.exists()] == []
                assert alive.workdir is not None
                assert alive.workdir.is_dir()
                assert alive.data_dir is not None
                assert alive.data_dir.is_dir()
                assert (unmarked / "data").is_file()
                assert link.is_symlink()
                assert (target / OWNER).is_file()
                assert not root or (foreign / OWNER).is_file()
                if elsewhere:
                    assert all(d.is_dir() for d in _dirs(elsewhere)), elsewhere
            with RegistryClient(Config(root=tmp_path, registry=alive.host)) as client:
                assert client.get_blob("world/alive", digest) == b"still here\n"
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            child.wait(timeout=10)
        if orphan:
            with contextlib.suppress(ProcessLookupError):
                os.kill(orphan, signal.SIGKILL)
        # The other namespace's registry was killed with -9 too: its dirs are left as well.
        left = [d for owner in (started, elsewhere) if owner for d in _dirs(owner)]
        for p in (unmarked, foreign, *left):
            shutil.rmtree(p, ignore_errors=True)
        link.unlink(missing_ok=True)


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_a_registry_keeps_its_blobs_where_its_storage_says(tmp_path: Path, storage: str) -> None:
    """A test registry's blobs are in memory, whatever its workdir (logs, config) is: on this
    VM's virtual disk every write the registry syncs costs 10-25 ms. `storage="disk"` puts them
    in the workdir (what a benchmark compares with). Either way they go with the registry."""
    shm = Path("/dev/shm")
    if storage == "memory" and not (shm.is_dir() and os.access(shm, os.W_OK)):
        pytest.skip("no writable /dev/shm here")
    workdir = tmp_path / "registry"
    with LocalRegistry(tls=False, workdir=workdir, storage=storage) as reg:
        with RegistryClient(Config(root=tmp_path, registry=reg.host)) as client:
            digest = client.push_blob("world/storage", b"kept\n", registry=reg.host)
        assert reg.data_dir is not None
        data = reg.data_dir
        blobs = list(data.glob("docker/registry/v2/blobs/sha256/*/*/data"))
        assert [b.parent.name for b in blobs] == [digest.removeprefix("sha256:")]
        if storage == "memory":
            assert data.is_relative_to(shm)
        else:
            assert data == workdir / "data"
    assert (storage == "disk") == data.exists()
