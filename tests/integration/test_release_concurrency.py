"""Concurrent releases against one bare remote and one registry, each from its own clone.

Every release is the real CLI in its own process, started together. Afterwards the registry's
own storage says which digests each tag ever pointed to (distribution keeps an index entry per
digest a tag was put to, `_manifests/tags/<tag>/index/`), so "every tag held exactly one digest"
is checked over the whole run, not sampled. Every registration on the remote must pin its tag's
digest.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from playbookctl.bundle import ANNOTATION_SOURCE_HASH, build_bundle, push_bundle
from playbookctl.config import Config, load_config
from playbookctl.oci import RegistryClient
from playbookctl.publish import publish
from playbookctl.release import ReleaseOptions, register_and_push, release
from playbookctl.results import PublishResult
from playbookctl_dev.registry import LocalRegistry
from tests.support.faultproxy import FaultProxy
from tests.support.gitrepos import TEST_BASE_IMAGE, MakeRepo, PlaybookRepo, git

pytestmark = pytest.mark.integration

TRAILER = "Released-by: playbookctl"
_ids = itertools.count()


def start_release(clone: PlaybookRepo, config: Config, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES": json.dumps(config.base_image_overrides),
    }
    args = [
        sys.executable,
        "-m",
        "playbookctl",
        "-C",
        str(clone.path),
        "release",
        "--registry",
        config.registry,
        "--image-repo",
        config.image_repo,
        "--bundle-repo",
        config.bundle_repo,
        *extra,
    ]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run_together(runs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    out = []
    for p in runs:
        text, _ = p.communicate(timeout=600)
        out.append((p.returncode, text))
    return out


def tag_history(registry: LocalRegistry, prefix: str) -> dict[str, set[str]]:
    """`repo:tag` -> every digest the tag was ever put to, from the registry's storage."""
    assert registry.data_dir is not None
    repos = registry.data_dir / "docker" / "registry" / "v2" / "repositories"
    out: dict[str, set[str]] = {}
    for tags in sorted((repos / prefix).glob("**/_manifests/tags")):
        repo = tags.parent.parent.relative_to(repos).as_posix()
        for tag in sorted(tags.iterdir()):
            index = tag / "index" / "sha256"
            out[f"{repo}:{tag.name}"] = {f"sha256:{d.name}" for d in index.iterdir()}
    return out


def registrations(repo: PlaybookRepo) -> dict[str, dict[str, str]]:
    """name -> {bundle, image} as registered on the remote's main."""
    names = git(repo.remote, "ls-tree", "--name-only", "refs/heads/main:registry/workflows")
    out = {}
    for fn in names.split():
        text = git(repo.remote, "show", f"refs/heads/main:registry/workflows/{fn}")
        wf = list(yaml.safe_load_all(text))[-1]
        out[fn.removesuffix(".yaml")] = {
            "bundle": wf["spec"]["execution"]["bundle"],
            "image": wf["metadata"]["annotations"]["playbookctl.kubernaut.ai/image"],
            "version": wf["spec"]["version"],
        }
    return out


def check_tags_and_registrations(
    registry: LocalRegistry, repo: PlaybookRepo, config: Config, prefix: str
) -> dict[str, dict[str, str]]:
    history = tag_history(registry, prefix)
    assert history
    moved = {tag: digests for tag, digests in history.items() if len(digests) != 1}
    assert moved == {}, "a tag held more than one digest"
    regs = registrations(repo)
    with RegistryClient(config) as client:
        for reg in regs.values():
            for key in ("bundle", "image"):
                named, _, digest = reg[key].partition("@")
                repo_name = named.rpartition(":")[0].split("/", 1)[1]
                tag = named.rpartition(":")[2]
                assert history[f"{repo_name}:{tag}"] == {digest}, reg[key]
                assert client.resolve(f"{named}") is not None
    return regs


def release_commits(repo: PlaybookRepo) -> list[str]:
    log = git(repo.remote, "log", "--format=%H%x00%B%x01", "refs/heads/main")
    return [e.split("\0")[0].strip() for e in log.split("\x01") if TRAILER in e]


@pytest.fixture
def make_config(
    registry: LocalRegistry, docker_engine: str, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Callable[[PlaybookRepo], Config]]:
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    prefix = f"conc{next(_ids)}"

    def make(repo: PlaybookRepo) -> Config:
        return load_config(repo.path).with_overrides(
            registry=registry.host,
            image_repo=f"{prefix}/images",
            bundle_repo=f"{prefix}/bundles",
            base_image_overrides={TEST_BASE_IMAGE: base_image},
        )

    return prefix, make


def test_three_releases_of_the_same_commit_at_once(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    make_config: tuple[str, Callable[[PlaybookRepo], Config]],
    tmp_path: Path,
) -> None:
    """Two merges in quick succession, a manual run beside a push run: the same commit released
    three times at the same instant. Same content, same bytes: every racer pushes (or adopts)
    the same digests, exactly one release commit lands, and all three succeed."""
    prefix, make = make_config
    repo = playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})
    config = make(repo)
    clones = [repo.another_clone(tmp_path / f"clone{i}") for i in range(3)]
    outcomes = run_together([start_release(c, config) for c in clones])
    for code, text in outcomes:
        assert code == 0, text
    assert len(release_commits(repo)) == 1
    regs = check_tags_and_registrations(registry, repo, config, prefix)
    assert sorted(regs) == ["alpha", "beta"]


def test_four_releases_of_different_playbooks_at_once(
    playbook_repo_factory: MakeRepo,
    registry: LocalRegistry,
    make_config: tuple[str, Callable[[PlaybookRepo], Config]],
    tmp_path: Path,
) -> None:
    """Four merges, each bumping its own playbook, each released from its own checkout at the
    same instant: their pushes race for main (rejected, fetched, rebuilt, retried) and all four
    land."""
    prefix, make = make_config
    names = [f"pb{i}" for i in range(4)]
    repo = playbook_repo_factory(dict.fromkeys(names, "1.0.0"))
    config = make(repo)
    first = start_release(repo, config)
    ((code, text),) = run_together([first])
    assert code == 0, text
    repo.git("pull", "--quiet", "--ff-only")
    commits = [repo.head()]
    for name in names:
        repo.write_playbook(name, "1.1.0", marker=f"{name} v2")
        commits.append(repo.commit_all(f"bump {name}"))
    repo.push()
    clones = []
    for i in range(4):
        clone = repo.another_clone(tmp_path / f"clone{i}")
        clone.git("checkout", "--quiet", "-B", "main", commits[i + 1])
        clone.git("branch", "--quiet", "--set-upstream-to", "origin/main")
        clones.append(clone)
    runs = [start_release(c, config, "--base", commits[i]) for i, c in enumerate(clones)]
    outcomes = run_together(runs)
    for code, text in outcomes:
        assert code == 0, text
    # A release also picks up any playbook at its head whose version is not registered yet (a
    # racer may register a neighbour's bump first): between one and four new release commits.
    assert 1 + 1 <= len(release_commits(repo)) <= 1 + 4, "\n".join(t for _, t in outcomes)
    regs = check_tags_and_registrations(registry, repo, config, prefix)
    assert {n: r["version"] for n, r in regs.items()} == dict.fromkeys(names, "1.1.0")


def test_the_tag_history_sees_a_tag_that_moved(registry: LocalRegistry, tmp_path: Path) -> None:
    """The check above can fail: a tag put to twice shows both digests."""
    prefix = f"conc{next(_ids)}"
    config = Config(root=tmp_path, registry=registry.host)
    pipeline = {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {"name": "workflow"},
        "spec": {"tasks": []},
    }
    digests = set()
    with RegistryClient(config) as client:
        for v in ("a", "b"):
            bundle = build_bundle([pipeline], {"k": v})
            digests.add(push_bundle(client, f"{registry.host}/{prefix}/x:1.0.0", bundle))
    assert tag_history(registry, prefix) == {f"{prefix}/x:1.0.0": digests}
    assert len(digests) == 2


# -- deterministic companions: another release's publish lands while this one's fails ------------


def _bundle_put(name: str) -> Callable[[str, str], bool]:
    return lambda m, p: m == "PUT" and f"/bundles/{name}/manifests/" in p


BLOB_UNKNOWN = b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}'


def _racing_publisher(
    fault_proxy: FaultProxy, other: Config, other_head: str, name: str
) -> tuple[Callable[..., list[PublishResult]], list[list[str]]]:
    """The real publish; after this run's first one, another run (`other`'s clone) publishes
    `name` through the healed proxy, as a concurrent release finishing its publish would."""
    calls: list[list[str]] = []

    def publisher(config: Config, names: list[str], **kw: Any) -> list[PublishResult]:
        calls.append(list(names))
        results = publish(config, names, **kw)
        if len(calls) == 1:
            fault_proxy.heal()
            kw.pop("on_event", None)
            (theirs,) = publish(other, [name], **{**kw, "commit": other_head})
            assert theirs.ok, theirs.error
        return results

    return publisher, calls


def _proxy_config(repo: PlaybookRepo, fault_proxy: FaultProxy, base_image: str, n: int) -> Config:
    return load_config(repo.path).with_overrides(
        registry=fault_proxy.host,
        image_repo=f"meanwhile{n}/images",
        bundle_repo=f"meanwhile{n}/bundles",
        base_image_overrides={TEST_BASE_IMAGE: base_image},
        registry_timeout=5.0,
        registry_retries=1,
        jobs=2,
    )


def test_a_playbook_another_release_published_meanwhile_is_reused_not_failed(
    playbook_repo_factory: MakeRepo,
    fault_proxy: FaultProxy,
    docker_engine: str,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """This run's bundle push of alpha fails (the registry answers MANIFEST_BLOB_UNKNOWN, as it
    does to two writers of one bundle), while another release publishes alpha from the same
    source: alpha is that release's business. This run finds the bundle, publishes alpha once
    more (which reuses it after checking it holds what alpha renders to) and registers it."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    n = next(_ids)
    repo = playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})
    config = _proxy_config(repo, fault_proxy, base_image, n)
    other = repo.another_clone(tmp_path / "other")
    publisher, calls = _racing_publisher(
        fault_proxy, _proxy_config(other, fault_proxy, base_image, n), other.head(), "alpha"
    )
    fault_proxy.fail_next(-1, 400, match=_bundle_put("alpha"), body=BLOB_UNKNOWN)
    report = release(config, ReleaseOptions(), publisher=publisher)
    assert report.failed == [], report.notes
    assert calls == [["alpha", "beta"], ["alpha"]]
    (note,) = [n for n in report.notes if n.startswith("alpha:")]
    assert "published meanwhile by another run" in note
    assert "MANIFEST_BLOB_UNKNOWN" in note
    assert report.pushed
    regs = registrations(repo)
    assert sorted(regs) == ["alpha", "beta"]
    with RegistryClient(config) as client:
        for reg in regs.values():
            assert client.resolve(reg["bundle"]) is not None


def test_a_bundle_published_meanwhile_from_other_content_leaves_the_failure(
    playbook_repo_factory: MakeRepo,
    fault_proxy: FaultProxy,
    docker_engine: str,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same race, but what appeared under alpha 1.0.0 says it comes from other content:
    not adopted, not published again; this run's failure stands (exit 1 for alpha), the
    others land."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    n = next(_ids)
    repo = playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})
    config = _proxy_config(repo, fault_proxy, base_image, n)
    calls: list[list[str]] = []

    def publisher(config: Config, names: list[str], **kw: Any) -> list[PublishResult]:
        calls.append(list(names))
        results = publish(config, names, **kw)
        fault_proxy.heal()
        foreign = build_bundle(
            [{"apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": "x"}}],
            {ANNOTATION_SOURCE_HASH: "sha256:" + "f" * 64},
        )
        with RegistryClient(config) as client:
            push_bundle(client, f"{config.bundle_ref('alpha')}:1.0.0", foreign)
        return results

    fault_proxy.fail_next(-1, 400, match=_bundle_put("alpha"), body=BLOB_UNKNOWN)
    report = release(config, ReleaseOptions(), publisher=publisher)
    assert report.failed == ["alpha"]
    assert calls == [["alpha", "beta"]]
    assert sorted(registrations(repo)) == ["beta"]


def test_a_playbook_another_release_registered_meanwhile_is_not_a_failure(
    playbook_repo_factory: MakeRepo,
    fault_proxy: FaultProxy,
    registry: LocalRegistry,
    docker_engine: str,
    base_image: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """This run cannot publish alpha (its bundle pushes keep failing) and cannot adopt what the
    other release published (here: under another registry name, as a non-reproducible build
    would differ), but that release registered alpha meanwhile, at this version and from this
    source, after checking its bundle: alpha is released, this run's push is rebuilt on the
    moved remote, and the run does not fail for it."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    n = next(_ids)
    repo = playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})
    config = _proxy_config(repo, fault_proxy, base_image, n)
    other = repo.another_clone(tmp_path / "other")
    theirs = _proxy_config(other, fault_proxy, base_image, n).with_overrides(registry=registry.host)

    def publisher(config: Config, names: list[str], **kw: Any) -> list[PublishResult]:
        results = publish(config, names, **kw)
        if "beta" in names:  # the first call: the other release publishes and registers alpha
            done = publish(theirs, ["alpha"], **{**kw, "commit": other.head()})
            other_report = register_and_push(theirs, done, ReleaseOptions())
            assert other_report.pushed, other_report.notes
        return results

    fault_proxy.fail_next(-1, 400, match=_bundle_put("alpha"), body=BLOB_UNKNOWN)
    report = release(config, ReleaseOptions(), publisher=publisher)
    assert report.failed == [], report.notes
    assert any(
        "alpha: 1.0.0 was registered meanwhile by another release" in n for n in report.notes
    )
    assert report.pushed
    assert report.attempts == 2  # the remote moved under this run's push
    regs = registrations(repo)
    assert sorted(regs) == ["alpha", "beta"]
    assert regs["alpha"]["bundle"].startswith(f"{registry.host}/")  # the other release's
