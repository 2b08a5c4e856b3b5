"""Benchmark: what the smoke run costs a publish, per playbook, on both platforms.

A real Docker engine and a loopback registry (started here, or the machine's own engine), the
two-platform stand-in base (playbookctl_dev.base_image: Debian's busybox, bash and kubectl for
amd64 and arm64), and `--count` RUN-less playbooks. The same set is published three times, each
a fresh copy under its own repositories: `smoke = off`, then `auto` (amd64 started natively,
arm64 through QEMU where binfmt_misc has it, else checked in the image only), then `off` again
(so the engine's layer cache favours neither side). Printed: wall time per run and the smoke
run's cost per playbook (auto minus the mean of the two off runs).

Usage: python tooling/bench/bench_smoke.py [--count 5] [--jobs 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench_args import positive_int  # the benches' argument types (tooling/bench/)

# Run as a script: its directory is on sys.path, so the sibling benchmark's repository maker is.
from bench_platforms import make_repo, timed_publish

from playbookctl.config import Config
from playbookctl.platforms import BINFMT_DIR, emulation_available
from playbookctl_dev import trust
from playbookctl_dev.base_image import make_base_image
from playbookctl_dev.docker_engine import docker_engine
from playbookctl_dev.registry import LocalRegistry
from playbookctl_dev.sample_repo import BASE_IMAGE


def run_once(
    tmp: Path,
    label: str,
    *,
    registry: str,
    engine: str,
    base: str,
    smoke: str,
    count: int,
    jobs: int,
) -> float:
    root = make_repo(tmp / label, count, marker=label)
    config = Config(
        root=root,
        registry=registry,
        image_repo=f"bench-{label}/images",
        bundle_repo=f"bench-{label}/bundles",
        base_image_overrides={BASE_IMAGE: base},
        jobs=jobs,
        smoke=smoke,
    )
    elapsed, results = timed_publish(config, engine, jobs, who="bench_smoke")
    smoked = [m for r in results for m in r.messages if m.startswith("smoke:")]
    if smoke == "off" and smoked:
        raise SystemExit(f"bench_smoke: smoke off, yet: {smoked[0]}")
    if smoke != "off" and len(smoked) != 2 * count:
        raise SystemExit(f"bench_smoke: expected {2 * count} smoke lines, got {smoked}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=positive_int, default=5)
    parser.add_argument("--jobs", type=positive_int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pbbench-smoke-") as t, ExitStack() as stack:
        tmp = Path(t)
        # The test world's HTTPS registry with token auth where root may set it up (README "The
        # test world"), plain HTTP otherwise; `docker login` into a config of this run's own.
        registry = stack.enter_context(
            LocalRegistry(tls=trust.can_install() is None, workdir=tmp / "registry")
        )
        registry.login(tmp / "docker-config")
        os.environ["DOCKER_CONFIG"] = str(tmp / "docker-config")
        engine = stack.enter_context(docker_engine(tmp / "d"))
        base = f"{registry.host}/bench/base/stand-in:1"
        make_base_image(engine.url, tmp / "base", base)
        times = {}
        for label, smoke in (("off-1", "off"), ("auto", "auto"), ("off-2", "off")):
            times[label] = run_once(
                tmp,
                label,
                registry=registry.host,
                engine=engine.url,
                base=base,
                smoke=smoke,
                count=args.count,
                jobs=args.jobs,
            )
            print(
                f"publish {args.count} playbooks, smoke {smoke}: {times[label]:.2f} s", flush=True
            )
        off = (times["off-1"] + times["off-2"]) / 2
        arm64 = (
            "started through QEMU"
            if emulation_available("arm64", BINFMT_DIR)
            else ("checked in the image only (no QEMU)")
        )
        print(
            f"smoke run: +{(times['auto'] - off) / args.count:.2f} s per playbook "
            f"(amd64 started, arm64 {arm64}; jobs {args.jobs})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
