"""`playbookctl try NAME`: build and publish the working tree's playbook to the dev environment.

The image is made from git's objects, as a release's is: a commit of the playbook's tracked
files as they are on disk (uncommitted edits included, without touching the index, HEAD or any
ref), so an untracked or ignored file never enters it (lint refuses an untracked one, with the
reason: git add it). The one place uncommitted changes may be published: only to a loopback
registry (the one `playbookctl dev up` runs, or `--registry` naming another loopback one), and
under `<spec.version>-dev.<12 hex of the source hash>`, so no real version is spent and trying
the same tree twice reuses the first try. Prints the bundle reference, `inspect`'s summary and the
PipelineRun Kubernaut would create (values not given appear as `<NAME>` placeholders).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import yaml

from playbookctl.commands._common import add_smoke_flag
from playbookctl.config import Config
from playbookctl.errors import FatalError, GitError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "try",
        help="build and publish the working tree's playbook to the dev environment",
        description="Build the image and push the bundle of playbooks/NAME as its tracked "
        "files are in the working tree (uncommitted edits included; untracked files are "
        "refused by lint, ignored ones left out) to the dev environment's registry "
        "(`playbookctl dev up`), under the version <spec.version>-dev.<source hash>; then "
        "print the bundle reference, inspect's summary and the PipelineRun Kubernaut would "
        "create. Refuses any registry that is not on loopback.",
    )
    parser.add_argument("name", metavar="NAME", help="playbook directory under playbooks/")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter value for the PipelineRun (repeatable)",
    )
    parser.add_argument(
        "--target",
        default=None,
        metavar="NS/KIND/NAME",
        help="the TARGET_RESOURCE for the PipelineRun (default: a <TARGET_RESOURCE> placeholder)",
    )
    parser.add_argument(
        "--registry",
        default=None,
        metavar="HOST:PORT",
        help="a loopback registry instead of the dev environment's (DOCKER_HOST is then used "
        "as the engine and PLAYBOOKCTL_BASE_IMAGE_OVERRIDES as the stand-ins)",
    )
    add_smoke_flag(parser)
    parser.set_defaults(func=run, registry_access=lambda _a: "write")


def _commit(config: Config, name: str) -> tuple[str, bool]:
    """The revision recorded in the image and bundle: HEAD, marked `-dirty` when the playbook
    has uncommitted changes (then it is not what HEAD holds)."""
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415

    try:
        repo = GitRepo(config.root)
        head = repo.head()
        dirty = repo.is_dirty([f"playbooks/{name}"])
    except GitError:
        return "uncommitted", True
    return (f"{head}-dirty" if dirty else head), dirty


_NO_DIGEST = "sha256:" + "0" * 64  # stands for the bundle while only the values are checked


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl import build  # noqa: PLC0415 - docker loads only here
    from playbookctl.bundle import read_bundle  # noqa: PLC0415
    from playbookctl.commands.dev import dev_package  # noqa: PLC0415
    from playbookctl.commands.inspect import report_bundle  # noqa: PLC0415
    from playbookctl.commands.publish import source_repository_url  # noqa: PLC0415
    from playbookctl.oci import RegistryClient  # noqa: PLC0415
    from playbookctl.pipelinerun import (  # noqa: PLC0415
        parse_params,
        pipelinerun,
        tried_workflow,
    )
    from playbookctl.progress import PublishProgress  # noqa: PLC0415
    from playbookctl.publish import publish  # noqa: PLC0415

    values = parse_params(args.param)  # usage errors before anything is built
    if values or args.target:
        # The values against the working tree's parameters, before anything is built or
        # pushed: an undeclared or invalid --param is refused first (no bundle digest yet).
        pipelinerun(
            config,
            args.name,
            values,
            args.target,
            registered=tried_workflow(
                config, args.name, f"{config.bundle_ref(args.name)}:0@{_NO_DIGEST}"
            ),
            placeholders=True,
        )
    env_module = None
    overrides = dict(config.base_image_overrides)
    if args.registry is not None:
        registry, docker_host = args.registry, None
        config = config.with_overrides(registry=registry)  # checks host[:port]
    else:
        env_module = dev_package()
        state = env_module.running_state()
        registry, docker_host = state.registry, state.engine_url
        # The stand-in for every base the playbooks name; explicit overrides win.
        overrides = {**state.overrides(config.playbooks_dir), **overrides}
    if not build.is_loopback_registry(registry):
        raise FatalError(
            f"try publishes only to a loopback registry (the dev environment); {registry} is "
            "not one. A real registry gets committed versions only: `playbookctl publish`"
        )
    config = config.with_overrides(
        registry=registry, base_image_overrides=overrides, smoke=args.smoke
    )
    commit, dirty = _commit(config, args.name)
    source = source_repository_url(config) or config.root.as_uri()

    progress = PublishProgress(sys.stderr, label="try")
    try:
        (result,) = publish(
            config,
            [args.name],
            jobs=1,
            dry_run=False,
            commit=commit,
            source_repository=source,
            on_event=progress,
            docker_host=docker_host,
            dev_versions=True,
            allow_dirty=True,  # the one place uncommitted changes are published
        )
    finally:
        progress.close()
    if not result.ok or result.bundle is None or not result.bundle.digest:
        print(f"try: {args.name} {result.version}: {result.status.value}", file=sys.stderr)
        for line in ([result.error] if result.error else []) + result.messages:
            print(f"  {line}", file=sys.stderr)
        return 1

    bundle = result.bundle.ref
    state_note = "working tree with uncommitted changes" if dirty else "committed tree"
    print(f"{args.name} {result.version} ({state_note}), {result.status.value}")
    print(f"bundle: {bundle}")
    if result.image is not None:
        print(f"image:  {result.image.ref}")
    print("\n== inspect")
    with RegistryClient(config) as client:
        report_bundle(read_bundle(client, bundle), sys.stdout)

    tried = tried_workflow(config, args.name, bundle)
    doc = pipelinerun(config, args.name, values, args.target, registered=tried, placeholders=True)
    print("\n== PipelineRun (kubectl create -f -)")
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    sys.stdout.write(text)
    missing = sorted(set(re.findall(r"<([A-Z][A-Z0-9_]*)>", text)))
    if missing:
        print(
            f"try: fill in {', '.join(missing)} (or pass --target NS/KIND/NAME and --param K=V)",
            file=sys.stderr,
        )
    if env_module is not None:
        env_module.record_try(
            config.root,
            args.name,
            {
                "bundle": bundle,
                "version": result.version,
                "workflow": tried.workflow,
                "source_hash": result.source_hash,
                # `pipelinerun NAME --tried` runs it again with these unless told otherwise.
                "target": args.target,
                "params": values,
            },
        )
    return 0
