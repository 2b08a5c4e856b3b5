"""Development environment: a loopback OCI registry and a Docker engine for tests and demos."""

from __future__ import annotations
