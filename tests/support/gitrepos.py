"""Real git for tests: bare remotes in temp dirs, clones, and throwaway playbook repositories.

Like pre-commit's testing helpers: every repository a test touches is made here, under tmp_path,
with the identity the autouse fixture in conftest.py pins through the environment.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

# A pinned base that never gets pulled: tests map it to a locally built image through
# PLAYBOOKCTL_BASE_IMAGE_OVERRIDES.
TEST_BASE_IMAGE = (
    "registry.example.invalid/base/busybox:1.36@sha256:"
    "0000000000000000000000000000000000000000000000000000000000000001"
)

PYPROJECT = """\
[project]
name = "playbooks-under-test"
version = "0"

[tool.playbookctl]
registry = "registry.example.invalid"
image-repo = "t/images"
bundle-repo = "t/bundles"
push-retries = 5
"""

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


def git(cwd: Path, *args: str) -> str:
    """Run the real git binary (tests check what a user would see)."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip()


def init_bare(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "--bare", "--initial-branch=main")
    return path


def clone(remote: Path, dest: Path) -> Path:
    git(dest.parent, "clone", "--quiet", str(remote), str(dest))
    return dest


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def write_playbook(
    root: Path,
    name: str,
    version: str = "1.0.0",
    *,
    action_type: str = "RestartDeployment",
    marker: str = "v1",
    rbac: bool = True,
    base: str = TEST_BASE_IMAGE,
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


@dataclass
class PlaybookRepo:
    """A working clone of a bare remote holding a playbook repository."""

    path: Path
    remote: Path

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def commit_all(self, message: str) -> str:
        return commit_all(self.path, message)

    def push(self) -> None:
        self.git("push", "--quiet", "origin", "HEAD:refs/heads/main")

    def remote_head(self, branch: str = "main") -> str:
        return git(self.remote, "rev-parse", f"refs/heads/{branch}")

    def remote_count(self, branch: str = "main") -> int:
        return int(git(self.remote, "rev-list", "--count", f"refs/heads/{branch}"))

    def write_playbook(self, name: str, version: str = "1.0.0", **kw: object) -> Path:
        return write_playbook(self.path, name, version, **kw)  # type: ignore[arg-type]

    def another_clone(self, dest: Path) -> PlaybookRepo:
        return PlaybookRepo(clone(self.remote, dest), self.remote)


MakeRepo = Callable[..., PlaybookRepo]


def make_playbook_repo(
    base_dir: Path,
    playbooks: Mapping[str, str] | None = None,
    *,
    copy_from: Path | None = None,
    pyproject: str = PYPROJECT,
) -> PlaybookRepo:
    """A bare remote plus a clone whose first commit holds pyproject, playbooks and registry.

    playbooks maps name -> version for generated test playbooks; copy_from copies an existing
    repository's playbooks/ and registry/action-types/ instead (the demo's scratch copy).
    """
    remote = init_bare(base_dir / "remote.git")
    work = base_dir / "work"
    work.mkdir(parents=True)
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "remote", "add", "origin", str(remote))
    (work / "pyproject.toml").write_text(pyproject)
    if copy_from is not None:
        shutil.copytree(copy_from / "playbooks", work / "playbooks")
        shutil.copytree(copy_from / "registry" / "action-types", work / "registry" / "action-types")
    else:
        write_action_type(work)
        for name, version in (playbooks or {}).items():
            write_playbook(work, name, version)
    (work / ".gitignore").write_text("__pycache__/\n")
    commit_all(work, "initial playbooks")
    git(work, "push", "--quiet", "-u", "origin", "main")
    return PlaybookRepo(work, remote)


@pytest.fixture
def bare_remote(tmp_path: Path) -> Path:
    return init_bare(tmp_path / "remote.git")


@pytest.fixture
def playbook_repo_factory(tmp_path: Path) -> MakeRepo:
    counter = iter(range(1000))

    def make(playbooks: Mapping[str, str] | None = None, **kw: object) -> PlaybookRepo:
        return make_playbook_repo(tmp_path / f"repo{next(counter)}", playbooks, **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture
def playbook_repo(playbook_repo_factory: MakeRepo) -> PlaybookRepo:
    """Two playbooks (alpha 1.0.0, beta 2.0.0), committed and pushed to a bare remote."""
    return playbook_repo_factory({"alpha": "1.0.0", "beta": "2.0.0"})


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")
