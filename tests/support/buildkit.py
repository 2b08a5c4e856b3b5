"""The one place the tests choose a docker CLI that drives BuildKit (`docker build` as users run
it since Docker 23), for the BuildKit oracle tests.

A CLI drives the engine's BuildKit when it has the `buildx` plugin (`docker buildx build`), or
when it is older than 23 and DOCKER_BUILDKIT=1 is set (Debian's docker.io 20.10, what `make
system-deps` installs, as /usr/bin/docker). A CLI 23 or later without buildx refuses
DOCKER_BUILDKIT=1, and such a CLI may come first in PATH (a hand-installed /usr/local/bin/docker):
so every `docker` in PATH is tried, then the system's own places, and the first that can is
taken. Only where none can does a test skip, saying which CLIs it tried and why each cannot.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# Where distribution packages put the CLI: tried after PATH (a CI runner's PATH may lack them).
_SYSTEM_PLACES = ("/usr/bin/docker", "/usr/local/bin/docker", "/bin/docker")


@dataclass(frozen=True)
class BuildKitCLI:
    cli: str  # the docker executable
    version: str  # its client version
    buildx: bool  # `docker buildx build` (else DOCKER_BUILDKIT=1 `docker build`)

    def env(self, docker_host: str, docker_config: Path | None = None) -> dict[str, str]:
        env = {**os.environ, "DOCKER_HOST": docker_host, "DOCKER_BUILDKIT": "1"}
        if docker_config is not None:
            env["DOCKER_CONFIG"] = str(docker_config)
        return env

    def build(
        self,
        context: Path,
        *,
        tag: str,
        docker_host: str,
        containerfile: str = "Containerfile",
        platform: str | None = None,
        docker_config: Path | None = None,
        timeout: float = 300,
    ) -> str:
        """Build `context` with BuildKit into the engine's image store; return the image id."""
        iidfile = context.parent / f".{context.name}.iid"
        argv = [self.cli, *(("buildx", "build", "--load") if self.buildx else ("build",))]
        argv += ["--progress=plain", "-f", str(context / containerfile), "-t", tag]
        argv += ["--iidfile", str(iidfile)]
        if platform is not None:
            argv += ["--platform", platform]
        done = subprocess.run(
            [*argv, str(context)],
            env=self.env(docker_host, docker_config),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise BuildKitBuildError(done.stderr[-4000:])
        return iidfile.read_text().strip()


class BuildKitBuildError(Exception):
    """BuildKit refused or failed the build: the CLI's output."""


def _candidates() -> list[str]:
    seen: list[str] = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which("docker", path=directory) if directory else None
        if found is not None:
            seen.append(found)
    seen += [p for p in _SYSTEM_PLACES if os.access(p, os.X_OK)]
    out: list[str] = []
    for path in seen:
        if os.path.realpath(path) not in {os.path.realpath(p) for p in out}:
            out.append(path)
    return out


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    # No engine is asked: DOCKER_HOST points nowhere, so `version` prints the client's only.
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


@functools.cache
def find_buildkit_cli() -> tuple[BuildKitCLI | None, str]:
    """The first CLI that drives BuildKit, or None and why none does."""
    why: list[str] = []
    for cli in _candidates():
        version = _run([cli, "version", "--format", "{{.Client.Version}}"]).stdout.strip()
        if not version:
            why.append(f"{cli}: no client version")
            continue
        if _run([cli, "buildx", "version"]).returncode == 0:
            return BuildKitCLI(cli, version, buildx=True), ""
        try:
            major = int(version.split(".", 1)[0])
        except ValueError:
            why.append(f"{cli}: version {version!r}")
            continue
        if major < 23:
            return BuildKitCLI(cli, version, buildx=False), ""
        why.append(f"{cli}: {version}, 23 or later without the buildx plugin")
    return None, "; ".join(why) or "no docker CLI in PATH or /usr/bin"


def buildkit_cli() -> BuildKitCLI:
    """The CLI for a BuildKit oracle test, or skip naming what was tried."""
    found, why = find_buildkit_cli()
    if found is None:
        pytest.skip(f"needs a docker CLI that drives BuildKit (buildx, or one before 23): {why}")
    return found
