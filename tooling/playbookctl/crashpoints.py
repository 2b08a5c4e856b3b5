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

# The engine path's own steps (a playbook with RUN), in the order one playbook reaches them,
# before "image-pushed": tests/integration/test_engine_crash.py kills a release at each. The
# first platform to reach a step is the one killed there.
ENGINE_STEPS = (
    "engine-saved",  # a platform built, saved and rewritten (build.engine_image), nothing pushed
    # a child's layers and config uploaded, its manifest not (assembled images: every platform's
    # blobs, pushed together, and no manifest)
    "child-blobs-pushed",
    "engine-child-pushed",  # one child's manifest pushed by digest, the next platform's not
    "engine-children-pushed",  # every child pushed, the index not
)


def crash_point(step: str) -> None:
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
