"""`rbac.*` rules: what a playbook's rbac.yaml (and its workflow) asks Argo CD to create.

- rbac.appproject (error): every object must be deployable by the Argo CD AppProject of
  registry/argocd/: its namespace matches one of the project's destinations (for the
  Application's server), and its group/kind passes the project's cluster- or namespace-resource
  whitelist and blacklist. Argo CD refuses the whole sync when one object is not permitted, so
  one playbook's Role in another namespace would stop every registration from syncing. The
  project is read from the repository, never assumed, and matched as Argo CD matches it
  (`AppProject.IsDestinationPermitted` and `IsGroupKindPermitted`: destinations by glob with
  `!` deny patterns, resource lists by Go's `filepath.Match`, a missing namespace whitelist
  allows every kind, an empty cluster whitelist allows none).
- rbac.wildcard (warning): `*` in a Role's or ClusterRole's verbs or resources grants far more
  than a remediation script needs (and whatever the API server adds later).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbookctl import gomatch
from playbookctl.config import Config
from playbookctl.findings import Finding, Severity
from playbookctl.lint import k8s
from playbookctl.load import Document, YamlPath, load_file

ARGOCD_DIR = "argocd"
APPPROJECT = ("argoproj.io", "AppProject")
APPLICATION = ("argoproj.io", "Application")
# Kinds a playbook may hold that are cluster-scoped (Argo CD asks the API server; we cannot).
CLUSTER_SCOPED = frozenset(
    {
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
        "PersistentVolume",
        "Node",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
    }
)


def group_of(api_version: str) -> str:
    """`rbac.authorization.k8s.io/v1` -> `rbac.authorization.k8s.io`; `v1` -> the core group."""
    return api_version.rpartition("/")[0] if "/" in api_version else ""


# -- glob matching as Argo CD does it ------------------------------------------------------------


def filepath_match(pattern: str, value: str) -> bool:
    """Go's path/filepath.Match; a malformed pattern matches nothing (Go returns ErrBadPattern,
    which Argo CD treats as no match)."""
    try:
        return gomatch.match(pattern, value)
    except gomatch.BadPatternError:
        return False


def _translate_glob(pattern: str) -> str:
    """gobwas/glob without separators (Argo CD's util/glob): `*`, `?`, `[...]`/`[!...]`,
    `{a,b}`; a malformed pattern matches literally."""
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    out.extend(")" * depth)
    return "".join(out)


def glob_match(pattern: str, value: str, *, allow_negation: bool = True) -> bool:
    """Argo CD's `globMatch`: `!pattern` matches what pattern does not; `*` matches all."""
    if allow_negation and pattern.startswith("!"):
        return not glob_match(pattern[1:], value, allow_negation=False)
    if pattern == "*":
        return True
    try:
        return re.fullmatch(_translate_glob(pattern), value) is not None
    except re.error:
        return pattern == value


# -- the project -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupKind:
    group: str
    kind: str


@dataclass(frozen=True)
class Destination:
    server: str
    name: str
    namespace: str


@dataclass
class AppProject:
    file: str
    name: str
    destinations: list[Destination] = field(default_factory=list)
    cluster_whitelist: list[GroupKind] = field(default_factory=list)
    cluster_blacklist: list[GroupKind] = field(default_factory=list)
    namespace_whitelist: list[GroupKind] | None = None  # None: absent, every kind allowed
    namespace_blacklist: list[GroupKind] = field(default_factory=list)
    # The Application's destination (what objects are synced to): server or cluster name, and
    # the namespace an object without metadata.namespace lands in.
    server: str = ""
    cluster_name: str = ""
    default_namespace: str = ""

    def destination_permitted(self, namespace: str) -> bool:
        """AppProject.isDestinationMatched for the Application's cluster and `namespace`."""
        any_matched = False
        no_deny_matched = True
        for d in self.destinations:
            name_ok = bool(self.cluster_name) and glob_match(d.name, self.cluster_name)
            server_ok = bool(self.server) and glob_match(d.server, self.server)
            ns_ok = glob_match(d.namespace, namespace)
            if (server_ok or name_ok) and ns_ok:
                any_matched = True
            elif (
                (not name_ok and d.name.startswith("!"))
                or (not server_ok and d.server.startswith("!"))
                or (not ns_ok and d.namespace.startswith("!"))
            ):
                no_deny_matched = False
        return any_matched and no_deny_matched

    def kind_permitted(self, gk: GroupKind, namespaced: bool) -> bool:
        """AppProject.IsGroupKindPermitted."""
        if namespaced:
            white = self.namespace_whitelist
            listed = white is None or (len(white) != 0 and _in_list(gk, white))
            return listed and not _in_list(gk, self.namespace_blacklist)
        listed = bool(self.cluster_whitelist) and _in_list(gk, self.cluster_whitelist)
        return listed and not _in_list(gk, self.cluster_blacklist)


def _in_list(gk: GroupKind, items: list[GroupKind]) -> bool:
    return any(filepath_match(i.kind, gk.kind) and filepath_match(i.group, gk.group) for i in items)


def _group_kinds(value: Any) -> list[GroupKind]:
    items = value if isinstance(value, list) else []
    return [
        GroupKind(str(i.get("group") or ""), str(i.get("kind") or ""))
        for i in items
        if isinstance(i, dict)
    ]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _kind(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        return ("", "")
    return (group_of(_str(data.get("apiVersion"))), _str(data.get("kind")))


def parse_project(docs: list[Document], default_namespace: str) -> AppProject | None:
    """The AppProject the Application of registry/argocd/ names (or the only one there)."""
    projects = {_str(d.get(("metadata", "name"))): d for d in docs if _kind(d.data) == APPPROJECT}
    apps = [d for d in docs if _kind(d.data) == APPLICATION]
    app = apps[0] if apps else None
    wanted = _str(app.get(("spec", "project"))) if app is not None else ""
    doc = projects.get(wanted) if wanted else None
    if doc is None:
        if len(projects) != 1:
            return None
        doc = next(iter(projects.values()))
    spec = doc.get(("spec",))
    spec = spec if isinstance(spec, dict) else {}
    dests = spec.get("destinations")
    white = spec.get("namespaceResourceWhitelist")
    project = AppProject(
        file=doc.file,
        name=_str(doc.get(("metadata", "name"))),
        destinations=[
            Destination(_str(d.get("server")), _str(d.get("name")), _str(d.get("namespace")))
            for d in (dests if isinstance(dests, list) else [])
            if isinstance(d, dict)
        ],
        cluster_whitelist=_group_kinds(spec.get("clusterResourceWhitelist")),
        cluster_blacklist=_group_kinds(spec.get("clusterResourceBlacklist")),
        namespace_whitelist=None if white is None else _group_kinds(white),
        namespace_blacklist=_group_kinds(spec.get("namespaceResourceBlacklist")),
        server="https://kubernetes.default.svc",
        default_namespace=default_namespace,
    )
    if app is not None:
        dest = app.get(("spec", "destination"))
        if isinstance(dest, dict):
            project.server = _str(dest.get("server"))
            project.cluster_name = _str(dest.get("name"))
            project.default_namespace = _str(dest.get("namespace")) or default_namespace
        if not project.server and not project.cluster_name:
            project.server = "https://kubernetes.default.svc"
    return project


_CACHE: dict[tuple[str, ...], AppProject | None] = {}


def load_project(config: Config) -> AppProject | None:
    """The project of registry/argocd/, read once per set of file versions (lint calls this
    for every playbook)."""
    base = config.registry_dir / ARGOCD_DIR
    try:
        files = sorted(p for p in base.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    except OSError:
        return None
    key: tuple[str, ...] = (config.workflow_namespace,)
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        key += (str(p), str(st.st_mtime_ns), str(st.st_size))
    if key in _CACHE:
        return _CACHE[key]
    docs: list[Document] = []
    for p in files:
        docs.extend(load_file(p, _display(p, config.root), config.max_file_bytes).documents)
    project = parse_project(docs, config.workflow_namespace)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[key] = project
    return project


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.fspath(path)


# -- rules -------------------------------------------------------------------------------------


def check_appproject(docs: list[Document], project: AppProject) -> list[Finding]:
    """rbac.appproject for each object in docs (rbac.yaml's documents and the workflow)."""
    out: list[Finding] = []
    where = f"the AppProject {project.name!r} ({project.file})"
    for doc in docs:
        data = doc.data
        if not isinstance(data, dict):
            continue
        group, kind = _kind(data)
        if not kind:
            continue
        ns_raw = doc.get(("metadata", "namespace"))
        namespaced = kind not in CLUSTER_SCOPED
        if namespaced:
            namespace = _str(ns_raw) or project.default_namespace
            if not project.destination_permitted(namespace):
                allowed = ", ".join(sorted({d.namespace for d in project.destinations})) or "none"
                path: YamlPath = ("metadata", "namespace") if ns_raw else ("metadata",)
                out.append(
                    doc.finding(
                        "rbac.appproject",
                        path,
                        f"{kind} in namespace {namespace!r} is not a destination of {where} "
                        f"(allowed namespaces: {allowed}); Argo CD would refuse the whole sync",
                    )
                )
        if not project.kind_permitted(GroupKind(group, kind), namespaced):
            scope = "namespaced" if namespaced else "cluster-scoped"
            listed = "namespaceResourceWhitelist" if namespaced else "clusterResourceWhitelist"
            out.append(
                doc.finding(
                    "rbac.appproject",
                    ("kind",),
                    f"{scope} kind {kind} (group {group or 'core'!r}) is not permitted by "
                    f"{where}: see its {listed} and blacklist; Argo CD would refuse the "
                    "whole sync",
                )
            )
    return out


def check_wildcards(docs: list[Document]) -> list[Finding]:
    """rbac.wildcard: `*` verbs or resources in a Role or ClusterRole."""
    out: list[Finding] = []
    for doc in docs:
        data = doc.data
        if not isinstance(data, dict) or data.get("kind") not in ("Role", "ClusterRole"):
            continue
        rules = data.get("rules")
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            if not isinstance(rule, dict):
                continue
            for key in ("verbs", "resources"):
                values = rule.get(key)
                for j, v in enumerate(values if isinstance(values, list) else []):
                    if v == "*":
                        out.append(
                            doc.finding(
                                "rbac.wildcard",
                                ("rules", i, key, j),
                                f"'*' in {key} of a {data['kind']} grants every "
                                f"{key[:-1]}, now and later; list exactly what the script "
                                "needs",
                                Severity.WARNING,
                            )
                        )
    return out


# -- rules against the pinned Kubernetes API, and what a script needs --------------------------


@dataclass(frozen=True)
class PolicyRule:
    """One entry of a Role's or ClusterRole's rules."""

    doc: Document
    index: int
    cluster: bool  # a ClusterRole's (grants in every namespace when bound cluster-wide)
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...]

    def grants(self, verb: str, group: str, resource: str, name: str | None) -> bool | None:
        """As the API server's RBAC authorizer matches (rbac/v1 helpers: VerbMatches,
        APIGroupMatches, ResourceMatches with `*` and `*/sub`, ResourceNameMatches). None: the
        rule grants it only for some names and the script's name is not known statically."""
        if not ("*" in self.verbs or verb in self.verbs):
            return False
        if not ("*" in self.api_groups or group in self.api_groups):
            return False
        sub = resource.partition("/")[2]
        if not any(r in ("*", resource) or (sub and r == f"*/{sub}") for r in self.resources):
            return False
        if not self.resource_names:
            return True
        if verb in ("list", "watch", "create", "deletecollection"):
            return False  # a name-restricted rule never grants a collection request
        if name is None:
            return None
        return name in self.resource_names


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def policy_rules(docs: list[Document]) -> list[PolicyRule]:
    out: list[PolicyRule] = []
    for doc in docs:
        data = doc.data
        if not isinstance(data, dict) or data.get("kind") not in ("Role", "ClusterRole"):
            continue
        rules = data.get("rules")
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            if isinstance(rule, dict):
                out.append(
                    PolicyRule(
                        doc,
                        i,
                        data["kind"] == "ClusterRole",
                        _strings(rule.get("apiGroups")),
                        _strings(rule.get("resources")),
                        _strings(rule.get("verbs")),
                        _strings(rule.get("resourceNames")),
                    )
                )
    return out


def check_api(docs: list[Document]) -> list[Finding]:
    """rbac.api-group / rbac.resource / rbac.verb: every rule's groups, resources and verbs as
    the pinned Kubernetes API knows them. A group that is not built in (a custom resource's) is
    not checked: the API server accepts any string there, and the CRD is not ours to know."""
    api = k8s.api()
    out: list[Finding] = []
    verbs = [*k8s.API_VERBS, *k8s.SPECIAL_VERBS]
    for rule in policy_rules(docs):
        at: tuple[str | int, ...] = ("rules", rule.index)
        for j, group in enumerate(rule.api_groups):
            if group != "*" and group not in api.groups and "." not in group:
                out.append(
                    rule.doc.finding(
                        "rbac.api-group",
                        (*at, "apiGroups", j),
                        f"{group!r} is not an API group of Kubernetes {api.version}"
                        + api.suggest(group, sorted(g for g in api.groups if g))
                        + ' (the core group is "")',
                    )
                )
        # A resource is judged only when every listed group is built in (a custom group may
        # hold any resource name).
        builtin = list(rule.api_groups)
        if not builtin or any(g not in api.groups for g in builtin):
            builtin = []
        for j, res in enumerate(rule.resources):
            if "*" in res or not builtin:
                continue
            msg = _resource_problem(api, res, builtin)
            if msg:
                out.append(rule.doc.finding("rbac.resource", (*at, "resources", j), msg))
        for j, verb in enumerate(rule.verbs):
            if verb != "*" and verb not in verbs:
                hint = api.suggest(verb, verbs)
                if not hint and verb in ("undo", "rollback", "restart", "scale", "rollout"):
                    hint = (
                        f"; kubectl's {verb} is made of API requests (get, list, patch...): "
                        "grant those (script.rbac names them for each kubectl call)"
                    )
                out.append(
                    rule.doc.finding(
                        "rbac.verb",
                        (*at, "verbs", j),
                        f"{verb!r} is not a Kubernetes API verb{hint} (verbs: {', '.join(verbs)})",
                    )
                )
            elif verb in k8s.API_VERBS and builtin:
                useless = _unserved(api, verb, rule.resources, builtin)
                if useless:
                    out.append(
                        rule.doc.finding(
                            "rbac.verb",
                            (*at, "verbs", j),
                            f"{verb!r} grants nothing on {useless}: the API serves no {verb} "
                            "there; drop it (or name the resource that needs it)",
                            Severity.WARNING,
                        )
                    )
    return out


def _unserved(api: k8s.Api, verb: str, resources: tuple[str, ...], groups: list[str]) -> str:
    """The resources of a rule (all of them) on which the API serves no such verb."""
    served_nowhere = []
    for res in resources:
        if "*" in res:
            return ""
        base, _, sub = res.partition("/")
        found = [r for g in groups if (r := api.get(g, base)) is not None]
        if not found:
            return ""  # rbac.resource reports it
        verbs = set().union(
            *(r.subresources.get(sub, frozenset()) if sub else r.verbs for r in found)
        )
        if verb in verbs:
            return ""
        served_nowhere.append(res)
    return ", ".join(served_nowhere)


def _resource_problem(api: k8s.Api, res: str, groups: list[str]) -> str | None:
    base, _, sub = res.partition("/")
    for g in groups:
        found = api.get(g, base)
        if found is not None and (not sub or sub == "*" or sub in found.subresources):
            return None
    shown = ", ".join(repr(g) for g in groups)
    for g in groups:
        found = api.get(g, base)
        if found is not None:
            subs = ", ".join(sorted(found.subresources)) or "none"
            return f"{base} has no subresource {sub!r} (it has: {subs})"
    elsewhere = api.groups_of(base)
    if elsewhere:
        return (
            f"{base} is not in apiGroups [{shown}]: it is in "
            f"apiGroups [{', '.join(repr(g) for g in elsewhere)}]"
        )
    by_kind = [r for r in api.resources if r.kind.lower() == base.lower() or base in r.short_names]
    if by_kind:
        r = by_kind[0]
        return (
            f"{base!r} is not a resource name: RBAC rules name the plural {r.name!r}"
            f" (apiGroups [{r.group!r}])"
        )
    names = sorted({r.name for r in api.resources if r.group in groups})
    return (
        f"{res!r} is not a resource of apiGroups [{shown}] in Kubernetes {api.version}"
        + api.suggest(base, names)
    )


def snippet(needed: list[tuple[str, str, str]]) -> str:
    """The rules to add, as YAML to paste under `rules:`: (verb, group, resource) merged per
    group and resource."""
    merged: dict[tuple[str, str], set[str]] = {}
    for verb, group, resource in needed:
        merged.setdefault((group, resource), set()).add(verb)
    order = {"get": 0, "list": 1, "watch": 2, "create": 3, "update": 4, "patch": 5, "delete": 6}
    lines = []
    for (group, resource), verbs in merged.items():
        lines.append(f'- apiGroups: ["{group}"]')
        lines.append(f'  resources: ["{resource}"]')
        vs = ", ".join(f'"{v}"' for v in sorted(verbs, key=lambda v: (order.get(v, 9), v)))
        lines.append(f"  verbs: [{vs}]")
    return "\n".join(lines)
