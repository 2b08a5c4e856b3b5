"""`playbookctl pipelinerun` through the CLI: output formats, exit codes, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from playbookctl.cli import main
from tests.unit.test_pipelinerun import BUNDLE, REGISTRATION


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "registry" / "workflows").mkdir(parents=True)
    (tmp_path / "registry" / "workflows" / "scale-down.yaml").write_text(REGISTRATION)
    return tmp_path


def run(root: Path, *args: str) -> list[str]:
    return ["-C", str(root), "pipelinerun", "scale-down", *args]


def test_yaml_output(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        run(
            root, "--param", "REPLICAS=3", "--param", "MODE=fast", "--target", "shop/Deployment/web"
        )
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = yaml.safe_load(out.out)
    assert doc["kind"] == "PipelineRun"
    assert doc["spec"]["pipelineRef"]["params"][0] == {"name": "bundle", "value": BUNDLE}
    assert {p["name"]: p["value"] for p in doc["spec"]["params"]} == {
        "TARGET_RESOURCE_NAME": "web",
        "TARGET_RESOURCE_NAMESPACE": "shop",
        "REPLICAS": "3",
        "MODE": "fast",
        "TARGET_RESOURCE": "shop/Deployment/web",
    }


def test_json_output(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            run(
                root, "--param", "REPLICAS=0", "--target", "shop/Deployment/web", "--format", "json"
            )
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["metadata"] == {"generateName": "scale-down-", "namespace": "kubernaut-workflows"}


def test_bad_values_exit_1_listing_each(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        run(
            root,
            "--param",
            "REPLICAS=many",
            "--param",
            "DRY_RUN=maybe",
            "--target",
            "shop/Deployment/web",
        )
    )
    out = capsys.readouterr()
    assert code == 1
    assert out.out == ""
    assert "2 bad value(s)" in out.err
    assert "REPLICAS: 'many' is not an integer" in out.err
    assert "DRY_RUN: 'maybe' is not a boolean" in out.err
    assert "Traceback" not in out.err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--param", "REPLICAS"], 2, "expected KEY=VALUE"),
        (["--param", "REPLICAS=1", "--target", "web"], 2, "expected NAMESPACE/KIND/NAME"),
        (["--param", "REPLICAS=1", "--format", "xml"], 2, "invalid choice"),
    ],
)
def test_usage_errors(
    root: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert main(run(root, *args)) == code
    assert message in capsys.readouterr().err


def test_unregistered(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(root), "pipelinerun", "nope", "--target", "Node/n"]) == 1
    assert "nope is not registered" in capsys.readouterr().err
