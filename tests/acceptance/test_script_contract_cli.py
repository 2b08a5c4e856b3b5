"""The script contract and the RBAC/Kubernetes schema checks, through `playbookctl lint`: each
case of issue 19 that linted clean and failed in the cluster, as one row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playbookctl import cli
from tests.support.lintrepo import RBAC, edit, good_playbook, make_repo

SH = "playbooks/restart-deployment/remediate.sh"
RB = "playbooks/restart-deployment/rbac.yaml"
RULE_AT = '  - apiGroups: ["apps"]\n    resources: ["deployments"]\n    verbs: ["get", "patch"]\n'
ROLLBACK = """\
#!/bin/bash
set -euo pipefail
kubectl rollout undo "deployment/$TARGET_RESOURCE_NAME" --namespace=prod
"""


def lint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> list[dict[str, object]]:
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    code = cli.main(["-C", str(root), "lint", "--no-external", "--format", "json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    found: list[dict[str, object]] = json.loads(out)
    assert code == (1 if any(f["severity"] == "error" for f in found) else 0)
    return found


def playbook(
    script: str | None = None, rbac_rule: str | None = None, **extra: str
) -> dict[str, str]:
    files = dict(good_playbook())
    if script is not None:
        files["remediate.sh"] = script
    if rbac_rule is not None:
        files["rbac.yaml"] = edit(files["rbac.yaml"], RULE_AT, rbac_rule)
    files.update(extra)
    return files


# (id, files, rule, severity, file, line, words the message must hold)
CASES = [
    (
        "undeclared-variable-under-set-u",
        playbook('#!/bin/bash\nset -eu\nif [ "$DRY_RUN" = true ]; then exit 0; fi\n'),
        "script.variable",
        "error",
        SH,
        3,
        ["$DRY_RUN", "unbound variable", "declare it in workflow.yaml", "name: DRY_RUN"],
    ),
    (
        "undeclared-variable-without-set-u",
        playbook('#!/bin/sh\nif [ "$DRY_RUN" = true ]; then exit 0; fi\n'),
        "script.variable",
        "warning",
        SH,
        2,
        ["$DRY_RUN", "reads it as empty"],
    ),
    (
        "undeclared-variable-with-default",
        playbook('#!/bin/bash\nset -u\necho "${DRY_RUN:-false}"\n'),
        "script.variable",
        "warning",
        SH,
        3,
        ["the default always applies"],
    ),
    (
        "required-variable",
        playbook('#!/bin/sh\necho "${TOKEN:?}"\n'),
        "script.variable",
        "error",
        SH,
        2,
        ["${TOKEN:?} stops the script"],
    ),
    (
        "variable-in-arithmetic-and-heredoc",
        playbook("#!/bin/bash\nset -u\ncat <<EOF\n$((LIMIT + 1))\nEOF\n"),
        "script.variable",
        "error",
        SH,
        4,
        ["$LIMIT"],
    ),
    (
        "tekton-syntax-in-the-script",
        playbook('#!/bin/sh\nkubectl get deployment "$(params.TARGET_RESOURCE_NAME)"\n'),
        "script.tekton-substitution",
        "error",
        SH,
        2,
        ["command named 'params.TARGET_RESOURCE_NAME'", "read $TARGET_RESOURCE_NAME instead"],
    ),
    (
        "rollout-undo-without-replicasets-list",
        playbook(ROLLBACK),
        "script.rbac",
        "error",
        SH,
        3,
        [
            "list replicasets (apps)",
            '- apiGroups: ["apps"]\n  resources: ["replicasets"]\n  verbs: ["list"]',
        ],
    ),
    (
        "rollout-undo-without-patch",
        playbook(
            ROLLBACK,
            '  - apiGroups: ["apps"]\n    resources: ["deployments"]\n    verbs: ["get"]\n'
            '  - apiGroups: ["apps"]\n    resources: ["replicasets"]\n    verbs: ["list"]\n',
        ),
        "script.rbac",
        "error",
        SH,
        3,
        ["patch deployments (apps)", 'resources: ["deployments"]\n  verbs: ["patch"]'],
    ),
    (
        "no-pods-list",
        playbook(
            '#!/bin/sh\nkubectl get pods -n "$TARGET_RESOURCE_NAME" -l app=web\n',
        ),
        "script.rbac",
        "error",
        SH,
        2,
        ["list pods", '- apiGroups: [""]\n  resources: ["pods"]\n  verbs: ["list"]'],
    ),
    (
        "deployments-in-the-core-group",
        playbook(
            rbac_rule=(
                '  - apiGroups: [""]\n    resources: ["deployments"]\n    verbs: ["get", "patch"]\n'
            )
        ),
        "rbac.resource",
        "error",
        RB,
        13,
        ["deployments is not in apiGroups ['']", "apiGroups ['apps']"],
    ),
    (
        "singular-resource",
        playbook(
            rbac_rule=(
                '  - apiGroups: ["apps"]\n'
                '    resources: ["deployment"]\n    verbs: ["get", "patch"]\n'
            )
        ),
        "rbac.resource",
        "error",
        RB,
        13,
        ["'deployment' is not a resource name", "plural 'deployments'"],
    ),
    (
        "invented-verb",
        playbook(
            rbac_rule=(
                '  - apiGroups: ["apps"]\n'
                '    resources: ["deployments"]\n    verbs: ["get", "undo"]\n'
            )
        ),
        "rbac.verb",
        "error",
        RB,
        14,
        ["'undo' is not a Kubernetes API verb", "kubectl's undo is made of API requests"],
    ),
    (
        "unknown-group",
        playbook(
            rbac_rule=(
                '  - apiGroups: ["app"]\n    resources: ["deployments"]\n    verbs: ["get"]\n'
            )
        ),
        "rbac.api-group",
        "error",
        RB,
        12,
        ["'app' is not an API group", "did you mean 'apps'"],
    ),
    (
        "boolean-label",
        playbook(
            **{
                "rbac.yaml": edit(
                    RBAC.format(name="restart-deployment"),
                    "metadata:\n  name: restart-deployment-runner\n",
                    "metadata:\n  name: restart-deployment-runner\n"
                    "  labels:\n    kubernaut.ai/managed: on\n",
                )
            }
        ),
        "k8s.schema",
        "error",
        RB,
        6,
        ["must be a string", "unquoted 'on'", "boolean true", 'quote it: "on"'],
    ),
    (
        "unknown-field",
        playbook(
            **{
                "rbac.yaml": edit(
                    RBAC.format(name="restart-deployment"), "roleRef:\n", "roleref: {}\nroleRef:\n"
                )
            }
        ),
        "k8s.schema",
        "error",
        RB,
        20,
        ["unknown field 'roleref' (did you mean 'roleRef'?)"],
    ),
    (
        "resource-from-a-variable-is-unchecked",
        playbook('#!/bin/sh\nkubectl delete "$TARGET_RESOURCE_NAME" x\n'),
        "script.unchecked",
        "info",
        SH,
        2,
        ["resource type comes from a variable"],
    ),
]


@pytest.mark.parametrize(
    ("files", "rule", "severity", "file", "line", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_case(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    rule: str,
    severity: str,
    file: str,
    line: int,
    words: list[str],
) -> None:
    found = lint(tmp_path, capsys, files)
    hits = [f for f in found if f["rule"] == rule]
    assert hits, found
    f = hits[0]
    assert (f["severity"], f["file"], f["line"]) == (severity, file, line), f
    for w in words:
        assert w in str(f["message"]), (w, f["message"])


def test_the_good_playbook_and_a_complete_rollback_are_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lint(tmp_path / "a", capsys, playbook()) == []
    rbac_rule = (
        '  - apiGroups: ["apps"]\n    resources: ["deployments"]\n    verbs: ["get", "patch"]\n'
        '  - apiGroups: ["apps"]\n    resources: ["replicasets"]\n    verbs: ["list"]\n'
    )
    assert lint(tmp_path / "b", capsys, playbook(ROLLBACK, rbac_rule)) == []


def test_a_declared_parameter_the_pipeline_does_not_pass_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = dict(good_playbook(pipeline=True))
    files["pipeline.yaml"] = edit(
        files["pipeline.yaml"],
        "              - name: TIMEOUT_SECONDS\n                value: $(params.TIMEOUT_SECONDS)\n",
        "",
    )
    (f,) = [f for f in lint(tmp_path, capsys, files) if f["rule"] == "script.variable"]
    assert "TIMEOUT_SECONDS is a workflow parameter, but no step's env" in str(f["message"])
    assert "value: $(params.TIMEOUT_SECONDS)" in str(f["message"])


def test_a_role_does_not_grant_cluster_wide_access(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rbac = (
        RBAC.format(name="restart-deployment")
        .replace("kind: ClusterRoleBinding", "kind: RoleBinding")
        .replace("kind: ClusterRole\n", "kind: Role\n")
        .replace("  kind: ClusterRole\n", "  kind: Role\n")
        .replace(
            "metadata:\n  name: restart-deployment\n",
            "metadata:\n  name: restart-deployment\n  namespace: kubernaut-workflows\n",
        )
        .replace('resources: ["deployments"]', 'resources: ["deployments", "pods"]')
        .replace('verbs: ["get", "patch"]', 'verbs: ["get", "patch", "list"]')
    )
    files = playbook("#!/bin/sh\nkubectl get pods --all-namespaces\n", **{"rbac.yaml": rbac})
    found = [f for f in lint(tmp_path, capsys, files) if f["rule"] == "script.rbac"]
    assert found
    assert "ClusterRole bound by a ClusterRoleBinding" in str(found[0]["message"])


def test_a_rule_granted_only_by_name_is_said_unchecked_when_the_name_is_a_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = (
        '  - apiGroups: ["apps"]\n    resources: ["deployments"]\n    verbs: ["get", "patch"]\n'
        '    resourceNames: ["web"]\n'
    )
    script = (
        '#!/bin/sh\nkubectl get deployment web\nkubectl get deployment "$TARGET_RESOURCE_NAME"\n'
    )
    found = lint(tmp_path, capsys, playbook(script, rule))
    assert [(f["rule"], f["line"]) for f in found] == [("script.unchecked", 3)]


def test_cached_verdicts_equal_cold_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contract's and rbac.yaml's verdicts come from the lint cache on a second run, and
    are the same findings (file names included)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PLAYBOOKCTL_CACHE_DIR", str(cache))
    files = next(c[1] for c in CASES if c[0] == "boolean-label")
    files = {**files, "remediate.sh": ROLLBACK}
    root = make_repo(tmp_path / "repo", {"restart-deployment": files})
    runs = []
    for _ in range(2):
        cli.main(["-C", str(root), "lint", "--no-external", "--format", "json"])
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1]
    assert {f["rule"] for f in runs[0]} >= {"k8s.schema", "script.rbac"}
    assert len(list(cache.rglob("*.json"))) == 2  # one script, one rbac.yaml
