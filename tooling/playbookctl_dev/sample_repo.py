"""A small playbook repository written from templates: tests' throwaway repos and the benchmarks.

Each playbook passes lint: a RemediationWorkflow naming an ActionType, RBAC for its service
account, a Containerfile FROM a pinned base that is never pulled (tests and demos map it to a
locally built image through PLAYBOOKCTL_BASE_IMAGE_OVERRIDES) and a script.
"""

from __future__ import annotations

from pathlib import Path

# A pinned base that is never pulled.
BASE_IMAGE = (
    "registry.example.invalid/base/busybox:1.36@sha256:"
    "0000000000000000000000000000000000000000000000000000000000000001"
)

ACTION_TYPE = """\
apiVersion: kubernaut.ai/v1alpha1
kind: ActionType
metadata:
  name: {slug}
  namespace: kubernaut-system
  annotations:
    argocd.argoproj.io/sync-wave: "-2"
spec:
  name: {name}
  description:
    what: Does {name} to the target.
    whenToUse: When the target needs {name}.
"""

WORKFLOW = """\
apiVersion: kubernaut.ai/v1alpha1
kind: RemediationWorkflow
metadata:
  name: {name}
  namespace: kubernaut-system
spec:
  version: "{version}"
  description:
    what: Restarts the target ({name}).
    whenToUse: When the target is stuck.
  actionType: {action_type}
  labels:
    severity: [critical]
    environment: ["*"]
    component: [apps/v1/Deployment]
    priority: P1
  execution:
    engine: tekton
    serviceAccountName: {name}-runner
  parameters:
    - name: TARGET_RESOURCE_NAME
      type: string
      required: true
      description: Name of the target.
    - name: TARGET_RESOURCE_NAMESPACE
      type: string
      required: true
      description: Namespace of the target.
"""

RBAC = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}-runner
  namespace: kubernaut-workflows
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {name}-runner
  namespace: kubernaut-workflows
rules:
  - apiGroups: [apps]
    resources: [deployments]
    verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {name}-runner
  namespace: kubernaut-workflows
subjects:
  - kind: ServiceAccount
    name: {name}-runner
    namespace: kubernaut-workflows
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {name}-runner
"""

CONTAINERFILE = """\
FROM {base}
COPY remediate.sh /usr/local/bin/remediate.sh
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/remediate.sh"]
"""

SCRIPT = """\
#!/bin/sh
set -eu
echo "remediating ${{TARGET_RESOURCE_NAMESPACE}}/${{TARGET_RESOURCE_NAME}} ({marker})"
"""


def write_playbook(
    root: Path,
    name: str,
    version: str = "1.0.0",
    *,
    action_type: str = "RestartDeployment",
    marker: str = "v1",
    rbac: bool = True,
    base: str = BASE_IMAGE,
) -> Path:
    """A small playbook that passes lint; `marker` changes its content without its version."""
    d = root / "playbooks" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "workflow.yaml").write_text(
        WORKFLOW.format(name=name, version=version, action_type=action_type)
    )
    if rbac:
        (d / "rbac.yaml").write_text(RBAC.format(name=name))
    elif (d / "rbac.yaml").exists():
        (d / "rbac.yaml").unlink()
    (d / "Containerfile").write_text(CONTAINERFILE.format(base=base))
    script = d / "remediate.sh"
    script.write_text(SCRIPT.format(marker=marker))
    script.chmod(0o755)
    return d


def write_action_type(root: Path, name: str = "RestartDeployment") -> Path:
    slug = "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")
    path = root / "registry" / "action-types" / f"{slug}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ACTION_TYPE.format(name=name, slug=slug))
    return path
