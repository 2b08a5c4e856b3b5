"""The environment of a CLI run the crash tests kill (test_release_crash, test_engine_crash)."""

from __future__ import annotations

import json
import os

from playbookctl.config import Config
from playbookctl.crashpoints import KILL_AT_ENV


def crash_env(config: Config, kill_at: str | None) -> dict[str, str]:
    """This process's environment, with `config`'s base-image stand-ins and, if given, the
    step at which the run kills itself (a kill point left over from the caller never is)."""
    env = dict(os.environ)
    env["PLAYBOOKCTL_BASE_IMAGE_OVERRIDES"] = json.dumps(config.base_image_overrides)
    env.pop(KILL_AT_ENV, None)
    if kill_at is not None:
        env[KILL_AT_ENV] = kill_at
    return env
