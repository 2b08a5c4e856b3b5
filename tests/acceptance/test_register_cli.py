"""`playbookctl register RESULTS... [--commit]` through the CLI, on a real git repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl.config import load_config
from playbookctl.playbook import source_hash
from playbookctl.release import TRAILER
from playbookctl.results import Action, Artifact, PublishResult, dump_results
from tests.support.gitrepos import PlaybookRepo


def result(
    repo: PlaybookRepo, name: str, version: str, status: Action = Action.PUSHED
) -> PublishResult:
    config = load_config(repo.path)
    digest = "sha256:" + (name[0] * 64 if name[0] in "abcdef" else "e" * 64)
    return PublishResult(
        name=name,
        version=version,
        source_hash=source_hash(config.playbooks_dir / name),
        image=Artifact(config.image_ref(name), version, digest, Action.BUILT),
        bundle=Artifact(config.bundle_ref(name), version, digest, Action.PUSHED),
        status=status,
        commit=repo.head(),
        error=None if status is Action.PUSHED else "build failed",
    )


def test_results_from_parallel_jobs_then_commit(
    playbook_repo: PlaybookRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "results"
    (jobs / "job-1").mkdir(parents=True)
    (jobs / "job-2").mkdir(parents=True)
    (jobs / "job-1" / "publish.json").write_text(
        dump_results([result(playbook_repo, "alpha", "1.0.0")])
    )
    (jobs / "job-2" / "publish.json").write_text(
        dump_results([result(playbook_repo, "beta", "2.0.0")])
    )
    root = str(playbook_repo.path)
    before = playbook_repo.head()
    assert main(["-C", root, "register", str(jobs), "--commit"]) == 0
    out = capsys.readouterr().out
    assert "registered alpha 1.0.0" in out
    assert "registered beta 2.0.0" in out
    assert "wrote registry/workflows/alpha.yaml" in out
    assert playbook_repo.head() != before
    message = playbook_repo.git("log", "-1", "--format=%B")
    assert message.splitlines()[0] == "registry: release alpha 1.0.0, beta 2.0.0"
    assert TRAILER in message
    assert playbook_repo.git("show", "--name-only", "--format=", "HEAD").split() == [
        "registry/kustomization.yaml",
        "registry/workflows/alpha.yaml",
        "registry/workflows/beta.yaml",
    ]
    # The same results again: nothing changes, nothing is committed.
    head = playbook_repo.head()
    assert main(["-C", root, "register", str(jobs), "--commit"]) == 0
    out = capsys.readouterr().out
    assert "unchanged  alpha 1.0.0" in out
    assert "nothing to commit" in out
    assert playbook_repo.head() == head


def test_failed_result_is_not_registered_and_exits_1(
    playbook_repo: PlaybookRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "publish.json"
    path.write_text(
        dump_results(
            [
                result(playbook_repo, "alpha", "1.0.0"),
                result(playbook_repo, "beta", "2.0.0", Action.FAILED),
            ]
        )
    )
    assert main(["-C", str(playbook_repo.path), "register", str(path), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert "would write registry/workflows/alpha.yaml" in captured.out
    assert "not registered: beta: build failed" in captured.err
    assert not (playbook_repo.path / "registry" / "workflows").exists()


def test_unreadable_results_file_is_one_line_error(
    playbook_repo: PlaybookRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["-C", str(playbook_repo.path), "register", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "not a publish result file" in err
    assert err.count("\n") == 1


def test_deletions_only_with_missing_results_dir(
    playbook_repo: PlaybookRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A release that only deletes playbooks has no publish artifacts: --missing-ok."""
    results = tmp_path / "results.json"
    results.write_text(dump_results([result(playbook_repo, "alpha", "1.0.0")]))
    root = str(playbook_repo.path)
    assert main(["-C", root, "register", str(results), "--commit"]) == 0
    assert (playbook_repo.path / "registry/workflows/alpha.yaml").is_file()
    playbook_repo.git("rm", "-rq", "playbooks/alpha")
    playbook_repo.git("commit", "-qm", "drop alpha")
    capsys.readouterr()
    missing = tmp_path / "publish-results"
    # Without the flag a missing path is an error, never silently nothing.
    assert main(["-C", root, "register", str(missing), "--commit"]) == 1
    assert "publish-results" in capsys.readouterr().err
    assert main(["-C", root, "register", str(missing), "--missing-ok", "--commit"]) == 0
    assert not (playbook_repo.path / "registry/workflows/alpha.yaml").exists()
    assert (
        "workflows/alpha.yaml"
        not in (playbook_repo.path / "registry/kustomization.yaml").read_text()
    )
    assert playbook_repo.git("status", "--porcelain") == ""
