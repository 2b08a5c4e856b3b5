"""`make demo`: release this repository's playbooks to a local registry; show a rerun is a no-op.

1. start a loopback OCI registry and a Docker engine (the machine's own engine when one answers);
2. build a two-platform busybox stand-in for the playbooks' base images and map their FROM
   lines to it;
3. clone this repository (its committed HEAD) into a bare remote and a scratch working copy;
4. run `playbookctl release` there: table, registry/ diff, the commit it pushed;
5. `playbookctl verify` the result against the registry (each image an index of linux/amd64 and
   linux/arm64), and `inspect` one bundle and the platforms of the image it pins;
6. run the release again: no publish, no commit, no push;
7. stop everything it started and remove its temp dir, also on failure or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from playbookctl.errors import FatalError
from playbookctl_dev.base_image import make_base_image, overrides_for
from playbookctl_dev.docker_engine import docker_engine
from playbookctl_dev.registry import LocalRegistry

REPO = Path(__file__).resolve().parents[2]


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def playbookctl(work: Path, env: dict[str, str], *args: str) -> int:
    cmd = [sys.executable, "-m", "playbookctl", "-C", str(work), *args]
    print("$ playbookctl " + " ".join(args), flush=True)
    return subprocess.run(cmd, env=env, check=False).returncode


def run(tmp: Path) -> int:
    with ExitStack() as stack:
        say("starting a loopback registry and a Docker engine")
        registry = stack.enter_context(LocalRegistry(workdir=tmp / "registry"))
        engine = stack.enter_context(docker_engine(tmp / "d"))
        print(f"registry: {registry.host}   docker engine: {engine.url}")

        say("building the base-image stand-in (busybox, an index of linux/amd64 and linux/arm64)")
        stand_in = f"{registry.host}/demo/base/busybox:1"
        make_base_image(engine.url, tmp / "base", stand_in)
        overrides = overrides_for(REPO / "playbooks", stand_in)
        for src in overrides:
            print(f"FROM {src}\n  -> {stand_in}")

        say("a scratch clone of this repository (committed HEAD) with a local bare remote")
        remote, work = tmp / "remote.git", tmp / "work"
        git(tmp, "clone", "--quiet", "--bare", "--no-hardlinks", str(REPO), str(remote))
        git(tmp, "clone", "--quiet", str(remote), str(work))
        print(f"remote: {remote}\nclone:  {work} at {git(work, 'rev-parse', '--short', 'HEAD')}")

        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYBOOKCTL_", "GITHUB_"))}
        env.update(
            {
                **engine.env(),
                "PLAYBOOKCTL_REGISTRY": registry.host,
                "PLAYBOOKCTL_IMAGE_REPO": "demo/images",
                "PLAYBOOKCTL_BUNDLE_REPO": "demo/bundles",
                "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES": json.dumps(overrides),
                "DOCKER_CONFIG": str(tmp / "docker-config"),
            }
        )
        before = git(work, "rev-parse", "origin/main")

        say("release #1: plan, publish, register, one commit, push")
        if playbookctl(work, env, "release") != 0:
            print("demo: the first release failed", file=sys.stderr)
            return 1
        after = git(remote, "rev-parse", "main")
        if after == before:
            print("demo: the first release pushed nothing (already registered?)")
        else:
            say(f"the release commit {after[:12]} on the remote")
            print(git(remote, "log", "-1", "--format=%an <%ae>%n%n%B", after))
            say("registry/ diff of that commit")
            print(git(remote, "diff", "--stat", before, after, "--", "registry"))
            print(git(remote, "diff", before, after, "--", "registry/kustomization.yaml"))
            listing = git(remote, "ls-tree", "--name-only", f"{after}:registry/workflows")
            first = sorted(listing.split())
            print(git(remote, "show", f"{after}:registry/workflows/{first[0]}"))

        say("verify: every registration's bundle and images, as Tekton and Kubernaut read them")
        if playbookctl(work, env, "verify") != 0:
            print("demo: verify failed", file=sys.stderr)
            return 1

        say("inspect: a bundle, and the platforms of the image index it pins")
        registered = (work / "registry" / "workflows").glob("*.yaml")
        first_file = sorted(registered)[0].read_text()
        bundle = next(
            line.split("bundle:", 1)[1].strip()
            for line in first_file.splitlines()
            if line.strip().startswith("bundle:")
        )
        if playbookctl(work, env, "inspect", bundle) != 0:
            print("demo: inspect failed", file=sys.stderr)
            return 1

        say("release #2: nothing changed, so nothing is published, committed or pushed")
        if playbookctl(work, env, "release") != 0:
            print("demo: the second release failed", file=sys.stderr)
            return 1
        again = git(remote, "rev-parse", "main")
        if again != after:
            moved = f"{after[:12]} -> {again[:12]}"
            print(f"demo: FAILED: the rerun moved main {moved}", file=sys.stderr)
            return 1
        print(f"remote main still at {again[:12]}: the rerun was a no-op")

        say("stopping the registry and the Docker engine")
    return 0


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="pbdemo-"))
    try:
        return run(tmp)
    except FatalError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"demo: error: {' '.join(exc.cmd)}: {(exc.stderr or '').strip()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
