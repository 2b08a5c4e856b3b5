"""A pull request can never bring a registration the release did not make.

Played as an attacker would, through the command line, with real git remotes, a real Docker
engine and real registries: bump a playbook's version, publish it to a registry of one's own,
let `register` write the registration (so it is exactly what register writes from that
source), then point it at that registry or at a digest nobody built in ours. The pull-request
gate (`plan --base origin/main --head HEAD --forbid-generated-changes`) refuses each, naming
the file; a forged registration that reached main anyway is refused by the release, which
checks every registration it would skip against the registry before it skips it.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl_dev.registry import LocalRegistry
from tests.support.actions import env_for_runner
from tests.support.gitrepos import (
    PYPROJECT,
    TEST_BASE_IMAGE,
    PlaybookRepo,
    clone,
    git,
    make_playbook_repo,
)

pytestmark = pytest.mark.integration

PLAYBOOKCTL = Path(sys.executable).parent / "playbookctl"
REGISTRATION = "registry/workflows/alpha.yaml"


def cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLAYBOOKCTL), "-C", str(cwd), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class World:
    repo: PlaybookRepo  # main, after the release of alpha 1.0.0 and beta 2.0.0
    env: dict[str, str]
    ours: Config  # the repository's registry (what its release publishes to)
    theirs: str  # host:port of the attacker's own registry
    released: str  # main's head after the release


def _release_as_a_user(repo: PlaybookRepo, env: dict[str, str]) -> None:
    ok(cli(repo.path, env, "release"))
    repo.git("pull", "--quiet", "--ff-only")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    session_registry: LocalRegistry,
    docker_engine: str,
    base_image: str,
) -> Iterator[World]:
    registry = session_registry
    base = tmp_path_factory.mktemp("forged")
    home = base / "home"
    home.mkdir()
    registry.login(home / ".docker")  # the user's `docker login` (module scope: its own)
    env = env_for_runner(
        home,
        {
            "DOCKER_HOST": docker_engine,
            "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES": json.dumps({TEST_BASE_IMAGE: base_image}),
        },
    )
    space = f"forged-{secrets.token_hex(4)}"
    pyproject = (
        PYPROJECT.replace('"registry.example.invalid"', f'"{registry.host}"')
        .replace('"t/images"', f'"{space}/images"')
        .replace('"t/bundles"', f'"{space}/bundles"')
    )
    with LocalRegistry() as theirs, pytest.MonkeyPatch.context() as mp:
        theirs.login(home / ".docker")  # the attacker's own registry, logged in to as well
        for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME"):
            mp.setenv(key, env[key])
        mp.setenv("GIT_COMMITTER_EMAIL", env["GIT_COMMITTER_EMAIL"])
        repo = make_playbook_repo(
            base / "repo", {"alpha": "1.0.0", "beta": "2.0.0"}, pyproject=pyproject
        )
        _release_as_a_user(repo, env)
        ours = Config(
            root=repo.path,
            registry=registry.host,
            image_repo=f"{space}/images",
            bundle_repo=f"{space}/bundles",
        )
        yield World(repo, env, ours, theirs.host, repo.remote_head())


def _contributor(world: World, tmp_path: Path, branch: str) -> Path:
    work = clone(world.repo.remote, tmp_path / "contributor")
    git(work, "checkout", "--quiet", "-b", branch)
    return work


def _publish_elsewhere_and_register(world: World, work: Path, version: str) -> str:
    """What an attacker can do without any of the repository's credentials: publish the
    playbook to a registry of their own and let register write the registration from it."""
    results = work.parent / "results.json"
    ok(
        cli(
            work,
            world.env,
            "publish",
            "alpha",
            "--registry",
            world.theirs,
            "--format",
            "json",
            "--output",
            str(results),
        )
    )
    ok(cli(work, world.env, "register", str(results)))
    text = (work / REGISTRATION).read_text()
    assert f"bundle: {world.theirs}/" in text  # register wrote what publish gave it
    assert f"alpha:{version}@sha256:" in text
    return text


def _bump_and_forge(world: World, work: Path, how: str) -> None:
    PlaybookRepo(work, work).write_playbook("alpha", "1.1.0", marker="theirs")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "alpha 1.1.0")  # publish refuses uncommitted content
    text = _publish_elsewhere_and_register(world, work, "1.1.0")
    if how == "digest-nobody-built":
        # In our own repositories, under the new version, at digests nobody built: exactly
        # what register writes from such a result, so only the registry could tell.
        text = text.replace(f"{world.theirs}/", f"{world.ours.registry}/")
        for old in set(re.findall(r"@sha256:[0-9a-f]{64}", text)):
            text = text.replace(old, "@sha256:" + secrets.token_hex(32))
        (work / REGISTRATION).write_text(text)


@pytest.mark.parametrize("how", ["bundle-on-another-host", "digest-nobody-built"])
def test_the_gate_refuses_a_registration_of_a_version_not_yet_registered(
    world: World, tmp_path: Path, how: str
) -> None:
    work = _contributor(world, tmp_path, f"contrib/{how}")
    _bump_and_forge(world, work, how)
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "register alpha 1.1.0\n\nReleased-by: playbookctl")
    git(work, "push", "--quiet", "origin", f"contrib/{how}")
    # The registration is exactly what register writes: verify --offline cannot tell.
    ok(cli(work, world.env, "verify", "--offline"))
    done = cli(
        work,
        world.env,
        "plan",
        "--base",
        "origin/main",
        "--head",
        "HEAD",
        "--forbid-generated-changes",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"playbookctl: {REGISTRATION}: generated by playbookctl register" in done.stderr
    assert (
        f"registers version 1.1.0, but 1.0.0 is the one registered at {world.released[:12]}, "
        "where this change starts: only a release writes a registration"
    ) in done.stderr
    assert world.repo.remote_head() == world.released


@pytest.mark.parametrize("field", ["bundle", "image"])
def test_the_gate_refuses_a_registered_version_re_pointed_to_another_host(
    world: World, tmp_path: Path, field: str
) -> None:
    """The registered version itself, its pins moved to a copy on the attacker's registry (same
    digest: the copy is byte for byte ours, and serves what its owner likes later)."""
    work = _contributor(world, tmp_path, f"contrib/re-point-{field}")
    path = work / REGISTRATION
    text = path.read_text()
    ours = world.ours.bundle_ref("alpha") if field == "bundle" else world.ours.image_ref("alpha")
    assert f"{ours}:1.0.0@" in text
    path.write_text(
        text.replace(f"{ours}:1.0.0@", f"{ours.replace(world.ours.registry, world.theirs)}:1.0.0@")
    )
    git(work, "commit", "--quiet", "-am", "move alpha")
    done = cli(work, world.env, "plan", "--base", "origin/main", "--forbid-generated-changes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"re-points the registered version 1.0.0 to another {field} ({world.theirs}/" in (
        done.stderr
    )


@pytest.mark.parametrize("how", ["bundle-on-another-host", "digest-nobody-built"])
def test_the_release_refuses_a_forged_registration_that_reached_main(
    world: World, tmp_path: Path, how: str
) -> None:
    """Someone merged it past the gate (or pushed it): the release does not take the file's
    word that alpha 1.1.0 is published; it asks the registry, refuses, and changes nothing."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(world.repo.remote), str(remote))
    work = clone(remote, tmp_path / "main")
    _bump_and_forge(world, work, how)
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "alpha 1.1.0, registered by hand")
    git(work, "push", "--quiet", "origin", "main")
    forged_head = git(work, "rev-parse", "HEAD")
    # Offline, plan has nothing to publish: the file says alpha 1.1.0 is registered.
    offline = json.loads(ok(cli(work, world.env, "plan", "--format", "json")))
    assert offline["publish"] == []
    assert offline["refused"] == []

    done = cli(work, world.env, "release")
    assert done.returncode == 1, done.stdout + done.stderr
    problem = (
        f"its bundle {world.theirs}/"
        if how == "bundle-on-another-host"
        else f"the registry does not hold {world.ours.bundle_ref('alpha')}:1.1.0@sha256:"
    )
    assert "release refused: alpha: registry/workflows/alpha.yaml is not borne out by the " in (
        done.stderr
    )
    assert problem in done.stderr
    # Not written by a release commit: not taken for a registry that lost what it published.
    assert "the registry lost it" not in done.stderr
    assert "not published by a release; restore the registration" in done.stderr
    assert git(remote, "rev-parse", "refs/heads/main") == forged_head  # nothing committed
    with RegistryClient(world.ours) as client:  # nothing published
        assert client.resolve(f"{world.ours.bundle_ref('alpha')}:1.1.0") is None
    # The release workflow's plan job says the same before any job publishes or registers.
    planned = cli(work, world.env, "plan", "--base", world.released, "--verify-registrations")
    assert planned.returncode == 1
    assert "refused: alpha: registry/workflows/alpha.yaml is not borne out" in planned.stderr
    # Beta's registration, which the registry bears out, is not refused.
    assert "beta" not in planned.stderr


def test_the_release_refuses_a_registration_whose_tag_was_moved(
    world: World, tmp_path: Path
) -> None:
    """alpha 1.0.0's bundle tag was rewritten after the release registered it (tags are never
    moved by a release): the registration is no longer proof of what the registry serves."""
    from playbookctl.bundle import build_bundle, push_bundle

    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(world.repo.remote), str(remote))
    work = clone(remote, tmp_path / "main")
    tag = f"{world.ours.bundle_ref('alpha')}:1.0.0"
    with RegistryClient(world.ours) as client:
        registered = client.resolve(tag)
        assert registered is not None
        other = build_bundle(
            [{"apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": "workflow"},
              "spec": {"tasks": []}}],
            {},
        )  # fmt: skip
        moved = push_bundle(client, tag, other)
    done = cli(work, world.env, "release")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"its bundle tag {tag} points at {moved}, not the registered {registered.digest}"
    ) in done.stderr
    assert git(remote, "rev-parse", "refs/heads/main") == world.released
