"""`playbook.*` rules: a playbook's files checked against each other and the Kubernaut contract.

Each rule is a small function taking a `_Ctx` and appending findings; `RULES` lists them and
`check_playbook` runs them all over one playbook and its rendered pipeline (authored or the
standard wrapper), so a broken playbook gets every problem reported in one run.

Rule ids and what they protect against:
- playbook.name: the directory name is the workflow, image and bundle name: a DNS-1123 label.
- playbook.missing-file: workflow.yaml and a Containerfile (or Dockerfile) must exist.
- playbook.empty-file: workflow.yaml, pipeline.yaml or rbac.yaml holding no document.
- playbook.pipeline-api-version / playbook.pipeline-kind / playbook.pipeline-name: Kubernaut
  resolves `kind=pipeline`, `name=workflow` from a tekton.dev/v1 bundle.
- playbook.param-missing: a required workflow parameter the Pipeline does not declare.
- playbook.param-no-default: a Pipeline param without default that Kubernaut will not supply
  (an optional workflow parameter: nobody injects schema defaults; or no workflow parameter).
- playbook.param-type: Kubernaut passes every parameter as a string.
- playbook.param-unused (warning): an optional workflow parameter the Pipeline drops.
- playbook.workspace-missing / playbook.workspace-unbound: the Pipeline's workspaces must be
  exactly `secret-<n>` / `configmap-<n>` for the dependencies (unbound non-optional ones fail the
  run; missing ones leave the secret unmounted).
- playbook.script-injection (ERROR, by decision): `$(params.X)` inside a `script`. Tekton splices
  the value into the script's source before the shell parses it, and Kubernaut's parameter values
  are chosen by an AI agent from alert data, i.e. attacker-influenced input. Pass it through `env`.
  One finding per parameter, on the script line (inside a literal block) that first uses it.
- playbook.image-pinned / playbook.image-latest: step, sidecar and stepTemplate images are the
  placeholder or digest-pinned (`repo:tag@sha256:<64 hex>`); a `:latest` tag is refused outright.
- playbook.env-reserved (ERROR, as script-injection): a parameter's value set as an environment
  variable the step's programs obey (PATH, LD_PRELOAD, BASH_ENV, KUBERNETES_SERVICE_HOST...):
  the standard wrapper passes every parameter as a variable of its own name, and the values come
  from alert data.
- playbook.task-ref: a Task or StepAction the Pipeline refers to instead of holding it
  (`taskRef`, a step's `ref`): looked up in the run's namespace, where nothing of this
  repository installs one, or fetched by a resolver when the run starts; only a bundle pinned by
  digest or a git commit fixes what a released version runs.
- playbook.placeholder-misplaced: the placeholder somewhere the release does not replace it.
- playbook.placeholder-unused (warning): an authored pipeline that never runs the built image.
- playbook.non-root: a step that asks for root (runAsUser 0, runAsNonRoot false), or a foreign
  image step whose user nothing pins (warning).
- playbook.containerfile-user: the final stage's USER must be set, not root, and numeric unless
  every step running the image sets runAsUser (Kubernaut's pod template sets runAsNonRoot, and the
  kubelet refuses to start a non-numeric user it cannot verify). A variable USER is judged by
  its default: `${X:-d}`/`${X-d}` by d unless an earlier ARG X has a value, `$X`/`${X}` by
  the earlier ARG's default; with no default at all it cannot be checked (warning).
- playbook.execution-timeout (warning): a timeout longer than Kubernaut waits for the run
  (lint/execution_time.py).
- playbook.base-image-pinned: every FROM pinned by digest (`image@sha256:<64 hex>`).
- playbook.rbac-kind / playbook.rbac-namespace / playbook.rbac-service-account /
  playbook.rbac-binding: rbac.yaml holds only ServiceAccount/Role/ClusterRole/(Cluster)RoleBinding,
  the ServiceAccount lives in the run namespace and is `execution.serviceAccountName`, and the
  bindings grant to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import shlex
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from playbookctl import assemble, dockerfile, dockerignore
from playbookctl.config import Config
from playbookctl.findings import Finding, Severity
from playbookctl.lint import builder, network
from playbookctl.lint import rbac as rbac_rules
from playbookctl.lint import script as script_rules
from playbookctl.lint.action_type import PLACEHOLDER_PREFIX
from playbookctl.lint.execution_time import check_execution_timeout
from playbookctl.lint.external import EmbeddedScript
from playbookctl.lint.registration import check_registration_of
from playbookctl.lint.tekton.common import iter_references, param_spec_type
from playbookctl.load import DEFAULT_MAX_BYTES, Document, YamlPath, iter_paths, read_text_file
from playbookctl.playbook import NAME_RE, RBAC_FILE, WORKFLOW_FILE, Playbook
from playbookctl.render import (
    PIPELINE_API_VERSION,
    PIPELINE_NAME,
    TARGET_RESOURCE,
    RenderedPipeline,
    default_as_string,
    iter_step_images,
)

DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}\Z")
RBAC_KINDS = {
    "ServiceAccount": "v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
}
_NAMESPACED_RBAC = {"ServiceAccount", "Role", "RoleBinding"}
_ROOT_USERS = {"0", "root"}
# What `playbookctl new` writes for the author to replace (scaffold.py uses these).
SCRIPT_PLACEHOLDER = "not implemented yet (edit remediate.sh)"
_DESCRIPTION_FIELDS = ("what", "whenToUse", "whenNotToUse", "preconditions")
_PATH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


@dataclass
class _Ctx:
    pb: Playbook
    pipeline: RenderedPipeline | None
    config: Config
    containerfile: Containerfile | None
    findings: list[Finding] = field(default_factory=list)

    def add(
        self,
        doc: Document,
        rule: str,
        path: YamlPath,
        message: str,
        severity: Severity = Severity.ERROR,
        *,
        at_key: bool = False,
    ) -> None:
        self.findings.append(doc.finding(rule, path, message, severity, at_key=at_key))

    def at(
        self,
        file: str,
        line: int,
        column: int,
        rule: str,
        message: str,
        *,
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.findings.append(Finding(rule, severity, file, line, column, message))

    @property
    def pipeline_data(self) -> dict[str, Any]:
        data = self.pipeline.data if self.pipeline else None
        return data if isinstance(data, dict) else {}

    @property
    def pipeline_spec(self) -> dict[str, Any]:
        spec = self.pipeline_data.get("spec")
        return spec if isinstance(spec, dict) else {}


# --- Containerfile -------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper-cased
    args: str  # continuation lines joined
    line: int


@dataclass
class Stage:
    base: str
    alias: str | None
    line: int
    users: list[Instruction] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)  # ARG defaults declared in the stage


@dataclass
class Containerfile:
    file: str
    instructions: list[Instruction]
    stages: list[Stage]
    args: dict[str, str]  # ARG defaults declared before the first FROM


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")


def parse_containerfile(text: str, file: str) -> Containerfile:
    """Instructions with their first line, as the builders read them: `dockerfile.scan`, the
    assembler's own reading (parser directives, continuation lines joined without a separator,
    comment and empty lines inside them skipped, heredoc bodies skipped), so a rule judges the
    file that is built. Never raises: what the builders refuse is reported by hadolint or by
    the build, and lint reads it as BuildKit would.
    """
    instructions = [
        # `args` is everything after the keyword (flags included), as the rules split it.
        Instruction(i.keyword, _after_keyword(i.original), i.line)
        for i in dockerfile.scan(text).instructions
    ]
    stages: list[Stage] = []
    args: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            (stages[-1].args if stages else args)[name.strip()] = default.strip().strip("\"'")
        elif ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            base = words[0] if words else ""
            alias = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, alias, ins.line))
        elif ins.keyword == "USER" and stages:
            stages[-1].users.append(ins)
    return Containerfile(file, instructions, stages, args)


def _after_keyword(original: str) -> str:
    """The arguments, flags included: what follows the keyword and the blanks after it."""
    parts = re.split(r"[ \t\v\f]+", original, maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


def _expand(value: str, args: dict[str, str]) -> str:
    return _VAR.sub(lambda m: args.get(m.group(1) or m.group(2), m.group(0)), value)


def load_containerfile(pb: Playbook, max_bytes: int = DEFAULT_MAX_BYTES) -> Containerfile | None:
    """The parsed Containerfile, or None when there is none or it cannot be read (a FIFO, over
    max_bytes, not UTF-8): its load.* or playbook.missing-file finding says why, and rules on a
    guessed text would only add noise."""
    if pb.containerfile is None:
        return None
    shown = pb.rel(pb.containerfile)
    text, _problems = read_text_file(pb.containerfile, shown, max_bytes)
    return None if text is None else parse_containerfile(text, shown)


# --- helpers -------------------------------------------------------------------------------------


def _workflow_params(pb: Playbook) -> dict[str, tuple[int, dict[str, Any]]]:
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    raw = pb.spec.get("parameters")
    for i, p in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(p, dict) and isinstance(p.get("name"), str) and p["name"] not in out:
            out[p["name"]] = (i, p)
    return out


def _pipeline_params(ctx: _Ctx) -> dict[str, tuple[int, dict[str, Any]]]:
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    raw = ctx.pipeline_spec.get("params")
    for i, p in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(p, dict) and isinstance(p.get("name"), str) and p["name"] not in out:
            out[p["name"]] = (i, p)
    return out


def _inline_tasks(data: dict[str, Any]) -> Iterator[tuple[YamlPath, dict[str, Any]]]:
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return
    for section in ("tasks", "finally"):
        tasks = spec.get(section)
        for i, task in enumerate(tasks if isinstance(tasks, list) else []):
            ts = task.get("taskSpec") if isinstance(task, dict) else None
            if isinstance(ts, dict):
                yield ("spec", section, i, "taskSpec"), ts


def _containers(data: dict[str, Any]) -> Iterator[tuple[YamlPath, dict[str, Any], dict[str, Any]]]:
    """(path, step or sidecar, stepTemplate) of every inline container."""
    for base, ts in _inline_tasks(data):
        tmpl = ts.get("stepTemplate")
        tmpl = tmpl if isinstance(tmpl, dict) else {}
        for kind in ("steps", "sidecars"):
            items = ts.get(kind)
            for j, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, dict):
                    yield (*base, kind, j), item, tmpl if kind == "steps" else {}


def _task_containers(data: Any) -> Iterator[tuple[YamlPath, dict[str, Any]]]:
    """Steps and sidecars of a Pipeline's inline tasks, or of a Task."""
    if not isinstance(data, dict):
        return
    if data.get("kind") == "Task":
        spec = data.get("spec")
        bases: list[tuple[YamlPath, Any]] = [(("spec",), spec)]
    else:
        bases = list(_inline_tasks(data))
    for base, ts in bases:
        if not isinstance(ts, dict):
            continue
        for kind in ("steps", "sidecars"):
            items = ts.get(kind)
            for j, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, dict):
                    yield (*base, kind, j), item


# A block scalar's header with an explicit indentation indicator: `|2`, `|-2`, `|2+`.
_BLOCK_INDENT_RE = re.compile(r"\|[-+]?([1-9])")
# Where a line's mapping key starts: after its indentation and any compact `- ` entries.
_KEY_START_RE = re.compile(r"[ ]*(?:-[ ]+)*")


def embedded_scripts(doc: Document, source: str) -> list[EmbeddedScript]:
    """The `script` of every step and sidecar in doc (a Pipeline or Task), for shellcheck.

    source is the file's text: a literal block (`script: |`) maps line for line onto the file,
    which the position of its indicator and the indentation of its content tell.
    """
    lines = source.splitlines()
    out: list[EmbeddedScript] = []
    for path, container in _task_containers(doc.data):
        script = container.get("script")
        if not isinstance(script, str) or not script.strip():
            continue
        block = _literal_block(doc, (*path, "script"), lines)
        if block is not None:
            out.append(EmbeddedScript(script, doc.file, block[0], block[1], exact=True))
        else:
            where = doc.pos((*path, "script"))
            out.append(EmbeddedScript(script, doc.file, where.line, where.column, exact=False))
    return out


def _literal_block(doc: Document, path: YamlPath, lines: list[str]) -> tuple[int, int] | None:
    """(file line of the value's first line, its indentation) if the value at path is a literal
    block (`key: |`), whose line k is then the file's line + k; None for any other style."""
    where = doc.pos(path)
    raw = lines[where.line - 1] if 0 < where.line <= len(lines) else ""
    header = raw[where.column - 1 :]
    if not header.startswith("|") or where.line >= len(lines):
        return None
    first = next((ln for ln in lines[where.line :] if ln.strip()), "")
    indent = len(first) - len(first.lstrip(" "))
    explicit = _BLOCK_INDENT_RE.match(header)
    key = _KEY_START_RE.match(raw[: where.column - 1])
    if explicit and key and key.end() < where.column - 1:
        # `|2`: the content sits that many columns right of its key (YAML 8.1.1.1); the
        # first line may be indented further, and the script's columns count from there.
        indent = key.end() + int(explicit.group(1))
    return where.line + 1, indent


def _security(container: dict[str, Any], template: dict[str, Any], key: str) -> Any:
    for source in (container, template):
        sc = source.get("securityContext")
        if isinstance(sc, dict) and key in sc:
            return sc[key]
    return None


# --- rules ---------------------------------------------------------------------------------------


def rule_name(ctx: _Ctx) -> None:
    name = ctx.pb.name
    if len(name) > 63 or not NAME_RE.match(name):
        file = ctx.pb.rel(ctx.pb.workflow_path if ctx.pb.workflow_path.is_file() else ctx.pb.dir)
        ctx.at(
            file,
            1,
            1,
            "playbook.name",
            f"playbook directory name {name!r} must be a DNS-1123 label (lower case letters, "
            "digits and '-', starting and ending alphanumeric, at most 63 characters): it "
            "names the workflow, its image and its bundle",
        )


def _nested_playbooks(directory: Path) -> list[Path]:
    """The playbook directories right under `directory` (a folder that groups playbooks,
    playbooks/team/x/), sorted."""
    try:
        children = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    except OSError:
        return []
    return [p for p in children if (p / WORKFLOW_FILE).is_file()]


def rule_missing_files(ctx: _Ctx) -> None:
    pb = ctx.pb
    nested = [] if pb.workflow_path.is_file() else _nested_playbooks(pb.dir)
    if nested:
        # "workflow.yaml is missing" would send the author looking in the wrong place: the
        # playbooks are there, one level too deep (discovery reads playbooks/* only).
        first = pb.rel(nested[0])
        more = f" (and {len(nested) - 1} more)" if len(nested) > 1 else ""
        ctx.at(
            pb.rel(pb.dir),
            1,
            1,
            "playbook.missing-file",
            f"{pb.rel(pb.dir)} is not a playbook but holds playbook directories one level too "
            f"deep: {first}{more}; playbooks live directly under playbooks/ "
            f"(move it to playbooks/{nested[0].name})",
        )
        return
    if not pb.workflow_path.is_file():
        ctx.at(
            pb.rel(pb.dir),
            1,
            1,
            "playbook.missing-file",
            f"{WORKFLOW_FILE} is missing: every playbook registers one RemediationWorkflow",
        )
    if pb.containerfile is None:
        ctx.at(
            pb.rel(pb.dir),
            1,
            1,
            "playbook.missing-file",
            "no Containerfile (or Dockerfile): the playbook's image cannot be built",
        )
    # A file that loaded to nothing (empty, or comments only) without a load.* finding.
    reported = {f.file for f in pb.load_findings}
    for path, loaded in (
        (pb.workflow_path, pb.workflow is not None),
        (pb.pipeline_path, pb.pipeline is not None),
        (pb.rbac_path, bool(pb.rbac)),
    ):
        if path.is_file() and not loaded and pb.rel(path) not in reported:
            ctx.at(
                pb.rel(path),
                1,
                1,
                "playbook.empty-file",
                f"{path.name} holds no YAML document; remove it or give it its content",
            )


def rule_pipeline_identity(ctx: _Ctx) -> None:
    if ctx.pipeline is None or not ctx.pipeline.authored:
        return
    doc = ctx.pipeline.document
    data = ctx.pipeline_data
    if not data:
        ctx.add(doc, "playbook.pipeline-kind", (), "pipeline.yaml must hold a Tekton Pipeline")
        return
    if data.get("apiVersion") != PIPELINE_API_VERSION:
        ctx.add(
            doc,
            "playbook.pipeline-api-version",
            ("apiVersion",),
            f"apiVersion must be {PIPELINE_API_VERSION!r} (Kubernaut creates a tekton.dev/v1 "
            f"PipelineRun), not {data.get('apiVersion')!r}",
        )
    if data.get("kind") != "Pipeline":
        ctx.add(
            doc,
            "playbook.pipeline-kind",
            ("kind",),
            f"kind must be 'Pipeline' (the bundle is resolved with kind=pipeline), "
            f"not {data.get('kind')!r}",
        )
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if name != PIPELINE_NAME:
        ctx.add(
            doc,
            "playbook.pipeline-name",
            ("metadata", "name"),
            f"metadata.name must be {PIPELINE_NAME!r} (Kubernaut resolves the bundle with "
            f"name=workflow), not {name!r}",
        )


def rule_params(ctx: _Ctx) -> None:
    if ctx.pipeline is None or ctx.pb.workflow is None or not ctx.pb.workflow_readable:
        return  # else every Pipeline param would be called no workflow parameter
    doc = ctx.pipeline.document
    wf_params = _workflow_params(ctx.pb)
    pl_params = _pipeline_params(ctx)
    for name, (wi, wp) in wf_params.items():
        if name in pl_params:
            continue
        if wp.get("required") is True:
            ctx.add(
                doc,
                "playbook.param-missing",
                ("spec", "params"),
                f"required workflow parameter {name!r} is not declared in the Pipeline's "
                "params: its value never reaches the steps",
            )
        else:
            ctx.add(
                ctx.pb.workflow,
                "playbook.param-unused",
                ("spec", "parameters", wi),
                f"optional workflow parameter {name!r} is not declared in the Pipeline: its "
                "value is dropped",
                Severity.WARNING,
            )
    for name, (pi, pp) in pl_params.items():
        path: YamlPath = ("spec", "params", pi)
        ptype = param_spec_type(pp)
        if ptype != "string":
            ctx.add(
                doc,
                "playbook.param-type",
                (*path, "type"),
                f"Pipeline param {name!r} is of type {ptype!r}: Kubernaut passes every "
                "parameter as a string, so it must be a string param",
            )
        if name == TARGET_RESOURCE:
            continue
        if "default" in pp:
            _check_default(ctx, doc, path, pp, wf_params.get(name))
            if name not in wf_params:
                ctx.add(
                    doc,
                    "playbook.param-undeclared",
                    path,
                    f"Pipeline param {name!r} is not a workflow parameter: Kubernaut's agent "
                    "can never set it, so it always runs with its default; declare it in "
                    "workflow.yaml or make it a constant",
                    Severity.WARNING,
                )
            continue
        if name not in wf_params:
            ctx.add(
                doc,
                "playbook.param-no-default",
                path,
                f"Pipeline param {name!r} has no default and is not a workflow parameter: "
                "Kubernaut never supplies it, so every run would fail",
            )
        elif wf_params[name][1].get("required") is not True:
            ctx.add(
                doc,
                "playbook.param-no-default",
                path,
                f"Pipeline param {name!r} is an optional workflow parameter and needs a "
                "default in the Pipeline: Kubernaut does not inject schema defaults",
            )


def _check_default(
    ctx: _Ctx,
    doc: Document,
    path: YamlPath,
    pp: dict[str, Any],
    declared: tuple[int, dict[str, Any]] | None,
) -> None:
    """The Pipeline's default of an optional parameter is the one the workflow declares.

    Kubernaut's agent reads the workflow's schema and leaves out a parameter whose default it
    wants; the run then gets the Pipeline's default, so another value there is what runs."""
    name, default = pp["name"], pp["default"]
    if declared is None or not isinstance(default, str):
        return  # not a workflow parameter, or not a string param (playbook.param-type)
    wp = declared[1]
    if wp.get("required") is True or "default" not in wp:
        return  # always passed; or no default declared (workflow.optional-no-default)
    wanted = default_as_string(wp["default"])
    if default != wanted:
        ctx.add(
            doc,
            "playbook.param-default",
            (*path, "default"),
            f"Pipeline param {name!r} defaults to {default!r}, but workflow.yaml declares "
            f"the default {wanted!r}: Kubernaut's agent leaves a parameter out to get the "
            f"workflow's default, and the run would get {default!r}; write "
            f"default: {json.dumps(wanted)}",
        )


def rule_workspaces(ctx: _Ctx) -> None:
    if ctx.pipeline is None or not ctx.pb.workflow_readable:
        return  # the dependencies are unknown, not absent
    doc = ctx.pipeline.document
    wanted: dict[str, YamlPath] = {}
    deps = ctx.pb.spec.get("dependencies")
    if isinstance(deps, dict):
        for kind, prefix in (("secrets", "secret-"), ("configMaps", "configmap-")):
            items = deps.get(kind)
            for i, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    wanted.setdefault(prefix + item["name"], ("spec", "dependencies", kind, i))
    declared: dict[str, tuple[int, dict[str, Any]]] = {}
    raw = ctx.pipeline_spec.get("workspaces")
    for i, ws in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(ws, dict) and isinstance(ws.get("name"), str):
            declared.setdefault(ws["name"], (i, ws))
    for name in wanted:
        if name not in declared:
            ctx.add(
                doc,
                "playbook.workspace-missing",
                ("spec", "workspaces"),
                f"the Pipeline must declare workspace {name!r}: Kubernaut binds each "
                "dependency as a workspace of that name",
            )
    for name, (i, ws) in declared.items():
        if name not in wanted and ws.get("optional") is not True:
            ctx.add(
                doc,
                "playbook.workspace-unbound",
                ("spec", "workspaces", i, "name"),
                f"Pipeline workspace {name!r} matches no dependency (secret-<name> or "
                "configmap-<name>): Kubernaut never binds it, so every run would fail",
            )


def rule_script_injection(ctx: _Ctx) -> None:
    if ctx.pipeline is None:
        return
    doc = ctx.pipeline.document
    lines: list[str] = []
    if ctx.pipeline.authored:
        # Unreadable: findings then sit on the `script` value, as for a non-literal block.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            lines = ctx.pb.pipeline_path.read_text("utf-8").splitlines()
    for path, container, _ in _containers(ctx.pipeline_data):
        script = container.get("script")
        if not isinstance(script, str):
            continue
        block = _literal_block(doc, (*path, "script"), lines) if lines else None
        seen: set[str] = set()
        # One finding per parameter, on the first script line using it: each needs its own env.
        for k, text in enumerate(script.split("\n")):
            for ref in iter_references(text, "params"):
                if ref.raw in seen:
                    continue
                seen.add(ref.raw)
                message = (
                    f"$(params.{ref.raw}) is spliced into the script's source before the shell "
                    "parses it (script injection; parameter values come from alert data): pass "
                    'it through env and use "$VAR"'
                )
                if block is None:
                    ctx.add(doc, "playbook.script-injection", (*path, "script"), message)
                else:
                    column = block[1] + text.index(ref.expression) + 1
                    ctx.at(doc.file, block[0] + k, column, "playbook.script-injection", message)


# Environment variables the step's programs obey rather than read as data: what the runtime,
# the kubelet and bash set (the script contract's own lists), what the dynamic loader, bash's
# startup and kubectl's client read, and the proxies and CAs of every HTTPS client.
RESERVED_ENV = (
    script_rules.RUNTIME_VARIABLES
    | script_rules.SHELL_VARIABLES
    | frozenset(
        (
            "ENV", "BASH_ENV", "CDPATH", "GLOBIGNORE", "SHELL", "USER", "TMPDIR",
            "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
            "KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
            "SSL_CERT_FILE", "SSL_CERT_DIR",
        )
    )
)  # fmt: skip


def rule_env_reserved(ctx: _Ctx) -> None:
    if ctx.pipeline is None:
        return
    wf_params = _workflow_params(ctx.pb)
    for base, ts in _inline_tasks(ctx.pipeline_data):
        holders: list[tuple[YamlPath, Any]] = [((*base, "stepTemplate"), ts.get("stepTemplate"))]
        for kind in ("steps", "sidecars"):
            items = ts.get(kind)
            holders += [((*base, kind, j), c) for j, c in enumerate(_list(items))]
        for path, container in holders:
            env = container.get("env") if isinstance(container, dict) else None
            for k, var in enumerate(_list(env)):
                name = var.get("name") if isinstance(var, dict) else None
                if not isinstance(name, str):
                    continue  # (a tekton.* finding) and unhashable, as a list is
                value = var.get("value") if isinstance(var, dict) else None
                if name not in RESERVED_ENV or not isinstance(value, str):
                    continue
                if "$(params." not in value:
                    continue
                why = (
                    f"the step's {name} would be a parameter's value, and parameter values "
                    f"come from alert data (Kubernaut's agent fills them in), while {name} is "
                    "the runtime's, the shell's or a client's own setting (PATH picks which "
                    "kubectl runs, LD_PRELOAD and BASH_ENV what code loads, "
                    "KUBERNETES_SERVICE_HOST and the proxies where the token goes)"
                )
                if ctx.pipeline.authored:
                    ctx.add(
                        ctx.pipeline.document,
                        "playbook.env-reserved",
                        (*path, "env", k, "name"),
                        f"{why}; pass the value under a name of its own",
                    )
                elif ctx.pb.workflow is not None and name in wf_params:
                    # The standard wrapper passes each parameter under its own name.
                    ctx.add(
                        ctx.pb.workflow,
                        "playbook.env-reserved",
                        ("spec", "parameters", wf_params[name][0], "name"),
                        f"parameter {name!r}: the standard wrapper passes every parameter as "
                        f"an environment variable of its name, so {why}; rename the parameter",
                    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def rule_images(ctx: _Ctx) -> None:
    if ctx.pipeline is None:
        return
    doc = ctx.pipeline.document
    placeholder = ctx.config.placeholder
    image_paths: set[YamlPath] = set()
    uses_placeholder = False
    for path, image in iter_step_images(ctx.pipeline_data):
        image_paths.add(path)
        if image == placeholder:
            uses_placeholder = True
            continue
        if not isinstance(image, str) or not image:
            continue  # a tekton.* finding
        ref = image.split("@", 1)[0]
        last = ref.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else None
        if tag == "latest":
            ctx.add(
                doc,
                "playbook.image-latest",
                path,
                f"image {image!r} uses the ':latest' tag; pin a release tag and its digest "
                f"(or use {placeholder!r} for the playbook's own image)",
            )
        elif not DIGEST_RE.search(image):
            ctx.add(
                doc,
                "playbook.image-pinned",
                path,
                f"image {image!r} is not pinned by digest: use 'repo:tag@sha256:<64 hex>' "
                f"(or {placeholder!r} for the playbook's own image)",
            )
    for path, value in iter_paths(ctx.pipeline_data):
        if isinstance(value, str) and value.startswith(placeholder) and path not in image_paths:
            ctx.add(
                doc,
                "playbook.placeholder-misplaced",
                path,
                f"{placeholder!r} is only replaced in step, sidecar and stepTemplate images; "
                "here it would reach the cluster as written",
            )
    if ctx.pipeline.authored and not uses_placeholder:
        ctx.add(
            doc,
            "playbook.placeholder-unused",
            ("spec", "tasks"),
            f"no step runs the playbook's own image ({placeholder!r}); the image built from "
            "its Containerfile would never run",
            Severity.WARNING,
        )


def _user_of(value: str) -> str:
    return value.split(":", 1)[0].strip()


_USER_VAR = re.compile(
    r"\$(?:\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_UNKNOWN = "\0"  # stands for a variable with no default while the user part is split off


def _arg_scope(cf: Containerfile, line: int) -> dict[str, str | None]:
    """The ARG defaults in effect at line of the final stage (None: declared without default).

    A stage's `ARG X` without a value takes the default of a global `ARG X=...`; a global ARG
    counts as seen too, as the rule always did (it can only make a root default visible).
    """
    scope: dict[str, str | None] = {}
    glob: dict[str, str | None] = {}
    in_stage = False
    for ins in cf.instructions:
        if ins.line >= line:
            break
        if ins.keyword == "FROM":
            in_stage = True
            scope = dict(glob)
        elif ins.keyword == "ARG":
            try:
                words = shlex.split(ins.args)
            except ValueError:
                words = ins.args.split()
            for word in words:
                name, eq, default = word.partition("=")
                if eq:
                    value: str | None = default
                else:
                    value = glob.get(name) if in_stage else None
                (scope if in_stage else glob)[name] = value
    return scope


def _resolve_user(value: str, scope: dict[str, str | None]) -> tuple[str, list[str]]:
    """The USER value as built with no --build-arg, and the variables with no default in it.

    `${X:-d}` / `${X-d}` give d when X has no default (or, for `:-`, an empty one); `${X:+w}` /
    `${X+w}` give w when it has one; `$X` / `${X}` give X's default or stay unknown.
    """
    unknown: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group("name") or m.group("bare")
        op, word = m.group("op"), m.group("word") or ""
        val = scope.get(name)
        if op == ":-":
            return val if val else word
        if op == "-":
            return val if val is not None else word
        if op == ":+":
            return word if val else ""
        if op == "+":
            return word if val is not None else ""
        if val is None:
            unknown.append(name)
            return _UNKNOWN
        return val

    return _USER_VAR.sub(sub, value), unknown


_COMMIT_RE = re.compile(r"[0-9a-f]{40}\Z")


def _ref_problem(ref: dict[str, Any], what: str, namespace: str) -> str | None:
    """Why a taskRef (or a step's StepAction ref) does not pin what it runs, or None."""
    resolver = ref.get("resolver")
    if resolver is None:
        name = ref.get("name")
        return (
            f"refers to the {what} {name!r}, which the bundle does not hold: Tekton looks it up "
            f"in the run's namespace ({namespace}), where this repository installs none, so the "
            f"run fails, or runs whatever someone put there; write it inline"
        )
    raw = ref.get("params")
    params = {
        p["name"]: p.get("value")
        for p in (raw if isinstance(raw, list) else [])
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    }
    if resolver == "bundles":
        bundle = params.get("bundle")
        if isinstance(bundle, str) and DIGEST_RE.search(bundle):
            return None
        return (
            f"fetches its {what} from bundle {bundle!r}, not pinned by digest: a moved tag "
            "changes what a released version runs; use 'repo:tag@sha256:<64 hex>'"
        )
    if resolver == "git":
        revision = params.get("revision")
        if isinstance(revision, str) and _COMMIT_RE.match(revision):
            return None
        return (
            f"fetches its {what} from git at revision {revision!r}, which can move: what a "
            "released version runs would change with it; pin revision to a commit (40 hex)"
        )
    return (
        f"fetches its {what} with the {resolver!r} resolver when the run starts, from outside "
        "the bundle, and nothing pins it; write it inline, or use a bundle pinned by digest"
    )


def rule_task_refs(ctx: _Ctx) -> None:
    if ctx.pipeline is None or not ctx.pipeline.authored:
        return  # the standard wrapper holds its one task
    doc = ctx.pipeline.document
    spec = ctx.pipeline_data.get("spec")
    if not isinstance(spec, dict):
        return
    namespace = ctx.config.run_namespace
    for section in ("tasks", "finally"):
        tasks = spec.get(section)
        for i, task in enumerate(tasks if isinstance(tasks, list) else []):
            if not isinstance(task, dict):
                continue
            label = task.get("name")
            ref = task.get("taskRef")
            if isinstance(ref, dict):
                problem = _ref_problem(ref, "Task", namespace)
                if problem is not None:
                    ctx.add(
                        doc,
                        "playbook.task-ref",
                        ("spec", section, i, "taskRef"),
                        f"task {label!r} {problem}",
                        at_key=True,
                    )
            ts = task.get("taskSpec")
            steps = ts.get("steps") if isinstance(ts, dict) else None
            for j, step in enumerate(steps if isinstance(steps, list) else []):
                sref = step.get("ref") if isinstance(step, dict) else None
                if isinstance(sref, dict):
                    problem = _ref_problem(sref, "StepAction", namespace)
                    if problem is not None:
                        ctx.add(
                            doc,
                            "playbook.task-ref",
                            ("spec", section, i, "taskSpec", "steps", j, "ref"),
                            f"step {step.get('name')!r} of task {label!r} {problem}",
                            at_key=True,
                        )


def rule_non_root(ctx: _Ctx) -> None:
    placeholder = ctx.config.placeholder
    own_steps_pin_user = True
    runs_own_image = False
    if ctx.pipeline is not None:
        doc = ctx.pipeline.document
        for path, container, tmpl in _containers(ctx.pipeline_data):
            image = container.get("image", tmpl.get("image"))
            run_as_user = _security(container, tmpl, "runAsUser")
            non_root = _security(container, tmpl, "runAsNonRoot")
            pinned = isinstance(run_as_user, int) and not isinstance(run_as_user, bool)
            if (pinned and run_as_user == 0) or non_root is False:
                ctx.add(
                    doc,
                    "playbook.non-root",
                    (*path, "securityContext"),
                    "this container asks to run as root (runAsUser: 0 or runAsNonRoot: "
                    "false); Kubernaut runs workflows as non-root",
                )
                continue
            if image == placeholder:
                runs_own_image = True
                own_steps_pin_user = own_steps_pin_user and pinned
            elif not pinned and non_root is not True:
                ctx.add(
                    doc,
                    "playbook.non-root",
                    (*path, "image"),
                    "nothing shows this image runs as a non-root user: set "
                    "securityContext.runAsUser (numeric, not 0) or runAsNonRoot: true",
                    Severity.WARNING,
                )
    cf = ctx.containerfile
    if cf is None or not cf.stages or (ctx.pipeline is not None and not runs_own_image):
        return
    final = cf.stages[-1]
    if not final.users:
        ctx.at(
            cf.file,
            final.line,
            1,
            "playbook.containerfile-user",
            "the final stage sets no USER, so the image runs as root; add e.g. 'USER 65532'",
        )
        return
    last = final.users[-1]
    expanded, unknown = _resolve_user(last.args.strip(), _arg_scope(cf, last.line))
    user = _user_of(expanded)
    shown = f"USER {last.args}" + (f", {user!r} by default" if "$" in last.args else "")
    if _UNKNOWN in user:
        names = ", ".join(dict.fromkeys(unknown))
        ctx.at(
            cf.file,
            last.line,
            1,
            "playbook.containerfile-user",
            f"USER {last.args} cannot be checked: {names} has no default (no earlier ARG with "
            "a value), so the user is whatever the build passes; give it a numeric non-root "
            "default, e.g. 'ARG UID=65532' or '${UID:-65532}'",
            severity=Severity.WARNING,
        )
        return
    if user in _ROOT_USERS or user == "":
        ctx.at(
            cf.file,
            last.line,
            1,
            "playbook.containerfile-user",
            f"the image runs as root ({shown}); use a non-root numeric user such as 65532",
        )
    elif not user.isdigit() and not own_steps_pin_user:
        ctx.at(
            cf.file,
            last.line,
            1,
            "playbook.containerfile-user",
            f"USER {user!r} is not numeric: with runAsNonRoot (Kubernaut's pod template) the "
            "kubelet cannot verify it and refuses to start the step; use a numeric UID",
        )


def rule_base_images(ctx: _Ctx) -> None:
    cf = ctx.containerfile
    if cf is None:
        return
    aliases: set[str] = set()
    for stage in cf.stages:
        base = _expand(stage.base, cf.args)
        if not base:
            names = [m.group(1) or m.group(2) for m in _VAR.finditer(stage.base)]
            why = "FROM names no image"
            if names:
                # `ARG BASE` then `FROM ${BASE}`: the base is not in the Containerfile at all.
                why = (
                    f"FROM {stage.base} names no image: the build argument "
                    f"{' and '.join(dict.fromkeys(names))} has no default and publish passes "
                    "no build arguments, so there is no base to build on (the engine refuses "
                    "a blank base name); give it a default pinned by digest, e.g. "
                    f"'ARG {names[0]}=image:tag@sha256:<64 hex>'"
                )
            ctx.at(cf.file, stage.line, 1, "playbook.base-image-pinned", why)
        elif base.lower() in aliases or base == "scratch":
            pass
        elif "$" in base:
            ctx.at(
                cf.file,
                stage.line,
                1,
                "playbook.base-image-pinned",
                f"base image {stage.base!r} depends on a build argument without a pinned "
                "default; pin it by digest",
            )
        elif not DIGEST_RE.search(base):
            ctx.at(
                cf.file,
                stage.line,
                1,
                "playbook.base-image-pinned",
                f"base image {base!r} is not pinned by digest: use "
                "'image:tag@sha256:<64 hex>' (and say where the digest was published)",
            )
        if stage.alias:
            aliases.add(stage.alias)


def rule_network_inputs(ctx: _Ctx) -> None:
    """What the build takes from the network: lint/network.py."""
    cf = ctx.containerfile
    if cf is None:
        return
    steps = [network.Step(i.keyword, i.args, i.line) for i in cf.instructions]
    for f in network.check(steps, cf.args):
        severity = Severity.WARNING if f.warning else Severity.ERROR
        ctx.at(cf.file, f.line, 1, f.rule, f.message, severity=severity)


def rule_builder_flags(ctx: _Ctx) -> None:
    """Flags the builder that will build this playbook refuses: lint/builder.py."""
    cf, pb = ctx.containerfile, ctx.pb
    if cf is None or pb.containerfile is None:
        return
    try:
        text = pb.containerfile.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return  # load_containerfile returned None already; unreachable in practice
    steps = [network.Step(i.keyword, i.args, i.line) for i in cf.instructions]
    for f in builder.check(steps, text, ctx.config.assemble):
        ctx.at(cf.file, f.line, 1, "playbook.builder-flag", f.message)


def rule_dockerignore(ctx: _Ctx) -> None:
    """.dockerignore patterns read as `docker build` reads them (dockerignore.py): one Docker
    refuses or that is not reproduced here is an error (publish would refuse to choose a
    context); one Docker versions read differently is a warning (the context follows Docker
    23+, the daemon's removal is left to the engine)."""
    pb = ctx.pb
    try:
        problems = dockerignore.read(pb.dir).problems
    except OSError:
        return  # an unreadable file: playbook.special-file and the loaders say so
    shown = pb.rel(pb.dir / dockerignore.DOCKERIGNORE)
    for p in problems:
        error = p.severity is dockerignore.Severity.ERROR
        ctx.at(
            shown,
            p.line,
            1,
            "playbook.dockerignore-pattern" if error else "playbook.dockerignore-version",
            f"pattern {p.pattern!r}: {p.why}",
            severity=Severity.ERROR if error else Severity.WARNING,
        )


def rule_dockerignore_excluded(ctx: _Ctx) -> None:
    """playbook.dockerignore-excluded: a COPY or ADD source that .dockerignore keeps out of the
    build context, all of it: the build fails with "no such file or directory". What the context
    holds is dockerignore.context_files' answer, the context publish sends and assembles from;
    the advice (a `!path` line at the end) is checked against it too."""
    cf, pb = ctx.containerfile, ctx.pb
    if cf is None or pb.containerfile is None:
        return
    name = pb.containerfile.relative_to(pb.dir).as_posix()
    context: set[str] | None = None
    shown = pb.rel(pb.dir / dockerignore.DOCKERIGNORE)
    for ins in cf.instructions:
        if ins.keyword not in ("COPY", "ADD") or "<<" in ins.args:
            continue
        flags, rest = dockerfile.split_flags(ins.args)
        if any(f.lower().startswith("--from") for f in flags):
            continue  # from another stage or image
        words = dockerfile.json_or_none(rest)
        if words is None:
            words = dockerfile.split_whitespace(rest)
        for source in words[:-1]:
            # A wildcard, a variable or a URL: which files it means is the builder's to say.
            if re.search(r"[*?\[$]", source) or "://" in source or source.startswith("git@"):
                continue
            rel = posixpath.normpath("/" + source).lstrip("/")
            if not rel or not os.path.lexists(pb.dir / rel):
                continue  # the whole context, or a missing file (hadolint and the build say)
            if context is None:
                try:
                    context = _context(pb.dir, name)
                except (dockerignore.DockerignoreError, OSError):
                    return  # playbook.dockerignore-pattern says why there is no context
            if _reaches(pb.dir, rel, context, whole=False):
                continue
            excluding = dockerignore.excluding_line(pb.dir, rel)
            which = f"line {excluding[0]} ({excluding[1]!r})" if excluding else "a pattern"
            advice = _readmit(pb.dir, name, rel)
            ctx.at(
                cf.file,
                ins.line,
                1,
                "playbook.dockerignore-excluded",
                f"{ins.keyword} {source}: {shown} {which} keeps {rel} out of the build context, "
                "so the build fails with 'no such file or directory'; "
                + (
                    "add "
                    + " and ".join(f"the line `{a}`" for a in advice)
                    + f" at the end of {shown}"
                    if advice
                    else f"change {shown} so that it lets {rel} in"
                ),
            )


def _context(directory: Path, containerfile: str, appended: tuple[str, ...] = ()) -> set[str]:
    """The build context's paths (with every parent directory of them), as the builder sees it:
    what context_files sends, less what the daemon removes."""
    files = dockerignore.context_files(directory, containerfile, appended)
    try:
        gone = dockerignore.daemon_removes(directory, containerfile)
    except dockerignore.NotExactError:
        gone = set()  # the engine decides; playbook.dockerignore-version says so
    out: set[str] = set()
    for f in files:
        if f in gone:
            continue
        out.add(f)
        parent = posixpath.dirname(f)
        while parent:
            out.add(parent)
            parent = posixpath.dirname(parent)
    return out


def _reaches(directory: Path, rel: str, context: set[str], *, whole: bool) -> bool:
    """Whether the source rel reaches the context: a file, itself; a directory, something of
    it, or (whole) every file under it."""
    path = directory / rel
    if rel not in context:
        return False
    if not whole or path.is_symlink() or not path.is_dir():
        return True
    return all(
        posixpath.join(rel, (Path(d) / f).relative_to(path).as_posix()) in context
        for d, _, files in os.walk(path)
        for f in files
    )


def _readmit(directory: Path, containerfile: str, rel: str) -> tuple[str, ...]:
    """The fewest `!` lines that, added at the end of .dockerignore, let all of rel into the
    context (checked with context_files); () when neither does."""
    for lines in ((f"!{rel}",), (f"!{rel}", f"!{rel}/**")):
        with contextlib.suppress(dockerignore.DockerignoreError, OSError):
            if _reaches(directory, rel, _context(directory, containerfile, lines), whole=True):
                return lines
    return ()


def rule_rbac(ctx: _Ctx) -> None:
    pb = ctx.pb
    sa_name = pb.service_account
    run_ns = ctx.config.run_namespace
    if not pb.rbac:
        if pb.rbac_path.is_file():
            return  # empty or unloadable: a playbook.empty-file or load.* finding says so
        if sa_name and pb.workflow is not None:
            ctx.add(
                pb.workflow,
                "playbook.rbac-service-account",
                ("spec", "execution", "serviceAccountName"),
                f"serviceAccountName {sa_name!r} is set but the playbook has no {RBAC_FILE} "
                "declaring that ServiceAccount",
                Severity.WARNING,
            )
        return
    accounts: list[tuple[Document, str]] = []
    for doc in pb.rbac:
        data = doc.data
        if not isinstance(data, dict):
            ctx.add(doc, "playbook.rbac-kind", (), f"{RBAC_FILE} documents must be objects")
            continue
        kind = data.get("kind")
        if not isinstance(kind, str) or kind not in RBAC_KINDS:
            ctx.add(
                doc,
                "playbook.rbac-kind",
                ("kind",),
                f"{RBAC_FILE} may hold only {', '.join(RBAC_KINDS)}; not {kind!r}",
            )
            continue
        if data.get("apiVersion") != RBAC_KINDS[kind]:
            ctx.add(
                doc,
                "playbook.rbac-kind",
                ("apiVersion",),
                f"a {kind} has apiVersion {RBAC_KINDS[kind]!r}, not {data.get('apiVersion')!r}",
            )
        meta_raw = data.get("metadata")
        meta: dict[str, Any] = meta_raw if isinstance(meta_raw, dict) else {}
        name = meta.get("name")
        ns = meta.get("namespace")
        if kind in _NAMESPACED_RBAC and not ns:
            ctx.add(
                doc,
                "playbook.rbac-namespace",
                ("metadata",),
                f"a {kind} needs metadata.namespace (otherwise it lands wherever it is applied)",
            )
        if kind == "ServiceAccount":
            if ns and ns != run_ns:
                ctx.add(
                    doc,
                    "playbook.rbac-namespace",
                    ("metadata", "namespace"),
                    f"the ServiceAccount must live in {run_ns!r}, where Kubernaut runs "
                    f"workflows, not {ns!r}",
                )
            if isinstance(name, str):
                accounts.append((doc, name))
    wf = pb.workflow
    if not pb.rbac_readable:
        # Part of rbac.yaml did not load or is no object (said above): the ServiceAccount and
        # bindings may be in that part.
        return
    if not accounts:
        ctx.add(
            pb.rbac[0],
            "playbook.rbac-service-account",
            (),
            f"{RBAC_FILE} declares no ServiceAccount for the workflow to run as",
        )
    elif sa_name is None:
        if wf is not None and pb.workflow_readable:
            ctx.add(
                wf,
                "playbook.rbac-service-account",
                ("spec", "execution"),
                f"{RBAC_FILE} declares ServiceAccount {accounts[0][1]!r} but "
                "spec.execution.serviceAccountName is not set, so runs use the namespace's "
                "default account",
            )
    elif sa_name not in {n for _, n in accounts}:
        where = wf if wf is not None else accounts[0][0]
        ctx.add(
            where,
            "playbook.rbac-service-account",
            ("spec", "execution", "serviceAccountName"),
            f"serviceAccountName {sa_name!r} names no ServiceAccount in {RBAC_FILE} (it "
            f"declares {', '.join(repr(n) for _, n in accounts)})",
        )
    target = sa_name or (accounts[0][1] if accounts else None)
    if target is None or not pb.workflow_readable:
        return  # an unreadable workflow.yaml may name another account
    for doc in pb.rbac:
        data = doc.data
        if not isinstance(data, dict) or data.get("kind") not in (
            "RoleBinding",
            "ClusterRoleBinding",
        ):
            continue
        subjects = data.get("subjects")
        ok = any(
            isinstance(s, dict)
            and s.get("kind") == "ServiceAccount"
            and s.get("name") == target
            and s.get("namespace", run_ns) == run_ns
            for s in (subjects if isinstance(subjects, list) else [])
        )
        if not ok:
            ctx.add(
                doc,
                "playbook.rbac-binding",
                ("subjects",),
                f"this {data['kind']} does not grant to ServiceAccount {target!r} in {run_ns!r}",
            )


# --- files the image runs ------------------------------------------------------------------------


@dataclass(frozen=True)
class CopiedFile:
    source: str  # relative to the build context (the playbook directory)
    dest: str  # absolute path in the image
    line: int
    chmod: bool  # COPY --chmod=<octal> with an executable bit settles the mode


def _words(args: str) -> list[str]:
    if args.startswith("["):
        try:
            value = json.loads(args)
        except ValueError:
            return []
        return [str(v) for v in value] if isinstance(value, list) else []
    try:
        return shlex.split(args, comments=False)
    except ValueError:
        return args.split()


def copied_files(cf: Containerfile) -> list[CopiedFile]:
    """Files COPY/ADD take from the build context into the final stage, with where they go."""
    out: list[CopiedFile] = []
    workdir = "/"
    final = cf.stages[-1].line if cf.stages else 0
    for ins in cf.instructions:
        if ins.keyword == "FROM":
            workdir = "/"
        elif ins.keyword == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / ins.args.strip())
        if ins.keyword not in ("COPY", "ADD") or ins.line < final or "<<" in ins.args:
            continue
        words = _words(ins.args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        if any(f.startswith("--from") for f in flags) or len(paths) < 2:
            continue  # from another stage or image: not our files
        # The flag as the assembler reads it (assemble.chmod_mode: the words before the
        # arguments, any case, the last one): a mode it refuses (symbolic, setuid...) settles
        # nothing, since the classic builder then refuses the flag (playbook.builder-flag).
        try:
            mode = assemble.chmod_mode(dockerfile.split_flags(ins.args)[0], ins.line)
        except assemble.Refused:
            mode = None
        chmod = mode is not None and mode & 0o111 != 0
        *sources, dest = paths
        dest_dir = dest.endswith("/") or len(sources) > 1
        base = PurePosixPath(workdir) / dest
        for src in sources:
            if any(c in src for c in "*?[") or "://" in src:
                continue
            target = base / PurePosixPath(src).name if dest_dir else base
            out.append(CopiedFile(src.removeprefix("./"), str(target), ins.line, chmod))
    return out


def _runs(cf: Containerfile, pipeline: dict[str, Any], placeholder: str) -> dict[str, str]:
    """What the image executes directly -> which instruction or step says so."""
    out: dict[str, str] = {}
    for ins in cf.instructions:
        if ins.keyword in ("ENTRYPOINT", "CMD", "RUN"):
            words = [w for w in _words(ins.args) if not w.startswith("--")]
            if words:
                out.setdefault(words[0], f"{ins.keyword} at line {ins.line}")
    for path, container, tmpl in _containers(pipeline):
        if container.get("image", tmpl.get("image")) != placeholder:
            continue
        command = container.get("command")
        if isinstance(command, list) and command and isinstance(command[0], str):
            out.setdefault(command[0], "the command of step " + ".".join(map(str, path)))
    return out


def _executed_by(copied: CopiedFile, runs: dict[str, str]) -> str | None:
    if copied.dest in runs:
        return runs[copied.dest]
    parent, _, name = copied.dest.rpartition("/")
    if parent in _PATH_DIRS and name in runs:
        return runs[name]
    return None


def index_modes(directory: Path) -> tuple[Path, dict[str, int]] | None:
    """(git root, path -> mode in git's index) for the repository holding directory, or None
    outside git (gitrepo.index_of: read once per index version)."""
    from playbookctl.gitrepo import index_of  # noqa: PLC0415 - git only when a rule needs it

    return index_of(directory)


def rule_executable(ctx: _Ctx) -> None:
    cf = ctx.containerfile
    if cf is None or not cf.stages:
        return
    runs = _runs(cf, ctx.pipeline_data, ctx.config.placeholder)
    index: tuple[Path, dict[str, int]] | None = None
    read = False
    for copied in copied_files(cf):
        how = _executed_by(copied, runs)
        if how is None or copied.chmod:
            continue
        local = ctx.pb.dir / copied.source
        try:
            st = local.lstat()
        except OSError:
            continue  # hadolint and the build report a missing source
        if not stat.S_ISREG(st.st_mode):
            continue  # a directory, or a link: special-file and the build say more
        if not read:
            index, read = index_modes(ctx.pb.dir), True
        mode = None
        if index:
            git_root, modes = index
            try:
                rel = os.path.relpath(local.resolve(), git_root.resolve())
            except ValueError:
                rel = ""
            mode = modes.get(Path(rel).as_posix())
        shown = ctx.pb.rel(local)
        if mode is not None:
            if mode != 0o100755:
                ctx.at(
                    cf.file,
                    copied.line,
                    1,
                    "playbook.executable",
                    f"{shown} is mode {mode:o} in git's index, but the image runs it "
                    f"({how}): a checkout makes it non-executable and the step dies with "
                    f"'permission denied'; run git add --chmod=+x {shown}",
                )
        elif not st.st_mode & 0o111:
            ctx.at(
                cf.file,
                copied.line,
                1,
                "playbook.executable",
                f"{shown} is not executable, but the image runs it ({how}): the step would "
                f"die with 'permission denied'; chmod +x it (and commit it with "
                "git add --chmod=+x)",
            )


# --- RBAC against Argo CD, placeholders -------------------------------------------------------


def rule_registration(ctx: _Ctx) -> None:
    ctx.findings.extend(check_registration_of(ctx.pb, ctx.config))


def rule_appproject(ctx: _Ctx) -> None:
    project = rbac_rules.load_project(ctx.config)
    docs = list(ctx.pb.rbac)
    if ctx.pb.workflow is not None:
        docs.append(ctx.pb.workflow)
    ctx.findings.extend(rbac_rules.check_wildcards(ctx.pb.rbac))
    if project is not None:
        ctx.findings.extend(rbac_rules.check_appproject(docs, project))


def rule_placeholder_text(ctx: _Ctx) -> None:
    wf = ctx.pb.workflow
    if wf is not None:
        description = ctx.pb.spec.get("description")
        for key in _DESCRIPTION_FIELDS:
            value = description.get(key) if isinstance(description, dict) else None
            if isinstance(value, str) and value.lstrip().startswith(PLACEHOLDER_PREFIX):
                ctx.add(
                    wf,
                    "playbook.placeholder-text",
                    ("spec", "description", key),
                    f"spec.description.{key} is still the scaffold's placeholder: Kubernaut's "
                    "agent reads it to choose a workflow; say it for this playbook",
                    Severity.WARNING,
                )
    script = ctx.pb.dir / "remediate.sh"
    try:
        text = script.read_text("utf-8") if script.is_file() else ""
    except (OSError, UnicodeDecodeError):
        return
    for number, line in enumerate(text.splitlines(), 1):
        if SCRIPT_PLACEHOLDER in line:
            ctx.at(
                ctx.pb.rel(script),
                number,
                line.index(SCRIPT_PLACEHOLDER) + 1,
                "playbook.placeholder-text",
                "the scaffold's unimplemented step is still here: the playbook fails every "
                "run until it is written",
                severity=Severity.WARNING,
            )
            break


def rule_execution_timeout(ctx: _Ctx) -> None:
    """playbook.execution-timeout: see lint/execution_time.py."""
    if ctx.pipeline is not None:
        ctx.findings.extend(check_execution_timeout(ctx.pipeline.document))


Rule = Callable[[_Ctx], None]
RULES: tuple[Rule, ...] = (
    rule_name,
    rule_missing_files,
    rule_pipeline_identity,
    rule_base_images,
    rule_network_inputs,
    rule_builder_flags,
    rule_dockerignore,
    rule_dockerignore_excluded,
    rule_rbac,
    rule_appproject,
    rule_placeholder_text,
    rule_registration,
    # the rules below read the Pipeline
    rule_params,
    rule_workspaces,
    rule_script_injection,
    rule_env_reserved,
    rule_images,
    rule_task_refs,
    rule_non_root,
    rule_executable,
    rule_execution_timeout,
)


def check_playbook(
    pb: Playbook, pipeline: RenderedPipeline | None, config: Config
) -> list[Finding]:
    """Every `playbook.*` finding for pb; pipeline is its rendered Pipeline, or None."""
    ctx = _Ctx(pb, pipeline, config, load_containerfile(pb, config.max_file_bytes))
    for rule in RULES:
        if (
            rule is rule_params
            and pipeline is not None
            and ctx.pipeline_data.get("kind") != "Pipeline"
        ):
            # Not a Pipeline at all (reported once above): checking its params, workspaces and
            # steps would only repeat that in other words.
            ctx.pipeline = None
        rule(ctx)
    return ctx.findings
