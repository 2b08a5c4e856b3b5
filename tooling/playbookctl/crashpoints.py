"""Test-only kill points: a crash test names a step, and the process dies there as kill -9 would.

`PLAYBOOKCTL_TEST_KILL_AT=<step>` makes `crash_point(<step>)` send SIGKILL to the process itself:
no cleanup, no `finally`, no flushed buffers, exactly what a killed CI runner leaves. Unset (as
everywhere outside the crash tests), it is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "PLAYBOOKCTL_TEST_KILL_AT"

# Every step a release can be killed at, in the order a run reaches them.
STEPS = (
    "planned",  # release: plan made, nothing published
    "image-pushed",  # publish: an image pushed, its bundle not
    "published",  # release: every bundle pushed, nothing registered
    "registered-workflows",  # register: workflow files written, kustomization not
    "registered",  # release: registry/ written, not committed
    "committed",  # release: the commit made, not pushed
    "reset",  # release: the remote moved; reset onto it, nothing re-registered yet
    "pushed",  # release: pushed, the run not finished
)


def crash_point(step: str) -> None:
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
