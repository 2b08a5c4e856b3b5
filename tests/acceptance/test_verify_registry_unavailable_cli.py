"""`verify` against a registry that cannot be asked says why once, and asks no more of it.

An operator runs `playbookctl verify` (README: "checks at any time that every registration's
bundle and images are in the registry"). With the registry down, or its token service refusing
the login, every registration used to be asked in turn, each waiting through the retries, each
printing the same cause: 7 registrations took 21 s, 200 would take minutes, for one fact. The
first registration that finds the registry unavailable now carries its cause; the others of that
registry are not asked, and say so in a short line naming the file that says why. verify still
fails (exit 1): nothing was verified.

Through the CLI, with real git remotes and a real HTTPS token-auth registry of the test's own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import TEST_BASE_IMAGE, MakeRepo, PlaybookRepo

pytestmark = pytest.mark.integration

NAMES = ("alpha", "beta", "gamma")


def _released(
    factory: MakeRepo, reg: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> PlaybookRepo:
    reg.login(Path(os.environ["DOCKER_CONFIG"]))
    base = f"{reg.host}/test-base/verify-unavailable:1"
    push_base_image(reg.host, base)
    for key, value in {
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "PLAYBOOKCTL_REGISTRY": reg.host,
        "PLAYBOOKCTL_IMAGE_REPO": "unavailable/images",
        "PLAYBOOKCTL_BUNDLE_REPO": "unavailable/bundles",
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES": json.dumps({TEST_BASE_IMAGE: base}),
        # A registry that does not answer fails fast, as it would after its retries.
        "PLAYBOOKCTL_REGISTRY_TIMEOUT": "2",
        "PLAYBOOKCTL_REGISTRY_DEADLINE": "4",
        "PLAYBOOKCTL_REGISTRY_RETRIES": "1",
    }.items():
        monkeypatch.setenv(key, value)
    repo = factory(dict.fromkeys(NAMES, "1.0.0"))
    assert main(["-C", str(repo.path), "release"]) == 0
    repo.git("pull", "--quiet", "--ff-only")
    return repo


@pytest.mark.parametrize("how", ["registry-down", "credentials-refused"])
def test_verify_says_once_that_the_registry_cannot_be_asked(
    playbook_repo_factory: MakeRepo,
    own_registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    repo = _released(playbook_repo_factory, own_registry, monkeypatch)
    capsys.readouterr()
    assert main(["-C", str(repo.path), "verify"]) == 0  # the baseline: all there
    capsys.readouterr()
    if how == "credentials-refused":  # a revoked or expired secret in the user's login
        own_registry.login(Path(os.environ["DOCKER_CONFIG"]), password="not-the-password")
        cause = "authentication failed at its token service (HTTP 401)"
    else:
        own_registry.stop()
        cause = "failed after 2 attempt(s): ConnectionError"

    assert main(["-C", str(repo.path), "verify"]) == 1
    out = capsys.readouterr().out
    findings = [line for line in out.splitlines() if "[verify.registry]" in line]
    assert len(findings) == len(NAMES), out
    told = [line for line in findings if cause in line]
    assert len(told) == 1, out
    first = told[0].split(":", 1)[0]  # registry/workflows/<name>.yaml
    assert first.startswith("registry/workflows/"), told
    others = [line for line in findings if line not in told]
    for line in others:
        assert (
            f"not checked: registry {own_registry.host} could not be asked ({first} says why)"
            in (line)
        ), out
        assert cause not in line, line
    assert {line.split(":", 1)[0] for line in findings} == {
        f"registry/workflows/{name}.yaml" for name in NAMES
    }


def test_a_token_service_that_is_down_is_not_called_the_registry(
    playbook_repo_factory: MakeRepo,
    own_registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The registry answers; its token service (another port) is down. The line used to ask "is
    the registry running and the port right?", about the one that was running."""
    repo = _released(playbook_repo_factory, own_registry, monkeypatch)
    assert own_registry.token_process is not None
    own_registry.token_process.kill()
    own_registry.token_process.wait()
    capsys.readouterr()

    assert main(["-C", str(repo.path), "verify"]) == 1
    out = capsys.readouterr().out
    told = [line for line in out.splitlines() if "token service unreachable" in line]
    assert len(told) == 1, out
    assert (
        "ConnectionError (connection refused: is the token service running and the port right?)"
        in told[0]
    ), told
    assert "is the registry running" not in out
