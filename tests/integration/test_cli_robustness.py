"""Bad situations with real git, registry and Docker engine addresses through the command line:
one clear line, exit 1, nothing changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl.config import load_config
from playbookctl.playbook import source_hash
from playbookctl.results import Action, Artifact, PublishResult, dump_results
from playbookctl_dev.registry import LocalRegistry, free_port
from tests.support.gitrepos import PlaybookRepo, git
from tests.support.lintrepo import good_playbook, make_repo

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("shallow", "hint"),
    [
        (False, ""),
        (True, "; this is a shallow clone: fetch more history (actions/checkout fetch-depth: 0)"),
    ],
)
def test_missing_base_says_why(
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    shallow: bool,
    hint: str,
) -> None:
    playbook_repo.write_playbook("alpha", "1.1.0", marker="v2")
    playbook_repo.commit_all("bump")
    path = playbook_repo.path
    if shallow:
        # What actions/checkout makes by default: one commit, no parent to diff against.
        path = tmp_path / "shallow"
        git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{playbook_repo.path}", str(path))
    assert main(["-C", str(path), "plan", "--base", "HEAD~50"]) == 1
    err = capsys.readouterr().err
    assert err == f"playbookctl: error: cannot resolve 'HEAD~50': no such commit in {path}{hint}\n"


@pytest.mark.parametrize(
    ("docker_host", "reason"),
    [
        ("unix:///nonexistent/docker.sock", "no such socket"),
        ("tcp://127.0.0.1:1", "connection refused"),
    ],
)
def test_publish_without_a_docker_engine(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    docker_host: str,
    reason: str,
) -> None:
    root = make_repo(tmp_path / "repo", {"restart-deployment": good_playbook()})
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    # The sample is RUN-less, so publish would assemble it without any engine: the engine path
    # (a RUN step, or assemble = never) is the one that must name the missing engine.
    monkeypatch.setenv("PLAYBOOKCTL_ASSEMBLE", "never")
    code = main(
        [
            "-C",
            str(root),
            "publish",
            "--registry",
            registry.host,
            "--commit",
            "a" * 40,
            "--source-repository",
            "https://example.invalid/r",
            "--image-repo",
            "robust/images",
            "--bundle-repo",
            "robust/bundles",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    line = f"cannot reach a Docker engine at {docker_host} (set DOCKER_HOST): {reason}"
    assert f"  error: {line}\n" in captured.out
    assert f"[restart-deployment] failed: {line}\n" in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_push_refused_by_a_hook_shows_what_the_remote_said(
    playbook_repo: PlaybookRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A registration whose playbook is gone: `register --push` removes it, commits and pushes.
    workflows = playbook_repo.path / "registry" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "gone.yaml").write_text("kind: RemediationWorkflow\nmetadata:\n  name: gone\n")
    playbook_repo.commit_all("a registration without its playbook")
    playbook_repo.push()
    before = playbook_repo.remote_head()
    hook = playbook_repo.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch: open a pull request' >&2\nexit 1\n")
    hook.chmod(0o755)
    code = main(
        ["-C", str(playbook_repo.path), "register", "--push", "--missing-ok", str(tmp_path / "n")]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1] == (
        "playbookctl: error: push to origin/main was rejected: [remote rejected] (pre-receive "
        "hook declined); the remote said: protected branch: open a pull request"
    )
    assert playbook_repo.remote_head() == before


def test_unwritable_github_output_is_an_error(
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path))  # a directory: cannot be appended to
    code = main(["-C", str(playbook_repo.path), "plan", "--base", "HEAD", "--format", "matrix"])
    err = capsys.readouterr().err
    assert (code, err) == (
        1,
        f"playbookctl: error: GITHUB_OUTPUT: cannot append to {tmp_path}: Is a directory\n",
    )


def test_unwritable_step_summary_does_not_hide_a_done_push(
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workflows = playbook_repo.path / "registry" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "gone.yaml").write_text("kind: RemediationWorkflow\nmetadata:\n  name: gone\n")
    playbook_repo.commit_all("a registration without its playbook")
    playbook_repo.push()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))
    code = main(
        ["-C", str(playbook_repo.path), "register", "--push", "--missing-ok", str(tmp_path / "n")]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert f"pushed {playbook_repo.remote_head()[:12]}" in captured.out
    assert (
        f"playbookctl: warning: GITHUB_STEP_SUMMARY: cannot append to {tmp_path}: Is a directory"
        in captured.err
    )


def test_release_table_says_why_a_publish_failed(
    playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    base = playbook_repo.head()
    playbook_repo.write_playbook("alpha", "1.1.0", marker="v2")
    bump = playbook_repo.commit_all("bump")
    playbook_repo.push()
    host = f"127.0.0.1:{free_port()}"
    code = main(["-C", str(playbook_repo.path), "release", "--base", base, "--registry", host])
    captured = capsys.readouterr()
    assert code == 1
    row = next(line for line in captured.out.splitlines() if line.startswith("alpha "))
    assert row.endswith(
        # A new version's first request: which index type the registry takes (its tag is
        # looked up just before the index would be written).
        f"publish failed: registry {host}: probe whether {host}/t/images/alpha takes "
        "application/vnd.docker.distribution.manifest.list.v2+json failed after 5 attempt(s): "
        "ConnectionError (connection refused: is the registry running and the port right?)"
    )
    # beta was never registered: the release converges on the tree and tries it too.
    assert captured.err.endswith("playbookctl: error: not released: alpha, beta\n")
    # Every publish failed: nothing committed or pushed, not even the kustomization (which
    # does not list the ActionType yet): the next release plans it again.
    assert "nothing committed, nothing pushed" in captured.out
    assert playbook_repo.head() == bump
    assert playbook_repo.remote_head() == bump
    assert playbook_repo.git("status", "--porcelain") == ""


def test_register_with_no_results_says_so(
    playbook_repo: PlaybookRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "publish-results"
    empty.mkdir()
    code = main(["-C", str(playbook_repo.path), "register", str(empty)])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, f"playbookctl register: no publish results in {empty}\n")
    assert "registry/workflows/" not in captured.out


@pytest.mark.parametrize("command", ["release", "register"])
@pytest.mark.parametrize("branch", ["bad branch", "a..b", "x.lock", "-x"])
def test_bad_branch_is_refused_before_anything_runs(
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    branch: str,
) -> None:
    extra = [str(tmp_path / "none.json"), "--push", "--missing-ok"] if command == "register" else []
    head = playbook_repo.head()
    code = main(["-C", str(playbook_repo.path), command, *extra, f"--branch={branch}"])
    err = capsys.readouterr().err
    assert (code, err) == (
        1,
        f"playbookctl: error: --branch {branch!r}: not a valid git branch name; nothing done\n",
    )
    assert playbook_repo.head() == head


def _refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


# Names check-ref-format --branch accepts that are not a plain branch name: a remote-tracking
# name (the default remote, or another the clone has), a full ref, HEAD's shorthand.
NOT_PLAIN_BRANCHES = [
    (
        "origin/main",
        "names a remote-tracking branch of 'origin'; give the branch's name as the "
        "remote has it, e.g. 'main'",
    ),
    (
        "upstream/release/x",
        "names a remote-tracking branch of 'upstream'; give the branch's name "
        "as the remote has it, e.g. 'release/x'",
    ),
    (
        "refs/heads/x",
        "a full ref name, not a branch name (it would be refs/heads/refs/heads/x); "
        "give the branch's name alone",
    ),
    ("@", "not a valid git branch name"),
]


@pytest.mark.parametrize("command", ["release", "register"])
@pytest.mark.parametrize(("branch", "problem"), NOT_PLAIN_BRANCHES)
def test_a_branch_flag_that_is_not_a_plain_branch_name_is_refused(
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    branch: str,
    problem: str,
) -> None:
    playbook_repo.git("remote", "add", "upstream", str(playbook_repo.remote))
    extra = [str(tmp_path / "none.json"), "--push", "--missing-ok"] if command == "register" else []
    local, remote = _refs(playbook_repo.path), _refs(playbook_repo.remote)
    code = main(["-C", str(playbook_repo.path), command, *extra, f"--branch={branch}"])
    assert (code, capsys.readouterr().err) == (
        1,
        f"playbookctl: error: --branch {branch!r}: {problem}; nothing done\n",
    )
    assert (_refs(playbook_repo.path), _refs(playbook_repo.remote)) == (local, remote)


@pytest.mark.parametrize("remote", ["nope", "--upload-pack=touch pwned"])
def test_release_to_an_unknown_remote(
    playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str], remote: str
) -> None:
    code = main(["-C", str(playbook_repo.path), "release", f"--remote={remote}"])
    err = capsys.readouterr().err
    assert (code, err) == (
        1,
        f"playbookctl: error: no remote named {remote!r} (remotes: origin)\n",
    )
    assert not (playbook_repo.path / "pwned").exists()


def _results_file(repo: PlaybookRepo, path: Path) -> Path:
    """Publish results for every playbook of repo, as if each had been pushed."""
    config = load_config(repo.path)
    results = []
    for d in sorted(config.playbooks_dir.iterdir()):
        v = (d / "workflow.yaml").read_text().split('version: "', 1)[1].split('"', 1)[0]
        digest = "sha256:" + hashlib.sha256(f"{d.name}{v}".encode()).hexdigest()
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
    path.write_text(dump_results(results))
    return path


@pytest.mark.parametrize(
    ("blocker", "as_directory", "message"),
    [
        ("registry/workflows", False, "registry/workflows is a file; cannot write registry/"),
        ("registry/kustomization.yaml", True, "registry/kustomization.yaml is a directory; cann"),
    ],
)
def test_register_with_something_in_the_way_writes_nothing(
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    blocker: str,
    as_directory: bool,
    message: str,
) -> None:
    results = _results_file(playbook_repo, tmp_path / "results.json")
    target = playbook_repo.path / blocker
    target.unlink(missing_ok=True)
    if as_directory:
        target.mkdir()
    else:
        target.write_text("")
    before = sorted(p.relative_to(playbook_repo.path) for p in playbook_repo.path.rglob("*"))
    for extra in ([], ["--dry-run"]):
        code = main(["-C", str(playbook_repo.path), "register", str(results), *extra])
        err = capsys.readouterr().err
        assert code == 1
        assert err.startswith(f"playbookctl: error: {message}")
        assert err.count("\n") == 1
    assert (
        sorted(p.relative_to(playbook_repo.path) for p in playbook_repo.path.rglob("*")) == before
    )


def test_inspect_missing_bundle_has_no_fake_position(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = f"{registry.host}/robust/nothing:1.0.0"
    code = main(["-C", str(tmp_path), "inspect", ref])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{ref}: error [bundle.missing] no manifest for {ref} in the registry\n" in out
    assert ":0:0" not in out
