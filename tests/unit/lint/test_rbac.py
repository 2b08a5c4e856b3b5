"""`rbac.*` rules: rbac.yaml against registry/argocd/'s AppProject, and wildcard grants.

The matchers are tested against the cases Argo CD's own tests use for AppProject
(`IsDestinationPermitted`, `IsGroupKindPermitted`); the rules as tables over a lint repository
whose registry/argocd/ holds this repository's real AppProject and Application.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from playbookctl.config import load_config
from playbookctl.findings import Severity
from playbookctl.lint import lint_playbook
from playbookctl.lint.rbac import (
    AppProject,
    Destination,
    GroupKind,
    filepath_match,
    glob_match,
    parse_project,
)
from playbookctl.load import load_text
from tests.support.lintrepo import edit, good_playbook, make_repo

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "anything", True),
        ("kubernaut-*", "kubernaut-system", True),
        ("kubernaut-*", "default", False),
        ("kube?naut", "kubernaut", True),
        ("{a,b}-ns", "b-ns", True),
        ("{a,b}-ns", "c-ns", False),
        ("[ab]x", "ax", True),
        ("[!ab]x", "ax", False),
        ("!kube-system", "default", True),
        ("!kube-system", "kube-system", False),
        ("exact", "exact", True),
        ("exact", "exactly", False),
    ],
)
def test_glob_match_as_argocd(pattern: str, value: str, expected: bool) -> None:
    assert glob_match(pattern, value) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "Role", True),
        ("*", "", True),
        ("", "", True),
        ("", "rbac.authorization.k8s.io", False),
        ("Cluster*", "ClusterRole", True),
        ("*.k8s.io", "rbac.authorization.k8s.io", True),
        ("[RS]ole", "Role", True),
        ("[^RS]ole", "Role", False),
        ("[", "[", False),  # ErrBadPattern: no match
        ("[-]", "-", False),  # ErrBadPattern too, though Python's re reads it
        ("[\\]a]", "]", True),  # an escaped `]` stays in the class
        ("[z-a]", "z", False),  # a reversed range: valid in Go, empty (not an re.error)
        ("a/*", "a/b/c", False),  # '*' stops at '/', as Go's filepath.Match
    ],
)
def test_filepath_match_as_go(pattern: str, value: str, expected: bool) -> None:
    assert filepath_match(pattern, value) is expected


def _project(**kw: object) -> AppProject:
    base: dict[str, object] = {
        "file": "p.yaml",
        "name": "p",
        "destinations": [Destination("https://kubernetes.default.svc", "", "team-*")],
        "server": "https://kubernetes.default.svc",
        "default_namespace": "team-a",
    }
    base.update(kw)
    return AppProject(**base)  # type: ignore[arg-type]


def test_destinations() -> None:
    p = _project()
    assert p.destination_permitted("team-a")
    assert not p.destination_permitted("other")
    # another server does not count
    other = _project(destinations=[Destination("https://elsewhere", "", "*")])
    assert not other.destination_permitted("team-a")
    # a deny pattern wins over an allow
    deny = _project(
        destinations=[
            Destination("*", "", "*"),
            Destination("*", "", "!team-secret"),
        ]
    )
    assert deny.destination_permitted("team-a")
    assert not deny.destination_permitted("team-secret")
    # destination by cluster name
    named = _project(destinations=[Destination("", "in-cluster", "*")], server="")
    assert not named.destination_permitted("x")
    named.cluster_name = "in-cluster"
    assert named.destination_permitted("x")


def test_group_kinds() -> None:
    role = GroupKind("rbac.authorization.k8s.io", "Role")
    crole = GroupKind("rbac.authorization.k8s.io", "ClusterRole")
    # no namespace whitelist: every namespaced kind; empty cluster whitelist: no cluster kind
    p = _project()
    assert p.kind_permitted(role, namespaced=True)
    assert not p.kind_permitted(crole, namespaced=False)
    # an empty namespace whitelist (present, no entries) allows none
    assert not _project(namespace_whitelist=[]).kind_permitted(role, namespaced=True)
    # wildcard whitelist, then a blacklist entry
    p = _project(
        cluster_whitelist=[GroupKind("*", "*")],
        cluster_blacklist=[GroupKind("rbac.authorization.k8s.io", "ClusterRoleBinding")],
        namespace_blacklist=[GroupKind("", "Secret")],
    )
    assert p.kind_permitted(crole, namespaced=False)
    assert not p.kind_permitted(
        GroupKind("rbac.authorization.k8s.io", "ClusterRoleBinding"), namespaced=False
    )
    assert not p.kind_permitted(GroupKind("", "Secret"), namespaced=True)
    assert p.kind_permitted(GroupKind("", "ConfigMap"), namespaced=True)


def test_parse_project_follows_the_application() -> None:
    docs = load_text(
        """\
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: other}
spec: {destinations: [{server: "*", namespace: "*"}]}
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: mine}
spec:
  destinations: [{name: prod, namespace: "apps"}]
  namespaceResourceWhitelist: [{group: "", kind: ServiceAccount}]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: app}
spec:
  project: mine
  destination: {name: prod, namespace: apps}
""",
        "registry/argocd/all.yaml",
    ).documents
    p = parse_project(docs, "kubernaut-system")
    assert p is not None
    assert (p.name, p.cluster_name, p.server, p.default_namespace) == ("mine", "prod", "", "apps")
    assert p.namespace_whitelist == [GroupKind("", "ServiceAccount")]
    assert p.destination_permitted("apps")
    assert not p.destination_permitted("kubernaut-system")


# --- the rules on a playbook, against this repository's real registry/argocd/ -------------------

R = "rbac.yaml"
W = "workflow.yaml"
ROLE = """\
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: r
  namespace: {ns}
rules:
  - apiGroups: [""]
    resources: [{resources}]
    verbs: [{verbs}]
"""
SECRET = """\
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
  namespace: kubernaut-workflows
"""
NAMESPACE = """\
---
apiVersion: v1
kind: Namespace
metadata:
  name: extra
"""
CASES: list[tuple[str, list[tuple[str, str, str]], list[tuple[str, str, int, Severity]]]] = [
    ("clean", [], []),
    (
        "role in the run namespace",
        [(R, "<append>", ROLE.format(ns="kubernaut-workflows", resources='"pods"', verbs='"get"'))],
        [],
    ),
    (
        "role in another namespace",
        [(R, "<append>", ROLE.format(ns="default", resources='"pods"', verbs='"get"'))],
        [("rbac.appproject", R, 33, Severity.ERROR)],
    ),
    (
        "a kind the namespace whitelist lacks",
        [(R, "<append>", SECRET)],
        [("rbac.appproject", R, 30, Severity.ERROR)],
    ),
    (
        "a cluster-scoped kind the cluster whitelist lacks",
        [(R, "<append>", NAMESPACE)],
        [("rbac.appproject", R, 30, Severity.ERROR)],
    ),
    (
        "the workflow in another namespace",
        [(W, "namespace: kubernaut-system", "namespace: elsewhere")],
        [("rbac.appproject", W, 5, Severity.ERROR)],
    ),
    (
        "wildcard verbs",
        [(R, "<append>", ROLE.format(ns="kubernaut-workflows", resources='"pods"', verbs='"*"'))],
        [("rbac.wildcard", R, 37, Severity.WARNING)],
    ),
    (
        "wildcard resources",
        [(R, "<append>", ROLE.format(ns="kubernaut-workflows", resources='"*"', verbs='"get"'))],
        [("rbac.wildcard", R, 36, Severity.WARNING)],
    ),
    (
        "wildcard in a ClusterRole",
        [(R, '["get", "patch"]', '["*"]')],
        [("rbac.wildcard", R, 14, Severity.WARNING)],
    ),
]


@pytest.mark.parametrize(("changes", "expected"), [pytest.param(c, e, id=i) for i, c, e in CASES])
def test_rbac_rules(
    tmp_path: Path,
    changes: list[tuple[str, str, str]],
    expected: list[tuple[str, str, int, Severity]],
) -> None:
    files: dict[str, str | bytes] = dict(good_playbook())
    for name, old, new in changes:
        text = str(files[name])
        files[name] = text + new if old == "<append>" else edit(text, old, new)
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    shutil.copytree(REPO / "registry" / "argocd", root / "registry" / "argocd")
    _, findings = lint_playbook(root / "playbooks" / "restart-deployment", load_config(root), None)
    got = sorted(
        (f.rule, f.file.rpartition("/")[2], f.line, f.severity)
        for f in findings
        if f.rule.startswith("rbac.")
    )
    assert got == sorted(expected)


def test_the_project_is_read_not_assumed(tmp_path: Path) -> None:
    """Widen the AppProject's destinations and the same Role is fine: the rule follows the file."""
    files: dict[str, str | bytes] = dict(good_playbook())
    files[R] = str(files[R]) + ROLE.format(ns="default", resources='"pods"', verbs='"get"')
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    shutil.copytree(REPO / "registry" / "argocd", root / "registry" / "argocd")
    project = root / "registry" / "argocd" / "appproject.yaml"
    config = load_config(root)
    pb_dir = root / "playbooks" / "restart-deployment"
    assert [f.rule for f in lint_playbook(pb_dir, config, None)[1] if f.rule == "rbac.appproject"]
    project.write_text(
        project.read_text().replace(
            "      namespace: kubernaut-workflows ",
            "      namespace: '{kubernaut-workflows,default}' ",
        )
    )
    assert not [f for f in lint_playbook(pb_dir, config, None)[1] if f.rule == "rbac.appproject"]
    # without any AppProject there is nothing to check against
    shutil.rmtree(root / "registry" / "argocd")
    assert not [f for f in lint_playbook(pb_dir, config, None)[1] if f.rule == "rbac.appproject"]
