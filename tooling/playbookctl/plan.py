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
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from playbookctl.config import Config
from playbookctl.gitrepo import GitRepo, TreeFile
from playbookctl.playbook import WORKFLOW_FILE, discover, is_playbook_dir, source_hash
from playbookctl.register import (
    GENERATED_PATHS,
    WORKFLOWS,
    Registration,
    parse_registration,
    read_registrations,
)

try:
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

_NULL_SHA = re.compile(r"^0{40}(0{24})?$")
# Mirrors playbook.source_files: these never belong to a playbook's source.
_IGNORED_PARTS = {".DS_Store", "__pycache__", ".pytest_cache", ".git"}


class Status(StrEnum):
    PUBLISH = "publish"  # version not registered yet
    UP_TO_DATE = "up-to-date"  # this version and content are registered
    REFUSED = "refused"  # content changed under a registered version
    DELETED = "deleted"  # directory gone, registration present: the registration goes
    INVALID = "invalid"  # workflow.yaml unreadable or without spec.version (lint says more)


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

    def with_status(self, status: Status) -> list[Entry]:
        return [e for e in self.entries if e.status is status]

    @property
    def publish(self) -> list[Entry]:
        return self.with_status(Status.PUBLISH)

    @property
    def refused(self) -> list[Entry]:
        return self.with_status(Status.REFUSED) + self.with_status(Status.INVALID)

    @property
    def deleted(self) -> list[Entry]:
        return self.with_status(Status.DELETED)

    @property
    def has_work(self) -> bool:
        """Something to publish: the matrix has at least one entry."""
        return bool(self.publish)

    @property
    def has_changes(self) -> bool:
        """Something to publish or a registration to remove: registry/ will change."""
        return bool(self.publish or self.deleted)

    def matrix(self) -> dict[str, list[dict[str, str]]]:
        """A GitHub Actions matrix: one job per playbook to publish."""
        return {"include": [{"name": e.name, "version": e.version} for e in self.publish]}

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "changed": self.changed,
            "playbooks": [e.to_json() for e in self.entries],
            "publish": [e.name for e in self.publish],
            "refused": [e.name for e in self.refused],
            "deleted": [e.name for e in self.deleted],
            "has_work": self.has_work,
            "has_changes": self.has_changes,
        }


def hash_tree_files(files: list[TreeFile], directory: str) -> str:
    """playbook.source_hash computed from git objects instead of the working tree."""
    outer = hashlib.sha256()
    prefix = directory.rstrip("/") + "/"
    for f in sorted(files, key=lambda f: f.path):
        rel = f.path[len(prefix) :] if f.path.startswith(prefix) else f.path
        parts = rel.split("/")
        if any(p in _IGNORED_PARTS for p in parts) or rel.endswith((".pyc", "~")):
            continue
        digest = hashlib.sha256(f.data).hexdigest()
        outer.update(f"{rel}\0{'x' if f.executable else '-'}\0{digest}\n".encode())
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

    def names(self) -> set[str]:
        if self.rev is None or self.repo is None:
            return {
                n for n in discover(self.config) if is_playbook_dir(self.config.playbooks_dir / n)
            }
        names = self.repo.list_dir(self.rev, "playbooks")
        return {n for n in names if self.repo.show(self.rev, f"playbooks/{n}/{WORKFLOW_FILE}")}

    def workflow_text(self, name: str) -> bytes | None:
        if self.rev is None or self.repo is None:
            path = self.config.playbooks_dir / name / WORKFLOW_FILE
            return path.read_bytes() if path.is_file() else None
        return self.repo.show(self.rev, f"playbooks/{name}/{WORKFLOW_FILE}")

    def source_hash(self, name: str) -> str:
        if self.rev is None or self.repo is None:
            return source_hash(self.config.playbooks_dir / name)
        return hash_tree_files(
            self.repo.tree_files(self.rev, f"playbooks/{name}"), f"playbooks/{name}"
        )

    def registrations(self) -> dict[str, Registration]:
        if self.rev is None or self.repo is None:
            return read_registrations(self.config)
        out: dict[str, Registration] = {}
        for fn in self.repo.list_dir(self.rev, f"registry/{WORKFLOWS}"):
            if fn.endswith(".yaml"):
                text = self.repo.show(self.rev, f"registry/{WORKFLOWS}/{fn}")
                reg = parse_registration(text, fn[: -len(".yaml")]) if text else None
                if reg is not None:
                    out[reg.name] = reg
        return out


def changed_playbooks(repo: GitRepo, base: str, head: str) -> list[str]:
    names = set()
    for path in repo.changed_files(base, head):
        parts = path.split("/")
        if len(parts) >= 3 and parts[0] == "playbooks":
            names.add(parts[1])
    return sorted(names)


def generated_changes(repo: GitRepo, base: str, head: str, trailer: str) -> list[str]:
    """Generated registry files changed between base and head by anything but a release.

    registry/workflows/ and registry/kustomization.yaml are written by `register` only; a pull
    request that edits them by hand would register content nobody published. Changes made by
    release commits (carrying `trailer`, e.g. a release branch being merged) are allowed.
    """
    prefixes = tuple(p + ("/" if not p.endswith(".yaml") else "") for p in GENERATED_PATHS)
    changed = [p for p in repo.changed_files(base, head) if p.startswith(prefixes)]
    if not changed:
        return []
    if repo.merge_base(repo.rev_parse(base), repo.rev_parse(head)) is None:
        return changed  # unrelated histories: no way to say who changed them
    by_hand = [
        c
        for c in repo.commits_touching(base, head, list(GENERATED_PATHS))
        if trailer not in repo.commit_message(c).splitlines()
    ]
    if not by_hand:
        return []
    touched: set[str] = set()
    for c in by_hand:
        parent = f"{c}^" if repo.commit_parents(c) else None
        touched |= set(repo.changed_files(parent, c) if parent else changed)
    return sorted(p for p in changed if p in touched)


def make_plan(
    config: Config,
    repo: GitRepo | None,
    *,
    base: str | None = None,
    head: str | None = None,
) -> Plan:
    """The plan for head (None: the working tree) against its own registry/.

    base: consider only the playbooks changed between base and head (`base...head`, or
    `base..head` without a merge base). Deletions are always reported: a registration whose
    playbook is gone at head must go whichever commit removed it.
    """
    if base is not None and (_NULL_SHA.match(base) or not base.strip()):
        # GitHub's `before` of a branch's first push, or an empty one (a run by hand without a
        # base: no `before` at all): no previous commit, so every playbook is compared with its
        # registration.
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
    registered = src.registrations()
    if base is not None:
        if repo is None:
            raise ValueError("a base revision needs a git repository")
        candidates = set(changed_playbooks(repo, base, head_sha or "HEAD"))
    else:
        candidates = present | set(registered)
    candidates |= set(registered) - present  # deletions, always

    plan = Plan(
        base=repo.rev_parse(base) if (repo is not None and base is not None) else None,
        head=head_sha or (repo.head() if repo is not None else ""),
        changed=sorted(candidates),
    )
    for name in sorted(candidates):
        reg = registered.get(name)
        if name not in present:
            if reg is not None:
                plan.entries.append(
                    Entry(
                        name,
                        Status.DELETED,
                        registered_version=reg.version,
                        registered_hash=reg.source_hash,
                        reason="playbook deleted; its registration is removed",
                    )
                )
            continue
        version = _version_of(src.workflow_text(name))
        if version is None:
            plan.entries.append(
                Entry(name, Status.INVALID, reason="workflow.yaml has no readable spec.version")
            )
            continue
        digest = src.source_hash(name)
        if reg is None:
            plan.entries.append(
                Entry(name, Status.PUBLISH, version, source_hash=digest, reason="not registered")
            )
        elif reg.version != version:
            plan.entries.append(
                Entry(
                    name,
                    Status.PUBLISH,
                    version,
                    reg.version,
                    digest,
                    reg.source_hash,
                    f"version {reg.version} -> {version}",
                )
            )
        elif reg.source_hash == digest:
            plan.entries.append(
                Entry(name, Status.UP_TO_DATE, version, reg.version, digest, reg.source_hash)
            )
        else:
            plan.entries.append(
                Entry(
                    name,
                    Status.REFUSED,
                    version,
                    reg.version,
                    digest,
                    reg.source_hash,
                    f"content changed but version {version} is already registered with other "
                    "content; bump spec.version",
                )
            )
    return plan


def format_human(plan: Plan) -> str:
    span = f"{plan.base[:12]}...{plan.head[:12]}" if plan.base else f"{plan.head[:12]} (all)"
    lines = [f"plan {span}: {len(plan.changed)} playbook(s) considered"]
    for e in plan.entries:
        what = f"{e.name} {e.version}".rstrip()
        if e.status is Status.DELETED:
            what = f"{e.name} (registered {e.registered_version})"
        reason = f": {e.reason}" if e.reason else ""
        lines.append(f"  {e.status.value:<10} {what}{reason}")
    counts = ", ".join(
        f"{len(plan.with_status(s))} {s.value}" for s in Status if plan.with_status(s)
    )
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
