"""Scaffold stage: a new playbook directory (and its ActionType when missing) that lints clean.

`scaffold()` renders every file in memory, writes them into a hidden temporary directory beside
the target and renames it into place, so an interrupted run leaves either the whole playbook or
nothing (playbook discovery skips hidden directories). The ActionType file is linked into place
the same way and never overwrites an existing file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from playbookctl.config import Config
from playbookctl.errors import FatalError, UsageError
from playbookctl.lint.action_type import (
    PLACEHOLDER_PREFIX,
    SYNC_WAVE,
    WAVE_ACTION_TYPE,
    kebab_case,
)
from playbookctl.lint.playbook import SCRIPT_PLACEHOLDER
from playbookctl.load import go_reads_as_string, load_file, pyyaml_scalar
from playbookctl.playbook import NAME_RE

# alpine/k8s (Alpine with bash, kubectl and jq), pinned by the multi-arch digest published in
# the Renovate-maintained Dockerfile of github.com/policy-as-versioned-code/policy-checker.
# The sample playbooks use the same pin; bump both together.
BASE_IMAGE = (
    "docker.io/alpine/k8s:1.34.1"
    "@sha256:ec714df3813b5405292860f8a1c55c5727bf8c33c88992f1e981efad8065547f"
)
BASE_IMAGE_SOURCE = (
    "the Renovate-maintained Dockerfile of github.com/policy-as-versioned-code/policy-checker"
)
# A numeric non-root user: Kubernaut runs steps with runAsNonRoot, which needs a numeric UID.
RUN_AS_USER = 65532

ACTION_TYPE_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
MAX_NAME = 63
MAX_ACTION_TYPE = 255
SCRIPT = "remediate.sh"


@dataclass(frozen=True)
class ScaffoldResult:
    playbook_dir: Path
    files: tuple[str, ...]
    action_type_file: Path
    action_type_created: bool


def name_problem(name: str) -> str | None:
    """Why NAME cannot name a playbook, or None."""
    if len(name) > MAX_NAME:
        return f"playbook name {name!r} is longer than {MAX_NAME} characters"
    if not NAME_RE.match(name):
        return (
            f"playbook name {name!r} is not a DNS-1123 label: lower-case letters, digits and "
            "'-', starting and ending with a letter or digit"
        )
    return None


def action_type_problem(action_type: str) -> str | None:
    """Why TYPE cannot name an ActionType, or None."""
    if len(action_type) > MAX_ACTION_TYPE:
        return f"action type {action_type!r} is longer than {MAX_ACTION_TYPE} characters"
    if not ACTION_TYPE_RE.match(action_type):
        return (
            f"action type {action_type!r} is not PascalCase: an upper-case letter followed by "
            "letters and digits only (e.g. RestartDeployment)"
        )
    return None


def _q(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar, so any user text stays one value.
    return json.dumps(text, ensure_ascii=False)


def _s(text: str) -> str:
    """`text` as a YAML scalar that both the cluster (go-yaml v2) and PyYAML read as that string:
    plain when it is one, else quoted. A valid name can still be `yes`, `on`, `null`, `123`
    or `1e3`, which a plain scalar turns into a boolean, null or number."""
    if go_reads_as_string(text) and pyyaml_scalar(text) == text:
        return text
    return _q(text)


def find_action_type(config: Config, action_type: str) -> Path | None:
    """The file under registry/action-types/ that defines ActionType `action_type`, if any."""
    base = config.action_types_dir
    if not base.is_dir():
        return None
    for path in sorted(base.iterdir()):
        if path.suffix not in {".yaml", ".yml"} or not path.is_file():
            continue
        result = load_file(path, str(path), config.max_file_bytes)
        for doc in result.documents:
            if doc.get(("kind",)) == "ActionType" and doc.get(("spec", "name")) == action_type:
                return path
    return None


def render_workflow(name: str, action_type: str, description: str | None, config: Config) -> str:
    todo = PLACEHOLDER_PREFIX  # lint warns (playbook.placeholder-text) while these remain
    what = description or f"{todo} say what {name} does to its target."
    return f"""\
# The RemediationWorkflow registered for this playbook. The release fills in
# spec.execution.bundle; bump spec.version whenever the playbook changes.
apiVersion: kubernaut.ai/v1alpha1
kind: RemediationWorkflow
metadata:
  name: {_s(name)}
  namespace: {_s(config.workflow_namespace)}
spec:
  version: "0.1.0"
  description:
    what: {_q(what)}
    whenToUse: "{todo} the signals and conditions under which {name} is the right remediation."
    whenNotToUse: "{todo} when it must not run, and what to do instead."
    preconditions: "{todo} what must hold before it runs (the script checks these)."
  actionType: {_s(action_type)}
  labels:
    severity: [warning]
    environment: ["*"]
    component: [apps/v1/Deployment]
    priority: P3
    # cluster: ["*"]   # with `fleet = true`: the clusters it serves ("*": all of them)
  # Facts Kubernaut detects about the target. Booleans are YAML booleans, unquoted: a string
  # ("true") fails Kubernaut's decoding and takes its whole workflow catalog down.
  # detectedLabels:
  #   hpaEnabled: true
  execution:
    engine: tekton   # required: Kubernaut refuses a workflow without it
    serviceAccountName: {name}-runner
  parameters:
    - name: TARGET_RESOURCE_KIND
      type: string
      required: true
      description: Kind of the target resource (filled in by Kubernaut's agent).
    - name: TARGET_RESOURCE_NAME
      type: string
      required: true
      description: Name of the target resource (filled in by Kubernaut's agent).
    - name: TARGET_RESOURCE_NAMESPACE
      type: string
      required: false
      description: Namespace of the target; empty for cluster-scoped kinds.
      default: ""
"""


def render_containerfile() -> str:
    return f"""\
# Base: alpine/k8s (bash, kubectl, jq), pinned by the multi-arch digest published in
# {BASE_IMAGE_SOURCE}.
# Bump tag and digest together; never use :latest.
FROM {BASE_IMAGE}

# kubectl writes its discovery cache under $HOME; the non-root user has no home of its own.
ENV HOME=/tmp

# {SCRIPT} is committed with its executable bit, which COPY keeps; root owns it, so the
# runtime user cannot modify it.
COPY {SCRIPT} /usr/local/bin/{SCRIPT}

# Kubernaut runs steps with runAsNonRoot: a numeric non-root user satisfies that check.
USER {RUN_AS_USER}:{RUN_AS_USER}
ENTRYPOINT ["/usr/local/bin/{SCRIPT}"]
"""


def render_script(name: str) -> str:
    # Single-quoted jsonpath and ${...} expansions are bash's, not Python's: keep this a plain
    # string and substitute the name only.
    script = r"""#!/usr/bin/env bash
# __NAME__: validate the target, act on it, verify the result.
#
# Usage: remediate.sh [validate|act|verify|all]   (default: all)
# Parameters arrive as environment variables of the same names; TARGET_RESOURCE
# (namespace/kind/name, or kind/name when cluster-scoped) is logged. A dependency <n> is
# mounted read-only at /run/kubernaut/secrets/<n> or /run/kubernaut/configmaps/<n>.
set -euo pipefail

readonly PLAYBOOK=__NAME__

log() { printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PLAYBOOK" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

require() {
  local name="$1"
  [[ -n "${!name:-}" ]] || die "parameter $name is required but empty"
}

read_inputs() {
  require TARGET_RESOURCE_KIND
  require TARGET_RESOURCE_NAME
  TARGET_RESOURCE_NAMESPACE="${TARGET_RESOURCE_NAMESPACE:-}"
  [[ "$TARGET_RESOURCE_NAME" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] ||
    die "TARGET_RESOURCE_NAME '$TARGET_RESOURCE_NAME' is not a valid resource name"
  NS_ARGS=()
  if [[ -n "$TARGET_RESOURCE_NAMESPACE" ]]; then
    NS_ARGS=(--namespace "$TARGET_RESOURCE_NAMESPACE")
  fi
  log "target: $TARGET_RESOURCE_KIND" \
    "${TARGET_RESOURCE_NAMESPACE:+$TARGET_RESOURCE_NAMESPACE/}$TARGET_RESOURCE_NAME" \
    "(signal target: ${TARGET_RESOURCE:-unset})"
}

validate() {
  kubectl get "${NS_ARGS[@]}" "$TARGET_RESOURCE_KIND" "$TARGET_RESOURCE_NAME" >/dev/null ||
    die "$TARGET_RESOURCE_KIND $TARGET_RESOURCE_NAME not found or not readable"
  # TODO: check the preconditions declared in workflow.yaml; die with a clear reason if one fails.
  log "validate: ok"
}

act() {
  # TODO: the remediation itself (kubectl ...). Until then the playbook fails instead of
  # reporting a success it did not earn (errexit turns the return 1 into exit 1).
  log "ERROR: act: __PLACEHOLDER__"
  return 1
}

verify() {
  # TODO: check the remediation took effect (rollout status, replica counts, conditions).
  log "ERROR: verify: __PLACEHOLDER__"
  return 1
}

main() {
  local phase="${1:-all}"
  read_inputs
  case "$phase" in
    validate) validate ;;
    act) act ;;
    verify) verify ;;
    all)
      # Called one by one, not chained with &&, so that errexit stays active inside each.
      validate
      act
      verify
      ;;
    *) die "unknown phase '$phase' (expected validate, act, verify or all)" ;;
  esac
}

main "$@"
"""
    return script.replace("__NAME__", name).replace("__PLACEHOLDER__", SCRIPT_PLACEHOLDER)


def render_rbac(name: str, config: Config) -> str:
    return f"""\
# The identity {name} runs as: a ServiceAccount in {config.run_namespace} and the least
# privilege its script needs. Replace the rule below with exactly what remediate.sh calls.
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}-runner
  namespace: {_s(config.run_namespace)}
  labels:
    kubernaut.ai/workflow: {_s(name)}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: kubernaut-workflow-{name}
  labels:
    kubernaut.ai/workflow: {_s(name)}
rules:
  - apiGroups: ["apps"]
    resources: ["deployments"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubernaut-workflow-{name}
  labels:
    kubernaut.ai/workflow: {_s(name)}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: kubernaut-workflow-{name}
subjects:
  - kind: ServiceAccount
    name: {name}-runner
    namespace: {_s(config.run_namespace)}
"""


def render_dockerignore() -> str:
    return f"# Only the script goes into the image.\n*\n!{SCRIPT}\n"


def render_action_type(action_type: str, description: str | None, config: Config) -> str:
    todo = PLACEHOLDER_PREFIX
    what = description or f"{todo} say what the {action_type} action does."
    return f"""\
# File and metadata.name: the kebab-case form of spec.name. The sync wave makes Argo CD apply
# it before the RBAC and workflows naming it (and prune it after them).
apiVersion: kubernaut.ai/v1alpha1
kind: ActionType
metadata:
  name: {_s(kebab_case(action_type))}
  namespace: {_s(config.workflow_namespace)}
  annotations:
    {SYNC_WAVE}: "{WAVE_ACTION_TYPE}"
spec:
  name: {_s(action_type)}
  description:
    what: {_q(what)}
    whenToUse: "{todo} the conditions under which {action_type} is the right kind of action."
"""


def render_files(
    name: str, action_type: str, description: str | None, config: Config
) -> dict[str, tuple[str, int]]:
    """Relative path -> (content, mode) for every file of a new playbook."""
    return {
        "workflow.yaml": (render_workflow(name, action_type, description, config), 0o644),
        "Containerfile": (render_containerfile(), 0o644),
        SCRIPT: (render_script(name), 0o755),
        "rbac.yaml": (render_rbac(name, config), 0o644),
        ".dockerignore": (render_dockerignore(), 0o644),
    }


def _write_dir(target: Path, files: dict[str, tuple[str, int]]) -> None:
    """Create `target` holding `files`, all at once: temp directory, then rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for rel, (content, mode) in files.items():
            path = tmp / rel
            path.write_text(content, encoding="utf-8")
            path.chmod(mode)
        tmp.chmod(0o755)
        if target.exists():  # created meanwhile; rename would replace an empty directory
            raise FatalError(f"{target} already exists")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_new_file(target: Path, content: str) -> None:
    """Create `target` atomically, refusing to replace an existing file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        tmp.chmod(0o644)
        try:
            os.link(tmp, target)  # fails if target exists, unlike rename
        except FileExistsError:
            raise FatalError(f"{target} already exists") from None
    finally:
        tmp.unlink(missing_ok=True)


def scaffold(
    config: Config, name: str, action_type: str, description: str | None = None
) -> ScaffoldResult:
    """Create playbooks/NAME/ and, if no ActionType TYPE exists, registry/action-types/<type>.yaml.

    Raises UsageError for an invalid NAME or TYPE, FatalError when the playbook (or the
    ActionType file it would create) already exists.
    """
    for problem in (name_problem(name), action_type_problem(action_type)):
        if problem:
            raise UsageError(problem)
    target = config.playbooks_dir / name
    if target.exists() or target.is_symlink():
        raise FatalError(f"{display_path(target, config)} already exists; choose another name")

    existing = find_action_type(config, action_type)
    at_file = existing or config.action_types_dir / f"{kebab_case(action_type)}.yaml"
    if existing is None and at_file.exists():
        raise FatalError(
            f"{display_path(at_file, config)} exists but does not define ActionType {action_type}; "
            "fix it or choose another action type"
        )

    # Checked before anything is written: a file where a directory must go would otherwise
    # fail half-way, after the playbook directory exists.
    for path in (target, at_file):
        _require_parent_dirs(path, config)

    files = render_files(name, action_type, description, config)
    try:
        _write_dir(target, files)
        if existing is None:
            try:
                _write_new_file(at_file, render_action_type(action_type, description, config))
            except BaseException:
                # Leave nothing half-done: the playbook names an ActionType that must exist.
                shutil.rmtree(target, ignore_errors=True)
                raise
    except OSError as exc:
        where = display_path(Path(exc.filename), config) if exc.filename else "files"
        raise FatalError(f"cannot create {where}: {exc.strerror or exc}") from None
    return ScaffoldResult(
        playbook_dir=target,
        files=tuple(sorted(files)),
        action_type_file=at_file,
        action_type_created=existing is None,
    )


def _require_parent_dirs(path: Path, config: Config) -> None:
    """Every existing ancestor of path up to the root is a directory."""
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise FatalError(
                f"{display_path(parent, config)} is not a directory; cannot create "
                f"{display_path(path, config)}"
            )
        if parent == config.root:
            return


def display_path(path: Path, config: Config) -> str:
    """`path` relative to the repository root when inside it, as messages show it."""
    try:
        return path.resolve().relative_to(config.root.resolve()).as_posix()
    except ValueError:
        return str(path)
