"""gomatch.py against Go's own table for path/filepath.Match, plus the cases where the two
translations it replaced (lint/rbac.py's and dockerfile.py's) each departed from Go."""

from __future__ import annotations

import pytest

from playbookctl import gomatch
from playbookctl.gomatch import BadPatternError

# Go's matchTests, verbatim (Go string escapes written as Python's: "a\\*b" is `a\*b`), from
# https://github.com/golang/go/blob/14c40f9472efbb9423f6e98b1681a0ad8a516da8/src/path/filepath/match_test.go
# (the non-Windows run: there `\` escapes). BAD is Go's ErrBadPattern. The algorithm they test:
# https://github.com/golang/go/blob/18d13db1721149994a42b5d40be44a2580d6c6f5/src/path/match.go
# (filepath.Match is the same with Separator, `/` on Linux).
BAD = "ErrBadPattern"
GO_MATCH_TESTS: list[tuple[str, str, bool | str]] = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", BAD),
    ("[-]", "-", BAD),
    ("[x-]", "x", BAD),
    ("[x-]", "-", BAD),
    ("[x-]", "z", BAD),
    ("[-x]", "x", BAD),
    ("[-x]", "-", BAD),
    ("[-x]", "a", BAD),
    ("\\", "a", BAD),
    ("[a-b-c]", "a", BAD),
    ("[", "a", BAD),
    ("[^", "a", BAD),
    ("[^bc", "a", BAD),
    ("a[", "a", BAD),
    ("a[", "ab", BAD),
    ("a[", "x", BAD),
    ("a/b[", "x", BAD),
    ("*x", "xxx", True),
]

# Read from the same source, where the replaced translations departed from Go.
DEPARTURES: list[tuple[str, str, bool | str]] = [
    ("a[^x]b", "a/b", True),  # a class is not `?`: it may match the separator (dockerfile's was)
    ("[z-a]", "z", False),  # a reversed range is valid and empty (both crashed in `re`)
    ("[^z-a]", "q", True),
    ("x[z-a]*", "x", False),
    ("[\\]]", "]", True),  # an escaped `]` does not close the class (rbac's closed it)
    ("[\\\\]", "\\", True),  # nor does an escaped `\` stay two characters (rbac's)
    ("[^]", "^", BAD),  # dockerfile's read `[^]` as "not `/`"
    ("[]]", "]", BAD),
    ("a\\", "a\\", BAD),  # a trailing `\` (dockerfile's took it literally)
    ("[a-", "a", BAD),
    ("[a\\", "a", BAD),
    ("*[", "", BAD),  # malformed whatever the name, as Go checks the rest before false
    ("[*]", "*", True),  # `*` and `?` in a class are themselves
    ("[?]", "x", False),
    ("a]b", "a]b", True),  # `]` and `-` outside a class are themselves
    ("a-b", "a-b", True),
    ("a.b", "axb", False),  # and so is every regex metacharacter
    ("(a|b)+", "(a|b)+", True),
    ("[&&~~||]", "&", True),
    ("*", "a\nb", True),  # `*` stops only at `/`
    ("[^a]", "\n", True),
]


@pytest.mark.parametrize(("pattern", "name", "want"), GO_MATCH_TESTS + DEPARTURES)
def test_match_as_go(pattern: str, name: str, want: bool | str) -> None:
    if want == BAD:
        with pytest.raises(BadPatternError, match="syntax error in pattern"):
            gomatch.match(pattern, name)
    else:
        assert gomatch.match(pattern, name) is want


def test_a_bad_pattern_names_itself_and_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"pattern 'lib/\[a-': .*an unclosed \["):
        gomatch.translate("lib/[a-")
