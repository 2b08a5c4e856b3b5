"""A registry that stalls, drip-feeds, lies or sends hostile sizes: RegistryClient and `inspect`
end with one clear line within the documented time and memory, and never report a digest the
bytes do not have. Each fault next to the same operation on the real registry."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import tarfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from playbookctl import cli
from playbookctl.bundle import (
    ANNOTATION_API_VERSION,
    ANNOTATION_KIND,
    ANNOTATION_NAME,
    CONFIG_MEDIA_TYPE,
    MAX_LAYER_BYTES,
    read_bundle,
)
from playbookctl.config import Config
from playbookctl.errors import RegistryError
from playbookctl.oci import (
    DOCKER_MANIFEST,
    DigestMismatchError,
    RegistryClient,
    ResponseTooLargeError,
    sha256_digest,
    transport,
)
from playbookctl_dev.registry import LocalRegistry, free_port
from tests.support.connectproxy import ConnectProxy
from tests.support.faultproxy import FaultProxy
from tests.support.images import config_only_manifest
from tests.support.timing import ends_by, least_backoff, most_attempts

pytestmark = pytest.mark.integration

OTHER_DIGEST = "sha256:" + "e" * 64

# The deadline tests below allow 10 retries: only registry-deadline can end them in time. If it
# did not, 11 tries of at least 1 s each (a try's floor past the deadline) and the backoff
# between them would take this long at the least (24.9 s).
RETRIES_WITHOUT_DEADLINE = 11 * 1.0 + least_backoff(10)


def _cfg(tmp_path: Path, host: str, **kw: object) -> Config:
    return Config(root=tmp_path, registry=host, **kw)  # type: ignore[arg-type]


def _tar(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _push_bundle_with_layer(client: RegistryClient, repo: str, layer: bytes, media: str) -> str:
    """A one-layer bundle whose layer is `layer` as given; returns the manifest digest."""
    config = b"{}"
    client.push_blob(repo, config)
    client.push_blob(repo, layer, check=False)
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
                    "mediaType": media,
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
    return client.push_manifest(repo, "1", manifest, DOCKER_MANIFEST)


def _small_bundle(client: RegistryClient, repo: str) -> str:
    pipeline = b"apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: workflow}\nspec: {}\n"
    return _push_bundle_with_layer(
        client, repo, _tar("pipeline.yaml", pipeline), "application/vnd.oci.image.layer.v1.tar"
    )


@pytest.fixture
def direct(registry: LocalRegistry, tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        yield c


def _manifests(method: str) -> object:
    return lambda m, p: m == method and "/manifests/" in p


# -- bounded in time -----------------------------------------------------------------------------


@pytest.mark.timeout(60)  # without its deadline it would hang: fail by name
def test_drip_fed_manifest_ends_within_the_deadline(
    direct: RegistryClient, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    _small_bundle(direct, "faults/drip")
    cfg = _cfg(
        tmp_path, fault_proxy.host, registry_timeout=1.5, registry_deadline=4.0, registry_retries=10
    )
    with RegistryClient(cfg) as c:
        assert c.resolve(f"{fault_proxy.host}/faults/drip:1") is not None  # healthy: fine
        # ~500 bytes a byte per 0.3 s: 150 s per answer, each socket read well within 1.5 s.
        fault_proxy.drip_next(-1, match=_manifests("GET"), delay=0.3)  # type: ignore[arg-type]
        before = len(fault_proxy.log)
        start = time.monotonic()
        with pytest.raises(RegistryError) as err:
            c.resolve(f"{fault_proxy.host}/faults/drip:1")
        elapsed = time.monotonic() - start
    assert elapsed < ends_by(4.0, runaway=RETRIES_WITHOUT_DEADLINE), elapsed
    tries = [p for m, p, _s in fault_proxy.log[before:] if m == "GET" and "/manifests/" in p]
    assert 2 <= len(tries) <= most_attempts(4.0, shortest=1.0), tries  # cut, retried, stopped
    message = str(err.value)
    assert "\n" not in message
    assert "no complete answer within 1.5 s (registry-timeout)" in message


@pytest.mark.timeout(60)
def test_a_stall_cut_by_the_socket_timeout_before_the_watchdog_names_the_deadline(
    direct: RegistryClient,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a busy machine the watchdog thread can wake after the socket's own timeout, which
    ends at the same deadline: the failure is still worded as the deadline (registry-timeout).
    The late watchdog is the injected fault here: it never fires."""
    _small_bundle(direct, "faults/late")
    monkeypatch.setattr(transport._WATCHDOG, "arm", lambda watch: None)
    fault_proxy.stall_next(-1, match=_manifests("GET"), seconds=30)  # type: ignore[arg-type]
    cfg = _cfg(tmp_path, fault_proxy.host, registry_timeout=1.5, registry_deadline=3.0)
    with RegistryClient(cfg) as c, pytest.raises(RegistryError) as err:
        c.get_manifest(f"{fault_proxy.host}/faults/late:1")
    assert "no complete answer within 1.5 s (registry-timeout)" in str(err.value)


@pytest.mark.timeout(60)  # without its deadline it would hang: fail by name
def test_drip_fed_blob_ends_inspect_within_the_deadline(
    direct: RegistryClient,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _small_bundle(direct, "faults/drip-blob")
    fault_proxy.drip_next(-1, match=lambda m, p: m == "GET" and "/blobs/" in p, delay=0.3)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_TIMEOUT", "1")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_DEADLINE", "3")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_RETRIES", "10")
    before = len(fault_proxy.log)
    start = time.monotonic()
    code = cli.main(["inspect", f"{fault_proxy.host}/faults/drip-blob:1"])
    elapsed = time.monotonic() - start
    _out, err = capsys.readouterr()
    assert code == 1
    assert elapsed < ends_by(3.0, runaway=RETRIES_WITHOUT_DEADLINE), elapsed
    tries = [p for m, p, _s in fault_proxy.log[before:] if m == "GET" and "/blobs/" in p]
    assert 1 <= len(tries) <= most_attempts(3.0, shortest=1.0), tries
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "registry-timeout" in lines[0]


@pytest.mark.timeout(60)  # without its deadline it would hang: fail by name
def test_stalled_request_ends_within_the_deadline(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    fault_proxy.stall_next(-1, match=lambda m, _p: m in ("POST", "PUT"))
    # The stall (300 s) is cut by registry-timeout at each try: the deadline ends the retries.
    cfg = _cfg(
        tmp_path, fault_proxy.host, registry_timeout=1.0, registry_deadline=3.0, registry_retries=10
    )
    with RegistryClient(cfg) as c:
        start = time.monotonic()
        with pytest.raises(RegistryError, match=r"registry-timeout"):
            c.push_blob("faults/stall", b"x" * 100_000, check=False)
        assert time.monotonic() - start < ends_by(3.0, runaway=RETRIES_WITHOUT_DEADLINE)
    held = [p for _m, p, status in fault_proxy.log if status == -2]
    assert 2 <= len(held) <= most_attempts(3.0, shortest=1.0), held  # cut, retried, stopped


def test_operation_deadline_is_a_setting(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "127.0.0.1:1", registry_timeout=2.0, registry_deadline=7.0)
    with RegistryClient(cfg) as c:
        assert (c.timeout, c.deadline) == (2.0, 7.0)
    # A deadline shorter than one request's timeout would cut every request short: the larger.
    with RegistryClient(
        _cfg(tmp_path, "127.0.0.1:1", registry_timeout=9.0, registry_deadline=1.0)
    ) as c:
        assert c.deadline == 9.0


# -- trust nothing -------------------------------------------------------------------------------


def test_a_wrong_docker_content_digest_is_never_reported(
    direct: RegistryClient, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    digest = _small_bundle(direct, "faults/lie")
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        ref = f"{fault_proxy.host}/faults/lie:1"
        desc = c.resolve(ref)
        assert desc is not None
        assert desc.digest == digest  # the real registry's answer, hashed
        fault_proxy.lie_digest_next(-1, OTHER_DIGEST, match=_manifests("GET"))  # type: ignore[arg-type]
        fault_proxy.lie_digest_next(-1, OTHER_DIGEST, match=_manifests("HEAD"))  # type: ignore[arg-type]
        for call in (c.resolve, c.get_manifest, c.tag_exists):
            with pytest.raises(DigestMismatchError) as err:
                call(ref)
            assert OTHER_DIGEST in str(err.value)
            assert digest in str(err.value)
    # The digest comes from the bytes: no HEAD on a manifest is ever taken on trust.
    assert not [p for m, p, _s in fault_proxy.log if m == "HEAD" and "/manifests/" in p]


@pytest.mark.timeout(60)  # without its deadline the read-back would wait for ever: fail by name
def test_a_manifest_put_answered_but_not_stored_fails_the_read_back(
    direct: RegistryClient, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    config = b'{"x": 1}'
    direct.push_blob("faults/swallow", config)
    manifest = config_only_manifest(config)
    # A short deadline: the read-back waits that long for an eventually consistent registry.
    config_short = _cfg(tmp_path, fault_proxy.host, registry_timeout=2.0, registry_deadline=3.0)
    with RegistryClient(config_short) as c:
        stored = c.push_manifest("faults/swallow", "kept", manifest, DOCKER_MANIFEST)
        assert c.read_back(f"{fault_proxy.host}/faults/swallow@{stored}").digest == stored
        fault_proxy.swallow_next(1, match=_manifests("PUT"))  # type: ignore[arg-type]
        other = manifest.replace(b'"layers": []', b'"layers": [], "annotations": {"a": "b"}')
        digest = c.push_manifest("faults/swallow", "lost", other, DOCKER_MANIFEST)
        started = time.monotonic()
        with pytest.raises(RegistryError, match="not stored") as err:
            c.read_back(f"{fault_proxy.host}/faults/swallow:lost@{digest}")
        assert digest in str(err.value)
        assert "waiting within registry-deadline" in str(err.value)
        # Without its deadline the wait for the lost manifest never ends.
        assert time.monotonic() - started < ends_by(3.0, runaway=math.inf)


# -- bounded in memory ---------------------------------------------------------------------------

YAML_HEAD = b"apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: workflow}\nspec:\n  d: "
BIG = 100 * 1024 * 1024


@pytest.mark.parametrize("form", ["uncompressed", "gzip", "yaml-blob"])
def test_inspect_of_a_100_mb_layer_is_refused_in_bounded_memory(
    direct: RegistryClient, tmp_path: Path, form: str
) -> None:
    content = YAML_HEAD + b"x" * BIG + b"\n"
    if form == "uncompressed":
        layer, media = _tar("pipeline.yaml", content), "application/vnd.oci.image.layer.v1.tar"
    elif form == "gzip":
        layer = gzip.compress(_tar("pipeline.yaml", content), compresslevel=1)
        media = "application/vnd.oci.image.layer.v1.tar+gzip"
    else:  # not even a tar: the bytes of a YAML file as the layer
        layer, media = content, "application/vnd.oci.image.layer.v1.tar"
    del content
    repo = f"faults/big-{form}"
    digest = _push_bundle_with_layer(direct, repo, layer, media)
    del layer
    tracemalloc.start()
    try:
        result = read_bundle(direct, f"{direct.config.registry}/{repo}@{digest}")
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_LAYER_BYTES, peak  # what one layer may take, never 100 MB
    rules = [f.rule for f in result.findings]
    assert "bundle.layer-size" in rules or "bundle.layer-content" in rules, result.findings
    messages = " ".join(f.message for f in result.findings)
    assert f"larger than {MAX_LAYER_BYTES} bytes" in messages


def test_a_blob_over_the_limit_is_refused_before_reading(direct: RegistryClient) -> None:
    data = os.urandom(300_000)
    direct.push_blob("faults/limit", data)
    assert direct.get_blob("faults/limit", sha256_digest(data)) == data
    with pytest.raises(ResponseTooLargeError, match="more than the 100000 accepted"):
        direct.get_blob("faults/limit", sha256_digest(data), max_bytes=100_000)


@pytest.mark.parametrize("size", [50_000, 5_000_000])
def test_a_huge_registry_error_is_capped_to_one_line(
    fault_proxy: FaultProxy, tmp_path: Path, size: int
) -> None:
    message = "first words\n" + "y" * size + "\nlast words"
    body = json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()
    fault_proxy.fail_next(1, 400, body=body)
    with (
        RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c,
        pytest.raises(RegistryError) as err,
    ):
        c.get_manifest(f"{fault_proxy.host}/faults/loud:1")
    text = str(err.value)
    assert "\n" not in text
    assert len(text) < 1500, len(text)
    assert "HTTP 400" in text
    if size < 60_000:  # the whole JSON within the 64 KiB read: head and tail both kept
        assert "DENIED: first words" in text
        assert text.endswith("last words)")
        assert "characters cut" in text


# -- proxies -------------------------------------------------------------------------------------


@pytest.mark.plain_http  # a loopback registry: localhost:<its port>
def test_a_loopback_registry_bypasses_http_proxy(
    direct: RegistryClient, registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = _small_bundle(direct, "faults/proxy")
    dead = f"http://127.0.0.1:{free_port()}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, dead)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    cfg = _cfg(tmp_path, registry.host, registry_timeout=2.0, registry_deadline=4.0)
    with RegistryClient(cfg) as c:
        desc = c.resolve(f"{registry.host}/faults/proxy:1")
        assert desc is not None
        assert desc.digest == digest
        # Other hosts still go through the proxy, as configured.
        assert c.transport.proxy("https://registry.example.com/v2/") == dead
        assert c.transport.proxy(f"http://localhost:{registry.port}/v2/") is None


def test_an_https_registry_is_reached_through_https_proxy(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTPS test registry (a name, not loopback) and its token service through a CONNECT
    proxy that wants the credentials of its URL (percent-encoded there), with the registry's
    certs.d trust inside the tunnel; NO_PROXY naming the registry's domain bypasses it."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    data = b"through the proxy"
    with ConnectProxy(credentials=("squid", "p@ss:word")) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://squid:p%40ss%3Aword@127.0.0.1:{proxy.port}")
        with RegistryClient(_cfg(tmp_path, registry.host)) as c:
            digest = c.push_blob("faults/tunnel", data)
            assert c.get_blob("faults/tunnel", digest) == data
        targets = {target for target, _auth in proxy.tunnels}
        assert registry.host in targets
        assert f"{registry.hostname}:{registry.token_port}" in targets  # the token service too
        assert {auth for _target, auth in proxy.tunnels} == {proxy.expected}
        seen = len(proxy.tunnels)
        domain = registry.hostname.split(".", 1)[1]
        monkeypatch.setenv("NO_PROXY", f"example.org, .{domain}")
        with RegistryClient(_cfg(tmp_path, registry.host)) as c:
            assert c.get_blob("faults/tunnel", digest) == data
        assert len(proxy.tunnels) == seen


# -- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variable", ["PLAYBOOKCTL_REGISTRY_PASSWORD", "PLAYBOOKCTL_REGISTRY_TOKEN"]
)
def test_a_non_utf8_secret_is_one_clear_line_without_its_length(
    direct: RegistryClient,
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
) -> None:
    _small_bundle(direct, "faults/creds")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", registry.host)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", "someone")
    # What os.environ holds for the bytes b"pass\xffword" (surrogateescape), as a shell sets it.
    monkeypatch.setenv(variable, os.fsdecode(b"pass\xffword-0123456789"))
    code = cli.main(["inspect", f"{registry.host}/faults/creds:1"])
    out, err = capsys.readouterr()
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert variable in lines[0]
    assert "UTF-8" in lines[0]
    assert "position" not in lines[0]
    assert not any(ch.isdigit() for ch in lines[0].replace("UTF-8", "")), lines[0]
    assert "word" not in out + err


def test_a_non_utf8_password_in_the_docker_config_is_one_clear_line(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    # JSON can carry a lone surrogate ("\udcff"): valid JSON, not valid UTF-8 text to send.
    entry = {"username": "someone", "password": "pass\udcffword"}
    (docker / "config.json").write_text(json.dumps({"auths": {registry.host: entry}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    with RegistryClient(_cfg(tmp_path, "ghcr.io")) as c, pytest.raises(RegistryError) as err:
        c.resolve(f"{registry.host}/faults/creds:1")
    assert str(err.value) == (
        f"the Docker config's entry for {registry.host}: registry credentials must be UTF-8 "
        "text, and this is not"
    )
