"""kill -9 at every step of the engine path (a playbook with RUN), then rerun the release.

The engine path builds each platform, saves and rewrites it (build.engine_image), writes each
child to the registry by digest (assemble.push_assembled: blobs, then the manifest), then the
index under the version, then the bundle. The killed run is the real CLI in its own process,
SIGKILLed by itself at a named step (`PLAYBOOKCTL_TEST_KILL_AT`, crashpoints.ENGINE_STEPS and
"image-pushed"); its exit status proves it reached the step. After the kill, no tag in the
run's repositories may name an image with a part missing; the rerun must end with one release
commit whose registration pins a bundle the registry holds, and the very digests (index and
every child) that a release never interrupted pushes for the same commit.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import uuid

import pytest
import yaml

from playbookctl import platforms
from playbookctl.config import Config, load_config
from playbookctl.crashpoints import ENGINE_STEPS
from playbookctl.oci import INDEX_MEDIA_TYPES, RegistryClient, parse_reference
from playbookctl_dev.registry import LocalRegistry
from tests.support.crash import crash_env
from tests.support.gitrepos import TEST_BASE_IMAGE, MakeRepo, PlaybookRepo, git

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

NAME = "alpha"
VERSION = "1.0.0"
TRAILER = "Released-by: playbookctl"
SOURCE = "https://example.invalid/playbooks"
BOTH = ("linux/amd64", "linux/arm64")
# Unique per session: test_non_root.py runs this module again against the same registry.
_ids = (f"{uuid.uuid4().hex[:8]}-{n}" for n in itertools.count())

# The native platform alone keeps most cases quick; the cases where two platforms make a
# difference (one child pushed and not the other; the index over both) build both, arm64
# under QEMU.
CASES = [
    ("engine-saved", ("linux/amd64",)),
    ("child-blobs-pushed", ("linux/amd64",)),
    ("engine-child-pushed", BOTH),
    ("engine-children-pushed", BOTH),
    ("image-pushed", ("linux/amd64",)),
]


def test_the_table_covers_every_engine_step() -> None:
    assert {step for step, _ in CASES} == {*ENGINE_STEPS, "image-pushed"}


def cli(
    repo: PlaybookRepo, config: Config, wanted: tuple[str, ...], kill_at: str | None, *args: str
) -> subprocess.CompletedProcess[str]:
    env = crash_env(config, kill_at)
    cmd = [
        sys.executable, "-m", "playbookctl", "-C", str(repo.path), *args,
        "--registry", config.registry, "--image-repo", config.image_repo,
        "--bundle-repo", config.bundle_repo, "--source-repository", SOURCE, "--smoke", "off",
    ]  # fmt: skip
    for platform in wanted:
        cmd += ["--platform", platform]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, check=False)


def image_digests(client: RegistryClient, ref: str) -> dict[str, str]:
    """ "index" -> the index's digest, and platform -> child digest, of the image at `ref`."""
    desc = client.resolve(ref)
    assert desc is not None, ref
    return {"index": desc.digest, **dict(platforms.index_entries(client, ref))}


def tags(client: RegistryClient, repo: str) -> list[str]:
    r = parse_reference(repo + ":x")
    resp = client.call("GET", r.registry, r.repository, "tags/list", what="tags", ok=(200, 404))
    return [] if resp.status_code == 404 else list(resp.json().get("tags") or [])


def assert_complete(client: RegistryClient, ref: str) -> None:
    """Every part of the image or bundle at `ref` is in its repository: an index's children,
    each manifest's config and layers."""
    data, media_type, _digest = client.get_manifest(ref)
    r = parse_reference(ref)
    repo = f"{r.registry}/{r.repository}"
    manifest = yaml.safe_load(data)
    if media_type in INDEX_MEDIA_TYPES:
        assert manifest["manifests"], ref
        for child in manifest["manifests"]:
            assert_complete(client, f"{repo}@{child['digest']}")
        return
    for blob in [manifest["config"], *manifest["layers"]]:
        assert client.blob_exists(r.repository, blob["digest"], registry=r.registry), (ref, blob)


def assert_no_tag_names_a_half_written_image(client: RegistryClient, config: Config) -> None:
    for repo in (config.image_ref(NAME), config.bundle_ref(NAME)):
        for tag in tags(client, repo):
            assert_complete(client, f"{repo}:{tag}")


def registered_bundle(repo: PlaybookRepo) -> str:
    text = git(repo.remote, "show", f"refs/heads/main:registry/workflows/{NAME}.yaml")
    return str(list(yaml.safe_load_all(text))[-1]["spec"]["execution"]["bundle"])


@pytest.fixture
def run_repo(playbook_repo_factory: MakeRepo) -> PlaybookRepo:
    """One playbook whose Containerfile has a RUN step: built by the engine, not assembled."""
    repo = playbook_repo_factory({NAME: VERSION})
    containerfile = repo.path / "playbooks" / NAME / "Containerfile"
    text = containerfile.read_text()
    assert "\nUSER " in text
    containerfile.write_text(
        text.replace("\nUSER ", "\nRUN mkdir -p /opt/state && echo ready > /opt/state/flag\nUSER ")
    )
    repo.commit_all("alpha builds with a RUN step")
    repo.push()
    return repo


def _config(repo: PlaybookRepo, registry: LocalRegistry, base_image: str, prefix: str) -> Config:
    return load_config(repo.path).with_overrides(
        registry=registry.host,
        image_repo=f"{prefix}/images",
        bundle_repo=f"{prefix}/bundles",
        base_image_overrides={TEST_BASE_IMAGE: base_image},
    )


@pytest.mark.parametrize(("step", "wanted"), CASES, ids=[step for step, _ in CASES])
def test_a_release_killed_on_the_engine_path_converges_on_the_same_digests(
    run_repo: PlaybookRepo,
    registry: LocalRegistry,
    base_image: str,
    docker_engine: str,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    wanted: tuple[str, ...],
) -> None:
    if "linux/arm64" in wanted and not platforms.emulation_available("arm64"):
        pytest.skip("no QEMU emulation for arm64 on this machine")
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    n = next(_ids)
    config = _config(run_repo, registry, base_image, f"engcrash{n}")
    main_before = run_repo.remote_head()

    killed = cli(run_repo, config, wanted, step, "release", "--jobs", "1")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr  # reached it
    assert "built by the engine" in killed.stderr, killed.stderr  # the engine path, not assembled
    assert run_repo.remote_head() == main_before  # nothing released
    with RegistryClient(config) as client:
        assert_no_tag_names_a_half_written_image(client, config)
        if step != "image-pushed":
            assert client.resolve(f"{config.image_ref(NAME)}:{VERSION}") is None

    rerun = cli(run_repo, config, wanted, None, "release", "--jobs", "1")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    log = git(run_repo.remote, "log", "--format=%B%x01", "refs/heads/main")
    assert sum(TRAILER in entry for entry in log.split("\x01")) == 1
    bundle = registered_bundle(run_repo)
    assert bundle.startswith(f"{config.bundle_ref(NAME)}:{VERSION}@sha256:")

    # The same commit released by a run never interrupted, into repositories of its own.
    fresh = _config(run_repo, registry, base_image, f"engcrash{n}-uninterrupted")
    done = cli(run_repo, fresh, wanted, None, "publish", "--jobs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    with RegistryClient(config) as client:
        assert_no_tag_names_a_half_written_image(client, config)
        got = image_digests(client, f"{config.image_ref(NAME)}:{VERSION}")
        want = image_digests(client, f"{fresh.image_ref(NAME)}:{VERSION}")
        assert sorted(got) == sorted(["index", *wanted])
        assert got == want
        named, _, digest = bundle.partition("@")
        assert client.resolve(f"{named.rpartition(':')[0]}@{digest}") is not None
    head = run_repo.remote_head()
    again = cli(run_repo, config, wanted, None, "release", "--jobs", "1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert run_repo.remote_head() == head  # and a third run changes nothing
