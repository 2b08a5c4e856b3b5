"""`action-type.*` rules and loading registry/action-types/."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.config import Config
from playbookctl.lint.action_type import Declared, check_action_type, load_action_types
from playbookctl.load import load_text
from tests.support.lintrepo import ACTION_TYPE, edits

VALID = ACTION_TYPE  # the ActionType the lint repositories use


def src(*changes: tuple[str, str]) -> str:
    return edits(VALID, *changes)


CASES = [
    ("valid", VALID, []),
    (
        "api version",
        src(("kubernaut.ai/v1alpha1", "kubernaut.ai/v1")),
        [("action-type.api-version", 1)],
    ),
    ("kind", src(("kind: ActionType", "kind: Action")), [("action-type.kind", 2)]),
    (
        "metadata name",
        src(("name: restart-deployment", "name: RestartDeployment")),
        [("action-type.metadata-name", 4)],
    ),
    (
        "metadata name not the kebab-case of spec.name",
        src(("name: restart-deployment", "name: foo-bar")),
        [("action-type.metadata-name", 4)],
    ),
    (
        "spec name with a typo",
        src(("name: RestartDeployment", "name: RestartDeploymnet")),
        [("action-type.metadata-name", 4)],
    ),
    (
        "acronym kebab-cased as new does",
        src(
            ("name: restart-deployment", "name: http-restart"),
            ("name: RestartDeployment", "name: HTTPRestart"),
        ),
        [],
    ),
    (
        "namespace",
        src(("namespace: kubernaut-system", "namespace: default")),
        [("action-type.namespace", 5)],
    ),
    (
        "spec name not PascalCase",
        src(("name: RestartDeployment", "name: restart-deployment")),
        [("action-type.name", 9)],
    ),
    (
        "spec name too long",
        src(("name: RestartDeployment", "name: R" + "x" * 255)),
        [("action-type.name", 9)],
    ),
    ("spec name a number", src(("name: RestartDeployment", "name: 12")), [("action-type.name", 9)]),
    ("spec name missing", src(("  name: RestartDeployment\n", "")), [("action-type.name", 8)]),
    (
        "what missing",
        src(("    what: Rolling restart of a Deployment\n", "")),
        [("action-type.description", 10)],
    ),
    ("description optional fields", VALID + "    whenNotToUse: x\n    preconditions: z\n", []),
    ("unknown field", VALID + "    owner: x\n", [("action-type.unknown-field", 13)]),
    ("status", VALID + "status:\n  registered: true\n", [("action-type.status", 13)]),
    (
        "sync wave missing (no annotations)",
        src(('  annotations:\n    argocd.argoproj.io/sync-wave: "-2"\n', "")),
        [("action-type.sync-wave", 3)],
    ),
    (
        "sync wave missing (other annotations)",
        src(('argocd.argoproj.io/sync-wave: "-2"', "owner: team")),
        [("action-type.sync-wave", 6)],
    ),
    (
        "sync wave wrong",
        src(('sync-wave: "-2"', 'sync-wave: "0"')),
        [("action-type.sync-wave", 7)],
    ),
    (
        "sync wave not a string",
        src(('sync-wave: "-2"', "sync-wave: -2")),
        [("action-type.sync-wave", 7), ("action-type.metadata", 7)],
    ),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(source: str, expected: list[tuple[str, int]]) -> None:
    result = load_text(source, "registry/action-types/x.yaml")
    assert not result.findings
    found = check_action_type(result.documents[0])
    assert sorted((f.rule, f.line) for f in found) == sorted(expected)


def _repo(tmp_path: Path, files: dict[str, str]) -> Config:
    base = tmp_path / "registry" / "action-types"
    base.mkdir(parents=True)
    for name, text in files.items():
        (base / name).write_text(text)
    return Config(root=tmp_path)


def test_load_action_types_by_spec_name(tmp_path: Path) -> None:
    other = src(
        ("name: restart-deployment", "name: cordon-drain-node"),
        ("name: RestartDeployment", "name: CordonDrainNode"),
    )
    config = _repo(tmp_path, {"restart.yaml": VALID, "node.yml": other, "README.md": "not yaml: ["})
    found, findings = load_action_types(config)
    assert sorted(found) == ["CordonDrainNode", "RestartDeployment"]
    assert found["RestartDeployment"].file == "registry/action-types/restart.yaml"
    assert findings == []


def test_load_action_types_reports_problems(tmp_path: Path) -> None:
    config = _repo(
        tmp_path,
        {
            "a.yaml": VALID,
            "b.yaml": VALID,  # same spec.name and metadata.name
            "c.yaml": "key: [unclosed\n",
            "d.yaml": src(
                ("name: RestartDeployment", "name: bad_name"),
                ("name: restart-deployment", "name: other"),
            ),
        },
    )
    found, findings = load_action_types(config)
    assert list(found) == ["RestartDeployment", "bad_name"]  # present, but reported
    assert sorted((f.file, f.rule, f.line) for f in findings) == [
        ("registry/action-types/b.yaml", "action-type.duplicate", 4),
        ("registry/action-types/b.yaml", "action-type.duplicate", 9),
        ("registry/action-types/c.yaml", "load.syntax", 2),
        ("registry/action-types/d.yaml", "action-type.name", 9),
    ]
    dup = next(f for f in findings if f.line == 9 and f.rule == "action-type.duplicate")
    assert "registry/action-types/a.yaml:9" in dup.message


def test_load_action_types_without_directory(tmp_path: Path) -> None:
    assert load_action_types(Config(root=tmp_path)) == ({}, [])


@pytest.mark.parametrize(
    ("file", "text", "held"),
    [
        ("registry/action-types/scale-up.yaml", "kind: [\n", True),  # named for it
        ("registry/action-types/other.yaml", "spec: {name: ScaleUp}\nkind: [\n", True),
        ("registry/action-types/other.yaml", 'spec: {name: "Scale\\x55p"}\nkind: [\n', True),
        ("registry/action-types/other.yaml", None, True),  # not text: anything
        ("registry/action-types/other.yaml", "kind: [\n", False),
        ("registry/action-types/other.yaml", "spec: {name: ScaleUpFast}\nkind: [\n", False),
    ],
)
def test_which_names_a_file_that_did_not_load_may_declare(
    file: str, text: str | None, held: bool
) -> None:
    declared = Declared({}, {file: text})
    assert declared.undecided("ScaleUp") == ([file] if held else [])
    assert "ScaleUp" not in declared  # held back is not found


def test_a_loaded_name_is_never_undecided() -> None:
    doc = load_text(ACTION_TYPE, "registry/action-types/restart-deployment.yaml").documents[0]
    declared = Declared({"RestartDeployment": doc}, {"registry/action-types/x.yaml": None})
    assert declared.undecided("RestartDeployment") == []
    assert list(declared) == ["RestartDeployment"]
