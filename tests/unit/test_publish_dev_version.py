"""publish.dev_version: the version `try` publishes under, never a real one."""

from __future__ import annotations

import re

import pytest

from playbookctl.publish import dev_version

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)$"
)


@pytest.mark.parametrize(
    ("version", "source_hash", "expected"),
    [
        ("1.2.0", "sha256:a30fd272c1bd1e545b96", "1.2.0-dev.a30fd272c1bd"),
        ("1.2.0-rc.1", "sha256:a30fd272c1bd1e545b96", "1.2.0-rc.1-dev.a30fd272c1bd"),
        # All digits with a leading 0 would be an invalid semver identifier.
        ("1.2.0", "sha256:012345678901ffff", "1.2.0-dev.x12345678901"),
        ("1.2.0", "sha256:123456789012ffff", "1.2.0-dev.123456789012"),
    ],
)
def test_dev_version(version: str, source_hash: str, expected: str) -> None:
    got = dev_version(version, source_hash)
    assert got == expected
    assert SEMVER.match(got)
    assert re.fullmatch(r"[\w][\w.-]{0,127}", got)  # a valid OCI tag
