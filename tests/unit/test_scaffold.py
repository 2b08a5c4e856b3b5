"""scaffold: names, rendering, atomic creation, ActionType reuse, and lint-clean output."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import yaml

from playbookctl.config import Config, load_config
from playbookctl.errors import FatalError, UsageError
from playbookctl.findings import Severity
from playbookctl.lint import lint_paths
from playbookctl.lint.external import find_binary
from playbookctl.scaffold import (
    BASE_IMAGE,
    action_type_problem,
    find_action_type,
    kebab_case,
    name_problem,
    scaffold,
)

PINNED = re.compile(r"^[a-z0-9.\-/:]+:[\w.\-]+@sha256:[0-9a-f]{64}$")


def _config(root: Path) -> Config:
    return load_config(root, env={})


def _assert_problem(got: str | None, problem: str | None) -> None:
    """None for a valid value, else a message that says `problem`."""
    if problem is None:
        assert got is None
    else:
        assert got is not None
        assert problem in got


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("fix-thing", None),
        ("a", None),
        ("x1", None),
        ("1x", None),
        ("a" * 63, None),
        ("", "DNS-1123"),
        ("Fix", "DNS-1123"),
        ("-fix", "DNS-1123"),
        ("fix-", "DNS-1123"),
        ("fix_thing", "DNS-1123"),
        ("fix.thing", "DNS-1123"),
        ("fix thing", "DNS-1123"),
        ("../evil", "DNS-1123"),
        ("a" * 64, "longer than 63"),
    ],
)
def test_name_problem(name: str, problem: str | None) -> None:
    _assert_problem(name_problem(name), problem)


@pytest.mark.parametrize(
    ("action_type", "problem"),
    [
        ("ScaleDown", None),
        ("X", None),
        ("Restart2Pods", None),
        ("HTTPRestart", None),
        ("scaleDown", "PascalCase"),
        ("Scale-Down", "PascalCase"),
        ("Scale_Down", "PascalCase"),
        ("Scale Down", "PascalCase"),
        ("2Scale", "PascalCase"),
        ("", "PascalCase"),
        ("A" * 256, "longer than 255"),
    ],
)
def test_action_type_problem(action_type: str, problem: str | None) -> None:
    _assert_problem(action_type_problem(action_type), problem)


@pytest.mark.parametrize(
    ("pascal", "kebab"),
    [
        ("ScaleDown", "scale-down"),
        ("CordonDrainNode", "cordon-drain-node"),
        ("RestartDeployment", "restart-deployment"),
        ("X", "x"),
        ("HTTPRestart", "http-restart"),
        ("RestartHTTP", "restart-http"),
        ("Restart2Pods", "restart2-pods"),
    ],
)
def test_kebab_case(pascal: str, kebab: str) -> None:
    assert kebab_case(pascal) == kebab


def test_scaffold_creates_a_consistent_playbook(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = scaffold(config, "fix-thing", "FixThing", "Fix the thing.")

    pb = tmp_path / "playbooks" / "fix-thing"
    assert result.playbook_dir == pb
    assert result.files == (
        ".dockerignore",
        "Containerfile",
        "rbac.yaml",
        "remediate.sh",
        "workflow.yaml",
    )
    assert sorted(p.name for p in pb.iterdir()) == sorted(result.files)
    assert result.action_type_created is True
    assert result.action_type_file == tmp_path / "registry" / "action-types" / "fix-thing.yaml"

    for name in result.files:
        executable = bool((pb / name).stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
        assert executable is (name == "remediate.sh"), name

    wf = yaml.safe_load((pb / "workflow.yaml").read_text())
    assert wf["apiVersion"] == "kubernaut.ai/v1alpha1"
    assert wf["kind"] == "RemediationWorkflow"
    assert wf["metadata"] == {"name": "fix-thing", "namespace": "kubernaut-system"}
    spec = wf["spec"]
    assert spec["actionType"] == "FixThing"
    assert spec["version"] == "0.1.0"
    assert spec["description"]["what"] == "Fix the thing."
    assert spec["execution"] == {"engine": "tekton", "serviceAccountName": "fix-thing-runner"}
    names = [p["name"] for p in spec["parameters"]]
    assert names == ["TARGET_RESOURCE_KIND", "TARGET_RESOURCE_NAME", "TARGET_RESOURCE_NAMESPACE"]
    for p in spec["parameters"]:
        assert p["required"] or "default" in p, p["name"]

    rbac = list(yaml.safe_load_all((pb / "rbac.yaml").read_text()))
    assert [d["kind"] for d in rbac] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
    assert rbac[0]["metadata"] == {
        "name": "fix-thing-runner",
        "namespace": "kubernaut-workflows",
        "labels": {"kubernaut.ai/workflow": "fix-thing"},
    }
    assert rbac[2]["roleRef"]["name"] == rbac[1]["metadata"]["name"]
    assert rbac[2]["subjects"] == [
        {"kind": "ServiceAccount", "name": "fix-thing-runner", "namespace": "kubernaut-workflows"}
    ]

    containerfile = (pb / "Containerfile").read_text()
    froms = [line.split()[1] for line in containerfile.splitlines() if line.startswith("FROM ")]
    assert froms == [BASE_IMAGE]
    users = [line.split()[1] for line in containerfile.splitlines() if line.startswith("USER ")]
    assert users == ["65532:65532"]
    assert 'ENTRYPOINT ["/usr/local/bin/remediate.sh"]' in containerfile

    at = yaml.safe_load(result.action_type_file.read_text())
    assert at["kind"] == "ActionType"
    assert at["metadata"] == {
        "name": "fix-thing",
        "namespace": "kubernaut-system",
        # what register refuses without (issue 8): Argo CD syncs ActionTypes first
        "annotations": {"argocd.argoproj.io/sync-wave": "-2"},
    }
    assert at["spec"]["name"] == "FixThing"
    assert at["spec"]["description"]["what"] == "Fix the thing."


def test_scaffold_follows_configured_namespaces(tmp_path: Path) -> None:
    config = _config(tmp_path).with_overrides(
        workflow_namespace="kn-system", run_namespace="kn-runs"
    )
    result = scaffold(config, "ns-check", "NsCheck")
    wf = yaml.safe_load((result.playbook_dir / "workflow.yaml").read_text())
    assert wf["metadata"]["namespace"] == "kn-system"
    sa = next(yaml.safe_load_all((result.playbook_dir / "rbac.yaml").read_text()))
    assert sa["metadata"]["namespace"] == "kn-runs"
    assert (
        yaml.safe_load(result.action_type_file.read_text())["metadata"]["namespace"] == "kn-system"
    )


def test_base_image_is_pinned_by_digest() -> None:
    assert PINNED.match(BASE_IMAGE), BASE_IMAGE
    assert ":latest" not in BASE_IMAGE


def test_sample_playbooks_use_the_scaffold_base_image(repo_root: Path) -> None:
    # One pin for every playbook the repository ships: bumping it means bumping all of them.
    containerfiles = sorted((repo_root / "playbooks").glob("*/Containerfile"))
    assert containerfiles
    for cf in containerfiles:
        froms = [ln.split()[1] for ln in cf.read_text().splitlines() if ln.startswith("FROM ")]
        assert froms == [BASE_IMAGE], cf


@pytest.mark.parametrize(
    "description",
    [
        'Fix the "thing": now',
        "key: value # not a comment",
        "- looks like a list",
        "{looks: like a map}",
        "multi\nline",
        "unicode: café ✓",
        "'single' and \\backslash",
        "@at `backtick` *star &amp",
        "yes",
        "123",
    ],
)
def test_description_survives_yaml(tmp_path: Path, description: str) -> None:
    result = scaffold(_config(tmp_path), "quoted", "Quoted", description)
    wf = yaml.safe_load((result.playbook_dir / "workflow.yaml").read_text())
    assert wf["spec"]["description"]["what"] == description
    at = yaml.safe_load(result.action_type_file.read_text())
    assert at["spec"]["description"]["what"] == description


def test_existing_action_type_is_reused_whatever_its_file_name(tmp_path: Path) -> None:
    at_dir = tmp_path / "registry" / "action-types"
    at_dir.mkdir(parents=True)
    custom = at_dir / "custom-name.yaml"
    custom.write_text(
        "apiVersion: kubernaut.ai/v1alpha1\nkind: ActionType\n"
        "metadata: {name: fix-thing, namespace: kubernaut-system}\n"
        "spec: {name: FixThing, description: {what: w, whenToUse: u}}\n"
    )
    before = custom.read_text()
    config = _config(tmp_path)
    assert find_action_type(config, "FixThing") == custom
    assert find_action_type(config, "OtherThing") is None

    result = scaffold(config, "fix-thing", "FixThing")
    assert result.action_type_created is False
    assert result.action_type_file == custom
    assert sorted(p.name for p in at_dir.iterdir()) == ["custom-name.yaml"]
    assert custom.read_text() == before


def test_find_action_type_ignores_broken_and_foreign_files(tmp_path: Path) -> None:
    at_dir = tmp_path / "registry" / "action-types"
    at_dir.mkdir(parents=True)
    (at_dir / "broken.yaml").write_text("spec: [unclosed\n")
    (at_dir / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (at_dir / "notes.txt").write_text("kind: ActionType\nspec: {name: FixThing}\n")
    (at_dir / "workflow.yaml").write_text("kind: RemediationWorkflow\nspec: {name: FixThing}\n")
    assert find_action_type(_config(tmp_path), "FixThing") is None


@pytest.mark.parametrize(
    ("name", "action_type", "error", "message"),
    [
        ("Bad_Name", "FixThing", UsageError, "DNS-1123"),
        ("fix-thing", "fix-thing", UsageError, "PascalCase"),
        ("a" * 64, "FixThing", UsageError, "longer than 63"),
    ],
)
def test_invalid_input_creates_nothing(
    tmp_path: Path, name: str, action_type: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        scaffold(_config(tmp_path), name, action_type)
    assert _tree(tmp_path) == []


def test_existing_playbook_is_refused_and_left_alone(tmp_path: Path) -> None:
    config = _config(tmp_path)
    scaffold(config, "fix-thing", "FixThing")
    script = tmp_path / "playbooks" / "fix-thing" / "remediate.sh"
    script.write_text("#!/bin/sh\necho mine\n")
    before = _tree(tmp_path)
    with pytest.raises(FatalError, match="playbooks/fix-thing already exists"):
        scaffold(config, "fix-thing", "OtherThing")
    assert _tree(tmp_path) == before
    assert script.read_text() == "#!/bin/sh\necho mine\n"


def test_existing_plain_file_of_that_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "fix-thing").write_text("not a directory")
    with pytest.raises(FatalError, match="already exists"):
        scaffold(_config(tmp_path), "fix-thing", "FixThing")


def test_action_type_file_name_clash_creates_nothing(tmp_path: Path) -> None:
    at_dir = tmp_path / "registry" / "action-types"
    at_dir.mkdir(parents=True)
    (at_dir / "fix-thing.yaml").write_text(
        "apiVersion: kubernaut.ai/v1alpha1\nkind: ActionType\n"
        "metadata: {name: fix-thing, namespace: kubernaut-system}\n"
        "spec: {name: SomethingElse, description: {what: w, whenToUse: u}}\n"
    )
    before = _tree(tmp_path)
    with pytest.raises(FatalError, match="does not define ActionType FixThing"):
        scaffold(_config(tmp_path), "new-one", "FixThing")
    assert _tree(tmp_path) == before


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    config = _config(tmp_path)
    scaffold(config, "one", "One")
    scaffold(config, "two", "One")
    assert sorted(p.name for p in (tmp_path / "playbooks").iterdir()) == ["one", "two"]
    assert sorted(p.name for p in (tmp_path / "registry" / "action-types").iterdir()) == [
        "one.yaml"
    ]


def test_scaffold_output_lints_clean(tmp_path: Path) -> None:
    # The linters must really run, or a clean result would prove nothing.
    assert find_binary("hadolint") is not None
    assert find_binary("shellcheck") is not None
    config = _config(tmp_path)
    scaffold(config, "fix-thing", "FixThing", "Fix the thing.")
    scaffold(config, "other-fix", "FixThing")
    findings = lint_paths([], config)
    # info: what lint cannot check statically (the scaffold's `kubectl get "$KIND"`)
    infos = {f.rule for f in findings if f.severity is Severity.INFO}
    assert infos <= {"script.unchecked"}
    findings = [f for f in findings if f.severity is not Severity.INFO]
    # No error: it releases as it stands. The warnings are exactly the placeholders the author
    # must replace (the description Kubernaut's agent reads, the unimplemented script).
    assert all(f.severity is Severity.WARNING for f in findings), findings
    assert sorted({(f.rule, f.file) for f in findings}) == [
        # whenToUse of the ActionType (what came from --description)
        ("action-type.placeholder-text", "registry/action-types/fix-thing.yaml"),
        ("playbook.placeholder-text", "playbooks/fix-thing/remediate.sh"),
        ("playbook.placeholder-text", "playbooks/fix-thing/workflow.yaml"),
        ("playbook.placeholder-text", "playbooks/other-fix/remediate.sh"),
        ("playbook.placeholder-text", "playbooks/other-fix/workflow.yaml"),
    ]
    # --description filled in `what` (of the workflow and the ActionType): not a placeholder
    assert not [f for f in findings if f.file.endswith("fix-thing/workflow.yaml") and f.line == 11]


def test_lint_sees_a_broken_scaffold(tmp_path: Path) -> None:
    # The counterpart of the test above: the same lint call does report problems here.
    config = _config(tmp_path)
    result = scaffold(config, "fix-thing", "FixThing")
    wf = result.playbook_dir / "workflow.yaml"
    wf.write_text(wf.read_text().replace("engine: tekton", "engine: argo"))
    script = result.playbook_dir / "remediate.sh"
    script.write_text(
        script.read_text().replace(
            '"$TARGET_RESOURCE_KIND" "$TARGET', "$TARGET_RESOURCE_KIND $TARGET"
        )
    )
    findings = lint_paths([], config)
    files = {f.file for f in findings}
    assert "playbooks/fix-thing/workflow.yaml" in files
    assert "playbooks/fix-thing/remediate.sh" in files
