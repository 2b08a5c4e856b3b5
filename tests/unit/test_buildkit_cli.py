"""tests/support/buildkit.py chooses a docker CLI that drives BuildKit wherever the suite runs.

The CLIs here are stand-in scripts: the case that matters (a CLI 23+ without buildx first in
PATH, Debian's 20.10 after it) needs two CLIs a machine rarely has side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import buildkit
from tests.support.buildkit import BuildKitCLI


def _cli(directory: Path, version: str, *, buildx: bool) -> str:
    directory.mkdir(parents=True)
    path = directory / "docker"
    path.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = version ] && echo {version} && exit 0\n'
        f'[ "$1" = buildx ] && exit {0 if buildx else 1}\n'
        "exit 2\n"
    )
    path.chmod(0o755)
    return str(path)


def _found(monkeypatch: pytest.MonkeyPatch, *dirs: Path) -> tuple[BuildKitCLI | None, str]:
    monkeypatch.setenv("PATH", ":".join(str(d) for d in dirs))
    monkeypatch.setattr(buildkit, "_SYSTEM_PLACES", ())
    return buildkit.find_buildkit_cli.__wrapped__()


def test_a_cli_before_23_behind_a_newer_one_without_buildx_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli(tmp_path / "local", "28.2.2", buildx=False)
    old = _cli(tmp_path / "usr", "20.10.24+dfsg1", buildx=False)
    found, _ = _found(monkeypatch, tmp_path / "local", tmp_path / "usr")
    assert found == BuildKitCLI(old, "20.10.24+dfsg1", buildx=False)


def test_a_cli_with_buildx_is_taken_whatever_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = _cli(tmp_path / "local", "28.2.2", buildx=True)
    _cli(tmp_path / "usr", "20.10.24", buildx=False)
    found, _ = _found(monkeypatch, tmp_path / "local", tmp_path / "usr")
    assert found == BuildKitCLI(new, "28.2.2", buildx=True)


def test_none_that_can_says_why_each_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = _cli(tmp_path / "local", "27.0.1", buildx=False)
    found, why = _found(monkeypatch, tmp_path / "local")
    assert found is None
    assert why == f"{new}: 27.0.1, 23 or later without the buildx plugin"
