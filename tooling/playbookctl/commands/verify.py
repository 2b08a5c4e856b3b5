"""`playbookctl verify`: check registry/ against itself and against the OCI registry.

Exit 0 when there is no error (warnings allowed), 1 when there are errors, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from playbookctl.commands._common import (
    add_format_flag,
    add_registry_flags,
    registry_overrides,
    rules_base,
)
from playbookctl.config import Config, is_repository_root
from playbookctl.findings import has_errors
from playbookctl.reporters import REPORTERS, default_format


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verify",
        help="check every registration: bundle at its digest, valid Pipeline, images, "
        "kustomization, ActionTypes",
        description="Check registry/: every registration passes the workflow rules, names an "
        "existing ActionType and is listed in kustomization.yaml (exactly the files); and, "
        "unless --offline, its bundle exists at the pinned digest, reads as Tekton reads it, "
        "holds a valid Pipeline, and every image it runs exists at its pinned digest.",
    )
    add_format_flag(parser)
    parser.add_argument(
        "--offline", action="store_true", help="skip the registry checks (files only)"
    )
    add_registry_flags(parser)
    parser.set_defaults(func=run, registry_access=lambda a: "none" if a.offline else "read")


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.oci import RegistryClient  # noqa: PLC0415 - keeps other commands' start fast
    from playbookctl.verify import verify  # noqa: PLC0415

    config = config.with_overrides(**registry_overrides(args))
    fmt = args.format or default_format()
    root = config.root.resolve()
    if not config.registry_dir.is_dir() and not is_repository_root(root):
        # Run from (or -C'd to) the wrong directory, registry/ itself included, verify found
        # nothing and said "verified 0 registration(s)", exit 0: a check that could not fail.
        print(
            f"playbookctl verify: nothing to verify under {root} (no registry/, and no "
            "pyproject.toml with [tool.playbookctl]); run it in the repository, or -C its root",
            file=sys.stderr,
        )
        if fmt != "human":  # what a machine reads stays its format: no findings
            REPORTERS[fmt](
                [], sys.stdout, rules_base(config) if fmt in ("github", "sarif") else None
            )
        return 1
    if args.offline:
        report = verify(config, None)
    else:
        with RegistryClient(config) as client:
            report = verify(config, client)
    REPORTERS[fmt](
        report.findings, sys.stdout, rules_base(config) if fmt in ("github", "sarif") else None
    )
    if fmt == "human" and not has_errors(report.findings):
        online = (
            ""
            if args.offline
            else f", {report.bundles_checked} bundle(s), {report.images_checked} image(s)"
        )
        print(f"verified {len(report.registrations)} registration(s){online}")
    if fmt == "human":
        for image, platforms in sorted(report.image_platforms.items()):
            print(f"image {image}: {', '.join(platforms) or 'no platforms'}")
    return 1 if has_errors(report.findings) else 0
