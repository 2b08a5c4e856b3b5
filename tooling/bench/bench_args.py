"""Argument types the benchmarks share: a count of zero or less is a usage error (exit 2 with
argparse's message), not a traceback or a division by zero halfway through a run."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number (1 or more)")
    return value
