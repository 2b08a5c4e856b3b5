"""`tekton.*` rules: Tekton's own admission validation for Pipelines and Tasks (v1 and v1beta1)."""

from __future__ import annotations

from playbookctl.lint.tekton.common import API_VERSIONS

KINDS = ("Pipeline", "Task")


def is_tekton_object(data: object) -> bool:
    """True for a tekton.dev/v1 or v1beta1 Pipeline or Task."""
    return (
        isinstance(data, dict)
        and data.get("apiVersion") in API_VERSIONS
        and data.get("kind") in KINDS
    )
