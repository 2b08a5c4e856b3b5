"""lint/registration.py: the checks plan and register refuse with, as lint rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.config import load_config
from playbookctl.lint.registration import check_registration_of, version_conflict, write_problem
from playbookctl.playbook import load_playbook, source_hash
from playbookctl.register import register
from playbookctl.results import Action, Artifact, PublishResult
from playbookctl_dev.sample_repo import write_action_type, write_playbook

H1, H2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.mark.parametrize(
    ("version", "digest", "registered", "expected"),
    [
        ("1.0.0", H1, ("1.0.0", H1), False),  # up to date
        ("1.1.0", H2, ("1.0.0", H1), False),  # bumped
        ("1.0.0", H2, ("1.0.0", H1), True),  # changed without a bump
        ("1.0.0", H1, ("1.0.0", ""), True),  # a registration without a source hash
    ],
)
def test_version_conflict(
    version: str, digest: str, registered: tuple[str, str], expected: bool
) -> None:
    reason = version_conflict("alpha", version, digest, *registered)
    assert (reason is not None) is expected
    if reason:
        assert "bump spec.version: playbookctl bump alpha patch" in reason


def test_write_problem(tmp_path: Path) -> None:
    target = tmp_path / "registry" / "workflows" / "alpha.yaml"
    assert write_problem(tmp_path, target) is None  # nothing there yet
    target.mkdir(parents=True)
    assert write_problem(tmp_path, target) == (
        "registry/workflows/alpha.yaml is a directory; cannot write it"
    )
    target.rmdir()
    target.parent.rmdir()
    target.parent.write_text("")
    assert write_problem(tmp_path, target) == (
        "registry/workflows is a file; cannot write registry/workflows/alpha.yaml"
    )


def _registered(root: Path, platforms: tuple[str, ...]) -> None:
    config = load_config(root).with_overrides(platforms=platforms)
    d = config.playbooks_dir / "alpha"
    digest = "sha256:" + "3" * 64
    result = PublishResult(
        name="alpha",
        version="1.0.0",
        source_hash=source_hash(d, config.platforms),
        image=Artifact(config.image_ref("alpha"), "1.0.0", digest, Action.BUILT),
        bundle=Artifact(config.bundle_ref("alpha"), "1.0.0", digest, Action.PUSHED),
        status=Action.PUSHED,
        commit="a" * 40,
    )
    register(config, [result])


def test_version_bump_hashes_as_plan_does(tmp_path: Path) -> None:
    """The platforms are part of the source hash: lint hashes with the configured ones."""
    (tmp_path / "pyproject.toml").write_text("[tool.playbookctl]\n")
    write_action_type(tmp_path)
    write_playbook(tmp_path, "alpha", "1.0.0")
    _registered(tmp_path, ("linux/amd64",))
    config = load_config(tmp_path)
    pb = load_playbook(config.playbooks_dir / "alpha", config.root, config.max_file_bytes)
    same = config.with_overrides(platforms=("linux/amd64",))
    assert check_registration_of(pb, same) == []
    # other platforms, or other content, under the registered version: refused, so reported
    (other,) = check_registration_of(pb, same.with_overrides(platforms=("linux/arm64",)))
    assert (other.rule, other.file, other.line) == (
        "playbook.version-bump",
        "playbooks/alpha/workflow.yaml",
        7,
    )
    (pb.dir / "remediate.sh").write_text("#!/bin/sh\necho changed\n")
    assert [f.rule for f in check_registration_of(pb, same)] == ["playbook.version-bump"]
