"""Kubernaut's side of the contract, as data: `references/kubernaut.json`.

That table was written by reading Kubernaut's Go code at one commit (its `provenance` names the
commit and every source file with its sha256; `make refresh-references` says which changed).
Lint and `pipelinerun` take their expectations from here rather than from constants scattered
through the code, so a Kubernaut upgrade is one reviewed data change.

The PipelineRun naming below reproduces `pkg/workflowexecution/executor/tekton.go`
(`ExecutionResourceName`, `sanitizeLabelValue`) exactly, byte for byte, including where that
code produces a label value the API server refuses (see `label_value_problem`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@cache
def table() -> dict[str, Any]:
    text = resources.files("playbookctl").joinpath("references", "kubernaut.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def commit() -> str:
    return str(table()["provenance"]["commit"])


@dataclass(frozen=True)
class FilledParameter:
    name: str
    part: str  # name, kind, namespace or apiVersion of the remediation target
    when: str
    source: str

    @property
    def always(self) -> bool:
        return self.when.startswith("always")


def filled_parameters() -> tuple[FilledParameter, ...]:
    """The parameters Kubernaut's agent fills in from the remediation target."""
    return tuple(FilledParameter(**p) for p in table()["filledParameters"])


def filled_by_part() -> dict[str, FilledParameter]:
    return {p.part: p for p in filled_parameters()}


def run_parameter() -> str:
    """TARGET_RESOURCE: added to every PipelineRun, never a workflow parameter."""
    return str(table()["runParameter"]["name"])


def executing_timeout_seconds() -> int:
    return int(table()["executingTimeoutMinutes"]["value"]) * 60


def boolean_detected_labels() -> tuple[str, ...]:
    return tuple(table()["detectedLabels"]["booleans"])


def source_of(key: str) -> str:
    """Where in Kubernaut's code a table entry comes from, with the commit, for messages."""
    return f"{table()[key]['source']} @ {commit()[:8]}"


# --- the PipelineRun Kubernaut creates ---------------------------------------------------------


def _pr() -> dict[str, Any]:
    data: dict[str, Any] = table()["pipelineRun"]
    return data


def pipelinerun_name(target: str) -> str:
    """`wfe-` + the first 16 hex characters of sha256(TARGET_RESOURCE) (ExecutionResourceName:
    one run per target at a time, Kubernaut's lock)."""
    digest = hashlib.sha256(target.encode("utf-8")).hexdigest()
    return f"{_pr()['namePrefix']}{digest[: _pr()['nameHashHexChars']]}"


def target_label_value(target: str) -> str:
    """sanitizeLabelValue: every `/` becomes `__`, then the first 63 *bytes* are kept (Go's
    len() and s[:63] count bytes). Nothing is trimmed after the cut."""
    value = target.replace("/", _pr()["labelSlashReplacement"]).encode("utf-8")
    # A cut inside a multi-byte character leaves invalid UTF-8 in Go; a Kubernetes name never
    # has one, and label_value_problem refuses the result anyway.
    return value[: _pr()["labelMaxBytes"]].decode("utf-8", errors="replace")


# k8s.io/apimachinery validation.IsValidLabelValue
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value_problem(value: str) -> str | None:
    """Why the API server refuses `value` as a label value, or None."""
    if len(value.encode("utf-8")) > 63:
        return "longer than 63 characters"
    if not _LABEL_VALUE_RE.match(value):
        return (
            "a label value must be empty or begin and end with a letter or digit, with only "
            "letters, digits, '-', '_' and '.' between"
        )
    return None


def label_keys() -> dict[str, str]:
    keys: dict[str, str] = _pr()["labels"]
    return keys


def annotation_keys() -> dict[str, str]:
    keys: dict[str, str] = _pr()["annotations"]
    return keys


def workflow_execution_name(remediation_request: str) -> str:
    """The WorkflowExecution Kubernaut's orchestrator creates for a RemediationRequest."""
    return f"{_pr()['workflowExecutionNamePrefix']}{remediation_request}"
