"""Benchmark: our CPU per registry request (RegistryClient.call over the transport).

On a 2-core machine shared with the registry our CPU is wall time, so this measures what one
request costs this process (time.process_time, every thread of ours), not how fast the registry
answers:
    small GET    GET of a 64-byte blob, the answer read and checked for status
    4 KiB PUT    the PUT that completes a monolithic blob upload, 4 KiB of body (the upload
                 sessions are opened beforehand, untimed, so only the PUTs are measured)
Each on the plain-HTTP loopback registry and on the HTTPS + token one (README "The test world";
the token is fetched before timing: every timed request carries it). Both use one client, as a
publish does, so connections are kept alive. The HTTPS one needs root (the name in /etc/hosts,
the CA in /etc/docker/certs.d); without root only plain HTTP is measured.

Usage: python tooling/bench/bench_transport.py [--count 1000] [--modes plain,tls]
No target: it prints the cost, for comparing transports.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench_args import positive_int  # the benches' argument types (tooling/bench/)

from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl_dev import trust
from playbookctl_dev.registry import LocalRegistry

WARMUP = 50
REPO = "bench/transport"
# mode -> (label, HTTPS?)
WORLDS = {"plain": ("plain HTTP", False), "tls": ("HTTPS + tokens", True)}


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def cpu_per_get(client: RegistryClient, host: str, digest: str, count: int) -> float:
    """Seconds of our CPU per GET of the blob `digest`."""

    def get() -> None:
        resp = client.call("GET", host, REPO, f"blobs/{digest}", what="get blob", ok=(200,))
        if resp.status_code != 200:
            raise SystemExit(f"GET blob: HTTP {resp.status_code}")

    for _ in range(WARMUP):
        get()
    start = time.process_time()
    for _ in range(count):
        get()
    return (time.process_time() - start) / count


def cpu_per_put(client: RegistryClient, host: str, count: int, size: int) -> float:
    """Seconds of our CPU per PUT of `size` bytes completing an upload session."""
    total = WARMUP + count
    bodies = [os.urandom(size) for _ in range(total)]
    sessions: list[str] = []
    for _ in range(total):  # opened untimed: only the PUTs are measured
        resp = client.call(
            "POST", host, REPO, "blobs/uploads/", what="start upload", ok=(202,), push=True
        )
        sessions.append(resp.headers["Location"])

    def put(location: str, body: bytes) -> None:
        sep = "&" if "?" in location else "?"
        resp = client.call(
            "PUT",
            host,
            REPO,
            f"{location}{sep}digest={_digest(body)}",
            what="upload blob",
            ok=(201,),
            headers={"Content-Type": "application/octet-stream"},
            data=body,
            push=True,
        )
        if resp.status_code != 201:
            raise SystemExit(f"PUT blob: HTTP {resp.status_code}")

    for location, body in zip(sessions[:WARMUP], bodies[:WARMUP], strict=True):
        put(location, body)
    start = time.process_time()
    for location, body in zip(sessions[WARMUP:], bodies[WARMUP:], strict=True):
        put(location, body)
    return (time.process_time() - start) / count


def measure(config: Config, count: int) -> tuple[float, float]:
    with RegistryClient(config) as client:
        host = config.registry
        small = os.urandom(64)
        digest = client.push_blob(REPO, small, registry=host)
        get = cpu_per_get(client, host, digest, count)
        put = cpu_per_put(client, host, count, 4096)
        return get, put


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=positive_int, default=1000, help="timed requests per kind")
    ap.add_argument("--modes", default="plain,tls", help=f"any of {', '.join(WORLDS)}")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in WORLDS:
            ap.error(f"--modes: {mode}? (one of {', '.join(WORLDS)})")
    print(f"our CPU per request, {args.count} requests each (time.process_time)")
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for mode in modes:
            label, tls = WORLDS[mode]
            why_not = trust.can_install() if tls else None
            if why_not is not None:
                print(f"  {label}: not measured ({why_not})")
                continue
            reg = stack.enter_context(LocalRegistry(tls=tls))
            reg.login(root / f"docker-config-{mode}")  # `docker login`, read by the client
            os.environ["DOCKER_CONFIG"] = str(root / f"docker-config-{mode}")
            get, put = measure(Config(root=root, registry=reg.host), args.count)
            print(f"  {label:<15} small GET {get * 1000:.3f} ms   4 KiB PUT {put * 1000:.3f} ms")
            reg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
