"""Real git for tests: bare remotes in temp dirs, clones, and throwaway playbook repositories.

Like pre-commit's testing helpers: every repository a test touches is made here, under tmp_path,
with the identity the autouse fixture in conftest.py pins through the environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from playbookctl.config import Config
from playbookctl.register import Registration, parse_registration, workflow_files
from playbookctl_dev.sample_repo import BASE_IMAGE, write_action_type, write_playbook

# The pinned base of the generated playbooks; tests map it to a locally built image through
# PLAYBOOKCTL_BASE_IMAGE_OVERRIDES.
TEST_BASE_IMAGE = BASE_IMAGE

PYPROJECT = """\
[project]
name = "playbooks-under-test"
version = "0"

[tool.playbookctl]
registry = "registry.example.invalid"
image-repo = "t/images"
bundle-repo = "t/bundles"
push-retries = 5
"""


def git(cwd: Path, *args: str, umask: int | None = None) -> str:
    """Run the real git binary (tests check what a user would see); `umask`: git's own, as a
    user's shell would set it for a checkout."""

    def child() -> None:
        if umask is not None:
            os.umask(umask)

    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=child if umask is not None else None,
    )
    return done.stdout.strip()


def commit_new(repo: Path, message: str) -> str:
    """`git init` a directory of files on `main` and commit them all; the commit id."""
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def clone_apart(origin: Path, dest: Path, *, umask: int, later: bool) -> Path:
    """A clone as another machine makes it: under `umask`, and with `later` every checked-out
    file's times two hours on (what the build must not depend on)."""
    git(origin.parent, "clone", "-q", str(origin), str(dest), umask=umask)
    if later:
        stamp = time.time() + 7200
        for p in dest.rglob("*"):
            if ".git" not in p.parts:
                os.utime(p, (stamp, stamp))
    return dest


def init_bare(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "--bare", "--initial-branch=main")
    return path


def clone(remote: Path, dest: Path) -> Path:
    git(dest.parent, "clone", "--quiet", str(remote), str(dest))
    return dest


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class PlaybookRepo:
    """A working clone of a bare remote holding a playbook repository."""

    path: Path
    remote: Path

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def commit_all(self, message: str) -> str:
        return commit_all(self.path, message)

    def push(self) -> None:
        self.git("push", "--quiet", "origin", "HEAD:refs/heads/main")

    def remote_head(self, branch: str = "main") -> str:
        return git(self.remote, "rev-parse", f"refs/heads/{branch}")

    def remote_count(self, branch: str = "main") -> int:
        return int(git(self.remote, "rev-list", "--count", f"refs/heads/{branch}"))

    def write_playbook(self, name: str, version: str = "1.0.0", **kw: object) -> Path:
        return write_playbook(self.path, name, version, **kw)  # type: ignore[arg-type]

    def another_clone(self, dest: Path) -> PlaybookRepo:
        return PlaybookRepo(clone(self.remote, dest), self.remote)


MakeRepo = Callable[..., PlaybookRepo]


def make_playbook_repo(
    base_dir: Path,
    playbooks: Mapping[str, str] | None = None,
    *,
    copy_from: Path | None = None,
    pyproject: str = PYPROJECT,
) -> PlaybookRepo:
    """A bare remote plus a clone whose first commit holds pyproject, playbooks and registry.

    playbooks maps name -> version for generated test playbooks; copy_from copies an existing
    repository's playbooks/ and registry/action-types/ instead (the demo's scratch copy).
    """
    remote = init_bare(base_dir / "remote.git")
    work = base_dir / "work"
    work.mkdir(parents=True)
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "remote", "add", "origin", str(remote))
    (work / "pyproject.toml").write_text(pyproject)
    if copy_from is not None:
        shutil.copytree(copy_from / "playbooks", work / "playbooks")
        shutil.copytree(copy_from / "registry" / "action-types", work / "registry" / "action-types")
    else:
        write_action_type(work)
        for name, version in (playbooks or {}).items():
            write_playbook(work, name, version)
    (work / ".gitignore").write_text("__pycache__/\n")
    commit_all(work, "initial playbooks")
    git(work, "push", "--quiet", "-u", "origin", "main")
    return PlaybookRepo(work, remote)


@pytest.fixture
def bare_remote(tmp_path: Path) -> Path:
    return init_bare(tmp_path / "remote.git")


@pytest.fixture
def playbook_repo_factory(tmp_path: Path) -> MakeRepo:
    counter = iter(range(1000))

    def make(playbooks: Mapping[str, str] | None = None, **kw: object) -> PlaybookRepo:
        return make_playbook_repo(tmp_path / f"repo{next(counter)}", playbooks, **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture
def playbook_repo(playbook_repo_factory: MakeRepo) -> PlaybookRepo:
    """Two playbooks (alpha 1.0.0, beta 2.0.0), committed and pushed to a bare remote."""
    return playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})


# A pre-receive hook that, once, moves a branch to a commit another clone parked on a side
# branch: receive-pack then finds the branch is not where it advertised it and refuses the
# update, `[remote rejected] (failed to update ref)` with `cannot lock ref ... but expected` on
# stderr (GitHub puts those words in the summary). A real race, made deterministic.
RACING_HOOK = """#!/bin/sh
if [ -f "$GIT_DIR/move-once" ]; then
    read -r ref target < "$GIT_DIR/move-once"
    rm -f "$GIT_DIR/move-once"
    env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES \\
        git update-ref "$ref" "$target"
fi
exit 0
"""

# A pre-receive hook that refuses every push in the words receive-pack uses for a lost race:
# text the remote controls, which must never make a refusal look like a race.
LYING_HOOK = """#!/bin/sh
echo "error: cannot lock ref 'refs/heads/main': is at 1111111111111111111111111111111111111111 \\
but expected 2222222222222222222222222222222222222222" >&2
echo "incorrect old value provided; this branch is frozen for the audit" >&2
exit 1
"""


def arm_racing_push(playbook_repo: PlaybookRepo, other: PlaybookRepo, branch: str = "main") -> str:
    """Make the next push to `branch` lose a race against `other`'s new commit; returns it."""
    (other.path / "raced.txt").write_text("the other push\n")
    theirs = other.commit_all("the other push")
    other.git("push", "--quiet", "origin", "HEAD:refs/heads/parked")
    install_hook(playbook_repo, RACING_HOOK)
    (playbook_repo.remote / "move-once").write_text(f"refs/heads/{branch} {theirs}\n")
    return theirs


def install_hook(playbook_repo: PlaybookRepo, text: str, name: str = "pre-receive") -> None:
    hook = playbook_repo.remote / "hooks" / name
    hook.write_text(text)
    hook.chmod(0o755)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def read_registrations(config: Config) -> dict[str, Registration]:
    """Every registration under registry/workflows/, parsed (what a release left)."""
    out: dict[str, Registration] = {}
    for name, path in workflow_files(config).items():
        reg = parse_registration(path.read_bytes(), name)
        if reg is not None:
            out[name] = reg
    return out
