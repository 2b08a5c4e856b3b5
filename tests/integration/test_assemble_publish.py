"""Publishing assembled images: the same digests from any clone, no engine needed for RUN-less
playbooks, and the engine still building (both platforms) the playbooks that need it.

Real components: a loopback registry, git clones made with `git clone` under different umasks
and touched to other times, and (for the RUN playbook) the session's Docker engine.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
import tarfile
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from playbookctl import build, platforms
from playbookctl.bundle import EMPTY_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, read_bundle
from playbookctl.config import Config
from playbookctl.oci import OCI_MANIFEST, RegistryClient, parse_reference
from playbookctl.playbook import load_playbook, source_hash
from playbookctl.publish import publish
from playbookctl.register import register
from playbookctl.results import Action, PublishResult
from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy
from tests.support.gitrepos import clone_apart, commit_new, git
from tests.support.images import push_labelled_index
from tests.support.lintrepo import CONTAINERFILE, edit, good_playbook, make_repo
from tests.support.registry import logged_in

pytestmark = pytest.mark.integration
PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
_ids = itertools.count()
NO_ENGINE = "unix:///nonexistent/docker.sock"


@pytest.fixture(scope="module")
def engineless_base(
    session_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The busybox stand-in written straight into the registry: these tests need no engine."""
    ref = f"{session_registry.host}/test-base/engineless:1"
    # Module scope runs before a test's own Docker config exists: a login of its own.
    with logged_in(session_registry, tmp_path_factory.mktemp("docker-config")):
        push_base_image(session_registry.host, ref)
    return ref


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A committed repository with three RUN-less playbooks (one authored with a pipeline)."""
    repo = make_repo(
        tmp_path / "origin",
        {
            "restart-deployment": good_playbook("restart-deployment"),
            "restart-authored": good_playbook("restart-authored", pipeline=True),
        },
    )
    commit_new(repo, "playbooks")
    return repo


def _config(root: Path, registry: LocalRegistry, base_image: str, n: int, **kw: object) -> Config:
    return _named_config(root, registry.host, base_image, f"asm{n}", **kw)


def _named_config(root: Path, host: str, base_image: str, prefix: str, **kw: object) -> Config:
    """Images in <prefix>/images, bundles in <prefix>/bundles of the registry at `host`."""
    return Config(
        root=root,
        registry=host,
        image_repo=f"{prefix}/images",
        bundle_repo=f"{prefix}/bundles",
        base_image_overrides={PROD_FROM: base_image},
        push_retries=1,
        **kw,  # type: ignore[arg-type]
    )


def _one_playbook(tmp_path: Path, host: str, name: str) -> Config:
    """A repository of one committed playbook `name`, its base pushed to the registry at
    `host` (test-base/<name>:1), images and bundles under <name>/ there."""
    root = make_repo(tmp_path / "repo", {name: good_playbook(name)})
    commit_new(root, "playbooks")
    base = f"{host}/test-base/{name}:1"
    push_base_image(host, base)
    return _named_config(root, host, base, name)


def _publish(config: Config, docker_host: str, **kw: object) -> dict[str, PublishResult]:
    commit = git(config.root, "rev-parse", "HEAD")
    results = publish(
        config,
        None,
        jobs=2,
        dry_run=bool(kw.pop("dry_run", False)),
        commit=commit,
        source_repository="https://example.invalid/playbooks",
        docker_host=docker_host,
    )
    return {r.name: r for r in results}


def _base_layers(config: Config, base: str) -> set[str]:
    """The digests of the layers of every platform's child of the base index `base`."""
    repo = base.rsplit(":", 1)[0]
    with RegistryClient(config) as client:
        layers: set[str] = set()
        for _platform, child in platforms.index_entries(client, base):
            manifest = json.loads(client.get_manifest(f"{repo}@{child}")[0])
            layers |= {layer["digest"] for layer in manifest["layers"]}
    return layers


def _children(config: Config, name: str, version: str = "1.0.0") -> dict[str, str]:
    with RegistryClient(config) as client:
        return dict(platforms.index_entries(client, f"{config.image_ref(name)}:{version}"))


def test_two_clones_with_other_umasks_and_times_publish_the_same_images_without_an_engine(
    origin: Path,
    tmp_path: Path,
    registry: LocalRegistry,
    engineless_base: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base_image = engineless_base
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    first = clone_apart(origin, tmp_path / "first", umask=0o022, later=False)
    second = clone_apart(origin, tmp_path / "second", umask=0o077, later=True)
    assert (second / "playbooks/restart-deployment/remediate.sh").stat().st_mode & 0o077 == 0
    n = next(_ids)
    a = _publish(_config(first, registry, base_image, n), NO_ENGINE)
    b = _publish(_config(second, registry, base_image, n + 1000), NO_ENGINE)
    for name in ("restart-deployment", "restart-authored"):
        assert (a[name].status, a[name].error) == (Action.PUSHED, None)
        assert (b[name].status, b[name].error) == (Action.PUSHED, None)
        assert "image assembled without an engine (no RUN step)" in a[name].messages
        assert a[name].image is not None
        assert b[name].image is not None
        # The index lists the same children byte for byte, so it is the same index.
        assert a[name].image.digest == b[name].image.digest
        children = _children(_config(first, registry, base_image, n), name)
        assert sorted(children) == ["linux/amd64", "linux/arm64"]
        assert children == _children(_config(second, registry, base_image, n + 1000), name)


# A publish run as on a machine whose Python links zlib-ng instead of zlib (the system zlib of
# Fedora 40 and later, "zlib-ng-compat"): zlib-ng compresses the same bytes otherwise. The
# real library (the zlib-ng wheel playbookctl already depends on), put where `import zlib`
# finds it before anything imports zlib.
_OTHER_ZLIB_PUBLISH = """
import json, sys
from zlib_ng import zlib_ng
sys.modules["zlib"] = zlib_ng
del sys.modules["gzip"]  # zlib_ng imported it, with the standard zlib
import gzip, tarfile, zlib
assert gzip.zlib is zlib is zlib_ng
from pathlib import Path
from playbookctl.config import Config
from playbookctl.publish import publish
a = json.loads(sys.argv[1])
config = Config(root=Path(a["root"]), registry=a["registry"], image_repo=a["images"],
    bundle_repo=a["bundles"], base_image_overrides={a["from"]: a["base"]}, push_retries=1)
results = publish(config, None, jobs=2, dry_run=False, commit=a["commit"],
    source_repository="https://example.invalid/playbooks", docker_host=a["engine"])
print(json.dumps({r.name: [r.status.value, r.error, r.image.digest if r.image else None]
    for r in results}))
"""


def test_a_machine_whose_zlib_compresses_otherwise_publishes_the_same_images(
    origin: Path,
    tmp_path: Path,
    registry: LocalRegistry,
    engineless_base: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any machine, not only any clone: the layers playbookctl writes do not depend on the
    deflate of the Python that writes them."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    n = next(_ids)
    here = _publish(_config(origin, registry, engineless_base, n), NO_ENGINE)
    other = clone_apart(origin, tmp_path / "other", umask=0o022, later=False)
    config = _config(other, registry, engineless_base, n + 2000)
    args = {
        "root": str(other),
        "registry": registry.host,
        "images": config.image_repo,
        "bundles": config.bundle_repo,
        "from": PROD_FROM,
        "base": engineless_base,
        "commit": git(other, "rev-parse", "HEAD"),
        "engine": NO_ENGINE,
    }
    tooling = str(Path(__file__).resolve().parents[2] / "tooling")
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_ZLIB_PUBLISH, json.dumps(args)],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "PYTHONPATH": tooling},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    there = json.loads(done.stdout.splitlines()[-1])
    for name in ("restart-deployment", "restart-authored"):
        assert (here[name].status, here[name].error) == (Action.PUSHED, None)
        assert there[name][:2] == [Action.PUSHED.value, None]
        assert here[name].image is not None
        assert there[name][2] == here[name].image.digest
        assert _children(config, name) == _children(
            _config(origin, registry, engineless_base, n), name
        )


def test_the_tree_is_the_input_not_the_working_tree(
    origin: Path, tmp_path: Path, registry: LocalRegistry, engineless_base: str
) -> None:
    """A file git ignores, beside a playbook that copies its whole directory, never reaches
    the image: it is made from git's objects at the commit, not from the checkout."""
    d = origin / "playbooks/restart-authored"
    (d / ".dockerignore").unlink(missing_ok=True)
    cf = d / "Containerfile"
    cf.write_text(edit(cf.read_text(), "USER 65532", "COPY . /ctx/\nUSER 65532"))
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "copy the directory")
    clean = clone_apart(origin, tmp_path / "clean", umask=0o022, later=False)
    dirty = clone_apart(origin, tmp_path / "dirty", umask=0o022, later=False)
    (dirty / ".git/info/exclude").write_text("secret.env\n")
    (dirty / "playbooks/restart-authored/secret.env").write_text("TOKEN=hunter2\n")
    n = next(_ids)
    base_image = engineless_base
    a = _publish(_config(clean, registry, base_image, n), NO_ENGINE)["restart-authored"]
    b = _publish(_config(dirty, registry, base_image, n + 1000), NO_ENGINE)["restart-authored"]
    assert (a.status, b.status) == (Action.PUSHED, Action.PUSHED), (a.error, b.error)
    # A file git ignores is not source: the same hash, so the same label, the same images.
    assert a.source_hash == b.source_hash
    assert a.image is not None
    assert b.image is not None
    assert a.image.digest == b.image.digest
    assert any("git ignores secret.env" in m for m in b.messages), b.messages
    # The files of every child's top layer: the committed ones, never the ignored file.
    for config in (
        _config(clean, registry, base_image, n),
        _config(dirty, registry, base_image, n + 1000),
    ):
        names = _top_layer_names(config, "restart-authored")
        assert "ctx/remediate.sh" in names
        assert "ctx/Containerfile" in names
        assert "ctx/secret.env" not in names


def _top_layer_names(config: Config, name: str) -> set[str]:
    repo = config.image_ref(name)
    found: set[str] = set()
    with RegistryClient(config) as client:
        for child in _children(config, name).values():
            data, _, _ = client.get_manifest(f"{repo}@{child}")
            top = json.loads(data)["layers"][-1]["digest"]
            blob = client.get_blob(repo.split("/", 1)[1], top)
            with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
                found |= {m.name.rstrip("/") for m in tar}
    return found


def test_a_run_playbook_needs_the_engine_and_says_so_while_the_others_publish_without_one(
    origin: Path, registry: LocalRegistry, base_image: str, docker_engine: str
) -> None:
    cf = origin / "playbooks/restart-deployment/Containerfile"
    cf.write_text(edit(cf.read_text(), "USER 65532", "RUN mkdir -p /opt/ready\nUSER 65532"))
    git(origin, "commit", "-q", "-am", "a RUN step")
    n = next(_ids)
    config = _config(origin, registry, base_image, n)
    without = _publish(config, NO_ENGINE)
    assert without["restart-authored"].status is Action.PUSHED, without["restart-authored"].error
    run_one = without["restart-deployment"]
    assert run_one.status is Action.FAILED
    assert any(
        m.startswith("image built by the engine: playbooks/restart-deployment/Containerfile:")
        and "RUN executes the base's programs" in m
        for m in run_one.messages
    ), run_one.messages
    assert run_one.error is not None
    assert "Docker engine" in run_one.error
    # With the engine, the RUN playbook builds for both platforms (a native child and, with
    # QEMU, the other; without QEMU the release says so and fails: see test_platforms.py).
    if not all(platforms.emulation_available(a) or a == "amd64" for a in ("amd64", "arm64")):
        pytest.skip("no QEMU emulation for arm64 on this machine")
    again = _publish(config, docker_engine)["restart-deployment"]
    assert again.status is Action.PUSHED, again.error
    assert again.image is not None
    assert again.image.platforms == ["linux/amd64", "linux/arm64"]
    assert sorted(_children(config, "restart-deployment")) == ["linux/amd64", "linux/arm64"]


def test_a_dockerignore_docker_versions_read_differently_leaves_the_image_to_the_engine(
    origin: Path, registry: LocalRegistry, engineless_base: str
) -> None:
    """Whether the daemon removes the .dockerignore for `.dockerignor(e)` depends on its
    version (a regex in 20.10, characters since 23): not assembled, and said so by line."""
    ignore = origin / "playbooks/restart-deployment/.dockerignore"
    ignore.write_text("*\n!remediate.sh\n.dockerignor(e)\n")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "a pattern Docker versions read differently")
    config = _config(origin, registry, engineless_base, next(_ids))
    results = _publish(config, NO_ENGINE)
    assert results["restart-authored"].status is Action.PUSHED, results["restart-authored"].error
    r = results["restart-deployment"]
    assert r.status is Action.FAILED
    assert any(
        m.startswith("image built by the engine: playbooks/restart-deployment/Containerfile: ")
        and ".dockerignore: line 3: pattern '.dockerignor(e)' is read differently by Docker "
        "versions"
        in m
        for m in r.messages
    ), r.messages


def test_assemble_never_builds_every_image_with_the_engine(
    origin: Path, registry: LocalRegistry, base_image: str, docker_engine: str
) -> None:
    config = _config(origin, registry, base_image, next(_ids), assemble="never")
    r = _publish(config, docker_engine)["restart-deployment"]
    assert r.status is Action.PUSHED, r.error
    assert "image built by the engine: playbooks/restart-deployment/Containerfile: " in " ".join(
        r.messages
    )


def test_the_demo_releases_without_an_engine(tmp_path: Path, repo_root: Path) -> None:
    """`make demo` on a machine with no engine: the demo's no-engine mode writes the stand-in
    base into the registry, names the playbooks that would need an engine, and releases the
    samples (all RUN-less) with DOCKER_HOST naming a socket that does not exist."""
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["PLAYBOOKCTL_DEMO_ENGINE"] = "none"
    done = subprocess.run(
        [sys.executable, str(repo_root / "tooling/scripts/demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "docker engine: none (RUN-less images only)" in done.stdout
    samples = sorted(p.name for p in (repo_root / "playbooks").iterdir() if p.is_dir())
    for name in samples:
        assert f"  {name}: assembled, no engine needed" in done.stdout
    assert "the rerun was a no-op" in done.stdout


def test_a_base_in_another_registry_is_read_and_copied_once_per_run_then_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production's base lives in another registry (Docker Hub, say) than the images (GHCR):
    a registry cannot mount across registries, so each base layer must be uploaded into the
    target registry. Four playbooks published four at a time, with an empty cache: each base
    layer is downloaded once (for its directory summary and for the copy), uploaded once, and
    mounted from that repository into the three others; every image still holds it."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("PLAYBOOKCTL_CACHE_DIR", str(tmp_path / "cache"))  # cold, as CI's
    names = [f"copy-{n}" for n in range(4)]
    playbooks: dict[str, dict[str, str | bytes]] = {n: dict(good_playbook(n)) for n in names}
    root = make_repo(tmp_path / "repo", playbooks)
    commit_new(root, "playbooks")
    with (
        LocalRegistry(tls=False, access_log=True, workdir=tmp_path / "hub") as hub,
        LocalRegistry(tls=False, access_log=True, workdir=tmp_path / "target") as target,
    ):
        base_image = f"{hub.host}/library/base:1"
        push_base_image(hub.host, base_image)
        config = _config(root, target, base_image, next(_ids))
        layers = _base_layers(config, base_image)
        assert len(layers) == 2  # one per platform
        seen = len(hub.requests())
        results = publish(
            config,
            None,
            jobs=4,
            dry_run=False,
            commit=git(root, "rev-parse", "HEAD"),
            source_repository="https://example.invalid/playbooks",
            docker_host=NO_ENGINE,
        )
        assert [(r.status, r.error) for r in results] == [(Action.PUSHED, None)] * 4
        hub_gets = [p for m, p in hub.requests()[seen:] if m == "GET" and "/blobs/" in p]
        target_log = target.requests()
        for digest in layers:
            assert sum(p.endswith(f"/blobs/{digest}") for p in hub_gets) == 1, hub_gets
            uploads = [p for m, p in target_log if m == "PUT" and f"digest={digest}" in p]
            mounts = [p for m, p in target_log if m == "POST" and f"mount={digest}" in p]
            assert len(uploads) == 1, uploads
            assert len(mounts) == 3, mounts
        with RegistryClient(config) as client:
            for name in names:
                repo = parse_reference(config.image_ref(name) + ":x").repository
                for digest in layers:
                    assert client.blob_exists(repo, digest, registry=target.host)


def test_a_playbooks_blobs_go_up_together_and_its_manifests_only_after_them(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """assemble.push_images: every blob of a playbook's images is in flight at once (the first
    upload, held back by a slow link, does not hold the others: they finish before it), the layer
    both platforms share goes up once, and no child manifest is written before every blob of
    its repository is in (a manifest never names a blob the repository lacks)."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    config = _one_playbook(tmp_path, fault_proxy.host, "together")
    held: list[str] = []

    def first_upload(method: str, path: str) -> bool:
        hit = method == "PUT" and "/together/images/" in path and "/blobs/uploads/" in path
        if hit and not held:
            held.append(path)
        return hit and path == held[0]

    fault_proxy.log.clear()
    fault_proxy.throttle_next(1, match=first_upload, rate=400)  # a few KiB: seconds
    r = _publish(config, NO_ENGINE)["together"]
    assert (r.status, r.error) == (Action.PUSHED, None)
    log = [(m, p) for m, p, _s in fault_proxy.log if "/together/images/" in p]
    uploads = [i for i, (m, p) in enumerate(log) if m == "PUT" and "/blobs/uploads/" in p]
    slow = log.index(("PUT", held[0]))
    assert len(uploads) == 3, log  # the shared layer and two configs; base layers mounted
    assert slow == uploads[-1], log  # the two others finished while it crawled
    children = _children(config, "together")
    assert len(children) == 2
    for digest in children.values():
        assert log.index(("PUT", f"/v2/together/images/together/manifests/{digest}")) > slow, log


def test_a_base_layer_copy_that_fails_early_is_made_again_by_the_push(
    fault_proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A base from another registry is copied into the target while its layers are summarised
    (BaseCache._read_layer). When that early copy fails, nothing is reported from its thread:
    the push that needs the layer copies it itself, and the publish succeeds."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("PLAYBOOKCTL_CACHE_DIR", str(tmp_path / "cache"))  # cold: summarised now
    root = make_repo(tmp_path / "repo", {"early": good_playbook("early")})
    commit_new(root, "playbooks")
    with LocalRegistry(tls=False, workdir=tmp_path / "hub") as hub:
        base = f"{hub.host}/library/base:1"
        push_base_image(hub.host, base)
        config = _named_config(root, fault_proxy.host, base, "early")
        # Both platforms' early copies open an upload session first: both refused.
        opens = lambda m, p: m == "POST" and p.startswith("/v2/early/images/early/blobs/uploads")  # noqa: E731
        fault_proxy.fail_next(2, 403, match=opens)
        r = _publish(config, NO_ENGINE)["early"]
    assert (r.status, r.error) == (Action.PUSHED, None)
    refused = [p for m, p, s in fault_proxy.log if s == 403]
    assert len(refused) == 2, fault_proxy.log
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "Exception in thread" not in err
    with RegistryClient(config) as client:
        for digest in _children(config, "early").values():
            manifest = json.loads(client.get_manifest(f"{config.image_ref('early')}@{digest}")[0])
            for layer in manifest["layers"]:
                assert client.blob_exists("early/images/early", layer["digest"])


def test_a_playbooks_own_blobs_go_up_while_its_base_layers_are_still_being_copied(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base in another registry is copied into the target (BaseCache._read_layer starts the
    copy as soon as a layer is downloaded). The image's own blobs do not wait for that copy:
    on a slow uplink they are all in while the base layers still crawl up; only the image
    manifests, which name the base layers, wait for them."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("PLAYBOOKCTL_CACHE_DIR", str(tmp_path / "cache"))
    root = make_repo(tmp_path / "repo", {"crawl": good_playbook("crawl")})
    commit_new(root, "playbooks")
    with LocalRegistry(tls=False, workdir=tmp_path / "hub") as hub:
        base = f"{hub.host}/library/base:1"
        push_base_image(hub.host, base)
        config = _named_config(root, fault_proxy.host, base, "crawl")
        layers = _base_layers(config, base)
        copies = lambda m, p: m == "PUT" and any(f"digest={d}" in p for d in layers)  # noqa: E731
        fault_proxy.throttle_next(len(layers), match=copies, rate=2_000_000)  # seconds each
        fault_proxy.log.clear()
        r = _publish(config, NO_ENGINE)["crawl"]
    assert (r.status, r.error) == (Action.PUSHED, None)
    log = [(m, p) for m, p, _s in fault_proxy.log if "/crawl/images/" in p]
    uploads = [i for i, (m, p) in enumerate(log) if m == "PUT" and "/blobs/uploads/" in p]
    copied = [i for i in uploads if copies(*log[i])]
    own = [i for i in uploads if i not in copied]
    assert len(copied) == len(layers), log
    assert len(own) == 3, log  # the shared layer and two configs
    assert max(own) < min(copied), log  # all in before the first base layer's copy ended
    children = _children(config, "crawl").values()
    manifests = [log.index(("PUT", f"/v2/crawl/images/crawl/manifests/{d}")) for d in children]
    assert len(manifests) == 2, log
    assert min(manifests) > max(copied), log


def test_a_new_version_is_published_in_its_request_budget(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a new version of an assembled playbook costs the registry, request by request (the
    README's "Where the requests go"): git does not register the version, so the image's tag is
    looked up once, just before the index is written, not also before the image is made; so is
    the bundle's; the bundle is read back by its manifest alone."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    config = _one_playbook(tmp_path, fault_proxy.host, "budget")
    fault_proxy.log.clear()
    r = _publish(config, NO_ENGINE)["budget"]
    assert (r.status, r.error) == (Action.PUSHED, None)

    def kind(method: str, path: str) -> str:
        what = path.split("?", maxsplit=1)[0].rsplit("/", 1)[-1]
        if "/manifests/" in path:
            return f"{method} manifest {'digest' if what.startswith('sha256:') else 'tag'}"
        if "?mount=" in path:
            return "POST mount"
        return f"{method} blob upload"

    spent: dict[str, Counter[str]] = {"images": Counter(), "bundles": Counter()}
    for method, path, _status in fault_proxy.log:
        for repo, counter in spent.items():
            if path.startswith(f"/v2/budget/{repo}/"):
                counter[kind(method, path)] += 1
    assert spent["images"] == {
        "GET manifest tag": 1,  # the check just before the tag is written
        "POST mount": 2,  # each platform's base layer (the base is in this registry)
        "POST blob upload": 3,  # the layer both platforms share, each platform's config
        "PUT blob upload": 3,
        "PUT manifest digest": 3,  # the two children, and the run's one index-type probe
        "PUT manifest tag": 1,  # the index
        "GET manifest digest": 1,  # the index read back
    }, fault_proxy.log
    assert spent["bundles"] == {
        "GET manifest tag": 1,  # the image's tag was absent: only the check before writing
        "POST blob upload": 2,  # its config and its layer
        "PUT blob upload": 2,
        "PUT manifest tag": 1,
        "GET manifest digest": 1,  # the manifest read back; its layers the registry vouched for
    }, fault_proxy.log
    # The bundle's tag is looked up after the image's index is written, never before; the
    # image's after its children are pushed.
    sent = [(m, p) for m, p, _s in fault_proxy.log]
    assert sent.index(("GET", "/v2/budget/bundles/budget/manifests/1.0.0")) > sent.index(
        ("PUT", "/v2/budget/images/budget/manifests/1.0.0")
    )
    children = [
        i for i, (m, p) in enumerate(sent) if m == "PUT" and p.startswith("/v2/budget/images/")
    ]
    assert sent.index(("GET", "/v2/budget/images/budget/manifests/1.0.0")) > children[-2]


def _playbooks(
    tmp_path: Path, host: str, prefix: str, names: list[str], broken: tuple[str, ...] = ()
) -> Config:
    """A repository of committed playbooks `names`, each with a script of its own (those in
    `broken` with a workflow.yaml lint refuses), their base pushed to the registry at `host`;
    images and bundles under <prefix>/ there."""
    playbooks: dict[str, dict[str, str | bytes]] = {n: dict(good_playbook(n)) for n in names}
    for n, files in playbooks.items():
        files["remediate.sh"] = f"{files['remediate.sh']}echo {n}\n"
        if n in broken:
            files["workflow.yaml"] = "spec: [\n"
    root = make_repo(tmp_path / "repo", playbooks)
    commit_new(root, "playbooks")
    base = f"{host}/test-base/{prefix}:1"
    push_base_image(host, base)
    return _named_config(root, host, base, prefix)


def test_a_runs_bundles_share_one_uploaded_config(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    """The artifact layout's config is `{}` for every bundle: a publish uploads it once, into
    the first playbook's bundle repository, and mounts it from there into each other one (one
    request each, where an upload is two: the README's "Where the requests go"). Not into
    a playbook lint refuses, which is not published: no repository is made for a blob alone."""
    names = ["cfg-a", "cfg-b", "cfg-c"]
    config = _playbooks(tmp_path, fault_proxy.host, "shared", ["cfg-0", *names], ("cfg-0",))
    fault_proxy.log.clear()
    results = _publish(config, NO_ENGINE)
    assert results.pop("cfg-0").status is Action.SKIPPED
    assert not [p for _, p, _ in fault_proxy.log if "/cfg-0/" in p]
    assert {(r.status, r.error) for r in results.values()} == {(Action.PUSHED, None)}
    empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    uploads = [p for m, p, _ in fault_proxy.log if m == "PUT" and f"digest={empty}" in p]
    assert [p.split("/blobs/")[0] for p in uploads] == ["/v2/shared/bundles/cfg-a"]
    mounts = sorted(
        (p.split("/blobs/")[0], st) for m, p, st in fault_proxy.log if f"mount={empty}" in p
    )
    assert mounts == [("/v2/shared/bundles/cfg-b", 201), ("/v2/shared/bundles/cfg-c", 201)]
    assert all(
        "&from=shared/bundles/cfg-a" in p for _, p, _ in fault_proxy.log if "mount=" + empty in p
    )
    with RegistryClient(config) as client:
        for name in names:
            ref = f"{config.bundle_ref(name)}:1.0.0"
            rb = read_bundle(client, ref)
            assert (rb.ok, rb.digest) == (True, results[name].bundle.digest)  # type: ignore[union-attr]
            assert rb.media_type == OCI_MANIFEST
            manifest = json.loads(client.get_manifest(ref)[0])
            assert manifest["config"]["digest"] == empty


def test_a_refused_mount_of_the_shared_config_is_an_upload(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A registry that refuses the mount outright (403 DENIED, as one does whose token grants no
    pull on the source) instead of answering with an upload session: each bundle uploads the
    two bytes itself, and every playbook is published."""
    names = ["den-a", "den-b", "den-c"]
    config = _playbooks(tmp_path, fault_proxy.host, "denied", names)
    empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    denied = (
        b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}'
    )
    fault_proxy.fail_next(
        -1, 403, match=lambda m, p: m == "POST" and f"mount={empty}" in p, body=denied
    )
    fault_proxy.log.clear()
    results = _publish(config, NO_ENGINE)
    assert {(r.status, r.error) for r in results.values()} == {(Action.PUSHED, None)}
    assert [st for m, p, st in fault_proxy.log if f"mount={empty}" in p] == [403, 403]
    uploads = {p.split("/blobs/")[0] for m, p, _ in fault_proxy.log if f"digest={empty}" in p}
    assert uploads == {f"/v2/denied/bundles/{n}" for n in names}
    with RegistryClient(config) as client:
        for name in names:
            assert read_bundle(client, f"{config.bundle_ref(name)}:1.0.0").ok


def test_a_registry_that_refuses_artifacts_gets_tkns_layout(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A registry that takes images but refuses the artifact's config type (Quay without the
    type allowed answers 400 MANIFEST_INVALID): the bundle goes in tkn's layout (the same
    layers, its own config), each playbook says so, and the rest of the run starts with it."""
    names = ["art-a", "art-b", "art-c"]
    config = _playbooks(tmp_path, fault_proxy.host, "refusing", names)
    fault_proxy.refused_config_types = {EMPTY_MEDIA_TYPE}
    fault_proxy.log.clear()
    results = _publish(config, NO_ENGINE)
    assert {(r.status, r.error) for r in results.values()} == {(Action.PUSHED, None)}
    refused = [p for m, p, st in fault_proxy.log if m == "PUT" and "/manifests/" in p and st == 400]
    # At most one per job in flight when the first refusal came back (jobs=2), not one each.
    assert 1 <= len(refused) <= 2, refused
    told = [
        n
        for n, r in results.items()
        if any("refused the bundle as an OCI artifact" in m for m in r.messages)
    ]
    assert len(told) == len(refused)
    with RegistryClient(config) as client:
        for name in names:
            rb = read_bundle(client, f"{config.bundle_ref(name)}:1.0.0")
            assert (rb.ok, rb.media_type) == (True, MANIFEST_MEDIA_TYPE)
            assert rb.digest == results[name].bundle.digest  # type: ignore[union-attr]


def test_a_publish_asks_its_tokens_together(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS with a token service: the repositories a publish writes (each playbook's image and
    bundle) and the base it mounts from are asked for in one token request (up to
    PREFETCH_SCOPES scopes), by the first thread to need a token, while the others wait for
    it; every request of the run is then served by that token (one per repository before, and
    one more for the run's first image repository)."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    names = ["tok-a", "tok-b", "tok-c", "tok-d"]
    playbooks: dict[str, dict[str, str | bytes]] = {n: dict(good_playbook(n)) for n in names}
    for n, files in playbooks.items():  # scripts of their own (one layer mounted by all is a
        files["remediate.sh"] = f"{files['remediate.sh']}echo {n}\n"  # source of its own)
    root = make_repo(tmp_path / "repo", playbooks)
    commit_new(root, "playbooks")
    base = f"{registry.host}/test-base/tokens:1"
    push_base_image(registry.host, base)
    config = _named_config(root, registry.host, base, "tokens")
    assert registry.token_log is not None
    seen = len(registry.token_log.read_text("utf-8").splitlines())
    results = _publish(config, NO_ENGINE)
    assert {(r.status, r.error) for r in results.values()} == {(Action.PUSHED, None)}
    issued = [json.loads(x) for x in registry.token_log.read_text("utf-8").splitlines()[seen:]]
    assert len(issued) == 1, issued
    (token,) = issued
    granted = {(a["name"], tuple(sorted(a["actions"]))) for a in token["access"]}
    assert granted == {
        *(
            (f"tokens/{kind}/{n}", ("pull", "push"))
            for n in names
            for kind in ("images", "bundles")
        ),
        ("test-base/tokens", ("pull",)),
    }


def _sent_to(log: list[tuple[str, str, int]], prefix: str) -> list[tuple[str, str]]:
    return [(m, p.split("?", 1)[0]) for m, p, _s in log if p.startswith(prefix)]


def test_a_version_git_registers_is_looked_up_before_anything_is_made(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup is skipped only on git's word that the version is new: published, then
    registered and committed, the next publish of that version looks its tag up first and
    reuses it, uploading nothing."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    config = _one_playbook(tmp_path, fault_proxy.host, "known")
    first = _publish(config, NO_ENGINE)["known"]
    assert (first.status, first.error) == (Action.PUSHED, None)
    assert register(config, [first]).changed
    git(config.root, "add", "registry")
    git(config.root, "commit", "-q", "-m", "register")
    fault_proxy.log.clear()
    again = _publish(config, NO_ENGINE)["known"]
    assert (again.status, again.error) == (Action.REUSED, None)
    sent = _sent_to(fault_proxy.log, "/v2/known/images/")
    assert sent[0] == ("GET", "/v2/known/images/known/manifests/1.0.0"), sent
    assert not [r for r in sent if r[0] != "GET"], sent


def test_a_run_that_finds_a_new_version_published_looks_the_others_up_first(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release killed after it published, rerun: git calls every version new, the first
    playbook is made again and its tag, found just before the index would be written, is
    reused by its source (as a lookup first would have); the rest of the run then looks each
    tag up first, and uploads nothing for them."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    names = ["left-a", "left-b", "left-c"]
    playbooks: dict[str, dict[str, str | bytes]] = {n: dict(good_playbook(n)) for n in names}
    root = make_repo(tmp_path / "repo", playbooks)
    commit_new(root, "playbooks")
    base = f"{fault_proxy.host}/test-base/leftover:1"
    push_base_image(fault_proxy.host, base)
    config = _named_config(root, fault_proxy.host, base, "leftover")
    commit = git(root, "rev-parse", "HEAD")

    def run() -> dict[str, PublishResult]:
        results = publish(config, None, jobs=1, dry_run=False, commit=commit, source_repository="s")
        return {r.name: r for r in results}

    assert {r.status for r in run().values()} == {Action.PUSHED}
    fault_proxy.log.clear()
    again = run()
    assert {(r.status, r.error) for r in again.values()} == {(Action.REUSED, None)}
    assert "is already published from this source: reused" in "\n".join(again["left-a"].messages)
    uploads = {
        n: [r for r in _sent_to(fault_proxy.log, f"/v2/leftover/images/{n}/") if r[0] != "GET"]
        for n in names
    }
    assert uploads["left-a"], "the first playbook is made again before its tag is looked up"
    assert uploads["left-b"] == uploads["left-c"] == [], uploads


def test_an_assembly_the_base_refuses_looks_the_tag_up_before_the_engine(
    plain_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Containerfile that reads as assemblable but that its base refuses (a destination that
    is a symbolic link there) goes to the engine, whose builds are not reproducible: its tag is
    looked up before that build, as every engine build's is. Published already from this source
    (by hand here), it is reused with no engine at all; without that lookup the engine (absent
    here) would be asked to build it."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    files: dict[str, str | bytes] = dict(good_playbook("linked"))
    files["Containerfile"] = edit(
        str(files["Containerfile"]),
        "USER 65532:65532\n",
        "COPY remediate.sh /usr/bin/env\nUSER 65532:65532\n",
    )
    root = make_repo(tmp_path / "repo", {"linked": files})
    commit_new(root, "playbooks")
    base = f"{plain_registry.host}/test-base/linked:1"
    push_base_image(plain_registry.host, base)
    config = _named_config(root, plain_registry.host, base, "linked")
    pb = load_playbook(config.playbooks_dir / "linked", config.root, config.max_file_bytes)
    with RegistryClient(config) as client:
        push_labelled_index(
            client,
            f"{config.image_ref('linked')}:1.0.0",
            {build.SOURCE_HASH_LABEL: source_hash(pb.dir, config.platforms)},
        )
    r = _publish(config, NO_ENGINE)["linked"]
    assert (r.status, r.error) == (Action.PUSHED, None)
    assert r.image is not None
    assert r.image.action is Action.REUSED


def test_a_bundle_whose_image_was_deleted_is_adopted_when_the_image_is_made_again(
    plain_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's tag is gone (a retention policy deleted the image), its bundle is not. A new
    run finds no image, assembles it again from the same commit (the same bytes, so the same
    digest), and its one look at the bundle's tag, just before writing it, finds the bundle
    holding exactly the Pipeline it renders: adopted, never overwritten (README, "How a release
    works", step 2)."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    config = _one_playbook(tmp_path, plain_registry.host, "regrown")
    first = _publish(config, NO_ENGINE)["regrown"]
    assert (first.status, first.error) == (Action.PUSHED, None)
    assert first.image is not None
    assert first.bundle is not None
    image_repo = parse_reference(config.image_ref("regrown") + ":x").repository
    deleted = urllib.request.Request(
        f"http://{plain_registry.host}/v2/{image_repo}/manifests/{first.image.digest}",
        method="DELETE",
    )
    with urllib.request.urlopen(deleted) as resp:  # noqa: S310 - the loopback test registry
        assert resp.status == 202
    with RegistryClient(config) as client:
        assert client.resolve(f"{config.image_ref('regrown')}:1.0.0") is None

    again = _publish(config, NO_ENGINE)["regrown"]
    assert (again.status, again.error) == (Action.REUSED, None), again
    assert again.image is not None
    assert again.bundle is not None
    assert again.image.digest == first.image.digest  # made again, byte for byte
    assert again.bundle.digest == first.bundle.digest  # adopted, not pushed again
    with RegistryClient(config) as client:
        image = client.resolve(f"{config.image_ref('regrown')}:1.0.0")
        bundle = client.resolve(f"{config.bundle_ref('regrown')}:1.0.0")
    assert image is not None
    assert image.digest == first.image.digest
    assert bundle is not None
    assert bundle.digest == first.bundle.digest
