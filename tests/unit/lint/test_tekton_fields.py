"""Strict decoding of Tekton objects: unknown fields and JSON type mismatches, table-style."""

from __future__ import annotations

import pytest

from playbookctl.lint.tekton.fields import check_fields, parse_go_duration
from playbookctl.load import load_text

TASK = "apiVersion: {api}\nkind: Task\nmetadata:\n  name: t\nspec:\n  steps:\n  - image: alpine\n"
PIPELINE = "apiVersion: {api}\nkind: Pipeline\nmetadata:\n  name: p\nspec:\n  tasks:\n  - name: a\n"

V1 = "tekton.dev/v1"
V1B1 = "tekton.dev/v1beta1"


def _run(source: str, type_name: str, api: str) -> list[tuple[str, int, int]]:
    doc = load_text(source.replace("{api}", api), "x.yaml").documents[0]
    return sorted((f.rule, f.line, f.column) for f in check_fields(doc, (), type_name, api))


U = "tekton.unknown-field"
T = "tekton.field-type"


@pytest.mark.parametrize(
    ("extra", "api", "expected"),
    [
        # valid: every kind of value in its place
        (
            "    name: s\n    command: [sh]\n    args: [-c, x]\n    workingDir: /w\n"
            "    env: [{name: A, value: a}]\n    timeout: 90s\n    onError: continue\n"
            "    computeResources: {limits: {cpu: 1, memory: 1Gi}, requests: {cpu: 250m}}\n"
            "    securityContext: {runAsUser: 1000, runAsNonRoot: true}\n",
            V1,
            [],
        ),
        ("    timeout: 1h2m3.5s\n", V1, []),
        ("    timeout: '0'\n", V1, []),
        ("    timeout: null\n", V1, []),
        # unknown fields, at the key
        ("    imag: x\n", V1, [(U, 8, 5)]),
        ("    Image: x\n", V1, [(U, 8, 5)]),
        # v1 Step has no corev1 `resources` or probes; v1beta1 keeps them
        ("    resources: {}\n", V1, [(U, 8, 5)]),
        ("    resources: {limits: {cpu: '1'}}\n", V1B1, []),
        ("    livenessProbe: {exec: {command: [x]}}\n", V1, [(U, 8, 5)]),
        ("    livenessProbe: {exec: {command: [x]}}\n", V1B1, []),
        ("    computeResources: {}\n", V1B1, [(U, 8, 5)]),
        ("    ports: [{containerPort: 80}]\n", V1B1, []),
        # wrong JSON types
        ("    name: 5\n", V1, [(T, 8, 11)]),
        ("    command: sh\n", V1, [(T, 8, 14)]),
        ("    args: [1]\n", V1, [(T, 8, 12)]),
        ("    env: {A: b}\n", V1, [(T, 8, 10)]),
        ("    env: [{name: A, value: 1}]\n", V1, [(T, 8, 28)]),
        ("    env: [{name: A, value: true}]\n", V1, [(T, 8, 28)]),
        ("    timeout: 10\n", V1, [(T, 8, 14)]),
        ("    timeout: 1d\n", V1, [(T, 8, 14)]),
        ("    timeout: ''\n", V1, [(T, 8, 14)]),
        ("    securityContext: {runAsUser: '1000'}\n", V1, [(T, 8, 34)]),
        ("    securityContext: {runAsUser: 1000.5}\n", V1, [(T, 8, 34)]),
        ("    securityContext: {runAsNonRoot: 'yes please'}\n", V1, [(T, 8, 37)]),
        ("    computeResources: {limits: {memory: 1Gb}}\n", V1, [(T, 8, 41)]),
        ("    computeResources: {limits: {memory: [1]}}\n", V1, [(T, 8, 41)]),
        ("    workspaces: [{name: w, readOnly: true}]\n", V1, [(U, 8, 28)]),
    ],
)
def test_step_fields(extra: str, api: str, expected: list[tuple[str, int, int]]) -> None:
    assert _run(TASK + extra, "Task", api) == expected


@pytest.mark.parametrize(
    ("extra", "api", "expected"),
    [
        ("  params: [{name: p, default: 5}, {name: q, default: [1, 2]}]\n", V1, []),
        ("  params: [{name: o, properties: {k: {type: string}}, enum: [a]}]\n", V1, []),
        ("  params: [{name: o, properties: {k: {typ: string}}}]\n", V1, [(U, 8, 39)]),
        ("  results: [{name: r, type: array, value: x}]\n", V1, []),
        ("  workspaces: [{name: w, mountPath: /w, readOnly: true, optional: true}]\n", V1, []),
        ("  workspaces: [{name: w, readonly: true}]\n", V1, [(U, 8, 26)]),
        ("  resources: {inputs: []}\n", V1B1, []),
        ("  resources: {inputs: []}\n", V1, [(U, 8, 3)]),
        ("  stepTemplate: {name: x}\n", V1, [(U, 8, 18)]),
        ("  stepTemplate: {name: x}\n", V1B1, []),
        ("  sidecars: [{image: x, ports: [{containerPort: '80'}]}]\n", V1, [(T, 8, 49)]),
        (
            "  sidecars: [{image: x, readinessProbe: {httpGet: {port: http}, periodSeconds: 5}}]\n",
            V1,
            [],
        ),
        ("  volumes: [{name: v, emptyDir: {}}, {name: c, configMap: {name: c}}]\n", V1, []),
        ("  volumes: [{name: v, emptyDir: {sizeLimit: lots}}]\n", V1, [(T, 8, 45)]),
        ("  volumes: [{name: v, emptyDirs: {}}]\n", V1, [(U, 8, 23)]),
        ("  volumes: [{name: v, secret: {secretName: s, defaultMode: 0644}}]\n", V1, []),
        ("  displayName: Nice\n  description: d\n", V1, []),
        ("  steps2: []\n", V1, [(U, 8, 3)]),
    ],
)
def test_task_spec_fields(extra: str, api: str, expected: list[tuple[str, int, int]]) -> None:
    assert _run(TASK + extra, "Task", api) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("apiVersion: {api}\nkind: Task\nmetadata: {name: t, labels: {a: b}}\n", []),
        ("apiVersion: {api}\nkind: Task\nmetadata: {name: t, labels: {a: 1}}\n", [(T, 3, 33)]),
        ("apiVersion: {api}\nkind: Task\nmetadata: {nam: t}\n", [(U, 3, 12)]),
        ("apiVersion: {api}\nkind: Task\nmetadata: {name: t}\nstatus: {}\n", [(U, 4, 1)]),
        ("apiVersion: {api}\nkind: Task\nmetadata: {name: t}\nspec: []\n", [(T, 4, 7)]),
        ("apiVersion: {api}\nkind: Task\nmetadata:\n  creationTimestamp: null\n", []),
        # Every ObjectMeta field a real manifest (or a `kubectl get -o yaml`) carries is known.
        (
            "apiVersion: {api}\nkind: Task\nmetadata:\n  name: t\n  generateName: t-\n"
            "  namespace: ns\n  selfLink: /x\n  uid: u\n  resourceVersion: '1'\n"
            "  generation: 2\n  creationTimestamp: '2026-01-01T00:00:00Z'\n"
            "  deletionTimestamp: null\n  deletionGracePeriodSeconds: 30\n"
            "  labels: {a: b}\n  annotations: {c: d}\n"
            "  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: c, uid: u}]\n"
            "  finalizers: [f]\n  managedFields: [{manager: kubectl}]\n",
            [],
        ),
        # The resolver's strict decoder matches field names case-sensitively.
        ("apiVersion: {api}\nkind: Task\nmetadata: {Name: t}\n", [(U, 3, 12)]),
    ],
)
def test_top_level(source: str, expected: list[tuple[str, int, int]]) -> None:
    assert _run(source, "Task", V1) == expected


@pytest.mark.parametrize(
    ("extra", "api", "expected"),
    [
        (
            "    taskRef: {name: t, kind: Task}\n    params: [{name: x, value: [a, b]}]\n"
            "    runAfter: [b]\n    retries: 2\n    timeout: 1h\n"
            "    when: [{input: a, operator: in, values: [a]}]\n"
            "    workspaces: [{name: w, workspace: ws, subPath: s}]\n"
            "    matrix: {params: [{name: m, value: [1, 2]}], include: [{name: i, params: []}]}\n",
            V1,
            [],
        ),
        ("    taskRef: {name: t, bundle: reg/x:1}\n", V1B1, []),
        ("    taskRef: {name: t, bundle: reg/x:1}\n", V1, [(U, 8, 24)]),
        ("    taskRef: {resolver: bundles, params: [{name: nm, value: x}]}\n", V1, []),
        ("    retries: '3'\n", V1, [(T, 8, 14)]),
        ("    runAfter: b\n", V1, [(T, 8, 15)]),
        ("    when: [{input: a, operator: in, value: [a]}]\n", V1, [(U, 8, 37)]),
        (
            "    taskSpec:\n      metadata: {labels: {a: b}}\n      params: [{name: x}]\n"
            "      steps: [{image: alpine, script: echo}]\n",
            V1,
            [],
        ),
        ("    taskSpec:\n      steps: [{image: alpine, bogus: 1}]\n", V1, [(U, 9, 31)]),
        (
            "    taskSpec:\n      apiVersion: example.dev/v1\n      kind: X\n      spec: {a: 1}\n",
            V1,
            [],
        ),
        ("    taskSpec:\n      resources: {}\n", V1B1, []),
        ("    taskSpec:\n      resources: {}\n", V1, [(U, 9, 7)]),
        ("    onError: continue\n    displayName: A\n    description: d\n", V1, []),
        # a matrix include entry takes no when expressions in v1.14 (later releases added them)
        (
            "    matrix: {include: [{name: i, params: [{name: p, value: x}],"
            " when: [{input: a, operator: in, values: [a]}]}]}\n",
            V1,
            [(U, 8, 65)],
        ),
        ("    matrix: {include: [{name: i, whenn: []}]}\n", V1, [(U, 8, 34)]),
    ],
)
def test_pipeline_task_fields(extra: str, api: str, expected: list[tuple[str, int, int]]) -> None:
    assert _run(PIPELINE + extra, "Pipeline", api) == expected


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "  params: [{name: p, type: string, default: x}]\n"
            "  workspaces: [{name: w, optional: true, description: d}]\n"
            "  results: [{name: r, value: $(tasks.a.results.x)}]\n"
            "  finally: [{name: f, taskRef: {name: t}}]\n",
            [],
        ),
        ("  workspaces: [{name: w, mountPath: /x}]\n", [(U, 9, 26)]),
        ("  results: [{name: r, valu: x}]\n", [(U, 9, 23)]),
        ("  finally: {name: f}\n", [(T, 9, 12)]),
    ],
)
def test_pipeline_spec_fields(extra: str, expected: list[tuple[str, int, int]]) -> None:
    assert _run(PIPELINE + "    taskRef: {name: t}\n" + extra, "Pipeline", V1) == expected


def test_sub_types_and_missing_values() -> None:
    doc = load_text("steps:\n- image: x\n  foo: 1\n", "x.yaml").documents[0]
    assert [f.rule for f in check_fields(doc, (), "TaskSpec", "v1")] == [U]
    assert check_fields(doc, ("nothing", "here"), "Step", "v1") == []
    with pytest.raises(ValueError, match="unknown Tekton type"):
        check_fields(doc, (), "NoSuchType", "v1")


def test_messages_name_field_and_go_type() -> None:
    doc = load_text(TASK.replace("{api}", V1) + "    imag: x\n    args: 3\n", "x.yaml").documents[0]
    messages = sorted(f.message for f in check_fields(doc, (), "Task", V1))
    assert messages == [
        "cannot decode number into spec.steps[0].args of type []string",
        'unknown field "imag" in Step (spec.steps[0])',
    ]


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1s", 1_000_000_000),
        ("-1.5h", -5_400_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("300ms", 300_000_000),
        ("2us", 2_000),
        ("1µs", 1_000),
        (".5s", 500_000_000),
        ("1", None),
        ("", None),
        ("1d", None),
        ("s", None),
        ("1.s", 1_000_000_000),
        ("-", None),
    ],
)
def test_parse_go_duration(text: str, ns: int | None) -> None:
    assert parse_go_duration(text) == ns
