"""A file that does not load is one finding, not a cascade: a table, one row per broken input.

Each row breaks one input of tests.support.lintrepo's clean playbook (its script also reads a
variable the Containerfile's ENV sets and calls kubectl, so the script contract depends on every
file) and lists exactly the findings `lint_paths` reports, every rule included: the file's own
load error and nothing computed from what did not load (no script.variable for parameters
nobody could read, no script.rbac against a partial rbac.yaml, no workflow.action-type for an
ActionType in a file that did not load).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.config import load_config
from playbookctl.findings import Finding, Severity, in_report_order
from playbookctl.lint import lint_paths
from tests.support.lintrepo import edit, good_playbook, make_repo

NAME = "restart-deployment"
DIR = f"playbooks/{NAME}"
W = f"{DIR}/workflow.yaml"
P = f"{DIR}/pipeline.yaml"
C = f"{DIR}/Containerfile"
R = f"{DIR}/rbac.yaml"
S = f"{DIR}/remediate.sh"
# The script reads a variable no step's env passes: with workflow.yaml loaded, script.variable
# says whether it is a parameter the Pipeline forgot or none at all.
UNPASSED = '<script>echo "$NOT_PASSED"\n'
AT = "registry/action-types/restart-deployment.yaml"
OTHER_AT = "registry/action-types/scale-down.yaml"
MAX_BYTES = 8192  # max-file-bytes for these rows: a file over it is load.too-large
DELETE = b"<delete>"
# A document whose alias refers to itself: load.alias-bomb drops that document, not the file.
BOMB = "bomb: &x [*x]\n"

# (id, authored pipeline.yaml?, {file: new content, or DELETE}, lint the whole repository?,
# the findings as (rule, file, line))
Row = tuple[str, bool, dict[str, str | bytes], bool, set[tuple[str, str, int]]]
ROWS: list[Row] = [
    ("clean", False, {}, False, set()),
    ("clean-authored", True, {}, False, set()),
    # workflow.yaml: the script's parameters and the wrapper's params are made from it
    ("workflow-syntax", False, {W: "apiVersion: v1\nkind: [\n"}, False, {("load.syntax", W, 3)}),
    (
        "workflow-tab",
        False,
        {W: "apiVersion: v1\nspec:\n\tversion: 1\n"},
        False,
        {("load.syntax", W, 3)},
    ),
    ("workflow-not-utf8", False, {W: b"kind: \xff\n"}, False, {("load.encoding", W, 1)}),
    ("workflow-too-large", False, {W: "#" * (MAX_BYTES + 1)}, False, {("load.too-large", W, 1)}),
    ("workflow-alias-bomb", False, {W: BOMB}, False, {("load.alias-bomb", W, 1)}),
    ("workflow-list", False, {W: "- a\n- b\n"}, False, {("workflow.schema", W, 1)}),
    ("workflow-scalar", False, {W: "hello\n"}, False, {("workflow.schema", W, 1)}),
    ("workflow-empty", False, {W: "# nothing yet\n"}, False, {("playbook.empty-file", W, 1)}),
    ("workflow-missing", False, {W: DELETE}, False, {("playbook.missing-file", DIR, 1)}),
    # an authored pipeline passes the env itself; the workflow's parameters are still unknown
    ("authored-workflow-syntax", True, {W: "kind: [\n"}, False, {("load.syntax", W, 2)}),
    ("authored-workflow-list", True, {W: "- a\n"}, False, {("workflow.schema", W, 1)}),
    ("authored-unpassed", True, {S: UNPASSED}, False, {("script.variable", S, 6)}),
    (
        "authored-unpassed-workflow-syntax",
        True,
        {S: UNPASSED, W: "kind: [\n"},
        False,
        {("load.syntax", W, 2)},
    ),
    # pipeline.yaml: the step's env
    ("pipeline-syntax", True, {P: "kind: [\n"}, False, {("load.syntax", P, 2)}),
    ("pipeline-list", True, {P: "- a\n"}, False, {("playbook.pipeline-kind", P, 1)}),
    ("pipeline-not-utf8", True, {P: b"\xff"}, False, {("load.encoding", P, 1)}),
    # Containerfile: the image's ENV
    ("containerfile-not-utf8", False, {C: b"FROM x\n\xff\n"}, False, {("load.encoding", C, 2)}),
    (
        "containerfile-too-large",
        False,
        {C: "<containerfile>" + "#" * MAX_BYTES + "\n"},
        False,
        {("load.too-large", C, 1)},
    ),
    ("containerfile-missing", False, {C: DELETE}, False, {("playbook.missing-file", DIR, 1)}),
    # rbac.yaml: what the kubectl calls are held against
    ("rbac-syntax", False, {R: "kind: [\n"}, False, {("load.syntax", R, 2)}),
    ("rbac-list", False, {R: "- a\n"}, False, {("playbook.rbac-kind", R, 1)}),
    ("rbac-not-utf8", False, {R: b"\xff"}, False, {("load.encoding", R, 1)}),
    (
        # the ClusterRole's document is dropped, the rest of the file loads
        "rbac-alias-bomb",
        False,
        {R: "<rbac-bomb>"},
        False,
        {("load.alias-bomb", R, 11)},
    ),
    # the ActionType the workflow names, in registry/action-types/
    ("action-type-syntax", False, {AT: "kind: [\n"}, False, {("load.syntax", AT, 2)}),
    ("action-type-syntax-all", False, {AT: "kind: [\n"}, True, {("load.syntax", AT, 2)}),
    ("action-type-list", False, {AT: "- a\n"}, False, {("action-type.schema", AT, 1)}),
    # another ActionType's file: the playbook's own is found, so linting it says nothing more
    ("other-action-type-syntax", False, {OTHER_AT: "kind: [\n"}, False, set()),
    # the workflow names a missing ActionType: only a file that may declare that name (named
    # for it, or holding it) holds the check back; another one's does not
    (
        "missing-action-type-beside-other-syntax",
        False,
        {OTHER_AT: "kind: [\n", W: "<workflow:RestartDeploymnt>"},
        False,
        {("workflow.action-type", W, 11)},
    ),
    (
        "missing-action-type-beside-other-syntax-all",
        False,
        {OTHER_AT: "kind: [\n", W: "<workflow:RestartDeploymnt>"},
        True,
        {("workflow.action-type", W, 11), ("load.syntax", OTHER_AT, 2)},
    ),
    (
        "missing-action-type-in-its-own-file-syntax",
        False,
        {OTHER_AT: "kind: [\n", W: "<workflow:ScaleDown>"},
        False,
        {("load.syntax", OTHER_AT, 2)},
    ),
    (
        "missing-action-type-named-in-other-syntax",
        False,
        {OTHER_AT: "spec: {name: Rollback}\nkind: [\n", W: "<workflow:Rollback>"},
        False,
        {("load.syntax", OTHER_AT, 3)},
    ),
    (
        "other-action-type-syntax-all",
        False,
        {OTHER_AT: "kind: [\n"},
        True,
        {("load.syntax", OTHER_AT, 2)},
    ),
]


def _playbook(pipeline: bool) -> dict[str, str]:
    files = good_playbook(NAME, pipeline=pipeline)
    files["Containerfile"] = edit(
        files["Containerfile"], "USER 65532:65532\n", "ENV WORK_DIR=/tmp\nUSER 65532:65532\n"
    )
    files["remediate.sh"] += (
        'cd "$WORK_DIR"\nkubectl rollout restart "deployment/$TARGET_RESOURCE_NAME"\n'
    )
    return files


def _content(new: str | bytes, files: dict[str, str]) -> str | bytes:
    if isinstance(new, bytes):
        return new
    bomb = edit(files["rbac.yaml"], "rules:\n", BOMB + "rules:\n")
    if new.startswith("<workflow:"):
        named = new.removeprefix("<workflow:").removesuffix(">")
        return edit(files["workflow.yaml"], "RestartDeployment", named)
    return (
        new.replace("<containerfile>", files["Containerfile"])
        .replace("<rbac-bomb>", bomb)
        .replace("<rbac>", files["rbac.yaml"])
        .replace("<script>", files["remediate.sh"])
    )


def lint(
    tmp_path: Path, pipeline: bool, changes: dict[str, str | bytes], whole: bool
) -> set[Finding]:
    files = _playbook(pipeline)
    root = make_repo(tmp_path / "repo", {NAME: dict(files)})
    for rel, new in changes.items():
        path = root / rel
        if new == DELETE:
            path.unlink()
        else:
            content = _content(new, files)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
    config = load_config(root, env={"PLAYBOOKCTL_MAX_FILE_BYTES": str(MAX_BYTES)})
    paths = [] if whole else [root / DIR]
    return set(lint_paths(paths, config, run_external=False, use_cache=False))


@pytest.mark.parametrize(
    ("pipeline", "changes", "whole", "expected"),
    [pytest.param(p, c, w, e, id=i) for i, p, c, w, e in ROWS],
)
def test_a_file_that_does_not_load_is_its_own_finding_only(
    tmp_path: Path,
    pipeline: bool,
    changes: dict[str, str | bytes],
    whole: bool,
    expected: set[tuple[str, str, int]],
) -> None:
    found = lint(tmp_path, pipeline, changes, whole)
    assert {(f.rule, f.file, f.line) for f in found} == expected


def _f(rule: str, file: str, line: int = 1) -> Finding:
    return Finding(rule, Severity.ERROR, file, line, 1, "m")


def test_report_order_puts_a_playbooks_load_problems_first() -> None:
    a, b = "playbooks/a", "playbooks/b"
    findings = [
        _f("script.variable", f"{a}/remediate.sh", 3),
        _f("playbook.base-image-pinned", f"{a}/Containerfile"),
        _f("load.yaml-1.1", f"{a}/rbac.yaml", 2),  # a reading, not a failure to load
        _f("load.syntax", f"{a}/workflow.yaml", 7),
        _f("playbook.missing-file", a),
        _f("load.encoding", f"{b}/workflow.yaml"),
        _f("hadolint.DL3007", f"{b}/Containerfile", 2),
        _f("load.syntax", "registry/kustomization.yaml", 4),
        _f("action-type.schema", "registry/action-types/x.yaml"),
        _f("load.syntax", "registry/action-types/x.yaml", 9),
        _f("load.syntax", f"{a}/workflow.yaml", 7),  # a duplicate is reported once
    ]
    got = [(f.rule, f.file) for f in in_report_order(findings, [a, b])]
    assert got == [
        ("playbook.missing-file", a),
        ("load.syntax", f"{a}/workflow.yaml"),
        ("playbook.base-image-pinned", f"{a}/Containerfile"),
        ("load.yaml-1.1", f"{a}/rbac.yaml"),
        ("script.variable", f"{a}/remediate.sh"),
        ("load.encoding", f"{b}/workflow.yaml"),
        ("hadolint.DL3007", f"{b}/Containerfile"),
        # outside a playbook each file is its own unit, load problems first within it
        ("load.syntax", "registry/action-types/x.yaml"),
        ("action-type.schema", "registry/action-types/x.yaml"),
        ("load.syntax", "registry/kustomization.yaml"),
    ]
