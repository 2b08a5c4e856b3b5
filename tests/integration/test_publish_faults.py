"""publish against a registry that lies or stalls (the fault proxy in front of the loopback
registry; the real Docker engine builds, the registry client writes its layers through the
proxy): never "pushed" for what is not stored, and a stalled image upload ends within the
client's deadlines."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl.config import Config
from playbookctl.oci import DOCKER_MANIFEST_LIST, OCI_INDEX, RegistryClient
from playbookctl.publish import publish
from playbookctl.results import Action, PublishResult
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy
from tests.support.lintrepo import CONTAINERFILE, good_playbook, make_repo

pytestmark = pytest.mark.integration

PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
COMMIT = "fa17" + "0" * 36
_ids = itertools.count()


@pytest.fixture
def config(
    tmp_path: Path, registry: LocalRegistry, base_image: str, fault_proxy: FaultProxy
) -> Config:
    n = next(_ids)
    root = make_repo(tmp_path / "repo", {"restart-deployment": good_playbook()})
    return Config(
        root=root,
        registry=fault_proxy.host,
        image_repo=f"pubfault{n}/images",
        bundle_repo=f"pubfault{n}/bundles",
        base_image_overrides={PROD_FROM: base_image},
        registry_timeout=5.0,
        # A read-back waits this long for a manifest an eventually consistent registry may
        # serve late: kept short so the not-stored test ends soon.
        registry_deadline=6.0,
        push_retries=1,
        push_timeout=8.0,
        # These faults are the engine's push: its images are built by the engine.
        assemble="never",
    )


def _publish(config: Config, engine: str) -> PublishResult:
    (result,) = publish(
        config,
        ["restart-deployment"],
        jobs=1,
        dry_run=False,
        commit=COMMIT,
        source_repository="https://github.com/example/playbooks",
        docker_host=engine,
    )
    return result


def _image_manifest_put(method: str, path: str) -> bool:
    return method == "PUT" and "/images/" in path and "/manifests/" in path


def test_an_image_manifest_answered_201_but_not_stored_is_never_reported_pushed(
    config: Config, docker_engine: str, fault_proxy: FaultProxy, registry: LocalRegistry
) -> None:
    fault_proxy.swallow_next(-1, match=_image_manifest_put)
    r = _publish(config, docker_engine)
    assert r.status is Action.FAILED
    assert r.error is not None
    assert "not stored" in r.error
    assert "\n" not in r.error
    assert r.image is not None
    assert (r.image.action, r.image.digest) == (Action.FAILED, None)
    assert r.bundle is not None
    assert r.bundle.action is not Action.PUSHED
    # nothing under the version: no bundle pins a digest that does not exist
    direct = config.with_overrides(registry=registry.host)
    with RegistryClient(direct) as client:
        assert client.resolve(f"{direct.bundle_ref('restart-deployment')}:1.0.0") is None
    # the image was read back by digest, waited for (registry-deadline), never found
    backs = [
        s
        for m, p, s in fault_proxy.log
        if m == "GET" and "/images/" in p and "/manifests/sha256:" in p
    ]
    assert backs
    assert set(backs) == {404}
    # the registry healed: the next run pushes and reads back for real
    fault_proxy.heal()
    again = _publish(config, docker_engine)
    assert (again.status, again.error) == (Action.PUSHED, None)


def _layer_upload(method: str, path: str) -> bool:
    return method in ("PATCH", "PUT") and "/images/" in path and "/blobs/" in path


@pytest.mark.timeout(180)  # without its deadline it would hang: fail by name
def test_a_stalled_image_upload_ends_publish_within_the_registry_deadline(
    config: Config, docker_engine: str, fault_proxy: FaultProxy
) -> None:
    """The engine builds, we upload its layers (the engine pushes nothing): a registry that
    holds an upload is cut off by the client's own deadlines (registry-timeout per request,
    registry-deadline per operation), never the engine's unbounded wait."""
    fault_proxy.stall_next(-1, match=_layer_upload)
    started = time.monotonic()
    r = _publish(config, docker_engine)
    elapsed = time.monotonic() - started
    assert r.status is Action.FAILED
    assert r.error is not None
    assert "upload blob sha256:" in r.error, r.error
    assert "registry-timeout" in r.error, r.error
    assert "\n" not in r.error
    # the build (small) plus two requests cut at registry-timeout (5 s), within the deadline
    assert elapsed < 60.0, elapsed
    assert r.bundle is not None
    assert r.bundle.action is not Action.PUSHED
    with RegistryClient(config) as client:
        assert client.resolve(f"{config.image_ref('restart-deployment')}:1.0.0") is None


@pytest.mark.timeout(180)
def test_a_stalled_image_upload_through_the_cli_fails_in_one_line_naming_the_blob(
    config: Config,
    docker_engine: str,
    fault_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through the CLI: PLAYBOOKCTL_REGISTRY_TIMEOUT and _DEADLINE reach the upload of the
    engine's layers, and the failed result says which blob stalled, in one line."""
    fault_proxy.stall_next(-1, match=_layer_upload)
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    monkeypatch.setenv("PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", json.dumps(config.base_image_overrides))
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_TIMEOUT", "3")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_DEADLINE", "4")
    monkeypatch.setenv("PLAYBOOKCTL_ASSEMBLE", "never")
    args = ["-C", str(config.root), "publish", "--format", "json", "--commit", COMMIT]
    args += ["--registry", config.registry, "--image-repo", config.image_repo]
    args += ["--bundle-repo", config.bundle_repo]
    started = time.monotonic()
    code = main(args)
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 1
    (result,) = json.loads(out)["results"]
    assert result["status"] == "failed"
    error = result["error"]
    assert "upload blob sha256:" in error, error
    assert "no complete answer within 3 s (registry-timeout)" in error, error
    assert "\n" not in error
    assert elapsed < 60.0, elapsed


def test_a_failed_layer_upload_is_retried_and_pushes_what_a_clean_run_pushes(
    config: Config, docker_engine: str, fault_proxy: FaultProxy, registry: LocalRegistry
) -> None:
    """A 500 and a dropped connection on the uploads of the engine's layers: the client
    retries them, and the image is the one a clean run pushes (same digest, same blobs)."""
    fault_proxy.fail_next(1, 500, match=_layer_upload)
    fault_proxy.drop_next(1, match=_layer_upload)
    r = _publish(config, docker_engine)
    assert (r.status, r.error) == (Action.PUSHED, None)
    assert r.image is not None
    statuses = [s for m, p, s in fault_proxy.log if _layer_upload(m, p)]
    assert 500 in statuses
    # Another repository on the registry itself, no faults: the same bytes.
    n = next(_ids)
    clean = replace(
        config,
        registry=registry.host,
        image_repo=f"pubclean{n}/images",
        bundle_repo=f"pubclean{n}/bundles",
    )
    again = _publish(clean, docker_engine)
    assert (again.status, again.error) == (Action.PUSHED, None)
    assert again.image is not None
    assert again.image.digest == r.image.digest


def test_a_build_printing_one_50_mb_line_keeps_the_result_small(
    config: Config, docker_engine: str
) -> None:
    containerfile = config.playbooks_dir / "restart-deployment" / "Containerfile"
    text = containerfile.read_text()
    loud = "RUN head -c 50000000 /dev/zero | tr '\\000' x; echo; exit 3\n"
    lines = text.splitlines(keepends=True)
    containerfile.write_text(lines[0] + loud + "".join(lines[1:]))
    seen: list[str] = []
    (r,) = publish(
        config,
        ["restart-deployment"],
        jobs=1,
        dry_run=True,  # a build that fails never reaches the registry anyway
        commit=COMMIT,
        source_repository="",
        docker_host=docker_engine,
        on_event=lambda *event: seen.append(str(event[-1])),
    )
    assert r.status is Action.FAILED
    assert r.error is not None
    assert "characters cut" in r.error
    assert len(json.dumps(r.to_json())) < 30_000
    assert max(len(line) for line in seen) < 30_000


def test_a_registry_refusing_docker_manifest_lists_gets_an_oci_index(
    config: Config, docker_engine: str, fault_proxy: FaultProxy
) -> None:
    """The index type is settled before any child is pushed: a registry that refuses Docker
    manifest lists ends with an OCI index over the engine's children, not children and no
    index."""
    fault_proxy.refused_media_types = {DOCKER_MANIFEST_LIST}
    r = _publish(config, docker_engine)
    assert (r.status, r.error) == (Action.PUSHED, None)
    assert r.image is not None
    assert r.image.digest is not None
    with RegistryClient(config) as client:
        _data, media_type, _digest = client.get_manifest(
            f"{config.image_ref('restart-deployment')}@{r.image.digest}"
        )
    assert media_type == OCI_INDEX
    images = [(m, p) for m, p, _s in fault_proxy.log if "/images/" in p]
    first_probe = next(
        i for i, (m, p) in enumerate(images) if m == "PUT" and "/manifests/sha256:" in p
    )
    first_upload = next(i for i, (_m, p) in enumerate(images) if "/blobs/" in p)
    assert first_probe < first_upload
