"""`load.yaml-1.1`: scalars the cluster reads differently from PyYAML, as findings.

The loader already reads every plain scalar as go-yaml v2 (YAML 1.1) does and keeps each one
PyYAML would read otherwise in `Document.rereads` (load.py). Here each becomes a finding with
"quote it" as the fix: an error where the cluster's reading breaks the object, a warning
otherwise. It breaks the object where another check reports an error at that very value (the
strict decoder's "cannot decode bool into ... of type string", the CRD schema's type error), and
where Kubernetes wants a string whatever the kind: metadata names, namespaces, labels and
annotations, and every field of the RBAC objects of rbac.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from playbookctl.findings import Finding, Severity
from playbookctl.load import Document, Reread

RULE = "load.yaml-1.1"
_RBAC_KINDS = frozenset(
    ("ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
)
_NON_STRING_RBAC_FIELDS = frozenset(("automountServiceAccountToken",))


def _string_required(doc: Document, reread: Reread) -> bool:
    if reread.at_key or isinstance(reread.cluster, str):
        return False  # a renamed key is legal; a string reading cannot break a string field
    path = reread.path
    if len(path) >= 2 and path[0] == "metadata":
        if path[1] in ("name", "namespace", "generateName") and len(path) == 2:
            return True
        if path[1] in ("labels", "annotations") and len(path) == 3:
            return True
    kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
    return kind in _RBAC_KINDS and str(path[-1]) not in _NON_STRING_RBAC_FIELDS


def reread_findings(docs: Iterable[Document | None], found: Iterable[Finding]) -> list[Finding]:
    """One finding per reread scalar of docs; found: the other findings about those docs."""
    errors_at = {(f.file, f.line, f.column) for f in found if f.severity is Severity.ERROR}
    out: list[Finding] = []
    for doc in docs:
        if doc is None:
            continue
        for r in doc.rereads:
            where = (doc.file, r.position.line, r.position.column)
            breaks = where in errors_at or _string_required(doc, r)
            message = r.message()
            if breaks:
                message += "; the cluster refuses the object as it reads it"
            out.append(
                Finding(
                    RULE,
                    Severity.ERROR if breaks else Severity.WARNING,
                    doc.file,
                    r.position.line,
                    r.position.column,
                    message,
                )
            )
    return out
