"""The release workflow, played on this machine from .github/workflows/release.yaml itself.

tests/support/actions.py reads the jobs and steps from the file and runs them in order, with the
environment GitHub sets, against a loopback registry, a real Docker engine and a bare git
remote: plan, then one publish process per matrix entry (each in its own checkout, uploading its
result as an artifact), then register, which downloads the results, commits once and pushes.
pr.yaml's plan job is played against pull requests the gate must stop.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from playbookctl import platforms
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl.release import TRAILER
from playbookctl_dev.assembled_base import push_base_image
from playbookctl_dev.registry import LocalRegistry
from playbookctl_dev.sample_repo import write_action_type
from tests.support.actions import Event, JobRun, Runner, env_for_runner
from tests.support.gitrepos import (
    PYPROJECT,
    TEST_BASE_IMAGE,
    PlaybookRepo,
    clone,
    git,
    make_playbook_repo,
)

pytestmark = [
    pytest.mark.integration,
    # the first test of a worker also replays the whole release of the module fixture
    pytest.mark.timeout(900),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PLAYBOOKCTL = Path(sys.executable).parent / "playbookctl"
# Each job's GITHUB_TOKEN by the package access its permissions grant (GHCR takes the actor and
# the token as a login): what the registry lets it do follows. None must ever be printed.
TOKEN = "ghs_replayTokenThatMustNeverBePrinted0001"  # packages: write
READ_TOKEN = "ghs_replayReadTokenNeverPrinted00000002"  # packages: read
NO_PACKAGES_TOKEN = "ghs_replayNoPackagesNeverPrinted000003"  # none: the registry refuses it
TOKENS = {"write": TOKEN, "read": READ_TOKEN, "none": NO_PACKAGES_TOKEN}
NULL_SHA = "0" * 40
_pull_numbers = itertools.count(7)


@dataclass
class World:
    repo: PlaybookRepo
    env: dict[str, str]
    first: str  # the initial commit (alpha 1.0.0)
    second: str  # the pushed commit the release runs for (alpha 1.1.0, beta 2.0.0)
    runs: dict[str, list[JobRun]]
    runner: Runner
    released: str  # the remote's main right after the release

    def release_runner(self, tmp: Path, remote: Path | None = None) -> Runner:
        return Runner(
            WORKFLOWS / "release.yaml",
            remote or self.repo.remote,
            tmp,
            self.env,
            PLAYBOOKCTL,
            tokens=TOKENS,
        )


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    session_registry: LocalRegistry,
    docker_engine: str,
    base_image: str,
) -> Iterator[World]:
    registry = session_registry
    base = tmp_path_factory.mktemp("release-workflow")
    home = base / "home"
    home.mkdir()
    # Private packages: every job that talks to the registry logs in as GitHub's actor with
    # its own GITHUB_TOKEN, which may push, only pull, or nothing (the job's `packages`), as
    # GHCR takes them; a job without the permission or the login meets a 401.
    registry.allow_anonymous_pull(False)
    registry.add_user("release-bot", TOKEN)
    registry.add_user("release-bot", READ_TOKEN, pull_only=True, also=True)
    with pytest.MonkeyPatch.context() as mp:
        # The setup's own commits (module scope: the per-test identity is not in place yet).
        for key, value in env_for_runner(home, {}).items():
            mp.setenv(key, value)
        pyproject = (
            PYPROJECT.replace('"registry.example.invalid"', f'"{registry.host}"')
            .replace('"t/images"', '"workflow-replay/images"')
            .replace('"t/bundles"', '"workflow-replay/bundles"')
        )
        repo = make_playbook_repo(base / "repo", {"alpha": "1.0.0"}, pyproject=pyproject)
        first = repo.head()
        # The project's own ignore rules (.venv/ from `make venv`, ...), as a real repository has.
        shutil.copy(REPO_ROOT / ".gitignore", repo.path / ".gitignore")
        repo.write_playbook("alpha", "1.1.0", marker="v2")
        repo.write_playbook("beta", "2.0.0")
        write_action_type(repo.path, "Unused")  # an ActionType no playbook names
        second = repo.commit_all("bump alpha, add beta")
        repo.push()
        env = env_for_runner(
            home,
            {
                "DOCKER_HOST": docker_engine,
                "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES": json.dumps({TEST_BASE_IMAGE: base_image}),
            },
        )
        runner = Runner(
            WORKFLOWS / "release.yaml",
            repo.remote,
            base / "runner",
            env,
            PLAYBOOKCTL,
            tokens=TOKENS,
        )
        event = Event("push", second, payload={"before": first, "after": second})
        runs = runner.play(event)
        yield World(repo, env, first, second, runs, runner, repo.remote_head())


def explain(run: JobRun) -> str:
    step = run.failed_step()
    if step is None:
        return f"{run.name}: {run.result}"
    return f"{run.name}: step {step.label!r} exit {step.returncode}\n{step.stdout}\n{step.stderr}"


# -- the release -----------------------------------------------------------------------------


def test_plan_job_outputs_the_changed_playbooks_as_a_matrix(world: World) -> None:
    (plan,) = world.runs["plan"]
    assert plan.result == "success", explain(plan)
    assert plan.outputs["has-work"] == "true"
    assert json.loads(plan.outputs["matrix"]) == {
        "include": [
            {"name": "alpha", "version": "1.1.0", "playbooks": "alpha"},
            {"name": "beta", "version": "2.0.0", "playbooks": "beta"},
        ]
    }


def test_one_publish_process_per_playbook_each_uploads_its_result(world: World) -> None:
    runs = world.runs["publish"]
    assert [r.name for r in runs] == ["publish alpha", "publish beta"]
    for run in runs:
        assert run.result == "success", explain(run)
    artifacts = world.runner.run_dir / "artifacts"
    assert sorted(p.name for p in artifacts.iterdir()) == ["publish-alpha", "publish-beta"]
    for name, version in (("alpha", "1.1.0"), ("beta", "2.0.0")):
        files = sorted(p.name for p in (artifacts / f"publish-{name}").iterdir())
        assert files == [f"{name}.json"]
        payload = json.loads((artifacts / f"publish-{name}" / f"{name}.json").read_text())
        (result,) = payload["results"]
        assert (result["name"], result["version"], result["status"]) == (name, version, "pushed")
        assert result["commit"] == world.second
        assert result["source_repository"] == "https://github.com/example/playbooks"


def test_the_token_is_never_printed_or_uploaded(world: World) -> None:
    texts = [s.stdout + s.stderr for runs in world.runs.values() for r in runs for s in r.steps]
    texts += [p.read_text() for p in (world.runner.run_dir / "artifacts").rglob("*.json")]
    assert texts
    assert not [t for t in texts if any(token in t for token in TOKENS.values())]


def test_register_lands_exactly_one_commit_listing_every_digest(world: World) -> None:
    (register,) = world.runs["register"]
    assert register.result == "success", explain(register)
    head = world.released
    assert git(world.repo.remote, "rev-list", "--count", f"{world.second}..{head}") == "1"
    assert git(world.repo.remote, "rev-parse", f"{head}^") == world.second
    message = git(world.repo.remote, "log", "-1", "--format=%B", head)
    assert TRAILER in message.splitlines()
    artifacts = world.runner.run_dir / "artifacts"
    for name, version in (("alpha", "1.1.0"), ("beta", "2.0.0")):
        (result,) = json.loads((artifacts / f"publish-{name}" / f"{name}.json").read_text())[
            "results"
        ]
        digest = result["bundle"]["digest"]
        assert digest.startswith("sha256:")
        assert f"{name} {version} {digest}" in message.splitlines()
        registration = list(
            yaml.safe_load_all(
                git(world.repo.remote, "show", f"{head}:registry/workflows/{name}.yaml")
            )
        )[-1]
        assert registration["spec"]["version"] == version
        assert registration["spec"]["execution"]["bundle"].endswith("@" + digest)


def test_registered_bundles_verify_against_the_registry(world: World, tmp_path: Path) -> None:
    checkout = clone(world.repo.remote, tmp_path / "verify")
    git(checkout, "checkout", "--quiet", world.released)
    done = subprocess.run(
        [str(PLAYBOOKCTL), "verify", "--format", "human"],
        cwd=checkout,
        env={
            **world.env,
            "PLAYBOOKCTL_REGISTRY_USERNAME": "release-bot",
            "PLAYBOOKCTL_REGISTRY_PASSWORD": READ_TOKEN,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified 2 registration(s), 2 bundle(s), 2 image(s)" in done.stdout


def test_step_summary_is_a_markdown_table_of_playbooks_versions_digests(world: World) -> None:
    (register,) = world.runs["register"]
    summary = register.summary
    head = world.released
    message = git(world.repo.remote, "log", "-1", "--format=%B", head)
    digests = {ln.split()[0]: ln.split()[2] for ln in message.splitlines() if " sha256:" in ln}
    lines = summary.splitlines()
    assert "| playbook | version | bundle digest | what happened |" in lines
    for name, version in (("alpha", "1.1.0"), ("beta", "2.0.0")):
        row = [ln for ln in lines if ln.startswith(f"| {name} |")]
        assert len(row) == 1, summary
        assert row[0].startswith(f"| {name} | {version} | `{digests[name]}` |")
    assert f"Commit `{head}`" in summary


@dataclass(frozen=True)
class NoopRun:
    event: str
    before: str | None  # "first", "second" (commits of the world) or a literal SHA
    inputs: tuple[tuple[str, str], ...] = ()


@pytest.mark.parametrize(
    "case",
    [
        NoopRun("push", "second"),
        NoopRun("push", NULL_SHA),
        NoopRun("workflow_dispatch", None, (("base", ""),)),
        NoopRun("workflow_dispatch", None, (("base", "first"),)),
    ],
    ids=["push-of-release-head", "first-push-all-zero-before", "by-hand-no-base", "by-hand-base"],
)
def test_replay_without_playbook_change_ends_cleanly(
    world: World, tmp_path: Path, case: NoopRun
) -> None:
    assert world.released != world.second, "the release did not land"
    head = world.repo.remote_head()  # the release, or a later one of this module
    names = {"first": world.first, "second": world.second}
    payload = {}
    if case.before is not None:
        payload = {"before": names.get(case.before, case.before), "after": head}
    event = Event(
        case.event,
        head,
        payload=payload,
        inputs={k: names.get(v, v) for k, v in case.inputs},
    )
    runs = world.release_runner(tmp_path).play(event)
    (plan,) = runs["plan"]
    assert plan.result == "success", explain(plan)
    assert plan.outputs["has-work"] == "false"
    assert json.loads(plan.outputs["matrix"]) == {"include": []}
    assert [r.result for r in runs["publish"]] == ["skipped"]
    assert [r.result for r in runs["register"]] == ["skipped"]
    assert world.repo.remote_head() == head


# -- the pull-request gate -------------------------------------------------------------------


def _hand_edit_registration(work: Path) -> None:
    path = work / "registry" / "workflows" / "alpha.yaml"
    path.write_text(path.read_text().replace("Restarts the target", "Restarts it"))


def _hand_edit_kustomization(work: Path) -> None:
    path = work / "registry" / "kustomization.yaml"
    path.write_text(path.read_text() + "# tweaked\n")


def _change_without_bump(work: Path) -> None:
    PlaybookRepo(work, work).write_playbook("alpha", "1.1.0", marker="v3")


def _change_with_bump(work: Path) -> None:
    PlaybookRepo(work, work).write_playbook("alpha", "1.2.0", marker="v3")


def _delete_unused_action_type(work: Path) -> None:
    (work / "registry" / "action-types" / "unused.yaml").unlink()


def _delete_unused_action_type_and_regenerate(work: Path) -> None:
    _delete_unused_action_type(work)
    subprocess.run([str(PLAYBOOKCTL), "-C", str(work), "register"], check=True, timeout=60)


FOREIGN = "registry.attacker.example:5000/them"


def _forge_registration(work: Path, version: str = "1.2.0") -> None:
    """Bump alpha and have register write its registration from a publish result of one's own
    (a bundle on another host): exactly what register writes from that result, so neither
    `verify --offline` nor a regeneration can tell; only a release may write a registration."""
    from playbookctl.config import load_config
    from playbookctl.playbook import source_hash
    from playbookctl.results import Action, Artifact, PublishResult, dump_results

    PlaybookRepo(work, work).write_playbook("alpha", version, marker="forged")
    config = load_config(work)
    digest = "sha256:" + "ab" * 32
    result = PublishResult(
        name="alpha",
        version=version,
        source_hash=source_hash(work / "playbooks" / "alpha", config.platforms),
        image=Artifact(f"{FOREIGN}/images/alpha", version, digest, Action.BUILT),
        bundle=Artifact(f"{FOREIGN}/bundles/alpha", version, digest, Action.PUSHED),
        status=Action.PUSHED,
        commit="c0ffee" * 6 + "c0ff",
    )
    results = work.parent / "forged-results.json"
    results.write_text(dump_results([result]))
    subprocess.run(
        [str(PLAYBOOKCTL), "-C", str(work), "register", str(results)], check=True, timeout=60
    )
    assert (
        f"bundle: {FOREIGN}/bundles/alpha:{version}@"
        in (work / "registry" / "workflows" / "alpha.yaml").read_text()
    )


def _pull_request(world: World, tmp_path: Path, branch: str, edit: Callable[[Path], None]) -> Event:
    """A pull request of `edit` from `branch`: the event GitHub runs pr.yaml for."""
    number = next(_pull_numbers)
    work = clone(world.repo.remote, tmp_path / "contributor")
    git(work, "checkout", "--quiet", "-b", branch)
    edit(work)
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "a contribution")
    git(work, "push", "--quiet", "origin", branch)
    # GitHub runs pull_request workflows on a merge of the branch into its base.
    git(work, "checkout", "--quiet", "main")
    git(work, "merge", "--quiet", "--no-ff", "--no-edit", branch)
    merge = git(work, "rev-parse", "HEAD")
    git(work, "push", "--quiet", "origin", f"HEAD:refs/pull/{number}/merge")
    return Event(
        "pull_request",
        merge,
        ref=f"refs/pull/{number}/merge",
        payload={"pull_request": {"number": number, "title": "a contribution"}},
        base_ref="main",
        head_ref=branch,
    )


@dataclass(frozen=True)
class PullRequest:
    edit: Callable[[Path], None]
    plan: str  # in the plan step's stderr; "" when the step passes
    registry: str  # in the registry job's annotations; "" when it passes
    matrix: tuple[tuple[str, str], ...] = ()  # (name, version) the build job builds


@pytest.mark.parametrize(
    "case",
    [
        PullRequest(
            _hand_edit_registration,
            "registry/workflows/alpha.yaml: generated by playbookctl",
            "title=verify.hand-edit::RemediationWorkflow kubernaut-system/alpha: "
            "spec.description.what",
        ),
        PullRequest(
            _hand_edit_kustomization,
            "registry/kustomization.yaml: generated by",
            "title=verify.kustomization::not as register writes it",
        ),
        PullRequest(
            _change_without_bump,
            "refused: alpha: content changed but version 1.1.0",
            "title=verify.source-changed::",
        ),
        PullRequest(_change_with_bump, "", "", (("alpha", "1.2.0"),)),
        # Argo CD would fail on a kustomization naming a missing file: the gate stops it...
        PullRequest(
            _delete_unused_action_type,
            "",
            "title=verify.kustomization::action-types/unused.yaml does not exist",
        ),
        # ...and accepts it with the regenerated kustomization (`playbookctl register`).
        PullRequest(_delete_unused_action_type_and_regenerate, "", ""),
        # A registration the release did not make: refused by plan, naming the file.
        PullRequest(
            _forge_registration,
            "registry/workflows/alpha.yaml: generated by playbookctl register; do not edit it "
            "by hand (a release rewrites it): registers version 1.2.0, but 1.1.0 is the one "
            "registered at",
            "",
        ),
    ],
    ids=[
        "registry-workflow-edited",
        "kustomization-edited",
        "no-version-bump",
        "bumped",
        "action-type-deleted",
        "action-type-deleted-regenerated",
        "registration-forged",
    ],
)
def test_pull_request_gate(
    world: World,
    registry: LocalRegistry,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    case: PullRequest,
) -> None:
    main_before = world.repo.remote_head()
    event = _pull_request(world, tmp_path, f"contrib/{request.node.callspec.id}", case.edit)
    runner = Runner(WORKFLOWS / "pr.yaml", world.repo.remote, tmp_path / "runner", world.env,
                    PLAYBOOKCTL, tokens=TOKENS)  # fmt: skip
    # The registry, plan and build jobs (lint and `make test` are not replayed here).
    runs = runner.play(event, jobs=["registry", "plan", "build"])
    (reg_job,) = runs["registry"]
    verify_step = reg_job.steps[-1]
    assert verify_step.label == ".venv/bin/playbookctl verify --offline"
    if case.registry:
        assert reg_job.result == "failure"
        assert verify_step.returncode == 1, explain(reg_job)
        assert case.registry in verify_step.stdout, explain(reg_job)
    else:
        assert reg_job.result == "success", explain(reg_job)
    (plan,) = runs["plan"]
    step = plan.steps[-1]
    assert step.label.startswith(".venv/bin/playbookctl plan")
    if not case.plan:
        assert plan.result == "success", explain(plan)
        assert json.loads(plan.outputs["matrix"]) == {
            "include": [{"name": n, "version": v, "playbooks": n} for n, v in case.matrix]
        }
        if not case.matrix:
            assert [r.result for r in runs["build"]] == ["skipped"]
        for name, version in case.matrix:
            (build,) = runs["build"]
            assert build.name == f"build {name} (no push)"
            assert build.result == "success", explain(build)
            assert f"{name} {version}: dry-run" in build.steps[-1].stdout
            with RegistryClient(Config(root=tmp_path, registry=registry.host)) as client:
                for kind in ("images", "bundles"):
                    repository = f"{registry.host}/workflow-replay/{kind}/{name}"
                    assert client.resolve(f"{repository}:1.1.0") is not None  # released
                    assert client.resolve(f"{repository}:{version}") is None  # only built
    else:
        assert plan.result == "failure"
        assert step.returncode == 1, explain(plan)
        assert case.plan in step.stderr, explain(plan)
        assert [r.result for r in runs["build"]] == ["skipped"]
    assert world.repo.remote_head() == main_before


def test_a_pull_request_whose_token_cannot_read_the_packages_fails_its_build(
    world: World, registry: LocalRegistry, tmp_path: Path
) -> None:
    """A fork's pull request where the token may not read the private packages (GitHub caps a
    fork's token at read, and a repository or package may grant it less): the build job fails,
    naming the registry and the refused login, instead of passing unchecked; the gate's other
    jobs read no registry and pass."""
    main_before = world.repo.remote_head()
    event = _pull_request(world, tmp_path, "fork/bumped", _change_with_bump)
    fork = dict.fromkeys(("none", "read", "write"), "ghs_aForkTokenTheRegistryRefuses0004")
    runner = Runner(WORKFLOWS / "pr.yaml", world.repo.remote, tmp_path / "runner", world.env,
                    PLAYBOOKCTL, tokens=fork)  # fmt: skip
    runs = runner.play(event, jobs=["registry", "plan", "build"])
    (reg_job,) = runs["registry"]
    (plan,) = runs["plan"]
    assert reg_job.result == plan.result == "success", explain(reg_job) + explain(plan)
    (build,) = runs["build"]
    assert build.result == "failure"
    step = build.failed_step()
    assert step is not None
    assert step.label.startswith(".venv/bin/playbookctl publish --dry-run")
    output = step.stdout + step.stderr
    refused = f"registry {registry.host}: authentication failed at its token service (HTTP 401)"
    assert f"[alpha] failed: {refused}; check the credentials" in output, explain(build)
    assert world.repo.remote_head() == main_before


def test_the_release_refuses_a_registration_it_did_not_write(world: World, tmp_path: Path) -> None:
    """A forged registration that reached main (merged past the gate, or pushed): the plan job
    checks every registration it would skip against the registry, refuses it, and nothing is
    published or registered."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(world.repo.remote), str(remote))
    work = clone(remote, tmp_path / "work")
    before = git(work, "rev-parse", "HEAD")
    _forge_registration(work)
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "alpha 1.2.0\n\nReleased-by: playbookctl")
    git(work, "push", "--quiet", "origin", "main")
    forged = git(work, "rev-parse", "HEAD")
    runs = world.release_runner(tmp_path / "runner", remote).play(
        Event("push", forged, payload={"before": before, "after": forged})
    )
    (plan,) = runs["plan"]
    assert plan.result == "failure"
    step = plan.failed_step()
    assert step is not None
    assert "--verify-registrations" in step.label
    assert (
        "refused: alpha: registry/workflows/alpha.yaml is not borne out by the registry (its "
        f"bundle {FOREIGN}/bundles/alpha:1.2.0@"
    ) in step.stderr, explain(plan)
    assert [r.result for r in runs["publish"]] == ["skipped"]
    assert [r.result for r in runs["register"]] == ["skipped"]
    assert git(remote, "rev-parse", "refs/heads/main") == forged


# -- deletions and partial failures ------------------------------------------------------------


def test_deleting_a_playbook_unregisters_it_without_publishing(
    world: World, tmp_path: Path
) -> None:
    work = clone(world.repo.remote, tmp_path / "work")
    before = git(work, "rev-parse", "HEAD")
    shutil.rmtree(work / "playbooks" / "beta")
    git(work, "commit", "--quiet", "-am", "delete beta")
    git(work, "push", "--quiet", "origin", "main")
    deleted = git(work, "rev-parse", "HEAD")

    event = Event("push", deleted, payload={"before": before, "after": deleted})
    runs = world.release_runner(tmp_path / "runner").play(event)
    (plan,) = runs["plan"]
    assert plan.result == "success", explain(plan)
    assert plan.outputs["has-work"] == "false"
    assert [r.result for r in runs["publish"]] == ["skipped"]
    (register,) = runs["register"]
    assert register.result == "success", explain(register)
    download = [s for s in register.steps if s.label.startswith("actions/download-artifact")]
    assert [s.status for s in download] == ["skipped"]
    head = world.repo.remote_head()
    assert git(world.repo.remote, "rev-parse", f"{head}^") == deleted
    message = git(world.repo.remote, "log", "-1", "--format=%B", head)
    assert "beta: removed (playbook deleted)" in message.splitlines()
    listing = git(world.repo.remote, "ls-tree", "--name-only", f"{head}:registry/workflows")
    assert listing.split() == ["alpha.yaml"]
    kustomization = yaml.safe_load(
        git(world.repo.remote, "show", f"{head}:registry/kustomization.yaml")
    )
    assert "workflows/beta.yaml" not in kustomization["resources"]


@pytest.mark.parametrize("change", ["delete", "add"])
def test_an_action_type_change_alone_is_released(world: World, tmp_path: Path, change: str) -> None:
    """Deleting an unused ActionType (or adding one) and nothing else: the release regenerates
    the kustomization, so it never names a missing file (Argo CD would stop syncing)."""
    work = clone(world.repo.remote, tmp_path / "work")
    before = git(work, "rev-parse", "HEAD")
    path = work / "registry" / "action-types" / "unused.yaml"
    if change == "delete":
        if not path.exists():
            write_action_type(work, "Unused")
            git(work, "add", "--all")
            git(work, "commit", "--quiet", "-m", "add Unused")
            git(work, "push", "--quiet", "origin", "main")
            world.release_runner(tmp_path / "setup").play(
                Event("push", git(work, "rev-parse", "HEAD"), payload={"before": before})
            )
            git(work, "pull", "--quiet", "origin", "main")
            before = git(work, "rev-parse", "HEAD")
        path.unlink()
    else:
        write_action_type(work, "BrandNew")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", f"{change} an ActionType")
    git(work, "push", "--quiet", "origin", "main")
    pushed = git(work, "rev-parse", "HEAD")
    runs = world.release_runner(tmp_path / "runner").play(
        Event("push", pushed, payload={"before": before, "after": pushed})
    )
    (plan,) = runs["plan"]
    assert plan.result == "success", explain(plan)
    assert (plan.outputs["has-work"], plan.outputs["has-changes"]) == ("false", "true")
    (register,) = runs["register"]
    assert register.result == "success", explain(register)
    head = world.repo.remote_head()
    assert git(world.repo.remote, "rev-parse", f"{head}^") == pushed
    message = git(world.repo.remote, "log", "-1", "--format=%B", head)
    assert message.startswith("registry: regenerate kustomization")
    listed = yaml.safe_load(git(world.repo.remote, "show", f"{head}:registry/kustomization.yaml"))
    files = git(world.repo.remote, "ls-tree", "-r", "--name-only", f"{head}:registry").split()
    for item in listed["resources"]:
        assert item in files
    assert ("action-types/brand-new.yaml" in listed["resources"]) is (change == "add")
    # Unused is gone only where this test (or, on the same worker, [delete]) removed it: the
    # module's world is shared, and pytest-xdist may run [add] on a worker that never ran
    # [delete]. Either way the kustomization names it exactly when the file is there.
    unused = "action-types/unused.yaml"
    assert (unused in listed["resources"]) is (change == "add" and unused in files)


def test_a_cancelled_release_is_healed_by_the_next(world: World, tmp_path: Path) -> None:
    """alpha's release is cancelled after publishing (its register job never runs); the next
    push changes only beta, and its release registers both: the plan compares every playbook
    with registry/, not only those changed since `before`."""
    work = clone(world.repo.remote, tmp_path / "work")
    before = git(work, "rev-parse", "HEAD")
    PlaybookRepo(work, work).write_playbook("alpha", "1.5.0", marker="healed")
    git(work, "commit", "--quiet", "-am", "bump alpha")
    git(work, "push", "--quiet", "origin", "main")
    first = git(work, "rev-parse", "HEAD")
    runs = world.release_runner(tmp_path / "cancelled").play(
        Event("push", first, payload={"before": before, "after": first}), jobs=["plan", "publish"]
    )
    assert [r.result for r in runs["publish"]] == ["success"]
    assert world.repo.remote_head() == first  # nothing registered: the run was cut short

    PlaybookRepo(work, work).write_playbook("beta", "2.5.0", marker="next")
    git(work, "add", "--all")  # beta may be new again (an earlier test deletes it)
    git(work, "commit", "--quiet", "-m", "bump beta")
    git(work, "push", "--quiet", "origin", "main")
    second = git(work, "rev-parse", "HEAD")
    runs = world.release_runner(tmp_path / "next").play(
        Event("push", second, payload={"before": first, "after": second})
    )
    (plan,) = runs["plan"]
    entries = json.loads(plan.outputs["matrix"])["include"]
    assert [(e["name"], e["version"]) for e in entries] == [("alpha", "1.5.0"), ("beta", "2.5.0")]
    (alpha, beta) = runs["publish"]
    assert alpha.result == beta.result == "success", explain(alpha) + explain(beta)
    (register,) = runs["register"]
    assert register.result == "success", explain(register)
    head = world.repo.remote_head()
    assert git(world.repo.remote, "rev-parse", f"{head}^") == second
    message = git(world.repo.remote, "log", "-1", "--format=%B", head)
    assert message.startswith("registry: release alpha 1.5.0, beta 2.5.0")
    # publish reused what the cancelled run pushed for alpha
    artifact = runs["publish"][0].workspace / "publish-results" / "alpha.json"
    assert json.loads(artifact.read_text())["results"][0]["status"] == "reused"


def test_first_push_with_one_broken_playbook_registers_the_other(
    world: World, registry: LocalRegistry, tmp_path: Path
) -> None:
    """A branch's first push (GitHub's all-zero `before`): everything is planned; the broken
    playbook's publish job fails and uploads nothing, register still lands the good one."""
    pyproject = (
        PYPROJECT.replace('"registry.example.invalid"', f'"{registry.host}"')
        .replace('"t/images"', '"workflow-partial/images"')
        .replace('"t/bundles"', '"workflow-partial/bundles"')
    )
    repo = make_playbook_repo(tmp_path / "repo", {"alpha": "1.0.0"}, pyproject=pyproject)
    shutil.copy(REPO_ROOT / ".gitignore", repo.path / ".gitignore")
    broken = repo.write_playbook("gamma", "1.0.0") / "Containerfile"
    broken.write_text(broken.read_text().replace("USER ", "RUN false\nUSER ", 1))
    pushed = repo.commit_all("add gamma, which does not build")
    repo.push()

    event = Event("push", pushed, payload={"before": NULL_SHA, "after": pushed})
    runs = world.release_runner(tmp_path / "runner", repo.remote).play(event)
    (plan,) = runs["plan"]
    assert json.loads(plan.outputs["matrix"]) == {
        "include": [
            {"name": "alpha", "version": "1.0.0", "playbooks": "alpha"},
            {"name": "gamma", "version": "1.0.0", "playbooks": "gamma"},
        ]
    }
    alpha, gamma = runs["publish"]
    assert alpha.result == "success", explain(alpha)
    assert gamma.result == "failure"
    failed = gamma.failed_step()
    assert failed is not None
    assert failed.label.startswith(".venv/bin/playbookctl publish")
    assert "RUN false" in failed.stdout + failed.stderr, explain(gamma)
    assert gamma.steps[-1].status == "skipped"  # its upload: no artifact
    (register,) = runs["register"]
    assert register.result == "success", explain(register)
    head = repo.remote_head()
    assert git(repo.remote, "rev-parse", f"{head}^") == pushed
    message = git(repo.remote, "log", "-1", "--format=%B", head)
    assert message.startswith("registry: release alpha 1.0.0\n")
    listing = git(repo.remote, "ls-tree", "--name-only", f"{head}:registry/workflows")
    assert listing.split() == ["alpha.yaml"]


def test_the_next_release_downloads_no_base_layer_its_cache_holds(
    world: World, registry: LocalRegistry, tmp_path: Path
) -> None:
    """release.yaml's actions/cache step. Every publish job runs on a fresh runner (an empty
    HOME), so each one would download every base layer to learn its directories and users; a
    release saves playbookctl's cache, and the next one's publish jobs restore it and download
    none (counted at the base's registry, as GHCR's or Docker Hub's bill would)."""
    with LocalRegistry(tls=False, access_log=True, workdir=tmp_path / "hub") as hub:
        base = f"{hub.host}/library/base:1"
        push_base_image(hub.host, base)
        with RegistryClient(Config(root=tmp_path, registry=hub.host)) as client:
            layers: set[str] = set()
            for _platform, child in platforms.index_entries(client, base):
                manifest = json.loads(client.get_manifest(f"{hub.host}/library/base@{child}")[0])
                layers |= {layer["digest"] for layer in manifest["layers"]}
        assert layers

        def base_layer_gets(since: int) -> list[str]:
            return [
                p
                for m, p in hub.requests()[since:]
                if m == "GET" and any(p.endswith(f"/blobs/{d}") for d in layers)
            ]

        pyproject = (
            PYPROJECT.replace('"registry.example.invalid"', f'"{registry.host}"')
            .replace('"t/images"', '"workflow-cache/images"')
            .replace('"t/bundles"', '"workflow-cache/bundles"')
        )
        repo = make_playbook_repo(
            tmp_path / "repo", {"alpha": "1.0.0", "beta": "1.0.0"}, pyproject=pyproject
        )
        shutil.copy(REPO_ROOT / ".gitignore", repo.path / ".gitignore")
        pushed = repo.commit_all("ignore rules")
        repo.push()
        env = {**world.env, "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES": json.dumps({TEST_BASE_IMAGE: base})}
        # One runner for both: its actions/cache entries last across runs, as a repository's do.
        runner = Runner(WORKFLOWS / "release.yaml", repo.remote, tmp_path / "runner", env,
                        PLAYBOOKCTL, tokens=TOKENS)  # fmt: skip

        def release(before: str, after: str) -> tuple[dict[str, list[JobRun]], list[str]]:
            seen = len(hub.requests())
            runs = runner.play(Event("push", after, payload={"before": before, "after": after}))
            for run in [*runs["publish"], *runs["register"]]:
                assert run.result == "success", explain(run)
            assert len(runs["publish"]) == 2
            return runs, base_layer_gets(seen)

        first, gets = release(NULL_SHA, pushed)
        # Cold: each publish job reads each base layer once (its summary, and the copy into the
        # images' registry from the same bytes).
        per_layer = Counter(p.rsplit("/", 1)[1] for p in gets)
        assert per_layer == dict.fromkeys(layers, len(first["publish"])), gets

        repo.git("pull", "--quiet", "origin", "main")
        before = repo.head()
        repo.write_playbook("alpha", "1.1.0", marker="again")
        repo.write_playbook("beta", "1.1.0", marker="again")
        after = repo.commit_all("bump alpha and beta")
        repo.push()
        second, gets = release(before, after)
        assert gets == []
        # The first release missed and saved; the second hit the same key (same Containerfiles).
        for runs, hit in ((first, "false"), (second, "true")):
            for job in runs["publish"]:
                (restore,) = [s for s in job.steps if s.label.startswith("actions/cache@")]
                assert restore.outputs == {"cache-hit": hit}, explain(job)


def test_a_release_run_again_with_re_run_all_jobs_ends_green(
    world: World, registry: LocalRegistry, tmp_path: Path
) -> None:
    """GitHub's "Re-run all jobs" (say after a register that could not push) is the same run, so
    each publish job uploads its result under a name the first attempt took, which
    actions/upload-artifact v4 refuses (409 Conflict) unless told to overwrite: the re-run went
    red at every publish job although nothing was wrong. Now it republishes (reusing what is
    published), and register, with nothing new, commits nothing."""
    pyproject = (
        PYPROJECT.replace('"registry.example.invalid"', f'"{registry.host}"')
        .replace('"t/images"', '"workflow-rerun/images"')
        .replace('"t/bundles"', '"workflow-rerun/bundles"')
    )
    repo = make_playbook_repo(tmp_path / "repo", {"alpha": "1.0.0"}, pyproject=pyproject)
    shutil.copy(REPO_ROOT / ".gitignore", repo.path / ".gitignore")
    pushed = repo.commit_all("ignore rules")
    repo.push()
    runner = world.release_runner(tmp_path / "runner", repo.remote)
    runs = runner.play(Event("push", pushed, payload={"before": NULL_SHA, "after": pushed}))
    for run in [*runs["publish"], *runs["register"]]:
        assert run.result == "success", explain(run)
    released = repo.remote_head()
    assert released != pushed

    again = runner.rerun(runs, jobs=list(runs))
    (plan,) = again["plan"]
    assert plan.result == "success", explain(plan)
    (publish,) = again["publish"]
    assert publish.result == "success", explain(publish)
    assert publish is not runs["publish"][0]  # it ran again, on a fresh runner
    (register,) = again["register"]
    assert register.result == "success", explain(register)
    assert repo.remote_head() == released  # nothing new: no commit
    artifact = runner.run_dir / "artifacts" / "publish-alpha" / "alpha.json"
    assert json.loads(artifact.read_text())["results"][0]["status"] == "reused"
