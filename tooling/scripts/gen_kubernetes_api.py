"""Regenerate tooling/playbookctl/schemas/kubernetes-api-<minor>.json: the pinned Kubernetes API's
discovery data (resource, group, version, kind, namespaced, verbs, subresources) that lint checks
RBAC rules and kubectl calls against.

Source: the official Python client (`kubernetes` on PyPI), whose API classes are generated from
the Kubernetes OpenAPI document of one release (client 34.x = Kubernetes 1.34). Each generated
method calls `api_client.call_api(PATH, HTTP_METHOD, ..., response_type=...)`; the path gives
group, version, resource, subresource and scope, the method the verb, and the response type the
kind. The client is read with `ast` from the wheel pip downloads, never imported or installed.

Short names (deploy, po, hpa...) are not in the OpenAPI document: the API server serves them in
discovery. The table below is `kubectl api-resources` of Kubernetes 1.34 for the built-in groups.

    .venv/bin/python tooling/scripts/gen_kubernetes_api.py            # downloads the wheel
    .venv/bin/python tooling/scripts/gen_kubernetes_api.py WHEEL.whl  # or reads this one
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CLIENT_VERSION = "34.1.0"
KUBERNETES = "1.34"
OUT = (
    Path(__file__).resolve().parents[1]
    / "playbookctl"
    / "schemas"
    / f"kubernetes-api-{KUBERNETES}.json"
)

SHORT_NAMES = {
    ("", "configmaps"): ["cm"],
    ("", "endpoints"): ["ep"],
    ("", "events"): ["ev"],
    ("", "limitranges"): ["limits"],
    ("", "namespaces"): ["ns"],
    ("", "nodes"): ["no"],
    ("", "persistentvolumeclaims"): ["pvc"],
    ("", "persistentvolumes"): ["pv"],
    ("", "pods"): ["po"],
    ("", "replicationcontrollers"): ["rc"],
    ("", "resourcequotas"): ["quota"],
    ("", "serviceaccounts"): ["sa"],
    ("", "services"): ["svc"],
    ("", "componentstatuses"): ["cs"],
    ("apiextensions.k8s.io", "customresourcedefinitions"): ["crd", "crds"],
    ("apps", "daemonsets"): ["ds"],
    ("apps", "deployments"): ["deploy"],
    ("apps", "replicasets"): ["rs"],
    ("apps", "statefulsets"): ["sts"],
    ("autoscaling", "horizontalpodautoscalers"): ["hpa"],
    ("batch", "cronjobs"): ["cj"],
    ("certificates.k8s.io", "certificatesigningrequests"): ["csr"],
    ("events.k8s.io", "events"): ["ev"],
    ("networking.k8s.io", "ingresses"): ["ing"],
    ("networking.k8s.io", "networkpolicies"): ["netpol"],
    ("policy", "poddisruptionbudgets"): ["pdb"],
    ("scheduling.k8s.io", "priorityclasses"): ["pc"],
    ("storage.k8s.io", "storageclasses"): ["sc"],
}
# The "all" category: what `kubectl get all` lists.
CATEGORY_ALL = {
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("", "services"),
    ("apps", "daemonsets"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("batch", "cronjobs"),
    ("batch", "jobs"),
}


def _calls(source: str) -> list[tuple[str, str, str]]:
    """(path, HTTP method, response type) of every call_api call in one API module."""
    out: list[tuple[str, str, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "call_api" or len(node.args) < 2:
            continue
        path, method = node.args[0], node.args[1]
        if not (isinstance(path, ast.Constant) and isinstance(method, ast.Constant)):
            continue
        response = ""
        for kw in node.keywords:
            if kw.arg == "response_type" and isinstance(kw.value, ast.Constant):
                response = str(kw.value.value or "")
        out.append((str(path.value), str(method.value), response))
    return out


def _kind(response: str) -> str:
    """`V1Deployment` -> `Deployment`, `V2HorizontalPodAutoscaler` -> ..., `V1beta1X` -> `X`."""
    name = response
    if name[:1] == "V" and name[1:2].isdigit():
        i = 1
        while i < len(name) and name[i].isdigit():
            i += 1
        for stage in ("alpha", "beta"):
            if name[i:].startswith(stage):
                i += len(stage)
                while i < len(name) and name[i].isdigit():
                    i += 1
        name = name[i:]
    return name


def _verb(method: str, item: bool) -> list[str]:
    if method == "GET":
        return ["get"] if item else ["list", "watch"]
    if method == "POST":
        return ["create"]
    if method == "PUT":
        return ["update"]
    if method == "PATCH":
        return ["patch"]
    if method == "DELETE":
        return ["delete"] if item else ["deletecollection"]
    return []


@dataclass
class _Sub:
    kind: str = ""
    verbs: set[str] = field(default_factory=set)


@dataclass
class _Entry:
    namespaced: bool = False
    kind: str = ""
    verbs: set[str] = field(default_factory=set)
    subresources: dict[str, _Sub] = field(default_factory=dict)


def collect(wheel: Path) -> dict[tuple[str, str, str], _Entry]:
    resources: dict[tuple[str, str, str], _Entry] = {}
    with zipfile.ZipFile(wheel) as zf:
        modules = sorted(n for n in zf.namelist() if n.startswith("kubernetes/client/api/"))
        for module in modules:
            for path, method, response in _calls(zf.read(module).decode("utf-8")):
                parts = path.strip("/").split("/")
                if parts[0] == "api" and len(parts) >= 2:
                    group, version, rest = "", parts[1], parts[2:]
                elif parts[0] == "apis" and len(parts) >= 3:
                    group, version, rest = parts[1], parts[2], parts[3:]
                else:
                    continue
                if not rest or rest[0] == "watch":
                    continue  # the deprecated /watch/ paths repeat list's watch
                namespaced = False
                if rest[0] == "namespaces" and len(rest) >= 3 and rest[1] == "{namespace}":
                    namespaced, rest = True, rest[2:]
                resource = rest[0]
                if resource.startswith("{"):
                    continue
                item = len(rest) >= 2 and rest[1] == "{name}"
                sub = rest[2] if item and len(rest) >= 3 else ""
                entry = resources.setdefault((group, version, resource), _Entry())
                entry.namespaced |= namespaced
                if sub:
                    # pods/exec, attach, portforward: the GET (websocket) and POST forms are
                    # authorized as get and create.
                    s = entry.subresources.setdefault(sub, _Sub())
                    s.verbs.update(_verb(method, True))
                    if method == "GET" and response and response != "str":
                        s.kind = _kind(response)
                else:
                    entry.verbs.update(_verb(method, item))
                    if method == "GET" and item and response:
                        entry.kind = _kind(response)
                    elif method == "POST" and not item and response and not entry.kind:
                        entry.kind = _kind(response)  # create-only kinds (reviews, tokens)
    return resources


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        if argv:
            wheel = Path(argv[0])
        else:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "-q",
                    "-d",
                    tmp,
                    f"kubernetes=={CLIENT_VERSION}",
                ],
                check=True,
            )
            wheel = next(Path(tmp).glob("kubernetes-*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        resources = collect(wheel)
    out = {
        "kubernetes": KUBERNETES,
        "source": {
            "package": f"kubernetes=={CLIENT_VERSION} (PyPI)",
            "file": wheel.name,
            "sha256": digest,
            "generator": "tooling/scripts/gen_kubernetes_api.py",
            "shortNames": f"kubectl api-resources, Kubernetes {KUBERNETES}",
        },
        "resources": [
            {
                "group": g,
                "version": v,
                "resource": r,
                "kind": e.kind,
                "namespaced": e.namespaced,
                "verbs": sorted(e.verbs),
                "shortNames": SHORT_NAMES.get((g, r), []),
                "categories": ["all"] if (g, r) in CATEGORY_ALL else [],
                "subresources": {
                    name: {"kind": s.kind, "verbs": sorted(s.verbs)}
                    for name, s in sorted(e.subresources.items())
                },
            }
            for (g, v, r), e in sorted(resources.items())
        ],
    }
    OUT.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n", "utf-8")
    print(f"wrote {OUT} ({len(out['resources'])} resources)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
