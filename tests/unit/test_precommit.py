"""The pre-commit files: the hook offered to other repositories, and this repository's own."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pre_commit() -> str:
    found = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("pre-commit is not installed (make venv installs it)")
    return found


@pytest.mark.parametrize(
    ("command", "path"),
    [
        ("validate-manifest", ".pre-commit-hooks.yaml"),
        ("validate-config", ".pre-commit-config.yaml"),
    ],
)
def test_pre_commit_accepts_the_file(command: str, path: str) -> None:
    proc = subprocess.run(
        [_pre_commit(), command, str(ROOT / path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_offered_hook_runs_playbookctl_lint() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "playbookctl-lint"
    assert hook["entry"] == "playbookctl lint"
    assert hook["language"] == "python"


def test_own_config_uses_local_hooks_only() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    ids = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "mypy", "playbookctl-lint"} <= ids
