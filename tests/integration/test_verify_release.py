"""verify and pipelinerun over what a real release produced (Docker engine, registry, git)."""

from __future__ import annotations

import uuid

import pytest
import yaml

from playbookctl.bundle import build_bundle, push_bundle, read_bundle
from playbookctl.cli import main
from playbookctl.config import Config, load_config
from playbookctl.findings import has_errors
from playbookctl.oci import RegistryClient
from playbookctl.pipelinerun import pipelinerun
from playbookctl.release import ReleaseOptions, release
from playbookctl.verify import verify
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy
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


def verify_args(config: Config) -> list[str]:
    """`playbookctl verify` as a user of that repository runs it (its registry and repos)."""
    return [
        "-C", str(config.root), "verify", "--registry", config.registry,
        "--image-repo", config.image_repo, "--bundle-repo", config.bundle_repo,
    ]  # fmt: skip


@pytest.fixture
def released(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    docker_engine: str,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Config:
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    config: Config = load_config(repo.path).with_overrides(
        registry=registry.host,
        image_repo=f"verify-tamper-{uuid.uuid4().hex[:8]}/images",
        bundle_repo=f"verify-tamper-{uuid.uuid4().hex[:8]}/bundles",
        base_image_overrides={TEST_BASE_IMAGE: base_image},
        registry_timeout=5.0,
        registry_retries=2,
    )
    assert release(config, ReleaseOptions()).pushed
    return config


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("priority: P1", "priority: P0", "spec.labels.priority is 'P0', the playbook says 'P1'"),
        ("serviceAccountName: alpha-runner", "serviceAccountName: root",
         "spec.execution.serviceAccountName is 'root'"),
        ("  - get\n  - patch\n", "  - get\n  - patch\n  - delete\n", "Role kubernaut-workflows/"),
    ],
    ids=["label", "service-account", "rbac"],
)  # fmt: skip
def test_a_hand_edit_is_an_error_naming_the_field(
    released: Config, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str
) -> None:
    path = released.root / "registry" / "workflows" / "alpha.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    assert main(["-C", str(released.root), "verify", "--offline"]) == 1
    out = capsys.readouterr().out
    line = text[: text.index(old)].count("\n") + 1
    assert f"registry/workflows/alpha.yaml:{line}:" in out, out
    assert "[verify.hand-edit]" in out
    assert field in out


def _tampered(config: Config, client: RegistryClient, ref: str) -> str:
    """Push, under the registered tag, a bundle whose Pipeline runs privileged but whose
    annotations claim the same source: what a rewritten tag looks like."""
    rb = read_bundle(client, ref)
    pipeline = rb.workflow()
    assert pipeline is not None
    steps = pipeline["spec"]["tasks"][0]["taskSpec"]["steps"]
    steps[0]["securityContext"] = {"privileged": True}
    bundle = build_bundle([pipeline], dict(rb.annotations))
    tag = ref.split("@", 1)[0]
    return f"{tag}@{push_bundle(client, tag, bundle)}"


def test_a_moved_tag_fails_verify(released: Config, capsys: pytest.CaptureFixture[str]) -> None:
    reg = (released.root / "registry" / "workflows" / "alpha.yaml").read_text()
    ref = next(ln.split()[-1] for ln in reg.splitlines() if ln.strip().startswith("bundle:"))
    with RegistryClient(released) as client:
        _tampered(released, client, ref)
    code = main(verify_args(released))
    out = capsys.readouterr().out
    assert code == 1, out
    assert "error [verify.tag-moved]" in out


def test_a_bundle_not_built_from_the_playbook_fails_verify(
    released: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    path = released.root / "registry" / "workflows" / "alpha.yaml"
    reg = path.read_text()
    ref = next(ln.split()[-1] for ln in reg.splitlines() if ln.strip().startswith("bundle:"))
    with RegistryClient(released) as client:
        forged = _tampered(released, client, ref)
    # Tag and registration agree and the annotations claim the right source hash: only the
    # content gives it away.
    path.write_text(reg.replace(ref, forged))
    code = main(verify_args(released))
    out = capsys.readouterr().out
    assert code == 1, out
    assert "error [verify.bundle-content]" in out
    assert "securityContext" in out
    assert "verify.tag-moved" not in out


@pytest.mark.plain_http  # "another host" is a plain-HTTP proxy in front of the registry
@pytest.mark.parametrize("where", ["another-host", "another-repository"])
def test_a_bundle_published_elsewhere_fails_verify_without_being_fetched(
    released: Config, registry: LocalRegistry, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """The same bundle, byte for byte, copied where the release never published it: its digest
    is right, the tag there points at it, its Pipeline is what the playbook renders to; only
    where it is gives it away, and that is enough (a registry of someone else's serves what it
    likes the next time). Another host is never even asked."""
    path = released.root / "registry" / "workflows" / "alpha.yaml"
    reg = path.read_text()
    ref = next(ln.split()[-1] for ln in reg.splitlines() if ln.strip().startswith("bundle:"))
    with FaultProxy(registry.host) as elsewhere, RegistryClient(released) as client:
        rb = read_bundle(client, ref)
        assert rb.digest is not None
        host = elsewhere.host if where == "another-host" else released.registry
        copy = f"{host}/someone-else/bundles/alpha:1.0.0"
        with RegistryClient(released.with_overrides(registry=host)) as theirs:
            bundle = build_bundle([o.object for o in rb.objects], dict(rb.annotations))
            digest = push_bundle(theirs, copy, bundle)
        assert digest == rb.digest  # the very same bundle
        path.write_text(reg.replace(ref, f"{copy}@{digest}"))
        elsewhere.log.clear()
        code = main(verify_args(released))
        out = capsys.readouterr().out
        assert code == 1, out
        assert "error [verify.location]" in out
        assert f"is not {released.bundle_ref('alpha')}:1.0.0@sha256:<digest>" in out
        assert elsewhere.log == []  # never asked
