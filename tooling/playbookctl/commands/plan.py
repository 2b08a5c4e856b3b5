"""`playbookctl plan`: which playbooks a release publishes, refuses and unregisters."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from playbookctl.commands._common import add_platform_flag, platform_override
from playbookctl.config import Config
from playbookctl.errors import FatalError, UsageError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "plan",
        help="show which playbooks need publishing, are refused, or were deleted",
        description="Compare playbooks with their registrations under registry/workflows/. "
        "With --base, only playbooks changed between BASE and HEAD (base...head, or base..head "
        "when the two share no history) are considered; deletions are always reported. Exit 1 "
        "when a playbook is refused (content changed without a version bump).",
    )
    parser.add_argument("--base", default=None, metavar="REV", help="compare changes since REV")
    parser.add_argument(
        "--head",
        default=None,
        metavar="REV",
        help="the revision to plan for (default: the working tree)",
    )
    parser.add_argument(
        "--forbid-generated-changes",
        action="store_true",
        help="with --base: fail when registry/workflows/ or registry/kustomization.yaml changed "
        "to anything but what `register` writes from the tree at head (they are generated; a "
        "pull request must not edit them by hand)",
    )
    parser.add_argument(
        "--verify-registrations",
        action="store_true",
        help="check every registration plan would take as published against the registry (its "
        "bundle and image tags in the configured repositories point at the registered "
        "digests); one that is not borne out is refused (what a release does before it skips "
        "anything)",
    )
    parser.add_argument(
        "--format",
        choices=("human", "json", "matrix"),
        default="human",
        help='matrix: a GitHub Actions matrix {"include": [{name, version}, ...]}; inside '
        "Actions, matrix/has-work/has-changes are also appended to $GITHUB_OUTPUT",
    )
    add_platform_flag(parser)
    # --verify-registrations reads the registry; a plan without it reads files only.
    parser.set_defaults(
        func=run, registry_access=lambda a: "read" if a.verify_registrations else "none"
    )


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415
    from playbookctl.plan import (  # noqa: PLC0415
        format_human,
        generated_changes,
        make_plan,
        write_github_output,
    )

    # The platform list is part of the source hash the plan compares.
    config = config.with_overrides(platforms=platform_override(args))
    if args.forbid_generated_changes and not (args.base or "").strip():
        raise UsageError("--forbid-generated-changes needs --base")
    repo = GitRepo(config.root)
    # The gate diffs against its base: without it, nothing would be checked.
    missing_base = not args.forbid_generated_changes
    if args.verify_registrations:
        from playbookctl.oci import RegistryClient  # noqa: PLC0415
        from playbookctl.verify import (  # noqa: PLC0415
            prefetch_publication_tokens,
            publication_problem,
        )

        with RegistryClient(config) as client:
            plan = make_plan(
                config,
                repo,
                base=args.base,
                head=args.head,
                prove=lambda reg: publication_problem(config, client, reg),
                before_proving=lambda regs: prefetch_publication_tokens(config, client, regs),
                missing_base=missing_base,
            )
    else:
        plan = make_plan(config, repo, base=args.base, head=args.head, missing_base=missing_base)
    if plan.note:
        print(f"playbookctl: plan: {plan.note}", file=sys.stderr)
    edited: list[tuple[str, str]] = []
    if args.forbid_generated_changes and plan.base is not None:
        edited = generated_changes(config, repo, plan.base, args.head or "HEAD")
    if args.format == "json":
        sys.stdout.write(json.dumps(plan.to_json(), indent=2) + "\n")
    elif args.format == "matrix":
        sys.stdout.write(json.dumps(plan.matrix(), separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(format_human(plan) + "\n")
    if os.environ.get("GITHUB_OUTPUT"):
        try:
            write_github_output(plan, Path(os.environ["GITHUB_OUTPUT"]))
        except OSError as exc:
            raise FatalError(
                f"GITHUB_OUTPUT: cannot append to {os.environ['GITHUB_OUTPUT']}: "
                f"{exc.strerror or exc}"
            ) from None
    for entry in plan.lowered:
        # a warning, not a refusal: a rollback to a version published from this content is fine
        if os.environ.get("GITHUB_ACTIONS"):
            print(f"::warning::{entry.name}: {entry.reason}")
        print(f"playbookctl: {entry.name}: {entry.reason}", file=sys.stderr)
    for entry in plan.refused:
        print(f"playbookctl: refused: {entry.name}: {entry.reason}", file=sys.stderr)
    for path, why in edited:
        message = (
            f"generated by playbookctl register; do not edit it by hand (a release rewrites "
            f"it): {why}"
        )
        if os.environ.get("GITHUB_ACTIONS"):
            print(f"::error file={path},line=1::{message}")
        print(f"playbookctl: {path}: {message}", file=sys.stderr)
    return 1 if plan.refused or edited else 0
