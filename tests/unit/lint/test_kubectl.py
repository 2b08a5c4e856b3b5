"""lint/kubectl.py: kubectl command lines as the API requests kubectl 1.34 makes."""

from __future__ import annotations

import pytest

from playbookctl.lint import kubectl, shell


def accesses(line: str) -> tuple[set[tuple[str, str, str]], list[str]]:
    (cmd,) = shell.parse(line + "\n").invocations()
    call = kubectl.analyse(cmd.words)
    return {(a.verb, a.group, a.resource) for a in call.accesses}, call.unchecked


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("kubectl get pods", {("list", "", "pods")}),
        ('kubectl get pod "$P" -n "$NS"', {("get", "", "pods")}),
        ("kubectl get deploy/web -o json", {("get", "apps", "deployments")}),
        ('kubectl get "deployment/$NAME"', {("get", "apps", "deployments")}),
        ("kubectl get Deployment.v1.apps web", {("get", "apps", "deployments")}),
        ("kubectl get pods -l app=x -w", {("list", "", "pods"), ("watch", "", "pods")}),
        (
            "kubectl get hpa,pdb",
            {
                ("list", "autoscaling", "horizontalpodautoscalers"),
                ("list", "policy", "poddisruptionbudgets"),
            },
        ),
        ("kubectl describe node n1", {("get", "", "nodes")}),
        ("kubectl delete pod p1 --wait=false", {("delete", "", "pods")}),
        (
            "kubectl delete pod p1",
            {
                ("delete", "", "pods"),
                ("get", "", "pods"),
                ("list", "", "pods"),
                ("watch", "", "pods"),
            },
        ),
        (
            "kubectl delete pods -l app=x --wait=false",
            {("list", "", "pods"), ("delete", "", "pods")},
        ),
        ("kubectl delete cm c", {("delete", "", "configmaps"), ("get", "", "configmaps")}),
        ("kubectl patch deployment web -p '{}'", {("patch", "apps", "deployments")}),
        (
            "kubectl patch deploy web --subresource=scale -p '{}'",
            {("patch", "apps", "deployments/scale")},
        ),
        (
            "kubectl annotate deploy web a=b --overwrite",
            {("get", "apps", "deployments"), ("patch", "apps", "deployments")},
        ),
        ("kubectl label node n1 x-", {("get", "", "nodes"), ("patch", "", "nodes")}),
        ("kubectl scale deploy/web --replicas=2", {("patch", "apps", "deployments/scale")}),
        (
            'kubectl scale sts/db --current-replicas=3 --replicas="$N"',
            {("get", "apps", "statefulsets/scale"), ("update", "apps", "statefulsets/scale")},
        ),
        (
            'kubectl rollout undo deployment "$NAME"',
            {
                ("get", "apps", "deployments"),
                ("patch", "apps", "deployments"),
                ("list", "apps", "replicasets"),
            },
        ),
        (
            "kubectl rollout undo ds/agent",
            {
                ("get", "apps", "daemonsets"),
                ("patch", "apps", "daemonsets"),
                ("list", "apps", "controllerrevisions"),
            },
        ),
        (
            "kubectl rollout restart deploy/web",
            {("get", "apps", "deployments"), ("patch", "apps", "deployments")},
        ),
        (
            "kubectl rollout status deploy/web --timeout=60s",
            {
                ("get", "apps", "deployments"),
                ("list", "apps", "deployments"),
                ("watch", "apps", "deployments"),
            },
        ),
        (
            "kubectl rollout history deploy/web",
            {("get", "apps", "deployments"), ("list", "apps", "replicasets")},
        ),
        (
            "kubectl set image deploy/web app=img:2",
            {("get", "apps", "deployments"), ("patch", "apps", "deployments")},
        ),
        ('kubectl cordon "$NODE"', {("get", "", "nodes"), ("patch", "", "nodes")}),
        (
            'kubectl drain "$NODE" --ignore-daemonsets',
            {
                ("get", "", "nodes"),
                ("patch", "", "nodes"),
                ("list", "", "pods"),
                ("create", "", "pods/eviction"),
                ("get", "", "pods"),
                ("get", "apps", "daemonsets"),
            },
        ),
        ("kubectl exec p1 -- ls", {("get", "", "pods"), ("create", "", "pods/exec")}),
        ("kubectl logs p1 --tail=5", {("get", "", "pods"), ("get", "", "pods/log")}),
        (
            "kubectl create job j --from=cronjob/c",
            {("get", "batch", "cronjobs"), ("create", "batch", "jobs")},
        ),
        ("kubectl version", set()),
        ("kubectl auth can-i get pods", set()),
    ],
)
def test_mapping(line: str, expected: set[tuple[str, str, str]]) -> None:
    found, unchecked = accesses(line)
    assert unchecked == []
    assert found == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('kubectl get "$KIND" "$NAME"', "resource type comes from a variable"),
        ("kubectl apply -f manifest.yaml", "come from a file"),
        ("kubectl get certificates.cert-manager.io", "not a built-in resource"),
        ("kubectl get deploymnets", "did you mean 'deployments'?"),
        ('kubectl "$VERB" pods', "subcommand comes from a variable"),
        ("kubectl top pods", "metrics.k8s.io"),
        ("kubectl get --raw /metrics", "raw API path"),
    ],
)
def test_what_cannot_be_known_is_said_not_guessed(line: str, reason: str) -> None:
    found, unchecked = accesses(line)
    assert found == set()
    assert any(reason in u for u in unchecked), unchecked


def test_all_namespaces_and_cluster_scoped_resources_are_cluster_wide() -> None:
    (cmd,) = shell.parse("kubectl get pods -A\nkubectl get pods -n x\n").invocations()[:1]
    call = kubectl.analyse(cmd.words)
    assert all(a.cluster_wide for a in call.accesses)
    (cmd2,) = shell.parse("kubectl get pods -n x\n").invocations()
    assert not any(a.cluster_wide for a in kubectl.analyse(cmd2.words).accesses)
    (cmd3,) = shell.parse("kubectl get nodes\n").invocations()
    assert all(a.cluster_wide for a in kubectl.analyse(cmd3.words).accesses)
