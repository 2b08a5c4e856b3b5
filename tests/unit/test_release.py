"""release helpers: commit message, provenance URL, step summary, table."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.config import Config
from playbookctl.gitrepo import GitRepo
from playbookctl.register import Change, RegisterAction
from playbookctl.release import (
    TRAILER,
    ReleaseReport,
    commit_message,
    format_table,
    is_release_commit,
    source_repository,
    write_step_summary,
)
from playbookctl.results import Action, Artifact, PublishResult
from tests.support.gitrepos import git

DIGEST = "sha256:" + "ab" * 32
BUNDLE = f"r.example/b/alpha:1.1.0@{DIGEST}"


def test_commit_message_lists_each_playbook_version_and_digest() -> None:
    changes = [
        Change("alpha", RegisterAction.REGISTERED, "1.1.0", BUNDLE, "was 1.0.0"),
        Change("beta", RegisterAction.UNCHANGED, "2.0.0", "r.example/b/beta:2.0.0@" + DIGEST),
        Change("gamma", RegisterAction.REMOVED, "0.1.0", "", "playbook deleted"),
        Change("delta", RegisterAction.SKIPPED, "3.0.0", "", "publish failed"),
    ]
    message = commit_message(changes)
    lines = message.splitlines()
    assert lines[0] == "registry: release alpha 1.1.0, -gamma"
    assert f"alpha 1.1.0 {DIGEST}" in lines
    assert "gamma: removed (playbook deleted)" in lines
    assert not any(line.startswith(("beta", "delta")) for line in lines)
    assert is_release_commit(message)
    assert lines[-1] == TRAILER
    assert not is_release_commit("fix: something\n\nmentions Released-by: playbookctl inline")


def test_long_subject_is_summarised() -> None:
    changes = [
        Change(f"playbook-number-{i}", RegisterAction.REGISTERED, "1.0.0", BUNDLE) for i in range(5)
    ]
    assert commit_message(changes).splitlines()[0] == "registry: release 5 playbook change(s)"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x-access-token:ghs_secret@github.com/o/r.git", "https://github.com/o/r"),
        ("https://user@example.com/o/r", "https://example.com/o/r"),
        ("http://user:pw@example.com/o/r", "http://example.com/o/r"),
        ("ssh://user:pw@example.com/o/r", "https://example.com/o/r"),
        ("git@github.com:o/r.git", "https://github.com/o/r"),
        ("/srv/git/r.git", "file:///srv/git/r"),
    ],
)
def test_source_repository_never_carries_credentials(
    tmp_path: Path, url: str, expected: str
) -> None:
    git(tmp_path, "init", "--quiet", "--initial-branch=main")
    git(tmp_path, "remote", "add", "origin", url)
    repo = GitRepo(tmp_path)
    assert source_repository(Config(root=tmp_path), repo, "origin") == expected


def test_source_repository_prefers_setting_then_github(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(tmp_path, "init", "--quiet", "--initial-branch=main")
    repo = GitRepo(tmp_path)
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    assert source_repository(Config(root=tmp_path), repo, "origin") == "https://github.com/o/r"
    configured = Config(root=tmp_path, source_repository="https://example.com/x")
    assert source_repository(configured, repo, "origin") == "https://example.com/x"


def test_step_summary_and_table(tmp_path: Path) -> None:
    result = PublishResult(
        name="alpha",
        version="1.1.0",
        source_hash="sha256:" + "1" * 64,
        image=Artifact("r.example/i/alpha", "1.1.0", DIGEST, Action.BUILT),
        bundle=Artifact("r.example/b/alpha", "1.1.0", DIGEST, Action.PUSHED),
        status=Action.PUSHED,
    )
    report = ReleaseReport(
        source_commit="c" * 40,
        target="main",
        results=[result],
        changes=[Change("alpha", RegisterAction.REGISTERED, "1.1.0", BUNDLE, "a|b")],
        commit="d" * 40,
        pushed=True,
    )
    path = tmp_path / "summary.md"
    write_step_summary(report, path)
    text = path.read_text()
    assert (
        "| alpha | 1.1.0 | `" + DIGEST + "` | image built, bundle pushed, registered (a\\|b) |"
        in text
    )
    assert f"Commit `{'d' * 40}` on `main`." in text
    table = format_table(report).splitlines()
    assert table[0].split() == ["playbook", "version", "bundle", "what", "happened"]
    assert table[1].startswith("alpha     1.1.0    " + BUNDLE)
    empty = ReleaseReport(source_commit="c" * 40, target="main")
    assert format_table(empty) == "nothing to release"
    write_step_summary(empty, path)
    assert "Nothing to release" in path.read_text()


# Two spellings of one remote, one source-repository (README "Provenance").
SAME_REMOTE = [
    ("git@github.com:o/r.git", "https://github.com/o/r.git"),
    ("ssh://git@github.com/o/r", "https://github.com/o/r/"),
    ("git@GitHub.com:o/r.git", "https://token@github.com/o/r"),
    ("/srv/x/../git/r.git", "/srv/git/r.git"),
    ("file:///srv/git/r.git", "/srv/git/./r.git/"),
]


@pytest.mark.parametrize(("one", "other"), SAME_REMOTE)
def test_two_spellings_of_one_remote_are_one_source_repository(
    tmp_path: Path, one: str, other: str
) -> None:
    git(tmp_path, "init", "--quiet", "--initial-branch=main")
    git(tmp_path, "remote", "add", "one", one)
    git(tmp_path, "remote", "add", "other", other)
    repo, config = GitRepo(tmp_path), Config(root=tmp_path)
    assert source_repository(config, repo, "one", {}) == source_repository(
        config, repo, "other", {}
    )


def test_a_relative_remote_is_the_repository_s_own_and_a_link_is_followed(tmp_path: Path) -> None:
    (tmp_path / "remotes" / "r.git").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "remotes")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "remote", "add", "origin", "../remotes/r.git")
    git(work, "remote", "add", "linked", str(tmp_path / "link" / "r.git"))
    repo, config = GitRepo(work), Config(root=work)
    expected = f"{(tmp_path / 'remotes' / 'r').resolve().as_uri()}"
    assert source_repository(config, repo, "origin", {}) == expected
    assert source_repository(config, repo, "linked", {}) == expected
