"""Authentication: where credentials come from, challenges, tokens, and where they may go.

Credentials (first match wins, per registry host):
1. PLAYBOOKCTL_REGISTRY_TOKEN: a ready bearer token, sent as is (only to `config.registry`);
2. PLAYBOOKCTL_REGISTRY_USERNAME / PLAYBOOKCTL_REGISTRY_PASSWORD (only to `config.registry`);
3. the Docker config (`$DOCKER_CONFIG/config.json`, default ~/.docker/config.json): `auths`
   (`auth` base64 user:password, `username`/`password`, or `identitytoken`), then `credHelpers`
   / `credsStore` helpers (`docker-credential-<name> get`).
They are sent as basic auth when the registry asks for it, or exchanged for a bearer token at the
realm the registry names (`WWW-Authenticate: Bearer realm=...,service=...,scope=...`, as ghcr.io
and quay.io do); with no credentials an anonymous token is requested. Credentials never appear in
messages or logs: errors name the registry, the operation and the status only.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from playbookctl.config import Config
from playbookctl.errors import RegistryError, RegistryUnavailableError, cap_text
from playbookctl.oci.tls import describe_tls_failure
from playbookctl.oci.transport import Response, Retries, TLSError, Transport

log = logging.getLogger("playbookctl.oci")

ENV_USERNAME = "PLAYBOOKCTL_REGISTRY_USERNAME"
ENV_PASSWORD = "PLAYBOOKCTL_REGISTRY_PASSWORD"  # noqa: S105 - a variable name, not a secret
ENV_TOKEN = "PLAYBOOKCTL_REGISTRY_TOKEN"  # noqa: S105
MAX_MOUNT_SOURCES = 8  # repositories mounted from, asked for with each new repository's token
# Scopes asked for in one token request by `prefetch` (about 2 KB of query string: well under
# what servers and proxies take in a URL).
PREFETCH_SCOPES = 32
# Tokens remembered per registry host (the newest first when one is looked for): a release
# holds one per few dozen repositories, a long-lived client no more than this.
MAX_TOKENS_PER_HOST = 512


def grant_set(scopes: Iterable[str]) -> frozenset[tuple[str, str]]:
    """(resource, action) pairs a list of scopes asks for: `repository:x:pull,push` is
    {("repository:x", "pull"), ("repository:x", "push")}. A token asked for a set serves every
    request whose set is inside it (a pull+push token serves a lookup; a batch serves each of
    its repositories; a repository's first token, asked with its mount sources, its mounts)."""
    out: set[tuple[str, str]] = set()
    for scope in scopes:
        resource, _, actions = scope.rpartition(":")
        for action in actions.split(","):
            if resource and action:
                out.add((resource, action))
    return frozenset(out)


# RFC 7235 auth-param: token BWS "=" BWS ( token / quoted-string ), comma-separated.
_AUTH_PARAM = re.compile(
    r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)"""
)


def parse_challenge(challenge: str) -> dict[str, str]:
    """The auth-params of one `WWW-Authenticate` challenge (`Bearer realm="...",service=x`),
    names lower-cased; quoted or bare values, backslash escapes undone."""
    _scheme, _, rest = challenge.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _AUTH_PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            break  # a malformed tail: keep what parsed so far
        quoted, bare = m.group(2), m.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params.setdefault(m.group(1).lower(), value)
        pos = m.end()
    return params


def unique_scopes(scopes: Iterable[str]) -> list[str]:
    """`scopes` in order, without any an earlier one already asks for: the same scope again,
    with its actions in another order, or fewer of them (`pull` after `pull,push`). A registry's
    challenge may name a scope the request already asks for: distribution lists a resource's
    actions in Go map order, `pull,push` or `push,pull`. Each scope once keeps a strict token
    service from refusing the request (and its logs quiet)."""
    kept: list[str] = []
    asked: dict[str, list[frozenset[str]]] = {}  # `type:name` -> the action sets kept for it
    for scope in scopes:
        resource, colon, actions = scope.rpartition(":")
        if not colon or ":" not in resource:  # not `type:name:actions`: compared as written
            resource, actions = scope, ""
        wanted = frozenset(a for a in actions.split(",") if a)
        if any(wanted <= have for have in asked.get(resource, ())):
            continue
        asked.setdefault(resource, []).append(wanted)
        kept.append(scope)
    return kept


class _Creds(NamedTuple):
    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    bearer: str | None = None  # a ready token (PLAYBOOKCTL_REGISTRY_TOKEN)

    def __repr__(self) -> str:  # never let a repr leak a secret into a log or traceback
        return "_Creds(<redacted>)"

    @property
    def basic(self) -> str | None:
        if self.username is None or self.password is None:
            return None
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _docker_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def _auth_keys(host: str) -> list[str]:
    # The Docker CLI stores entries as `host`, `https://host` or (Docker Hub) `https://host/v1/`.
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/"]


def _credential_helper(helper: str, host: str) -> _Creds | None:
    try:
        proc = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=host.encode(),
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        log.debug("credential helper %s unavailable for %s", helper, host)
        return None
    if proc.returncode != 0:
        return None
    try:
        payload = json.loads(proc.stdout)
        user, secret = str(payload["Username"]), str(payload["Secret"])
    except (ValueError, KeyError, TypeError):
        return None
    # Helpers return `<token>` as the username for identity tokens, as the Docker CLI expects.
    if user == "<token>":
        return _Creds(identity_token=secret)
    return _Creds(username=user, password=secret)


def _utf8(
    creds: _Creds | None, origin: str, *, names: tuple[str, str] | None = None
) -> _Creds | None:
    """creds, if every part is UTF-8 text (what goes on the wire); else a one-line error that
    names where they came from and nothing about the value (not even its length). `names`: the
    variables the username and the password came from."""
    if creds is None:
        return None
    parts = (
        (creds.username, names[0] if names else origin),
        (creds.password, names[1] if names else origin),
        (creds.identity_token, origin),
        (creds.bearer, origin),
    )
    for part, where in parts:
        try:
            if part is not None:
                part.encode("utf-8")
        except UnicodeEncodeError:
            raise RegistryError(
                f"{where}: registry credentials must be UTF-8 text, and this is not"
            ) from None
    return creds


def load_credentials(
    host: str, config: Config, env: Mapping[str, str] | None = None
) -> _Creds | None:
    """Credentials for one registry host, or None (anonymous)."""
    env = os.environ if env is None else env
    if host == config.registry:
        if env.get(ENV_TOKEN):
            # a token read from a file ends in \n
            return _utf8(_Creds(bearer=env[ENV_TOKEN].strip()), ENV_TOKEN)
        if env.get(ENV_USERNAME) and env.get(ENV_PASSWORD) is not None:
            return _utf8(
                _Creds(username=env[ENV_USERNAME], password=env[ENV_PASSWORD]),
                "",
                names=(ENV_USERNAME, ENV_PASSWORD),
            )
    return _utf8(_docker_credentials(host, env), f"the Docker config's entry for {host}")


def _half_set_note(host: str, config: Config, env: Mapping[str, str] | None = None) -> str:
    """Why the environment's pair was not used when only one half is set (a CI secret that is
    missing expands to an empty variable), for the message that says no credentials were found;
    "" otherwise. Names the variables only, never their values."""
    env = os.environ if env is None else env
    if host != config.registry or env.get(ENV_TOKEN):
        return ""
    username, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
    if not username and password is not None:
        return f" ({ENV_PASSWORD} is set but {ENV_USERNAME} is empty or unset, so neither was used)"
    if username and password is None:
        return f" ({ENV_USERNAME} is set but {ENV_PASSWORD} is unset, so neither was used)"
    return ""


def _docker_credentials(host: str, env: Mapping[str, str]) -> _Creds | None:
    path = _docker_config_path(env)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        # Position and cause only: the text around a JSON error could be a credential.
        if isinstance(exc, json.JSONDecodeError):
            why = f"invalid JSON at line {exc.lineno} column {exc.colno}"
        elif isinstance(exc, UnicodeDecodeError):
            why = "not valid UTF-8"
        elif isinstance(exc, OSError) and exc.strerror:
            why = exc.strerror
        else:
            why = type(exc).__name__
        raise RegistryError(f"cannot read Docker config {path}: {why}") from None
    if not isinstance(data, dict):
        return None
    raw_auths = data.get("auths")
    auths: dict[str, Any] = raw_auths if isinstance(raw_auths, dict) else {}
    for key in _auth_keys(host):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            return _Creds(identity_token=str(entry["identitytoken"]))
        if entry.get("auth"):
            try:
                user, _, password = (
                    base64.b64decode(str(entry["auth"])).decode("utf-8").partition(":")
                )
            except (ValueError, UnicodeDecodeError):
                raise RegistryError(
                    f"Docker config {path}: the `auth` entry for {host} is not base64 user:password"
                ) from None
            return _Creds(username=user, password=password)
        if entry.get("username") and entry.get("password"):
            return _Creds(username=str(entry["username"]), password=str(entry["password"]))
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(host), str):
        return _credential_helper(helpers[host], host)
    if isinstance(data.get("credsStore"), str):
        return _credential_helper(data["credsStore"], host)
    return None


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of url, as RFC 6454 compares origins: scheme and host case-insensitive,
    the default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def refuse_downgrade(host: str, home: tuple[str, str, int], url: str, what: str) -> None:
    """A request for an HTTPS registry must not go anywhere over plain HTTP (a Location header
    or redirect saying http://): refused, whatever carries credentials or not."""
    target = origin(url)
    if target[0] not in ("http", "https"):
        raise RegistryError(
            f"registry {host}: {what}: it sent the request to a {target[0] or 'relative'}: URL; "
            "refused"
        )
    if home[0] == "https" and target[0] != "https":
        raise RegistryError(
            f"registry {host}: {what}: the registry sent the request to plain HTTP "
            f"({target[1]}:{target[2]}); refusing a downgrade from HTTPS"
        )


class Authenticator:
    """Credentials per registry host (loaded once), bearer tokens per host and scope set, and
    the hosts that asked for basic auth. Shared by worker threads (state under a lock)."""

    def __init__(self, config: Config, transport: Transport, *, retrying: Retries) -> None:
        self.config = config
        self.transport = transport
        self.retrying = retrying  # the client's: a token request is retried as its requests are
        self._lock = threading.Lock()
        self._creds: dict[str, _Creds | None] = {}
        # Per host, (what it was asked for, token), oldest first (_cached takes the newest that
        # covers a request).
        self._tokens: dict[str, list[tuple[frozenset[tuple[str, str]], str]]] = {}
        # Per host, scopes to ask for together with its first token (plan_tokens), and the
        # lock held while they are asked for (the other threads wait for them).
        self._planned: dict[str, tuple[list[str], list[str]]] = {}
        self._batches: dict[str, threading.Lock] = {}
        self._basic_hosts: set[str] = set()
        # (host, repository) this run will write to: its first token is asked for pull and push
        # at once, so a lookup then a push cost the token service one request, not two.
        self._push_intent: set[tuple[str, str]] = set()
        # Per host, the repositories this run mounted from (`repository:<x>:pull`): asked for
        # with a repository's first token, so its mounts need no token of their own.
        self._mount_sources: dict[str, list[str]] = {}
        # Per host, the token service its first challenge named (realm, service): a request
        # for a new scope asks it first, instead of being sent, refused with 401 and resent.
        self._realms: dict[str, str] = {}
        # Per (host, repository), held while a token for it is fetched: the first requests to a
        # new repository go out together (a publish's mounts and uploads), and the threads
        # after the first take its token instead of each asking the token service.
        self._fetching: dict[tuple[str, str], threading.Lock] = {}

    def intend_push(self, host: str, repository: str) -> None:
        with self._lock:
            self._push_intent.add((host, repository))

    def credentials(self, host: str) -> _Creds | None:
        with self._lock:
            if host in self._creds:
                return self._creds[host]
        creds = load_credentials(host, self.config)
        with self._lock:
            self._creds[host] = creds
        return creds

    def header(self, host: str, scopes: tuple[str, ...]) -> str | None:
        creds = self.credentials(host)
        if creds is not None and creds.bearer:
            return f"Bearer {creds.bearer}"
        token = self._cached(host, scopes)
        with self._lock:
            basic = host in self._basic_hosts
        if token:
            return f"Bearer {token}"
        if basic and creds is not None and creds.basic:
            return f"Basic {creds.basic}"
        return None

    def _cached(self, host: str, scopes: tuple[str, ...]) -> str | None:
        """The newest token asked for everything `scopes` asks (grant_set), if any."""
        needed = grant_set(scopes)
        with self._lock:
            for granted, token in reversed(self._tokens.get(host, ())):
                if needed <= granted and (needed or not granted):
                    return token
        return None

    def _remember(self, host: str, scopes: Iterable[str], token: str) -> None:
        with self._lock:
            held = self._tokens.setdefault(host, [])
            held.append((grant_set(scopes), token))
            del held[:-MAX_TOKENS_PER_HOST]

    def plan_tokens(self, host: str, scopes: Iterable[str], common: Iterable[str] = ()) -> None:
        """Scopes this run will need on `host`, asked for together (prefetch, with `common` in
        every token request: the repositories mounted from) when its first token is: a publish
        of many playbooks then asks one token per few dozen repositories, not one each."""
        with self._lock:
            planned, shared = self._planned.setdefault(host, ([], []))
            planned.extend(scopes)
            shared.extend(c for c in common if c not in shared)

    def known_challenge(self, host: str) -> str | None:
        """The bearer challenge `host` answered with before (its realm and service, no scope):
        a token for a new scope can be asked for before the request, saving its 401."""
        with self._lock:
            return self._realms.get(host)

    def answer(
        self,
        host: str,
        challenge: str,
        scopes: tuple[str, ...],
        deadline: float,
        sent: str | None,
    ) -> bool:
        """Answer a 401 challenge; True if there is something new to retry with.

        `sent` is the Authorization header the refused request carried: basic credentials are
        worth a retry only if that request did not already carry them (another thread may have
        switched the host to basic auth meanwhile, so "first time for this host" is not it)."""
        creds = self.credentials(host)
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if creds is None or creds.basic is None:
                return False
            with self._lock:
                self._basic_hosts.add(host)
            return sent != f"Basic {creds.basic}"
        if scheme != "bearer":
            return False
        params = parse_challenge(challenge)
        realm = params.get("realm", "")
        if not realm:
            return False
        self._record_realm(host, realm, params.get("service"))
        self._check_realm(host, realm, creds)
        wanted = list(scopes)
        first = scopes[0] if scopes else ""
        with self._lock:
            intent = (
                first.endswith(":pull")
                and (
                    host,
                    first.removeprefix("repository:").removesuffix(":pull"),
                )
                in self._push_intent
            )
        with self._lock:
            sources = list(self._mount_sources.get(host, ()))
            for extra in scopes[1:]:
                known = self._mount_sources.setdefault(host, [])
                if (
                    extra.endswith(":pull")
                    and extra not in known
                    and len(known) < MAX_MOUNT_SOURCES
                ):
                    known.append(extra)
        if intent:
            wanted[0] = first + ",push"
            wanted += [
                x for x in sources if x not in wanted and x.split(":")[1] != first.split(":")[1]
            ]
        if params.get("scope"):
            wanted += [s for s in params["scope"].split(" ") if s]
        wanted = unique_scopes(wanted)  # the first, the one this request needs, stays first
        self._ask_planned(host, deadline)
        with self._lock:
            # A scope is `repository:<name>:<actions>`: one fetch at a time per name.
            flight = self._fetching.setdefault((host, first.rpartition(":")[0]), threading.Lock())
        with flight:
            # Fetched by another thread while this one waited: taken, unless it is the very
            # token this request was refused with (expired: a new one is needed).
            cached = self._cached(host, scopes)
            if cached is not None and sent != f"Bearer {cached}":
                return True
            token = self._fetch_token(
                host,
                realm=realm,
                service=params.get("service"),
                scopes=wanted,
                creds=creds,
                deadline=deadline,
            )
            if token is None:
                return False
            # Asked for `wanted`: it serves this request and any other inside that (its
            # repository's reads and pushes alone, and with each mount source it named).
            self._remember(host, wanted, token)
        return True

    def _ask_planned(self, host: str, deadline: float) -> None:
        """The first thread to need a token from `host` asks for the planned scopes together;
        the others wait for it (then take theirs from the cache)."""
        batch: threading.Lock | None
        with self._lock:
            planned = self._planned.pop(host, None)
            if planned is not None:
                batch = threading.Lock()
                batch.acquire()
                self._batches[host] = batch
            else:
                batch = self._batches.get(host)
        if planned is not None and batch is not None:
            try:
                self.prefetch(host, planned[0], deadline, common=planned[1])
            finally:
                batch.release()
        elif batch is not None:
            with batch:
                pass

    def _record_realm(self, host: str, realm: str, service: str | None) -> None:
        """Remember the first token service `host` named (known_challenge)."""
        with self._lock:
            self._realms.setdefault(
                host,
                f'Bearer realm="{_quoted(realm)}"'
                + (f',service="{_quoted(service)}"' if service else ""),
            )

    def _check_realm(self, host: str, realm: str, creds: _Creds | None) -> None:
        """RegistryError unless `realm` is a token service credentials may go to."""
        realm_url = urlsplit(realm)
        realm_scheme, realm_host = realm_url.scheme.lower(), realm_url.netloc.rpartition("@")[2]
        if realm_scheme not in ("http", "https") or not realm_host:
            raise RegistryError(
                f"registry {host}: its token service {cap_text(realm, 200)!r} is not an "
                "http(s) URL; no credentials sent"
            )
        if realm_scheme == "http":
            if self.transport.scheme(host) == "https":
                raise RegistryError(
                    f"registry {host}: its token service {realm_host} is plain HTTP while the "
                    "registry is HTTPS; refusing the downgrade (no credentials or tokens are "
                    "fetched in clear)"
                )
            if creds is not None and self.transport.scheme(realm_host) != "http":
                raise RegistryError(
                    f"registry {host}: its token service {realm_host} is plain HTTP; refusing "
                    "to send credentials there (allow it with insecure-registries)"
                )

    def learn_challenge(self, host: str, challenge: str) -> None:
        """Remember `host`'s bearer challenge (an answer to a request without credentials) so
        that tokens can be asked for before the requests that need them (prefetch)."""
        if challenge.split(" ", 1)[0].lower() != "bearer":
            return
        params = parse_challenge(challenge)
        realm = params.get("realm", "")
        if not realm:
            return
        self._check_realm(host, realm, self.credentials(host))
        self._record_realm(host, realm, params.get("service"))

    def prefetch(
        self, host: str, scopes: Iterable[str], deadline: float, *, common: Iterable[str] = ()
    ) -> int:
        """Tokens for many single-scope requests at once (PREFETCH_SCOPES scopes per token
        request), before those requests: a release proving 200 registrations reads 400
        repositories, which one token each made 400 token requests. Only where `host`'s token
        service is known (known_challenge) and the scope has no token yet; a scope the service
        does not grant is simply absent from the token (that request meets its 401 and asks
        alone), and a token service that refuses the batch leaves every request to ask alone.
        `common` goes into every token request (a publish's mount sources, so that each
        repository's mounts are served too). Returns the token requests made."""
        creds = self.credentials(host)
        known = self.known_challenge(host)
        if known is None or (creds is not None and creds.bearer):
            return 0
        params = parse_challenge(known)
        shared = unique_scopes(common)
        missing = [s for s in unique_scopes(scopes) if self._cached(host, (s, *shared)) is None]
        made = 0
        step = max(1, PREFETCH_SCOPES - len(shared))
        for start in range(0, len(missing), step):
            chunk = unique_scopes([*missing[start : start + step], *shared])
            try:
                token = self._fetch_token(
                    host,
                    realm=params["realm"],
                    service=params.get("service"),
                    scopes=chunk,
                    creds=creds,
                    deadline=deadline,
                )
            except RegistryError as exc:  # each request then asks for its own, as without this
                log.debug("registry %s: prefetching %d tokens: %s", host, len(chunk), exc)
                return made
            made += 1
            if token:
                self._remember(host, chunk, token)
        return made

    def _fetch_token(
        self,
        host: str,
        *,
        realm: str,
        service: str | None,
        scopes: list[str],
        creds: _Creds | None,
        deadline: float,
    ) -> str | None:
        # A token service that drops a connection or answers 429/5xx once is asked again, with
        # backoff, within the operation's deadline, as a registry request is (Retries). Without
        # this, one hiccup of the token service failed the whole operation at once, where the
        # same hiccup on the registry itself was ridden out.
        resp = self.retrying.run(
            lambda: self._token_request(
                host, realm=realm, service=service, scopes=scopes, creds=creds, deadline=deadline
            ),
            until=deadline,
            subject=f"registry {host}: token service",
            peer="the token service",
            service=True,
        )
        if resp.status_code in (401, 403):
            # Without credentials the token service refused an anonymous request: "check the
            # credentials" sent the user looking for ones that were never read.
            advice = (
                f"check the credentials for {host}"
                if creds is not None
                else f"no credentials found for {host}: docker login, or set "
                f"{ENV_USERNAME}/{ENV_PASSWORD}" + _half_set_note(host, self.config)
            )
            raise RegistryUnavailableError(
                f"registry {host}: authentication failed at its token service "
                f"(HTTP {resp.status_code}); {advice}"
            )
        if resp.status_code != 200:
            raise RegistryError(f"registry {host}: token service answered HTTP {resp.status_code}")
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(f"registry {host}: token service answered without a token")
        return str(token)

    def _token_request(
        self,
        host: str,
        *,
        realm: str,
        service: str | None,
        scopes: list[str],
        creds: _Creds | None,
        deadline: float,
    ) -> Response:
        """One request to the token service (_SendFailedError when it got no answer, a TLS
        handshake it closed or reset included: retried by _fetch_token, through Retries)."""
        try:
            if creds is not None and creds.identity_token:
                # OAuth2 refresh-token grant, as the Docker CLI does with an identity token.
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "client_id": "playbookctl",
                    "scope": " ".join(scopes),
                }
                if service:
                    form["service"] = service
                return self.transport.send(
                    "POST",
                    realm,
                    deadline=deadline,
                    what="token",
                    peer="the token service",
                    registry=host,
                    data=form,
                )
            params: dict[str, str] = {"scope": " ".join(scopes)} if scopes else {}
            if service:
                params["service"] = service
            headers = {}
            if creds is not None and creds.basic:
                headers["Authorization"] = f"Basic {creds.basic}"
            return self.transport.send(
                "GET",
                realm,
                deadline=deadline,
                what="token",
                peer="the token service",
                registry=host,
                params=params,
                headers=headers,
            )
        except TLSError as exc:
            realm_host = urlsplit(realm).netloc.rpartition("@")[2]
            raise RegistryError(
                f"registry {host}: its token service: "
                + describe_tls_failure(exc, realm_host, self.transport.trust.certs_dir)
            ) from None
