"""Benchmark: assembled images against engine builds, side by side in one run.

1. Ten RUN-less playbooks (the sample repository's), each run on its own fresh repositories:
   - the plain loop a team would script, for ONE platform: per playbook an engine build, an
     engine push and a bundle push of the rendered Pipeline (what `docker build`, `docker push`
     and `tkn bundle push` do);
   - `publish` for linux/amd64 and linux/arm64 with the engine (setting assemble = never);
   - `publish` for linux/amd64 and linux/arm64, assembled without the engine (assemble = auto).
   Target: the assembled two-platform publish at most 0.2x the one-platform loop. The three
   runs are repeated --repeat times (default 3), each repetition with fresh playbooks and an
   empty cache (cold, as on a fresh CI runner); best and median are shown, the medians judged.
   The publishes run with smoke = off, as the loop starts no container (bench_smoke.py
   measures the smoke run). Shown beside, not judged: one assembled publish on the last
   repetition's cache (warm), and one with the smoke run on (publish's default).
2. `playbookctl release` (plan, publish, register, commit, push) of --count RUN-less playbooks
   (default 200) on two platforms, in a fresh process, through a proxy counting every registry
   request. Target: under 30 s, at most 20 registry requests per playbook. With --before, the
   same release with assemble = never first (slow: one engine build per playbook and platform),
   timed only: it talks to the registry directly, the engine's pushes stall in the proxy.
   With --tls, the same release again on the HTTPS registry with its token service (the
   production-like world), counted from the registry's own access log; shown, not judged.

Exit 1 when a target is missed (the missed ones are named), 2 on a usage error.

Usage: python tooling/bench/bench_assemble.py [--count 200] [--loop 10] [--repeat 3]
           [--only compare|release] [--before] [--tls] [--jobs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench_args import positive_int  # the benches' argument types (tooling/bench/)
from bench_platforms import timed_publish  # the same timed publish (tooling/bench/)
from bench_release import CountingProxy  # the same counting proxy (tooling/bench/)

from playbookctl import build
from playbookctl.bundle import build_bundle, push_bundle
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl.playbook import load_playbook
from playbookctl.render import render_pipeline
from playbookctl_dev import trust
from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.base_image import cache_dir as stand_in_cache
from playbookctl_dev.docker_engine import docker_engine
from playbookctl_dev.registry import LocalRegistry, Storage
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


def plain_loop(
    tmp: Path, registry: str, engine: str, base: str, count: int, *, marker: str = "loop"
) -> float:
    """docker build + docker push + a bundle push per playbook, one platform, no checks."""
    root = make_repo(tmp / marker, count, marker)
    config = Config(
        root=root, registry=registry, image_repo=f"{marker}/images", bundle_repo=f"{marker}/bundles"
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
    tmp: Path,
    registry: str,
    engine: str,
    base: str,
    *,
    count: int,
    mode: str,
    jobs: int,
    cache: Path,
    marker: str = "",
    smoke: str = "off",
) -> float:
    """publish of `count` fresh playbooks (own repositories) with `cache` as the machine's cache
    directory (base-layer summaries, lint's verdicts): an empty one is a fresh CI runner's."""
    name = marker or mode
    root = make_repo(tmp / name, count, name)
    config = Config(
        root=root,
        registry=registry,
        image_repo=f"{name}/images",
        bundle_repo=f"{name}/bundles",
        base_image_overrides={BASE_IMAGE: base},
        assemble=mode,
        smoke=smoke,
    )
    os.environ["PLAYBOOKCTL_CACHE_DIR"] = str(cache)
    elapsed, _ = timed_publish(config, engine, jobs, who="bench_assemble")
    return elapsed


def release_tls(
    tmp: Path, count: int, *, jobs: int, engine_env: dict[str, str], storage: Storage
) -> dict[str, float] | None:
    """Part 2 on the HTTPS registry with its token service (the test world's, README "The test
    world"), counted from the registry's own access log; None where it cannot run (not root)."""
    why_not = trust.can_install()
    if why_not is not None:
        print(f"release on HTTPS + tokens: not measured ({why_not})")
        return None
    with ExitStack() as stack:
        reg = stack.enter_context(
            LocalRegistry(access_log=True, workdir=tmp / "registry-tls", storage=storage)
        )
        reg.login(tmp / "docker-config-tls")
        os.environ["DOCKER_CONFIG"] = str(tmp / "docker-config-tls")
        base = f"{reg.host}/bench/base/busybox:1"
        push_base_image(reg.host, base)
        tokens = reg.tokens_issued()
        got = release_run(
            tmp,
            None,
            base,
            count,
            mode="auto",
            jobs=jobs,
            engine_env=engine_env,
            world=(reg.host, lambda: len(reg.requests())),
        )
        got["tokens"] = reg.tokens_issued() - tokens
        return got


def release_run(
    tmp: Path,
    proxy: CountingProxy | None,
    base: str,
    count: int,
    *,
    mode: str,
    jobs: int,
    engine_env: dict[str, str],
    world: tuple[str, Callable[[], int]] | None = None,
) -> dict[str, float]:
    """`world`: (registry, requests so far) instead of the counting proxy's."""
    if world is not None:
        host, seen = world
    else:
        if proxy is None:
            raise ValueError("release_run: a counting proxy or a world to count in")
        # The engine's pushes do not pass the counting proxy (it stalls on them): an engine
        # release goes to the registry directly, timed but not counted.
        host = proxy.host if mode == "auto" else proxy.upstream
        seen = lambda: len(proxy.requests)  # noqa: E731
        if mode != "auto":
            base = base.replace(proxy.host, proxy.upstream, 1)
            push_base_image(proxy.upstream, base)
    tag = f"{mode}-tls" if world is not None else mode
    work = make_repo(tmp / f"release-{tag}", count, f"release {tag}", registry=host)
    remote = tmp / f"remote-{tag}.git"
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
    env["PLAYBOOKCTL_CACHE_DIR"] = str(tmp / f"cache-{tag}")
    before = seen()
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
    requests = seen() - before if mode == "auto" else 0
    return {"seconds": elapsed, "requests": requests, "per_playbook": requests / count}


def compare(
    tmp: Path, registry: str, engine: str, base: str, *, loop: int, jobs: int, repeat: int
) -> list[str]:
    """Part 1, `repeat` times; the missed targets (judged on the medians)."""
    loops: list[float] = []
    nevers: list[float] = []
    autos: list[float] = []
    for rep in range(repeat):
        # Fresh playbooks (their own script markers: no engine build-cache hit carries over),
        # repositories and cache directories in every repetition.
        work = tmp / f"compare-{rep}"
        loops.append(plain_loop(work, registry, engine, base, loop, marker=f"loop-{rep}"))
        for mode, times in (("never", nevers), ("auto", autos)):
            times.append(
                publish_run(
                    work,
                    registry,
                    engine,
                    base,
                    count=loop,
                    mode=mode,
                    jobs=jobs,
                    cache=work / f"cache-{mode}",
                    marker=f"{mode}-{rep}",
                )
            )
    # Shown, not judged: the same publish again with new playbooks on the last repetition's
    # cache (a developer's machine, or a CI runner that keeps its cache), and with the smoke
    # run on (publish's default: each image started in the engine before its tag is written).
    last = tmp / f"compare-{repeat - 1}"
    warm, smoked = (
        publish_run(
            last,
            registry,
            engine,
            base,
            count=loop,
            mode="auto",
            jobs=jobs,
            cache=last / cache,
            marker=marker,
            smoke=smoke,
        )
        for cache, marker, smoke in (
            ("cache-auto", "auto-warm", "off"),
            ("cache-smoke", "auto-smoke", "auto"),
        )
    )
    loop_best, loop_median = min(loops), statistics.median(loops)

    def row(what: str, times: list[float]) -> str:
        best, median = min(times), statistics.median(times)
        return (
            f"  {what:<44}: {best:6.2f} s {median:6.2f} s   "
            f"{best / loop_best:5.2f}x {median / loop_median:5.2f}x"
        )

    print(
        f"{loop} RUN-less playbooks, side by side, {repeat} repetition(s) "
        f"(publish jobs {jobs}):           best median    best median"
    )
    print(row("build + push + bundle push loop, 1 platform", loops))
    print(row("publish with the engine, 2 platforms", nevers))
    print(
        row("publish assembled, 2 platforms, cold cache", autos) + f"  (target <= {LOOP_TARGET}x)"
    )
    for what, took in (
        ("publish assembled, 2 platforms, warm cache", warm),
        ("publish assembled, cold, smoke run on", smoked),
    ):
        print(f"  {what:<44}: {took:6.2f} s (one run, {took / loop_median:.2f}x; not judged)")
    print(
        "  cold cache: every judged publish starts with an empty cache directory (base-layer "
        "summaries, lint's verdicts), as on a fresh CI runner; the engine keeps the base it "
        "pulled in the first loop, as within one CI job. Smoke runs off, as in the loop (no "
        "container started; bench_smoke.py measures them). Ratios: best to best, median to "
        "median."
    )
    ratio = statistics.median(autos) / loop_median
    if ratio > LOOP_TARGET:
        return [f"assembled publish {ratio:.2f}x the loop (median), target <= {LOOP_TARGET}x"]
    return []


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--count", type=positive_int, default=200, help="playbooks released (default 200)"
    )
    ap.add_argument("--loop", type=positive_int, default=10, help="playbooks compared (default 10)")
    ap.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        help="repetitions of the comparison; best and median shown, the median judged (default 3)",
    )
    ap.add_argument(
        "--only",
        choices=("compare", "release"),
        help="run only the comparison (part 1) or only the release (part 2)",
    )
    ap.add_argument("--before", action="store_true", help="also release with the engine")
    ap.add_argument(
        "--tls",
        action="store_true",
        help="also release on the HTTPS registry with tokens (counted from its access log)",
    )
    ap.add_argument("--jobs", type=positive_int, default=4, help="publish's jobs (its default: 4)")
    ap.add_argument(
        "--registry-storage",
        choices=("memory", "disk"),
        default="memory",
        help="where the registries keep blobs: memory (the test world's, default) or this "
        "machine's disk, which the registry syncs on every write",
    )
    args = ap.parse_args()
    missed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pbbench-asm-") as t, ExitStack() as stack:
        tmp = Path(t)
        # The stand-in base's .debs and layers stay in the machine's cache (built once, not
        # timed); everything playbookctl caches goes to this run's own directories.
        os.environ.setdefault("PLAYBOOKCTL_STAND_IN_CACHE", str(stand_in_cache()))
        os.environ["PLAYBOOKCTL_CACHE_DIR"] = str(tmp / "cache")
        # Plain HTTP: every request is counted by a proxy in front of it (bench_publish.py,
        # bench_release.py and bench_platforms.py measure the HTTPS + token world beside it).
        registry = stack.enter_context(
            LocalRegistry(tls=False, workdir=tmp / "registry", storage=args.registry_storage)
        )
        proxy = stack.enter_context(CountingProxy(registry.host))
        engine = stack.enter_context(docker_engine(tmp / "d"))
        base = f"{proxy.host}/bench/base/busybox:1"
        # Written by our client (the proxy reads Content-Length bodies only; the engine's
        # chunked uploads would not pass it). The engine pulls it like any base.
        push_base_image(proxy.host, base)

        if args.only != "release":
            # The comparison's base lives in a registry of its own, as production's does
            # (Docker Hub, the images on GHCR): every image repository needs its layers copied
            # in (the engine's pushes and publish's alike). Not behind the counting proxy, which
            # runs in this process and would spend the measured publish's CPU forwarding them.
            hub = stack.enter_context(
                LocalRegistry(tls=False, workdir=tmp / "hub", storage=args.registry_storage)
            )
            hub_base = f"{hub.host}/bench/base/debian:1"
            push_base_image(hub.host, hub_base)
            missed += compare(
                tmp,
                registry.host,
                engine.url,
                hub_base,
                loop=args.loop,
                jobs=args.jobs,
                repeat=args.repeat,
            )

        modes = ["never", "auto"] if args.before else ["auto"]
        for mode in modes if args.only != "compare" else []:
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
                if got["seconds"] >= RELEASE_SECONDS:
                    missed.append(
                        f"release {got['seconds']:.1f} s, target < {RELEASE_SECONDS:.0f} s"
                    )
                if got["per_playbook"] > REQUESTS_PER_PLAYBOOK:
                    missed.append(
                        f"release {got['per_playbook']:.1f} requests per playbook, "
                        f"target <= {REQUESTS_PER_PLAYBOOK}"
                    )
        if args.tls and args.only != "compare":
            got_tls = release_tls(
                tmp,
                args.count,
                jobs=args.jobs,
                engine_env=engine.env(),
                storage=args.registry_storage,
            )
            if got_tls is not None:
                print(
                    f"release of {args.count} RUN-less playbooks, 2 platforms, assembled, HTTPS "
                    f"+ tokens: {got_tls['seconds']:.2f} s, {int(got_tls['requests'])} registry "
                    f"requests ({got_tls['per_playbook']:.1f} per playbook, 401 challenges "
                    f"included) and {int(got_tls['tokens'])} tokens issued by its token service "
                    f"({got_tls['tokens'] / args.count:.1f} per playbook)"
                )
        print(
            f"targets: assembled publish <= {LOOP_TARGET}x the loop; release < "
            f"{RELEASE_SECONDS:.0f} s with <= {REQUESTS_PER_PLAYBOOK} requests per playbook"
        )
        print(
            "result: " + ("targets met" if not missed else "TARGET NOT MET: " + "; ".join(missed))
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
