"""Go's `path/filepath.Match` (on Linux: `/` separates, `\\` escapes) as a Python regular
expression: the one translation behind Argo CD's AppProject resource lists (lint/rbac.py) and
the engine's COPY/ADD sources (dockerfile.py), and the syntax check Docker makes of a
.dockerignore pattern (dockerignore.py, whose matching is moby's own).

The syntax (Go's doc comment): `*` any run of non-`/` characters, `?` one non-`/` character,
`[...]`/`[^...]` one character in (not in) a non-empty class of `c`, `\\c` and `lo-hi` items,
`\\c` the character c. A class may match `/`. Go reports ErrBadPattern for a malformed pattern
whatever the name (since Go 1.16 it checks the rest of the pattern before returning false); so
does `BadPatternError` here, raised by the translation itself.
"""

from __future__ import annotations

import functools
import re

__all__ = ["BadPatternError", "compile_pattern", "match", "translate"]


# Neither crosses the separator.
_WILDCARDS = {"*": "[^/]*", "?": "[^/]"}


class BadPatternError(ValueError):
    """Go's filepath.ErrBadPattern ("syntax error in pattern"), naming the pattern and why."""

    def __init__(self, pattern: str, why: str) -> None:
        super().__init__(f"pattern {pattern!r}: syntax error in pattern ({why})")
        self.pattern = pattern


def translate(pattern: str) -> str:
    """The regular expression (for `re.fullmatch`) matching what `filepath.Match(pattern, name)`
    matches. BadPatternError when Go returns ErrBadPattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch in _WILDCARDS:
            out.append(_WILDCARDS[ch])
        elif ch == "[":
            regex, i = _class(pattern, i)
            out.append(regex)
        else:
            if ch == "\\":
                if i == len(pattern):
                    raise BadPatternError(pattern, "a trailing \\")
                ch = pattern[i]
                i += 1
            out.append(re.escape(ch))
    return "".join(out)


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The class whose `[` ends just before `i`, as Go's matchChunk reads it: its regex and the
    index after its `]`."""
    negated = pattern[i : i + 1] == "^"
    if negated:
        i += 1
    ranges: list[tuple[str, str]] = []
    while not (ranges and pattern[i : i + 1] == "]"):
        lo, i = _class_char(pattern, i)
        hi = lo
        if pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
        ranges.append((lo, hi))
    # Go accepts a reversed range (it matches nothing); Python's re would refuse it.
    items = "".join(
        re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
        for lo, hi in ranges
        if lo <= hi
    )
    if not items:
        return (r"[\s\S]" if negated else "(?!)"), i + 1
    return f"[{'^' if negated else ''}{items}]", i + 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """Go's getEsc: a possibly escaped class character at `i`; the pattern must go on after it
    (a class is closed by `]`)."""
    ch = pattern[i : i + 1]
    if ch in ("", "-", "]"):
        why = "an unclosed [" if not ch else f"{ch!r} where a class character belongs"
        raise BadPatternError(pattern, why)
    if ch == "\\":
        i += 1
        ch = pattern[i : i + 1]
        if not ch:
            raise BadPatternError(pattern, "a trailing \\")
    if i + 1 >= len(pattern):
        raise BadPatternError(pattern, "an unclosed [")
    return ch, i + 1


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """translate, compiled (and cached: lint and the assembler match each pattern many times)."""
    return re.compile(translate(pattern))


def match(pattern: str, name: str) -> bool:
    """`filepath.Match(pattern, name)`; BadPatternError where Go returns ErrBadPattern."""
    return compile_pattern(pattern).fullmatch(name) is not None
