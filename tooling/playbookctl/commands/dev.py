"""`playbookctl dev up|down|status|env`: a local registry and Docker engine that stay up.

The environment itself is the separate development package `playbookctl_dev` (in a clone's
editable install, not in the wheel); it is imported only when `dev` runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from playbookctl.config import Config
from playbookctl.errors import FatalError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dev",
        help="start/stop a local registry, Docker engine and base-image stand-ins",
        description="A development environment that stays up between commands: a loopback OCI "
        "registry, a Docker engine (the machine's own when DOCKER_HOST or /var/run/docker.sock "
        "answers, else a private dockerd) and the base-image stand-in, detached from the "
        "terminal until `dev down`. State: $PLAYBOOKCTL_CACHE_DIR/dev (default "
        "$XDG_CACHE_HOME/playbookctl/dev). `playbookctl try NAME` publishes there.",
    )
    sub = parser.add_subparsers(dest="dev_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    up = sub.add_parser("up", help="start what is not running (idempotent)")
    up.set_defaults(func=run_up)
    down = sub.add_parser("down", help="stop everything `up` started and remove its state")
    down.set_defaults(func=run_down)
    status = sub.add_parser("status", help="what runs where (exit 1 when not up)")
    status.add_argument("--format", choices=("human", "json"), default="human")
    status.set_defaults(func=run_status)
    env = sub.add_parser(
        "env", help='shell exports for playbookctl and docker: eval "$(playbookctl dev env)"'
    )
    env.set_defaults(func=run_env)
    remote = sub.add_parser(
        "remote",
        help="a bare git remote on this machine to release to (never the real repository)",
        description="Make (or update) a bare repository on this machine, add it as a git remote "
        "(default name: dev) and push the checked-out branch to it, so `playbookctl release "
        "--remote dev` can run the whole release against the dev registry without touching "
        "origin. Default place: <git dir>/playbookctl/<name>-remote.git, removed with the clone.",
    )
    remote.add_argument("--name", default="dev", help="the git remote's name (default: dev)")
    remote.add_argument(
        "--path", type=Path, default=None, help="where the bare repository goes (default above)"
    )
    remote.set_defaults(func=run_remote)


def dev_package() -> ModuleType:
    """playbookctl_dev.env, or a clear error when this installation lacks the package."""
    if importlib.util.find_spec("playbookctl_dev") is None:
        raise FatalError(
            "`playbookctl dev` needs the development package playbookctl_dev, which this "
            "installation does not include; use a clone of the repository with `make venv` "
            "(an editable install: pip install -e '.[dev]')"
        )
    return importlib.import_module("playbookctl_dev.env")


def _say(message: str) -> None:
    print(f"dev: {message}", file=sys.stderr, flush=True)


def run_up(args: argparse.Namespace, config: Config) -> int:
    env = dev_package()
    env.up(log=_say)
    state, components = env.status()
    _print_status(state, components)
    print('\nnext: eval "$(playbookctl dev env)"   # point playbookctl and docker at it')
    print("      playbookctl try NAME             # build and publish a playbook there")
    return 0


def run_down(args: argparse.Namespace, config: Config) -> int:
    env = dev_package()
    if not env.down(log=_say):
        print(f"no dev environment in {env.dev_dir()}: nothing to stop")
    else:
        print("dev environment stopped and removed")
    return 0


def _print_status(state: Any, components: list[Any]) -> None:
    print(f"dev environment in {state.directory}")
    width = max(len(c.where) for c in components)
    for c in components:
        print(f"  {c.name:<20} {c.where:<{width}}  {'up' if c.running else 'DOWN':<4}  {c.detail}")


def run_status(args: argparse.Namespace, config: Config) -> int:
    env = dev_package()
    state, components = env.status()
    if state is None:
        if args.format == "json":
            print(json.dumps({"directory": str(env.dev_dir()), "components": []}, indent=2))
        else:
            print(f"no dev environment in {env.dev_dir()} (start one: playbookctl dev up)")
        return 1
    if args.format == "json":
        print(json.dumps(env.as_json(state, components), indent=2))
    else:
        _print_status(state, components)
    return 0 if all(c.running for c in components) else 1


def run_env(args: argparse.Namespace, config: Config) -> int:
    env = dev_package()
    state = env.running_state()
    print(f"# playbookctl dev environment ({state.directory})")
    for key, value in state.exports(config.playbooks_dir).items():
        print(f"export {key}={shlex.quote(value)}")
    print('# apply with: eval "$(playbookctl dev env)"')
    return 0


def run_remote(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415

    path, branch = GitRepo(config.root).local_remote(args.name, args.path)
    _say(f"remote {args.name!r} is the bare repository {path}")
    if branch is None:
        _say("HEAD is detached: check out the branch to release, then run this again")
        return 0
    _say(f"pushed {branch} there; release to it with: playbookctl release --remote {args.name}")
    return 0
