"""A playbook against its registration in registry/: what `plan` and `register` would refuse.

These are the refusals' own implementations: `plan` calls `version_conflict` to refuse a
playbook, `register` calls `write_problem` before writing; `playbookctl lint` runs the same
functions through the rules below, so a pull request reports them, with file and line, before
the release meets them.

- playbook.version-bump: the playbook's spec.version is registered with another source hash
  (its content changed without a version bump); `plan` and the release refuse it.
- playbook.registration-path: registry/workflows/<name>.yaml or registry/kustomization.yaml is
  a directory, or a parent of it is a file: register cannot write the registration.
- playbook.duplicate-object: the playbook's rbac.yaml defines an object (a ClusterRole, a
  ServiceAccount...) another playbook's defines too; `plan` refuses it (`colliding_objects`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from playbookctl.config import Config
from playbookctl.errors import FatalError
from playbookctl.findings import Finding, Severity
from playbookctl.load import Document, load_file, read_text_file
from playbookctl.playbook import RBAC_FILE, WORKFLOW_FILE, Playbook, discover, source_hash

if TYPE_CHECKING:
    from playbookctl.register import ObjectId

WORKFLOWS = "workflows"
KUSTOMIZATION = "kustomization.yaml"


def version_conflict(
    name: str, version: str, digest: str, registered_version: str, registered_hash: str
) -> str | None:
    """Why playbook `name` at `version` with source hash `digest` cannot be released over a
    registration of (registered_version, registered_hash), or None."""
    from playbookctl.bump import bump_command  # noqa: PLC0415

    if version != registered_version or registered_hash == digest:
        return None
    return (
        f"content changed but version {version} is already registered with other content; "
        f"bump spec.version: {bump_command(name)}"
    )


def write_problem(root: Path, path: Path) -> str | None:
    """Why register cannot write the file `path` (under root), or None."""

    def rel(p: Path) -> str:
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return str(p)

    if path.is_dir():
        return f"{rel(path)} is a directory; cannot write it"
    for parent in path.parents:
        if parent == root:
            break
        if parent.exists() and not parent.is_dir():
            return f"{rel(parent)} is a file; cannot write {rel(path)}"
    return None


def check_registration_of(pb: Playbook, config: Config) -> list[Finding]:
    """playbook.version-bump and playbook.registration-path for one playbook."""
    from playbookctl.register import parse_registration  # noqa: PLC0415 - register imports lint

    out: list[Finding] = []
    target = config.registry_dir / WORKFLOWS / f"{pb.name}.yaml"
    for path in (target, config.registry_dir / KUSTOMIZATION):
        problem = write_problem(config.root, path)
        if problem:
            out.append(
                Finding(
                    "playbook.registration-path",
                    Severity.ERROR,
                    pb.rel(path),
                    1,
                    1,
                    f"{problem}: register writes this file (remove what is in the way)",
                )
            )
    version = pb.version
    if version is None or pb.workflow is None or not target.is_file():
        return out
    try:
        reg = parse_registration(target.read_bytes(), pb.name)
        digest = source_hash(pb.dir, config.platforms)  # as plan hashes it
    except (OSError, FatalError):
        return out  # unreadable: load.* and playbook.special-file say why
    if reg is None:
        return out
    reason = version_conflict(pb.name, version, digest, reg.version, reg.source_hash)
    if reason:
        out.append(
            pb.workflow.finding(
                "playbook.version-bump",
                ("spec", "version"),
                f"{reason} ({pb.rel(target)} registers {version} from "
                f"{reg.source_hash or 'no source hash'}, this directory hashes to {digest}); "
                "the release refuses it",
            )
        )
    return out


@dataclass(frozen=True)
class Collision:
    """An object playbook `name`'s rbac.yaml defines that `others` (files) define too."""

    name: str
    oid: ObjectId
    others: tuple[str, ...]

    @property
    def reason(self) -> str:
        from playbookctl.register import object_label  # noqa: PLC0415 - register imports lint

        return (
            f"playbooks/{self.name}/{RBAC_FILE} defines {object_label(self.oid)}, which "
            f"{', '.join(self.others)} defines too: kustomize refuses to build registry/ with an "
            "object defined twice, and Argo CD would sync nothing; give it a name of its own "
            f"(with {self.name} in it)"
        )


def colliding_objects(
    staying: Mapping[str, str | bytes | None], defining: Mapping[str, str | bytes | None]
) -> dict[str, list[Collision]]:
    """The objects each playbook of `defining` (name -> its rbac.yaml) defines that a file of
    `staying` (shown path -> a registration that stays in registry/) or another playbook of
    `defining` defines too, in the order its rbac.yaml defines them. kustomize refuses to build
    registry/ with an object defined twice, so Argo CD would sync nothing at all
    (verify.duplicate-object, once it is committed). Objects are told apart as kustomize does
    (object_id). `plan` refuses each playbook it would register for the first; lint reports
    every one (playbook.duplicate-object)."""
    from playbookctl.register import object_id, parse_documents  # noqa: PLC0415

    owners: dict[ObjectId, list[str]] = {}
    for shown, text in staying.items():
        stays = {object_id(d) for d in parse_documents(text) or []}
        for oid in (i for i in stays if i is not None):
            owners.setdefault(oid, []).append(shown)
    mine: dict[str, list[ObjectId]] = {}
    for name, text in defining.items():
        new = [object_id(d) for d in parse_documents(text) or []]
        mine[name] = [oid for oid in new if oid is not None]
        for oid in set(mine[name]):
            owners.setdefault(oid, []).append(f"playbooks/{name}/{RBAC_FILE}")
    out: dict[str, list[Collision]] = {}
    for name, oids in mine.items():
        own = f"playbooks/{name}/{RBAC_FILE}"
        for oid in dict.fromkeys(oids):  # an object defined twice in one file: once here
            others = tuple(f for f in owners[oid] if f != own)
            if others:
                out.setdefault(name, []).append(Collision(name, oid, others))
    return out


def duplicate_object_findings(playbooks: Sequence[Playbook], config: Config) -> list[Finding]:
    """playbook.duplicate-object for the linted `playbooks`, against every playbook of the tree.
    A release registers each playbook from its rbac.yaml and drops the registrations of those
    that are gone, so the tree's rbac.yaml files are what registry/ will hold."""
    from playbookctl.register import object_id  # noqa: PLC0415 - register imports lint

    playbooks_dir = config.playbooks_dir.resolve()
    texts: dict[str, str | bytes | None] = {}
    for name in discover(config):
        # Unreadable or too large: its own load finding says so, and plan reads nothing either.
        path = playbooks_dir / name / RBAC_FILE
        texts[name] = read_text_file(path, None, config.max_file_bytes)[0]
    collisions = colliding_objects({}, texts)
    out: list[Finding] = []
    for pb in playbooks:
        if pb.dir.parent.resolve() != playbooks_dir or not pb.rbac_readable:
            continue
        for collision in collisions.get(pb.name, []):
            # The document that defines it (the first, if the loaders ever disagree on a name).
            doc = next((d for d in pb.rbac if object_id(d.data) == collision.oid), pb.rbac[0])
            out.append(
                doc.finding(
                    "playbook.duplicate-object",
                    ("metadata", "name"),
                    f"{collision.reason}; the release refuses it",
                )
            )
    return out


ACTION_TYPE_RULE = "workflow.action-type"


def pending_action_type_hint(config: Config, registration: Document) -> str:
    """What to do when a registration names an ActionType the pull request deletes, "" when
    the tree does not explain it. The registration is what the cluster runs until the next
    release rewrites (or removes) it, so its ActionType must stay until then: after deleting
    a playbook, `register` removes the registration at once (README, "Continuous
    integration"); a playbook moved to another ActionType keeps the old one a release long."""
    path = (config.root / registration.file).resolve()
    if path.parent != (config.registry_dir / WORKFLOWS).resolve():
        return ""
    name = path.stem
    data = registration.data
    spec = data.get("spec") if isinstance(data, dict) else None
    registered = spec.get("actionType") if isinstance(spec, dict) else None
    workflow = config.playbooks_dir / name / WORKFLOW_FILE
    if not workflow.is_file():
        return (
            f"; playbooks/{name}/ is gone and the release removes this registration: run "
            "`playbookctl register` to remove it in this pull request, with the ActionType"
        )
    docs = load_file(workflow, str(workflow), config.max_file_bytes).documents
    now = docs[0].get(("spec", "actionType")) if len(docs) == 1 else None
    if not isinstance(now, str) or now == registered:
        return ""
    return (
        f"; it is the registered version of {name}, which the cluster runs until a release "
        f"registers playbooks/{name}/ (which names {now!r}): keep ActionType {registered!r} "
        "until then, and delete it in a later pull request"
    )


def with_pending_hint(
    config: Config, registration: Document, findings: Sequence[Finding]
) -> list[Finding]:
    """findings of a registration, a missing ActionType's explained by pending_action_type_hint."""
    if not any(f.rule == ACTION_TYPE_RULE for f in findings):
        return list(findings)
    hint = pending_action_type_hint(config, registration)
    return [
        f._replace(message=f.message + hint) if f.rule == ACTION_TYPE_RULE and hint else f
        for f in findings
    ]
