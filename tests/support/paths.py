"""Where the tests keep what outlives one session (nothing else of theirs does)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The stand-in base's built layers and what was resolved from Debian's archive
# (playbookctl_dev/base_image.py), keyed there by the packages' versions and SHA256s: built by the
# first test session on a machine. Not the name the apt-based builder used: its clean-up removed
# every entry but its own, so the two must not share a directory while older checkouts run.
STAND_IN_CACHE = Path(tempfile.gettempdir()) / f"playbookctl-stand-in-debian-{os.geteuid()}"
