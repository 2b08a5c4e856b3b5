"""A token service for the test world's registries: the `realm` of distribution's `auth: token`.

The registry answers an unauthenticated request with `401` and `WWW-Authenticate: Bearer
realm="https://<this>/token",service="...",scope="repository:r:pull,push"`; the client asks this
service for a token, with its credentials, the way GHCR, Quay, Docker Hub and Harbor's token
services are asked:

- `GET /token?service=S&scope=...&scope=...` with `Authorization: Basic` (the Docker engine with
  a username/password, `docker login`, playbookctl);
- `POST /token` with a form (`grant_type=password` with username/password, or
  `grant_type=refresh_token` with a refresh token this service issued earlier), the OAuth2 form
  an engine uses when the Docker config holds an `identitytoken`.

It checks the password (an account may have several, each with its own grants: GitHub's actor
with the GITHUB_TOKEN of a job that may read packages, or write them), grants of each requested
scope only the actions that credential is allowed (fnmatch patterns on the repository name), and
answers a JWT signed with ES256 whose `x5c`
header carries the signing certificate (issued by the registry's own CA, the one in the
registry's `rootcertbundle`). The registry verifies it offline; this service is never in the
data path of a push or a pull.

Token lifetime: `expires_in` is the configured lifetime. Distribution accepts a token up to 60 s
past its `exp` (clock-skew leeway, `registry/auth/token/token.go`, `Leeway`), so `exp` is written
60 s early: the registry's own cut-off is then the configured lifetime, and a 3 s token really
stops working after 3 s (a test depends on it). Docker raises any `expires_in` under 60 s to
60 s in its own cache; playbookctl takes it as given.

Every token issued is one JSON line in the `log` file (user, the scopes asked for, those granted,
time): tests count them to show that a client re-authenticated.

Run as `python -m playbookctl_dev.token_service CONFIG.json` (playbookctl_dev/registry.py does);
it binds, then writes its port to the config's `ready` file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fnmatch
import hmac
import json
import os
import secrets
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

# distribution's clock-skew leeway on `exp` (registry/auth/token/token.go).
REGISTRY_LEEWAY = 60
# The users file's key for requests without credentials (absent: they get a 401).
ANONYMOUS = ""
TOKEN_PATH = "/token"  # noqa: S105 - a URL path


@dataclass(frozen=True)
class Grant:
    """`actions` on resources of `type` whose name matches `pattern` (fnmatch)."""

    type: str
    pattern: str
    actions: frozenset[str]


@dataclass(frozen=True)
class User:
    password: str
    grants: tuple[Grant, ...]


@dataclass
class Settings:
    host: str
    port: int
    cert: str
    key: str
    signing_cert: str
    signing_key: str
    issuer: str
    service: str
    lifetime: int
    users_file: str
    ready: str
    log: str
    exit_with: int | None = None
    # token -> the user and the credential it was issued for
    refresh_tokens: dict[str, tuple[str, User]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _users: dict[str, tuple[User, ...]] = field(default_factory=dict)
    _users_stamp: tuple[int, int] = (0, 0)

    def users(self) -> dict[str, tuple[User, ...]]:
        """The users file, re-read when it changed (LocalRegistry.add_user writes it while the
        service runs, as an administrator adds an account)."""
        st = os.stat(self.users_file)
        stamp = (st.st_mtime_ns, st.st_size)
        with self.lock:
            if stamp != self._users_stamp:
                self._users = load_users(Path(self.users_file))
                self._users_stamp = stamp
            return self._users


def load_users(path: Path) -> dict[str, tuple[User, ...]]:
    """name -> its credentials: one `{"password", "grants"}`, or a list of them."""
    raw: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return {
        name: tuple(
            User(
                password=spec["password"],
                grants=tuple(
                    Grant(g["type"], g["pattern"], frozenset(g["actions"])) for g in spec["grants"]
                ),
            )
            for spec in (specs if isinstance(specs, list) else [specs])
        )
        for name, specs in raw.items()
    }


def load_settings(path: Path) -> Settings:
    raw: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return Settings(
        host=raw["host"],
        port=int(raw.get("port", 0)),
        cert=raw["cert"],
        key=raw["key"],
        signing_cert=raw["signing_cert"],
        signing_key=raw["signing_key"],
        issuer=raw["issuer"],
        service=raw["service"],
        lifetime=int(raw["lifetime"]),
        users_file=raw["users_file"],
        ready=raw["ready"],
        log=raw["log"],
        exit_with=raw.get("exit_with"),
    )


def parse_scope(scope: str) -> tuple[str, str, set[str]] | None:
    """`repository:name:pull,push` -> (type, name, actions); None when malformed. A name may
    hold a port (`repository:host:5000/x:pull` is not valid, but a plugin class is: `type(class)`),
    so the type is before the first colon and the actions after the last."""
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    rtype = parts[0].split("(", 1)[0]
    name = ":".join(parts[1:-1])
    actions = {a for a in parts[-1].split(",") if a}
    return (rtype, name, actions) if rtype and name else None


def granted(user: User, rtype: str, name: str, wanted: set[str]) -> list[str]:
    allowed: set[str] = set()
    for g in user.grants:
        if g.type == rtype and fnmatch.fnmatchcase(name, g.pattern):
            allowed |= g.actions
    if "*" in allowed:
        return sorted(wanted)
    return sorted(wanted & allowed)


class TokenHandler(BaseHTTPRequestHandler):
    server: TokenServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one JSON line per token in the log file is the record

    def _answer(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _unauthorized(self, why: str) -> None:
        self._answer(
            401,
            {"errors": [{"code": "UNAUTHORIZED", "message": why}]},
            {"WWW-Authenticate": 'Basic realm="playbookctl test token service"'},
        )

    def _basic_user(self) -> tuple[str, User] | None:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user = self._password_ok(username, password)
        return None if user is None else (username, user)

    def _password_ok(self, username: str, password: str) -> User | None:
        """The credential of `username` that `password` is, if any."""
        if username == ANONYMOUS:
            return None
        found = None
        for user in self.server.settings.users().get(username, ()):
            if hmac.compare_digest(user.password, password):
                found = user
        return found

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != TOKEN_PATH:
            self._answer(404, {"errors": [{"code": "NOT_FOUND", "message": parts.path}]})
            return
        query = parse_qs(parts.query)
        users = self.server.settings.users()
        if "Authorization" not in self.headers and users.get(ANONYMOUS):
            # No credentials at all: the anonymous account's grants, where there is one (a
            # public package on GHCR or Docker Hub: pull for anyone). Wrong ones stay a 401.
            who: tuple[str, User] | None = (ANONYMOUS, users[ANONYMOUS][0])
        else:
            who = self._basic_user()
        if who is None:
            self._unauthorized("a username and password (Basic) are required")
            return
        # `scope` repeated (the Docker engine) or space-separated in one (OAuth2's form, which
        # some clients use in the query too): both are accepted, as real token services do.
        scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
        self._issue(*who, query.get("service", [""])[0], scopes, refresh=False)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != TOKEN_PATH:
            self._answer(404, {"errors": [{"code": "NOT_FOUND", "message": parts.path}]})
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        grant_type = form.get("grant_type", [""])[0]
        settings = self.server.settings
        who: tuple[str, User] | None = None
        if grant_type == "password":
            name = form.get("username", [""])[0]
            user = self._password_ok(name, form.get("password", [""])[0])
            if user is not None:
                who = (name, user)
        elif grant_type == "refresh_token":
            with settings.lock:
                who = settings.refresh_tokens.get(form.get("refresh_token", [""])[0])
        else:
            self._answer(400, {"error": "unsupported_grant_type"})
            return
        if who is None:
            self._unauthorized("invalid credentials")
            return
        scopes = [s for value in form.get("scope", []) for s in value.split(" ") if s]
        self._issue(*who, form.get("service", [""])[0], scopes, refresh=True)

    def _issue(
        self, username: str, user: User, service: str, scopes: list[str], *, refresh: bool
    ) -> None:
        settings = self.server.settings
        if service and service != settings.service:
            self._answer(
                400, {"errors": [{"code": "DENIED", "message": f"unknown service {service}"}]}
            )
            return
        access: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                self._answer(400, {"errors": [{"code": "DENIED", "message": f"bad scope {scope}"}]})
                return
            rtype, name, wanted = parsed
            actions = granted(user, rtype, name, wanted)
            if actions:
                access.append({"type": rtype, "name": name, "actions": actions})
        now = int(time.time())
        claims = {
            "iss": settings.issuer,
            "sub": username,
            "aud": settings.service,
            "iat": now,
            "nbf": now,
            "exp": now + settings.lifetime - REGISTRY_LEEWAY,
            "jti": secrets.token_hex(12),
            "access": access,
        }
        token = jwt.encode(
            claims,
            self.server.signing_key,
            algorithm="ES256",
            headers={"x5c": [self.server.signing_cert_der_b64]},
        )
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": settings.lifetime,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }
        if refresh:
            rt = secrets.token_urlsafe(24)
            with settings.lock:
                settings.refresh_tokens[rt] = (username, user)
            body["refresh_token"] = rt
        with settings.lock, open(settings.log, "a", encoding="utf-8") as f:
            # `scopes`: as asked for, in order (a test checks a client names none twice).
            line = {"user": username, "scopes": scopes, "access": access, "time": time.time()}
            f.write(json.dumps(line) + "\n")
        self._answer(200, body)


class TokenServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, settings: Settings) -> None:
        self.address_family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        super().__init__((settings.host, settings.port), TokenHandler)
        self.settings = settings
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(settings.cert, settings.key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        key = serialization.load_pem_private_key(
            Path(settings.signing_key).read_bytes(), password=None
        )
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SystemExit(f"{settings.signing_key}: not an EC key (ES256 needs P-256)")
        self.signing_key = key
        cert = x509.load_pem_x509_certificate(Path(settings.signing_cert).read_bytes())
        self.signing_cert_der_b64 = base64.b64encode(
            cert.public_bytes(serialization.Encoding.DER)
        ).decode()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-handshake is not our failure


def _watch(pid: int, server: TokenServer) -> None:
    """End with the process that started us (a killed test session leaves no token service)."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            server.shutdown()
            return
        except PermissionError:
            pass


def main(argv: list[str]) -> int:
    settings = load_settings(Path(argv[0]))
    server = TokenServer(settings)
    port = server.server_address[1]
    ready = Path(settings.ready)
    tmp = ready.with_name(ready.name + ".tmp")
    tmp.write_text(str(port), "utf-8")
    tmp.replace(ready)
    if settings.exit_with:
        threading.Thread(target=_watch, args=(settings.exit_with, server), daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
