"""Lint and the builder agree on every flag: each Containerfile below (a RUN step, so the engine
builds it) is built by the real engine, and lint's playbook.builder-flag verdict is held to the
outcome: a flag lint accepts builds, a flag lint refuses fails the build there."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbookctl import build
from playbookctl.errors import BuildError
from playbookctl.lint import builder
from playbookctl.lint.network import Step
from playbookctl.lint.playbook import parse_containerfile
from playbookctl_dev.registry import LocalRegistry

pytestmark = pytest.mark.integration

D = "sha256:" + "a" * 64
# (what follows `FROM <base>\nRUN true\n`, whether the classic builder takes it)
CASES: list[tuple[str, bool]] = [
    ("COPY --chown=1:1 f /f\n", True),
    # Names are matched exactly, and a flag is given once: "Unknown flag: Chown", "Duplicate
    # flag specified: chown" (BuildKit says the same: test_assemble_oracle).
    ("COPY --Chown=1:1 f /f\n", False),
    ("COPY --chown=1:1 --chown=1:1 f /f\n", False),
    ("HEALTHCHECK --INTERVAL=5s CMD true\n", False),
    ("COPY --chmod=0755 f /f\n", False),
    ("ADD --chown=1:1 f /f\n", True),
    ("ADD --chmod=0755 f /f\n", False),
    ("COPY --link f /f\n", False),
    ("COPY --parents f /f\n", False),
    (f"ADD --checksum={D} f /f\n", False),
    ("RUN --mount=type=cache,target=/c true\n", False),
    ("RUN --network=none true\n", False),
    ("HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=2 CMD true\n", True),
    ("HEALTHCHECK --start-interval=1s CMD true\n", False),
    ("FROM {base} AS second\nCOPY --from=0 /bin/sh /x\n", True),
    ("RUN <<EOF\ntrue\nEOF\n", False),
    ("COPY <<EOF /f\nx\nEOF\n", False),
    ("RUN echo '<<' x >/dev/null\n", True),
    # `<<` inside a word or quoted opens no heredoc (BuildKit's reading; the classic builder
    # reads none): no finding.
    ('RUN echo "a<<b" >/dev/null\n', True),
]


@pytest.mark.parametrize(("tail", "builds"), CASES, ids=[c[0].split("\n")[0] for c in CASES])
def test_lint_and_the_classic_builder_agree(
    docker_engine: str,
    base_image: str,
    registry: LocalRegistry,
    tmp_path: Path,
    tail: str,
    builds: bool,
) -> None:
    text = f"FROM {base_image}\nRUN true\n" + tail.format(base=base_image)
    (tmp_path / "Containerfile").write_text(text)
    (tmp_path / "f").write_text("x\n")
    cf = parse_containerfile(text, "Containerfile")
    steps = [Step(i.keyword, i.args, i.line) for i in cf.instructions]
    findings = builder.check(steps, text, "auto")
    outcome: str | None = None
    with build.Engine(docker_engine) as engine:
        try:
            engine.build(tmp_path, tag=f"{registry.host}/builder-agreement/x:1")
        except BuildError as exc:
            outcome = str(exc)
    # The engine is the oracle; lint must say exactly what it does.
    assert (outcome is None) == builds, outcome
    assert (not findings) == builds, findings


def test_a_run_less_containerfile_keeps_chmod(tmp_path: Path) -> None:
    """Assembled without an engine, where --chmod works: no finding (and the assembled image's
    mode is the oracle test's business: tests/integration/test_assemble_oracle.py)."""
    text = f"FROM r/b:1@{D}\nCOPY --chmod=0755 f /f\n"
    cf = parse_containerfile(text, "Containerfile")
    steps = [Step(i.keyword, i.args, i.line) for i in cf.instructions]
    assert builder.check(steps, text, "auto") == []
    (finding,) = builder.check(steps, text, "never")
    assert finding.message.startswith(
        "COPY --chmod needs BuildKit, and the engine's classic builder builds this playbook "
        "(the assemble setting is never), which refuses it: commit the file with its mode"
    )
