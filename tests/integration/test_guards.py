"""One test per guard that no other test would miss (issue 17): each fails, never hangs, when
its guard is removed, and `make mutants` (tooling/mutants/mutants.toml) removes each in turn to
prove it. Through public behaviour only: the real registry, the fault proxy in front of it
(the one fake: a registry that lies on demand), the real Docker engine, publish and inspect as
a user runs them.

- a manifest PUT answered with another Docker-Content-Digest fails the push;
- an image index or a bundle answered 201 but never stored fails publish (both are read back);
- a child tag `<version>_<os>-<arch>` is reused only when it holds that platform's image of
  this very source;
- a registry body without a Content-Length is bounded as it streams in;
- a bundle layer is refused above 8 MiB, not at some other size;
- an engine's error text is capped (its own line, not only the whole message).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from playbookctl import build
from playbookctl.bundle import (
    ANNOTATION_API_VERSION,
    ANNOTATION_KIND,
    ANNOTATION_NAME,
    CONFIG_MEDIA_TYPE,
    read_bundle,
)
from playbookctl.config import Config
from playbookctl.errors import BuildError, RegistryError
from playbookctl.oci import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    RegistryClient,
    ResponseTooLargeError,
    sha256_digest,
)
from playbookctl.playbook import source_hash
from playbookctl.publish import publish
from playbookctl.results import Action, PublishResult
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy
from tests.support.images import config_only_manifest
from tests.support.lintrepo import CONTAINERFILE, good_playbook, make_repo

pytestmark = pytest.mark.integration

PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
COMMIT = "9a4d" + "0" * 36
NAME = "restart-deployment"
EIGHT_MIB = 8 * 1024 * 1024
_ids = itertools.count()


@pytest.fixture
def direct(registry: LocalRegistry, tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(Config(root=tmp_path, registry=registry.host)) as client:
        yield client


def _config(tmp_path: Path, host: str, base_image: str, **kw: object) -> Config:
    n = next(_ids)
    root = make_repo(tmp_path / "repo", {NAME: good_playbook()})
    return Config(
        root=root,
        registry=host,
        image_repo=f"guard{n}/images",
        bundle_repo=f"guard{n}/bundles",
        base_image_overrides={PROD_FROM: base_image},
        registry_timeout=5.0,
        registry_deadline=6.0,  # a write never stored is waited for this long: not 25 s
        push_retries=1,
        **kw,  # type: ignore[arg-type]
    )


def _publish(config: Config, engine: str | None = None) -> PublishResult:
    (result,) = publish(
        config,
        [NAME],
        jobs=1,
        dry_run=False,
        commit=COMMIT,
        source_repository="https://github.com/example/playbooks",
        **({"docker_host": engine} if engine else {}),
    )
    return result


def _tag(config: Config, ref: str) -> str | None:
    direct = config.with_overrides(registry=ref.split("/", 1)[0])
    with RegistryClient(direct) as client:
        found = client.resolve(ref)
    return found.digest if found else None


def _manifest_put(kind: str, tag: str | None = None) -> object:
    def match(method: str, path: str) -> bool:
        if method != "PUT" or f"/{kind}/" not in path or "/manifests/" not in path:
            return False
        return tag is None or path.endswith(f"/manifests/{tag}")

    return match


# -- trust nothing a registry says ----------------------------------------------------------------


def test_a_manifest_put_answered_with_another_digest_fails_the_push(
    direct: RegistryClient, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    config = b'{"guard": "put-digest"}'
    direct.push_blob("guards/put", config)
    manifest = config_only_manifest(config)
    other = "sha256:" + "e" * 64
    with RegistryClient(Config(root=tmp_path, registry=fault_proxy.host)) as client:
        # The real registry's answer, through the proxy: the digest of the bytes.
        assert client.push_manifest("guards/put", "honest", manifest, DOCKER_MANIFEST) == (
            sha256_digest(manifest)
        )
        fault_proxy.lie_digest_next(1, other, match=_manifest_put("guards"))  # type: ignore[arg-type]
        with pytest.raises(RegistryError) as err:
            client.push_manifest("guards/put", "lied", manifest, DOCKER_MANIFEST)
    assert other in str(err.value)
    assert sha256_digest(manifest) in str(err.value)


def test_an_image_index_answered_but_not_stored_fails_publish(
    tmp_path: Path, fault_proxy: FaultProxy, registry: LocalRegistry, base_image: str
) -> None:
    """The index PUT is answered 201 and dropped: publish reads it back by digest before a
    bundle pins it, so nothing is reported pushed and no bundle names a missing image."""
    config = _config(tmp_path, fault_proxy.host, base_image)
    fault_proxy.swallow_next(-1, match=_manifest_put("images", "1.0.0"))  # type: ignore[arg-type]
    r = _publish(config)
    assert r.status is Action.FAILED, r
    assert r.error is not None
    assert "not stored" in r.error
    assert r.bundle is not None
    assert r.bundle.action is not Action.PUSHED
    direct = config.with_overrides(registry=registry.host)
    assert _tag(direct, f"{direct.bundle_ref(NAME)}:1.0.0") is None
    assert any(s == 201 for m, p, s in fault_proxy.log if m == "PUT" and p.endswith("/1.0.0"))


def test_a_bundle_answered_but_not_stored_fails_publish(
    tmp_path: Path, fault_proxy: FaultProxy, registry: LocalRegistry, base_image: str
) -> None:
    """The bundle PUT is answered 201 and dropped: publish reads the bundle back as Tekton's
    resolver reads it, so the result is a failure, never a digest that does not exist."""
    config = _config(tmp_path, fault_proxy.host, base_image)
    fault_proxy.swallow_next(-1, match=_manifest_put("bundles"))  # type: ignore[arg-type]
    r = _publish(config)
    assert r.status is Action.FAILED, r
    assert r.error is not None
    assert "the push was acknowledged but the registry does not have that manifest" in r.error
    assert r.error.startswith(f"{config.bundle_ref(NAME)}@sha256:")
    assert r.bundle is not None
    assert (r.bundle.action, r.bundle.digest) == (Action.FAILED, None)
    direct = config.with_overrides(registry=registry.host)
    assert _tag(direct, f"{direct.bundle_ref(NAME)}:1.0.0") is None


# -- child tags are reused only when they are this source's image of that platform ----------------


def _push_image(client: RegistryClient, repo: str, tag: str, arch: str, label: str) -> str:
    """A one-config image manifest under `tag`: linux/<arch>, labelled with a source hash."""
    config_blob = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": {build.SOURCE_HASH_LABEL: label}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    client.push_blob(repo, config_blob)
    manifest = config_only_manifest(config_blob, oci=True)
    return client.push_manifest(repo, tag, manifest, OCI_MANIFEST)


@pytest.mark.parametrize("found", ["other-platform", "other-source"])
def test_a_child_tag_is_reused_only_for_its_platform_and_this_source(
    tmp_path: Path, registry: LocalRegistry, base_image: str, docker_engine: str, found: str
) -> None:
    """`<version>_linux-amd64` already exists (a run that failed before its index, or someone
    else): reused only if it is a linux/amd64 image of this very source."""
    config = _config(tmp_path, registry.host, base_image, assemble="never")
    ours = source_hash(config.playbooks_dir / NAME, config.platforms)
    repo = config.image_ref(NAME).split("/", 1)[1]
    arch, label = ("arm64", ours) if found == "other-platform" else ("amd64", "sha256:" + "0" * 64)
    with RegistryClient(config) as client:
        planted = _push_image(client, repo, "1.0.0_linux-amd64", arch, label)
    r = _publish(config, docker_engine)
    assert r.status in (Action.FAILED, Action.REFUSED), r
    assert r.error is not None
    if found == "other-platform":
        assert "1.0.0_linux-amd64 holds a linux/arm64 image, not linux/amd64" in r.error
    else:
        assert f"1.0.0_linux-amd64 is already published ({planted}" in r.error
        assert "from other content than this source" in r.error
    assert _tag(config, f"{config.image_ref(NAME)}:1.0.0") is None  # no index
    assert _tag(config, f"{config.bundle_ref(NAME)}:1.0.0") is None  # no bundle


def test_a_published_index_listing_a_foreign_platform_is_not_reused(
    tmp_path: Path, registry: LocalRegistry, base_image: str
) -> None:
    """The version's index was rewritten to list a linux/s390x image beside our two children
    (its labels claim our source): a rerun does not reuse it, whatever the labels say."""
    from playbookctl.oci import image_index

    config = _config(tmp_path, registry.host, base_image)
    first = _publish(config)
    assert first.status is Action.PUSHED, first
    repo = config.image_ref(NAME)
    ours = source_hash(config.playbooks_dir / NAME, config.platforms)
    with RegistryClient(config) as client:
        data, _media, _digest = client.get_manifest(f"{repo}:1.0.0")
        listed = []
        for entry in json.loads(data)["manifests"]:
            descriptor = client.read_back(f"{repo}@{entry['digest']}")
            listed.append((descriptor, entry["platform"]))
        foreign = _push_image(client, repo.split("/", 1)[1], "s390x", "s390x", ours)
        listed.append(
            (client.read_back(f"{repo}@{foreign}"), {"os": "linux", "architecture": "s390x"})
        )
        index, media_type = image_index(listed)
        # The tag rewritten behind the release's back (a registry admin, a leaked token).
        client.push_manifest(repo.split("/", 1)[1], "1.0.0", index, media_type)
    # The bundle goes too, so that publish looks at the image again.
    again = _publish(config.with_overrides(bundle_repo=config.bundle_repo + "-again"))
    assert again.status is Action.REFUSED, again
    assert again.error is not None
    assert f"{repo}:1.0.0 also lists linux/s390x ({foreign})" in again.error


# -- bounded in size ------------------------------------------------------------------------------


def test_an_answer_without_content_length_is_bounded_as_it_streams(
    direct: RegistryClient, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    data = b"streamed " * 40_000  # 360 kB
    digest = direct.push_blob("guards/unsized", data)
    fault_proxy.unsized_next(-1, match=lambda m, p: m == "GET" and "/blobs/" in p)
    with RegistryClient(Config(root=tmp_path, registry=fault_proxy.host)) as client:
        # Chunked and whole: read as sent.
        assert client.get_blob("guards/unsized", digest) == data
        with pytest.raises(ResponseTooLargeError, match="larger than the 100000 bytes accepted"):
            client.get_blob("guards/unsized", digest, max_bytes=100_000)
    assert [s for m, p, s in fault_proxy.log if "/blobs/" in p] == [200, 200]


@pytest.mark.parametrize(("size", "refused"), [(EIGHT_MIB, False), (EIGHT_MIB + 1, True)])
def test_a_bundle_layer_is_refused_above_8_mib(
    direct: RegistryClient, size: int, refused: bool
) -> None:
    """`inspect` (read_bundle) reads a layer of up to 8 MiB and refuses one byte more with
    bundle.layer-size: the documented cap, not any cap."""
    layer = b"x" * size
    config = b"{}"
    repo = f"guards/layer-{size}"
    direct.push_blob(repo, config)
    direct.push_blob(repo, layer, check=False)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256_digest(layer),
                    "size": len(layer),
                    "annotations": {
                        ANNOTATION_KIND: "pipeline",
                        ANNOTATION_NAME: "workflow",
                        ANNOTATION_API_VERSION: "v1",
                    },
                }
            ],
        }
    ).encode()
    del layer
    digest = direct.push_manifest(repo, "1", manifest, DOCKER_MANIFEST)
    result = read_bundle(direct, f"{direct.config.registry}/{repo}@{digest}")
    rules = [f.rule for f in result.findings]
    assert ("bundle.layer-size" in rules) is refused, result.findings
    assert rules, "not a tar of a Pipeline either way: some finding"


# -- engine error text is capped ------------------------------------------------------------------


def test_an_engine_error_is_capped_on_its_own_line(
    docker_engine: str, base_image: str, tmp_path: Path
) -> None:
    """The engine's error names the failing command, here 60,000 characters long: the error's
    own line keeps head and tail within 4,000 characters (not just the whole message)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    command = ": " + "w" * 60_000 + "; exit 7"
    (ctx / "Containerfile").write_text(f"FROM {base_image}\nRUN {command}\n")
    with build.Engine(docker_engine) as engine, pytest.raises(BuildError) as err:
        engine.build(ctx, tag="guards/loud-error:1")
    lines = str(err.value).splitlines()
    assert "image build failed at" in lines[0]
    error = lines[1]
    assert "characters cut" in error, error[:300]
    assert len(error) <= 4000 + 100, len(error)
    assert error.rstrip().endswith("7"), error[-200:]  # the tail: the exit code


def test_a_bundle_blob_answered_but_not_stored_is_uploaded_again(
    tmp_path: Path, fault_proxy: FaultProxy, registry: LocalRegistry, base_image: str
) -> None:
    """Publish reads a pushed bundle back by its manifest only: its blobs were checked by
    digest as they were uploaded, and a registry refuses a manifest naming a blob it lacks.
    Both blob uploads are answered 201 and dropped: the manifest is refused, the blobs go up
    again, and the bundle published is whole (its layer read as Tekton reads it)."""
    config = _config(tmp_path, fault_proxy.host, base_image)

    def bundle_blob_put(method: str, path: str) -> bool:
        return method == "PUT" and "/bundles/" in path and "/blobs/uploads/" in path

    fault_proxy.swallow_next(2, match=bundle_blob_put)  # type: ignore[arg-type]
    r = _publish(config)
    assert (r.status, r.error) == (Action.PUSHED, None)
    assert r.bundle is not None
    refused = [s for m, p, s in fault_proxy.log if _manifest_put("bundles")(m, p)]  # type: ignore[operator]
    assert refused == [400, 201], fault_proxy.log  # refused for its unknown blobs, then taken
    direct = config.with_overrides(registry=registry.host)
    with RegistryClient(direct) as client:
        back = read_bundle(client, f"{direct.bundle_ref(NAME)}@{r.bundle.digest}")
    assert back.ok, back.findings
    assert back.workflow() is not None
