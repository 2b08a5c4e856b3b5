"""Benchmark: the engine path, publish of RUN playbooks on two platforms.

Playbooks with a RUN step cannot be assembled: the engine builds them, once per platform (arm64
under QEMU), and publish makes the result reproducible. Since issue 18's last part the engine's
image is saved once and written to the registry by playbookctl (base layers by digest, new
layers clamped and compressed as assembled ones); before, it was saved, rewritten, loaded back
into the engine and pushed by the engine. This times `publish` of --count such playbooks
(the sample playbook plus `RUN mkdir -p /opt/state && echo <marker> > /opt/state/id`, a fresh
marker per repetition so no build-cache hit carries over) for linux/amd64 and linux/arm64, on a
private engine and a plain-HTTP loopback registry, --repeat times; best and median are printed.
The smoke run is off (bench_smoke.py measures it): what is timed is build, rewrite and push.

Run it against another checkout's code to compare (before/after):
    PYTHONPATH=/path/to/old/tooling python tooling/bench/bench_engine.py

Usage: python tooling/bench/bench_engine.py [--count 5] [--repeat 3] [--jobs 4] [--layer-mb N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench_args import positive_int  # the benches' argument types (tooling/bench/)
from bench_platforms import git, timed_publish  # the same timed publish (tooling/bench/)

import playbookctl
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl.platforms import image_platforms
from playbookctl_dev.base_image import cache_dir as stand_in_cache
from playbookctl_dev.base_image import make_base_image
from playbookctl_dev.docker_engine import docker_engine
from playbookctl_dev.registry import LocalRegistry
from playbookctl_dev.sample_repo import BASE_IMAGE, write_action_type, write_playbook

PYPROJECT = '[project]\nname = "bench"\nversion = "0"\n\n[tool.playbookctl]\n'
PLATFORMS = ("linux/amd64", "linux/arm64")


def make_repo(root: Path, count: int, marker: str, layer_mb: int = 0) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    write_action_type(root)
    for n in range(count):
        d = write_playbook(root, f"playbook-{n:02d}", "1.0.0", marker=f"{marker} {n}")
        cf = d / "Containerfile"
        run = f"RUN mkdir -p /opt/state && echo '{marker} {n}' > /opt/state/id\n"
        if layer_mb:
            # Incompressible bytes: what a package install adds, at its worst for gzip.
            run += f"RUN head -c {layer_mb * 1000 * 1000} /dev/urandom > /opt/state/blob\n"
        cf.write_text(cf.read_text().replace("USER ", run + "USER ", 1))
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(root, "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-qm", "p")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=positive_int, default=5)
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--jobs", type=positive_int, default=4)
    parser.add_argument(
        "--layer-mb", type=int, default=0, help="a second RUN step writing this many MB"
    )
    args = parser.parse_args()
    print(f"[code: {Path(playbookctl.__file__).parent}]", flush=True)
    with tempfile.TemporaryDirectory(prefix="pbbench-eng-") as t, ExitStack() as stack:
        tmp = Path(t)
        registry = stack.enter_context(LocalRegistry(tls=False, workdir=tmp / "registry"))
        registry.login(tmp / "docker-config")
        os.environ["DOCKER_CONFIG"] = str(tmp / "docker-config")
        engine = stack.enter_context(docker_engine(tmp / "d"))
        base = f"{registry.host}/bench/base/busybox:1"
        make_base_image(engine.url, tmp / "base", base, cache=stand_in_cache())
        times: list[float] = []
        for rep in range(args.repeat):
            root = make_repo(
                tmp / f"rep{rep}", args.count, marker=f"{tmp.name} {rep}", layer_mb=args.layer_mb
            )
            config = Config(
                root=root,
                registry=registry.host,
                image_repo=f"bench-eng{rep}/images",
                bundle_repo=f"bench-eng{rep}/bundles",
                base_image_overrides={BASE_IMAGE: base},
                platforms=PLATFORMS,
                jobs=args.jobs,
                smoke="off",
            )
            elapsed, results = timed_publish(config, engine.url, args.jobs, who="bench_engine")
            with RegistryClient(config) as client:
                for r in results:
                    if r.image is None or r.image.digest is None:
                        raise SystemExit(f"bench_engine: {r.name}: no image digest")
                    if not any(m.startswith("image built by the engine") for m in r.messages):
                        raise SystemExit(f"bench_engine: {r.name} was not built by the engine")
                    found = image_platforms(client, r.image.ref, PLATFORMS)
                    if found.problems:
                        raise SystemExit(f"bench_engine: {r.image.ref}: {found.problems[0]}")
            times.append(elapsed)
            print(
                f"run {rep + 1}: publish {args.count} RUN playbooks (+{args.layer_mb} MB) for "
                f"{', '.join(PLATFORMS)}: "
                f"{elapsed:.2f} s ({elapsed / args.count:.2f} s per playbook, jobs {args.jobs})",
                flush=True,
            )
        print(
            f"best {min(times):.2f} s, median {statistics.median(times):.2f} s "
            f"({statistics.median(times) / args.count:.2f} s per playbook); load average "
            f"{os.getloadavg()[0]:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
