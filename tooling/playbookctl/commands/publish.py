"""`playbookctl publish [NAME ...]`: build, bundle and push playbooks under immutable versions."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from playbookctl.commands._common import (
    add_push_flags,
    add_registry_flags,
    add_smoke_flag,
    registry_overrides,
    warn_stray_hermetic,
)
from playbookctl.config import Config
from playbookctl.errors import FatalError, GitError, UsageError
from playbookctl.progress import PublishProgress

if TYPE_CHECKING:
    from playbookctl.results import PublishResult


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "publish",
        help="build images, push Tekton bundles (immutable versions, idempotent)",
        description="For each playbook (default: all): build and push its image, render its "
        "Pipeline with the image pinned by digest, validate it, and push it as a Tekton bundle "
        "tagged with the workflow's version. A version already published from the same source "
        "is reused without a build or a write (one git does not register yet, whose image is "
        "assembled, is made first and its tag checked just before it would be written: reused "
        "there); one published from other content is refused.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="playbooks to publish")
    parser.add_argument("--jobs", type=int, default=None, help="playbooks in parallel")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="lint, look up the registry, build images not yet published (locally, from the "
        "working tree's tracked files as git would commit them: the bytes a release of them "
        "publishes), render and validate; write nothing to the registry",
    )
    parser.add_argument("--format", choices=("human", "json"), default="human")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the JSON result (what `playbookctl register` reads) to FILE",
    )
    parser.add_argument("--commit", default=None, metavar="SHA", help="default: git HEAD")
    parser.add_argument(
        "--source-repository",
        default=None,
        metavar="URL",
        help="default: config, then GITHUB_REPOSITORY, then the git remote `origin`",
    )
    add_registry_flags(parser)
    add_push_flags(parser)
    add_smoke_flag(parser)
    # A dry run still looks up what is published (and pulls bases from the registry).
    parser.set_defaults(func=run, registry_access=lambda a: "read" if a.dry_run else "write")


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.publish import publish  # noqa: PLC0415 - docker and requests load only here
    from playbookctl.results import dump_results  # noqa: PLC0415

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.commit is not None and not re.fullmatch(r"[0-9a-f]{7,64}", args.commit):
        # It labels the image and the bundle as their source revision: a typo would stick.
        raise UsageError(f"--commit {args.commit!r}: expected a commit id (hex), e.g. HEAD's")
    if args.output is not None:
        _check_writable(args.output)  # before anything is built or pushed, not after
    config = config.with_overrides(
        **registry_overrides(args),
        jobs=args.jobs,
        push_stall_timeout=args.push_stall_timeout,
        hermetic=args.hermetic,
        hermetic_playbooks=tuple(args.hermetic_playbooks) if args.hermetic_playbooks else None,
    )
    warn_stray_hermetic(config)
    commit = args.commit or head_commit(config.root)
    source_repository = args.source_repository or source_repository_url(config)
    printer = PublishProgress(sys.stderr)
    try:
        results = publish(
            config,
            args.names or None,
            jobs=config.jobs,
            dry_run=args.dry_run,
            commit=commit,
            source_repository=source_repository,
            on_event=printer,
        )
    finally:
        printer.close()
    payload = dump_results(results)
    # The report first: if the file cannot be written, what was pushed is still on record.
    if args.format == "json":
        sys.stdout.write(payload)
    else:
        report_human(results, sys.stdout)
    if args.output is not None:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(payload, "utf-8")
        except OSError as exc:
            raise FatalError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return 0 if all(r.ok or r.status.value == "dry-run" for r in results) else 1


def _check_writable(path: Path) -> None:
    """--output can be written: not a directory, and no file where a directory must be."""
    if path.is_dir():
        raise UsageError(f"--output {path}: is a directory; name a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir() or not os.access(parent, os.W_OK):
                raise UsageError(f"--output {path}: {parent} is not a writable directory")
            return


def report_human(results: list[PublishResult], out: TextIO) -> None:
    if not results:
        out.write("no playbooks to publish\n")
        return
    for r in results:
        out.write(f"{r.name} {r.version or '(no version)'}: {r.status.value}\n")
        for label, art in (("image", r.image), ("bundle", r.bundle)):
            if art is not None:
                out.write(f"  {label:<7}{art.action.value:<9}{art.ref}\n")
                if art.platforms:
                    out.write(f"  {'':<16}platforms: {', '.join(art.platforms)}\n")
        if r.error:
            out.write(f"  error: {r.error}\n")
        for message in r.messages:
            out.write(f"    {message}\n")
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    out.write(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + "\n")


def head_commit(root: Path) -> str:
    """The commit being published: git HEAD of the repository."""
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415

    try:
        return GitRepo(root).head()
    except GitError as exc:
        raise FatalError(f"cannot tell which commit is published ({exc}); pass --commit") from None


def source_repository_url(config: Config, env: dict[str, str] | None = None) -> str:
    """config.source_repository, else GitHub's repository URL, else origin's URL in its one
    spelling: release's (release.source_repository)."""
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415
    from playbookctl.release import source_repository  # noqa: PLC0415

    env = dict(os.environ) if env is None else env
    try:
        repo: GitRepo | None = GitRepo(config.root)
    except GitError:
        repo = None  # not a git repository: only a configured or GitHub's URL
    return source_repository(config, repo, "origin", env)
