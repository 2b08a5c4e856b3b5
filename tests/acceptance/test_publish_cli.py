"""`playbookctl publish` through the CLI: a real git repository, Docker engine and registry."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from playbookctl.cli import main
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import TEST_BASE_IMAGE, PlaybookRepo

pytestmark = pytest.mark.integration
_ids = itertools.count()


@pytest.fixture
def publish_args(
    playbook_repo: PlaybookRepo,
    registry: LocalRegistry,
    docker_engine: str,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    """`-C repo publish` plus registry flags for a repository layout of the test's own."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    monkeypatch.setenv(
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES", json.dumps({TEST_BASE_IMAGE: base_image})
    )
    monkeypatch.setenv("GITHUB_REPOSITORY", "example/playbooks")
    n = next(_ids)
    return [
        "-C",
        str(playbook_repo.path),
        "publish",
        "--registry",
        registry.host,
        "--image-repo",
        f"cli{n}/images",
        "--bundle-repo",
        f"cli{n}/bundles",
    ]


@pytest.mark.parametrize(
    "world", ["https", pytest.param("plain", marks=pytest.mark.plain_http)]
)  # the demo path on plain HTTP too (README "The test world")
def test_publish_json_then_rerun_human(
    publish_args: list[str],
    playbook_repo: PlaybookRepo,
    registry: LocalRegistry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    world: str,
) -> None:
    out_file = tmp_path / "out" / "publish.json"
    assert main([*publish_args, "--format", "json", "--output", str(out_file)]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert out_file.read_text() == captured.out
    assert payload["schema"] == 1
    by_name = {r["name"]: r for r in payload["results"]}
    assert sorted(by_name) == ["alpha", "beta"]
    for name, version in (("alpha", "1.0.0"), ("beta", "2.0.0")):
        r = by_name[name]
        assert (r["status"], r["version"], r["error"]) == ("pushed", version, None)
        assert r["commit"] == playbook_repo.head()  # default: git HEAD
        assert r["source_repository"] == "https://github.com/example/playbooks"
        assert r["image"]["action"] == "built"
        assert r["image"]["ref"].startswith(f"{registry.host}/")
        assert (
            r["bundle"]["ref"] == f"{r['bundle']['repository']}:{version}@{r['bundle']['digest']}"
        )
    # Progress goes to stderr: the RUN-less image is assembled, each platform pushed by digest.
    assert "[alpha] pushing " in captured.err
    assert ", assembled)" in captured.err

    assert main(publish_args) == 0
    out = capsys.readouterr().out
    assert "alpha 1.0.0: reused" in out
    assert "beta 2.0.0: reused" in out
    assert f"  bundle reused   {by_name['alpha']['bundle']['ref']}" in out
    assert f"  image  reused   {by_name['beta']['image']['ref']}" in out
    assert out.rstrip().endswith("2 reused")


def test_changed_content_exits_1_with_a_refusal(
    publish_args: list[str], playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*publish_args, "alpha"]) == 0
    playbook_repo.write_playbook("alpha", "1.0.0", marker="changed")
    playbook_repo.commit_all("change alpha without a version bump")
    capsys.readouterr()
    assert main([*publish_args, "alpha", "beta"]) == 1
    captured = capsys.readouterr()
    assert "alpha 1.0.0: refused" in captured.out
    assert "content changed, bump the version: playbookctl bump alpha patch" in captured.out
    assert "beta 2.0.0: pushed" in captured.out  # the other playbook is not held back
    assert "Traceback" not in captured.out + captured.err


def test_stand_in_with_a_real_registry_exits_1(
    publish_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = list(publish_args)
    args[args.index("--registry") + 1] = "ghcr.io"
    assert main([*args, "--format", "json"]) == 1
    results = json.loads(capsys.readouterr().out)["results"]
    assert {r["status"] for r in results} == {"refused"}
    assert all("base-image stand-in" in r["error"] for r in results)


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--jobs", "0"], 2, "--jobs must be at least 1"),
        (["no-such-playbook"], 2, "no-such-playbook"),
    ],
)
def test_usage_errors(
    publish_args: list[str],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    code: int,
    message: str,
) -> None:
    assert main([*publish_args, *extra]) == code
    assert message in capsys.readouterr().err


def test_without_git_a_commit_must_be_given(
    publish_args: list[str], playbook_repo: PlaybookRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    shutil.rmtree(playbook_repo.path / ".git")
    assert main([*publish_args, "--dry-run"]) == 1
    assert "pass --commit" in capsys.readouterr().err
    assert main([*publish_args, "--dry-run", "--commit", "f" * 40]) == 0
    assert "alpha 1.0.0: dry-run" in capsys.readouterr().out


def test_a_version_lowered_under_the_registered_one_is_advised_past_both(
    publish_args: list[str],
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """alpha 1.0.0 published, then 1.0.1 published and registered; the author edits alpha and
    sets 1.0.0 again. plan warns (naming both versions), the dry run refuses 1.0.0 (its tag
    holds other content) and advises a bump that gives 1.0.2, not 1.0.1 (registered with other
    content: the advice went in a circle), and `bump` itself steps past 1.0.1."""
    root = str(playbook_repo.path)
    assert main([*publish_args, "alpha"]) == 0
    playbook_repo.write_playbook("alpha", "1.0.1", marker="second")
    playbook_repo.commit_all("alpha 1.0.1")
    results = tmp_path / "publish.json"
    assert main([*publish_args, "alpha", "--format", "json", "--output", str(results)]) == 0
    assert main(["-C", root, "register", str(results), "--commit"]) == 0
    playbook_repo.write_playbook("alpha", "1.0.0", marker="third")
    playbook_repo.commit_all("alpha edited, version set back to 1.0.0")
    capsys.readouterr()

    assert main(["-C", root, "plan"]) == 0  # a warning, not a refusal: a rollback is legal
    captured = capsys.readouterr()
    warning = (
        "warning: lower than registered: 1.0.0 is lower than 1.0.1, the registered version; "
        "a rollback if 1.0.0 was published from exactly this content (publish reuses it)"
    )
    assert warning in captured.out
    assert f"playbookctl: alpha: version 1.0.1 -> 1.0.0 ({warning}" in captured.err
    assert "playbookctl bump alpha patch (gives 1.0.2: past 1.0.1" in captured.err

    assert main([*publish_args, "alpha", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "alpha 1.0.0: refused" in out
    assert (
        "the content changed, bump the version: playbookctl bump alpha patch (gives 1.0.2: "
        "past 1.0.1, the registered version)"
    ) in out

    assert main(["-C", root, "bump", "alpha"]) == 0
    assert capsys.readouterr().out == (
        "playbooks/alpha/workflow.yaml: spec.version 1.0.0 -> 1.0.2 "
        "(past 1.0.1, the version registry/workflows/alpha.yaml registers)\n"
    )


def test_a_rollback_to_a_version_published_from_this_content_is_reused(
    publish_args: list[str],
    playbook_repo: PlaybookRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The legitimate case of a lower version: the tree is exactly what 1.0.0 was published
    from, so plan only warns and publish reuses 1.0.0."""
    root = str(playbook_repo.path)
    assert main([*publish_args, "alpha"]) == 0
    first = (playbook_repo.path / "playbooks" / "alpha").resolve()
    saved = {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()}
    playbook_repo.write_playbook("alpha", "1.0.1", marker="second")
    playbook_repo.commit_all("alpha 1.0.1")
    results = tmp_path / "publish.json"
    assert main([*publish_args, "alpha", "--format", "json", "--output", str(results)]) == 0
    assert main(["-C", root, "register", str(results), "--commit"]) == 0
    for rel, data in saved.items():
        (first / rel).write_bytes(data)
    playbook_repo.commit_all("roll alpha back to 1.0.0")
    capsys.readouterr()
    assert main(["-C", root, "plan"]) == 0
    assert "1.0.0 is lower than 1.0.1, the registered version" in capsys.readouterr().err
    assert main([*publish_args, "alpha", "--dry-run"]) == 0
    assert "alpha 1.0.0: reused" in capsys.readouterr().out
