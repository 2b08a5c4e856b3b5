"""gitrepo against real repositories and bare remotes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from playbookctl.errors import FatalError, GitError
from playbookctl.gitrepo import GitRepo, PushStatus
from playbookctl.playbook import source_hash
from tests.support.gitrepos import (
    LYING_HOOK,
    RACING_HOOK,
    PlaybookRepo,
    arm_racing_push,
    commit_all,
    git,
    install_hook,
)

pytestmark = pytest.mark.integration


def test_head_dirty_and_changed_files(playbook_repo: PlaybookRepo) -> None:
    repo = GitRepo(playbook_repo.path)
    base = repo.head()
    assert base == playbook_repo.head()
    assert not repo.is_dirty()
    (playbook_repo.path / "playbooks" / "alpha" / "remediate.sh").write_text("#!/bin/sh\n")
    (playbook_repo.path / "new.txt").write_text("x")
    assert repo.is_dirty()
    assert repo.dirty_files(["playbooks"]) == ["playbooks/alpha/remediate.sh"]
    head = playbook_repo.commit_all("change alpha")
    assert repo.changed_files(base, head) == ["new.txt", "playbooks/alpha/remediate.sh"]
    assert repo.changed_files(head, head) == []
    assert repo.show(base, "playbooks/alpha/remediate.sh") != b"#!/bin/sh\n"
    assert repo.show(head, "playbooks/alpha/remediate.sh") == b"#!/bin/sh\n"
    assert repo.show(head, "playbooks/missing.yaml") is None
    assert repo.list_dir(head, "playbooks") == ["alpha", "beta"]
    files = repo.tree_files(head, "playbooks/beta")
    assert [(f.path, f.executable) for f in files] == [
        ("playbooks/beta/Containerfile", False),
        ("playbooks/beta/rbac.yaml", False),
        ("playbooks/beta/remediate.sh", True),
        ("playbooks/beta/workflow.yaml", False),
    ]
    assert repo.last_commit_touching(["new.txt"]) == head
    assert repo.last_commit_touching(["nothing-here"]) is None


def test_changed_files_without_merge_base(playbook_repo: PlaybookRepo) -> None:
    repo = GitRepo(playbook_repo.path)
    base = repo.head()
    # An orphan branch shares no history with main: `base...head` has no merge base.
    playbook_repo.git("checkout", "--quiet", "--orphan", "other")
    shutil.rmtree(playbook_repo.path / "playbooks" / "beta")
    (playbook_repo.path / "playbooks" / "alpha" / "extra.txt").write_text("x")
    commit_all(playbook_repo.path, "orphan")
    assert repo.merge_base(base, "HEAD") is None
    changed = repo.changed_files(base, "HEAD")
    assert "playbooks/alpha/extra.txt" in changed
    assert "playbooks/beta/workflow.yaml" in changed


def test_rev_errors_are_one_line(playbook_repo: PlaybookRepo) -> None:
    repo = GitRepo(playbook_repo.path)
    with pytest.raises(GitError, match="cannot resolve 'no-such-rev'") as info:
        repo.changed_files("no-such-rev")
    assert "\n" not in str(info.value)


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not inside a git repository"):
        GitRepo(tmp_path)


def test_commit_only_given_paths_with_author(playbook_repo: PlaybookRepo) -> None:
    repo = GitRepo(playbook_repo.path)
    assert repo.commit("nothing", ["registry"], "Rel", "rel@example.invalid") is None
    (playbook_repo.path / "registry" / "workflows").mkdir()
    (playbook_repo.path / "registry" / "workflows" / "a.yaml").write_text("a: 1\n")
    (playbook_repo.path / "other.txt").write_text("not mine")
    sha = repo.commit("register a", ["registry"], "Rel", "rel@example.invalid")
    assert sha == playbook_repo.head()
    assert playbook_repo.git("log", "-1", "--format=%an <%ae> / %cn") == (
        "Rel <rel@example.invalid> / Rel"
    )
    assert playbook_repo.git("show", "--name-only", "--format=", "HEAD") == (
        "registry/workflows/a.yaml"
    )
    assert repo.dirty_files() == ["other.txt"]


def test_push_classifies_non_fast_forward(playbook_repo: PlaybookRepo, tmp_path: Path) -> None:
    other = playbook_repo.another_clone(tmp_path / "other")
    (other.path / "x.txt").write_text("x")
    other.commit_all("other moves main")
    other.push()
    (playbook_repo.path / "y.txt").write_text("y")
    mine = playbook_repo.commit_all("mine")
    repo = GitRepo(playbook_repo.path)
    outcome = repo.push("origin", "HEAD", "main")
    assert outcome.status is PushStatus.NON_FAST_FORWARD
    assert outcome.retryable
    remote_head = repo.fetch("origin", "main")
    assert remote_head == other.head()
    assert repo.rebase(remote_head)
    assert repo.push("origin", "HEAD", "main").status is PushStatus.OK
    assert playbook_repo.remote_head() == repo.head() != mine
    assert repo.fetch("origin", "no-such-branch") is None


def test_push_with_lease(playbook_repo: PlaybookRepo) -> None:
    repo = GitRepo(playbook_repo.path)
    head = repo.head()
    assert repo.push("origin", "HEAD", "release", expect=None).status is PushStatus.OK
    (playbook_repo.path / "z.txt").write_text("z")
    playbook_repo.commit_all("z")
    # The branch now exists: a lease that it does not is stale.
    assert repo.push("origin", "HEAD", "release", expect=None).status is PushStatus.STALE_LEASE
    assert repo.push("origin", "HEAD", "release", expect=head).status is PushStatus.OK
    assert playbook_repo.remote_head("release") == repo.head()


def test_push_remote_hook_rejection_is_not_retryable(playbook_repo: PlaybookRepo) -> None:
    install_hook(playbook_repo, "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    (playbook_repo.path / "y.txt").write_text("y")
    playbook_repo.commit_all("mine")
    outcome = GitRepo(playbook_repo.path).push("origin", "HEAD", "main")
    assert outcome.status is PushStatus.REJECTED
    assert not outcome.retryable


def test_push_to_missing_remote_fails_cleanly(playbook_repo: PlaybookRepo) -> None:
    repo = GitRepo(playbook_repo.path)
    with pytest.raises(GitError, match="no remote named 'nope'"):
        repo.push("nope", "HEAD", "main")
    git(playbook_repo.path, "remote", "set-url", "origin", "/nonexistent/remote.git")
    with pytest.raises(GitError, match="cannot push to origin"):
        repo.push("origin", "HEAD", "main")


def test_restore_and_checkout(playbook_repo: PlaybookRepo) -> None:
    repo = GitRepo(playbook_repo.path)
    base = repo.head()
    gen = playbook_repo.path / "registry" / "workflows"
    gen.mkdir()
    (gen / "a.yaml").write_text("a\n")
    assert repo.commit("register a", ["registry/workflows"], "R", "r@example.invalid")
    (gen / "a.yaml").write_text("half")
    (gen / ".a.yaml.x.tmp").write_text("junk")
    (playbook_repo.path / "registry" / "kustomization.yaml").write_text("new, untracked")
    repo.restore(["registry/workflows", "registry/kustomization.yaml"])
    assert not repo.is_dirty()
    assert (gen / "a.yaml").read_text() == "a\n"
    head = repo.head()
    repo.checkout(base, detach=True)
    assert repo.current_branch() is None
    repo.set_branch("side", base)
    repo.checkout("main")
    assert repo.current_branch() == "main"
    assert repo.head() == head
    assert repo.rev_parse("side") == base
    assert repo.tree_id(head) != repo.tree_id(base)


def test_push_cannot_lock_ref_is_the_remote_moving(
    playbook_repo: PlaybookRepo, tmp_path: Path
) -> None:
    theirs = arm_racing_push(playbook_repo, playbook_repo.another_clone(tmp_path / "other"))
    (playbook_repo.path / "y.txt").write_text("y")
    playbook_repo.commit_all("mine")
    repo = GitRepo(playbook_repo.path)
    outcome = repo.push("origin", "HEAD", "main")
    assert "cannot lock ref 'refs/heads/main'" in outcome.detail
    assert outcome.status is PushStatus.NON_FAST_FORWARD
    assert outcome.retryable
    assert playbook_repo.remote_head() == theirs  # the other push won
    # Fetched and rebuilt on the new head, the retry lands (the hook fired once).
    assert repo.rebase(repo.fetch("origin", "main") or "")
    assert repo.push("origin", "HEAD", "main").status is PushStatus.OK
    assert git(playbook_repo.remote, "merge-base", "--is-ancestor", theirs, "main") == ""


@pytest.mark.parametrize("lease", [False, True])
def test_push_hook_saying_cannot_lock_ref_is_a_refusal_not_a_race(
    playbook_repo: PlaybookRepo, lease: bool
) -> None:
    """A pre-receive hook prints receive-pack's own words for a lost race and refuses: the ref
    did not move, so it is a refusal (not retried), and the hook's words are shown on one line,
    control characters removed."""
    repo = GitRepo(playbook_repo.path)
    before = playbook_repo.remote_head()
    install_hook(playbook_repo, LYING_HOOK.replace("exit 1", "printf 'bell\\007\\033[2J'\nexit 1"))
    (playbook_repo.path / "y.txt").write_text("y")
    playbook_repo.commit_all("mine")
    outcome = (
        repo.push("origin", "HEAD", "main", expect=before)
        if lease
        else repo.push("origin", "HEAD", "main")
    )
    assert outcome.status is PushStatus.REJECTED
    assert not outcome.retryable
    assert outcome.detail.startswith("[remote rejected] (pre-receive hook declined)")
    assert "cannot lock ref 'refs/heads/main'" in outcome.detail
    for control in ("\n", "\x1b", "\x07"):
        assert control not in outcome.detail
    assert playbook_repo.remote_head() == before


def test_push_with_lease_losing_a_race_after_the_advertisement_is_stale(
    playbook_repo: PlaybookRepo, tmp_path: Path
) -> None:
    """The lease was right when git looked, then another push moved the branch before the
    remote updated it: `[remote rejected]`, and the ref really moved, so a stale lease."""
    repo = GitRepo(playbook_repo.path)
    assert repo.push("origin", "HEAD", "release", expect=None).status is PushStatus.OK
    lease = playbook_repo.remote_head("release")
    theirs = arm_racing_push(
        playbook_repo, playbook_repo.another_clone(tmp_path / "other"), branch="release"
    )
    (playbook_repo.path / "y.txt").write_text("y")
    playbook_repo.commit_all("mine")
    outcome = repo.push("origin", "HEAD", "release", expect=lease)
    assert outcome.detail.startswith("[remote rejected]")
    assert outcome.status is PushStatus.STALE_LEASE
    assert outcome.retryable
    assert playbook_repo.remote_head("release") == theirs


def test_push_losing_a_race_to_the_very_same_commit_is_done(playbook_repo: PlaybookRepo) -> None:
    """Two runs releasing one commit make the same release commit: when the other one's push
    lands between the advertisement and the update, the ref holds what we pushed."""
    repo = GitRepo(playbook_repo.path)
    (playbook_repo.path / "y.txt").write_text("y")
    mine = playbook_repo.commit_all("the same release commit")
    playbook_repo.git("push", "--quiet", "origin", "HEAD:refs/heads/parked")
    install_hook(playbook_repo, RACING_HOOK)
    (playbook_repo.remote / "move-once").write_text(f"refs/heads/main {mine}\n")
    outcome = repo.push("origin", "HEAD", "main")
    assert outcome.status is PushStatus.OK, outcome
    assert outcome.detail.startswith("[remote rejected]")
    assert playbook_repo.remote_head() == mine


def _state(path: Path) -> tuple[bytes, str, str]:
    """The index's bytes, HEAD and every ref: what worktree_commit must leave alone."""
    return (
        (path / ".git" / "index").read_bytes(),
        git(path, "rev-parse", "HEAD"),
        git(path, "for-each-ref"),
    )


def test_worktree_commit_holds_the_tracked_files_as_on_disk_and_touches_nothing(
    playbook_repo: PlaybookRepo, tmp_path: Path
) -> None:
    path = playbook_repo.path
    repo = GitRepo(path)
    head = repo.head()
    # Clean: HEAD itself, no new object to export.
    assert repo.worktree_commit(["playbooks/alpha", "playbooks/beta"]) == head

    alpha = path / "playbooks" / "alpha"
    (alpha / "remediate.sh").write_text("#!/bin/sh\necho edited\n")
    (alpha / "remediate.sh").chmod(0o755)
    (alpha / "staged.txt").write_text("staged\n")
    git(path, "add", "playbooks/alpha/staged.txt")
    (alpha / "untracked.txt").write_text("untracked\n")
    (path / ".git" / "info" / "exclude").write_text("*.ignored\n")
    (alpha / "secret.ignored").write_text("ignored\n")
    (path / "playbooks" / "beta" / "workflow.yaml").unlink()
    before = _state(path)
    status = git(path, "status", "--porcelain", "--untracked-files=all", "--ignored")

    snap = repo.worktree_commit(["playbooks/alpha", "playbooks/beta"])
    assert snap != head
    assert repo.commit_parents(snap) == [head]
    assert _state(path) == before
    assert git(path, "status", "--porcelain", "--untracked-files=all", "--ignored") == status
    assert not (path / ".git" / "index.lock").exists()

    out = tmp_path / "ctx"
    written = repo.export_tree(snap, "playbooks/alpha", out)
    assert (out / "remediate.sh").read_text() == "#!/bin/sh\necho edited\n"
    assert (out / "remediate.sh").stat().st_mode & 0o777 == 0o755
    assert (out / "staged.txt").read_text() == "staged\n"
    assert not (out / "untracked.txt").exists()
    assert not (out / "secret.ignored").exists()
    assert written == len([p for p in out.rglob("*") if p.is_file()])
    assert repo.show(snap, "playbooks/beta/workflow.yaml") is None  # deleted on disk
    # Only the paths asked for: another playbook's edit stays as the index has it.
    assert repo.worktree_commit(["playbooks/beta"]) != snap
    assert repo.show(repo.worktree_commit(["playbooks/beta"]), "playbooks/alpha/remediate.sh") == (
        repo.show(head, "playbooks/alpha/remediate.sh")
    )
    untracked, ignored = repo.untracked_files(["playbooks/alpha", "playbooks/beta"])
    assert (untracked, ignored) == (
        ["playbooks/alpha/untracked.txt"],
        ["playbooks/alpha/secret.ignored"],
    )


def test_worktree_commit_of_a_brand_new_playbook_and_before_the_first_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fresh"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "playbooks" / "x").mkdir(parents=True)
    (path / "playbooks" / "x" / "a.txt").write_text("a\n")
    repo = GitRepo(path)
    # Nothing tracked yet: a commit without the playbook (and without a parent).
    empty = repo.worktree_commit(["playbooks/x", "playbooks/gone"])
    assert repo.commit_parents(empty) == []
    assert repo.list_dir(empty, "playbooks") == []
    git(path, "add", "playbooks/x/a.txt")
    staged = repo.worktree_commit(["playbooks/x"])
    assert repo.show(staged, "playbooks/x/a.txt") == b"a\n"
    assert git(path, "branch", "--list") == ""  # still no branch, no commit on it


def test_a_submodule_is_refused_by_every_reader_of_a_commit_never_dropped(
    playbook_repo: PlaybookRepo, tmp_path: Path
) -> None:
    """A gitlink (mode 160000, a `commit` entry) in a playbook: tree_files and export_tree
    refuse it naming it (they dropped it silently: an image and a source hash without its
    files), list_dir names it (it raised AttributeError), gitlinks finds it, and the working
    tree's source hash refuses it too, checked out or not."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "helper.sh").write_text("#!/bin/sh\n")
    git(lib, "init", "-q", "-b", "main")
    commit_all(lib, "lib")
    path = playbook_repo.path
    for where in ("playbooks/alpha/vendor/lib", "playbooks/gamma"):
        git(path, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), where)
    head = playbook_repo.commit_all("submodules")
    repo = GitRepo(path)
    assert git(path, "ls-tree", head, "playbooks/gamma").startswith("160000 commit ")
    assert repo.list_dir(head, "playbooks") == ["alpha", "beta", "gamma"]
    assert repo.list_dir(head, "playbooks/alpha/vendor") == ["lib"]
    assert repo.gitlinks(head, "playbooks/alpha") == ["playbooks/alpha/vendor/lib"]
    assert repo.gitlinks(head, "playbooks/gamma") == ["playbooks/gamma"]
    assert repo.gitlinks(head, "playbooks/beta") == []
    for where, inside in (
        ("playbooks/alpha", "playbooks/alpha/vendor/lib"),
        ("playbooks/gamma", "playbooks/gamma"),
    ):
        with pytest.raises(
            GitError, match=f"^{inside}: a git submodule .*git rm --cached {inside}"
        ):
            repo.tree_files(head, where)
        with pytest.raises(GitError, match=f"^{inside}: a git submodule "):
            repo.export_tree(head, where, tmp_path / "ctx" / where)
    assert [f.path for f in repo.tree_files(head, "playbooks/beta")]  # the others still read
    for checked_out in (True, False):
        if not checked_out:
            git(path, "submodule", "deinit", "-q", "--force", "--all")
        with pytest.raises(FatalError, match=r"^playbooks/alpha/vendor/lib: a git submodule "):
            source_hash(path / "playbooks" / "alpha")
        assert source_hash(path / "playbooks" / "beta").startswith("sha256:")
