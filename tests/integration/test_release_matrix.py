"""release.yaml over more than 256 playbooks (a first release, a manual run over everything), and
pr.yaml over the pull request that brought them.

GitHub refuses a matrix of more than 256 jobs (the local runner does too), so plan batches the
playbooks into at most 256 entries and each publish job publishes its batch. Building 300 images
would take minutes on a shared machine, so the fast path seeds the registry with what a previous
release pushed (a minimal image per playbook carrying its source-hash label, and the bundle the
playbook renders to around it, both made by playbookctl's own code): every publish job then goes
through the real reuse path (tags read, image label and bundle content checked) and register lands
all 300 in one commit; the pull request's build jobs dry-run their batches the same way. The
pyproject sets no image-repo/bundle-repo, so the repositories follow GITHUB_REPOSITORY's owner, as
on GitHub.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from playbookctl import build
from playbookctl.bundle import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_HASH,
    ANNOTATION_VERSION,
    build_bundle,
    push_bundle,
)
from playbookctl.config import load_config
from playbookctl.oci import RegistryClient
from playbookctl.playbook import load_playbook, source_hash
from playbookctl.render import render_pipeline
from playbookctl_dev.registry import LocalRegistry
from tests.support.actions import Event, Runner, env_for_runner
from tests.support.gitrepos import make_playbook_repo
from tests.support.images import push_labelled_index

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(900),  # 257 playbooks published and registered: minutes on a busy machine
]

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKCTL = Path(sys.executable).parent / "playbookctl"
COUNT = 300

# Each job's GITHUB_TOKEN by its `packages` permission (tests/support/actions.py).
TOKENS = {
    "write": "ghs_theReleaseJobsTokenForTheTestRegistry01",
    "read": "ghs_aReadingJobsTokenForTheTestRegistry002",
    "none": "ghs_aTokenTheTestRegistryDoesNotKnow000003",
}


def test_more_than_256_playbooks_are_batched_into_at_most_256_jobs(
    tmp_path: Path, registry: LocalRegistry
) -> None:
    owner = f"batch{uuid.uuid4().hex[:8]}"
    # Built by the engine (never run here: every image is found published), so each publish
    # looks its tags up before making anything. An assembled playbook whose version git does
    # not register is made first and its tag looked up once, just before it would be written
    # (test_assemble_publish.py): for 300 that needs their base, which this test is not about.
    pyproject = (
        '[project]\nname = "many"\nversion = "0"\n\n'
        f'[tool.playbookctl]\nregistry = "{registry.host}"\nassemble = "never"\n'
    )
    names = [f"pb{i:03d}" for i in range(COUNT)]
    repo = make_playbook_repo(tmp_path / "repo", dict.fromkeys(names, "1.0.0"), pyproject=pyproject)
    shutil.copy(REPO_ROOT / ".gitignore", repo.path / ".gitignore")
    repo.commit_all("ignore rules")
    repo.push()
    head = repo.head()

    # The fast path: what an earlier (cancelled) release already pushed for every playbook.
    config = load_config(repo.path, {"GITHUB_REPOSITORY": f"{owner}/playbooks"})
    assert config.bundle_repo == f"{owner}/kubernaut-playbooks/bundles"
    with RegistryClient(config) as client:
        for name in names:
            pb = load_playbook(config.playbooks_dir / name, config.root, config.max_file_bytes)
            digest = source_hash(pb.dir)
            image_ref = f"{config.image_ref(name)}:1.0.0"
            image = push_labelled_index(client, image_ref, {build.SOURCE_HASH_LABEL: digest})
            rendered = render_pipeline(pb, config, image=f"{image_ref}@{image}")
            bundle = build_bundle(
                [rendered.data],
                {
                    ANNOTATION_SOURCE: f"https://github.com/{owner}/playbooks",
                    ANNOTATION_REVISION: head,
                    ANNOTATION_VERSION: "1.0.0",
                    ANNOTATION_SOURCE_HASH: digest,
                },
            )
            push_bundle(client, f"{config.bundle_ref(name)}:1.0.0", bundle)

    # Private packages: each job logs in as GitHub's actor with its own token, which pushes
    # (publish), only pulls (plan, register) or is refused, as the job's `packages` says.
    registry.allow_anonymous_pull(False)
    registry.add_user("release-bot", TOKENS["write"])
    registry.add_user("release-bot", TOKENS["read"], pull_only=True, also=True)
    home = tmp_path / "home"
    home.mkdir()
    runner = Runner(
        REPO_ROOT / ".github" / "workflows" / "release.yaml",
        repo.remote,
        tmp_path / "runner",
        env_for_runner(home, {}),
        PLAYBOOKCTL,
        repository=f"{owner}/playbooks",
        tokens=TOKENS,
        max_parallel=6,
    )

    # The pull request that brought them (onto a `base` without playbooks): pr.yaml's plan
    # batches them as the release's does, and each build job dry-runs its batch's playbooks
    # (all found published, so nothing is built).
    repo.git("checkout", "--quiet", "--orphan", "base")
    repo.git("rm", "-r", "--quiet", "--cached", "playbooks")
    repo.git("commit", "--quiet", "-m", "before the playbooks")
    repo.git("push", "--quiet", "origin", "base", f"{head}:refs/pull/1/merge")
    repo.git("checkout", "--quiet", "--force", "main")
    gate = Runner(
        REPO_ROOT / ".github" / "workflows" / "pr.yaml",
        repo.remote,
        tmp_path / "pr-runner",
        env_for_runner(home, {}),
        PLAYBOOKCTL,
        repository=f"{owner}/playbooks",
        tokens=TOKENS,
        max_parallel=6,
    )
    pull = Event(
        "pull_request",
        head,
        ref="refs/pull/1/merge",
        payload={"pull_request": {"number": 1}},
        base_ref="base",
        head_ref="many",
    )
    checks = gate.play(pull, jobs=["plan", "build"])
    (plan,) = checks["plan"]
    assert plan.result == "success", plan.steps[-1].stderr
    assert len(json.loads(plan.outputs["matrix"])["include"]) == 150
    builds = checks["build"]
    assert [r.name for r in builds[:2]] == [
        "build batch-001-of-150 (no push)",
        "build batch-002-of-150 (no push)",
    ]
    failed = [(r.name, r.failed_step()) for r in builds if r.result != "success"]
    assert not failed, failed[:2]
    dry_run = builds[0].steps[-1].stdout
    assert "pb000 1.0.0" in dry_run, dry_run
    assert "pb001 1.0.0" in dry_run, dry_run

    runs = runner.play(Event("push", head, payload={"before": "0" * 40, "after": head}))

    (plan,) = runs["plan"]
    assert plan.result == "success", plan.steps[-1].stderr
    matrix = json.loads(plan.outputs["matrix"])["include"]
    assert len(matrix) == 150  # 300 playbooks, two per job: within GitHub's 256
    listed = [n for entry in matrix for n in entry["playbooks"].split()]
    assert listed == names  # each exactly once, in order
    assert matrix[0]["name"] == "batch-001-of-150"
    publish = runs["publish"]
    assert len(publish) == 150
    failed = [(r.name, r.failed_step()) for r in publish if r.result != "success"]
    assert not failed, failed[:2]
    result_file = (
        runner.run_dir / "artifacts" / "publish-batch-001-of-150" / "batch-001-of-150.json"
    )
    results = json.loads(result_file.read_text())["results"]
    assert [(r["name"], r["status"]) for r in results] == [
        ("pb000", "reused"),
        ("pb001", "reused"),
    ]

    (register,) = runs["register"]
    assert register.result == "success", register.failed_step()
    released = repo.remote_head()
    assert repo.git("-C", str(repo.remote), "rev-parse", f"{released}^") == head
    files = repo.git(
        "-C", str(repo.remote), "ls-tree", "--name-only", f"{released}:registry/workflows"
    )
    assert files.split() == [f"{n}.yaml" for n in names]
    one = list(
        yaml.safe_load_all(
            repo.git("-C", str(repo.remote), "show", f"{released}:registry/workflows/pb299.yaml")
        )
    )[-1]
    bundle_ref = one["spec"]["execution"]["bundle"]
    assert bundle_ref.startswith(
        f"{registry.host}/{owner}/kubernaut-playbooks/bundles/pb299:1.0.0@"
    )
