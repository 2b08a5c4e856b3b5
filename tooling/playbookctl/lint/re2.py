"""RE2 patterns, checked with Python's `re`.

Kubernaut is written in Go, whose regexp package implements RE2 syntax. Python's `re` accepts
constructs RE2 refuses (backreferences, lookaround, atomic groups, possessive quantifiers,
conditionals, `\\Z`) and lacks a few RE2 has (`\\z`, `\\pL`, `[[:alpha:]]`, `\\Q...\\E`, `(?U)`). We
scan for the first kind and report it, translate the second kind where Python has an equivalent,
and only then compile. Limits: Unicode classes (`\\p...`) and the ungreedy flag have no Python
equivalent, so such a pattern is accepted but cannot be used to test values (`compiled` is None);
case folding and `\\b` differ in Unicode corner cases.
"""

from __future__ import annotations

import re
import warnings
from typing import NamedTuple

# RE2 refuses repeat counts above this (Go: "invalid repeat count").
MAX_REPEAT = 1000

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_NOT_RE2_GROUPS = (
    ("(?=", "lookahead"),
    ("(?!", "negative lookahead"),
    ("(?<=", "lookbehind"),
    ("(?<!", "negative lookbehind"),
    ("(?>", "atomic groups"),
    ("(?(", "conditionals"),
    ("(?P=", "backreferences"),
    ("(?#", "comments"),
)


class Re2Check(NamedTuple):
    error: str | None  # why the pattern is not valid RE2, or None
    compiled: re.Pattern[str] | None  # a Python equivalent to test values with, when there is one


def _class_end(p: str, i: int) -> int:
    """Index just past the character class opening at p[i] == '['."""
    j = i + 1
    if j < len(p) and p[j] == "^":
        j += 1
    if j < len(p) and p[j] == "]":  # a leading ']' is literal
        j += 1
    while j < len(p):
        if p[j] == "\\":
            j += 2
            continue
        if p.startswith("[:", j):
            close = p.find(":]", j + 2)
            if close != -1:
                j = close + 2
                continue
        if p[j] == "]":
            return j + 1
        j += 1
    return len(p)


def check(pattern: str) -> Re2Check:
    out: list[str] = []
    exact = True  # False once we replaced something Python cannot express
    i, n = 0, len(pattern)
    after_quantifier = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                return Re2Check("trailing backslash", None)
            d = pattern[i + 1]
            after_quantifier = False
            if d in "123456789" and not (d <= "7" and i + 2 < n and "0" <= pattern[i + 2] <= "7"):
                return Re2Check(f"backreferences (\\{d}) are not RE2 syntax", None)
            if d == "Z":
                return Re2Check("\\Z is not RE2 syntax (use \\z or $)", None)
            if d == "z":
                out.append("\\Z")
                i += 2
                continue
            if d == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end == -1 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = n if end == -1 else end + 2
                continue
            if d in "pP":
                m = re.match(r"\\[pP](\{\^?[A-Za-z_]+\}|[A-Za-z])", pattern[i:])
                if not m:
                    return Re2Check("invalid Unicode class escape", None)
                out.append("\\w")
                exact = False
                i += m.end()
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            end = _class_end(pattern, i)
            body = pattern[i:end]
            translated = re.sub(
                r"\[:(\^?)([a-z]+):\]",
                lambda m: _POSIX.get(m.group(2), "\0") if not m.group(1) else "\0",
                body,
            )
            if "\0" in translated:
                return Re2Check(f"unsupported POSIX class in {body}", None)
            # Python warns about (and may one day change) a literal '[' inside a class.
            out.append(translated[0] + translated[1:].replace("[", "\\["))
            i = end
            after_quantifier = False
            continue
        if c == "(" and pattern.startswith("(?", i):
            for prefix, what in _NOT_RE2_GROUPS:
                if pattern.startswith(prefix, i):
                    return Re2Check(f"{what} ({prefix}...) are not RE2 syntax", None)
            if pattern.startswith("(?<", i):  # Go's (?<name>...) is Python's (?P<name>...)
                out.append("(?P<")
                i += 3
                continue
            m = re.match(r"\(\?([A-Za-z-]*)([:)])", pattern[i:])
            if m and m.group(1):
                flags = m.group(1)
                bad = sorted(set(flags) - set("imsU-"))
                if bad:
                    return Re2Check(f"flag {bad[0]!r} is not RE2 syntax (RE2 has i, m, s, U)", None)
                if "U" in flags:
                    exact = False
                    flags = flags.replace("U", "")
                if flags.strip("-"):
                    out.append(f"(?{flags}{m.group(2)}")
                else:
                    out.append("(?:" if m.group(2) == ":" else "")
                i += m.end()
                after_quantifier = False
                continue
        if c in "*+?":
            if after_quantifier and c == "+":
                return Re2Check("possessive quantifiers (*+, ++, ?+) are not RE2 syntax", None)
            # a '?' after a quantifier makes it lazy, which RE2 has; it is not a quantifier itself
            after_quantifier = not (after_quantifier and c == "?")
            out.append(c)
            i += 1
            continue
        if c == "{":
            m = _REPEAT.match(pattern, i)
            if m:
                counts = [int(g) for g in (m.group(1), m.group(3)) if g]
                if any(v > MAX_REPEAT for v in counts):
                    return Re2Check(f"repeat count in {m.group(0)} exceeds {MAX_REPEAT}", None)
                if after_quantifier:
                    return Re2Check(f"invalid nested repetition {m.group(0)}", None)
                out.append(m.group(0))
                i = m.end()
                after_quantifier = True
                continue
        after_quantifier = False
        out.append(c)
        i += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = re.compile("".join(out))
    except re.error as exc:
        return Re2Check(f"does not compile: {exc}", None)
    except RecursionError:
        return Re2Check("nests too deeply", None)
    return Re2Check(None, compiled if exact else None)
