"""The smoke run (smoke.py) on real images: publish builds each platform from the stand-in base
(Debian's static busybox, bash and kubectl for that architecture), starts it on this machine
(arm64 through QEMU where binfmt_misc has it) and pushes nothing when one platform fails."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from playbookctl import build
from playbookctl.cli import main
from playbookctl.config import Config
from playbookctl.oci import RegistryClient, image_index, parse_reference, sha256_digest
from playbookctl.platforms import BINFMT_DIR, Platform, emulation_available
from playbookctl.publish import publish
from playbookctl.results import Action, PublishResult
from playbookctl.smoke import SmokeError, StepSpec, smoke_image
from playbookctl_dev.base_image import DOCKER_CONFIG, DOCKER_LAYER, PATH
from playbookctl_dev.registry import LocalRegistry
from tests.support.lintrepo import CONTAINERFILE, SCRIPT, edit, good_playbook, make_repo

pytestmark = pytest.mark.integration

PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
COMMIT = "abcdef" + "1" * 34
SAMPLES = ("cordon-drain-node", "oomkill-scale-down", "restart-deployment")
BASH_SCRIPT = SCRIPT.replace("#!/bin/sh", "#!/usr/bin/env bash")
ARM64 = emulation_available("arm64", BINFMT_DIR)
_ids = itertools.count()
# per platform, path -> content (None: a whiteout deleting the path); see _derive_base
Changes = Mapping[str, dict[str, bytes | None]]


def _config(repo: Path, registry: LocalRegistry, base: str, **kw: Any) -> Config:
    n = next(_ids)
    return Config(
        root=repo,
        registry=registry.host,
        image_repo=f"smoke{n}/images",
        bundle_repo=f"smoke{n}/bundles",
        base_image_overrides=kw.pop("overrides", {PROD_FROM: base}),
        push_retries=1,
        **kw,
    )


def _publish(config: Config, engine: str, names: list[str] | None = None) -> list[PublishResult]:
    return publish(
        config,
        names,
        jobs=2,
        dry_run=False,
        commit=COMMIT,
        source_repository="https://example.invalid/playbooks",
        docker_host=engine,
    )


def _dry_run(config: Config, engine: str) -> PublishResult:
    """publish --dry-run of the repository's one playbook (the pull-request gate)."""
    (r,) = publish(
        config,
        None,
        jobs=1,
        dry_run=True,
        commit=COMMIT,
        source_repository="https://example.invalid/playbooks",
        docker_host=engine,
    )
    return r


def _nothing_pushed(config: Config, name: str, version: str = "1.0.0") -> bool:
    image = config.image_ref(name)
    with RegistryClient(config) as client:
        refs = [
            f"{image}:{version}",
            f"{image}:{version}_linux-amd64",
            f"{image}:{version}_linux-arm64",
            f"{config.bundle_ref(name)}:{version}",
        ]
        return all(client.resolve(ref) is None for ref in refs)


def _derive_base(registry: LocalRegistry, base: str, ref: str, layers: Changes) -> str:
    """`ref`: the stand-in with, per platform, one more layer holding `layers[platform]`
    (path -> content, None = a whiteout deleting the path): a base that lacks something."""
    config = Config(root=Path("/"), registry=registry.host)
    src, dst = parse_reference(base), parse_reference(ref)
    children = []
    with RegistryClient(config) as client:
        index = json.loads(client.get_manifest(base)[0])
        for entry in index["manifests"]:
            platform = f"{entry['platform']['os']}/{entry['platform']['architecture']}"
            manifest = json.loads(client.get_manifest(f"{src.name}@{entry['digest']}")[0])
            blob = json.loads(client.get_blob(src.repository, manifest["config"]["digest"]))
            for layer in manifest["layers"]:
                data = client.get_blob(src.repository, layer["digest"])
                client.push_blob(dst.repository, data, layer["digest"])
            files = layers.get(platform)
            if files:
                raw = io.BytesIO()
                with tarfile.open(fileobj=raw, mode="w") as tar:
                    for path, content in files.items():
                        directory, _, name = path.rpartition("/")
                        info = tarfile.TarInfo(
                            path if content is not None else f"{directory}/.wh.{name}"
                        )
                        info.size, info.mode = len(content or b""), 0o755
                        tar.addfile(info, io.BytesIO(content or b""))
                data = raw.getvalue()
                digest = client.push_blob(dst.repository, data)
                manifest["layers"].append(
                    # An uncompressed layer: the engine takes the tar media type as it is.
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                        "digest": digest,
                        "size": len(data),
                    }
                )
                blob["rootfs"]["diff_ids"].append(sha256_digest(data))
                blob["history"].append({"created_by": f"test: {sorted(files)}"})
            config_bytes = json.dumps(blob).encode()
            manifest["config"] = {
                "mediaType": DOCKER_CONFIG,
                "digest": client.push_blob(dst.repository, config_bytes),
                "size": len(config_bytes),
            }
            data = json.dumps(manifest).encode()
            client.push_manifest(dst.repository, sha256_digest(data), data, manifest["mediaType"])
            children.append(
                (client.read_back(f"{dst.name}@{sha256_digest(data)}"), entry["platform"])
            )
        body, media_type = image_index(children)
        client.push_manifest(dst.repository, dst.tag or "latest", body, media_type)
    assert DOCKER_LAYER  # the stand-in's own layers stay gzip
    return ref


def _sample_repo(repo_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy2(repo_root / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(repo_root / "registry", root / "registry")
    for name in SAMPLES:
        shutil.copytree(repo_root / "playbooks" / name, root / "playbooks" / name)
    return root


def _started_or_skipped(messages: list[str], platform: str) -> str:
    line = next(m for m in messages if m.startswith(f"smoke: {platform} "))
    if platform == "linux/amd64" or ARM64:
        assert f"smoke: {platform} started (" in line, line
    else:
        assert "not started" in line
        assert "qemu-user-static binfmt-support" in line
    return line


def test_every_sample_starts_on_both_platforms(
    repo_root: Path, tmp_path: Path, registry: LocalRegistry, base_image: str, docker_engine: str
) -> None:
    from playbookctl_dev.base_image import overrides_for

    repo = _sample_repo(repo_root, tmp_path)
    config = _config(
        repo, registry, base_image, overrides=overrides_for(repo / "playbooks", base_image)
    )
    results = _publish(config, docker_engine)
    assert [r.name for r in results] == list(SAMPLES)
    for r in results:
        assert (r.status, r.error) == (Action.PUSHED, None)
        for platform in ("linux/amd64", "linux/arm64"):
            line = _started_or_skipped(r.messages, platform)
            # the samples start with #!/usr/bin/env bash and run as the non-root user
            assert "/usr/bin/env bash as uid 65532" in line or "not started" in line


# A base made wrong in one way, the script it runs, and the one line the smoke run says.
_BROKEN_BASES: dict[str, tuple[Callable[[LocalRegistry, str], Changes], str, str]] = {
    # only arm64 misses bash: the failure names that platform
    "no-arm64-bash": (
        lambda registry, base: {"linux/arm64": {"bin/bash": None}},
        BASH_SCRIPT,
        f"linux/arm64: /usr/bin/env: bash not found in the image (PATH={PATH})",
    ),
    "no-kubectl": (
        lambda registry, base: {
            p: {"usr/bin/kubectl": None} for p in ("linux/amd64", "linux/arm64")
        },
        SCRIPT,
        f"linux/amd64: kubectl not found in the image (PATH={PATH})",
    ),
    # The old stand-in's defect: an arm64 label on amd64 binaries (exec format error on a node).
    "relabelled": (
        lambda registry, base: {
            "linux/arm64": {"bin/bash": _file_from_base(registry, base, "linux/amd64", "bin/bash")}
        },
        BASH_SCRIPT,
        "linux/arm64: /bin/bash is an x86-64 executable, not one for linux/arm64 "
        "(exec format error)",
    ),
}


@pytest.mark.parametrize("broken", sorted(_BROKEN_BASES))
def test_a_base_that_cannot_run_the_playbook_fails_naming_why_and_pushes_nothing(
    tmp_path: Path, registry: LocalRegistry, base_image: str, docker_engine: str, broken: str
) -> None:
    changes, script, error = _BROKEN_BASES[broken]
    base = _derive_base(
        registry,
        base_image,
        f"{registry.host}/smoke-base/{broken}:1",
        changes(registry, base_image),
    )
    repo = make_repo(
        tmp_path / "repo", {"restart-deployment": {**good_playbook(), "remediate.sh": script}}
    )
    config = _config(repo, registry, base)
    (r,) = _publish(config, docker_engine)
    assert r.status is Action.FAILED
    assert r.error == error
    assert _nothing_pushed(config, "restart-deployment")


def test_a_script_the_user_cannot_execute_fails(
    tmp_path: Path, registry: LocalRegistry, base_image: str, docker_engine: str
) -> None:
    files = good_playbook()
    files["Containerfile"] = edit(
        CONTAINERFILE,
        "USER 65532:65532",
        'RUN ["/bin/chmod", "0700", "/usr/local/bin/remediate.sh"]\nUSER 65532:65532',
    )
    repo = make_repo(tmp_path / "repo", {"restart-deployment": files})
    config = _config(repo, registry, base_image, platforms=("linux/amd64",))
    (r,) = _publish(config, docker_engine)
    assert r.status is Action.FAILED
    assert r.error == (
        "linux/amd64: /usr/local/bin/remediate.sh not executable by uid 65532 "
        "(mode 0700, owner 0:0)"
    )
    assert _nothing_pushed(config, "restart-deployment")


def test_a_shebang_interpreter_missing_from_the_image_fails_through_the_cli(
    tmp_path: Path,
    registry: LocalRegistry,
    base_image: str,
    docker_engine: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = SCRIPT.replace("#!/bin/sh", "#!/usr/bin/bash")  # Debian's path; the base has /bin/bash
    repo = make_repo(
        tmp_path / "repo", {"restart-deployment": {**good_playbook(), "remediate.sh": script}}
    )
    config = _config(repo, registry, base_image)
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    monkeypatch.setenv("PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", json.dumps({PROD_FROM: base_image}))
    code = main(
        [
            "-C",
            str(repo),
            "publish",
            "--registry",
            registry.host,
            "--image-repo",
            config.image_repo,
            "--bundle-repo",
            config.bundle_repo,
            "--commit",
            COMMIT,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "linux/amd64: /usr/bin/bash not found in the image "
        "(the interpreter of /usr/local/bin/remediate.sh)"
    ) in err
    assert "Traceback" not in err
    assert "smoke-running" in err  # the progress says what is being checked
    assert _nothing_pushed(config, "restart-deployment")


def _file_from_base(registry: LocalRegistry, base: str, platform: str, path: str) -> bytes:
    import gzip

    config = Config(root=Path("/"), registry=registry.host)
    r = parse_reference(base)
    with RegistryClient(config) as client:
        index = json.loads(client.get_manifest(base)[0])
        entry = next(
            m
            for m in index["manifests"]
            if f"{m['platform']['os']}/{m['platform']['architecture']}" == platform
        )
        manifest = json.loads(client.get_manifest(f"{r.name}@{entry['digest']}")[0])
        layer = client.get_blob(r.repository, manifest["layers"][0]["digest"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        fh = tar.extractfile(path)
        assert fh is not None
        return fh.read()


def test_smoke_off_starts_nothing(
    tmp_path: Path, registry: LocalRegistry, base_image: str, docker_engine: str
) -> None:
    base = _derive_base(
        registry,
        base_image,
        f"{registry.host}/smoke-base/no-kubectl-off:1",
        {p: {"usr/bin/kubectl": None} for p in ("linux/amd64", "linux/arm64")},
    )
    repo = make_repo(tmp_path / "repo", {"restart-deployment": good_playbook()})
    config = replace(_config(repo, registry, base), smoke="off")
    (r,) = _publish(config, docker_engine)
    assert (r.status, r.error) == (Action.PUSHED, None)
    assert not any(m.startswith("smoke:") for m in r.messages)


@pytest.fixture
def arm64_image(tmp_path: Path, base_image: str, docker_engine: str) -> str:
    """A playbook image built for linux/arm64 from the stand-in (RUN-less: no emulation)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "remediate.sh").write_text(BASH_SCRIPT)
    (ctx / "remediate.sh").chmod(0o755)
    (ctx / "Containerfile").write_text(
        f"FROM {base_image}\nCOPY remediate.sh /usr/local/bin/remediate.sh\n"
        'USER 65532:65532\nENTRYPOINT ["/usr/local/bin/remediate.sh"]\n'
    )
    ref = f"smoke-local/arm64:{next(_ids)}"
    with build.Engine(docker_engine) as engine:
        engine.pull(base_image, platform="linux/arm64")
        engine.build(ctx, tag=ref, platform="linux/arm64")
    return ref


def test_without_emulation_auto_checks_the_image_and_says_how_to_start_it(
    arm64_image: str, docker_engine: str, tmp_path: Path
) -> None:
    no_binfmt = tmp_path / "binfmt_misc"  # as on a machine without QEMU registered
    with build.Engine(docker_engine) as engine:
        if engine.native_architecture() != "x86_64":
            pytest.skip("needs an amd64 engine (arm64 is foreign only there)")
        outcome = smoke_image(
            engine,
            arm64_image,
            Platform.parse("linux/arm64"),
            [StepSpec("t/s")],
            binfmt_dir=no_binfmt,
        )
        assert not outcome.started
        assert outcome.message == (
            "smoke: linux/arm64 checked in the image, not started: this amd64 machine cannot "
            "execute arm64 binaries (no binfmt_misc entry for qemu-aarch64); to start it: "
            "apt-get install qemu-user-static binfmt-support (Debian/Ubuntu, as root), or "
            "docker/setup-qemu-action in GitHub Actions"
        )
        with pytest.raises(
            SmokeError, match=r"^linux/arm64: cannot be started here \(smoke = required\)"
        ):
            smoke_image(
                engine,
                arm64_image,
                Platform.parse("linux/arm64"),
                [StepSpec("t/s")],
                mode="required",
                binfmt_dir=no_binfmt,
            )


def test_with_emulation_an_arm64_image_really_runs(arm64_image: str, docker_engine: str) -> None:
    if not ARM64:
        pytest.skip("no QEMU for arm64 in binfmt_misc here (make system-deps registers it as root)")
    with build.Engine(docker_engine) as engine:
        outcome = smoke_image(engine, arm64_image, Platform.parse("linux/arm64"), [StepSpec("t/s")])
        assert outcome.started
        assert outcome.message == (
            "smoke: linux/arm64 started (/usr/bin/env bash as uid 65532): interpreter, script "
            "and kubectl present"
        )
        # the probe's kubectl is the arm64 one, run through QEMU
        result = engine.run_probe(
            arm64_image,
            ["kubectl", "version", "--client"],
            user="65532:65532",
            read_only=True,
            timeout=120,
        )
        assert result.exit_code == 0, result
        assert "linux/arm64" in result.output


def test_assembled_images_without_an_engine_say_so_or_fail_when_required(
    tmp_path: Path, registry: LocalRegistry, base_image: str
) -> None:
    """A runner with no engine assembles RUN-less images; the smoke run cannot start them."""
    repo = make_repo(tmp_path / "repo", {"restart-deployment": good_playbook()})
    nowhere = f"unix://{tmp_path}/no-engine.sock"
    config = _config(repo, registry, base_image)
    (r,) = _publish(config, nowhere)
    assert (r.status, r.error) == (Action.PUSHED, None)
    assert "image assembled without an engine (no RUN step)" in r.messages
    (line,) = [m for m in r.messages if m.startswith("smoke:")]
    assert line.startswith("smoke: not run: no Docker engine to start images assembled without one")

    required = replace(_config(repo, registry, base_image), smoke="required")
    (r,) = _publish(required, nowhere)
    assert r.status is Action.FAILED
    assert r.error is not None
    assert r.error.startswith(
        "linux/amd64, linux/arm64: cannot be started here (smoke = required): no Docker engine"
    )
    assert _nothing_pushed(required, "restart-deployment")


def test_assembled_images_start_one_probe_per_run_for_what_it_can_observe(
    tmp_path: Path, registry: LocalRegistry, base_image: str, docker_engine: str
) -> None:
    """Two assembled playbooks that differ only in their script (which the probe never runs)
    share one started probe per platform; one whose USER differs is started on its own. The
    static checks run on every image."""
    other_user = good_playbook("restart-c")
    other_user["Containerfile"] = edit(CONTAINERFILE, "USER 65532:65532", "USER 65533:65533")
    repo = make_repo(
        tmp_path / "repo",
        {
            "restart-a": good_playbook("restart-a"),
            "restart-b": {**good_playbook("restart-b"), "remediate.sh": SCRIPT + "echo b\n"},
            "restart-c": other_user,
        },
    )
    config = _config(repo, registry, base_image)
    results = {r.name: r for r in _publish(config, docker_engine)}
    names = ("restart-a", "restart-b", "restart-c")
    outcomes = {n: (r.status, r.error) for n, r in results.items()}
    assert outcomes == dict.fromkeys(names, (Action.PUSHED, None))
    for platform in ("linux/amd64", "linux/arm64"):
        lines = {n: _started_or_skipped(r.messages, platform) for n, r in results.items()}
        if "not started" in lines["restart-a"]:
            continue
        shared = [n for n in ("restart-a", "restart-b") if "as started for" in lines[n]]
        assert len(shared) == 1, lines  # one started the probe, the other took its outcome
        other = ({"restart-a", "restart-b"} - set(shared)).pop()
        assert config.image_ref(other) in lines[shared[0]]
        assert "as started for" not in lines["restart-c"]  # uid 65533: a probe of its own
        assert "as uid 65533" in lines["restart-c"]


def test_an_assembled_child_is_loaded_for_its_probe_not_pulled(
    tmp_path: Path, docker_engine: str
) -> None:
    """The started probe of an assembled image runs the bytes just pushed, loaded into the
    engine over the base child it pulled for the filesystem: the registry never serves the
    child (its manifest or its blobs) to the engine. (Plain HTTP on loopback: the engine's own
    requests are read from the registry's access log.)"""
    from playbookctl_dev.assembled_base import push_base_image

    repo = make_repo(tmp_path / "repo", {"restart-deployment": good_playbook()})
    with LocalRegistry(tls=False, access_log=True, workdir=tmp_path / "reg") as registry:
        base = f"{registry.host}/smoke-base/loaded:1"
        push_base_image(registry.host, base)
        config = _config(repo, registry, base)
        seen = len(registry.requests())
        (r,) = _publish(config, docker_engine)
        assert (r.status, r.error) == (Action.PUSHED, None)
        assert "image assembled without an engine (no RUN step)" in r.messages
        for platform in ("linux/amd64", "linux/arm64"):
            _started_or_skipped(r.messages, platform)
        images = f"/v2/{config.image_repo}/restart-deployment/"
        read = [p for m, p in registry.requests()[seen:] if m == "GET" and p.startswith(images)]
        # publish's own reads only: lookups of the tag and the index read back; no child
        # manifest, no config, no layer
        assert not [p for p in read if "/blobs/" in p], read
        assert len([p for p in read if "/manifests/sha256:" in p]) == 1, read
    # What the probe started: the child loaded under the smoke run's own name, never pulled
    # (a pulled image records the repository digest it came from).
    import docker

    api = docker.APIClient(base_url=docker_engine)
    try:
        loaded = api.images(name="playbookctl-smoke/restart-deployment")
        assert loaded, "no image loaded for the probe"
        assert all(not i.get("RepoDigests") for i in loaded), loaded
    finally:
        api.close()


def test_a_probe_that_hangs_is_stopped_at_its_timeout(base_image: str, docker_engine: str) -> None:
    import time

    with build.Engine(docker_engine) as engine:
        started = time.monotonic()
        result = engine.run_probe(
            base_image, ["/bin/sleep", "120"], user="65532:65532", read_only=True, timeout=2.0
        )
        assert result.timed_out
        assert time.monotonic() - started < 30
        # a program the image lacks: the engine cannot start it, and says why
        missing = engine.run_probe(
            base_image, ["/usr/bin/bash", "-c", "true"], user="65532", read_only=False, timeout=30
        )
        assert missing.start_error is not None
        assert "no such file or directory" in missing.start_error.lower()


def test_the_pull_request_gate_smoke_runs_assembled_images_it_does_not_push(
    tmp_path: Path, registry: LocalRegistry, base_image: str, docker_engine: str
) -> None:
    """publish --dry-run: assembled images are loaded into the engine (over their base, pulled
    by digest), checked, and nothing reaches the registry."""
    base = _derive_base(
        registry,
        base_image,
        f"{registry.host}/smoke-base/no-arm64-bash-dry:1",
        {"linux/arm64": {"bin/bash": None}},
    )
    files = {**good_playbook(), "remediate.sh": BASH_SCRIPT}
    repo = make_repo(tmp_path / "repo", {"restart-deployment": files})
    good = _config(repo, registry, base_image)
    r = _dry_run(good, docker_engine)
    assert (r.status, r.error) == (Action.DRY_RUN, None)
    assert "image assembled without an engine (no RUN step)" in r.messages
    for platform in ("linux/amd64", "linux/arm64"):
        _started_or_skipped(r.messages, platform)
    bad = _config(repo, registry, base)
    r = _dry_run(bad, docker_engine)
    assert r.status is Action.FAILED
    assert r.error == f"linux/arm64: /usr/bin/env: bash not found in the image (PATH={PATH})"
    assert _nothing_pushed(good, "restart-deployment")
    assert _nothing_pushed(bad, "restart-deployment")


def _containerd_load_rule(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The engine's `docker load` as containerd's image store does it (the default of new Docker
    29 installs, not on this machine): every layer manifest.json lists must be a file in the
    archive ("layer ... not found"), whatever the engine already holds. The refusal is injected;
    a complete archive goes on to the real engine."""
    from playbookctl.errors import FatalError

    refused: list[str] = []
    real = build.Engine.load_archive

    def load_archive(self: build.Engine, data: bytes, what: str) -> None:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = set(tar.getnames())
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        missing = [f for entry in manifest for f in entry["Layers"] if f not in names]
        if missing:
            refused.append(what)
            raise FatalError(
                f"{what}: load: failed to import image: layer {missing[0]!r} not found"
            )
        real(self, data, what)

    monkeypatch.setattr(build.Engine, "load_archive", load_archive)
    return refused


def test_the_pull_request_gate_checks_what_an_engine_will_not_load_and_says_so(
    tmp_path: Path,
    registry: LocalRegistry,
    base_image: str,
    docker_engine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """publish --dry-run with an engine whose image store refuses an archive without the base's
    layers: each platform is checked statically (base export plus the image's own layers) and
    said not started, with why; a missing interpreter is still caught; `required` fails."""
    refused = _containerd_load_rule(monkeypatch)
    files = {**good_playbook(), "remediate.sh": BASH_SCRIPT}
    repo = make_repo(tmp_path / "repo", {"restart-deployment": files})

    good = _config(repo, registry, base_image)
    r = _dry_run(good, docker_engine)
    assert (r.status, r.error) == (Action.DRY_RUN, None), r.messages
    assert len(refused) == 2  # each platform's archive
    for platform in ("linux/amd64", "linux/arm64"):
        (line,) = [m for m in r.messages if m.startswith(f"smoke: {platform} ")]
        assert line.startswith(
            f"smoke: {platform} checked in the image, not started: the engine "
            "refused to load it without its base's layers ("
        ), line
        assert "not found" in line
    base = _derive_base(
        registry,
        base_image,
        f"{registry.host}/smoke-base/no-arm64-bash-unloaded:1",
        {"linux/arm64": {"bin/bash": None}},
    )
    r = _dry_run(_config(repo, registry, base), docker_engine)
    assert r.status is Action.FAILED
    assert r.error == f"linux/arm64: /usr/bin/env: bash not found in the image (PATH={PATH})"
    r = _dry_run(replace(good, smoke="required"), docker_engine)
    assert r.status is Action.FAILED
    assert r.error is not None
    assert r.error.startswith("linux/amd64: cannot be started here (smoke = required): the engine")
    assert _nothing_pushed(good, "restart-deployment")
    # The release's publish, on the same engine: the children it pushed are pulled for the
    # probe (the load refused), and started.
    before = len(refused)
    (r,) = _publish(good, docker_engine)
    assert (r.status, r.error) == (Action.PUSHED, None)
    assert len(refused) > before
    for platform in ("linux/amd64", "linux/arm64"):
        _started_or_skipped(r.messages, platform)
