"""register: registry/ from publish results (byte-identical reruns, ordering, deletion, refusal)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from playbookctl.config import Config, load_config
from playbookctl.errors import FatalError
from playbookctl.playbook import source_hash
from playbookctl.register import (
    ANN_IMAGE,
    ANN_SOURCE_COMMIT,
    ANN_SOURCE_HASH,
    ANN_SOURCE_REPOSITORY,
    HEADER,
    SYNC_WAVE,
    RegisterAction,
    parse_registration,
    register,
)
from playbookctl.results import Action, Artifact, PublishResult
from tests.support.gitrepos import PYPROJECT, read_registrations, write_action_type, write_playbook

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


def digest(c: str) -> str:
    return "sha256:" + c * 64


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    write_action_type(tmp_path)
    return tmp_path


def result_for(
    config: Config,
    name: str,
    *,
    bundle_digest: str = digest("1"),
    commit: str = COMMIT_A,
    status: Action = Action.PUSHED,
    version: str | None = None,
    source: str | None = None,
) -> PublishResult:
    d = config.playbooks_dir / name
    text = (d / "workflow.yaml").read_text()
    found = version or yaml.safe_load(text)["spec"]["version"]
    return PublishResult(
        name=name,
        version=found,
        source_hash=source or source_hash(d),
        image=Artifact(config.image_ref(name), found, digest("2"), Action.BUILT),
        bundle=Artifact(config.bundle_ref(name), found, bundle_digest, Action.PUSHED),
        status=status,
        commit=commit,
        source_repository="https://git.example.invalid/playbooks",
    )


def snapshot(root: Path) -> dict[str, bytes]:
    base = root / "registry"
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def test_registration_content(root: Path) -> None:
    write_playbook(root, "alpha", "1.2.0")
    config = load_config(root)
    outcome = register(config, [result_for(config, "alpha")])
    assert [c.action for c in outcome.changes] == [RegisterAction.REGISTERED]
    assert outcome.written == ["registry/kustomization.yaml", "registry/workflows/alpha.yaml"]
    text = (root / "registry" / "workflows" / "alpha.yaml").read_text()
    assert text.startswith(HEADER)
    assert 'version: "1.2.0"' in text
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "RemediationWorkflow",
    ]
    assert {d["metadata"]["annotations"][SYNC_WAVE] for d in docs[:3]} == {"-1"}
    wf = docs[-1]
    ann = wf["metadata"]["annotations"]
    assert ann[SYNC_WAVE] == "0"
    assert ann[ANN_SOURCE_COMMIT] == COMMIT_A
    assert ann[ANN_SOURCE_HASH] == source_hash(root / "playbooks" / "alpha")
    assert ann[ANN_IMAGE] == f"registry.example.invalid/t/images/alpha:1.2.0@{digest('2')}"
    assert ann[ANN_SOURCE_REPOSITORY] == "https://git.example.invalid/playbooks"
    assert wf["spec"]["execution"]["bundle"] == (
        f"registry.example.invalid/t/bundles/alpha:1.2.0@{digest('1')}"
    )
    # Everything else is the authored workflow, unchanged.
    authored = yaml.safe_load((root / "playbooks" / "alpha" / "workflow.yaml").read_text())
    del wf["spec"]["execution"]["bundle"]
    assert wf["spec"] == authored["spec"]
    reg = parse_registration(text, "alpha")
    assert reg is not None
    assert (reg.version, reg.bundle_digest, reg.source_commit) == ("1.2.0", digest("1"), COMMIT_A)
    back = reg.to_result()
    assert back.bundle is not None
    assert back.bundle.ref == wf_bundle(root, "alpha")
    assert back.image is not None
    assert back.image.digest == digest("2")


def wf_bundle(root: Path, name: str) -> str:
    docs = list(yaml.safe_load_all((root / "registry" / "workflows" / f"{name}.yaml").read_text()))
    return str(docs[-1]["spec"]["execution"]["bundle"])


def test_rerun_is_byte_identical_and_keeps_first_commit(root: Path) -> None:
    write_playbook(root, "alpha", "1.0.0")
    config = load_config(root)
    register(config, [result_for(config, "alpha", commit=COMMIT_A)])
    before = snapshot(root)
    # A later release re-registers the same bundle from a later commit (publish reused it).
    again = register(config, [result_for(config, "alpha", commit=COMMIT_B)])
    assert [c.action for c in again.changes] == [RegisterAction.UNCHANGED]
    assert not again.changed
    assert snapshot(root) == before
    # The same inputs in another checkout give the same bytes.
    other = root.parent / "other"
    shutil.copytree(root, other, ignore=shutil.ignore_patterns("registry"))
    write_action_type(other)
    config2 = load_config(other)
    register(config2, [result_for(config2, "alpha", commit=COMMIT_A)])
    assert snapshot(other) == before


def test_kustomization_lists_every_file_sorted(root: Path) -> None:
    write_action_type(root, "CordonNode")
    for name in ("zeta", "alpha", "mid"):
        write_playbook(
            root, name, "1.0.0", action_type="CordonNode" if name == "mid" else "RestartDeployment"
        )
    config = load_config(root)
    register(config, [result_for(config, n) for n in ("zeta", "alpha", "mid")])
    kust = yaml.safe_load((root / "registry" / "kustomization.yaml").read_text())
    assert kust["resources"] == [
        "action-types/cordon-node.yaml",
        "action-types/restart-deployment.yaml",
        "workflows/alpha.yaml",
        "workflows/mid.yaml",
        "workflows/zeta.yaml",
    ]
    assert kust["kind"] == "Kustomization"
    assert not any("argocd" in r for r in kust["resources"])


def test_deleted_playbook_registration_is_removed(root: Path) -> None:
    write_playbook(root, "alpha", "1.0.0")
    write_playbook(root, "beta", "1.0.0")
    config = load_config(root)
    register(config, [result_for(config, "alpha"), result_for(config, "beta")])
    shutil.rmtree(root / "playbooks" / "beta")
    outcome = register(config, [])
    assert [(c.name, c.action) for c in outcome.changes] == [("beta", RegisterAction.REMOVED)]
    assert outcome.removed == ["registry/workflows/beta.yaml"]
    assert sorted(read_registrations(config)) == ["alpha"]
    kust = yaml.safe_load((root / "registry" / "kustomization.yaml").read_text())
    assert "workflows/beta.yaml" not in kust["resources"]
    # Other registrations are untouched by a run without their results.
    assert (root / "registry" / "workflows" / "alpha.yaml").is_file()


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ("failed", Action.FAILED, "publish failed"),
        ("refused", Action.REFUSED, "publish refused"),
        ("stale-source", Action.PUSHED, "source changed since it was published"),
        ("stale-version", Action.PUSHED, "source changed since it was published"),
        ("gone", Action.PUSHED, "playbook is gone"),
    ],
)
def test_results_that_are_not_registered(
    root: Path, change: str, status: Action, detail: str
) -> None:
    write_playbook(root, "alpha", "1.0.0")
    config = load_config(root)
    result = result_for(config, "alpha", status=status)
    if change == "stale-source":
        result.source_hash = "sha256:" + "9" * 64
    elif change == "stale-version":
        result.version = "0.9.0"
    elif change == "gone":
        result.name = "ghost"
    outcome = register(config, [result])
    assert [c.action for c in outcome.changes] == [RegisterAction.SKIPPED]
    assert detail in outcome.changes[0].detail
    assert not (root / "registry" / "workflows").exists()


@pytest.mark.parametrize(
    ("edit", "rule"),
    [
        # A field the CRD lacks: the API server's strict decoding would reject the manifest.
        (
            lambda t: t.replace("    engine: tekton\n", "    engine: tekton\n    resources: {}\n"),
            "workflow.",
        ),
        # An actionType no ActionType in registry/action-types/ defines.
        (
            lambda t: t.replace("actionType: RestartDeployment", "actionType: NoSuchType"),
            "workflow.action-type",
        ),
        (lambda t: t.replace("priority: P1", "priority: P9"), "workflow.labels"),
    ],
)
def test_invalid_manifest_is_refused_and_nothing_written(
    root: Path, edit: object, rule: str
) -> None:
    write_playbook(root, "good", "1.0.0")
    d = write_playbook(root, "bad", "1.0.0")
    wf = d / "workflow.yaml"
    wf.write_text(edit(wf.read_text()))  # type: ignore[operator]
    config = load_config(root)
    with pytest.raises(FatalError, match=rf"refusing to register bad: .*\[{rule}"):
        register(config, [result_for(config, "good"), result_for(config, "bad")])
    assert not (root / "registry" / "workflows").exists()
    assert not (root / "registry" / "kustomization.yaml").exists()


def test_an_action_type_that_does_not_load_is_the_refusal_not_the_workflow_naming_it(
    root: Path,
) -> None:
    """The ActionType a playbook names is in a file that does not load: register refuses on
    that file's load finding before any workflow is held against the ActionTypes, so it never
    says the workflow names no ActionType (the hold-back lint and verify need: Declared)."""
    write_playbook(root, "alpha", "1.0.0")
    path = root / "registry" / "action-types" / "restart-deployment.yaml"
    path.write_text(path.read_text().replace("spec:", "spec: [unclosed"))
    config = load_config(root)
    with pytest.raises(FatalError) as caught:
        register(config, [result_for(config, "alpha")])
    assert str(caught.value).startswith(
        "refusing to register: registry/action-types/restart-deployment.yaml:"
    )
    assert "[load." in str(caught.value)
    assert "workflow.action-type" not in str(caught.value)
    assert not (root / "registry" / "workflows").exists()


def test_unpinned_bundle_is_refused(root: Path) -> None:
    write_playbook(root, "alpha", "1.0.0")
    config = load_config(root)
    with pytest.raises(FatalError, match=r"workflow\.bundle"):
        register(config, [result_for(config, "alpha", bundle_digest="sha256:abc")])


def test_dry_run_writes_nothing_and_no_temp_files_remain(root: Path) -> None:
    write_playbook(root, "alpha", "1.0.0")
    config = load_config(root)
    outcome = register(config, [result_for(config, "alpha")], dry_run=True)
    assert outcome.written == ["registry/kustomization.yaml", "registry/workflows/alpha.yaml"]
    assert not (root / "registry" / "workflows").exists()
    register(config, [result_for(config, "alpha")])
    leftovers = [p.name for p in (root / "registry").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_playbook_without_rbac(root: Path) -> None:
    write_playbook(root, "alpha", "1.0.0", rbac=False)
    config = load_config(root)
    register(config, [result_for(config, "alpha")])
    docs = list(yaml.safe_load_all((root / "registry" / "workflows" / "alpha.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["RemediationWorkflow"]


def test_action_type_without_sync_wave_is_refused(root: Path) -> None:
    at = root / "registry" / "action-types" / "restart-deployment.yaml"
    at.write_text(at.read_text().replace('sync-wave: "-2"', 'sync-wave: "0"'))
    write_playbook(root, "alpha", "1.0.0")
    config = load_config(root)
    # lint's own finding (the action-type.sync-wave rule), with its file and line
    with pytest.raises(
        FatalError,
        match=r"registry/action-types/restart-deployment\.yaml:7:35: \[action-type\.sync-wave\] "
        r'ActionType must carry the annotation argocd\.argoproj\.io/sync-wave: "-2" .*found \'0\'',
    ):
        register(config, [result_for(config, "alpha")])
    assert not (root / "registry" / "kustomization.yaml").exists()


def test_a_registered_version_never_changes_its_digest(root: Path) -> None:
    """A racing release registered 1.0.0 first; ours has other bytes: refused, file untouched."""
    write_playbook(root, "alpha", "1.0.0")
    write_playbook(root, "beta", "2.0.0")
    config = load_config(root)
    register(config, [result_for(config, "alpha", bundle_digest=digest("1"))])
    before = snapshot(root)
    outcome = register(
        config,
        [
            result_for(config, "alpha", bundle_digest=digest("9")),
            result_for(config, "beta", bundle_digest=digest("3")),
        ],
    )
    by_name = {c.name: c for c in outcome.changes}
    assert by_name["alpha"].action is RegisterAction.REFUSED
    assert by_name["alpha"].detail == (
        f"1.0.0 is already registered with bundle {digest('1')}; "
        "a registered version's digest never changes"
    )
    assert by_name["beta"].action is RegisterAction.REGISTERED  # the others still land
    after = snapshot(root)
    assert after["workflows/alpha.yaml"] == before["workflows/alpha.yaml"]
    assert read_registrations(config)["alpha"].bundle_digest == digest("1")
    # A new version is a new registration, whatever its digest.
    write_playbook(root, "alpha", "1.1.0", marker="v2")
    again = register(config, [result_for(config, "alpha", bundle_digest=digest("9"))])
    assert [c.action for c in again.changes] == [RegisterAction.REGISTERED]
