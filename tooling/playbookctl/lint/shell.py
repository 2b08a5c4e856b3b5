"""What a shell script reads, sets and runs, from a real parse of it (tree-sitter-bash).

The one module that knows the parser. The script contract (lint/script.py) asks it which
variables a script reads and how (plain, with a default, `${X:?}`), which it sets (assignment,
`read`, `for`, `local`/`declare`/`export`/`readonly`, `mapfile`, `printf -v`, `getopts`,
arithmetic assignment, `${X:=d}`), whether `set -u` is on, the `$(params.X)` Tekton syntax
written inside it, and every command it runs with each argument's possible values.

Why tree-sitter-bash and not bashlex: bashlex (pure Python, last release 2023) rejects `[[ ... ]]`,
which every sample and most real remediation scripts use, so it cannot parse them at all.
tree-sitter-bash (the grammar GitHub and editors use, released with tree-sitter) parses all of
them; its one gap we meet is the base prefix of bash arithmetic (`10#$X`), which it marks as an
ERROR node and parses the rest of the expression around it, so that gap is tolerated here and
every other ERROR node is reported as an unparsed region.

Values: a word's value is a set of alternatives, each a string in which UNKNOWN stands for a part
that cannot be known statically (a parameter, a command substitution). A variable's value is the
union of the values of all of its assignments when each is a literal or built from such
variables (so `RESOURCE=deployments.apps` in one `case` branch and `statefulsets.apps` in another
gives both); anything else (`read`, `$(...)`, a loop variable) makes it unknown. This is
flow-insensitive on purpose: a lint must not guess which branch runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import tree_sitter
import tree_sitter_bash

UNKNOWN = "\x00"
MAX_ALTERNATIVES = 16
Alternatives = frozenset[str]
_UNKNOWN_WORD: Alternatives = frozenset({UNKNOWN})
# "$@" / "$*" as a word: a wrapper function's arguments (see Script.invocations).
ARGS: Alternatives = frozenset({"\x01@"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Tekton's variable roots: `$(params.x)`, `$(context.taskRun.name)`, `$(workspaces.w.path)`...
TEKTON_ROOTS = frozenset(
    ("params", "context", "workspaces", "results", "tasks", "steps", "inputs", "outputs")
)
_TEKTON_REF = re.compile(r"\$\(\s*(" + "|".join(sorted(TEKTON_ROOTS)) + r")(?:\.|\[)[^)]*\)")

# Default operators of ${X<op>word}: a read that does not fail under `set -u`.
_DEFAULT_OPS = frozenset((":-", "-", ":+", "+"))
_ASSIGN_OPS = frozenset((":=", "="))
_REQUIRED_OPS = frozenset((":?", "?"))
_ARITH_NODES = frozenset(("arithmetic_expansion", "c_style_for_statement"))
_NON_ARITH_NODES = frozenset(("command", "program", "function_definition", "command_substitution"))
_DECLARERS = frozenset(("local", "declare", "typeset", "export", "readonly"))
# Commands that run their arguments as a command (after their own options).
_RUNNERS = frozenset(("command", "exec", "nohup", "time", "builtin"))


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


@dataclass(frozen=True)
class Read:
    name: str
    line: int
    column: int
    mode: str  # "plain" | "default" | "required" | "assign-default"
    self_default: bool = False  # `X="${X:-d}"`: the read inside X's own assignment


@dataclass(frozen=True)
class TektonRef:
    text: str
    line: int
    column: int


@dataclass
class Command:
    """A simple command: its words, each with its possible values (see the module docstring)."""

    words: list[Alternatives]
    line: int
    column: int
    function: str | None  # the function it is written in


@dataclass
class Script:
    reads: list[Read] = field(default_factory=list)
    sets: dict[str, int] = field(default_factory=dict)  # name -> first line that sets it
    set_count: dict[str, int] = field(default_factory=dict)  # name -> places that set it
    commands: list[Command] = field(default_factory=list)
    tekton_refs: list[TektonRef] = field(default_factory=list)
    nounset: int = 0  # the line of `set -u` (or the shebang's -u), 0 when off
    sources: int = 0  # the line of a `source`/`.`: what it sets is unknown
    unparsed: list[tuple[int, int]] = field(default_factory=list)
    functions: dict[str, tree_sitter.Node] = field(default_factory=dict)

    def invocations(self) -> list[Command]:
        """Every command the script runs, with calls of wrapper functions expanded: a function
        whose body runs `cmd ... "$@"` makes `f a b` run `cmd ... a b` at the call's line, and
        one that runs `"$@"` (a retry helper) makes `f cmd a` run `cmd a`; `command`, `exec`,
        `nohup` and `timeout DURATION` run their arguments. The bodies of wrappers are not
        reported on their own (they run only through their calls)."""
        templates: dict[str, list[Command]] = {}
        for c in self.commands:
            if c.function is not None and ARGS in c.words:
                templates.setdefault(c.function, []).append(c)
        out: list[Command] = []
        for c in self.commands:
            if c.function in templates and ARGS in c.words:
                continue
            out.extend(_expand(c, templates, 0))
        return out


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _pos(node: tree_sitter.Node) -> tuple[int, int]:
    return node.start_point.row + 1, node.start_point.column + 1


def _walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _command_name(cmd: tree_sitter.Node) -> str | None:
    for c in cmd.children:
        if c.type == "command_name":
            return _text(c)
    return None


def _arguments(cmd: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The words after the command name (redirections and prefix assignments excluded)."""
    out: list[tree_sitter.Node] = []
    seen_name = False
    for c in cmd.children:
        if c.type == "command_name":
            seen_name = True
        elif seen_name and c.type not in (
            "file_redirect",
            "herestring_redirect",
            "heredoc_redirect",
        ):
            out.append(c)
    return out


def _unquote_literal(node: tree_sitter.Node) -> str | None:
    """The value of a word with no expansion in it, else None."""
    t = node.type
    if t in ("word", "number"):
        return re.sub(r"\\(.)", r"\1", _text(node))
    if t == "raw_string":
        return _text(node)[1:-1]
    if t == "string" and all(c.type in ('"', "string_content") for c in node.children):
        return "".join(_text(c) for c in node.children if c.type == "string_content")
    return None


class _Analyzer:
    def __init__(self, source: bytes) -> None:
        self.tree = _parser().parse(source)
        self.script = Script()
        # name -> the value nodes of its assignments (None: assigned something unknowable).
        self.values: dict[str, list[tree_sitter.Node | None]] = {}
        # name -> the items of its `=(...)` and `+=(...)` assignments, in order; known only
        # while it has one `=(...)` (else which one ran is a guess).
        self.arrays: dict[str, list[tree_sitter.Node]] = {}
        self.array_inits: dict[str, int] = {}
        self._evaluating: set[str] = set()

    # -- pass 1: what is set, and to what ---------------------------------------------------

    def _set(self, name: str, node: tree_sitter.Node, value: tree_sitter.Node | None) -> None:
        if not _NAME.match(name):
            return
        line = _pos(node)[0]
        self.script.sets.setdefault(name, line)
        self.script.set_count[name] = self.script.set_count.get(name, 0) + 1
        self.values.setdefault(name, []).append(value)

    def _assignment(self, node: tree_sitter.Node) -> None:
        target = node.child_by_field_name("name") or node.children[0]
        op = node.children[1] if len(node.children) > 1 else None
        value = node.child_by_field_name("value")
        if target.type == "subscript":  # arr[i]=x
            base = target.children[0]
            self._set(_text(base), node, None)
            return
        name = _text(target)
        if value is not None and value.type == "array":
            items = [c for c in value.children if c.type not in ("(", ")")]
            self.script.sets.setdefault(name, _pos(node)[0])
            if op is not None and _text(op) == "=":
                self.array_inits[name] = self.array_inits.get(name, 0) + 1
            self.arrays.setdefault(name, []).extend(items)
            return
        if op is not None and _text(op) == "+=":
            self._set(name, node, None)
            return
        self._set(name, node, value)

    def collect_sets(self) -> None:
        for node in _walk(self.tree.root_node):
            t = node.type
            if t == "variable_assignment":
                self._assignment(node)
            elif t == "declaration_command":
                for c in node.children:
                    if c.type == "variable_name":
                        self._set(_text(c), c, None)
            elif t in ("for_statement", "select_statement"):
                var = node.child_by_field_name("variable")
                if var is not None:
                    self._set(_text(var), var, None)
            elif t == "function_definition":
                name = node.child_by_field_name("name")
                if name is not None:
                    self.script.functions[_text(name)] = node
            elif t == "command":
                self._command_sets(node)
            elif t == "expansion":
                ops = [_text(c) for c in node.children]
                names = [c for c in node.children if c.type == "variable_name"]
                if names and any(o in _ASSIGN_OPS for o in ops):
                    self._set(_text(names[0]), names[0], None)
            elif t in ("postfix_expression", "unary_expression"):
                operand = node.children[0] if t == "postfix_expression" else node.children[-1]
                if any(_text(c) in ("++", "--") for c in node.children) and operand.type in (
                    "variable_name",
                    "word",
                ):
                    self._set(_text(operand), operand, None)
            elif t == "binary_expression" and self._in_arithmetic(node):
                op = node.child_by_field_name("operator")
                left = node.child_by_field_name("left")
                if (
                    op is not None
                    and left is not None
                    and _text(op)
                    in ("=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "|=", "^=")
                    and left.type in ("variable_name", "word")
                ):
                    self._set(_text(left), left, None)

    @staticmethod
    def _in_arithmetic(node: tree_sitter.Node) -> bool:
        p: tree_sitter.Node | None = node.parent
        while p is not None:
            if p.type in ("arithmetic_expansion", "c_style_for_statement"):
                return True
            if p.type == "compound_statement":
                return bool(p.children) and p.children[0].type == "(("
            if p.type in ("command", "program", "function_definition"):
                return False
            p = p.parent
        return False

    def _command_sets(self, node: tree_sitter.Node) -> None:
        name = _command_name(node)
        args = _arguments(node)
        lits = [_unquote_literal(a) for a in args]
        if name == "read":
            takes_value = set("pdntuiN")
            i = 0
            while i < len(lits):
                w = lits[i]
                if w is not None and w.startswith("-") and len(w) > 1:
                    if w[-1] in takes_value and len(w) == 2:
                        i += 1
                    if "a" in w[1:] and i + 1 < len(lits) and lits[i + 1]:  # -a ARRAY
                        self._set(lits[i + 1] or "", args[i + 1], None)
                        i += 1
                    i += 1
                    continue
                if w is not None:
                    self._set(w, args[i], None)
                i += 1
            if not any(w and not w.startswith("-") for w in lits):
                self._set("REPLY", node, None)
        elif name in ("mapfile", "readarray"):
            names = [w for w in lits if w and not w.startswith("-")]
            self._set(names[-1] if names else "MAPFILE", node, None)
        elif name == "printf" and len(lits) >= 2 and lits[0] == "-v" and lits[1]:
            self._set(lits[1], args[1], None)
        elif name == "getopts" and len(lits) >= 2 and lits[1]:
            self._set(lits[1], args[1], None)
            self._set("OPTARG", node, None)
            self._set("OPTIND", node, None)
        elif name in _DECLARERS:
            for a, w in zip(args, lits, strict=True):
                if w and _NAME.match(w):
                    self._set(w, a, None)
        elif name == "let":
            for w in lits:
                m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:[-+*/%&|^]|<<|>>)?=", w or "")
                if m:
                    self._set(m.group(1), node, None)
        elif name == "set" and self.script.nounset == 0:
            for w in lits:
                if w and re.match(r"-[a-zA-Z]*u", w):
                    self.script.nounset = _pos(node)[0]
            if "nounset" in lits and "-o" in lits:
                self.script.nounset = _pos(node)[0]
        elif name in ("source", ".") and not self.script.sources:
            self.script.sources = _pos(node)[0]

    # -- values ---------------------------------------------------------------------------

    def variable(self, name: str) -> Alternatives:
        nodes = self.values.get(name)
        if not nodes or name in self._evaluating or name in self.arrays:
            return _UNKNOWN_WORD
        self._evaluating.add(name)
        try:
            out: set[str] = set()
            for n in nodes:
                out |= self.value(n) if n is not None else _UNKNOWN_WORD
                if len(out) > MAX_ALTERNATIVES:
                    return _UNKNOWN_WORD
            return frozenset(out)
        finally:
            self._evaluating.discard(name)

    def value(self, node: tree_sitter.Node) -> Alternatives:
        lit = _unquote_literal(node)
        if lit is not None:
            return frozenset({lit})
        t = node.type
        if t == "simple_expansion":
            name = node.children[-1]
            return self.variable(_text(name)) if name.type == "variable_name" else _UNKNOWN_WORD
        if t == "expansion":
            kids = [c for c in node.children if c.type not in ("${", "}")]
            if len(kids) == 1 and kids[0].type == "variable_name":
                return self.variable(_text(kids[0]))
            if (
                len(kids) == 3
                and kids[0].type == "variable_name"
                and _text(kids[1]) in (":-", "-", ":=", "=")
            ):  # ${X:-word}: X's value or the word
                return frozenset(self.variable(_text(kids[0])) | self.value(kids[2]))
            return _UNKNOWN_WORD
        if t in ("string", "concatenation"):
            parts: list[Alternatives] = []
            for c in node.children:
                if c.type == '"':
                    continue
                if c.type == "string_content":
                    parts.append(frozenset({_text(c)}))
                else:
                    parts.append(self.value(c))
            return _concat(parts)
        return _UNKNOWN_WORD

    def argument_words(self, node: tree_sitter.Node) -> list[Alternatives]:
        """One argument node as the words it becomes: `"${arr[@]}"` of a known array
        expands to its items."""
        inner = node
        if node.type == "string" and len(node.children) == 3:
            inner = node.children[1]
        if inner.type == "simple_expansion" and _text(inner.children[-1]) in ("@", "*"):
            return [ARGS]
        if inner.type == "expansion":
            kids = [c for c in inner.children if c.type not in ("${", "}")]
            if len(kids) == 1 and _text(kids[0]) in ("@", "*"):
                return [ARGS]
            if len(kids) == 1 and kids[0].type == "subscript":
                base, *rest = kids[0].children
                name = _text(base)
                index = "".join(_text(r) for r in rest)
                items = self.arrays.get(name)
                if (
                    index in ("[@]", "[*]")
                    and items is not None
                    and self.array_inits.get(name) == 1
                    and name not in self.values
                ):
                    return [self.value(i) for i in items]
                return [_UNKNOWN_WORD]
        return [self.value(node)]

    # -- pass 2: reads, commands, Tekton syntax -------------------------------------------

    def collect_uses(self) -> None:
        # (node, inside arithmetic): carried down the walk rather than looked up per word.
        stack: list[tuple[tree_sitter.Node, bool]] = [(self.tree.root_node, False)]
        while stack:
            node, arith = stack.pop()
            t = node.type
            if t == "command_substitution" and _heredoc_arithmetic(node):
                self._reparse_arithmetic(node)
                continue
            children = node.children
            if t in _ARITH_NODES or (
                t == "compound_statement" and children and children[0].type == "(("
            ):
                inner = True
            elif t in _NON_ARITH_NODES:
                inner = False
            else:
                inner = arith
            stack.extend((c, inner) for c in reversed(children))
            if t == "ERROR":
                if not (_text(node).endswith("#") and _text(node)[:-1].isdigit()):
                    self.script.unparsed.append(_pos(node))
            elif t == "simple_expansion":
                name = node.children[-1]
                if name.type == "variable_name" and not _text(name).isdigit():
                    self._read(_text(name), node, "plain")
            elif t == "expansion":
                self._expansion(node)
            elif t == "command_substitution":
                m = _TEKTON_REF.match(_text(node))
                if m:
                    line, col = _pos(node)
                    self.script.tekton_refs.append(TektonRef(m.group(0), line, col))
            elif arith and t in ("variable_name", "word") and self._arith_operand(node):
                self._read(_text(node), node, "plain")
            elif t == "command":
                words: list[Alternatives] = []
                head = next((c for c in node.children if c.type == "command_name"), None)
                if head is None:
                    continue
                words.extend(self.argument_words(head.children[0] if head.children else head))
                for a in _arguments(node):
                    words.extend(self.argument_words(a))
                line, col = _pos(head)
                self.script.commands.append(Command(words, line, col, _function_of(node)))

    def _reparse_arithmetic(self, node: tree_sitter.Node) -> None:
        """tree-sitter-bash reads `$((...))` inside a heredoc body as `$( (...) )`: parse the
        expansion on its own and place its reads back at the heredoc's line and column."""
        line, col = _pos(node)
        inner = parse(b"_=" + (node.text or b"") + b"\n")
        for r in inner.reads:
            at_col = col + r.column - 3 if r.line == 1 else r.column
            self.script.reads.append(Read(r.name, line + r.line - 1, at_col, r.mode))

    def _arith_operand(self, node: tree_sitter.Node) -> bool:
        """A bare name read in arithmetic: `((a < B))`, `$((n + 1))`, `for ((i=0; i<N; i++))`."""
        if not _NAME.match(_text(node)):
            return False
        parent = node.parent
        if parent is None or parent.type in ("subscript", "expansion", "simple_expansion"):
            return False
        if parent.type == "variable_assignment" and node == parent.children[0]:
            return False
        if parent.type == "binary_expression":
            op = parent.child_by_field_name("operator")
            if op is not None and _text(op) == "=" and parent.child_by_field_name("left") == node:
                return False
        return True

    def _expansion(self, node: tree_sitter.Node) -> None:
        kids = [c for c in node.children if c.type not in ("${", "}")]
        if not kids:
            return
        first = kids[0]
        # ${!name} reads name (the variable it names is unknown here); ${#X} reads X.
        if first.type in {"!", "#"}:
            kids = kids[1:]
            if not kids:
                return
            first = kids[0]
        if first.type == "subscript":
            first = first.children[0]
        if first.type != "variable_name" or _text(first).isdigit():
            return
        op = _text(kids[1]) if len(kids) > 1 else ""
        mode = (
            "default"
            if op in _DEFAULT_OPS
            else "assign-default"
            if op in _ASSIGN_OPS
            else "required"
            if op in _REQUIRED_OPS
            else "plain"
        )
        self._read(_text(first), node, mode)

    def _read(self, name: str, node: tree_sitter.Node, mode: str) -> None:
        line, col = _pos(node)
        self.script.reads.append(Read(name, line, col, mode, _own_assignment(node, name)))


def _heredoc_arithmetic(node: tree_sitter.Node) -> bool:
    p = node.parent
    return (
        p is not None
        and p.type == "heredoc_body"
        and (node.text or b"").startswith(b"$((")
        and (node.text or b"").endswith(b"))")
    )


def _own_assignment(node: tree_sitter.Node, name: str) -> bool:
    p = node.parent
    while p is not None and p.type not in ("command", "program"):
        if p.type == "variable_assignment":
            target = p.children[0] if p.children else None
            return target is not None and _text(target) == name
        p = p.parent
    return False


def _function_of(node: tree_sitter.Node) -> str | None:
    p = node.parent
    while p is not None:
        if p.type == "function_definition":
            name = p.child_by_field_name("name")
            return _text(name) if name is not None else None
        p = p.parent
    return None


def _strip_runner(words: list[Alternatives]) -> list[Alternatives]:
    while words:
        first = literal(words[0])
        if first in _RUNNERS:
            words = words[1:]
            while words and (literal(words[0]) or "").startswith("-"):
                words = words[1:]
        elif first == "timeout":
            words = words[1:]
            while words and (literal(words[0]) or "").startswith("-"):
                flag = literal(words[0]) or ""
                words = words[2:] if flag in ("-s", "-k", "--signal", "--kill-after") else words[1:]
            words = words[1:]  # the duration
        else:
            return words
    return words


def _expand(cmd: Command, templates: dict[str, list[Command]], depth: int) -> list[Command]:
    words = _strip_runner(cmd.words)
    name = literal(words[0]) if words else None
    if name is None or name not in templates or depth > 4:
        return [Command(words, cmd.line, cmd.column, cmd.function)] if words else []
    out: list[Command] = []
    for t in templates[name]:
        i = t.words.index(ARGS)
        body = [*t.words[:i], *words[1:], *t.words[i + 1 :]]
        out.extend(_expand(Command(body, cmd.line, cmd.column, cmd.function), templates, depth + 1))
    return out


def _concat(parts: list[Alternatives]) -> Alternatives:
    out: set[str] = {""}
    for alts in parts:
        out = {a + b for a in out for b in alts}
        if len(out) > MAX_ALTERNATIVES:
            return _UNKNOWN_WORD
    # Adjacent unknown parts are one unknown part.
    return frozenset(re.sub(UNKNOWN + "+", UNKNOWN, s) for s in out)


def _shebang_nounset(source: bytes) -> bool:
    first = source.split(b"\n", 1)[0]
    if not first.startswith(b"#!"):
        return False
    return any(re.match(rb"-[a-zA-Z]*u", w) for w in first.split()[1:])


def parse(source: str | bytes) -> Script:
    """The model of a script; never raises (unparsable parts are listed in `unparsed`)."""
    raw = source.encode("utf-8", "surrogateescape") if isinstance(source, str) else source
    analyzer = _Analyzer(raw)
    analyzer.collect_sets()
    analyzer.collect_uses()
    if not analyzer.script.nounset and _shebang_nounset(raw):
        analyzer.script.nounset = 1
    return analyzer.script


def literal(word: Alternatives) -> str | None:
    """The word's only value when it is fully known."""
    if len(word) == 1:
        (only,) = word
        if UNKNOWN not in only:
            return only
    return None
