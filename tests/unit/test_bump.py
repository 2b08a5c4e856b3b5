"""bump: semver steps, and only the version's bytes change (every sample playbook, odd layouts)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from playbookctl.bump import bump, bump_command, next_version, semver_key
from playbookctl.cli import main
from playbookctl.config import Config
from playbookctl.errors import FatalError, UsageError

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p.name for p in (REPO / "playbooks").iterdir() if p.is_dir())


@pytest.mark.parametrize(
    ("version", "part", "expected"),
    [
        ("1.2.3", "patch", "1.2.4"),
        ("1.2.3", "minor", "1.3.0"),
        ("1.2.3", "major", "2.0.0"),
        ("0.1.9", "patch", "0.1.10"),
        ("0.9.0", "minor", "0.10.0"),
        ("1.3.0-rc.1", "patch", "1.3.0"),
        ("1.3.0-rc.1", "minor", "1.3.0"),
        ("1.3.1-rc.1", "minor", "1.4.0"),
        ("2.0.0-rc.1", "major", "2.0.0"),
        ("1.3.0-rc.1", "major", "2.0.0"),
    ],
)
def test_next_version(version: str, part: str, expected: str) -> None:
    assert next_version(version, part) == expected


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1.2", "is not valid: semver without a leading v"),
        ("v1.2.3", "is not valid: semver without a leading v"),
        ("1.2.3.4", "is not valid: semver without a leading v"),
        ("", "is not valid: semver without a leading v"),
        ("latest", "is not valid: semver without a leading v"),
        ("01.2.3", "is not semver: numeric identifiers have no leading zeros"),
        ("1.2.3-alpha.01", "is not semver: numeric identifiers have no leading zeros"),
        ("1.2.3+build.5", "has build metadata"),
    ],
)
def test_next_version_refuses_what_is_not_semver(version: str, message: str) -> None:
    with pytest.raises(FatalError, match=message):
        next_version(version, "patch")


def test_unknown_part_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="expected one of patch, minor, major"):
        bump(Config(root=tmp_path), "x", "huge")


def _only_version_changed(before: bytes, after: bytes, old: str, new: str) -> None:
    """after is before with the one `version: "old"` scalar's content replaced, nothing else."""
    scalar = f'  version: "{old}"'.encode()
    assert before.count(scalar) == 1
    assert after == before.replace(scalar, f'  version: "{new}"'.encode())


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("part", ["patch", "minor", "major"])
def test_every_sample_changes_only_its_version_bytes(tmp_path: Path, name: str, part: str) -> None:
    shutil.copytree(REPO / "playbooks" / name, tmp_path / "playbooks" / name)
    path = tmp_path / "playbooks" / name / "workflow.yaml"
    before = path.read_bytes()
    done = bump(Config(root=tmp_path), name, part)
    after = path.read_bytes()
    assert done.new == next_version(done.old, part)
    _only_version_changed(before, after, done.old, done.new)


WORKFLOW = """\
# a header comment
apiVersion: kubernaut.ai/v1alpha1
kind: RemediationWorkflow
metadata: {{name: x, namespace: kubernaut-system}}
spec:
  # the version below is bumped by hand no more
  version: {version}   # trailing comment: 1.0.0 stays
  description:
    what: "1.0.0 appears here too"
"""


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('"1.0.0"', '"1.0.1"'),
        ("'1.0.0'", "'1.0.1'"),
        ("1.0.0", "1.0.1"),
    ],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_layouts_quoting_line_endings_and_bom_are_kept(
    tmp_path: Path, written: str, expected: str, newline: str, bom: str
) -> None:
    d = tmp_path / "playbooks" / "x"
    d.mkdir(parents=True)
    text = bom + WORKFLOW.format(version=written).replace("\n", newline)
    (d / "workflow.yaml").write_bytes(text.encode())
    done = bump(Config(root=tmp_path), "x")
    assert (done.old, done.new) == ("1.0.0", "1.0.1")
    want = bom + WORKFLOW.format(version=expected).replace("\n", newline)
    assert (d / "workflow.yaml").read_bytes() == want.encode()


def test_a_multi_document_file_bumps_the_workflow(tmp_path: Path) -> None:
    d = tmp_path / "playbooks" / "x"
    d.mkdir(parents=True)
    text = "kind: ConfigMap\nspec:\n  version: '9.9.9'\n---\n" + WORKFLOW.format(version='"1.0.0"')
    (d / "workflow.yaml").write_text(text)
    bump(Config(root=tmp_path), "x", "minor")
    assert (d / "workflow.yaml").read_text() == text.replace('version: "1.0.0"', 'version: "1.1.0"')


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: RemediationWorkflow\nspec: [\n", "not valid YAML"),
        ("kind: RemediationWorkflow\nspec:\n  actionType: X\n", "has no spec.version"),
        ("kind: ActionType\nspec:\n  version: '1.0.0'\n", "no RemediationWorkflow"),
        ('kind: RemediationWorkflow\nspec:\n  version: "1.0"\n', "is not valid: semver"),
        ("kind: RemediationWorkflow\nspec:\n  version: |\n    1.0.0\n", "not a plain or quoted"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "playbooks" / "x"
    d.mkdir(parents=True)
    (d / "workflow.yaml").write_text(content)
    code = main(["-C", str(tmp_path), "bump", "x"])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert "playbooks/x/workflow.yaml" in err
    assert len(err.strip().splitlines()) == 1
    assert (d / "workflow.yaml").read_text() == content
    assert sorted(p.name for p in d.iterdir()) == ["workflow.yaml"]  # no temp file left


def test_cli_prints_the_change_and_keeps_the_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "playbooks" / "x"
    d.mkdir(parents=True)
    (d / "workflow.yaml").write_text(WORKFLOW.format(version='"1.4.2"'))
    (d / "workflow.yaml").chmod(0o640)
    assert main(["-C", str(tmp_path), "bump", "x", "major"]) == 0
    assert capsys.readouterr().out == "playbooks/x/workflow.yaml: spec.version 1.4.2 -> 2.0.0\n"
    assert (d / "workflow.yaml").stat().st_mode & 0o777 == 0o640
    assert main(["-C", str(tmp_path), "bump", "nope"]) == 1
    assert "no playbook nope" in capsys.readouterr().err


def test_the_refusals_name_the_exact_command() -> None:
    assert bump_command("restart-deployment") == "playbookctl bump restart-deployment patch"


def test_semver_key_orders_by_semver_precedence() -> None:
    """SemVer 2.0 rule 11's own example, and numbers compared as numbers (0.1.10 > 0.1.9)."""
    ordered = [
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
        "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.0.10", "1.1.0", "2.0.0",
    ]  # fmt: skip
    keys = [semver_key(v) for v in ordered]
    assert None not in keys
    assert sorted(ordered, key=lambda v: semver_key(v) or ()) == ordered
    assert semver_key("v1.0.0") is None
