"""The rule catalogue: every rule `playbookctl lint` can report, in one registry.

Each rule has an id (`family.name`), a default severity, a one-line summary and a longer
explanation with a bad and a good example. Checks emit findings under these ids; `policy.py`
passes every finding through the catalogue (an id it lacks is a bug in playbookctl, an internal
error), `playbookctl rules [ID]` prints it, and RULES.md (linked from the README, whose rule
table is generated from here too; a test keeps both equal) is written from it.

hadolint and shellcheck report their own codes (`hadolint.DL3008`, `shellcheck.SC2086`): one
family entry each here, whose explanation points at the tool's own page for the code.

`adjustable` is False for a rule whose finding means the cluster (Tekton's admission webhook,
its strict decoding, the API server) refuses the object: disabling or downgrading it would only
move the failure from the pull request to the cluster, so configuration and suppression
comments may not touch it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playbookctl.findings import Severity

E = Severity.ERROR
W = Severity.WARNING

RULES_FILE = "RULES.md"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    summary: str
    explanation: str
    bad: str
    good: str
    adjustable: bool = True
    family: bool = False  # hadolint.* / shellcheck.*: the tool's own codes

    @property
    def anchor(self) -> str:
        """The GitHub heading anchor of this rule in RULES.md."""
        return re.sub(r"[^a-z0-9_ -]", "", f"{self.id}".lower()).replace(" ", "-")

    def url_for(self, rule_id: str) -> str | None:
        """The tool's own page for an external code, else None (use RULES.md)."""
        code = rule_id.split(".", 1)[1] if "." in rule_id else ""
        if self.id == "hadolint.*" and code:
            return f"https://github.com/hadolint/hadolint/wiki/{code}"
        if self.id == "shellcheck.*" and code:
            return f"https://www.shellcheck.net/wiki/{code}"
        return None


_ALL: list[Rule] = []


def _r(  # noqa: PLR0917 - one positional per column of the catalogue keeps entries short
    rule_id: str,
    severity: Severity,
    summary: str,
    explanation: str,
    bad: str,
    good: str,
    *,
    adjustable: bool = True,
) -> None:
    _ALL.append(Rule(rule_id, severity, summary, explanation, bad, good, adjustable))


def _t(rule_id: str, summary: str, explanation: str, bad: str, good: str) -> None:
    """A tekton.* rule: exactly what Tekton v1.14 refuses, never adjustable."""
    _r(rule_id, E, summary, explanation, bad, good, adjustable=False)


# --- load.* ----------------------------------------------------------------------------------

_r(
    "load.syntax",
    E,
    "the file is not valid YAML",
    "The YAML parser stopped here. Nothing in the file was checked further. Invalid scalars "
    "and documents nested beyond any sane depth are reported here too.",
    "spec:\n  tasks: [a, b\n",
    "spec:\n  tasks: [a, b]\n",
    adjustable=False,
)
_r(
    "load.duplicate-key",
    E,
    "a mapping has the same key twice",
    "YAML decoders disagree on duplicate keys: the plain Kubernetes decoders keep the last "
    "one, Tekton's bundles resolver (strict decoding) refuses the object. Either way one of "
    "the two values is silently lost.",
    "metadata:\n  name: a\n  name: b\n",
    "metadata:\n  name: b\n",
    adjustable=False,
)
_r(
    "load.encoding",
    E,
    "the file is not UTF-8",
    "Kubernetes objects, Containerfiles and scripts must be UTF-8 text; a byte that is not "
    "is shown with its position.",
    "description: caf\\xe9   # Latin-1 byte",
    "description: café      # UTF-8",
    adjustable=False,
)
_r(
    "load.too-large",
    E,
    "the file is larger than max-file-bytes",
    "Files over the `max-file-bytes` setting are not read: a Kubernetes object or a script "
    "that large is a mistake (a pasted binary, a generated blob).",
    "a 20 MB pipeline.yaml",
    "a pipeline.yaml of a few kilobytes",
    adjustable=False,
)
_r(
    "load.io",
    E,
    "the file cannot be read",
    "The file is not a regular file (a FIFO or a device would block the read) or the "
    "operating system refused to read it; the message says why.",
    "mkfifo playbooks/x/rbac.yaml",
    "a regular, readable rbac.yaml",
    adjustable=False,
)
_r(
    "load.alias-bomb",
    E,
    "YAML aliases expand to too many nodes",
    "Anchors and aliases that expand exponentially (or refer to themselves) would exhaust "
    "memory; Kubernetes' decoder refuses them too.",
    "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]   # ... and so on",
    "write the values out, or use one level of aliases",
    adjustable=False,
)
_r(
    "load.tag",
    E,
    "an unsupported YAML tag",
    "Kubernetes reads plain JSON-compatible YAML; application tags (`!!python/object`, "
    "`!Ref`) mean nothing to it.",
    "image: !Ref Image",
    "image: docker.io/library/alpine:3.20@sha256:...",
    adjustable=False,
)
_r(
    "load.key",
    E,
    "a mapping key is not a scalar",
    "JSON (and so every Kubernetes object) has string keys only; a list or mapping as a key "
    "cannot be converted.",
    "? [a, b]\n: value\n",
    "a-b: value\n",
    adjustable=False,
)
_r(
    "load.json-value",
    E,
    "a value JSON cannot hold (.inf, .nan)",
    "The cluster converts YAML to JSON before it decodes an object; infinity and NaN are not "
    "JSON numbers, so the conversion fails and the whole object is refused.",
    "value: .inf",
    'value: ".inf"',
    adjustable=False,
)
_r(
    "load.yaml-1.1",
    W,
    "an unquoted scalar the cluster reads differently from PyYAML",
    "Kubernetes, Tekton and Argo CD read YAML with go-yaml v2's YAML 1.1 rules: unquoted `y`, "
    "`n`, `yes`, `no`, `on`, `off` are booleans, `1e3`, `08` and `0o17` numbers, `2.0` is the "
    "number 2, while `1:30` stays a string. Many editors and Python tools read these "
    "differently, so what you see is not what the cluster gets. An error where the cluster's "
    "reading breaks the object (a boolean where a name must be a string), a warning otherwise. "
    "The fix is to quote it, except where a workflow parameter's field takes the value the "
    "cluster reads (`minimum`, `maximum`, the `default` of an integer, float or boolean "
    "parameter): there write that value (`1e3` -> `1000`), since a quoted one is a string the "
    "schema refuses. Bundles carry what the cluster reads.",
    "params:\n  - name: y\n    default: 1e3\n",
    'params:\n  - name: "y"\n    default: "1e3"\n',
)
_r(
    "load.documents",
    E,
    "a file that must hold one document holds more",
    "workflow.yaml and pipeline.yaml each hold exactly one object; a second document "
    "(after `---`) would be ignored.",
    "kind: Pipeline\n...\n---\nkind: Task\n",
    "one object per file; tasks go inline as taskSpec",
    adjustable=False,
)
_r(
    "load.kind",
    E,
    "a document of a kind lint does not check",
    "A path given explicitly must be a playbook directory, a registry/ file or a tekton.dev "
    "v1/v1beta1 Pipeline or Task; anything else (an empty file, another kind) is reported "
    "rather than passed unchecked.",
    "playbookctl lint deployment.yaml   # kind: Deployment",
    "playbookctl lint playbooks/restart-deployment",
    adjustable=False,
)

# --- lint.* (the catalogue's own) -----------------------------------------------------------

_r(
    "lint.suppression",
    W,
    "a suppression comment that is unused, unknown or not allowed",
    "`# playbookctl: disable=RULE reason` on a line, or alone on the line above it, silences "
    "RULE there. A comment that silences nothing, names an unknown rule, gives no reason, or "
    "names a rule the cluster enforces (tekton.*, load.*, schema rules) is reported, so that "
    "stale suppressions do not pile up.",
    "# playbookctl: disable=playbook.non-rot\nFROM alpine:3.20@sha256:...\n",
    "# playbookctl: disable=playbook.containerfile-user the final stage only copies files\n"
    "FROM scratch\n",
)

# --- workflow.* ------------------------------------------------------------------------------

_WF = "spec:\n  "
_r(
    "workflow.schema",
    E,
    "the RemediationWorkflow does not match Kubernaut's CRD schema",
    "Checked against the RemediationWorkflow CRD's OpenAPI schema: a wrong type, a missing "
    "required field or a value outside an enum is refused by the API server.",
    _WF + "version: 1\n",
    _WF + 'version: "1.0.0"\n',
    adjustable=False,
)
_r(
    "workflow.unknown-field",
    E,
    "a field the RemediationWorkflow schema does not know",
    "The API server prunes or refuses unknown fields (strict field validation), so a typo "
    "silently loses the setting.",
    _WF + "actiontype: RestartDeployment\n",
    _WF + "actionType: RestartDeployment\n",
    adjustable=False,
)
_r(
    "workflow.api-version",
    E,
    "apiVersion is not kubernaut.ai/v1alpha1",
    "Kubernaut serves RemediationWorkflow under kubernaut.ai/v1alpha1 only.",
    "apiVersion: kubernaut.io/v1\n",
    "apiVersion: kubernaut.ai/v1alpha1\n",
    adjustable=False,
)
_r(
    "workflow.kind",
    E,
    "kind is not RemediationWorkflow",
    "workflow.yaml holds exactly the RemediationWorkflow the release registers.",
    "kind: Workflow\n",
    "kind: RemediationWorkflow\n",
    adjustable=False,
)
_r(
    "workflow.metadata",
    E,
    "metadata is missing or malformed",
    "A RemediationWorkflow needs metadata with a name and the workflow namespace; labels and "
    "annotations are string maps.",
    "metadata: restart\n",
    "metadata:\n  name: restart-deployment\n  namespace: kubernaut-system\n",
)
_r(
    "workflow.name",
    E,
    "metadata.name is not the playbook's directory name (or not a DNS-1123 label)",
    "The registration, bundle and image are all named after the directory; a workflow named "
    "otherwise would register under a name nothing else uses.",
    "# playbooks/restart-deployment/workflow.yaml\nmetadata:\n  name: restart\n",
    "metadata:\n  name: restart-deployment\n",
)
_r(
    "workflow.namespace",
    E,
    "metadata.namespace is not the workflow namespace",
    "Kubernaut watches RemediationWorkflows in `workflow-namespace` (kubernaut-system) only.",
    "metadata:\n  namespace: default\n",
    "metadata:\n  namespace: kubernaut-system\n",
)
_r(
    "workflow.status",
    E,
    "an authored workflow carries a status",
    "status is written by Kubernaut's controller; an authored one would be discarded or "
    "overwrite real state.",
    "status:\n  phase: Ready\n",
    "(no status block)",
)
_r(
    "workflow.version",
    E,
    "spec.version is not quoted semver",
    "Image and bundle tags are the version and are never overwritten; it must be a semantic "
    'version written as a string ("1.2.0"), not a number that YAML turns into 1.2.',
    _WF + "version: 1.2\n",
    _WF + 'version: "1.2.0"\n',
)
_r(
    "workflow.description",
    E,
    "spec.description lacks what Kubernaut's agent needs",
    "The agent picks a workflow from its description: `what` and `whenToUse` are required "
    "and must be non-empty text.",
    _WF + "description: restarts\n",
    _WF
    + "description:\n    what: Rolling restart of a Deployment\n    whenToUse: Pods are wedged\n",
)
_r(
    "workflow.maintainers",
    E,
    "a maintainer entry is malformed",
    "Each maintainer has a name and a valid email address.",
    _WF + "maintainers: [ops]\n",
    _WF + "maintainers:\n    - {name: Ops, email: ops@example.com}\n",
)
_r(
    "workflow.action-type",
    E,
    "spec.actionType names no ActionType (or is not PascalCase)",
    "Kubernaut refuses a workflow whose ActionType is missing; each one lives in "
    "registry/action-types/<kebab-case>.yaml.",
    _WF + "actionType: restart-deployment\n",
    _WF + "actionType: RestartDeployment   # registry/action-types/restart-deployment.yaml\n",
)
_r(
    "workflow.labels",
    E,
    "spec.labels are missing or outside Kubernaut's values",
    "severity, environment, component and priority select when the workflow applies; each "
    "has a fixed vocabulary (severity: critical/high/warning/info, priority P0-P3 or *).",
    _WF + "labels:\n    severity: [urgent]\n",
    _WF + "labels:\n    severity: [critical]\n    environment: ['*']\n"
    "    component: [apps/v1/Deployment]\n    priority: P1\n",
)
_r(
    "workflow.custom-labels",
    E,
    "spec.customLabels is not a map of label-like strings",
    "customLabels are free-form but must be Kubernetes label keys with string values.",
    _WF + "customLabels:\n    team: [sre]\n",
    _WF + "customLabels:\n    team: sre\n",
)
_r(
    "workflow.detected-labels",
    E,
    "spec.detectedLabels uses an unknown key, a string for a boolean, or false",
    "detectedLabels match facts Kubernaut detects (gitOpsManaged, gitOpsTool, serviceMesh, "
    "hpaEnabled, ...). The boolean ones are YAML booleans: Kubernaut's agent decodes "
    "spec.detectedLabels with json.Unmarshal into Go bool fields "
    "(internal/kubernautagent/workflowcatalog/cache_convert.go, pkg/shared/types/enrichment.go "
    '@ d5a4a870), so the string "true" fails, and the error aborts its whole workflow catalog '
    "listing: every investigation goes to human review. `false` is refused too: a Go bool "
    "cannot tell it from absent, so it only misleads the reader. gitOpsTool, serviceMesh and "
    "storageBackend are strings from a fixed list.",
    _WF + 'detectedLabels:\n    hpaEnabled: "true"\n',
    _WF + "detectedLabels:\n    hpaEnabled: true\n",
)
_r(
    "workflow.execution",
    E,
    "spec.execution is missing or malformed",
    "execution says how Kubernaut runs the workflow: engine, serviceAccountName and (filled "
    "in by the release) bundle.",
    _WF + "execution: tekton\n",
    _WF + "execution:\n    engine: tekton\n    serviceAccountName: restart-deployment-sa\n",
)
_r(
    "workflow.engine",
    E,
    "execution.engine is missing or not tekton",
    "These playbooks run as Tekton pipelines from OCI bundles. The engine must be written: "
    "Kubernaut no longer defaults it, and its orchestrator refuses a selected workflow without "
    'one ("selectedWorkflow.executionEngine is required", '
    "pkg/remediationorchestrator/creator/workflowexecution.go @ d5a4a870).",
    "execution:\n  serviceAccountName: restart-deployment-runner\n",
    "execution:\n  engine: tekton\n  serviceAccountName: restart-deployment-runner\n",
)
_r(
    "workflow.bundle",
    E,
    "execution.bundle is set by hand, or a registration's bundle is not pinned",
    "An authored workflow.yaml never names its bundle (the release fills it in); a "
    "registration under registry/ must pin it `<registry>/<repo>/<name>:<version>@sha256:...`.",
    "execution:\n  bundle: ghcr.io/acme/bundles/x:latest\n",
    "(authored: no bundle; registered: ghcr.io/acme/bundles/x:1.0.0@sha256:<64 hex>)",
)
_r(
    "workflow.service-account",
    E,
    "execution.serviceAccountName is missing or not a valid name",
    "The run uses this ServiceAccount (declared in rbac.yaml) for its RBAC.",
    "execution:\n  serviceAccountName: Restart_SA\n",
    "execution:\n  serviceAccountName: restart-deployment-sa\n",
)
_r(
    "workflow.dependencies",
    E,
    "spec.dependencies is malformed",
    "Each secret and configMap dependency is `{name: <dns label>}`, unique; each becomes a "
    "workspace secret-<name> / configmap-<name>.",
    _WF + "dependencies:\n    secrets: [token]\n",
    _WF + "dependencies:\n    secrets:\n      - name: token\n",
)
_r(
    "workflow.parameters",
    E,
    "spec.parameters (or rollbackParameters) is malformed",
    "A list of parameters, each with name, type, description and required; names unique.",
    _WF + "parameters:\n    NAME: string\n",
    _WF + "parameters:\n    - name: TARGET_RESOURCE_NAME\n      type: string\n"
    "      required: true\n      description: name of the Deployment\n",
)
_r(
    "workflow.parameter-name",
    E,
    "a parameter name is not UPPER_SNAKE_CASE",
    "Parameters become environment variables of the step; Kubernaut's agent fills "
    "TARGET_RESOURCE_* by name.",
    "- name: target-name\n",
    "- name: TARGET_RESOURCE_NAME\n",
)
_r(
    "workflow.parameter-type",
    E,
    "a parameter type is not one Kubernaut knows",
    "Types: string, integer, float, boolean, array.",
    "type: int\n",
    "type: integer\n",
)
_r(
    "workflow.parameter-enum",
    E,
    "enum on a non-string parameter, or an invalid enum",
    "enum applies only to string parameters, and lists distinct strings.",
    "type: integer\nenum: [1, 2]\n",
    "type: string\nenum: [drain, cordon]\n",
)
_r(
    "workflow.parameter-pattern",
    E,
    "pattern on a non-string parameter, or not valid RE2",
    "Kubernaut checks values with Go's RE2: lookarounds and backreferences do not exist there.",
    "pattern: '^(?!kube-).*$'\n",
    "pattern: '^[a-z0-9-]+$'\n",
)
_r(
    "workflow.parameter-range",
    E,
    "minimum/maximum on a non-number, or minimum above maximum",
    "minimum and maximum apply to integer and float parameters only.",
    "type: string\nminimum: 1\n",
    "type: integer\nminimum: 1\nmaximum: 10\n",
)
_r(
    "workflow.default",
    E,
    "a default that does not fit its parameter",
    "An optional parameter needs a default (nobody else supplies one), of the parameter's "
    "type and within its enum, pattern and range.",
    "type: integer\nrequired: false\ndefault: many\n",
    "type: integer\nrequired: false\ndefault: 3\n",
)
_r(
    "workflow.depends-on",
    E,
    "dependsOn names a parameter that does not exist (or itself)",
    "dependsOn lists other parameters of the same workflow.",
    "dependsOn: [NOPE]\n",
    "dependsOn: [TARGET_RESOURCE_NAME]\n",
)
_r(
    "workflow.target-parameter",
    E,
    "a parameter named like a target parameter that Kubernaut never fills",
    "Kubernaut's agent fills TARGET_RESOURCE_NAME, TARGET_RESOURCE_KIND, "
    "TARGET_RESOURCE_NAMESPACE and, when it knows it, TARGET_RESOURCE_API_VERSION from the "
    "remediation target (InjectTargetResourceParameters, "
    "internal/kubernautagent/investigator/investigator_phases.go @ d5a4a870; the table is "
    "tooling/playbookctl/references/kubernaut.json). Any other name, such as TARGET_NAMESPACE, is "
    "left to the model, and a run without it goes to human review. The finding names the "
    "parameter Kubernaut does fill.",
    "- name: TARGET_NAMESPACE\n  type: string\n  required: true\n",
    "- name: TARGET_RESOURCE_NAMESPACE\n  type: string\n  required: true\n",
)
_r(
    "workflow.target-api-version",
    W,
    "TARGET_RESOURCE_API_VERSION declared required",
    "Kubernaut's agent fills TARGET_RESOURCE_API_VERSION only when it knows the target's "
    "apiVersion (investigator_phases.go @ d5a4a870) and does not check it is there: a run "
    "for any other target gets no value. Declare it optional with a default (in the Pipeline "
    "too).",
    "- name: TARGET_RESOURCE_API_VERSION\n  required: true\n",
    "- name: TARGET_RESOURCE_API_VERSION\n  required: false\n  default: apps/v1\n",
)
_r(
    "workflow.depends-on-presence",
    W,
    "a dependsOn Kubernaut satisfies only when the model gives the other parameter too",
    "Kubernaut's agent refuses a parameter whose dependsOn names one absent from the "
    "parameters it was given; a default does not count (validateDependsOn, "
    "internal/kubernautagent/parser/validator.go @ d5a4a870). So: a required parameter that "
    "depends on an optional one makes that one effectively required; an optional dependency's "
    "default never satisfies it; and the agent checks the model's answer before it fills in "
    "the TARGET_RESOURCE_* parameters (investigator.go: SelfCorrect during workflow selection, "
    "InjectTargetResourceParameters when the result is finalised), so depending on one of "
    "those counts only when the model passes it itself.",
    "- name: REPLICAS\n  required: true\n  dependsOn: [MODE]\n"
    "- name: MODE\n  required: false\n  default: safe\n",
    "- name: REPLICAS\n  required: true\n  dependsOn: [MODE]\n- name: MODE\n  required: true\n",
)

# --- action-type.* ---------------------------------------------------------------------------

_AT = "kind: ActionType\n"
_r(
    "action-type.schema",
    E,
    "the ActionType does not match Kubernaut's CRD schema",
    "Checked against the ActionType CRD's OpenAPI schema.",
    _AT + "spec:\n  name: 12\n",
    _AT + "spec:\n  name: RestartDeployment\n",
    adjustable=False,
)
_r(
    "action-type.unknown-field",
    E,
    "a field the ActionType schema does not know",
    "Unknown fields are pruned or refused by the API server.",
    _AT + "spec:\n  descripton: {}\n",
    _AT + "spec:\n  description: {}\n",
    adjustable=False,
)
_r(
    "action-type.api-version",
    E,
    "apiVersion is not kubernaut.ai/v1alpha1",
    "ActionTypes are served under kubernaut.ai/v1alpha1.",
    "apiVersion: v1\n",
    "apiVersion: kubernaut.ai/v1alpha1\n",
    adjustable=False,
)
_r(
    "action-type.kind",
    E,
    "a registry/action-types/ file holds another kind",
    "Files under registry/action-types/ are ActionTypes only.",
    "kind: ConfigMap\n",
    "kind: ActionType\n",
)
_r(
    "action-type.metadata",
    E,
    "metadata is missing or malformed",
    "An ActionType needs metadata.name and the workflow namespace.",
    "metadata: restart\n",
    "metadata:\n  name: restart-deployment\n  namespace: kubernaut-system\n",
)
_r(
    "action-type.metadata-name",
    E,
    "metadata.name is not a DNS-1123 subdomain, or not the kebab-case of spec.name",
    "An ActionType's metadata.name is the kebab-case form of its PascalCase spec.name "
    "(RollbackDeployment -> rollback-deployment), as `playbookctl new` writes it and names the "
    "file registry/action-types/<kebab-case>.yaml; another name (a typo in either field) is an "
    "error. The file name itself is not checked.",
    "metadata:\n  name: restart\nspec:\n  name: RestartDeployment\n",
    "metadata:\n  name: restart-deployment\nspec:\n  name: RestartDeployment\n",
)
_r(
    "action-type.namespace",
    E,
    "metadata.namespace is not the workflow namespace",
    "Kubernaut reads ActionTypes from `workflow-namespace`.",
    "metadata:\n  namespace: default\n",
    "metadata:\n  namespace: kubernaut-system\n",
)
_r(
    "action-type.name",
    E,
    "spec.name is not PascalCase (or too long)",
    "Workflows name their ActionType by spec.name, PascalCase, at most 255 characters.",
    "spec:\n  name: restart-deployment\n",
    "spec:\n  name: RestartDeployment\n",
)
_r(
    "action-type.description",
    E,
    "spec.description lacks what or whenToUse",
    "The agent reads the description to choose an action: `what` and `whenToUse` are "
    "required text.",
    "spec:\n  description: {}\n",
    "spec:\n  description:\n    what: Rolling restart\n    whenToUse: Pods are wedged\n",
)
_r(
    "action-type.status",
    E,
    "an authored ActionType carries a status",
    "status is written by Kubernaut's controller; an authored one is discarded or overwrites "
    "real state.",
    "status: {}\n",
    "(no status block)",
)
_r(
    "action-type.sync-wave",
    E,
    'an ActionType without argocd.argoproj.io/sync-wave: "-2"',
    "Argo CD applies lower waves first and prunes in reverse: the ActionType (-2) must exist "
    "before the RBAC (-1) and the workflows (0) that name it, and outlive them on a prune. "
    "playbookctl register refuses a registry without it, through this same rule.",
    "metadata:\n  name: restart-deployment\n",
    "metadata:\n  name: restart-deployment\n  annotations:\n"
    '    argocd.argoproj.io/sync-wave: "-2"\n',
)
_r(
    "action-type.location",
    E,
    "an ActionType file in a subdirectory of registry/action-types/",
    "registry/kustomization.yaml lists only the files directly in registry/action-types/ "
    "(register writes it so), and Argo CD syncs only what it lists: a file nested deeper "
    "would never reach the cluster, and the workflows naming its ActionType would be refused.",
    "registry/action-types/team/restart-deployment.yaml",
    "registry/action-types/restart-deployment.yaml",
)
_r(
    "action-type.duplicate",
    E,
    "two ActionTypes share spec.name or metadata.name",
    "One would overwrite the other when Argo CD syncs registry/.",
    "two files with spec.name: RestartDeployment",
    "one ActionType per name",
)

# --- playbook.* ------------------------------------------------------------------------------

_r(
    "playbook.name",
    E,
    "the playbook directory name is not a DNS-1123 label",
    "The directory name is the workflow's, the image's and the bundle's name.",
    "playbooks/Restart_Deployment/",
    "playbooks/restart-deployment/",
)
_r(
    "playbook.missing-file",
    E,
    "a file every playbook needs is missing",
    "Every playbook has workflow.yaml, a Containerfile (or Dockerfile) and rbac.yaml. A "
    "folder holding playbook directories (playbooks/team/x/) is named as such: playbooks live "
    "directly under playbooks/.",
    "playbooks/x/ with only remediate.sh",
    "playbooks/x/{workflow.yaml,Containerfile,remediate.sh,rbac.yaml}",
)
_r(
    "playbook.empty-file",
    E,
    "a playbook YAML file holds no document",
    "An empty rbac.yaml or pipeline.yaml is almost always a mistake; remove it or fill it.",
    "rbac.yaml with only comments",
    "rbac.yaml with the ServiceAccount, Role and RoleBinding",
)
_r(
    "playbook.special-file",
    E,
    "a FIFO, device, broken link or link out of the playbook",
    "A playbook's source is regular files (and links inside it) only: anything else cannot "
    "be hashed, built or reviewed.",
    "ln -s /etc/passwd playbooks/x/data",
    "copy the file into the playbook",
    adjustable=False,
)
_r(
    "playbook.directory-link",
    E,
    "the playbook directory is a symbolic link",
    "The build's input is the repository's tree: git stores a link to a directory as a link, so "
    "lint, the source hash and a build would read whatever it points at on the machine "
    "(outside the repository, untracked files). Nothing behind the link is read.",
    "ln -s /elsewhere/restart-deployment playbooks/restart-deployment",
    "move the directory itself into playbooks/",
    adjustable=False,
)
_r(
    "playbook.file-name",
    E,
    "a file name in the playbook is not UTF-8",
    "File names are bytes, and a playbook's name every tool along the way (git, Tekton objects, "
    "registrations, the Containerfile, the image's layer) must agree on: a name that is not "
    "UTF-8 is shown with \\xNN escapes and refused.",
    "touch playbooks/x/$'\\xff'data",
    "rename the file to a UTF-8 name",
    adjustable=False,
)
_r(
    "playbook.untracked",
    E,
    "a file in the playbook is not in git (untracked)",
    "Images, the source hash and a release are made from git's objects (a dry run and `try` "
    "from the working tree's tracked files), so a file git does not hold is in none of them: "
    "it would lint, and look right in the checkout, yet never reach the image. A file an "
    "ignore rule covers is deliberate and not reported; publish says it leaves it out. Outside "
    "a git checkout nothing is reported.",
    "playbooks/x/helper.sh created, never git added",
    "git add playbooks/x/helper.sh",
    adjustable=False,
)
_r(
    "playbook.submodule",
    E,
    "a git submodule (or a repository of its own) inside the playbook",
    "Images, the source hash and a release are made from this repository's objects. A "
    "submodule is a gitlink there: a commit id of another repository, not its files, so they "
    "would be in no image (a clone without --recurse-submodules, CI's, has not even checked "
    "them out), and `git add` of a file inside cannot add it. A directory with a .git of its "
    "own is the same once added. Reported once per repository; its files get no "
    "playbook.untracked. Every stage reading the tree (plan, publish, the build context) "
    "refuses it in the same words.",
    "git submodule add https://example.com/lib.git playbooks/x/vendor/lib",
    "git rm --cached playbooks/x/vendor/lib; rm playbooks/x/vendor/lib/.git; "
    "git add playbooks/x/vendor/lib  (or fetch it in a RUN step from a pinned source)",
    adjustable=False,
)
_r(
    "playbook.git-conversion",
    E,
    "git converts a file in the playbook on checkout (.gitattributes)",
    "Images, the source hash and a release are made from git's objects. A .gitattributes "
    "conversion makes a checkout hold other bytes than git stores: a filter (Git LFS stores a "
    "pointer, git-crypt ciphertext), `ident`, a `working-tree-encoding`, `eol=crlf`. The "
    "image would then not hold the file lint and the author see. A machine's own "
    "`core.autocrlf` is not reported: it is not the repository's. Outside a git checkout "
    "nothing is reported.",
    "playbooks/x/** filter=lfs diff=lfs merge=lfs -text  (in .gitattributes)",
    "no attribute that converts the playbook's files; fetch large files in a RUN step",
    adjustable=False,
)
_r(
    "playbook.size",
    E,
    "the playbook directory is larger than max-playbook-bytes",
    "A playbook is source: scripts and manifests. Hundreds of megabytes mean a committed "
    "build artefact.",
    "playbooks/x/vendor.tar (200 MB)",
    "fetch large dependencies in the Containerfile",
)
_r(
    "playbook.pipeline-kind",
    E,
    "pipeline.yaml does not hold a Tekton Pipeline",
    "pipeline.yaml is optional; when present it is one tekton.dev/v1 Pipeline.",
    "kind: Task\n",
    "kind: Pipeline\n",
)
_r(
    "playbook.pipeline-api-version",
    E,
    "pipeline.yaml is not tekton.dev/v1",
    "Kubernaut creates a tekton.dev/v1 PipelineRun that resolves the bundle's Pipeline.",
    "apiVersion: tekton.dev/v1beta1\n",
    "apiVersion: tekton.dev/v1\n",
)
_r(
    "playbook.pipeline-name",
    E,
    "the Pipeline is not named workflow",
    "Kubernaut resolves the bundle with name `workflow`.",
    "metadata:\n  name: restart\n",
    "metadata:\n  name: workflow\n",
)
_r(
    "playbook.param-missing",
    E,
    "a workflow parameter the Pipeline does not declare",
    "Kubernaut passes every required parameter (and TARGET_RESOURCE) as a Pipeline param; an "
    "undeclared one makes the PipelineRun fail.",
    "workflow: REPLICAS required\npipeline params: []\n",
    "pipeline params:\n  - name: REPLICAS\n    type: string\n",
)
_r(
    "playbook.param-unused",
    W,
    "an optional workflow parameter the Pipeline does not declare",
    "Its value would be dropped; declare it (with the workflow's default) or remove it.",
    "workflow: TIMEOUT optional\npipeline params: []\n",
    'pipeline params:\n  - name: TIMEOUT\n    default: "600"\n',
)
_r(
    "playbook.param-no-default",
    E,
    "a Pipeline param without default that no workflow parameter fills",
    "Nobody would supply it, so every run fails.",
    "params:\n  - name: EXTRA\n",
    'params:\n  - name: EXTRA\n    default: ""\n',
)
_r(
    "playbook.param-default",
    E,
    "a Pipeline param whose default is not the workflow parameter's",
    "Kubernaut's agent reads the workflow's parameter schema and leaves an optional parameter "
    "out to get its default; nobody injects that default, so the run gets the Pipeline's. "
    "The Pipeline's default must be the workflow's, as the standard wrapper writes it (a "
    "number or boolean as its JSON text: `600`, `false`).",
    'workflow: MODE optional, default "safe"\npipeline params:\n  - name: MODE\n'
    '    default: "fast"\n',
    'pipeline params:\n  - name: MODE\n    default: "safe"\n',
)
_r(
    "playbook.env-reserved",
    E,
    "a parameter's value set as an environment variable the step's programs obey",
    "Parameter values come from alert data: Kubernaut's agent fills them in. As `PATH` a value "
    "decides which kubectl runs, as `LD_PRELOAD` or `BASH_ENV` what code loads, as "
    "`KUBERNETES_SERVICE_HOST` or `HTTPS_PROXY` where the ServiceAccount's token is sent. The "
    "standard wrapper passes every parameter as a variable of its own name, so such a name is "
    "refused in workflow.yaml; an authored pipeline passes the value under a name of its own.",
    "parameters:\n  - name: PATH\n    type: string\n",
    "parameters:\n  - name: SEARCH_PATH\n    type: string\n",
)
_r(
    "playbook.task-ref",
    E,
    "a Task or StepAction the Pipeline refers to instead of holding it",
    "The bundle holds the Pipeline only. A `taskRef` (or a step's `ref`) without a resolver is "
    "looked up in the run's namespace, where nothing of this repository installs a Task, so "
    "the run fails, or runs whatever someone put there; a resolver fetches it when the run "
    "starts. Only a bundle pinned by digest or a git commit fixes what a released version "
    "runs, as the images' digests do; otherwise write the task inline (`taskSpec`).",
    "tasks:\n  - name: act\n    taskRef:\n      name: restart\n",
    "tasks:\n  - name: act\n    taskSpec:\n      steps:\n        - name: act\n"
    "          image: playbook://self\n",
)
_r(
    "playbook.param-type",
    E,
    "a Pipeline param that is not a string",
    "Kubernaut passes every value as a string; an array or object param cannot receive it.",
    "params:\n  - name: NODES\n    type: array\n",
    "params:\n  - name: NODES\n    type: string   # split it in the script\n",
)
_r(
    "playbook.script-injection",
    E,
    "$(params.X) spliced into a script's source",
    "Tekton pastes the value into the script text before the shell runs it, and the values "
    "come from an AI agent reading alert data: a value like `x; rm -rf /` runs. Pass it "
    "through env and read the variable.",
    "script: |\n  kubectl rollout restart deploy/$(params.NAME)\n",
    "env:\n  - name: NAME\n    value: $(params.NAME)\nscript: |\n"
    '  kubectl rollout restart "deploy/$NAME"\n',
)
_r(
    "playbook.workspace-missing",
    E,
    "a dependency's workspace the Pipeline does not declare",
    "Kubernaut binds each dependency as workspace secret-<name> / configmap-<name>.",
    "dependencies: {secrets: [{name: token}]}\nworkspaces: []\n",
    "workspaces:\n  - name: secret-token\n    readOnly: true\n",
)
_r(
    "playbook.workspace-unbound",
    E,
    "a Pipeline workspace no dependency binds",
    "Kubernaut binds only the dependencies' workspaces; any other is never provided.",
    "workspaces:\n  - name: scratch\n",
    "use an emptyDir volume in the task, or add the dependency",
)
_r(
    "playbook.image-pinned",
    E,
    "a step image is not pinned by digest",
    "A tag can be moved; the bundle must run exactly the reviewed image: repo:tag@sha256:<64 hex> "
    "(or the playbook's own image placeholder).",
    "image: docker.io/alpine/k8s:1.34.1\n",
    "image: docker.io/alpine/k8s:1.34.1@sha256:ec714df3...\n",
)
_r(
    "playbook.image-latest",
    E,
    "an image uses the :latest tag",
    ":latest says nothing about what runs; pin a release tag and its digest.",
    "image: alpine:latest\n",
    "image: alpine:3.20@sha256:...\n",
)
_r(
    "playbook.base-image-pinned",
    E,
    "the Containerfile's FROM is not pinned by digest",
    "The base image must be a real published digest (tag@sha256:...), with a comment saying "
    "where it was published.",
    "FROM docker.io/alpine/k8s:1.34.1\n",
    "# digest from https://hub.docker.com/r/alpine/k8s/tags\n"
    "FROM docker.io/alpine/k8s:1.34.1@sha256:ec714df3...\n",
)
_r(
    "playbook.add-url",
    E,
    "ADD fetches a URL without --checksum",
    "`ADD <url>` downloads at build time and takes whatever the server sends that day: the "
    "image is no longer made from what was reviewed. (`ADD --checksum` needs BuildKit; the "
    "engine path's classic builder refuses it: see playbook.builder-flag.)",
    "ADD https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kubectl /usr/local/bin/\n",
    "RUN curl -fsSLo /usr/local/bin/kubectl https://dl.k8s.io/.../kubectl \\\n"
    '    && echo "<sha256>  /usr/local/bin/kubectl" | sha256sum -c -\n',
)
_r(
    "playbook.copy-from-pinned",
    E,
    "COPY --from names an image not pinned by digest",
    "`COPY --from=<image>` pulls the image at build time; by tag, that is whatever the tag "
    "points at that day. An earlier stage's name (or index) is fine.",
    "COPY --from=bitnami/kubectl:1.34 /opt/bitnami/kubectl/bin/kubectl /usr/local/bin/\n",
    "COPY --from=bitnami/kubectl:1.34@sha256:<64 hex> /opt/bitnami/kubectl/bin/kubectl "
    "/usr/local/bin/\n",
)
_r(
    "playbook.run-download",
    W,
    "a RUN step downloads (curl, wget...) and nothing checks what arrived",
    "A download in a RUN step is only as good as the check after it: `sha256sum -c` (or "
    "another `*sum -c`, `gpg --verify`, `cosign verify-blob`) in the same RUN step or a later "
    "one of the same stage. Package managers (microdnf, apt-get) check their own signatures "
    "and are not downloads here. RUN steps are read with a real shell parser (tree-sitter-bash).",
    "RUN curl -fsSLo /usr/local/bin/kubectl https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/"
    "kubectl\n",
    "RUN curl -fsSLo /usr/local/bin/kubectl https://dl.k8s.io/.../kubectl \\\n"
    '    && echo "<sha256>  /usr/local/bin/kubectl" | sha256sum -c -\n',
)
_r(
    "playbook.builder-flag",
    E,
    "a Containerfile flag or heredoc the builder of this playbook refuses",
    "A RUN-less Containerfile is assembled without an engine, where `COPY --chmod` with an "
    "octal mode works; any other (a RUN step, a symbolic or setuid/setgid/sticky --chmod, "
    "which BuildKit versions read differently, or the assemble setting `never`) is built by "
    "the engine's classic "
    "builder (Docker 20.10), which refuses every BuildKit flag (`--chmod`, `--link`, "
    "`ADD --checksum`, `RUN --mount`/`--network`, `HEALTHCHECK --start-interval`) and reads "
    "no heredoc. Lint judges each flag by the builder that will actually build the playbook, "
    "decided as publish decides it. Every builder, BuildKit too, matches flag names exactly "
    "and takes a flag once: `--CHMOD` and a repeated `--chown` are errors on either path.",
    "RUN true\nCOPY --chmod=0755 remediate.sh /usr/local/bin/\n",
    "RUN true\nCOPY remediate.sh /usr/local/bin/\n# git update-index --chmod=+x remediate.sh\n",
)
_r(
    "playbook.dockerignore-pattern",
    E,
    "a .dockerignore pattern Docker refuses, or that playbookctl does not read as Docker does",
    "The build context is chosen as `docker build` chooses it (moby's .dockerignore rules, for "
    "assembled and engine-built images alike). Docker refuses some patterns (`!` alone, an "
    "unclosed `[`, a trailing `\\`) and turns each pattern into a Go regular expression, where "
    "`\\d` is a digit, `[[:alpha:]]` a letter class and a `*` inside `[...]` breaks the class: "
    "those are not reproduced, so publish refuses to choose a context rather than send another "
    "one. A line that is not UTF-8 is reported too.",
    "\\d*.log\ncache[*]\n",
    "[0-9]*.log\ncache\\*\n",
)
_r(
    "playbook.dockerignore-version",
    W,
    "a .dockerignore pattern Docker versions read differently",
    "Docker 20.10 and earlier read `+`, `(`, `)`, `|`, `{` and `}` in a pattern as "
    "regular-expression syntax, Docker 23 and later as characters; `^` is an anchor in a "
    "pattern with a wildcard (in every pattern in 20.10); `**x` ends with x in 23+ (`ax` too) "
    "and is `**/x` in 20.10. The context follows Docker 23+ (what `docker build` sends today); "
    "whether the daemon removes the Containerfile or the .dockerignore is left to the engine, "
    "which then builds the image. Escaped (`\\+`, `\\^`), or written `**/x`, every version "
    "reads the pattern alike.",
    "lib/c++\n**.pyc\n",
    "lib/c\\+\\+\n**/*.pyc\n",
)
_r(
    "playbook.dockerignore-excluded",
    E,
    "a COPY or ADD source that .dockerignore keeps out of the build context",
    "The build context is the playbook directory less what .dockerignore excludes, chosen as "
    '`docker build` chooses it; a COPY of a file it excludes fails the build ("no such file or '
    "directory\"), on the engine and in assembly alike. The scaffold's .dockerignore is `*` "
    "then `!remediate.sh`: every file added to the image needs its own `!` line, at the end "
    "(the last matching line decides). A source that a wildcard or a variable names is not "
    "judged.",
    "# .dockerignore: *, then !remediate.sh\nCOPY remediate.sh helpers.sh /usr/local/bin/\n",
    "# .dockerignore: *, !remediate.sh, then !helpers.sh\n"
    "COPY remediate.sh helpers.sh /usr/local/bin/\n",
)
_r(
    "playbook.containerfile-user",
    E,
    "the image's final USER is missing, root or not numeric",
    "Kubernaut runs steps with runAsNonRoot, which needs a numeric non-root user in the "
    "image. A variable USER is judged by its default: `${UID:-0}` by 0 (unless an earlier "
    "`ARG UID=...` has a value), `$UID` by the earlier ARG's default; one with no default at "
    "all cannot be checked and is a warning.",
    "USER root\n",
    "USER 65532:65532\n",
)
_r(
    "playbook.non-root",
    W,
    "nothing shows a step image runs as non-root",
    "A step running another image without securityContext.runAsUser/runAsNonRoot may run as root.",
    "steps:\n  - image: alpine:3.20@sha256:...\n",
    "steps:\n  - image: alpine:3.20@sha256:...\n    securityContext:\n      runAsNonRoot: true\n"
    "      runAsUser: 65532\n",
)
_r(
    "playbook.placeholder-misplaced",
    E,
    "the image placeholder outside a step, sidecar or stepTemplate image",
    "The release replaces `playbook://self` only in those image fields; anywhere else it would "
    "reach the cluster verbatim.",
    "env:\n  - name: IMG\n    value: playbook://self\n",
    "image: playbook://self\n",
)
_r(
    "playbook.placeholder-unused",
    W,
    "no step runs the playbook's own image",
    "The image built from the Containerfile would never run.",
    "steps:\n  - image: alpine:3.20@sha256:...\n",
    "steps:\n  - image: playbook://self\n",
)
_r(
    "playbook.rbac-kind",
    E,
    "rbac.yaml holds something other than RBAC objects",
    "rbac.yaml holds the run's ServiceAccount, Roles/ClusterRoles and bindings only.",
    "kind: Deployment\n",
    "kind: ServiceAccount\n",
)
_r(
    "playbook.rbac-namespace",
    E,
    "a namespaced RBAC object without (or with the wrong) namespace",
    "ServiceAccounts, Roles and RoleBindings live in the run namespace (kubernaut-workflows); "
    "without a namespace they land wherever they are applied.",
    "kind: ServiceAccount\nmetadata:\n  name: x-sa\n",
    "kind: ServiceAccount\nmetadata:\n  name: x-sa\n  namespace: kubernaut-workflows\n",
)
_r(
    "playbook.rbac-service-account",
    E,
    "serviceAccountName and rbac.yaml's ServiceAccount disagree",
    "The run uses execution.serviceAccountName; rbac.yaml must declare exactly that "
    "ServiceAccount in the run namespace.",
    "serviceAccountName: restart-sa   # rbac.yaml declares restart-deployment-sa\n",
    "serviceAccountName: restart-deployment-sa\n",
)
_r(
    "playbook.rbac-binding",
    E,
    "a binding that does not grant to the playbook's ServiceAccount",
    "Every RoleBinding/ClusterRoleBinding in rbac.yaml binds the run's ServiceAccount; any "
    "other subject is a grant nobody reviewed for this playbook.",
    "subjects:\n  - {kind: ServiceAccount, name: default, namespace: kubernaut-workflows}\n",
    "subjects:\n  - {kind: ServiceAccount, name: x-sa, namespace: kubernaut-workflows}\n",
)

_r(
    "action-type.placeholder-text",
    W,
    "an ActionType description still holds the scaffold's TODO text",
    "`playbookctl new` writes TODO: descriptions; Kubernaut's agent would read them as the "
    "description of the action.",
    "spec:\n  description:\n    what: 'TODO: what it does'\n",
    "spec:\n  description:\n    what: Rolling restart of a Deployment\n",
)
_r(
    "workflow.optional-no-default",
    W,
    "an optional parameter without a default",
    "Nobody else supplies a value for an optional parameter: without a default the step sees "
    "an empty string.",
    "- name: TIMEOUT\n  type: integer\n  required: false\n",
    "- name: TIMEOUT\n  type: integer\n  required: false\n  default: 600\n",
)
_r(
    "workflow.fleet-cluster",
    W,
    "no labels.cluster, while `fleet = true` says Kubernaut runs as a fleet hub",
    "In a fleet, Kubernaut's catalog search for a signal from a member cluster excludes every "
    "workflow whose labels.cluster is empty (matchesArrayLabel, BR-FLEET-003 R6, "
    'internal/kubernautagent/workflowcatalog/cache_filter.go @ d5a4a870); "*" matches every '
    "cluster. Reported only with `fleet = true` in [tool.playbookctl] (PLAYBOOKCTL_FLEET): "
    "outside a fleet, signals carry no cluster and the label is not consulted.",
    _WF + "labels:\n    severity: [critical]\n    priority: P1\n",
    _WF + "labels:\n    severity: [critical]\n    priority: P1\n    cluster: ['*']\n",
)
_r(
    "playbook.execution-timeout",
    W,
    "a Pipeline timeout longer than Kubernaut waits for the run",
    "Kubernaut sets no timeout on the PipelineRun; its orchestrator marks the remediation timed "
    "out after 30 minutes in Executing by default (applyTimeoutDefaults, "
    "internal/controller/remediationorchestrator/reconciler.go @ d5a4a870) while the run goes "
    "on. A task, finally task or step timeout above that (or 0, no limit), or runAfter-chained "
    "tasks whose timeouts add up to more, lets the run work on after Kubernaut has given up.",
    "tasks:\n  - name: drain\n    timeout: 40m\n",
    "tasks:\n  - name: drain\n    timeout: 25m\n",
)
_r(
    "playbook.placeholder-text",
    W,
    "the scaffold's TODO texts or unimplemented script are still there",
    "`playbookctl new` leaves TODO: descriptions and a remediate.sh that fails at `act`; they "
    "lint as warnings until you write the playbook.",
    "what: 'TODO: what it does'\n",
    "what: Rolling restart of a Deployment\n",
)
_r(
    "playbook.executable",
    E,
    "a file the image runs is not executable in git",
    "A file the Containerfile copies and runs (ENTRYPOINT, CMD, RUN, a step's command) must be "
    "mode 100755 in git's index (outside git: executable on disk) unless COPY --chmod sets it; "
    'otherwise the step dies with "permission denied".',
    "git add remediate.sh            # mode 100644\n",
    "git add --chmod=+x remediate.sh  # mode 100755\n",
)
_r(
    "playbook.param-undeclared",
    W,
    "a Pipeline param with a default that the workflow does not declare",
    "Kubernaut's agent can only set parameters the workflow declares; this one always keeps "
    "its default.",
    "workflow: no DRY_RUN\npipeline params:\n  - {name: DRY_RUN, default: 'false'}\n",
    "workflow parameters:\n  - {name: DRY_RUN, type: boolean, required: false, default: false}\n",
)
_r(
    "playbook.version-bump",
    E,
    "content changed under a version registry/ already registers",
    "Image and bundle tags are never overwritten: change anything in the playbook and bump "
    "spec.version, or plan and the release refuse it.",
    'spec:\n  version: "1.0.0"   # registered, content since changed\n',
    'spec:\n  version: "1.0.1"\n',
)
_r(
    "playbook.registration-path",
    E,
    "something is in the way of registry/workflows/<name>.yaml",
    "register writes the playbook's registration there; a directory or a foreign file at "
    "that path would stop the release.",
    "registry/workflows/restart-deployment.yaml/   # a directory\n",
    "(nothing there, or the file register wrote)",
)
_r(
    "playbook.duplicate-object",
    E,
    "rbac.yaml defines an object another playbook's rbac.yaml defines too",
    "registry/ is one kustomization Argo CD builds and syncs whole; with an object (a Role, a "
    "ClusterRole, a ServiceAccount) defined twice kustomize builds nothing, and nothing syncs "
    "for any playbook. plan and the release refuse the playbook that brings the second one.",
    "kind: ClusterRole\nmetadata:\n  name: kubernaut-workflow-restart   # as another playbook's\n",
    "kind: ClusterRole\nmetadata:\n  name: kubernaut-workflow-scale-deployment\n",
)
_r(
    "rbac.appproject",
    E,
    "an object the Argo CD AppProject would not deploy",
    "Every object of rbac.yaml, and the workflow, must be allowed by the AppProject of "
    "registry/argocd/: its namespace a destination, its kind through the cluster- or "
    "namespace-resource whitelist and blacklist (as Argo CD matches them). Argo CD refuses the "
    "whole sync otherwise.",
    "kind: ClusterRole   # the project whitelists no cluster-scoped RBAC\n",
    "kind: Role\nmetadata:\n  namespace: kubernaut-workflows\n",
)
_r(
    "rbac.wildcard",
    W,
    "a Role or ClusterRole grants * verbs or resources",
    "Grant exactly the verbs and resources the script's kubectl calls need.",
    "rules:\n  - apiGroups: [apps]\n    resources: ['*']\n    verbs: ['*']\n",
    "rules:\n  - apiGroups: [apps]\n    resources: [deployments]\n    verbs: [get, patch]\n",
)

_RB = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\nrules:\n"
_r(
    "rbac.api-group",
    E,
    "a rule names an API group the pinned Kubernetes release does not have",
    "apiGroups are checked against the discovery data of the pinned Kubernetes release "
    "(tooling/playbookctl/schemas/kubernetes-api-1.34.json). The core group is the empty string. "
    "Groups with a dot that are not built in (a custom resource's, `argoproj.io`) are not "
    "checked.",
    _RB + "  - apiGroups: [app]\n    resources: [deployments]\n    verbs: [get]\n",
    _RB + "  - apiGroups: [apps]\n    resources: [deployments]\n    verbs: [get]\n",
)
_r(
    "rbac.resource",
    E,
    "a rule names a resource its API groups do not have (singular, wrong group, bad subresource)",
    "RBAC matches resources by their plural name within the listed groups: `deployment` "
    '(singular) or `deployments` under `apiGroups: [""]` grant nothing, silently. The message '
    "names the plural and the group the pinned Kubernetes release has.",
    _RB + '  - apiGroups: [""]\n    resources: [deployment]\n    verbs: [get]\n',
    _RB + "  - apiGroups: [apps]\n    resources: [deployments]\n    verbs: [get]\n",
)
_r(
    "rbac.verb",
    E,
    "a rule names a verb that is not a Kubernetes API verb",
    "API verbs are get, list, watch, create, update, patch, delete and deletecollection (plus "
    "use, bind, escalate, impersonate, approve, sign, attest for a few resources). kubectl "
    "subcommands are not verbs: `rollout undo` is get/patch on the object and list on its "
    "ReplicaSets. A real verb the API serves on none of the rule's resources (`list` on "
    "`pods/log`) is a warning: it grants nothing.",
    _RB + "  - apiGroups: [apps]\n    resources: [deployments]\n    verbs: [get, undo]\n",
    _RB + "  - apiGroups: [apps]\n    resources: [deployments]\n    verbs: [get, patch]\n",
)

# --- k8s.* -------------------------------------------------------------------------------------

_r(
    "k8s.schema",
    E,
    "a built-in Kubernetes object that the API server would refuse",
    "rbac.yaml's objects and built-in objects under registry/ are validated, as the cluster "
    "reads them (YAML 1.1: an unquoted `on`, `yes` or `1.10` is a boolean or number), against "
    "the strict JSON schema of the pinned Kubernetes release (kubernetes-validate, 1.34): "
    "unknown fields, wrong types, missing required fields.",
    "kind: ServiceAccount\nmetadata:\n  name: runner\n  labels:\n    kubernaut.ai/managed: on\n",
    'kind: ServiceAccount\nmetadata:\n  name: runner\n  labels:\n    kubernaut.ai/managed: "on"\n',
    adjustable=False,
)

# --- script.* ----------------------------------------------------------------------------------

_r(
    "script.variable",
    E,
    "a script reads a variable that nothing provides",
    "Every variable a playbook's script reads must be a workflow parameter passed in the step's "
    "env, set by the script, in the image's ENV, or provided by the runtime (PATH, HOME, "
    "HOSTNAME, KUBERNETES_SERVICE_*) or bash (SECONDS, RANDOM...). Error when the read kills "
    "the run (`set -u`, `${X:?}`); warning otherwise (read as empty, or its default always "
    "applies).",
    "set -u\nif [[ $DRY_RUN == true ]]; then exit 0; fi\n",
    "# workflow.yaml declares DRY_RUN (type boolean, default false)\nset -u\n"
    "if [[ $DRY_RUN == true ]]; then exit 0; fi\n",
)
_r(
    "script.tekton-substitution",
    E,
    "$(params.X) or another Tekton variable written inside a script file",
    "Tekton substitutes $(...) only in the Pipeline and Task YAML; in a script of the image, "
    "bash runs a command named `params.X` and uses its empty output. Parameters reach the "
    "script as environment variables of the same name.",
    'kubectl scale deployment "$(params.NAME)" --replicas=1\n',
    'kubectl scale deployment "$NAME" --replicas=1\n',
)
_r(
    "script.rbac",
    E,
    "a kubectl call needs API access that rbac.yaml does not grant",
    "kubectl calls are mapped to the API requests kubectl 1.34 makes (`rollout undo "
    "deployment` = get/patch deployments.apps and list replicasets.apps; `drain` = get/patch "
    "nodes, list pods, create pods/eviction, get daemonsets.apps; `scale` = patch the /scale "
    "subresource) and checked against the Roles and ClusterRoles of rbac.yaml. The message "
    "ends with the rules to paste.",
    "kubectl rollout undo deployment/web   # rbac.yaml grants only get deployments\n",
    "# rbac.yaml: deployments get/patch and replicasets list in apiGroups [apps]\n"
    "kubectl rollout undo deployment/web\n",
)
_r(
    "script.unchecked",
    Severity.INFO,
    "what the script contract could not check, and why",
    "A kubectl call whose resource type comes from a variable, `apply -f`, a custom resource, "
    "a rule granted only for some resourceNames, or a part the shell parser could not read: "
    "said, never guessed. Never fails a run.",
    'kubectl get "$KIND" "$NAME"\n',
    'kubectl get deployments.apps "$NAME"\n',
)

# --- tekton.* (Tekton v1.14's admission validation) ------------------------------------------

_P = "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n"
_K = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n"
_t(
    "tekton.unknown-field",
    "a field Tekton's types do not have",
    "Tekton decodes strictly (unknown fields disallowed); one unknown key refuses the whole "
    "object, before any other rule.",
    _K + "  steps:\n    - image: alpine\n      scripts: echo hi\n",
    _K + "  steps:\n    - image: alpine\n      script: echo hi\n",
)
_t(
    "tekton.field-type",
    "a value of the wrong JSON type",
    "A number or boolean where a string is wanted (often an unquoted `y`, `no` or `1e3`), a "
    "map where a list is: the decoder refuses the object.",
    _P + "  params:\n    - name: y\n",
    _P + '  params:\n    - name: "y"\n',
)
_t(
    "tekton.param-value",
    "a param without a value",
    "It decodes, but knative's webhook round-trips the object through JSON and an unset "
    "ParamValue cannot be encoded (`impossible ParamValues.Type`): admission refuses it.",
    _P
    + "  tasks:\n    - name: t\n      taskRef: {name: build}\n      params:\n        - name: a\n",
    _P + '      params:\n        - name: a\n          value: ""\n',
)
_t(
    "tekton.disallowed-field",
    "a field Tekton decodes but refuses",
    "v1beta1's PipelineResources (spec.resources, a task's resources) and similar fields are "
    "kept in the types for conversion and refused by validation.",
    "apiVersion: tekton.dev/v1beta1\nkind: Pipeline\nspec:\n"
    "  resources: [{name: src, type: git}]\n",
    "use workspaces instead of PipelineResources",
)
_t(
    "tekton.feature-gate",
    "an alpha feature, off by default",
    "Tekton v1.14's default flags enable beta features (resolvers, matrix, onError on "
    "pipeline tasks) and refuse alpha ones: param enum, CEL in when, artifacts, "
    "pipelineRef/pipelineSpec in a pipeline task, stdoutConfig.",
    _P + "  params:\n    - name: mode\n      enum: [a, b]\n",
    _P + "  params:\n    - name: mode\n",
)
_t(
    "tekton.metadata-name",
    "metadata.name is not a valid DNS name",
    "Lower-case alphanumerics and '-', at most 63 characters.",
    "metadata:\n  name: My_Pipeline\n",
    "metadata:\n  name: my-pipeline\n",
)
_t(
    "tekton.empty-spec",
    "the spec is empty",
    "A Pipeline needs at least tasks (or description, params, workspaces).",
    _P + "  {}\n",
    _P + "  tasks:\n    - name: t\n      taskRef: {name: build}\n",
)
_t(
    "tekton.name",
    "a pipeline task name is not a DNS label",
    "Pipeline task names are DNS-1123 labels.",
    _P + "  tasks:\n    - name: Build_It\n",
    _P + "  tasks:\n    - name: build-it\n",
)
_t(
    "tekton.duplicate-task",
    "two pipeline tasks share a name",
    "Task names are unique across tasks and finally.",
    _P + "  tasks:\n    - name: a\n    - name: a\n",
    _P + "  tasks:\n    - name: a\n    - name: b\n",
)
_t(
    "tekton.task-ref",
    "a pipeline task's taskRef/taskSpec is missing, doubled or malformed",
    "Exactly one of taskRef and taskSpec; a taskRef names a Task (a DNS-style name) or a "
    "resolver; an embedded taskSpec with steps takes no apiVersion or kind.",
    _P + "  tasks:\n    - name: t\n",
    _P + "  tasks:\n    - name: t\n      taskRef: {name: build}\n",
)
_t(
    "tekton.custom-task",
    "a custom task without kind or with a malformed apiVersion",
    "A taskRef/taskSpec with an apiVersion is a custom task: its apiVersion must be "
    "group/version (a taskRef's empty kind defaults to Task).",
    _P + "  tasks:\n    - name: w\n      taskRef: {apiVersion: example.dev, kind: Wait}\n",
    _P + "  tasks:\n    - name: w\n      taskRef: {apiVersion: example.dev/v1, kind: Wait}\n",
)
_t(
    "tekton.on-error",
    "a pipeline task's onError is invalid",
    'onError is "continue" or "stopAndFail"; "continue" cannot be combined with retries.',
    "onError: ignore\n",
    "onError: continue\n",
)
_t(
    "tekton.run-after",
    "runAfter names a task that does not exist (or itself)",
    "runAfter lists other tasks of the same pipeline.",
    "runAfter: [nope]\n",
    "runAfter: [build]\n",
)
_t(
    "tekton.cycle",
    "the task graph has a cycle",
    "runAfter and result references make a graph that must be acyclic.",
    "a runAfter b, b runAfter a",
    "a, then b runAfter a",
)
_t(
    "tekton.finally",
    "a finally task breaks finally's rules",
    "finally tasks take no runAfter, and may not use results of other finally tasks.",
    "finally:\n  - name: f\n    runAfter: [t]\n",
    "finally:\n  - name: f\n",
)
_t(
    "tekton.when",
    "a when expression is invalid",
    "Each has input, operator (in/notin) and a non-empty values list of strings.",
    "when:\n  - input: $(params.env)\n    operator: equals\n    values: [prod]\n",
    "when:\n  - input: $(params.env)\n    operator: in\n    values: [prod]\n",
)
_t(
    "tekton.matrix",
    "a matrix is invalid",
    "At most 256 combinations, unique matrix params, a param either in matrix or in params, "
    "and results of a matrixed task consumed whole.",
    "matrix:\n  params:\n    - {name: x, value: [a, b]}\nparams:\n  - {name: x, value: c}\n",
    "matrix:\n  params:\n    - {name: x, value: [a, b]}\n",
)
_t(
    "tekton.duplicate-param",
    "two params share a name",
    "Param names are unique within a task's params, a matrix, or a spec's params.",
    "params:\n  - {name: a, value: x}\n  - {name: a, value: y}\n",
    "params:\n  - {name: a, value: x}\n  - {name: b, value: y}\n",
)
_t(
    "tekton.param-name",
    "a param name has the wrong format",
    "String and array param names: letters, digits, '_', '-', '.', starting with a letter or "
    "'_'; object param names and keys take no dots.",
    "params:\n  - name: 1st\n",
    "params:\n  - name: first\n",
)
_t(
    "tekton.param-type",
    "a param's type and its default or value disagree",
    "type is string, array or object, and the default has that type.",
    "params:\n  - name: a\n    type: array\n    default: x\n",
    "params:\n  - name: a\n    type: array\n    default: [x]\n",
)
_t(
    "tekton.param-enum",
    "a param enum is invalid",
    "enum (alpha) lists distinct strings and contains the default.",
    "enum: [a, a]\n",
    "enum: [a, b]\n",
)
_t(
    "tekton.param-properties",
    "an object param without properties",
    "An object param declares its keys under properties.",
    "params:\n  - name: o\n    type: object\n",
    "params:\n  - name: o\n    type: object\n    properties: {url: {type: string}}\n",
)
_t(
    "tekton.param-reference",
    "a reference to a param that does not exist",
    "$(params.X) must name a declared param (or key of an object param).",
    "script: echo $(params.nmae)\n",
    "script: echo $(params.name)\n",
)
_t(
    "tekton.param-usage",
    "an array or object param used where a string is wanted",
    "Array params are used whole (`$(params.a[*])`) only in list fields, in isolation; object "
    "params by key.",
    'args: ["x $(params.list[*])"]\n',
    'args: ["$(params.list[*])"]\n',
)
_t(
    "tekton.variable-prefix",
    "a $(...) reference in params, when or matrix with an unknown prefix",
    "Tekton v1.14 refuses `$(HOME)`-style references there: a variable must start with params, "
    "tasks, finally, context, workspaces or results. For a shell variable write ${VAR}.",
    "params:\n  - name: dir\n    value: $(HOME)/work\n",
    "params:\n  - name: dir\n    value: ${HOME}/work\n",
)
_t(
    "tekton.context-variable",
    "an unknown $(context...) variable in a pipeline",
    "Pipelines know context.pipelineRun.{name,namespace,uid}, context.pipeline.name and "
    "context.pipelineTask.retries.",
    "value: $(context.pipelineRun.id)\n",
    "value: $(context.pipelineRun.uid)\n",
)
_t(
    "tekton.context-reference",
    "an unknown $(context...) variable in a task",
    "Tasks know context.taskRun.{name,namespace,uid} and context.task.{name,retry-count}.",
    "script: echo $(context.task.id)\n",
    "script: echo $(context.task.name)\n",
)
_t(
    "tekton.execution-status",
    "a misuse of $(tasks.X.status) or aggregate status",
    "Execution status is readable only in finally tasks (params and when), of existing tasks.",
    "tasks:\n  - name: b\n    params: [{name: s, value: $(tasks.a.status)}]\n",
    "finally:\n  - name: b\n    params: [{name: s, value: $(tasks.a.status)}]\n",
)
_t(
    "tekton.result-reference",
    "a result reference to a task or result that does not exist",
    "$(tasks.T.results.R) names an earlier task and one of its results; a Task's script "
    "writes only its declared results.",
    "value: $(tasks.ghost.results.sum)\n",
    "value: $(tasks.add.results.sum)\n",
)
_t(
    "tekton.result-name",
    "a result name has the wrong format",
    "Letters, digits, '-', '_', '.', starting and ending alphanumeric.",
    "results:\n  - name: -out\n",
    "results:\n  - name: out\n",
)
_t(
    "tekton.result-type",
    "a result type is invalid",
    "Task results are string, array or object; step results likewise.",
    "results:\n  - name: out\n    type: number\n",
    "results:\n  - name: out\n    type: string\n",
)
_t(
    "tekton.result-value",
    "a result value that does not reference a step result",
    "A Task result's value fetches a step's result: $(steps.S.results.R).",
    "results:\n  - name: out\n    value: hello\n",
    "results:\n  - name: out\n    value: $(steps.build.results.out)\n",
)
_t(
    "tekton.pipeline-result",
    "a pipeline result is invalid",
    "Pipeline results reference task results, with the right type, and never of a task "
    "that may be skipped by a missing result.",
    "results:\n  - name: r\n    value: plain text\n",
    "results:\n  - name: r\n    value: $(tasks.build.results.digest)\n",
)
_t(
    "tekton.workspace",
    "a pipeline task binds a workspace the pipeline does not declare",
    "A pipeline task's workspaces map to the pipeline's declared workspaces.",
    "workspaces:\n  - name: src\n    workspace: source   # not declared\n",
    "spec:\n  workspaces: [{name: source}]\n",
)
_t(
    "tekton.duplicate-workspace",
    "two workspaces share a name",
    "Workspace names are unique.",
    "workspaces: [{name: src}, {name: src}]\n",
    "workspaces: [{name: src}, {name: out}]\n",
)
_t(
    "tekton.undefined-workspace",
    "a step or sidecar uses a workspace the task does not declare",
    "A step's workspaces name the task's declared workspaces.",
    "steps:\n  - workspaces: [{name: cache}]\n",
    "workspaces: [{name: cache}]\nsteps:\n  - workspaces: [{name: cache}]\n",
)
_t(
    "tekton.workspace-mount-path",
    "workspace mount paths collide",
    "Two workspaces, or a workspace and a volumeMount, cannot mount at the same path.",
    "workspaces:\n  - {name: a, mountPath: /data}\n  - {name: b, mountPath: /data}\n",
    "workspaces:\n  - {name: a, mountPath: /data/a}\n  - {name: b, mountPath: /data/b}\n",
)
_t(
    "tekton.duplicate-volume",
    "two volumes share a name",
    "Volume names are unique within a task.",
    "volumes: [{name: v, emptyDir: {}}, {name: v, emptyDir: {}}]\n",
    "volumes: [{name: v, emptyDir: {}}]\n",
)
_t(
    "tekton.volume-mount",
    "a volumeMount under /tekton/ or with a reserved name",
    "/tekton/ (after path cleaning) is Tekton's own, except /tekton/home; names starting "
    "tekton-internal- are reserved.",
    "volumeMounts:\n  - {name: d, mountPath: /tekton/data}\n",
    "volumeMounts:\n  - {name: d, mountPath: /data}\n",
)
_t(
    "tekton.missing-steps",
    "a task without steps",
    "A Task (or embedded taskSpec) needs at least one step.",
    _K + "  params: []\n",
    _K + "  steps:\n    - image: alpine\n      script: echo hi\n",
)
_t(
    "tekton.step-name",
    "a step name is invalid or repeated",
    "Step names are DNS labels, unique within the task.",
    "steps:\n  - name: Build\n",
    "steps:\n  - name: build\n",
)
_t(
    "tekton.step-image",
    "a step without image",
    "Every step (not using a StepAction ref) has an image.",
    "steps:\n  - script: echo hi\n",
    "steps:\n  - image: alpine\n    script: echo hi\n",
)
_t(
    "tekton.step-script",
    "a step script that cannot run",
    "script and command are exclusive; a Windows script (#!win) needs the feature.",
    "steps:\n  - image: alpine\n    command: [sh]\n    script: echo hi\n",
    "steps:\n  - image: alpine\n    script: echo hi\n",
)
_t(
    "tekton.step-on-error",
    "a step's onError is invalid",
    'Tekton v1.14: "continue" or "stopAndFail" (continueAndFail came later).',
    "onError: continueAndFail\n",
    "onError: continue\n",
)
_t(
    "tekton.step-timeout",
    "a negative step timeout",
    "A step timeout is a non-negative Go duration.",
    "timeout: -1s\n",
    "timeout: 5m\n",
)
_t(
    "tekton.step-ref",
    "a StepAction ref misused",
    "A step with ref takes no image, script, command, args or env of its own.",
    "steps:\n  - ref: {name: git-clone}\n    image: alpine\n",
    "steps:\n  - ref: {name: git-clone}\n",
)
_t(
    "tekton.step-result-reference",
    "a reference to a step result that does not exist",
    "$(steps.S.results.R) names an earlier step and a result it declares.",
    "value: $(steps.ghost.results.out)\n",
    "value: $(steps.build.results.out)\n",
)
_t(
    "tekton.step-artifact-reference",
    "a step artifact reference (alpha)",
    "Artifacts are an alpha feature, off by default in v1.14.",
    "script: cat $(step.artifacts.path)\n",
    "write to a result instead",
)
_t(
    "tekton.sidecar-name",
    "a sidecar name is invalid",
    "Sidecar names are DNS labels and not the reserved ones.",
    "sidecars:\n  - name: Proxy\n",
    "sidecars:\n  - name: proxy\n",
)
_t(
    "tekton.sidecar-image",
    "a sidecar without image",
    "Every sidecar has an image.",
    "sidecars:\n  - name: proxy\n",
    "sidecars:\n  - name: proxy\n    image: envoy:1.30@sha256:...\n",
)
_t(
    "tekton.sidecar-script",
    "a sidecar script and command together",
    "script and command are exclusive, as for steps.",
    "sidecars:\n  - {name: s, image: a, command: [sh], script: echo}\n",
    "sidecars:\n  - {name: s, image: a, script: echo}\n",
)

# --- external tools' families ------------------------------------------------------------------

# --- verify.* and bundle.*: what `verify` and `inspect` report (not lint, but catalogued so
# every id a command prints is explained by `playbookctl rules` and RULES.md) -------------

_r(
    "verify.registration",
    E,
    "a registration file holds exactly one RemediationWorkflow",
    "`verify` reads registry/workflows/<name>.yaml as register writes it: one "
    "RemediationWorkflow and its RBAC objects. None, or two, means the file was not written by "
    "register.",
    "# registry/workflows/a.yaml: two RemediationWorkflow documents\n",
    "# one RemediationWorkflow, written by playbookctl register\n",
)

_r(
    "verify.registration-kind",
    E,
    "only the RemediationWorkflow and its RBAC objects belong in a registration",
    "A registration may hold the RemediationWorkflow, its ServiceAccount, Role(Binding)s and "
    "ClusterRole(Binding)s; the Argo CD project allows nothing else, so any other kind would "
    "fail the sync.",
    "kind: ConfigMap\n",
    "kind: ServiceAccount\n",
)

_r(
    "verify.registration-namespace",
    E,
    "a registration's RBAC objects are in the namespace the PipelineRuns run in",
    "The ServiceAccount, Roles and RoleBindings register writes are namespaced to run-namespace "
    "(where Kubernaut creates the PipelineRuns); anywhere else the run's ServiceAccount does not "
    "exist or lacks its rights.",
    "metadata: {namespace: default}\n",
    "metadata: {namespace: kubernaut-workflows}\n",
)

_r(
    "verify.kustomization",
    E,
    "registry/kustomization.yaml lists exactly the registration and ActionType files, as "
    "register writes it",
    "Argo CD syncs what the kustomization lists: a listed file that does not exist breaks the "
    "build, an unlisted one is not synced until the next release (a warning), and any other text "
    "than register's is a hand edit.",
    "resources: [workflows/gone.yaml]\n",
    "# regenerated by playbookctl register\n",
)

_r(
    "verify.kustomization-object",
    E,
    "the kustomization builds: every listed object is a Kubernetes object with a name",
    "kustomize refuses a document without apiVersion, kind or metadata.name; Argo CD then syncs "
    "nothing.",
    "kind: RemediationWorkflow\n# no metadata.name\n",
    "metadata: {name: restart-deployment}\n",
)

_r(
    "verify.duplicate-object",
    E,
    "no object appears twice in what the kustomization builds",
    "Two files defining the same kind, namespace and name make kustomize fail with an id "
    "conflict; Argo CD syncs nothing.",
    "# workflows/a.yaml and workflows/b.yaml both define ServiceAccount x\n",
    "# one object per kind/namespace/name\n",
)

_r(
    "verify.pending",
    W,
    "a playbook changed or was deleted since its registration: the next release registers it",
    "Not an error: the working tree is ahead of registry/ (a version bumped, a playbook "
    "removed). The next release publishes and registers it, or removes the registration.",
    "spec.version: 1.1.0  # registered: 1.0.0\n",
    "# after playbookctl release, registered: 1.1.0\n",
)

_r(
    "verify.source-changed",
    E,
    "a playbook's files changed under its registered version",
    "The registration records the source hash of what was published. Content that hashes "
    "differently under the same version would never be published (a registered version is "
    "immutable): bump spec.version.",
    "# remediate.sh edited, spec.version still 1.0.0\n",
    "# playbookctl bump NAME patch\n",
)

_r(
    "verify.hand-edit",
    E,
    "a registration is not what register writes from its playbook now",
    "registry/ is generated: each registration must be byte for byte what register writes from "
    "the playbook's files and the published digests. The finding names the first field that "
    "differs.",
    "spec.description: edited by hand\n",
    "# edit playbooks/NAME/workflow.yaml, then release\n",
)

_r(
    "verify.location",
    E,
    "a registration pins its bundle and image where a release of this repository publishes them",
    "A release publishes <registry>/<bundle-repo>/<name>:<version>@sha256:... and the image "
    "likewise; a pin on another host or under another name was not published by this repository, "
    "whatever it holds, and nothing is fetched from it. A loopback registry that no longer "
    "answers (a dev registry started again on a new port) is named as such: release again.",
    "bundle: other.example/x/bundles/a:1.0.0@sha256:...\n",
    "bundle: ghcr.io/org/bundles/a:1.0.0@sha256:...\n",
)

_r(
    "verify.registry",
    E,
    "the registry could not be asked about a registration's bundle or image",
    "Online verify reads every bundle and step image from the registry; a network, TLS or "
    "authentication failure is reported as such rather than taken as success.",
    "# registry unreachable\n",
    "# registry reachable with the configured credentials\n",
)

_r(
    "verify.bundle-content",
    E,
    "the bundle's Pipeline is what the playbook renders to now",
    "The Pipeline inside the registered bundle must equal playbookctl render's output for the "
    "registered source; otherwise the bundle was not built from this source.",
    "# bundle built from another revision\n",
    "# bundle published by playbookctl release\n",
)

_r(
    "verify.image-pinned",
    E,
    "every step image in the bundle's Pipeline is pinned by digest",
    "A tag can move after review; the Pipeline a registration points at must run exactly the "
    "image that was built and checked.",
    "image: ghcr.io/org/images/a:1.0.0\n",
    "image: ghcr.io/org/images/a:1.0.0@sha256:...\n",
)

_r(
    "verify.image-missing",
    E,
    "every step image of the bundle's Pipeline exists in its registry",
    "A digest the registry does not hold fails every PipelineRun at image pull.",
    "image: ghcr.io/org/images/a@sha256:<deleted>\n",
    "image: ghcr.io/org/images/a@sha256:<pushed>\n",
)

_r(
    "verify.image-platforms",
    E,
    "the registered image is an index of every configured platform, each child present",
    "A node of a platform the index lacks, or whose child manifest is missing, cannot start the "
    "step.",
    "# index with linux/amd64 only, platforms = [amd64, arm64]\n",
    "# index with linux/amd64 and linux/arm64\n",
)

_r(
    "verify.provenance",
    E,
    "the bundle's annotations agree with the registration (version, source hash)",
    "The bundle records the version and source hash it was built from; a registration that names "
    "other values points at a bundle of other content.",
    "# registration 1.1.0, bundle annotated 1.0.0\n",
    "# both 1.1.0, same source hash\n",
)

_r(
    "verify.tag-moved",
    E,
    "a published tag still exists and points at the registered digest",
    "Published tags are never deleted or overwritten; one that moved means something rewrote the "
    "registry.",
    "# bundles/a:1.0.0 now points at another digest\n",
    "# bundles/a:1.0.0 -> the registered digest\n",
)

_r(
    "bundle.missing",
    E,
    "the bundle exists in the registry",
    "Tekton's bundles resolver fails the PipelineRun when the reference has no manifest.",
    "bundle: .../a:1.0.0@sha256:<never pushed>\n",
    "bundle: .../a:1.0.0@sha256:<pushed>\n",
)

_r(
    "bundle.digest",
    E,
    "the registry serves the bundle's manifest and layers at their digests",
    "Content that does not hash to its digest is not what was pinned.",
    "# a layer whose bytes hash to another digest\n",
    "# every blob matches its digest\n",
)

_r(
    "bundle.index",
    E,
    "a bundle is a single image manifest, not an index",
    "Tekton's bundles resolver reads one image manifest; an index is refused.",
    "mediaType: application/vnd.oci.image.index.v1+json\n",
    "mediaType: application/vnd.oci.image.manifest.v1+json\n",
)

_r(
    "bundle.media-type",
    E,
    "the bundle's manifest media type is an image manifest",
    "Only OCI or Docker schema 2 image manifests are bundles Tekton can resolve.",
    "mediaType: application/vnd.docker.distribution.manifest.v1+json\n",
    "mediaType: application/vnd.oci.image.manifest.v1+json\n",
)

_r(
    "bundle.manifest",
    E,
    "the bundle's manifest is valid JSON with layers",
    "A manifest that does not parse, or has no layers, holds no Tekton object.",
    '{"schemaVersion": 2}\n',
    '{"schemaVersion": 2, "layers": [...]}\n',
)

_r(
    "bundle.manifest-annotations",
    W,
    "the bundle's manifest carries playbookctl's provenance annotations",
    "publish writes source, revision, version and source hash on the manifest; without them "
    "verify cannot tell where the bundle came from.",
    "annotations: {}\n",
    "annotations: {org.opencontainers.image.revision: ...}\n",
)

_r(
    "bundle.too-many-layers",
    E,
    "a bundle has at most Tekton's maximum number of objects",
    "Tekton's bundles resolver refuses a bundle with more layers than it accepts.",
    "# 21 layers\n",
    "# one layer per object, within the limit\n",
)

_r(
    "bundle.layer",
    E,
    "each layer is a descriptor with a digest",
    "A layer without a digest cannot be fetched.",
    "layers: [{}]\n",
    "layers: [{digest: sha256:..., ...}]\n",
)

_r(
    "bundle.layer-annotations",
    E,
    "each layer carries the dev.tekton.image.* annotations",
    "The resolver finds an object by the kind, name and apiVersion annotations on every layer; "
    "one missing breaks the whole bundle.",
    "annotations: {dev.tekton.image.kind: pipeline}\n",
    "annotations: {dev.tekton.image.kind: pipeline, dev.tekton.image.name: workflow, "
    "dev.tekton.image.apiVersion: v1}\n",
)

_r(
    "bundle.kind-case",
    E,
    "dev.tekton.image.kind is lower case",
    "The resolver matches the kind in lower case, as tkn writes it.",
    "dev.tekton.image.kind: Pipeline\n",
    "dev.tekton.image.kind: pipeline\n",
)

_r(
    "bundle.api-version",
    W,
    "dev.tekton.image.apiVersion is the version only, and matches the object",
    "tkn writes `v1`, not `tekton.dev/v1`; the object inside must have the apiVersion the "
    "annotation names.",
    "dev.tekton.image.apiVersion: tekton.dev/v1\n",
    "dev.tekton.image.apiVersion: v1\n",
)

_r(
    "bundle.duplicate",
    E,
    "no two objects of one kind and name in a bundle",
    "The resolver would pick one of them; which one is undefined.",
    "# two pipeline layers named workflow\n",
    "# one pipeline named workflow\n",
)

_r(
    "bundle.layer-size",
    E,
    "a bundle layer is within the size a Pipeline can have",
    "Layers are read bounded; one larger than the limit is not read (a Pipeline is a few KiB).",
    "# a 100 MiB layer\n",
    "# a few KiB\n",
)

_r(
    "bundle.layer-content",
    E,
    "each layer is a tar holding one object, as tkn writes it",
    "The resolver reads the first tar entry of each layer as the object.",
    "# a layer that is not a tar archive\n",
    "# tar with one entry: the object's YAML or JSON\n",
)

_r(
    "bundle.decode",
    E,
    "each object decodes strictly",
    "The resolver decodes strictly: an unknown field or a wrong type is refused.",
    "spec: {taskz: []}\n",
    "spec: {tasks: []}\n",
)

_r(
    "bundle.name-mismatch",
    E,
    "the object's name is the layer's dev.tekton.image.name",
    "The resolver looks objects up by the annotation; a different metadata.name is a bundle not "
    "written by tkn or publish.",
    "metadata: {name: other}  # annotation: workflow\n",
    "metadata: {name: workflow}\n",
)

_r(
    "bundle.kind-mismatch",
    E,
    "the object's kind is the layer's dev.tekton.image.kind",
    "An annotation naming another kind than the object hides it from the resolver.",
    "kind: Task  # annotation: pipeline\n",
    "kind: Pipeline\n",
)

_r(
    "bundle.no-workflow",
    E,
    "the bundle holds the Pipeline named workflow, which Kubernaut runs",
    "Kubernaut's PipelineRun references the Pipeline `workflow` in the bundle; without it every "
    "run fails.",
    "# a bundle with a Pipeline named main\n",
    "# a bundle with a Pipeline named workflow\n",
)


_ALL.append(
    Rule(
        "hadolint.*",
        W,
        "hadolint's findings on a Containerfile (its own code, e.g. hadolint.DL3018)",
        "hadolint checks Dockerfile/Containerfile best practice; each code is explained on "
        "hadolint's wiki (the annotation links the page). Severity is hadolint's own (error "
        "or warning), adjustable per code.",
        "RUN apk add curl\n",
        "RUN apk add --no-cache curl=8.9.1-r2\n",
        family=True,
    )
)
_ALL.append(
    Rule(
        "shellcheck.*",
        W,
        "shellcheck's findings on a script (its own code, e.g. shellcheck.SC2086)",
        "shellcheck checks shell scripts, including the inline scripts of pipeline.yaml (shown "
        "at their line in the YAML file); each code is explained on shellcheck's wiki. "
        "Severity is shellcheck's own, adjustable per code.",
        'kubectl scale --replicas=$REPLICAS "deploy/$NAME"\n',
        'kubectl scale --replicas="$REPLICAS" "deploy/$NAME"\n',
        family=True,
    )
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _ALL}
if len(RULES) != len(_ALL):  # pragma: no cover - caught by the first test run
    raise RuntimeError("a rule id is defined twice in the catalogue")
_FAMILIES = {rule.id[:-1]: rule for rule in _ALL if rule.family}  # "hadolint." -> rule


def lookup(rule_id: str) -> Rule | None:
    """The catalogue entry of a finding's rule id (a family entry for external codes)."""
    rule = RULES.get(rule_id)
    if rule is not None:
        return rule
    for prefix, family in _FAMILIES.items():
        if rule_id.startswith(prefix) and len(rule_id) > len(prefix):
            return family
    return None


def suggest(rule_id: str) -> list[str]:
    """What an unknown id was probably meant to be: a bare external code (`SC2086`,
    `DL3008`) gets its family's prefix, a rule name without its family gets the family, a typo
    the closest ids."""
    import difflib  # noqa: PLC0415

    text = rule_id.strip()
    upper = text.upper()
    if re.fullmatch(r"SC\d{4}", upper):
        return [f"shellcheck.{upper}"]
    if re.fullmatch(r"DL\d{4}", upper):
        return [f"hadolint.{upper}"]
    named = [r for r in RULES if not r.endswith(".*") and r.split(".", 1)[1] == text.lower()]
    if named:
        return named
    return difflib.get_close_matches(text, list(RULES), n=3, cutoff=0.6)


def known(rule_id: str) -> bool:
    return lookup(rule_id) is not None


# --- documents -----------------------------------------------------------------------------------


def explain(rule: Rule, rule_id: str | None = None) -> str:
    """`playbookctl rules ID`: everything about one rule, as plain text."""
    shown = rule_id or rule.id
    lines = [
        f"{shown}  ({rule.severity}{'' if rule.adjustable else ', enforced by the cluster'})",
        f"  {rule.summary}",
        "",
        *_wrap(rule.explanation, "  "),
        "",
        "  Bad:",
        *(f"    {line}" for line in rule.bad.rstrip("\n").splitlines()),
        "  Good:",
        *(f"    {line}" for line in rule.good.rstrip("\n").splitlines()),
    ]
    url = rule.url_for(shown)
    if url:
        lines += ["", f"  See {url}"]
    return "\n".join(lines) + "\n"


def _wrap(text: str, indent: str, width: int = 96) -> list[str]:
    out: list[str] = []
    line = indent
    for word in text.split():
        if len(line) + len(word) + 1 > width and line.strip():
            out.append(line.rstrip())
            line = indent
        line += word + " "
    if line.strip():
        out.append(line.rstrip())
    return out


README_BEGIN = "<!-- rules:begin (generated by `playbookctl rules --markdown-table`) -->"
README_END = "<!-- rules:end -->"


def markdown_table() -> str:
    """The README's rule section: one row per rule, linking to its entry in RULES.md."""
    rows = ["| rule | default | adjustable | what |", "| --- | --- | --- | --- |"]
    for rule in _ALL:
        rows.append(
            f"| [`{rule.id}`]({RULES_FILE}#{rule.anchor}) | {rule.severity} | "
            f"{'yes' if rule.adjustable else 'no'} | {rule.summary} |"
        )
    return "\n".join(rows) + "\n"


def markdown_document() -> str:
    """RULES.md: every rule with its explanation and examples (generated, never edited)."""
    out = [
        "# playbookctl lint rules",
        "",
        "Generated from `tooling/playbookctl/lint/catalogue.py` by "
        "`playbookctl rules --markdown > RULES.md`; do not edit by hand (a test keeps them "
        "equal). `playbookctl rules ID` prints one entry.",
        "",
    ]
    for rule in _ALL:
        out += [
            f"## {rule.id}",
            "",
            f"**{rule.summary}.** Default: {rule.severity}"
            + ("" if rule.adjustable else "; enforced by the cluster, not adjustable")
            + ".",
            "",
            rule.explanation,
            "",
            "Bad:",
            "",
            "```",
            rule.bad.rstrip("\n"),
            "```",
            "",
            "Good:",
            "",
            "```",
            rule.good.rstrip("\n"),
            "```",
            "",
        ]
    return "\n".join(out)
