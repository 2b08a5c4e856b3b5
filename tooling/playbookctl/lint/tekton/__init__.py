"""`tekton.*` rules: Tekton's own admission validation for Pipelines and Tasks (v1 and v1beta1).

`check_document` is the entry point: it dispatches a Pipeline to `pipeline.check_pipeline` and a
Task to `task.check_task`. Every finding is an error, because each is something the cluster's
admission webhook (or its strict decoding) refuses.
"""

from __future__ import annotations

from playbookctl.findings import Finding
from playbookctl.lint.tekton.common import API_VERSIONS
from playbookctl.lint.tekton.pipeline import check_pipeline, sibling
from playbookctl.load import Document, YamlPath

__all__ = ["KINDS", "check_document", "check_pipeline", "is_tekton_object"]

KINDS = ("Pipeline", "Task")


def is_tekton_object(data: object) -> bool:
    """True for a tekton.dev/v1 or v1beta1 Pipeline or Task."""
    return (
        isinstance(data, dict)
        and data.get("apiVersion") in API_VERSIONS
        and data.get("kind") in KINDS
    )


def check_document(doc: Document, path: YamlPath = ()) -> list[Finding]:
    """Tekton's validation of the Pipeline or Task at path (nothing for other objects)."""
    data = doc.get(path)
    if not is_tekton_object(data):
        return []
    if data["kind"] == "Pipeline":
        return check_pipeline(doc, path)
    check_task = sibling("task", "check_task")
    if check_task is None:  # pragma: no cover - only while the sibling module does not exist
        return []
    result: list[Finding] = check_task(doc, path)
    return result
