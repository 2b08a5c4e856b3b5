"""plan against real git repositories: changed, bumped, refused, deleted, no merge base, matrix."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl.config import load_config
from playbookctl.errors import FatalError
from playbookctl.gitrepo import GitRepo
from playbookctl.plan import Status, hash_tree_files, make_plan
from playbookctl.playbook import source_hash
from playbookctl.register import register
from playbookctl.results import Action, Artifact, PublishResult
from playbookctl_dev.sample_repo import write_action_type
from tests.support.gitrepos import PlaybookRepo, commit_all, git

pytestmark = pytest.mark.integration


def register_all(repo: PlaybookRepo) -> str:
    """Register every playbook as if it had been published, commit, and return the commit."""
    config = load_config(repo.path)
    results = []
    for d in sorted(config.playbooks_dir.iterdir()):
        text = (d / "workflow.yaml").read_text()
        v = text.split('version: "', 1)[1].split('"', 1)[0]
        digest = "sha256:" + format(abs(hash((d.name, v))) % 16**64, "064x")
        results.append(
            PublishResult(
                name=d.name,
                version=v,
                source_hash=source_hash(d),
                image=Artifact(config.image_ref(d.name), v, digest, Action.BUILT),
                bundle=Artifact(config.bundle_ref(d.name), v, digest, Action.PUSHED),
                status=Action.PUSHED,
                commit=repo.head(),
            )
        )
    register(config, results)
    return commit_all(repo.path, "register")


def statuses(repo: PlaybookRepo, **kw: str | None) -> dict[str, Status]:
    plan = make_plan(load_config(repo.path), GitRepo(repo.path), **kw)
    return {e.name: e.status for e in plan.entries}


def test_fresh_repository_publishes_everything(playbook_repo: PlaybookRepo) -> None:
    assert statuses(playbook_repo) == {"alpha": Status.PUBLISH, "beta": Status.PUBLISH}
    register_all(playbook_repo)
    assert statuses(playbook_repo) == {"alpha": Status.UP_TO_DATE, "beta": Status.UP_TO_DATE}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # (what changes in alpha, alpha's status); beta never changes
        ("bump", Status.PUBLISH),
        ("content-only", Status.REFUSED),
        ("delete", Status.DELETED),
        ("unrelated-file", None),
    ],
)
def test_changes_since_base(
    playbook_repo: PlaybookRepo, edit: str, expected: Status | None
) -> None:
    base = register_all(playbook_repo)
    if edit == "bump":
        playbook_repo.write_playbook("alpha", "1.1.0", marker="v2")
    elif edit == "content-only":
        playbook_repo.write_playbook("alpha", "1.0.0", marker="v2")
    elif edit == "delete":
        shutil.rmtree(playbook_repo.path / "playbooks" / "alpha")
    else:
        (playbook_repo.path / "README.md").write_text("docs\n")
    playbook_repo.commit_all(edit)
    got = statuses(playbook_repo, base=base)
    assert got == ({} if expected is None else {"alpha": expected})
    # Without a base every playbook is compared with its registration: same verdicts, plus beta.
    full = statuses(playbook_repo)
    assert full.get("alpha") == (expected or Status.UP_TO_DATE)
    assert full["beta"] is Status.UP_TO_DATE


def test_refused_entry_explains_and_cli_exits_1(
    playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    base = register_all(playbook_repo)
    playbook_repo.write_playbook("beta", "2.0.0", marker="changed")
    playbook_repo.commit_all("change beta without a bump")
    code = main(["-C", str(playbook_repo.path), "plan", "--base", base, "--format", "json"])
    out = capsys.readouterr()
    assert code == 1
    data = json.loads(out.out)
    assert data["refused"] == ["beta"]
    assert data["publish"] == []
    (entry,) = data["playbooks"]
    assert entry["status"] == "refused"
    assert entry["version"] == entry["registered_version"] == "2.0.0"
    assert entry["source_hash"] != entry["registered_hash"]
    assert "bump spec.version: playbookctl bump beta patch" in out.err


def test_head_revision_reads_git_objects(playbook_repo: PlaybookRepo) -> None:
    base = register_all(playbook_repo)
    playbook_repo.write_playbook("alpha", "1.1.0", marker="v2")
    head = playbook_repo.commit_all("bump alpha")
    # Move the working tree elsewhere: planning --head must not look at it.
    playbook_repo.git("checkout", "--quiet", base)
    plan = make_plan(
        load_config(playbook_repo.path), GitRepo(playbook_repo.path), base=base, head=head
    )
    assert [(e.name, e.status, e.version) for e in plan.entries] == [
        ("alpha", Status.PUBLISH, "1.1.0")
    ]
    # The hash from git objects is the hash of the same files on disk.
    playbook_repo.git("checkout", "--quiet", head)
    d = playbook_repo.path / "playbooks" / "alpha"
    files = GitRepo(playbook_repo.path).tree_files(head, "playbooks/alpha")
    assert hash_tree_files(files, "playbooks/alpha") == source_hash(d)
    assert plan.entries[0].source_hash == source_hash(d)


def test_no_merge_base_falls_back_to_two_dot_diff(playbook_repo: PlaybookRepo) -> None:
    base = register_all(playbook_repo)
    playbook_repo.git("checkout", "--quiet", "--orphan", "rewritten")
    playbook_repo.write_playbook("beta", "2.1.0", marker="v2")
    commit_all(playbook_repo.path, "unrelated history")
    assert GitRepo(playbook_repo.path).merge_base(base, "HEAD") is None
    assert statuses(playbook_repo, base=base) == {"beta": Status.PUBLISH}


def test_matrix_and_github_output(
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out_file = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out_file))
    root = str(playbook_repo.path)
    assert main(["-C", root, "plan", "--format", "matrix"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert matrix == {
        "include": [
            {"name": "alpha", "version": "1.0.0", "playbooks": "alpha"},
            {"name": "beta", "version": "2.0.0", "playbooks": "beta"},
        ]
    }
    register_all(playbook_repo)
    out_file.write_text("")
    assert main(["-C", root, "plan", "--format", "matrix"]) == 0
    # Nothing to do: an empty include list, and has-work=false for the job guard.
    assert json.loads(capsys.readouterr().out) == {"include": []}
    lines = out_file.read_text().splitlines()
    assert lines == ['matrix={"include":[]}', "has-work=false", "has-changes=false"]
    shutil.rmtree(playbook_repo.path / "playbooks" / "beta")
    playbook_repo.commit_all("delete beta")
    out_file.write_text("")
    assert main(["-C", root, "plan", "--format", "matrix"]) == 0
    capsys.readouterr()
    assert out_file.read_text().splitlines()[1:] == ["has-work=false", "has-changes=true"]


def test_human_output(playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str]) -> None:
    base = register_all(playbook_repo)
    playbook_repo.write_playbook("alpha", "1.1.0", marker="v2")
    playbook_repo.commit_all("bump")
    assert main(["-C", str(playbook_repo.path), "plan", "--base", base]) == 0
    out = capsys.readouterr().out
    assert "publish    alpha 1.1.0: version 1.0.0 -> 1.1.0" in out
    assert out.rstrip().endswith("1 publish")


def test_bad_base_is_one_line_error(
    playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(playbook_repo.path), "plan", "--base", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("playbookctl: error: cannot resolve 'nope'")
    assert err.count("\n") == 1


def _edit_priority(repo: PlaybookRepo) -> None:
    path = repo.path / "registry" / "workflows" / "alpha.yaml"
    path.write_text(path.read_text().replace("priority: P1", "priority: P0"))


def _repoint_alpha(repo: PlaybookRepo) -> None:
    """Another digest under the same version: equal to the regeneration (the pins come from the
    file), but a registered version never changes."""
    path = repo.path / "registry" / "workflows" / "alpha.yaml"
    text = path.read_text()
    digest = text.split("bundles/alpha:1.0.0@", 1)[1].split("\n", 1)[0]
    path.write_text(text.replace(digest, "sha256:" + "f" * 64))


def _repoint_alpha_image(repo: PlaybookRepo) -> None:
    """Only the image digest moves (the bundle stays): a registered version's image never
    changes either."""
    path = repo.path / "registry" / "workflows" / "alpha.yaml"
    lines = path.read_text().splitlines(keepends=True)
    (i,) = [i for i, line in enumerate(lines) if "images/alpha:1.0.0@sha256:" in line]
    lines[i] = lines[i].split("@sha256:", 1)[0] + "@sha256:" + "d" * 64 + "\n"
    path.write_text("".join(lines))


def _register_a_new_playbook(repo: PlaybookRepo) -> None:
    """What register writes for a playbook published anywhere: only a release may write it."""
    repo.write_playbook("gamma", "1.0.0")
    config = load_config(repo.path)
    digest = "sha256:" + "e" * 64
    result = PublishResult(
        name="gamma",
        version="1.0.0",
        source_hash=source_hash(config.playbooks_dir / "gamma"),
        image=Artifact(config.image_ref("gamma"), "1.0.0", digest, Action.BUILT),
        bundle=Artifact(config.bundle_ref("gamma"), "1.0.0", digest, Action.PUSHED),
        status=Action.PUSHED,
        commit=repo.head(),
    )
    assert [c.action.value for c in register(config, [result]).changes] == ["registered"]


def _bump_and_register(repo: PlaybookRepo) -> None:
    """A new version registered by the pull request itself (from a publish of its own)."""
    repo.write_playbook("alpha", "1.1.0", marker="v2")
    config = load_config(repo.path)
    digest = "sha256:" + "c" * 64
    result = PublishResult(
        name="alpha",
        version="1.1.0",
        source_hash=source_hash(config.playbooks_dir / "alpha"),
        image=Artifact(config.image_ref("alpha"), "1.1.0", digest, Action.BUILT),
        bundle=Artifact(config.bundle_ref("alpha"), "1.1.0", digest, Action.PUSHED),
        status=Action.PUSHED,
        commit=repo.head(),
    )
    assert [c.action.value for c in register(config, [result]).changes] == ["registered"]


def _rewrite_source_commit(repo: PlaybookRepo) -> None:
    path = repo.path / "registry" / "workflows" / "alpha.yaml"
    text = path.read_text()
    commit = text.split("source-commit: ", 1)[1].split("\n", 1)[0]
    path.write_text(text.replace(commit, "deadbeef" * 5))


def _regenerate_after_deleting_beta(repo: PlaybookRepo) -> None:
    shutil.rmtree(repo.path / "playbooks" / "beta")
    register(load_config(repo.path), [])  # what a release writes: beta's registration goes


def _delete_registration_only(repo: PlaybookRepo) -> None:
    (repo.path / "registry" / "workflows" / "alpha.yaml").unlink()


def _add_action_type_and_regenerate(repo: PlaybookRepo) -> None:
    write_action_type(repo.path, "DrainNode")
    register(load_config(repo.path), [])


def _add_action_type_hand_listed_twice(repo: PlaybookRepo) -> None:
    path = repo.path / "registry" / "kustomization.yaml"
    path.write_text(path.read_text() + "- workflows/alpha.yaml\n")


@pytest.mark.parametrize(
    ("edit", "trailer", "expected"),
    [
        (_edit_priority, False, "registry/workflows/alpha.yaml: generated by playbookctl"),
        # A release commit's trailer proves nothing: the content is what counts.
        (_edit_priority, True, "spec.labels.priority is 'P0', the playbook says 'P1'"),
        (_repoint_alpha, True, "re-points the registered version 1.0.0 to another bundle"),
        (_repoint_alpha_image, True, "re-points the registered version 1.0.0 to another image"),
        (_register_a_new_playbook, True, "registers gamma 1.0.0, which is not registered at"),
        (_bump_and_register, True, "registers version 1.1.0, but 1.0.0 is the one registered"),
        (_rewrite_source_commit, True, "to another source commit (deadbeefdeadbeef"),
        (_regenerate_after_deleting_beta, False, ""),
        (_delete_registration_only, True, "removed, but playbooks/alpha/ is still there"),
        (_add_action_type_and_regenerate, False, ""),
        (_add_action_type_hand_listed_twice, True, "registry/kustomization.yaml: generated"),
    ],
    ids=[
        "hand-edit",
        "hand-edit-with-trailer",
        "re-pointed-digest",
        "re-pointed-image-only",
        "new-registration",
        "new-version-registered",
        "source-commit-rewritten",
        "regenerated-deletion",
        "registration-deleted",
        "regenerated-kustomization",
        "kustomization-hand-edit",
    ],
)
def test_forbid_generated_changes_accepts_only_the_regeneration(
    playbook_repo: PlaybookRepo,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[PlaybookRepo], None],
    trailer: bool,
    expected: str,
) -> None:
    base = register_all(playbook_repo)
    edit(playbook_repo)
    playbook_repo.git("add", "--all")
    message = "a change" + ("\n\nReleased-by: playbookctl" if trailer else "")
    playbook_repo.git("commit", "--quiet", "-m", message)
    code = main(
        ["-C", str(playbook_repo.path), "plan", "--base", base, "--forbid-generated-changes"]
    )
    err = capsys.readouterr().err
    assert code == (1 if expected else 0), err
    if expected:
        assert expected in err
    else:
        assert "generated by" not in err


def test_forbid_generated_changes_needs_base(
    playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(playbook_repo.path), "plan", "--forbid-generated-changes"]) == 2
    assert "needs --base" in capsys.readouterr().err


@pytest.mark.parametrize("base", ["0" * 40, "", " "], ids=["all-zero", "empty", "blank"])
def test_null_base_of_a_first_push_means_everything(playbook_repo: PlaybookRepo, base: str) -> None:
    """GitHub sends 40 zeros as `before` when a branch is first pushed; a run by hand has no
    `before` and an empty `base` input, so the release workflow passes `--base ""`."""
    assert statuses(playbook_repo, base=base) == {
        "alpha": Status.PUBLISH,
        "beta": Status.PUBLISH,
    }


def test_forbid_generated_changes_needs_a_non_empty_base(
    playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["-C", str(playbook_repo.path), "plan", "--base", "", "--forbid-generated-changes"]
    assert main(args) == 2
    assert "needs --base" in capsys.readouterr().err


# -- convergence: registry/ is brought in line with the tree, whatever happened before --------


@pytest.mark.parametrize("base", [True, False], ids=["with-base", "without-base"])
def test_unregistered_playbook_outside_the_change_is_published(
    playbook_repo: PlaybookRepo, base: bool
) -> None:
    """A release that was cancelled or failed left beta unregistered; the next release, for a
    change to alpha only, publishes beta too."""
    start = register_all(playbook_repo)
    (playbook_repo.path / "registry" / "workflows" / "beta.yaml").unlink()
    register(load_config(playbook_repo.path), [])
    playbook_repo.commit_all("beta's registration lost")
    playbook_repo.write_playbook("alpha", "1.1.0", marker="v2")
    playbook_repo.commit_all("bump alpha")
    plan = make_plan(
        load_config(playbook_repo.path), GitRepo(playbook_repo.path), base=start if base else None
    )
    got = {e.name: (e.status, e.reason) for e in plan.entries}
    assert got["beta"] == (Status.PUBLISH, "not registered")
    assert got["alpha"][0] is Status.PUBLISH
    assert plan.has_work


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("priority: P1", "priority: P0", "spec.labels.priority is 'P0', the playbook says 'P1'"),
        ("serviceAccountName: alpha-runner", "serviceAccountName: other",
         "spec.execution.serviceAccountName is 'other'"),
        ("- patch\n", "- patch\n  - delete\n", "rules[0].verbs"),
    ],
    ids=["priority", "service-account", "rbac-verbs"],
)  # fmt: skip
def test_hand_edited_registration_is_re_registered(
    playbook_repo: PlaybookRepo, old: str, new: str, field: str
) -> None:
    register_all(playbook_repo)
    path = playbook_repo.path / "registry" / "workflows" / "alpha.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    head = playbook_repo.commit_all("edit by hand")
    plan = make_plan(load_config(playbook_repo.path), GitRepo(playbook_repo.path), base=f"{head}^")
    (entry,) = plan.entries
    assert (entry.name, entry.status) == ("alpha", Status.PUBLISH)
    assert "registration differs from what register writes now" in entry.reason
    assert field in entry.reason
    # The same verdict from git objects (--head) as from the working tree.
    playbook_repo.git("checkout", "--quiet", f"{head}^")
    again = make_plan(
        load_config(playbook_repo.path), GitRepo(playbook_repo.path), base=f"{head}^", head=head
    )
    assert [(e.name, e.status, e.reason) for e in again.entries] == [
        ("alpha", Status.PUBLISH, entry.reason)
    ]


@pytest.mark.parametrize("change", ["add", "edit", "delete"])
def test_action_type_change_alone_is_a_change(
    playbook_repo: PlaybookRepo, tmp_path: Path, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = register_all(playbook_repo)
    action_types = playbook_repo.path / "registry" / "action-types"
    if change == "add":
        write_action_type(playbook_repo.path, "DrainNode")
    elif change == "edit":
        path = action_types / "restart-deployment.yaml"
        path.write_text(path.read_text().replace("description:", "description: Edited.\n  x:", 1))
    else:
        write_action_type(playbook_repo.path, "Unused")
        register(load_config(playbook_repo.path), [])
        base = playbook_repo.commit_all("an unused ActionType")
        (action_types / "unused.yaml").unlink()
    playbook_repo.commit_all(f"{change} an ActionType")
    out = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    plan = make_plan(load_config(playbook_repo.path), GitRepo(playbook_repo.path), base=base)
    assert plan.entries == []
    assert plan.action_types, "plan counts the ActionType change"
    if change == "edit":
        assert not plan.kustomization  # Argo CD syncs the edited file as it is
        return
    assert plan.has_changes
    assert not plan.has_work
    slug = "drain-node" if change == "add" else "unused"
    verb = "adds" if change == "add" else "removes"
    assert plan.kustomization == (
        f"registry/kustomization.yaml: register {verb} action-types/{slug}.yaml"
    )
    assert main(["-C", str(playbook_repo.path), "plan", "--base", base, "--format", "matrix"]) == 0
    assert out.read_text().splitlines()[1:] == ["has-work=false", "has-changes=true"]
    # register (what the release runs) regenerates it; nothing is left naming a missing file.
    outcome = register(load_config(playbook_repo.path), [])
    assert outcome.written == ["registry/kustomization.yaml"]
    listed = (playbook_repo.path / "registry" / "kustomization.yaml").read_text()
    assert (f"action-types/{slug}.yaml" in listed) is (change == "add")
    for line in listed.splitlines():
        if line.startswith("- "):
            assert (playbook_repo.path / "registry" / line[2:]).is_file()
    playbook_repo.commit_all("register")
    assert not make_plan(load_config(playbook_repo.path), GitRepo(playbook_repo.path)).has_changes


def test_shallow_clone_without_merge_base_says_fetch_more_history(
    playbook_repo: PlaybookRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_all(playbook_repo)
    playbook_repo.push()
    base = playbook_repo.head()
    playbook_repo.write_playbook("alpha", "1.1.0", marker="v2")
    playbook_repo.commit_all("bump alpha")
    playbook_repo.write_playbook("beta", "2.1.0", marker="v2")
    playbook_repo.commit_all("bump beta")
    playbook_repo.push()
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "--quiet", "--depth", "1", playbook_repo.remote.as_uri(), str(shallow))
    git(shallow, "fetch", "--quiet", "--depth", "1", "origin", base)  # the base, not its history
    code = main(["-C", str(shallow), "plan", "--base", base, "--forbid-generated-changes"])
    err = capsys.readouterr().err
    assert code == 1
    assert "fetch more history" in err
    assert "generated by" not in err  # no hand edits invented
    assert err.count("\n") == 1
    # With the history, the same plan works.
    git(shallow, "fetch", "--quiet", "--unshallow", "origin")
    assert main(["-C", str(shallow), "plan", "--base", base, "--forbid-generated-changes"]) == 0


def test_the_hash_from_git_follows_links_and_streams_large_files(
    playbook_repo: PlaybookRepo,
) -> None:
    """plan hashes a playbook from git objects, publish from the checkout: they must agree on a
    symbolic link inside the playbook (a checkout reads its target) and on a large file, which
    is hashed as a stream (never held whole in memory)."""
    import os
    import tracemalloc

    d = playbook_repo.path / "playbooks" / "alpha"
    os.symlink("remediate.sh", d / "helper.sh")
    with (d / "data.bin").open("wb") as fh:
        for i in range(48):
            fh.write(bytes([i]) * (1 << 20))  # 48 MiB, not compressible to nothing
    head = playbook_repo.commit_all("a link and a large file")
    repo = GitRepo(playbook_repo.path)
    tracemalloc.start()
    try:
        files = repo.tree_files(head, "playbooks/alpha")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"tree_files held {peak} bytes"
    by_path = {f.path: (f.executable, f.sha256) for f in files}
    assert by_path["playbooks/alpha/helper.sh"] == by_path["playbooks/alpha/remediate.sh"]
    assert hash_tree_files(files, "playbooks/alpha") == source_hash(d)


# A file name that is not UTF-8: the bytes a contributor's file system can hold.
BAD_NAME = os.fsdecode(b"data-\xff\xfe.txt")


@pytest.mark.parametrize("from_git", [False, True])
def test_a_file_name_that_is_not_utf8_is_hashed_by_its_bytes_not_a_crash(
    playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str], from_git: bool
) -> None:
    """plan used to end with `internal error: UnicodeEncodeError` (exit 3) for every playbook;
    lint refuses the name (playbook.file-name), plan hashes its bytes, from disk or from git."""
    d = playbook_repo.path / "playbooks" / "alpha"
    (d / BAD_NAME).write_bytes(b"x\n")
    head = playbook_repo.commit_all("a file whose name is not UTF-8")
    args = ["-C", str(playbook_repo.path), "plan", "--format", "json"]
    if from_git:
        # Another revision than the checkout's: plan reads git's objects.
        playbook_repo.git("checkout", "--quiet", "--detach", "HEAD~1")
        args += ["--head", head]
    code = main(args)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "internal error" not in out.err
    entries = {e["name"]: e for e in json.loads(out.out)["playbooks"]}
    if from_git:
        playbook_repo.git("checkout", "--quiet", head)
    # The same bytes give the same hash from git's objects and from the working tree.
    files = GitRepo(playbook_repo.path).tree_files(head, "playbooks/alpha")
    assert hash_tree_files(files, "playbooks/alpha") == source_hash(d)
    assert entries["alpha"]["source_hash"] == source_hash(d)
    # ... and a different name is a different hash (the bytes are in it, not replaced).
    (d / BAD_NAME).rename(d / os.fsdecode(b"data-\xff\xfd.txt"))
    assert source_hash(d) != entries["alpha"]["source_hash"]


@pytest.mark.parametrize(
    ("path", "from_git", "megabytes"),
    [
        ("playbooks/alpha/workflow.yaml", False, 50),
        ("playbooks/alpha/workflow.yaml", True, 50),
        ("registry/workflows/alpha.yaml", False, 2),
        ("registry/workflows/alpha.yaml", True, 2),
        ("registry/kustomization.yaml", True, 2),
    ],
)
def test_every_file_plan_reads_is_bounded_by_max_file_bytes(
    playbook_repo: PlaybookRepo,
    capsys: pytest.CaptureFixture[str],
    path: str,
    from_git: bool,
    megabytes: int,
) -> None:
    """A hostile size (a 50 MB workflow.yaml took 173 s and 5.5 GB): one line, exit 1, and
    nothing read past the bound (a file is refused by its size, a git blob by its header)."""
    register_all(playbook_repo)
    target = playbook_repo.path / path
    with target.open("ab") as fh:
        fh.write(b"# " + b"x" * (megabytes * 1024 * 1024) + b"\n")
    head = playbook_repo.commit_all("a hostile size")
    args = ["-C", str(playbook_repo.path), "plan"]
    if from_git:
        playbook_repo.git("checkout", "--quiet", "--detach", "HEAD~1")
        args += ["--head", head]
    code = main(args)
    out = capsys.readouterr()
    assert code == 1
    assert out.out == ""
    assert out.err.splitlines() == [
        f"playbookctl: error: {path}: larger than max-file-bytes (1048576 bytes); plan reads no "
        "file past lint's bound (lint reports it as load.too-large)"
    ]


def test_a_file_exactly_at_max_file_bytes_is_read(playbook_repo: PlaybookRepo) -> None:
    (playbook_repo.path / "pyproject.toml").write_text(
        '[tool.playbookctl]\nregistry = "ghcr.io"\nmax-file-bytes = 4096\n'
    )
    workflow = playbook_repo.path / "playbooks" / "alpha" / "workflow.yaml"
    text = workflow.read_bytes()
    workflow.write_bytes(text + b"#" * (4096 - len(text) - 1) + b"\n")
    assert len(workflow.read_bytes()) == 4096
    assert statuses(playbook_repo)["alpha"] == Status.PUBLISH
    workflow.write_bytes(workflow.read_bytes() + b"\n")
    with pytest.raises(FatalError, match=r"workflow\.yaml: larger than max-file-bytes"):
        statuses(playbook_repo)
