"""`playbookctl lint`: a file that does not load is the first thing said about its playbook.

A reader reads the first lines. The playbook here has a workflow.yaml that does not parse, plus
real problems in files that sort before it (an unpinned base image in the Containerfile, a
Tekton substitution in remediate.sh): through the command line, in every format, the parse
error with its file and line comes first, the other findings of that playbook after it, nothing
derived from the unread workflow (no script.variable), and the exit status stays 1.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from playbookctl import cli
from tests.support.lintrepo import DIGEST, edit, good_playbook, make_repo

BROKEN = "playbooks/restart-deployment"
SYNTAX = f"{BROKEN}/workflow.yaml"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    files = good_playbook()
    files["workflow.yaml"] = edit(files["workflow.yaml"], "  actionType: ", "  actionType: [")
    files["Containerfile"] = edit(files["Containerfile"], f"@{DIGEST}", "")
    files["remediate.sh"] += 'echo "$(params.TARGET_RESOURCE_NAME)"\n'
    root = make_repo(
        tmp_path / "repo", {"restart-deployment": files, "zz-clean": good_playbook("zz-clean")}
    )
    monkeypatch.chdir(root)
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["lint", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


@pytest.mark.parametrize("paths", [[], [BROKEN]], ids=["repository", "playbook"])
def test_the_parse_error_is_the_first_line(
    repo: Path, capsys: pytest.CaptureFixture[str], paths: list[str]
) -> None:
    code, out = run(capsys, *paths)
    lines = out.splitlines()
    assert code == 1
    assert re.fullmatch(rf"{re.escape(SYNTAX)}:12:9: error \[load\.syntax\] .+", lines[0]), out
    rules = re.findall(r"^\S+: (?:error|warning|info) \[([^\]]+)\]", out, re.MULTILINE)
    # The other files' own problems are still reported, after it; nothing about parameters.
    assert "playbook.base-image-pinned" in rules[1:]
    assert "script.tekton-substitution" in rules[1:]
    assert "script.variable" not in rules
    assert re.fullmatch(r"\d+ error\(s\), \d+ warning\(s\)(, \d+ info)?", lines[-1]), out


def test_every_format_puts_it_first(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--format", "json", BROKEN)
    found = json.loads(out)
    assert code == 1
    assert (found[0]["rule"], found[0]["file"], found[0]["line"]) == ("load.syntax", SYNTAX, 12)
    assert len(found) > 1  # the other findings follow it

    code, out = run(capsys, "--format", "github", BROKEN)
    assert code == 1
    assert out.startswith(f"::error file={SYNTAX},line=12,col=9,"), out

    code, out = run(capsys, "--format", "sarif", BROKEN)
    results = json.loads(out)["runs"][0]["results"]
    assert code == 1
    first = results[0]
    assert first["ruleId"] == "load.syntax"
    location = first["locations"][0]["physicalLocation"]
    assert (location["artifactLocation"]["uri"], location["region"]["startLine"]) == (SYNTAX, 12)
