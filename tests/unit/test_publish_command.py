"""commands/publish.py helpers: where the source repository URL comes from, the human report."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from playbookctl.commands._common import warn_stray_hermetic
from playbookctl.commands.publish import report_human, source_repository_url
from playbookctl.config import Config
from playbookctl.gitrepo import normalise_remote
from playbookctl.results import Action, Artifact, PublishResult
from tests.support.lintrepo import good_playbook, make_repo


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:org/playbooks.git", "https://github.com/org/playbooks"),
        ("https://github.com/org/playbooks.git", "https://github.com/org/playbooks"),
        ("https://github.com/org/playbooks/", "https://github.com/org/playbooks"),
        # credentials in a remote never reach a label or an annotation
        ("https://x-access-token:ghs_secret@github.com/org/p.git", "https://github.com/org/p"),
        ("ssh://git@gitlab.example.com:2222/team/p.git", "https://gitlab.example.com/team/p"),
        ("https://git.example.com:8443/team/p", "https://git.example.com:8443/team/p"),
        ("file:///srv/git/p.git", "file:///srv/git/p"),
    ],
)
def test_normalise_remote(remote: str, url: str) -> None:
    assert normalise_remote(remote) == url


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [
        ("https://example.com/configured", {"GITHUB_REPOSITORY": "o/r"}, "https://example.com/configured"),
        ("", {"GITHUB_REPOSITORY": "o/r"}, "https://github.com/o/r"),
        ("", {"GITHUB_REPOSITORY": "o/r", "GITHUB_SERVER_URL": "https://ghe.example.com/"},
         "https://ghe.example.com/o/r"),
        ("", {}, ""),  # not a git repository, nothing configured
    ],
)  # fmt: skip
def test_source_repository_precedence(
    tmp_path: Path, configured: str, env: dict[str, str], expected: str
) -> None:
    config = Config(root=tmp_path, source_repository=configured)
    assert source_repository_url(config, env) == expected


def test_source_repository_from_the_origin_remote(tmp_path: Path) -> None:
    from tests.support.gitrepos import git

    git(tmp_path, "init", "--quiet")
    git(tmp_path, "remote", "add", "origin", "git@github.com:org/playbooks.git")
    assert source_repository_url(Config(root=tmp_path), {}) == "https://github.com/org/playbooks"


def test_report_human() -> None:
    digest = "sha256:" + "a" * 64
    results = [
        PublishResult(
            name="alpha",
            version="1.0.0",
            source_hash="sha256:" + "1" * 64,
            image=Artifact(
                "r.example/i/alpha", "1.0.0", digest, Action.BUILT, ["linux/amd64", "linux/arm64"]
            ),
            bundle=Artifact("r.example/b/alpha", "1.0.0", digest, Action.PUSHED),
            status=Action.PUSHED,
        ),
        PublishResult(
            name="beta",
            version="2.0.0",
            source_hash="sha256:" + "2" * 64,
            image=Artifact("r.example/i/beta", "2.0.0", None, Action.SKIPPED),
            bundle=None,
            status=Action.REFUSED,
            error="the content changed, bump the version",
            messages=["detail"],
        ),
    ]
    out = io.StringIO()
    report_human(results, out)
    assert out.getvalue().splitlines() == [
        "alpha 1.0.0: pushed",
        f"  image  built    r.example/i/alpha:1.0.0@{digest}",
        "                  platforms: linux/amd64, linux/arm64",
        f"  bundle pushed   r.example/b/alpha:1.0.0@{digest}",
        "beta 2.0.0: refused",
        "  image  skipped  r.example/i/beta:2.0.0",
        "  error: the content changed, bump the version",
        "    detail",
        "1 pushed, 1 refused",
    ]


def test_a_hermetic_playbooks_entry_naming_no_playbook_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_repo(tmp_path / "repo", {"restart-deployment": good_playbook()})
    config = Config(root=root, hermetic_playbooks=("restart-deployment", "restart-deploymnet"))
    warn_stray_hermetic(config)
    err = capsys.readouterr().err
    assert err.startswith("warning: hermetic-playbooks names restart-deploymnet, which is no ")
    warn_stray_hermetic(Config(root=root, hermetic_playbooks=("restart-deployment",)))
    assert capsys.readouterr().err == ""
