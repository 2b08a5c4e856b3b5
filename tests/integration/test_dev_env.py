"""playbookctl_dev.env in-process: a failed `up` takes back what it started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from playbookctl_dev import env

pytestmark = pytest.mark.integration


def test_a_failed_up_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No engine answers and we are not root: the registry was already started, then `up` fails.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    directory = tmp_path / "dev"
    seen: list[str] = []
    with pytest.raises(env.DevEnvError, match="private dockerd needs root"):
        env.up(directory, log=seen.append)
    assert any("registry 127.0.0.1:" in line and "started" in line for line in seen)
    assert not directory.exists()
    assert env.our_processes([str(directory)]) == []
    assert env.down(directory) is False  # nothing to stop
