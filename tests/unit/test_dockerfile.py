"""dockerfile.py: the builder's parser and word expansion, table by table (the engine itself is
the oracle for whole images: tests/integration/test_assemble_oracle.py)."""

from __future__ import annotations

import pytest

from playbookctl import dockerfile
from playbookctl.dockerfile import Unsupported

ENV = {"HOME": "/root", "EMPTY": "", "A": "1"}


@pytest.mark.parametrize(
    ("word", "expanded"),
    [
        ("plain", "plain"),
        ("$HOME/x", "/root/x"),
        ("${HOME}x", "/rootx"),
        ("${NOPE:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${A:+set}", "set"),
        ("${NOPE:+set}", ""),
        ("'$HOME'", "$HOME"),
        ('"$HOME and \\$HOME"', "/root and $HOME"),
        ("a\\ b", "a b"),
        ('"a\\qb"', "a\\qb"),
        ("$", "$"),
        ("cost$", "cost$"),
        ("$NOPE", ""),
    ],
)
def test_expand_as_the_builder_does(word: str, expanded: str) -> None:
    assert dockerfile.expand(word, ENV) == expanded


@pytest.mark.parametrize("word", ["${A?x}", "${A:?x}", "$1", "${}", "'open", '"open', "${A"])
def test_what_is_not_reproduced_is_unsupported(word: str) -> None:
    with pytest.raises(Unsupported):
        dockerfile.expand(word, ENV)


@pytest.mark.parametrize(
    ("rest", "pairs"),
    [
        ("HOME=/tmp", [("HOME", "/tmp")]),
        ('A="b c" D=e\\ f', [("A", '"b c"'), ("D", "e\\ f")]),
        ("LEGACY value with spaces", [("LEGACY", "value with spaces")]),
        ("K='x y' Z=", [("K", "'x y'"), ("Z", "")]),
    ],
)
def test_env_and_label_pairs_keep_quotes_until_expanded(
    rest: str, pairs: list[tuple[str, str]]
) -> None:
    assert dockerfile.name_values(rest, "ENV") == pairs


def test_continuations_join_without_a_separator_and_skip_comment_lines() -> None:
    parsed = dockerfile.parse("FROM a\nCOPY x \\\n  # a comment\n\n   y /z/\nUSER 1\n")
    assert [(i.line, i.keyword, i.rest) for i in parsed.instructions] == [
        (1, "FROM", "a"),
        (2, "COPY", "x    y /z/"),
        (6, "USER", "1"),
    ]


def test_flags_are_split_from_the_arguments() -> None:
    (ins,) = dockerfile.parse("COPY --chown=1:2 --chmod=0755 a /b\n").instructions
    assert ins.flags == ("--chown=1:2", "--chmod=0755")
    assert ins.flag("chown") == "1:2"
    assert ins.rest == "a /b"


@pytest.mark.parametrize(
    "text",
    ["# syntax=docker/dockerfile:1\nFROM a\n", "# escape=`\nFROM a\n", "FROM a\nCOPY <<EOF /x\n"],
)
def test_directives_and_heredocs_go_to_the_engine(text: str) -> None:
    with pytest.raises(Unsupported):
        dockerfile.parse(text)


def test_json_form_and_go_quoting() -> None:
    assert dockerfile.json_or_none('["/bin/sh", "-c"]') == ["/bin/sh", "-c"]
    assert dockerfile.json_or_none("[not json") is None
    assert dockerfile.go_quote_list(["a b", 'q"t']) == '["a b" "q\\"t"]'


TAKES = """\
FROM base
COPY --chown=1:1 remediate.sh ./lib/ /usr/local/bin/
COPY ["conf dir", "/etc/conf"]
COPY *.py /app/
COPY d[^x]f /d/
COPY --from=other /built /built
ADD https://example.invalid/x.tar /x
"""


@pytest.mark.parametrize(
    ("path", "taken"),
    [
        ("remediate.sh", True),
        ("lib/helpers.sh", True),  # a directory source takes what it holds
        ("conf dir/a.yaml", True),
        ("tool.py", True),
        ("sub/tool.py", False),  # `*` never crosses `/`
        ("d/f", True),  # a class does, as in Go's filepath.Match (the engine takes it)
        ("dxf", False),
        ("__pycache__/tool.cpython-312.pyc", False),
        ("built", False),  # --from copies from another stage, not the context
        ("x.tar", False),  # a URL is not the context
        ("secret.env", False),
    ],
)
def test_what_copy_and_add_take_from_the_context(path: str, taken: bool) -> None:
    sources = dockerfile.context_sources(TAKES)
    assert sources is not None
    assert dockerfile.takes(sources, path) is taken


@pytest.mark.parametrize("source", [".", "./", "/"])
def test_copying_the_whole_context_takes_everything(source: str) -> None:
    sources = dockerfile.context_sources(f"FROM base\nCOPY {source} /ctx/\n")
    assert sources == [""]
    assert dockerfile.takes(sources, "__pycache__/tool.cpython-312.pyc")


@pytest.mark.parametrize(
    "text", ["FROM base\nCOPY $SRC /ctx/\n", "FROM base\nCOPY <<EOF /x\nhi\nEOF\n"]
)
def test_sources_that_cannot_be_told_are_none(text: str) -> None:
    assert dockerfile.context_sources(text) is None
