"""Containerfile syntax, as Docker 20.10's builder reads it: the one parser assembly uses.

Why our own and not a library: the daemonless path (assemble.py) must produce what the
engine's classic builder produces from the same text, byte for byte in the config, so it needs
the builder's own rules (moby/buildkit `frontend/dockerfile/parser` and `shell`, as vendored by
Docker 20.10): parser directives, the escape character, continuation lines joined without a
separator, comment lines dropped inside an instruction, JSON or shell form, `ENV`/`LABEL`
words split with their quotes kept then each word expanded, `${VAR:-x}`/`${VAR:+x}`.
dockerfile-parse (PyPI) splits and substitutes with Python's shlex, which differs from the
builder on quotes and escapes. Lint reads with `scan` too (the assembler's reading, never
raising), so a rule judges the file that is built. Whatever this
module does not reproduce exactly raises `Unsupported`, and the playbook goes to the engine,
which says what it thinks of it.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from playbookctl import gomatch


class Unsupported(Exception):  # noqa: N818 - a reason, not an error: the engine takes over
    """Text this module does not reproduce exactly: the engine builds it instead."""


@dataclass(frozen=True)
class Instruction:
    line: int  # the first line of the instruction, 1-based
    keyword: str  # upper case
    flags: tuple[str, ...]  # `--name=value` as written, before the arguments
    rest: str  # the arguments, continuation lines joined, flags removed
    original: str  # the instruction as joined (for messages)

    def flag(self, name: str) -> str | None:
        """The value of `--name=value` (flag_value), or None."""
        return flag_value(self.flags, name)


def flag_value(flags: Sequence[str], name: str) -> str | None:
    """The value of `--name=value` among flags, or None. Names match exactly, as the builders
    match them (assemble.builder_flags refuses another case, and a flag given twice)."""
    for item in flags:
        key, _, value = item[2:].partition("=")
        if key == name:
            return value
    return None


@dataclass
class Parsed:
    instructions: list[Instruction] = field(default_factory=list)
    escape: str = "\\"


@dataclass
class Scanned(Parsed):
    """What `scan` read, and why `parse` would refuse it (None: it would not)."""

    unsupported: str | None = None


_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
# The directives BuildKit knows: another name ends the directive section, as a comment does.
_DIRECTIVES = ("escape", "syntax", "check")
_WHITESPACE = " \t\r\n\v\f"
# Go's unicode.IsSpace, which the builders trim a line's start with (Python's isspace also
# counts \x1c-\x1f, which Go does not).
_GO_SPACE = _WHITESPACE + "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
_GO_SPACE += "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# A heredoc word, as BuildKit's parser finds one (parseHeredoc): `[fd]<<[-]name`.
_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$")
_HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")


def parse(text: str) -> Parsed:
    """Instructions with continuations joined; Unsupported for heredocs and directives other
    than `escape=\\`."""
    scanned = scan(text)
    if scanned.unsupported is not None:
        raise Unsupported(scanned.unsupported)
    for ins in scanned.instructions:
        if "<<" in ins.rest and ins.keyword in _HEREDOC_KEYWORDS:
            raise Unsupported(f"line {ins.line}: a heredoc (<<) in {ins.keyword}")
    return Parsed(scanned.instructions, scanned.escape)


def scan(text: str) -> Scanned:
    """The instructions as the builders read them, never raising: what `parse` returns where it
    does not refuse, and, for what it refuses, BuildKit's reading: the escape directive `` ` ``
    (or `\\`), and heredocs, whose bodies are not instructions. Lint reads a Containerfile with
    this (one reading for the rules and the assembler)."""
    out = Scanned()
    lines = text.removeprefix("\ufeff").split("\n")
    directives_open = True
    seen: set[str] = set()
    i = 0
    escape = "\\"
    cont = re.compile(re.escape(escape) + r"[ \t]*$")

    def refuse(reason: str) -> None:
        if out.unsupported is None:
            out.unsupported = reason

    while i < len(lines):
        raw = lines[i].rstrip("\r")
        i += 1
        stripped = raw.lstrip(_GO_SPACE)
        if directives_open:
            m = _DIRECTIVE.match(stripped)
            if m and m.group(1).lower() in _DIRECTIVES:
                name, value = m.group(1).lower(), m.group(2)
                if name in seen:
                    refuse(f"line {i}: a second {name} directive (the builders refuse it)")
                    continue
                seen.add(name)
                if name == "escape":
                    if value not in ("\\", "`"):
                        refuse(f"line {i}: the escape directive {value!r}")
                    elif value != "\\":
                        refuse(f"line {i}: the escape directive {value!r}")
                        escape = value
                        cont = re.compile(re.escape(escape) + r"[ \t]*$")
                elif name == "syntax":
                    refuse(f"line {i}: a syntax directive (a BuildKit frontend)")
                continue
            directives_open = False
        if stripped.startswith("#") or not stripped.strip(_GO_SPACE):
            continue
        start = i
        line = stripped
        ended = not cont.search(line)
        line = cont.sub("", line)
        while not ended and i < len(lines):
            nxt = lines[i].rstrip("\r")
            i += 1
            if nxt.lstrip(_GO_SPACE).startswith("#"):
                continue
            if not nxt.strip(_GO_SPACE):
                continue  # an empty continuation line (the builder warns, then skips it)
            ended = not cont.search(nxt)
            line += cont.sub("", nxt)
        ins = _instruction(start, line)
        out.instructions.append(ins)
        heredocs = _heredocs(ins)
        if heredocs:
            refuse(f"line {start}: a heredoc (<<) in {ins.keyword}")
        for terminator, chomp in heredocs:
            while i < len(lines):
                body = lines[i].rstrip("\r\n")
                i += 1
                if (body.lstrip("\t") if chomp else body) == terminator:
                    break
            else:
                refuse(f"line {start}: an unterminated heredoc ({terminator})")
    out.escape = escape
    return out


def _heredocs(ins: Instruction) -> list[tuple[str, bool]]:
    return heredocs(ins.keyword, " ".join((*ins.flags, ins.rest)))


def heredocs(keyword: str, args: str) -> list[tuple[str, bool]]:
    """(terminator, chomp) of each heredoc an instruction (`keyword`, and what follows it)
    opens, as BuildKit finds them: words (quotes kept) of RUN, COPY or ADD (also after
    ONBUILD) in shell form that are `[fd]<<[-]name`. Not `a<<b`, `'<<b'`, `<<<` or JSON."""
    keyword = keyword.upper()
    flags, rest = split_flags(args)
    if keyword == "ONBUILD":
        parts = re.split(r"[ \t\v\f]+", rest, maxsplit=1)
        keyword = parts[0].upper()
        flags, rest = split_flags(parts[1] if len(parts) > 1 else "")
    if keyword not in _HEREDOC_KEYWORDS or "<<" not in rest or json_or_none(rest) is not None:
        return []
    found = []
    line = " ".join((*flags, rest))
    for word in parse_words(line, "\\"):
        m = _HEREDOC_WORD.match(word)
        if m is None or not m.group(3):
            continue
        name = m.group(3)
        if "$" not in name:  # BuildKit leaves variables as written (SkipUnsetEnv)
            with contextlib.suppress(Unsupported):
                name = expand(name, {})
        else:
            name = name.replace('"', "").replace("'", "")
        found.append((name, m.group(2) == "-"))
    return found


def _instruction(line: int, text: str) -> Instruction:
    body = text.strip(_GO_SPACE)
    parts = re.split(r"[ \t\v\f]+", body, maxsplit=1)
    keyword = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    flags, rest = split_flags(rest)
    return Instruction(line, keyword, flags, rest, body)


def split_flags(rest: str) -> tuple[tuple[str, ...], str]:
    """(the `--name=value` words written before an instruction's arguments, as written; the
    arguments)."""
    flags: list[str] = []
    rest = rest.strip(_WHITESPACE)
    while rest.startswith("--"):
        word, _, after = _split_first_word(rest)
        if word == "--":
            break
        flags.append(word)
        rest = after
    return tuple(flags), rest.strip(_WHITESPACE)


def _split_first_word(text: str) -> tuple[str, str, str]:
    m = re.match(r"(\S+)\s*", text)
    if m is None:
        return text, "", ""
    return m.group(1), " ", text[m.end() :]


def json_or_none(rest: str) -> list[str] | None:
    """The JSON form's strings (`["a", "b"]`), or None for the shell form."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def split_whitespace(rest: str) -> list[str]:
    return [w for w in re.split(r"[ \t\v\f\r\n]+", rest) if w]


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """The builder's `parseWords`: split on blanks outside quotes, quotes and escapes kept."""
    words: list[str] = []
    word = ""
    phase = "spaces"
    quote = ""
    blank_ok = False
    pos = 0
    n = len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == "spaces":
            if pos == n:
                break
            if ch.isspace():
                pos += 1
                continue
            phase = "word"
        if pos == n:
            if blank_ok or word:
                words.append(word)
            break
        if phase == "word":
            if ch.isspace():
                phase = "spaces"
                if blank_ok or word:
                    words.append(word)
                word, blank_ok = "", False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok, phase = ch, True, "quote"
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue  # an escape at the end of the line is dropped
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        # in a quote
        if ch == quote:
            phase = "word"
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = "word"
                pos += 1
                continue
            word += ch
            pos += 1
            ch = rest[pos]
        word += ch
        pos += 1
    return words


def name_values(rest: str, keyword: str, escape: str = "\\") -> list[tuple[str, str]]:
    """`ENV`/`LABEL` pairs as written (before expansion): `k=v ...`, or the old `k v` form."""
    words = parse_words(rest, escape)
    if not words:
        raise Unsupported(f"{keyword} without arguments")
    if "=" not in words[0]:
        parts = re.split(r"[ \t\v\f]+", rest, maxsplit=1)
        if len(parts) < 2:
            raise Unsupported(f"{keyword} must have two arguments")
        return [(parts[0], parts[1])]
    pairs = []
    for word in words:
        if "=" not in word:
            raise Unsupported(f"{keyword}: can't find = in {word!r}")
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return pairs


# ---------------------------------------------------------------------------------------------
# Word expansion: the builder's shell lexer (ProcessWord), for the cases it handles.


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Quotes removed, escapes applied, `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR:+w}` expanded
    from `env` (unset is empty), as the builder's ProcessWord does."""
    return _Lexer(word, env, escape).stop_on("")


def expand_words(rest: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """ProcessWords: the words of `rest` after expansion (split on unquoted blanks)."""
    return [expand(w, env, escape) for w in parse_words(rest, escape)]


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def stop_on(self, stop: str) -> str:
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                if stop:
                    raise Unsupported(f"unexpected end of {self.text!r} looking for {stop!r}")
                return "".join(out)
            if stop and ch == stop:
                self.next()
                return "".join(out)
            if ch == "'":
                out.append(self.single_quote())
            elif ch == '"':
                out.append(self.double_quote())
            elif ch == "$":
                out.append(self.dollar())
            else:
                ch = self.next()
                if ch == self.escape:
                    ch = self.next()  # an escape at the end of the word is dropped
                out.append(ch)

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise Unsupported(f"unmatched single quote in {self.text!r}")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise Unsupported(f"unmatched double quote in {self.text!r}")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        ch = self.peek()
        if ch.isdigit() or (ch and ch in "@*#?-$!"):
            raise Unsupported(f"special or positional parameter ${ch} in {self.text!r}")
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.text[start : self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return "$" if not name else self.env.get(name, "")
        self.next()
        if self.peek() in ("", "{", "}", ":"):
            raise Unsupported(f"bad substitution in {self.text!r}")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        if ch != ":":
            raise Unsupported(f"substitution ${{{name}{ch}...}} in {self.text!r}")
        modifier = self.next()
        word = self.stop_on("}")
        value = self.env.get(name, "")
        if modifier == "+":
            return word if value else value
        if modifier == "-":
            return value or word
        raise Unsupported(f"substitution modifier :{modifier} in {self.text!r}")


# ---------------------------------------------------------------------------------------------
# Go's %q, as the builder writes a command into an image's history.


def go_quote(value: str) -> str:
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_quote_list(values: Sequence[str]) -> str:
    """`fmt.Sprintf("%q", []string{...})`: `["a" "b"]`."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


# ---------------------------------------------------------------------------------------------
# What COPY and ADD take from the build context.


def context_sources(text: str) -> list[str] | None:
    """The context paths and patterns the COPY/ADD instructions of `text` name (`--from`
    copies and URLs are not the context), normalised (`./a/` is `a`, `.` is ``: everything).
    None when that cannot be told from the text (it does not parse, or a source has a
    variable or a heredoc): then anything may be taken."""
    try:
        parsed = parse(text)
    except Unsupported:
        return None
    sources: list[str] = []
    for ins in parsed.instructions:
        if ins.keyword not in ("COPY", "ADD") or ins.flag("from") is not None:
            continue
        words = json_or_none(ins.rest)
        if words is None:
            if "$" in ins.rest or "<<" in ins.rest:
                return None
            try:
                words = expand_words(ins.rest, {}, parsed.escape)
            except Unsupported:
                return None
        for src in words[:-1]:
            if "$" in src:
                return None
            if "://" in src:
                continue
            clean = re.sub(r"/+", "/", src).strip("/")
            parts = [p for p in clean.split("/") if p not in ("", ".")]
            sources.append("/".join(parts))
    return sources


def takes(sources: Sequence[str], path: str) -> bool:
    """Whether a COPY/ADD of `sources` (context_sources) takes the context file `path`: a
    source that is the file, a directory holding it, or a pattern matching either (`*` and
    `?` never cross `/`, as Go's filepath.Match)."""
    parents = path.split("/")
    candidates = ["/".join(parents[:i]) for i in range(1, len(parents) + 1)]
    for src in sources:
        if not src:
            return True
        try:
            pattern = go_match_regex(src)
        except ValueError:  # not read here as the engine reads it: it may take the file
            return True
        if any(pattern.fullmatch(c) for c in candidates):
            return True
    return False


def go_match_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match as a regular expression (gomatch: `*` and `?` never match `/`), as
    the engine matches COPY/ADD sources. ValueError (gomatch.BadPatternError) for a pattern Go
    finds malformed: the assembler leaves such a Containerfile to the engine (whose builder
    ignores Go's error: the pattern takes nothing). (.dockerignore patterns are moby's own
    syntax: dockerignore.py.)"""
    return gomatch.compile_pattern(pattern)
