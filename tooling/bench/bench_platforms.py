"""Benchmark: publish 10 playbooks for two platforms (linux/amd64 + linux/arm64) against one.

A real Docker engine and a loopback registry (started here, or the machine's own engine), the
two-platform stand-in base (playbookctl_dev.base_image), and the sample repository's
RUN-less playbooks (base + COPY + USER + ENTRYPOINT). Each run publishes its own fresh copy
(a different script marker, so no build-cache hit carries over from the other run) under its own
repositories: lint, base index resolved, one build per platform, children pushed, the index, the
rendered Pipeline checked, the bundle pushed and read back.

Both registries of the test world (README "The test world"): the HTTPS one with token auth
(the engine and playbookctl verify its CA and fetch tokens), then the plain-HTTP loopback one;
the TLS + token cost is printed per platform set. The HTTPS one needs root; without it only
plain HTTP is measured.

Printed: wall time per run, and the two-platform/one-platform ratio. The
second platform of a RUN-less build costs a build of a few COPY/USER steps and its pushes (the
base layers are already in the registry), so the ratio should stay well under 2.

Usage: python tooling/bench/bench_platforms.py [--count 10] [--jobs 4] [--modes tls,plain]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench_args import positive_int  # the benches' argument types (tooling/bench/)

from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl.platforms import image_platforms
from playbookctl.publish import publish
from playbookctl.results import PublishResult
from playbookctl_dev import trust
from playbookctl_dev.base_image import make_base_image
from playbookctl_dev.docker_engine import docker_engine
from playbookctl_dev.registry import LocalRegistry
from playbookctl_dev.sample_repo import BASE_IMAGE, write_action_type, write_playbook

PYPROJECT = '[project]\nname = "bench"\nversion = "0"\n\n[tool.playbookctl]\n'


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def timed_publish(
    config: Config, engine: str | None, jobs: int, *, who: str
) -> tuple[float, list[PublishResult]]:
    """publish() of every playbook at the repository's HEAD, timed; any failure ends the bench
    naming it (the benches share this so that they time the same call)."""
    started = time.perf_counter()
    results = publish(
        config,
        None,
        jobs=jobs,
        dry_run=False,
        commit=git(config.root, "rev-parse", "HEAD"),
        source_repository="",
        docker_host=engine,
    )
    elapsed = time.perf_counter() - started
    failed = [f"{r.name}: {r.error}" for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{who}: publish failed:\n  " + "\n  ".join(failed))
    return elapsed, results


def make_repo(root: Path, count: int, marker: str) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    write_action_type(root)
    for n in range(count):
        write_playbook(root, f"playbook-{n:02d}", "1.0.0", marker=f"{marker} {n}")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(
        root,
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.invalid",
        "commit",
        "--quiet",
        "-m",
        "playbooks",
    )
    return root


def run_once(
    tmp: Path,
    *,
    registry: str,
    engine: str,
    base: str,
    platforms: tuple[str, ...],
    count: int,
    jobs: int,
) -> float:
    label = "-".join(p.replace("/", "-") for p in platforms)
    # A marker per world and platform set: no build-cache hit carries over between runs.
    root = make_repo(tmp / label, count, marker=f"{tmp.name} {label}")
    config = Config(
        root=root,
        registry=registry,
        image_repo=f"bench-{label}/images",
        bundle_repo=f"bench-{label}/bundles",
        base_image_overrides={BASE_IMAGE: base},
        platforms=platforms,
        jobs=jobs,
    )
    elapsed, results = timed_publish(config, engine, jobs, who="bench_platforms")
    # What was pushed really is an index of exactly these platforms, every child present.
    with RegistryClient(config) as client:
        for r in results:
            if r.image is None or r.image.digest is None:
                raise SystemExit(f"bench_platforms: {r.name}: no image digest")
            found = image_platforms(client, r.image.ref, platforms)
            if found.problems or found.platforms != list(platforms):
                raise SystemExit(f"bench_platforms: {r.image.ref}: {found}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=positive_int, default=10)
    parser.add_argument("--jobs", type=positive_int, default=4)
    parser.add_argument("--modes", default="tls,plain", help="tls (HTTPS + tokens), plain, or both")
    args = parser.parse_args()
    results: dict[tuple[str, tuple[str, ...]], float] = {}
    with tempfile.TemporaryDirectory(prefix="pbbench-plat-") as t, ExitStack() as stack:
        tmp = Path(t)
        engine = None
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            tls = mode == "tls"
            why_not = trust.can_install() if tls else None
            if why_not is not None:
                print(f"HTTPS + tokens: not measured ({why_not})")
                continue
            registry = stack.enter_context(LocalRegistry(tls=tls, workdir=tmp / f"registry-{mode}"))
            # `docker login`: playbookctl and the engine read the credentials from this config.
            registry.login(tmp / f"docker-config-{mode}")
            os.environ["DOCKER_CONFIG"] = str(tmp / f"docker-config-{mode}")
            if engine is None:  # after the first registry: its name already resolves
                engine = stack.enter_context(docker_engine(tmp / "d"))
            label = "HTTPS + tokens" if tls else "plain HTTP"
            print(f"[{label}: {registry.host}]", flush=True)
            base = f"{registry.host}/bench/base/busybox:1"
            make_base_image(engine.url, tmp / f"base-{mode}", base)
            rows = []
            for platforms in (("linux/amd64",), ("linux/amd64", "linux/arm64")):
                elapsed = run_once(
                    tmp / mode,
                    registry=registry.host,
                    engine=engine.url,
                    base=base,
                    platforms=platforms,
                    count=args.count,
                    jobs=args.jobs,
                )
                rows.append((platforms, elapsed))
                results[(mode, platforms)] = elapsed
                print(
                    f"publish {args.count} playbooks for {', '.join(platforms)}: {elapsed:.2f} s "
                    f"({elapsed / args.count:.2f} s per playbook, jobs {args.jobs})",
                    flush=True,
                )
            one, two = rows[0][1], rows[1][1]
            print(f"two platforms / one platform: {two / one:.2f}x")
            if registry.auth == "token":
                print(f"tokens issued: {registry.tokens_issued()}")
    for platforms in (("linux/amd64",), ("linux/amd64", "linux/arm64")):
        if ("tls", platforms) in results and ("plain", platforms) in results:
            tls_s, plain_s = results[("tls", platforms)], results[("plain", platforms)]
            print(
                f"TLS + token cost, {', '.join(platforms)}: {tls_s:.2f} s vs {plain_s:.2f} s "
                f"({(tls_s / plain_s - 1) * 100:+.0f}%, {(tls_s - plain_s) / args.count:+.2f} s "
                "per playbook)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
