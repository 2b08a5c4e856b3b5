""".dockerignore as Docker reads it (dockerignore.py): the file's reading, each pattern's match,
the walk that chooses the context, the daemon's removal, and the patterns reported instead.
The engine itself is the oracle in tests/integration/test_dockerignore_engine.py; these tables
pin the rules one by one (sources: moby/patternmatcher v0.6.0 and its ignorefile, go-archive's
TarWithOptions, Docker 20.10's pkg/fileutils and removeDockerfile).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl import build, dockerignore
from playbookctl.dockerignore import DockerignoreError, NotExactError, Severity


def _dir(tmp_path: Path, ignore: str | bytes, files: tuple[str, ...] = ()) -> Path:
    for rel in (*files, "Containerfile"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    data = ignore.encode() if isinstance(ignore, str) else ignore
    (tmp_path / ".dockerignore").write_bytes(data)
    return tmp_path


@pytest.mark.parametrize(
    ("content", "patterns"),
    [
        # a comment only at the very start of a line; Go's TrimSpace; CRLF; a BOM on line 1
        (b"\xef\xbb\xbf# c\n  # not a comment\r\n\tx  \n\n", ["# not a comment", "x"]),
        # `!` then spaces; Clean; one leading `/` dropped (`/` alone kept)
        (b"!  a/./b/../c\n/root\n//two\n/\n", ["!a/c", "root", "two", "/"]),
        # `..` at the start is kept (the SDK dropped it: `../x` became `x`)
        (b"../x\na/../../y\n", ["../x", "../y"]),
        # \x1c is not a Go space (Python's strip would drop it); a comment may hold any byte
        (b"x\x1c\n#caf\xe9\n", ["x\x1c"]),
    ],
)
def test_reading(tmp_path: Path, content: bytes, patterns: list[str]) -> None:
    assert dockerignore.read(_dir(tmp_path, content)).patterns == patterns


def test_go_clean() -> None:
    cases = {"": ".", "a//b/": "a/b", "/../a": "/a", "../../a": "../../a", "a/..": ".", "//": "/"}
    assert {p: dockerignore.go_clean(p) for p in cases} == cases


MATCHES = [
    # exact, prefix (`x**`), suffix (`**x`) and regex patterns
    ("a.b", "a.b", True),
    ("a.b", "axb", False),
    ("foo/**", "foo/x/y", True),
    ("foo**", "foobar", True),
    ("**/foo", "foo", True),
    ("**/foo", "a/b/foo", True),
    ("**/foo", "xfoo", False),
    ("**foo", "xfoo", True),  # Docker 23+: a suffix (reported: 20.10 reads `**/foo`)
    ("**", "anything/at/all", True),
    ("*.md", "a.md", True),
    ("*.md", "d/a.md", False),
    ("*.md", "a.MD", False),  # case-sensitive (the SDK lower-cased both)
    ("**/*.md", "d/e/a.md", True),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    # classes: `^` negates, `!` is a character, a class may match `/`
    ("[^a]x", "bx", True),
    ("[^a]x", "ax", False),
    ("[!a]x", "!x", True),
    ("[!a]x", "bx", False),
    ("d[/]f", "d/f", True),
    ("[a-c]1", "b1", True),
    ("[\\]]", "]", True),
    ("[.+]", "+", True),
    # escapes: `\c` is c for punctuation
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
    ("a\\+b", "a+b", True),
    ("a\\+b", "aab", False),
    # regex characters Docker 23+ escapes: literal
    ("a+b", "a+b", True),
    ("a+b", "aab", False),
    ("c(1)", "c(1)", True),
    ("x{2}", "x{2}", True),
    ("x|y", "x|y", True),
    # `^`: a character in an exact pattern, an anchor in a regex one (both reported)
    ("^x", "^x", True),
    ("^x", "x", False),
    ("^x*", "x1", True),
    ("^x*", "^x1", False),
    ("\\^x*", "^x1", True),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), MATCHES)
def test_match(pattern: str, path: str, expected: bool) -> None:
    pm = dockerignore._Matcher([pattern])
    assert pm.matches_using_parent_results(path, None)[0] is expected


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["docs"], "docs/a/b", True),  # a parent matched
        (["docs", "!docs/keep"], "docs/keep", False),
        (["docs", "!docs/keep"], "docs/drop", True),
        (["**", "!a/b", "a/b/c"], "a/b/c", True),  # the last matching pattern decides
        (["*/b"], "x/b/c", True),
        (["**/b"], "x/y/b/c", True),  # any parent, not only the first len(dirs)
    ],
)
def test_matches_with_parents(patterns: list[str], path: str, expected: bool) -> None:
    pm = dockerignore._Matcher(patterns)
    assert pm.matches_using_parent_results(path, None)[0] is expected


TREE = (
    "keep.sh",
    "README.md",
    "readme.MD",
    "docs/a.md",
    "docs/secret.txt",
    "docs2/x",
    "other/note.md",
    "build/keep.txt",
    "build/drop.txt",
)


@pytest.mark.parametrize(
    ("ignore", "expected"),
    [
        ("", [*TREE, "docs", "docs2", "other", "build"]),
        # case-sensitive: the SDK dropped readme.MD too
        ("*.md\n", ["keep.sh", "readme.MD", "docs", "docs/a.md", "docs/secret.txt", "docs2",
                    "docs2/x", "other", "other/note.md", "build", "build/keep.txt",
                    "build/drop.txt"]),
        # an excluded directory is entered when a `!` pattern starts with its path and `/`,
        # and is then not itself sent; `!**/*.md` enters none
        ("*\n!keep.sh\n!build/keep.txt\n!**/*.md\n", ["README.md", "build/keep.txt", "keep.sh"]),
        # `!docs2/x` enters docs2 (not sent itself), not docs (the SDK's prefix test had no `/`)
        ("docs\ndocs2\n!docs2/x\n", [p for p in TREE if not p.startswith("docs/")]
         + ["other", "build"]),
    ],
)  # fmt: skip
def test_context_files(tmp_path: Path, ignore: str, expected: list[str]) -> None:
    d = _dir(tmp_path, ignore, TREE)
    got = [
        p
        for p in build.context_files(d, "Containerfile")
        if p not in ("Containerfile", ".dockerignore")
    ]
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize(
    ("ignore", "removed"),
    [
        ("", set()),
        ("*\n", {".dockerignore", "Containerfile"}),
        ("Containerfile\n", {"Containerfile"}),
        (".docker*\n!.dockerignore\n", set()),
        ("**/.dockerignore\n", {".dockerignore"}),
    ],
)
def test_daemon_removes(tmp_path: Path, ignore: str, removed: set[str]) -> None:
    d = _dir(tmp_path, ignore)
    assert dockerignore.daemon_removes(d, "Containerfile") == removed
    # sent to the daemon either way, as the CLI sends them
    assert {"Containerfile", ".dockerignore"} <= set(build.context_files(d, "Containerfile"))


ERRORS = [
    ("\\d", "reads `\\d` as Go regular-expression syntax"),
    ("a\\é", "reads `\\é` as Go regular-expression syntax"),
    ("[a*]", "`*` inside [...]"),
    ("[a?]", "`?` inside [...]"),
    ("[[:alpha:]]", "POSIX class"),
    ("[z-a]", "the range z-a is reversed"),
    ("!", "illegal exclusion pattern"),
    ("! /", "illegal exclusion pattern"),
    ("[", "Docker refuses the build: syntax error in pattern"),
    ("a\\", "Docker refuses the build: syntax error in pattern"),
    ("x\x00", "a NUL or byte-order mark"),
    ("\ufeffx", "a NUL or byte-order mark"),
]


@pytest.mark.parametrize(("line", "why"), ERRORS)
def test_errors_name_the_line_and_refuse_a_context(tmp_path: Path, line: str, why: str) -> None:
    d = _dir(tmp_path, f"# first\nok\n{line}\n")
    (problem,) = dockerignore.read(d).problems
    assert (problem.line, problem.severity) == (3, Severity.ERROR)
    assert why in problem.why
    with pytest.raises(DockerignoreError, match=r"\.dockerignore: line 3: pattern ") as exc:
        build.context_files(d, "Containerfile")
    assert why in str(exc.value)


def test_bytes_that_are_not_utf8_are_an_error(tmp_path: Path) -> None:
    d = _dir(tmp_path, b"ok\ncaf\xe9\n")
    (problem,) = dockerignore.read(d).problems
    assert (problem.line, problem.severity) == (2, Severity.ERROR)
    assert "not UTF-8" in problem.why


WARNINGS = [
    ("a+b", "read `+` as regular-expression syntax", "write `\\+`"),
    ("c(1)", "read `(` as regular-expression syntax", "write `\\(`"),
    ("x|y", "read `|` as regular-expression syntax", "write `\\|`"),
    ("x{2}", "read `{` as regular-expression syntax", "write `\\{`"),
    ("^x", "as a regular-expression anchor", "write `\\^`"),
    ("**ignore", "any path ending in 'ignore'", "write `**/ignore`"),
]


@pytest.mark.parametrize(("line", "why", "fix"), WARNINGS)
def test_version_dependent_patterns_are_warned_and_left_to_the_engine(
    tmp_path: Path, line: str, why: str, fix: str
) -> None:
    d = _dir(tmp_path, f"ok\n{line}\n")
    (problem,) = dockerignore.read(d).problems
    assert (problem.line, problem.severity) == (2, Severity.WARNING)
    assert why in problem.why
    assert fix in problem.why
    build.context_files(d, "Containerfile")  # the context is Docker 23+'s reading
    with pytest.raises(NotExactError, match=r"line 2: pattern .* the engine decides"):
        dockerignore.daemon_removes(d, "Containerfile")


@pytest.mark.parametrize("line", ["a\\+b", "\\^x", "[+(|)]", "**/ignore", "**", "x**", "[^a]"])
def test_patterns_every_docker_reads_alike_are_not_reported(tmp_path: Path, line: str) -> None:
    assert dockerignore.read(_dir(tmp_path, f"{line}\n")).problems == []


@pytest.mark.parametrize(
    ("ignore", "path", "expected"),
    [
        ("*\n!remediate.sh\n", "helpers.sh", (1, "*")),
        ("*\n!remediate.sh\n", "remediate.sh", None),
        ("# c\n\n*.md\n!README.md\n*\n", "README.md", (5, "*")),  # the last to exclude it
        ("lib\n", "lib/x/y.sh", (1, "lib")),  # through its parent directory
        ("/lib/../conf/\n", "conf/a", (1, "conf")),  # as read: cleaned
        ("", "x", None),
    ],
)
def test_excluding_line(
    tmp_path: Path, ignore: str, path: str, expected: tuple[int, str] | None
) -> None:
    d = _dir(tmp_path, ignore)
    assert dockerignore.excluding_line(d, path) == expected
    # it names a line exactly when the context leaves the path out
    (d / path).parent.mkdir(parents=True, exist_ok=True)
    (d / path).write_text("x")
    assert (path not in dockerignore.context_files(d, "Containerfile")) == (expected is not None)


def test_context_files_with_appended_lines(tmp_path: Path) -> None:
    d = _dir(tmp_path, "*\n!remediate.sh\n", ("remediate.sh", "helpers.sh"))
    assert "helpers.sh" not in dockerignore.context_files(d, "Containerfile")
    assert "helpers.sh" in dockerignore.context_files(d, "Containerfile", ["!helpers.sh"])
    assert (d / ".dockerignore").read_text() == "*\n!remediate.sh\n"  # nothing written
