"""`tekton.*` rules: Tekton's own admission validation for Pipelines and Tasks (v1 and v1beta1).

The release followed is Tekton Pipelines v1.14 (`config.TEKTON_VERSION`, the `tekton-version`
setting); tests/unit/lint/test_tekton_conformance.py requires agreement with every verdict of
v1.14.1's own code on the shared conformance corpus. Every module is imported statically: a
missing or broken one fails the import (an internal error, exit 3), never a silent pass.

`check_document` is the entry point: it dispatches a Pipeline to `pipeline.check_pipeline` and a
Task to `task.check_task`. Every finding is an error, because each is something the cluster's
admission webhook (or its strict decoding) refuses.
"""

from __future__ import annotations

from playbookctl.findings import Finding
from playbookctl.lint.tekton.common import API_VERSIONS
from playbookctl.lint.tekton.pipeline import check_pipeline
from playbookctl.lint.tekton.task import check_task
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
    return check_task(doc, path)
