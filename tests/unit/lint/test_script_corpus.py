# ruff: noqa: E501 - the scripts are data, in the style of the demo scenarios they imitate
"""The script contract on whole remediation scripts written in the style of Kubernaut's demo
scenarios (POSIX sh or bash, phases, jq pipes, wait loops), each with its RBAC: exactly the gaps
a reviewer finds by reading kubectl's code, and nothing else."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from playbookctl.lint import script
from playbookctl.load import load_text

ROLLBACK = """\
#!/bin/sh
set -e
echo "=== Phase 1: Validate ==="
if [ "$TARGET_RESOURCE_KIND" = "ReplicaSet" ]; then
  OWNER=$(kubectl get replicaset "$TARGET_RESOURCE_NAME" -n "$TARGET_RESOURCE_NAMESPACE" \\
    -o jsonpath='{.metadata.ownerReferences[0].name}' 2>/dev/null || true)
  [ -n "$OWNER" ] && TARGET_RESOURCE_NAME="$OWNER"
fi
CURRENT_REV=$(kubectl get "deployment/$TARGET_RESOURCE_NAME" -n "$TARGET_RESOURCE_NAMESPACE" \\
  -o jsonpath='{.metadata.annotations.deployment\\.kubernetes\\.io/revision}')
if [ "$CURRENT_REV" -le 1 ]; then
  echo "ERROR: no previous revision"; exit 1
fi
echo "=== Phase 2: Action ==="
kubectl rollout undo "deployment/$TARGET_RESOURCE_NAME" -n "$TARGET_RESOURCE_NAMESPACE"
echo "=== Phase 3: Verify ==="
kubectl rollout status "deployment/$TARGET_RESOURCE_NAME" -n "$TARGET_RESOURCE_NAMESPACE" --timeout=120s
for i in $(seq 1 12); do
  READY=$(kubectl get pods -n "$TARGET_RESOURCE_NAMESPACE" -l "app=$TARGET_RESOURCE_NAME" \\
    -o json | jq '[.items[] | select(.status.phase=="Running")] | length')
  [ "$READY" -gt 0 ] && break
  sleep "$POLL_INTERVAL"
done
"""
ROLLBACK_RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: crashloop-rollback-runner}
rules:
  - apiGroups: ["apps"]
    resources: ["deployments"]
    verbs: ["get", "list", "patch"]
  - apiGroups: ["apps"]
    resources: ["replicasets"]
    verbs: ["list"]
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list"]
"""

DRAIN = """\
#!/bin/bash
set -euo pipefail
NODE="$TARGET_RESOURCE_NAME"
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
k() { kubectl --request-timeout=30s "$@"; }
log "cordoning $NODE"
k cordon "$NODE"
drain_args=(drain "$NODE" --ignore-daemonsets --delete-emptydir-data --timeout="${DRAIN_TIMEOUT}s")
k "${drain_args[@]}"
UNSCHED=$(k get node "$NODE" -o jsonpath='{.spec.unschedulable}')
[[ "$UNSCHED" == "true" ]] || { log "node is schedulable again"; exit 1; }
k get pods --all-namespaces --field-selector "spec.nodeName=$NODE" -o name | wc -l
"""
DRAIN_RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: node-drain-runner}
rules:
  - apiGroups: [""]
    resources: ["nodes"]
    verbs: ["get", "patch"]
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list"]
  - apiGroups: [""]
    resources: ["pods/eviction"]
    verbs: ["create"]
"""

HPA = """\
#!/bin/sh
set -eu
HPA_NAME=$(kubectl get hpa -n "$TARGET_RESOURCE_NAMESPACE" -o json \\
  | jq -r --arg d "$TARGET_RESOURCE_NAME" '.items[] | select(.spec.scaleTargetRef.name==$d) | .metadata.name')
CURRENT_MAX=$(kubectl get hpa "$HPA_NAME" -n "$TARGET_RESOURCE_NAMESPACE" -o jsonpath='{.spec.maxReplicas}')
NEW_MAX=$((CURRENT_MAX + ${MAX_REPLICAS_INCREMENT:-2}))
kubectl patch hpa "$HPA_NAME" -n "$TARGET_RESOURCE_NAMESPACE" --type=merge \\
  -p "{\\"spec\\":{\\"maxReplicas\\":$NEW_MAX}}"
kubectl annotate hpa "$HPA_NAME" -n "$TARGET_RESOURCE_NAMESPACE" \\
  kubernaut.ai/previous-max="$CURRENT_MAX" --overwrite
kubectl wait --for=condition=Ready pod -l "app=$TARGET_RESOURCE_NAME" \\
  -n "$TARGET_RESOURCE_NAMESPACE" --timeout=120s
kubectl apply -f /manifests/pdb.yaml
"""
HPA_RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: hpa-maxed-runner}
rules:
  - apiGroups: ["autoscaling"]
    resources: ["horizontalpodautoscalers"]
    verbs: ["get", "list", "patch"]
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list"]
"""

ROOT = Path(__file__).resolve().parents[3]
TARGET = {"TARGET_RESOURCE_NAME", "TARGET_RESOURCE_KIND", "TARGET_RESOURCE_NAMESPACE"}


@pytest.mark.parametrize(
    ("source", "rbac", "params", "expected"),
    [
        (
            ROLLBACK,
            ROLLBACK_RBAC,
            TARGET,
            [
                ("script.rbac", 5, "get replicasets (apps)"),
                ("script.rbac", 17, "watch deployments (apps)"),
                ("script.variable", 22, "$POLL_INTERVAL"),
            ],
        ),
        (
            DRAIN,
            DRAIN_RBAC,
            TARGET | {"DRAIN_TIMEOUT"},
            [("script.rbac", 9, "get daemonsets (apps)")],
        ),
        (
            HPA,
            HPA_RBAC,
            TARGET,
            [
                ("script.variable", 6, "$MAX_REPLICAS_INCREMENT"),
                ("script.rbac", 11, "watch pods"),
                ("script.unchecked", 13, "the objects come from a file"),
            ],
        ),
    ],
    ids=["rollback", "drain", "hpa"],
)
def test_whole_scripts(
    source: str, rbac: str, params: set[str], expected: list[tuple[str, int, str]]
) -> None:
    env = script.surroundings(
        params, None, None, list(load_text(rbac, "rbac.yaml").documents), "rbac.yaml"
    )
    env.env_known = True
    env.step_env = dict.fromkeys(params, "engine")
    found = script.check_script(source, "remediate.sh", env)
    got = sorted((f.rule, f.line) for f in found)
    assert got == sorted((r, line) for r, line, _ in expected), [f.message for f in found]
    for rule, line, words in expected:
        (f,) = [f for f in found if (f.rule, f.line) == (rule, line)]
        assert words in f.message, f.message


def test_the_corpus_script_reads_a_demo_scenarios_layout(tmp_path: Path) -> None:
    """tooling/scripts/contract_corpus.py, on a workflow laid out as the demo scenarios lay theirs."""
    workflow = tmp_path / "deploy" / "remediation-workflows" / "crashloop"
    workflow.mkdir(parents=True)
    (workflow / "remediate.sh").write_text(ROLLBACK)
    (workflow / "crashloop.yaml").write_text(
        ROLLBACK_RBAC
        + "---\napiVersion: kubernaut.ai/v1alpha1\nkind: RemediationWorkflow\n"
        + "metadata: {name: crashloop}\nspec:\n  parameters:\n"
        + "".join(f"    - name: {p}\n" for p in sorted(TARGET | {"POLL_INTERVAL"}))
    )
    spec = importlib.util.spec_from_file_location(
        "contract_corpus", ROOT / "tooling" / "scripts" / "contract_corpus.py"
    )
    assert spec is not None
    assert spec.loader is not None
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    pairs, found, calls, mapped = corpus.run(tmp_path)
    assert (pairs, calls, mapped) == (1, 5, 5)
    assert sorted((f.rule, f.line) for f in found) == [("script.rbac", 5), ("script.rbac", 17)]
