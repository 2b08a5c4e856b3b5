"""A minimal local GitHub Actions runner: plays this repository's workflow files on this machine.

It reads the jobs and steps from the YAML file itself (nothing re-typed), so a test that plays a
workflow proves the file as written. It understands exactly what .github/workflows/ uses and
raises `NotEmulatedError` (an AssertionError: the test fails) on anything else, so a replay can
never silently skip a step, a condition or an expression:

- expressions: literals, context paths (`github.event.before`, `needs.plan.outputs.matrix`, ...),
  `fromJSON(...)` and `==`; a job `if:` gets GitHub's implicit `success() &&`;
- `uses:` actions/checkout (a fresh clone of the remote at GITHUB_SHA, honouring fetch-depth),
  actions/setup-python (nothing to do), actions/upload-artifact and actions/download-artifact (a
  directory per artifact name, for the whole run: a name is taken unless `overwrite: true`),
  docker/setup-qemu-action (nothing it can do: binfmt_misc is the
  host kernel's; a replayed RUN step for arm64 fails as on a runner without QEMU),
  actions/cache (see CacheStore: GitHub's key, prefix and branch-scope rules over a directory);
- `hashFiles(...)`: a digest of the matched files' contents in the job's checkout (not GitHub's
  bytes, but equal exactly when the files are);
- each job instance runs with a HOME of its own, empty, as a fresh runner's is: nothing it
  writes there (playbookctl's cache) reaches another job except through actions/cache;
- `run:` steps run with `bash -eo pipefail` in the job's checkout, with the environment GitHub
  sets (GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files per step, GITHUB_SHA, GITHUB_REF, ...);
  `make venv` provisions `.venv/bin/playbookctl` as a link to this interpreter's playbookctl;
- the job's token (`secrets.GITHUB_TOKEN`, `github.token`): its own per job, the one `tokens`
  names for the package access the job's `permissions` grant (else the workflow's; a key left
  out is none), so a job that reads a private registry without `packages: read` gets a token
  the registry refuses, as GitHub's would be;
- `Runner.rerun`: GitHub's "Re-run failed jobs" / "Re-run all jobs" of the same run;
- `strategy.matrix` with `include` only; each matrix entry runs concurrently in its own
  checkout, so its steps are separate processes as on separate runners (at most
  `max-parallel`, else the runner's `max_parallel`, at once: the machine is not a fleet). A
  matrix of more than 256 jobs fails the job, as GitHub refuses it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class NotEmulatedError(AssertionError):
    """The workflow uses something this runner does not emulate: the replay must not go on."""


# -- expressions ----------------------------------------------------------------------------


class OpenMapping(dict[str, Any]):
    """A context whose missing properties are null, as GitHub's event payload and `inputs` are
    (e.g. `github.event.before` on workflow_dispatch). Every other context is strict: a missing
    property is a typo or an output nobody wrote, and fails the replay."""


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|&&|!(?!=)|\(|\)|\.|,)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# Status functions: a replay cancels nothing. An `if:` naming one loses the implicit success().
STATUS_FUNCTIONS = {"cancelled": False}
# The job's checkout, for hashFiles(): a context key no expression can name (not a name token).
WORKSPACE = "<workspace>"
_STATUS_CALL = re.compile(r"\b(?:success|failure|cancelled|always)\s*\(")


def _tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise NotEmulatedError(f"expression {expr!r}: cannot read {expr[pos:].strip()!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, expr: str, contexts: Mapping[str, Any]) -> None:
        self.expr = expr
        self.toks = _tokens(expr)
        self.i = 0
        self.contexts = contexts

    def fail(self, why: str) -> NotEmulatedError:
        return NotEmulatedError(f"expression {self.expr.strip()!r}: {why}")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise self.fail(f"expected {value or 'more'}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.conjunction()
        if self.peek() is not None:
            raise self.fail(f"unsupported {self.peek()[1]!r}")  # type: ignore[index]
        return value

    def conjunction(self) -> Any:
        value = self.comparison()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.comparison()
            value = right if truthy(value) else value  # GitHub's && yields an operand
        return value

    def comparison(self) -> Any:
        left = self.unary()
        if self.peek() == ("op", "=="):
            self.take()
            return _equal(left, self.unary(), self)
        return left

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind != "name":
            raise self.fail(f"unsupported {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self.peek() == ("op", "("):
            self.take("(")
            if text in STATUS_FUNCTIONS:
                self.take(")")
                return STATUS_FUNCTIONS[text]
            if text == "hashFiles":
                return self.hash_files()
            if text != "fromJSON":
                raise self.fail(f"unsupported function {text}()")
            arg = self.conjunction()
            self.take(")")
            if not isinstance(arg, str):
                raise self.fail(f"{text}() of a non-string")
            return json.loads(arg)
        return self.path(text)

    def hash_files(self) -> str:
        """hashFiles('pattern', ...): files of the job's checkout matching any pattern, their
        contents digested in path order; '' when none match, as GitHub's."""
        workspace = self.contexts.get(WORKSPACE)
        if not isinstance(workspace, Path):
            raise self.fail("hashFiles() outside a job's steps")
        patterns = [self.conjunction()]
        while self.peek() == ("op", ","):
            self.take(",")
            patterns.append(self.conjunction())
        self.take(")")
        if not all(isinstance(p, str) and not p.startswith(("!", "/")) for p in patterns):
            raise self.fail("hashFiles() of anything but relative glob strings")
        files = sorted({f for p in patterns for f in workspace.glob(p) if f.is_file()})
        if not files:
            return ""
        outer = hashlib.sha256()
        for f in files:
            outer.update(hashlib.sha256(f.read_bytes()).digest())
        return outer.hexdigest()

    def path(self, root: str) -> Any:
        if root not in self.contexts:
            raise self.fail(f"unknown context {root!r}")
        value: Any = self.contexts[root]
        walked = root
        while self.peek() == ("op", "."):
            self.take(".")
            _, key = self.take()
            walked += "." + key
            if isinstance(value, OpenMapping):
                value = value.get(key)
                if isinstance(value, dict) and not isinstance(value, OpenMapping):
                    value = OpenMapping(value)
            elif isinstance(value, dict) and key in value:
                value = value[key]
            elif value is None and walked.startswith(("github.event.", "inputs.")):
                value = None
            else:
                raise self.fail(f"{walked} is not defined here")
        return value


def _equal(a: Any, b: Any, p: _Parser) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()  # GitHub compares strings ignoring case
    if type(a) is type(b):
        return bool(a == b)
    raise p.fail(f"comparison of {type(a).__name__} with {type(b).__name__} (coercion)")


def evaluate(expr: str, contexts: Mapping[str, Any]) -> Any:
    """The value of one expression (the text inside `${{ }}`, or a bare `if:`)."""
    return _Parser(expr, contexts).parse()


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def substitute(text: str, contexts: Mapping[str, Any]) -> Any:
    """A workflow value: a lone `${{ x }}` gives x's value (an object for a matrix), otherwise
    every `${{ }}` is replaced by its text."""
    whole = _EXPR.fullmatch(text.strip())
    if whole is not None:
        return evaluate(whole.group(1), contexts)
    return _EXPR.sub(lambda m: to_text(evaluate(m.group(1), contexts)), text)


def text_value(value: Any, contexts: Mapping[str, Any]) -> str:
    """An `env:` or `with:` value as the step sees it (YAML `true` is the text "true")."""
    return to_text(substitute(value, contexts) if isinstance(value, str) else value)


def truthy(value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (None, False, 0, "")


def condition(text: Any, contexts: Mapping[str, Any]) -> bool:
    if isinstance(text, bool):
        return text
    expr = str(text).strip()
    whole = _EXPR.fullmatch(expr)
    return truthy(evaluate(whole.group(1) if whole else expr, contexts))


# -- step outputs ---------------------------------------------------------------------------


def parse_output_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's `key=value` lines and `key<<DELIM ... DELIM` blocks."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            body: list[str] = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise NotEmulatedError(f"GITHUB_OUTPUT: {key!r} block never ends with {delim!r}")
            i += 1
            out[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        else:
            raise NotEmulatedError(f"GITHUB_OUTPUT: unreadable line {line!r}")
    return out


# -- the runner -----------------------------------------------------------------------------


def load_workflow(path: Path) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text("utf-8"))
    if True in data:  # PyYAML reads the `on:` key as a boolean
        data["on"] = data.pop(True)
    return data


@dataclass
class Event:
    """What triggered the run: `push`, `workflow_dispatch` or `pull_request`."""

    name: str
    sha: str
    ref: str = "refs/heads/main"
    payload: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    base_ref: str = ""  # GITHUB_BASE_REF of a pull_request
    head_ref: str = ""


@dataclass
class StepRun:
    label: str
    status: str  # success, failure, skipped
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


@dataclass
class JobRun:
    job_id: str
    name: str
    result: str  # success, failure, skipped
    matrix: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepRun] = field(default_factory=list)
    workspace: Path | None = None

    @property
    def summary(self) -> str:
        return "".join(s.summary for s in self.steps)

    def failed_step(self) -> StepRun | None:
        return next((s for s in self.steps if s.status == "failure"), None)


JOB_KEYS = {
    "name", "runs-on", "timeout-minutes", "permissions", "outputs", "steps", "needs", "if",
    "strategy", "concurrency",
}  # fmt: skip
STEP_KEYS = {"name", "id", "uses", "with", "run", "env", "if"}
ACTION_INPUTS = {
    "actions/checkout": {"fetch-depth", "persist-credentials"},
    "actions/setup-python": {"python-version"},
    "actions/upload-artifact": {"name", "path", "if-no-files-found", "retention-days", "overwrite"},
    "actions/download-artifact": {"pattern", "path", "merge-multiple"},
    # Registers QEMU in the runner kernel's binfmt_misc. The replay cannot (root and the host
    # kernel): it runs nothing, so a replayed RUN step for arm64 meets playbookctl's own
    # "needs emulation" error, exactly as a runner without the action would.
    "docker/setup-qemu-action": {"platforms"},
    "actions/cache": {"path", "key", "restore-keys"},
}
MAX_STEP_SECONDS = 300
# GitHub: "A matrix can generate a maximum of 256 jobs per workflow run."
MAX_MATRIX_JOBS = 256


class CacheStore:
    """actions/cache's service for one Runner: entries in a directory, each one a (scope, key,
    version) written once. As GitHub's: a run restores from its own ref's scope, else its base
    branch's (a pull request's), else the default branch's; within a scope the exact key first,
    then the key and each restore-key as a prefix, newest entry first. It saves into its own ref's
    scope only (a pull request's run cannot write the default branch's), and never over a key
    already there. The version is the `path` input: an entry saved for other paths is not seen."""

    def __init__(self, root: Path, default_branch: str) -> None:
        self.root = root
        self.default_branch = default_branch
        self._lock = threading.Lock()
        self._ids = itertools.count()

    def scopes(self, event: Event) -> list[str]:
        own = [event.ref]
        if event.base_ref:
            own.append(f"refs/heads/{event.base_ref}")
        own.append(f"refs/heads/{self.default_branch}")
        return list(dict.fromkeys(own))

    def _entries(self) -> list[tuple[int, dict[str, str], Path]]:
        found = []
        for meta in self.root.glob("*/meta.json") if self.root.is_dir() else []:
            found.append((int(meta.parent.name), json.loads(meta.read_text()), meta.parent))
        return sorted(found, key=lambda e: -e[0])  # newest first

    def restore(
        self, event: Event, key: str, restore_keys: Sequence[str], version: str
    ) -> tuple[Path | None, bool]:
        """The entry to restore (its directory) and whether it is the exact key."""
        with self._lock:
            entries = [e for e in self._entries() if e[1]["version"] == version]
        for scope in self.scopes(event):
            here = [e for e in entries if e[1]["scope"] == scope]
            for _, meta, where in here:
                if meta["key"] == key:
                    return where, True
            for prefix in [key, *restore_keys]:
                for _, meta, where in here:
                    if meta["key"].startswith(prefix):
                        return where, False
        return None, False

    def save(self, event: Event, key: str, version: str, paths: Sequence[Path]) -> bool:
        """Saves `paths` (those that exist) under `key` in the run's scope; False when the key is
        already there (GitHub keeps the first) or there is nothing to save."""
        if not any(p.exists() for p in paths):
            return False  # GitHub warns "Path(s) ... do(es) not exist" and saves nothing
        with self._lock:
            for _, meta, _where in self._entries():
                same = (meta["scope"], meta["key"], meta["version"])
                if same == (event.ref, key, version):
                    return False
            where = self.root / str(next(self._ids))
            for i, path in enumerate(paths):
                if path.is_dir():
                    shutil.copytree(path, where / "data" / str(i), symlinks=True)
                elif path.exists():
                    (where / "data").mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, where / "data" / str(i))
            where.mkdir(parents=True, exist_ok=True)
            meta = {"scope": event.ref, "key": key, "version": version}
            (where / "meta.json").write_text(json.dumps(meta))
        return True

    @staticmethod
    def unpack(where: Path, paths: Sequence[Path]) -> None:
        for i, path in enumerate(paths):
            saved = where / "data" / str(i)
            if saved.is_dir():
                shutil.copytree(saved, path, symlinks=True, dirs_exist_ok=True)
            elif saved.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(saved, path)


class Runner:
    """Plays a workflow file's jobs for one event against a bare git remote."""

    def __init__(
        self,
        workflow: Path,
        remote: Path,
        workdir: Path,
        env: Mapping[str, str],
        playbookctl: Path,
        *,
        repository: str = "example/playbooks",
        actor: str = "release-bot",
        secrets: Mapping[str, str] | None = None,
        tokens: Mapping[str, str] | None = None,
        max_parallel: int = 16,
        default_branch: str = "main",
    ) -> None:
        """`tokens`: the job's GITHUB_TOKEN by the package access its permissions grant ("none",
        "read", "write"); without them a workflow that names the token fails the replay. The
        runner's actions/cache entries (`cache`) last across its plays, as a repository's do."""
        if "GITHUB_TOKEN" in (secrets or {}):
            raise NotEmulatedError("GITHUB_TOKEN is each job's own token: pass tokens=")
        self.tokens = dict(tokens or {})
        self.workflow = load_workflow(workflow)
        self.max_parallel = max_parallel
        self.remote = remote
        self.workdir = workdir
        self.env = dict(env)
        self.playbookctl = playbookctl
        self.repository = repository
        self.actor = actor
        self.secrets = dict(secrets or {})
        self.artifacts = workdir / "artifacts"
        self.cache = CacheStore(workdir / "actions-cache", default_branch)
        self._runs = 0

    # -- jobs ---------------------------------------------------------------------------------

    def play(self, event: Event, jobs: Sequence[str] | None = None) -> dict[str, list[JobRun]]:
        """Every job (or those named) in dependency order; returns job id -> runs (one per
        matrix entry, or one)."""
        self._runs += 1
        self.run_dir = self.workdir / f"run{self._runs}"
        self.run_dir.mkdir(parents=True)
        self.attempt_dir = self.run_dir
        self._attempts = 1
        self.artifacts = self.run_dir / "artifacts"
        self.artifacts.mkdir()
        self.event = event
        unknown = set(self.workflow) - {"name", "on", "permissions", "concurrency", "jobs"}
        if unknown:
            raise NotEmulatedError(f"workflow keys {sorted(unknown)} are not emulated")
        if "concurrency" in self.workflow:
            substitute(str(self.workflow["concurrency"].get("group", "")), self.contexts())
        on = self.workflow["on"]
        if not isinstance(on, dict):  # `on: push` or `on: [push, ...]`
            on = dict.fromkeys([on] if isinstance(on, str) else on)
        if event.name not in on:
            raise NotEmulatedError(f"the workflow does not run on {event.name}")
        declared = ((on.get("workflow_dispatch") or {}).get("inputs") or {}).keys()
        if set(event.inputs) - set(declared):
            raise NotEmulatedError(f"undeclared inputs {sorted(set(event.inputs) - set(declared))}")
        done: dict[str, list[JobRun]] = {}
        for job_id in self._order(jobs):
            done[job_id] = self._job(job_id, self.workflow["jobs"][job_id], done)
        return done

    def rerun(
        self, previous: Mapping[str, list[JobRun]], jobs: Sequence[str] | None = None
    ) -> dict[str, list[JobRun]]:
        """GitHub's re-run of the last played run: the jobs named ("Re-run all jobs" names them
        all; by default those with a failed instance, "Re-run failed jobs") and every job that
        needs one of them run again, each instance on a fresh runner; the others keep their
        results and outputs. It is the same run: the artifacts its earlier attempts uploaded
        are still there (actions/upload-artifact refuses a name taken unless `overwrite`)."""
        all_jobs: dict[str, Any] = self.workflow["jobs"]
        again = set(jobs) if jobs is not None else {
            job_id for job_id, runs in previous.items() if any(r.result == "failure" for r in runs)
        }  # fmt: skip
        grew = True
        while grew:
            more = {j for j in all_jobs if set(_needs(all_jobs[j])) & again} - again
            again |= more
            grew = bool(more)
        self._attempts += 1
        self.attempt_dir = self.run_dir / f"attempt{self._attempts}"
        self.attempt_dir.mkdir()
        done: dict[str, list[JobRun]] = {}
        for job_id in self._order(None):
            if job_id in again:
                done[job_id] = self._job(job_id, all_jobs[job_id], done)
            else:
                done[job_id] = previous[job_id]
        return done

    def _order(self, only: Sequence[str] | None) -> list[str]:
        all_jobs: dict[str, Any] = self.workflow["jobs"]
        order: list[str] = []

        def visit(job_id: str) -> None:
            if job_id in order:
                return
            for need in _needs(all_jobs[job_id]):
                visit(need)
            order.append(job_id)

        for job_id in only or list(all_jobs):
            visit(job_id)
        return order

    def contexts(self, **extra: Any) -> dict[str, Any]:
        e = self.event
        github = {
            "event": OpenMapping(e.payload),
            "event_name": e.name,
            "sha": e.sha,
            "ref": e.ref,
            "actor": self.actor,
            "repository": self.repository,
            "base_ref": e.base_ref,
            "head_ref": e.head_ref,
        }
        return {
            "github": github,
            "inputs": OpenMapping(e.inputs),
            "secrets": dict(self.secrets),
            **extra,
        }

    def _job(self, job_id: str, job: dict[str, Any], done: dict[str, list[JobRun]]) -> list[JobRun]:
        unknown = set(job) - JOB_KEYS
        if unknown:
            raise NotEmulatedError(f"job {job_id}: unsupported keys {sorted(unknown)}")
        needs: dict[str, Any] = {}
        for need in _needs(job):
            runs = done.get(need)
            if runs is None:
                raise NotEmulatedError(f"job {job_id} needs {need}, which was not played")
            results = {r.result for r in runs}
            result = "failure" if "failure" in results else next(iter(results))
            needs[need] = {"result": result, "outputs": dict(runs[0].outputs)}
        ctx = self.contexts(needs=needs)
        if "concurrency" in job:
            substitute(str(job["concurrency"].get("group", "")), ctx)  # must evaluate
        # GitHub's implicit `success() &&` (unless the `if:` calls a status function): a failed
        # or skipped dependency skips the job.
        go = all(n["result"] == "success" for n in needs.values())
        if "if" in job and (go or _STATUS_CALL.search(str(job["if"]))):
            go = condition(job["if"], ctx)
        if not go:
            return [JobRun(job_id, str(job.get("name", job_id)), "skipped")]
        entries: list[dict[str, Any]] = [{}]
        strategy = job.get("strategy")
        if strategy is not None:
            if set(strategy) - {"fail-fast", "matrix", "max-parallel"}:
                raise NotEmulatedError(f"job {job_id}: strategy keys {sorted(strategy)}")
            matrix = substitute(str(strategy["matrix"]), ctx)
            if not isinstance(matrix, dict) or set(matrix) != {"include"}:
                raise NotEmulatedError(
                    f"job {job_id}: only an `include` matrix is emulated: {matrix}"
                )
            entries = list(matrix["include"])
            if not entries or len(entries) > MAX_MATRIX_JOBS:
                # GitHub fails a job whose matrix has no combination, or more than 256.
                return [JobRun(job_id, job_id, "failure")]
        limit = int((strategy or {}).get("max-parallel") or self.max_parallel)
        with ThreadPoolExecutor(max_workers=max(1, min(len(entries), limit))) as pool:
            futures = [
                pool.submit(self._job_instance, job_id, job, needs, entry, n)
                for n, entry in enumerate(entries)
            ]
            return [f.result() for f in futures]

    def _job_instance(
        self, job_id: str, job: dict[str, Any], needs: dict[str, Any], entry: dict[str, Any], n: int
    ) -> JobRun:
        ctx = self.contexts(needs=needs, matrix=entry, steps={})
        if self.tokens:
            access = self._packages(job_id, job)
            if access not in self.tokens:
                raise NotEmulatedError(f"job {job_id}: no token given for packages: {access}")
            ctx["secrets"]["GITHUB_TOKEN"] = ctx["github"]["token"] = self.tokens[access]
        name = to_text(substitute(str(job.get("name", job_id)), ctx))
        workspace = self.attempt_dir / f"{job_id}-{n}" / "repo"
        temp = self.attempt_dir / f"{job_id}-{n}" / "temp"
        home = self.attempt_dir / f"{job_id}-{n}" / "home"  # a fresh runner's: empty
        workspace.mkdir(parents=True)
        temp.mkdir()
        home.mkdir()
        ctx[WORKSPACE] = workspace
        run = JobRun(job_id, name, "success", matrix=entry, workspace=workspace)
        saves: list[tuple[str, str, list[Path]]] = []  # actions/cache's post steps
        timeout = min(MAX_STEP_SECONDS, int(job.get("timeout-minutes", 360)) * 60)
        for number, step in enumerate(job.get("steps", [])):
            unknown = set(step) - STEP_KEYS
            if unknown:
                raise NotEmulatedError(
                    f"job {job_id} step {number}: unsupported keys {sorted(unknown)}"
                )
            label = str(step.get("name") or step.get("uses") or step.get("run", "")).strip()
            if "if" in step and _STATUS_CALL.search(str(step["if"])):
                go = condition(step["if"], ctx)
            else:
                go = run.result == "success" and ("if" not in step or condition(step["if"], ctx))
            if not go:
                run.steps.append(StepRun(label, "skipped"))
                continue
            if "uses" in step:
                outcome = self._action(step, ctx, workspace, home, saves)
            else:
                outcome = self._script(
                    step, ctx=ctx, workspace=workspace, temp=temp, home=home, number=number,
                    timeout=timeout,
                )  # fmt: skip
            outcome.label = label
            run.steps.append(outcome)
            if "id" in step:
                ctx["steps"][step["id"]] = {"outputs": outcome.outputs, "outcome": outcome.status}
            if outcome.status != "success":
                run.result = "failure"
        # actions/cache saves in its post step, which runs only when the job succeeded.
        if run.result == "success":
            for key, version, paths in saves:
                self.cache.save(self.event, key, version, paths)
        # As GitHub does, a job's outputs are evaluated at its end whatever its result (a
        # failed step's outputs included): a later job's `if:` may read them.
        for key, value in (job.get("outputs") or {}).items():
            run.outputs[key] = text_value(value, ctx)
        return run

    def _packages(self, job_id: str, job: dict[str, Any]) -> str:
        """The package access of the job's token: job permissions replace the workflow's."""
        if "permissions" in job:
            perms = job["permissions"]
        elif "permissions" in self.workflow:
            perms = self.workflow["permissions"]
        else:
            raise NotEmulatedError(f"job {job_id}: the repository's default token permissions")
        if isinstance(perms, str):
            if perms not in ("read-all", "write-all"):
                raise NotEmulatedError(f"job {job_id}: permissions {perms!r}")
            return perms.removesuffix("-all")
        access = str((perms or {}).get("packages", "none"))
        if access not in ("none", "read", "write"):
            raise NotEmulatedError(f"job {job_id}: packages: {access}")
        return access

    # -- steps --------------------------------------------------------------------------------

    def _github_env(self, workspace: Path, temp: Path) -> dict[str, str]:
        e = self.event
        env = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": e.sha,
            "GITHUB_REF": e.ref,
            "GITHUB_REF_NAME": e.ref.rsplit("/", 1)[-1],
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_ACTOR": self.actor,
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_EVENT_NAME": e.name,
            "GITHUB_SERVER_URL": "https://github.com",
            "RUNNER_TEMP": str(temp),
        }
        if e.name == "pull_request":
            env["GITHUB_BASE_REF"] = e.base_ref
            env["GITHUB_HEAD_REF"] = e.head_ref
        return env

    def _script(
        self,
        step: dict[str, Any],
        *,
        ctx: dict[str, Any],
        workspace: Path,
        temp: Path,
        home: Path,
        number: int,
        timeout: int,
    ) -> StepRun:
        script = to_text(substitute(str(step["run"]), ctx))
        if script.strip() == "make venv":
            # The venv this test runs in stands in for the one `make venv` would create.
            bin_dir = workspace / ".venv" / "bin"
            bin_dir.mkdir(parents=True, exist_ok=True)
            link = bin_dir / "playbookctl"
            if not link.exists():
                link.symlink_to(self.playbookctl)
            return StepRun("", "success")
        files = {k: temp / f"step{number}.{k.lower()}" for k in ("GITHUB_OUTPUT", "GITHUB_ENV",
                 "GITHUB_PATH", "GITHUB_STEP_SUMMARY")}  # fmt: skip
        for f in files.values():
            f.write_text("")
        script_file = temp / f"step{number}.sh"
        script_file.write_text(script)
        env = {**self.env, **self._github_env(workspace, temp)}
        env.update({"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")})
        env.update({k: str(v) for k, v in files.items()})
        for key, value in (step.get("env") or {}).items():
            env[key] = text_value(value, ctx)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        for k in ("GITHUB_ENV", "GITHUB_PATH"):
            if files[k].read_text():
                raise NotEmulatedError(f"the step writes {k}, which this runner does not emulate")
        return StepRun(
            "",
            "success" if done.returncode == 0 else "failure",
            done.returncode,
            done.stdout,
            done.stderr,
            parse_output_file(files["GITHUB_OUTPUT"].read_text()),
            files["GITHUB_STEP_SUMMARY"].read_text(),
        )

    def _action(
        self,
        step: dict[str, Any],
        ctx: dict[str, Any],
        workspace: Path,
        home: Path,
        saves: list[tuple[str, str, list[Path]]],
    ) -> StepRun:
        action = str(step["uses"]).split("@", 1)[0]
        if action not in ACTION_INPUTS:
            raise NotEmulatedError(f"action {action} is not emulated")
        with_ = {k: text_value(v, ctx) for k, v in (step.get("with") or {}).items()}
        unknown = set(with_) - ACTION_INPUTS[action]
        if unknown:
            raise NotEmulatedError(f"{action}: inputs {sorted(unknown)} are not emulated")
        if action == "actions/checkout":
            self._checkout(workspace, int(with_.get("fetch-depth", "1")))
        elif action == "actions/upload-artifact":
            source = workspace / with_["path"]
            files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else []
            if not files and with_.get("if-no-files-found", "warn") == "error":
                return StepRun("", "failure", 1, stderr=f"no files found at {with_['path']}")
            dest = self.artifacts / with_["name"]
            if dest.exists():
                # v4: a name is taken for the whole run, its re-runs included.
                if with_.get("overwrite") != "true":
                    return StepRun("", "failure", 1, stderr=(
                        "Failed to CreateArtifact: Received non-retryable error: Failed request: "
                        "(409) Conflict: an artifact with this name already exists on the "
                        "workflow run"))  # fmt: skip
                shutil.rmtree(dest)
            shutil.copytree(source, dest)
        elif action == "actions/download-artifact":
            if with_.get("merge-multiple") != "true":
                raise NotEmulatedError("download-artifact without merge-multiple: true")
            dest = workspace / with_["path"]
            dest.mkdir(parents=True, exist_ok=True)
            for art in sorted(self.artifacts.iterdir()):
                if fnmatch.fnmatchcase(art.name, with_["pattern"]):
                    shutil.copytree(art, dest, dirs_exist_ok=True)
        elif action == "actions/cache":
            return self._cache(with_, workspace, home, saves)
        return StepRun("", "success")

    def _cache(
        self,
        with_: dict[str, str],
        workspace: Path,
        home: Path,
        saves: list[tuple[str, str, list[Path]]],
    ) -> StepRun:
        """Restores the entry CacheStore finds; a post step saves the paths unless the key hit."""
        if not with_.get("key") or not with_.get("path"):
            return StepRun("", "failure", 1, stderr="Input required and not supplied")
        lines = [ln.strip() for ln in with_["path"].splitlines() if ln.strip()]
        if any(ln.startswith("!") or any(c in ln for c in "*?[") for ln in lines):
            raise NotEmulatedError(f"actions/cache: path patterns {lines} are not emulated")
        paths = [
            home / ln[2:] if ln.startswith("~/") else workspace / ln for ln in lines
        ]  # fmt: skip
        version = "\n".join(lines)
        restore_keys = [k.strip() for k in with_.get("restore-keys", "").splitlines() if k.strip()]
        where, exact = self.cache.restore(self.event, with_["key"], restore_keys, version)
        if where is not None:
            CacheStore.unpack(where, paths)
        if not exact:
            saves.append((with_["key"], version, paths))
        return StepRun("", "success", outputs={"cache-hit": "true" if exact else "false"})

    def _checkout(self, workspace: Path, depth: int) -> None:
        """What actions/checkout does: init, fetch the event's commit, check it out."""
        e = self.event

        def git(*args: str) -> None:
            subprocess.run(
                ["git", *args], cwd=workspace, env=self.env, check=True, capture_output=True,
                timeout=60,
            )  # fmt: skip

        git("init", "--quiet", "--initial-branch=main")
        git("remote", "add", "origin", self.remote.as_uri())
        shallow = [] if depth == 0 else [f"--depth={depth}"]
        if depth == 0:
            git("fetch", "--quiet", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*")  # fmt: skip
        if e.ref.startswith("refs/heads/"):
            branch = e.ref.removeprefix("refs/heads/")
            git("fetch", "--quiet", *shallow, "origin", f"+{e.sha}:refs/remotes/origin/{branch}")
            git("checkout", "--quiet", "--force", "-B", branch, f"refs/remotes/origin/{branch}")
        else:
            local = "refs/remotes/" + e.ref.removeprefix("refs/")
            git("fetch", "--quiet", *shallow, "origin", f"+{e.sha}:{local}")
            git("checkout", "--quiet", "--force", local)


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def env_for_runner(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """A runner's own environment: PATH and a private HOME, none of the caller's PLAYBOOKCTL_ or
    GITHUB_ settings (a workflow must set what it needs)."""
    # PYTHONPATH: where it is set (`make mutants` puts a mutated copy's tooling/ first) the
    # replayed playbookctl must import the same code as the test.
    keep = {"PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "HOME": str(home),
            "DOCKER_CONFIG": str(home / ".docker"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Runner Author",
            "GIT_AUTHOR_EMAIL": "runner@example.invalid",
            "GIT_COMMITTER_NAME": "Runner Committer",
            "GIT_COMMITTER_EMAIL": "runner@example.invalid",
        }
    )
    env.update(extra)
    return env
