"""verify and pipelinerun over what a real release produced (Docker engine, registry, git)."""

from __future__ import annotations

import pytest
import yaml

from playbookctl.config import Config, load_config
from playbookctl.findings import has_errors
from playbookctl.oci import RegistryClient
from playbookctl.pipelinerun import pipelinerun
from playbookctl.release import ReleaseOptions, release
from playbookctl.verify import verify
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import TEST_BASE_IMAGE, MakeRepo

pytestmark = pytest.mark.integration


def test_release_output_verifies(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    docker_engine: str,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    repo = playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})
    config: Config = load_config(repo.path).with_overrides(
        registry=registry.host,
        image_repo="verify-release/images",
        bundle_repo="verify-release/bundles",
        base_image_overrides={TEST_BASE_IMAGE: base_image},
        registry_timeout=5.0,
        registry_retries=2,
    )
    assert release(config, ReleaseOptions()).pushed
    with RegistryClient(config) as client:
        report = verify(config, client)
    assert not has_errors(report.findings), report.findings
    assert [r.name for r in report.registrations] == ["alpha", "beta"]
    assert report.bundles_checked == 2
    assert report.images_checked >= 2

    # the PipelineRun names the registered bundle and passes every required parameter
    registered = yaml.safe_load_all((repo.path / "registry/workflows/alpha.yaml").read_text())
    workflow = next(d for d in registered if d and d["kind"] == "RemediationWorkflow")
    required = [p for p in workflow["spec"]["parameters"] if p["required"]]
    values = {p["name"]: "1" if p["type"] in ("integer", "float") else "x" for p in required}
    values = {k: v for k, v in values.items() if not k.startswith("TARGET_RESOURCE_")}
    run = pipelinerun(config, "alpha", values, "shop/Deployment/web")
    ref = run["spec"]["pipelineRef"]["params"][0]["value"]
    assert ref == workflow["spec"]["execution"]["bundle"]

    # a registration pinned to a digest the registry does not hold is caught
    path = repo.path / "registry/workflows/beta.yaml"
    text = path.read_text()
    beta = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "RemediationWorkflow")
    bundle = beta["spec"]["execution"]["bundle"]
    path.write_text(text.replace(bundle, bundle.rpartition(":")[0] + ":" + "0" * 64))
    with RegistryClient(config) as client:
        found = verify(config, client).findings
    assert [(f.file, f.rule) for f in found if f.severity.value == "error"] == [
        ("registry/workflows/beta.yaml", "bundle.missing")
    ]
