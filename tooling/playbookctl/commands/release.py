"""`playbookctl release`: plan, publish, register, one commit, push."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from playbookctl.commands._common import (
    add_push_flags,
    add_registry_flags,
    add_smoke_flag,
    check_branch_flag,
    print_release_report,
    registry_overrides,
    warn_stray_hermetic,
)
from playbookctl.config import Config
from playbookctl.progress import PublishProgress


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "release",
        help="publish what changed, register it, commit once and push",
        description="Refuse a dirty tree; plan (every playbook against registry/, or only those "
        "changed since --base); publish; write registry/; make one commit listing each "
        "playbook, version and digest; push it. A push rejected because the remote moved is "
        "rebuilt on the new head and retried (push-retries times). Nothing to change: no "
        "commit, no push.",
    )
    parser.add_argument(
        "--base", default=None, metavar="REV", help="only playbooks changed since REV"
    )
    parser.add_argument(
        "--branch",
        default=None,
        metavar="NAME",
        help="push the release commit to this branch (updated in place) instead of the "
        "checked-out one, for protected main branches",
    )
    parser.add_argument("--remote", default="origin", help="git remote (default: origin)")
    parser.add_argument("--jobs", type=int, default=None, help="playbooks published in parallel")
    parser.add_argument("--author-name", default=None, help="release commit author name")
    parser.add_argument("--author-email", default=None, help="release commit author email")
    parser.add_argument(
        "--source-repository",
        default=None,
        metavar="URL",
        help="provenance URL recorded in images, bundles and registrations "
        "(default: setting, GITHUB_REPOSITORY, then the remote's URL)",
    )
    add_registry_flags(parser)
    add_push_flags(parser)
    add_smoke_flag(parser)
    parser.set_defaults(func=run, registry_access=lambda _a: "write")


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.release import (  # noqa: PLC0415
        ReleaseOptions,
        release,
    )

    check_branch_flag(args.branch, config.root, args.remote)
    config = config.with_overrides(
        **registry_overrides(args),
        source_repository=args.source_repository,
        push_stall_timeout=args.push_stall_timeout,
        hermetic=args.hermetic,
        hermetic_playbooks=tuple(args.hermetic_playbooks) if args.hermetic_playbooks else None,
    )
    warn_stray_hermetic(config)
    opts = ReleaseOptions(
        base=args.base,
        branch=args.branch,
        remote=args.remote,
        jobs=args.jobs,
        author_name=args.author_name,
        author_email=args.author_email,
    )
    progress = PublishProgress(sys.stderr, label="release")
    try:
        report = release(
            config,
            opts,
            log=lambda m: progress.note(f"release: {m}"),
            on_event=progress,
        )
    finally:
        progress.close()
    return print_release_report(report, opts.remote, "not released")
