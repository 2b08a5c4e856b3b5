"""Benchmark: publish 50 Tekton bundles (for already-built images) to a local registry.

Per bundle this does what `playbookctl publish` does once the image exists: check the version tag
is free, build the bundle, push it, read it back by digest and check it as Tekton reads it. The
bundles go out concurrently over one RegistryClient (one keep-alive connection pool).

Printed: bundles per second, and HTTP requests per bundle next to the minimum the distribution
protocol needs for a new bundle:
    HEAD tag (is the version free?)                         1
    config blob: POST + PUT (monolithic upload)             2
    layer blob:  POST + PUT                                 2
    manifest PUT                                            1   -> push minimum 6
    read back by digest: GET manifest + GET layer blob      2   -> with read-back 8
(Distribution 2.8 has no single-request POST upload, so POST + PUT is the floor for a new blob;
the config differs per bundle because it lists the layer's diff_id, so it cannot be mounted.)
A second pass republishes the same versions: each costs one HEAD and writes nothing.

Both registries of the test world are measured (README "The test world"): the production-like
one (HTTPS with its own CA, Bearer tokens from a token service), the same over HTTPS without
auth (the cost of TLS alone), and the plain-HTTP loopback one; each cost is printed against
plain HTTP. Each pass uses a new RegistryClient, as each playbookctl command does, so a pass
pays for building the client's trust store once, and asks the tokens of all its repositories
together, as publish does (a token request per 32 repositories). The HTTPS ones need root
(the name in /etc/hosts, the CA in /etc/docker/certs.d); without root only plain HTTP is
measured.

Usage: python tooling/bench/bench_publish.py [--count 50] [--jobs 4] [--modes tls,tls-only,plain]
       [--registry HOST:PORT]
Target: >= 40 bundles/s on a 2-core machine (each mode).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

from bench_args import positive_int  # the benches' argument types (tooling/bench/)

from playbookctl.bundle import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_HASH,
    ANNOTATION_VERSION,
    build_bundle,
    push_bundle,
    read_bundle,
)
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl_dev import trust
from playbookctl_dev.registry import LocalRegistry

TARGET_RATE = 40.0
MIN_PUSH = 6
MIN_READ_BACK = 2
FAKE_DIGEST = "sha256:" + "5" * 64
# The worlds measured: label, HTTPS?, auth. "tls-only" separates the cost of TLS from the tokens'.
WORLDS: dict[str, tuple[str, bool, Literal["token", "none"]]] = {
    "tls": ("HTTPS + tokens", True, "token"),
    "tls-only": ("HTTPS, no auth", True, "none"),
    "plain": ("plain HTTP", False, "none"),
}  # the images are "already built": any well-formed digest


def rendered_pipeline(registry: str, name: str) -> dict[str, Any]:
    """A rendered Pipeline like the standard wrapper's, image pinned by digest."""
    image = f"{registry}/bench/images/{name}:1.0.0@{FAKE_DIGEST}"
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {"name": "workflow", "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "params": [
                {"name": "TARGET_RESOURCE_KIND", "type": "string"},
                {"name": "TARGET_RESOURCE_NAME", "type": "string"},
                {"name": "TARGET_NAMESPACE", "type": "string"},
            ],
            "tasks": [
                {
                    "name": "remediate",
                    "params": [
                        {"name": p, "value": f"$(params.{p})"}
                        for p in (
                            "TARGET_RESOURCE_KIND",
                            "TARGET_RESOURCE_NAME",
                            "TARGET_NAMESPACE",
                        )
                    ],
                    "taskSpec": {
                        "params": [
                            {"name": "TARGET_RESOURCE_KIND"},
                            {"name": "TARGET_RESOURCE_NAME"},
                            {"name": "TARGET_NAMESPACE"},
                        ],
                        "steps": [
                            {
                                "name": "remediate",
                                "image": image,
                                "command": ["/playbook/remediate.sh"],
                                "env": [
                                    {"name": "KIND", "value": "$(params.TARGET_RESOURCE_KIND)"},
                                    {"name": "NAME", "value": "$(params.TARGET_RESOURCE_NAME)"},
                                    {"name": "NAMESPACE", "value": "$(params.TARGET_NAMESPACE)"},
                                ],
                            }
                        ],
                    },
                }
            ],
        },
    }


def publish_one(client: RegistryClient, registry: str, name: str) -> bool:
    """True if pushed, False if the version was already there (nothing written)."""
    ref = f"{registry}/bench/bundles/{name}:1.0.0"
    if client.tag_exists(ref):
        return False
    annotations = {
        ANNOTATION_SOURCE: "https://github.com/example/playbooks",
        ANNOTATION_REVISION: "0" * 40,
        ANNOTATION_VERSION: "1.0.0",
        ANNOTATION_SOURCE_HASH: f"sha256:{name:0>64}"[:71],
    }
    bundle = build_bundle([rendered_pipeline(registry, name)], annotations)
    digest = push_bundle(client, ref, bundle)
    back = read_bundle(client, f"{registry}/bench/bundles/{name}@{digest}")
    if not back.ok:
        raise SystemExit(f"{ref}: read back failed: {back.findings}")
    return True


def run_pass(config: Config, names: list[str], jobs: int) -> tuple[float, int, int]:
    with RegistryClient(config) as client, ThreadPoolExecutor(max_workers=jobs) as pool:
        start = time.perf_counter()
        # As publish does (publish._plan_tokens): the run's repositories, their tokens asked
        # for together with the first one.
        client.auth.plan_tokens(
            config.registry, [f"repository:bench/bundles/{n}:pull,push" for n in names]
        )
        pushed = sum(pool.map(lambda n: publish_one(client, config.registry, n), names))
        elapsed = time.perf_counter() - start
        return elapsed, client.request_count, pushed


def measure(host: str, root: Path, count: int, jobs: int, rounds: int) -> tuple[float, bool]:
    """The best rate over `rounds` of `count` new bundles, then a republish; (best, correct)."""
    config = Config(root=root, registry=host, jobs=jobs)
    print(f"publish {count} new bundles to {host} with {jobs} workers")
    rates: list[float] = []
    correct = True
    names: list[str] = []
    for rnd in range(rounds):
        run_id = f"{int(time.time() * 1000):x}{rnd}"  # fresh names each round
        names = [f"pb-{run_id}-{i:03d}" for i in range(count)]
        elapsed, requests, pushed = run_pass(config, names, jobs)
        correct = correct and pushed == count
        rates.append(pushed / elapsed)
        print(
            f"  round {rnd + 1}: {elapsed:.2f} s, {rates[-1]:.1f} bundles/s, "
            f"{requests / max(pushed, 1):.2f} HTTP requests per bundle"
        )
    best = max(rates)
    print(f"  best rate         {best:.1f} bundles/s (target >= {TARGET_RATE:.0f})")
    print(
        f"  protocol minimum  {MIN_PUSH} requests to push a new bundle, "
        f"{MIN_PUSH + MIN_READ_BACK} with the read-back by digest"
    )
    elapsed2, requests2, pushed2 = run_pass(config, names, jobs)
    correct = correct and pushed2 == 0
    print(f"republish the last {count} versions (nothing to write)")
    print(
        f"  {elapsed2:.2f} s, {count / elapsed2:.1f} bundles/s, "
        f"{requests2 / count:.2f} requests per bundle (minimum 1), {pushed2} pushed"
    )
    return best, correct


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=positive_int, default=50)
    ap.add_argument("--jobs", type=positive_int, default=4)
    ap.add_argument(
        "--rounds", type=positive_int, default=3, help="fresh bundles each round; best counts"
    )
    ap.add_argument(
        "--modes", default="tls,tls-only,plain", help=f"any of {', '.join(WORLDS)}, comma-separated"
    )
    ap.add_argument("--registry", help="use this registry instead of starting local ones")
    args = ap.parse_args(argv)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.registry:
            best, correct = measure(args.registry, root, args.count, args.jobs, args.rounds)
            bests = {"given": best}
        else:
            bests = {}
            correct = True
            for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
                if mode not in WORLDS:
                    ap.error(f"--modes: {mode}? (one of {', '.join(WORLDS)})")
                label, tls, auth = WORLDS[mode]
                why_not = trust.can_install() if tls else None
                if why_not is not None:
                    print(f"{label}: not measured ({why_not})")
                    continue
                reg = stack.enter_context(LocalRegistry(tls=tls, auth=auth))
                # `docker login`: the client reads the credentials from the Docker config.
                reg.login(root / f"docker-config-{mode}")
                os.environ["DOCKER_CONFIG"] = str(root / f"docker-config-{mode}")
                print(f"\n[{label}]")
                best, ok = measure(reg.host, root, args.count, args.jobs, args.rounds)
                if reg.auth == "token":
                    print(f"  tokens issued     {reg.tokens_issued()}")
                bests[mode] = best
                correct = correct and ok
                reg.stop()
        plain_rate = bests.get("plain")
        for mode in ("tls-only", "tls"):
            if mode in bests and plain_rate:
                rate = bests[mode]
                per_bundle = (1 / rate - 1 / plain_rate) * 1000
                print(
                    f"\n{WORLDS[mode][0]} cost: {rate:.1f} vs {plain_rate:.1f} bundles/s "
                    f"({(plain_rate / rate - 1) * 100:+.0f}% time, {per_bundle:+.1f} ms per bundle)"
                )
        if not correct:
            print("result: WRONG (a bundle was not pushed, or a republish wrote)")
            return 1
        # A shared CI machine can be slower than the target: say so, but only a wrong result
        # fails `make bench`.
        met = bests and all(b >= TARGET_RATE for b in bests.values())
        print("result: " + ("target met" if met else "target NOT met on this run"))
        return 0


if __name__ == "__main__":
    sys.exit(main())
