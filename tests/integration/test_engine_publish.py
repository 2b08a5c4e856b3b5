"""The engine path through publish: a playbook with a RUN step is built by the engine on both
platforms, smoke-run (really started on each where QEMU is registered), and written to the
registry by playbookctl, by digest, the same bytes from two clones built apart, with nothing
loaded back into the engine and nothing pushed by it.

Real components: a loopback registry, `git clone` under two umasks, the session's engine.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from pathlib import Path

import docker
import pytest

from playbookctl import platforms
from playbookctl.cli import main
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl.publish import publish
from playbookctl.results import Action, PublishResult
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import clone_apart, commit_new, git
from tests.support.lintrepo import CONTAINERFILE, edit, good_playbook, make_repo

pytestmark = pytest.mark.integration
PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
NAME = "restart-deployment"
# Unique per session: test_non_root.py runs this module again against the same registry.
_ids = (f"{uuid.uuid4().hex[:8]}-{n}" for n in itertools.count())


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A committed repository with one playbook whose Containerfile has a RUN step that
    creates directories and a file (their times are the build's, their content is not)."""
    files = good_playbook(NAME)
    files["Containerfile"] = edit(
        str(files["Containerfile"]),
        "USER 65532",
        "RUN mkdir -p /opt/playbook/state && echo ready > /opt/playbook/state/flag\nUSER 65532",
    )
    repo = make_repo(tmp_path / "origin", {NAME: files})
    commit_new(repo, "a RUN playbook")
    return repo


def _config(root: Path, registry: LocalRegistry, base_image: str) -> Config:
    n = next(_ids)
    return Config(
        root=root,
        registry=registry.host,
        image_repo=f"engpub{n}/images",
        bundle_repo=f"engpub{n}/bundles",
        base_image_overrides={PROD_FROM: base_image},
        push_retries=1,
    )


def _publish(config: Config, docker_host: str) -> PublishResult:
    (result,) = publish(
        config,
        [NAME],
        jobs=1,
        dry_run=False,
        commit=git(config.root, "rev-parse", "HEAD"),
        source_repository="https://example.invalid/playbooks",
        docker_host=docker_host,
    )
    return result


def _forget(api: docker.APIClient, config: Config) -> None:
    """Remove this repository's built images, so the next build of the same context really
    runs its RUN step again (no build cache)."""
    prefix = config.image_ref(NAME) + ":"
    for image in api.images():
        if any(str(t).startswith(prefix) for t in image.get("RepoTags") or []):
            api.remove_image(image["Id"], force=True)


def test_a_run_playbook_from_two_clones_built_apart_publishes_the_same_digests_loading_nothing(
    origin: Path,
    tmp_path: Path,
    registry: LocalRegistry,
    base_image: str,
    docker_engine: str,
) -> None:
    both = all(platforms.emulation_available(a) or a == "amd64" for a in ("amd64", "arm64"))
    if not both:
        pytest.skip("no QEMU emulation for arm64 on this machine")
    first = clone_apart(origin, tmp_path / "first", umask=0o022, later=False)
    second = clone_apart(origin, tmp_path / "second", umask=0o077, later=True)
    api = docker.APIClient(base_url=docker_engine, version="auto")
    started = int(time.time()) - 1
    try:
        config_a = _config(first, registry, base_image)
        a = _publish(config_a, docker_engine)
        _forget(api, config_a)
        time.sleep(1.1)  # another second on the build's clock
        config_b = _config(second, registry, base_image)
        b = _publish(config_b, docker_engine)
        events = [
            str(e.get("Action") or e.get("status"))
            for e in api.events(
                since=started,
                until=int(time.time()) + 1,
                decode=True,
                filters={"type": "image"},
            )
        ]
        local = {str(i["Id"]) for i in api.images(all=True)}
    finally:
        api.close()
    for r in (a, b):
        assert (r.status, r.error) == (Action.PUSHED, None)
        assert r.image is not None
        assert r.image.platforms == ["linux/amd64", "linux/arm64"]
        assert any(m.startswith("image built by the engine: ") for m in r.messages), r.messages
        # Really executed on both platforms (arm64 under QEMU) before anything was pushed.
        for platform in ("linux/amd64", "linux/arm64"):
            assert any(m.startswith(f"smoke: {platform} started") for m in r.messages), r.messages
    assert a.image is not None
    assert b.image is not None
    assert a.image.digest == b.image.digest
    with RegistryClient(config_a) as client:
        children = dict(platforms.index_entries(client, f"{config_a.image_ref(NAME)}:1.0.0"))
        assert sorted(children) == ["linux/amd64", "linux/arm64"]
        for platform in ("amd64", "arm64"):
            # by digest only: no `<version>_<os>-<arch>` tag
            assert client.resolve(f"{config_a.image_ref(NAME)}:1.0.0_linux-{platform}") is None
        configs = set()
        for child in children.values():
            data, _media_type, _digest = client.get_manifest(f"{config_a.image_ref(NAME)}@{child}")
            configs.add(json.loads(data)["config"]["digest"])
    # The engine built and saved; it loaded nothing and pushed nothing, and holds no image
    # with a pushed config's id (the rewrite lives only in the registry).
    assert "save" in events
    assert "load" not in events, events
    assert "push" not in events, events
    assert not configs & local


def _no_default_repo(tmp_path: Path, disable: bool) -> Path:
    """A RUN playbook whose base is a build argument without a default: the Containerfile does
    not name its base at all (publish passes no build arguments). `disable`: the repository
    turned the lint rule that refuses it off."""
    files = good_playbook(NAME)
    files["Containerfile"] = edit(
        edit(str(files["Containerfile"]), f"FROM {PROD_FROM}", "ARG BASE\nFROM ${BASE}"),
        "USER 65532",
        "RUN mkdir -p /opt/playbook/state\nUSER 65532",
    )
    repo = make_repo(tmp_path / "repo", {NAME: files})
    if disable:
        with (repo / "pyproject.toml").open("a") as fh:
            fh.write('\n[tool.playbookctl.lint]\ndisable = ["playbook.base-image-pinned"]\n')
    commit_new(repo, "a RUN playbook FROM ${BASE}")
    return repo


@pytest.mark.parametrize(
    ("disable", "says"),
    [
        pytest.param(
            False,
            [
                f"playbooks/{NAME}/Containerfile:2:1: playbook.base-image-pinned: "
                "FROM ${BASE} names no image: the build argument BASE has no default and "
                "publish passes no build arguments, so there is no base to build on",
                "ARG BASE=image:tag@sha256:<64 hex>",
            ],
            id="refused-by-lint",
        ),
        pytest.param(
            True,
            [
                "line 2: FROM '${BASE}' (no base to stack on)",
                "image build failed at Step 2/",
                "base name (${BASE}) should not be blank",
            ],
            id="lint-rule-off-refused-by-the-engine",
        ),
    ],
)
def test_a_base_from_a_build_argument_without_default_is_refused_through_the_cli_saying_why(
    tmp_path: Path,
    registry: LocalRegistry,
    docker_engine: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    disable: bool,
    says: list[str],
) -> None:
    """`ARG BASE` then `FROM ${BASE}`: no image pushed by the engine as built, nothing pushed at
    all. Lint refuses it, naming the line and the way out; with that rule turned off, the
    engine refuses to build a blank base and publish relays why, naming the step."""
    repo = _no_default_repo(tmp_path, disable)
    n = next(_ids)
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    code = main(
        [
            "-C", str(repo), "publish", "--registry", registry.host,
            "--image-repo", f"engpub{n}/images", "--bundle-repo", f"engpub{n}/bundles",
            "--source-repository", "https://example.invalid/playbooks",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    shown = out + err  # the results on stdout, the progress on stderr
    assert code == 1, shown
    for words in says:
        assert words in shown, shown
    assert "Traceback" not in shown
    config = Config(root=repo, registry=registry.host, image_repo=f"engpub{n}/images")
    image = config.image_ref(NAME)
    with RegistryClient(config) as client:
        for tag in ("1.0.0", "1.0.0_linux-amd64", "1.0.0_linux-arm64"):
            assert client.resolve(f"{image}:{tag}") is None, tag
