"""What a Containerfile takes from the network at build time, judged (`playbook.add-url`,
`playbook.copy-from-pinned`, `playbook.run-download`).

Real workflow images need the network (Kubernaut's demo images `microdnf install` packages and
`curl` kubectl), so these rules do not forbid it: they require that what arrives is the bytes
the author reviewed. An `ADD <url>` is fetched with no check at all (and `ADD --checksum` needs
BuildKit, which the engine path's classic builder is not), an image named by tag in
`COPY --from` is whatever the tag points at that day, and a download in a RUN step is only as
good as the checksum check after it. RUN steps are read with the project's shell parser
(lint/shell.py, tree-sitter-bash), never with regular expressions.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from playbookctl.dockerfile import flag_value, split_flags
from playbookctl.lint import shell

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}\Z")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
# A source ADD fetches rather than copies: a URL, or a git repository (BuildKit's ADD <git ref>).
_REMOTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@)")
# Programs that fetch a URL.
DOWNLOADERS = frozenset(("curl", "wget", "aria2c", "fetch", "axel"))
# Programs that check what was fetched: `<digest>sum -c`, `shasum -c`, a signature check.
_SUMS = frozenset(
    ("sha256sum", "sha512sum", "sha384sum", "sha224sum", "sha1sum", "b2sum", "shasum", "cksum")
)
_CHECK_FLAGS = frozenset(("-c", "--check"))


@dataclass(frozen=True)
class NetworkFinding:
    rule: str
    line: int
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Step:
    """One instruction as the lint parser reads it: KEYWORD (upper case), its arguments with
    continuation lines joined, its first line."""

    keyword: str
    args: str
    line: int


def _sources(rest: str) -> list[str]:
    """COPY/ADD sources (the destination dropped), JSON or shell form."""
    words: list[str] | None = None
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            words = list(value)
    if words is None:
        words = rest.split()
    return words[:-1]


def _expand(value: str, args: dict[str, str]) -> str:
    return _VAR.sub(lambda m: args.get(m.group(1) or m.group(2), m.group(0)), value)


def check(steps: Sequence[Step], args: dict[str, str]) -> list[NetworkFinding]:
    """Findings about the network inputs of a Containerfile's instructions. args: the build
    arguments' defaults (a `COPY --from=$IMAGE` is judged by its default)."""
    out: list[NetworkFinding] = []
    stages: list[str] = []  # stage names declared so far (lower case); index i is stage i
    run_blocks: list[tuple[Step, shell.Script]] = []  # RUN steps of the current stage
    for step in steps:
        if step.keyword == "FROM":
            out.extend(_downloads(run_blocks))
            run_blocks = []
            words = [w for w in step.args.split() if not w.startswith("--")]
            alias = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append(alias)
        elif step.keyword == "ADD":
            out.extend(_add(step))
        elif step.keyword == "COPY":
            out.extend(_copy_from(step, stages, args))
        elif step.keyword == "RUN":
            script = _run_script(step)
            if script is not None:
                run_blocks.append((step, script))
    out.extend(_downloads(run_blocks))
    return out


def _add(step: Step) -> Iterable[NetworkFinding]:
    flags, rest = split_flags(step.args)
    if flag_value(flags, "checksum") is not None:
        return
    for source in _sources(rest):
        if _REMOTE.match(source):
            yield NetworkFinding(
                "playbook.add-url",
                step.line,
                f"ADD {source} fetches from the network at build time with no checksum: the "
                "image gets whatever the server sends that day. Commit the file and COPY it, or "
                "download it in a RUN step and check it (curl -fsSLo f URL && echo "
                '"<sha256>  f" | sha256sum -c -)',
            )


def _copy_from(step: Step, stages: Sequence[str], args: dict[str, str]) -> Iterable[NetworkFinding]:
    flags, _ = split_flags(step.args)
    source = flag_value(flags, "from")
    if source is None:
        return
    value = _expand(source, args)
    if value.lower() in stages or (value.isdigit() and int(value) < len(stages)):
        return  # an earlier stage of this Containerfile
    if "$" in value:
        why = f"depends on a build argument without a default ({source})"
    elif _DIGEST.search(value):
        return
    else:
        why = f"names the image {value!r}, which is not pinned by digest"
    yield NetworkFinding(
        "playbook.copy-from-pinned",
        step.line,
        f"COPY --from {why}: the build pulls whatever the tag points at that day; name an "
        "earlier stage, or pin the image (image:tag@sha256:<64 hex>)",
    )


def _run_script(step: Step) -> shell.Script | None:
    flags, rest = split_flags(step.args)
    del flags  # --mount, --network: BuildKit's; playbook.builder-flag judges them
    if "<<" in rest:
        return None  # a heredoc's body is not in the instruction (hadolint reads it)
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            # The exec form: the words are the command (no shell); quoted for the parser.
            return shell.parse(shlex.join(value))
    return shell.parse(rest)


def _downloads(blocks: Sequence[tuple[Step, shell.Script]]) -> Iterable[NetworkFinding]:
    """A download in a RUN step of a stage with no checksum check in that step or a later RUN
    step of the same stage."""
    checked_from = None  # the index of the last RUN step that checks something
    for i, (_, script) in enumerate(blocks):
        if any(_is_check(c) for c in script.invocations()):
            checked_from = i
    for i, (step, script) in enumerate(blocks):
        if checked_from is not None and checked_from >= i:
            continue
        for command in script.invocations():
            name = _name(command)
            if name in DOWNLOADERS and _fetches(command):
                yield NetworkFinding(
                    "playbook.run-download",
                    step.line,
                    f"RUN downloads with {name} and nothing checks what arrived (no "
                    "sha256sum -c, or other checksum or signature check, in this or a later RUN "
                    "step of the stage): pin the bytes, e.g. "
                    '&& echo "<sha256>  FILE" | sha256sum -c -',
                    warning=True,
                )
                break


def _name(command: shell.Command) -> str | None:
    name = shell.literal(command.words[0]) if command.words else None
    return name.rsplit("/", 1)[-1] if name else None


def _fetches(command: shell.Command) -> bool:
    """A URL among the arguments, or an argument that is not known statically (a variable URL);
    `curl --version` is no download."""
    for word in command.words[1:]:
        for alt in word:
            if "://" in alt or alt.startswith(shell.UNKNOWN):
                return True
    return False


def _is_check(command: shell.Command) -> bool:
    name = _name(command)
    words = [shell.literal(w) or "" for w in command.words[1:]]
    if name in _SUMS:
        return any(
            w in _CHECK_FLAGS or (w.startswith("-") and not w.startswith("--") and "c" in w)
            for w in words
        )
    if name in ("gpg", "gpgv"):
        return name == "gpgv" or "--verify" in words
    if name == "cosign":
        return bool(words) and words[0].startswith("verify")
    if name == "minisign":
        return "-V" in words
    return False
