"""load: every YAML problem is a finding with a position, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl.load import MAX_ALIAS_EXPANSION, load_file, load_text

BOMB = (
    "- &a [x,x,x,x,x,x,x,x,x,x]\n"
    "- &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "- &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "- &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "- &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\nb: [x]\n", []),
        ("a: [1\n", [("load.syntax", 2, 1)]),
        ("a: b: c\n", [("load.syntax", 1, 5)]),
        ("\tkey: 1\n", [("load.syntax", 1, 1)]),
        ("a: \x07\n", [("load.syntax", 1, 4)]),
        ("---\na: 1\n---\nb: *nope\n", [("load.syntax", 4, 4)]),
        ("a: 1\na: 2\n", [("load.duplicate-key", 2, 1)]),
        ("a:\n  b: 1\n  c: 0\n  b: 2\n", [("load.duplicate-key", 4, 3)]),
        ("a: !foo x\n", [("load.tag", 1, 4)]),
        ("a: !!python/object:os.system x\n", [("load.tag", 1, 4)]),
        ("? [a]\n: 1\n", [("load.key", 1, 1)]),
        ("<<: 1\n", [("load.syntax", 1, 1)]),
        (BOMB, [("load.alias-bomb", 1, 9)]),
        ("a: &x [1]\nb: *x\n", []),  # a modest alias is fine
        ("a: &x [*x]\n", [("load.alias-bomb", 1, 4)]),  # refers to itself: infinite
    ],
)
def test_load_text_findings(text: str, expected: list[tuple[str, int, int]]) -> None:
    result = load_text(text, "f.yaml")
    assert [(f.rule, f.line, f.column) for f in result.findings] == expected
    assert all(f.file == "f.yaml" and f.message for f in result.findings)


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("\tkey: 1\n", 1, 1),
        ("a:\n\tb: 1\n", 2, 1),
        ("a:\n  b: 1\n\tc: 2\n", 3, 1),
        ("a:\n  - x\n\t- y\n", 3, 1),
        ("a: |\n  x\n\ty\n", 3, 1),
        ("a:\n \tb: 1\n", 2, 2),
    ],
)
def test_tab_indentation_says_tab(text: str, line: int, column: int) -> None:
    (finding,) = load_text(text, "f.yaml").findings
    assert (finding.rule, finding.line, finding.column) == ("load.syntax", line, column)
    assert "tab" in finding.message
    assert "spaces" in finding.message


def test_a_tab_inside_a_value_is_no_indentation_problem() -> None:
    assert load_text('a: "x\ty"\nb: c\td\n', "f.yaml").findings == []
    (finding,) = load_text("a: b\tc: d\n", "f.yaml").findings
    assert "tab" not in finding.message


def test_bomb_message_names_the_bound() -> None:
    (finding,) = load_text(BOMB, "f.yaml").findings
    assert str(MAX_ALIAS_EXPANSION) in finding.message


def test_duplicate_key_keeps_the_first_value_and_says_where() -> None:
    result = load_text("a: 1\nb: 0\na: 2\n", "f.yaml")
    assert result.documents[0].data == {"a": 1, "b": 0}
    assert "line 1" in result.findings[0].message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a: 1\n", []),
        (b"\xef\xbb\xbfa: 1\n", []),  # a UTF-8 byte order mark is allowed
        (b"a: 1\nb: \xff\n", [("load.encoding", 2, 4)]),
        (b"\x80", [("load.encoding", 1, 1)]),
    ],
)
def test_load_file_encoding(
    tmp_path: Path, raw: bytes, expected: list[tuple[str, int, int]]
) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(raw)
    result = load_file(path, "shown.yaml")
    assert [(f.rule, f.line, f.column) for f in result.findings] == expected
    assert all(f.file == "shown.yaml" for f in result.findings)


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 200 + "\n")
    result = load_file(path, max_bytes=100)
    assert [(f.rule, f.line, f.column) for f in result.findings] == [("load.too-large", 1, 1)]
    assert result.documents == []
    assert load_file(path, max_bytes=1000).ok


def test_unreadable(tmp_path: Path) -> None:
    result = load_file(tmp_path / "missing.yaml", "missing.yaml")
    assert [f.rule for f in result.findings] == ["load.io"]


def test_positions_of_values_and_keys() -> None:
    doc = load_text("spec:\n  tasks:\n    - name: a\n      x: 1\n", "f.yaml").documents[0]
    assert (
        doc.pos(("spec", "tasks", 0, "name")).line,
        doc.pos(("spec", "tasks", 0, "name")).column,
    ) == (3, 13)
    assert doc.pos(("spec", "tasks", 0, "x"), at_key=True).column == 7
    # A path that does not exist falls back to its nearest ancestor.
    assert doc.pos(("spec", "tasks", 0, "missing")).line == 3


def test_documents_and_timestamps() -> None:
    result = load_text("---\na: 2001-01-01\n---\n---\nb: 1\n", "f.yaml")
    assert [d.data for d in result.documents] == [{"a": "2001-01-01"}, {"b": 1}]
    assert result.documents[1].start.line == 5
