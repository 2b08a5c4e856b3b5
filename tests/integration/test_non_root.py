"""The suite's integration part as it runs on a GitHub-hosted runner: as a non-root user, with a
Docker engine that user did not start.

Run as root (this machine, `make test` in a container), the test hands this session's engine to
the unprivileged user `nobody` (the socket's group set to nobody's, its directory made
traversable: nothing else changes) and this session's HTTPS token-auth registry, whose name and
CA root installed (PLAYBOOKCTL_TEST_REGISTRY; nobody could install either), and runs a subset
of the integration tests as that user with setpriv: a real release through the engine, the
registry and a bare git remote, then verify, and the engine path's publish of a RUN playbook
on both platforms (its save, rewrite and push by playbookctl). The interpreter of this virtual
environment may live where nobody cannot reach it (a pyenv under /root), so the user gets a
bare venv of the system's Python of the same version that reads this environment's
site-packages (tests/support/nobody.py). Run as non-root, the tests that need a private dockerd
(or the HTTPS registry) skip with their reason when no engine (or no root-prepared registry) is
there, so that run alone proves little: inside GitHub Actions the registry's tests fail instead
(the workflows run the suite as root, `make test AS_ROOT=1`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from playbookctl_dev.registry import LocalRegistry
from tests.support.nobody import NOBODY, workdir_for_nobody
from tests.support.registry import ATTACH_VAR, attach_spec

pytestmark = [
    pytest.mark.integration,
    # a subset of the integration tests run again as `nobody` (its own limits: 900 s + 300 s)
    pytest.mark.timeout(1500),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBSET = [
    "tests/integration/test_verify_release.py",
    "tests/integration/test_build.py",
    # The engine path (a RUN playbook built on both platforms, saved, rewritten and written to
    # the registry by playbookctl) as the runner's user: test_build.py covers only the engine's
    # own build and push.
    "tests/integration/test_engine_publish.py",
]


@pytest.mark.skipif(os.geteuid() != 0, reason="already non-root: the whole suite is the proof")
def test_integration_subset_passes_as_an_unprivileged_user(
    docker_engine: str, session_registry: LocalRegistry, request: pytest.FixtureRequest
) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    url = urlsplit(docker_engine)
    if url.scheme != "unix":
        pytest.skip(f"the engine is not on a unix socket ({docker_engine})")
    sock = Path(url.path)
    # The private dockerd's socket: root:root 0660 in a 0700 directory. Let nobody's group in.
    os.chown(sock, -1, NOBODY)
    sock.chmod(0o660)
    for parent in sock.parents:
        if parent == Path("/tmp") or parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o001)  # traverse only, no listing

    # pytest's own temp root is 0700 for its user: nobody gets a directory of its own in /tmp.
    scratch = tempfile.TemporaryDirectory(prefix="pb-nobody-", dir="/tmp")
    request.addfinalizer(scratch.cleanup)
    work = Path(scratch.name)
    python = workdir_for_nobody(work)
    env = {
        # this environment's tools (hadolint, shellcheck) first, as `make test` has them
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(work / "home"),
        "DOCKER_HOST": docker_engine,
        # The HTTPS token-auth registry root prepared (its name in /etc/hosts, its CA in
        # /etc/docker/certs.d): nobody can write either, as on a runner where an admin did it.
        ATTACH_VAR: attach_spec(session_registry),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    cmd = [
        setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
        "sh", "-c", 'echo "uid=$(id -u)"; exec "$@"', "sh",
        str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
        f"--basetemp={work / 'basetemp' / 'run'}", *SUBSET,
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    out = done.stdout + done.stderr
    assert done.stdout.startswith(f"uid={NOBODY}\n"), out[-3000:]
    assert done.returncode == 0, out[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None, summary
    assert int(passed.group(1)) >= 10, summary
    assert "skipped" not in summary, summary  # it really ran there, nothing skipped for root

    # Without an engine it can use, a non-root user's engine tests skip, saying why.
    no_engine = {k: v for k, v in env.items() if k != "DOCKER_HOST"}
    no_engine["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    done = subprocess.run(
        [*cmd[: cmd.index(str(python))], str(python), "-m", "pytest", "-q", "-rs", "-p",
         "no:cacheprovider", f"--basetemp={work / 'basetemp' / 'skip'}",
         "tests/integration/test_build.py"],
        cwd=REPO_ROOT, env=no_engine, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert re.search(r"\b[1-9]\d* skipped", done.stdout.splitlines()[-1]), done.stdout[-2000:]
    assert "starting a private dockerd needs root" in done.stdout


@pytest.mark.timeout(300)
@pytest.mark.skipif(os.geteuid() != 0, reason="starts a session as nobody, which needs root")
def test_inside_github_actions_a_session_that_cannot_set_up_the_registry_fails(
    tmp_path: Path,
) -> None:
    """A GitHub-hosted runner's user is not root, so there every test of the HTTPS registry
    would skip and the pull request's `make test` pass with them unrun: inside Actions
    (GITHUB_ACTIONS=true) such a test fails, naming `make test AS_ROOT=1`; elsewhere it still
    skips, saying why."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    scratch = tempfile.TemporaryDirectory(prefix="pb-nobody-", dir="/tmp")
    work = Path(scratch.name)
    try:
        python = workdir_for_nobody(work)
        env = {
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(work / "home"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        test = "tests/integration/test_oci.py::test_blob_and_manifest_round_trip"
        results = {}
        for actions in ("true", ""):
            cmd = [
                setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
                str(python), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                f"--basetemp={work / 'basetemp' / (actions or 'plain')}", test,
            ]  # fmt: skip
            results[actions] = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                env={**env, "GITHUB_ACTIONS": actions} if actions else env,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
    finally:
        scratch.cleanup()
    inside, outside = results["true"], results[""]
    assert inside.returncode == 1, (inside.stdout + inside.stderr)[-3000:]
    assert "1 error" in inside.stdout.splitlines()[-1], inside.stdout[-3000:]
    assert "inside GitHub Actions the suite must run as root: make test AS_ROOT=1" in inside.stdout
    assert outside.returncode == 0, (outside.stdout + outside.stderr)[-3000:]
    assert "1 skipped" in outside.stdout.splitlines()[-1], outside.stdout[-3000:]
    assert "installing its CA in /etc/docker/certs.d needs root" in outside.stdout
