"""Lint and the assembler read every Containerfile alike: the same text, parsed by lint's
`parse_containerfile` (what every lint rule judges) and by `dockerfile.parse` (what the assembler
builds, held to the engine by tests/integration/test_assemble_oracle.py), gives the same
instructions: first line, keyword, flags and arguments.

The only normalisation is representational: lint keeps an instruction's flags and arguments as
one string (`args`), the assembler has them apart, so lint's string is split with the one flag
splitter both use (dockerfile.split_flags) before comparing. Nothing else is trimmed or
rewritten.

Where `dockerfile.parse` refuses the text (Unsupported: a heredoc, the escape directive other
than `\\`, a syntax directive; the engine builds those), two other references stand in:
- the escape directive `` ` ``: the same file written with `\\` is what the assembler parses,
  and lint must read both alike (the escape character is the only change);
- heredocs: BuildKit's reading, written out in HEREDOCS (which lines are bodies, which are
  instructions), as its parser (frontend/dockerfile/parser: heredocsFromLine, the terminator
  compared exactly, `<<-` trimming leading tabs) reads them.

Corpus: every Containerfile in the repository, the scaffold's, every Containerfile-looking string
constant in the tests (found by walking their syntax trees), the edge cases below, and the
product of small variations (line ending, BOM, blanks, keyword case, continuation shapes, final
newline) over a few bodies.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from playbookctl import dockerfile, scaffold
from playbookctl.dockerfile import Unsupported, split_flags
from playbookctl.lint.playbook import parse_containerfile

REPO = Path(__file__).resolve().parents[3]
D = "sha256:" + "a" * 64

Seen = list[tuple[int, str, tuple[str, ...], str]]


def lint_reads(text: str) -> Seen:
    out: Seen = []
    for ins in parse_containerfile(text, "Containerfile").instructions:
        flags, rest = split_flags(ins.args)
        out.append((ins.line, ins.keyword, flags, rest))
    return out


def assembler_reads(text: str) -> Seen:
    return [(i.line, i.keyword, i.flags, i.rest) for i in dockerfile.parse(text).instructions]


def _repo_containerfiles() -> list[tuple[str, str]]:
    found = []
    for path in sorted(REPO.rglob("*")):
        if ".venv" in path.parts or ".git" in path.parts or not path.is_file():
            continue
        if path.name.startswith(("Containerfile", "Dockerfile")):
            found.append((str(path.relative_to(REPO)), path.read_text("utf-8")))
    return found


def _test_constants() -> list[tuple[str, str]]:
    """String constants in the tests that look like a Containerfile (a line starting FROM)."""
    found = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path == Path(__file__).resolve():
            continue  # this file's own edges are below, by name
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value
                lines = value.split("\n")
                if len(lines) > 1 and any(ln.lstrip().upper().startswith("FROM ") for ln in lines):
                    rel = path.relative_to(REPO)
                    found.append((f"{rel}:{node.lineno}", value.replace("{base}", "b/x:1")))
    return found


CORPUS: list[tuple[str, str]] = [
    *_repo_containerfiles(),
    ("scaffold", scaffold.render_containerfile()),
    *_test_constants(),
]

# (id, text): the edges the builders accept, each read by both parsers.
EDGES: list[tuple[str, str]] = [
    ("tab after keyword", "FROM a\nCOPY\t--from=img:tag /x /y\n"),
    ("other blanks", "FROM a\nRUN\x0bx\x0cy\nUSER \t 5\n"),
    ("leading blanks", "  \tFROM a\n\t USER 1\n"),
    ("unicode blanks before a keyword", "FROM a\n\xa0USER 1\n\u3000USER 2\n"),
    ("escape directive backslash", "# escape=\\\nFROM a\nRUN a \\\n  b\n"),
    ("directive after a comment", "# hello\n# escape=`\nFROM a\nRUN a `\nUSER 1\n"),
    ("directive after a blank", "\n# escape=`\nFROM a\nRUN a `\nUSER 1\n"),
    ("directive after an instruction", "FROM a\n# escape=`\nRUN a `\nUSER 1\n"),
    ("unknown directive ends them", "# foo=bar\n# escape=`\nFROM a\nRUN a `\nUSER 1\n"),
    ("continuation joins without a blank", "FROM a\nRUN echo a\\\nb\n"),
    ("continuation keeps leading blanks", "FROM a\nRUN echo a \\\n    b\n"),
    ("comment inside continuation", "FROM a\nRUN echo \\\n# comment inside\n  done\nUSER 3\n"),
    ("indented comment inside", "FROM a\nRUN echo \\\n   # c\n  done\nUSER 3\n"),
    ("empty line inside", "FROM a\nRUN echo \\\n\n  done\nUSER 3\n"),
    ("blank line inside", "FROM a\nRUN echo \\\n  \t \n  done\nUSER 3\n"),
    ("backslash then blanks", "FROM a\nRUN echo a \\  \t\n  b\nUSER 1\n"),
    ("escaped backslash at end", "FROM a\nRUN echo a \\\\\nUSER 1\n"),
    ("crlf", "FROM a\r\nRUN echo a \\\r\n  b\r\nUSER 1\r\n"),
    ("bom", "\ufeffFROM a\nUSER 1\n"),
    ("bom then directive", "\ufeff# escape=\\\nFROM a\n"),
    ("json form", 'FROM a\nENTRYPOINT ["/bin/sh", "-c", "x"]\nCMD [ "a" ]\n'),
    ("json form continued", 'FROM a\nCMD ["a", \\\n  "b"]\n'),
    ("lower-case keywords", "from --platform=x a as B\nuser 5\ncopy --chown=1:1 f /f\n"),
    ("no final newline", "FROM a\nUSER 1"),
    ("continuation at end of file", "FROM a\nRUN echo \\"),
    ("continuation then comment at end", "FROM a\nRUN echo \\\n# c\n"),
    ("flags", f"FROM --platform=$BUILDPLATFORM a@{D} AS b\nCOPY --from=b --chown=1:1 /x /y\n"),
    ("double dash", "FROM a\nCOPY -- --x /y\n"),
    ("keyword only", "FROM a\nUSER\nRUN\n"),
    ("comment after blanks", "FROM a\n   # not an instruction\nUSER 1\n"),
    ("hash inside a line", "FROM a\nRUN echo # not a comment\n"),
    ("vertical tab is no line break", "FROM a\nRUN echo a\x0bUSER root\n"),
    ("form feed is no line break", "FROM a\nRUN echo a\x0cUSER root\n"),
    ("unicode line separator", "FROM a\nRUN echo a\u2028USER root\n"),
    ("next line char", "FROM a\nRUN echo a\x85USER root\n"),
    ("lone carriage return", "FROM a\nRUN echo a\rUSER root\n"),
    ("less-than in a word", "FROM a\nRUN echo a<<b\nUSER 1\n"),
]


@pytest.mark.parametrize(("name", "text"), CORPUS + EDGES, ids=[c[0] for c in CORPUS + EDGES])
def test_lint_reads_what_the_assembler_reads(name: str, text: str) -> None:
    try:
        expected = assembler_reads(text)
    except Unsupported:
        pytest.skip("the assembler leaves this text to the engine (compared below)")
    assert lint_reads(text) == expected


def test_the_corpus_is_the_repositorys() -> None:
    """The generated part of the corpus finds what it should (a walk that finds nothing would
    make the test above vacuous)."""
    names = [n for n, _ in CORPUS]
    assert {"playbooks/restart-deployment/Containerfile", "scaffold"} <= set(names)
    assert sum(n.startswith("tests/") and ".py:" in n for n in names) >= 20


# --- generated variations ------------------------------------------------------------------

BODIES = [
    "FROM a AS b\nRUN set -e; {c}echo one{c}  && echo two\nUSER 5:5\n",
    'from a\ncopy --chown=1:1{c}--from=b /x /y\nentrypoint ["/x"]\n',
    "FROM a\n# note\nENV A=1 {c}B=2\nLABEL x=y\n",
]
CONTINUATIONS = [
    " \\\n",  # plain
    " \\  \t\n",  # trailing blanks
    "\\\n",  # no blank before: the parts join
    " \\\n# comment\n",  # a comment between
    " \\\n\n   \n",  # empty and blank lines between
    " \\\n  # indented comment\n\t",  # an indented comment, then a tab
]


def _variants() -> list[tuple[str, str]]:
    out = []
    for (b, body), (c, cont), crlf, bom, final, blank in itertools.product(
        enumerate(BODIES),
        enumerate(CONTINUATIONS),
        (False, True),
        (False, True),
        (True, False),
        ("", "\t", " \t "),
    ):
        text = blank + body.format(c=cont).replace("\n", "\n" + blank)
        text = text[: -len(blank)] if blank else text
        if not final:
            text = text.rstrip("\n")
        if crlf:
            text = text.replace("\n", "\r\n")
        if bom:
            text = "\ufeff" + text
        vid = f"b{b}-c{c}-{'crlf' if crlf else 'lf'}-{'bom' if bom else 'nobom'}"
        out.append((f"{vid}-{'nl' if final else 'eof'}-blank{len(blank)}", text))
    return out


@pytest.mark.parametrize(("name", "text"), _variants(), ids=[v[0] for v in _variants()])
def test_generated_variations(name: str, text: str) -> None:
    assert lint_reads(text) == assembler_reads(text)


# --- the escape directive: `\`` read as `\\` is read ----------------------------------------


BACKTICK = [
    (n, t)
    for n, t in EDGES + CORPUS + _variants()
    if "\\" in t and not any(s in t for s in ("`", "\\\\", "escape=", "<<"))
]


@pytest.mark.parametrize(("name", "text"), BACKTICK, ids=[b[0] for b in BACKTICK])
def test_backtick_escape_reads_as_backslash(name: str, text: str) -> None:
    directive = "# escape=`\n"
    as_backslash = lint_reads(directive.replace("`", "\\") + text)
    assert lint_reads(directive + text.replace("\\", "`")) == [
        (line, kw, tuple(f.replace("\\", "`") for f in flags), rest.replace("\\", "`"))
        for line, kw, flags, rest in as_backslash
    ]
    assert as_backslash == assembler_reads(directive.replace("`", "\\") + text)


# --- heredocs: BuildKit's reading -----------------------------------------------------------

# (id, text, [(line, keyword)] BuildKit reads; every other line is a body or a comment)
HEREDOCS: list[tuple[str, str, list[tuple[int, str]]]] = [
    ("run", "FROM a\nRUN <<EOF\nUSER root\nEOF\nUSER 1\n", [(1, "FROM"), (2, "RUN"), (5, "USER")]),
    (
        "chomp",
        "FROM a\nRUN <<-EOF\n\tUSER root\n\tEOF\nUSER 1\n",
        [(1, "FROM"), (2, "RUN"), (5, "USER")],
    ),
    (
        "indented terminator without chomp is body",
        "FROM a\nRUN <<EOF\nx\n  EOF\nEOF\nUSER 1\n",
        [(1, "FROM"), (2, "RUN"), (6, "USER")],
    ),
    (
        "chomp trims tabs only",
        "FROM a\nRUN <<-EOF\n  EOF\n\t\tEOF\nUSER 1\n",
        [(1, "FROM"), (2, "RUN"), (5, "USER")],
    ),
    (
        "quoted terminators",
        "FROM a\nRUN <<'EOF' cat\nx\nEOF\nCOPY <<\"END\" /f\ny\nEND\nUSER 1\n",
        [(1, "FROM"), (2, "RUN"), (5, "COPY"), (8, "USER")],
    ),
    (
        "several on one line",
        "FROM a\nCOPY <<A <<B /d/\na\nA\nUSER root\nB\nUSER 1\n",
        [(1, "FROM"), (2, "COPY"), (7, "USER")],
    ),
    (
        "with a file descriptor",
        "FROM a\nRUN 3<<EOF cat /dev/fd/3\nUSER root\nEOF\nUSER 1\n",
        [(1, "FROM"), (2, "RUN"), (5, "USER")],
    ),
    (
        "lower case, after a continuation",
        "FROM a\nrun \\\n  <<EOF\nUSER root\nEOF\nUSER 1\n",
        [(1, "FROM"), (2, "RUN"), (6, "USER")],
    ),
    (
        "crlf",
        "FROM a\r\nRUN <<EOF\r\nUSER root\r\nEOF\r\nUSER 1\r\n",
        [(1, "FROM"), (2, "RUN"), (5, "USER")],
    ),
    (
        "not a heredoc: inside a word",
        "FROM a\nRUN echo a<<b\nUSER 1\nb\n",
        [(1, "FROM"), (2, "RUN"), (3, "USER"), (4, "B")],
    ),
    (
        "not a heredoc: quoted",
        "FROM a\nRUN echo '<<b' x\nUSER 1\nb\n",
        [(1, "FROM"), (2, "RUN"), (3, "USER"), (4, "B")],
    ),
    (
        "not a heredoc: JSON form",
        'FROM a\nRUN ["sh", "-c", "cat <<EOF"]\nUSER 1\nEOF\n',
        [(1, "FROM"), (2, "RUN"), (3, "USER"), (4, "EOF")],
    ),
    (
        "not a heredoc: another instruction",
        "FROM a\nLABEL x=<<EOF\nUSER 1\nEOF\n",
        [(1, "FROM"), (2, "LABEL"), (3, "USER"), (4, "EOF")],
    ),
    (
        "onbuild",
        "FROM a\nONBUILD RUN <<EOF\nUSER root\nEOF\nUSER 1\n",
        [(1, "FROM"), (2, "ONBUILD"), (5, "USER")],
    ),
    (
        "unterminated: the rest is body",
        "FROM a\nRUN <<EOF\nUSER root\n",
        [(1, "FROM"), (2, "RUN")],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [h[1:] for h in HEREDOCS], ids=[h[0] for h in HEREDOCS]
)
def test_heredocs_as_buildkit_reads_them(text: str, expected: list[tuple[int, str]]) -> None:
    assert [(line, kw) for line, kw, _, _ in lint_reads(text)] == expected
