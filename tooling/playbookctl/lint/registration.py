"""A playbook against its registration in registry/: what `plan` and `register` would refuse.

These are the refusals' own implementations: `plan` calls `version_conflict` to refuse a
playbook, `register` calls `write_problem` before writing; `playbookctl lint` runs the same
functions through the rules below, so a pull request reports them, with file and line, before
the release meets them.

- playbook.version-bump: the playbook's spec.version is registered with another source hash
  (its content changed without a version bump); `plan` and the release refuse it.
- playbook.registration-path: registry/workflows/<name>.yaml or registry/kustomization.yaml is
  a directory, or a parent of it is a file: register cannot write the registration.
"""

from __future__ import annotations

from pathlib import Path

from playbookctl.config import Config
from playbookctl.errors import FatalError
from playbookctl.findings import Finding, Severity
from playbookctl.playbook import Playbook, source_hash

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
