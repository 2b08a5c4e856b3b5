"""Multi-platform images end to end: the real engine, the loopback registry, a two-platform
stand-in base (playbookctl_dev.base_image), and what is pushed read back from the registry."""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from playbookctl import build, platforms
from playbookctl.bundle import read_bundle
from playbookctl.cli import main
from playbookctl.config import Config, load_config
from playbookctl.findings import has_errors
from playbookctl.oci import DOCKER_MANIFEST_LIST, INDEX_MEDIA_TYPES, RegistryClient
from playbookctl.publish import publish
from playbookctl.release import ReleaseOptions, format_table, release
from playbookctl.results import Action, PublishResult
from playbookctl.verify import verify
from playbookctl_dev.base_image import make_base_image
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy
from tests.support.gitrepos import TEST_BASE_IMAGE, MakeRepo
from tests.support.lintrepo import CONTAINERFILE, edit, good_playbook, make_repo
from tests.support.paths import STAND_IN_CACHE

pytestmark = pytest.mark.integration

PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
COMMIT = "abcdef" + "0" * 34
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
        image_repo=f"plat{n}/images",
        bundle_repo=f"plat{n}/bundles",
        base_image_overrides={PROD_FROM: base_image},
        push_retries=1,
    )


def run(config: Config, engine: str, **kw: Any) -> dict[str, PublishResult]:
    results = publish(
        config,
        kw.pop("names", None),
        jobs=2,
        dry_run=kw.pop("dry_run", False),
        commit=COMMIT,
        source_repository="https://example.invalid/playbooks",
        docker_host=engine,
    )
    return {r.name: r for r in results}


def manifest(client: RegistryClient, ref: str) -> tuple[dict[str, Any], str]:
    data, media_type, _ = client.get_manifest(ref)
    return json.loads(data), media_type


def config_blob(client: RegistryClient, name: str, digest: str) -> dict[str, Any]:
    r = client.parse_reference(f"{name}@{digest}")
    child, _ = manifest(client, str(r))
    return json.loads(client.get_blob(r.repository, child["config"]["digest"]))  # type: ignore[no-any-return]


def nothing_pushed(config: Config, name: str) -> bool:
    image = config.image_ref(name)
    with RegistryClient(config) as client:
        refs = [
            f"{image}:1.0.0",
            f"{image}:1.0.0_linux-amd64",
            f"{image}:1.0.0_linux-arm64",
            f"{config.bundle_ref(name)}:1.0.0",
        ]
        return all(client.resolve(ref) is None for ref in refs)


def test_every_image_is_an_index_of_both_platforms_whose_configs_say_so(
    config: Config, docker_engine: str
) -> None:
    results = run(config, docker_engine)
    with RegistryClient(config) as client:
        for name, r in results.items():
            assert (r.status, r.error) == (Action.PUSHED, None)
            assert r.image is not None
            assert r.image.digest is not None
            assert r.image.platforms == ["linux/amd64", "linux/arm64"]
            index, media_type = manifest(client, f"{config.image_ref(name)}:1.0.0")
            assert media_type == DOCKER_MANIFEST_LIST
            assert client.resolve(f"{config.image_ref(name)}:1.0.0").digest == r.image.digest  # type: ignore[union-attr]
            listed = [
                (m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]
            ]
            assert listed == [("linux", "amd64"), ("linux", "arm64")]
            for entry in index["manifests"]:
                blob = config_blob(client, config.image_ref(name), entry["digest"])
                assert (blob["os"], blob["architecture"]) == (
                    entry["platform"]["os"],
                    entry["platform"]["architecture"],
                )
                assert blob["config"]["Labels"]["dev.playbookctl.source-hash"] == r.source_hash
                # An assembled image's children are pushed by digest only: no platform tag.
                assert "image assembled without an engine (no RUN step)" in r.messages
                arch = entry["platform"]["architecture"]
                assert client.resolve(f"{config.image_ref(name)}:1.0.0_linux-{arch}") is None
            # the bundle pins the index, not a child
            assert r.bundle is not None
            back = read_bundle(client, f"{config.bundle_ref(name)}@{r.bundle.digest}")
            assert back.ok, back.findings
            assert f"{config.image_ref(name)}:1.0.0@{r.image.digest}" in json.dumps(back.workflow())


def test_arm64_built_first_does_not_leak_into_the_amd64_image(
    config: Config, docker_engine: str
) -> None:
    """The issue's trap: amd64 after arm64 FROM the same tag reused the cached arm64 base."""
    config = replace(config, platforms=("linux/arm64", "linux/amd64"))
    results = run(config, docker_engine, names=["restart-deployment"])
    r = results["restart-deployment"]
    assert r.status is Action.PUSHED, r.error
    with RegistryClient(config) as client:
        index, _ = manifest(client, f"{config.image_ref(r.name)}:1.0.0")
        archs = {
            m["platform"]["architecture"]: config_blob(
                client, config.image_ref(r.name), m["digest"]
            )["architecture"]
            for m in index["manifests"]
        }
    assert archs == {"arm64": "arm64", "amd64": "amd64"}


def test_a_rerun_reuses_the_index_and_writes_nothing(config: Config, docker_engine: str) -> None:
    first = run(config, docker_engine, names=["restart-deployment"])["restart-deployment"]
    again = run(config, docker_engine, names=["restart-deployment"])["restart-deployment"]
    assert again.status is Action.REUSED
    assert again.image is not None
    assert first.image is not None
    assert again.image.digest == first.image.digest
    assert again.image.platforms == ["linux/amd64", "linux/arm64"]


def test_a_run_that_failed_before_its_index_pushes_the_same_children_again(
    config: Config, docker_engine: str, fault_proxy: FaultProxy
) -> None:
    """The engine path writes its children by digest (no `<version>_<os>-<arch>` tag): a rerun
    after a failure before the index builds again and writes the very same children, which
    the index then lists."""
    config = replace(config, assemble="never")
    via_proxy = config.with_overrides(registry=fault_proxy.host)
    name = "restart-deployment"
    fault_proxy.fail_next(
        1, 400, match=lambda m, p: m == "PUT" and "/images/" in p and p.endswith("/manifests/1.0.0")
    )
    events: list[str] = []

    def publish_once() -> PublishResult:
        return publish(
            via_proxy,
            [name],
            jobs=1,
            dry_run=False,
            commit=COMMIT,
            source_repository="https://example.invalid/playbooks",
            docker_host=docker_engine,
            on_event=lambda _n, _stage, m: events.append(m),
        )[0]

    first = publish_once()
    assert first.status is Action.FAILED
    assert first.error is not None
    assert "push manifest" in first.error
    pushed = [e.split("@", 1)[1].split()[0] for e in events if "built by the engine)" in e]
    assert len(pushed) == 2, events
    with RegistryClient(config) as client:
        assert client.resolve(f"{config.image_ref(name)}:1.0.0") is None
        assert client.resolve(f"{config.bundle_ref(name)}:1.0.0") is None
        for d in pushed:
            found = client.resolve(f"{config.image_ref(name)}@{d}")
            assert found is not None
            assert found.digest == d
        for arch in ("amd64", "arm64"):
            assert client.resolve(f"{config.image_ref(name)}:1.0.0_linux-{arch}") is None
    events.clear()
    again = publish_once()
    assert again.status is Action.PUSHED, again.error
    with RegistryClient(config) as client:
        index, _ = manifest(client, f"{config.image_ref(name)}:1.0.0")
    assert [m["digest"] for m in index["manifests"]] == pushed


def test_a_base_lacking_a_platform_fails_before_anything_is_pushed(
    config: Config, docker_engine: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    single = f"{registry.host}/plat-base/amd64-only:1"
    make_base_image(
        docker_engine,
        tmp_path / "single",
        single,
        platforms=["linux/amd64"],
        cache=STAND_IN_CACHE,
    )
    config = replace(config, base_image_overrides={PROD_FROM: single})
    r = run(config, docker_engine, names=["restart-deployment"])["restart-deployment"]
    assert r.status is Action.FAILED
    assert r.error is not None
    assert "\n" not in r.error
    assert "has no linux/arm64 image (it offers linux/amd64)" in r.error
    assert "Containerfile:" in r.error
    assert nothing_pushed(config, "restart-deployment")


def test_a_run_step_for_a_foreign_platform_without_emulation_fails_before_anything_is_pushed(
    config: Config, docker_engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a machine without QEMU: `make system-deps` registers it here, and unregistering it
    # (binfmt_misc is the kernel's, shared by everything on the machine) is not a test's to do.
    monkeypatch.setattr(platforms, "emulation_available", lambda *_args: False)
    cf = config.playbooks_dir / "restart-deployment" / "Containerfile"
    cf.write_text(edit(cf.read_text(), "USER 65532", "RUN echo preparing\nUSER 65532"))
    r = run(config, docker_engine, names=["restart-deployment"])["restart-deployment"]
    assert r.status is Action.FAILED
    assert r.error is not None
    assert "\n" not in r.error
    assert "`RUN echo preparing`" in r.error
    assert "install QEMU" in r.error
    assert "native" in r.error
    assert nothing_pushed(config, "restart-deployment")
    # The pull-request gate builds what it can and says what it could not.
    dry = run(config, docker_engine, names=["restart-deployment"], dry_run=True)
    d = dry["restart-deployment"]
    assert d.status is Action.DRY_RUN, d.error
    assert d.image is not None
    assert len(d.image.platforms) == 1
    assert any("not built here" in m for m in d.messages)


def test_one_configured_platform_still_publishes_an_index(
    config: Config, docker_engine: str
) -> None:
    config = replace(config, platforms=("linux/arm64",))
    r = run(config, docker_engine, names=["restart-deployment"])["restart-deployment"]
    assert r.status is Action.PUSHED, r.error
    with RegistryClient(config) as client:
        index, media_type = manifest(client, f"{config.image_ref(r.name)}:1.0.0")
    assert media_type in INDEX_MEDIA_TYPES
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64"]


def test_adding_a_platform_under_the_same_version_is_refused(
    config: Config, docker_engine: str
) -> None:
    one = replace(config, platforms=("linux/amd64",))
    first = run(one, docker_engine, names=["restart-deployment"])["restart-deployment"]
    assert first.status is Action.PUSHED, first.error
    both = run(config, docker_engine, names=["restart-deployment"])["restart-deployment"]
    assert both.status is Action.REFUSED
    assert both.error is not None
    assert "bump the version" in both.error
    assert both.source_hash != first.source_hash


def test_verify_and_inspect_show_platforms_and_verify_fails_a_missing_one(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    docker_engine: str,
    base_image: str,
    fault_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    config: Config = load_config(repo.path).with_overrides(
        registry=registry.host,
        image_repo="plat-verify/images",
        bundle_repo="plat-verify/bundles",
        base_image_overrides={TEST_BASE_IMAGE: base_image},
    )
    report = release(config, ReleaseOptions())
    assert report.pushed
    assert "image built (linux/amd64, linux/arm64), bundle pushed" in format_table(report)
    with RegistryClient(config) as client:
        checked = verify(config, client)
    assert not has_errors(checked.findings), checked.findings
    [(image, listed)] = checked.image_platforms.items()
    assert listed == ["linux/amd64", "linux/arm64"]
    assert image.startswith(f"{config.image_ref('alpha')}:1.0.0@sha256:")

    # the CLI says so too
    env = {"PLAYBOOKCTL_REGISTRY": registry.host, "PLAYBOOKCTL_IMAGE_REPO": "plat-verify/images"}
    env["PLAYBOOKCTL_BUNDLE_REPO"] = "plat-verify/bundles"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["-C", str(repo.path), "verify"]) == 0
    assert f"image {image}: linux/amd64, linux/arm64" in capsys.readouterr().out
    bundle = report.results[0].bundle
    assert bundle is not None
    assert main(["-C", str(repo.path), "inspect", bundle.ref]) == 0
    shown = capsys.readouterr().out
    assert f"    {image}\n      platforms: linux/amd64, linux/arm64\n" in shown

    # a configured platform the image lacks fails verify, naming it
    three = config.with_overrides(platforms=("linux/amd64", "linux/arm64", "linux/s390x"))
    with RegistryClient(three) as client:
        found = [f for f in verify(three, client).findings if f.rule == "verify.image-platforms"]
    assert len(found) == 1
    assert "has no linux/s390x image (it lists linux/amd64, linux/arm64)" in found[0].message
    assert found[0].file == "registry/workflows/alpha.yaml"

    # a child manifest the registry lost (a real registry refuses an index whose children are
    # missing, so the fault proxy answers 404 for it) fails verify too
    index, _ = manifest_of(config, image)
    arm = next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    lost = config.with_overrides(registry=fault_proxy.host)
    fault_proxy.fail_next(-1, 404, match=lambda _m, p: p.endswith(arm))
    via = image.replace(registry.host, fault_proxy.host)
    with RegistryClient(lost) as client:
        problems = platforms.image_platforms(client, via, config.platforms).problems
    assert problems == [f"{via}: its linux/arm64 child manifest {arm} is missing"]


def manifest_of(config: Config, ref: str) -> tuple[dict[str, Any], str]:
    with RegistryClient(config) as client:
        return manifest(client, ref)


def test_every_sample_playbook_publishes_an_index_of_both_platforms(
    repo_root: Path, tmp_path: Path, registry: LocalRegistry, base_image: str, docker_engine: str
) -> None:
    """The repository's own playbooks, FROM their real (multi-arch) base mapped to the stand-in:
    each pinned image is an index of linux/amd64 and linux/arm64 whose children's configs say
    so, and each bundle reads back as Tekton's resolver reads it."""
    root = tmp_path / "samples"
    shutil.copytree(repo_root / "playbooks", root / "playbooks")
    shutil.copytree(repo_root / "registry" / "action-types", root / "registry" / "action-types")
    shutil.copy(repo_root / "pyproject.toml", root / "pyproject.toml")
    bases = {b.ref for d in (root / "playbooks").iterdir() for b in _bases(d)}
    config = load_config(root, env={}).with_overrides(
        registry=registry.host,
        image_repo="plat-samples/images",
        bundle_repo="plat-samples/bundles",
        base_image_overrides=dict.fromkeys(bases, base_image),
    )
    results = run(config, docker_engine)
    assert sorted(results) == sorted(p.name for p in (root / "playbooks").iterdir())
    with RegistryClient(config) as client:
        for name, r in results.items():
            assert r.status is Action.PUSHED, (name, r.error)
            assert r.image is not None
            index, media_type = manifest(client, r.image.ref)
            assert media_type in INDEX_MEDIA_TYPES
            configs = [
                config_blob(client, r.image.repository, m["digest"]) for m in index["manifests"]
            ]
            assert [(c["os"], c["architecture"]) for c in configs] == [
                ("linux", "amd64"),
                ("linux", "arm64"),
            ]
            assert r.bundle is not None
            back = read_bundle(client, r.bundle.ref)
            assert back.ok, back.findings
            assert r.image.ref in json.dumps(back.workflow())


def _bases(directory: Path) -> list[platforms.BaseRef]:
    return platforms.base_references((directory / "Containerfile").read_text())


def test_labels_written_as_one_label_step_read_back_exactly(
    docker_engine: str, base_image: str, tmp_path: Path
) -> None:

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(f"FROM {base_image}\nENV X=expanded\nUSER 65532\n")
    hostile = {
        "a.quote": 'say "hi"',
        "b.dollar": "${X} and $X stay literal",
        "c.backslash": "C:\\path\\",
        "d.json": json.dumps({"FROM a": "b"}),
    }
    lines: list[str] = []
    with build.Engine(docker_engine) as engine:
        built = engine.build(ctx, tag="labels-test:1", labels=hostile, on_line=lines.append)
        got = engine.labels(built.image_id)
    assert {k: got[k] for k in hostile} == hostile
    assert sum(line.startswith("Step ") for line in lines) == 4  # FROM, ENV, USER, one LABEL
