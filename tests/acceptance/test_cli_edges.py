"""Command-line edges a careless user hits: each refused (or said) in one line, exit 1, nothing
changed, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.clirun import run
from tests.support.lintrepo import good_playbook, make_repo


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(good_playbook())})
    monkeypatch.chdir(root)
    for variable in ("PLAYBOOKCTL_FLEET", "PLAYBOOKCTL_HERMETIC", "PLAYBOOKCTL_NO_CACHE"):
        monkeypatch.delenv(variable, raising=False)
    return root


# --- booleans: one set of words for every boolean variable -----------------------------------

WORDS = {"true": True, "FALSE": False, "1": True, "0": False, " yes ": True, "No": False}
WORDS |= {"on": True, "off": False}


@pytest.mark.parametrize(("word", "value"), WORDS.items())
def test_every_boolean_word_reads_the_same_for_fleet(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    word: str,
    value: bool,
) -> None:
    # The good playbook has no spec.labels.cluster: a fleet hub's lint warns about it.
    monkeypatch.setenv("PLAYBOOKCTL_FLEET", word)
    code, out, _ = run(capsys, "lint", "--no-external", "--format", "json")
    assert code == 0
    assert ("workflow.fleet-cluster" in out) is value


@pytest.mark.parametrize(
    "variable", ["PLAYBOOKCTL_FLEET", "PLAYBOOKCTL_HERMETIC", "PLAYBOOKCTL_NO_CACHE"]
)
@pytest.mark.parametrize("word", ["maybe", "", "y", "enabled"])
def test_an_unknown_boolean_word_names_the_variable_and_the_words(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    word: str,
) -> None:
    monkeypatch.setenv(variable, word)
    code, out, err = run(capsys, "lint", "--no-external")
    assert (code, out) == (1, "")
    assert err.startswith(f"playbookctl: error: {variable}: ")
    assert err.endswith(f"expected one of true/false, 1/0, yes/no, on/off, got {word!r}\n")
    assert err.count("\n") == 1


# --- bump refuses exactly what lint refuses, in lint's words ---------------------------------


@pytest.mark.parametrize(
    "version",
    ["1.2.3-alpha.01", "01.2.3", "1.2.03", "1.2", "v1.2.3", "1.2.3-alpha.1", "1.2.3-0a", "1.2.3+b"],
)
def test_bump_refuses_exactly_what_lint_refuses(
    repo: Path, capsys: pytest.CaptureFixture[str], version: str
) -> None:
    workflow = repo / "playbooks" / "restart-deployment" / "workflow.yaml"
    text = workflow.read_text()
    assert text.count('version: "1.0.0"') == 1
    workflow.write_text(text.replace('version: "1.0.0"', f'version: "{version}"'))
    before = workflow.read_bytes()
    _, out, _ = run(capsys, "lint", "--no-external", "--format", "json")
    said = [f["message"] for f in json.loads(out) if f["rule"] == "workflow.version"]
    code, out, err = run(capsys, "bump", "restart-deployment")
    if said:
        assert (code, out) == (1, "")
        line = next(i for i, t in enumerate(before.decode().splitlines(), 1) if version in t)
        assert err == (
            f"playbookctl: error: playbooks/restart-deployment/workflow.yaml:{line}: {said[0]}; "
            "nothing changed\n"
        )
        assert workflow.read_bytes() == before
    else:
        assert code == 0
        assert f"spec.version {version} -> " in out
    # lint refuses leading zeros in every numeric identifier, and build metadata; not 0a
    assert bool(said) == (version not in ("1.2.3-alpha.1", "1.2.3-0a"))


@pytest.mark.parametrize(
    ("written", "said"),
    [
        (
            'version: &v "1.0.0"',
            "spec.version carries the YAML anchor &v: bump edits only a plain or quoted string; "
            'write spec.version as a plain quoted string: version: "1.0.0" (and write the value '
            "itself wherever the alias *v is used)",
        ),
        (
            'version: !!str "1.0.0"',
            "spec.version carries the YAML tag !!str: bump edits only a plain or quoted string; "
            'write spec.version as a plain quoted string: version: "1.0.0"',
        ),
        (
            "version: *v",  # the anchor on a line of its own, before the document's first key
            "spec.version is the YAML alias *v, its value written at the anchor &v: bump edits "
            "only a plain or quoted string; write spec.version as a plain quoted string: "
            'version: "1.0.0"',
        ),
    ],
)
def test_bump_names_an_anchor_alias_or_tag_on_the_version(
    repo: Path, capsys: pytest.CaptureFixture[str], written: str, said: str
) -> None:
    """`version: &v "0.1.1"` was refused as "not a plain or quoted scalar": what is on it is
    named, and what to write instead."""
    workflow = repo / "playbooks" / "restart-deployment" / "workflow.yaml"
    text = workflow.read_text()
    if written.startswith("version: *"):
        text = 'x-version: &v "1.0.0"\n' + text
    workflow.write_text(text.replace('version: "1.0.0"', written))
    before = workflow.read_bytes()
    at = next(i for i, t in enumerate(before.decode().splitlines(), 1) if written in t)
    code, out, err = run(capsys, "bump", "restart-deployment")
    assert (code, out) == (1, "")
    assert err == (
        f"playbookctl: error: playbooks/restart-deployment/workflow.yaml:{at}: {said}; "
        "nothing changed\n"
    )
    assert workflow.read_bytes() == before


# --- verify with nothing to verify -------------------------------------------------------------


@pytest.mark.parametrize("where", ["elsewhere", "registry"])
@pytest.mark.parametrize("offline", [True, False])
def test_verify_pointed_where_there_is_nothing_fails_naming_where_it_looked(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, offline: bool
) -> None:
    # An operator in registry/ (-C registry), or a job in the wrong directory: verify found
    # nothing there and said "verified 0 registration(s)", exit 0.
    (repo / "registry" / "workflows").mkdir(parents=True, exist_ok=True)
    wrong = repo / "registry" if where == "registry" else tmp_path / "elsewhere"
    wrong.mkdir(exist_ok=True)
    flags = ["--offline"] if offline else []
    code, out, err = run(capsys, "-C", str(wrong), "verify", *flags)
    assert (code, out) == (1, "")
    assert err == (
        f"playbookctl verify: nothing to verify under {wrong.resolve()} (no registry/, and no "
        "pyproject.toml with [tool.playbookctl]); run it in the repository, or -C its root\n"
    )
    code, out, _ = run(capsys, "-C", str(wrong), "verify", *flags, "--format", "json")
    assert (code, json.loads(out)) == (1, [])


def test_verify_of_a_repository_with_nothing_registered_yet_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "new"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.playbookctl]\n")
    code, out, err = run(capsys, "-C", str(root), "verify", "--offline")
    assert (code, out, err) == (0, "verified 0 registration(s)\n", "")


# --- lint with nothing to lint ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["human", "json"])
def test_lint_pointed_where_there_is_nothing_fails_naming_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    # A CI job run from, or -C'd to, the wrong directory.
    wrong = tmp_path / "checkout" / "docs"
    wrong.mkdir(parents=True)
    code, out, err = run(capsys, "-C", str(wrong), "lint", "--no-external", "--format", fmt)
    assert (code, out) == (1, "[]\n" if fmt == "json" else "")
    assert err == (
        f"playbookctl lint: nothing to lint under {wrong} (no playbook, no registry/ file, and "
        "no pyproject.toml with [tool.playbookctl]); pass paths, or -C the repository root\n"
    )


def test_lint_of_an_empty_registry_directory_fails_naming_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "registry" / "workflows").mkdir(parents=True, exist_ok=True)
    code, out, err = run(capsys, "lint", "--no-external", "registry/workflows")
    assert (code, out) == (1, "")
    assert err == (
        "playbookctl lint: nothing to lint in registry/workflows (no playbook, no registry/ "
        "file, no Tekton file)\n"
    )


@pytest.mark.parametrize("args", [[], ["."], ["playbooks"]])
def test_a_repository_with_no_playbooks_yet_passes_and_says_so(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
) -> None:
    root = tmp_path / "new"
    (root / "playbooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.playbookctl]\n")
    monkeypatch.chdir(root)
    code, out, err = run(capsys, "lint", "--no-external", *args)
    assert (code, out) == (0, "")
    assert err == (
        f"playbookctl lint: no playbooks yet in {root / 'playbooks'} (and nothing in "
        "registry/); nothing to lint\n"
    )


# --- NAME arguments: a playbook's directory name, never a path -------------------------------


@pytest.mark.parametrize(
    "name", ["restart-deployment/", "../playbooks/restart-deployment", ".", "..", ""]
)
@pytest.mark.parametrize("command", ["bump", "pipelinerun"])
def test_a_name_argument_that_is_a_path_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str], command: str, name: str
) -> None:
    """`bump restart-deployment/` (a shell's completion) or `bump ../playbooks/x` bumped the
    file the path reached, and `pipelinerun ../action-types/x` read another registry file as a
    registration ("registry/workflows/..yaml"); as `render` does, both take the directory name
    only, say so with the playbooks there, and change nothing."""
    (repo / "registry" / "workflows").mkdir()
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    code, out, err = run(capsys, command, name)
    assert (code, out) == (1, "")
    assert err == (
        f"playbookctl: error: no playbook {name!r}: NAME is a directory name under playbooks/, "
        "not a path (playbooks: restart-deployment)\n"
    )
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
