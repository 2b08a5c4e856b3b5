"""Tekton's admission validation of a Task (and of a TaskSpec embedded in a Pipeline).

Rules follow Tekton Pipelines v1.x `pkg/apis/pipeline/v1` (task_validation.go,
container_validation.go, result_validation.go, param_types.go, merge.go) under the default feature
flags: `enable-api-fields: beta` (object params, array/object results, step workspaces and array
indexing allowed; alpha features refused), StepActions on, artifacts, param enums, CEL in `when`
and the concise resolver syntax off. Where Tekton checks only some fields (param references are
looked for in steps only, not in sidecars or volumes), so do we: a false alarm on a Task the
cluster accepts is as wrong as a miss.

Messages keep Tekton's texts, followed by the field path the way Tekton prints it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from playbookctl.findings import Finding
from playbookctl.lint.tekton.common import (
    PARAM_ARRAY,
    PARAM_OBJECT,
    PARAM_STRING,
    PARAM_TYPES,
    Ctx,
    Names,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    entire_prohibited_references,
    field_path,
    go_quote,
    missing_field,
    not_isolated_references,
    param_spec_type,
    prohibited_references,
    unknown_references,
    value_type,
)
from playbookctl.lint.tekton.fields import check_fields, parse_go_duration
from playbookctl.load import Document, YamlPath

RESERVED_SIDECAR = "tekton-log-results"
ON_ERROR_VALUES = ("continue", "stopAndFail")  # continueAndFail came after v1.14
WORKSPACE_DIR = "/workspace"
ALPHA_GATE = '{} requires "enable-api-fields" feature gate to be "alpha" but it is "beta"'
ARTIFACTS_GATE = "feature flag enable-artifacts should be set to true to use artifacts feature."

_STRING_ARRAY_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9.-]*\Z")
_OBJECT_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9-]*\Z")
_RESULT_NAME_FORMAT = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
_RESULT_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_RESULT_NAME_DETAIL = (
    "Name must consist of alphanumeric characters, '-', '_', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my-name',  or 'my_name', regex used for "
    f"validation is '{_RESULT_NAME_FORMAT}')"
)
# Tekton's resultref.StepResultRegex and artifactref patterns.
_STEP_RESULT_USE = re.compile(r"\$\(steps\..*\.results\..*\)")
# ExtractStepResultName's pattern for a task result's value.
_STEP_RESULT_VALUE = re.compile(r"\$\(steps\.(.*?)\.results\.(.*?)\)")
_STEP_ARTIFACT_USE = re.compile(r"\$\(steps\.([^.]+)\.(?:inputs|outputs)\.([^.)]+)\)")
_TASK_ARTIFACT_USE = re.compile(r"\$\(tasks\.([^.]+)\.(?:inputs|outputs)\.([^.)]+)\)")
_URL_LIKE = re.compile(r"[\w-]+:\/\/*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_WHEN_OPERATORS = ("in", "notin")

_TASKRUN_CONTEXT: Names = frozenset({"name", "namespace", "uid"})
_TASK_CONTEXT: Names = frozenset({"name", "retry-count"})


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_v1beta1(api_version: str) -> bool:
    return api_version.rsplit("/", 1)[-1] == "v1beta1"


def go_clean(path: str) -> str:
    """Go's filepath.Clean on a slash path."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(seg)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def go_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)

    def frac(v: int, unit: int) -> str:
        whole, rest = divmod(v, unit)
        if not rest:
            return str(whole)
        digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
        return f"{whole}.{digits}"

    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{frac(u, 1_000)}µs"
    if u < 1_000_000_000:
        return f"{sign}{frac(u, 1_000_000)}ms"
    hours, rem = divmod(u, 3_600_000_000_000)
    minutes, rem = divmod(rem, 60_000_000_000)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{frac(rem, 1_000_000_000)}s"


_QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def qualified_name_errors(value: str) -> list[str]:
    """Kubernetes' IsQualifiedName messages: [prefix/]name, prefix a DNS subdomain."""
    parts = value.split("/")
    name = parts[-1]
    errs: list[str] = []
    if len(parts) == 2:
        if not parts[0]:
            errs.append("prefix part must be non-empty")
        else:
            errs += [f"prefix part {e}" for e in dns1123_subdomain_errors(parts[0])]
    elif len(parts) > 2:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME.match(name):
        errs.append(_QUALIFIED_NAME_MSG)
    return errs


def _safe(check: Any, value: str, prefix: str, names: Names) -> str | None:
    """Run a reference check; a prefix that is not a valid pattern finds nothing, as in Go."""
    try:
        result: str | None = check(value, prefix, names)
    except re.error:
        return None
    return result


# --- merged steps (stepTemplate applied as Tekton's MergeStepsWithStepTemplate does) -------------


class _Merged:
    """A step after the stepTemplate merge, remembering where each field came from."""

    def __init__(
        self,
        step: dict[str, Any],
        step_path: YamlPath,
        template: dict[str, Any] | None,
        template_path: YamlPath,
    ) -> None:
        self.step = step
        self.path = step_path
        self.values: dict[str, Any] = {}
        self.origin: dict[str, YamlPath] = {}
        uses_ref = step.get("ref") is not None
        tmpl = template if (template is not None and not uses_ref) else {}
        for key in ("name", "image", "workingDir", "imagePullPolicy"):
            if _s(step.get(key)):
                self._set(key, step[key], step_path)
            elif _s(tmpl.get(key)):
                self._set(key, tmpl[key], template_path)
        for key in ("command", "args", "envFrom"):
            if _l(step.get(key)):
                self._set(key, step[key], step_path)
            elif _l(tmpl.get(key)):
                self._set(key, tmpl[key], template_path)
        for key, merge_key in (
            ("env", "name"),
            ("volumeMounts", "mountPath"),
            ("volumeDevices", "devicePath"),
        ):
            merged: dict[Any, tuple[YamlPath, dict[str, Any]]] = {}
            for src, src_path in ((tmpl, template_path), (step, step_path)):
                for i, item in enumerate(_l(src.get(key))):
                    if isinstance(item, dict):
                        mk = item.get(merge_key)
                        merged[mk if isinstance(mk, str) else ("#", id(item))] = (
                            (*src_path, key, i),
                            item,
                        )
            self.values[key] = list(merged.values())

    def _set(self, key: str, value: Any, base: YamlPath) -> None:
        self.values[key] = value
        self.origin[key] = (*base, key)

    def str_(self, key: str) -> str:
        return _s(self.values.get(key))

    def list_(self, key: str) -> list[Any]:
        return _l(self.values.get(key))

    def at(self, key: str) -> YamlPath:
        return self.origin.get(key, (*self.path, key))

    def items(self, key: str) -> list[tuple[YamlPath, dict[str, Any]]]:
        out: list[tuple[YamlPath, dict[str, Any]]] = self.values.get(key, [])
        return out


# --- the checker ---------------------------------------------------------------------------------


class _TaskChecker:
    def __init__(self, ctx: Ctx, path: YamlPath, api_version: str) -> None:
        self.ctx = ctx
        self.path = path
        self.v1beta1 = _is_v1beta1(api_version)
        self.spec = _d(ctx.get(path))

    def err(self, rule: str, rel: YamlPath, message: str, *, at_key: bool = False) -> None:
        self.ctx.error(rule, rel, message, at_key=at_key)

    def p(self, *rel: str | int) -> YamlPath:
        return (*self.path, *rel)

    # TaskSpec.Validate
    def check_spec(self) -> None:
        spec = self.spec
        steps = _l(spec.get("steps"))
        if not steps:
            self.err(
                "tekton.missing-steps",
                self.p("steps"),
                missing_field(self.p("steps")),
                at_key="steps" in spec,
            )
        self.check_volumes()
        self.check_declared_workspaces()
        self.check_workspace_usages()
        self.check_steps()
        self.check_sidecars()
        self.check_param_types()
        self.check_param_variables()
        self.check_context_variables()
        self.check_task_result_variables()
        self.check_results()
        if self.v1beta1 and spec.get("resources") is not None:
            self.err(
                "tekton.disallowed-field",
                self.p("resources"),
                f"must not set the field(s): {field_path(self.p('resources'))}",
                at_key=True,
            )

    def steps(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for i, step in enumerate(_l(self.spec.get("steps"))):
            if isinstance(step, dict):
                yield i, step

    def check_volumes(self) -> None:
        seen: set[str] = set()
        for i, vol in enumerate(_l(self.spec.get("volumes"))):
            name = _s(_d(vol).get("name"))
            if name in seen:
                self.err(
                    "tekton.duplicate-volume",
                    self.p("volumes", i, "name"),
                    f"multiple volumes with same name {go_quote(name)}: "
                    f"{field_path(self.p('volumes', i, 'name'))}",
                )
            seen.add(name)

    def check_declared_workspaces(self) -> None:
        mount_paths: set[str] = set()
        for _, step in self.steps():
            for vm in _l(step.get("volumeMounts")):
                mount_paths.add(go_clean(_s(_d(vm).get("mountPath"))))
        for vm in _l(_d(self.spec.get("stepTemplate")).get("volumeMounts")):
            mount_paths.add(go_clean(_s(_d(vm).get("mountPath"))))
        names: set[str] = set()
        for i, ws in enumerate(_l(self.spec.get("workspaces"))):
            w = _d(ws)
            name = _s(w.get("name"))
            if name in names:
                self.err(
                    "tekton.duplicate-workspace",
                    self.p("workspaces", i, "name"),
                    f"workspace name {go_quote(name)} must be unique: "
                    f"{field_path(self.p('workspaces', i, 'name'))}",
                )
            names.add(name)
            mount = go_clean(_s(w.get("mountPath")) or f"{WORKSPACE_DIR}/{name}")
            if mount in mount_paths:
                where = (
                    self.p("workspaces", i, "mountPath")
                    if w.get("mountPath")
                    else self.p("workspaces", i)
                )
                self.err(
                    "tekton.workspace-mount-path",
                    where,
                    f"workspace mount path {go_quote(mount)} must be unique: "
                    f"{field_path(self.p('workspaces', i, 'mountpath'))}",
                )
            mount_paths.add(mount)

    def check_workspace_usages(self) -> None:
        declared = {_s(_d(w).get("name")) for w in _l(self.spec.get("workspaces"))}
        for kind in ("steps", "sidecars"):
            for i, c in enumerate(_l(self.spec.get(kind))):
                for j, use in enumerate(_l(_d(c).get("workspaces"))):
                    name = _s(_d(use).get("name"))
                    if name not in declared:
                        at = self.p(kind, i, "workspaces", j, "name")
                        self.err(
                            "tekton.undefined-workspace",
                            at,
                            f"undefined workspace {go_quote(name)}: {field_path(at)}",
                        )

    # validateSteps on the merged steps
    def check_steps(self) -> None:
        template_raw = self.spec.get("stepTemplate")
        template = template_raw if isinstance(template_raw, dict) else None
        names: set[str] = set()
        for i, step in self.steps():
            merged = _Merged(step, self.p("steps", i), template, self.p("stepTemplate"))
            self.check_step(merged, names)
            if step.get("results") is not None:
                self.check_step_results(merged)
            when = _l(step.get("when"))
            if when:
                self.check_when(when, self.p("steps", i, "when"))

    def check_step(self, m: _Merged, names: set[str]) -> None:
        step = m.step
        base = m.path
        found: list[tuple[str, YamlPath, str, bool]] = []

        def add(rule: str, at: YamlPath, message: str, at_key: bool = False) -> None:
            found.append((rule, at, message, at_key))

        # Artifacts are off by default; any use refuses the step before anything else is looked at.
        texts = [_s(step.get("script"))]
        texts += [_s(c) for c in m.list_("command")] + [_s(a) for a in m.list_("args")]
        texts += [_s(env.get("value")) for _, env in m.items("env")]
        if any(_uses_artifacts(t) for t in texts if t):
            self.err("tekton.feature-gate", base, f"{ARTIFACTS_GATE}: {field_path(base)}")
            return

        ref = step.get("ref")
        if ref is not None:
            self.check_ref(_d(ref), (*base, "ref"), add)
            for key, label in (
                ("image", "image"),
                ("command", "command"),
                ("args", "args"),
                ("script", "script"),
                ("workingDir", "working dir"),
            ):
                if step.get(key):
                    add(
                        "tekton.step-ref",
                        (*base, key),
                        f"{label} cannot be used with Ref: {field_path((*base, key))}",
                        True,
                    )
            if step.get("env") is not None:
                add(
                    "tekton.step-ref",
                    (*base, "env"),
                    f"env cannot be used with Ref: {field_path((*base, 'env'))}",
                    True,
                )
            for key in ("volumeMounts", "results"):
                if _l(step.get(key)):
                    add(
                        "tekton.step-ref",
                        (*base, key),
                        f"{key} cannot be used with Ref: {field_path((*base, key))}",
                        True,
                    )
        else:
            if _l(step.get("params")):
                add(
                    "tekton.step-ref",
                    (*base, "params"),
                    f"params cannot be used without Ref: {field_path((*base, 'params'))}",
                    True,
                )
            if not m.str_("image"):
                add("tekton.step-image", (*base, "image"), missing_field((*base, "Image")))
            if _s(step.get("script")) and m.list_("command"):
                add(
                    "tekton.step-script",
                    (*base, "script"),
                    f"script cannot be used with command: {field_path((*base, 'script'))}",
                    True,
                )

        name = m.str_("name")
        if name:
            at = m.at("name")
            if name in names:
                add(
                    "tekton.step-name",
                    at,
                    f"expected exactly one, got both: {field_path((*base, 'name'))}",
                )
            if dns1123_label_errors(name):
                add(
                    "tekton.step-name",
                    at,
                    f"invalid value {go_quote(name)}: {field_path((*base, 'name'))}\nTask step "
                    "name must be a valid DNS Label, For more info refer to "
                    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#names",
                )
            names.add(name)

        timeout = step.get("timeout")
        if isinstance(timeout, str):
            ns = parse_go_duration(timeout)
            if ns is not None and ns < 0:
                # Tekton returns here, dropping what it found on this step so far.
                self.err(
                    "tekton.step-timeout",
                    (*base, "timeout"),
                    f"invalid value: {go_duration(ns)}: {field_path(base)}.negative timeout",
                )
                return

        for at, vm in m.items("volumeMounts"):
            mount = _s(vm.get("mountPath"))
            vname = _s(vm.get("name"))
            clean = go_clean(mount)  # Tekton checks filepath.Clean(mountPath)
            if clean.startswith("/tekton/") and not clean.startswith("/tekton/home"):
                add(
                    "tekton.volume-mount",
                    (*at, "mountPath"),
                    f"volumeMount cannot be mounted under /tekton/ (volumeMount {go_quote(vname)} "
                    f"mounted at {go_quote(mount)}): {field_path((*at, 'mountPath'))}",
                )
            if vname.startswith("tekton-internal-"):
                add(
                    "tekton.volume-mount",
                    (*at, "name"),
                    f'volumeMount name {go_quote(vname)} cannot start with "tekton-internal-": '
                    f"{field_path((*at, 'name'))}",
                )

        on_error = _s(step.get("onError"))
        if on_error and not on_error.startswith("$(params") and on_error not in ON_ERROR_VALUES:
            detail = 'Task step onError must be either "continue" or "stopAndFail"'
            add(
                "tekton.step-on-error",
                (*base, "onError"),
                f"invalid value: {go_quote(on_error)}: {field_path((*base, 'onError'))}\n{detail}",
            )

        if _s(step.get("script")).strip().startswith("#!win"):
            add(
                "tekton.feature-gate",
                (*base, "script"),
                f"{ALPHA_GATE.format('windows script support')}: {field_path((*base, 'script'))}",
            )
        for key, label in (
            ("stdoutConfig", "step stdout stream support"),
            ("stderrConfig", "step stderr stream support"),
        ):
            if step.get(key) is not None:
                add(
                    "tekton.feature-gate",
                    (*base, key),
                    f"{ALPHA_GATE.format(label)}: {field_path((*base, key.lower()))}",
                    True,
                )

        for at, text in self._step_ref_fields(m):
            if _STEP_RESULT_USE.search(text):
                add(
                    "tekton.step-result-reference",
                    at,
                    "stepResult substitutions are only allowed in env, command and args. "
                    f"Found usage in: {field_path(at)}",
                )
        for at, text in self._step_ref_fields(m, with_script=False):
            if _uses_step_artifact(text):
                add(
                    "tekton.step-artifact-reference",
                    at,
                    "stepArtifact substitutions are only allowed in env, command, args and "
                    f"script. Found usage in: {field_path(at)}",
                )

        for rule, at, message, at_key in found:
            self.err(rule, at, message, at_key=at_key)

    def _step_ref_fields(
        self, m: _Merged, *, with_script: bool = True
    ) -> Iterator[tuple[YamlPath, str]]:
        yield m.at("name"), m.str_("name")
        yield m.at("image"), m.str_("image")
        if with_script:
            yield (*m.path, "script"), _s(m.step.get("script"))
        yield m.at("imagePullPolicy"), m.str_("imagePullPolicy")
        yield m.at("workingDir"), m.str_("workingDir")
        for i, ef in enumerate(m.list_("envFrom")):
            e = _d(ef)
            at = (*m.at("envFrom"), i)
            yield (*at, "prefix"), _s(e.get("prefix"))
            for key in ("configMapRef", "secretRef"):
                if isinstance(e.get(key), dict):
                    yield (*at, key, "name"), _s(e[key].get("name"))
        for at, vm in m.items("volumeMounts"):
            for key in ("name", "mountPath", "subPath"):
                yield (*at, key), _s(vm.get(key))
        for at, vd in m.items("volumeDevices"):
            for key in ("name", "devicePath"):
                yield (*at, key), _s(vd.get(key))

    def check_ref(self, ref: dict[str, Any], at: YamlPath, add: Any) -> None:
        name = _s(ref.get("name"))
        resolver = _s(ref.get("resolver"))
        params = ref.get("params")
        if resolver or params is not None:
            if params is not None:
                if name:
                    add(
                        "tekton.step-ref",
                        at,
                        f"expected exactly one, got both: {field_path((*at, 'name'))}, "
                        f"{field_path((*at, 'params'))}",
                    )
                if not resolver:
                    add("tekton.step-ref", at, missing_field((*at, "resolver")))
                seen: set[str] = set()
                for i, prm in enumerate(_l(params)):
                    pname = _s(_d(prm).get("name"))
                    if pname in seen:
                        add(
                            "tekton.step-ref",
                            (*at, "params", i, "name"),
                            f"expected exactly one, got both: "
                            f"{field_path((*at, 'params', i, 'name'))} "
                            f"(parameter {go_quote(pname)} appears more than once)",
                        )
                    seen.add(pname)
            if resolver and name:
                if _URL_LIKE.search(name):
                    add(
                        "tekton.feature-gate",
                        (*at, "name"),
                        "feature flag enable-concise-resolver-syntax should be set to true to "
                        f"use concise resolver syntax: {field_path((*at, 'name'))}",
                    )
                else:
                    add(
                        "tekton.step-ref",
                        (*at, "name"),
                        f"invalid value: invalid URI for request: {field_path((*at, 'name'))}",
                    )
        elif name:
            if _URL_LIKE.search(name):
                add(
                    "tekton.feature-gate",
                    (*at, "name"),
                    "feature flag enable-concise-resolver-syntax should be set to true to use "
                    f"concise resolver syntax: {field_path((*at, 'name'))}",
                )
                add("tekton.step-ref", at, missing_field((*at, "resolver")))
            elif errs := qualified_name_errors(name):
                add(
                    "tekton.step-ref",
                    (*at, "name"),
                    f"invalid value: {','.join(errs)}: {field_path((*at, 'name'))}",
                )
        else:
            add("tekton.step-ref", at, missing_field((*at, "name")))

    def check_step_results(self, m: _Merged) -> None:
        results = _l(m.step.get("results"))
        names = frozenset(_s(_d(r).get("name")) for r in results)
        script = _s(m.step.get("script"))
        at = (*m.path, "script")
        for prefix in ("step.results", "results"):
            msg = _safe(unknown_references, script, prefix, names)
            if msg:
                self.err("tekton.result-reference", at, f"{msg}: {field_path(at)}")
        for i, r in enumerate(results):
            self.check_result(_d(r), (*m.path, "results", i), step=True)

    def check_when(self, when: list[Any], at: YamlPath) -> None:
        for i, expr in enumerate(when):
            we = _d(expr)
            here = (*at, i)
            if _s(we.get("cel")):
                self.err(
                    "tekton.feature-gate",
                    (*here, "cel"),
                    "feature flag enable-cel-in-whenexpression should be set to true to use "
                    f"CEL: {we['cel']} in WhenExpression: {field_path(here)}",
                )
                continue
            if not any(v not in (None, "", [], {}) for v in we.values()):
                self.err("tekton.when", here, missing_field(here))
                continue
            operator = _s(we.get("operator"))
            if operator not in _WHEN_OPERATORS:
                self.err(
                    "tekton.when",
                    (*here, "operator"),
                    f"invalid value: operator {go_quote(operator)} is not recognized. valid "
                    f"operators: {','.join(_WHEN_OPERATORS)}: {field_path(here)}",
                )
                continue
            if not _l(we.get("values")):
                self.err(
                    "tekton.when",
                    here,
                    f"invalid value: expecting non-empty values field: {field_path(here)}",
                )

    def check_sidecars(self) -> None:
        for i, sc in enumerate(_l(self.spec.get("sidecars"))):
            s = _d(sc)
            if _s(s.get("name")) == RESERVED_SIDECAR:
                self.err(
                    "tekton.sidecar-name",
                    self.p("sidecars", i, "name"),
                    f"Invalid: cannot use reserved sidecar name {RESERVED_SIDECAR} : "
                    f"{field_path(self.p('sidecars', i, 'name'))}",
                )
            if self.v1beta1:
                continue  # v1beta1 checks the name only
            if not _s(s.get("image")):
                self.err(
                    "tekton.sidecar-image",
                    self.p("sidecars", i, "image"),
                    missing_field(self.p("sidecars", i, "image")),
                )
            if _s(s.get("script")) and _l(s.get("command")):
                self.err(
                    "tekton.sidecar-script",
                    self.p("sidecars", i, "script"),
                    "script cannot be used with command: "
                    f"{field_path(self.p('sidecars', i, 'script'))}",
                    at_key=True,
                )

    # --- params ----------------------------------------------------------------------------------

    def params(self) -> list[tuple[int, dict[str, Any], str, str]]:
        """(index, spec, name, defaulted type) of each declared param."""
        out = []
        for i, prm in enumerate(_l(self.spec.get("params"))):
            if isinstance(prm, dict):
                out.append((i, prm, _s(prm.get("name")), param_spec_type(prm)))
        return out

    def check_param_types(self) -> None:
        for i, prm, name, ptype in self.params():
            at = self.p("params", i)
            if ptype not in PARAM_TYPES:
                self.err(
                    "tekton.param-type",
                    (*at, "type"),
                    f"invalid value: {ptype}: {field_path(self.p('params'))}.{name}.type",
                )
                continue
            default = prm.get("default")
            if default is not None and value_type(default) != ptype:
                self.err(
                    "tekton.param-type",
                    (*at, "default"),
                    f'"{ptype}" type does not match default value\'s type: '
                    f'"{value_type(default)}": {field_path(self.p("params"))}.{name}.type, '
                    f"{field_path(self.p('params'))}.{name}.default.type",
                )
                continue
            props = prm.get("properties")
            if isinstance(props, dict):
                bad = sorted(k for k, v in props.items() if _property_type(v) != PARAM_STRING)
                if bad:
                    self.err(
                        "tekton.param-type",
                        (*at, "properties"),
                        f"The value type specified for these keys [{' '.join(bad)}] is "
                        f"invalid: {field_path(self.p('params'))}.{name}.properties",
                    )

    def check_param_variables(self) -> None:
        params = self.params()
        counts: dict[str, int] = {}
        for i, prm, name, ptype in params:
            counts[name] = counts.get(name, 0) + 1
            if counts[name] == 2:
                self.err(
                    "tekton.duplicate-param",
                    self.p("params", i, "name"),
                    f"parameter appears more than once: {field_path(self.p('params'))}[{name}]",
                )
            enum = _l(prm.get("enum"))
            if enum:
                where = f"{field_path(self.p('params'))}[{name}]"
                self.err(
                    "tekton.feature-gate",
                    self.p("params", i, "enum"),
                    f"feature flag `enable-param-enum` should be set to true to use Enum: {where}",
                    at_key=True,
                )
                if ptype != PARAM_STRING:
                    self.err(
                        "tekton.param-enum",
                        self.p("params", i, "enum"),
                        f"enum can only be set with string type param: {where}",
                        at_key=True,
                    )
        bad_names = sorted(
            {
                name
                for _, _, name, ptype in params
                if ptype != PARAM_OBJECT and not _STRING_ARRAY_NAME.match(name)
            }
        )
        if bad_names:
            first = next(i for i, _, n, _ in params if n in bad_names)
            self.err(
                "tekton.param-name",
                self.p("params", first, "name"),
                "The format of following array and string variable names is invalid: "
                f"[{' '.join(bad_names)}]: {field_path(self.p('params'))}",
            )
        bad_objects: dict[str, list[str]] = {}
        first_object = -1
        for i, prm, name, ptype in params:
            if ptype != PARAM_OBJECT:
                continue
            keys = sorted(k for k in _d(prm.get("properties")) if not _OBJECT_NAME.match(k))
            if not _OBJECT_NAME.match(name) or keys:
                bad_objects[name] = keys
                first_object = i if first_object < 0 else first_object
        if bad_objects:
            shown = " ".join(f"{k}:[{' '.join(v)}]" for k, v in sorted(bad_objects.items()))
            self.err(
                "tekton.param-name",
                self.p("params", first_object, "name"),
                f"Object param name and key name format is invalid: map[{shown}]: "
                f"{field_path(self.p('params'))}",
            )
        arrays = frozenset(n for _, _, n, t in params if t == PARAM_ARRAY)
        if arrays:
            for at, named, value, isolated in self._step_sites(with_on_error=False):
                check = not_isolated_references if isolated else prohibited_references
                msg = _safe(check, value, "params", arrays)
                if msg:
                    self._ref_error("tekton.param-usage", at, msg, named)

    def check_declared_usage(self, extra_params: Any) -> None:
        """ValidateUsageOfDeclaredParameters over the task's params plus extra_params."""
        own = self.params()
        specs = [(prm, name, ptype) for _, prm, name, ptype in own]
        extra = list(extra_params.values()) if isinstance(extra_params, dict) else _l(extra_params)
        for prm in extra:
            if isinstance(prm, dict):
                specs.append((prm, _s(prm.get("name")), param_spec_type(prm)))
        all_names = frozenset(name for _, name, _ in specs)
        objects = [(prm, name) for prm, name, ptype in specs if ptype == PARAM_OBJECT]
        # Task.Validate runs after TaskSpec.Validate merged the stepTemplate into the steps
        # (MergeStepsWithStepTemplate writes the merged steps back), so it sees merged steps.
        sites = list(self._step_sites(with_on_error=True))
        for at, named, value, _ in sites:
            msg = _safe(unknown_references, value, "params", all_names)
            if msg:
                self._ref_error("tekton.param-reference", at, msg, named)
        for prm, name in objects:
            keys = frozenset(k for k in _d(prm.get("properties")) if isinstance(k, str))
            for at, named, value, _ in sites:
                msg = _safe(unknown_references, value, "params\\." + name, keys)
                if msg:
                    self._ref_error("tekton.param-reference", at, msg, named)
        object_names = frozenset(name for _, name in objects)
        if object_names:
            for at, named, value, _ in self._step_sites(with_on_error=False):
                msg = _safe(entire_prohibited_references, value, "params", object_names)
                if msg:
                    self._ref_error("tekton.param-usage", at, msg, named)
        for i, prm, name, ptype in own:
            if ptype == PARAM_OBJECT and prm.get("properties") is None:
                where = f"{field_path(self.path)}.{name}" if self.path else name
                self.err(
                    "tekton.param-properties",
                    self.p("params", i),
                    f"missing field(s): {where}.properties",
                )

    def _step_sites(self, *, with_on_error: bool) -> Iterator[tuple[YamlPath, str, str, bool]]:
        """The strings Tekton scans for variables in each step after the stepTemplate merge:
        (where, the field path Tekton names, value, is command/args). A field the template
        supplied points at the template; Tekton names it in the merged step (`steps[0].env[X]`:
        an env entry by its name)."""
        template_raw = self.spec.get("stepTemplate")
        template = template_raw if isinstance(template_raw, dict) else None
        for i, step in self.steps():
            m = _Merged(step, self.p("steps", i), template, self.p("stepTemplate"))
            named = field_path(self.p("steps", i))
            for key in ("name", "image", "workingDir"):
                value = m.values.get(key)
                if isinstance(value, str) and "$(" in value:
                    yield m.at(key), f"{named}.{key}", value, False
            script = step.get("script")
            if isinstance(script, str) and "$(" in script:
                yield self.p("steps", i, "script"), f"{named}.script", script, False
            for key in ("command", "args"):
                for k, value in enumerate(m.list_(key)):
                    if isinstance(value, str) and "$(" in value:
                        yield (*m.at(key), k), f"{named}.{key}[{k}]", value, True
            for at, env in m.items("env"):
                value = env.get("value")
                if isinstance(value, str) and "$(" in value:
                    yield (*at, "value"), f"{named}.env[{_s(env.get('name'))}]", value, False
            for at, vm in m.items("volumeMounts"):
                for key in ("name", "mountPath", "subPath"):
                    value = vm.get(key)
                    if isinstance(value, str) and "$(" in value:
                        yield (*at, key), f"{field_path(at)}.{key}", value, False
            if with_on_error:
                value = step.get("onError")
                if isinstance(value, str) and "$(" in value:
                    yield self.p("steps", i, "onError"), f"{named}.onError", value, False

    def _raw_steps(self) -> Iterator[tuple[int, YamlPath, dict[str, Any]]]:
        for i, step in self.steps():
            yield i, self.p("steps", i), step

    def _ref_error(self, rule: str, at: YamlPath, msg: str, named: str | None = None) -> None:
        """`named`: the field path Tekton gives (default: where it is written)."""
        self.err(rule, at, f"{msg}: {named or field_path(at)}")

    def check_context_variables(self) -> None:
        for at, named, value, _ in self._step_sites(with_on_error=True):
            if "$(context" not in value:
                continue
            for prefix, names in (
                ("context\\.taskRun", _TASKRUN_CONTEXT),
                ("context\\.task", _TASK_CONTEXT),
            ):
                msg = _safe(unknown_references, value, prefix, names)
                if msg:
                    self._ref_error("tekton.context-reference", at, msg, named)

    def check_task_result_variables(self) -> None:
        names = frozenset(_s(_d(r).get("name")) for r in _l(self.spec.get("results")))
        for _, step_path, step in self._raw_steps():
            script = _s(step.get("script"))
            msg = _safe(unknown_references, script, "results", names)
            if msg:
                self._ref_error("tekton.result-reference", (*step_path, "script"), msg)

    def check_results(self) -> None:
        for i, r in enumerate(_l(self.spec.get("results"))):
            self.check_result(_d(r), self.p("results", i), step=False)

    def check_result(self, r: dict[str, Any], at: YamlPath, *, step: bool) -> None:
        name = _s(r.get("name"))
        if not _RESULT_NAME.match(name):
            self.err(
                "tekton.result-name",
                (*at, "name"),
                f"invalid key name {go_quote(name)}: {field_path((*at, 'name'))}\n"
                f"{_RESULT_NAME_DETAIL}",
            )
            return
        rtype = _s(r.get("type"))
        props = r.get("properties")
        if not rtype:
            rtype = PARAM_OBJECT if props is not None else PARAM_STRING
        if rtype == PARAM_OBJECT:
            if props is None:
                self.err(
                    "tekton.result-type",
                    at,
                    f"missing field(s): {field_path(at)}.{name}.properties",
                )
            else:
                bad = sorted(k for k, v in _d(props).items() if _property_type(v) != PARAM_STRING)
                if bad:
                    # Tekton words the two messages differently (capital T for task results).
                    lead = "the" if step else "The"
                    self.err(
                        "tekton.result-type",
                        (*at, "properties"),
                        f"{lead} value type specified for these keys [{' '.join(bad)}] is "
                        f"invalid, the type must be string: {field_path(at)}.{name}.properties",
                    )
        elif rtype not in (PARAM_ARRAY, PARAM_STRING):
            detail = f"invalid type {rtype}" if step else "type must be string"
            self.err(
                "tekton.result-type",
                (*at, "type"),
                f"invalid value: {rtype}: {field_path((*at, 'type'))}\n{detail}",
            )
            if step:
                return
        if not step:
            self.check_result_value(r, name, at)

    def check_result_value(self, r: dict[str, Any], name: str, at: YamlPath) -> None:
        """TaskResult.validateValue: a value fetches a step's result, `$(steps.S.results.R)`."""
        value = r.get("value")
        if value is None:
            return
        where = (*at, "value")
        vtype = value_type(value)
        if vtype != PARAM_STRING:
            self.err(
                "tekton.result-value",
                where,
                f'Invalid Type. Wanted string but got: "{vtype}": {field_path(at)}.{name}.type',
            )
            return
        text = _scalar_text(value)
        if not text:
            return
        m = _STEP_RESULT_VALUE.search(text)
        if not m:
            self.err(
                "tekton.result-value",
                where,
                "Could not extract step name and result name. Expected value to look like "
                f"$(steps.<stepName>.results.<resultName>) but got {go_quote(text)}: "
                f"{field_path(at)}.{name}.value",
            )
            return
        step_name, result_name = m.group(1), m.group(2)
        if dns1123_label_errors(step_name):
            self.err(
                "tekton.result-value",
                where,
                f"invalid extracted step name {go_quote(step_name)}: {field_path(at)}.{name}.value"
                ": stepName in $(steps.<stepName>.results.<resultName>) must be a valid DNS Label",
            )
        if not _RESULT_NAME.match(result_name):
            self.err(
                "tekton.result-value",
                where,
                f"invalid extracted result name {go_quote(result_name)}: "
                f"{field_path(at)}.{name}.value: resultName in "
                f"$(steps.<stepName>.results.<resultName>) {_RESULT_NAME_DETAIL[5:]}",
            )


def _scalar_text(value: Any) -> str:
    """The StringVal Tekton's ParamValue decoder keeps for a JSON scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return str(value)


def _property_type(value: Any) -> str:
    if isinstance(value, dict):
        return _s(value.get("type")) or PARAM_STRING
    return PARAM_STRING


def _uses_step_artifact(text: str) -> bool:
    return "$(" in text and (
        bool(_STEP_ARTIFACT_USE.search(text)) or "$(step.artifacts.path)" in text
    )


def _uses_artifacts(text: str) -> bool:
    return _uses_step_artifact(text) or (
        "$(" in text and (bool(_TASK_ARTIFACT_USE.search(text)) or "$(artifacts.path)" in text)
    )


def _check_metadata(ctx: Ctx, path: YamlPath) -> None:
    meta = _d(ctx.get((*path, "metadata")))
    name = meta.get("name")
    if name is None and _s(meta.get("generateName")):
        return  # the API server names the object before admission
    name = _s(name)
    at = (*path, "metadata", "name") if "name" in meta else (*path, "metadata")
    if dns1123_subdomain_errors(name):
        ctx.error(
            "tekton.metadata-name",
            at,
            f"invalid resource name {go_quote(name)}: must be a valid DNS label: metadata.name",
        )
    elif len(name) > 63:
        ctx.error(
            "tekton.metadata-name",
            at,
            "Invalid resource name: length must be no more than 63 characters: metadata.name",
        )


def check_task(doc: Document, path: YamlPath = ()) -> list[Finding]:
    """Every finding for the Task object at path: strict decoding, then Tekton's Task.Validate."""
    path = tuple(path)
    obj = _d(doc.get(path))
    api_version = _s(obj.get("apiVersion")) or "tekton.dev/v1"
    ctx = Ctx(doc)
    ctx.findings.extend(check_fields(doc, path, "Task", api_version))
    _check_metadata(ctx, path)
    checker = _TaskChecker(ctx, (*path, "spec"), api_version)
    checker.check_spec()
    # A Task created on its own gets no propagated params: everything it uses must be declared.
    checker.check_declared_usage(None)
    return ctx.findings


def check_task_spec(
    doc: Document,
    path: YamlPath,
    *,
    api_version: str,
    pipeline_params: dict[str, Any] | list[Any] | None = None,
) -> list[Finding]:
    """Tekton's TaskSpec validation of the spec at path (a pipeline task's embedded taskSpec).

    Strict decoding is not repeated here: the caller decodes the enclosing object. References to
    params are resolved against the spec's own params plus pipeline_params (the Pipeline's
    declared params, as a name -> ParamSpec mapping or a ParamSpec list), as Tekton does for
    embedded specs.
    """
    ctx = Ctx(doc)
    checker = _TaskChecker(ctx, tuple(path), api_version)
    checker.check_spec()
    checker.check_declared_usage(pipeline_params)
    return ctx.findings
