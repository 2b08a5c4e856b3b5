"""`playbookctl render NAME`: print the Tekton Pipeline a playbook's bundle would hold."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
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
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the Pipeline to FILE (replaced whole, after rendering) instead of stdout: "
        "`render NAME -o playbooks/NAME/pipeline.yaml` starts a custom pipeline (a shell "
        "redirection would empty the file before it is read)",
    )
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
    text = to_json(rendered.data) if args.format == "json" else to_yaml(rendered.data)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    _write(args.output, text)
    print(f"render: wrote {args.output}", file=sys.stderr)
    return 0


def _write(path: Path, text: str) -> None:
    """All or nothing: a temp file beside `path`, renamed over it (the rendering read the old
    file before this runs)."""
    path = path.absolute()
    if not path.parent.is_dir():
        raise FatalError(f"--output {path}: directory {path.parent} does not exist")
    if path.exists():
        mode = path.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask  # as a shell redirection would create it
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FatalError(f"--output {path}: {exc.strerror or exc}") from None
