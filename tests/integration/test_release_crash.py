"""kill -9 at every step of `release` and `release --branch`, then rerun.

The killed run is the real CLI in its own process, SIGKILLed by itself at a named step
(`PLAYBOOKCTL_TEST_KILL_AT`, tooling/playbookctl/crashpoints.py): no `finally`, no cleanup, as a
killed CI runner. Its exit status proves the step was reached. The rerun must end with exactly one
release commit on the target branch, every registration there pinning a bundle the registry
holds, the checkout back on its branch and clean, and a third run changing nothing.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from playbookctl.config import Config, load_config
from playbookctl.crashpoints import STEPS
from playbookctl.oci import RegistryClient
from playbookctl_dev.registry import LocalRegistry
from tests.support.crash import crash_env
from tests.support.gitrepos import (
    TEST_BASE_IMAGE,
    MakeRepo,
    PlaybookRepo,
    arm_racing_push,
    git,
)

pytestmark = pytest.mark.integration

BRANCH = "playbookctl/registry"
TRAILER = "Released-by: playbookctl"
_ids = itertools.count()

# `reset` happens only when a direct push lost a race and the checkout is reset onto the remote;
# a --branch run never resets its checkout.
# child-blobs-pushed: these playbooks are assembled, so it is every platform's blobs uploaded
# and no manifest written yet (assemble.push_images; the engine path's: test_engine_crash.py).
DIRECT_STEPS = (STEPS[0], "child-blobs-pushed", *STEPS[1:])
BRANCH_STEPS = tuple(s for s in STEPS if s != "reset")


def cli(repo: PlaybookRepo, config: Config, branch: str | None, kill_at: str | None) -> int:
    env = crash_env(config, kill_at)
    args = [
        sys.executable,
        "-m",
        "playbookctl",
        "-C",
        str(repo.path),
        "release",
        "--registry",
        config.registry,
        "--image-repo",
        config.image_repo,
        "--bundle-repo",
        config.bundle_repo,
        "--jobs",
        "2",
    ]
    if branch is not None:
        args += ["--branch", branch]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    if kill_at is None:
        assert done.returncode == 0, done.stdout + done.stderr
    return done.returncode


def release_commits(repo: PlaybookRepo, branch: str) -> list[str]:
    log = git(repo.remote, "log", "--format=%H%x00%B%x01", f"refs/heads/{branch}")
    return [e.split("\0")[0].strip() for e in log.split("\x01") if TRAILER in e]


def registered_bundles(repo: PlaybookRepo, branch: str) -> dict[str, str]:
    names = git(repo.remote, "ls-tree", "--name-only", f"refs/heads/{branch}:registry/workflows")
    out = {}
    for fn in names.split():
        text = git(repo.remote, "show", f"refs/heads/{branch}:registry/workflows/{fn}")
        out[fn] = list(yaml.safe_load_all(text))[-1]["spec"]["execution"]["bundle"]
    return out


def check_repaired(repo: PlaybookRepo, config: Config, target: str) -> None:
    assert len(release_commits(repo, target)) == 1
    bundles = registered_bundles(repo, target)
    assert sorted(bundles) == ["alpha.yaml", "beta.yaml"]
    with RegistryClient(config) as client:
        for bundle in bundles.values():
            named, _, digest = bundle.partition("@")
            assert client.resolve(f"{named.rpartition(':')[0]}@{digest}") is not None, bundle
    assert repo.git("status", "--porcelain") == ""
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD") == "main"  # not left detached


@pytest.fixture
def world(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    docker_engine: str,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[PlaybookRepo, Config]:
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    repo = playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})
    n = next(_ids)
    config = load_config(repo.path).with_overrides(
        registry=registry.host,
        image_repo=f"crash{n}/images",
        bundle_repo=f"crash{n}/bundles",
        base_image_overrides={TEST_BASE_IMAGE: base_image},
    )
    return repo, config


@pytest.mark.parametrize("step", DIRECT_STEPS)
def test_release_killed_at_any_step_is_repaired_by_a_rerun(
    world: tuple[PlaybookRepo, Config], tmp_path: Path, step: str
) -> None:
    repo, config = world
    if step == "reset":
        # The first push loses a race (`cannot lock ref`), so the run resets onto the remote.
        arm_racing_push(repo, repo.another_clone(tmp_path / "other"))
    main_before = repo.remote_head()
    assert cli(repo, config, None, step) == -signal.SIGKILL  # it did reach the step
    if step not in ("pushed", "reset"):
        assert repo.remote_head() == main_before  # killed before anything reached the remote
    assert cli(repo, config, None, None) == 0
    check_repaired(repo, config, "main")
    assert repo.git("rev-parse", "HEAD") == repo.remote_head()
    head = repo.remote_head()
    assert cli(repo, config, None, None) == 0  # and a third run changes nothing
    assert repo.remote_head() == head


@pytest.mark.parametrize("step", BRANCH_STEPS)
def test_release_branch_killed_at_any_step_is_repaired_by_a_rerun(
    world: tuple[PlaybookRepo, Config], step: str
) -> None:
    repo, config = world
    main_before = repo.remote_head()
    assert cli(repo, config, BRANCH, step) == -signal.SIGKILL
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD") == "main"  # the checkout never moved
    assert cli(repo, config, BRANCH, None) == 0
    check_repaired(repo, config, BRANCH)
    assert repo.remote_head() == main_before  # main itself is never written
    assert git(repo.remote, "rev-parse", f"refs/heads/{BRANCH}~1") == main_before
    tip = repo.remote_head(BRANCH)
    assert cli(repo, config, BRANCH, None) == 0
    assert repo.remote_head(BRANCH) == tip
