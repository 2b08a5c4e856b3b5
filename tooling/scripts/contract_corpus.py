"""Run the script contract (lint/script.py) over a directory of workflows laid out as Kubernaut's
demo scenarios lay them out (`deploy/remediation-workflows/<name>/remediate.sh` beside one or more
YAML files, each holding a RemediationWorkflow with its ServiceAccount, ClusterRole and binding,
and an optional `Dockerfile.exec`), and print what it finds: counts per rule, the workflows with
RBAC gaps, and every error and warning (`-v`: the infos too).

Each workflow's parameters are taken as the step's environment (Kubernaut passes every
parameter, plus TARGET_RESOURCE, as an environment variable of the same name).

    .venv/bin/python tooling/scripts/contract_corpus.py DIR [-v]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

from playbookctl.findings import Finding, Severity
from playbookctl.lint import kubectl, shell
from playbookctl.lint import rbac as rbac_rules
from playbookctl.lint import script as contract
from playbookctl.lint.playbook import parse_containerfile
from playbookctl.load import load_file

RBAC_KINDS = {"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def _kind(doc: object) -> str:
    data = getattr(doc, "data", None)
    return str(data.get("kind")) if isinstance(data, dict) else ""


def run(base: Path) -> tuple[int, list[Finding], int, int]:
    pairs, found, calls, mapped = 0, [], 0, 0
    for sh in sorted(base.rglob("remediate.sh")):
        d = sh.parent
        model = shell.parse(sh.read_bytes())
        for c in model.invocations():
            if c.words and kubectl.is_kubectl(c.words[0]):
                calls += 1
                mapped += not kubectl.analyse(c.words).unchecked
        for y in sorted(d.glob("*.yaml")):
            docs = load_file(y, y.relative_to(base).as_posix(), 10**7).documents
            workflows = [x for x in docs if _kind(x) == "RemediationWorkflow"]
            if not workflows:
                continue
            pairs += 1
            rbac = [x for x in docs if _kind(x) in RBAC_KINDS]
            declared = workflows[0].get(("spec", "parameters"))
            params = {
                str(p["name"])
                for p in (declared if isinstance(declared, list) else [])
                if isinstance(p, dict) and "name" in p
            }
            env = contract.Surroundings(parameters=params, rbac_file=y.relative_to(base).as_posix())
            env.step_env = dict.fromkeys(params | {"TARGET_RESOURCE"}, "Kubernaut")
            cf = d / "Dockerfile.exec"
            if cf.is_file():
                parsed = parse_containerfile(cf.read_text("utf-8"), cf.name)
                env.containerfile = cf.name
                env.image_env = contract.image_env(
                    [(i.keyword, i.args, i.line) for i in parsed.instructions]
                )
            env.rules = rbac_rules.policy_rules(rbac)
            env.has_rbac = bool(rbac)
            shown = f"{sh.relative_to(base).as_posix()} [{y.name}]"
            found.extend(contract.check_script(sh.read_text("utf-8"), shown, env))
            found.extend(rbac_rules.check_api(rbac))
    return pairs, found, calls, mapped


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true", help="print the infos too")
    args = parser.parse_args(argv)
    pairs, found, calls, mapped = run(args.directory)
    print(f"{pairs} script/workflow pairs; {mapped} of {calls} kubectl calls fully mapped")
    for (rule, severity), n in sorted(
        collections.Counter((f.rule, f.severity.value) for f in found).items()
    ):
        print(f"  {rule} ({severity}): {n}")
    gaps = collections.Counter(f.file.split("/")[-2] for f in found if f.rule == "script.rbac")
    print(f"workflows with RBAC gaps: {len(gaps)} {dict(sorted(gaps.items()))}")
    for f in found:
        if args.verbose or f.severity is not Severity.INFO:
            print(f"{f.file}:{f.line}:{f.column}: {f.severity} [{f.rule}] {f.message}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
