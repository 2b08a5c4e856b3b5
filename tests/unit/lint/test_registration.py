"""lint/registration.py: the checks plan and register refuse with, as lint rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.config import load_config
from playbookctl.lint import lint_paths
from playbookctl.lint.registration import (
    check_registration_of,
    colliding_objects,
    version_conflict,
    write_problem,
)
from playbookctl.playbook import load_playbook, source_hash
from playbookctl.register import register
from playbookctl.results import Action, Artifact, PublishResult
from playbookctl_dev.sample_repo import write_action_type, write_playbook
from tests.support.lintrepo import edit, edits, good_playbook, make_repo

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


# playbook.duplicate-object: beta's rbac.yaml edited (good_playbook's: a ServiceAccount
# beta-runner at line 4, a ClusterRole beta at 10, a ClusterRoleBinding beta at 20); the
# findings as (file, line).
_SA, _CR = "  name: beta-runner\n  namespace", "kind: ClusterRole\nmetadata:\n  name: beta\n"
DUPLICATES = [
    ("distinct", (), set()),
    (
        "same ClusterRole name",
        ((_CR, "kind: ClusterRole\nmetadata:\n  name: alpha\n"),),
        {("playbooks/alpha/rbac.yaml", 10), ("playbooks/beta/rbac.yaml", 10)},
    ),
    (
        "same ServiceAccount, namespace too",
        ((_SA, "  name: alpha-runner\n  namespace"),),
        {("playbooks/alpha/rbac.yaml", 4), ("playbooks/beta/rbac.yaml", 4)},
    ),
    (
        "same name in another namespace",
        ((_SA + ": kubernaut-workflows", "  name: alpha-runner\n  namespace: other"),),
        set(),
    ),
    (
        "same name, another kind",
        ((_CR, "kind: ClusterRole\nmetadata:\n  name: alpha-runner\n"),),
        set(),
    ),
    (
        "same group, kind and name in another version (kustomize: the same object)",
        (
            ("rbac.authorization.k8s.io/v1\n" + _CR, "rbac.authorization.k8s.io/v1beta1\n" + _CR),
            (_CR, "kind: ClusterRole\nmetadata:\n  name: alpha\n"),
        ),
        {("playbooks/alpha/rbac.yaml", 10), ("playbooks/beta/rbac.yaml", 10)},
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"), [c[1:] for c in DUPLICATES], ids=[c[0] for c in DUPLICATES]
)
def test_duplicate_object(
    tmp_path: Path, changes: tuple[tuple[str, str], ...], expected: set[tuple[str, int]]
) -> None:
    beta = good_playbook("beta")
    beta["rbac.yaml"] = edits(beta["rbac.yaml"], *changes)
    root = make_repo(tmp_path, {"alpha": dict(good_playbook("alpha")), "beta": dict(beta)})
    found = lint_paths([], load_config(root), run_external=False, use_cache=False)
    dup = [f for f in found if f.rule == "playbook.duplicate-object"]
    assert {(f.file, f.line) for f in dup} == expected, dup
    for f in dup:  # each names the other file
        other = ({"playbooks/alpha/rbac.yaml", "playbooks/beta/rbac.yaml"} - {f.file}).pop()
        assert f"which {other} defines too" in f.message


def test_duplicate_object_of_one_playbook_linted_is_found_against_the_others(
    tmp_path: Path,
) -> None:
    beta = good_playbook("beta")
    beta["rbac.yaml"] = edit(
        beta["rbac.yaml"], _CR, "kind: ClusterRole\nmetadata:\n  name: alpha\n"
    )
    root = make_repo(tmp_path, {"alpha": dict(good_playbook("alpha")), "beta": dict(beta)})
    config = load_config(root)
    found = lint_paths([root / "playbooks" / "beta"], config, run_external=False, use_cache=False)
    assert [(f.rule, f.file, f.line) for f in found if f.severity.value == "error"] == [
        ("playbook.duplicate-object", "playbooks/beta/rbac.yaml", 10)
    ]


def test_colliding_objects_against_registrations_that_stay() -> None:
    rbac = good_playbook("alpha")["rbac.yaml"]
    staying = {"registry/workflows/alpha.yaml": rbac}
    found = colliding_objects(staying, {"beta": rbac, "gamma": None})
    assert list(found) == ["beta"]
    # every object beta defines, in its order, each naming the registration
    assert [(c.oid[1], c.others) for c in found["beta"]] == [
        ("ServiceAccount", ("registry/workflows/alpha.yaml",)),
        ("ClusterRole", ("registry/workflows/alpha.yaml",)),
        ("ClusterRoleBinding", ("registry/workflows/alpha.yaml",)),
    ]
    assert found["beta"][0].reason.startswith(
        "playbooks/beta/rbac.yaml defines ServiceAccount kubernaut-workflows/alpha-runner, "
        "which registry/workflows/alpha.yaml defines too: kustomize refuses"
    )
