"""`playbook.*` rules, as a table: one change to a clean playbook in, (rule, file, line) out.

Every case starts from tests.support.lintrepo's clean playbook (standard wrapper, or the authored
two-task pipeline when the case names pipeline.yaml) and lists exactly the playbook.* findings
it expects, so a false alarm fails a case as surely as a miss.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from playbookctl import assemble
from playbookctl.config import load_config
from playbookctl.findings import Severity
from playbookctl.lint import lint_playbook
from playbookctl.lint.playbook import SCRIPT_PLACEHOLDER, parse_containerfile
from tests.support.gitrepos import git
from tests.support.lintrepo import DIGEST, edit, good_playbook, make_repo

W = "workflow.yaml"
P = "pipeline.yaml"
C = "Containerfile"
R = "rbac.yaml"
PINNED = f"reg.example.com/tools/kubectl:1.31@{DIGEST}"

STEP_ENV_TAIL = (
    "              - name: TIMEOUT_SECONDS\n                value: $(params.TIMEOUT_SECONDS)\n"
)
KUBECONFIG_ENV = "              - name: KUBECONFIG\n                value: {}\n"
VERIFY_TASK = (
    "      taskSpec:\n        steps:\n          - name: verify\n"
    '            image: playbook://self\n            command: ["remediate.sh", "verify"]\n'
)
GIT_REF = (
    "      taskRef:\n        resolver: git\n        params:\n"
    "          - {{name: url, value: https://example.com/tasks.git}}\n"
    "          - {{name: revision, value: {revision}}}\n"
    "          - {{name: pathInRepo, value: verify.yaml}}\n"
)
BUNDLE_REF = (
    "      taskRef:\n        resolver: bundles\n        params:\n"
    '          - {{name: bundle, value: "{bundle}"}}\n'
    "          - {{name: name, value: verify}}\n          - {{name: kind, value: task}}\n"
)

# (file, old, new): replace old by new; old "" sets the whole file (markers <containerfile> and
# <rbac> stand for the clean files); new "<delete>" deletes it. A case that names pipeline.yaml
# starts from the authored pipeline; (pipeline.yaml, "", "") keeps it as it is.
Change = tuple[str, str, str]

CASES: list[tuple[str, list[Change], list[tuple[str, str, int]]]] = [
    ("clean-wrapper", [], []),
    ("clean-authored", [(P, "", "")], []),
    ("dockerfile-accepted", [(C, "", "<delete>"), ("Dockerfile", "", "<containerfile>")], []),
    # identity of the Pipeline
    (
        "pipeline-name",
        [(P, "  name: workflow", "  name: restart")],
        [("playbook.pipeline-name", P, 4)],
    ),
    (
        "pipeline-api-version",
        [(P, "tekton.dev/v1\n", "tekton.dev/v1beta1\n")],
        [("playbook.pipeline-api-version", P, 1)],
    ),
    ("pipeline-kind", [(P, "kind: Pipeline", "kind: Task")], [("playbook.pipeline-kind", P, 2)]),
    # params versus the workflow's schema
    (
        "required-param-missing",
        [(P, "    - name: TARGET_RESOURCE_NAME\n      type: string\n", "")],
        [("playbook.param-missing", P, 7)],
    ),
    (
        "optional-param-without-default",
        [(P, '      default: "600"\n', "")],
        [("playbook.param-no-default", P, 9)],
    ),
    (
        "unknown-param-without-default",
        [
            (
                P,
                "  workspaces:\n    - name: secret-creds",
                "    - name: EXTRA\n      type: string\n  workspaces:\n    - name: secret-creds",
            )
        ],
        [("playbook.param-no-default", P, 14)],
    ),
    (
        # no error (it runs), but a warning: the agent can never set it
        "unknown-param-with-default-warns",
        [
            (
                P,
                "  workspaces:\n    - name: secret-creds",
                "    - name: EXTRA\n      default: x\n  workspaces:\n    - name: secret-creds",
            )
        ],
        [("playbook.param-undeclared", P, 14)],
    ),
    (
        # the agent leaves TIMEOUT_SECONDS out to get the workflow's 600; the run gets 60
        "optional-param-default-differs",
        [(P, '      default: "600"', '      default: "60"')],
        [("playbook.param-default", P, 11)],
    ),
    (
        # the same value, as the wrapper writes the workflow's integer default
        "optional-param-default-is-the-workflows",
        [
            (W, "      default: 600\n", "      default: 6e2\n"),
            (P, '      default: "600"', '      default: "600"'),
        ],
        [],
    ),
    # a parameter's value as an environment variable the step's programs obey
    (
        "param-named-path-in-the-wrapper",
        [
            (
                W,
                "      default: 600\n",
                "      default: 600\n    - name: PATH\n      type: string\n"
                "      required: false\n      description: p\n      default: /bin\n",
            )
        ],
        [("playbook.env-reserved", W, 33)],
    ),
    (
        "kubeconfig-from-a-param-in-authored",
        [(P, STEP_ENV_TAIL, STEP_ENV_TAIL + KUBECONFIG_ENV.format("$(params.NAME)"))],
        [("playbook.env-reserved", P, 40)],
    ),
    (
        "kubeconfig-constant-in-authored",
        [(P, STEP_ENV_TAIL, STEP_ENV_TAIL + KUBECONFIG_ENV.format("/etc/kube/config"))],
        [],
    ),
    # what the Pipeline refers to instead of holding (the bundle holds the Pipeline only)
    (
        "task-ref-in-the-run-namespace",
        [(P, VERIFY_TASK, "      taskRef:\n        name: verify-restart\n")],
        [("playbook.task-ref", P, 45)],
    ),
    (
        "task-ref-git-branch",
        [(P, VERIFY_TASK, GIT_REF.format(revision="main"))],
        [("playbook.task-ref", P, 45)],
    ),
    ("task-ref-git-commit", [(P, VERIFY_TASK, GIT_REF.format(revision="a1" * 20))], []),
    (
        "task-ref-bundle-by-tag",
        [(P, VERIFY_TASK, BUNDLE_REF.format(bundle="reg.example.com/tasks/verify:1.0"))],
        [("playbook.task-ref", P, 45)],
    ),
    (
        "task-ref-bundle-by-digest",
        [(P, VERIFY_TASK, BUNDLE_REF.format(bundle=f"reg.example.com/tasks/verify:1.0@{DIGEST}"))],
        [],
    ),
    (
        "task-ref-hub",
        [(P, VERIFY_TASK, "      taskRef:\n        resolver: hub\n")],
        [("playbook.task-ref", P, 45)],
    ),
    (
        "step-ref-in-the-run-namespace",
        [
            (
                P,
                VERIFY_TASK.split("verify\n", 1)[1],
                "            ref:\n              name: check-rollout\n",
            )
        ],
        # (its image is the StepAction's: non-root cannot see its user either)
        [("playbook.non-root", P, 47), ("playbook.task-ref", P, 48)],
    ),
    (
        "array-param",
        [(P, '      type: string\n      default: "600"', "      type: array\n      default: []")],
        [("playbook.param-type", P, 10)],
    ),
    (
        "optional-param-dropped",
        [(P, '    - name: TIMEOUT_SECONDS\n      type: string\n      default: "600"\n', "")],
        [("playbook.param-unused", W, 28)],
    ),
    # workspaces versus dependencies
    (
        "dependency-workspace-missing",
        [(P, "    - name: secret-creds\n", "    - name: creds\n")],
        [("playbook.workspace-missing", P, 15), ("playbook.workspace-unbound", P, 15)],
    ),
    (
        "extra-workspace",
        [(P, "    - name: secret-creds\n", "    - name: secret-creds\n    - name: scratch\n")],
        [("playbook.workspace-unbound", P, 16)],
    ),
    (
        "extra-optional-workspace",
        [
            (
                P,
                "    - name: secret-creds\n",
                "    - name: secret-creds\n    - {name: s, optional: true}\n",
            )
        ],
        [],
    ),
    (
        "configmap-dependency-in-wrapper",
        [(W, "    secrets:\n", "    configMaps:\n      - name: policy\n    secrets:\n")],
        [],
    ),
    (
        "configmap-dependency-not-in-authored",
        [
            (P, "", ""),
            (W, "    secrets:\n", "    configMaps:\n      - name: policy\n    secrets:\n"),
        ],
        [("playbook.workspace-missing", P, 15)],
    ),
    # script injection
    (
        "param-in-script",
        [
            (
                P,
                "              remediate.sh act\n",
                "              remediate.sh act $(params.NAME)\n",
            )
        ],
        [("playbook.script-injection", P, 42)],
    ),
    (
        # Every parameter is named, each on the script line (inside the block) that uses it
        # first; NAME's second use adds nothing.
        "two-params-in-script",
        [
            (
                P,
                "              remediate.sh act\n",
                "              remediate.sh act $(params.NAME)\n"
                "              echo $(params.MODE) $(params.NAME)\n",
            ),
            (
                P,
                "          - name: NAME\n            type: string\n        workspaces:",
                "          - name: NAME\n            type: string\n"
                "          - name: MODE\n            type: string\n        workspaces:",
            ),
        ],
        [("playbook.script-injection", P, 44), ("playbook.script-injection", P, 45)],
    ),
    (
        "param-in-script-bracket-form",
        [(P, "              remediate.sh act\n", "              echo $(params['NAME'])\n")],
        [("playbook.script-injection", P, 42)],
    ),
    # images
    (
        "step-image-latest",
        [
            (
                P,
                "            image: playbook://self\n            command:",
                "            image: reg.example.com/busybox:latest\n            command:",
            )
        ],
        [("playbook.image-latest", P, 48), ("playbook.non-root", P, 48)],
    ),
    (
        "step-image-unpinned",
        [
            (
                P,
                "            image: playbook://self\n            command:",
                "            image: reg.example.com/busybox:1.36\n            command:",
            )
        ],
        [("playbook.image-pinned", P, 48), ("playbook.non-root", P, 48)],
    ),
    (
        "step-image-from-param",
        [
            (
                P,
                "            image: playbook://self\n            command:",
                "            image: $(params.IMG)\n            command:",
            )
        ],
        [("playbook.image-pinned", P, 48), ("playbook.non-root", P, 48)],
    ),
    (
        "step-image-pinned",
        [
            (
                P,
                "            image: playbook://self\n            command:",
                f"            image: {PINNED}\n            securityContext: {{runAsUser: 1000}}\n"
                "            command:",
            )
        ],
        [],
    ),
    (
        "placeholder-in-env",
        [(P, "                value: $(params.NAME)", "                value: playbook://self")],
        [("playbook.placeholder-misplaced", P, 37)],
    ),
    (
        "placeholder-mentioned-in-a-description",
        [(P, "spec:\n  params:\n", "spec:\n  description: runs playbook://self\n  params:\n")],
        [],
    ),
    (
        "placeholder-unused",
        [
            (
                P,
                "            image: playbook://self\n            env:",
                f"            image: {PINNED}\n"
                "            securityContext: {runAsNonRoot: true}\n"
                "            env:",
            ),
            (
                P,
                "            image: playbook://self\n            command:",
                f"            image: {PINNED}\n            command:",
            ),
        ],
        [("playbook.placeholder-unused", P, 17), ("playbook.non-root", P, 49)],
    ),
    # non-root
    (
        "step-runs-as-root",
        [
            (
                P,
                "          - name: verify\n",
                "          - name: verify\n            securityContext:\n"
                "              runAsUser: 0\n",
            )
        ],
        [("playbook.non-root", P, 49)],
    ),
    (
        "step-template-disables-non-root",
        [
            (
                P,
                "        steps:\n          - name: verify\n",
                "        stepTemplate:\n          securityContext: {runAsNonRoot: false}\n"
                "        steps:\n          - name: verify\n",
            )
        ],
        [("playbook.non-root", P, 49)],
    ),
    ("no-user", [(C, "USER 65532:65532\n", "")], [("playbook.containerfile-user", C, 1)]),
    ("user-root", [(C, "USER 65532:65532", "USER root")], [("playbook.containerfile-user", C, 3)]),
    ("user-zero", [(C, "USER 65532:65532", "USER 0:0")], [("playbook.containerfile-user", C, 3)]),
    (
        "user-from-arg-root",
        [(C, "", "ARG UID=0\n<containerfile>"), (C, "USER 65532:65532", "USER ${UID}")],
        [("playbook.containerfile-user", C, 4)],
    ),
    (
        "user-from-stage-arg",
        [(C, "USER 65532:65532", "ARG UID=10001\nUSER ${UID}")],
        [],
    ),
    (
        "user-var-default-zero",
        [(C, "USER 65532:65532", "USER ${UID:-0}")],
        [("playbook.containerfile-user", C, 3)],
    ),
    (
        "user-var-default-root-unset-form",
        [(C, "USER 65532:65532", "USER ${UID-root}:${GID-0}")],
        [("playbook.containerfile-user", C, 3)],
    ),
    ("user-var-default-numeric", [(C, "USER 65532:65532", "USER ${UID:-10001}:${GID:-10001}")], []),
    (
        "user-var-arg-default-beats-word",
        [(C, "USER 65532:65532", "ARG UID=0\nUSER ${UID:-10001}")],
        [("playbook.containerfile-user", C, 4)],
    ),
    ("user-var-arg-default-numeric", [(C, "USER 65532:65532", "ARG UID=10001\nUSER $UID")], []),
    (
        "user-var-no-default",
        [(C, "USER 65532:65532", "USER $UID")],
        [("playbook.containerfile-user", C, 3)],
    ),
    (
        "user-var-arg-without-default",
        [(C, "USER 65532:65532", "ARG UID\nUSER ${UID}:0")],
        [("playbook.containerfile-user", C, 4)],
    ),
    (
        "user-var-arg-after-user",
        [(C, "USER 65532:65532", "USER ${UID}\nARG UID=10001")],
        [("playbook.containerfile-user", C, 3)],
    ),
    (
        "user-var-stage-arg-takes-global-default",
        [
            (C, "", "ARG UID=10001\n<containerfile>"),
            (C, "USER 65532:65532", "ARG UID\nUSER ${UID}"),
        ],
        [],
    ),
    ("user-named", [(C, "USER 65532:65532", "USER app")], [("playbook.containerfile-user", C, 3)]),
    (
        "user-named-but-steps-pin-uid",
        [
            (P, "", ""),
            (C, "USER 65532:65532", "USER app"),
            (
                P,
                "        steps:\n          - name: act\n",
                "        stepTemplate:\n          securityContext: {runAsUser: 65532}\n"
                "        steps:\n          - name: act\n",
            ),
            (
                P,
                "          - name: verify\n",
                "          - name: verify\n            securityContext: {runAsUser: 65532}\n",
            ),
        ],
        [],
    ),
    (
        "root-in-build-stage-only",
        [(C, "", f"FROM reg.example.com/golang:1@{DIGEST} AS build\nUSER root\n<containerfile>")],
        [],
    ),
    # base images
    (
        "from-unpinned",
        [(C, f"busybox:1.36@{DIGEST}", "busybox:1.36")],
        [("playbook.base-image-pinned", C, 1)],
    ),
    (
        "from-latest",
        [(C, f"busybox:1.36@{DIGEST}", "busybox:latest")],
        [("playbook.base-image-pinned", C, 1)],
    ),
    (
        "from-stage-alias-and-scratch",
        [
            (
                C,
                "",
                f"FROM reg.example.com/golang:1@{DIGEST} AS Build\nFROM scratch AS empty\n"
                "FROM build\n<containerfile>",
            )
        ],
        [],
    ),
    (
        "from-arg-pinned",
        [(C, "", f"ARG BASE=reg.example.com/b:1@{DIGEST}\nFROM ${{BASE}}\nUSER 1\n")],
        [],
    ),
    (
        "from-arg-unresolved",
        [(C, "", "FROM ${BASE}\nUSER 1\n")],
        [("playbook.base-image-pinned", C, 1)],
    ),
    # network inputs (lint/network.py's own table: tests/unit/lint/test_network.py)
    (
        "add-url-without-checksum",
        [(C, "COPY remediate.sh", "ADD https://e.com/kubectl /usr/local/bin/\nCOPY remediate.sh")],
        [("playbook.add-url", C, 2)],
    ),
    (
        "copy-from-unpinned-image",
        [(C, "COPY remediate.sh", "COPY --from=reg.example.com/k:1 /k /k\nCOPY remediate.sh")],
        [("playbook.copy-from-pinned", C, 2)],
    ),
    (
        "run-download-unchecked",
        [(C, "COPY remediate.sh", "RUN curl -fsSLo /k https://e.com/k\nCOPY remediate.sh")],
        [("playbook.run-download", C, 2)],
    ),
    # flags judged by the builder that builds the playbook (tests/integration/
    # test_builder_agreement.py holds the list to the real engine)
    (
        "copy-chmod-assembled",
        [(C, "COPY remediate.sh", "COPY --chmod=0755 remediate.sh")],
        [],
    ),
    # a mode BuildKit versions read differently: assembly refuses it, so the classic builder
    # builds the playbook, and refuses the flag
    (
        "copy-chmod-symbolic",
        [(C, "COPY remediate.sh", "COPY --chmod=u+x remediate.sh")],
        [("playbook.builder-flag", C, 2)],
    ),
    (
        "copy-chmod-setuid",
        [(C, "COPY remediate.sh", "COPY --chmod=4755 remediate.sh")],
        [("playbook.builder-flag", C, 2)],
    ),
    (
        "copy-chmod-with-a-run-step",
        [(C, "COPY remediate.sh", "RUN true\nCOPY --chmod=0755 remediate.sh")],
        [("playbook.builder-flag", C, 3)],
    ),
    (
        "run-mount",
        [(C, "COPY remediate.sh", "RUN --mount=type=cache,target=/c true\nCOPY remediate.sh")],
        [("playbook.builder-flag", C, 2)],
    ),
    # .dockerignore read as `docker build` reads it (tests/unit/test_dockerignore.py)
    (
        "dockerignore-regex-class",
        [(".dockerignore", "", "*\n!remediate.sh\n\\d*.log\n")],
        [("playbook.dockerignore-pattern", ".dockerignore", 3)],
    ),
    (
        "dockerignore-read-differently-by-versions",
        [(".dockerignore", "", "# c\n*\n!remediate.sh\nlib/c++\n")],
        [("playbook.dockerignore-version", ".dockerignore", 4)],
    ),
    ("dockerignore-escaped", [(".dockerignore", "", "*\n!remediate.sh\nlib/c\\+\\+\n")], []),
    # a COPY source .dockerignore keeps out of the context (the scaffold's `*`, `!remediate.sh`)
    (
        "dockerignore-excludes-a-copied-file",
        [
            (".dockerignore", "", "*\n!remediate.sh\n"),
            ("helpers.sh", "", "x=1\n"),
            (C, "COPY remediate.sh", "COPY helpers.sh /opt/\nCOPY remediate.sh"),
        ],
        [("playbook.dockerignore-excluded", C, 2)],
    ),
    (
        "dockerignore-readmits-the-copied-file",
        [
            (".dockerignore", "", "*\n!remediate.sh\n!helpers.sh\n"),
            ("helpers.sh", "", "x=1\n"),
            (C, "COPY remediate.sh", "COPY helpers.sh /opt/\nCOPY remediate.sh"),
        ],
        [],
    ),
    (
        "dockerignore-excludes-one-of-two-sources",
        [
            (".dockerignore", "", "*.md\n"),
            ("README.md", "", "x\n"),
            (C, "COPY remediate.sh", "COPY README.md remediate.sh /opt/\nCOPY remediate.sh"),
        ],
        [("playbook.dockerignore-excluded", C, 2)],
    ),
    (
        "dockerignore-excludes-a-directory",
        [
            (".dockerignore", "", "conf\n"),
            ("conf/a.yaml", "", "a: 1\n"),
            (C, "COPY remediate.sh", "COPY conf /etc/conf\nCOPY remediate.sh"),
        ],
        [("playbook.dockerignore-excluded", C, 2)],
    ),
    (
        "dockerignore-excludes-part-of-a-directory",  # the rest is copied: a choice, not an error
        [
            (".dockerignore", "", "conf/*.md\n"),
            ("conf/a.yaml", "", "a: 1\n"),
            ("conf/notes.md", "", "x\n"),
            (C, "COPY remediate.sh", "COPY conf /etc/conf\nCOPY remediate.sh"),
        ],
        [],
    ),
    (
        "dockerignore-wildcard-source-not-judged",
        [
            (".dockerignore", "", "*\n!remediate.sh\n"),
            ("helpers.sh", "", "x=1\n"),
            (C, "COPY remediate.sh", "COPY *.sh /opt/\nCOPY remediate.sh"),
        ],
        [],
    ),
    (
        "dockerignore-copy-from-a-stage-not-judged",
        [
            (".dockerignore", "", "*\n!remediate.sh\n"),
            ("helpers.sh", "", "x=1\n"),
            (C, "COPY remediate.sh", "COPY --from=busybox helpers.sh /opt/\nCOPY remediate.sh"),
        ],
        [("playbook.copy-from-pinned", C, 2)],
    ),
    ("from-with-platform-flag", [(C, "FROM reg", "FROM --platform=$BUILDPLATFORM reg")], []),
    ("empty-rbac", [(R, "", "# to do\n")], [("playbook.empty-file", R, 1)]),
    ("empty-workflow", [(W, "", "---\n")], [("playbook.empty-file", W, 1)]),
    ("empty-pipeline", [(P, "", "---\n...\n")], [("playbook.empty-file", P, 1)]),
    ("missing-containerfile", [(C, "", "<delete>")], [("playbook.missing-file", "", 1)]),
    # RBAC
    (
        "rbac-foreign-kind",
        [(R, "", "<rbac>---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")],
        [("playbook.rbac-kind", R, 30)],
    ),
    (
        "rbac-wrong-api-version",
        [(R, "apiVersion: v1\n", "apiVersion: rbac/v1\n")],
        [("playbook.rbac-kind", R, 1)],
    ),
    (
        "rbac-sa-namespace",
        [(R, "  namespace: kubernaut-workflows\n---", "  namespace: default\n---")],
        [("playbook.rbac-namespace", R, 5)],
    ),
    (
        "rbac-sa-without-namespace",
        [(R, "  namespace: kubernaut-workflows\n---", "---")],
        [("playbook.rbac-namespace", R, 4)],
    ),
    (
        "rbac-sa-name-mismatch",
        [(W, "serviceAccountName: restart-deployment-runner", "serviceAccountName: other")],
        [("playbook.rbac-service-account", W, 19), ("playbook.rbac-binding", R, 25)],
    ),
    (
        "rbac-without-service-account-name",
        [(W, "    serviceAccountName: restart-deployment-runner\n", "")],
        [("playbook.rbac-service-account", W, 18)],
    ),
    (
        "rbac-binding-to-other-account",
        [
            (
                R,
                "    name: restart-deployment-runner\n    namespace: kubernaut-workflows\n",
                "    name: default\n    namespace: kubernaut-workflows\n",
            )
        ],
        [("playbook.rbac-binding", R, 25)],
    ),
    (
        "rbac-no-service-account",
        [
            (
                R,
                "",
                "apiVersion: rbac.authorization.k8s.io/v1\n"
                "kind: ClusterRole\nmetadata: {name: r}\n",
            )
        ],
        [("playbook.rbac-service-account", R, 1)],
    ),
    (
        "service-account-without-rbac",
        [(R, "", "<delete>")],
        [("playbook.rbac-service-account", W, 19)],
    ),
]


def apply(changes: list[Change]) -> dict[str, str]:
    files = good_playbook(pipeline=any(name == P for name, _, _ in changes))
    out = dict(files)
    for name, old, new in changes:
        if new == "<delete>":
            del out[name]
        elif old == "" and not (name == P and new == ""):
            out[name] = new.replace("<containerfile>", files[C]).replace("<rbac>", files[R])
        elif old:
            out[name] = edit(out[name], old, new)
    return out


@pytest.mark.parametrize(("changes", "expected"), [pytest.param(c, e, id=i) for i, c, e in CASES])
def test_playbook_rules(
    tmp_path: Path, changes: list[Change], expected: list[tuple[str, str, int]]
) -> None:
    files = apply(changes)
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    config = load_config(root)
    _, findings = lint_playbook(root / "playbooks" / "restart-deployment", config, None)
    got = sorted(
        (f.rule, f.file.removeprefix("playbooks/restart-deployment").lstrip("/"), f.line)
        for f in findings
        if f.rule.startswith("playbook.")
    )
    assert got == sorted(expected)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("restart-deployment", []),
        ("Restart", ["playbook.name"]),
        ("a_b", ["playbook.name"]),
        ("x" * 64, ["playbook.name"]),
        ("-a", ["playbook.name"]),
    ],
)
def test_directory_name(tmp_path: Path, name: str, expected: list[str]) -> None:
    root = make_repo(tmp_path / "repo", {name: dict(good_playbook(name))})
    _, findings = lint_playbook(root / "playbooks" / name, load_config(root), None)
    assert [f.rule for f in findings if f.rule == "playbook.name"] == expected


@pytest.mark.parametrize(
    ("text", "stages", "users"),
    [
        ("FROM a\nUSER 1\n", [("a", None, 1)], [["1"]]),
        ("# escape=`\nFROM a AS b\nRUN x `\n  && y\nUSER 2\n", [("a", "b", 2)], [["2"]]),
        ("FROM a\nRUN echo \\\n# comment inside\n  done\nUSER 3\n", [("a", None, 1)], [["3"]]),
        (
            "FROM a\nRUN <<EOF\nFROM not-a-stage\nUSER root\nEOF\nUSER 4\n",
            [("a", None, 1)],
            [["4"]],
        ),
        (
            "from --platform=x a as B\nuser 5\nFROM b\n",
            [("a", "b", 1), ("b", None, 3)],
            [["5"], []],
        ),
        ("", [], []),
    ],
)
def test_parse_containerfile(
    text: str, stages: list[tuple[str, str | None, int]], users: list[list[str]]
) -> None:
    cf = parse_containerfile(text, "Containerfile")
    assert [(s.base, s.alias, s.line) for s in cf.stages] == stages
    assert [[u.args for u in s.users] for s in cf.stages] == users


# --- playbook.executable: what the image runs must be executable ------------------------------

ENTRY = 'ENTRYPOINT ["/usr/local/bin/remediate.sh"]'
EXEC_CASES: list[tuple[str, str, int, list[int]]] = [
    # (id, Containerfile edit applied to ENTRYPOINT line, remediate.sh mode, expected lines)
    ("executable", ENTRY, 0o755, []),
    ("not executable", ENTRY, 0o644, [2]),
    ("run through a shell", 'ENTRYPOINT ["/bin/sh", "/usr/local/bin/remediate.sh"]', 0o644, []),
    ("shell form", "ENTRYPOINT /usr/local/bin/remediate.sh", 0o644, [2]),
    ("found on PATH", 'CMD ["remediate.sh"]', 0o644, [2]),
    ("run by RUN", "RUN /usr/local/bin/remediate.sh --self-test\n" + ENTRY, 0o644, [2]),
    ("copied, never run", 'ENTRYPOINT ["/bin/true"]', 0o644, []),
]


@pytest.mark.parametrize(
    ("entry", "mode", "lines"), [pytest.param(*c[1:], id=c[0]) for c in EXEC_CASES]
)
def test_executable_on_disk(tmp_path: Path, entry: str, mode: int, lines: list[int]) -> None:
    """Outside git, the file's own mode decides."""
    files = good_playbook()
    files[C] = edit(files[C], ENTRY, entry)
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    pb = root / "playbooks" / "restart-deployment"
    (pb / "remediate.sh").chmod(mode)
    _, findings = lint_playbook(pb, load_config(root), None)
    got = [(f.file, f.line) for f in findings if f.rule == "playbook.executable"]
    assert got == [("playbooks/restart-deployment/Containerfile", n) for n in lines]


def test_copy_chmod_settles_the_mode(tmp_path: Path) -> None:
    files = good_playbook()
    files[C] = edit(files[C], "COPY remediate.sh", "COPY --chmod=0755 remediate.sh")
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    pb = root / "playbooks" / "restart-deployment"
    (pb / "remediate.sh").chmod(0o644)
    _, findings = lint_playbook(pb, load_config(root), None)
    assert not [f for f in findings if f.rule == "playbook.executable"]


@pytest.mark.parametrize("mode", ["u+x", "a=rx", "4755"])
def test_a_chmod_assembly_refuses_does_not_settle_the_mode(tmp_path: Path, mode: str) -> None:
    """Assembly refuses these (BuildKit versions read them differently) and the classic
    builder refuses the flag: the file keeps the mode it is committed with."""
    files = good_playbook()
    files[C] = edit(files[C], "COPY remediate.sh", f"COPY --chmod={mode} remediate.sh")
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    pb = root / "playbooks" / "restart-deployment"
    (pb / "remediate.sh").chmod(0o644)
    _, findings = lint_playbook(pb, load_config(root), None)
    assert {f.rule for f in findings} >= {"playbook.executable", "playbook.builder-flag"}


# (the COPY's flags, the mode assembly gives the copied script; None: assembly refuses the
# flag, so the engine's classic builder builds the playbook, and refuses the flag too)
_CHMODS = [
    ("--chmod=0755", 0o755),
    ("--chmod=0644", 0o644),
    ("--chmod=750", 0o750),
    ("--chmod=u+x", None),
    ("--chmod=4755", None),
    # Every builder refuses these before building ("Unknown flag: CHMOD", "Duplicate flag
    # specified: chmod"; tried on the classic builder and BuildKit): so does assembly.
    ("--CHMOD=0755", None),
    ("--chmod=0644 --chmod=0755", None),
    ("--chmod=0755 --chmod=0644", None),
]


def _assembled_mode(text: str) -> int | None:
    """The mode the assembler gives remediate.sh (committed 0644) under text; None when it
    does not assemble the playbook."""
    try:
        plan = assemble.plan(text)
    except assemble.Refused:
        return None
    fs = assemble.BaseFS()
    for d in ("usr", "usr/local", "usr/local/bin"):
        fs.entries[d] = assemble.Entry("dir", 0o755, 0, 0, 100)
    config = {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"diff_ids": []}}
    base = assemble.BaseImage("reg.example.com/base", {"layers": []}, "", config, fs)
    context = {
        "": assemble.ContextFile("", "dir", 0o755),
        "remediate.sh": assemble.ContextFile("remediate.sh", "file", 0o644),
    }
    image = assemble.assemble_image(
        plan, base, context=context, read=lambda _p: b"#!/bin/sh\n", epoch=1,
        platform="linux/amd64",
    )  # fmt: skip
    modes: dict[str, int] = {}
    for _digest, data in image.layers:
        assert isinstance(data, bytes)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
            modes.update((m.name, m.mode) for m in tar)
    return modes["usr/local/bin/remediate.sh"]


@pytest.mark.parametrize(("flags", "assembled"), _CHMODS)
def test_lint_and_the_assembler_agree_on_every_chmod(
    tmp_path: Path, flags: str, assembled: int | None
) -> None:
    """One reading of COPY --chmod (assemble.chmod_mode): lint's playbook.executable speaks
    exactly when the assembled image's script cannot run, and playbook.builder-flag exactly
    when assembly refuses the flag (the classic builder then refuses it)."""
    files = good_playbook()
    files[C] = edit(files[C], "COPY remediate.sh", f"COPY {flags} remediate.sh")
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    pb = root / "playbooks" / "restart-deployment"
    (pb / "remediate.sh").chmod(0o644)
    assert _assembled_mode((pb / C).read_text()) == assembled
    _, findings = lint_playbook(pb, load_config(root), None)
    rules = {f.rule for f in findings}
    assert ("playbook.executable" in rules) == (assembled is None or not assembled & 0o111)
    assert ("playbook.builder-flag" in rules) == (assembled is None)


def test_a_step_command_counts_as_running_it(tmp_path: Path) -> None:
    """The authored pipeline runs `remediate.sh verify` as a step command: that needs +x too."""
    files = good_playbook(pipeline=True)
    files[C] = edit(files[C], ENTRY, 'ENTRYPOINT ["/bin/true"]')
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    pb = root / "playbooks" / "restart-deployment"
    (pb / "remediate.sh").chmod(0o644)
    _, findings = lint_playbook(pb, load_config(root), None)
    (f,) = [f for f in findings if f.rule == "playbook.executable"]
    assert "the command of step" in f.message


def test_git_index_decides_not_the_disk(tmp_path: Path) -> None:
    """CI checks out what git's index recorded: mode 100644 there is an error even when the
    file on disk is executable, and 100755 there is fine whatever the disk says."""
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(good_playbook())})
    pb = root / "playbooks" / "restart-deployment"
    script = pb / "remediate.sh"
    git(root, "init", "--quiet")
    git(root, "add", "--all")
    git(root, "update-index", "--chmod=-x", "playbooks/restart-deployment/remediate.sh")
    assert script.stat().st_mode & 0o111  # executable on disk
    _, findings = lint_playbook(pb, load_config(root), None)
    (f,) = [f for f in findings if f.rule == "playbook.executable"]
    assert (f.file, f.line) == ("playbooks/restart-deployment/Containerfile", 2)
    assert "mode 100644 in git's index" in f.message
    assert "git add --chmod=+x playbooks/restart-deployment/remediate.sh" in f.message
    git(root, "update-index", "--chmod=+x", "playbooks/restart-deployment/remediate.sh")
    script.chmod(0o644)
    _, findings = lint_playbook(pb, load_config(root), None)
    assert not [f for f in findings if f.rule == "playbook.executable"]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("tracked", []),
        ("staged", []),  # git add is enough: a dry run and try take the index's files
        ("untracked", ["playbooks/restart-deployment/helper.sh"]),
        ("ignored", []),  # deliberate: publish says it leaves it out
        ("not-git", []),  # a source export: nothing to compare with
    ],
)
def test_untracked_file(tmp_path: Path, setup: str, expected: list[str]) -> None:
    """Images, the source hash and a release are made from git's objects: a file git does not
    hold is an error with the reason and the command, once per file."""
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(good_playbook())})
    pb = root / "playbooks" / "restart-deployment"
    if setup != "not-git":
        git(root, "init", "--quiet")
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "-m", "x")
    (pb / "helper.sh").write_text("#!/bin/sh\n")
    if setup == "tracked":
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "-m", "helper")
    elif setup == "staged":
        git(root, "add", "--all")
    elif setup == "ignored":
        (root / ".gitignore").write_text("helper.sh\n")
    _, findings = lint_playbook(pb, load_config(root), None)
    found = [f for f in findings if f.rule == "playbook.untracked"]
    assert [f.file for f in found] == expected
    for f in found:
        assert f.severity is Severity.ERROR
        assert "git does not hold this file (untracked)" in f.message
        assert "git add playbooks/restart-deployment/helper.sh" in f.message


def _library(tmp_path: Path, files: dict[str, str]) -> str:
    """A bare repository on this machine holding files: what a submodule points at."""
    work = tmp_path / "lib-work"
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git(work, "init", "--quiet", "-b", "main")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "lib")
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(tmp_path / "lib.git"))
    return f"file://{tmp_path / 'lib.git'}"


def _submodule_add(root: Path, url: str, path: str) -> None:
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "--quiet", url, path)


PB = "playbooks/restart-deployment"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("checked-out", [(f"{PB}/vendor/lib", True)]),
        ("staged", [(f"{PB}/vendor/lib", True)]),  # added, not committed: the index says so
        # CI's clone (no --recurse-submodules): an empty directory, lint was clean before
        ("not-checked-out", [(f"{PB}/vendor/lib", True)]),
        ("two", [(f"{PB}/a", True), (f"{PB}/vendor/lib", True)]),
        ("the-playbook-itself", [(PB, True)]),
        # a checkout of its own: git add of a file inside adds nothing (exit 0)
        ("nested-repository", [(f"{PB}/vendor/lib", False)]),
        ("vendored-as-told", []),  # the finding's own advice, followed to the letter
        ("not-git", []),  # a source export: nothing to compare with
    ],
)
def test_submodule(tmp_path: Path, setup: str, expected: list[tuple[str, bool]]) -> None:
    """A git repository inside the playbook is one error naming it and what to do, never
    playbook.untracked for its files (git add cannot add them), checked out or not."""
    files = dict(good_playbook())
    root = make_repo(tmp_path / "repo", {} if setup == "the-playbook-itself" else {PB[10:]: files})
    url = _library(tmp_path, files if setup == "the-playbook-itself" else {"helper.sh": "x\n"})
    pb = root / PB
    if setup != "not-git":
        git(root, "init", "--quiet", "-b", "main")
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "-m", "x")
    if setup in ("checked-out", "staged", "not-checked-out", "two", "vendored-as-told"):
        _submodule_add(root, url, f"{PB}/vendor/lib")
    if setup == "two":
        _submodule_add(root, url, f"{PB}/a")
    if setup == "the-playbook-itself":
        _submodule_add(root, url, PB)
    if setup not in ("staged", "not-git", "nested-repository"):
        git(root, "commit", "--quiet", "-m", "submodule")
    if setup == "not-checked-out":
        git(root, "submodule", "deinit", "--quiet", "--force", "--all")
        assert not list((pb / "vendor" / "lib").iterdir())
    if setup in ("nested-repository", "not-git"):
        git(tmp_path, "clone", "--quiet", url, str(pb / "vendor" / "lib"))
    if setup == "vendored-as-told":
        (f,) = [f for f in lint_playbook(pb, load_config(root), None)[1] if "submodule" in f.rule]
        lib = f"{PB}/vendor/lib"
        assert f"git rm --cached {lib}, remove its .gitmodules entry and {lib}/.git" in f.message
        git(root, "rm", "--quiet", "--cached", lib)
        git(root, "config", "--file", ".gitmodules", "--remove-section", f"submodule.{lib}")
        (root / lib / ".git").unlink()
        git(root, "add", lib, ".gitmodules")
    _, findings = lint_playbook(pb, load_config(root), None)
    found = [f for f in findings if f.rule == "playbook.submodule"]
    assert [(f.file, "a git submodule (a gitlink" in f.message) for f in found] == expected
    for f in found:
        assert f.severity is Severity.ERROR
        assert "its files are not in this repository's tree, so they would be in no image" in (
            f.message
        )
        assert f"git add {f.file}), or fetch them in a RUN step from a pinned source" in f.message
    assert not [f for f in findings if f.rule == "playbook.untracked"]


# (where the attributes are written, what they say, the findings' files and conversions)
_ATTRIBUTES = [
    ("none", "", []),
    # Git LFS as `git lfs track` writes it (no git-lfs needed: the attribute is the declaration)
    (
        "root",
        "playbooks/restart-deployment/*.sh filter=lfs diff=lfs merge=lfs -text\n",
        [("remediate.sh", "filter=lfs")],
    ),
    ("root", "*.sh text eol=crlf\n", [("remediate.sh", "eol=crlf")]),
    ("root", "*.sh -text eol=crlf\n", []),  # eol converts only text
    ("root", "*.sh eol=lf\n", []),  # LF is what git holds
    ("root", "*.sh ident\n", [("remediate.sh", "ident")]),
    # (in the repository's own file, written after the commit: git add would re-encode)
    ("info", "*.yaml working-tree-encoding=UTF-16\n", "yaml:working-tree-encoding=UTF-16"),
    ("root", "*.sh filter=crypt\n*.sh -filter\n", []),  # unset again by a later line
    ("root", "other/** filter=lfs\n", []),  # another directory's
    ("inside", "*.sh filter=crypt\n", [("remediate.sh", "filter=crypt")]),
    ("info", "*.sh ident filter=x\n", [("remediate.sh", "filter=x, ident")]),
    ("not-git", "*.sh filter=lfs\n", []),  # a source export: nothing to compare with
]


@pytest.mark.parametrize(("where", "attributes", "expected"), _ATTRIBUTES)
def test_git_conversion(
    tmp_path: Path, where: str, attributes: str, expected: list[tuple[str, str]] | str
) -> None:
    """A file git converts on checkout (.gitattributes) is not the git object images and the
    source hash are made from: an error naming the conversion, once per file."""
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(good_playbook())})
    pb = root / "playbooks" / "restart-deployment"
    if where != "not-git":
        git(root, "init", "--quiet")
    if where == "info":
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "-m", "x")
    target = {
        "root": root / ".gitattributes",
        "not-git": root / ".gitattributes",
        "inside": pb / ".gitattributes",
        "info": root / ".git" / "info" / "attributes",
    }.get(where)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(attributes)
    if where not in ("not-git", "info"):
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "-m", "x")
    _, findings = lint_playbook(pb, load_config(root), None)
    found = [f for f in findings if f.rule == "playbook.git-conversion"]
    if isinstance(expected, str):  # every file of a suffix
        suffix, _, what = expected.partition(":")
        expected = [(f.relative_to(pb).as_posix(), what) for f in pb.rglob(f"*.{suffix}")]
    prefix = "playbooks/restart-deployment/"
    got = sorted((f.file.removeprefix(prefix), f) for f in found)
    assert [name for name, _ in got] == sorted(name for name, _ in expected)
    for (_name, f), (_n, what) in zip(got, sorted(expected), strict=True):
        assert f.severity is Severity.ERROR
        assert f"git converts this file on checkout ({what}, from .gitattributes)" in f.message
        assert "-filter -ident -working-tree-encoding -eol" in f.message
        assert ("(a Git LFS pointer)" in f.message) == (what == "filter=lfs")


# --- warnings: placeholders, undeclared params ----------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("what: Restart a deployment", "what: Restart a deployment", []),
        ("whenToUse: Pods are wedged", 'whenToUse: "TODO: the signals"', [(W, 10)]),
        ("what: Restart a deployment", "what: 'TODO: say it'", [(W, 9)]),
        # a TODO elsewhere in a sentence is the author's, not the scaffold's
        ("what: Restart a deployment", "what: Restart it (TODO: also scale)", []),
    ],
)
def test_placeholder_text(
    tmp_path: Path, old: str, new: str, expected: list[tuple[str, int]]
) -> None:
    files = good_playbook()
    files[W] = edit(files[W], old, new)
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    _, findings = lint_playbook(root / "playbooks" / "restart-deployment", load_config(root), None)
    got = [
        (f.file.rpartition("/")[2], f.line, f.severity)
        for f in findings
        if f.rule == "playbook.placeholder-text"
    ]
    assert got == [(file, line, Severity.WARNING) for file, line in expected]


def test_placeholder_script(tmp_path: Path) -> None:
    files = good_playbook()
    files["remediate.sh"] = files["remediate.sh"] + f'echo "{SCRIPT_PLACEHOLDER}"\n'
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    _, findings = lint_playbook(root / "playbooks" / "restart-deployment", load_config(root), None)
    (f,) = [f for f in findings if f.rule == "playbook.placeholder-text"]
    assert (f.file, f.line, f.severity) == (
        "playbooks/restart-deployment/remediate.sh",
        4,
        Severity.WARNING,
    )


@pytest.mark.parametrize(
    ("user", "severity", "says"),
    [
        pytest.param("USER $UID", Severity.WARNING, "UID has no default", id="no-default"),
        pytest.param("USER ${UID:-0}", Severity.ERROR, "'0' by default", id="default-root"),
    ],
)
def test_variable_user_message(tmp_path: Path, user: str, severity: Severity, says: str) -> None:
    files = apply([(C, "USER 65532:65532", user)])
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    _, findings = lint_playbook(root / "playbooks" / "restart-deployment", load_config(root), None)
    [finding] = [f for f in findings if f.rule == "playbook.containerfile-user"]
    assert finding.severity is severity
    assert says in finding.message


def test_script_injection_names_each_param_at_its_column(tmp_path: Path) -> None:
    files = apply(
        [
            (
                P,
                "              remediate.sh act\n",
                "              echo $(params.NAME) $(params.MODE)\n",
            ),
            (
                P,
                "          - name: NAME\n            type: string\n        workspaces:",
                "          - name: NAME\n            type: string\n"
                "          - name: MODE\n            type: string\n        workspaces:",
            ),
        ]
    )
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    _, findings = lint_playbook(root / "playbooks" / "restart-deployment", load_config(root), None)
    got = [
        (f.line, f.column, f.message.split(")", 1)[0])
        for f in findings
        if f.rule == "playbook.script-injection"
    ]
    assert sorted(got) == [(44, 20, "$(params.NAME"), (44, 35, "$(params.MODE")]


@pytest.mark.parametrize(
    ("containerfile", "line", "says"),
    [
        pytest.param(
            "ARG BASE\nFROM ${BASE}\nUSER 1\n",
            2,
            "FROM ${BASE} names no image: the build argument BASE has no default and publish "
            "passes no build arguments",
            id="arg-without-default",
        ),
        pytest.param(
            "FROM ${BASE}\nUSER 1\n",
            1,
            "depends on a build argument without a pinned default",
            id="no-arg",
        ),
    ],
)
def test_a_base_from_a_build_argument_says_why_it_names_no_image(
    tmp_path: Path, containerfile: str, line: int, says: str
) -> None:
    files = apply([(C, "", containerfile)])
    root = make_repo(tmp_path / "repo", {"restart-deployment": dict(files)})
    _, findings = lint_playbook(root / "playbooks" / "restart-deployment", load_config(root), None)
    [finding] = [f for f in findings if f.rule == "playbook.base-image-pinned"]
    assert (finding.line, finding.severity) == (line, Severity.ERROR)
    assert says in finding.message
