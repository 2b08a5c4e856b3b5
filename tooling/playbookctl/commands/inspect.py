"""`playbookctl inspect REF`: show a Tekton bundle's annotations and objects, check its contract.

Exit 0 when the bundle meets the contract (warnings allowed), 1 when it does not or the reference
does not exist, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from playbookctl.commands._common import add_registry_flags, registry_overrides
from playbookctl.config import Config
from playbookctl.findings import has_errors
from playbookctl.reporters import report_human

if TYPE_CHECKING:
    from playbookctl.bundle import ReadBundle
    from playbookctl.oci import RegistryClient


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="show a Tekton bundle's objects and annotations and check the bundle contract",
        description="Fetch a Tekton bundle (REGISTRY/REPO:TAG or @sha256:DIGEST) and check it the "
        "way Tekton's bundles resolver reads it. Credentials come from the Docker config or "
        "PLAYBOOKCTL_REGISTRY_USERNAME/PASSWORD (sent to the registry REF names).",
    )
    parser.add_argument("ref", metavar="REF", help="bundle reference")
    parser.add_argument("--format", choices=("human", "json"), default="human")
    add_registry_flags(parser)
    parser.set_defaults(func=run, registry_access=lambda _a: "read")


def report_bundle(rb: ReadBundle, out: TextIO, images: dict[str, str] | None = None) -> None:
    """inspect's human summary (also printed by `try`); `images`: step image -> platforms."""
    out.write(f"{rb.ref}\n")
    if rb.digest:
        out.write(f"  digest:      {rb.digest}\n  media type:  {rb.media_type}\n")
    if rb.annotations:
        out.write("  annotations:\n")
        for key in sorted(rb.annotations):
            out.write(f"    {key}: {rb.annotations[key]}\n")
    if rb.objects:
        out.write("  objects:\n")
        for o in rb.objects:
            out.write(
                f"    {o.kind}/{o.name}  apiVersion {o.api_version}  layer {o.layer_digest}\n"
            )
    if images:
        out.write("  images:\n")
        for image, platforms in images.items():
            out.write(f"    {image}\n      platforms: {platforms}\n")
    if rb.findings:
        report_human(rb.findings, out)
    if has_errors(rb.findings):
        out.write("bundle contract: VIOLATED\n")
    else:
        out.write("bundle contract: ok\n")


def _json(rb: ReadBundle, out: TextIO, images: dict[str, str]) -> None:
    doc = {
        "ref": rb.ref,
        "digest": rb.digest,
        "mediaType": rb.media_type,
        "annotations": rb.annotations,
        "objects": [
            {
                "kind": o.kind,
                "name": o.name,
                "apiVersion": o.api_version,
                "layerDigest": o.layer_digest,
            }
            for o in rb.objects
        ],
        "images": [{"ref": k, "platforms": v} for k, v in images.items()],
        "findings": [f.as_dict() for f in rb.findings],
        "ok": not has_errors(rb.findings),
    }
    json.dump(doc, out, indent=2, sort_keys=True)
    out.write("\n")


def _image_platforms(client: RegistryClient, rb: ReadBundle) -> dict[str, str]:
    """Each digest-pinned step image of the bundle -> its platforms, as its registry says."""
    from playbookctl.errors import RegistryError  # noqa: PLC0415
    from playbookctl.platforms import image_platforms  # noqa: PLC0415
    from playbookctl.render import iter_step_images  # noqa: PLC0415

    out: dict[str, str] = {}
    pipeline = rb.workflow() if rb.digest else None
    for _, image in iter_step_images(pipeline):
        if not isinstance(image, str) or "@sha256:" not in image or image in out:
            continue
        try:
            found = image_platforms(client, image)
        except RegistryError as exc:
            out[image] = f"cannot be read: {exc}"
            continue
        shown = ", ".join(found.platforms) or "unknown"
        out[image] = (shown if found.index else f"{shown} (single-platform image)") + "".join(
            f"; {p}" for p in found.problems
        )
    return out


def run(args: argparse.Namespace, config: Config) -> int:
    from playbookctl.bundle import read_bundle  # noqa: PLC0415 - keeps other commands' start fast
    from playbookctl.oci import RegistryClient, parse_reference  # noqa: PLC0415

    ref = parse_reference(args.ref)
    # The user names the registry in REF; env credentials go to that registry.
    config = config.with_overrides(**registry_overrides(args)).with_overrides(registry=ref.registry)
    with RegistryClient(config) as client:
        rb = read_bundle(client, args.ref)
        images = _image_platforms(client, rb)
    if args.format == "json":
        _json(rb, sys.stdout, images)
    else:
        report_bundle(rb, sys.stdout, images)
    return 1 if has_errors(rb.findings) else 0
