"""`playbookctl register RESULTS...`: write registry/ from publish results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from playbookctl.commands._common import (
    add_platform_flag,
    check_branch_flag,
    platform_override,
    print_release_report,
)
from playbookctl.config import Config
from playbookctl.errors import UsageError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "register",
        help="write registry/ from publish results",
        description="Write registry/workflows/<name>.yaml for each successful publish result "
        "(files from `publish --format json`, or directories of them from parallel jobs), "
        "remove the registrations of deleted playbooks and regenerate "
        "registry/kustomization.yaml. Unchanged playbooks give byte-identical files. With "
        "--push: check every bundle is in the registry, commit once and push, rebuilding on "
        "the new head and retrying when the remote moved (as `release` does).",
    )
    parser.add_argument(
        "results",
        nargs="*",
        type=Path,
        metavar="RESULTS",
        help="publish result files or directories; none: only bring registry/ in line with the "
        "tree (remove deleted playbooks' registrations, regenerate kustomization.yaml, e.g. "
        "after adding or deleting an ActionType)",
    )
    parser.add_argument(
        "--commit",
        action="store_true",
        help="commit the registry/ changes (configured author); nothing changed, no commit",
    )
    parser.add_argument("--push", action="store_true", help="commit and push (implies --commit)")
    parser.add_argument("--remote", default="origin", help="git remote for --push")
    parser.add_argument(
        "--branch", default=None, metavar="NAME", help="with --push: push to this branch"
    )
    parser.add_argument("--author-name", default=None, help="commit author name")
    parser.add_argument("--author-email", default=None, help="commit author email")
    parser.add_argument("--dry-run", action="store_true", help="report, write nothing")
    parser.add_argument(
        "--missing-ok",
        action="store_true",
        help="a RESULTS path that does not exist counts as no results (a release that only "
        "deletes playbooks has no publish artifacts; deletions are still registered)",
    )
    add_platform_flag(parser)  # the source hash a result is checked against covers them
    # --push checks every bundle it registers is in the registry; without it, files only.
    parser.set_defaults(func=run, registry_access=lambda a: "read" if a.push else "none")


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.results import read_results  # noqa: PLC0415

    check_branch_flag(args.branch, config.root, args.remote)
    config = config.with_overrides(platforms=platform_override(args))
    if args.push and args.dry_run:
        raise UsageError("--push and --dry-run exclude each other")
    inputs = [p for p in args.results if p.exists()] if args.missing_ok else args.results
    results = read_results(inputs)
    if not results and args.results:
        # Legitimate for a deletion-only release, but a wrong path or an artifact download that
        # found nothing looks the same: say so rather than succeed in silence.
        shown = ", ".join(str(p) for p in args.results)
        print(f"playbookctl register: no publish results in {shown}", file=sys.stderr)
    if args.push:
        return _push(args, config, results)
    return _write(args, config, results)


def _write(args: argparse.Namespace, config: Config, results: list[Any]) -> int:
    from playbookctl.register import GENERATED_PATHS, RegisterAction, register  # noqa: PLC0415
    from playbookctl.release import commit_message  # noqa: PLC0415

    outcome = register(config, results, dry_run=args.dry_run)
    for change in outcome.changes:
        detail = f" ({change.detail})" if change.detail else ""
        print(f"{change.action.value:<10} {change.name} {change.version} {change.bundle}{detail}")
    for path in outcome.written:
        print(f"{'would write' if args.dry_run else 'wrote'} {path}")
    for path in outcome.removed:
        print(f"{'would remove' if args.dry_run else 'removed'} {path}")
    if args.commit and not args.dry_run:
        from playbookctl.gitrepo import GitRepo  # noqa: PLC0415

        sha = GitRepo(config.root).commit(
            commit_message(outcome.changes),
            list(GENERATED_PATHS),
            args.author_name or config.git_author_name,
            args.author_email or config.git_author_email,
        )
        print(f"committed {sha}" if sha else "nothing to commit")
    skipped = [
        c for c in outcome.changes if c.action in (RegisterAction.SKIPPED, RegisterAction.REFUSED)
    ]
    for c in skipped:
        print(f"playbookctl: not registered: {c.name}: {c.detail}", file=sys.stderr)
    return 1 if skipped else 0


def _push(args: argparse.Namespace, config: Config, results: list[Any]) -> int:
    from playbookctl.release import (  # noqa: PLC0415
        ReleaseOptions,
        register_and_push,
    )

    opts = ReleaseOptions(
        branch=args.branch,
        remote=args.remote,
        author_name=args.author_name,
        author_email=args.author_email,
    )
    report = register_and_push(
        config,
        results,
        opts,
        log=lambda m: print(f"register: {m}", file=sys.stderr),
        inputs=args.results,
    )
    return print_release_report(report, opts.remote, "not registered")
