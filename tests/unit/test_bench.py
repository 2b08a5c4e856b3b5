"""The benchmark scripts' own behaviour (not their timings): `make bench`'s runner runs every
benchmark and fails at the end naming the ones that missed a target, and a count that is not
positive is a usage error before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "tooling" / "bench"


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, argv)], capture_output=True, text=True, check=False, timeout=120
    )


def test_every_benchmark_runs_and_the_missed_ones_are_named(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    scripts = []
    # Stand-ins for benchmarks: one meets its target, one misses it (exit 1), one crashes.
    for name, code in (("bench_a", 0), ("bench_b", 1), ("bench_c", 3), ("bench_d", 0)):
        script = tmp_path / f"{name}.py"
        script.write_text(
            f"import sys\nopen({str(ran)!r}, 'a').write({name!r} + '\\n')\nsys.exit({code})\n"
        )
        scripts.append(script)
    done = run(BENCH / "run_benches.py", *scripts)
    assert ran.read_text().split() == ["bench_a", "bench_b", "bench_c", "bench_d"]
    assert done.returncode == 1
    last = done.stdout.strip().splitlines()[-1]
    assert last == (
        "bench: 2 of 4 benchmarks missed a target or failed: "
        "bench_b.py (exit 1), bench_c.py (exit 3)"
    )


def test_the_runner_passes_when_every_benchmark_does(tmp_path: Path) -> None:
    script = tmp_path / "bench_ok.py"
    script.write_text("print('fine')\n")
    done = run(BENCH / "run_benches.py", script, script)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("fine") == 2
    assert done.stdout.strip().endswith("bench: all 2 benchmarks met their targets")


def test_the_runner_refuses_a_missing_benchmark_before_running_any(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    script = tmp_path / "bench_ok.py"
    script.write_text(f"open({str(ran)!r}, 'w')\n")
    done = run(BENCH / "run_benches.py", script, tmp_path / "bench_nope.py")
    assert done.returncode == 2
    assert "no such benchmark: " + str(tmp_path / "bench_nope.py") in done.stderr
    assert not ran.exists()


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("bench_assemble.py", ["--loop", "0"], "argument --loop: 0 is not a positive number"),
        ("bench_assemble.py", ["--count", "0"], "argument --count: 0 is not a positive number"),
        ("bench_assemble.py", ["--count", "-5"], "argument --count: -5 is not a positive number"),
        ("bench_assemble.py", ["--repeat", "0"], "argument --repeat: 0 is not a positive number"),
        ("bench_assemble.py", ["--jobs", "x"], "argument --jobs: 'x' is not a whole number"),
        ("bench_platforms.py", ["--count", "0"], "argument --count: 0 is not a positive number"),
        ("bench_publish.py", ["--rounds", "0"], "argument --rounds: 0 is not a positive number"),
        ("bench_transport.py", ["--count", "0"], "argument --count: 0 is not a positive number"),
        ("bench_release.py", ["--count", "-1"], "argument --count: -1 is not a positive number"),
        ("bench_smoke.py", ["--jobs", "0"], "argument --jobs: 0 is not a positive number"),
        ("bench_lint.py", ["--runs", "0"], "argument --runs: 0 is not a positive number"),
    ],
)
def test_a_count_that_is_not_positive_is_a_usage_error(
    script: str, argv: list[str], message: str
) -> None:
    done = run(BENCH / script, *argv)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "usage:" in done.stderr
    assert "Traceback" not in done.stderr
