"""`playbookctl render NAME`: print the Tekton Pipeline a playbook's bundle would hold."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from playbookctl.config import Config
from playbookctl.errors import FatalError
from playbookctl.playbook import discover, is_playbook_dir, load_playbook


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "render",
        help="print a playbook's rendered Tekton Pipeline",
        description="Print the Pipeline of playbooks/NAME: its pipeline.yaml, or the standard "
        "wrapper generated from workflow.yaml. With --image, the placeholder image is replaced "
        "as a release would.",
    )
    parser.add_argument("name", metavar="NAME", help="the playbook (directory under playbooks/)")
    parser.add_argument(
        "--image",
        default=None,
        metavar="REF",
        help="replace the placeholder with this image (registry/repo/name:tag@sha256:...)",
    )
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.render import render_pipeline, to_json, to_yaml  # noqa: PLC0415

    directory = config.playbooks_dir / args.name
    if "/" not in args.name and not args.name.startswith(".") and directory.is_dir():
        if not is_playbook_dir(directory):
            raise FatalError(
                f"playbooks/{args.name} has no workflow.yaml file; run playbookctl lint "
                f"playbooks/{args.name} for the details"
            )
    elif "/" in args.name or args.name.startswith(".") or not is_playbook_dir(directory):
        known = ", ".join(discover(config)) or "none"
        raise FatalError(
            f"no playbook named {args.name!r} under {config.playbooks_dir} (playbooks: {known})"
        )
    if args.image is not None:
        from playbookctl.oci import parse_reference  # noqa: PLC0415

        parse_reference(args.image)  # a bad --image fails here, not inside a printed Pipeline
    pb = load_playbook(directory, config.root, config.max_file_bytes)
    if pb.workflow is None and pb.pipeline is None:
        raise FatalError(
            f"{pb.rel(pb.workflow_path)} did not load; run playbookctl lint "
            f"{pb.rel(directory)} for the details"
        )
    rendered = render_pipeline(pb, config, image=args.image)
    sys.stdout.write(to_json(rendered.data) if args.format == "json" else to_yaml(rendered.data))
    return 0
