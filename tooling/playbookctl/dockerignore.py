"""A directory's build context as `docker build` selects it with `.dockerignore` (moby's rules),
for both the engine path (build.context_tar) and assembly (assemble.context_entries).

Why not the docker SDK's `exclude_paths` (docker/utils/build.py): it re-implements the rules
and differs from Docker. Its fnmatch lower-cases pattern and name (`*.MD` drops `x.md`), reads
`[!x]` as a negated class and `[^x]` as a class of `^` and `x` (Go: the reverse), reads no `\\`
escape, takes an unclosed `[` literally (Docker refuses the build), turns `../x` into `x`, and
walks into an excluded directory when any `!` pattern merely starts with its name.

What is reproduced, read from the sources (not copied):
- reading: moby/patternmatcher `ignorefile.ReadAll` (Docker 20.10's buildkit copy is the same):
  a UTF-8 BOM dropped, a line starting with `#` is a comment (before trimming: ` #x` is a
  pattern), Go's TrimSpace, a `!` then TrimSpace again, Go's filepath.Clean, one leading `/`
  dropped;
- matching: moby/patternmatcher v0.6.0 (docker/cli 23 to 28 vendor it): `patternmatcher.New`
  (TrimSpace, Clean, `!`, filepath.Match's syntax check) and `Pattern.compile`: a pattern with
  no wildcard is compared as a string (exact), `x**` as a prefix, `**x` (without other
  wildcards) as a suffix, anything else as a Go regular expression in which `.+()|{}$` are
  escaped and `*`, `?`, `**`, `[...]`, `\\c` and `^` are regex syntax;
- walking: moby/go-archive `TarWithOptions` as the CLI calls it (TrimBuildFilesFromExcludes
  first, so an excluded Containerfile and `.dockerignore` are still sent): entries in name
  order, `MatchesUsingParentResults` with the parent directory's results, an excluded
  directory entered only when a `!` pattern followed by `/` starts with its path followed by
  `/`, and then not itself sent;
- the daemon (builder/remotecontext `removeDockerfile`): the `.dockerignore` and the
  Containerfile removed from the context when the patterns exclude them.

What is not: a pattern Docker's Go regexp would read in a way Python's `re` is not made to read
here (`\\d` and other escapes of a letter or digit, `[:alpha:]`, `*` or `?` inside `[...]`, a
reversed range) and one Docker refuses (`!` alone, a malformed `[`): `problems` reports each as
an error (lint's playbook.dockerignore-pattern) and `context_files` refuses to choose a context.
A pattern Docker versions read differently (`+()|{}` are regex syntax in Docker 20.10 and
earlier, literal since 23; `^` is an anchor only in a regex; `**x` is a suffix since 23) is
read as Docker 23 and later read it, reported as a warning (playbook.dockerignore-version), and
leaves the daemon's removal to the engine (`daemon_removes` raises NotExact: assembly hands the
image to the engine).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from playbookctl import gomatch
from playbookctl.errors import FatalError

__all__ = [
    "DOCKERIGNORE",
    "DockerignoreError",
    "Ignore",
    "NotExactError",
    "Problem",
    "context_files",
    "daemon_removes",
    "excluding_line",
    "go_clean",
    "read",
]

DOCKERIGNORE = ".dockerignore"
# bufio.Scanner's largest line (MaxScanTokenSize, with its newline): a longer one fails the read.
_MAX_LINE = 64 * 1024 - 1
_UTF8_BOM = b"\xef\xbb\xbf"
# Go's unicode.IsSpace, which strings.TrimSpace trims (Python's str.strip also trims \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
_GO_SPACE += "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# patternmatcher's shouldEscape: regex syntax it escapes (v0.6.0); Docker 20.10 escaped `.$` only.
_ESCAPED = frozenset(".+()|{}$")
_OLD_REGEX = frozenset("+()|{}")


class DockerignoreError(FatalError):
    """A .dockerignore line Docker refuses or that is not read here as Docker reads it."""


class NotExactError(Exception):
    """The daemon's removal of the .dockerignore or the Containerfile depends on the Docker
    version (or is not reproduced here): the engine must decide; str() says why."""


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    line: int
    pattern: str  # the line as written, trimmed
    severity: Severity
    why: str


@dataclass(frozen=True)
class Ignore:
    """A .dockerignore as read: ReadAll's patterns (those Docker reads as we do) and the
    problems, by line."""

    patterns: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line of each pattern

    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]


def go_clean(path: str) -> str:
    """Go's path/filepath.Clean on Linux."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def _trim(text: str) -> str:
    return text.strip(_GO_SPACE)


# ---------------------------------------------------------------------------------------------
# One pattern: patternmatcher's compile, as a Python matcher, or why it cannot be one.


class _Kind(Enum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEX = "regex"


@dataclass(frozen=True)
class _Pattern:
    cleaned: str
    exclusion: bool
    dirs: int  # len(strings.Split(cleaned, "/")): how many leading parents Matches tries
    compiled: _Compiled

    def match(self, path: str) -> bool:
        kind = self.compiled.kind
        if kind is _Kind.EXACT:
            return path == self.cleaned
        if kind is _Kind.PREFIX:
            return path.startswith(self.cleaned[:-2])
        if kind is _Kind.SUFFIX:
            suffix = self.cleaned[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        regex = self.compiled.regex
        return regex is not None and regex.fullmatch(path) is not None


class _UnsupportedError(ValueError):
    """A pattern not read here as Docker reads it (or that Docker refuses); str() says why."""


def _escape_char(pattern: str, i: int) -> str:
    """The character a `\\` at i-1 escapes in Docker's regex: Go's regexp reads `\\c` as c only
    for ASCII punctuation (a letter or digit is a class, an anchor, a code or an error)."""
    ch = pattern[i]
    if ch.isascii() and not ch.isalnum():
        return ch
    raise _UnsupportedError(
        f"Docker's matcher reads `\\{ch}` as Go regular-expression syntax, not as the "
        f"character {ch!r} (not reproduced here): write the character itself"
    )


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """One class character at i (Go's getEsc: `\\c` or c) as Go's regexp reads patternmatcher's
    copy of it; and the index after it."""
    ch = pattern[i]
    if ch in "*?":
        raise _UnsupportedError(
            f"Docker's matcher turns `{ch}` inside [...] into a regex of its own that breaks "
            f"the class (not reproduced here): escape it as `\\{ch}`"
        )
    if ch == "[" and pattern[i + 1 : i + 2] == ":":
        raise _UnsupportedError(
            "Docker's matcher reads `[:` inside [...] as the start of a POSIX class such as "
            "[:alpha:] (not reproduced here): escape it as `\\[`"
        )
    if ch == "\\":
        i += 1
        ch = _escape_char(pattern, i)
    return ch, i + 1


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The `[...]` whose `[` is at i-1 (valid for Go's filepath.Match, checked first) as a Python
    class meaning what Go's regexp makes of patternmatcher's copy of it (there `.+()|{}$` are
    escaped, `^` first negates, `\\c` is c); and the index after its `]`."""
    negated = pattern[i : i + 1] == "^"
    if negated:
        i += 1
    items: list[str] = []
    while not (items and pattern[i] == "]"):
        lo, i = _class_char(pattern, i)
        hi = lo
        if pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
        if lo > hi:
            raise _UnsupportedError(
                f"the range {lo}-{hi} is reversed: Go's regexp refuses it, so Docker fails the "
                "build reading it"
            )
        items.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
    return f"[{'^' if negated else ''}{''.join(items)}]", i + 1


@dataclass(frozen=True)
class _Compiled:
    kind: _Kind
    regex: re.Pattern[str] | None
    old_syntax: str  # unescaped `+()|{}^` outside a class: regex syntax in Docker 20.10


def _compile(cleaned: str) -> _Compiled:
    """patternmatcher's Pattern.compile: its match type and, for a regex, Python's equivalent of
    the Go regexp it builds. _UnsupportedError where the two would not agree."""
    out: list[str] = []
    kind = _Kind.EXACT
    old_syntax = ""
    i = 0
    first = True
    n = len(cleaned)
    while i < n:
        ch = cleaned[i]
        i += 1
        if ch == "*":
            if cleaned[i : i + 1] == "*":
                i += 1
                if cleaned[i : i + 1] == "/":  # `**/` is `**`
                    i += 1
                if i == n:  # `**` at the end: anything
                    if kind is _Kind.EXACT:
                        kind = _Kind.PREFIX
                    else:
                        out.append(".*")
                        kind = _Kind.REGEX
                else:
                    out.append("(?:.*/)?")
                    kind = _Kind.REGEX
                if first:
                    kind = _Kind.SUFFIX
            else:
                out.append("[^/]*")
                kind = _Kind.REGEX
        elif ch == "?":
            out.append("[^/]")
            kind = _Kind.REGEX
        elif ch in _ESCAPED:
            out.append(re.escape(ch))
            if ch in _OLD_REGEX:
                old_syntax += ch
        elif ch == "\\":
            # filepath.Match's check refuses a trailing `\\` before this is reached.
            out.append(re.escape(_escape_char(cleaned, i)))
            i += 1
            kind = _Kind.REGEX
        elif ch == "[":
            regex, i = _class(cleaned, i)
            out.append(regex)
            kind = _Kind.REGEX
        elif ch == "]":
            out.append(re.escape(ch))
            kind = _Kind.REGEX
        elif ch == "^":
            out.append("^")  # Go's `^` outside a class: beginning of text, as Python's
            old_syntax += ch
        else:
            out.append(re.escape(ch))
        first = False
    if kind is not _Kind.REGEX:
        return _Compiled(kind, None, old_syntax)
    return _Compiled(kind, re.compile("".join(out)), old_syntax)


def _version_dependent(cleaned: str, compiled: _Compiled) -> str | None:
    """Why Docker 20.10 (pkg/fileutils: every pattern a regex, `.$` alone escaped) and Docker 23+
    (patternmatcher v0.6) may read this pattern differently, or None."""
    if compiled.old_syntax:
        ch = compiled.old_syntax[0]
        if ch == "^":
            return (
                "Docker reads `^` as a regular-expression anchor (always in 20.10, in a pattern "
                "with a wildcard since 23), not as the character: write `\\^`"
            )
        return (
            f"Docker 20.10 and earlier read `{ch}` as regular-expression syntax, Docker 23 and "
            f"later as the character: write `\\{ch}`, which both read as the character"
        )
    rest = cleaned[2:]
    if compiled.kind is _Kind.SUFFIX and rest and not rest.startswith("/"):
        return (
            f"Docker 23 and later read `{cleaned}` as any path ending in {rest!r} (`x{rest}` "
            f"too), Docker 20.10 as `**/{rest}`: write `**/{rest}` or `**/*{rest}`"
        )
    return None


def _new(pattern: str) -> _Pattern | None:
    """patternmatcher.New for one ReadAll pattern: None for an empty one, _UnsupportedError for one
    Docker refuses or that is not read here as Docker reads it."""
    p = _trim(pattern)
    if not p:
        return None
    p = go_clean(p)
    exclusion = p.startswith("!")
    if exclusion:
        if len(p) == 1:
            raise _UnsupportedError('Docker refuses the build ("illegal exclusion pattern")')
        p = p[1:]
    if "\0" in p or "\ufeff" in p:
        # text/scanner, which compile reads with, drops a leading byte-order mark (the string
        # comparisons keep it) and reports NUL: not reproduced here.
        raise _UnsupportedError("a NUL or byte-order mark (U+FEFF) in the pattern")
    try:
        gomatch.translate(p)  # filepath.Match(p, "."): Docker's syntax check
    except gomatch.BadPatternError as exc:
        why = str(exc).split(": ", 1)[-1]
        raise _UnsupportedError(f"Docker refuses the build: {why}") from None
    compiled = _compile(p)
    return _Pattern(p, exclusion, len(p.split("/")), compiled)


# ---------------------------------------------------------------------------------------------
# The file.


def read(directory: Path) -> Ignore:
    """The directory's .dockerignore as Docker reads it (no file: no patterns)."""
    path = directory / DOCKERIGNORE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Ignore()
    except IsADirectoryError:
        return Ignore()
    out = Ignore()
    # bufio.ScanLines: split at \n, one trailing \r dropped, a last line without \n kept.
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, 1):
        if len(raw) > _MAX_LINE:
            out.problems.append(
                Problem(
                    number,
                    raw[:40].decode("utf-8", "replace") + "...",
                    Severity.ERROR,
                    "a line over 64 KiB: Docker fails the build reading it",
                )
            )
            break  # the scanner stops there
        line = raw.removesuffix(b"\r")
        if number == 1:
            line = line.removeprefix(_UTF8_BOM)
        if line.startswith(b"#"):  # a comment, whatever bytes follow
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            out.problems.append(
                Problem(
                    number,
                    line.decode("utf-8", "replace").strip(),
                    Severity.ERROR,
                    "not UTF-8: Go's scanner reads such bytes as U+FFFD (not reproduced here)",
                )
            )
            continue
        pattern = _trim(text)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = _trim(pattern[1:])
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        if invert:
            pattern = "!" + pattern
        try:
            compiled = _new(pattern)
        except _UnsupportedError as exc:
            out.problems.append(Problem(number, _trim(text), Severity.ERROR, str(exc)))
            continue
        out.patterns.append(pattern)
        out.lines.append(number)
        if compiled is not None:
            why = _version_dependent(compiled.cleaned, compiled.compiled)
            if why:
                out.problems.append(Problem(number, _trim(text), Severity.WARNING, why))
    return out


class _Matcher:
    """patternmatcher.PatternMatcher over patterns `_new` accepted."""

    def __init__(self, patterns: list[str]) -> None:
        compiled = [(i, _new(p)) for i, p in enumerate(patterns)]
        self.patterns = [p for _, p in compiled if p is not None]
        self.indices = [i for i, p in compiled if p is not None]  # in the list given
        self.exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, file: str) -> bool:
        """The package's Matches, the one the CLI (TrimBuildFilesFromExcludes) and Docker
        20.10's daemon (removeDockerfile) call: a parent is tried only as the first len(dirs)
        directories of the path."""
        return self.deciding(file) is not None

    def deciding(self, file: str) -> int | None:
        """Which pattern (its index in the list given) makes Matches exclude file: the last
        one to match before no `!` pattern re-included it; None when file is not excluded."""
        file = go_clean(file)
        if file == ".":
            return None
        parent = posixpath.dirname(file)
        parent_dirs = parent.split("/") if parent else []
        matched: int | None = None
        for index, p in zip(self.indices, self.patterns, strict=True):
            if p.exclusion != (matched is not None):
                continue
            match = p.match(file)
            if not match and parent_dirs and p.dirs <= len(parent_dirs):
                match = p.match("/".join(parent_dirs[: p.dirs]))
            if match:
                matched = None if p.exclusion else index
        return matched

    def matches_using_parent_results(
        self, file: str, parent: list[bool] | None
    ) -> tuple[bool, list[bool]]:
        """MatchesUsingParentResults: `parent` is the parent directory's per-pattern results
        (None at the top); a pattern skipped by the shortcut records False, as in Go."""
        matched = False
        info = [False] * len(self.patterns)
        for i, p in enumerate(self.patterns):
            match = parent[i] if parent else False
            if not match:
                if p.exclusion != matched:
                    continue
                match = p.match(file)
                if not match and not parent:
                    dirs = file.split("/")[:-1]
                    for j in range(len(dirs)):
                        if p.match("/".join(dirs[: j + 1])):
                            match = True
                            break
            info[i] = match
            if match:
                matched = not p.exclusion
        return matched, info


def _checked(directory: Path) -> Ignore:
    ignore = read(directory)
    errors = ignore.errors()
    if errors:
        shown = directory / DOCKERIGNORE
        raise DockerignoreError(
            f"{shown}: line {errors[0].line}: pattern {errors[0].pattern!r}: {errors[0].why}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
        )
    return ignore


def context_files(directory: Path, containerfile: str, appended: Sequence[str] = ()) -> list[str]:
    """The relative paths (files and directories) `docker build` sends from `directory`, in
    name order, the Containerfile and .dockerignore included even when excluded (the daemon
    removes them: daemon_removes). DockerignoreError for a pattern `read` reports as an error.
    appended: patterns as if they were lines added at the end of .dockerignore (lint checks
    the `!path` it advises)."""
    excludes = [*_checked(directory).patterns, *appended]
    # TrimBuildFilesFromExcludes: the daemon needs both, whatever the patterns say.
    if _Matcher(excludes).matches(DOCKERIGNORE):
        excludes.append("!" + DOCKERIGNORE)
    if _Matcher(excludes).matches(containerfile):
        excludes.append("!" + containerfile)
    pm = _Matcher(excludes)
    out: list[str] = []
    _walk(directory, "", None, pm, out)
    return out


def excluding_line(directory: Path, path: str) -> tuple[int, str] | None:
    """(line number, pattern) of the .dockerignore line that excludes `path` (relative to
    directory), as Matches decides it; None when none does. For naming the line in a message:
    what the context holds is context_files' answer."""
    ignore = read(directory)
    index = _Matcher(ignore.patterns).deciding(path)
    return None if index is None else (ignore.lines[index], ignore.patterns[index])


def _walk(
    root: Path, rel_dir: str, parent: list[bool] | None, pm: _Matcher, out: list[str]
) -> None:
    """go-archive's WalkDir callback below rel_dir ("" for the root), appending what it sends."""
    base = root / rel_dir if rel_dir else root
    # os.ReadDir's order: names sorted by bytes (UTF-8 order is code point order).
    for name in sorted(os.listdir(base), key=os.fsencode):
        rel = f"{rel_dir}/{name}" if rel_dir else name
        is_dir = stat.S_ISDIR((base / name).lstat().st_mode)  # a link is not entered
        skip, info = pm.matches_using_parent_results(rel, parent)
        if skip:
            if not is_dir or not pm.exclusions:
                continue
            prefix = rel + "/"
            if any(p.exclusion and (p.cleaned + "/").startswith(prefix) for p in pm.patterns):
                _walk(root, rel, info, pm, out)
            continue
        out.append(rel)
        if is_dir:
            _walk(root, rel, info, pm, out)


def daemon_removes(directory: Path, containerfile: str) -> set[str]:
    """Which of the .dockerignore and the Containerfile the daemon removes from the context
    (removeDockerfile). NotExactError when a pattern may decide it differently in Docker 20.10
    and in Docker 23+ (the engine decides then); DockerignoreError as context_files."""
    ignore = _checked(directory)
    warnings = ignore.warnings()
    if warnings:
        raise NotExactError(
            f"{DOCKERIGNORE}: line {warnings[0].line}: pattern {warnings[0].pattern!r} is read "
            "differently by Docker versions: the engine decides what its daemon removes"
        )
    pm = _Matcher(ignore.patterns)
    return {f for f in (DOCKERIGNORE, containerfile) if pm.matches(f)}
