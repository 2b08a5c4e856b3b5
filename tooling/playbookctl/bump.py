"""`playbookctl bump NAME [patch|minor|major]`: raise spec.version in workflow.yaml, in place.

Only the version's characters change: ruamel.yaml's round-trip loader finds where the
`spec.version` scalar starts (line and column), the scalar's extent is read from the text there
(quoted or plain), and just those bytes are replaced. Comments, quoting, key order, blank lines,
line endings and everything else stay byte-for-byte as they were; the file is replaced through
a temp file and a rename, so a killed bump leaves the old file or the new one.

Semver rules as `npm version` applies them: patch 1.2.3 -> 1.2.4, minor -> 1.3.0, major ->
2.0.0; a pre-release is first released (1.3.0-rc.1: patch -> 1.3.0, minor -> 1.3.0 as well,
major -> 2.0.0).

A version is never bumped onto one registry/ registered already: when workflow.yaml holds a
version lower than the one registry/workflows/NAME.yaml registers (0.1.0 under 0.1.1), the step
is taken from the registered one (0.1.2), so the "bump the version" advice cannot lead back to a
version registered with other content.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from playbookctl.config import Config
from playbookctl.errors import FatalError, UsageError
from playbookctl.playbook import name_argument_problem

PARTS = ("patch", "minor", "major")
_SEMVER = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$"
)


@dataclass(frozen=True)
class Bumped:
    file: str  # as shown to the user, relative to the root
    old: str
    new: str
    past: str | None = None  # the registered version the step was taken from, when higher


def bump_command(name: str, part: str = "patch") -> str:
    """The exact command the `bump the version` refusals print."""
    return f"playbookctl bump {name} {part}"


def version_problem(version: str) -> str | None:
    """What lint says of spec.version `version` (its workflow.version findings), or None: bump
    refuses exactly the versions lint refuses, in lint's words (01.2.3 and 1.2.3-alpha.01 alike,
    SemVer 2.0 rules 2 and 9)."""
    from playbookctl.lint.workflow import check_workflow  # noqa: PLC0415 - lint imports bump
    from playbookctl.load import Document  # noqa: PLC0415

    doc = Document(file="workflow.yaml", data={"spec": {"version": version}})
    findings = check_workflow(doc, action_types=None, expected_name=None)
    return next((f.message for f in findings if f.rule == "workflow.version"), None)


def next_version(version: str, part: str) -> str:
    problem = version_problem(version)
    if problem is not None:
        raise FatalError(problem)
    m = _SEMVER.match(version)
    if m is None:
        raise FatalError(f"spec.version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    major, minor, patch = int(m["major"]), int(m["minor"]), int(m["patch"])
    pre = m["pre"] is not None
    if part == "major":
        return f"{major}.0.0" if pre and minor == 0 and patch == 0 else f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor}.0" if pre and patch == 0 else f"{major}.{minor + 1}.0"
    if part == "patch":
        return f"{major}.{minor}.{patch}" if pre else f"{major}.{minor}.{patch + 1}"
    raise UsageError(f"{part!r}: expected one of {', '.join(PARTS)}")


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]] | None:
    """A sort key in SemVer 2.0 precedence (rule 11), or None for what is not semver."""
    m = _SEMVER.match(version)
    if m is None:
        return None
    # A release sorts after its pre-releases; numeric identifiers before alphanumeric ones.
    pre = tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in (m["pre"] or "").split(".") if p
    )
    return int(m["major"]), int(m["minor"]), int(m["patch"]), 0 if pre else 1, pre


def registered_version(config: Config, name: str) -> str | None:
    """The version registry/workflows/NAME.yaml registers in this tree, or None (absent,
    unreadable or not semver: lint's findings say what is wrong with it)."""
    from playbookctl.register import WORKFLOWS, parse_registration  # noqa: PLC0415 - cycle

    try:
        text = (config.registry_dir / WORKFLOWS / f"{name}.yaml").read_bytes()
    except OSError:
        return None
    reg = parse_registration(text, name)
    if reg is None or semver_key(reg.version) is None:
        return None
    return reg.version


def step_base(version: str, registered: str | None) -> str:
    """The version a bump steps from: `version`, or the registered one when it is higher."""
    mine, theirs = semver_key(version), semver_key(registered or "")
    if mine is not None and theirs is not None and theirs > mine:
        return registered or version
    return version


def bump_advice(config: Config, name: str, version: str) -> str:
    """The `bump` command a refusal of `version` prints, and the free version it gives: past
    the highest of `version` and the version registry/ registers."""
    base = step_base(version, registered_version(config, name))
    return bump_advice_from(name, base, registered=base != version)


def bump_advice_from(name: str, base: str, *, registered: bool = True) -> str:
    """`playbookctl bump NAME patch (gives X...)`, X the patch step from `base`."""
    command = bump_command(name)
    try:
        target = next_version(base, "patch")
    except FatalError:
        return command
    if registered:
        return f"{command} (gives {target}: past {base}, the registered version)"
    return f"{command} (gives {target})"


def _version_span(text: str, display: str) -> tuple[int, int, int]:
    """(start, end, 1-based line) of the spec.version scalar's *content* in text."""
    from ruamel.yaml import YAML  # noqa: PLC0415 - only bump needs the round-trip loader
    from ruamel.yaml.error import YAMLError  # noqa: PLC0415

    yaml = YAML(typ="rt")
    try:
        docs = list(yaml.load_all(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FatalError(f"{display}{where}: not valid YAML ({problem}); nothing changed") from None
    workflow = next(
        (d for d in docs if hasattr(d, "get") and d.get("kind") == "RemediationWorkflow"), None
    )
    if workflow is None:
        raise FatalError(f"{display}: no RemediationWorkflow document; nothing changed")
    spec = workflow.get("spec")
    if not hasattr(spec, "lc") or "version" not in spec:
        raise FatalError(f"{display}: the RemediationWorkflow has no spec.version; nothing changed")
    line, col = spec.lc.value("version")
    # ruamel counts lines by "\n" (a "\r\n" line keeps its "\r" at the end: no shift).
    offset = sum(len(chunk) + 1 for chunk in text.split("\n")[:line]) + col
    quote = text[offset] if text[offset] in "\"'" else ""
    if quote:
        end = text.find(quote, offset + 1)
        if end < 0 or "\n" in text[offset:end] or "\\" in text[offset:end]:
            raise FatalError(f"{display}:{line + 1}: spec.version is not a one-line simple string")
        return offset + 1, end, line + 1
    # The value as written after the key: for an alias (`version: *v`) ruamel's position is
    # the anchor's, elsewhere in the file.
    kline, kcol = spec.lc.key("version")
    koffset = sum(len(chunk) + 1 for chunk in text.split("\n")[:kline]) + kcol
    written = re.compile(r"""["']?version["']?[ \t]*:\s*""").match(text, koffset)
    decorated = _decoration_problem(text, written.end() if written else offset, spec.get("version"))
    if decorated is not None:
        raise FatalError(f"{display}:{kline + 1}: {decorated}; nothing changed")
    m = re.compile(r"[^\s#]+").match(text, offset)
    if m is None or text[offset] in "|>{[":
        raise FatalError(f"{display}:{line + 1}: spec.version is not a plain or quoted scalar")
    return offset, m.end(), line + 1


def _decoration_problem(text: str, offset: int, value: object) -> str | None:
    """Why spec.version, starting at `offset`, cannot be edited in place because of an anchor
    (`&v "1.0.0"`), an alias (`*v`) or a tag (`!!str 1.0.0`) on it, or None. An anchored value
    may be read elsewhere through its alias and an alias's value is written elsewhere: raising
    the characters here would change, or not change, another field too."""
    word = re.compile(r"\S+").match(text, offset)
    token = word.group(0) if word else ""
    if not token or token[0] not in "&*!":
        return None
    shown = value if isinstance(value, str) else str(value)
    write = f'write spec.version as a plain quoted string: version: "{shown}"'
    if token[0] == "&":
        return (
            f"spec.version carries the YAML anchor {token}: bump edits only a plain or quoted "
            f"string; {write} (and write the value itself wherever the alias *{token[1:]} "
            "is used)"
        )
    if token[0] == "*":
        return (
            f"spec.version is the YAML alias {token}, its value written at the anchor "
            f"&{token[1:]}: bump edits only a plain or quoted string; {write}"
        )
    return (
        f"spec.version carries the YAML tag {token}: bump edits only a plain or quoted string; "
        f"{write}"
    )


def bump(config: Config, name: str, part: str = "patch") -> Bumped:
    """Raise playbooks/NAME/workflow.yaml's spec.version by `part`; nothing else changes."""
    if part not in PARTS:
        raise UsageError(f"{part!r}: expected one of {', '.join(PARTS)}")
    problem = name_argument_problem(config, name)
    if problem is not None:
        raise FatalError(problem)
    path = config.playbooks_dir / name / "workflow.yaml"
    display = f"playbooks/{name}/workflow.yaml"
    if not (config.playbooks_dir / name).is_dir():
        raise FatalError(f"no playbook {name}: {config.playbooks_dir / name} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FatalError(f"{display}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FatalError(f"{display}: not UTF-8 (byte {exc.start}); nothing changed") from None
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom) :]
    start, end, line = _version_span(body, display)
    old = body[start:end]
    base = step_base(old, registered_version(config, name))
    try:
        new = next_version(old, part)
        if base != old:
            new = next_version(base, part)
    except FatalError as exc:
        raise FatalError(f"{display}:{line}: {exc}; nothing changed") from None
    out = (bom + body[:start] + new + body[end:]).encode("utf-8")
    _replace(path, out)
    return Bumped(display, old, new, base if base != old else None)


def _replace(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=".bump-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
