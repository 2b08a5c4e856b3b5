"""Every place the release pipeline refuses something, found by what the code reports rather
than by how a refusal happens to be spelt (issue 17).

A refusal is anything that stops a playbook or a run and tells the user why. The walk finds,
in the pipeline's modules:
- every `raise` (of our error types or any other);
- every result given a refusing status: an assignment `x.status = <Enum>.<MEMBER>` or any call
  passing such a member (positionally or as a keyword: `Entry(name, Status.REFUSED, ...)`,
  `replace(entry, status=Status.REFUSED)`), where MEMBER is FAILED, REFUSED, SKIPPED or
  INVALID, whatever the enum;
- every error value set on a result: `x.error = <anything but None or "">`, so a refusal
  written as `result.error = "..."; return` is found;
- every exit path of the pipeline's commands: `return <non-zero>` (also inside `a if c else b`),
  `sys.exit(...)`, `raise SystemExit`; and what decides it: each name in a non-zero exit's
  condition that holds a call's result makes that function a *producer* of refusals, whose
  reported values (what it appends to the list it returns, what it returns) are sites in
  turn, followed through the local names they come from into the functions that compute them
  (plan's --forbid-generated-changes refusals: `out.append((path, why))` with
  `why = _not_registered_before(...)`).

Each site is a line `<module>.<function>: <what> <its first words>` (stable across edits that
do not change the refusal), so a catalogue can map each to the lint rule that reports it first.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

REFUSING_MEMBERS = {"FAILED", "REFUSED", "SKIPPED", "INVALID"}
# Enums whose members above mean a refusal (publish's Action, plan's Status, register's
# RegisterAction); an enum named otherwise is not a result status.
STATUS_ENUMS = {"Action", "Status", "RegisterAction"}


def literal(node: ast.AST) -> str:
    """The first words a refusal says (its first string constant), else its source."""
    parts: list[ast.AST] = [node]
    if isinstance(node, ast.Call):
        parts = [*node.args, *(k.value for k in node.keywords)]
    for part in parts:
        for c in ast.walk(part):
            if (
                isinstance(c, ast.Constant)
                and isinstance(c.value, str)
                and re.search(r"[a-z]{3}", c.value)
            ):
                return c.value.strip()[:40]
    return ast.unparse(parts[-1])[:40] if parts else ""


def _refusing_member(node: ast.AST) -> str | None:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in STATUS_ENUMS
        and node.attr in REFUSING_MEMBERS
    ):
        return f"{node.value.id}.{node.attr}"
    return None


def _is_nothing(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in (None, "", 0, False)


def _nonzero_exit(node: ast.AST | None) -> bool:
    """A `return` value that can be a non-zero exit code."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int) and not isinstance(node.value, bool) and node.value != 0
    if isinstance(node, ast.IfExp):
        return _nonzero_exit(node.body) or _nonzero_exit(node.orelse)
    return False


@dataclass
class _Function:
    module: str
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef

    @property
    def where(self) -> str:
        return f"{self.module}.{self.qualname}"


@dataclass
class _Index:
    functions: dict[str, list[_Function]] = field(default_factory=dict)  # by bare name

    def add(self, fn: _Function) -> None:
        self.functions.setdefault(fn.node.name, []).append(fn)


def _functions(module: str, tree: ast.Module) -> Iterable[_Function]:
    def walk(node: ast.AST, stack: list[str]) -> Iterable[_Function]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield _Function(module, ".".join([*stack, child.name]), child)
                yield from walk(child, [*stack, child.name])
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, [*stack, child.name])

    yield from walk(tree, [])


def _own_nodes(fn: ast.AST) -> Iterable[ast.AST]:
    """The nodes of a function's body, not those of functions nested in it (they are walked
    as functions of their own)."""
    todo = list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def _called_name(call: ast.AST) -> str | None:
    if isinstance(call, ast.Call):
        if isinstance(call.func, ast.Name):
            return call.func.id
        if isinstance(call.func, ast.Attribute):
            return call.func.attr
    return None


def _assignments(fn: ast.AST) -> dict[str, list[ast.AST]]:
    """Local name -> the values assigned to it in the function."""
    out: dict[str, list[ast.AST]] = {}
    for node in _own_nodes(fn):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
        elif (
            isinstance(node, (ast.AnnAssign, ast.AugAssign))
            and node.value is not None
            and isinstance(node.target, ast.Name)
        ):
            out.setdefault(node.target.id, []).append(node.value)
    return out


def _direct_sites(fn: _Function, exit_paths: bool, fallbacks: set[str]) -> Iterable[str]:
    where = fn.where
    for node in _own_nodes(fn.node):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc
            name = ast.unparse(exc.func if isinstance(exc, ast.Call) else exc)
            if name.rpartition(".")[2] in fallbacks:
                continue  # caught by the pipeline, which goes another way: not a refusal
            if exit_paths and name == "SystemExit":
                yield f"{where}: exit {literal(exc)!r}"
            else:
                yield f"{where}: raise {name} {literal(exc)!r}"
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if not isinstance(target, ast.Attribute):
                    continue
                member = _refusing_member(node.value)
                if target.attr == "status" and member:
                    yield f"{where}: status = {member}"
                elif target.attr == "error" and not _is_nothing(node.value):
                    yield f"{where}: error = {literal(node.value)!r}"
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if _called_name(node) == "with_status":
                continue  # a lookup of the entries with that status, not a refusal
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                member = _refusing_member(arg)
                if member:
                    yield f"{where}: {func}({member}) {literal(node)!r}"
            if exit_paths and func == "sys.exit":
                yield f"{where}: exit {literal(node)!r}"
        elif exit_paths and isinstance(node, ast.Return) and _nonzero_exit(node.value):
            yield f"{where}: exit {ast.unparse(node.value)[:40]!r}"


def _exit_conditions(fn: ast.AST) -> list[ast.AST]:
    """The conditions under which a command returns non-zero (`return 1 if c else 0`), and the
    guards of `if c: return 1`."""
    out: list[ast.AST] = []
    for node in _own_nodes(fn):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.IfExp):
            if _nonzero_exit(node.value.body) or _nonzero_exit(node.value.orelse):
                out.append(node.value.test)
        elif isinstance(node, ast.If) and any(
            isinstance(s, ast.Return) and _nonzero_exit(s.value) for s in node.body
        ):
            out.append(node.test)
    return out


def _producer_sites(fn: _Function, index: _Index, seen: set[str]) -> Iterable[str]:
    """What a producer of refusals reports: the values it appends to the list it returns,
    and what it returns; followed into the functions those values are computed by."""
    if fn.where in seen:
        return
    seen.add(fn.where)
    assigned = _assignments(fn.node)
    returned_names = {
        n.value.id
        for n in _own_nodes(fn.node)
        if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)
    }
    values: list[ast.AST] = []
    for node in _own_nodes(fn.node):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("append", "extend")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in returned_names
            and node.args
        ):
            values.append(node.args[0])
        elif (
            isinstance(node, ast.Return)
            and node.value is not None
            and not _is_nothing(node.value)
            and not (isinstance(node.value, ast.Name) and node.value.id in returned_names)
            and not (isinstance(node.value, (ast.List, ast.Tuple)) and not node.value.elts)
        ):
            values.append(node.value)
    for value in values:
        yield f"{fn.where}: reports {literal(value)!r}"
        yield from _follow(value, assigned, index, seen)


def _heads(node: ast.AST) -> list[ast.AST]:
    """What a value directly is made of: names and function calls, through tuples, boolean
    operators, `not`, subscripts, attributes and method calls on it (`stale[1].replace(...)`:
    `stale`), never what is only interpolated into a message or passed as an argument."""
    if isinstance(node, ast.Name):
        return [node]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [h for e in node.elts for h in _heads(e)]
    if isinstance(node, ast.BoolOp):
        return [h for v in node.values for h in _heads(v)]
    if isinstance(node, ast.UnaryOp):
        return _heads(node.operand)
    if isinstance(node, ast.IfExp):
        return _heads(node.body) + _heads(node.orelse)
    if isinstance(node, (ast.Attribute, ast.Subscript)):
        return _heads(node.value)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            return _heads(node.func.value)
        return [node]
    return []


def _follow(
    value: ast.AST,
    assigned: Mapping[str, list[ast.AST]],
    index: _Index,
    seen: set[str],
    depth: int = 0,
) -> Iterable[str]:
    """The producers behind a reported value: the functions whose results it is made of,
    directly or through the local names that hold them."""
    if depth > 5:
        return
    for head in _heads(value):
        if isinstance(head, ast.Name):
            for held in assigned.get(head.id, []):
                yield from _follow(held, assigned, index, seen, depth + 1)
            continue
        for callee in index.functions.get(_called_name(head) or "", []):
            yield from _producer_sites(callee, index, seen)


def refusal_sites(
    modules: Mapping[str, str], commands: Iterable[str] = (), fallbacks: Iterable[str] = ()
) -> set[str]:
    """Every refusal site of `modules` (module name -> source); the modules named in
    `commands` are command-line layers whose non-zero exits count, with what decides them;
    `fallbacks` names exceptions the pipeline catches to take another way (assemble's Refused:
    the engine builds instead), whose raises are not refusals."""
    commands = set(commands)
    fallback_names = set(fallbacks)
    index = _Index()
    parsed = {name: ast.parse(source) for name, source in modules.items()}
    fns = [fn for name, tree in parsed.items() for fn in _functions(name, tree)]
    for fn in fns:
        index.add(fn)
    out: set[str] = set()
    seen: set[str] = set()
    for fn in fns:
        out.update(_direct_sites(fn, fn.module in commands, fallback_names))
        if fn.module not in commands:
            continue
        assigned = _assignments(fn.node)
        for condition in _exit_conditions(fn.node):
            out.update(_follow(condition, assigned, index, seen))
    return out
