"""Flags several commands share."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from playbookctl.config import SMOKE_MODES
from playbookctl.errors import FatalError
from playbookctl.reporters import FORMATS

if TYPE_CHECKING:
    from playbookctl.config import Config
    from playbookctl.release import ReleaseReport


def add_format_flag(parser: argparse.ArgumentParser, choices: tuple[str, ...] = FORMATS) -> None:
    parser.add_argument(
        "--format",
        choices=choices,
        default=None,
        help=f"output format ({', '.join(choices)}); default: "
        + ("github inside GitHub Actions, else human" if "github" in choices else "human"),
    )


def add_registry_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("registry (override [tool.playbookctl] and PLAYBOOKCTL_*)")
    g.add_argument("--registry", default=None, help="registry host[:port] (PLAYBOOKCTL_REGISTRY)")
    g.add_argument("--image-repo", default=None, help="repository prefix for images")
    g.add_argument("--bundle-repo", default=None, help="repository prefix for bundles")
    g.add_argument(
        "--insecure-registry",
        action="append",
        default=None,
        dest="insecure_registries",
        metavar="HOST[:PORT]",
        help="allow plain HTTP to this registry (loopback registries always may)",
    )
    add_platform_flag(g)


def add_push_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the commands that push images through the engine."""
    parser.add_argument(
        "--push-stall-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop an image push that makes no progress for this long, naming the layer "
        "(PLAYBOOKCTL_PUSH_STALL_TIMEOUT, default 60)",
    )
    parser.add_argument(
        "--hermetic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the RUN steps of engine builds with no network at all (PLAYBOOKCTL_HERMETIC, "
        "default false: the engine's own default network, never the host's)",
    )
    parser.add_argument(
        "--hermetic-playbook",
        action="append",
        default=None,
        dest="hermetic_playbooks",
        metavar="NAME",
        help="run the RUN steps of this playbook's engine builds with no network at all "
        "(repeat for several; replaces PLAYBOOKCTL_HERMETIC_PLAYBOOKS and the hermetic-playbooks "
        "setting, default none)",
    )


def add_platform_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--platform",
        action="append",
        default=None,
        dest="platforms",
        metavar="OS/ARCH",
        help="build for this platform (repeat for several; PLAYBOOKCTL_PLATFORMS, "
        "default linux/amd64 and linux/arm64)",
    )


def add_smoke_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--smoke",
        choices=SMOKE_MODES,
        default=None,
        help="start every built image, per platform, before its push (PLAYBOOKCTL_SMOKE; "
        "default auto: platforms this machine cannot execute are checked in the image only; "
        "required: they fail; off: no smoke run)",
    )


def registry_overrides(args: argparse.Namespace) -> dict[str, object]:
    insecure = getattr(args, "insecure_registries", None)
    return {
        "smoke": getattr(args, "smoke", None),
        "registry": getattr(args, "registry", None),
        "image_repo": getattr(args, "image_repo", None),
        "bundle_repo": getattr(args, "bundle_repo", None),
        "insecure_registries": tuple(insecure) if insecure else None,
        "platforms": platform_override(args),
    }


def platform_override(args: argparse.Namespace) -> tuple[str, ...] | None:
    platforms = getattr(args, "platforms", None)
    return tuple(platforms) if platforms else None


def check_branch_flag(branch: str | None, root: Path, remote: str) -> None:
    """--branch is a plain branch name, checked before anything is published or committed: one
    `git check-ref-format --branch` accepts, and neither a full ref (refs/heads/x: a branch
    refs/heads/refs/heads/x), nor `@` (HEAD), nor a remote-tracking name (origin/main: a local
    branch that makes `origin/main` ambiguous, and a branch literally named so on the remote)."""
    if branch is None:
        return
    done = subprocess.run(
        ["git", "check-ref-format", "--branch", branch],
        capture_output=True,
        check=False,
        timeout=30,
    )
    problem = None
    if done.returncode != 0 or branch.startswith("-") or branch == "@":
        problem = "not a valid git branch name"
    elif branch.startswith("refs/"):
        problem = (
            f"a full ref name, not a branch name (it would be refs/heads/{branch}); give the "
            "branch's name alone"
        )
    else:
        first = branch.split("/", 1)[0]
        if "/" in branch and first in {remote, *_remotes(root)}:
            problem = (
                f"names a remote-tracking branch of {first!r}; give the branch's name as the "
                f"remote has it, e.g. {branch.split('/', 1)[1]!r}"
            )
    if problem:
        raise FatalError(f"--branch {branch!r}: {problem}; nothing done")


def _remotes(root: Path) -> list[str]:
    """The repository's remotes (none outside a repository: release says so itself)."""
    done = subprocess.run(
        ["git", "-C", str(root), "remote"], capture_output=True, text=True, check=False, timeout=30
    )
    return done.stdout.split() if done.returncode == 0 else []


def print_release_report(report: ReleaseReport, remote: str, not_done: str) -> int:
    """The end of `release` and `register --push`: the table, the notes, what was pushed, the
    step summary in GitHub Actions, and the exit code (1, with `NOT_DONE: names`, on a failure)."""
    from playbookctl.register import RegisterAction  # noqa: PLC0415
    from playbookctl.release import format_table, succeeded, write_step_summary  # noqa: PLC0415

    print(format_table(report))
    for note in report.notes:
        print(f"note: {note}")
    for change in report.changes:
        if change.action is RegisterAction.HELD:
            print(f"playbookctl: held back: {change.name}: {change.detail}", file=sys.stderr)
    if report.commit:
        verb = "pushed" if report.pushed else "already on"
        print(f"{verb} {report.commit} -> {remote}/{report.target}")
    elif report.failed:
        print("nothing committed, nothing pushed")
    else:
        print("no change: nothing committed, nothing pushed")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        try:
            write_step_summary(report, Path(os.environ["GITHUB_STEP_SUMMARY"]))
        except OSError as exc:
            # The release itself is done (or reported above); a summary is not worth hiding that.
            print(
                f"playbookctl: warning: GITHUB_STEP_SUMMARY: cannot append to "
                f"{os.environ['GITHUB_STEP_SUMMARY']}: {exc.strerror or exc}",
                file=sys.stderr,
            )
    if not succeeded(report):
        print(f"playbookctl: error: {not_done}: {', '.join(report.failed)}", file=sys.stderr)
        return 1
    return 0


def rules_base(config: Config) -> str:
    """The absolute URL of RULES.md for links in annotations and SARIF (reporters.rules_url):
    inside Actions from its variables, else from the `origin` remote at HEAD, else the file."""
    from playbookctl.errors import GitError  # noqa: PLC0415
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415
    from playbookctl.reporters import rules_url  # noqa: PLC0415

    remote = commit = None
    if not os.environ.get("GITHUB_REPOSITORY"):
        try:
            repo = GitRepo(config.root)
            remote = repo.remote_url("origin")
            commit = repo.head() if remote else None
        except GitError:
            pass  # not a clone: the file on this machine
    return rules_url(remote_url=remote, commit=commit, root=config.root)


def warn_stray_hermetic(config: Config) -> None:
    """A `hermetic-playbooks` entry that names no playbook is likely a typo (the playbook it
    meant then builds with a network) or a deleted playbook: said on stderr, not fatal, so a
    stale entry does not block every release."""
    if not config.hermetic_playbooks:
        return
    from playbookctl.playbook import discover  # noqa: PLC0415 - loads yaml and friends

    stray = sorted(set(config.hermetic_playbooks) - set(discover(config)))
    if stray:
        print(
            f"warning: hermetic-playbooks names {', '.join(stray)}, which is no playbook under "
            f"{config.playbooks_dir}",
            file=sys.stderr,
        )
