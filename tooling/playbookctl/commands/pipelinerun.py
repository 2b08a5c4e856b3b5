"""`playbookctl pipelinerun NAME`: print the PipelineRun Kubernaut would create for a registration
(or, with --tried, for what `playbookctl try NAME` last published to the dev environment).

Exit 0 with the PipelineRun on stdout; 1 (one message listing every bad value) when the values do
not satisfy the workflow's parameter schema or NAME is not registered; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from playbookctl.config import Config
from playbookctl.errors import FatalError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pipelinerun",
        help="print the PipelineRun Kubernaut would create for a registered workflow",
        description="Read registry/workflows/NAME.yaml, check the values against its parameter "
        "schema, and print the tekton.dev/v1 PipelineRun Kubernaut would create for the "
        "registered bundle (apply it with `kubectl create -f -`).",
    )
    parser.add_argument("name", metavar="NAME", help="registered workflow (playbook) name")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter value (repeatable); values are passed as strings",
    )
    parser.add_argument(
        "--target",
        default=None,
        metavar="NS/KIND/NAME",
        help="the TARGET_RESOURCE: NAMESPACE/KIND/NAME, or KIND/NAME when cluster-scoped "
        "(default: from TARGET_RESOURCE_KIND/NAME/NAMESPACE params)",
    )
    parser.add_argument(
        "--tried",
        action="store_true",
        help="not a registration: the bundle `playbookctl try NAME` last published to the dev "
        "environment, with the workflow, --target and --param values as they were tried "
        "(values given here win)",
    )
    parser.add_argument(
        "--remediation-request",
        default=None,
        metavar="RR",
        help="label the run as Kubernaut's WorkflowExecution for RemediationRequest RR "
        "(kubernaut.ai/workflow-execution=we-RR: Kubernaut then treats the run as that "
        "execution's); default: kubernaut.ai/workflow-execution=manual, which Kubernaut never "
        "adopts nor deletes",
    )
    parser.add_argument(
        "--workflow-id",
        default=None,
        metavar="ID",
        help="the kubernaut.ai/workflow-id label: the registration's status.workflowId "
        "(`kubectl get remediationworkflow NAME -o jsonpath={.status.workflowId}`); "
        "default: the workflow's name",
    )
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    parser.set_defaults(func=run)


def _tried(config: Config, name: str) -> tuple[Any, dict[str, Any]]:
    from playbookctl.commands.dev import dev_package  # noqa: PLC0415
    from playbookctl.pipelinerun import Registered  # noqa: PLC0415
    from playbookctl.playbook import source_hash  # noqa: PLC0415

    record = dev_package().load_try(config.root, name)
    if record is None or not isinstance(record.get("workflow"), dict):
        raise FatalError(
            f"{name} has not been tried in the dev environment: run `playbookctl try {name}`"
        )
    directory = config.playbooks_dir / name
    try:
        changed = directory.is_dir() and source_hash(directory, config.platforms) != record.get(
            "source_hash"
        )
    except FatalError:
        changed = True
    if changed:
        print(
            f"playbookctl: warning: playbooks/{name} changed since it was tried "
            f"({record.get('version')}); `playbookctl try {name}` publishes the change",
            file=sys.stderr,
        )
    return Registered(name, f"playbooks/{name}/workflow.yaml (tried)", record["workflow"]), record


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl import contract  # noqa: PLC0415 - fast start
    from playbookctl.pipelinerun import (  # noqa: PLC0415 - fast start
        MANUAL_EXECUTION,
        RunLabels,
        parse_params,
        pipelinerun,
    )
    from playbookctl.playbook import name_argument_problem  # noqa: PLC0415 - fast start
    from playbookctl.render import to_yaml  # noqa: PLC0415 - fast start

    problem = name_argument_problem(config, args.name)
    if problem is not None:
        raise FatalError(problem)
    values = parse_params(args.param)
    run_labels = RunLabels(
        workflow_execution=(
            contract.workflow_execution_name(args.remediation_request)
            if args.remediation_request
            else MANUAL_EXECUTION
        ),
        workflow_id=args.workflow_id,
    )
    registered, target = None, args.target
    if args.tried:
        registered, record = _tried(config, args.name)
        # The try's --target and --param values stand unless given again (given ones win).
        tried_params = record.get("params")
        if isinstance(tried_params, dict):
            values = {
                **{k: v for k, v in tried_params.items() if isinstance(v, str)},
                **values,
            }
        if target is None and isinstance(record.get("target"), str):
            target = record["target"]
            print(f"pipelinerun: --target {target}, as tried", file=sys.stderr)
    doc = pipelinerun(config, args.name, values, target, registered=registered, run=run_labels)
    if args.format == "json":
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        # Quoted wherever kubectl's YAML 1.1 reading would differ (`--param X=y` stays "y").
        sys.stdout.write(to_yaml(doc))
    return 0
