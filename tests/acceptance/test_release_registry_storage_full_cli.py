"""A registry whose storage is full: the release says so, in the registry's own words.

distribution answers a write its disk refuses with HTTP 500 `UNKNOWN: unknown error`, and puts
the cause only in the error's `detail`: the Go path error, its errno a number
(`{"DriverName": "filesystem", "Enclosed": {"Op": "write", "Path": ..., "Err": 28}}`). A 500 is
retried, and the line that gave up on it used to say only `failed after 5 attempt(s): HTTP 500`:
the operator learnt nothing of why. It now carries what the registry said, the errno in words.
And nothing is registered, committed or pushed for the failed publish; once there is space again
the next release converges.

Through the CLI, with a real git remote and a real HTTPS token-auth registry whose storage is a
small tmpfs filled to the last byte: a real ENOSPC.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl_dev.registry import LocalRegistry
from tests.support.engineless import release_without_engine
from tests.support.gitrepos import MakeRepo, git
from tests.support.registry import no_test_world, start_registry

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs: room for the base image stand-in, then filled by the test."""
    where = tmp_path / "registry" / "data"
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        no_test_world(f"needs a small tmpfs for a full registry: mount: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=False)


@pytest.fixture
def full_registry(small_disk: Path) -> Iterator[LocalRegistry]:
    reg = start_registry(storage="disk", workdir=small_disk.parent)
    try:
        yield reg
    finally:
        reg.stop()


def _fill(disk: Path) -> Path:
    """Write until the filesystem says ENOSPC."""
    filler = disk / "filler"
    block = b"\0" * (1 << 20)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    failure: OSError | None = None
    try:
        while failure is None:
            try:
                os.write(fd, block)
            except OSError as exc:
                failure = exc
    finally:
        os.close(fd)
    assert failure.errno == errno.ENOSPC, failure
    return filler


def test_a_release_to_a_full_registry_fails_naming_the_full_disk_and_commits_nothing(
    playbook_repo_factory: MakeRepo,
    full_registry: LocalRegistry,
    small_disk: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    full_registry.login(Path(os.environ["DOCKER_CONFIG"]))
    release_without_engine(monkeypatch, full_registry, "full")
    # The 500s are retried; two tries are enough to show what the last one says.
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_RETRIES", "1")
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    remote_before, head_before = repo.remote_head(), repo.head()
    filler = _fill(small_disk)
    capsys.readouterr()

    assert main(["-C", str(repo.path), "release"]) == 1
    captured = capsys.readouterr()
    failed = [line for line in captured.err.splitlines() if line.startswith("[alpha] failed: ")]
    assert len(failed) == 1, captured.err
    line = failed[0]
    assert f"registry {full_registry.host}: " in line, line
    assert "failed after 2 attempt(s): HTTP 500 (UNKNOWN: unknown error (" in line, line
    assert "errno 28, no space left on device" in line, line
    assert "not released: alpha" in captured.err
    # Nothing registered, committed or pushed.
    assert repo.remote_head() == remote_before
    assert repo.head() == head_before
    assert not repo.git("status", "--porcelain")

    # Space again: the next release publishes and registers alpha.
    filler.unlink()
    assert main(["-C", str(repo.path), "release"]) == 0
    assert repo.remote_head() != remote_before
    assert "alpha" in git(repo.path, "ls-tree", "--name-only", "origin/main:registry/workflows")
