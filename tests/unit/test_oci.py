"""oci: reference parsing, where credentials come from, TLS vs plain HTTP. No network here."""

from __future__ import annotations

import base64
import datetime
import email.utils
import json
from pathlib import Path

import pytest
from requests.utils import get_environ_proxies, select_proxy

from playbookctl.config import Config
from playbookctl.errors import RegistryError
from playbookctl.oci import (
    Reference,
    RegistryClient,
    TrustStore,
    _Creds,
    is_loopback,
    load_credentials,
    parse_challenge,
    parse_reference,
    transport,
)
from playbookctl.oci.auth import origin, refuse_downgrade
from playbookctl.oci.blobs import _range_end
from playbookctl.oci.transport import Response

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ghcr.io/org/b/name:1.0.0", Reference("ghcr.io", "org/b/name", "1.0.0", None)),
        (f"ghcr.io/org/name@{D}", Reference("ghcr.io", "org/name", None, D)),
        (f"ghcr.io/org/name:1.0@{D}", Reference("ghcr.io", "org/name", "1.0", D)),
        ("127.0.0.1:5000/a/b:v1", Reference("127.0.0.1:5000", "a/b", "v1", None)),
        ("localhost/a", Reference("localhost", "a", "latest", None)),
        ("LOCALHOST/a:1", Reference("LOCALHOST", "a", "1", None)),
        ("[::1]:5000/a:t", Reference("[::1]:5000", "a", "t", None)),
        ("quay.io/o/n", Reference("quay.io", "o/n", "latest", None)),
    ],
)
def test_parse_reference(text: str, expected: Reference) -> None:
    ref = parse_reference(text)
    assert ref == expected
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name:1.0", "expected <registry>/<repository>"),
        ("org/name:1.0", "expected <registry>/<repository>"),
        ("ghcr.io/Org/name:1", "bad repository name"),
        ("ghcr.io/org/name@sha256:abc", "digest must be"),
        ("ghcr.io/org/name:bad/tag", "bad repository name"),
        ("ghcr.io/org/name:-x", "bad tag"),
    ],
)
def test_parse_reference_refuses(text: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_reference(text)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.3.4.5", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("ghcr.io", False),
        ("10.0.0.1:5000", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("LOCALHOST:5000", True),
        ("LocalHost", True),
        ("127.9.9.9:80", True),
        # A name that resolves to loopback is not loopback: only the literal names are.
        ("reg-1.playbookctl.test:5000", False),
        ("vm:5000", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "insecure", "scheme"),
    [
        ("ghcr.io", (), "https"),
        ("127.0.0.1:5000", (), "http"),
        ("registry.lan:5000", (), "https"),
        ("registry.lan:5000", ("registry.lan:5000",), "http"),
        ("registry.lan", ("registry.lan:5000",), "https"),
        ("Registry.LAN:5000", ("registry.lan:5000",), "http"),
        ("LOCALHOST:5000", (), "http"),
    ],
)
def test_tls_unless_loopback_or_insecure(
    tmp_path: Path, host: str, insecure: tuple[str, ...], scheme: str
) -> None:
    client = RegistryClient(Config(root=tmp_path, insecure_registries=insecure))
    assert client.scheme(host) == scheme


PROXY_ENV = {"HTTP_PROXY": "http://web:3128", "HTTPS_PROXY": "http://tls:3128"}


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "https://reg.example/v2/", "http://tls:3128"),
        ({}, "http://reg.example/v2/", "http://web:3128"),
        (
            {"HTTPS_PROXY": None, "ALL_PROXY": "http://all:1"},
            "https://reg.example/",
            "http://all:1",
        ),
        ({"NO_PROXY": "*"}, "https://reg.example/", None),
        ({"NO_PROXY": "reg.example"}, "https://reg.example:5000/", None),
        ({"NO_PROXY": ".example"}, "https://reg.example/", None),
        ({"NO_PROXY": "other.example, reg.example:5000"}, "https://reg.example:5000/", None),
        ({"NO_PROXY": "reg.example:5000"}, "https://reg.example:6000/", "http://tls:3128"),
        ({"NO_PROXY": "g.example"}, "https://reg.example/", "http://tls:3128"),
        ({"NO_PROXY": "10.0.0.0/8"}, "https://10.1.2.3:5000/", None),
        ({"NO_PROXY": "10.0.0.0/8"}, "https://11.1.2.3:5000/", "http://tls:3128"),
        ({"NO_PROXY": "10.1.2.3"}, "https://10.1.2.3/", None),
        ({"no_proxy": "reg.example", "NO_PROXY": "x.example"}, "https://reg.example/", None),
        ({"https_proxy": "http://lower:1"}, "https://reg.example/", "http://lower:1"),
        ({}, "http://127.0.0.1:5000/v2/", None),  # loopback: never proxied
        ({}, "http://localhost:5000/v2/", None),
    ],
)
def test_the_proxy_for_a_url_is_the_one_requests_chose(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str | None],
    url: str,
    expected: str | None,
) -> None:
    """HTTP(S)_PROXY / ALL_PROXY / NO_PROXY read as requests read them (the transport used it
    before): requests itself is the oracle where it applies (it has no loopback rule)."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    for var, value in {**PROXY_ENV, **env}.items():
        if value is not None:
            monkeypatch.setenv(var, value)
    got = RegistryClient(Config(root=tmp_path)).transport.proxy(url)
    assert got == expected
    if not is_loopback(url.split("/")[2]):
        origin_url = "/".join(url.split("/", 3)[:3])
        assert got == select_proxy(origin_url, get_environ_proxies(origin_url))


def test_an_insecure_registry_is_warned_about_once_per_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "_warned_insecure", set())
    config = Config(root=tmp_path, insecure_registries=("registry.lan:5000", "127.0.0.1:5000"))
    with RegistryClient(config) as client:
        client.scheme("127.0.0.1:5000")
        assert capsys.readouterr().err == ""  # loopback: plain HTTP is no news
        client.scheme("registry.lan:5000")
        client.scheme("registry.lan:5000")
    with RegistryClient(config) as client:
        client.scheme("registry.lan:5000")
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert (
        "warning: registry.lan:5000 is in insecure-registries: it is reached over plain HTTP" in err
    )


def _write_docker_config(path: Path, data: object) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(data))


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.mark.parametrize(
    ("docker_config", "env", "host", "expected"),
    [
        # Docker config, extra env, host asked for -> (user, password, identity token, bearer)
        (
            {"auths": {"r.example": {"auth": _b64("u:p:x")}}},
            {},
            "r.example",
            ("u", "p:x", None, None),
        ),
        (
            {"auths": {"https://r.example": {"auth": _b64("u:p")}}},
            {},
            "r.example",
            ("u", "p", None, None),
        ),
        (
            {"auths": {"r.example": {"username": "u", "password": "p"}}},
            {},
            "r.example",
            ("u", "p", None, None),
        ),
        (
            {"auths": {"r.example": {"identitytoken": "it"}}},
            {},
            "r.example",
            (None, None, "it", None),
        ),
        ({"auths": {"other.example": {"auth": _b64("u:p")}}}, {}, "r.example", None),
        ({}, {}, "r.example", None),
        # the env applies to the configured registry only, and wins over the Docker config
        (
            {"auths": {"r.example": {"auth": _b64("u:p")}}},
            {"PLAYBOOKCTL_REGISTRY_USERNAME": "eu", "PLAYBOOKCTL_REGISTRY_PASSWORD": "ep"},
            "r.example",
            ("eu", "ep", None, None),
        ),
        (
            {},
            {"PLAYBOOKCTL_REGISTRY_USERNAME": "eu", "PLAYBOOKCTL_REGISTRY_PASSWORD": "ep"},
            "other.example",
            None,
        ),
        ({}, {"PLAYBOOKCTL_REGISTRY_TOKEN": "tok"}, "r.example", (None, None, None, "tok")),
        ({}, {"PLAYBOOKCTL_REGISTRY_TOKEN": "tok\n"}, "r.example", (None, None, None, "tok")),
        # a credential helper that is not installed gives no credentials, not a crash
        ({"credHelpers": {"r.example": "nonexistent-helper"}}, {}, "r.example", None),
    ],
)
def test_credentials(
    tmp_path: Path,
    docker_config: object,
    env: dict[str, str],
    host: str,
    expected: tuple[str | None, ...] | None,
) -> None:
    _write_docker_config(tmp_path / "dc", docker_config)
    creds = load_credentials(
        host,
        Config(root=tmp_path, registry="r.example"),
        {"DOCKER_CONFIG": str(tmp_path / "dc"), **env},
    )
    got = (
        None
        if creds is None
        else (creds.username, creds.password, creds.identity_token, creds.bearer)
    )
    assert got == expected
    if creds is not None:
        assert "p" not in repr(creds).replace("_Creds", "").replace("<redacted>", "")


@pytest.mark.parametrize(
    ("challenge", "expected"),
    [
        (
            'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/n:pull"',
            {
                "realm": "https://ghcr.io/token",
                "service": "ghcr.io",
                "scope": "repository:o/n:pull",
            },
        ),
        # RFC 7235 allows bare tokens as values; oras' parser dropped these.
        (
            'Bearer realm="https://auth.example/token",service=registry.example',
            {"realm": "https://auth.example/token", "service": "registry.example"},
        ),
        # A comma inside a quoted value is not a separator; escapes are undone.
        (
            'Bearer realm="https://x/t", scope="repository:a:pull,push" , error="a \\"b\\""',
            {"realm": "https://x/t", "scope": "repository:a:pull,push", "error": 'a "b"'},
        ),
        ('Basic realm="Registry Realm"', {"realm": "Registry Realm"}),
        ("Bearer", {}),
        ('Bearer realm="https://x/t",garbage', {"realm": "https://x/t"}),
        ('Bearer REALM="https://x/t"', {"realm": "https://x/t"}),
    ],
)
def test_parse_challenge(challenge: str, expected: dict[str, str]) -> None:
    assert parse_challenge(challenge) == expected


def test_basic_credentials_encoding() -> None:
    creds = _Creds("user", "pa:ss wörd", None)
    assert creds.basic is not None
    assert base64.b64decode(creds.basic).decode() == "user:pa:ss wörd"
    assert _Creds("user", None, None).basic is None


def test_docker_config_default_location_is_home(tmp_path: Path) -> None:
    _write_docker_config(tmp_path / ".docker", {"auths": {"r.example": {"auth": _b64("u:p")}}})
    creds = load_credentials("r.example", Config(root=tmp_path), {"HOME": str(tmp_path)})
    assert creds is not None
    assert creds.username == "u"


def test_broken_docker_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RegistryError, match="cannot read Docker config"):
        load_credentials("r.example", Config(root=tmp_path), {"DOCKER_CONFIG": str(tmp_path)})


def test_bad_auth_entry_does_not_echo_it(tmp_path: Path) -> None:
    _write_docker_config(tmp_path, {"auths": {"r.example": {"auth": "!!secret!!"}}})
    with pytest.raises(RegistryError) as err:
        load_credentials("r.example", Config(root=tmp_path), {"DOCKER_CONFIG": str(tmp_path)})
    assert "secret" not in str(err.value)


def _response(status: int, retry_after: str | None = None) -> Response:
    resp = Response(status)
    if retry_after is not None:
        resp.headers["Retry-After"] = retry_after
    return resp


@pytest.mark.parametrize(
    ("attempt", "status", "retry_after", "low", "high"),
    [
        (0, None, None, 0.125, 0.25),  # connection error: base 0.25 s, jitter 50-100 %
        (1, 500, None, 0.25, 0.5),
        (3, 503, None, 1.0, 2.0),
        (10, 502, None, 2.0, 4.0),  # capped
        (0, 429, "2", 2.0, 2.0),  # Retry-After honoured
        (0, 429, "3600", 3600.0, 3600.0),  # ... uncapped: the caller's deadline decides
        (0, 429, "Wed, 21 Oct 2015 07:28:00 GMT", 0.125, 0.25),  # a date passed: backoff
        (0, 503, "5", 5.0, 5.0),  # 503 may carry it too (RFC 9110)
        (0, 500, "5", 0.125, 0.25),  # other statuses: ignored
        (0, 429, "soon", 0.125, 0.25),  # unreadable: ignored
    ],
)
def test_backoff(
    *,
    tmp_path: Path,
    attempt: int,
    status: int | None,
    retry_after: str | None,
    low: float,
    high: float,
) -> None:
    client = RegistryClient(Config(root=tmp_path))
    resp = None if status is None else _response(status, retry_after)
    for _ in range(20):
        assert low <= client.transport.backoff(attempt, resp)[0] <= high


def test_retry_after_as_an_http_date(tmp_path: Path) -> None:
    when = email.utils.format_datetime(
        datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30), usegmt=True
    )
    client = RegistryClient(Config(root=tmp_path))
    delay, asked = client.transport.backoff(0, _response(429, when))
    assert asked is not None
    assert 28 <= asked <= 30
    assert delay == asked


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://reg.example/v2/", ("https", "reg.example", 443)),
        ("HTTPS://REG.Example:443/v2/", ("https", "reg.example", 443)),
        ("http://reg.example/v2/", ("http", "reg.example", 80)),
        ("https://reg.example:5443/x", ("https", "reg.example", 5443)),
        ("https://[::1]:5000/x", ("https", "::1", 5000)),
    ],
)
def test_origin(url: str, expected: tuple[str, str, int]) -> None:
    assert origin(url) == expected


@pytest.mark.parametrize(
    ("home", "target", "refused"),
    [
        ("https://reg.example/", "https://storage.example/blob", None),
        ("https://reg.example/", "http://reg.example/v2/x", "downgrade from HTTPS"),
        ("https://reg.example/", "HTTP://reg.example/v2/x", "downgrade from HTTPS"),
        ("https://reg.example/", "ftp://reg.example/x", "ftp: URL"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000/v2/x", None),
        ("http://127.0.0.1:5000/", "https://127.0.0.1:5000/v2/x", None),
    ],
)
def test_a_downgrade_is_refused(home: str, target: str, refused: str | None) -> None:
    if refused is None:
        refuse_downgrade("reg", origin(home), target, "upload")
    else:
        with pytest.raises(RegistryError, match=refused):
            refuse_downgrade("reg", origin(home), target, "upload")


@pytest.mark.parametrize(
    ("header", "default", "expected"),
    [
        ("0-1048575", 7, 1048576),
        ("bytes=0-99", 7, 100),
        ("", 7, 7),
        ("5-9", 7, 7),  # not a range from 0: not the session's state
        ("0-x", 7, 7),
    ],
)
def test_range_end(header: str, default: int, expected: int) -> None:
    resp = Response(200)
    if header:
        resp.headers["Range"] = header
    assert _range_end(resp, default) == expected


def test_certs_dir_problems_are_named(tmp_path: Path) -> None:
    host = tmp_path / "certs.d" / "reg.example:5000"
    host.mkdir(parents=True)
    (host / "ca.crt").write_text("not a certificate\n")
    store = TrustStore(tmp_path / "certs.d", env={})
    with pytest.raises(RegistryError, match=r"ca\.crt \(registry-certs-dir\): not a PEM CA"):
        store.context("reg.example:5000", None)
    (host / "ca.crt").unlink()
    (host / "client.key").write_text("x")
    with pytest.raises(RegistryError, match=r"client\.key: client key without its certificate"):
        store.context("reg.example:5000", None)
    # Another host's directory does not apply.
    assert store.host_dirs("other.example", "other.example") == []


def test_a_trust_context_is_built_once_per_process_for_the_same_inputs(tmp_path: Path) -> None:
    """Building a context reads the system's CA bundle: every client of a run shares one per
    set of inputs, and a CA changed on disk makes a new one."""
    from tests.support.tls import TestCA

    ca = TestCA(tmp_path / "ca")
    host = tmp_path / "certs.d" / "reg.example:5000"
    host.mkdir(parents=True)
    (host / "ca.crt").write_bytes(ca.cert.read_bytes())
    first = TrustStore(tmp_path / "certs.d", env={}).context("reg.example:5000", None)
    again = TrustStore(tmp_path / "certs.d", env={}).context("reg.example:5000", None)
    assert again is first
    other_env = TrustStore(tmp_path / "certs.d", env={"SSL_CERT_FILE": str(ca.cert)})
    assert other_env.context("reg.example:5000", None) is not first
    other = TestCA(tmp_path / "other", name="another CA")
    (host / "ca.crt").write_bytes(other.cert.read_bytes() + b"\n")  # another size: new inputs
    changed = TrustStore(tmp_path / "certs.d", env={}).context("reg.example:5000", None)
    assert changed is not first


@pytest.mark.parametrize(
    ("held", "asked", "served"),
    [
        # a pull+push token serves a lookup, not the reverse
        (["repository:a:pull,push"], ["repository:a:pull"], True),
        (["repository:a:pull"], ["repository:a:pull,push"], False),
        # actions in any order
        (["repository:a:push,pull"], ["repository:a:pull,push"], True),
        # a batch serves each of its repositories, with the mount source it carries
        (
            ["repository:a:pull,push", "repository:b:pull,push", "repository:base:pull"],
            ["repository:b:pull,push", "repository:base:pull"],
            True,
        ),
        (["repository:a:pull,push"], ["repository:a:pull,push", "repository:base:pull"], False),
        (["repository:a:pull,push"], ["repository:b:pull"], False),
        # a name that is a prefix of another is another repository
        (["repository:a/b:pull"], ["repository:a:pull"], False),
    ],
)
def test_a_token_serves_every_request_inside_what_it_was_asked_for(
    tmp_path: Path, held: list[str], asked: list[str], served: bool
) -> None:
    from playbookctl.oci.auth import Authenticator, grant_set
    from playbookctl.oci.transport import Retries, Transport

    config = Config(root=tmp_path, registry="registry.example")
    transport = Transport(config, timeout=1.0)
    auth = Authenticator(config, transport, retrying=Retries(retries=0, deadline=1.0))
    auth._remember("registry.example", held, "the-token")
    assert (auth._cached("registry.example", tuple(asked)) == "the-token") is served
    assert auth._cached("other.example", tuple(asked)) is None
    assert grant_set(["repository:a:pull,push"]) == {
        ("repository:a", "pull"),
        ("repository:a", "push"),
    }
