"""`playbookctl rules`, lint configuration, suppression comments and YAML 1.1 findings, through
the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playbookctl import cli
from tests.support.lintrepo import PIPELINE, PYPROJECT, edit, good_playbook, make_repo

Run = tuple[int, str, str]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def lint(capsys: pytest.CaptureFixture[str], root: Path) -> tuple[int, list[dict[str, object]]]:
    code, out, err = run(capsys, "-C", str(root), "lint", "--no-external", "--format", "json")
    assert err == "", err
    return code, json.loads(out)


def rules_of(found: list[dict[str, object]]) -> list[tuple[object, object, object, object]]:
    return [(f["rule"], f["severity"], f["file"], f["line"]) for f in found]


@pytest.fixture
def root_user(tmp_path: Path) -> Path:
    files = dict(good_playbook())
    files["Containerfile"] = edit(files["Containerfile"], "USER 65532:65532", "USER root")
    return make_repo(tmp_path / "repo", {"restart-deployment": files})


CF = "playbooks/restart-deployment/Containerfile"


# --- rules ------------------------------------------------------------------------------------


def test_rules_lists_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) > 120
    assert any(line.startswith("playbook.script-injection ") for line in lines)
    assert any(line.startswith("tekton.variable-prefix ") for line in lines)


def test_rules_explains_one_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "playbook.script-injection")
    assert code == 0
    assert out.startswith("playbook.script-injection  (error)")
    assert "Bad:" in out
    assert "Good:" in out
    assert "$(params.NAME)" in out


def test_rules_links_an_external_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "hadolint.DL3018")
    assert code == 0
    assert "https://github.com/hadolint/hadolint/wiki/DL3018" in out


def test_rules_unknown_id_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "rules", "playbook.non-rot")
    assert code == 2
    assert "did you mean playbook.non-root" in err


# --- suppression comments -----------------------------------------------------------------------


def test_the_finding_without_suppression(
    capsys: pytest.CaptureFixture[str], root_user: Path
) -> None:
    code, found = lint(capsys, root_user)
    assert code == 1
    assert ("playbook.containerfile-user", "error", CF, 3) in rules_of(found)


def _containerfile(root: Path, text: str) -> None:
    path = root / CF
    path.write_text(text.replace("USER 65532:65532", "USER root"))


def test_suppression_on_the_line_above(capsys: pytest.CaptureFixture[str], root_user: Path) -> None:
    path = root_user / CF
    path.write_text(
        edit(
            path.read_text(),
            "USER root\n",
            "# playbookctl: disable=playbook.containerfile-user root is needed to bind port 80\n"
            "USER root\n",
        )
    )
    assert lint(capsys, root_user) == (0, [])


def test_suppression_on_the_same_line(capsys: pytest.CaptureFixture[str], root_user: Path) -> None:
    path = root_user / CF
    path.write_text(
        edit(
            path.read_text(),
            "USER root\n",
            "USER root  # playbookctl: disable=playbook.containerfile-user binds port 80\n",
        )
    )
    assert lint(capsys, root_user) == (0, [])


def test_suppression_two_lines_above_does_not_reach(
    capsys: pytest.CaptureFixture[str], root_user: Path
) -> None:
    path = root_user / CF
    path.write_text(
        edit(
            path.read_text(),
            "COPY",
            "# playbookctl: disable=playbook.containerfile-user too far away\nCOPY",
        )
    )
    code, found = lint(capsys, root_user)
    assert code == 1
    assert [r[0] for r in rules_of(found)] == ["lint.suppression", "playbook.containerfile-user"]
    assert "unused suppression" in str(found[0]["message"])


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("# playbookctl: disable=playbook.non-rot typo", "unknown rule 'playbook.non-rot'"),
        ("# playbookctl: disable=playbook.param-unused stale", "unused suppression"),
        ("# playbookctl: disable=", "names no rule"),
    ],
)
def test_a_bad_suppression_is_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, comment: str, message: str
) -> None:
    files = dict(good_playbook())
    files["Containerfile"] = comment + "\n" + files["Containerfile"]
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    code, found = lint(capsys, root)
    assert code == 0
    assert rules_of(found) == [("lint.suppression", "warning", CF, 1)]
    assert message in str(found[0]["message"])


def test_a_suppression_without_reason_is_a_warning(
    capsys: pytest.CaptureFixture[str], root_user: Path
) -> None:
    path = root_user / CF
    path.write_text(
        edit(
            path.read_text(),
            "USER root\n",
            "USER root # playbookctl: disable=playbook.containerfile-user\n",
        )
    )
    code, found = lint(capsys, root_user)
    assert code == 0
    assert rules_of(found) == [("lint.suppression", "warning", CF, 3)]
    assert "without a reason" in str(found[0]["message"])


def test_a_rule_the_cluster_enforces_cannot_be_suppressed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    files = dict(good_playbook(pipeline=True))
    files["pipeline.yaml"] = edit(
        PIPELINE,
        "      runAfter: [act]\n",
        "      runAfter: [act]\n"
        "      # playbookctl: disable=tekton.unknown-field I know better\n"
        "      retrys: 2\n",
    )
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    code, found = lint(capsys, root)
    assert code == 1
    got = rules_of(found)
    assert (
        "tekton.unknown-field",
        "error",
        "playbooks/restart-deployment/pipeline.yaml",
        46,
    ) in got
    assert any(
        f["rule"] == "lint.suppression" and "cannot be suppressed" in str(f["message"])
        for f in found
    )


# --- [tool.playbookctl.lint] ---------------------------------------------------------------------


def _configure(root: Path, lint_table: str) -> None:
    (root / "pyproject.toml").write_text(PYPROJECT + "\n[tool.playbookctl.lint]\n" + lint_table)


def test_config_disables_a_rule(capsys: pytest.CaptureFixture[str], root_user: Path) -> None:
    _configure(root_user, 'disable = ["playbook.containerfile-user"]\n')
    assert lint(capsys, root_user) == (0, [])


def test_config_changes_a_severity(capsys: pytest.CaptureFixture[str], root_user: Path) -> None:
    _configure(root_user, 'severity = { "playbook.containerfile-user" = "warning" }\n')
    code, found = lint(capsys, root_user)
    assert code == 0
    assert rules_of(found) == [("playbook.containerfile-user", "warning", CF, 3)]


def test_env_overrides_the_config(
    capsys: pytest.CaptureFixture[str], root_user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(root_user, 'severity = { "playbook.containerfile-user" = "warning" }\n')
    monkeypatch.setenv("PLAYBOOKCTL_LINT_SEVERITY", "playbook.containerfile-user=error")
    assert lint(capsys, root_user)[0] == 1
    monkeypatch.setenv("PLAYBOOKCTL_LINT_DISABLE", "playbook.containerfile-user")
    assert lint(capsys, root_user) == (0, [])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('disable = ["playbook.non-rot"]\n', "unknown rule 'playbook.non-rot'"),
        ('disable = ["tekton.unknown-field"]\n', "enforced by the cluster"),
        ('severity = { "tekton.cycle" = "warning" }\n', "enforced by the cluster"),
        ('severity = { "playbook.non-root" = "info" }\n', "must be 'error' or 'warning'"),
        ('disabled = ["playbook.non-root"]\n', "unknown key(s) disabled"),
    ],
)
def test_bad_lint_configuration_is_one_line(
    capsys: pytest.CaptureFixture[str], root_user: Path, table: str, message: str
) -> None:
    _configure(root_user, table)
    code, out, err = run(capsys, "-C", str(root_user), "lint", "--no-external")
    assert (code, out) == (1, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1


# --- YAML as the cluster reads it ----------------------------------------------------------------


def test_yaml_11_scalars_are_found(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    files = dict(good_playbook(pipeline=True))
    files["pipeline.yaml"] = edits_pipeline = edit(
        PIPELINE, '      default: "600"\n', "      default: 1e3\n"
    )
    files["pipeline.yaml"] = edit(
        edits_pipeline,
        "        - name: NAME\n          value:",
        "        - name: y\n          value:",
    )
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    code, found = lint(capsys, root)
    assert code == 1
    pipeline = "playbooks/restart-deployment/pipeline.yaml"
    yaml11 = [
        (f["severity"], f["line"], f["message"]) for f in found if f["rule"] == "load.yaml-1.1"
    ]
    assert [(s, line) for s, line, _ in yaml11] == [("warning", 11), ("error", 19)]
    assert "the number 1000" in str(yaml11[0][2])
    assert 'quote it: "1e3"' in str(yaml11[0][2])
    assert "the boolean true" in str(yaml11[1][2])
    assert 'quote it: "y"' in str(yaml11[1][2])
    assert ("tekton.field-type", "error", pipeline, 19) in rules_of(found)


def test_github_annotations_link_the_rule(
    capsys: pytest.CaptureFixture[str], root_user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/playbooks")
    monkeypatch.setenv("GITHUB_SHA", "abc123")
    code, out, _ = run(capsys, "-C", str(root_user), "lint", "--no-external", "--format", "github")
    assert code == 1
    assert (
        "[playbook.containerfile-user: https://github.com/acme/playbooks/blob/abc123/RULES.md"
        "#playbookcontainerfile-user]" in out
    )
