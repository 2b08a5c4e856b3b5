"""`workflow.*` rules: a RemediationWorkflow as the Kubernaut contract (section 2) defines it.

The structure (fields, types, enums, unknown fields) is checked by our JSON Schema,
schemas/remediationworkflow.schema.json; the rules below say what a schema cannot say well:
names against the directory, the namespace, the engine this repository uses, the bundle (absent
while authored, digest-pinned once released), and the parameter schema's internal consistency
(UPPER_SNAKE_CASE names, enum/pattern only on strings, ranges only on numbers, defaults that
satisfy their own declaration, dependsOn naming declared parameters), and, as a warning while
authored, an optional parameter without a default (workflow.optional-no-default). Each problem
is one finding, at the problem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from playbookctl import contract
from playbookctl.findings import Finding, Severity
from playbookctl.lint import re2
from playbookctl.lint.action_type import Declared
from playbookctl.lint.schema import dotted, load_schema, quote_hint, schema_findings
from playbookctl.load import Document, YamlPath
from playbookctl.oci.reference import tag_problem

KIND = "RemediationWorkflow"
SCHEMA = "remediationworkflow"
ENGINE = "tekton"
RESERVED_PARAMETERS = frozenset({"TARGET_RESOURCE"})  # Kubernaut passes it to every run
PARAM_TYPES = ("string", "integer", "boolean", "array", "float")
NUMERIC_TYPES = ("integer", "float")
# A playbook's name becomes a directory, an OCI repository path and a PipelineRun generateName
# prefix, so it is a DNS-1123 label (stricter than the subdomain Kubernetes allows for a CR).
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 63
PARAM_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
PASCAL_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
SEMVER_NUMBERS_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:[-+]|$)")
# registry[:port]/repo[/more][:tag]@sha256:<64 hex> (Kubernaut issue #89: tekton bundles must be
# pinned by digest, a tag alone is mutable).
BUNDLE_RE = re.compile(
    r"^(?P<registry>[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?)"
    r"(?P<repo>(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)+)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"@sha256:(?P<digest>[0-9a-f]{64})$"
)

# Rule ids by subject path, first match wins; a None entry is a wildcard (index or key).
_RULES: tuple[tuple[tuple[str | None, ...], str], ...] = (
    (("apiVersion",), "workflow.api-version"),
    (("kind",), "workflow.kind"),
    (("status",), "workflow.status"),
    (("metadata", "name"), "workflow.name"),
    (("metadata", "namespace"), "workflow.namespace"),
    (("metadata",), "workflow.metadata"),
    (("spec", "version"), "workflow.version"),
    (("spec", "description"), "workflow.description"),
    (("spec", "maintainers"), "workflow.maintainers"),
    (("spec", "actionType"), "workflow.action-type"),
    (("spec", "labels"), "workflow.labels"),
    (("spec", "customLabels"), "workflow.custom-labels"),
    (("spec", "detectedLabels"), "workflow.detected-labels"),
    (("spec", "execution", "engine"), "workflow.engine"),
    (("spec", "execution", "bundle"), "workflow.bundle"),
    (("spec", "execution", "bundleDigest"), "workflow.bundle"),
    (("spec", "execution", "serviceAccountName"), "workflow.service-account"),
    (("spec", "execution"), "workflow.execution"),
    (("spec", "dependencies"), "workflow.dependencies"),
    (("spec", None, None, "name"), "workflow.parameter-name"),
    (("spec", None, None, "type"), "workflow.parameter-type"),
    (("spec", None, None, "enum"), "workflow.parameter-enum"),
    (("spec", None, None, "pattern"), "workflow.parameter-pattern"),
    (("spec", None, None, "minimum"), "workflow.parameter-range"),
    (("spec", None, None, "maximum"), "workflow.parameter-range"),
    (("spec", None, None, "default"), "workflow.default"),
    (("spec", None, None, "dependsOn"), "workflow.depends-on"),
    (("spec", "parameters"), "workflow.parameters"),
    (("spec", "rollbackParameters"), "workflow.parameters"),
)
_PARAM_LISTS = ("parameters", "rollbackParameters")
# A declared name is taken for one of the agent's target parameters when its words are
# TARGET and/or RESOURCE plus the words of one target part (TARGET_NAMESPACE, RESOURCE_NS,
# TARGET_API_VERSION); other words make it a parameter of its own (SCALE_TARGET_REPLICAS).
_SUBJECT_WORDS = frozenset({"TARGET", "RESOURCE"})
_PART_WORDS = {
    "NAMESPACE": "namespace",
    "NS": "namespace",
    "NAME": "name",
    "KIND": "kind",
    "API_VERSION": "apiVersion",
    "APIVERSION": "apiVersion",
    "GROUP_VERSION": "apiVersion",
}


def target_lookalike(name: str) -> contract.FilledParameter | None:
    """The agent-filled parameter `name` was meant to be, when it is not one itself."""
    filled = contract.filled_by_part()
    if name in {p.name for p in filled.values()} or name == contract.run_parameter():
        return None
    words = name.split("_")
    if not _SUBJECT_WORDS & set(words):
        return None
    part = _PART_WORDS.get("_".join(w for w in words if w not in _SUBJECT_WORDS))
    return filled.get(part) if part else None


def rule_for(path: YamlPath, validator: str) -> str:
    if validator == "additionalProperties" and path != ("status",):
        if path[:2] == ("spec", "detectedLabels"):
            return "workflow.detected-labels"
        return "workflow.unknown-field"
    for prefix, rule in _RULES:
        if len(path) < len(prefix):
            continue
        if all(p is None or p == q for p, q in zip(prefix, path, strict=False)):
            if None in prefix and path[1] not in _PARAM_LISTS:
                continue
            return rule
    return "workflow.schema"


def _unknown_message(path: YamlPath, key: str, known: list[str]) -> str | None:
    if path == ("status",):
        return "status is written by the cluster; a manifest never carries it"
    if path[:2] == ("spec", "detectedLabels"):
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            return f"{dotted(path)}: unknown detected label; did you mean {close[0]!r}?"
        return f"{dotted(path)}: unknown detected label (known: {', '.join(known)})"
    if path == ("spec", "execution", "resources"):
        return (
            f"{dotted(path)}: not a field of the CRD "
            "(old documents show it; the API server rejects it)"
        )
    return None


def check_workflow(
    doc: Document,
    *,
    action_types: Mapping[str, object] | None,
    expected_name: str | None,
    authored: bool = True,
    namespace: str = "kubernaut-system",
    fleet: bool = False,
) -> list[Finding]:
    """Every `workflow.*` finding for one RemediationWorkflow document.

    action_types: spec.name -> ActionType of registry/action-types/ (None: do not check that
    spec.actionType exists; a Declared: not for a name a file that did not load may declare).
    expected_name: the playbook directory's name (None: not checked).
    authored: True for playbooks/<name>/workflow.yaml (the release fills spec.execution.bundle,
    so it must be absent); False for a generated registration (bundle present and pinned).
    fleet: Kubernaut runs as a fleet hub (config `fleet`): warn on a workflow without
    labels.cluster.
    """
    rules = _Rules(doc, namespace)
    data = doc.data
    if isinstance(data, dict):
        rules.metadata(expected_name)
        spec = data.get("spec")
        if isinstance(spec, dict):
            rules.version(spec)
            rules.action_type(spec, action_types)
            rules.execution(spec, authored)
            rules.dependencies(spec)
            rules.detected_labels(spec)
            if fleet:
                rules.fleet_cluster(spec)
            for key in _PARAM_LISTS:
                if isinstance(spec.get(key), list):
                    rules.parameters(("spec", key), spec[key])
            if isinstance(spec.get("parameters"), list):
                rules.agent_parameters(spec["parameters"])
                rules.depends_on_presence(spec["parameters"])
            if authored and isinstance(spec.get("parameters"), list):
                rules.optional_defaults(spec["parameters"])
    found = schema_findings(
        doc, SCHEMA, rule_for, skip=rules.claimed, unknown_message=_unknown_message
    )
    return found + rules.findings


class _Rules:
    def __init__(self, doc: Document, namespace: str) -> None:
        self.doc = doc
        self.namespace = namespace
        self.findings: list[Finding] = []
        self.claimed: list[YamlPath] = []  # paths whose schema errors these rules supersede

    def add(
        self, rule: str, path: YamlPath, message: str, *, at_key: bool = False, claim: bool = False
    ) -> None:
        self.findings.append(self.doc.finding(rule, path, message, at_key=at_key))
        if claim:
            self.claimed.append(path)

    def metadata(self, expected_name: str | None) -> None:
        name = self.doc.get(("metadata", "name"))
        path: YamlPath = ("metadata", "name")
        if isinstance(name, str):
            if not NAME_RE.match(name) or len(name) > NAME_MAX:
                self.add(
                    "workflow.name",
                    path,
                    f"metadata.name {name!r} must be a DNS-1123 label: at most {NAME_MAX} "
                    "lower-case letters, digits and '-', starting and ending alphanumeric",
                )
            elif expected_name is not None and name != expected_name:
                self.add(
                    "workflow.name",
                    path,
                    f"metadata.name {name!r} must equal the playbook directory name "
                    f"{expected_name!r}",
                )
        ns = self.doc.get(("metadata", "namespace"))
        if isinstance(ns, str) and ns != self.namespace:
            self.add(
                "workflow.namespace",
                ("metadata", "namespace"),
                f"metadata.namespace must be {self.namespace!r} (where Kubernaut looks for "
                f"RemediationWorkflows and their ActionTypes), not {ns!r}",
            )

    def version(self, spec: dict[str, Any]) -> None:
        v = spec.get("version")
        path: YamlPath = ("spec", "version")
        schema = _subschema("version")
        if not isinstance(v, str) or len(v) > schema["maxLength"]:
            return  # the schema reports these
        # the CRD's pattern admits leading zeros (01.2.3), which semver, and our ordering, do not
        if re.match(schema["pattern"], v) and (
            not SEMVER_NUMBERS_RE.match(v) or _leading_zero_prerelease(v)
        ):
            self.add(
                "workflow.version",
                path,
                f"spec.version {v!r} is not semver: numeric identifiers have no leading zeros",
            )
        elif re.match(schema["pattern"], v) and tag_problem(v) is not None:
            # Kubernaut's CRD admits build metadata, but the version is the image's and the
            # bundle's tag, checked by publish's own tag_problem; of what the pattern admits only
            # '+' is no tag character. semver gives build metadata no precedence anyway.
            core, _, build = v.partition("+")
            self.add(
                "workflow.version",
                path,
                f"spec.version {v!r} has build metadata ('+{build}'): the version is the image "
                f"and bundle tag, and an OCI tag cannot contain '+'; write {core!r}",
            )

    def action_type(self, spec: dict[str, Any], action_types: Mapping[str, object] | None) -> None:
        at = spec.get("actionType")
        if action_types is None or not isinstance(at, str) or not PASCAL_RE.match(at):
            return
        if at not in action_types:
            if isinstance(action_types, Declared) and action_types.undecided(at):
                return  # an ActionType file that did not load may declare it: its finding says
            known = ", ".join(sorted(action_types)) or "none"
            if isinstance(action_types, Declared) and action_types.unreadable:
                # The likely cause of a name that is not found, when it is there.
                known += f"; {', '.join(sorted(action_types.unreadable))} did not load"
            # A typo is the usual cause; name the likeliest intended ActionType first.
            close = difflib.get_close_matches(at, sorted(action_types), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.add(
                "workflow.action-type",
                ("spec", "actionType"),
                f"spec.actionType {at!r} names no ActionType in registry/action-types/; "
                f"{hint}(known: {known}); the cluster refuses a workflow whose ActionType "
                "is missing",
            )

    def execution(self, spec: dict[str, Any], authored: bool) -> None:
        ex = spec.get("execution")
        if not isinstance(ex, dict):
            return
        base: YamlPath = ("spec", "execution")
        engine = ex.get("engine")
        if "engine" not in ex:
            self.add(
                "workflow.engine",
                base,
                f"spec.execution.engine is missing: write engine: {ENGINE}. Kubernaut no longer "
                "defaults it; its orchestrator refuses a workflow without one "
                f'("{contract.table()["executionEngineRequired"]["message"]}", '
                f"{contract.source_of('executionEngineRequired')})",
                at_key=True,
            )
            self.claimed.append((*base, "engine"))
        if engine in ("job", "ansible"):
            self.add(
                "workflow.engine",
                (*base, "engine"),
                f"spec.execution.engine must be {ENGINE!r} in this repository "
                f"(its playbooks are Tekton bundles), not {engine!r}",
            )
        bundle = ex.get("bundle")
        if authored:
            for key in ("bundle", "bundleDigest"):
                if key in ex:
                    self.add(
                        "workflow.bundle",
                        (*base, key),
                        f"spec.execution.{key} must be absent in workflow.yaml: the release "
                        "fills it in with the published, digest-pinned bundle",
                        at_key=True,
                        claim=True,
                    )
            return
        if "bundle" not in ex:
            self.add(
                "workflow.bundle",
                base,
                "spec.execution.bundle is missing: a registration names its bundle",
                at_key=True,
            )
            return
        if not isinstance(bundle, str):
            return  # the schema reports the type
        m = BUNDLE_RE.match(bundle)
        if not m:
            self.add(
                "workflow.bundle",
                (*base, "bundle"),
                f"spec.execution.bundle {bundle!r} must be digest-pinned: "
                "registry/repo@sha256:<64 hex> or registry/repo:tag@sha256:<64 hex> "
                "(a tag alone is mutable; Kubernaut issue #89)",
            )
            return
        digest = ex.get("bundleDigest")
        if isinstance(digest, str) and digest.removeprefix("sha256:") != m.group("digest"):
            self.add(
                "workflow.bundle",
                (*base, "bundleDigest"),
                f"spec.execution.bundleDigest {digest!r} differs from the bundle's digest "
                f"sha256:{m.group('digest')}",
            )

    def dependencies(self, spec: dict[str, Any]) -> None:
        deps = spec.get("dependencies")
        if not isinstance(deps, dict):
            return
        for key in ("secrets", "configMaps"):
            items = deps.get(key)
            if not isinstance(items, list):
                continue
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                name = item.get("name") if isinstance(item, dict) else None
                if not isinstance(name, str) or not name:
                    continue  # the schema reports a missing or empty name
                path: YamlPath = ("spec", "dependencies", key, i, "name")
                if name in seen:
                    self.add(
                        "workflow.dependencies",
                        path,
                        f"spec.dependencies.{key}: {name!r} is listed twice "
                        f"(first at [{seen[name]}]); each becomes one workspace",
                    )
                else:
                    seen[name] = i

    def detected_labels(self, spec: dict[str, Any]) -> None:
        labels = spec.get("detectedLabels")
        if not isinstance(labels, dict):
            return
        for key in contract.boolean_detected_labels():
            if key not in labels:
                continue
            value = labels[key]
            path: YamlPath = ("spec", "detectedLabels", key)
            same_as_absent = (
                f"false means the same as leaving {key} out (Kubernaut's Go bool cannot tell "
                "them apart, and a boolean detected label never excludes a workflow)"
            )
            if isinstance(value, str):
                why = (
                    f"a string is refused: Kubernaut's agent decodes detectedLabels with "
                    "json.Unmarshal into Go bool fields, a string fails to decode, and that "
                    "error aborts its whole workflow catalog listing, so every investigation "
                    f"goes to human review ({contract.source_of('detectedLabels')})"
                )
                if value.strip().lower() == "false":
                    message = f"{dotted(path)}: remove it: {why}; and {same_as_absent}"
                else:
                    message = f"{dotted(path)}: write the YAML boolean true, unquoted: {why}"
                self.add("workflow.detected-labels", path, message, claim=True)
            elif value is False:
                self.add(
                    "workflow.detected-labels",
                    path,
                    f"{dotted(path)}: remove it: {same_as_absent}",
                    claim=True,
                )

    def fleet_cluster(self, spec: dict[str, Any]) -> None:
        labels = spec.get("labels")
        if not isinstance(labels, dict) or labels.get("cluster"):
            return
        self.findings.append(
            self.doc.finding(
                "workflow.fleet-cluster",
                ("spec", "labels"),
                "spec.labels has no cluster: with `fleet = true`, Kubernaut's catalog excludes "
                "a workflow without labels.cluster from every signal that names its cluster "
                f"({contract.source_of('clusterLabel')}); add cluster: ['*'] (every cluster) "
                "or the cluster IDs it serves",
                Severity.WARNING,
                at_key=True,
            )
        )

    def agent_parameters(self, items: list[Any]) -> None:
        """Names of the parameters Kubernaut's agent fills in from the remediation target."""
        api_version = contract.filled_by_part()["apiVersion"]
        for i, p in enumerate(items):
            name = p.get("name") if isinstance(p, dict) else None
            if not isinstance(name, str):
                continue
            where: YamlPath = ("spec", "parameters", i, "name")
            meant = target_lookalike(name)
            if meant is not None:
                self.add(
                    "workflow.target-parameter",
                    where,
                    f"{dotted(where)}: Kubernaut never fills {name}: its agent fills "
                    f"{meant.name} from the remediation target's {meant.part} "
                    f"({meant.source} @ {contract.commit()[:8]}), and the run gets only the "
                    f"parameters the workflow declares, so {name} is left to the model (a run "
                    f"without it goes to human review); rename it {meant.name}",
                )
            elif name == api_version.name and p.get("required") is True:
                self.findings.append(
                    self.doc.finding(
                        "workflow.target-api-version",
                        ("spec", "parameters", i, "required"),
                        f"{name} is filled by Kubernaut's agent {api_version.when} "
                        f"({api_version.source} @ {contract.commit()[:8]}): a run for a target "
                        "whose apiVersion it does not know gets no value; declare it "
                        "required: false with a default (in the Pipeline too)",
                        Severity.WARNING,
                    )
                )

    def depends_on_presence(self, items: list[Any]) -> None:
        """Kubernaut's agent refuses a parameter whose dependsOn names one that is absent from
        the parameters; a default does not count, and only a present parameter is checked."""
        params = {
            p["name"]: p for p in items if isinstance(p, dict) and isinstance(p.get("name"), str)
        }
        filled = {p.name: p for p in contract.filled_parameters()}
        where_from = contract.source_of("dependsOn")
        for i, p in enumerate(items):
            deps = p.get("dependsOn") if isinstance(p, dict) else None
            if not isinstance(deps, list) or p.get("name") in filled:
                continue  # the agent does not validate the parameters it fills
            own = p.get("name")
            for j, dep in enumerate(deps):
                target = params.get(dep) if isinstance(dep, str) else None
                if target is None or dep == own:
                    continue  # workflow.depends-on reports these
                where: YamlPath = ("spec", "parameters", i, "dependsOn", j)
                if dep in filled:
                    # The agent checks the model's answer first and fills its own parameters
                    # in only afterwards (InjectTargetResourceParameters).
                    problem = (
                        f"{dep} is filled in by the agent only after it has checked dependsOn "
                        f"against the model's answer, so it counts only when the model passes "
                        f"{dep} itself (and {dep} is filled {filled[dep].when}); Kubernaut "
                        f"refuses {own} otherwise"
                    )
                elif target.get("required") is True:
                    continue
                elif p.get("required") is True:
                    problem = (
                        f"{own} is required and depends on {dep}, so Kubernaut refuses every "
                        f"run without {dep}: declare {dep} required: true"
                    )
                elif "default" in target:
                    problem = (
                        f"{dep}'s default does not satisfy it: Kubernaut refuses {own} unless "
                        f"{dep} is given too (the model must pass both)"
                    )
                else:
                    continue  # both optional, no default: give both or neither, as meant
                self.findings.append(
                    self.doc.finding(
                        "workflow.depends-on-presence",
                        where,
                        f"{dotted(where)}: {problem} (a dependency counts only when present in "
                        f"the parameters: {where_from})",
                        Severity.WARNING,
                    )
                )

    def parameters(self, base: YamlPath, items: list[Any]) -> None:
        declared: dict[str, int] = {}
        for i, p in enumerate(items):
            name = p.get("name") if isinstance(p, dict) else None
            if not isinstance(name, str) or not name:
                continue
            where: YamlPath = (*base, i, "name")
            if name in RESERVED_PARAMETERS:
                self.add(
                    "workflow.parameter-name",
                    where,
                    f"{dotted(where)}: {name} is reserved: Kubernaut passes it to every run",
                )
            elif not PARAM_NAME_RE.match(name):
                self.add(
                    "workflow.parameter-name",
                    where,
                    f"{dotted(where)}: {name!r} must be UPPER_SNAKE_CASE (DD-WORKFLOW-003)",
                )
            if name in declared:
                self.add(
                    "workflow.parameter-name",
                    where,
                    f"{dotted(where)}: parameter {name!r} is declared twice "
                    f"(first at {dotted((*base, declared[name]))})",
                )
            else:
                declared[name] = i
        for i, p in enumerate(items):
            if isinstance(p, dict):
                self.parameter((*base, i), p, declared)

    def optional_defaults(self, items: list[Any]) -> None:
        """workflow.optional-no-default (warning): nobody supplies an optional parameter's
        value but its default (Kubernaut's agent may leave it out, and injects no schema
        default), so the script sees it empty."""
        for i, p in enumerate(items):
            if not isinstance(p, dict) or p.get("required") is True or "default" in p:
                continue
            name = p.get("name")
            self.findings.append(
                self.doc.finding(
                    "workflow.optional-no-default",
                    ("spec", "parameters", i, "name"),
                    f"optional parameter {name!r} has no default: when the agent leaves it "
                    "out the run gets an empty value; give it a default (or make it required)",
                    Severity.WARNING,
                )
            )

    def parameter(self, path: YamlPath, p: dict[str, Any], declared: dict[str, int]) -> None:
        ptype = p.get("type") if p.get("type") in PARAM_TYPES else None
        compiled: re.Pattern[str] | None = None
        pattern_ok = True
        if ptype is not None:
            for key in ("enum", "pattern"):
                if key in p and ptype != "string":
                    self.add(
                        f"workflow.parameter-{key}",
                        (*path, key),
                        f"{dotted((*path, key))}: {key} applies only to string parameters, "
                        f"this one is {ptype}",
                        at_key=True,
                        claim=True,
                    )
            for key in ("minimum", "maximum"):
                if key in p and ptype not in NUMERIC_TYPES:
                    self.add(
                        "workflow.parameter-range",
                        (*path, key),
                        f"{dotted((*path, key))}: {key} applies only to integer and float "
                        f"parameters, this one is {ptype}",
                        at_key=True,
                        claim=True,
                    )
        pattern = p.get("pattern")
        if ptype == "string" and isinstance(pattern, str) and len(pattern) <= 1024:
            result = re2.check(pattern)
            if result.error:
                pattern_ok = False
                self.add(
                    "workflow.parameter-pattern",
                    (*path, "pattern"),
                    f"{dotted((*path, 'pattern'))}: not a valid RE2 pattern: {result.error}",
                )
            compiled = result.compiled
        lo, hi = _number(p.get("minimum")), _number(p.get("maximum"))
        if ptype in NUMERIC_TYPES and lo is not None and hi is not None and lo > hi:
            self.add(
                "workflow.parameter-range",
                (*path, "maximum"),
                f"{dotted(path)}: minimum {p['minimum']} is greater than maximum {p['maximum']}",
            )
            lo = hi = None  # no value fits an empty range; the default is not the problem
        if "default" in p and ptype is not None:
            problem = _default_problem(
                p,
                ptype,
                compiled if pattern_ok else None,
                lo,
                hi,
                written=self.doc.written_as((*path, "default")),
            )
            if problem:
                self.add(
                    "workflow.default",
                    (*path, "default"),
                    f"{dotted((*path, 'default'))}: {problem}",
                )
        deps = p.get("dependsOn")
        if isinstance(deps, list):
            own = p.get("name")
            for j, dep in enumerate(deps):
                if not isinstance(dep, str):
                    continue
                where: YamlPath = (*path, "dependsOn", j)
                if dep == own:
                    self.add(
                        "workflow.depends-on",
                        where,
                        f"{dotted(where)}: a parameter cannot depend on itself",
                    )
                elif dep not in declared:
                    self.add(
                        "workflow.depends-on",
                        where,
                        f"{dotted(where)}: {dep!r} is not a declared parameter"
                        + (f" (declared: {', '.join(declared)})" if declared else ""),
                    )


def _subschema(field: str) -> dict[str, Any]:
    spec: dict[str, Any] = load_schema(SCHEMA)["properties"]["spec"]
    sub: dict[str, Any] = spec["properties"][field]
    return sub


def _leading_zero_prerelease(version: str) -> bool:
    pre = version.split("+", 1)[0].partition("-")[2]
    return any(len(x) > 1 and x.isdigit() and x.startswith("0") for x in pre.split(".") if pre)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _default_problem(
    p: dict[str, Any],
    ptype: str,
    compiled: re.Pattern[str] | None,
    lo: float | None,
    hi: float | None,
    *,
    written: str | None = None,
) -> str | None:
    """Why p's default does not satisfy p's own declaration, or None (`written`: the default's
    text when YAML read it as a boolean)."""
    value = p["default"]
    if value is None:
        return "is empty (null): give a value or remove the key"
    if ptype == "string":
        if not isinstance(value, str):
            if isinstance(value, bool | int | float):
                return f"must be a string, but {quote_hint(value, written)}"
            return f"must be a string, not {type(value).__name__}"
        enum = p.get("enum")
        if (
            isinstance(enum, list)
            and all(isinstance(e, str) for e in enum)
            and enum
            and value not in enum
        ):
            return f"{value!r} is not one of the parameter's enum values: {', '.join(enum)}"
        if compiled is not None and not compiled.search(value):
            return f"{value!r} does not match the parameter's pattern {p['pattern']!r}"
        return None
    if ptype == "boolean":
        if not isinstance(value, bool):
            return f"must be a boolean (true or false), not {value!r}"
        return None
    if ptype == "array":
        return None if isinstance(value, list) else f"must be a list, not {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number, not {value!r}"
    if ptype == "integer" and isinstance(value, float) and not value.is_integer():
        return f"must be an integer, not {value!r}"
    if lo is not None and value < lo:
        return f"{value} is below the minimum {lo:g}"
    if hi is not None and value > hi:
        return f"{value} is above the maximum {hi:g}"
    return None
