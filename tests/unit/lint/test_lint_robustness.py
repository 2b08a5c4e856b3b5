"""No value of the wrong type anywhere in a playbook's YAML makes the linter raise.

Every value of workflow.yaml, pipeline.yaml and rbac.yaml is replaced, one at a time, by values
of each other JSON type; every rule family that reads those documents must still return
findings (and the mutated file must get at least one, except where any value is acceptable).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from playbookctl.config import load_config
from playbookctl.findings import Finding
from playbookctl.lint import tekton
from playbookctl.lint.playbook import check_playbook
from playbookctl.lint.workflow import check_workflow
from playbookctl.load import Document, YamlPath, iter_paths
from playbookctl.playbook import Playbook, load_playbook
from playbookctl.render import render_pipeline
from tests.support.lintrepo import good_playbook, make_repo

REPLACEMENTS: tuple[Any, ...] = (None, 0, True, "x", [], {}, [{"a": 1}], {"a": []})


def lint_loaded(pb: Playbook) -> list[Finding]:
    config = load_config(pb.root)
    out: list[Finding] = []
    if pb.workflow is not None:
        out += check_workflow(pb.workflow, action_types={}, expected_name=pb.name)
    rendered = render_pipeline(pb, config)
    out += tekton.check_document(rendered.document)
    out += check_playbook(pb, rendered, config)
    return out


def _set(data: Any, path: YamlPath, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    root = make_repo(
        tmp_path_factory.mktemp("robust") / "repo",
        {"restart-deployment": dict(good_playbook(pipeline=True))},
    )
    return load_playbook(root / "playbooks" / "restart-deployment", root, 1 << 20)


@pytest.mark.parametrize("which", ["workflow", "pipeline", "rbac-0", "rbac-2"])
def test_type_confusion_never_raises(loaded: Playbook, which: str) -> None:
    index = int(which[5:]) if which.startswith("rbac-") else 0
    base = loaded.rbac[index] if which.startswith("rbac-") else getattr(loaded, which)
    assert isinstance(base, Document)
    paths = [p for p, _ in iter_paths(base.data) if p]
    assert len(paths) >= 5
    runs = 0
    for path in paths:
        for value in REPLACEMENTS:
            pb = copy.copy(loaded)
            doc = copy.copy(base)
            doc.data = copy.deepcopy(base.data)
            _set(doc.data, path, value)
            if which.startswith("rbac-"):
                pb.rbac = list(loaded.rbac)
                pb.rbac[index] = doc
            else:
                setattr(pb, which, doc)
            findings = lint_loaded(pb)  # must not raise
            assert all(isinstance(f, Finding) and f.line >= 1 for f in findings)
            runs += 1
    assert runs == len(paths) * len(REPLACEMENTS)


def test_whole_documents_of_the_wrong_type(loaded: Playbook, tmp_path: Path) -> None:
    for value in REPLACEMENTS:
        for which in ("workflow", "pipeline"):
            pb = copy.copy(loaded)
            doc = copy.copy(getattr(loaded, which))
            doc.data = copy.deepcopy(value)
            setattr(pb, which, doc)
            assert lint_loaded(pb), f"{which} = {value!r} passed lint"


REFS = (
    "    - name: by-git\n      taskRef:\n        resolver: git\n        params:\n"
    "          - {name: url, value: https://example.com/t.git}\n"
    "          - {name: revision, value: main}\n"
    "    - name: by-bundle\n      taskRef:\n        resolver: bundles\n        params:\n"
    "          - {name: bundle, value: reg.example.com/t:1}\n"
    "    - name: by-step\n      taskSpec:\n        steps:\n"
    "          - name: s\n            ref:\n              resolver: git\n"
    "              params:\n                - {name: revision, value: main}\n"
    "            env:\n              - {name: PATH, value: $(params.TARGET_RESOURCE_NAME)}\n"
)


def test_type_confusion_never_raises_in_references_and_env(tmp_path: Path) -> None:
    """playbook.task-ref and playbook.env-reserved read resolver params and env entries: every
    value of them replaced by another type is still findings, never an exception."""
    files = dict(good_playbook(pipeline=True))
    files["pipeline.yaml"] = files["pipeline.yaml"].replace("  tasks:\n", "  tasks:\n" + REFS, 1)
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    loaded = load_playbook(root / "playbooks" / "restart-deployment", root, 1 << 20)
    base = loaded.pipeline
    assert isinstance(base, Document)
    paths = [p for p, _ in iter_paths(base.data) if p and p[:2] == ("spec", "tasks")]
    paths = [p for p in paths if len(p) > 2 and isinstance(p[2], int) and p[2] < 3]  # added
    assert len(paths) >= 20
    found = {f.rule for f in lint_loaded(loaded)}
    assert {"playbook.task-ref", "playbook.env-reserved"} <= found
    for path in paths:
        for value in REPLACEMENTS:
            pb = copy.copy(loaded)
            doc = copy.copy(base)
            doc.data = copy.deepcopy(base.data)
            _set(doc.data, path, value)
            pb.pipeline = doc
            findings = lint_loaded(pb)  # must not raise
            assert all(isinstance(f, Finding) and f.line >= 1 for f in findings)
