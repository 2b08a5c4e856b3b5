"""Where the tests keep what outlives one session (nothing else of theirs does)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The stand-in base's downloaded Debian packages and built layers (playbookctl_dev/base_image.py),
# keyed there by the packages' versions: built by the first test session on a machine.
STAND_IN_CACHE = Path(tempfile.gettempdir()) / f"playbookctl-stand-in-{os.geteuid()}"
