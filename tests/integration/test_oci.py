"""RegistryClient against a real registry (CNCF distribution), with and without a login, and
behind the fault-injecting proxy for the failures a real registry cannot produce on demand."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from playbookctl.bundle import build_bundle, push_bundle, read_bundle
from playbookctl.config import Config
from playbookctl.errors import RegistryError
from playbookctl.oci import (
    OCI_MANIFEST,
    DigestMismatchError,
    ManifestNotFoundError,
    RegistryClient,
    sha256_digest,
)
from playbookctl.oci.auth import Authenticator
from playbookctl.oci.fileblob import FileBlob
from playbookctl_dev.registry import LocalRegistry, free_port
from tests.support.faultproxy import FaultProxy
from tests.support.registry import start_registry
from tests.support.timing import ends_by

pytestmark = pytest.mark.integration

SECRET_PASSWORD = "s3cret-Passw0rd-do-not-print"


def _pipeline(name: str = "workflow", marker: str = "x") -> dict[str, object]:
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"tasks": [{"name": "t", "taskSpec": {"steps": [{"name": "s", "image": marker}]}}]},
    }


def _manifest(config: bytes, layer: bytes) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256_digest(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()


def _cfg(tmp_path: Path, host: str, **kw: object) -> Config:
    return Config(root=tmp_path, registry=host, **kw)  # type: ignore[arg-type]


@pytest.fixture
def client(registry: LocalRegistry, tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        yield c


# -- the protocol against the real registry ------------------------------------------------------


def test_blob_and_manifest_round_trip(client: RegistryClient, registry: LocalRegistry) -> None:
    repo = "it/roundtrip"
    config, layer = b"{}", b"layer-bytes"
    assert not client.blob_exists(repo, sha256_digest(layer))
    assert client.push_blob(repo, config) == sha256_digest(config)
    assert client.push_blob(repo, layer) == sha256_digest(layer)
    assert client.blob_exists(repo, sha256_digest(layer))
    assert client.get_blob(repo, sha256_digest(layer)) == layer
    manifest = _manifest(config, layer)
    digest = client.push_manifest(repo, "1.0.0", manifest, OCI_MANIFEST)
    assert digest == sha256_digest(manifest)
    desc = client.resolve(f"{registry.host}/{repo}:1.0.0")
    assert desc is not None
    assert (desc.digest, desc.media_type, desc.size) == (digest, OCI_MANIFEST, len(manifest))
    assert client.get_manifest(f"{registry.host}/{repo}@{digest}") == (
        manifest,
        OCI_MANIFEST,
        digest,
    )
    assert client.tag_exists(f"{registry.host}/{repo}:1.0.0")
    assert not client.tag_exists(f"{registry.host}/{repo}:2.0.0")
    assert client.resolve(f"{registry.host}/it/never-pushed:1") is None
    with pytest.raises(ManifestNotFoundError, match="not found"):
        client.get_manifest(f"{registry.host}/{repo}:2.0.0")


def test_a_token_request_names_each_scope_once(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """distribution's challenge names a repository's actions in the order a Go map gives them:
    `pull,push`, or now and then `push,pull`. The token service (the test world's real one) is
    asked for the scope the request needs and nothing it already covers, whichever order the
    challenge used: never the same scope twice (noise in its logs; a strict token service may
    refuse it). A fresh client's first request, a push, meets that challenge: clients are made
    until one met `push,pull` (about 1 in 8), so the case is always covered."""
    if registry.token_log is None:
        pytest.skip("the token service is another process's (a registry attached from root)")
    challenges: list[str] = []
    answer = Authenticator.answer

    def observed(self: Authenticator, host: str, challenge: str, *args: Any) -> bool:
        challenges.append(challenge)
        return answer(self, host, challenge, *args)

    monkeypatch.setattr(Authenticator, "answer", observed)
    prefix = f"it/scopes-{os.urandom(4).hex()}"
    repos: list[str] = []
    while len(repos) < 300 and not any(":push,pull" in x for x in challenges):
        repos.append(f"{prefix}/{len(repos)}")
        with RegistryClient(_cfg(tmp_path, registry.host)) as c:
            c.push_blob(repos[-1], b"scope named once\n", check=False)
    assert any(f'scope="repository:{r}:push,pull"' in x for r in repos for x in challenges), (
        f"no challenge named push,pull in {len(repos)} pushes: the case was not met"
    )
    asked = [x for x in registry.token_scopes() if any(f"{prefix}/" in s for s in x)]
    assert asked == [[f"repository:{r}:pull,push"] for r in repos]


def test_pull_tokens_for_many_repositories_are_asked_for_together(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """A release proves each registration by looking up its tags, one repository each: their
    pull tokens are asked for together, PREFETCH_SCOPES scopes a request (the first learning the
    token service from the registry's challenge), and the lookups then ask nothing more."""
    from playbookctl.oci import DOCKER_MANIFEST
    from playbookctl.oci.auth import PREFETCH_SCOPES
    from tests.support.images import config_only_manifest

    if registry.token_log is None:
        pytest.skip("the token service is another process's (a registry attached from root)")
    prefix = f"it/prefetch-{os.urandom(4).hex()}"
    refs = []
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        for n in range(PREFETCH_SCOPES + 8):
            repo, blob = f"{prefix}/{n}", f"stand-in {n}".encode()
            c.push_blob(repo, blob)
            digest = c.push_manifest(repo, "1", config_only_manifest(blob), DOCKER_MANIFEST)
            refs.append((f"{registry.host}/{repo}:1", digest))
    tokens = registry.tokens_issued()
    with RegistryClient(_cfg(tmp_path, registry.host)) as fresh:
        assert fresh.prefetch_pull_tokens([f"{t}@{d}" for t, d in refs]) == 2
        for tagged, digest in refs:
            found = fresh.resolve(tagged)
            assert found is not None
            assert found.digest == digest
    assert registry.tokens_issued() - tokens == 2
    asked = registry.token_scopes()[-2:]
    wanted = [f"repository:{prefix}/{n}:pull" for n in range(PREFETCH_SCOPES + 8)]
    assert asked == [wanted[:PREFETCH_SCOPES], wanted[PREFETCH_SCOPES:]]


# Counts the registry protocol's own requests: the token dance (a 401 and a token request per
# new scope) would add to them; bench_publish.py measures that.
@pytest.mark.plain_http
def test_existing_blobs_are_not_uploaded_again(client: RegistryClient) -> None:
    data = b"uploaded once"
    client.push_blob("it/skip", data)
    before = client.request_count
    client.push_blob("it/skip", data)
    assert client.request_count == before  # known from this client's own upload: no request
    with RegistryClient(client.config) as fresh:
        fresh.push_blob("it/skip", data)
        assert fresh.request_count == 1  # one HEAD, no POST/PUT


# Counts the registry protocol's own requests: the token dance (a 401 and a token request per
# new scope) would add to them; bench_publish.py measures that.
@pytest.mark.plain_http
def test_a_large_blob_is_found_by_its_head_whatever_its_size(client: RegistryClient) -> None:
    """A HEAD answers a blob's Content-Length with no body: a layer of megabytes exists (the
    body bound is for what is read, and a HEAD reads nothing)."""
    data = os.urandom(3 * 1024 * 1024)
    client.push_blob("it/large", data, check=False)
    with RegistryClient(client.config) as fresh:
        assert fresh.blob_exists("it/large", sha256_digest(data))
        assert fresh.push_blob("it/large", data) == sha256_digest(data)
        assert fresh.request_count == 1  # the HEAD found it: no upload


# Counts the registry protocol's own requests: the token dance (a 401 and a token request per
# new scope) would add to them; bench_publish.py measures that.
@pytest.mark.plain_http
def test_unchecked_upload_of_an_existing_blob_is_harmless(client: RegistryClient) -> None:
    data = b"uploaded twice"
    client.push_blob("it/twice", data)
    with RegistryClient(client.config) as fresh:
        assert fresh.push_blob("it/twice", data, check=False) == sha256_digest(data)
        assert fresh.request_count == 2  # POST + PUT, no HEAD
        assert fresh.get_blob("it/twice", sha256_digest(data)) == data


def test_cross_repository_mount(client: RegistryClient) -> None:
    data = b"mount me"
    digest = client.push_blob("it/mount-src", data)
    assert client.mount_blob("it/mount-dst", digest, "it/mount-src") is True
    assert client.get_blob("it/mount-dst", digest) == data
    missing = sha256_digest(b"nowhere")
    assert client.mount_blob("it/mount-dst2", missing, "it/mount-src") is False
    assert not client.blob_exists("it/mount-dst2", missing)


def test_manifest_digest_is_verified(client: RegistryClient, registry: LocalRegistry) -> None:
    config, layer = b"{}", b"l"
    client.push_blob("it/verify", config)
    client.push_blob("it/verify", layer)
    manifest = _manifest(config, layer)
    with pytest.raises(RegistryError, match="digest mismatch"):
        client.push_manifest("it/verify", "sha256:" + "0" * 64, manifest, OCI_MANIFEST)
    digest = client.push_manifest("it/verify", "v", manifest, OCI_MANIFEST)
    assert client.get_manifest(f"{registry.host}/it/verify:v@{digest}")[2] == digest


# Counts the registry protocol's own requests: the token dance (a 401 and a token request per
# new scope) would add to them; bench_publish.py measures that.
@pytest.mark.plain_http
def test_registry_refusal_is_a_clear_error(client: RegistryClient) -> None:
    # A manifest naming a blob the registry does not have: 400 MANIFEST_BLOB_UNKNOWN, no retry.
    before = client.request_count
    with pytest.raises(RegistryError, match=r"HTTP 400 \(MANIFEST_BLOB_UNKNOWN"):
        client.push_manifest("it/refused", "v", _manifest(b"{}", b"absent"), OCI_MANIFEST)
    assert client.request_count - before == 1


# -- a registry that demands a login (htpasswd, basic auth) -----------------------------------


def test_login_registry_without_credentials(auth_registry: LocalRegistry, tmp_path: Path) -> None:
    with (
        RegistryClient(_cfg(tmp_path, auth_registry.host)) as c,
        pytest.raises(RegistryError) as err,
    ):
        c.resolve(f"{auth_registry.host}/it/auth:1")
    assert "authentication required" in str(err.value)
    assert "no credentials found" in str(err.value)
    assert auth_registry.host in str(err.value)


def test_login_registry_with_env_credentials(
    auth_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", auth_registry.username)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", auth_registry.password)
    b = build_bundle([_pipeline()], {})
    with RegistryClient(_cfg(tmp_path, auth_registry.host)) as c:
        ref = f"{auth_registry.host}/it/auth-env:1.0.0"
        assert push_bundle(c, ref, b) == b.digest
        desc = c.resolve(ref)
        assert desc is not None
        assert desc.digest == b.digest


def test_login_registry_with_docker_config(
    auth_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    auth = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    with RegistryClient(_cfg(tmp_path, auth_registry.host)) as c:
        digest = c.push_blob("it/auth-docker", b"via docker config")
        assert c.get_blob("it/auth-docker", digest) == b"via docker config"


def test_wrong_password_never_printed_or_logged(
    auth_registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", auth_registry.username)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", SECRET_PASSWORD)
    caplog.set_level(logging.DEBUG)
    with (
        RegistryClient(_cfg(tmp_path, auth_registry.host)) as c,
        pytest.raises(RegistryError) as err,
    ):
        c.push_blob("it/auth-wrong", b"x")
    assert "credentials were refused" in str(err.value)
    encoded = base64.b64encode(f"{auth_registry.username}:{SECRET_PASSWORD}".encode()).decode()
    out = capsys.readouterr()
    for text in (str(err.value), repr(err.value), caplog.text, out.out, out.err, repr(c)):
        assert SECRET_PASSWORD not in text
        assert encoded not in text


def test_login_registry_concurrent_first_requests(
    auth_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads that all meet the first 401 at once must all log in, none report a refusal."""
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", auth_registry.username)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", auth_registry.password)
    with RegistryClient(_cfg(tmp_path, auth_registry.host)) as c, ThreadPoolExecutor(8) as pool:
        blobs = [f"concurrent {i}".encode() for i in range(16)]
        digests = list(pool.map(lambda b: c.push_blob("it/auth-race", b), blobs))
    assert digests == [sha256_digest(b) for b in blobs]


# -- the bearer token flow (ghcr.io / quay.io style), via the proxy's token endpoint ---------


def test_token_flow_with_basic_credentials(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault_proxy.require_token("robot", SECRET_PASSWORD)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", "robot")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", SECRET_PASSWORD)
    b = build_bundle([_pipeline(marker="token")], {})
    ref = f"{fault_proxy.host}/it/token:1.0.0"
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        assert c.resolve(ref) is None
        assert push_bundle(c, ref, b) == b.digest
        desc = c.resolve(ref)
        assert desc is not None
        assert desc.digest == b.digest
    assert fault_proxy.token_auth is not None
    scopes = {r["scope"] for r in fault_proxy.token_auth.token_requests}
    assert scopes == {"repository:it/token:pull", "repository:it/token:pull,push"}


def test_token_flow_anonymous_pull(
    fault_proxy: FaultProxy, registry: LocalRegistry, tmp_path: Path
) -> None:
    with RegistryClient(_cfg(tmp_path, registry.host)) as direct:
        digest = direct.push_blob("it/anon", b"public")
    fault_proxy.require_token("robot", SECRET_PASSWORD, anonymous_pull=True)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        assert c.get_blob("it/anon", digest) == b"public"
        with pytest.raises(RegistryError, match="authentication required to upload blob"):
            c.push_blob("it/anon", b"not allowed")


def test_token_flow_with_identity_token(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault_proxy.require_token("robot", "refresh-token-value")
    docker = tmp_path / "docker"
    docker.mkdir()
    entry = {"auths": {fault_proxy.host: {"identitytoken": "refresh-token-value"}}}
    (docker / "config.json").write_text(json.dumps(entry))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        c.push_blob("it/identity", b"with an identity token")
    assert fault_proxy.token_auth is not None
    assert {r["method"] for r in fault_proxy.token_auth.token_requests} == {"POST"}


def test_ready_bearer_token_from_the_environment(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault_proxy.require_token("robot", SECRET_PASSWORD)
    assert fault_proxy.token_auth is not None
    fault_proxy.token_auth.tokens["ready-made"] = {"repository:it/ready:pull,push"}
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_TOKEN", "ready-made")
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        digest = c.push_blob("it/ready", b"with a ready token")
        assert c.get_blob("it/ready", digest) == b"with a ready token"
    assert fault_proxy.token_auth.token_requests == []  # used as is, never exchanged
    assert all(status != 401 for _, _, status in fault_proxy.log)


def test_token_flow_bad_credentials_not_printed(
    fault_proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fault_proxy.require_token("robot", "right")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", "robot")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", SECRET_PASSWORD)
    caplog.set_level(logging.DEBUG)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c, pytest.raises(RegistryError) as err:
        c.resolve(f"{fault_proxy.host}/it/token-bad:1")
    assert fault_proxy.host in str(err.value)
    assert SECRET_PASSWORD not in str(err.value)
    assert SECRET_PASSWORD not in caplog.text


def test_credentials_not_sent_to_a_plain_http_token_service(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault_proxy.require_token("robot", SECRET_PASSWORD, realm="http://token.example.invalid/t")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", "robot")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", SECRET_PASSWORD)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c, pytest.raises(RegistryError) as err:
        c.resolve(f"{fault_proxy.host}/it/plain-realm:1")
    assert "token service token.example.invalid is plain HTTP" in str(err.value)


def _token_request(_method: str, path: str) -> bool:
    return path.startswith("/token")


@pytest.mark.parametrize(
    ("fault", "seen"), [("drop", -1), ("503", 503), ("500", 500), ("429", 429)]
)
def test_a_token_service_that_fails_once_is_asked_again(
    fault_proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    seen: int,
) -> None:
    """A token request that meets a dropped connection, a 5xx or a 429 is retried as a request
    to the registry itself is (registry-retries, within registry-deadline): one hiccup of the
    token service does not fail a fresh client's first push (test_verify.py's `world` fixture
    pushes that way, and errored once in a CI run). Bad credentials are not retried (below)."""
    fault_proxy.require_token("robot", SECRET_PASSWORD)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", "robot")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", SECRET_PASSWORD)
    if fault == "drop":
        fault_proxy.drop_next(1, match=_token_request)
    else:
        fault_proxy.fail_next(1, int(fault), match=_token_request)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        digest = c.push_blob("it/token-hiccup", b"pushed after the token service's hiccup")
        assert c.get_blob("it/token-hiccup", digest) == b"pushed after the token service's hiccup"
    tokens = [(m, s) for m, p, s in fault_proxy.log if _token_request(m, p)]
    assert tokens[:2] == [("GET", seen), ("GET", 200)]


def test_a_token_service_that_keeps_failing_fails_after_the_retries(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault_proxy.require_token("robot", SECRET_PASSWORD)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", "robot")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", SECRET_PASSWORD)
    fault_proxy.fail_next(-1, 503, match=_token_request)
    with (
        RegistryClient(_cfg(tmp_path, fault_proxy.host), retries=2) as c,
        pytest.raises(RegistryError) as err,
    ):
        c.push_blob("it/token-down", b"never pushed")
    assert str(err.value) == (
        f"registry {fault_proxy.host}: token service answered HTTP 503 after 3 attempt(s)"
    )
    assert [s for m, p, s in fault_proxy.log if _token_request(m, p)] == [503, 503, 503]


def test_a_token_service_retry_after_past_the_deadline_is_one_line_naming_it(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for the registry itself (test_oci_protocol.py): a 429 whose Retry-After reaches past
    registry-deadline fails at once, and the line says that is why, not only "HTTP 429"."""
    fault_proxy.require_token("robot", SECRET_PASSWORD)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", "robot")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", SECRET_PASSWORD)
    fault_proxy.fail_next(1, 429, retry_after="3600", match=_token_request)
    # A deadline of 60 s: waiting until it (instead of refusing at once) would show.
    with RegistryClient(_cfg(tmp_path, fault_proxy.host, registry_deadline=60.0)) as c:
        started = time.monotonic()
        with pytest.raises(RegistryError) as err:
            c.resolve(f"{fault_proxy.host}/it/token-throttled:1")
        assert time.monotonic() - started < ends_by(0.0, runaway=60.0)
    assert str(err.value) == (
        f"registry {fault_proxy.host}: token service answered HTTP 429, and the token service "
        "asks to retry after 3600 s (Retry-After), past the operation's deadline "
        "(registry-deadline 60 s)"
    )
    assert [s for m, p, s in fault_proxy.log if _token_request(m, p)] == [429]  # not asked again


def test_bad_credentials_at_the_token_service_are_not_retried(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault_proxy.require_token("robot", "right")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", "robot")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", "wrong")
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c, pytest.raises(RegistryError) as err:
        c.push_blob("it/token-refused", b"never pushed")
    assert "authentication failed at its token service (HTTP 401)" in str(err.value)
    assert [s for m, p, s in fault_proxy.log if _token_request(m, p)] == [401]


# -- transient failures: retried with backoff --------------------------------------------------


def test_500s_for_a_while_then_success(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    fault_proxy.fail_next(3, 500)
    b = build_bundle([_pipeline(marker="500s")], {})
    ref = f"{fault_proxy.host}/it/flaky:1.0.0"
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        assert push_bundle(c, ref, b) == b.digest
        assert c.resolve(ref) is not None
    assert [s for _, _, s in fault_proxy.log[:3]] == [500, 500, 500]


def test_429_honours_retry_after(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    fault_proxy.fail_next(1, 429, retry_after="1")
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        start = time.monotonic()
        assert c.resolve(f"{fault_proxy.host}/it/throttled:1") is None
        assert time.monotonic() - start >= 1.0
    assert [s for _, _, s in fault_proxy.log] == [429, 404]


def test_a_status_the_caller_asked_for_is_its_answer_not_retried(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """`ok` is what the caller reads: a status there is returned even where it would otherwise
    be retried (Retries.run's `ok`)."""
    fault_proxy.fail_next(1, 503)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        resp = c.call("GET", fault_proxy.host, "it/asked", "tags/list", what="tags", ok=(200, 503))
    assert resp.status_code == 503
    assert [s for _, _, s in fault_proxy.log] == [503]  # not asked again


def test_persistent_503_gives_up_after_bounded_retries(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.fail_next(-1, 503)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host), retries=3) as c:
        start = time.monotonic()
        with pytest.raises(RegistryError) as err:
            c.resolve(f"{fault_proxy.host}/it/down:1")
        assert time.monotonic() - start < 10
    assert f"registry {fault_proxy.host}" in str(err.value)
    assert "after 4 attempt(s): HTTP 503" in str(err.value)
    assert len(fault_proxy.log) == 4


@pytest.mark.parametrize("held", ["in-memory", "in-a-file"])
def test_connection_dropped_mid_upload_is_retried(
    fault_proxy: FaultProxy, tmp_path: Path, held: str
) -> None:
    """In a file too (an engine build's layer): the retried PUT sends it from its first byte."""
    fault_proxy.drop_next(
        1, match=lambda m, p: m == "PUT" and "/blobs/uploads/" in p, partial_body=True
    )
    data = (b"x" if held == "in-memory" else b"y") * 200_000  # not the other case's blob
    blob: bytes | FileBlob = data
    if held == "in-a-file":
        f = tempfile.TemporaryFile()  # noqa: SIM115 - the FileBlob owns it
        f.write(data)
        f.flush()
        blob = FileBlob(f, len(data), sha256_digest(data))
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        digest = c.push_blob("it/dropped", blob)
        assert c.get_blob("it/dropped", digest) == data
    assert ("PUT", -1) in {(m, s) for m, _, s in fault_proxy.log}


def test_registry_dies_mid_push(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    """Dies after the config blob: a clear error well within 30 s, and no tag half-published."""
    b = build_bundle([_pipeline(marker="dies"), _pipeline("other", "dies")], {})
    ref = f"{fault_proxy.host}/it/dies:1.0.0"
    fault_proxy.die_after(3)  # POST + PUT of the config blob, POST of a layer: dies on its PUT
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        start = time.monotonic()
        with pytest.raises(RegistryError) as err:
            push_bundle(c, ref, b)
        assert time.monotonic() - start < 30
    assert f"registry {fault_proxy.host}" in str(err.value)
    assert "ConnectionError" in str(err.value)
    assert not any(m == "PUT" and "/manifests/" in p for m, p, _ in fault_proxy.log)
    fault_proxy.heal()
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        assert c.resolve(ref) is None


def test_corrupted_content_is_caught(
    fault_proxy: FaultProxy, registry: LocalRegistry, tmp_path: Path
) -> None:
    """A digest names content: what comes back must hash to it (Tekton checks @sha256 refs)."""
    with RegistryClient(_cfg(tmp_path, registry.host)) as direct:
        config, layer = b"{}", b"layer to corrupt"
        direct.push_blob("it/corrupt", config)
        direct.push_blob("it/corrupt", layer)
        digest = direct.push_manifest("it/corrupt", "v", _manifest(config, layer), OCI_MANIFEST)
    fault_proxy.corrupt_next(-1, match=lambda m, _p: m == "GET")
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        with pytest.raises(
            DigestMismatchError, match=r"hashes to sha256:[0-9a-f]+, not to sha256:"
        ):
            c.get_manifest(f"{fault_proxy.host}/it/corrupt@{digest}")
        with pytest.raises(DigestMismatchError, match="does not match its digest"):
            c.get_blob("it/corrupt", sha256_digest(layer))
        rb = read_bundle(c, f"{fault_proxy.host}/it/corrupt@{digest}")
        assert [f.rule for f in rb.findings] == ["bundle.digest"]
    fault_proxy.heal()
    bundle = build_bundle([_pipeline(marker="corrupt")], {})
    with RegistryClient(_cfg(tmp_path, registry.host)) as direct:
        push_bundle(direct, f"{registry.host}/it/corrupt-layer:1", bundle)
    fault_proxy.corrupt_next(1, match=lambda m, p: m == "GET" and "/blobs/" in p)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        rb = read_bundle(c, f"{fault_proxy.host}/it/corrupt-layer@{bundle.digest}")
        assert {f.rule for f in rb.findings} == {"bundle.digest", "bundle.manifest-annotations"}


def test_registry_process_killed(tmp_path: Path) -> None:
    """The real registry stops between two pushes: the next fails fast and names it."""
    reg = start_registry()
    reg.login(Path(os.environ["DOCKER_CONFIG"]))
    try:
        with RegistryClient(_cfg(tmp_path, reg.host)) as c:
            c.push_blob("it/killed", b"before")
            reg.stop()
            start = time.monotonic()
            with pytest.raises(
                RegistryError, match=f"registry {reg.host}: check blob .* ConnectionError"
            ):
                c.push_blob("it/killed", b"after")
            assert time.monotonic() - start < 30
    finally:
        reg.stop()


def test_credential_helper(
    auth_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """credHelpers: `docker-credential-<name> get` is asked, with the host on stdin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-pbtest"
    answer = json.dumps({"Username": auth_registry.username, "Secret": auth_registry.password})
    helper.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] && [ "$(cat)" = "{auth_registry.host}" ] || exit 1\n'
        f"echo '{answer}'\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"credHelpers": {auth_registry.host: "pbtest"}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    with RegistryClient(_cfg(tmp_path, auth_registry.host)) as c:
        digest = c.push_blob("it/helper", b"via a credential helper")
        assert c.blob_exists("it/helper", digest)


# -- unreachable registries fail fast ---------------------------------------------------------


def test_refused_port_fails_fast_with_defaults(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    with RegistryClient(_cfg(tmp_path, host)) as c:  # default timeout and retries
        start = time.monotonic()
        with pytest.raises(RegistryError) as err:
            c.resolve(f"{host}/it/nothing:1")
        assert time.monotonic() - start < 30
    assert f"registry {host}" in str(err.value)
    assert "ConnectionError" in str(err.value)


def test_silent_server_times_out(tmp_path: Path) -> None:
    """A registry that accepts connections and never answers: per-request timeouts bound it."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        cfg = _cfg(tmp_path, host, registry_timeout=1.0, registry_deadline=60.0)
        with RegistryClient(cfg, retries=2) as c:
            start = time.monotonic()
            with pytest.raises(RegistryError) as err:
                c.resolve(f"{host}/it/silent:1")
            elapsed = time.monotonic() - start
    # 3 tries cut at registry-timeout (1 s), at most 0.25 + 0.5 s of backoff between them;
    # without the timeout the first try would wait for the deadline (60 s).
    assert 2.0 <= elapsed < ends_by(3 * 1.0 + 0.75, runaway=60.0), elapsed
    assert "registry-timeout" in str(err.value)
