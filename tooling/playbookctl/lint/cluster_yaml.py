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
from playbookctl.load import Document, Reread, go_scalar, pyyaml_scalar

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


WRITE_AS = "the field takes that value, not a string: write it"
_TYPED_FIELDS = frozenset(("default", "minimum", "maximum"))
_PARAMETER_LISTS = frozenset(("parameters", "rollbackParameters"))
_PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "float": (int, float),
    "boolean": (bool,),
}


def _typed_field(doc: Document, reread: Reread) -> bool:
    """A RemediationWorkflow parameter's `minimum`/`maximum`, or the `default` of an integer,
    float or boolean parameter, read by the cluster as that type: the value is right as the
    cluster reads it, and quoting it would make it a string the schema refuses."""
    path = reread.path
    data = doc.data
    if reread.at_key or not isinstance(data, dict) or data.get("kind") != "RemediationWorkflow":
        return False
    if len(path) != 4 or path[0] != "spec" or path[1] not in _PARAMETER_LISTS:
        return False
    if path[3] not in _TYPED_FIELDS or not isinstance(path[2], int):
        return False
    params = data.get("spec", {}).get(path[1]) if isinstance(data.get("spec"), dict) else None
    if not isinstance(params, list) or path[2] >= len(params):
        return False
    param = params[path[2]]
    value = reread.cluster
    if path[3] != "default":
        return isinstance(value, int | float) and not isinstance(value, bool)
    ptype = param.get("type") if isinstance(param, dict) else None
    wanted = _PARAMETER_TYPES.get(ptype) if isinstance(ptype, str) else None
    if wanted is None or isinstance(value, bool) != (bool in wanted):
        return False
    return isinstance(value, wanted)


def _plain_text(value: object) -> str | None:
    """How to write `value` as a plain scalar both go-yaml v2 and PyYAML read as it, if any."""
    if isinstance(value, bool):
        candidates = ["true" if value else "false"]
    elif isinstance(value, int):
        candidates = [str(value)]
    elif isinstance(value, float):
        candidates = [repr(value), f"{value:f}".rstrip("0")]
    else:
        return None
    for text in candidates:
        go, py = go_scalar(text), pyyaml_scalar(text)
        if type(go) is type(value) and go == value and type(py) is type(go) and py == go:
            return text
    return None


def written_as_read(doc: Document, reread: Reread) -> str | None:
    """For a typed field (see _typed_field): the plain text of what the cluster reads, which
    `lint --fix` writes instead of quoting ("" when there is none: left alone); None where
    quoting is the fix."""
    if not _typed_field(doc, reread):
        return None
    return _plain_text(reread.cluster) or ""


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
            if _typed_field(doc, r):
                # The field takes what the cluster reads: "quote it" would break it.
                plain = _plain_text(r.cluster)
                message = message.rsplit("; quote it", 1)[0] + (
                    f"; {WRITE_AS} as {plain}"
                    if plain is not None
                    else f"; {WRITE_AS} as a number with a decimal point"
                )
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
