"""Benchmark: assembled images against engine builds, side by side in one run.

1. Ten RUN-less playbooks (the sample repository's), each run on its own fresh repositories:
   - the plain loop a team would script, for ONE platform: per playbook an engine build, an
     engine push and a bundle push of the rendered Pipeline (what `docker build`, `docker push`
     and `tkn bundle push` do);
   - `publish` for linux/amd64 and linux/arm64 with the engine (setting assemble = never);
   - `publish` for linux/amd64 and linux/arm64, assembled without the engine (assemble = auto).
   Target: the assembled two-platform publish at most 0.2x the one-platform loop.
2. `playbookctl release` (plan, publish, register, commit, push) of --count RUN-less playbooks
   (default 200) on two platforms, in a fresh process, through a proxy counting every registry
   request. Target: under 30 s, at most 20 registry requests per playbook. With --before, the
   same release with assemble = never first (slow: one engine build per playbook and platform),
   timed only: it talks to the registry directly, the engine's pushes stall in the proxy.

Usage: python tooling/bench/bench_assemble.py [--count 200] [--loop 10] [--before]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench_platforms import timed_publish  # the same timed publish (tooling/bench/)
from bench_release import CountingProxy  # the same counting proxy (tooling/bench/)

from playbookctl import build
from playbookctl.bundle import build_bundle, push_bundle
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl.playbook import load_playbook
from playbookctl.render import render_pipeline
from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.docker_engine import docker_engine
from playbookctl_dev.registry import LocalRegistry
from playbookctl_dev.sample_repo import BASE_IMAGE, write_action_type, write_playbook

PYPROJECT = '[project]\nname = "bench"\nversion = "0"\n\n[tool.playbookctl]\n'
LOOP_TARGET = 0.2
RELEASE_SECONDS = 30.0
REQUESTS_PER_PLAYBOOK = 20


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def make_repo(root: Path, count: int, marker: str, registry: str = "") -> Path:
    root.mkdir(parents=True)
    extra = f'registry = "{registry}"\n' if registry else ""
    (root / "pyproject.toml").write_text(PYPROJECT + extra)
    write_action_type(root)
    for n in range(count):
        write_playbook(root, f"playbook-{n:03d}", "1.0.0", marker=f"{marker} {n}", rbac=False)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "playbooks")
    return root


def plain_loop(tmp: Path, registry: str, engine: str, base: str, count: int) -> float:
    """docker build + docker push + a bundle push per playbook, one platform, no checks."""
    root = make_repo(tmp / "loop", count, "loop")
    config = Config(
        root=root, registry=registry, image_repo="loop/images", bundle_repo="loop/bundles"
    )
    started = time.perf_counter()
    with build.Engine(engine) as eng, RegistryClient(config) as client:
        for d in sorted(config.playbooks_dir.iterdir()):
            ref = f"{config.image_ref(d.name)}:1.0.0"
            eng.build(d, tag=ref, overrides={BASE_IMAGE: base})
            digest = eng.push(ref)
            pb = load_playbook(d, root, config.max_file_bytes)
            rendered = render_pipeline(pb, config, image=f"{ref}@{digest}")
            push_bundle(
                client, f"{config.bundle_ref(d.name)}:1.0.0", build_bundle([rendered.data], {})
            )
    return time.perf_counter() - started


def publish_run(
    tmp: Path, registry: str, engine: str, base: str, *, count: int, mode: str, jobs: int
) -> float:
    root = make_repo(tmp / mode, count, mode)
    config = Config(
        root=root,
        registry=registry,
        image_repo=f"{mode}/images",
        bundle_repo=f"{mode}/bundles",
        base_image_overrides={BASE_IMAGE: base},
        assemble=mode,
    )
    elapsed, _ = timed_publish(config, engine, jobs, who="bench_assemble")
    return elapsed


def release_run(
    tmp: Path,
    proxy: CountingProxy,
    base: str,
    count: int,
    *,
    mode: str,
    jobs: int,
    engine_env: dict[str, str],
) -> dict[str, float]:
    # The engine's pushes do not pass the counting proxy (it stalls on them): an engine
    # release goes to the registry directly, timed but not counted.
    host = proxy.host if mode == "auto" else proxy.upstream
    if mode != "auto":
        base = base.replace(proxy.host, proxy.upstream, 1)
        push_base_image(proxy.upstream, base)
    work = make_repo(tmp / f"release-{mode}", count, f"release {mode}", registry=host)
    remote = tmp / f"remote-{mode}.git"
    git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "--quiet", "-u", "origin", "main")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYBOOKCTL_", "GITHUB_"))}
    env["PLAYBOOKCTL_BASE_IMAGE_OVERRIDES"] = json.dumps({BASE_IMAGE: base})
    env["PLAYBOOKCTL_ASSEMBLE"] = mode
    env["PLAYBOOKCTL_IMAGE_REPO"] = f"release-{mode}/images"  # the two runs never meet
    env["PLAYBOOKCTL_BUNDLE_REPO"] = f"release-{mode}/bundles"
    env.update(engine_env)  # the engine path's; an assembled release never calls it
    env["PLAYBOOKCTL_JOBS"] = str(jobs)
    env["PLAYBOOKCTL_CACHE_DIR"] = str(tmp / f"cache-{mode}")
    before = len(proxy.requests)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "playbookctl", "-C", str(work), "release"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"bench_assemble: release ({mode}) failed: exit {done.returncode}")
    requests = len(proxy.requests) - before if mode == "auto" else 0
    return {"seconds": elapsed, "requests": requests, "per_playbook": requests / count}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--loop", type=int, default=10)
    ap.add_argument("--before", action="store_true", help="also release with the engine")
    ap.add_argument("--jobs", type=int, default=4, help="publish's jobs (its default: 4)")
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="pbbench-asm-") as t, ExitStack() as stack:
        tmp = Path(t)
        # Base-layer summaries go to a cache of this run's own, not the user's.
        os.environ["PLAYBOOKCTL_CACHE_DIR"] = str(tmp / "cache")
        # Plain HTTP: every request is counted by a proxy in front of it (bench_publish.py,
        # bench_release.py and bench_platforms.py measure the HTTPS + token world beside it).
        registry = stack.enter_context(LocalRegistry(tls=False, workdir=tmp / "registry"))
        proxy = stack.enter_context(CountingProxy(registry.host))
        engine = stack.enter_context(docker_engine(tmp / "d"))
        base = f"{proxy.host}/bench/base/busybox:1"
        # Written by our client (the proxy reads Content-Length bodies only; the engine's
        # chunked uploads would not pass it). The engine pulls it like any base.
        push_base_image(proxy.host, base)

        loop = plain_loop(tmp, registry.host, engine.url, base, args.loop)
        never = publish_run(
            tmp, registry.host, engine.url, base, count=args.loop, mode="never", jobs=args.jobs
        )
        auto = publish_run(
            tmp, registry.host, engine.url, base, count=args.loop, mode="auto", jobs=args.jobs
        )
        print(f"{args.loop} RUN-less playbooks, side by side (publish jobs {args.jobs}):")
        print(f"  build + push + bundle push loop, 1 platform : {loop:6.2f} s   1.00x")
        print(
            f"  publish with the engine, 2 platforms        : {never:6.2f} s   {never / loop:.2f}x"
        )
        print(
            f"  publish assembled, 2 platforms              : {auto:6.2f} s   {auto / loop:.2f}x"
            f"  (target <= {LOOP_TARGET}x)"
        )
        ok = ok and auto / loop <= LOOP_TARGET

        modes = ["never", "auto"] if args.before else ["auto"]
        for mode in modes:
            got = release_run(
                tmp, proxy, base, args.count, mode=mode, jobs=args.jobs, engine_env=engine.env()
            )
            what = "with the engine" if mode == "never" else "assembled"
            counted = (
                f"{int(got['requests'])} registry requests ({got['per_playbook']:.1f} per playbook)"
                if mode == "auto"
                else "requests not counted"
            )
            print(
                f"release of {args.count} RUN-less playbooks, 2 platforms, {what}: "
                f"{got['seconds']:.2f} s, {counted}"
            )
            if mode == "auto":
                ok = (
                    ok
                    and got["seconds"] < RELEASE_SECONDS
                    and got["per_playbook"] <= REQUESTS_PER_PLAYBOOK
                )
        print(
            f"targets: assembled publish <= {LOOP_TARGET}x the loop; release < "
            f"{RELEASE_SECONDS:.0f} s with <= {REQUESTS_PER_PLAYBOOK} requests per playbook"
        )
        print("result: " + ("targets met" if ok else "TARGET NOT MET"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
