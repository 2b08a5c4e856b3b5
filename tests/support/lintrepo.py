"""A small playbook repository in a temp dir, for the lint, render and CLI tests.

`good_playbook()` returns the files of a playbook that lints clean; tests change one thing in it
(`edit`) and assert on what the linter says. Digests here are syntactically valid test values,
not published ones: nothing in these tests pulls an image.
"""

from __future__ import annotations

from pathlib import Path

PYPROJECT = """\
[project]
name = "fixture"
version = "0"

[tool.playbookctl]
registry = "registry.example.com"
"""

ACTION_TYPE = """\
apiVersion: kubernaut.ai/v1alpha1
kind: ActionType
metadata:
  name: restart-deployment
  namespace: kubernaut-system
  annotations:
    argocd.argoproj.io/sync-wave: "-2"
spec:
  name: RestartDeployment
  description:
    what: Rolling restart of a Deployment
    whenToUse: Pods are wedged but the spec is right
"""

DIGEST = "sha256:" + "ab" * 32

WORKFLOW = """\
apiVersion: kubernaut.ai/v1alpha1
kind: RemediationWorkflow
metadata:
  name: {name}
  namespace: kubernaut-system
spec:
  version: "1.0.0"
  description:
    what: Restart a deployment
    whenToUse: Pods are wedged
  actionType: RestartDeployment
  labels:
    severity: [critical]
    environment: ["*"]
    component: [apps/v1/Deployment]
    priority: P2
  execution:
    engine: tekton
    serviceAccountName: {name}-runner
  dependencies:
    secrets:
      - name: creds
  parameters:
    - name: TARGET_RESOURCE_NAME
      type: string
      required: true
      description: Deployment name
    - name: TIMEOUT_SECONDS
      type: integer
      required: false
      description: How long to wait
      default: 600
"""

CONTAINERFILE = f"""\
FROM registry.example.com/base/busybox:1.36@{DIGEST}
COPY remediate.sh /usr/local/bin/remediate.sh
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/remediate.sh"]
"""

SCRIPT = """\
#!/bin/sh
set -eu
echo "restarting $TARGET_RESOURCE_NAME within ${TIMEOUT_SECONDS}s"
"""

RBAC = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}-runner
  namespace: kubernaut-workflows
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {name}
rules:
  - apiGroups: ["apps"]
    resources: ["deployments"]
    verbs: ["get", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {name}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {name}
subjects:
  - kind: ServiceAccount
    name: {name}-runner
    namespace: kubernaut-workflows
"""

# An authored pipeline equivalent to the wrapper, with two tasks.
PIPELINE = """\
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: workflow
spec:
  params:
    - name: TARGET_RESOURCE_NAME
      type: string
    - name: TIMEOUT_SECONDS
      type: string
      default: "600"
    - name: TARGET_RESOURCE
      type: string
  workspaces:
    - name: secret-creds
  tasks:
    - name: act
      params:
        - name: NAME
          value: $(params.TARGET_RESOURCE_NAME)
      workspaces:
        - name: creds
          workspace: secret-creds
      taskSpec:
        params:
          - name: NAME
            type: string
        workspaces:
          - name: creds
            mountPath: /run/kubernaut/secrets/creds
            readOnly: true
        steps:
          - name: act
            image: playbook://self
            env:
              - name: TARGET_RESOURCE_NAME
                value: $(params.NAME)
              - name: TIMEOUT_SECONDS
                value: $(params.TIMEOUT_SECONDS)
            script: |
              #!/bin/sh
              remediate.sh act
    - name: verify
      runAfter: [act]
      taskSpec:
        steps:
          - name: verify
            image: playbook://self
            command: ["remediate.sh", "verify"]
"""


def good_playbook(name: str = "restart-deployment", *, pipeline: bool = False) -> dict[str, str]:
    files = {
        "workflow.yaml": WORKFLOW.format(name=name),
        "Containerfile": CONTAINERFILE,
        "remediate.sh": SCRIPT,
        "rbac.yaml": RBAC.format(name=name),
    }
    if pipeline:
        files["pipeline.yaml"] = PIPELINE
    return files


def edit(text: str, old: str, new: str) -> str:
    """Replace the one occurrence of old (a test that edits must say exactly what it changes)."""
    assert text.count(old) == 1, f"expected exactly one {old!r}"
    return text.replace(old, new)


def edits(text: str, *changes: tuple[str, str]) -> str:
    """`edit` for each (old, new) in turn."""
    for old, new in changes:
        text = edit(text, old, new)
    return text


def make_repo(root: Path, playbooks: dict[str, dict[str, str | bytes]] | None = None) -> Path:
    """A repository at root: pyproject, the RestartDeployment ActionType and the playbooks."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    at = root / "registry" / "action-types"
    at.mkdir(parents=True, exist_ok=True)
    (at / "restart-deployment.yaml").write_text(ACTION_TYPE)
    for name, files in (playbooks or {}).items():
        write_playbook(root / "playbooks" / name, files)
    return root


def write_playbook(directory: Path, files: dict[str, str | bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        if rel.endswith(".sh"):
            path.chmod(0o755)
    return directory
