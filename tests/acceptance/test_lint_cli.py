"""`playbookctl lint` and `playbookctl render` through the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from playbookctl import cli
from tests.support.lintrepo import DIGEST, edit, good_playbook, make_repo

Run = tuple[int, str, str]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(
        tmp_path / "repo",
        {
            "restart-deployment": dict(good_playbook()),
            "authored": dict(good_playbook("authored", pipeline=True)),
        },
    )
    monkeypatch.chdir(root)
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_clean_repository(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The human format confirms on stderr; json and github stay silent.
    assert run(capsys, "lint") == (0, "", "All checks passed (2 playbook(s), 1 other file(s)).\n")
    code, out, err = run(capsys, "lint", "--format", "json")
    assert (code, json.loads(out), err) == (0, [], "")
    assert run(capsys, "lint", "--format", "github") == (0, "", "")


# One playbook with a problem in every file; each must be reported, with its line, in one run.
BROKEN = {
    "workflow.yaml": (
        ('  version: "1.0.0"', '  version: "v1"'),
        (
            "    secrets:\n      - name: creds\n",
            "    secrets:\n      - name: creds\n      - name: creds\n",
        ),
    ),
    "pipeline.yaml": (
        ("              remediate.sh act\n", "              remediate.sh act $(params.NAME)\n"),
        ("      runAfter: [act]", "      runAfter: [nope]"),
        ('      default: "600"\n', ""),
    ),
    "Containerfile": (
        (f"busybox:1.36@{DIGEST}", "busybox:latest"),
        ("USER 65532:65532\n", ""),
    ),
    "remediate.sh": (
        ('echo "restarting $TARGET_RESOURCE_NAME', 'echo "restarting" $TARGET_RESOURCE_NAME "'),
    ),
    "rbac.yaml": (("  namespace: kubernaut-workflows\n---", "  namespace: default\n---"),),
}
BROKEN_EXPECTED = {
    ("workflow.version", "workflow.yaml", 7),
    ("workflow.dependencies", "workflow.yaml", 23),
    ("playbook.script-injection", "pipeline.yaml", 41),
    ("tekton.run-after", "pipeline.yaml", 43),
    ("playbook.param-no-default", "pipeline.yaml", 9),
    ("playbook.base-image-pinned", "Containerfile", 1),
    ("playbook.containerfile-user", "Containerfile", 1),
    ("hadolint.DL3007", "Containerfile", 1),
    ("shellcheck.SC2086", "remediate.sh", 3),
    ("playbook.rbac-namespace", "rbac.yaml", 5),
}


def test_broken_playbook_reports_every_problem_in_one_run(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = good_playbook("broken", pipeline=True)
    for name, edits in BROKEN.items():
        for old, new in edits:
            files[name] = edit(files[name], old.replace("restart-deployment", "broken"), new)
    make_repo(repo, {"broken": dict(files)})
    code, out, _ = run(capsys, "lint", "--format", "json", "playbooks/broken")
    assert code == 1
    found = json.loads(out)
    got = {(f["rule"], f["file"].removeprefix("playbooks/broken/"), f["line"]) for f in found}
    missing = BROKEN_EXPECTED - got
    assert not missing, f"not reported: {missing}\nreported: {sorted(got)}"
    assert all(set(f) == {"rule", "severity", "file", "line", "column", "message"} for f in found)
    assert all(f["file"].startswith("playbooks/broken/") for f in found)


def test_human_format(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "playbooks" / "authored" / "pipeline.yaml").write_text("kind: [\n")
    code, out, _ = run(capsys, "lint", "playbooks/authored")
    assert code == 1
    lines = out.splitlines()
    assert re.fullmatch(
        r"playbooks/authored/pipeline\.yaml:2:1: error \[load\.syntax\] .+", lines[0]
    ), lines
    assert lines[-1] == "1 error(s), 0 warning(s)"


def test_github_format_explicit_and_automatic(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "playbooks" / "authored" / "pipeline.yaml").write_text("a: 1\na: 2\n")
    code, out, _ = run(capsys, "lint", "--format", "github", "playbooks/authored")
    assert code == 1
    assert (
        "::error file=playbooks/authored/pipeline.yaml,line=2,col=1,title=load.duplicate-key::"
        "duplicate key 'a'" in out
    )
    assert all(line.startswith(("::error ", "::warning ")) for line in out.splitlines())
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert run(capsys, "lint", "playbooks/authored")[1] == out


def test_warnings_only_exit_zero(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = repo / "playbooks" / "restart-deployment" / "remediate.sh"
    script.write_text("#!/bin/sh\necho $TARGET_RESOURCE_NAME\n")
    code, out, _ = run(capsys, "lint", "--format", "json")
    assert code == 0
    assert [(f["rule"], f["severity"]) for f in json.loads(out)] == [
        ("shellcheck.SC2086", "warning")
    ]
    # --no-external skips the linters.
    assert run(capsys, "lint", "--no-external", "--format", "json")[1].strip() == "[]"


def test_file_of_a_playbook_lints_the_playbook(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "playbooks" / "restart-deployment" / "rbac.yaml").unlink()
    code, out, _ = run(
        capsys, "lint", "--format", "json", "playbooks/restart-deployment/remediate.sh"
    )
    # The workflow's serviceAccountName no longer matches an rbac.yaml: a cross-file warning.
    assert code == 0
    assert [f["rule"] for f in json.loads(out)] == ["playbook.rbac-service-account"]


def test_standalone_tekton_files(
    repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pipeline = good_playbook(pipeline=True)["pipeline.yaml"]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "ok.yaml").write_text(pipeline)
    (outside / "bad.yaml").write_text(edit(pipeline, "runAfter: [act]", "runAfter: [verify]"))
    assert run(capsys, "lint", str(outside / "ok.yaml"))[0] == 0
    code, out, _ = run(capsys, "lint", "--format", "json", str(outside / "bad.yaml"))
    assert code == 1
    # Files outside the repository are shown as given.
    assert {f["file"] for f in json.loads(out)} == {str(outside / "bad.yaml")}


def test_scripts_in_tekton_steps_are_shellchecked(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = repo / "playbooks" / "authored" / "pipeline.yaml"
    pipeline.write_text(edit(pipeline.read_text(), "remediate.sh act\n", "remediate.sh $1\n"))
    code, out, _ = run(capsys, "lint", "--format", "json", "playbooks/authored")
    assert code == 0  # a warning
    assert [(f["rule"], f["file"], f["line"], f["column"]) for f in json.loads(out)] == [
        ("shellcheck.SC2086", "playbooks/authored/pipeline.yaml", 42, 28)
    ]


def test_registry_files(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    at = repo / "registry" / "action-types" / "restart-deployment.yaml"
    at.write_text(at.read_text().replace("namespace: kubernaut-system", "namespace: default"))
    code, out, _ = run(
        capsys, "lint", "--format", "json", "registry/action-types/restart-deployment.yaml"
    )
    assert code == 1
    assert {(f["rule"], f["line"]) for f in json.loads(out)} == {("action-type.namespace", 5)}


@pytest.mark.parametrize(
    "args",
    [
        ("lint", "--format", "xml"),
        ("lint", "does-not-exist"),
        ("lint", "--bogus"),
        ("render",),
    ],
)
def test_usage_errors_exit_2(
    repo: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("playbookctl: usage error:")


def test_render_wrapper_and_authored(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", "restart-deployment")
    assert code == 0
    data = yaml.safe_load(out)
    assert data["metadata"]["name"] == "workflow"
    assert data["spec"]["tasks"][0]["taskSpec"]["steps"][0]["image"] == "playbook://self"
    image = f"registry.example.com/images/authored:1.0.0@{DIGEST}"
    code, out, _ = run(capsys, "render", "authored", "--image", image, "--format", "json")
    assert code == 0
    steps = [t["taskSpec"]["steps"][0]["image"] for t in json.loads(out)["spec"]["tasks"]]
    assert steps == [image, image]
    # Rendering twice gives the same bytes.
    assert (
        run(capsys, "render", "restart-deployment")[1]
        == run(capsys, "render", "restart-deployment")[1]
    )


@pytest.mark.parametrize("name", ["nope", "../playbooks", ".hidden"])
def test_render_unknown_playbook(repo: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, err = run(capsys, "render", name)
    assert (code, out) == (1, "")
    assert "no playbook named" in err
    assert "authored, restart-deployment" in err


def test_render_broken_pipeline_is_a_clear_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "playbooks" / "authored" / "pipeline.yaml").write_text("spec: [\n")
    code, out, err = run(capsys, "render", "authored")
    assert (code, out) == (1, "")
    assert "pipeline.yaml" in err
    assert "playbookctl lint" in err


def test_playbook_outside_the_repository_is_shown_as_given(
    repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = good_playbook("restart-deployment")
    files["Containerfile"] = files["Containerfile"].replace("USER 65532:65532\n", "")
    make_repo(tmp_path / "other", {"restart-deployment": dict(files)})
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(
        capsys,
        "-C",
        str(repo),
        "lint",
        "--no-external",
        "--format",
        "json",
        "other/playbooks/restart-deployment",
    )
    assert code == 1
    assert [(f["rule"], f["file"]) for f in json.loads(out)] == [
        ("playbook.containerfile-user", "other/playbooks/restart-deployment/Containerfile")
    ]


def test_version_with_build_metadata_is_refused_with_the_tag_to_write(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # publish would stop at "bad tag": the version is the image and bundle tag.
    workflow = repo / "playbooks" / "restart-deployment" / "workflow.yaml"
    workflow.write_text(edit(workflow.read_text(), 'version: "1.0.0"', 'version: "1.2.3+meta"'))
    code, out, _ = run(capsys, "lint", "playbooks/restart-deployment")
    assert code == 1
    line = "playbooks/restart-deployment/workflow.yaml:7:12: error [workflow.version] "
    (reported,) = [x for x in out.splitlines() if x.startswith(line)]
    advice = re.search(r"write '([^']+)'", reported)
    assert advice, reported
    assert advice[1] == "1.2.3", reported
    workflow.write_text(edit(workflow.read_text(), '"1.2.3+meta"', f'"{advice[1]}"'))
    assert run(capsys, "lint", "playbooks/restart-deployment")[0] == 0


def test_a_task_the_bundle_does_not_hold_is_an_error_unless_pinned(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundle holds the Pipeline only: its verify task taken from git at `main` would run
    whatever that branch holds when the run starts, under a version released once; a commit
    pins it as a digest pins an image."""
    pipeline = repo / "playbooks" / "authored" / "pipeline.yaml"
    inline = (
        "      taskSpec:\n        steps:\n          - name: verify\n"
        '            image: playbook://self\n            command: ["remediate.sh", "verify"]\n'
    )
    git_ref = (
        "      taskRef:\n        resolver: git\n        params:\n"
        "          - {name: url, value: https://example.com/tasks.git}\n"
        "          - {name: revision, value: REVISION}\n"
        "          - {name: pathInRepo, value: verify.yaml}\n"
    )
    pipeline.write_text(edit(pipeline.read_text(), inline, git_ref.replace("REVISION", "main")))
    code, out, _ = run(capsys, "lint", "--format", "json", "playbooks/authored")
    assert code == 1
    (found,) = [f for f in json.loads(out) if f["rule"] == "playbook.task-ref"]
    line = pipeline.read_text().splitlines().index("      taskRef:") + 1
    assert (found["file"], found["line"], found["severity"]) == (
        "playbooks/authored/pipeline.yaml",
        line,
        "error",
    )
    assert found["message"] == (
        "task 'verify' fetches its Task from git at revision 'main', which can move: what a "
        "released version runs would change with it; pin revision to a commit (40 hex)"
    )
    pipeline.write_text(pipeline.read_text().replace("value: main}", "value: " + "0f" * 20 + "}"))
    code, out, err = run(capsys, "lint", "--format", "json", "playbooks/authored")
    assert "playbook.task-ref" not in out
    assert code == 0, out + err


def test_playbooks_moved_into_a_subfolder_are_named_one_level_too_deep(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """playbooks/team/restart-deployment/: lint said only "playbooks/team: workflow.yaml is
    missing" (and no Containerfile), sending the author to look for a file that is there."""
    (repo / "playbooks" / "team").mkdir()
    for name in ("restart-deployment", "authored"):
        (repo / "playbooks" / name).rename(repo / "playbooks" / "team" / name)
    code, out, _ = run(capsys, "lint")
    assert code == 1
    assert out.splitlines()[:-1] == [
        "playbooks/team:1:1: error [playbook.missing-file] playbooks/team is not a playbook but "
        "holds playbook directories one level too deep: playbooks/team/authored (and 1 more); "
        "playbooks live directly under playbooks/ (move it to playbooks/authored)"
    ]
