"""Flags several commands share."""

from __future__ import annotations

import argparse

from playbookctl.reporters import FORMATS


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


def registry_overrides(args: argparse.Namespace) -> dict[str, object]:
    insecure = getattr(args, "insecure_registries", None)
    return {
        "registry": getattr(args, "registry", None),
        "image_repo": getattr(args, "image_repo", None),
        "bundle_repo": getattr(args, "bundle_repo", None),
        "insecure_registries": tuple(insecure) if insecure else None,
    }
