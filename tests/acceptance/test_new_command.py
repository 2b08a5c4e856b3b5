"""`playbookctl new` through the CLI: scaffold, then lint the result; refusals and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.cli import main
from tests.support.gitrepos import git


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_new_then_lint_is_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path)
    code, out, err = _run(
        capsys, "-C", root, "new", "fix-thing", "--action-type", "FixThing",
        "--description", "Fix the thing.",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "created playbooks/fix-thing/" in out
    assert "playbooks/fix-thing/remediate.sh" in out
    assert "created ActionType FixThing in registry/action-types/fix-thing.yaml" in out
    assert (tmp_path / "playbooks" / "fix-thing" / "workflow.yaml").is_file()

    code, out, err = _run(capsys, "-C", root, "lint")
    assert code == 0, out + err

    code, out, err = _run(capsys, "-C", root, "render", "fix-thing")
    assert code == 0, err
    assert "name: workflow" in out
    assert "playbook://self" in out


def test_new_in_a_git_checkout_stages_its_files_and_lints_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Images, dry runs and `try` are made from git's objects: `new` stages its files
    (`git add`), so lint has no playbook.untracked to say and a try takes them as they are on
    disk; a `git checkout -- .` afterwards gives back the scaffold, never empty files (what
    `--intent-to-add` left it to do)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "commit", "-q", "--allow-empty", "-m", "empty")
    code, out, err = _run(capsys, "-C", str(root), "new", "fix-thing", "--action-type", "Fix")
    assert (code, err) == (0, ""), out
    assert "staged for git (git add)" in out
    status = git(root, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert "A  playbooks/fix-thing/remediate.sh" in status
    assert "A  registry/action-types/fix.yaml" in status
    assert not [line for line in status if line.startswith("??")]
    script = root / "playbooks" / "fix-thing" / "remediate.sh"
    scaffold = script.read_bytes()
    script.write_text("#!/bin/sh\n# an edit the author then discards\n")
    git(root, "checkout", "--", ".")
    assert script.read_bytes() == scaffold != b""
    code, out, err = _run(capsys, "-C", str(root), "lint", "--format", "json")
    assert code == 0, out + err
    assert "playbook.untracked" not in out
    # A file the author adds later and forgets to git add: refused, with the command.
    (root / "playbooks" / "fix-thing" / "helper.sh").write_text("#!/bin/sh\n")
    code, out, _ = _run(capsys, "-C", str(root), "lint")
    assert code == 1
    assert "playbook.untracked" in out
    assert "git add playbooks/fix-thing/helper.sh" in out


def test_second_playbook_reuses_the_action_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path)
    assert _run(capsys, "-C", root, "new", "first", "--action-type", "FixThing")[0] == 0
    code, out, _ = _run(capsys, "-C", root, "new", "second", "--action-type", "FixThing")
    assert code == 0
    assert "ActionType FixThing already exists in registry/action-types/fix-thing.yaml" in out
    assert sorted(p.name for p in (tmp_path / "registry" / "action-types").iterdir()) == [
        "fix-thing.yaml"
    ]
    assert _run(capsys, "-C", root, "lint")[0] == 0


@pytest.mark.parametrize(
    ("argv", "exit_code", "message"),
    [
        (["new", "Fix_Thing", "--action-type", "FixThing"], 2, "not a DNS-1123 label"),
        (["new", "fix-thing", "--action-type", "fix_thing"], 2, "not PascalCase"),
        (["new", "fix-thing"], 2, "--action-type"),
        (["new", "--action-type", "FixThing"], 2, "NAME"),
    ],
)
def test_invalid_arguments(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    exit_code: int,
    message: str,
) -> None:
    code, out, err = _run(capsys, "-C", str(tmp_path), *argv)
    assert code == exit_code
    assert message in err
    assert "Traceback" not in out + err
    assert list(tmp_path.iterdir()) == []


def test_existing_playbook_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path)
    assert _run(capsys, "-C", root, "new", "fix-thing", "--action-type", "FixThing")[0] == 0
    code, out, err = _run(capsys, "-C", root, "new", "fix-thing", "--action-type", "Other")
    assert code == 1
    assert "playbooks/fix-thing already exists" in err
    assert out == ""
    assert not (tmp_path / "registry" / "action-types" / "other.yaml").exists()


def test_render_output_starts_a_custom_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`render NAME > playbooks/NAME/pipeline.yaml` empties the file before it is read (the
    shell truncates first); `--output` writes it after rendering, whole."""
    root = str(tmp_path)
    assert _run(capsys, "-C", root, "new", "fix-thing", "--action-type", "FixThing")[0] == 0
    code, standard, _ = _run(capsys, "-C", root, "render", "fix-thing")
    assert code == 0
    target = tmp_path / "playbooks" / "fix-thing" / "pipeline.yaml"
    code, out, err = _run(capsys, "-C", root, "render", "fix-thing", "--output", str(target))
    assert (code, out) == (0, "")
    assert f"wrote {target}" in err
    assert target.read_text() == standard
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()
    # The authored pipeline is now the playbook's: it renders to itself and lints as before.
    assert _run(capsys, "-C", root, "render", "fix-thing")[1] == standard
    code, out, err = _run(capsys, "-C", root, "lint", "--no-external", str(target.parent))
    assert code == 0, out + err
    # Rendering over the authored file again (it is read first) leaves it intact.
    code, _, _ = _run(capsys, "-C", root, "render", "fix-thing", "-o", str(target))
    assert code == 0
    assert target.read_text() == standard
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".pipeline.yaml.")]


def test_render_output_into_a_missing_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path)
    assert _run(capsys, "-C", root, "new", "fix-thing", "--action-type", "FixThing")[0] == 0
    code, out, err = _run(
        capsys, "-C", root, "render", "fix-thing", "-o", str(tmp_path / "nope" / "p.yaml")
    )
    assert (code, out) == (1, "")
    assert "does not exist" in err
    assert len(err.strip().splitlines()) == 1


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current


def test_lint_of_the_new_playbook_reports_the_todos_in_its_action_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    root = str(tmp_path)
    assert _run(capsys, "-C", root, "new", "fix-thing", "--action-type", "FixThing")[0] == 0
    assert _run(capsys, "-C", root, "new", "other", "--action-type", "OtherThing")[0] == 0
    code, out, _ = _run(
        capsys, "-C", root, "lint", "--no-external", "--format", "json",
        str(tmp_path / "playbooks" / "fix-thing"),
    )  # fmt: skip
    assert code == 0
    todos = [f for f in json.loads(out) if f["rule"] == "action-type.placeholder-text"]
    assert todos
    # Its own ActionType's, not another playbook's.
    assert {f["file"] for f in todos} == {"registry/action-types/fix-thing.yaml"}
    assert all(f["severity"] == "warning" for f in todos)


@pytest.mark.parametrize(
    ("name", "action_type"),
    [
        ("yes", "Yes"),  # go-yaml v2 (the cluster's reader): the boolean true
        ("on", "Off"),
        ("null", "Null"),  # null
        ("n", "N"),  # the boolean false for the cluster, the string for PyYAML
        ("123", "True"),  # a number
        ("1e3", "FixIt"),  # the number 1000 for the cluster, a string for PyYAML
    ],
)
def test_a_name_yaml_reads_as_another_type_is_scaffolded_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, action_type: str
) -> None:
    """Each is a valid DNS-1123 label (or PascalCase name) that a plain YAML scalar would turn
    into a boolean, null or number: `new` writes it quoted, so its output still releases as it
    stands (lint: no error) and the cluster reads the names as written."""
    import json

    from playbookctl.load import load_file

    root = str(tmp_path)
    code, out, err = _run(capsys, "-C", root, "new", name, "--action-type", action_type)
    assert (code, err) == (0, ""), out
    code, out, err = _run(capsys, "-C", root, "lint", "--no-external", "--format", "json")
    errors = [f for f in json.loads(out) if f["severity"] == "error"]
    assert (code, errors) == (0, []), err
    playbook = tmp_path / "playbooks" / name
    workflow = load_file(playbook / "workflow.yaml", "workflow.yaml", 1 << 20).documents[0]
    assert workflow.get(("metadata", "name")) == name
    assert workflow.get(("spec", "actionType")) == action_type
    rbac = load_file(playbook / "rbac.yaml", "rbac.yaml", 1 << 20).documents
    assert {d.get(("metadata", "labels", "kubernaut.ai/workflow")) for d in rbac} == {name}
    (at_file,) = (tmp_path / "registry" / "action-types").iterdir()
    at = load_file(at_file, at_file.name, 1 << 20).documents[0]
    assert at.get(("spec", "name")) == action_type
    assert at.get(("metadata", "name")) == at_file.stem
    # The ActionType is found again by its name: a second playbook reuses it.
    code, out, _ = _run(capsys, "-C", root, "new", "second", "--action-type", action_type)
    assert code == 0
    assert f"ActionType {action_type} already exists" in out


def test_an_authored_pipeline_whose_default_is_not_the_workflows_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: pipeline.yaml declares "every optional [parameter] with its default". The agent
    leaves MODE out to get the workflow's "safe"; a Pipeline defaulting to "fast" would run
    that instead, so lint names the file, the line and both values."""
    import json

    root = str(tmp_path)
    assert _run(capsys, "-C", root, "new", "fix-thing", "--action-type", "FixThing")[0] == 0
    playbook = tmp_path / "playbooks" / "fix-thing"
    with (playbook / "workflow.yaml").open("a") as f:
        f.write(
            "    - name: MODE\n      type: string\n      required: false\n"
            '      description: How hard to try.\n      enum: ["safe", "fast"]\n'
            '      default: "safe"\n'
        )
    pipeline = playbook / "pipeline.yaml"
    code, _, err = _run(capsys, "-C", root, "render", "fix-thing", "-o", str(pipeline))
    assert code == 0, err
    code, out, err = _run(capsys, "-C", root, "lint", "--no-external", str(playbook))
    assert code == 0, out + err
    lines = pipeline.read_text().splitlines()
    at = lines.index("      default: safe") + 1
    pipeline.write_text(pipeline.read_text().replace("default: safe", "default: fast"))
    code, out, err = _run(
        capsys, "-C", root, "lint", "--no-external", "--format", "json", str(playbook)
    )
    assert code == 1, err
    (finding,) = [f for f in json.loads(out) if f["severity"] == "error"]
    assert (finding["rule"], finding["file"], finding["line"]) == (
        "playbook.param-default",
        "playbooks/fix-thing/pipeline.yaml",
        at,
    )
    assert "'fast'" in finding["message"]
    assert "'safe'" in finding["message"]
    assert 'default: "safe"' in finding["message"]


@pytest.mark.parametrize("name", ["PATH", "LD_PRELOAD", "KUBERNETES_SERVICE_HOST"])
def test_a_parameter_named_as_a_variable_the_step_obeys_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """The standard wrapper passes every parameter as an environment variable of its name, and
    the values come from alert data: a parameter named PATH decides which kubectl runs, one
    named KUBERNETES_SERVICE_HOST where the ServiceAccount's token goes. UPPER_SNAKE_CASE
    and otherwise valid, it is refused where it is declared."""
    import json

    root = str(tmp_path)
    assert _run(capsys, "-C", root, "new", "fix-thing", "--action-type", "FixThing")[0] == 0
    workflow = tmp_path / "playbooks" / "fix-thing" / "workflow.yaml"
    with workflow.open("a") as f:
        f.write(
            f"    - name: {name}\n      type: string\n      required: false\n"
            '      description: Where to look.\n      default: ""\n'
        )
    at = workflow.read_text().splitlines().index(f"    - name: {name}") + 1
    code, out, err = _run(capsys, "-C", root, "lint", "--no-external", "--format", "json")
    assert code == 1, err
    (finding,) = [f for f in json.loads(out) if f["severity"] == "error"]
    assert (finding["rule"], finding["file"], finding["line"]) == (
        "playbook.env-reserved",
        "playbooks/fix-thing/workflow.yaml",
        at,
    )
    assert finding["message"].startswith(f"parameter {name!r}: the standard wrapper passes")
    assert finding["message"].endswith("rename the parameter")
