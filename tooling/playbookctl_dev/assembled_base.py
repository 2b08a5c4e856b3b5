"""The base-image stand-in written straight into the registry, for a machine with no Docker
engine at all (a RUN-less release needs none: assemble.py).

base_image.make_base_image makes the stand-in without an engine anyway (Debian's static busybox,
bash and kubectl for each architecture, one layer per platform, written with the registry
client); this is that, with no engine to pull the native child into.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from playbookctl.config import DEFAULT_PLATFORMS
from playbookctl_dev.base_image import make_base_image


def push_base_image(registry: str, ref: str, platforms: Sequence[str] = DEFAULT_PLATFORMS) -> str:
    """Push the stand-in as an index of `platforms` under `ref` (on `registry`); return the
    index digest."""
    if not ref.startswith(f"{registry}/"):
        raise ValueError(f"{ref} is not a reference on {registry}")
    with tempfile.TemporaryDirectory(prefix="playbookctl-stand-in-") as tmp:
        return make_base_image(None, Path(tmp), ref, platforms)
