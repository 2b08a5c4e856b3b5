"""`workflow.*` rules: YAML in, (rule, line) findings out; each problem exactly one finding."""

from __future__ import annotations

import pytest

from playbookctl.findings import Severity
from playbookctl.lint.workflow import check_workflow
from playbookctl.load import load_text
from playbookctl.oci.reference import tag_problem
from tests.support.lintrepo import edits

VALID = """\
apiVersion: kubernaut.ai/v1alpha1
kind: RemediationWorkflow
metadata:
  name: restart-deployment
  namespace: kubernaut-system
spec:
  version: "1.0.0"
  description:
    what: Restarts a deployment
    whenToUse: Pods are wedged
  actionType: RestartDeployment
  labels:
    severity: [critical, high]
    environment: ["*"]
    component: [apps/v1/Deployment]
    priority: "*"
  execution:
    engine: tekton
    serviceAccountName: restart-deployment
  dependencies:
    secrets:
      - name: slack-token
  parameters:
    - name: TARGET_RESOURCE_NAME
      type: string
      required: true
      description: Deployment name
    - name: TIMEOUT_SECONDS
      type: integer
      required: false
      description: How long to wait
      minimum: 1
      maximum: 600
      default: 120
    - name: MODE
      type: string
      required: false
      description: rollout mode
      enum: [restart, recreate]
      default: restart
  rollbackParameters:
    - name: PREVIOUS_REVISION
      type: string
      required: false
      description: revision to go back to
      pattern: "^[0-9]+$"
      default: "1"
"""
BUNDLE = "ghcr.io/acme/bundles/restart-deployment:1.0.0@sha256:" + "a" * 64
ACTION_TYPES = {"RestartDeployment": object()}


def src(*changes: tuple[str, str]) -> str:
    return edits(VALID, *changes)


def findings(text: str, **kwargs: object) -> list[tuple[str, int]]:
    result = load_text(text, "playbooks/restart-deployment/workflow.yaml")
    assert not result.findings, result.findings
    options: dict[str, object] = {
        "action_types": ACTION_TYPES,
        "expected_name": "restart-deployment",
    }
    options.update(kwargs)
    found = check_workflow(result.documents[0], **options)  # type: ignore[arg-type]
    assert all(f.file == "playbooks/restart-deployment/workflow.yaml" for f in found)
    assert all(f.severity is Severity.ERROR for f in found)
    return sorted((f.rule, f.line) for f in found)


def test_valid_workflow_has_no_findings() -> None:
    assert findings(VALID) == []


def test_valid_registration_has_no_findings() -> None:
    text = src(("    engine: tekton\n", f"    engine: tekton\n    bundle: {BUNDLE}\n"))
    assert findings(text, authored=False) == []


CASES = [
    # envelope
    (
        "api-version",
        src(("apiVersion: kubernaut.ai/v1alpha1", "apiVersion: v1")),
        [("workflow.api-version", 1)],
    ),
    ("kind", src(("kind: RemediationWorkflow", "kind: Workflow")), [("workflow.kind", 2)]),
    ("status", VALID + "status:\n  catalogStatus: Active\n", [("workflow.status", 48)]),
    ("unknown top-level", VALID + "extra: 1\n", [("workflow.unknown-field", 48)]),
    (
        "no spec",
        "apiVersion: kubernaut.ai/v1alpha1\nkind: RemediationWorkflow\n"
        "metadata:\n  name: restart-deployment\n",
        [("workflow.schema", 1)],
    ),
    ("not a mapping", "- a\n- b\n", [("workflow.schema", 1)]),
    # metadata
    (
        "name differs from directory",
        src(("name: restart-deployment", "name: restart")),
        [("workflow.name", 4)],
    ),
    (
        "name not DNS-1123",
        src(("name: restart-deployment", "name: Restart_Deployment")),
        [("workflow.name", 4)],
    ),
    ("name missing", src(("  name: restart-deployment\n", "")), [("workflow.name", 3)]),
    (
        "namespace",
        src(("namespace: kubernaut-system", "namespace: default")),
        [("workflow.namespace", 5)],
    ),
    (
        "metadata unknown field",
        src(("  namespace: kubernaut-system\n", "  namespace: kubernaut-system\n  uid: x\n")),
        [("workflow.unknown-field", 6)],
    ),
    (
        "label value too long",
        src(
            (
                "  namespace: kubernaut-system\n",
                "  namespace: kubernaut-system\n  labels: {a: " + "x" * 64 + "}\n",
            )
        ),
        [("workflow.metadata", 6)],
    ),
    (
        "annotation key invalid",
        src(
            (
                "  namespace: kubernaut-system\n",
                "  namespace: kubernaut-system\n  annotations: {'a b': x}\n",
            )
        ),
        [("workflow.metadata", 6)],
    ),
    # version
    (
        "version unquoted float",
        src(('version: "1.0.0"', "version: 1.2")),
        [("workflow.version", 7)],
    ),
    (
        "version leading v",
        src(('version: "1.0.0"', 'version: "v1.0.0"')),
        [("workflow.version", 7)],
    ),
    (
        "version too long",
        src(('version: "1.0.0"', 'version: "1.0.0-' + "a" * 45 + '"')),
        [("workflow.version", 7)],
    ),
    (
        "version leading zero",
        src(('version: "1.0.0"', 'version: "01.0.0"')),
        [("workflow.version", 7)],
    ),
    (
        "version prerelease leading zero",
        src(('version: "1.0.0"', 'version: "1.0.0-rc.01"')),
        [("workflow.version", 7)],
    ),
    (
        "version build metadata",
        src(('version: "1.0.0"', 'version: "1.2.3+meta"')),
        [("workflow.version", 7)],
    ),
    (
        "version pre-release and build metadata",
        src(('version: "1.0.0"', 'version: "1.2.3-rc.1+build.5"')),
        [("workflow.version", 7)],
    ),
    ("version pre-release", src(('version: "1.0.0"', 'version: "1.2.3-rc.1"')), []),
    ("version missing", src(('  version: "1.0.0"\n', "")), [("workflow.version", 6)]),
    # description
    (
        "description whenToUse missing",
        src(("    whenToUse: Pods are wedged\n", "")),
        [("workflow.description", 8)],
    ),
    (
        "description typo",
        src(("whenToUse: Pods", "whenTouse: Pods")),
        [("workflow.description", 8), ("workflow.unknown-field", 10)],
    ),
    (
        "maintainer email",
        src(
            (
                "  actionType: RestartDeployment\n",
                "  actionType: RestartDeployment\n  maintainers:\n"
                "    - {name: A, email: not-an-email}\n",
            )
        ),
        [("workflow.maintainers", 13)],
    ),
    # actionType
    (
        "actionType not PascalCase",
        src(("actionType: RestartDeployment", "actionType: restart_pod")),
        [("workflow.action-type", 11)],
    ),
    (
        "actionType unknown",
        src(("actionType: RestartDeployment", "actionType: RestartPod")),
        [("workflow.action-type", 11)],
    ),
    # labels
    (
        "severity value",
        src(("severity: [critical, high]", "severity: [critical, urgent]")),
        [("workflow.labels", 13)],
    ),
    (
        "severity empty",
        src(("severity: [critical, high]", "severity: []")),
        [("workflow.labels", 13)],
    ),
    (
        "component lower-case kind",
        src(("[apps/v1/Deployment]", "[apps/v1/deployment]")),
        [("workflow.labels", 15)],
    ),
    (
        "component one part",
        src(("[apps/v1/Deployment]", "[Deployment]")),
        [("workflow.labels", 15)],
    ),
    (
        "component four parts",
        src(("[apps/v1/Deployment]", "[a/apps/v1/Deployment]")),
        [("workflow.labels", 15)],
    ),
    ("component empty part", src(("[apps/v1/Deployment]", "[/v1/Pod]")), [("workflow.labels", 15)]),
    ("priority", src(('priority: "*"', "priority: P4")), [("workflow.labels", 16)]),
    ("priority missing", src(('    priority: "*"\n', "")), [("workflow.labels", 12)]),
    (
        "custom label not a string",
        src(("  execution:\n", "  customLabels: {team: 7}\n  execution:\n")),
        [("workflow.custom-labels", 17)],
    ),
    # detectedLabels
    # a YAML boolean is what Kubernaut's agent decodes (json.Unmarshal into bool)
    (
        "detected boolean",
        src(
            (
                "  execution:\n",
                "  detectedLabels: {stateful: true, hpaEnabled: true}\n  execution:\n",
            )
        ),
        [],
    ),
    (
        "detected boolean quoted",
        src(("  execution:\n", '  detectedLabels: {stateful: "true"}\n  execution:\n')),
        [("workflow.detected-labels", 17)],
    ),
    (
        "detected boolean false quoted",
        src(("  execution:\n", "  detectedLabels: {hpaEnabled: 'false'}\n  execution:\n")),
        [("workflow.detected-labels", 17)],
    ),
    (
        "detected boolean false",
        src(("  execution:\n", "  detectedLabels: {hpaEnabled: false}\n  execution:\n")),
        [("workflow.detected-labels", 17)],
    ),
    (
        "detected boolean a number",
        src(("  execution:\n", "  detectedLabels: {hpaEnabled: 1}\n  execution:\n")),
        [("workflow.detected-labels", 17)],
    ),
    (
        "detected unknown key",
        src(("  execution:\n", "  detectedLabels:\n    cloud: aws\n  execution:\n")),
        [("workflow.detected-labels", 18)],
    ),
    (
        "detected gitOpsTool",
        src(("  execution:\n", "  detectedLabels: {gitOpsTool: jenkins}\n  execution:\n")),
        [("workflow.detected-labels", 17)],
    ),
    # execution
    ("engine missing", src(("    engine: tekton\n", "")), [("workflow.engine", 17)]),
    ("engine job", src(("engine: tekton", "engine: job")), [("workflow.engine", 18)]),
    ("engine unknown", src(("engine: tekton", "engine: argo")), [("workflow.engine", 18)]),
    (
        "bundle in authored",
        src(("    engine: tekton\n", f"    engine: tekton\n    bundle: {BUNDLE}\n")),
        [("workflow.bundle", 19)],
    ),
    (
        "bundle not a string in authored",
        src(("    engine: tekton\n", "    engine: tekton\n    bundle: 7\n")),
        [("workflow.bundle", 19)],
    ),
    (
        "resources (old docs)",
        src(("    engine: tekton\n", "    engine: tekton\n    resources: {}\n")),
        [("workflow.unknown-field", 19)],
    ),
    (
        "service account invalid",
        src(("serviceAccountName: restart-deployment", "serviceAccountName: Restart")),
        [("workflow.service-account", 19)],
    ),
    # dependencies
    (
        "dependency duplicate",
        src(
            (
                "      - name: slack-token\n",
                "      - name: slack-token\n      - name: slack-token\n",
            )
        ),
        [("workflow.dependencies", 23)],
    ),
    (
        "dependency empty name",
        src(("- name: slack-token", '- name: ""')),
        [("workflow.dependencies", 22)],
    ),
    (
        "dependency unknown field",
        src(("    secrets:\n", "    secrets: []\n    volumes:\n")),
        [("workflow.unknown-field", 22)],
    ),
    # parameters
    (
        "parameters empty",
        src(("  parameters:\n", "  parameters: []\n  ignored:\n")),
        [("workflow.parameters", 23), ("workflow.unknown-field", 24)],
    ),
    (
        "parameter name case",
        src(("name: TIMEOUT_SECONDS", "name: timeoutSeconds")),
        [("workflow.parameter-name", 28)],
    ),
    (
        "parameter reserved",
        src(("name: TIMEOUT_SECONDS", "name: TARGET_RESOURCE")),
        [("workflow.parameter-name", 28)],
    ),
    (
        "parameter duplicate",
        src(("name: MODE", "name: TIMEOUT_SECONDS")),
        [("workflow.parameter-name", 35)],
    ),
    ("parameter type", src(("type: integer", "type: int")), [("workflow.parameter-type", 29)]),
    (
        "parameter missing description",
        src(("      description: How long to wait\n", "")),
        [("workflow.parameters", 28)],
    ),
    (
        "parameter required not bool",
        src(
            (
                "      required: false\n      description: How",
                "      required: 'no'\n      description: How",
            )
        ),
        [("workflow.parameters", 30)],
    ),
    (
        "enum on integer",
        src(("      maximum: 600\n", "      maximum: 600\n      enum: [1, 2]\n")),
        [("workflow.parameter-enum", 34)],
    ),
    (
        "pattern on integer",
        src(("      maximum: 600\n", "      maximum: 600\n      pattern: x\n")),
        [("workflow.parameter-pattern", 34)],
    ),
    (
        "minimum on string",
        src(
            (
                "      enum: [restart, recreate]\n",
                "      enum: [restart, recreate]\n      minimum: 1\n",
            )
        ),
        [("workflow.parameter-range", 40)],
    ),
    (
        "minimum above maximum",
        src(("minimum: 1", "minimum: 900")),
        [("workflow.parameter-range", 33)],
    ),
    (
        "minimum not a number",
        src(("minimum: 1", "minimum: one")),
        [("workflow.parameter-range", 32)],
    ),
    (
        "enum item not a string",
        src(("enum: [restart, recreate]", "enum: [restart, 5]")),
        [("workflow.parameter-enum", 39)],
    ),
    (
        "pattern not RE2 (lookahead)",
        src(('pattern: "^[0-9]+$"', 'pattern: "^(?=1)[0-9]+$"')),
        [("workflow.parameter-pattern", 46)],
    ),
    (
        "pattern not RE2 (backreference)",
        src(('pattern: "^[0-9]+$"', 'pattern: "^(a)\\\\1$"')),
        [("workflow.parameter-pattern", 46)],
    ),
    (
        "pattern does not compile",
        src(('pattern: "^[0-9]+$"', 'pattern: "^[0-9+$"')),
        [("workflow.parameter-pattern", 46)],
    ),
    (
        "pattern too long",
        src(('pattern: "^[0-9]+$"', 'pattern: "' + "a" * 1025 + '"')),
        [("workflow.parameter-pattern", 46)],
    ),
    ("default wrong type", src(("default: 120", 'default: "120"')), [("workflow.default", 34)]),
    ("default below minimum", src(("default: 120", "default: 0")), [("workflow.default", 34)]),
    ("default above maximum", src(("default: 120", "default: 601")), [("workflow.default", 34)]),
    ("default integer fraction", src(("default: 120", "default: 1.5")), [("workflow.default", 34)]),
    (
        "default not in enum",
        src(("default: restart", "default: reboot")),
        [("workflow.default", 40)],
    ),
    ("default string unquoted", src(('default: "1"', "default: 1")), [("workflow.default", 47)]),
    ("default fails pattern", src(('default: "1"', 'default: "one"')), [("workflow.default", 47)]),
    ("default null", src(('default: "1"', "default:")), [("workflow.default", 47)]),
    (
        "dependsOn undeclared",
        src(
            (
                "      default: restart\n",
                "      default: restart\n      dependsOn: [TIMEOUT, MODE]\n",
            )
        ),
        [("workflow.depends-on", 41), ("workflow.depends-on", 41)],
    ),
    (
        "rollback parameter name",
        src(("name: PREVIOUS_REVISION", "name: previous")),
        [("workflow.parameter-name", 42)],
    ),
    (
        "rollback unknown field",
        src(('      default: "1"\n', '      default: "1"\n      secret: true\n')),
        [("workflow.unknown-field", 48)],
    ),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(source: str, expected: list[tuple[str, int]]) -> None:
    assert findings(source) == sorted(expected)


REGISTRATION = [
    ("bundle missing", src(), [("workflow.bundle", 17)]),
    (
        "bundle tag only",
        src(("    engine: tekton\n", "    engine: tekton\n    bundle: ghcr.io/acme/b:1.0.0\n")),
        [("workflow.bundle", 19)],
    ),
    (
        "bundle no registry",
        src(
            ("    engine: tekton\n", "    engine: tekton\n    bundle: b@sha256:" + "a" * 64 + "\n")
        ),
        [("workflow.bundle", 19)],
    ),
    (
        "bundle short digest",
        src(("    engine: tekton\n", "    engine: tekton\n    bundle: ghcr.io/a/b@sha256:abc\n")),
        [("workflow.bundle", 19)],
    ),
    (
        "bundle digest only, local registry",
        src(
            (
                "    engine: tekton\n",
                "    engine: tekton\n    bundle: 127.0.0.1:5000/a/b@sha256:" + "0" * 64 + "\n",
            )
        ),
        [],
    ),
    (
        "bundleDigest differs",
        src(
            (
                "    engine: tekton\n",
                f"    engine: tekton\n    bundle: {BUNDLE}\n    bundleDigest: sha256:{'b' * 64}\n",
            )
        ),
        [("workflow.bundle", 20)],
    ),
    (
        "bundleDigest agrees",
        src(
            (
                "    engine: tekton\n",
                f"    engine: tekton\n    bundle: {BUNDLE}\n    bundleDigest: sha256:{'a' * 64}\n",
            )
        ),
        [],
    ),
]


@pytest.mark.parametrize(
    ("source", "expected"), [c[1:] for c in REGISTRATION], ids=[c[0] for c in REGISTRATION]
)
def test_registration_rules(source: str, expected: list[tuple[str, int]]) -> None:
    assert findings(source, authored=False) == sorted(expected)


def test_action_types_none_skips_the_lookup() -> None:
    text = src(("actionType: RestartDeployment", "actionType: Unknown"))
    assert findings(text, action_types=None) == []
    assert findings(text, action_types={}) == [("workflow.action-type", 11)]


def test_expected_name_none_skips_the_directory_check() -> None:
    assert findings(src(("name: restart-deployment", "name: other")), expected_name=None) == []


def test_namespace_option() -> None:
    assert findings(VALID, namespace="ops") == [("workflow.namespace", 5)]
    assert findings(src(("  namespace: kubernaut-system\n", ""))) == []


@pytest.mark.parametrize(
    "version",
    ["1.2.3", "1.2.3-rc.1", "1.2.3-x-y.Z9", "1.2.3+meta", "1.2.3-rc.1+b.5", "0.0.0+0"],
)
def test_version_accepted_exactly_when_it_is_a_tag(version: str) -> None:
    # The version is the image's and the bundle's tag: lint passes what publish can push.
    found = findings(src(('version: "1.0.0"', f'version: "{version}"')))
    assert (found == []) == (tag_problem(version) is None), found


def test_version_build_metadata_says_what_to_write() -> None:
    text = src(('version: "1.0.0"', 'version: "1.2.3-rc.1+b.5"'))
    doc = load_text(text, "playbooks/restart-deployment/workflow.yaml").documents[0]
    (f,) = check_workflow(doc, action_types=ACTION_TYPES, expected_name="restart-deployment")
    assert (f.rule, f.line) == ("workflow.version", 7)
    assert "cannot contain '+'" in f.message
    assert "write '1.2.3-rc.1'" in f.message


def test_positions_point_at_the_problem() -> None:
    text = src(('version: "1.0.0"', "version: 1.2"), ("whenToUse: Pods", "whenTouse: Pods"))
    result = load_text(text, "w.yaml")
    found = {
        f.rule: f
        for f in check_workflow(result.documents[0], action_types=None, expected_name=None)
    }
    assert (found["workflow.version"].line, found["workflow.version"].column) == (7, 12)
    assert "quote it" in found["workflow.version"].message
    # an unknown key is reported at the key, with a suggestion
    unknown = found["workflow.unknown-field"]
    assert (unknown.line, unknown.column) == (10, 5)
    assert "did you mean 'whenToUse'" in unknown.message


def test_detected_label_typo_suggests_the_key() -> None:
    text = src(("  execution:\n", "  detectedLabels: {gitopsTool: argocd}\n  execution:\n"))
    result = load_text(text, "w.yaml")
    (f,) = check_workflow(result.documents[0], action_types=None, expected_name=None)
    assert f.message == (
        "spec.detectedLabels.gitopsTool: unknown detected label; did you mean 'gitOpsTool'?"
    )


KNOWN_ACTION_TYPES = {"RestartDeployment": object(), "ScaleDeployment": object()}


@pytest.mark.parametrize(
    ("action_type", "suggestion"),
    [
        ("RestartDeploymnet", "RestartDeployment"),  # transposed letters
        ("RestartDeployments", "RestartDeployment"),
        ("ScaleDeploy", "ScaleDeployment"),
        ("DrainNode", None),  # nothing close: no guess, only the known list
        ("Unknown", None),
    ],
)
def test_unknown_action_type_suggests_a_close_name(
    action_type: str, suggestion: str | None
) -> None:
    text = src(("actionType: RestartDeployment", f"actionType: {action_type}"))
    result = load_text(text, "w.yaml")
    (f,) = check_workflow(result.documents[0], action_types=KNOWN_ACTION_TYPES, expected_name=None)
    assert (f.rule, f.line) == ("workflow.action-type", 11)
    assert f"spec.actionType {action_type!r} names no ActionType" in f.message
    assert "(known: RestartDeployment, ScaleDeployment)" in f.message
    if suggestion is None:
        assert "did you mean" not in f.message
    else:
        assert f"did you mean {suggestion!r}?" in f.message


def test_messages_name_the_path() -> None:
    text = src(("default: restart", "default: reboot"))
    result = load_text(text, "w.yaml")
    (f,) = check_workflow(result.documents[0], action_types=None, expected_name=None)
    assert f.message.startswith("spec.parameters[2].default: 'reboot' is not one of")


@pytest.mark.parametrize(
    ("source", "authored", "expected"),
    [
        (VALID, True, []),
        (src(("      default: 120\n", "")), True, [28]),
        (src(("      default: restart\n", ""), ("      default: 120\n", "")), True, [28, 34]),
        # a required parameter needs none; rollbackParameters are not run parameters
        (src(('      default: "1"\n', "")), True, []),
        (
            src(
                (
                    "      required: false\n      description: How long",
                    "      required: true\n      description: How long",
                ),
                ("      default: 120\n", ""),
            ),
            True,
            [],
        ),
        # registrations are generated: the authored file already got the warning
        (src(("      default: 120\n", "")), False, []),
    ],
)
def test_optional_parameter_without_default_warns(
    source: str, authored: bool, expected: list[int]
) -> None:
    doc = load_text(source, "playbooks/restart-deployment/workflow.yaml").documents[0]
    found = check_workflow(doc, action_types=ACTION_TYPES, expected_name=None, authored=authored)
    warnings = [f for f in found if f.rule == "workflow.optional-no-default"]
    assert [f.line for f in warnings] == expected
    assert all(f.severity is Severity.WARNING for f in warnings)
