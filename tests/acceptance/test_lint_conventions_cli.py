"""The conventions other linters set, through the command line: SARIF 2.1.0 (validated against
the OASIS schema vendored in tests/references/sarif), --select/--ignore/--statistics, absolute
rule links, and suggestions for a bare external code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from playbookctl import cli
from tests.support.gitrepos import MakeRepo
from tests.support.lintrepo import PIPELINE, edit, good_playbook, make_repo

Run = tuple[int, str, str]
CF = "playbooks/restart-deployment/Containerfile"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def two_findings(tmp_path: Path) -> Path:
    """An error (USER root) and a YAML 1.1 scalar (a warning), in a plain directory."""
    files = dict(good_playbook(pipeline=True))
    files["Containerfile"] = edit(files["Containerfile"], "USER 65532:65532", "USER root")
    files["pipeline.yaml"] = edit(PIPELINE, '      default: "600"\n', "      default: 1e3\n")
    return make_repo(tmp_path / "repo", {"restart-deployment": files})


@pytest.fixture(autouse=True)
def _outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_REPOSITORY", "GITHUB_SHA", "GITHUB_SERVER_URL", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)


def _schema(repo_root: Path) -> dict[str, object]:
    path = repo_root / "tests/references/sarif/sarif-schema-2.1.0.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_sarif_is_valid_sarif_2_1_0(
    capsys: pytest.CaptureFixture[str], two_findings: Path, repo_root: Path
) -> None:
    code, out, _ = run(
        capsys, "-C", str(two_findings), "lint", "--no-external", "--format", "sarif"
    )
    assert code == 1
    log = json.loads(out)
    jsonschema.Draft4Validator(_schema(repo_root)).validate(log)
    (run_,) = log["runs"]
    assert run_["tool"]["driver"]["name"] == "playbookctl"
    results = run_["results"]
    user = [r for r in results if r["ruleId"] == "playbook.containerfile-user"]
    assert len(user) == 1
    assert user[0]["level"] == "error"
    where = user[0]["locations"][0]["physicalLocation"]
    assert where["artifactLocation"] == {"uri": CF, "uriBaseId": "%SRCROOT%"}
    assert where["region"]["startLine"] == 3
    rules = run_["tool"]["driver"]["rules"]
    assert rules[user[0]["ruleIndex"]]["id"] == "playbook.containerfile-user"
    # Not a clone: the link is the file on this machine, absolute.
    help_uri = rules[user[0]["ruleIndex"]]["helpUri"]
    assert help_uri == (two_findings / "RULES.md").resolve().as_uri() + (
        "#playbookcontainerfile-user"
    )


def test_sarif_of_a_clean_run_is_valid_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, repo_root: Path
) -> None:
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(good_playbook())})
    code, out, _ = run(capsys, "-C", str(root), "lint", "--no-external", "--format", "sarif")
    log = json.loads(out)
    jsonschema.Draft4Validator(_schema(repo_root)).validate(log)
    assert code == (1 if any(r["level"] == "error" for r in log["runs"][0]["results"]) else 0)


def test_annotation_links_follow_the_origin_remote_at_head(
    capsys: pytest.CaptureFixture[str], two_findings: Path
) -> None:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=two_findings, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    git("init", "--quiet")
    git("add", "--all")
    git("commit", "--quiet", "-m", "x")
    git("remote", "add", "origin", "git@github.com:acme/playbooks.git")
    head = git("rev-parse", "HEAD")
    code, out, _ = run(
        capsys, "-C", str(two_findings), "lint", "--no-external", "--format", "github"
    )
    assert code == 1
    assert (
        f"[playbook.containerfile-user: https://github.com/acme/playbooks/blob/{head}/RULES.md"
        "#playbookcontainerfile-user]" in out
    )
    assert "RULES.md#" not in out.replace("/RULES.md#", "")  # never a relative link


def test_select_and_ignore(capsys: pytest.CaptureFixture[str], two_findings: Path) -> None:
    root = str(two_findings)
    code, out, _ = run(capsys, "-C", root, "lint", "--no-external", "--format", "json")
    every = {f["rule"] for f in json.loads(out)}
    assert "playbook.containerfile-user" in every
    assert len(every) > 1, every

    code, out, _ = run(
        capsys, "-C", root, "lint", "--no-external", "--format", "json",
        "--select", "playbook.containerfile-user",
    )  # fmt: skip
    assert code == 1
    assert {f["rule"] for f in json.loads(out)} == {"playbook.containerfile-user"}

    code, out, _ = run(
        capsys, "-C", root, "lint", "--no-external", "--format", "json",
        "--ignore", "playbook.containerfile-user",
    )  # fmt: skip
    assert {f["rule"] for f in json.loads(out)} == every - {"playbook.containerfile-user"}

    code, out, _ = run(
        capsys, "-C", root, "lint", "--no-external", "--format", "json", "--select", "playbook"
    )
    assert {f["rule"] for f in json.loads(out)} == {r for r in every if r.startswith("playbook.")}


def test_select_of_a_bare_code_suggests_its_family(
    capsys: pytest.CaptureFixture[str], two_findings: Path
) -> None:
    code, _, err = run(capsys, "-C", str(two_findings), "lint", "--select", "SC2086")
    assert code == 2
    assert "did you mean shellcheck.SC2086?" in err


def test_ignore_refuses_a_rule_the_cluster_enforces(
    capsys: pytest.CaptureFixture[str], two_findings: Path
) -> None:
    code, _, err = run(
        capsys, "-C", str(two_findings), "lint", "--ignore", "tekton.variable-prefix"
    )
    assert code == 2
    assert "enforced by the cluster" in err


def test_statistics(capsys: pytest.CaptureFixture[str], two_findings: Path) -> None:
    root = str(two_findings)
    _, out, _ = run(capsys, "-C", root, "lint", "--no-external", "--format", "json")
    found = json.loads(out)
    code, out, _ = run(capsys, "-C", root, "lint", "--no-external", "--statistics")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == len({f["rule"] for f in found})
    counts = {line.split()[1]: int(line.split()[0]) for line in lines}
    for rule, count in counts.items():
        assert count == sum(1 for f in found if f["rule"] == rule)
    assert any("playbook.containerfile-user" in line and "error" in line for line in lines)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("SC2086", "shellcheck.SC2086"),
        ("dl3008", "hadolint.DL3008"),
        ("non-root", "playbook.non-root"),
    ],
)
def test_rules_suggests_the_full_id(
    capsys: pytest.CaptureFixture[str], typed: str, meant: str
) -> None:
    code, _, err = run(capsys, "rules", typed)
    assert code == 2
    assert f"did you mean {meant}?" in err


# --- messages that name the right fix and the right place ---------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "wanted"),
    [
        ("PLAYBOOKCTL_LINT_DISABLE", "playbook.non-rot", "unknown rule 'playbook.non-rot'"),
        ("PLAYBOOKCTL_LINT_SEVERITY", "playbook.non-root=info", "must be 'error' or 'warning'"),
    ],
)
def test_a_bad_rule_in_the_environment_names_the_variable(
    capsys: pytest.CaptureFixture[str],
    two_findings: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    wanted: str,
) -> None:
    monkeypatch.setenv(variable, value)
    code, out, err = run(capsys, "-C", str(two_findings), "lint", "--no-external")
    assert (code, out) == (1, "")
    assert f"playbookctl: error: {variable}: " in err
    assert wanted in err
    assert "pyproject.toml" not in err
    assert "[tool.playbookctl.lint]" not in err


def test_a_bad_rule_in_pyproject_names_pyproject(
    capsys: pytest.CaptureFixture[str], two_findings: Path
) -> None:
    path = two_findings / "pyproject.toml"
    path.write_text(path.read_text() + '\n[tool.playbookctl.lint]\ndisable = ["playbook.x"]\n')
    code, _, err = run(capsys, "-C", str(two_findings), "lint", "--no-external")
    assert code == 1
    assert "pyproject.toml: [tool.playbookctl.lint]: disable: unknown rule 'playbook.x'" in err


@pytest.mark.parametrize(
    ("written", "read"), [("yes", "true"), ("no", "false"), ("on", "true"), ("Off", "false")]
)
def test_an_enum_of_yaml_booleans_is_told_to_quote_what_was_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, written: str, read: str
) -> None:
    files = dict(good_playbook())
    files["workflow.yaml"] = files["workflow.yaml"].replace(
        "  parameters:\n",
        "  parameters:\n    - name: DRY_RUN\n      type: string\n      required: true\n"
        f"      description: dry run\n      enum: [{written}, maybe]\n",
        1,
    )
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    code, out, _ = run(capsys, "-C", str(root), "lint", "--no-external", "--format", "json")
    assert code == 1
    enum = [f for f in json.loads(out) if f["rule"] == "workflow.parameter-enum"]
    assert len(enum) == 1, enum
    message = enum[0]["message"]
    assert f'YAML read {written} as the boolean {read}; quote it as written ("{written}")' in (
        message
    )
    assert f'"{read}"' not in message


def test_a_tekton_string_field_read_as_a_boolean_says_quote_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: p\nspec:\n"
        "  params:\n    - name: on\n      type: string\n  tasks:\n    - name: t\n"
        "      taskSpec:\n        steps:\n          - name: s\n            image: busybox\n"
        "            script: echo hi\n"
    )
    code, out, _ = run(capsys, "lint", "--no-external", "--format", "json", str(path))
    assert code == 1
    (found,) = [f for f in json.loads(out) if f["rule"] == "tekton.field-type"]
    assert found["line"] == 7
    assert "cannot decode bool into spec.params[0].name of type string" in found["message"]
    assert 'quote it as written ("on")' in found["message"]


# --- lint --fix --------------------------------------------------------------------------------


def test_fix_quotes_yaml_1_1_values_as_written_and_nothing_else(
    capsys: pytest.CaptureFixture[str], two_findings: Path
) -> None:
    root = str(two_findings)
    wf = two_findings / "playbooks/restart-deployment/workflow.yaml"
    wf.write_text(
        wf.read_text().replace(
            "  parameters:\n",
            "  parameters:\n    - name: DRY_RUN\n      type: string\n      required: true\n"
            "      description: dry run  # a comment stays\n      enum: [yes, No, maybe]\n",
            1,
        )
    )
    pipeline = two_findings / "playbooks/restart-deployment/pipeline.yaml"
    before = {p: p.read_text() for p in (wf, pipeline)}
    code, _, err = run(capsys, "-C", root, "lint", "--no-external", "--fix")
    assert code == 1  # USER root is not mechanical: still reported
    assert "workflow.yaml: quoted 2 value(s) as written" in err
    assert "pipeline.yaml: quoted 1 value(s) as written" in err
    assert wf.read_text() == before[wf].replace("[yes, No, maybe]", '["yes", "No", maybe]')
    assert pipeline.read_text() == before[pipeline].replace("default: 1e3", 'default: "1e3"')
    _, out, _ = run(capsys, "-C", root, "lint", "--no-external", "--format", "json")
    rules = {f["rule"] for f in json.loads(out)}
    assert "playbook.containerfile-user" in rules
    assert not rules & {"load.yaml-1.1", "workflow.parameter-enum"}, rules
    # Nothing left to fix: a second --fix changes nothing.
    after = {p: p.read_bytes() for p in (wf, pipeline)}
    run(capsys, "-C", root, "lint", "--no-external", "--fix")
    assert {p: p.read_bytes() for p in (wf, pipeline)} == after


def test_fix_writes_a_typed_parameter_value_as_the_cluster_reads_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`default: 1e3` of a float parameter is the number 1000 to the cluster (right) and the
    string '1e3' to PyYAML: quoting it, the fix for a string field, would make it a string the
    schema refuses (workflow.default). Lint says to write what the cluster reads and --fix
    writes it; the string parameter's `1e3` is still quoted."""
    wf_text = dict(good_playbook())["workflow.yaml"]
    wf_text = wf_text.replace(
        "  parameters:\n",
        "  parameters:\n"
        "    - name: RATIO\n      type: float\n      required: false\n"
        "      description: r\n      minimum: 1e1\n      default: 1e3\n"
        "    - name: FORCE\n      type: boolean\n      required: false\n"
        "      description: f\n      default: n\n"
        "    - name: LABEL\n      type: string\n      required: false\n"
        "      description: l\n      default: 1e3\n",
        1,
    )
    files = dict(good_playbook())
    files["workflow.yaml"] = wf_text
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    wf = root / "playbooks/restart-deployment/workflow.yaml"
    before = wf.read_text()
    code, out, _ = run(capsys, "-C", str(root), "lint", "--no-external", "--format", "json")
    found = {
        (f["line"], f["severity"]): f["message"]
        for f in json.loads(out)
        if f["rule"] == "load.yaml-1.1"
    }
    lines = before.splitlines()
    minimum = lines.index("      minimum: 1e1") + 1
    ratio, label = [i + 1 for i, line in enumerate(lines) if line == "      default: 1e3"]
    force = lines.index("      default: n") + 1
    # Warnings where the cluster's reading is valid; the string parameter's number is an error.
    assert code == 1
    assert set(found) == {(n, "warning") for n in (minimum, ratio, force)} | {(label, "error")}
    assert found[(minimum, "warning")].endswith("not a string: write it as 10")
    assert found[(ratio, "warning")].endswith("not a string: write it as 1000")
    assert found[(force, "warning")].endswith("not a string: write it as false")
    assert 'quote it: "1e3"' in found[(label, "error")]
    code, out, err = run(capsys, "-C", str(root), "lint", "--no-external", "--fix")
    assert "workflow.yaml: wrote 3 value(s) as the cluster reads them" in err
    assert "workflow.yaml: quoted 1 value(s) as written" in err
    expected = (
        before.replace("minimum: 1e1", "minimum: 10")
        .replace("      default: 1e3\n    - name: FORCE", "      default: 1000\n    - name: FORCE")
        .replace("default: n\n", "default: false\n")
        .replace(
            "      description: l\n      default: 1e3", '      description: l\n      default: "1e3"'
        )
    )
    assert wf.read_text() == expected
    code, out, err = run(capsys, "-C", str(root), "lint", "--no-external", "--format", "json")
    left = [f for f in json.loads(out) if f["rule"] in ("load.yaml-1.1", "workflow.default")]
    assert (code, left) == (0, []), err


def test_fix_bumps_a_version_whose_content_changed(
    capsys: pytest.CaptureFixture[str], playbook_repo_factory: MakeRepo
) -> None:
    from playbookctl.config import load_config
    from playbookctl.register import register
    from tests.acceptance.test_lint_reports_refusals_first import result_for

    repo = playbook_repo_factory({"alpha": "1.0.0"})
    config = load_config(repo.path)
    register(config, [result_for(config, "alpha")])
    repo.commit_all("release alpha 1.0.0")
    script = repo.path / "playbooks/alpha/remediate.sh"
    script.write_text(script.read_text() + "echo changed\n")
    wf = repo.path / "playbooks/alpha/workflow.yaml"
    before = wf.read_text()

    _, out, _ = run(capsys, "-C", str(repo.path), "lint", "--no-external", "--format", "json")
    assert "playbook.version-bump" in {f["rule"] for f in json.loads(out)}
    _, out, err = run(
        capsys, "-C", str(repo.path), "lint", "--no-external", "--format", "json", "--fix"
    )
    assert "lint --fix: bumped alpha 1.0.0 -> 1.0.1" in err
    assert "playbook.version-bump" not in {f["rule"] for f in json.loads(out)}
    assert wf.read_text() == before.replace("1.0.0", "1.0.1", 1)  # only those bytes
