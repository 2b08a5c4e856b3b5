"""Bounds for assertions on elapsed time: wide enough that a busy 2-core runner cannot break
them, narrow enough that a broken limit still does.

A limit under test (a deadline, a timeout, a watchdog) ends an operation `limit` seconds in. On
a loaded machine the thread that enforces it, the process behind a socket, or the test itself
can be scheduled seconds late, so a test allows SLACK seconds past the limit. That slack only
means something if the operation would run much longer without the limit: `runaway`, the time
the injected fault would hold it otherwise (the stall, the drip, the retries a broken deadline
would make). `ends_by` refuses a test whose fault does not overrun the bound by the slack again,
so a fault or a limit changed later cannot quietly turn the check into one that cannot fail.
"""

from __future__ import annotations

import math

from playbookctl.oci.transport import BACKOFF_BASE, BACKOFF_CAP

# Scheduling delay a loaded runner can add to an operation that a limit ends (watchdog wake-up,
# a socket shut down, a container stopped, the test's own thread): generous on purpose.
SLACK = 10.0


def ends_by(limit: float, *, runaway: float) -> float:
    """The bound on the elapsed time of an operation that a limit of `limit` seconds must end
    (0: it must end at once, without waiting), where `runaway` seconds is how long the injected
    fault would hold it if the limit did not work (math.inf: for ever)."""
    bound = limit + SLACK
    if not runaway >= bound + SLACK:  # a broken limit overruns by as much as a slow machine may
        raise ValueError(
            f"the fault runs {runaway:g} s without the limit, not clearly more than the bound "
            f"{bound:g} s (limit {limit:g} s + {SLACK:g} s of slack): make it longer"
        )
    return bound


def most_attempts(deadline: float, shortest: float) -> int:
    """The most tries an operation can start within `deadline` seconds when none ends sooner
    than `shortest` seconds (each cut by a limit, never early): a machine that is slow makes
    fewer, never more, so this bound needs no slack."""
    return math.floor(deadline / shortest) + 1


def least_backoff(retries: int) -> float:
    """The least a RegistryClient waits between its tries over `retries` retries: exponential
    backoff from BACKOFF_BASE, capped at BACKOFF_CAP, times the smallest jitter (0.5). What a
    test that allows that many retries would take at least if something retried that must not
    be (or past the deadline that must stop it)."""
    return float(
        sum(min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * 0.5 for attempt in range(retries))
    )
