"""The verdict cache of the external linters: real hadolint and shellcheck, real files.

A tool run is observed through a logging executable standing in the tool's place (it records
each lint run, then execs the real tool), so "served from the cache" means "no process ran".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playbookctl import cli
from playbookctl.findings import Finding, Severity
from playbookctl.lint import cache as lint_cache
from playbookctl.lint import external
from playbookctl.lint.cache import ResultCache, cache_root
from playbookctl.lint.external import find_binary, run_external
from playbookctl.lint.playbook import embedded_scripts
from playbookctl.load import load_text
from tests.unit.lint.test_external import TASK, logging_wrapper, write

SCRIPT = "#!/bin/sh\necho $1\n"
CONTAINERFILE = "FROM debian:latest\nUSER 1000\n"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PLAYBOOKCTL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / lint_cache.FORMAT


def runs(log: Path) -> int:
    """Lint runs the wrapper recorded."""
    return len(log.read_text().split()) if log.exists() else 0


def entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*/*.json")) if cache_dir.is_dir() else []


class Repo:
    """A Containerfile and a script, and both tools behind logging wrappers."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "repo"
        self.cf = write(self.root / "pb" / "Containerfile", CONTAINERFILE)
        self.sh = write(self.root / "pb" / "run.sh", SCRIPT, 0o755)
        self.logs = {t: tmp_path / f"{t}.log" for t in ("hadolint", "shellcheck")}
        self.binaries: dict[str, str | None] = {
            t: logging_wrapper(tmp_path, t, log) for t, log in self.logs.items()
        }

    def lint(self, **kwargs: object) -> list[tuple[str, str, int, int]]:
        found = run_external(
            [(self.cf, "pb/Containerfile")],
            [(self.sh, "pb/run.sh")],
            self.root,
            binaries=self.binaries,
            **kwargs,  # type: ignore[arg-type]
        )
        return sorted((f.rule, f.file, f.line, f.column) for f in found)

    def runs(self) -> dict[str, int]:
        return {t: runs(log) for t, log in self.logs.items()}


EXPECTED = [
    ("hadolint.DL3007", "pb/Containerfile", 1, 1),
    ("shellcheck.SC2086", "pb/run.sh", 2, 6),
]


def test_second_run_is_served_from_the_cache(tmp_path: Path, cache_dir: Path) -> None:
    repo = Repo(tmp_path)
    assert repo.lint() == EXPECTED
    assert repo.runs() == {"hadolint": 1, "shellcheck": 1}
    assert len(entries(cache_dir)) == 2
    external.reset_timings()
    assert repo.lint() == EXPECTED
    assert repo.runs() == {"hadolint": 1, "shellcheck": 1}  # no new process
    assert external.COUNTS["cache_hits"] == 2
    assert external.COUNTS["linted"] == 0


@pytest.mark.parametrize(
    ("change", "relinted", "expected"),
    [
        # The file's bytes.
        (lambda r, h, m: write(r.sh, '#!/bin/sh\necho "$1"\n'), "shellcheck", EXPECTED[:1]),
        (lambda r, h, m: write(r.cf, "FROM debian:latest\nUSER 1001\n"), "hadolint", EXPECTED),
        # The dialect: the same body under another shell.
        (lambda r, h, m: write(r.sh, "#!/bin/bash\necho $1\n"), "shellcheck", EXPECTED),
        # rc files shellcheck reads: next to the script, in a parent, the user's.
        (
            lambda r, h, m: write(r.root / "pb" / ".shellcheckrc", "disable=SC2086\n"),
            "shellcheck",
            EXPECTED[:1],
        ),
        (
            lambda r, h, m: write(r.root / "shellcheckrc", "disable=SC2086\n"),
            "shellcheck",
            EXPECTED[:1],
        ),
        (
            lambda r, h, m: write(h / ".shellcheckrc", "disable=SC2086\n"),
            "shellcheck",
            EXPECTED[:1],
        ),
        (
            lambda r, h, m: write(h / ".cache" / ".." / ".config" / "shellcheckrc", "enable=all\n"),
            "shellcheck",
            EXPECTED,
        ),
        # hadolint's configuration: the working directory's, the user's.
        (
            lambda r, h, m: write(r.root / ".hadolint.yaml", "ignored: [DL3007]\n"),
            "hadolint",
            EXPECTED[1:],
        ),
        (
            lambda r, h, m: write(h / ".config" / "hadolint.yaml", "ignored: [DL3007]\n"),
            "hadolint",
            EXPECTED[1:],
        ),
        # Environment the tools read.
        (
            lambda r, h, m: m.setenv("SHELLCHECK_OPTS", "-e SC2086"),
            "shellcheck",
            EXPECTED[:1],
        ),
        (
            lambda r, h, m: m.setenv("HADOLINT_IGNORE", "DL3007"),
            "hadolint",
            EXPECTED[1:],
        ),
    ],
)
def test_a_change_to_what_the_verdict_depends_on_is_a_miss(
    tmp_path: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: object,
    relinted: str,
    expected: list[tuple[str, str, int, int]],
) -> None:
    monkeypatch.delenv("SHELLCHECK_OPTS", raising=False)
    monkeypatch.delenv("HADOLINT_IGNORE", raising=False)
    repo = Repo(tmp_path)
    assert repo.lint() == EXPECTED
    home = Path(os.environ["HOME"])
    change(repo, home, monkeypatch)  # type: ignore[operator]
    assert repo.lint() == expected
    other = "hadolint" if relinted == "shellcheck" else "shellcheck"
    assert repo.runs() == {relinted: 2, other: 1}
    # The new verdict is cached in turn.
    assert repo.lint() == expected
    assert repo.runs() == {relinted: 2, other: 1}


def fake_version(tmp_path: Path, tool: str, version: str, log: Path) -> str:
    """The real tool, but reporting another version (as after an upgrade)."""
    real = find_binary(tool)
    path = write(
        tmp_path / f"bin-{version}" / tool,
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo "{tool} {version}"; exit 0; fi\n'
        f'echo "$#" >> "{log}"\nexec "{real}" "$@"\n',
        0o755,
    )
    return str(path)


def test_a_new_tool_version_is_a_miss(tmp_path: Path, cache_dir: Path) -> None:
    sh = write(tmp_path / "run.sh", SCRIPT, 0o755)
    log = tmp_path / "log"
    for version, expected_runs in [("1", 1), ("1", 1), ("2", 2), ("2", 2), ("1", 2)]:
        binaries: dict[str, str | None] = {
            "shellcheck": fake_version(tmp_path, "shellcheck", version, log)
        }
        found = run_external([], [(sh, "run.sh")], tmp_path, binaries=binaries)
        assert [f.rule for f in found] == ["shellcheck.SC2086"]
        assert runs(log) == expected_runs, version


def test_a_tool_without_a_version_is_not_cached(tmp_path: Path, cache_dir: Path) -> None:
    real = find_binary("shellcheck")
    log = tmp_path / "log"
    noversion = write(
        tmp_path / "bin" / "shellcheck",
        f'#!/bin/sh\n[ "$1" = --version ] && exit 1\necho "$#" >> "{log}"\nexec "{real}" "$@"\n',
        0o755,
    )
    sh = write(tmp_path / "run.sh", SCRIPT, 0o755)
    for expected_runs in (1, 2):
        found = run_external(
            [], [(sh, "run.sh")], tmp_path, binaries={"shellcheck": str(noversion)}
        )
        assert [f.rule for f in found] == ["shellcheck.SC2086"]
        assert runs(log) == expected_runs
    assert entries(cache_dir) == []


@pytest.mark.parametrize(
    "corrupt",
    [
        b"",
        b"\xff\xfe garbage",
        b'{"format": "lint-v1", "key": "',  # truncated
        b"[]",
        b'{"format": "lint-v0", "key": "KEY", "findings": []}',
        b'{"format": "lint-v1", "key": "another", "findings": []}',
        b'{"format": "lint-v1", "key": "KEY", "findings": {}}',
        b'{"format": "lint-v1", "key": "KEY", "findings": [["r", "fatal", 1, 1, "m"]]}',
        b'{"format": "lint-v1", "key": "KEY", "findings": [["r", "error", "1", 1, "m"]]}',
        b'{"format": "lint-v1", "key": "KEY", "findings": [["r", "error", 1]]}',
    ],
)
def test_a_corrupt_entry_is_a_miss_and_is_rewritten(
    tmp_path: Path, cache_dir: Path, corrupt: bytes
) -> None:
    repo = Repo(tmp_path)
    assert repo.lint() == EXPECTED
    for entry in entries(cache_dir):
        entry.write_bytes(corrupt.replace(b"KEY", entry.stem.encode()))
    assert repo.lint() == EXPECTED
    assert repo.runs() == {"hadolint": 2, "shellcheck": 2}
    for entry in entries(cache_dir):
        assert json.loads(entry.read_bytes())["key"] == entry.stem
    assert repo.lint() == EXPECTED
    assert repo.runs() == {"hadolint": 2, "shellcheck": 2}


def test_an_unreadable_entry_is_a_miss(tmp_path: Path, cache_dir: Path) -> None:
    repo = Repo(tmp_path)
    repo.lint()
    for entry in entries(cache_dir):
        entry.unlink()
        entry.mkdir()  # reading it fails (IsADirectoryError), so does replacing it
    assert repo.lint() == EXPECTED
    assert repo.runs() == {"hadolint": 2, "shellcheck": 2}


@pytest.mark.parametrize("how", ["argument", "env", "env-true"])
def test_a_disabled_cache_is_neither_read_nor_written(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    repo = Repo(tmp_path)
    repo.lint()  # filled
    kwargs: dict[str, object] = {}
    if how == "argument":
        kwargs["use_cache"] = False
    else:
        monkeypatch.setenv("PLAYBOOKCTL_NO_CACHE", "1" if how == "env" else "true")
    before = {p: p.read_bytes() for p in entries(cache_dir)}
    write(repo.sh, '#!/bin/sh\necho "$1" $2\n')
    for expected_runs in (2, 3):
        assert repo.lint(**kwargs) == [*EXPECTED[:1], ("shellcheck.SC2086", "pb/run.sh", 2, 11)]
        assert repo.runs() == {"hadolint": expected_runs, "shellcheck": expected_runs}
    assert {p: p.read_bytes() for p in entries(cache_dir)} == before


@pytest.mark.parametrize(
    ("argv", "env", "cached"),
    [
        ([], {}, True),
        (["--no-cache"], {}, False),
        ([], {"PLAYBOOKCTL_NO_CACHE": "1"}, False),
    ],
)
def test_lint_command_cache_switches(
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    cached: bool,
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    # The default location under the (test's own) XDG_CACHE_HOME.
    where = Path(os.environ["XDG_CACHE_HOME"]) / "playbookctl" / lint_cache.FORMAT
    assert cli.main(["-C", str(repo_root), "lint", "--format", "json", *argv]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert bool(entries(where)) is cached


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PLAYBOOKCTL_CACHE_DIR": "/x/pc", "XDG_CACHE_HOME": "/x/xdg"}, "/x/pc"),
        ({"XDG_CACHE_HOME": "/x/xdg"}, "/x/xdg/playbookctl"),
        ({"XDG_CACHE_HOME": ""}, "HOME/.cache/playbookctl"),
        ({"XDG_CACHE_HOME": "relative"}, "HOME/.cache/playbookctl"),  # as the XDG spec says
    ],
)
def test_cache_location(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert str(cache_root()) == expected.replace("HOME", os.environ["HOME"])


def test_embedded_script_findings_are_placed_afresh(tmp_path: Path, cache_dir: Path) -> None:
    log = tmp_path / "log"
    binaries: dict[str, str | None] = {"shellcheck": logging_wrapper(tmp_path, "shellcheck", log)}
    first = embedded_scripts(load_text(TASK, "task.yaml").documents[0], TASK)
    found = run_external([], [], tmp_path, binaries=binaries, embedded=first)
    assert runs(log) == 1
    assert len(entries(cache_dir)) == 3  # steps a, b, c
    # The same scripts further down, deeper indented, in another file.
    moved = "# a comment\n" * 3 + TASK.replace("\n    ", "\n      ").replace(
        "spec:\n  steps:", "spec:\n  description: x\n  steps:"
    )
    second = embedded_scripts(load_text(moved, "other.yaml").documents[0], moved)
    again = run_external([], [], tmp_path, binaries=binaries, embedded=second)
    assert runs(log) == 1  # every verdict from the cache
    assert sorted((f.rule, f.file, f.line, f.column) for f in found) == [
        ("shellcheck.SC2086", "task.yaml", 11, 14),
        ("shellcheck.SC2086", "task.yaml", 16, 14),
        ("shellcheck.SC2086", "task.yaml", 19, 15),
    ]
    assert sorted((f.rule, f.file, f.line, f.column) for f in again) == [
        ("shellcheck.SC2086", "other.yaml", 15, 16),
        ("shellcheck.SC2086", "other.yaml", 20, 16),
        ("shellcheck.SC2086", "other.yaml", 23, 17),
    ]
    assert moved.splitlines()[14][15:17] == "$1"
    assert moved.splitlines()[19][15:17] == "$2"
    assert moved.splitlines()[22][16:] == '"echo $3"'  # a quoted script: at its start


@pytest.mark.parametrize(
    ("text", "cached"),
    [
        ("#!/bin/sh\n. ./lib.sh\necho $1\n", False),
        ("#!/bin/bash\nsource lib.sh\n", False),
        ("#!/bin/sh\nset -e; . /etc/profile\n", False),
        ("#!/bin/sh\nif true; then . ./x; fi\n", False),
        ("#!/bin/sh\ncase $1 in a) . ./a ;; esac\n", False),
        ("#!/bin/sh\n# see lib.sh). Not sourced.\necho $1\n", True),
        ('#!/bin/sh\necho "done. next" . x\n', True),
        ("#!/bin/sh\nsourced=1\necho $sourced\n", True),
    ],
)
def test_a_script_that_sources_another_file_is_not_cached(
    tmp_path: Path, cache_dir: Path, text: str, cached: bool
) -> None:
    log = tmp_path / "log"
    binaries: dict[str, str | None] = {"shellcheck": logging_wrapper(tmp_path, "shellcheck", log)}
    sh = write(tmp_path / "run.sh", text, 0o755)
    first = run_external([], [(sh, "run.sh")], tmp_path, binaries=binaries)
    second = run_external([], [(sh, "run.sh")], tmp_path, binaries=binaries)
    assert first == second
    assert runs(log) == (1 if cached else 2)
    assert len(entries(cache_dir)) == (1 if cached else 0)


def test_a_failed_run_is_not_cached(tmp_path: Path, cache_dir: Path) -> None:
    broken = write(
        tmp_path / "bin" / "hadolint",
        '#!/bin/sh\n[ "$1" = --version ] && { echo "hadolint 9"; exit 0; }\necho boom >&2\n'
        "exit 3\n",
        0o755,
    )
    cf = write(tmp_path / "Containerfile", CONTAINERFILE)
    for _ in range(2):
        found = run_external(
            [(cf, "Containerfile")], [], tmp_path, binaries={"hadolint": str(broken)}
        )
        assert [f.rule for f in found] == ["hadolint.failed"]
    assert entries(cache_dir) == []


@pytest.mark.parametrize("blocker", ["file", "read-only"])
def test_an_unusable_cache_directory_only_means_no_caching(
    tmp_path: Path, cache_dir: Path, blocker: str
) -> None:
    if blocker == "file":
        write(cache_dir, "not a directory")
    else:
        cache_dir.mkdir(parents=True)
        cache_dir.chmod(0o500)
        if os.access(cache_dir, os.W_OK):  # root ignores permission bits
            write(cache_dir / "ab", "a file where a shard directory goes")
            for i in range(256):
                write(cache_dir / f"{i:02x}", "x")
    repo = Repo(tmp_path)
    try:
        assert repo.lint() == EXPECTED
        assert repo.lint() == EXPECTED
    finally:
        if cache_dir.is_dir():
            cache_dir.chmod(0o700)
    assert repo.runs() == {"hadolint": 2, "shellcheck": 2}


def test_identical_files_share_one_entry_and_one_run(tmp_path: Path, cache_dir: Path) -> None:
    log = tmp_path / "log"
    binaries: dict[str, str | None] = {"shellcheck": logging_wrapper(tmp_path, "shellcheck", log)}
    scripts = [
        (write(tmp_path / f"p{i}" / "run.sh", SCRIPT, 0o755), f"p{i}/run.sh") for i in range(3)
    ]
    found = run_external([], scripts, tmp_path, binaries=binaries)
    assert sorted(f.file for f in found) == ["p0/run.sh", "p1/run.sh", "p2/run.sh"]
    assert log.read_text().split() == ["3"]  # -f json1 and one file
    assert len(entries(cache_dir)) == 1


def test_prune_removes_the_least_recently_used(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c")
    keys = [f"{i:02x}" + "0" * 62 for i in range(20)]
    for i, key in enumerate(keys):
        cache.put(key, [Finding("r", Severity.WARNING, "", i + 1, 1, "m")])
        os.utime(cache._path(key), (1_000_000 + i, 1_000_000 + i))
    assert cache.get(keys[0]) is not None  # a hit makes the oldest the most recent
    assert cache.prune(max_entries=10) == 12  # down to 80% of the bound
    kept = [k for k in keys if cache._path(k).exists()]
    assert kept == [keys[0], *keys[13:]]
    assert cache.prune(max_entries=10) == 0
    assert cache.prune(max_entries=100, max_bytes=1) == 8  # the byte bound too


def test_an_oversized_entry_is_not_stored(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c")
    many = [Finding("r", Severity.WARNING, "", i, 1, "m" * 100) for i in range(20_000)]
    cache.put("ab" * 32, many)
    assert cache.get("ab" * 32) is None


WRITER = """
import sys
from playbookctl.findings import Finding, Severity
from playbookctl.lint.cache import ResultCache

cache = ResultCache(__import__("pathlib").Path(sys.argv[1]))
def value(k):
    return [Finding("rule", Severity.WARNING, "", k + 1, 2, "m" * (k * 50))]
bad = 0
for round in range(20):
    for k in range(30):
        key = f"{k:02x}" + "f" * 62
        cache.put(key, value(k))
        got = cache.get(f"{(k * 7) % 30:02x}" + "f" * 62)
        bad += got is not None and got != value((k * 7) % 30)
print(bad)
"""


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    env = {**os.environ, "PYTHONPATH": str(Path(external.__file__).parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert outputs == ["0", "0", "0", "0"]  # never a torn or wrong value
    cache = ResultCache(directory)
    for k in range(30):
        got = cache.get(f"{k:02x}" + "f" * 62)
        assert got == [Finding("rule", Severity.WARNING, "", k + 1, 2, "m" * (k * 50))]
    assert sorted(p.name for p in directory.rglob(".tmp-*")) == []


def test_cached_and_uncached_verdicts_are_equal(tmp_path: Path, cache_dir: Path) -> None:
    """Every kind of finding survives the round trip: severities, columns, messages."""
    texts = [
        "#!/bin/bash\nif [ x = y ]; then\n",
        '#!/bin/sh\nx=(1 2)\necho "$x"\n',
        '#!/bin/sh\necho $1 `date` "it\'s"\n',
    ]
    scripts = [(write(tmp_path / f"s{i}.sh", t, 0o755), f"s{i}.sh") for i, t in enumerate(texts)]
    cf = write(tmp_path / "Containerfile", "FROM\n")
    uncached = run_external([(cf, "Containerfile")], scripts, tmp_path, use_cache=False)
    filled = run_external([(cf, "Containerfile")], scripts, tmp_path)
    served = run_external([(cf, "Containerfile")], scripts, tmp_path)
    assert sorted(uncached) == sorted(filled) == sorted(served)
    assert {f.severity for f in served} == {Severity.ERROR, Severity.WARNING}
    assert len(entries(cache_dir)) == 4
