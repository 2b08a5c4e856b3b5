"""publish.py end to end: a real Docker engine, the loopback registry, and the fault proxy.

Each test publishes small playbooks (tests/support/lintrepo.py: lint-clean, FROM a production-
looking reference that the environment overrides to the locally made busybox base) under its
own repository names in the session registry.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from playbookctl import build, platforms
from playbookctl.bundle import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_HASH,
    ANNOTATION_VERSION,
    build_bundle,
    push_bundle,
    read_bundle,
)
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl.playbook import load_playbook, source_hash
from playbookctl.publish import publish, published_image
from playbookctl.render import render_pipeline
from playbookctl.results import Action, PublishResult
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy
from tests.support.images import config_only_manifest
from tests.support.lintrepo import CONTAINERFILE, edit, good_playbook, make_repo

pytestmark = pytest.mark.integration

PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
COMMIT = "c0ffee" + "0" * 34
SOURCE = "https://github.com/example/playbooks"
WRITES = ("PUT", "POST", "PATCH", "DELETE")
_ids = itertools.count()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "restart-deployment": good_playbook("restart-deployment"),
            "restart-authored": good_playbook("restart-authored", pipeline=True),
        },
    )


@pytest.fixture
def config(repo: Path, registry: LocalRegistry, base_image: str) -> Config:
    n = next(_ids)
    return Config(
        root=repo,
        registry=registry.host,
        image_repo=f"pub{n}/images",
        bundle_repo=f"pub{n}/bundles",
        base_image_overrides={PROD_FROM: base_image},
        # short, so that failure tests end quickly; retries enough to ride out a burst of 5xx
        registry_timeout=10.0,
        registry_retries=3,
        push_retries=1,
    )


def run_publish(
    config: Config, engine: str, names: list[str] | None = None, **kw: Any
) -> dict[str, PublishResult]:
    results = publish(
        config,
        names,
        jobs=kw.pop("jobs", 2),
        dry_run=kw.pop("dry_run", False),
        commit=COMMIT,
        source_repository=SOURCE,
        docker_host=engine,
        **kw,
    )
    return {r.name: r for r in results}


def step_images(pipeline: dict[str, Any]) -> list[str]:
    spec = pipeline["spec"]
    return [
        step["image"]
        for task in [*spec.get("tasks", []), *spec.get("finally", [])]
        for step in task.get("taskSpec", {}).get("steps", [])
    ]


def tag_digest(config: Config, ref: str) -> str | None:
    with RegistryClient(config) as client:
        desc = client.resolve(ref)
    return desc.digest if desc else None


def test_publish_pins_the_image_and_the_bundle_reads_back_as_tekton_reads_it(
    config: Config, docker_engine: str
) -> None:
    results = run_publish(config, docker_engine)
    assert sorted(results) == ["restart-authored", "restart-deployment"]
    for name, r in results.items():
        assert (r.status, r.error) == (Action.PUSHED, None)
        assert r.image is not None
        assert r.bundle is not None
        assert (r.image.action, r.bundle.action) == (Action.BUILT, Action.PUSHED)
        assert r.image.ref == f"{config.image_ref(name)}:1.0.0@{r.image.digest}"
        assert any("stand-in" in m for m in r.messages)
        with RegistryClient(config) as client:
            back = read_bundle(client, f"{config.bundle_ref(name)}@{r.bundle.digest}")
            image = published_image(client, f"{config.image_ref(name)}:1.0.0")
        assert back.ok, back.findings
        assert back.digest == r.bundle.digest
        pipeline = back.workflow()
        assert pipeline is not None
        assert pipeline["metadata"]["name"] == "workflow"
        images = step_images(pipeline)
        assert images
        assert set(images) == {r.image.ref}  # every step pinned, no placeholder left
        assert back.annotations[ANNOTATION_SOURCE_HASH] == r.source_hash
        assert back.annotations[ANNOTATION_REVISION] == COMMIT
        assert back.annotations[ANNOTATION_SOURCE] == SOURCE
        assert back.annotations[ANNOTATION_VERSION] == "1.0.0"
        # the image in the registry is the one pinned, labelled with the same source hash
        assert image is not None
        assert (image.digest, image.source_hash) == (r.image.digest, r.source_hash)
        assert tag_digest(config, f"{config.bundle_ref(name)}:1.0.0") == r.bundle.digest
    # the authored pipeline keeps its two tasks; the wrapper has one
    assert len(step_images(_bundle(config, results["restart-authored"]))) == 2
    # the playbooks' files still name the production base image
    assert (config.playbooks_dir / "restart-deployment" / "Containerfile").read_text() == (
        CONTAINERFILE
    )


def _bundle(config: Config, r: PublishResult) -> dict[str, Any]:
    assert r.bundle is not None
    with RegistryClient(config) as client:
        pipeline = read_bundle(client, f"{r.bundle.repository}@{r.bundle.digest}").workflow()
    assert pipeline is not None
    return pipeline


def test_second_run_builds_nothing_and_writes_nothing(
    config: Config, docker_engine: str, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    via_proxy = config.with_overrides(registry=fault_proxy.host)
    first = run_publish(via_proxy, docker_engine)
    assert {(r.status, r.error) for r in first.values()} == {(Action.PUSHED, None)}
    assert any(m in WRITES for m, _, _ in fault_proxy.log)
    fault_proxy.log.clear()
    # No engine at all this time: a build would fail.
    second = run_publish(via_proxy, f"unix://{tmp_path}/no-engine.sock")
    for name, r in second.items():
        assert (r.status, r.error) == (Action.REUSED, None)
        assert r.image is not None
        assert r.bundle is not None
        assert (r.image.action, r.bundle.action) == (Action.REUSED, Action.REUSED)
        assert (r.image.digest, r.bundle.digest) == (
            first[name].image.digest,  # type: ignore[union-attr]
            first[name].bundle.digest,  # type: ignore[union-attr]
        )
    writes = [(m, p) for m, p, _ in fault_proxy.log if m in WRITES]
    assert writes == []
    assert fault_proxy.log  # it did read: the registry is the source of truth


def test_two_clones_give_the_same_bundle_digest(
    config: Config, docker_engine: str, tmp_path: Path
) -> None:
    first = run_publish(config, docker_engine, ["restart-authored"])["restart-authored"]
    clone = tmp_path / "clone"
    shutil.copytree(config.root, clone)
    # The same images, a fresh bundle repository: the clone builds its bundle from scratch.
    other = config.with_overrides(root=clone, bundle_repo=config.bundle_repo + "-clone")
    second = run_publish(other, docker_engine, ["restart-authored"])["restart-authored"]
    assert second.status is Action.PUSHED
    assert second.image is not None
    assert second.bundle is not None
    assert first.bundle is not None
    assert second.image.action is Action.REUSED
    assert second.source_hash == first.source_hash
    assert second.bundle.digest == first.bundle.digest


@pytest.mark.parametrize("published", ["bundle", "image"])
def test_changed_content_under_the_same_version_is_refused(
    config: Config, docker_engine: str, tmp_path: Path, published: str
) -> None:
    first = run_publish(config, docker_engine, ["restart-deployment"])["restart-deployment"]
    assert first.status is Action.PUSHED
    script = config.playbooks_dir / "restart-deployment" / "remediate.sh"
    script.write_text(script.read_text() + "echo changed\n")
    changed = config
    if published == "image":  # only the image exists under this version in the new layout
        changed = config.with_overrides(bundle_repo=config.bundle_repo + "-new")
    r = run_publish(changed, docker_engine, ["restart-deployment"])["restart-deployment"]
    assert r.status is Action.REFUSED
    assert r.error is not None
    assert "content changed" in r.error
    assert r.error.endswith(
        "bump the version: playbookctl bump restart-deployment patch (gives 1.0.1)"
    )
    assert not r.ok
    # nothing was overwritten
    assert first.image is not None
    assert first.bundle is not None
    assert tag_digest(config, first.image.ref.split("@")[0]) == first.image.digest
    assert tag_digest(config, first.bundle.ref.split("@")[0]) == first.bundle.digest
    assert tag_digest(changed, f"{changed.bundle_ref('restart-deployment')}:1.0.0") == (
        first.bundle.digest if published == "bundle" else None
    )


def test_build_failure_fails_that_playbook_only(config: Config, docker_engine: str) -> None:
    # One (native) platform, so the RUN step really runs (test_platforms covers emulation).
    config = config.with_overrides(platforms=("linux/amd64",))
    cf = config.playbooks_dir / "restart-authored" / "Containerfile"
    cf.write_text(
        edit(cf.read_text(), "USER 65532", "RUN echo fetching tools && exit 7\nUSER 65532")
    )
    results = run_publish(config, docker_engine)
    bad, good = results["restart-authored"], results["restart-deployment"]
    assert good.status is Action.PUSHED
    assert bad.status is Action.FAILED
    assert bad.error is not None
    assert "failed at Step 3/" in bad.error
    assert "RUN echo fetching tools && exit 7" in bad.error
    assert "non-zero code: 7" in bad.error
    assert "Traceback" not in bad.error
    assert bad.image is not None
    assert (bad.image.action, bad.image.digest) == (Action.FAILED, None)
    assert bad.bundle is not None
    assert bad.bundle.action is Action.SKIPPED  # never attempted
    assert tag_digest(config, f"{config.image_ref('restart-authored')}:1.0.0") is None
    assert tag_digest(config, f"{config.bundle_ref('restart-authored')}:1.0.0") is None


def test_lint_errors_stop_a_playbook_before_any_build(
    config: Config, docker_engine: str, tmp_path: Path
) -> None:
    wf = config.playbooks_dir / "restart-deployment" / "workflow.yaml"
    wf.write_text(edit(wf.read_text(), "engine: tekton", "engine: argo"))
    r = run_publish(config, f"unix://{tmp_path}/no-engine.sock", ["restart-deployment"])[
        "restart-deployment"
    ]
    assert r.status is Action.SKIPPED
    assert r.error is not None
    assert "lint error" in r.error
    assert any("workflow.yaml" in m for m in r.messages)
    assert tag_digest(config, f"{config.image_ref('restart-deployment')}:1.0.0") is None


def test_dry_run_writes_nothing_and_predicts_the_bundle_digest(
    config: Config, docker_engine: str, fault_proxy: FaultProxy
) -> None:
    via_proxy = config.with_overrides(registry=fault_proxy.host)
    dry = run_publish(via_proxy, docker_engine, ["restart-deployment"], dry_run=True)
    r = dry["restart-deployment"]
    assert r.status is Action.DRY_RUN
    assert r.image is not None
    assert r.image.action is Action.DRY_RUN
    assert any("locally; not pushed" in m for m in r.messages)  # it did build
    assert not [m for m, _, _ in fault_proxy.log if m in WRITES]
    # once the image exists, a dry run computes the exact digest the push will produce
    real = run_publish(via_proxy, docker_engine, ["restart-deployment"])["restart-deployment"]
    other = via_proxy.with_overrides(bundle_repo=via_proxy.bundle_repo + "-dry")
    fault_proxy.log.clear()
    dry2 = run_publish(other, docker_engine, ["restart-deployment"], dry_run=True)
    predicted = dry2["restart-deployment"].bundle
    assert predicted is not None
    assert real.bundle is not None
    assert predicted.digest == real.bundle.digest
    assert not [m for m, _, _ in fault_proxy.log if m in WRITES]


def test_stand_in_is_refused_for_a_real_registry(config: Config, tmp_path: Path) -> None:
    real = config.with_overrides(registry="ghcr.io")
    started = time.monotonic()
    results = run_publish(real, f"unix://{tmp_path}/no-engine.sock")
    assert time.monotonic() - started < 10  # refused before any network access
    for r in results.values():
        assert r.status is Action.REFUSED
        assert r.error is not None
        assert "base-image stand-in" in r.error
        assert "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES" in r.error


def test_registry_answering_500s_for_a_while_is_retried(
    config: Config, docker_engine: str, fault_proxy: FaultProxy
) -> None:
    via_proxy = config.with_overrides(registry=fault_proxy.host)
    fault_proxy.fail_next(2, 500, match=lambda m, p: "/bundles/" in p)
    fault_proxy.fail_next(1, 503, match=lambda m, p: m == "PUT" and "/bundles/" in p)
    r = run_publish(via_proxy, docker_engine, ["restart-deployment"])["restart-deployment"]
    assert (r.status, r.error) == (Action.PUSHED, None)
    assert sum(1 for _, _, s in fault_proxy.log if s in (500, 503)) == 3
    assert r.bundle is not None
    assert tag_digest(config, f"{config.bundle_ref('restart-deployment')}:1.0.0") == (
        r.bundle.digest
    )


def test_registry_dying_before_the_bundle_lands_is_not_reported_as_done(
    config: Config, docker_engine: str, fault_proxy: FaultProxy
) -> None:
    via_proxy = config.with_overrides(registry=fault_proxy.host)
    # The registry goes away for good the moment the bundle's manifest is sent.
    fault_proxy.drop_next(
        -1, match=lambda m, p: m == "PUT" and "/bundles/" in p and "/manifests/" in p
    )
    started = time.monotonic()
    r = run_publish(via_proxy, docker_engine, ["restart-deployment"])["restart-deployment"]
    assert time.monotonic() - started < 60
    assert r.status is Action.FAILED
    assert not r.ok
    assert r.error is not None
    assert "Traceback" not in r.error
    assert r.image is not None
    assert r.bundle is not None
    # what did happen is reported as such: the image was pushed, the bundle was not
    assert r.image.action is Action.BUILT
    assert (r.bundle.action, r.bundle.digest) == (Action.FAILED, None)
    assert tag_digest(config, f"{config.bundle_ref('restart-deployment')}:1.0.0") is None
    # back up: the next run reuses the image and completes the release
    fault_proxy.heal()
    again = run_publish(via_proxy, docker_engine, ["restart-deployment"])["restart-deployment"]
    assert again.status is Action.PUSHED
    assert again.image is not None
    assert (again.image.action, again.image.digest) == (Action.REUSED, r.image.digest)


def test_registry_down_from_the_start_fails_fast_and_clearly(
    config: Config, docker_engine: str, fault_proxy: FaultProxy
) -> None:
    via_proxy = config.with_overrides(registry=fault_proxy.host)
    fault_proxy.die_after(0)
    started = time.monotonic()
    results = run_publish(via_proxy, docker_engine)
    assert time.monotonic() - started < 30
    for r in results.values():
        assert r.status is Action.FAILED
        assert r.error is not None
        assert fault_proxy.host in r.error
        assert r.image is not None
        assert r.image.action is not Action.BUILT


def test_unknown_playbook_name_is_a_usage_error(config: Config) -> None:
    from playbookctl.errors import UsageError

    with pytest.raises(UsageError, match="no-such"):
        run_publish(config, "unix:///nonexistent", ["no-such"])


def test_image_labels_carry_provenance(config: Config, docker_engine: str) -> None:
    r = run_publish(config, docker_engine, ["restart-deployment"])["restart-deployment"]
    assert r.image is not None
    repo = config.image_ref("restart-deployment")
    with RegistryClient(config) as client:
        children = dict(platforms.index_entries(client, f"{repo}:1.0.0"))
        assert sorted(children) == ["linux/amd64", "linux/arm64"]
        configs = []
        for digest in children.values():  # each platform's image, as the registry holds it
            data, _, _ = client.get_manifest(f"{repo}@{digest}")
            blob = client.get_blob(repo.split("/", 1)[1], json.loads(data)["config"]["digest"])
            configs.append(json.loads(blob)["config"]["Labels"])
    for labels in configs:
        assert labels[build.OCI_SOURCE] == SOURCE
        assert labels[build.OCI_REVISION] == COMMIT
        assert labels[build.OCI_VERSION] == "1.0.0"
        assert labels[build.SOURCE_HASH_LABEL] == r.source_hash
        assert build.BASE_OVERRIDE_LABEL in labels


def _push_image_manifest(client: RegistryClient, repo: str, labels: dict[str, str]) -> str:
    from playbookctl.oci import OCI_MANIFEST, sha256_digest

    config_blob = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    client.push_blob(repo, config_blob)
    manifest = config_only_manifest(config_blob, oci=True)
    return client.push_manifest(repo, sha256_digest(manifest), manifest, OCI_MANIFEST)


@pytest.mark.parametrize(
    ("platforms", "expected_hash"),
    [
        ([("linux", "arm64", "arm"), ("linux", "amd64", "amd")], "amd"),
        ([("linux", "arm64", "arm")], None),  # no amd64 entry: no hash to trust
    ],
)  # fmt: skip
def test_published_image_reads_the_label_through_an_index(
    registry: LocalRegistry,
    tmp_path: Path,
    platforms: list[tuple[str, str, str]],
    expected_hash: str | None,
) -> None:
    from playbookctl.oci import OCI_INDEX, OCI_MANIFEST, sha256_digest

    config = Config(root=tmp_path, registry=registry.host)
    repo = f"index{next(_ids)}/img"
    with RegistryClient(config) as client:
        entries = []
        for os_name, arch, marker in platforms:
            digest = _push_image_manifest(client, repo, {build.SOURCE_HASH_LABEL: marker})
            size = client.resolve(f"{registry.host}/{repo}@{digest}").size  # type: ignore[union-attr]
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": size,
                    "platform": {"os": os_name, "architecture": arch},
                }
            )
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        index_digest = client.push_manifest(repo, "1.0.0", index.encode(), OCI_INDEX)
        published = published_image(client, f"{registry.host}/{repo}:1.0.0")
    assert index_digest == sha256_digest(index.encode())
    assert published is not None
    assert (published.digest, published.source_hash) == (index_digest, expected_hash)


@pytest.mark.parametrize("source", ["environment", "docker-config", "none"])
def test_registry_that_demands_a_login(
    *,
    repo: Path,
    auth_registry: LocalRegistry,
    base_image: str,
    docker_engine: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    source: str,
) -> None:
    """The image push (through the engine) and the bundle push (oci.py) use the same credentials."""
    import os

    user, password = auth_registry.username, auth_registry.password
    if source == "environment":
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", user)
        monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", password)
    elif source == "docker-config":
        # Beside the test registry's own entry (the stand-in base lives there), as
        # `docker login` adds one.
        auth_registry.login(Path(os.environ["DOCKER_CONFIG"]))
    n = next(_ids)
    config = Config(
        root=repo,
        registry=auth_registry.host,
        image_repo=f"auth{n}/images",
        bundle_repo=f"auth{n}/bundles",
        base_image_overrides={PROD_FROM: base_image},
        registry_timeout=10.0,
        registry_retries=1,
    )
    r = run_publish(config, docker_engine, ["restart-deployment"])["restart-deployment"]
    if source == "none":
        assert r.status is Action.FAILED
        assert r.error is not None
        assert "authentication required" in r.error
        assert "PLAYBOOKCTL_REGISTRY_USERNAME" in r.error  # says what to do
        return
    assert (r.status, r.error) == (Action.PUSHED, None)
    assert r.image is not None
    assert r.image.action is Action.BUILT
    dump = json.dumps(r.to_json())
    assert password not in dump


@pytest.mark.parametrize("fault", ["500", "drop"])
def test_image_push_failing_once_is_retried(
    config: Config, docker_engine: str, fault_proxy: FaultProxy, fault: str
) -> None:
    via_proxy = config.with_overrides(registry=fault_proxy.host, push_retries=2)

    def image_manifest_put(method: str, path: str) -> bool:
        return method == "PUT" and "/images/" in path and "/manifests/" in path

    if fault == "500":
        fault_proxy.fail_next(1, 500, match=image_manifest_put)
    else:
        fault_proxy.drop_next(1, match=image_manifest_put)
    started = time.monotonic()
    r = run_publish(via_proxy, docker_engine, ["restart-deployment"])["restart-deployment"]
    assert time.monotonic() - started < 60
    assert (r.status, r.error) == (Action.PUSHED, None)
    puts = [s for m, p, s in fault_proxy.log if image_manifest_put(m, p)]
    assert puts[0] in (500, -1)
    assert puts[-1] == 201
    assert r.image is not None
    assert tag_digest(config, f"{config.image_ref('restart-deployment')}:1.0.0") == r.image.digest


def test_dry_run_fails_on_a_containerfile_that_does_not_build(
    config: Config, docker_engine: str
) -> None:
    cf = config.playbooks_dir / "restart-deployment" / "Containerfile"
    cf.write_text(edit(cf.read_text(), "USER 65532", "RUN exit 9\nUSER 65532"))
    r = run_publish(config, docker_engine, ["restart-deployment"], dry_run=True)
    result = r["restart-deployment"]
    assert result.status is Action.FAILED
    assert result.error is not None
    assert "RUN exit 9" in result.error


def test_reused_release_keeps_the_commit_it_was_built_from(
    config: Config, docker_engine: str
) -> None:
    first = run_publish(config, docker_engine, ["restart-deployment"])["restart-deployment"]
    assert (first.status, first.commit) == (Action.PUSHED, COMMIT)
    later = "f" * 40
    again = publish(
        config,
        ["restart-deployment"],
        jobs=1,
        dry_run=False,
        commit=later,
        source_repository=SOURCE,
        docker_host=docker_engine,
    )[0]
    assert again.status is Action.REUSED
    # provenance names the source that produced the bundle, not the run that found it
    assert again.commit == COMMIT


def _privileged(pipeline: dict[str, Any]) -> dict[str, Any]:
    """The Pipeline with its first step made privileged (what a tampered tag would hold)."""
    tampered = json.loads(json.dumps(pipeline))
    step = tampered["spec"]["tasks"][0]["taskSpec"]["steps"][0]
    step["securityContext"] = {**step.get("securityContext", {}), "privileged": True}
    return tampered


def test_a_bundle_tag_overwritten_behind_our_back_is_refused_not_reused(
    config: Config, docker_engine: str
) -> None:
    """Someone pushed a privileged step under the tag, keeping every annotation: reuse compares
    the bundle's Pipeline with what the playbook renders to, not the annotations."""
    name = "restart-deployment"
    first = run_publish(config, docker_engine, [name])[name]
    assert first.bundle is not None
    tag = f"{config.bundle_ref(name)}:1.0.0"
    with RegistryClient(config) as client:
        back = read_bundle(client, f"{config.bundle_ref(name)}@{first.bundle.digest}")
        tampered = build_bundle([_privileged(_bundle(config, first))], back.annotations)
        push_bundle(client, tag, tampered)
    again = run_publish(config, docker_engine, [name])[name]
    assert again.status is Action.REFUSED
    assert again.error == (
        f"{tag} ({tampered.digest}) does not hold the Pipeline this playbook renders to "
        "(differs at spec.tasks[0].taskSpec.steps[0].securityContext.privileged): changed "
        "after it was published, or published from other content; not reused, find out who "
        f"wrote it and bump the version: playbookctl bump {name} patch"
    )
    assert tag_digest(config, tag) == tampered.digest  # refused, not "repaired" either


@pytest.mark.parametrize("theirs", ["same", "privileged"])
def test_a_bundle_tag_that_appears_while_we_build_is_adopted_only_if_it_is_ours(
    config: Config, docker_engine: str, theirs: str
) -> None:
    """First writer wins: another publisher pushes the tag between our build and our push."""
    name = "restart-deployment"
    image_ref = f"{config.image_ref(name)}:1.0.0"
    tag = f"{config.bundle_ref(name)}:1.0.0"
    pushed: list[str] = []

    def race(who: str, _stage: str, message: str) -> None:
        # Just after our bundle is built, before its tag is checked again: the other one lands.
        if who != name or not message.startswith(f"bundle {tag} built"):
            return
        with RegistryClient(config) as client:
            image = client.resolve(image_ref)
            assert image is not None
            pb = load_playbook(config.playbooks_dir / name, config.root, config.max_file_bytes)
            data = render_pipeline(pb, config, image=f"{image_ref}@{image.digest}").data
            annotations = {
                ANNOTATION_SOURCE: SOURCE,
                ANNOTATION_REVISION: COMMIT,
                ANNOTATION_VERSION: "1.0.0",
                ANNOTATION_SOURCE_HASH: source_hash(pb.dir),
            }
            objects = [data if theirs == "same" else _privileged(data)]
            pushed.append(push_bundle(client, tag, build_bundle(objects, annotations)))

    result = run_publish(config, docker_engine, [name], jobs=1, on_event=race)[name]
    assert len(pushed) == 1
    assert tag_digest(config, tag) == pushed[0]  # never overwritten
    if theirs == "same":
        assert result.status is Action.REUSED
        assert result.bundle is not None
        assert result.bundle.digest == pushed[0]
        assert f"{tag} was published meanwhile with the same content" in result.messages
    else:
        assert result.status is Action.REFUSED
        assert result.error is not None
        assert result.error.startswith(f"{tag} ({pushed[0]}) does not hold the Pipeline")
        assert "securityContext.privileged" in result.error


@pytest.mark.parametrize("theirs", ["same", "foreign-arm64", "extra-s390x"])
def test_an_image_index_that_appears_while_we_build_is_adopted_only_if_it_lists_our_images(
    config: Config, docker_engine: str, theirs: str
) -> None:
    """First writer wins by content: after our children are pushed and before our index is,
    another publisher's index lands under the version tag. Adopted only if it lists exactly the
    images we built, platform by platform, and nothing more (its source-hash label is ours in
    every case: a foreign linux/s390x entry beside our two children is someone else's image
    that an s390x node would run)."""
    from playbookctl.oci import image_index

    name = "restart-deployment"
    repo = config.image_ref(name)
    tag = f"{repo}:1.0.0"
    pushed: list[str] = []
    ours: dict[str, str] = {}  # platform -> child digest, as the push events name them

    def race(who: str, _stage: str, message: str) -> None:
        m = re.match(r"pushing \S+@(sha256:[0-9a-f]{64}) \((\S+), assembled\)", message)
        if who == name and m:
            ours[m.group(2)] = m.group(1)
        if who != name or message != f"every platform of {tag} pushed":
            return
        with RegistryClient(config) as client:
            listed = []
            for platform in ("linux/amd64", "linux/arm64"):
                child = f"{repo}:1.0.0_{platform.replace('/', '-')}"
                if theirs == "foreign-arm64" and platform == "linux/arm64":
                    # An image carrying our source-hash label that we did not build.
                    pb = load_playbook(
                        config.playbooks_dir / name, config.root, config.max_file_bytes
                    )
                    label = {build.SOURCE_HASH_LABEL: source_hash(pb.dir, config.platforms)}
                    digest = _push_image_manifest(client, repo.split("/", 1)[1], label)
                    child = f"{repo}@{digest}"
                if "@" not in child and platform in ours:
                    child = f"{repo}@{ours[platform]}"
                if "@" not in child:
                    found = client.resolve(child)
                    assert found is not None
                    child = f"{repo}@{found.digest}"
                descriptor = client.read_back(child)
                os_name, arch = platform.split("/")
                listed.append((descriptor, {"os": os_name, "architecture": arch}))
            if theirs == "extra-s390x":
                pb = load_playbook(config.playbooks_dir / name, config.root, config.max_file_bytes)
                label = {build.SOURCE_HASH_LABEL: source_hash(pb.dir, config.platforms)}
                digest = _push_image_manifest(client, repo.split("/", 1)[1], label)
                foreign = client.read_back(f"{repo}@{digest}")
                listed.append((foreign, {"os": "linux", "architecture": "s390x"}))
            data, media_type = image_index(listed)
            pushed.append(client.push_manifest(repo.split("/", 1)[1], "1.0.0", data, media_type))

    result = run_publish(config, docker_engine, [name], jobs=1, on_event=race)[name]
    assert len(pushed) == 1
    assert tag_digest(config, tag) == pushed[0]  # never overwritten
    if theirs == "same":
        assert result.status is Action.PUSHED, result.error
        assert result.image is not None
        assert result.image.digest == pushed[0]
        assert f"{tag} was published meanwhile from the same source" in result.messages
    else:
        assert result.status is Action.REFUSED
        assert result.error is not None
        assert result.error.startswith(f"{tag} appeared while this run built it ({pushed[0]})")
        if theirs == "foreign-arm64":
            assert "its linux/arm64 image is sha256:" in result.error
        else:
            assert "and lists linux/s390x (sha256:" in result.error
            assert "which this run did not build: not adopted" in result.error
        assert tag_digest(config, f"{config.bundle_ref(name)}:1.0.0") is None  # no bundle


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_bundle_published_around_an_image_that_is_not_is_refused(
    config: Config, docker_engine: str, dry_run: bool
) -> None:
    """The bundle's tag holds a bundle whose image's tag does not exist (here: the image
    repository changed). A dry run looks the bundle up at once and refuses; a release looks it
    up once, just before its own would be written (not at the start, with the image's tag
    absent): it has pushed the image by then, and refuses the bundle it does not hold."""
    name = "restart-deployment"
    first = run_publish(config, docker_engine, [name])[name]
    assert first.status is Action.PUSHED
    assert first.bundle is not None
    moved = config.with_overrides(image_repo=config.image_repo + "-moved")
    tag = f"{config.bundle_ref(name)}:1.0.0"
    r = run_publish(moved, docker_engine, [name], dry_run=dry_run)[name]
    assert r.status is Action.REFUSED, r
    assert r.error is not None
    if dry_run:
        assert r.error == (
            f"{tag} is published but {moved.image_ref(name)}:1.0.0, the image its Pipeline "
            f"runs, is not: not reused; bump the version: playbookctl bump {name} patch "
            "(gives 1.0.1)"
        )
        assert tag_digest(moved, f"{moved.image_ref(name)}:1.0.0") is None
    else:
        assert r.error.startswith(f"{tag} ({first.bundle.digest}) does not hold the Pipeline")
        assert tag_digest(moved, f"{moved.image_ref(name)}:1.0.0") is not None
    assert tag_digest(config, tag) == first.bundle.digest  # never overwritten
