"""lint/k8s.py: the pinned Kubernetes API (discovery data, schemas); rbac.py's rules on it."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import pytest

from playbookctl.lint import k8s, rbac
from playbookctl.load import load_text

ROOT = Path(__file__).resolve().parents[3]
DATA = (
    ROOT / "tooling" / "playbookctl" / "schemas" / f"kubernetes-api-{k8s.KUBERNETES_VERSION}.json"
)


def test_the_discovery_data_says_where_it_came_from() -> None:
    data = json.loads(DATA.read_text())
    assert data["kubernetes"] == k8s.KUBERNETES_VERSION
    assert data["source"]["package"].startswith("kubernetes==34.")
    assert len(data["source"]["sha256"]) == 64
    assert data["source"]["generator"] == "tooling/scripts/gen_kubernetes_api.py"


@pytest.mark.parametrize(
    ("group", "resource", "kind", "namespaced", "verb", "sub"),
    [
        ("apps", "deployments", "Deployment", True, "patch", "scale"),
        ("", "pods", "Pod", True, "list", "eviction"),
        ("", "nodes", "Node", False, "patch", "status"),
        (
            "autoscaling",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            True,
            "list",
            "status",
        ),
        ("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", False, "bind", None),
        ("batch", "cronjobs", "CronJob", True, "create", "status"),
    ],
)
def test_facts_of_the_pinned_api(
    group: str, resource: str, kind: str, namespaced: bool, verb: str, sub: str | None
) -> None:
    r = k8s.api().get(group, resource)
    assert r is not None
    assert (r.kind, r.namespaced) == (kind, namespaced)
    if verb != "bind":  # a special verb: RBAC knows it, the REST paths do not
        assert verb in r.verbs
    if sub:
        assert sub in r.subresources
    assert "deployments" not in {x.name for x in k8s.api().resources if x.group == ""}


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("deploy", ("apps", "deployments")),
        ("deployment", ("apps", "deployments")),
        ("Deployment", ("apps", "deployments")),
        ("deployments.apps", ("apps", "deployments")),
        ("deployment.v1.apps", ("apps", "deployments")),
        ("po", ("", "pods")),
        ("ev", ("", "events")),
        ("hpa", ("autoscaling", "horizontalpodautoscalers")),
        ("events.events.k8s.io", ("events.k8s.io", "events")),
    ],
)
def test_kubectl_resource_arguments_resolve(arg: str, expected: tuple[str, str]) -> None:
    (r,) = k8s.api().resolve(arg)
    assert (r.group, r.name) == expected


def test_unknown_resources_resolve_to_nothing() -> None:
    assert k8s.api().resolve("certificates.cert-manager.io") == []
    assert k8s.api().resolve("deploymentz") == []


def _docs(text: str) -> list[object]:
    return list(load_text(text, "rbac.yaml").documents)


def test_a_valid_object_has_no_schema_finding() -> None:
    (doc,) = load_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n", "f"
    ).documents
    assert k8s.schema_findings(doc) == []


def test_schema_findings_name_the_field_and_keep_the_cluster_reading() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
        "data:\n  enabled: yes\n  replicas: 3\n"
    )
    (doc,) = load_text(text, "f").documents
    found = sorted(k8s.schema_findings(doc, text), key=lambda f: f.line)
    assert sorted((f.line, f.rule) for f in found) == [(6, "k8s.schema"), (7, "k8s.schema")]
    assert 'quote it: "yes"' in found[0].message
    assert 'quote it: "3"' in found[1].message


def test_custom_resources_are_not_schema_checked() -> None:
    (doc,) = load_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec: {x: 1}\n", "f"
    ).documents
    assert k8s.schema_findings(doc) == []


RULES = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
rules:
  - apiGroups: [""]
    resources: [deployments, pods/evictions, configmap]
    verbs: [get, lsit, rollback]
  - apiGroups: [apps, monitoring.coreos.com, appz]
    resources: ["deployments/scale", "*", servicemonitors]
    verbs: ["*"]
"""


def test_rules_are_checked_against_the_api() -> None:
    found = rbac.check_api(load_text(RULES, "rbac.yaml").documents)
    got = [(f.rule, f.line, f.column) for f in found]
    assert got == [
        ("rbac.resource", 6, 17),
        ("rbac.resource", 6, 30),
        ("rbac.resource", 6, 46),
        ("rbac.verb", 7, 18),
        ("rbac.verb", 7, 24),
        ("rbac.api-group", 8, 46),
    ]
    messages = [f.message for f in found]
    assert "it is in apiGroups ['apps']" in messages[0]
    assert "no subresource 'evictions'" in messages[1]
    assert "eviction" in messages[1]
    assert "plural 'configmaps'" in messages[2]
    assert "did you mean 'list'" in messages[3]
    assert "is made of API requests" in messages[4]
    assert "did you mean 'apps'" in messages[5]


@pytest.mark.parametrize(
    ("rule", "request_", "expected"),
    [
        (
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
            ("get", "apps", "deployments", None),
            True,
        ),
        (
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
            ("get", "apps", "deployments/scale", None),
            False,
        ),
        (
            {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]},
            ("patch", "apps", "deployments/scale", None),
            True,
        ),
        (
            {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["patch"]},
            ("patch", "apps", "statefulsets/scale", None),
            True,
        ),
        (
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]},
            ("get", "", "pods", "a"),
            True,
        ),
        (
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]},
            ("get", "", "pods", "b"),
            False,
        ),
        (
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]},
            ("get", "", "pods", None),
            None,
        ),
        (
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["a"]},
            ("list", "", "pods", None),
            False,
        ),
    ],
)
def test_rules_grant_as_the_rbac_authorizer_matches(
    rule: dict[str, list[str]], request_: tuple[str, str, str, str | None], expected: bool | None
) -> None:
    text = json.dumps(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "rules": [rule]}
    )
    (pr,) = rbac.policy_rules(load_text(text, "r").documents)
    assert pr.grants(*request_) is expected


def test_the_generator_reads_the_client_with_ast(tmp_path: Path) -> None:
    """The regeneration script on a wheel holding one generated API module."""
    module = """
class AppsV1Api:
    def read_x_with_http_info(self):
        return self.api_client.call_api(
            '/apis/apps/v1/namespaces/{namespace}/deployments/{name}', 'GET',
            response_type='V1Deployment')
    def list_x_with_http_info(self):
        return self.api_client.call_api('/apis/apps/v1/deployments', 'GET',
            response_type='V1DeploymentList')
    def patch_scale_with_http_info(self):
        return self.api_client.call_api(
            '/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale', 'PATCH',
            response_type='V1Scale')
    def create_eviction_with_http_info(self):
        return self.api_client.call_api(
            '/api/v1/namespaces/{namespace}/pods/{name}/eviction', 'POST',
            response_type='V1Eviction')
"""
    wheel = tmp_path / "kubernetes-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("kubernetes/client/api/apps_v1_api.py", module)
    spec = importlib.util.spec_from_file_location(
        "gen", ROOT / "tooling" / "scripts" / "gen_kubernetes_api.py"
    )
    assert spec is not None
    assert spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    sys.modules["gen"] = gen
    spec.loader.exec_module(gen)
    found = gen.collect(wheel)
    dep = found[("apps", "v1", "deployments")]
    assert (dep.kind, dep.namespaced, sorted(dep.verbs)) == (
        "Deployment",
        True,
        ["get", "list", "watch"],
    )
    assert dep.subresources["scale"].verbs == {"patch"}
    assert found[("", "v1", "pods")].subresources["eviction"].verbs == {"create"}


def test_a_verb_the_api_serves_on_none_of_the_rule_resources_is_a_warning() -> None:
    text = (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules:\n"
        '  - apiGroups: [""]\n    resources: ["pods/log", "pods/eviction"]\n'
        "    verbs: [get, list, create]\n"
        '  - apiGroups: [""]\n    resources: ["pods", "pods/log"]\n    verbs: [list]\n'
    )
    found = rbac.check_api(load_text(text, "rbac.yaml").documents)
    assert [(f.rule, f.severity.value, f.line, f.column) for f in found] == [
        ("rbac.verb", "warning", 7, 18)
    ]
    assert "'list' grants nothing on pods/log, pods/eviction" in found[0].message
