"""The command line: parse, load configuration, dispatch to one command module, map errors.

Each subcommand lives in playbookctl.commands.<name> and exposes `register(subparsers)`, which
adds its parser and sets `func` to a `run(args, config) -> int`, and, for a command that talks to
the configured registry, `registry_access` to a function of its arguments (see registry_access).
Heavy dependencies (docker, git, requests) are imported inside `run`, so `playbookctl lint`
starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from playbookctl import __version__
from playbookctl.config import load_config
from playbookctl.errors import FatalError, RefusalsError, UsageError

COMMANDS = (
    "lint",
    "rules",
    "render",
    "new",
    "publish",
    "inspect",
    "plan",
    "register",
    "release",
    "verify",
    "pipelinerun",
    "dev",
    "try_",  # `try` is a Python keyword: the module is try_, the command `try`
    "bump",
)


class _Parser(argparse.ArgumentParser):
    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # Python 3.11 drops a lone "--" given as an option's value (`--base=--`) and passes a
        # list on where a string belongs; refuse it as a missing value.
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> None:  # type: ignore[override]
        # main() already says "playbookctl: usage error:"; name the subcommand, not the program
        # twice, and where the right usage is.
        command = self.prog.removeprefix("playbookctl").strip()
        raise UsageError(f"{command + ': ' if command else ''}{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="playbookctl",
        description="Lint, build, bundle, publish and register Kubernaut remediation playbooks.",
    )
    parser.add_argument("--version", action="version", version=f"playbookctl {__version__}")
    parser.add_argument(
        "-C",
        "--root",
        type=Path,
        default=None,
        help="repository root (default: nearest directory with [tool.playbookctl] in "
        "pyproject.toml; env PLAYBOOKCTL_ROOT)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"playbookctl.commands.{name}")
        module.register(sub)
    return parser


# What an invocation may do with the registry: nothing, read (look up, pull) or also push.
RegistryAccess = Literal["none", "read", "write"]


def registry_access(argv: Sequence[str]) -> RegistryAccess:
    """What `playbookctl ARGV` may do with the registry, from its flags alone (not from what it
    finds there): the CI workflows give each job the package permission and credentials its
    commands need and no more (tests/unit/test_workflows.py holds them to this). A command
    that sets no `registry_access` never talks to a registry."""
    args = build_parser().parse_args(argv)
    access = getattr(args, "registry_access", None)
    if access is None:
        return "none"
    value: RegistryAccess = access(args)
    return value


def _crash_log(exc: BaseException) -> str:
    fd, path = tempfile.mkstemp(prefix="playbookctl-crash-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"playbookctl {__version__}, python {sys.version}\nargv: {sys.argv}\n\n")
        fh.write("".join(traceback.format_exception(exc)))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        config = load_config(args.root)
        code: int = args.func(args, config)
        return code
    except UsageError as exc:
        print(f"playbookctl: usage error: {exc}", file=sys.stderr)
        return 2
    except FatalError as exc:
        for line in exc.lines if isinstance(exc, RefusalsError) else [str(exc)]:
            print(f"playbookctl: error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("playbookctl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # last resort: users never see a traceback, but can report one
        log = _crash_log(exc)
        print(
            f"playbookctl: internal error: {type(exc).__name__}: {exc}\n"
            f"  this is a bug in playbookctl; the details are in {log}",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
