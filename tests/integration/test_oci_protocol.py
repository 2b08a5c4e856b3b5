"""The distribution protocol as real registries speak it, on the real `docker-registry`, with the
fault-injecting proxy where a registry must misbehave on demand (an upload Location elsewhere,
a body limit in front, a media type refused, a late read, throttling).

Each test ends in a correct result, or in one clear line (a RegistryError: exit 1), within the
deadline; and no credential goes to another host or in clear.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from playbookctl.config import Config
from playbookctl.errors import RegistryError
from playbookctl.oci import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    RegistryClient,
    image_index,
    sha256_digest,
)
from playbookctl.oci.fileblob import FileBlob
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy
from tests.support.timing import ends_by, least_backoff
from tests.support.tls import TestCA, registry_name

# plain_http: the fault proxies here forward plain HTTP to the registry behind them, and the
# request counts are the protocol's own (README "The test world").
pytestmark = [pytest.mark.integration, pytest.mark.plain_http]

USER, PASSWORD = "pusher", "s3cret-do-not-send-elsewhere"


def _cfg(tmp_path: Path, host: str, **kw: object) -> Config:
    values: dict[str, object] = {"registry_timeout": 5.0, "registry_deadline": 8.0}
    values.update(kw)
    return Config(root=tmp_path, registry=host, **values)  # type: ignore[arg-type]


def _login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY_PASSWORD", PASSWORD)


def _manifest(config: bytes, layer: bytes, media_type: str = OCI_MANIFEST) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
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


def _no_secret_anywhere(*proxies: FaultProxy) -> None:
    for proxy in proxies:
        for _method, _path, auth in proxy.seen:
            assert PASSWORD not in auth


@pytest.fixture
def other_host(registry: LocalRegistry) -> Iterator[FaultProxy]:
    """Another origin in front of the same registry (another port: another origin)."""
    with FaultProxy(registry.host) as proxy:
        yield proxy


@pytest.fixture
def tls_proxy(
    registry: LocalRegistry, test_ca: TestCA, resolve_test_names: None
) -> Iterator[FaultProxy]:
    """An HTTPS front (its own name, a certificate from test_ca) for the plain registry."""
    name = registry_name()
    cert = test_ca.issue(name.split(".")[0], dns=(name,))
    with FaultProxy(registry.host, tls=(cert, cert.with_suffix(".key")), name=name) as proxy:
        yield proxy


def _tls_cfg(tmp_path: Path, proxy: FaultProxy, test_ca: TestCA, **kw: object) -> Config:
    certs = tmp_path / "certs.d" / proxy.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(test_ca.cert.read_bytes())
    return _cfg(tmp_path, proxy.host, registry_certs_dir=str(tmp_path / "certs.d"), **kw)


def _uploads(method: str) -> object:
    return lambda m, p: m == method and "/blobs/uploads/" in p


# -- credentials scoped like cookies --------------------------------------------------------------


def test_an_upload_location_on_another_host_gets_no_credentials(
    fault_proxy: FaultProxy,
    other_host: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fault_proxy.require_token(USER, PASSWORD)
    _login(monkeypatch)
    # Every upload POST's answer (-1: the first POST is refused for a token, not forwarded).
    fault_proxy.rewrite_location_next(
        -1,
        lambda loc: loc.replace(fault_proxy.host, other_host.host),
        match=_uploads("POST"),  # type: ignore[arg-type]
    )
    data = b"uploaded through another host"
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        digest = c.push_blob("scope/elsewhere", data, check=False)
        assert c.get_blob("scope/elsewhere", digest) == data
    puts = [(m, a) for m, p, a in other_host.seen if "/blobs/uploads/" in p]
    assert puts == [("PUT", "")]  # the upload went there, without any Authorization
    _no_secret_anywhere(fault_proxy, other_host)


def test_a_redirect_to_another_host_is_followed_without_credentials(
    fault_proxy: FaultProxy,
    other_host: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fault_proxy.require_token(USER, PASSWORD)
    _login(monkeypatch)
    data = b"served from storage elsewhere"
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        digest = c.push_blob("scope/redirect", data)
        # As Docker Hub and GHCR send blob reads to a CDN or object storage.
        fault_proxy.redirect_next(
            1,
            lambda path: f"{other_host.url}{path}",
            match=lambda m, p: m == "GET" and "/blobs/sha256:" in p,
        )
        assert c.get_blob("scope/redirect", digest) == data
    assert [(m, a) for m, _p, a in other_host.seen] == [("GET", "")]
    _no_secret_anywhere(fault_proxy, other_host)


def test_an_https_registry_sending_an_upload_to_plain_http_is_refused(
    tls_proxy: FaultProxy,
    other_host: FaultProxy,
    test_ca: TestCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tls_proxy.require_token(USER, PASSWORD)
    _login(monkeypatch)
    tls_proxy.rewrite_location_next(
        -1,
        lambda loc: "http://" + other_host.host + "/" + loc.split("/", 3)[3],
        match=_uploads("POST"),  # type: ignore[arg-type]
    )
    with (
        RegistryClient(_tls_cfg(tmp_path, tls_proxy, test_ca)) as c,
        pytest.raises(RegistryError, match="refusing a downgrade from HTTPS") as err,
    ):
        c.push_blob("scope/downgrade", b"never in clear", check=False)
    assert "\n" not in str(err.value)
    assert other_host.seen == []  # nothing at all went over plain HTTP
    _no_secret_anywhere(tls_proxy)


@pytest.mark.parametrize("scheme", ["http", "HTTP", "Http"])
def test_a_plain_http_token_realm_of_an_https_registry_is_refused(
    tls_proxy: FaultProxy,
    test_ca: TestCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
) -> None:
    tls_proxy.require_token(USER, PASSWORD, realm=f"{scheme}://{tls_proxy.host}/token")
    _login(monkeypatch)
    with (
        RegistryClient(_tls_cfg(tmp_path, tls_proxy, test_ca)) as c,
        pytest.raises(RegistryError, match="plain HTTP while the registry is HTTPS"),
    ):
        c.blob_exists("scope/realm", sha256_digest(b"x"))
    assert tls_proxy.token_auth is not None
    assert tls_proxy.token_auth.token_requests == []
    _no_secret_anywhere(tls_proxy)


def test_origins_compare_scheme_and_host_case_insensitively(
    tls_proxy: FaultProxy,
    test_ca: TestCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Location spelled HTTPS://REG-...:port is the registry's own origin: it gets the token
    (and an upload through it works); a realm spelled HTTPS:// works too."""
    tls_proxy.require_token(USER, PASSWORD, realm=f"HTTPS://{tls_proxy.host.upper()}/token")
    _login(monkeypatch)
    tls_proxy.rewrite_location_next(
        -1,
        lambda loc: "HTTPS://" + tls_proxy.host.upper() + "/" + loc.split("/", 3)[3],
        match=_uploads("POST"),  # type: ignore[arg-type]
    )
    data = b"same origin, other spelling"
    with RegistryClient(_tls_cfg(tmp_path, tls_proxy, test_ca)) as c:
        digest = c.push_blob("scope/case", data, check=False)
        assert c.get_blob("scope/case", digest) == data
    put = [a for m, p, a in tls_proxy.seen if m == "PUT" and "/blobs/uploads/" in p]
    assert len(put) == 1
    assert put[0].startswith("Bearer ")


# -- the upload protocol --------------------------------------------------------------------------


def test_a_relative_location_resolves_against_the_request_url(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    # `<uuid>?_state=...`, no leading slash: RFC 3986 puts it under /v2/<repo>/blobs/uploads/.
    fault_proxy.rewrite_location_next(
        2,
        lambda loc: loc.rsplit("/", 1)[1],
        match=_uploads("POST"),  # type: ignore[arg-type]
    )
    data = b"relative location"
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        digest = c.push_blob("upload/relative", data, check=False)
        assert c.get_blob("upload/relative", digest) == data
    assert all(s != 404 for _m, _p, s in fault_proxy.log)


def _file_blob(data: bytes) -> FileBlob:
    """`data` held in a file, as build.engine_image holds an engine build's layers."""
    f = tempfile.TemporaryFile()  # noqa: SIM115 - the FileBlob owns it
    f.write(data)
    f.flush()
    return FileBlob(f, len(data), sha256_digest(data))


@pytest.mark.parametrize("held", ["in-memory", "in-a-file"])
def test_a_blob_is_sent_with_its_length(fault_proxy: FaultProxy, tmp_path: Path, held: str) -> None:
    """Streamed from its file, a blob is still framed by its Content-Length, not chunked: as
    docker pushes it, and what a front that counts bytes (a body limit, a length check) needs."""
    data = os.urandom(300_000)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        blob = data if held == "in-memory" else _file_blob(data)
        digest = c.push_blob(f"upload/framed-{held}", blob, check=False)
        assert c.get_blob(f"upload/framed-{held}", digest, max_bytes=len(data)) == data
    puts = [f for m, p, f in fault_proxy.framing if m == "PUT" and "/blobs/uploads/" in p]
    assert puts == [f"length {len(data)}"]


@pytest.mark.parametrize("held", ["in-memory", "in-a-file"])
def test_a_body_limit_in_front_of_the_registry_is_met_with_chunks(
    fault_proxy: FaultProxy, tmp_path: Path, held: str
) -> None:
    """nginx's client_max_body_size 1m: the monolithic PUT gets 413, the blob goes in PATCH
    chunks that fit; the next blob goes in chunks at once. A blob held in a file (an engine
    build's layer) too: streamed into the refused PUT, then read a chunk at a time."""
    fault_proxy.max_body = 1024 * 1024
    big = os.urandom(5 * 1024 * 1024 // 2)
    second = os.urandom(3 * 1024 * 1024 // 2)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        digest = c.push_blob(
            "upload/limited", big if held == "in-memory" else _file_blob(big), check=False
        )
        before = len(fault_proxy.log)
        digest2 = c.push_blob(
            "upload/limited", second if held == "in-memory" else _file_blob(second), check=False
        )
        assert c.get_blob("upload/limited", digest, max_bytes=len(big)) == big
        assert c.get_blob("upload/limited", digest2, max_bytes=len(second)) == second
    statuses = [(m, s) for m, p, s in fault_proxy.log if "/blobs/uploads/" in p]
    assert ("PUT", 413) in statuses
    assert ("PATCH", 202) in statuses
    later = [(m, s) for m, _p, s in fault_proxy.log[before:]]
    assert ("PUT", 413) not in later  # the size that worked is used at once
    assert ("PATCH", 413) not in later


def test_a_registry_that_wants_chunks_of_a_minimum_length(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.max_body = 700 * 1024
    fault_proxy.chunk_min_length = 512 * 1024
    data = os.urandom(2 * 1024 * 1024)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        digest = c.push_blob("upload/minimum", data, check=False)
        assert c.get_blob("upload/minimum", digest, max_bytes=len(data)) == data


def test_chunks_that_cannot_fit_are_one_clear_line(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    fault_proxy.max_body = 100 * 1024
    fault_proxy.chunk_min_length = 512 * 1024
    # Retries and a deadline that allow a 413 tried again to take least_backoff(14) = 21.9 s.
    cfg = _cfg(tmp_path, fault_proxy.host, registry_retries=14, registry_deadline=120.0)
    started = time.monotonic()
    with (
        RegistryClient(cfg) as c,
        pytest.raises(RegistryError, match=r"too large \(HTTP 413\).*at least 524288 bytes") as e,
    ):
        c.push_blob("upload/impossible", os.urandom(1024 * 1024), check=False)
    assert "\n" not in str(e.value)
    assert time.monotonic() - started < ends_by(0.0, runaway=least_backoff(14))
    # The whole blob (PUT), then chunks of 1 MiB and of the 512 KiB asked for: each refused once.
    refused = [m for m, _p, status in fault_proxy.log if status == 413]
    assert refused == ["PUT", "PATCH", "PATCH"], fault_proxy.log


def test_an_out_of_step_chunk_resumes_from_the_registry_range(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.max_body = 512 * 1024
    data = os.urandom(1536 * 1024)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        c.push_blob("upload/range", os.urandom(600 * 1024), check=False)  # learns: chunks
        fault_proxy.fail_next(
            1,
            416,
            match=lambda m, p: m == "PATCH",
            body=b'{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"range"}]}',
        )
        digest = c.push_blob("upload/range", data, check=False)
        assert c.get_blob("upload/range", digest, max_bytes=len(data)) == data
    assert any(m == "GET" and "/blobs/uploads/" in p for m, p, _s in fault_proxy.log)


def test_a_cross_repository_mount_uploads_nothing(registry: LocalRegistry, tmp_path: Path) -> None:
    data = b"mounted, not uploaded"
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        digest = c.push_blob("upload/mount-src", data)
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        assert c.push_blob("upload/mount-dst", data, mount_from="upload/mount-src") == digest
        assert c.request_count == 2  # HEAD (absent) + POST ?mount= (201): no upload
        assert c.get_blob("upload/mount-dst", digest) == data
        # Not offered (the source lacks it): the session the POST opened takes the upload.
        other = b"not in the source"
        c.push_blob("upload/mount-dst", other, mount_from="upload/mount-nowhere", check=False)
        assert c.get_blob("upload/mount-dst", sha256_digest(other)) == other


def test_a_head_answer_still_held_does_not_break_its_connections_next_request(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something still holding a HEAD's answer (a traceback's frames did) once made the
    connection's next request fail (http.client: ResponseNotReady), to be retried on another:
    a request too many, and a failure where retries were spent."""
    held: list[object] = []
    release = urllib3.response.HTTPResponse.release_conn

    def holding(self: urllib3.response.HTTPResponse) -> None:
        held.append(self)
        release(self)

    monkeypatch.setattr(urllib3.response.HTTPResponse, "release_conn", holding)
    data = b"checked, then read"
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        digest = c.push_blob("head/held", data, check=False)
    absent = sha256_digest(b"never pushed")
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        assert not c.blob_exists("head/held", absent)  # its token, its connection
        before = c.request_count
        assert not c.blob_exists("head/held", absent)  # a HEAD (404 is not remembered)
        assert c.get_blob("head/held", digest) == data  # then a GET on the same connection
        assert c.request_count - before == 2  # nothing retried


def test_a_single_request_upload_is_one_request(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    """A registry that completes `POST ?digest=` with the body (the spec's single-request
    upload): one request per blob, its answer's digest checked."""
    fault_proxy.single_request_uploads = True
    blobs = [b"single request", b"and another"]
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        for data in blobs:
            before = c.request_count
            digest = c.push_blob("upload/single", data, check=False)
            assert c.request_count == before + 1
            assert c.get_blob("upload/single", digest) == data
    posts = [(m, p, st) for m, p, st in fault_proxy.log if "/blobs/uploads/" in p]
    assert [(m, st) for m, _p, st in posts] == [("POST", 201), ("POST", 201)]
    assert all("?digest=sha256:" in p for _m, p, _s in posts)


def test_a_single_request_upload_answered_202_goes_on_with_put(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """distribution 2.8 answers `POST ?digest=` with 202 and ignores the body: the upload goes
    on in the session it opened (PUT), and later blobs are not offered that way again (the body
    is never sent twice per blob after that)."""
    first, second = b"offered in one request", b"not offered again"
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        d1 = c.push_blob("upload/fallback", first, check=False)
        after_first = len(fault_proxy.log)
        d2 = c.push_blob("upload/fallback", second, check=False)
        assert c.get_blob("upload/fallback", d1) == first
        assert c.get_blob("upload/fallback", d2) == second
    log = fault_proxy.log
    assert [(m, "digest=sha256:" in p, st) for m, p, st in log[:after_first]] == [
        ("POST", True, 202),
        ("PUT", True, 201),
    ]
    later = [(m, "digest=sha256:" in p, st) for m, p, st in log[after_first:] if "/uploads/" in p]
    assert later == [("POST", False, 202), ("PUT", True, 201)]


def test_a_blob_seen_in_another_repository_is_mounted(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """A bundle's config is the same for every bundle: pushed once, then mounted (one request)
    into every other repository the client writes it to."""
    config = b'{"same": "for every bundle"}'
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        digest = c.push_blob("mounts/a", config, check=False)
        before = c.request_count
        assert c.push_blob("mounts/b", config, check=False) == digest
        assert c.request_count == before + 1  # POST ?mount=&from=mounts/a: 201
        assert c.get_blob("mounts/b", digest) == config


def test_a_repository_to_push_to_costs_one_token(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup then a push on a repository the run said it writes to: the token service is
    asked once, for pull and push, not once for each."""
    _login(monkeypatch)
    fault_proxy.require_token(USER, PASSWORD)
    assert fault_proxy.token_auth is not None
    repo = "tokens/once"
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        c.intend_push(f"{fault_proxy.host}/{repo}:1.0.0")
        assert c.resolve(f"{fault_proxy.host}/{repo}:1.0.0") is None
        c.push_blob(repo, b"pushed with the same token", check=False)
        c.push_blob(repo, b"and again", check=False)
    scopes = [r["scope"] for r in fault_proxy.token_auth.token_requests]
    assert scopes == [f"repository:{repo}:pull,push"]


def test_a_mount_source_is_asked_for_with_each_new_repository_token(
    fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the run mounted from a repository, the first token of each repository it writes to
    covers pull there too: its lookups, mounts and pushes cost the token service one request."""
    _login(monkeypatch)
    fault_proxy.require_token(USER, PASSWORD)
    assert fault_proxy.token_auth is not None
    base = b"a base layer, mounted into every image repository"
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        digest = c.push_blob("tokens/base", base, check=False)
        for repo in ("tokens/first", "tokens/second", "tokens/third"):
            c.intend_push(f"{fault_proxy.host}/{repo}:1.0.0")
            assert c.resolve(f"{fault_proxy.host}/{repo}:1.0.0") is None
            assert c.mount_blob(repo, digest, "tokens/base")
            c.push_blob(repo, repo.encode(), check=False)
            assert c.get_blob(repo, digest) == base
    asked = [r["scope"] for r in fault_proxy.token_auth.token_requests]
    for repo in ("tokens/second", "tokens/third"):  # the mount source known by then
        wanted = sorted([f"repository:{repo}:pull,push", "repository:tokens/base:pull"])
        assert [a for a in asked if f"repository:{repo}:" in a] == [" ".join(wanted)]
        # The token service is known by then: its token is asked first, no request meets a 401.
        assert [st for _m, p, st in fault_proxy.log if f"/{repo}/" in p and st == 401] == []


# -- media types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refused", "prefer", "expected"),
    [
        ((), DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_LIST),
        ((DOCKER_MANIFEST_LIST,), DOCKER_MANIFEST_LIST, OCI_INDEX),
        ((OCI_INDEX,), OCI_INDEX, DOCKER_MANIFEST_LIST),
    ],
)
def test_the_index_media_type_is_the_one_the_registry_takes(
    fault_proxy: FaultProxy,
    tmp_path: Path,
    refused: tuple[str, ...],
    prefer: str,
    expected: str,
) -> None:
    fault_proxy.refused_media_types = set(refused)
    repo = f"media/{len(refused)}-{prefer.rsplit('.', 2)[-2]}"
    config, layer = b"{}", f"layer {repo}".encode()
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        chosen = c.index_media_type(f"{fault_proxy.host}/{repo}:1.0.0", prefer=prefer)
        assert chosen == expected
        probes = [p for m, p, _s in fault_proxy.log if m == "PUT"]
        assert probes
        assert all("/manifests/sha256:" in p for p in probes)  # untagged probes
        # Only now the child, then the index of the chosen type.
        c.push_blob(repo, config)
        c.push_blob(repo, layer)
        child = _manifest(config, layer, DOCKER_MANIFEST)
        child_digest = c.push_manifest(repo, sha256_digest(child), child, DOCKER_MANIFEST)
        data, media_type = image_index(
            [
                (
                    Descriptor(DOCKER_MANIFEST, child_digest, len(child)),
                    {"os": "linux", "architecture": "amd64"},
                )
            ],
            chosen,
        )
        digest = c.push_manifest(repo, "1.0.0", data, media_type)
        assert c.resolve(f"{fault_proxy.host}/{repo}:1.0.0") == Descriptor(
            expected, digest, len(data)
        )
        before = c.request_count
        assert c.index_media_type(f"{fault_proxy.host}/{repo}:2.0.0", prefer=prefer) == chosen
        # Decided once per registry and run: another repository asks nothing either.
        assert c.index_media_type(f"{fault_proxy.host}/{repo}-other:1.0.0", prefer=prefer) == chosen
        assert c.request_count == before


# -- read-after-write ------------------------------------------------------------------------------


def test_a_just_pushed_manifest_and_blob_are_waited_for(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """An eventually consistent registry (S3 behind several nodes): the first reads of a write
    it acknowledged answer 404; the client waits (backoff, within registry-deadline)."""
    repo = "consistency/late"
    config, layer = b"{}", b"late layer"
    unknown = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        c.push_blob(repo, config)
        c.push_blob(repo, layer)
        manifest = _manifest(config, layer)
        digest = c.push_manifest(repo, "1.0.0", manifest, OCI_MANIFEST)
        fault_proxy.fail_next(
            3, 404, match=lambda m, p: m == "GET" and "/manifests/" in p, body=unknown
        )
        assert c.read_back(f"{fault_proxy.host}/{repo}@{digest}").digest == digest
        fault_proxy.fail_next(
            2, 404, match=lambda m, p: m == "GET" and "/manifests/1.0.0" in p, body=unknown
        )
        assert c.get_manifest(f"{fault_proxy.host}/{repo}:1.0.0")[2] == digest
        fault_proxy.fail_next(2, 404, match=lambda m, p: m == "GET" and "/blobs/sha256:" in p)
        assert c.get_blob(repo, sha256_digest(layer)) == layer


@pytest.mark.timeout(60)  # without its deadline the read-back would wait for ever: fail by name
def test_a_manifest_never_served_is_one_line_within_the_deadline(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    repo = "consistency/never"
    config, layer = b"{}", b"never layer"
    with RegistryClient(_cfg(tmp_path, fault_proxy.host, registry_deadline=3.0)) as c:
        c.push_blob(repo, config)
        c.push_blob(repo, layer)
        digest = c.push_manifest(repo, "1.0.0", _manifest(config, layer), OCI_MANIFEST)
        fault_proxy.fail_next(-1, 404, match=lambda m, p: m == "GET" and "/manifests/" in p)
        started = time.monotonic()
        with pytest.raises(RegistryError, match="not readable yet after") as err:
            c.read_back(f"{fault_proxy.host}/{repo}@{digest}")
        # Without its deadline the wait for a manifest never served never ends.
        assert time.monotonic() - started < ends_by(3.0, runaway=math.inf)
        assert "\n" not in str(err.value)
        # A manifest nobody pushed here is not waited for: asked once, not again.
        asked = len(fault_proxy.log)
        assert c.resolve(f"{fault_proxy.host}/{repo}:9.9.9") is None
        assert [(m, p) for m, p, _s in fault_proxy.log[asked:]] == [
            ("GET", f"/v2/{repo}/manifests/9.9.9")
        ]


# -- throttling ----------------------------------------------------------------------------------


def _http_date(seconds: float) -> str:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return email.utils.format_datetime(when, usegmt=True)


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured(fault_proxy: FaultProxy, tmp_path: Path, form: str) -> None:
    # Timed from before the date is written: it names a whole second, 2-3 s from then, and the
    # client waits until it, so however late the client runs the wait ends >= 2 s from here.
    # (Timed from the request instead, a slow start ate into it.) 1.5: room for the two clocks.
    started = time.monotonic()
    after = "2" if form == "seconds" else _http_date(3)
    fault_proxy.fail_next(1, 429, retry_after=after, match=lambda m, p: m == "HEAD")
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        assert not c.blob_exists("throttle/after", sha256_digest(b"x"))
        assert time.monotonic() - started >= 1.5
    assert [status for _m, _p, status in fault_proxy.log] == [429, 404]  # waited, asked again


def test_retry_after_past_the_deadline_is_one_line_at_once(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.fail_next(1, 429, retry_after="3600", match=lambda m, p: m == "HEAD")
    # A deadline of 60 s: waiting until it (instead of refusing at once) would show.
    with RegistryClient(_cfg(tmp_path, fault_proxy.host, registry_deadline=60.0)) as c:
        started = time.monotonic()
        with pytest.raises(RegistryError, match=r"retry after 3600 s \(Retry-After\)") as err:
            c.blob_exists("throttle/long", sha256_digest(b"x"))
        assert time.monotonic() - started < ends_by(0.0, runaway=60.0)
        assert "\n" not in str(err.value)
    assert [status for _m, _p, status in fault_proxy.log] == [429]  # not tried again


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repo", "tag", "message"),
    [
        ("names/" + "a" * 260, "1.0.0", "more than the 255"),
        ("names/UPPER", "1.0.0", "bad repository name"),
        ("names/ok", "-starts-with-dash", "bad tag"),
        ("names/ok", "t" * 129, "bad tag"),
        ("names/ok", "ünïcode", "bad tag"),
    ],
)
def test_bad_names_are_refused_before_any_request(
    fault_proxy: FaultProxy, tmp_path: Path, repo: str, tag: str, message: str
) -> None:
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        with pytest.raises(RegistryError, match=message):
            c.push_manifest(repo, tag, b"{}", OCI_MANIFEST)
        with pytest.raises(RegistryError, match=message):
            c.resolve(f"{fault_proxy.host}/{repo}:{tag}")
        assert c.request_count == 0
    assert fault_proxy.log == []


# -- writers at once ------------------------------------------------------------------------------


def test_a_manifest_refused_for_an_unknown_blob_uploads_it_and_retries(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """The real registry refuses a manifest whose blob it lost (deleted here, as a concurrent
    writer's half-done upload looks): the client checks its blobs, uploads the missing one,
    and retries once."""
    repo = "writers/lost-blob"
    config, layer = b"{}", b"a layer another writer lost"
    with RegistryClient(_cfg(tmp_path, registry.host)) as c:
        c.push_blob(repo, config)
        c.push_blob(repo, layer)
        gone = c.call(
            "DELETE", registry.host, repo, f"blobs/{sha256_digest(layer)}", what="delete",
            ok=(202,), push=True,
        )  # fmt: skip
        assert gone.status_code == 202
        manifest = _manifest(config, layer)
        with pytest.raises(RegistryError, match="MANIFEST_BLOB_UNKNOWN"):
            c.push_manifest(repo, "no-blobs-given", manifest, OCI_MANIFEST)
        blobs = {sha256_digest(config): config, sha256_digest(layer): layer}
        digest = c.push_manifest(repo, "1.0.0", manifest, OCI_MANIFEST, blobs=blobs)
        assert c.get_blob(repo, sha256_digest(layer)) == layer
        assert c.resolve(f"{registry.host}/{repo}:1.0.0") == Descriptor(
            OCI_MANIFEST, digest, len(manifest)
        )


def test_digest_invalid_from_a_concurrent_writer_is_retried_once(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    repo = "writers/digest-invalid"
    config, layer = b"{}", b"raced layer"
    refusal = b'{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]}'
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:
        c.push_blob(repo, config)
        c.push_blob(repo, layer)
        blobs = {sha256_digest(config): config, sha256_digest(layer): layer}
        put = lambda m, p: m == "PUT" and "/manifests/" in p  # noqa: E731
        fault_proxy.fail_next(1, 400, match=put, body=refusal)
        c.push_manifest(repo, "1.0.0", _manifest(config, layer), OCI_MANIFEST, blobs=blobs)
        # Twice refused: one clear line, not a loop.
        fault_proxy.fail_next(2, 400, match=put, body=refusal)
        with pytest.raises(RegistryError, match="HTTP 400 \\(DIGEST_INVALID") as err:
            c.push_manifest(repo, "2.0.0", _manifest(config, layer), OCI_MANIFEST, blobs=blobs)
        assert "\n" not in str(err.value)


def test_jobs_that_ask_the_index_type_together_probe_once(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A release's first jobs ask at the same moment: one probe, the others wait for its
    verdict (they each probed before, one untagged PUT per job)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    probe = lambda m, p: m == "PUT" and "/manifests/sha256:" in p  # noqa: E731
    # The first probe's body crawls in (~0.6 s), so every other job asks while it is in flight.
    fault_proxy.throttle_next(1, match=probe, rate=100)
    start = threading.Barrier(4)
    with RegistryClient(_cfg(tmp_path, fault_proxy.host)) as c:

        def ask(n: int) -> str:
            start.wait()
            return c.index_media_type(f"{fault_proxy.host}/together/p{n}:1.0.0")

        with ThreadPoolExecutor(4) as pool:
            verdicts = list(pool.map(ask, range(4)))
    assert verdicts == [DOCKER_MANIFEST_LIST] * 4
    assert len([p for m, p, _s in fault_proxy.log if probe(m, p)]) == 1
