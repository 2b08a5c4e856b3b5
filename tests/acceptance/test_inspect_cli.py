"""`playbookctl inspect REF` through the CLI, against a real registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from playbookctl.bundle import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_HASH,
    ANNOTATION_VERSION,
    Bundle,
    build_bundle,
    push_bundle,
)
from playbookctl.cli import main
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl_dev.registry import LocalRegistry, free_port

pytestmark = pytest.mark.integration

ANNOTATIONS = {
    ANNOTATION_SOURCE: "https://github.com/example/playbooks",
    ANNOTATION_REVISION: "a" * 40,
    ANNOTATION_VERSION: "2.1.0",
    ANNOTATION_SOURCE_HASH: "sha256:" + "f" * 64,
}


def _obj(kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"steps": [{"name": "s", "image": "x"}]} if kind == "Task" else {"tasks": []},
    }


def _push(reg: LocalRegistry, tmp_path: Path, repo: str, objects: list[dict[str, Any]]) -> Bundle:
    bundle = build_bundle(objects, ANNOTATIONS)
    with RegistryClient(Config(root=tmp_path, registry=reg.host)) as c:
        push_bundle(c, f"{reg.host}/{repo}:2.1.0", bundle)
    return bundle


def _run(
    args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> tuple[int, str, str]:
    code = main(["-C", str(tmp_path), "inspect", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "world", ["https", pytest.param("plain", marks=pytest.mark.plain_http)]
)  # the demo path on plain HTTP too (README "The test world")
def test_human_output(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str], world: str
) -> None:
    bundle = _push(
        registry, tmp_path, "cli/good", [_obj("Pipeline", "workflow"), _obj("Task", "helper")]
    )
    code, out, _ = _run([f"{registry.host}/cli/good:2.1.0"], capsys, tmp_path)
    assert code == 0
    assert f"digest:      {bundle.digest}" in out
    for key, value in ANNOTATIONS.items():
        assert f"    {key}: {value}\n" in out
    for layer in bundle.layers:
        kind = layer.kind.lower()
        assert f"{kind}/{layer.name}  apiVersion v1  layer {layer.descriptor.digest}" in out
    assert out.endswith("bundle contract: ok\n")


def test_json_output_by_digest(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _push(registry, tmp_path, "cli/json", [_obj("Pipeline", "workflow")])
    ref = f"{registry.host}/cli/json@{bundle.digest}"
    code, out, _ = _run([ref, "--format", "json"], capsys, tmp_path)
    assert code == 0
    doc = json.loads(out)
    assert doc == {
        "ref": ref,
        "digest": bundle.digest,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",  # the artifact layout
        "annotations": ANNOTATIONS,
        "images": [],  # its Pipeline runs no digest-pinned image
        "objects": [
            {
                "kind": "pipeline",
                "name": "workflow",
                "apiVersion": "v1",
                "layerDigest": bundle.layers[0].descriptor.digest,
            }
        ],
        "findings": [],
        "ok": True,
    }


@pytest.mark.parametrize(
    ("setup", "ref_suffix", "expected_out"),
    [
        ("no-workflow", ":2.1.0", "[bundle.no-workflow]"),
        ("nothing", ":2.1.0", "[bundle.missing]"),
        ("nothing", "@sha256:" + "0" * 64, "[bundle.missing]"),
    ],
)
def test_contract_violations_exit_1(
    *,
    registry: LocalRegistry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    ref_suffix: str,
    expected_out: str,
) -> None:
    repo = f"cli/{setup}-{len(ref_suffix)}"
    if setup == "no-workflow":
        _push(registry, tmp_path, repo, [_obj("Task", "helper")])
    code, out, err = _run([f"{registry.host}/{repo}{ref_suffix}"], capsys, tmp_path)
    assert code == 1
    assert expected_out in out
    assert "bundle contract: VIOLATED" in out
    assert err == ""


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("not-a-ref", "invalid reference 'not-a-ref'"),
        ("UNREACHABLE/cli/x:1", "failed after"),
        # A URL's scheme read "HTTP:" as the registry host and complained of the repository
        # name: the scheme itself is named, and what to write instead.
        (
            "HTTP://x/y",
            "invalid reference 'HTTP://x/y': a reference has no URL scheme; drop 'HTTP://' and "
            "write 'x/y' (<registry>/<repository>[:tag][@digest])",
        ),
        (
            "https://ghcr.io/org/bundles/x:1.0.0",
            "drop 'https://' and write 'ghcr.io/org/bundles/x:1.0.0'",
        ),
        ("oci://localhost:5000/x@sha256:" + "0" * 64, "drop 'oci://' and write 'localhost:5000/x"),
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str, message: str
) -> None:
    ref = ref.replace("UNREACHABLE", f"127.0.0.1:{free_port()}")
    code, out, err = _run([ref], capsys, tmp_path)
    assert code == 1
    assert out == ""
    assert err.startswith("playbookctl: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_login_registry_with_env_credentials(
    auth_registry: LocalRegistry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", auth_registry.username)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", auth_registry.password)
    _push(auth_registry, tmp_path, "cli/auth", [_obj("Pipeline", "workflow")])
    code, out, err = _run([f"{auth_registry.host}/cli/auth:2.1.0"], capsys, tmp_path)
    assert code == 0
    assert auth_registry.password not in out + err
    monkeypatch.delenv("PLAYBOOKCTL_REGISTRY_PASSWORD")
    code, out, err = _run([f"{auth_registry.host}/cli/auth:2.1.0"], capsys, tmp_path)
    assert code == 1
    assert "authentication required" in err
