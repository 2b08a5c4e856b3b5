"""Benchmark: `playbookctl release` over 200 playbooks of which none changed.

Set-up (not timed): a repository with 200 playbooks, each already registered under registry/,
committed and pushed to a local bare remote; a registry whose every request is counted, holding
under each registered tag (image and bundle) a small stand-in manifest whose digest the
registration pins: the test world's HTTPS one with token auth (README "The test world"; its own
access log counts), then the plain-HTTP loopback one (behind a counting proxy). The HTTPS one
needs root; without it only plain HTTP is measured.

Timed: the whole `playbookctl release` command in a fresh process (interpreter start, imports,
plan over 200 playbooks, git fetch, nothing to publish, nothing to commit or push).

Target: under 3 s, and no registry write at all. A release whose plan says nothing changed
publishes nothing, but takes no registration on its word: each one's bundle and image tags are
looked up to see that they still point at the pinned digests (README "How a release works",
step 1), two reads per playbook.

The releases that publish are measured by bench_platforms.py and bench_assemble.py (and
bench_publish.py for the bundles), in both worlds too.

Usage: python tooling/bench/bench_release.py [--count 200] [--modes tls,plain]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from bench_args import positive_int  # the benches' argument types (tooling/bench/)

from playbookctl.bundle import CONFIG_MEDIA_TYPE
from playbookctl.config import Config, load_config
from playbookctl.oci import DOCKER_MANIFEST, RegistryClient, sha256_digest
from playbookctl.playbook import source_hash
from playbookctl.register import register
from playbookctl.results import Action, Artifact, PublishResult
from playbookctl_dev import trust
from playbookctl_dev.registry import LocalRegistry
from playbookctl_dev.sample_repo import write_action_type, write_playbook

TARGET_SECONDS = 3.0
WRITES = {"PUT", "POST", "PATCH", "DELETE"}

PYPROJECT = """\
[project]
name = "bench"
version = "0"

[tool.playbookctl]
registry = "{registry}"
"""


class CountingProxy:
    """Forwards to the registry and records (method, path) of every request."""

    def __init__(self, upstream: str) -> None:
        self.requests: list[tuple[str, str]] = []
        self.upstream = upstream
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy.requests.append((self.command, self.path))
                body: bytes | None
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    body = self._chunked()  # the engine uploads layers in chunks
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else None
                req = urllib.request.Request(
                    f"http://{upstream}{self.path}", data=body, method=self.command
                )
                # The Host header goes through: the registry writes it into the upload
                # Location it answers, so a blob upload's PUT comes back here and is counted.
                for k, v in self.headers.items():
                    if k.lower() not in ("connection", "transfer-encoding"):
                        req.add_header(k, v)
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                        status, headers, data = resp.status, resp.headers, resp.read()
                except urllib.error.HTTPError as err:
                    status, headers, data = err.code, err.headers, err.read()
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _chunked(self) -> bytes:
                parts: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass  # trailers
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def seen(self) -> list[tuple[str, str]]:
        return list(self.requests)

    def __enter__(self) -> CountingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def push_stand_ins(config: Config, count: int) -> dict[str, tuple[str, str]]:
    """(image digest, bundle digest) per playbook: a config-only manifest pushed under each tag
    its registration pins, so that every registration is borne out by the registry (what the
    release checks; their content is not what it reads)."""

    def push(n: int) -> tuple[str, tuple[str, str]]:
        name, version = f"playbook-{n:03d}", f"1.0.{n}"
        digests = []
        for ref in (config.image_ref(name), config.bundle_ref(name)):
            repo = ref.split("/", 1)[1]
            blob = json.dumps({"stand-in": ref}).encode()
            client.push_blob(repo, blob)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": DOCKER_MANIFEST,
                    "config": {
                        "mediaType": CONFIG_MEDIA_TYPE,
                        "digest": sha256_digest(blob),
                        "size": len(blob),
                    },
                    "layers": [],
                }
            ).encode()
            digests.append(client.push_manifest(repo, version, manifest, DOCKER_MANIFEST))
        return name, (digests[0], digests[1])

    with RegistryClient(config) as client, ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(push, range(count)))


def make_repo(tmp: Path, count: int, registry: str) -> Path:
    work = tmp / "work"
    work.mkdir()
    (work / "pyproject.toml").write_text(PYPROJECT.format(registry=registry))
    write_action_type(work)
    for n in range(count):
        write_playbook(work, f"playbook-{n:03d}", f"1.0.{n}", marker=f"variant {n}", rbac=False)
    config = load_config(work)
    pushed = push_stand_ins(config, count)
    results = []
    for n in range(count):
        name, version = f"playbook-{n:03d}", f"1.0.{n}"
        image, bundle = pushed[name]
        results.append(
            PublishResult(
                name=name,
                version=version,
                source_hash=source_hash(config.playbooks_dir / name, config.platforms),
                image=Artifact(config.image_ref(name), version, image, Action.REUSED),
                bundle=Artifact(config.bundle_ref(name), version, bundle, Action.REUSED),
                status=Action.REUSED,
                commit="0" * 40,
            )
        )
    register(config, results)
    remote = tmp / "remote.git"
    git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "add", "--all")
    git(
        work,
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.invalid",
        "commit",
        "-qm",
        "all registered",
    )
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "--quiet", "-u", "origin", "main")
    return work


def measure(
    tmp: Path,
    count: int,
    registry: str,
    requests: Callable[[], list[tuple[str, str]]],
    tokens: Callable[[], int] | None = None,
) -> bool:
    work = make_repo(tmp, count, registry)
    head = git(work, "rev-parse", "HEAD")
    tokens_before = tokens() if tokens is not None else 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYBOOKCTL_", "GITHUB_"))}
    before = len(requests())
    cmd = [sys.executable, "-m", "playbookctl", "-C", str(work), "release"]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    seen = requests()[before:]
    writes = [r for r in seen if r[0] in WRITES]
    # Not timed: check the release really compared every playbook with its registration.
    plan = subprocess.run(
        [sys.executable, "-m", "playbookctl", "-C", str(work), "plan", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    up_to_date = plan.stdout.count('"status": "up-to-date"')
    moved = git(tmp / "remote.git", "rev-parse", "main") != head
    print(f"no-op release over {count} registered, unchanged playbooks ({registry})")
    print(f"  exit code         {done.returncode}")
    print(f"  wall time         {elapsed:.2f} s (target < {TARGET_SECONDS:.0f} s, whole command)")
    print(f"  registry requests {len(seen)} ({len(writes)} writes; target 0 writes)")
    if tokens is not None:
        print(f"  tokens issued     {tokens() - tokens_before}")
    print(f"  new commit        {'yes' if moved else 'no'}")
    print(f"  plan              {up_to_date} of {count} playbooks up to date")
    if done.returncode != 0:
        print(done.stdout + done.stderr)
    return (
        done.returncode == 0
        and elapsed < TARGET_SECONDS
        and not writes
        and not moved
        and up_to_date == count
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--count", type=positive_int, default=200)
    ap.add_argument("--modes", default="tls,plain", help="tls (HTTPS + tokens), plain, or both")
    args = ap.parse_args(argv)
    ok = True
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        with ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-release-")))
            if mode == "tls":
                why_not = trust.can_install()
                if why_not is not None:
                    print(f"HTTPS + tokens: not measured ({why_not})")
                    continue
                reg = stack.enter_context(LocalRegistry(access_log=True, workdir=tmp / "registry"))
                reg.login(tmp / "docker-config")
                os.environ["DOCKER_CONFIG"] = str(tmp / "docker-config")
                print("[HTTPS + tokens]")
                ok = measure(tmp, args.count, reg.host, reg.requests, reg.tokens_issued) and ok
            else:
                reg = stack.enter_context(LocalRegistry(tls=False, workdir=tmp / "registry"))
                proxy = stack.enter_context(CountingProxy(reg.host))
                print("[plain HTTP]")
                ok = measure(tmp, args.count, proxy.host, proxy.seen) and ok
    print("result: " + ("target met" if ok else "TARGET NOT MET"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
