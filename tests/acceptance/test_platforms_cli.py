"""The `platforms` setting through the CLI: the --platform flag and PLAYBOOKCTL_PLATFORMS reach
the source hash plan compares, and a bad value is a one-line usage or configuration error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl.playbook import source_hash


def _plan_hashes(
    repo_root: Path, capsys: pytest.CaptureFixture[str], *flags: str
) -> dict[str, str]:
    assert main(["-C", str(repo_root), "plan", "--format", "json", *flags]) == 0
    doc = json.loads(capsys.readouterr().out)
    return {p["name"]: p["source_hash"] for p in doc["playbooks"]}


def test_the_platform_flag_and_variable_reach_the_source_hash(
    repo_root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    both = _plan_hashes(repo_root, capsys)
    one = _plan_hashes(repo_root, capsys, "--platform", "linux/amd64")
    assert both
    for name, digest in both.items():
        directory = repo_root / "playbooks" / name
        assert digest == source_hash(directory, ("linux/amd64", "linux/arm64"))
        assert one[name] == source_hash(directory, ("linux/amd64",))
        assert one[name] != digest
    monkeypatch.setenv("PLAYBOOKCTL_PLATFORMS", "linux/amd64")
    assert _plan_hashes(repo_root, capsys) == one
    # the flag wins over the variable
    assert (
        _plan_hashes(repo_root, capsys, "--platform", "linux/amd64", "--platform", "linux/arm64")
        == both
    )


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["--platform", "arm64"], None, 2, "--platform 'arm64': 'arm64' is not os/architecture"),
        (["--platform", "linux/arm64", "--platform", "linux/arm64"], None, 2, "listed twice"),
        ([], "linux/amd64,,linux/s390x,linux/s390x", 1, "PLAYBOOKCTL_PLATFORMS: invalid value"),
    ],
)  # fmt: skip
def test_a_bad_platform_is_one_line(
    repo_root: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: str | None,
    code: int,
    message: str,
) -> None:
    if env is not None:
        monkeypatch.setenv("PLAYBOOKCTL_PLATFORMS", env)
    assert main(["-C", str(repo_root), "plan", *args]) == code
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
