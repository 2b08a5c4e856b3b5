"""Placeholder until its owner writes it."""
from __future__ import annotations
