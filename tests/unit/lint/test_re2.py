"""RE2 syntax as Kubernaut (Go regexp) reads it, checked through Python's re."""

from __future__ import annotations

import pytest

from playbookctl.lint import re2

# (pattern, error fragment or None, value that must match or None, value that must not)
CASES = [
    ("^[a-z0-9-]+$", None, "web-1", "Web"),
    ("^a\\z", None, "a", "a\n"),  # RE2's \z is Python's \Z
    ("^[[:digit:]]+$", None, "123", "12a"),
    ("^\\Q1.5\\E$", None, "1.5", "105"),
    ("^(?<word>[a-z]+)$", None, "abc", "ab1"),
    ("(?i)^abc$", None, "ABC", "abd"),
    ("^a{2,3}?b$", None, "aab", "ab"),
    ("^\\123$", None, "S", "x"),  # octal, not a backreference
    ("(a)\\1", "backreference", None, None),
    ("(?=a)", "lookahead", None, None),
    ("(?<!a)b", "negative lookbehind", None, None),
    ("(?>a)", "atomic", None, None),
    ("a*+", "possessive", None, None),
    ("a\\Z", "\\Z is not RE2", None, None),
    ("a{1001}", "repeat count", None, None),
    ("(?x)a b", "flag 'x'", None, None),
    ("[[:nope:]]", "POSIX class", None, None),
    ("[a-", "does not compile", None, None),
    ("a\\", "trailing backslash", None, None),
]


@pytest.mark.parametrize(("pattern", "error", "good", "bad"), CASES, ids=[c[0] for c in CASES])
def test_check(pattern: str, error: str | None, good: str | None, bad: str | None) -> None:
    result = re2.check(pattern)
    if error is None:
        assert result.error is None
        assert result.compiled is not None
        assert result.compiled.search(good or "")
        assert not result.compiled.search(bad or "")
    else:
        assert result.error is not None
        assert error in result.error
        assert result.compiled is None


def test_unicode_classes_are_accepted_but_not_testable() -> None:
    result = re2.check("^\\p{Greek}+$")
    assert result == re2.Re2Check(None, None)
