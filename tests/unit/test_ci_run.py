"""`.ci/run`: `make test` in a plain clone with nothing beside it (a `make` stand-in records
where and how it was called)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.gitrepos import git

MAKE = r"""#!/bin/sh
{
  echo "args=$*"
  echo "cwd=$(pwd)"
  echo "beside=$(ls -A .. | tr '\n' ,)"
  echo "head=$(git rev-parse HEAD)"
  echo "status=$(git status --porcelain)"
  echo "parent_mode=$(stat -c %a ..)"
} > "$RECORD"
"""


@pytest.fixture
def project(tmp_path: Path, repo_root: Path) -> Path:
    """A committed repository holding this project's .ci/run."""
    root = tmp_path / "project"
    (root / ".ci").mkdir(parents=True)
    shutil.copy2(repo_root / ".ci" / "run", root / ".ci" / "run")
    (root / "README.md").write_text("x\n")
    git(root.parent, "init", "-q", "-b", "main", str(root))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def _run(
    project: Path, tmp_path: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "make").write_text(MAKE)
    (bin_dir / "make").chmod(0o755)
    record = tmp_path / "record"
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    done = subprocess.run(
        [str(project / ".ci" / "run")],
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "RECORD": str(record),
            "TMPDIR": str(scratch),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = record.read_text().splitlines() if record.exists() else []
    return done, dict(line.split("=", 1) for line in lines)


def test_make_test_runs_in_a_plain_clone_with_nothing_beside_it(
    project: Path, tmp_path: Path
) -> None:
    (project.parent / "shared").mkdir()  # what a developer's machine may have beside it
    done, seen = _run(project, tmp_path)
    assert done.returncode == 0, done.stderr
    assert seen["args"] == "test mutants"  # the suite, then the mutation check
    assert Path(seen["cwd"]).name == "checkout"
    assert Path(seen["cwd"]).parent.parent == tmp_path / "scratch"
    assert seen["beside"] == "checkout,"  # no ../shared, nothing else
    assert seen["head"] == git(project, "rev-parse", "HEAD")
    assert seen["status"] == ""
    # others may traverse to the clone (the non-root test reads its venv as nobody)
    assert int(seen["parent_mode"], 8) & stat.S_IXOTH
    assert list((tmp_path / "scratch").iterdir()) == []  # removed afterwards
    assert "uncommitted" not in done.stderr


def test_uncommitted_changes_are_said_not_to_be_tested(project: Path, tmp_path: Path) -> None:
    (project / "README.md").write_text("changed\n")
    done, seen = _run(project, tmp_path)
    assert done.returncode == 0
    assert "uncommitted changes; testing the committed HEAD" in done.stderr
    assert seen["status"] == ""  # the clone has the committed README


def test_a_failing_make_test_fails_the_run_and_still_cleans_up(
    project: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "make").write_text("#!/bin/sh\nexit 3\n")
    (bin_dir / "make").chmod(0o755)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = subprocess.run(
        [str(project / ".ci" / "run")],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 3
    assert list(scratch.iterdir()) == []


def test_in_place_on_request(project: Path, tmp_path: Path) -> None:
    done, seen = _run(project, tmp_path, CI_RUN_IN_PLACE="1")
    assert done.returncode == 0, done.stderr
    assert Path(seen["cwd"]) == project
