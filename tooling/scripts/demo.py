"""`make demo`: release this repository's playbooks to a local registry; show a rerun is a no-op.

1. start an OCI registry set up as production ones are (HTTPS with a CA of its own installed in
   /etc/docker/certs.d, its name mapped in /etc/hosts, Bearer token auth with short-lived tokens;
   README "The test world"; needs root, else a plain-HTTP loopback registry, said so), log in to
   it in a private Docker config, and a Docker engine (the machine's own engine when one answers;
   none at all when the machine has none, or with PLAYBOOKCTL_DEMO_ENGINE=none: RUN-less
   playbooks are assembled without one, and the demo says which playbooks would need one);
2. push the two-platform stand-in for the playbooks' base images (Debian's static busybox, bash
   and kubectl for amd64 and arm64, made without an engine) and map their FROM lines to it;
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

from playbookctl.assemble import Refused, plan
from playbookctl.errors import FatalError
from playbookctl.playbook import CONTAINERFILES
from playbookctl_dev import trust
from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.base_image import make_base_image, overrides_for
from playbookctl_dev.docker_engine import docker_engine, existing_engine
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
        use_engine = engine_wanted()
        say(
            "starting a registry (HTTPS, token auth)"
            + (" and a Docker engine" if use_engine else "")
        )
        why_not = trust.can_install()
        if why_not is not None:
            print(f"not root ({why_not}): a plain-HTTP loopback registry instead")
        registry = stack.enter_context(LocalRegistry(tls=why_not is None, workdir=tmp / "registry"))
        # `docker login`, as a CI job does it: playbookctl and the engine read this config.
        docker_config = tmp / "docker-config"
        registry.login(docker_config)
        os.environ["DOCKER_CONFIG"] = str(docker_config)  # the stand-in's push below reads it
        if registry.tls:
            print(
                f"registry: {registry.url}, CA in /etc/docker/certs.d/{registry.host}/ca.crt, "
                f"token service {registry.token_realm} ({registry.token_lifetime} s tokens)"
            )
        engine_env: dict[str, str]
        stand_in = f"{registry.host}/demo/base/busybox:1"
        if use_engine:
            engine = stack.enter_context(docker_engine(tmp / "d"))
            print(f"registry: {registry.host}   docker engine: {engine.url}")
            engine_env = engine.env()
            say(
                "the base-image stand-in (Debian's static busybox, bash and kubectl for "
                "linux/amd64 and linux/arm64; downloaded and built once per machine)"
            )
            make_base_image(engine.url, tmp / "base", stand_in)
        else:
            # Nothing may reach an engine: DOCKER_HOST names a socket that does not exist.
            engine_env = {"DOCKER_HOST": f"unix://{tmp}/no-engine.sock"}
            print(f"registry: {registry.host}   docker engine: none (RUN-less images only)")
            say("writing the base-image stand-in into the registry (no engine)")
            push_base_image(registry.host, stand_in)
        say("which playbooks need a Docker engine")
        for line in engine_needs(REPO / "playbooks"):
            print(line)
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
                **engine_env,
                "PLAYBOOKCTL_REGISTRY": registry.host,
                "PLAYBOOKCTL_IMAGE_REPO": "demo/images",
                "PLAYBOOKCTL_BUNDLE_REPO": "demo/bundles",
                "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES": json.dumps(overrides),
                "DOCKER_CONFIG": str(docker_config),
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

        if registry.auth == "token":
            print(f"tokens the token service issued: {registry.tokens_issued()}")
        say("stopping the registry" + (" and the Docker engine" if use_engine else ""))
    return 0


def engine_wanted() -> bool:
    """An engine when one answers or can be started here, unless PLAYBOOKCTL_DEMO_ENGINE=none."""
    if os.environ.get("PLAYBOOKCTL_DEMO_ENGINE", "").strip().lower() == "none":
        return False
    return existing_engine() is not None or shutil.which("dockerd") is not None


def engine_needs(playbooks: Path) -> list[str]:
    """One line per playbook: assembled without an engine, or why it needs one."""
    lines = []
    for d in sorted(p for p in playbooks.iterdir() if p.is_dir()):
        cf = next((d / n for n in CONTAINERFILES if (d / n).is_file()), None)
        if cf is None:
            continue
        try:
            plan(cf.read_text("utf-8"))
        except Refused as exc:
            lines.append(f"  {d.name}: needs an engine ({exc})")
        else:
            lines.append(f"  {d.name}: assembled, no engine needed")
    return lines


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
