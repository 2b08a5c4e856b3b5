"""`playbook.builder-flag`: lint and the builder that will build the playbook agree on every
flag.

A playbook's image is made one of two ways (README, "What is assembled and what is built"):
assembled without an engine (assemble.py, RUN-less Containerfiles: `--chown` and `--chmod` work
there), or built by the engine, which on this project's engine (Docker 20.10, the API build
endpoint) is the classic builder, not BuildKit. The classic builder refuses every BuildKit flag:
`COPY --chmod` with "the --chmod option requires BuildKit", `RUN --mount` with "Unknown flag:
mount", and reads no heredoc. So a flag is judged by the builder that will actually build this
playbook, which is decided by the same function publish uses (assemble.plan) and the
`assemble` setting. tests/integration/test_builder_agreement.py holds the list to the real
engine: every flag this module accepts builds, every one it refuses fails there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from playbookctl import assemble
from playbookctl.dockerfile import heredocs, split_flags
from playbookctl.lint.network import Step

# The flags Docker 20.10's classic builder accepts, by instruction (moby builder/dockerfile,
# and the instruction parser it vendors): any other flag fails the build.
CLASSIC_FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset(("platform",)),
    "COPY": frozenset(("from", "chown")),
    "ADD": frozenset(("chown",)),
    "HEALTHCHECK": frozenset(("interval", "timeout", "start-period", "retries")),
}
# What to do instead, for the BuildKit flags authors reach for.
_INSTEAD = {
    "chmod": (
        "commit the file with its mode instead (git update-index --chmod=+x FILE; the build "
        "context keeps git's executable bit), or chmod it in a RUN step"
    ),
    "checksum": "download it in a RUN step and check it (sha256sum -c)",
    "mount": "copy what the step needs into an earlier stage or the context",
    "network": "the network of RUN steps is the hermetic setting's (publish), not the file's",
    "link": "drop it (the classic builder copies into the previous layer's filesystem)",
}


@dataclass(frozen=True)
class BuilderFinding:
    line: int
    message: str


def engine_reason(text: str, assemble_setting: str) -> str | None:
    """Why the engine builds this Containerfile (None: it is assembled without one). The same
    decision publish makes before it reads the base; a refusal found only there (the base's
    ONBUILD triggers, a destination crossing a link in the base) cannot be seen by lint."""
    if assemble_setting == "never":
        return "the assemble setting is never"
    try:
        assemble.plan(text)
    except assemble.Refused as exc:
        return str(exc)
    return None


def check(steps: Sequence[Step], text: str, assemble_setting: str) -> list[BuilderFinding]:
    why = engine_reason(text, assemble_setting)
    if why is None:
        return []
    builder = f"the engine's classic builder builds this playbook ({why})"
    out: list[BuilderFinding] = []
    for step in steps:
        flags, _ = split_flags(step.args)
        allowed = CLASSIC_FLAGS.get(step.keyword, frozenset())
        seen: set[str] = set()
        for flag in flags:
            name = flag[2:].partition("=")[0]
            # What every builder refuses, BuildKit too (assemble.builder_flags).
            if name != name.lower():
                out.append(
                    BuilderFinding(
                        step.line,
                        f'{step.keyword} --{name}: every builder refuses it ("Unknown flag: '
                        f'{name}": flag names are matched exactly): write --{name.lower()}',
                    )
                )
                continue
            if name in seen and name != "mount":
                out.append(
                    BuilderFinding(
                        step.line,
                        f"{step.keyword} --{name} is given twice: every builder refuses it "
                        f'("Duplicate flag specified: {name}"): keep one',
                    )
                )
                continue
            seen.add(name)
            if name in allowed:
                continue
            instead = _INSTEAD.get(name, "drop it")
            out.append(
                BuilderFinding(
                    step.line,
                    f"{step.keyword} --{name} needs BuildKit, and {builder}, which refuses it: "
                    f"{instead}",
                )
            )
        # A heredoc where BuildKit finds one (dockerfile.heredocs), not any `<<`.
        if step.keyword in ("RUN", "COPY", "ADD") and heredocs(step.keyword, step.args):
            out.append(
                BuilderFinding(
                    step.line,
                    f"a heredoc ({step.keyword} <<) needs BuildKit, and {builder}, which reads "
                    "its lines as instructions: write the commands inline, or put the file in "
                    "the context",
                )
            )
    return out
