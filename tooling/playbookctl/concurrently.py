"""Run a few independent calls at once (registry requests: each waits on the network, and zlib
releases the GIL), their results in order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def concurrently(calls: Sequence[Callable[[], Any]], *, at_most: int = 4) -> list[Any]:
    """The calls' results in order, run in threads when there are several; the first failure in
    order is raised, after all finished (none is left running behind an error)."""
    if len(calls) < 2:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(at_most, len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
    return [f.result() for f in futures]
