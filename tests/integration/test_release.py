"""release end to end: real git remotes, a real Docker engine, the loopback registry.

Crashes are simulated by running the stages of a release up to the point of the kill (publish
only; publish and register without a commit; a commit without a push; an image without its
bundle through the fault proxy), then a full rerun must end with exactly one release commit on
the remote and never a registration whose bundle is missing.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from playbookctl import build, platforms
from playbookctl.bundle import ANNOTATION_REVISION, read_bundle
from playbookctl.cli import main
from playbookctl.config import Config, load_config
from playbookctl.errors import GitError, ImmutableVersionError
from playbookctl.gitrepo import GitRepo
from playbookctl.oci import RegistryClient
from playbookctl.playbook import source_hash
from playbookctl.publish import publish
from playbookctl.register import GENERATED_PATHS, register
from playbookctl.release import (
    TRAILER,
    ReleaseOptions,
    ReleaseReport,
    commit_message,
    format_table,
    release,
)
from playbookctl.results import Action, PublishResult, dump_results
from playbookctl_dev.registry import LocalRegistry
from tests.support.gitrepos import (
    LYING_HOOK,
    TEST_BASE_IMAGE,
    MakeRepo,
    PlaybookRepo,
    arm_racing_push,
    git,
    install_hook,
    read_registrations,
)

pytestmark = pytest.mark.integration

WRITES = ("PUT", "POST", "PATCH", "DELETE")
_ids = itertools.count()


@pytest.fixture
def env(docker_engine: str, base_image: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    return {"base_image": base_image}


def configure(repo: PlaybookRepo, registry_host: str, base_image: str, tag: str) -> Config:
    return load_config(repo.path).with_overrides(
        registry=registry_host,
        image_repo=f"{tag}/images",
        bundle_repo=f"{tag}/bundles",
        base_image_overrides={TEST_BASE_IMAGE: base_image},
        registry_timeout=5.0,
        registry_retries=2,
        jobs=2,
    )


@pytest.fixture
def setup(
    playbook_repo_factory: MakeRepo, registry: LocalRegistry, env: dict[str, str]
) -> tuple[PlaybookRepo, Config]:
    repo = playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})
    return repo, configure(repo, registry.host, env["base_image"], f"rel{next(_ids)}")


def remote_file(repo: PlaybookRepo, path: str, branch: str = "main") -> str:
    return git(repo.remote, "show", f"refs/heads/{branch}:{path}")


def release_commits(repo: PlaybookRepo, branch: str = "main") -> list[str]:
    log = git(repo.remote, "log", "--format=%H%x00%B%x01", f"refs/heads/{branch}")
    return [e.split("\0")[0].strip() for e in log.split("\x01") if TRAILER in e]


def bundles_exist(config: Config, repo: PlaybookRepo, branch: str = "main") -> None:
    """Every registration on the remote names a bundle the registry holds at that digest."""
    names = git(repo.remote, "ls-tree", "--name-only", f"refs/heads/{branch}:registry/workflows")
    assert names
    with RegistryClient(config) as client:
        for fn in names.split():
            docs = list(yaml.safe_load_all(remote_file(repo, f"registry/workflows/{fn}", branch)))
            bundle = docs[-1]["spec"]["execution"]["bundle"]
            repo_part, _, digest = bundle.partition("@")
            repository = repo_part.rpartition(":")[0]
            assert client.resolve(f"{repository}@{digest}") is not None, bundle


@pytest.mark.parametrize(
    "world", ["https", pytest.param("plain", marks=pytest.mark.plain_http)]
)  # the demo path on plain HTTP too (README "The test world")
def test_release_then_noop_rerun(
    setup: tuple[PlaybookRepo, Config], world: str, registry: LocalRegistry
) -> None:
    repo, config = setup
    before = repo.remote_count()
    report = release(config, ReleaseOptions())
    assert report.pushed
    assert repo.remote_count() == before + 1
    assert repo.remote_head() == report.commit
    message = repo.git("log", "-1", "--format=%B", report.commit or "")
    for r in report.results:
        assert r.bundle is not None
        assert f"{r.name} {r.version} {r.bundle.digest}" in message
    assert repo.git("log", "-1", "--format=%an <%ae>") == (
        f"{config.git_author_name} <{config.git_author_email}>"
    )
    assert {r.name: r.status for r in report.results} == {
        "alpha": Action.PUSHED,
        "beta": Action.PUSHED,
    }
    bundles_exist(config, repo)
    kust = yaml.safe_load(remote_file(repo, "registry/kustomization.yaml"))
    assert kust["resources"] == [
        "action-types/restart-deployment.yaml",
        "workflows/alpha.yaml",
        "workflows/beta.yaml",
    ]
    # Again: nothing to publish, no commit, no push; each registration proven by the registry
    # (its two tags looked up), with one token for the four repositories (asked together).
    calls: list[list[str]] = []

    def no_publish(*a: object, **kw: object) -> list[PublishResult]:
        calls.append(list(a[1]))  # type: ignore[arg-type]
        return []

    tokens = registry.tokens_issued() if registry.auth == "token" else 0
    again = release(config, ReleaseOptions(), publisher=no_publish)
    assert calls == []
    if registry.auth == "token":
        assert registry.tokens_issued() - tokens == 1
    assert again.commit is None
    assert not again.pushed
    assert repo.remote_count() == before + 1


def test_bump_and_delete_in_one_release(setup: tuple[PlaybookRepo, Config]) -> None:
    repo, config = setup
    release(config, ReleaseOptions())
    repo.write_playbook("alpha", "1.1.0", marker="v2")
    shutil.rmtree(repo.path / "playbooks" / "beta")
    repo.commit_all("bump alpha, delete beta")
    repo.push()
    report = release(config, ReleaseOptions())
    assert [r.name for r in report.results] == ["alpha"]
    files = repo.git("ls-tree", "--name-only", "HEAD:registry/workflows").split()
    assert files == ["alpha.yaml"]
    assert "beta: removed" in repo.git("log", "-1", "--format=%B")
    assert repo.remote_head() == report.commit
    assert read_registrations(config)["alpha"].version == "1.1.0"


def test_immutability_refusal(setup: tuple[PlaybookRepo, Config]) -> None:
    repo, config = setup
    release(config, ReleaseOptions())
    head = repo.remote_head()
    repo.write_playbook("beta", "2.0.0", marker="sneaky change")
    repo.commit_all("change beta without a bump")
    repo.push()
    with pytest.raises(ImmutableVersionError, match=r"beta: content changed .* bump spec\.version"):
        release(config, ReleaseOptions())
    assert (
        repo.remote_count() == int(repo.git("rev-list", "--count", head)) + 1
    )  # only the change itself, no release commit


def test_dirty_tree_and_unpushed_commits_are_refused(setup: tuple[PlaybookRepo, Config]) -> None:
    repo, config = setup
    (repo.path / "playbooks" / "alpha" / "remediate.sh").write_text("#!/bin/sh\necho edited\n")
    with pytest.raises(GitError, match=r"uncommitted changes .*playbooks/alpha/remediate\.sh"):
        release(config, ReleaseOptions())
    repo.commit_all("local only")
    with pytest.raises(GitError, match=r"1 commit.* origin does not have; push them first"):
        release(config, ReleaseOptions())


@pytest.mark.parametrize("point", ["after-publish", "mid-register", "before-commit", "before-push"])
def test_crash_and_rerun(setup: tuple[PlaybookRepo, Config], point: str) -> None:
    repo, config = setup
    before = repo.remote_count()
    results = publish(
        config,
        ["alpha", "beta"],
        jobs=2,
        dry_run=False,
        commit=repo.head(),
        source_repository="",
    )
    assert all(r.ok for r in results)
    if point == "mid-register":
        # A register killed while writing: a temp file and a half-written registration.
        wf = repo.path / "registry" / "workflows"
        wf.mkdir(parents=True)
        (wf / ".alpha.yaml.k2j3.tmp").write_text("# Generated by playbookctl")
        (wf / "alpha.yaml").write_text(
            "# Generated by playbookctl register; do not edit.\n---\napiV"
        )
    if point in ("before-commit", "before-push"):
        outcome = register(config, results)
        assert outcome.changed
        if point == "before-push":
            sha = GitRepo(repo.path).commit(
                commit_message(outcome.changes),
                list(GENERATED_PATHS),
                config.git_author_name,
                config.git_author_email,
            )
            assert sha is not None
    report = release(config, ReleaseOptions())
    assert repo.remote_count() == before + 1
    assert len(release_commits(repo)) == 1
    assert repo.remote_head() == repo.head()
    assert {r.status for r in report.results} <= {Action.REUSED}
    bundles_exist(config, repo)
    assert not GitRepo(repo.path).is_dirty()
    # And a third run is a no-op.
    assert release(config, ReleaseOptions()).commit is None
    assert repo.remote_count() == before + 1


def test_crash_after_image_push_before_bundle(
    setup: tuple[PlaybookRepo, Config], docker_engine: str
) -> None:
    """Killed between the image push and the bundle push: the rerun reuses the image."""
    repo, config = setup
    before = repo.remote_count()
    d = repo.path / "playbooks" / "alpha"
    # The image stage of publish, alone, with the labels publish gives it: every platform's
    # child, then the index.
    digest = source_hash(d, config.platforms)
    with build.Engine(docker_engine) as engine, RegistryClient(config) as client:
        children = platforms.build_children(
            engine,
            client,
            directory=d,
            containerfile="Containerfile",
            display="playbooks/alpha/Containerfile",
            repo=config.image_ref("alpha"),
            version="1.0.0",
            labels=build.image_labels(
                source_repository="", commit=repo.head(), version="1.0.0", source_hash=digest
            ),
            source_hash=digest,
            platforms=config.platforms,
            overrides=config.base_image_overrides,
            dry_run=False,
            push_auth=None,
            push_retries=0,
            check_same_source=lambda *_: None,
            on_event=lambda _stage, _line: None,
        )
        image_digest = platforms.push_index(client, config.image_ref("alpha"), "1.0.0", children)
    report = release(config, ReleaseOptions())
    by_name = {r.name: r for r in report.results}
    alpha_image = by_name["alpha"].image
    assert alpha_image is not None
    assert (alpha_image.action, alpha_image.digest) == (Action.REUSED, image_digest)
    assert by_name["alpha"].status is Action.PUSHED
    assert repo.remote_count() == before + 1
    bundles_exist(config, repo)


def test_missing_bundle_is_never_registered(setup: tuple[PlaybookRepo, Config]) -> None:
    """A publish result naming a bundle the registry lacks is not committed."""
    repo, config = setup
    real = publish(
        config, ["alpha"], jobs=1, dry_run=False, commit=repo.head(), source_repository=""
    )

    def lying_publisher(*a: object, **kw: object) -> list[PublishResult]:
        out = []
        for r in real:
            assert r.bundle is not None
            r.bundle.digest = "sha256:" + "0" * 64
            out.append(r)
        return out

    report = release(config, ReleaseOptions(), publisher=lying_publisher)
    assert "alpha" in report.failed
    assert any("not in the registry" in n for n in report.notes)
    # beta had no result and alpha's bundle is missing: neither is registered anywhere.
    assert not (repo.path / "registry" / "workflows").exists()
    assert "workflows" not in git(repo.remote, "ls-tree", "-r", "--name-only", "refs/heads/main")


def test_two_releases_race_and_both_land(
    playbook_repo_factory: MakeRepo, registry: LocalRegistry, env: dict[str, str], tmp_path: Path
) -> None:
    repo = playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})
    config = configure(repo, registry.host, env["base_image"], f"rel{next(_ids)}")
    release(config, ReleaseOptions())
    base = repo.remote_head()
    # Two merges land one after the other; each triggers a release from its own checkout.
    repo.write_playbook("alpha", "1.1.0", marker="a2")
    h1 = repo.commit_all("bump alpha")
    repo.push()
    first = repo.another_clone(tmp_path / "first")
    first.git("checkout", "--quiet", "-B", "main", h1)
    repo.write_playbook("beta", "2.1.0", marker="b2")
    h2 = repo.commit_all("bump beta")
    repo.push()
    second = repo.another_clone(tmp_path / "second")
    reports: dict[str, ReleaseReport] = {}
    errors: list[BaseException] = []

    def run(name: str, clone: PlaybookRepo, since: str) -> None:
        try:
            cfg = config.with_overrides(root=clone.path)
            reports[name] = release(cfg, ReleaseOptions(base=since))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("first", first, base)),
        threading.Thread(target=run, args=("second", second, h1)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    # Each run converges on its tree: the second (at h2) registers alpha 1.1.0 as well, so
    # whichever lands second finds its work done or adds its own commit; none is lost.
    assert reports["first"].pushed or reports["second"].pushed
    for report in reports.values():
        assert report.failed == [], format_table(report) + "\n" + "\n".join(report.notes)
    assert 2 <= len(release_commits(repo)) <= 3  # the initial release, then one or two
    regs = {
        name: yaml.safe_load_all(remote_file(repo, f"registry/workflows/{name}.yaml"))
        for name in ("alpha", "beta")
    }
    versions = {n: list(d)[-1]["spec"]["version"] for n, d in regs.items()}
    assert versions == {"alpha": "1.1.0", "beta": "2.1.0"}
    assert git(repo.remote, "merge-base", "--is-ancestor", h2, "refs/heads/main") == ""
    bundles_exist(config, repo)


def test_branch_mode_updates_one_branch_in_place(setup: tuple[PlaybookRepo, Config]) -> None:
    repo, config = setup
    main_head = repo.remote_head()
    first = release(config, ReleaseOptions(branch="playbookctl/registry"))
    assert first.pushed
    assert repo.remote_head() == main_head  # main untouched
    assert len(release_commits(repo, "playbookctl/registry")) == 1
    # A rerun from a fresh checkout of main pushes nothing new.
    repo.git("reset", "--quiet", "--hard", "origin/main")
    again = release(config, ReleaseOptions(branch="playbookctl/registry"))
    assert not again.pushed
    assert len(release_commits(repo, "playbookctl/registry")) == 1
    # A new change on main moves the branch in place (force-with-lease on our own branch).
    repo.write_playbook("alpha", "1.1.0", marker="v2")
    repo.commit_all("bump alpha")
    repo.push()
    third = release(config, ReleaseOptions(branch="playbookctl/registry"))
    assert third.pushed
    assert len(release_commits(repo, "playbookctl/registry")) == 1
    # One commit, on top of the new main.
    assert repo.remote_head("playbookctl/registry~1") == repo.remote_head()
    bundles_exist(config, repo, "playbookctl/registry")


def test_cli_release_writes_step_summary(
    setup: tuple[PlaybookRepo, Config],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, config = setup
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv(
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES",
        f'{{"{TEST_BASE_IMAGE}": "{config.base_image_overrides[TEST_BASE_IMAGE]}"}}',
    )
    args = [
        "-C",
        str(repo.path),
        "release",
        "--registry",
        config.registry,
        "--image-repo",
        config.image_repo,
        "--bundle-repo",
        config.bundle_repo,
        "--author-name",
        "Rel Bot",
        "--author-email",
        "rel@example.invalid",
        "--source-repository",
        "https://git.example.invalid/playbooks",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "alpha" in out
    assert "registered" in out
    text = summary.read_text()
    assert "| playbook | version | bundle digest | what happened |" in text
    assert "| alpha | 1.0.0 | `sha256:" in text
    assert repo.git("log", "-1", "--format=%an <%ae>") == "Rel Bot <rel@example.invalid>"
    registration = (repo.path / "registry" / "workflows" / "alpha.yaml").read_text()
    assert "source-repository: https://git.example.invalid/playbooks" in registration
    assert main(args) == 0
    assert "no change: nothing committed, nothing pushed" in capsys.readouterr().out


def test_two_clones_of_one_remote_spelt_differently_do_not_rewrite_each_other(
    setup: tuple[PlaybookRepo, Config],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Outside GitHub Actions, source-repository comes from the remote's URL: one clone's
    # `/x/spelt/../remote.git` and another's `/x/remote.git` are one repository. The other
    # clone, made before the first release, releases the same playbooks in turn: it reuses the
    # first one's bundles and must find their registrations as it would write them.
    repo, config = setup
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    monkeypatch.delenv("PLAYBOOKCTL_SOURCE_REPOSITORY", raising=False)
    monkeypatch.setenv(
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES",
        f'{{"{TEST_BASE_IMAGE}": "{config.base_image_overrides[TEST_BASE_IMAGE]}"}}',
    )
    (repo.remote.parent / "spelt").mkdir()
    repo.git("remote", "set-url", "origin", f"{repo.remote.parent}/spelt/../{repo.remote.name}")
    flags = ["--registry", config.registry, "--image-repo", config.image_repo]
    flags += ["--bundle-repo", config.bundle_repo]
    other = repo.another_clone(tmp_path / "other")
    assert other.git("remote", "get-url", "origin") == str(repo.remote)
    assert main(["-C", str(repo.path), "release", *flags]) == 0
    capsys.readouterr()
    registrations = {
        n: remote_file(repo, f"registry/workflows/{n}.yaml") for n in ("alpha", "beta")
    }
    canonical = repo.remote.resolve().as_uri().removesuffix(".git")
    assert all(f"source-repository: {canonical}\n" in r for r in registrations.values())
    count = repo.remote_count()
    assert main(["-C", str(other.path), "release", *flags]) == 0
    assert "nothing committed, nothing pushed" in capsys.readouterr().out
    assert repo.remote_count() == count
    assert {n: remote_file(repo, f"registry/workflows/{n}.yaml") for n in registrations} == (
        registrations
    )


def test_register_push_from_parallel_results_after_the_remote_moved(
    setup: tuple[PlaybookRepo, Config],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CI register job: results from parallel publish jobs, then commit and push; the remote
    moved meanwhile (an unrelated merge), so the commit is rebuilt on the new head."""
    repo, config = setup
    before = repo.remote_count()
    results_dir = tmp_path / "publish-results"
    results_dir.mkdir()
    for name in ("alpha", "beta"):
        (r,) = publish(
            config, [name], jobs=1, dry_run=False, commit=repo.head(), source_repository=""
        )
        (results_dir / f"{name}.json").write_text(dump_results([r]))
    other = repo.another_clone(tmp_path / "other")
    (other.path / "NOTES.md").write_text("unrelated\n")
    other.commit_all("unrelated merge")
    other.push()
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", config.registry)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = main(["-C", str(repo.path), "register", str(results_dir), "--push"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "push rejected" in out.err
    assert repo.remote_count() == before + 2  # the unrelated merge and one release commit
    assert git(repo.remote, "log", "-1", "--format=%s", "refs/heads/main") == (
        "registry: release alpha 1.0.0, beta 2.0.0"
    )
    assert git(repo.remote, "merge-base", "--is-ancestor", other.head(), "refs/heads/main") == ""
    assert "| beta | 2.0.0 |" in summary.read_text()
    bundles_exist(config, repo)


@pytest.mark.parametrize("stray", [None, "playbooks/alpha/extra.sh", "NOTES.md"])
def test_register_push_reads_results_downloaded_into_the_checkout(
    setup: tuple[PlaybookRepo, Config],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stray: str | None,
) -> None:
    """The release workflow downloads the publish results to publish-results/ inside the
    checkout: those untracked inputs are not uncommitted release content, other files are."""
    repo, config = setup
    results_dir = repo.path / "publish-results"
    results_dir.mkdir()
    results = publish(
        config, ["alpha"], jobs=1, dry_run=False, commit=repo.head(), source_repository=""
    )
    (results_dir / "alpha.json").write_text(dump_results(results))
    if stray is not None:
        (repo.path / stray).write_text("untracked\n")
    monkeypatch.setenv("PLAYBOOKCTL_REGISTRY", config.registry)
    monkeypatch.chdir(repo.path)
    code = main(["register", "publish-results/", "--commit", "--push"])
    err = capsys.readouterr().err
    if stray is None:
        assert code == 0, err
        assert len(release_commits(repo)) == 1
    else:
        assert code == 1
        assert f"uncommitted changes ({stray})" in err
        assert release_commits(repo) == []


def test_unpushed_release_commit_is_rebuilt_when_the_remote_moved(
    setup: tuple[PlaybookRepo, Config], tmp_path: Path
) -> None:
    """Killed before the push, and meanwhile someone else pushed: the rerun carries the
    registrations of the unpushed commit over onto the new head (one release commit)."""
    repo, config = setup
    results = publish(
        config, ["alpha", "beta"], jobs=2, dry_run=False, commit=repo.head(), source_repository=""
    )
    outcome = register(config, results)
    assert GitRepo(repo.path).commit(
        commit_message(outcome.changes),
        list(GENERATED_PATHS),
        config.git_author_name,
        config.git_author_email,
    )
    other = repo.another_clone(tmp_path / "other")
    (other.path / "NOTES.md").write_text("meanwhile\n")
    other.commit_all("meanwhile")
    other.push()
    report = release(config, ReleaseOptions())
    assert report.pushed
    assert report.results == []  # nothing was published again
    assert any("unpushed release commit" in n for n in report.notes)
    assert len(release_commits(repo)) == 1
    assert git(repo.remote, "merge-base", "--is-ancestor", other.head(), "refs/heads/main") == ""
    bundles_exist(config, repo)


def test_published_but_unregistered_version_with_other_content_is_refused(
    setup: tuple[PlaybookRepo, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    """The registry holds alpha 1.0.0 from other content (a run that never registered it):
    the plan cannot see that, publish refuses, and nothing is registered for alpha."""
    repo, config = setup
    (first,) = publish(
        config, ["alpha"], jobs=1, dry_run=False, commit=repo.head(), source_repository=""
    )
    assert first.status is Action.PUSHED
    repo.write_playbook("alpha", "1.0.0", marker="other content")
    repo.commit_all("change alpha, same version")
    repo.push()
    report = release(config, ReleaseOptions())
    by_name = {r.name: r for r in report.results}
    assert by_name["alpha"].status is Action.REFUSED
    assert report.failed == ["alpha"]
    registered = read_registrations(config)
    assert "alpha" not in registered
    assert registered["beta"].version == "2.0.0"  # the others still land
    assert len(release_commits(repo)) == 1


@pytest.mark.parametrize("branch", [None, "playbookctl/registry"])
def test_a_release_whose_every_publish_is_refused_commits_and_pushes_nothing(
    setup: tuple[PlaybookRepo, Config],
    registry: LocalRegistry,
    branch: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The release logs in with a token that may only pull (a job without `packages: write`):
    the registry answers 403 to every push, so alpha and beta both fail. The plan also held the
    kustomization for the new ActionType; a commit of that alone, pushed by a run that released
    nothing, is not made: exit 1 naming both, the remote and the checkout as they were."""
    repo, config = setup
    reader = f"reader{next(_ids)}"
    registry.add_user(reader, "pull-only-token", pull_only=True)
    registry.login(Path(os.environ["DOCKER_CONFIG"]), reader, "pull-only-token")
    before_remote, before_head = repo.remote_head(), repo.head()
    monkeypatch.setenv(
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES",
        f'{{"{TEST_BASE_IMAGE}": "{config.base_image_overrides[TEST_BASE_IMAGE]}"}}',
    )
    args = ["-C", str(repo.path), "release", "--registry", config.registry]
    args += ["--image-repo", config.image_repo, "--bundle-repo", config.bundle_repo]
    args += ["--branch", branch] if branch else []
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "playbookctl: error: not released: alpha, beta" in err
    rows = [ln for ln in out.splitlines() if ln.startswith(("alpha ", "beta "))]
    assert len(rows) == 2, out
    for row in rows:
        assert "publish failed" in row
        assert "lack permission" in row
    assert "nothing committed, nothing pushed" in out
    assert repo.remote_head() == before_remote
    assert git(repo.remote, "branch", "--list") == "* main"
    assert repo.head() == before_head
    assert repo.git("branch", "--list") == "* main"
    assert repo.git("status", "--porcelain") == ""


def test_a_push_losing_a_race_with_cannot_lock_ref_is_rebuilt_and_retried(
    setup: tuple[PlaybookRepo, Config], tmp_path: Path
) -> None:
    """The remote answers `cannot lock ref ... is at X but expected Y` (GitHub's answer to
    racing pushes): the remote moved, so fetch, rebuild on its head, push again."""
    repo, config = setup
    theirs = arm_racing_push(repo, repo.another_clone(tmp_path / "other"))
    report = release(config, ReleaseOptions())
    assert report.pushed
    assert report.attempts == 2
    assert len(release_commits(repo)) == 1
    assert git(repo.remote, "merge-base", "--is-ancestor", theirs, "refs/heads/main") == ""
    assert repo.remote_head() == report.commit
    bundles_exist(config, repo)


def test_a_hook_refusing_in_the_words_of_a_lost_race_is_one_line_and_not_retried(
    setup: tuple[PlaybookRepo, Config],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A pre-receive hook refuses while printing `cannot lock ref ... but expected`: the ref
    did not move, so the release is refused once, in one line that names the refusal and
    quotes the hook, and nothing is rebuilt or pushed again."""
    repo, config = setup
    install_hook(repo, LYING_HOOK)
    before = repo.remote_head()
    monkeypatch.setenv(
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES",
        f'{{"{TEST_BASE_IMAGE}": "{config.base_image_overrides[TEST_BASE_IMAGE]}"}}',
    )
    args = ["-C", str(repo.path), "release", "--registry", config.registry]
    args += ["--image-repo", config.image_repo, "--bundle-repo", config.bundle_repo]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "push rejected" not in err  # never taken for a race, never retried
    (line,) = [ln for ln in err.splitlines() if "was rejected" in ln]
    assert line.startswith(
        "playbookctl: error: push to origin/main was rejected: [remote rejected] (pre-receive"
    )
    assert "cannot lock ref 'refs/heads/main'" in line
    assert "frozen for the audit" in line
    assert repo.remote_head() == before
    assert release_commits(repo) == []


def test_revision_is_the_last_commit_touching_the_playbook(
    setup: tuple[PlaybookRepo, Config],
) -> None:
    """Provenance names the commit that made the content, not the run's HEAD: a release from a
    later, unrelated commit pushes (and registers) the same bytes."""
    repo, config = setup
    made = repo.head()
    (repo.path / "NOTES.md").write_text("unrelated\n")
    later = repo.commit_all("unrelated")
    repo.push()
    report = release(config, ReleaseOptions())
    assert later != made
    with RegistryClient(config) as client:
        for r in report.results:
            assert r.commit == made
            assert r.bundle is not None
            back = read_bundle(client, f"{r.bundle.repository}@{r.bundle.digest}")
            assert back.annotations[ANNOTATION_REVISION] == made
    for name in ("alpha", "beta"):
        assert read_registrations(config)[name].source_commit == made


def test_publish_refuses_uncommitted_changes_in_a_playbook(
    setup: tuple[PlaybookRepo, Config],
) -> None:
    repo, config = setup
    (repo.path / "playbooks" / "alpha" / "extra.sh").write_text("#!/bin/sh\n")
    kw: dict[str, Any] = {"jobs": 1, "commit": repo.head(), "source_repository": ""}
    with pytest.raises(
        GitError,
        match=r"uncommitted changes in a playbook to publish "
        r"\(playbooks/alpha/extra\.sh\); .* commit them first",
    ):
        publish(config, ["alpha"], dry_run=False, **kw)
    with RegistryClient(config) as client:
        assert client.resolve(f"{config.image_ref('alpha')}:1.0.0") is None
    # Another playbook, clean, still publishes; a dry run writes nothing, so it may look.
    (beta,) = publish(config, ["beta"], dry_run=False, **kw)
    assert beta.status is Action.PUSHED
    # It is made from git's objects like the release: the untracked file is refused by lint,
    # with the reason, not left to differ from what the release would publish.
    (dry,) = publish(config, ["alpha"], dry_run=True, **kw)
    assert dry.status is Action.SKIPPED
    assert any("playbook.untracked" in m and "extra.sh" in m for m in dry.messages)
    # The internal escape hatch (for throwaway versions) publishes the tracked files as they
    # are on disk, uncommitted edits included.
    (repo.path / "playbooks" / "alpha" / "extra.sh").unlink()
    script = repo.path / "playbooks" / "alpha" / "remediate.sh"
    committed = script.read_text()
    script.write_text(committed + "# uncommitted\n")
    (alpha,) = publish(config, ["alpha"], dry_run=False, allow_dirty=True, **kw)
    assert alpha.status is Action.PUSHED
    script.write_text(committed)
    # A --commit whose copy of the playbook is not the checkout's is refused too.
    repo.write_playbook("beta", "2.1.0", marker="b2")
    newer = repo.commit_all("bump beta")
    repo.git("checkout", "--quiet", "HEAD~1")
    with pytest.raises(
        GitError,
        match=rf"the checkout is not commit {newer[:12]} "
        r"\(playbooks/beta/\S+ .*differ\)",
    ):
        publish(config, ["beta"], dry_run=False, **{**kw, "commit": newer})


def test_rename_whose_new_name_fails_lint_keeps_the_old_registration(
    setup: tuple[PlaybookRepo, Config],
) -> None:
    """A directory move (alpha -> alpha-two) without renaming metadata.name: lint refuses the
    new name, so publishing it fails; the old registration must not be removed on its own."""
    repo, config = setup
    release(config, ReleaseOptions())
    repo.git("mv", "playbooks/alpha", "playbooks/alpha-two")
    repo.git("commit", "--quiet", "-m", "rename alpha by moving its directory")
    repo.push()
    report = release(config, ReleaseOptions())
    assert report.failed == ["alpha-two"]
    rows = {r.name: r.what for r in report.rows()}
    assert "lint error" in rows["alpha-two"]
    assert rows["alpha"].startswith("held back (playbook deleted, but playbooks/alpha-two/ looks")
    assert "its workflow.yaml still names it" in rows["alpha"]
    listing = git(repo.remote, "ls-tree", "--name-only", "refs/heads/main:registry/workflows")
    assert listing.split() == ["alpha.yaml", "beta.yaml"]
    # Fixed: the new name is registered, and only then does the old registration go.
    path = repo.path / "playbooks" / "alpha-two"
    for rel in ("workflow.yaml", "rbac.yaml"):
        f = path / rel
        text = f.read_text().replace("name: alpha\n", "name: alpha-two\n")
        f.write_text(text.replace("alpha-runner", "alpha-two-runner"))
    repo.commit_all("finish the rename")
    repo.push()
    report = release(config, ReleaseOptions())
    assert report.failed == []
    assert report.pushed
    listing = git(repo.remote, "ls-tree", "--name-only", "refs/heads/main:registry/workflows")
    assert listing.split() == ["alpha-two.yaml", "beta.yaml"]
