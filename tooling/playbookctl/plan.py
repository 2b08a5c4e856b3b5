"""Plan stage: which playbooks a release must publish, which it must refuse, which registrations go.

A playbook needs publishing when registry/workflows/<name>.yaml does not register its version; it
is refused when its source hash differs from the registered one under the same version (the
cluster would refuse it too: "bump the version to register new content"); its registration is
deleted when the playbook directory is gone. With a base revision only the playbooks changed
between base and head are considered; without one, every playbook and every registration is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from playbookctl.bump import bump_advice_from, bump_command, semver_key
from playbookctl.config import DEFAULT_PLATFORMS, Config
from playbookctl.errors import FatalError, GitError
from playbookctl.gitrepo import GitRepo, TreeFile, submodule_problem
from playbookctl.lint.action_type import SUFFIXES
from playbookctl.lint.registration import colliding_objects, version_conflict
from playbookctl.playbook import (
    NAME_RE,
    RBAC_FILE,
    WORKFLOW_FILE,
    discover,
    hash_platforms,
    is_playbook_dir,
    nested_repositories,
    path_bytes,
    shown_path,
    source_hash,
)
from playbookctl.register import (
    ACTION_TYPES,
    GENERATED_PATHS,
    KUSTOMIZATION,
    WORKFLOWS,
    Registration,
    differences,
    expected_registration,
    kustomization_resources,
    parse_documents,
    parse_registration,
    registry_moved,
    render_kustomization,
)
from playbookctl.verify import NotHeld

try:
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

# GitHub's limit on the jobs one matrix may generate.
MAX_MATRIX_JOBS = 256
_NULL_SHA = re.compile(r"^0{40}(0{24})?$")
# A full commit id (what CI passes as a base): one the clone lacks was rewritten away. A name
# or an abbreviation that resolves to nothing is a mistake, and fails.
_FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# Mirrors playbook.source_files: these never belong to a playbook's source.
_IGNORED_PARTS = {".DS_Store", "__pycache__", ".pytest_cache", ".git"}


class Status(StrEnum):
    PUBLISH = "publish"  # version not registered yet
    UP_TO_DATE = "up-to-date"  # this version and content are registered
    REFUSED = "refused"  # content changed under a registered version
    DELETED = "deleted"  # directory gone, registration present: the registration goes
    INVALID = "invalid"  # workflow.yaml unreadable or without spec.version (lint says more)


# Entries whose registration does not stay as it is: register rewrites it or removes it.
_REWRITTEN = (Status.PUBLISH, Status.DELETED)
LOWERED = "warning: lower than registered"


@dataclass(frozen=True)
class Entry:
    name: str
    status: Status
    version: str = ""
    registered_version: str = ""
    source_hash: str = ""
    registered_hash: str = ""
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status.value,
            "version": self.version,
            "registered_version": self.registered_version,
            "source_hash": self.source_hash,
            "registered_hash": self.registered_hash,
            "reason": self.reason,
        }


@dataclass
class Plan:
    base: str | None
    head: str
    changed: list[str] = field(default_factory=list)  # playbook names considered
    entries: list[Entry] = field(default_factory=list)
    # How registry/kustomization.yaml changes (an ActionType added or deleted), "" when it
    # stays as it is.
    kustomization: str = ""
    action_types: list[str] = field(default_factory=list)  # changed since base (informative)
    # Why the base given was not used (not in this clone), "" when it was or none was given.
    note: str = ""

    def with_status(self, status: Status) -> list[Entry]:
        return [e for e in self.entries if e.status is status]

    @property
    def publish(self) -> list[Entry]:
        return self.with_status(Status.PUBLISH)

    @property
    def refused(self) -> list[Entry]:
        return self.with_status(Status.REFUSED) + self.with_status(Status.INVALID)

    @property
    def lowered(self) -> list[Entry]:
        """Entries publishing a version lower than the registered one (see _lowered)."""
        return [e for e in self.publish if _is_lower(e.version, e.registered_version)]

    @property
    def deleted(self) -> list[Entry]:
        return self.with_status(Status.DELETED)

    @property
    def has_work(self) -> bool:
        """Something to publish: the matrix has at least one entry."""
        return bool(self.publish)

    @property
    def has_changes(self) -> bool:
        """Something to publish, a registration to remove or the kustomization to regenerate:
        registry/ will change."""
        return bool(self.publish or self.deleted or self.kustomization)

    def matrix(self, max_jobs: int = MAX_MATRIX_JOBS) -> dict[str, list[dict[str, str]]]:
        """A GitHub Actions matrix: one job per playbook to publish, each entry naming what its
        job publishes in `playbooks` (space-separated DNS labels). GitHub refuses a matrix of
        more than 256 jobs, so more playbooks than that are batched, evenly and in name order,
        into at most `max_jobs` entries named batch-NNN-of-MMM."""
        todo = self.publish
        if len(todo) <= max_jobs:
            return {
                "include": [
                    {"name": e.name, "version": e.version, "playbooks": e.name} for e in todo
                ]
            }
        size = -(-len(todo) // max_jobs)
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
        width = len(str(len(batches)))
        return {
            "include": [
                {
                    "name": f"batch-{n:0{width}d}-of-{len(batches)}",
                    "version": "",
                    "playbooks": " ".join(e.name for e in batch),
                }
                for n, batch in enumerate(batches, 1)
            ]
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "changed": self.changed,
            "playbooks": [e.to_json() for e in self.entries],
            "publish": [e.name for e in self.publish],
            "refused": [e.name for e in self.refused],
            "deleted": [e.name for e in self.deleted],
            "kustomization": self.kustomization,
            "action_types": self.action_types,
            "has_work": self.has_work,
            "has_changes": self.has_changes,
            "note": self.note,
        }


class FileTooLargeError(FatalError):
    """A file plan reads is over max-file-bytes."""


def _too_large(rel: str, limit: int) -> FileTooLargeError:
    return FileTooLargeError(
        f"{shown_path(rel)}: larger than max-file-bytes ({limit} bytes); plan reads no file "
        "past lint's bound (lint reports it as load.too-large)"
    )


def _bounded_show(repo: GitRepo, rev: str, rel: str, limit: int) -> bytes | None:
    """repo.show, refusing a blob over limit by its size before reading it."""
    size = repo.size(rev, rel)
    if size is None:
        return None
    if size > limit:
        raise _too_large(rel, limit)
    return repo.show(rev, rel)


def hash_tree_files(
    files: list[TreeFile], directory: str, platforms: Sequence[str] = DEFAULT_PLATFORMS
) -> str:
    """playbook.source_hash computed from git objects instead of the working tree."""
    outer = hashlib.sha256()
    prefix = directory.rstrip("/") + "/"
    for f in sorted(files, key=lambda f: f.path):
        rel = f.path[len(prefix) :] if f.path.startswith(prefix) else f.path
        parts = rel.split("/")
        if any(p in _IGNORED_PARTS for p in parts) or rel.endswith((".pyc", "~")):
            continue
        outer.update(path_bytes(f"{rel}\0{'x' if f.executable else '-'}\0{f.sha256}\n"))
    hash_platforms(outer, platforms)
    return "sha256:" + outer.hexdigest()


def _version_of(text: bytes | str | None) -> str | None:
    if text is None:
        return None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader (C or Python)
    except yaml.YAMLError:
        return None
    spec = data.get("spec") if isinstance(data, dict) else None
    version = spec.get("version") if isinstance(spec, dict) else None
    return version if isinstance(version, str) and version else None


class _Source:
    """Playbooks and registrations at head: the working tree, or a commit's tree."""

    def __init__(self, config: Config, repo: GitRepo | None, rev: str | None) -> None:
        self.config = config
        self.repo = repo
        self.rev = rev  # None: the working tree

    def _read(self, rel: str) -> bytes | None:
        """rel's bytes, or None when absent; bounded by max-file-bytes as lint's readers are (a
        50 MB workflow.yaml must not cost minutes and gigabytes on every pull request)."""
        limit = self.config.max_file_bytes
        if self.rev is None or self.repo is None:
            path = self.config.root / rel
            if not path.is_file():
                return None
            with path.open("rb") as fh:
                data = fh.read(limit + 1)
            if len(data) > limit:
                raise _too_large(rel, limit)
            return data
        return _bounded_show(self.repo, self.rev, rel, limit)

    def _exists(self, rel: str) -> bool:
        if self.rev is None or self.repo is None:
            return (self.config.root / rel).is_file()
        return bool(self.repo.size(self.rev, rel))  # an empty workflow.yaml is no playbook

    def _list(self, rel: str) -> list[str]:
        if self.rev is None or self.repo is None:
            path = self.config.root / rel
            return sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []
        return self.repo.list_dir(self.rev, rel)

    def names(self) -> set[str]:
        # A playbook directory that is itself a submodule is one too (a clone without
        # --recurse-submodules holds it empty): _entry refuses it, rather than not see it.
        if self.rev is None or self.repo is None:
            return {
                n
                for n in discover(self.config)
                if is_playbook_dir(self.config.playbooks_dir / n) or self.submodules(n)
            }
        names = self.repo.list_dir(self.rev, "playbooks")
        return {
            n for n in names if self._exists(f"playbooks/{n}/{WORKFLOW_FILE}") or self.submodules(n)
        }

    def workflow_text(self, name: str) -> bytes | None:
        return self._read(f"playbooks/{name}/{WORKFLOW_FILE}")

    def rbac_text(self, name: str) -> bytes | None:
        return self._read(f"playbooks/{name}/{RBAC_FILE}")

    def submodules(self, name: str) -> list[str]:
        """The submodules (gitlinks) in the playbook: in git's index, or in the commit."""
        if self.rev is None or self.repo is None:
            return [
                n.rel for n in nested_repositories(self.config.playbooks_dir / name) if n.gitlink
            ]
        return self.repo.gitlinks(self.rev, f"playbooks/{name}")

    def source_hash(self, name: str) -> str:
        if self.rev is None or self.repo is None:
            return source_hash(self.config.playbooks_dir / name, self.config.platforms)
        return hash_tree_files(
            self.repo.tree_files(self.rev, f"playbooks/{name}"),
            f"playbooks/{name}",
            self.config.platforms,
        )

    def registration_texts(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for fn in self._list(f"registry/{WORKFLOWS}"):
            if fn.endswith(".yaml"):
                text = self._read(f"registry/{WORKFLOWS}/{fn}")
                if text is not None:
                    out[fn[: -len(".yaml")]] = text
        return out

    def action_type_names(self) -> list[str]:
        return [n for n in self._list(f"registry/{ACTION_TYPES}") if n.endswith(SUFFIXES)]

    def kustomization_text(self) -> bytes | None:
        return self._read(f"registry/{KUSTOMIZATION}")


def changed_playbooks(repo: GitRepo, base: str, head: str) -> list[str]:
    names = set()
    for path in repo.changed_files(base, head):
        parts = path.split("/")
        if len(parts) >= 3 and parts[0] == "playbooks":
            names.add(parts[1])
    return sorted(names)


def generated_changes(config: Config, repo: GitRepo, base: str, head: str) -> list[tuple[str, str]]:
    """Generated registry files changed between base and head that are not what `register`
    writes from head's tree, with why: (path, message).

    registry/workflows/ and registry/kustomization.yaml are written by `register` only, and a
    registration is written by a release only: it pins digests only the registry can vouch for,
    which a pull request cannot prove (it has no registry access, and a registry of its own
    proves nothing). So a change to a registration is accepted only when it is the exact
    regeneration of what is already registered where the change starts (the merge base):
    the same version with the same pins and provenance (bundle, image, source hash, commit,
    repository), and the text register writes from the playbook at head. A registration of a
    version not registered there is refused outright, whatever it pins. A registration removed
    with its playbook is accepted (register removes it too), and so is the kustomization
    listing exactly what register lists. Who made the commit, or what its message says, proves
    nothing.
    """
    prefixes = tuple(p + ("/" if not p.endswith(".yaml") else "") for p in GENERATED_PATHS)
    changed = [p for p in repo.changed_files(base, head) if p.startswith(prefixes)]
    if not changed:
        return []
    head_sha = repo.rev_parse(head)
    base_sha = repo.rev_parse(base)
    # Where the diff starts (changed_files diffs base...head): what main had registered when
    # the change was made. A common ancestor of base, so it is history the gate already passed.
    before_rev = repo.merge_base(base_sha, head_sha) or base_sha
    src = _Source(config, repo, head_sha)
    present = src.names()
    texts = src.registration_texts()
    out: list[tuple[str, str]] = []
    for path in changed:
        if path == f"registry/{KUSTOMIZATION}":
            expected = render_kustomization(
                kustomization_resources(config, sorted(texts), src.action_type_names())
            )
            current = src.kustomization_text()
            if current is None or current.decode("utf-8", "replace") != expected:
                change = _kustomization_change(current, expected).split(": ", 1)[1]
                out.append((path, f"not what register writes from this tree ({change})"))
            continue
        name = path.rsplit("/", 1)[-1].removesuffix(".yaml")
        text = texts.get(name) if path == f"registry/{WORKFLOWS}/{name}.yaml" else None
        if src._read(path) is None:
            if name in present:
                out.append((path, f"removed, but playbooks/{name}/ is still there"))
            continue  # removed with its playbook, as register does
        if text is None:
            out.append((path, "not a registration register writes"))
            continue
        why = (
            _not_registered_before(repo, before_rev, path, name, text, config.max_file_bytes)
            if name in present
            else None
        )
        if why is None:
            why = _edited_registration(src, name, text, name in present)
        if why:
            out.append((path, why))
    return out


# The provenance a registration pins, as (field, what it is called in a message).
_PINS = (
    ("bundle", "bundle"),
    ("image", "image"),
    ("source_hash", "source hash"),
    ("source_commit", "source commit"),
    ("source_repository", "source repository"),
)


def _not_registered_before(  # noqa: PLR0917 - one call site
    repo: GitRepo, before_rev: str, path: str, name: str, text: bytes, limit: int
) -> str | None:
    """Why the registration at head is not one already registered at before_rev (None when it
    is: the same version, pinned to the same bundle and image with the same provenance).

    Only a release writes a registration: it publishes the bundle to the configured registry,
    reads it back and pins the digest it verified. A pull request that writes one (a version
    published to a registry of its own, a digest nobody built) would have Argo CD sync a bundle
    the release never published, with the playbook's cluster permissions."""
    now = parse_registration(text, name)
    if now is None:
        return "holds no readable RemediationWorkflow"
    before_text = _bounded_show(repo, before_rev, path, limit)
    before = parse_registration(before_text, name) if before_text else None
    where = f"at {before_rev[:12]}, where this change starts"
    only = (
        "only a release writes a registration (it publishes the bundle and pins the digest it "
        "read back); leave registry/workflows/ out of the pull request"
    )
    if before is None:
        version = now.version or "(no version)"
        return f"registers {name} {version}, which is not registered {where}: {only}"
    if before.version != now.version:
        return (
            f"registers version {now.version or '(none)'}, but {before.version} is the one "
            f"registered {where}: {only}"
        )
    for attr, label in _PINS:
        old, new = getattr(before, attr), getattr(now, attr)
        if old != new:
            return (
                f"re-points the registered version {now.version} to another {label} "
                f"({new or '(none)'}, was {old or '(none)'}): a registered version never changes"
            )
    return None


def _edited_registration(src: _Source, name: str, text: bytes, present: bool) -> str | None:
    if not present:
        return f"registers playbooks/{name}/, which does not exist"
    reg = parse_registration(text, name)
    if reg is None:
        return "holds no readable RemediationWorkflow"
    version = _version_of(src.workflow_text(name))
    if reg.version != version:
        return f"registers version {reg.version}, but the playbook is version {version}"
    digest = src.source_hash(name)
    if reg.source_hash != digest:
        return (
            f"records source hash {reg.source_hash or '(none)'}, but the playbook hashes to "
            f"{digest}"
        )
    stale = _stale_registration(src, name, reg, text)
    if stale is None:
        return None
    return stale[1].replace(
        "registration differs from what register writes now", "differs from what register writes"
    )


def _stale_registration(
    src: _Source, name: str, reg: Registration, text: bytes
) -> tuple[str, str] | None:
    """(status, why) when the registration is not what register would write now from the
    playbook's files: ("publish", which field) to re-register it (publish reuses the bundle),
    ("invalid", why) when the playbook's files cannot be read. None when it is exactly that."""
    workflow_docs = parse_documents(src.workflow_text(name))
    rbac = parse_documents(src.rbac_text(name))
    if not workflow_docs or rbac is None:
        which = RBAC_FILE if rbac is None else WORKFLOW_FILE
        return "invalid", f"{which} does not parse; run playbookctl lint"
    expected = expected_registration(workflow_docs[0], rbac, reg)
    if expected is None:
        return "publish", "the registration pins no bundle digest"
    if expected.encode() == text:
        return None
    actual = parse_documents(text)
    found = differences(actual, parse_documents(expected) or []) if actual is not None else []
    if actual is None:
        what = "it does not parse"
    elif found:
        what = str(found[0]) + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
    else:
        what = "its text is not as register writes it (comments or formatting)"
    return "publish", f"registration differs from what register writes now: {what}"


def make_plan(
    config: Config,
    repo: GitRepo | None,
    *,
    base: str | None = None,
    head: str | None = None,
    prove: Callable[[Registration], str | None] | None = None,
    before_proving: Callable[[list[Registration]], None] | None = None,
    missing_base: bool = False,
) -> Plan:
    """The plan for head (None: the working tree) against its own registry/.

    Every playbook is compared with its registration, with or without a base, so the release
    converges on the tree: one whose registration is missing, or differs from what register
    would write now (a cancelled or failed run, a lost race, a hand edit), is published again
    (publish reuses what is in the registry) and re-registered. base: report the playbooks
    changed between base and head (`base...head`, or `base..head` without a merge base); an
    unchanged playbook that is up to date is not listed. Deletions are always reported.

    missing_base: a base (a full commit id) this clone does not hold is planned without
    (every playbook against its registration, the plan.note saying so) instead of failing. A
    force-push to main makes GitHub's `before` a commit no clone has; the plan is the same
    without a base (the base only narrows what is listed), so only the pull-request gate,
    which diffs against the base, must keep failing there.

    prove: asked about every registration plan would otherwise take as published (up to date,
    nothing to do), listed or not; its answer, why the registry does not bear it out, refuses
    the playbook instead (verify.publication_problem, what a release passes). Without it plan
    reads registrations as the files say, which only the pull-request gate's refusal of every
    registration a release did not write makes safe. before_proving: given every registration
    prove is about to be asked about, first (its tokens asked for together).
    """
    if base is not None and (_NULL_SHA.match(base) or not base.strip()):
        # GitHub's `before` of a branch's first push, or an empty one (a run by hand without a
        # base: no `before` at all): no previous commit, so every playbook is compared with its
        # registration.
        base = None
    note = ""
    if (
        base is not None
        and missing_base
        and _FULL_SHA.match(base)
        and repo is not None
        and not repo.has_commit(base)
    ):
        note = (
            f"base {base} is not in this clone (history rewritten, such as a force-push): "
            "planning every playbook against its registration"
        )
        base = None
    head_sha = repo.rev_parse(head) if (repo is not None and head is not None) else None
    if (
        repo is not None
        and head_sha is not None
        and head_sha == repo.head()
        and not repo.is_dirty(["playbooks", "registry"])
    ):
        rev: str | None = None  # the working tree is that commit: read files, not objects
    else:
        rev = head_sha
    src = _Source(config, repo, rev)
    present = src.names()
    texts = src.registration_texts()
    registered: dict[str, Registration] = {}
    for reg_name, text in texts.items():
        reg = parse_registration(text, reg_name)
        if reg is not None:
            registered[reg_name] = reg
    changed: set[str] | None = None
    if base is not None:
        if repo is None:
            raise ValueError("a base revision needs a git repository")
        base_sha = repo.rev_parse(base)
        head_rev = head_sha or "HEAD"
        if repo.merge_base(base_sha, repo.rev_parse(head_rev)) is None and repo.is_shallow():
            # Without the history between them, a two-dot diff would report every difference
            # of the two trees as this change (hand edits, deletions that did not happen).
            raise GitError(
                f"{base!r} and {head or 'HEAD'} have no merge base in this shallow clone: fetch "
                "more history (actions/checkout fetch-depth: 0, or git fetch --unshallow)"
            )
        changed = set(changed_playbooks(repo, base_sha, head_rev))
    candidates = present | set(registered)

    plan = Plan(
        base=repo.rev_parse(base) if (repo is not None and base is not None) else None,
        head=head_sha or (repo.head() if repo is not None else ""),
        changed=sorted(candidates if changed is None else changed | (set(registered) - present)),
        note=note,
    )
    found = [
        (name, _entry(src, name, registered.get(name), texts.get(name), name in present))
        for name in sorted(candidates)
    ]
    problems: dict[str, str | None] = {}
    if prove is not None:
        # A few registry requests per registration: asked `jobs` at a time (the client is
        # shared by threads, as publish's workers share it).
        skipped = [n for n, e in found if e is not None and e.status is Status.UP_TO_DATE]
        if before_proving is not None and skipped:
            before_proving([registered[n] for n in skipped])
        with ThreadPoolExecutor(max_workers=max(1, min(config.jobs, 16))) as pool:
            problems = dict(
                zip(skipped, pool.map(lambda n: prove(registered[n]), skipped), strict=True)
            )
    collisions = _colliding_objects(src, texts, found)
    for name, computed in found:
        if computed is None:
            continue
        entry = computed
        if name in collisions:
            entry = replace(entry, status=Status.REFUSED, reason=collisions[name])
        if entry.status is Status.UP_TO_DATE and prove is not None:
            problem = problems[name]
            if problem is not None:
                entry = replace(
                    entry, status=Status.REFUSED, reason=_unproven(repo, rev, name, problem)
                )
        if changed is not None and name not in changed and entry.status is Status.UP_TO_DATE:
            continue  # unchanged and registered as it should be: not part of this change
        plan.entries.append(entry)

    # registry/kustomization.yaml as register leaves it: every registration that stays and
    # every ActionType file. An ActionType added or deleted alone is a change to register.
    staying = sorted(
        (set(registered) - {e.name for e in plan.deleted}) | {e.name for e in plan.publish}
    )
    expected_k = render_kustomization(
        kustomization_resources(config, staying, src.action_type_names())
    )
    current_k = src.kustomization_text()
    if current_k is None or current_k.decode("utf-8", "replace") != expected_k:
        plan.kustomization = _kustomization_change(current_k, expected_k)
    if changed is not None and repo is not None:
        plan.action_types = sorted(
            p
            for p in repo.changed_files(plan.base or "", head_sha or "HEAD")
            if p.startswith(f"registry/{ACTION_TYPES}/")
        )
    return plan


def _unproven(repo: GitRepo | None, rev: str | None, name: str, problem: str) -> str:
    """Why a registration the registry does not bear out is refused, and what to do.

    A registration a release wrote whose pins the registry holds neither by tag nor by digest
    was published and then lost by the registry (wiped, garbage-collected, another registry
    at the same address): restoring the registration, the advice for a hand-edited one,
    changes nothing, and the registry's storage or a new version is what helps. Who wrote it
    is read from git (the release commit's trailer): the refusal is the same either way, only
    its advice differs."""
    from playbookctl.release import is_release_commit  # noqa: PLC0415 - release imports plan

    if isinstance(problem, NotHeld) and repo is not None:
        path = f"registry/{WORKFLOWS}/{name}.yaml"
        last = repo.last_commit_touching([path], rev or "HEAD")
        if last is not None and is_release_commit(repo.commit_message(last)):
            return (
                f"{problem} (the registry lost it: wiped, garbage-collected, or a different "
                f"registry; the release that registered it in {last[:12]} published it); "
                "restore the registry's storage, or bump the version "
                f"(`{bump_command(name)}`) so the release publishes and registers a new one"
            )
    return (
        f"registry/{WORKFLOWS}/{name}.yaml is not borne out by the registry ({problem}): not "
        "published by a release; restore the registration the release wrote, or bump the version"
    )


def _colliding_objects(
    src: _Source, texts: dict[str, bytes], found: Sequence[tuple[str, Entry | None]]
) -> dict[str, str]:
    """Why each playbook this plan would register is refused for an object that another
    registration staying in registry/, or another playbook registered in the same run, defines
    too (colliding_objects, which lint's playbook.duplicate-object runs as well)."""
    publishing = [n for n, e in found if e is not None and e.status is Status.PUBLISH]
    if not publishing:
        return {}
    rewritten = {n for n, e in found if e is not None and e.status in _REWRITTEN}
    # A registration rewritten (from its rbac.yaml) or removed does not stay.
    staying: dict[str, str | bytes | None] = {
        f"registry/{WORKFLOWS}/{name}.yaml": text
        for name, text in sorted(texts.items())
        if name not in rewritten
    }
    defining: dict[str, str | bytes | None] = {n: src.rbac_text(n) for n in publishing}
    return {n: c[0].reason for n, c in colliding_objects(staying, defining).items()}


def _kustomization_change(current: bytes | None, expected: str) -> str:
    if current is None:
        return f"registry/{KUSTOMIZATION}: missing; register writes it"
    docs = parse_documents(current)
    have = docs[0].get("resources") if docs and isinstance(docs[0], dict) else None
    want = (parse_documents(expected) or [{}])[0].get("resources") or []
    if not isinstance(have, list):
        return f"registry/{KUSTOMIZATION}: not as register writes it; register rewrites it"
    added = [r for r in want if r not in have]
    dropped = [r for r in have if r not in want]
    parts = []
    if added:
        parts.append(f"register adds {', '.join(added)}")
    if dropped:
        parts.append(f"register removes {', '.join(dropped)}")
    what = "; ".join(parts) or "register rewrites it (it is not as register writes it)"
    return f"registry/{KUSTOMIZATION}: {what}"


def _entry(
    src: _Source, name: str, reg: Registration | None, text: bytes | None, present: bool
) -> Entry | None:
    if not present:
        if reg is None:
            return None
        return Entry(
            name,
            Status.DELETED,
            registered_version=reg.version,
            registered_hash=reg.source_hash,
            reason="playbook deleted; its registration is removed",
        )
    if not NAME_RE.match(name) or len(name) > 63:
        return Entry(name, Status.INVALID, reason="the directory name is not a DNS-1123 label")
    version = _version_of(src.workflow_text(name))
    linked = src.submodules(name)
    if linked:
        # Its files are in no image: hashed without them, the playbook would be published
        # as if nothing were missing (lint's playbook.submodule says it first).
        why = f"{linked[0]}: {submodule_problem(linked[0])}"
        return Entry(name, Status.INVALID, version or "", reason=why)
    if version is None:
        return Entry(name, Status.INVALID, reason="workflow.yaml has no readable spec.version")
    digest = src.source_hash(name)
    if reg is None:
        return Entry(name, Status.PUBLISH, version, source_hash=digest, reason="not registered")
    if reg.version != version:
        return Entry(
            name,
            Status.PUBLISH,
            version,
            reg.version,
            digest,
            reg.source_hash,
            f"version {reg.version} -> {version}{_lowered(name, version, reg.version)}",
        )
    # lint's playbook.version-bump runs this same check on the pull request
    conflict = version_conflict(name, version, digest, reg.version, reg.source_hash)
    if conflict:
        return Entry(name, Status.REFUSED, version, reg.version, digest, reg.source_hash, conflict)
    stale = _stale_registration(src, name, reg, text or b"")
    if stale is None:
        moved = registry_moved(src.config, reg.bundle, reg.image)
        if moved is not None:
            return Entry(name, Status.PUBLISH, version, reg.version, digest, reg.source_hash, moved)
        return Entry(name, Status.UP_TO_DATE, version, reg.version, digest, reg.source_hash)
    status = Status.PUBLISH if stale[0] == "publish" else Status.INVALID
    return Entry(name, status, version, reg.version, digest, reg.source_hash, stale[1])


def _is_lower(version: str, registered: str) -> bool:
    mine, theirs = semver_key(version), semver_key(registered)
    return mine is not None and theirs is not None and mine < theirs


def _lowered(name: str, version: str, registered: str) -> str:
    """What plan adds to a version lower than the registered one. A rollback is legitimate:
    publish reuses `version` when its published content is exactly this tree's. A lower version
    never published from this content is almost surely a mistake, which publish refuses; plan
    cannot tell the two apart without the registry, so it warns."""
    if not _is_lower(version, registered):
        return ""
    return (
        f" ({LOWERED}: {version} is lower than {registered}, the registered version; a rollback "
        f"if {version} was published from exactly this content (publish reuses it), refused "
        f"otherwise: to release new content, {bump_advice_from(name, registered)})"
    )


def format_human(plan: Plan) -> str:
    span = f"{plan.base[:12]}...{plan.head[:12]}" if plan.base else f"{plan.head[:12]} (all)"
    lines = [f"plan {span}: {len(plan.changed)} playbook(s) considered"]
    for e in plan.entries:
        what = f"{e.name} {e.version}".rstrip()
        if e.status is Status.DELETED:
            what = f"{e.name} (registered {e.registered_version})"
        reason = f": {e.reason}" if e.reason else ""
        lines.append(f"  {e.status.value:<10} {what}{reason}")
    for path in plan.action_types:
        lines.append(f"  action-type {path} changed")
    if plan.kustomization:
        lines.append(f"  registry   {plan.kustomization}")
    counts = ", ".join(
        f"{len(plan.with_status(s))} {s.value}" for s in Status if plan.with_status(s)
    )
    if plan.kustomization:
        counts = ", ".join(filter(None, [counts, "kustomization regenerated"]))
    lines.append(counts or "nothing to do")
    return "\n".join(lines)


def write_github_output(plan: Plan, path: Path) -> None:
    """Step outputs a workflow reads: `matrix` (compact JSON), `has-work` (the matrix has an
    entry) and `has-changes` (registry/ will change, deletions included).

    GitHub fails a matrix job whose matrix is empty, so the publish job is guarded on has-work
    and the register job on has-changes.
    """
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"matrix={json.dumps(plan.matrix(), separators=(',', ':'))}\n")
        fh.write(f"has-work={'true' if plan.has_work else 'false'}\n")
        fh.write(f"has-changes={'true' if plan.has_changes else 'false'}\n")
