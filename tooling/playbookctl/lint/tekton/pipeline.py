"""Tekton's admission validation of a Pipeline (tekton.dev/v1 and v1beta1), rule by rule.

The order and the quirks follow Tekton's `Pipeline.Validate` (pipeline_validation.go and the helpers
it calls) at v1.14 (config.TEKTON_VERSION) with its default feature flags: `enable-api-fields:
beta`, alpha-only features off. Where Tekton's check is narrower than one might expect (for
example the context variables of only the last pipeline task are checked), we are exactly as
narrow: a finding here should mean the cluster refuses the object.

Task internals (steps, task params, results) are validated by `task.check_task_spec` and unknown or
misplaced fields by `fields.check_fields`; this module calls both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from playbookctl.findings import Finding, sorted_unique
from playbookctl.lint.tekton.common import (
    PARAM_ARRAY,
    PARAM_OBJECT,
    PARAM_STRING,
    PARAM_TYPES,
    Ctx,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    entire_prohibited_references,
    go_quote,
    is_isolated_whole_reference,
    not_isolated_references,
    param_spec_type,
    prohibited_references,
    qualified_name_errors,
    ref_name_like_url,
    trim_array_index,
    unknown_references,
    value_type,
    var_sub_expressions,
    via_field,
)
from playbookctl.lint.tekton.fields import check_fields
from playbookctl.lint.tekton.task import check_task_spec
from playbookctl.load import Document, YamlPath

MAX_NAME_LENGTH = 63
MAX_MATRIX_COMBINATIONS = 256  # Tekton's default-max-matrix-combinations-count
# ClusterTask is gone from both API versions: its kind now makes a custom task (without an
# apiVersion, an invalid one).
TASK_KINDS = ("", "Task")
WHEN_OPERATORS = ("in", "notin")
# validateVarSubstitutionExpressions: what a `$(...)` in params, when and matrix may start with.
VALID_VARIABLE_PREFIXES = frozenset(
    ("params", "tasks", "finally", "context", "workspaces", "results")
)
ON_ERROR_VALUES = ("continue", "stopAndFail")
ALPHA_OFF = 'requires "enable-api-fields" feature gate to be "alpha" but it is "beta"'
# Tekton's TaskArtifactRegex: artifacts are an alpha feature, off by default.
_TASK_ARTIFACT = re.compile(r"\$\(tasks\.([^.]+)\.(?:inputs|outputs)\.([^.)]+)\)")


# --- a decoded view of the parts we need ---------------------------------------------------------


@dataclass
class ParamValue:
    """A Param's value as Tekton's ParamValue.UnmarshalJSON decodes it."""

    type: str
    string: str = ""
    array: list[str] = field(default_factory=list)
    obj: dict[str, str] = field(default_factory=dict)

    def strings(self, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
        """Every string of the value with its path (the order of extractValues)."""
        if self.type == PARAM_ARRAY:
            for i, v in enumerate(self.array):
                yield (*path, i), v
        elif self.type == PARAM_OBJECT:
            for k, v in self.obj.items():
                yield (*path, k), v
        else:
            yield path, self.string


def decode_value(raw: Any) -> ParamValue:
    kind = value_type(raw)
    if kind == PARAM_ARRAY:
        return ParamValue(PARAM_ARRAY, array=["" if v is None else v for v in raw])
    if kind == PARAM_OBJECT:
        return ParamValue(PARAM_OBJECT, obj={k: "" if v is None else v for k, v in raw.items()})
    if isinstance(raw, str):
        return ParamValue(PARAM_STRING, string=raw)
    if raw is None:
        return ParamValue(PARAM_STRING)
    # Numbers, booleans and mixed lists keep their JSON text, as Go does when []string fails.
    return ParamValue(PARAM_STRING, string=json.dumps(raw, separators=(",", ":")))


@dataclass
class Param:
    name: str
    value: ParamValue
    path: YamlPath  # of the param entry

    @property
    def value_path(self) -> YamlPath:
        return (*self.path, "value")

    def expressions(self) -> list[str]:
        out: list[str] = []
        for _, s in self.value.strings(self.value_path):
            out.extend(var_sub_expressions(s))
        return out


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def decode_params(data: Any, path: YamlPath) -> list[Param]:
    if not isinstance(data, list):
        return []
    return [
        Param(_str(p.get("name")), decode_value(p.get("value")), (*path, i))
        for i, p in enumerate(data)
        if isinstance(p, dict)
    ]


@dataclass
class When:
    path: YamlPath
    data: dict[str, Any]

    @property
    def input(self) -> str:
        return _str(self.data.get("input"))

    @property
    def values(self) -> list[str]:
        vals = self.data.get("values")
        return [v if isinstance(v, str) else str(v) for v in vals] if isinstance(vals, list) else []

    def expressions(self) -> list[str]:
        out = var_sub_expressions(self.input)
        for v in self.values:
            out.extend(var_sub_expressions(v))
        return out


@dataclass
class PipelineTask:
    section: str  # "tasks" or "finally"
    index: int
    path: YamlPath
    data: dict[str, Any]
    name: str = ""
    params: list[Param] = field(default_factory=list)
    matrix_params: list[Param] = field(default_factory=list)
    include_params: list[list[Param]] = field(default_factory=list)
    when: list[When] = field(default_factory=list)

    @classmethod
    def decode(cls, section: str, index: int, path: YamlPath, data: dict[str, Any]) -> PipelineTask:
        pt = cls(section, index, path, data, name=_str(data.get("name")))
        pt.params = decode_params(data.get("params"), (*path, "params"))
        matrix = data.get("matrix")
        if isinstance(matrix, dict):
            pt.matrix_params = decode_params(matrix.get("params"), (*path, "matrix", "params"))
            include = matrix.get("include")
            if isinstance(include, list):
                pt.include_params = [
                    decode_params(inc.get("params"), (*path, "matrix", "include", i, "params"))
                    for i, inc in enumerate(include)
                    if isinstance(inc, dict)
                ]
        when = data.get("when")
        if isinstance(when, list):
            pt.when = [
                When((*path, "when", i), w) for i, w in enumerate(when) if isinstance(w, dict)
            ]
        return pt

    @property
    def is_matrixed(self) -> bool:
        return bool(self.matrix_params) or bool(self.include_params)

    def all_params(self) -> list[Param]:
        """Tekton's extractAllParams: params, matrix params, matrix include params."""
        out = list(self.params)
        out.extend(self.matrix_params)
        for inc in self.include_params:
            out.extend(inc)
        return out

    def dict_field(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        return value if isinstance(value, dict) else None

    def step_expressions(self) -> list[str]:
        """`$(...)` expressions in an embedded taskSpec's steps and sidecars."""
        spec = self.dict_field("taskSpec")
        if spec is None:
            return []
        out: list[str] = []
        for key in ("steps", "sidecars"):
            containers = spec.get(key)
            if not isinstance(containers, list):
                continue
            for c in containers:
                if isinstance(c, dict):
                    for s in _container_strings(c):
                        out.extend(var_sub_expressions(s))
        return out


def _container_strings(c: dict[str, Any]) -> Iterator[str]:
    for key in ("name", "image", "imagePullPolicy", "script", "workingDir"):
        yield _str(c.get(key))
    for key in ("command", "args"):
        items = c.get(key)
        if isinstance(items, list):
            yield from (_str(v) for v in items)
    env = c.get("env")
    if isinstance(env, list):
        for e in env:
            if not isinstance(e, dict):
                continue
            yield _str(e.get("value"))
            source = e.get("valueFrom")
            if isinstance(source, dict):
                for ref in ("secretKeyRef", "configMapKeyRef"):
                    r = source.get(ref)
                    if isinstance(r, dict):
                        yield _str(r.get("name"))
                        yield _str(r.get("key"))
    mounts = c.get("volumeMounts")
    if isinstance(mounts, list):
        for m in mounts:
            if isinstance(m, dict):
                yield _str(m.get("name"))
                yield _str(m.get("mountPath"))
                yield _str(m.get("subPath"))


# --- result references ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultRef:
    task: str
    result: str
    expression: str


def looks_like_result_ref(expression: str) -> bool:
    parts = expression.split(".")
    return len(parts) >= 4 and parts[0] in ("tasks", "finally") and parts[2] == "results"


def parse_result_ref(expression: str) -> ResultRef | None:
    """Tekton's ParseTaskExpression: `tasks.T.results.R[i]` or `tasks.T.results.R.key`."""
    if not looks_like_result_ref(expression):
        return None
    parts = expression.split(".")
    if len(parts) == 4:
        return ResultRef(parts[1], trim_array_index(parts[3]), expression)
    if len(parts) == 5:
        return ResultRef(parts[1], parts[3], expression)
    return None


def result_refs(expressions: list[str]) -> list[ResultRef]:
    return [r for r in (parse_result_ref(e) for e in expressions) if r is not None]


def contains_result_refs(expressions: list[str]) -> bool:
    return any(looks_like_result_ref(e) for e in expressions)


# --- the checker ---------------------------------------------------------------------------------


@dataclass
class ParamScope:
    """The pipeline's params as validatePipelineTaskParameterUsage sees them."""

    names: set[str]
    arrays: set[str]
    object_keys: dict[str, list[str]]  # only object params that declare properties


class PipelineChecker:
    def __init__(self, doc: Document, path: YamlPath) -> None:
        self.doc = doc
        self.path = path
        self.ctx = Ctx(doc)
        obj = doc.get(path)
        self.obj: dict[str, Any] = obj if isinstance(obj, dict) else {}
        self.api_version = _str(self.obj.get("apiVersion")) or "tekton.dev/v1"
        self.spec_path: YamlPath = (*path, "spec")
        spec = doc.get(self.spec_path)
        self.spec: dict[str, Any] = spec if isinstance(spec, dict) else {}
        self.tasks = self._decode_tasks("tasks")
        self.finally_ = self._decode_tasks("finally")
        self.task_names = {t.name for t in self.tasks}
        self.finally_names = {t.name for t in self.finally_}
        params = self.spec.get("params")
        self.param_list: list[tuple[int, dict[str, Any]]] = (
            [(i, p) for i, p in enumerate(params) if isinstance(p, dict)]
            if isinstance(params, list)
            else []
        )

    def _decode_tasks(self, section: str) -> list[PipelineTask]:
        items = self.spec.get(section)
        if not isinstance(items, list):
            return []
        return [
            PipelineTask.decode(section, i, (*self.spec_path, section, i), t)
            for i, t in enumerate(items)
            if isinstance(t, dict)
        ]

    def error(self, rule: str, path: YamlPath, message: str, *, at_key: bool = False) -> None:
        # PipelineSpec.Validate's field paths are relative to the spec; Pipeline.Validate adds
        # "spec." to each (knative's ViaField), and so do we, in this one place.
        self.ctx.error(rule, path, via_field("spec", message), at_key=at_key)

    # -- entry point

    def run(self) -> list[Finding]:
        self.check_metadata()
        self.check_empty_spec()
        self.check_pipeline_tasks()
        self.check_pipeline_resources()
        self.check_graph()
        self.check_param_specs()
        self.check_context_variables(self.tasks)
        self.check_context_variables(self.finally_)
        self.check_execution_status()
        self.check_workspace_declarations()
        self.check_results()
        self.check_tasks_and_finally()
        self.check_final_tasks()
        self.check_when_expressions()
        self.check_artifacts()
        self.check_matrix(self.tasks)
        self.check_matrix(self.finally_)
        self.check_param_usage()
        self.check_object_params_have_properties()
        self.check_workspace_usage()
        self.check_var_substitution_prefixes(self.tasks)
        self.check_var_substitution_prefixes(self.finally_)
        return self.ctx.findings

    # -- metadata

    def check_metadata(self) -> None:
        meta_path = (*self.path, "metadata")
        meta = self.doc.get(meta_path)
        meta = meta if isinstance(meta, dict) else {}
        name = meta.get("name")
        name_path = (*meta_path, "name")
        if name is None and meta.get("generateName"):
            return  # the API server picks the name before admission
        name = _str(name)
        if dns1123_subdomain_errors(name):
            self.error(
                "tekton.name",
                name_path,
                f"invalid resource name {go_quote(name)}: must be a valid DNS label: metadata.name",
            )
        elif len(name) > MAX_NAME_LENGTH:
            self.error(
                "tekton.name",
                name_path,
                "Invalid resource name: length must be no more than 63 characters: metadata.name",
            )

    # -- spec

    def check_empty_spec(self) -> None:
        if all(_is_empty(v) for v in self.spec.values()):
            self.error(
                "tekton.empty-spec",
                self.spec_path,
                "expected at least one, got none: spec.description, spec.params, "
                "spec.resources, spec.tasks, spec.workspaces",
            )

    def check_pipeline_resources(self) -> None:
        """v1beta1 still decodes PipelineResources, then refuses them (v1 has no such field)."""
        if not self.api_version.endswith("v1beta1"):
            return
        if _non_empty_list(self.spec.get("resources")):
            self.error(
                "tekton.disallowed-field",
                (*self.spec_path, "resources"),
                "must not set the field(s): spec.resources",
                at_key=True,
            )
        for pt in [*self.tasks, *self.finally_]:
            if pt.data.get("resources") is not None:
                self.error(
                    "tekton.disallowed-field",
                    (*pt.path, "resources"),
                    f"must not set the field(s): spec.{pt.section}[{pt.index}].resources",
                    at_key=True,
                )

    def check_pipeline_tasks(self) -> None:
        seen: set[str] = set()
        for pt in [*self.tasks, *self.finally_]:
            name_path = (*pt.path, "name")
            if dns1123_label_errors(pt.name):
                self.error(
                    "tekton.name",
                    name_path,
                    f"invalid value {go_quote(pt.name)}: {pt.section}[{pt.index}].name\n"
                    "Pipeline Task name must be a valid DNS Label.For more info refer to "
                    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#names",
                )
            if pt.name in seen:
                self.error(
                    "tekton.duplicate-task",
                    name_path,
                    f"expected exactly one, got both: {pt.section}[{pt.index}].name\n"
                    f"pipeline task {go_quote(pt.name)} is defined more than once",
                )
            seen.add(pt.name)
            self.check_pipeline_task(pt)

    def check_pipeline_task(self, pt: PipelineTask) -> None:
        where = f"{pt.section}[{pt.index}]"
        present = [
            k
            for k in ("taskRef", "taskSpec", "pipelineRef", "pipelineSpec")
            if pt.data.get(k) is not None
        ]
        for k in ("pipelineRef", "pipelineSpec"):
            if k in present:
                self.error("tekton.feature-gate", (*pt.path, k), f"{k} {ALPHA_OFF}", at_key=True)
        if len(present) > 1:
            self.error(
                "tekton.task-ref",
                pt.path,
                "expected exactly one, got multiple: " + ", ".join(f"{where}.{k}" for k in present),
            )
        elif not present:
            self.error(
                "tekton.task-ref",
                pt.path,
                f"expected exactly one, got neither: {where}.taskRef, {where}.taskSpec",
            )
        ref = pt.dict_field("taskRef")
        spec = pt.dict_field("taskSpec")
        if spec is not None and _non_empty_list(spec.get("steps")):
            for k in ("apiVersion", "kind"):
                if _str(spec.get(k)):
                    self.error(
                        "tekton.task-ref",
                        (*pt.path, "taskSpec", k),
                        f"taskSpec.{k} cannot be specified when using taskSpec.steps: "
                        f"{pt.section}[{pt.index}].taskSpec.{k}",
                    )
        self.check_on_error(pt)
        kinds = TASK_KINDS
        custom = (
            ref is not None and (_str(ref.get("kind")) not in kinds or _str(ref.get("apiVersion")))
        ) or (
            spec is not None
            and (_str(spec.get("kind")) not in kinds or _str(spec.get("apiVersion")))
        )
        if custom:
            self.check_custom_task(pt, ref, spec)
            return
        if spec is not None:
            self.findings_from_task_spec(pt)
        if ref is not None:
            self.check_task_ref(pt, ref)

    def check_on_error(self, pt: PipelineTask) -> None:
        on_error = pt.data.get("onError")
        if not isinstance(on_error, str) or not on_error or on_error.startswith("$(params"):
            return
        path = (*pt.path, "onError")
        if on_error not in ON_ERROR_VALUES:
            self.error(
                "tekton.on-error",
                path,
                f"invalid value: {on_error}: {pt.section}[{pt.index}].OnError\n"
                'PipelineTask OnError must be either "continue" or "stopAndFail"',
            )
        retries = pt.data.get("retries")
        if (
            on_error == "continue"
            and isinstance(retries, int)
            and not isinstance(retries, bool)
            and retries > 0
        ):
            self.error(
                "tekton.on-error",
                path,
                'PipelineTask OnError cannot be set to "continue" when Retries is greater than 0',
            )

    def check_custom_task(
        self, pt: PipelineTask, ref: dict[str, Any] | None, spec: dict[str, Any] | None
    ) -> None:
        for key, obj, label in (("taskRef", ref, "ref"), ("taskSpec", spec, "spec")):
            if obj is None:
                continue
            kind = _str(obj.get("kind"))
            if key == "taskRef" and not kind and not _str(obj.get("resolver")):
                kind = "Task"  # PipelineTask.SetDefaults, before Validate
            if not kind:
                self.error(
                    "tekton.custom-task",
                    (*pt.path, key),
                    f"invalid value: custom task {label} must specify kind: "
                    f"{pt.section}[{pt.index}].{key}.kind",
                )
            api_version = _str(obj.get("apiVersion"))
            if not api_version:
                self.error(
                    "tekton.custom-task",
                    (*pt.path, key),
                    f"invalid value: custom task {label} must specify apiVersion: "
                    f"{pt.section}[{pt.index}].{key}.apiVersion",
                )
            elif not _valid_api_version(api_version):
                # v1 and v1beta1 alike (v1.14) check the "group/version" shape.
                self.error(
                    "tekton.custom-task",
                    (*pt.path, key, "apiVersion"),
                    f"invalid value: invalid apiVersion format {go_quote(api_version)}, must be "
                    f'in the format "group/version": {pt.section}[{pt.index}].{key}.apiVersion',
                )

    def check_task_ref(self, pt: PipelineTask, ref: dict[str, Any]) -> None:
        """Tekton's validateRef (container_validation.go) for a pipeline task's taskRef."""
        path = (*pt.path, "taskRef")
        where = f"{pt.section}[{pt.index}].taskRef"
        name = _str(ref.get("name"))
        resolver = _str(ref.get("resolver"))
        params = ref.get("params")
        concise = (
            "feature flag enable-concise-resolver-syntax should be set to true to use "
            "concise resolver syntax"
        )
        if _str(ref.get("bundle")):
            # v1beta1 only (v1 has no such field): OCI bundle refs are refused on create.
            self.error(
                "tekton.task-ref",
                (*path, "bundle"),
                f"must not set the field(s): {where}.bundle",
                at_key=True,
            )
        if resolver or params is not None:
            if params is not None:
                if name:
                    self.error(
                        "tekton.task-ref",
                        path,
                        f"expected exactly one, got both: {where}.name, {where}.params",
                    )
                if not resolver:
                    self.error("tekton.task-ref", path, f"missing field(s): {where}.resolver")
                seen: set[str] = set()
                for p in decode_params(params, (*path, "params")):
                    if p.name in seen:
                        self.error(
                            "tekton.duplicate-param",
                            (*p.path, "name"),
                            f"expected exactly one, got both: {where}.params[{p.name}].name",
                        )
                    seen.add(p.name)
            if resolver and name:
                # With a resolver, a name is only the concise syntax's URL (an alpha feature).
                if ref_name_like_url(name):
                    self.error("tekton.feature-gate", (*path, "name"), f"{concise}: {where}")
                else:
                    self.error(
                        "tekton.task-ref",
                        (*path, "name"),
                        f"invalid value: invalid URI for request: {where}.name",
                    )
        elif not name:
            self.error("tekton.task-ref", path, f"missing field(s): {where}.name")
        elif ref_name_like_url(name):
            self.error("tekton.feature-gate", (*path, "name"), f"{concise}: {where}")
            self.error("tekton.task-ref", path, f"missing field(s): {where}.resolver")
        else:
            errs = qualified_name_errors(name)
            if errs:
                self.error(
                    "tekton.task-ref",
                    (*path, "name"),
                    f"invalid value: {','.join(errs)}: {where}.name",
                )

    def findings_from_task_spec(self, pt: PipelineTask) -> None:
        self.ctx.findings.extend(
            check_task_spec(
                self.doc,
                (*pt.path, "taskSpec"),
                api_version=self.api_version,
                pipeline_params=self.pipeline_param_specs(),
            )
        )

    def pipeline_param_specs(self) -> dict[str, dict[str, Any]]:
        """name -> ParamSpec mapping of the pipeline's params (first declaration wins)."""
        out: dict[str, dict[str, Any]] = {}
        for _, p in self.param_list:
            name = _str(p.get("name"))
            out.setdefault(name, p)
        return out

    # -- graph

    def check_graph(self) -> None:
        names: set[str] = set()
        for pt in self.tasks:
            if pt.name in names:
                self.error(
                    "tekton.duplicate-task",
                    (*pt.path, "name"),
                    f"invalid value: task {pt.name} is already present in Graph, can't add it "
                    "again: duplicate pipeline task: tasks",
                )
                return
            names.add(pt.name)
        deps: dict[str, list[str]] = {}
        origins: dict[tuple[str, str], tuple[str, YamlPath]] = {}
        for pt in self.tasks:
            d: list[str] = []
            refs = self.task_result_refs(pt)
            for ref, path in refs:
                if ref.task not in d:
                    d.append(ref.task)
                origins.setdefault((pt.name, ref.task), ("tekton.result-reference", path))
            run_after = pt.data.get("runAfter")
            if isinstance(run_after, list):
                for i, raw in enumerate(run_after):
                    r = _str(raw)
                    if r not in d:
                        d.append(r)
                    origins.setdefault(
                        (pt.name, r), ("tekton.run-after", (*pt.path, "runAfter", i))
                    )
            if d:
                deps[pt.name] = d
        cycle = _find_cycle(deps)
        if cycle is not None:
            task, on = cycle
            by_name = {t.name: t for t in self.tasks}
            self.error(
                "tekton.cycle",
                (*by_name[task].path, "name") if task in by_name else (*self.spec_path, "tasks"),
                f"invalid value: cycle detected; task {go_quote(task)} depends on "
                + ", ".join(go_quote(n) for n in on)
                + ": tasks",
            )
            return
        for task, prevs in deps.items():
            for prev in prevs:
                if prev not in names:
                    rule, path = origins[(task, prev)]
                    self.error(
                        rule,
                        path,
                        f"invalid value: couldn't add link between {task} and {prev}: task "
                        f"{task} depends on {prev} but {prev} wasn't present in Pipeline: tasks",
                    )

    def task_result_refs(self, pt: PipelineTask) -> list[tuple[ResultRef, YamlPath]]:
        """Tekton's PipelineTaskResultRefs, with where each reference was written."""
        out: list[tuple[ResultRef, YamlPath]] = []
        for p in pt.all_params():
            out.extend((r, p.value_path) for r in result_refs(p.expressions()))
        for w in pt.when:
            out.extend((r, w.path) for r in result_refs(w.expressions()))
        if not self.api_version.endswith("v1beta1"):
            # v1 also walks embedded steps and sidecars (pt.GetVarSubstitutionExpressions);
            # v1beta1's PipelineTaskResultRefs stops at params and when expressions.
            out.extend((r, (*pt.path, "taskSpec")) for r in result_refs(pt.step_expressions()))
        return out

    # -- params

    def check_param_specs(self) -> None:
        params_path = (*self.spec_path, "params")
        seen: set[str] = set()
        for i, p in self.param_list:
            path = (*params_path, i)
            name = _str(p.get("name"))
            ptype = param_spec_type(p)
            if ptype not in PARAM_TYPES:
                self.error(
                    "tekton.param-type",
                    (*path, "type"),
                    f"invalid value: {ptype}: params.{name}.type",
                )
            elif p.get("default") is not None and value_type(p["default"]) != ptype:
                self.error(
                    "tekton.param-type",
                    (*path, "default"),
                    f'"{ptype}" type does not match default value\'s type: '
                    f'"{value_type(p["default"])}": params.{name}.default.type, '
                    f"params.{name}.type",
                )
            else:
                props = p.get("properties")
                if isinstance(props, dict):
                    bad = [
                        k
                        for k, v in props.items()
                        if _str(v.get("type") if isinstance(v, dict) else None)
                        not in ("", PARAM_STRING)
                    ]
                    if bad:
                        self.error(
                            "tekton.param-type",
                            (*path, "properties"),
                            f"The value type specified for these keys [{' '.join(bad)}] is "
                            f"invalid: params.{name}.properties",
                        )
            if name in seen:
                self.error(
                    "tekton.duplicate-param",
                    (*path, "name"),
                    f"parameter appears more than once: params[{name}]",
                )
            seen.add(name)
            self.check_param_enum(p, path, name, ptype)
        for pt in [*self.tasks, *self.finally_]:
            self.check_duplicate_params(pt.params, f"{pt.section}[{pt.index}].params")

    def check_param_enum(self, p: dict[str, Any], path: YamlPath, name: str, ptype: str) -> None:
        enum = p.get("enum")
        if not isinstance(enum, list) or not enum:
            return
        enum_path = (*path, "enum")
        self.error(
            "tekton.feature-gate",
            enum_path,
            f"feature flag `enable-param-enum` should be set to true to use Enum: params[{name}]",
        )
        if ptype != PARAM_STRING:
            self.error(
                "tekton.param-enum",
                enum_path,
                f"enum can only be set with string type param: params.{name}",
            )
        seen: set[str] = set()
        for i, raw in enumerate(enum):
            v = raw if isinstance(raw, str) else repr(raw)  # a non-string fails decoding anyway
            if v in seen:
                self.error(
                    "tekton.param-enum",
                    (*enum_path, i),
                    f"parameter enum value {v} appears more than once: params.{name}",
                )
            seen.add(v)
        default = p.get("default")
        if isinstance(default, str) and default and default not in enum:
            self.error(
                "tekton.param-enum",
                (*path, "default"),
                f"param default value {default} not in the enum list: params.{name}",
            )

    def check_duplicate_params(self, params: list[Param], where: str) -> None:
        seen: set[str] = set()
        for i, p in enumerate(params):
            if p.name in seen:
                self.error(
                    "tekton.duplicate-param",
                    (*p.path, "name"),
                    f'parameter names must be unique, the parameter "{p.name}" is also defined '
                    f"at: {where}[{i}].name",
                )
            seen.add(p.name)

    def check_context_variables(self, tasks: list[PipelineTask]) -> None:
        # Tekton checks the param values of the last pipeline task only (the loop overwrites
        # its list on every iteration); checking more would flag pipelines Tekton accepts.
        if not tasks:
            return
        pt = tasks[-1]
        for p in pt.all_params():
            for path, value in p.value.strings(p.value_path):
                for prefix, names in (
                    (r"context\.pipelineRun", {"name", "namespace", "uid"}),
                    (r"context\.pipeline", {"name"}),
                    (r"context\.pipelineTask", {"retries"}),
                ):
                    msg = unknown_references(value, prefix, names)
                    if msg:
                        # Tekton's path, as it writes it: the task list, then "value" (neither
                        # the task nor the param; the finding's line and column say which).
                        self.error("tekton.context-variable", path, f"{msg}: {pt.section}.value")

    def check_execution_status(self) -> None:
        for pt in self.tasks:
            for where, at, exprs in self._status_sites(pt):
                if contains_result_refs(exprs):
                    continue
                if any(_is_status_ref(e) for e in exprs):
                    self.error(
                        "tekton.execution-status",
                        where,
                        "invalid value: pipeline tasks can not refer to execution status of any "
                        f"other pipeline task or aggregate status of tasks: {at}",
                    )
        for pt in self.finally_:
            for where, at, exprs in self._status_sites(pt):
                if contains_result_refs(exprs):
                    continue
                for e in exprs:
                    if e == "tasks.status" or not _is_status_ref(e):
                        continue
                    suffix = ".status" if e.endswith(".status") else ".reason"
                    name = e.removeprefix("tasks.").removesuffix(suffix)
                    if name not in self.task_names:
                        self.error(
                            "tekton.execution-status",
                            where,
                            f"invalid value: pipeline task {name} is not defined in the pipeline: "
                            f"{at}",
                        )

    def _status_sites(self, pt: PipelineTask) -> Iterator[tuple[YamlPath, str, list[str]]]:
        """(where in the YAML, the field path Tekton names, the `$(...)` expressions)."""
        for p in pt.params:
            yield p.value_path, f"{pt.section}[{pt.index}].params[{p.name}].value", p.expressions()
        for w in pt.when:
            yield w.path, f"{pt.section}[{pt.index}].when[{w.path[-1]}]", w.expressions()

    # -- workspaces

    def check_workspace_declarations(self) -> None:
        wss = self.spec.get("workspaces")
        if not isinstance(wss, list):
            return
        seen: set[str] = set()
        for i, ws in enumerate(wss):
            if not isinstance(ws, dict):
                continue
            path = (*self.spec_path, "workspaces", i)
            name = _str(ws.get("name"))
            if not name:
                self.error(
                    "tekton.workspace",
                    path,
                    f"invalid value: workspace {i} has empty name: workspaces[{i}]",
                )
            if name in seen:
                self.error(
                    "tekton.workspace",
                    (*path, "name"),
                    f"invalid value: workspace with name {go_quote(name)} appears more than "
                    f"once: workspaces[{i}]",
                )
            seen.add(name)

    def declared_workspaces(self) -> set[str]:
        wss = self.spec.get("workspaces")
        if not isinstance(wss, list):
            return set()
        return {_str(ws.get("name")) for ws in wss if isinstance(ws, dict)}

    def check_workspace_usage(self) -> None:
        declared = self.declared_workspaces()
        for pt in [*self.tasks, *self.finally_]:
            bindings = pt.data.get("workspaces")
            if not isinstance(bindings, list):
                continue
            seen: set[str] = set()
            for i, ws in enumerate(bindings):
                if not isinstance(ws, dict):
                    continue
                path = (*pt.path, "workspaces", i)
                name = _str(ws.get("name"))
                if name in seen:
                    self.error(
                        "tekton.workspace",
                        (*path, "name"),
                        f"workspace name {go_quote(name)} must be unique: "
                        f"{pt.section}[{pt.index}].workspaces[{i}]",
                    )
                target = _str(ws.get("workspace")) or name
                if target not in declared:
                    self.error(
                        "tekton.workspace",
                        (*path, "workspace") if _str(ws.get("workspace")) else (*path, "name"),
                        f"invalid value: pipeline task {go_quote(pt.name)} expects workspace "
                        f"with name {go_quote(target)} but none exists in pipeline spec: "
                        f"{pt.section}[{pt.index}].workspaces[{i}]",
                    )
                seen.add(name)

    # -- results

    def check_results(self) -> None:
        results = self.spec.get("results")
        if not isinstance(results, list):
            return
        for i, r in enumerate(results):
            if not isinstance(r, dict):
                continue
            path = (*self.spec_path, "results", i, "value")
            value = decode_value(r.get("value"))
            exprs: list[str] = []
            for _, s in value.strings(path):
                exprs.extend(var_sub_expressions(s))
            where = f"results[{i}].value"
            if not exprs:
                self.error(
                    "tekton.pipeline-result",
                    path,
                    "invalid value: expected pipeline results to be task result expressions but "
                    f"no expressions were found: {where}",
                )
            if not contains_result_refs(exprs):
                self.error(
                    "tekton.pipeline-result",
                    path,
                    "invalid value: expected pipeline results to be task result expressions but "
                    f"an invalid expressions was found: {where}",
                )
            ref_like = [e for e in exprs if looks_like_result_ref(e)]
            if len(ref_like) != len(result_refs(ref_like)):
                self.error(
                    "tekton.pipeline-result",
                    path,
                    f"invalid value: expected all of the expressions [{' '.join(ref_like)}] to be "
                    f"result expressions but only some were: {where}",
                )
            if not self._result_names_existing_task(
                value.string if value.type == PARAM_STRING else ""
            ):
                self.error(
                    "tekton.pipeline-result",
                    path,
                    f"invalid value: referencing a nonexistent task: {where}",
                )

    def _result_names_existing_task(self, text: str) -> bool:
        # Tekton's taskContainsResult: split on "$" and parse every piece, literal text included.
        for piece in text.split("$"):
            if not piece:
                continue
            value = ("$" + piece).removeprefix("$(").removesuffix(")")
            ref = parse_result_ref(value)
            if ref is None:
                return False
            if value.startswith("tasks") and ref.task not in self.task_names:
                return False
            if value.startswith("finally") and ref.task not in self.finally_names:
                return False
        return True

    # -- finally

    def check_tasks_and_finally(self) -> None:
        if self.finally_ and not self.tasks:
            self.error(
                "tekton.finally",
                (*self.spec_path, "finally"),
                f"invalid value: spec.tasks is empty but spec.finally has {len(self.finally_)} "
                "tasks: finally",
                at_key=True,
            )

    def check_final_tasks(self) -> None:
        for pt in self.finally_:
            if _non_empty_list(pt.data.get("runAfter")):
                self.error(
                    "tekton.finally",
                    (*pt.path, "runAfter"),
                    "invalid value: no runAfter allowed under spec.finally, final task "
                    f"{pt.name} has runAfter specified: finally[{pt.index}]",
                    at_key=True,
                )
        for pt in self.finally_:
            for where, at, exprs in self._status_sites(pt):
                if not contains_result_refs(exprs):
                    continue
                for ref in result_refs(exprs):
                    if ref.task in self.finally_names:
                        self.error(
                            "tekton.finally",
                            where,
                            "invalid value: invalid task result reference, final task has task "
                            f"result reference from a final task {ref.task}: {at}",
                        )
                    elif ref.task not in self.task_names:
                        self.error(
                            "tekton.result-reference",
                            where,
                            "invalid value: invalid task result reference, final task has task "
                            f"result reference from a task {ref.task} which is not defined in "
                            f"the pipeline: {at}",
                        )

    # -- when

    def check_when_expressions(self) -> None:
        for pt in [*self.tasks, *self.finally_]:
            for w in pt.when:
                where = f"{pt.section}[{pt.index}].when[{w.path[-1]}]"
                cel = _str(w.data.get("cel"))
                if cel:
                    self.error(
                        "tekton.feature-gate",
                        (*w.path, "cel"),
                        f"feature flag enable-cel-in-whenexpression should be set to true to use "
                        f"CEL: {cel} in WhenExpression: {where}",
                    )
                    continue
                operator = _str(w.data.get("operator"))
                if not w.input and not operator and not _non_empty_list(w.data.get("values")):
                    self.error("tekton.when", w.path, f"missing field(s): {where}")
                elif operator not in WHEN_OPERATORS:
                    self.error(
                        "tekton.when",
                        (*w.path, "operator") if "operator" in w.data else w.path,
                        f"invalid value: operator {go_quote(operator)} is not recognized. valid "
                        f"operators: in,notin: {where}",
                    )
                elif not _non_empty_list(w.data.get("values")):
                    self.error(
                        "tekton.when",
                        (*w.path, "values") if "values" in w.data else w.path,
                        f"invalid value: expecting non-empty values field: {where}",
                    )

    # -- variable prefixes (validateVarSubstitutionExpressions)

    def check_var_substitution_prefixes(self, tasks: list[PipelineTask]) -> None:
        """`$(HOME)`-style references in params, when and matrix: refused, whatever the name."""

        def check(strings: Iterator[tuple[YamlPath, str]], where: str) -> None:
            for path, text in strings:
                for expression in var_sub_expressions(text):
                    if expression.split(".", 1)[0] not in VALID_VARIABLE_PREFIXES:
                        ref = go_quote(f"$({expression})")
                        self.error(
                            "tekton.variable-prefix",
                            path,
                            f"invalid value: invalid variable reference {ref}, "
                            "must start with a valid prefix: params, tasks, finally, context, "
                            "workspaces, or results; if you meant a shell variable, use ${VAR} "
                            f"instead: {where}",
                        )

        for pt in tasks:
            at = f"{pt.section}[{pt.index}]"
            for p in pt.params:
                check(p.value.strings(p.value_path), f"{at}.params[{p.name}].value")
            for w in pt.when:
                check(_when_strings(w), f"{at}.when[{w.path[-1]}]")
            if pt.is_matrixed:
                for p in pt.matrix_params:
                    check(p.value.strings(p.value_path), f"{at}.matrix.params[{p.name}].value")
                for i, inc in enumerate(pt.include_params):
                    for p in inc:
                        check(
                            p.value.strings(p.value_path),
                            f"{at}.matrix.include[{i}].params[{p.name}].value",
                        )

    # -- artifacts (alpha, off by default)

    def check_artifacts(self) -> None:
        for pt in [*self.tasks, *self.finally_]:
            for p in pt.params:
                for path, s in p.value.strings(p.value_path):
                    if _TASK_ARTIFACT.search(s):
                        self.error(
                            "tekton.feature-gate",
                            path,
                            "feature flag enable-artifacts should be set to true to use "
                            f"artifacts feature.: {pt.section}[{pt.index}].params",
                        )
                        return

    # -- matrix

    def check_matrix(self, tasks: list[PipelineTask]) -> None:
        for pt in tasks:
            where = f"{pt.section}[{pt.index}]"
            matrix_path = (*pt.path, "matrix")
            if pt.is_matrixed:
                count = _count_combinations(pt)
                if count > MAX_MATRIX_COMBINATIONS:
                    self.error(
                        "tekton.matrix",
                        matrix_path,
                        f"expected 0 <= {count} <= {MAX_MATRIX_COMBINATIONS}: {where}.matrix",
                    )
                for i, inc in enumerate(pt.include_params):
                    self.check_duplicate_params(inc, f"{where}.matrix.include[{i}].params")
                self.check_duplicate_params(pt.matrix_params, f"{where}.matrix.params")
            matrix_names = {p.name for p in pt.all_params()[len(pt.params) :]}
            for p in pt.params:
                if p.name in matrix_names:
                    self.error(
                        "tekton.matrix",
                        (*p.path, "name"),
                        f"expected exactly one, got both: {where}.matrix[{p.name}], "
                        f"{where}.params[{p.name}]",
                    )
        self.check_matrix_results_consumed(tasks)

    def check_matrix_results_consumed(self, tasks: list[PipelineTask]) -> None:
        by_name = {t.name: t for t in tasks}
        last_refs: list[ResultRef] = []
        for pt in tasks:
            for p in pt.params:
                exprs = p.expressions()
                if not contains_result_refs(exprs):
                    continue
                refs: list[ResultRef] = []
                failed = False
                for e in exprs:
                    if not looks_like_result_ref(e):
                        continue
                    consumed = by_name.get(e.split(".")[1])
                    if consumed is None or not consumed.is_matrixed:
                        continue
                    if not e.endswith("[*]"):
                        failed = True
                        self.error(
                            "tekton.matrix",
                            p.value_path,
                            "A matrixed pipelineTask can only be consumed in aggregate using [*] "
                            f"notation, but is currently set to {e}",
                        )
                    ref = parse_result_ref(e)
                    if ref is not None:
                        refs.append(ref)
                if failed:
                    return  # Tekton stops at the first parameter in error
                last_refs = refs
        for ref in last_refs:
            producer = by_name.get(ref.task)
            if producer is None:
                continue
            spec = producer.dict_field("taskSpec")
            ref_task = producer.dict_field("taskRef")
            if ref_task is not None:
                target = by_name.get(_str(ref_task.get("name")))
                spec = target.dict_field("taskSpec") if target is not None else None
            if spec is None:
                continue
            results = spec.get("results")
            if not isinstance(results, list):
                continue
            for r in results:
                if not isinstance(r, dict) or _str(r.get("name")) != ref.result:
                    continue
                rtype = _str(r.get("type")) or (
                    PARAM_OBJECT if r.get("properties") is not None else PARAM_STRING
                )
                if rtype != PARAM_STRING:
                    self.error(
                        "tekton.matrix",
                        producer.path,
                        "invalid value: Matrixed PipelineTasks emitting results must have an "
                        f"underlying type string, but result {ref.result} has type {rtype} in "
                        "pipelineTask: tasks",
                    )

    # -- param usage (validatePipelineParameterUsage)

    def param_scope(self) -> ParamScope:
        names: set[str] = set()
        arrays: set[str] = set()
        object_keys: dict[str, list[str]] = {}
        for _, p in self.param_list:
            name = _str(p.get("name"))
            names.add(name)
            ptype = param_spec_type(p)
            if ptype == PARAM_ARRAY:
                arrays.add(name)
            elif ptype == PARAM_OBJECT:
                props = p.get("properties")
                if isinstance(props, dict) and props:
                    object_keys.setdefault(name, []).extend(str(k) for k in props)
        return ParamScope(names, arrays, object_keys)

    def check_param_usage(self) -> None:
        scope = self.param_scope()
        for pt in [*self.tasks, *self.finally_]:
            at = f"{pt.section}[{pt.index}]"
            for p in pt.params:
                self.check_param_value(p, scope, f"{at}.params[{p.name}]")
            if pt.is_matrixed:
                for inc in pt.include_params:
                    for j, p in enumerate(inc):
                        # Tekton names the include entry's param by its index, not the entry.
                        self.report(
                            p.value_path,
                            self.string_variable(p.value.string, scope),
                            f"{at}.matrix.include.params[{j}]",
                        )
                for p in pt.matrix_params:
                    if p.value.type == PARAM_ARRAY:
                        for i, v in enumerate(p.value.array):
                            self.report(
                                (*p.value_path, i),
                                self.array_variable(v, scope),
                                f"{at}.matrix.params[{p.name}].value[{i}]",
                            )
            for w in pt.when:
                when = f"{at}.when[{w.path[-1]}]"
                self.report(
                    (*w.path, "input"), self.string_variable(w.input, scope), f"{when}.input"
                )
                for i, v in enumerate(w.values):
                    ref = v.removeprefix("$(params.").removesuffix("[*])")
                    check = self.array_variable if ref in scope.arrays else self.string_variable
                    self.report((*w.path, "values", i), check(v, scope), f"{when}.values[{i}]")

    def check_object_params_have_properties(self) -> None:
        """validateObjectParamsHaveProperties over the params an embedded taskSpec can see.

        Tekton validates every pipeline task with a taskSpec (custom ones too) against its own
        params plus all the Pipeline's params, so an object param without properties is refused
        as soon as one embedded spec exists; with only taskRefs it is accepted.
        """
        for pt in [*self.tasks, *self.finally_]:
            if pt.dict_field("taskSpec") is None:
                continue
            for i, p in self.param_list:
                if param_spec_type(p) == PARAM_OBJECT and p.get("properties") is None:
                    self.error(
                        "tekton.param-properties",
                        (*self.spec_path, "params", i),
                        f"missing field(s): spec.{pt.section}[{pt.index}]."
                        f"{_str(p.get('name'))}.properties",
                    )

    def check_param_value(self, p: Param, scope: ParamScope, at: str) -> None:
        """`at`: the param's path as Tekton names it (`tasks[0].params[name]`); an array
        element adds `.value[i]`, an object key `.properties[key]`."""
        v = p.value
        if v.type == PARAM_ARRAY:
            for i, s in enumerate(v.array):
                self.report((*p.value_path, i), self.array_variable(s, scope), f"{at}.value[{i}]")
        elif v.type == PARAM_OBJECT:
            for k, s in v.obj.items():
                self.report(
                    (*p.value_path, k), self.string_variable(s, scope), f"{at}.properties[{k}]"
                )
        elif is_isolated_whole_reference(v.string, "params"):
            self.report(p.value_path, [unknown_references(v.string, "params", scope.names)], at)
        else:
            self.report(p.value_path, self.string_variable(v.string, scope), at)

    def report(self, path: YamlPath, messages: list[str | None], at: str) -> None:
        for m in messages:
            if m:
                self.error("tekton.param-reference", path, f"{m}: {at}")

    def string_variable(self, value: str, scope: ParamScope) -> list[str | None]:
        if "$(" not in value:
            return []
        return [
            unknown_references(value, "params", scope.names),
            *self.object_variable(value, scope),
            prohibited_references(value, "params", scope.arrays),
        ]

    def array_variable(self, value: str, scope: ParamScope) -> list[str | None]:
        if "$(" not in value:
            return []
        return [
            unknown_references(value, "params", scope.names),
            *self.object_variable(value, scope),
            not_isolated_references(value, "params", scope.arrays),
        ]

    def object_variable(self, value: str, scope: ParamScope) -> list[str | None]:
        out: list[str | None] = [
            unknown_references(value, rf"params\.{name}", set(keys))
            for name, keys in scope.object_keys.items()
        ]
        out.append(entire_prohibited_references(value, "params", set(scope.object_keys)))
        return out


# --- small helpers -------------------------------------------------------------------------------


def _when_strings(w: When) -> Iterator[tuple[YamlPath, str]]:
    # WhenExpression.GetVarSubstitutionExpressions: input, cel, then each value.
    for key in ("input", "cel"):
        value = w.data.get(key)
        if isinstance(value, str):
            yield (*w.path, key), value
    values = w.data.get("values")
    if isinstance(values, list):
        for i, v in enumerate(values):
            if isinstance(v, str):
                yield (*w.path, "values", i), v


def _is_empty(value: Any) -> bool:
    """Empty in the sense of Kubernetes' semantic equality with a zero PipelineSpec."""
    return value is None or value in ("", [], {})


def _non_empty_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0


def _valid_api_version(value: str) -> bool:
    parts = value.split("/")
    return len(parts) == 2 and all(parts)


def _is_status_ref(expression: str) -> bool:
    return expression.startswith("tasks.") and (expression.endswith((".status", ".reason")))


def _count_combinations(pt: PipelineTask) -> int:
    count = 0
    if pt.matrix_params:
        count = 1
        for p in pt.matrix_params:
            count *= len(p.value.array)
    if pt.include_params:
        if not pt.matrix_params:
            return count + len(pt.include_params)
        arrays = {p.name: p.value.array for p in pt.matrix_params}
        for inc in pt.include_params:
            for p in inc:
                if p.name in arrays:
                    if p.value.string not in arrays[p.name]:
                        count += 1
                    else:
                        break
    return count


def _find_cycle(deps: dict[str, list[str]]) -> tuple[str, list[str]] | None:
    """Kahn's algorithm as Tekton runs it; the task Tekton names when a cycle remains."""
    remaining: dict[str, set[str]] = {t: set(d) for t, d in deps.items() if d}
    children: dict[str, set[str]] = {}
    ready: list[str] = []
    for task, d in remaining.items():
        for dep in d:
            if not deps.get(dep):
                ready.append(dep)
            children.setdefault(dep, set()).add(task)
    done: set[str] = set()
    while ready:
        parent = ready.pop()
        if parent in done:
            continue
        done.add(parent)
        for child in children.get(parent, ()):
            waiting = remaining.get(child)
            if waiting is None:
                continue
            waiting.discard(parent)
            if not waiting:
                del remaining[child]
                ready.append(child)
    if not remaining:
        return None
    first = min(remaining)
    return first, sorted(remaining[first])


def check_pipeline(doc: Document, path: YamlPath = ()) -> list[Finding]:
    """Every problem Tekton's admission webhook reports for the Pipeline at path."""
    checker = PipelineChecker(doc, path)
    findings = checker.run()
    findings.extend(check_fields(doc, path, "Pipeline", checker.api_version))
    return sorted_unique(findings)
