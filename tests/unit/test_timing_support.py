"""tests/support/timing.py: the bounds the deadline tests rest on."""

from __future__ import annotations

import math
import random

import pytest

from playbookctl.oci import transport
from tests.support.timing import SLACK, ends_by, least_backoff, most_attempts


def test_a_bound_is_the_limit_plus_slack_when_the_fault_runs_far_past_it() -> None:
    assert ends_by(4.0, runaway=math.inf) == 4.0 + SLACK
    assert ends_by(0.0, runaway=2 * SLACK) == SLACK


def test_a_fault_too_short_to_tell_a_broken_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="make it longer"):
        ends_by(4.0, runaway=4.0 + 2 * SLACK - 0.1)


def test_least_backoff_is_the_clients_own_backoff_at_its_smallest_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, _high: low)
    for retries in (0, 1, 4, 10, 14):
        waits = [transport.Transport.backoff(attempt, None)[0] for attempt in range(retries)]
        assert least_backoff(retries) == pytest.approx(sum(waits))


def test_most_attempts_counts_tries_that_start_before_the_deadline() -> None:
    assert most_attempts(3.0, shortest=1.0) == 4  # starts >= 1 s apart, the last before 3 s
    assert most_attempts(4.0, shortest=1.5) == 3  # at 0, >= 1.5, >= 3 s
