"""Every build context comes from git's objects: a release from its commit, a dry run and `try`
from a commit of the working tree's tracked files (GitRepo.worktree_commit), through the same
export (GitRepo.export_tree). So a dry run assembles the bytes the release pushes; a tracked
edit is in a dry run's and a try's image, an untracked or ignored file never is.

Real components: a loopback registry and git checkouts; the images are assembled (RUN-less
playbooks), so no engine is needed.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import tarfile
from pathlib import Path

import pytest

from playbookctl import platforms
from playbookctl.cli import main
from playbookctl.config import Config
from playbookctl.gitrepo import GitRepo
from playbookctl.oci import ManifestNotFoundError, RegistryClient
from playbookctl.plan import hash_tree_files
from playbookctl.playbook import source_hash
from playbookctl.publish import publish
from playbookctl.results import Action, PublishResult, dump_results
from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import commit_new, git
from tests.support.lintrepo import CONTAINERFILE, edit, good_playbook, make_repo
from tests.support.registry import logged_in

pytestmark = pytest.mark.integration
PROD_FROM = CONTAINERFILE.splitlines()[0].split()[1]
NO_ENGINE = "unix:///nonexistent/docker.sock"
NAME = "restart-authored"
_ids = itertools.count()


@pytest.fixture(scope="module")
def base_image(session_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The busybox stand-in written straight into the registry: no engine needed."""
    ref = f"{session_registry.host}/test-base/context:1"
    with logged_in(session_registry, tmp_path_factory.mktemp("docker-config")):
        push_base_image(session_registry.host, ref)
    return ref


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A committed repository whose playbook copies its whole directory into the image
    (`COPY . /ctx/`), so whatever the context holds shows in the image."""
    repo = make_repo(tmp_path / "repo", {NAME: good_playbook(NAME, pipeline=True)})
    d = repo / "playbooks" / NAME
    (d / ".dockerignore").unlink(missing_ok=True)
    cf = d / "Containerfile"
    cf.write_text(edit(cf.read_text(), "USER 65532", "COPY . /ctx/\nUSER 65532"))
    commit_new(repo, "playbooks")
    return repo


def _cli_in(
    where: Path, registry: LocalRegistry, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> Config:
    """The CLI run in `where` against the session registry, the base stood in, no engine."""
    config = _config(where, registry, base_image)
    monkeypatch.chdir(where)
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", config.registry)
    monkeypatch.setenv("PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", json.dumps({PROD_FROM: base_image}))
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    return config


def _config(root: Path, registry: LocalRegistry, base: str) -> Config:
    n = next(_ids)
    return Config(
        root=root,
        registry=registry.host,
        image_repo=f"ctx{n}/images",
        bundle_repo=f"ctx{n}/bundles",
        base_image_overrides={PROD_FROM: base},
        push_retries=1,
    )


def _publish(config: Config, *, dry_run: bool = False, try_: bool = False) -> PublishResult:
    head = git(config.root, "rev-parse", "HEAD")
    (result,) = publish(
        config,
        [NAME],
        jobs=1,
        dry_run=dry_run,
        commit=f"{head}-dirty" if try_ else head,
        source_repository="https://example.invalid/playbooks",
        docker_host=NO_ENGINE,
        allow_dirty=try_,
        dev_versions=try_,
    )
    # Whatever the names, the JSON result (what register reads) is written, never a crash.
    json.loads(dump_results([result]))
    return result


def _dry_digests(result: PublishResult) -> dict[str, str]:
    """platform -> digest from a dry run's 'assembled, not pushed: ...' message."""
    (line,) = [m for m in result.messages if m.startswith("assembled, not pushed: ")]
    pairs = line.removeprefix("assembled, not pushed: ").split(", ")
    found: dict[str, str] = {}
    for pair in pairs:
        platform, digest = pair.split(" ", 1)
        found[platform] = digest
    return found


def _pushed(config: Config, version: str) -> dict[str, str]:
    with RegistryClient(config) as client:
        return dict(platforms.index_entries(client, f"{config.image_ref(NAME)}:{version}"))


def _top_layer(config: Config, version: str) -> dict[str, bytes]:
    """The files of the top layer of every pushed child (the `COPY . /ctx/`), by name."""
    repo = config.image_ref(NAME)
    found: dict[str, bytes] = {}
    with RegistryClient(config) as client:
        for child in _pushed(config, version).values():
            data, _, _ = client.get_manifest(f"{repo}@{child}")
            top = json.loads(data)["layers"][-1]["digest"]
            blob = client.get_blob(repo.split("/", 1)[1], top)
            with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
                for member in tar:
                    fh = tar.extractfile(member)
                    found[member.name.rstrip("/")] = fh.read() if fh else b""
    return found


def _git_state(repo: Path) -> tuple[bytes, str, str, str]:
    """The index's bytes, HEAD, every ref and the status: what a context must never touch."""
    return (
        (repo / ".git" / "index").read_bytes(),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "for-each-ref"),
        git(repo, "status", "--porcelain", "--untracked-files=all", "--ignored"),
    )


def test_a_dry_run_assembles_the_digests_the_release_pushes(
    checkout: Path, registry: LocalRegistry, base_image: str
) -> None:
    config = _config(checkout, registry, base_image)
    dry = _publish(config, dry_run=True)
    assert dry.status is Action.DRY_RUN, (dry.error, dry.messages)
    planned = _dry_digests(dry)
    assert sorted(planned) == ["linux/amd64", "linux/arm64"]

    released = _publish(config)
    assert released.status is Action.PUSHED, (released.error, released.messages)
    assert _pushed(config, released.version) == planned
    assert dry.source_hash == released.source_hash


def test_a_dry_run_takes_tracked_edits_and_leaves_ignored_and_untracked_files_out(
    checkout: Path, registry: LocalRegistry, base_image: str
) -> None:
    config = _config(checkout, registry, base_image)
    clean = _dry_digests(_publish(config, dry_run=True))
    d = checkout / "playbooks" / NAME

    # A file git ignores: left out (the same digests as the clean tree), and said so.
    (checkout / ".git" / "info" / "exclude").write_text("secret.env\n")
    (d / "secret.env").write_text("TOKEN=hunter2\n")
    before = _git_state(checkout)
    ignored = _publish(config, dry_run=True)
    assert ignored.status is Action.DRY_RUN, (ignored.error, ignored.messages)
    assert _dry_digests(ignored) == clean
    assert any("git ignores secret.env" in m for m in ignored.messages), ignored.messages
    assert _git_state(checkout) == before  # no index write, no ref, no commit on a branch

    # An edit to a tracked file, not committed: in the context (other digests), and back to
    # the clean digests once undone.
    script = d / "remediate.sh"
    committed = script.read_text()
    script.write_text(committed + "# a local edit\n")
    edited = _publish(config, dry_run=True)
    assert edited.status is Action.DRY_RUN, (edited.error, edited.messages)
    assert set(_dry_digests(edited).values()).isdisjoint(clean.values())
    script.write_text(committed)
    assert _dry_digests(_publish(config, dry_run=True)) == clean

    # An untracked file: lint refuses it with the reason, and nothing is assembled.
    (d / "helper.sh").write_text("#!/bin/sh\n")
    untracked = _publish(config, dry_run=True)
    assert untracked.status is Action.SKIPPED
    shown = "\n".join(untracked.messages)
    assert f"playbooks/{NAME}/helper.sh:1:1: playbook.untracked: git does not hold" in shown
    assert "not in the image: untracked file(s) helper.sh" in shown


def test_try_publishes_the_tracked_edit_never_an_ignored_file(
    checkout: Path, registry: LocalRegistry, base_image: str
) -> None:
    config = _config(checkout, registry, base_image)
    d = checkout / "playbooks" / NAME
    (checkout / ".gitignore").write_text("*.env\n")
    git(checkout, "add", ".gitignore")
    git(checkout, "commit", "-q", "-m", "ignore env files")
    (d / "local.env").write_text("TOKEN=hunter2\n")
    script = d / "remediate.sh"
    script.write_text(script.read_text() + "# tried, not committed\n")
    (d / "remediate.sh").chmod(0o755)
    before = _git_state(checkout)

    tried = _publish(config, try_=True)
    assert tried.status is Action.PUSHED, (tried.error, tried.messages)
    layer = _top_layer(config, tried.version)
    assert layer["ctx/remediate.sh"].endswith(b"# tried, not committed\n")
    assert "ctx/local.env" not in layer
    assert "ctx/Containerfile" in layer
    assert _git_state(checkout) == before

    # The same edit staged (the index changes, the content does not): the same try, reused.
    git(checkout, "add", str(script))
    again = _publish(config, try_=True)
    assert (again.status, again.version) == (Action.REUSED, tried.version), again.error


def test_a_new_file_only_staged_is_in_a_try(
    checkout: Path, registry: LocalRegistry, base_image: str
) -> None:
    """`git add` is what makes a file part of the playbook, before any commit."""
    config = _config(checkout, registry, base_image)
    d = checkout / "playbooks" / NAME
    (d / "notes.txt").write_text("staged\n")
    git(checkout, "add", str(d / "notes.txt"))
    tried = _publish(config, try_=True)
    assert tried.status is Action.PUSHED, (tried.error, tried.messages)
    assert _top_layer(config, tried.version)["ctx/notes.txt"] == b"staged\n"


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_link_out_of_the_playbook_is_refused(
    checkout: Path, registry: LocalRegistry, base_image: str, dry_run: bool
) -> None:
    (checkout / "outside.txt").write_text("not the playbook's\n")
    (checkout / "playbooks" / NAME / "data").symlink_to("../../outside.txt")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "a link out")
    config = _config(checkout, registry, base_image)
    result = _publish(config, dry_run=dry_run)
    assert result.status is Action.SKIPPED, (result.error, result.messages)
    shown = "\n".join(result.messages)
    assert f"playbooks/{NAME}/data:1:1: playbook.special-file: a symbolic link out of" in shown
    assert "internal error" not in (result.error or "")
    assert _pushed_nothing(config)


def _pushed_nothing(config: Config) -> bool:
    with RegistryClient(config) as client:
        try:
            client.get_manifest(f"{config.image_ref(NAME)}:1.0.0")
        except ManifestNotFoundError:
            return True
    return False


@pytest.mark.parametrize("tracked", [True, False])
@pytest.mark.parametrize("try_", [True, False])
def test_a_name_that_is_not_utf8_is_a_lint_finding_never_a_crash(
    checkout: Path, registry: LocalRegistry, base_image: str, tracked: bool, try_: bool
) -> None:
    d = checkout / "playbooks" / NAME
    (d / os.fsdecode(b"data\xff")).write_bytes(b"x\n")
    if tracked:
        git(checkout, "add", "-A")
    config = _config(checkout, registry, base_image)
    result = _publish(config, dry_run=not try_, try_=try_)
    assert result.status is Action.SKIPPED, (result.error, result.messages)
    shown = "\n".join(result.messages)
    assert f"playbooks/{NAME}/data\\xff:1:1: playbook.file-name: the file name is not" in shown
    assert "internal error" not in (result.error or "")


def test_publish_dry_run_through_the_cli_names_the_untracked_file(
    checkout: Path,
    registry: LocalRegistry,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (checkout / "playbooks" / NAME / "helper.sh").write_text("#!/bin/sh\n")
    _cli_in(checkout, registry, base_image, monkeypatch)
    code = main(["publish", "--dry-run", NAME])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert f"{NAME} 1.0.0: skipped" in out
    assert "playbook.untracked" in out
    assert "helper.sh" in out
    assert "Traceback" not in err


def test_a_submodule_is_refused_by_lint_plan_and_a_dry_run_in_cis_clone(
    checkout: Path,
    tmp_path: Path,
    registry: LocalRegistry,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A submodule in the playbook, and the clone CI makes (no --recurse-submodules: its
    directory is empty). Before, lint was clean there, plan said publish and a dry run
    assembled an image without the submodule's files; now each says what it is, through the
    CLI, and nothing is assembled."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "helper.sh").write_text("#!/bin/sh\n")
    commit_new(lib, "lib")
    where = f"playbooks/{NAME}/vendor/lib"
    git(checkout, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), where)
    git(checkout, "commit", "-q", "-m", "a submodule")
    ci = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(checkout), str(ci))
    assert not list((ci / where).iterdir())
    _cli_in(ci, registry, base_image, monkeypatch)
    said = f"{where}:1:1: error [playbook.submodule] a git submodule (a gitlink"
    assert main(["lint"]) == 1
    out, err = capsys.readouterr()
    assert said in out, out + err
    assert out.count("playbook.submodule") == 1
    assert main(["plan"]) == 1
    out, err = capsys.readouterr()
    assert f"invalid    {NAME} 1.0.0: {where}: a git submodule (a gitlink" in out, out + err
    code = main(["publish", "--dry-run", NAME])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert f"{NAME} 1.0.0: skipped" in out
    assert "playbook.submodule" in out
    assert "assembled, not pushed" not in out
    assert "Traceback" not in err


def test_a_git_lfs_script_is_refused_not_published_as_its_pointer(
    checkout: Path,
    registry: LocalRegistry,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Git LFS (the real git-lfs): the checkout holds the script, git's object a pointer.
    Images are made from git's objects, so the image would hold the pointer: lint refuses the
    playbook, naming the file and the attribute, and a publish skips it (exit 1)."""
    script = f"playbooks/{NAME}/remediate.sh"
    git(checkout, "lfs", "install", "--local")
    git(checkout, "lfs", "track", script)
    git(checkout, "rm", "--cached", "-q", script)
    git(checkout, "add", ".gitattributes", script)
    git(checkout, "commit", "-q", "-m", "the script in Git LFS")
    assert git(checkout, "cat-file", "-p", f"HEAD:{script}").startswith(
        "version https://git-lfs.github.com/spec/v1"
    )
    assert (checkout / script).read_text().startswith("#!")  # the checkout: the script
    _cli_in(checkout, registry, base_image, monkeypatch)
    assert main(["lint", f"playbooks/{NAME}"]) == 1
    out, err = capsys.readouterr()
    assert (
        f"{script}:1:1: error [playbook.git-conversion] git converts this file on checkout "
        "(filter=lfs, from .gitattributes)"
    ) in out, out + err
    assert "(a Git LFS pointer)" in out
    code = main(["publish", "--dry-run", NAME])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert f"{NAME} 1.0.0: skipped" in out
    assert "playbook.git-conversion" in out
    assert "Traceback" not in err


def test_a_dry_run_says_nothing_of_ignored_files_the_containerfile_does_not_copy(
    tmp_path: Path,
    registry: LocalRegistry,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A playbook whose Containerfile copies its script only, beside a __pycache__/ the
    repository ignores (a Python helper run by hand): the image never wanted those files, so
    the dry run names no file git ignores and looks as clean as without them."""
    repo = make_repo(tmp_path / "repo", {NAME: good_playbook(NAME, pipeline=True)})
    (repo / ".gitignore").write_text("__pycache__/\n")
    commit_new(repo, ".gitignore")
    _cli_in(repo, registry, base_image, monkeypatch)
    assert main(["publish", "--dry-run", NAME]) == 0
    clean = capsys.readouterr().out
    cache = repo / "playbooks" / NAME / "__pycache__"
    cache.mkdir()
    (cache / "helpers.cpython-312.pyc").write_bytes(b"\x00debris")
    assert main(["publish", "--dry-run", NAME]) == 0
    out = capsys.readouterr().out
    assert f"{NAME} 1.0.0: dry-run" in out
    assert "__pycache__" not in out
    assert "git ignores" not in out
    assert out == clean  # the same digests, and not a word more


def test_the_source_hash_leaves_ignored_files_out_and_agrees_with_plans(checkout: Path) -> None:
    """plan hashes a commit's objects, lint, publish, register and verify the checkout: a file
    git ignores must not make them disagree (a release would refuse its own version)."""
    d = checkout / "playbooks" / NAME
    rel = f"playbooks/{NAME}"
    from_git = hash_tree_files(GitRepo(checkout).tree_files("HEAD", rel), rel)
    assert source_hash(d) == from_git
    (checkout / ".gitignore").write_text("*.env\nbuild/\n")
    (d / "local.env").write_text("TOKEN=hunter2\n")
    (d / "build").mkdir()
    (d / "build" / "out.txt").write_text("artefact\n")
    assert source_hash(d) == from_git
    (d / "helper.sh").write_text("#!/bin/sh\n")  # untracked, not ignored: in (lint refuses it)
    assert source_hash(d) != from_git


def test_a_copy_dockerignore_excludes_is_reported_and_the_advice_followed_publishes(
    tmp_path: Path,
    registry: LocalRegistry,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The scaffold's .dockerignore (`*`, `!remediate.sh`) and a COPY of a second file: the
    build would fail with "no such file or directory in the context". Lint names the COPY line
    and the pattern and says which line to add; added as written, lint and a dry run pass."""
    repo = make_repo(tmp_path / "repo", {NAME: good_playbook(NAME, pipeline=True)})
    d = repo / "playbooks" / NAME
    (d / ".dockerignore").write_text("*\n!remediate.sh\n")
    (d / "helpers.sh").write_text("#!/bin/sh\necho helping\n")
    cf = d / "Containerfile"
    cf.write_text(
        edit(cf.read_text(), "COPY remediate.sh", "COPY helpers.sh /opt/\nCOPY remediate.sh")
    )
    commit_new(repo, "playbooks")
    _cli_in(repo, registry, base_image, monkeypatch)

    assert main(["lint", f"playbooks/{NAME}"]) == 1
    out = capsys.readouterr().out
    (said,) = [line for line in out.splitlines() if "[playbook.dockerignore-excluded]" in line]
    assert said.startswith(
        f"playbooks/{NAME}/Containerfile:2:1: error [playbook.dockerignore-excluded] "
        f"COPY helpers.sh: playbooks/{NAME}/.dockerignore line 1 ('*') keeps helpers.sh out"
    ), said
    advice = re.search(r"add the line `([^`]+)` at the end of (\S+)$", said)
    assert advice, said
    code = main(["publish", "--dry-run", NAME])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"{NAME} 1.0.0: skipped" in out
    assert "playbook.dockerignore-excluded" in out

    # The advice, literally: the line at the end of the file it names.
    ignore = repo / advice[2]
    ignore.write_text(ignore.read_text() + advice[1] + "\n")
    assert main(["lint", f"playbooks/{NAME}"]) == 0, capsys.readouterr().out
    assert main(["publish", "--dry-run", NAME]) == 0
    assert f"{NAME} 1.0.0: dry-run" in capsys.readouterr().out
