"""The engine decides how a Containerfile's lines are read: the engine's builder prints every
instruction it read ("Step 2/4 : RUN echo ab", the instruction as its parser joined it), and
lint's reading (parse_containerfile, which dockerfile.parse shares: tests/unit/lint/
test_parsers_agree.py) must list the same instructions, keyword and arguments.

The cases are the edges where a line reader can go wrong: continuations joined as written,
comment, empty and blank lines inside them, trailing blanks after the escape, line breaks
other than \\n, a BOM, CRLF, unicode blanks before a keyword, the escape directive and what
ends the directive section, a continuation at the end of the file. Trailing blanks of an
instruction are not compared (the builder prints the line as joined, blanks included)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playbookctl import build
from playbookctl.lint.playbook import parse_containerfile

pytestmark = pytest.mark.integration

# Each text is built on the stand-in base ({base}); every instruction succeeds there as the
# engine reads it (`LABEL a=\``: a directive the engine does not take leaves a LABEL that
# builds, where a continuation would make `LABEL a=USER 1`, which fails).
CASES: list[tuple[str, str]] = [
    ("joined as written", "FROM {base}\nRUN echo a\\\nb\nUSER 1\n"),
    ("leading blanks kept", "FROM {base}\nRUN echo a \\\n    b\n"),
    ("comment inside", "FROM {base}\nRUN echo \\\n# comment inside\n  done\nUSER 3\n"),
    ("indented comment inside", "FROM {base}\nRUN echo \\\n   # c\n  done\n"),
    ("empty line inside", "FROM {base}\nRUN echo \\\n\n  done\nUSER 2\n"),
    ("blank line inside", "FROM {base}\nRUN echo \\\n  \t \n  done\n"),
    ("blanks after the escape", "FROM {base}\nRUN echo a \\  \t\n  b\n"),
    ("vertical tab", "FROM {base}\nRUN echo a\x0bUSER root\n"),
    ("form feed", "FROM {base}\nRUN echo a\x0cUSER root\n"),
    ("line separator", "FROM {base}\nRUN echo a\u2028USER root\n"),
    ("next line", "FROM {base}\nRUN echo a\x85USER root\n"),
    ("no-break space before a keyword", "FROM {base}\n\xa0USER 1\n"),
    ("ideographic space before a keyword", "FROM {base}\n\u3000USER 1\n"),
    ("crlf", "FROM {base}\r\nRUN echo a \\\r\n  b\r\nUSER 1\r\n"),
    ("bom", "\ufeffFROM {base}\nUSER 1\n"),
    ("tab after the keyword", "FROM {base}\nUSER\t1\nLABEL\ta=b\n"),
    ("lower case", "from {base}\nuser 1\nlabel a=b \\\n# c\n  c=d\n"),
    ("escape directive", "# escape=`\nFROM {base}\nRUN echo a `\n  b\nUSER 1\n"),
    ("directive after a comment", "# hello\n# escape=`\nFROM {base}\nLABEL a=`\nUSER 1\n"),
    ("directive after a blank", "\n# escape=`\nFROM {base}\nLABEL a=`\nUSER 1\n"),
    ("unknown directive first", "# foo=bar\n# escape=`\nFROM {base}\nLABEL a=`\nUSER 1\n"),
    ("continuation at the end", "FROM {base}\nUSER 1\nRUN echo \\"),
    ("no final newline", "FROM {base}\nUSER 1"),
]

_STEP = re.compile(r"^Step \d+/\d+ : (.*)$", re.DOTALL)


@pytest.mark.parametrize(("name", "text"), CASES, ids=[c[0] for c in CASES])
def test_lint_reads_what_the_engine_reads(
    docker_engine: str, base_image: str, tmp_path: Path, name: str, text: str
) -> None:
    text = text.replace("{base}", base_image)
    (tmp_path / "Containerfile").write_bytes(text.encode("utf-8"))
    read: list[str] = []
    errors: list[str] = []
    with build.Engine(docker_engine) as engine:
        for chunk in engine._api.build(
            path=str(tmp_path), dockerfile="Containerfile", rm=True, forcerm=True, decode=True
        ):
            out = chunk.get("stream", "")
            m = _STEP.match(out.removesuffix("\n"))
            if m:
                read.append(m.group(1))
            if "error" in chunk:
                errors.append(chunk["error"])
    assert not errors, errors
    engine_read = []
    for original in read:
        keyword, _, args = re.sub(r"^(\S+)[ \t\v\f]+", r"\1 ", original).partition(" ")
        engine_read.append((keyword.upper(), args.rstrip(" \t")))
    cf = parse_containerfile(text, "Containerfile")
    lint_read = [(i.keyword, i.args.rstrip(" \t")) for i in cf.instructions]
    # The engine names the base as the Containerfile does; the rest is compared as read.
    assert lint_read == engine_read
