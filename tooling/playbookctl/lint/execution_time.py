"""`playbook.execution-timeout` (warning): a Pipeline that allows itself longer than Kubernaut
waits for it.

Kubernaut sets no timeout on the PipelineRun; its orchestrator marks a remediation timed out
after `Executing` (30 minutes by default: references/kubernaut.json, executingTimeoutMinutes),
while the run goes on. A task, finally task or step whose own `timeout` is longer (or `0`: no
limit), or tasks run one after another (runAfter) whose timeouts add up to more, are allowed to
still be working when Kubernaut has already given up and reported the remediation as failed.
Timeouts Tekton itself refuses are tekton.* errors; they are skipped here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from playbookctl import contract
from playbookctl.findings import Finding, Severity
from playbookctl.load import Document, YamlPath

RULE = "playbook.execution-timeout"
# Go's time.ParseDuration, as Tekton reads `timeout`
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def duration_seconds(text: str) -> float | None:
    """Seconds of a Go duration ("40m", "1h30m", "0"), None when it is not one."""
    if text in ("0", "+0", "-0"):
        return 0.0
    body = text.lstrip("+-")
    if not body or text.startswith("-"):
        return None
    pos, total = 0, 0.0
    while pos < len(body):
        m = _PART.match(body, pos)
        if m is None or m.group(1) in ("", "."):
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return total


@cache
def _limit() -> tuple[float, str]:
    seconds = contract.executing_timeout_seconds()
    return seconds, (
        f"Kubernaut's default Executing timeout of {seconds // 60} minutes "
        f"({contract.source_of('executingTimeoutMinutes')})"
    )


def _timeouts(data: dict[str, Any]) -> Iterator[tuple[YamlPath, str, float, str]]:
    """(path of the timeout, what it limits, seconds, text) for every parseable timeout."""
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return
    for key in ("tasks", "finally"):
        tasks = spec.get(key)
        for i, task in enumerate(tasks if isinstance(tasks, list) else []):
            if not isinstance(task, dict):
                continue
            name = task.get("name", f"#{i}")
            value = task.get("timeout")
            seconds = duration_seconds(value) if isinstance(value, str) else None
            if isinstance(value, str) and seconds is not None:
                label = "finally task" if key == "finally" else "task"
                yield ("spec", key, i, "timeout"), f"{label} {name!r}", seconds, value
            steps = (
                (task.get("taskSpec") or {}).get("steps")
                if isinstance(task.get("taskSpec"), dict)
                else None
            )
            for j, step in enumerate(steps if isinstance(steps, list) else []):
                step_value = step.get("timeout") if isinstance(step, dict) else None
                if not isinstance(step_value, str):
                    continue
                seconds = duration_seconds(step_value)
                if seconds is not None:
                    where: YamlPath = ("spec", key, i, "taskSpec", "steps", j, "timeout")
                    what = f"step {step.get('name', j)!r} of {name!r}"
                    yield where, what, seconds, step_value


def _longest_chain(spec: dict[str, Any]) -> tuple[float, list[str], int] | None:
    """The runAfter chain of tasks whose timeouts add up the most: (seconds, names, index of
    its last task); a task without a timeout counts 0; None for a cycle or no tasks."""
    tasks = (
        [t for t in spec.get("tasks") or [] if isinstance(t, dict)]
        if isinstance(spec.get("tasks"), list)
        else []
    )
    by_name: dict[str, tuple[int, dict[str, Any]]] = {
        t["name"]: (i, t) for i, t in enumerate(tasks) if isinstance(t.get("name"), str)
    }
    best: dict[str, tuple[float, list[str]]] = {}

    def walk(name: str, seen: frozenset[str]) -> tuple[float, list[str]] | None:
        if name in best:
            return best[name]
        if name in seen:
            return None
        task = by_name[name][1]
        value = task.get("timeout")
        own = duration_seconds(value) if isinstance(value, str) else None
        before: tuple[float, list[str]] = (0.0, [])
        after = task.get("runAfter")
        for dep in after if isinstance(after, list) else []:
            if isinstance(dep, str) and dep in by_name:
                got = walk(dep, seen | {name})
                if got is None:
                    return None
                if got[0] > before[0]:
                    before = got
        best[name] = (before[0] + (own or 0.0), [*before[1], name])
        return best[name]

    result: tuple[float, list[str], int] | None = None
    for name, (index, _task) in by_name.items():
        got = walk(name, frozenset())
        if got is None:
            return None
        if result is None or got[0] > result[0]:
            result = (got[0], got[1], index)
    return result


def check_execution_timeout(doc: Document) -> list[Finding]:
    data = doc.data
    if not isinstance(data, dict) or data.get("kind") != "Pipeline":
        return []
    limit, why = _limit()
    findings: list[Finding] = []
    over_alone = False
    for path, what, seconds, text in _timeouts(data):
        if seconds == 0:
            message = f"{what} has timeout {text!r}, no limit at all"
        elif seconds > limit:
            message = f"{what} may run for {text}"
        else:
            continue
        over_alone = True
        findings.append(
            doc.finding(
                RULE,
                path,
                f"{message}, longer than {why}: Kubernaut reports the remediation as timed out "
                "while the run goes on; keep it within the limit (or raise the orchestrator's "
                "timeouts.executing and say so)",
                Severity.WARNING,
            )
        )
    spec = data.get("spec")
    chain = _longest_chain(spec) if isinstance(spec, dict) and not over_alone else None
    if chain is not None and chain[0] > limit and len(chain[1]) > 1:
        seconds, names, index = chain
        findings.append(
            doc.finding(
                RULE,
                ("spec", "tasks", index, "name"),
                f"tasks {' -> '.join(names)} run one after another and may take "
                f"{seconds / 60:g} minutes in all (their timeouts), longer than {why}",
                Severity.WARNING,
            )
        )
    return findings
