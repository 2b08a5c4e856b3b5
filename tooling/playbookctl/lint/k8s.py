"""The Kubernetes API of one pinned release, offline: its resources and its object schemas.

- Discovery data (schemas/kubernetes-api-<minor>.json): every built-in resource with its group,
  version, kind, scope, verbs and subresources, generated from the official Python client of that
  release by tooling/scripts/gen_kubernetes_api.py (provenance inside the file). RBAC rules and
  kubectl calls are checked against it.
- Object schemas: kubernetes-validate's strict JSON schemas of that release (PyPI, one directory
  per Kubernetes minor; `additionalProperties: false` everywhere), read with jsonschema. Only
  built-in kinds are validated: custom resources (Argo CD's, Kubernaut's) have their own checks
  or none.

The pinned release is the kubectl of the production base (alpine/k8s 1.34.1).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import referencing

from playbookctl.findings import Finding
from playbookctl.load import Document

KUBERNETES_VERSION = "1.34"
SCHEMA_RULE = "k8s.schema"
# The verbs RBAC knows: the API verbs plus the special ones of a few resources.
API_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
SPECIAL_VERBS = ("use", "bind", "escalate", "impersonate", "approve", "sign", "attest")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    name: str  # the plural, as RBAC rules and URLs spell it
    kind: str
    namespaced: bool
    verbs: frozenset[str]
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    subresources: dict[str, frozenset[str]] = field(hash=False, compare=False)

    @property
    def qualified(self) -> str:
        return f"{self.name}.{self.group}" if self.group else self.name


@dataclass
class Api:
    version: str
    resources: list[Resource]

    def __post_init__(self) -> None:
        # One entry per group/resource, its first (preferred: stable sorts first) version.
        self.by_group: dict[tuple[str, str], Resource] = {}
        for r in sorted(self.resources, key=lambda r: (r.group, r.name, _version_rank(r.version))):
            self.by_group.setdefault((r.group, r.name), r)
        self.groups = frozenset(g for g, _ in self.by_group)

    def groups_of(self, resource: str) -> list[str]:
        return sorted(g for g, r in self.by_group if r == resource)

    def get(self, group: str, resource: str) -> Resource | None:
        return self.by_group.get((group, resource))

    def resolve(self, arg: str) -> list[Resource]:
        """kubectl's reading of a resource argument: `deploy`, `deployment`, `deployments`,
        `Deployment`, `deployments.apps`, `deployment.v1.apps`, `all`. Empty when unknown."""
        text = arg.lower()
        if text == "all":
            return [r for r in self.by_group.values() if "all" in r.categories]
        head, _, group = text.partition(".")
        candidates: list[tuple[str, str | None]] = [(text, None)]
        if group:
            version, _, rest = group.partition(".")
            candidates = [(head, group)]
            if rest and version[:1] == "v" and version[1:2].isdigit():
                candidates.append((head, rest))
        for name, grp in candidates:
            found = [
                r
                for r in self.by_group.values()
                if (grp is None or r.group == grp)
                and name in (r.name, r.kind.lower(), *r.short_names)
            ]
            if found:
                # kubectl prefers the core group, then apps, then the rest (its group priority).
                found.sort(key=lambda r: (_group_rank(r.group), r.group))
                return found[:1]
        return []

    def suggest(self, word: str, options: list[str]) -> str:
        close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
        return f"; did you mean {close[0]!r}?" if close else ""


def _version_rank(version: str) -> tuple[int, int, int]:
    """v1 before v2 before v1beta1 before v1alpha1 (stable first, then newest stage)."""
    num = "".join(
        c for c in version[1:].split("a", maxsplit=1)[0].split("b", maxsplit=1)[0] if c.isdigit()
    )
    stage = 2 if "alpha" in version else 1 if "beta" in version else 0
    return (stage, -int(num or 0), 0)


def _group_rank(group: str) -> int:
    return 0 if group == "" else 1 if group == "apps" else 2


def _schemas_dir() -> Path:
    return Path(str(resources.files("playbookctl") / "schemas"))


@lru_cache(maxsize=1)
def api() -> Api:
    path = _schemas_dir() / f"kubernetes-api-{KUBERNETES_VERSION}.json"
    data = json.loads(path.read_text("utf-8"))
    return Api(
        str(data["kubernetes"]),
        [
            Resource(
                r["group"],
                r["version"],
                r["resource"],
                r["kind"],
                bool(r["namespaced"]),
                frozenset(r["verbs"]),
                tuple(r["shortNames"]),
                tuple(r["categories"]),
                {k: frozenset(v["verbs"]) for k, v in r["subresources"].items()},
            )
            for r in data["resources"]
        ],
    )


# -- object schemas -------------------------------------------------------------------------------


def _validate_dir() -> Path:
    base = Path(str(resources.files("kubernetes_validate"))) / "kubernetes-json-schema"
    return base / f"v{KUBERNETES_VERSION}.0-local-strict"


@lru_cache(maxsize=1)
def _registry() -> referencing.Registry[Any]:
    definitions = json.loads((_validate_dir() / "_definitions.json").read_text("utf-8"))
    # The file carries its own $id (/api/_definitions.json), which the kinds' $refs name.
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


@lru_cache(maxsize=64)
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    group, _, version = api_version.rpartition("/")
    suffix = ("-" + group.split(".")[0] if group else "") + f"-{version}"
    path = _validate_dir() / f"{kind.lower()}{suffix}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def is_builtin(api_version: str, kind: str) -> bool:
    group, _, _ = api_version.rpartition("/")
    known = api().groups
    return group in known and any(r.kind == kind and r.group == group for r in api().resources)


def schema_findings(doc: Document, source: str | None = None) -> list[Finding]:
    """k8s.schema: the object against the pinned release's strict schema, as the cluster reads
    it (YAML 1.1 values included); nothing for a kind that is not built in. source: the file's
    text, to quote an unquoted scalar back in the message."""
    data = doc.data
    if not isinstance(data, dict):
        return []
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return []
    if not is_builtin(api_version, kind):
        return []
    validator = _validator(api_version, kind)
    if validator is None:
        return []
    lines = source.splitlines() if source is not None else []
    out: list[Finding] = []
    for error in validator.iter_errors(data):
        path = tuple(error.absolute_path)
        where = doc.pos(path)
        written = _token(lines, where.line, where.column)
        message = _message(error, kind, path, written)
        extra = _extra_keys(error)
        if extra:  # point at the unknown key itself
            out.append(doc.finding(SCHEMA_RULE, (*path, extra[0]), message, at_key=True))
        else:
            out.append(doc.finding(SCHEMA_RULE, path, message))
    return out


def _extra_keys(error: jsonschema.ValidationError) -> list[str]:
    if error.validator != "additionalProperties":
        return []
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance if isinstance(error.instance, dict) else {}
    return sorted(str(k) for k in set(instance) - set(schema.get("properties", {})))


def _token(lines: list[str], line: int, column: int) -> str | None:
    """The plain scalar written at line:column, if it is one."""
    if not 0 < line <= len(lines):
        return None
    rest = lines[line - 1][column - 1 :]
    if not rest or rest[0] in "\"'[{|>&*!":
        return None
    end = len(rest)
    for stop in (" #", ",", "]", "}"):
        i = rest.find(stop)
        if i >= 0:
            end = min(end, i)
    return rest[:end].strip() or None


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}


def _message(
    error: jsonschema.ValidationError, kind: str, path: tuple[Any, ...], written: str | None
) -> str:
    where = ".".join(str(p) for p in path) or "the object"
    prefix = f"{kind} (Kubernetes {KUBERNETES_VERSION} schema): {where}"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        options = sorted(schema.get("properties", {}))
        hints = []
        instance = error.instance if isinstance(error.instance, dict) else {}
        for extra in sorted(set(instance) - set(options)):
            close = difflib.get_close_matches(str(extra), options, n=1, cutoff=0.6)
            hints.append(f"{extra!r} (did you mean {close[0]!r}?)" if close else repr(extra))
        return f"{prefix}: unknown field {', '.join(hints)}; the API server refuses the object"
    if error.validator == "type":
        want = error.validator_value
        wants = [str(w) for w in (want if isinstance(want, list) else [want]) if w != "null"]
        got = _JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
        if (
            wants == ["string"]
            and written is not None
            and not isinstance(error.instance, dict | list)
        ):
            shown = json.dumps(error.instance)
            return (
                f"{prefix} must be a string, but the cluster reads the unquoted {written!r} as "
                f'the {got} {shown} (YAML 1.1); quote it: "{written}"'
            )
        return f"{prefix} must be of type {' or '.join(wants)}, not {got} ({error.instance!r})"
    return f"{prefix}: {error.message}"
