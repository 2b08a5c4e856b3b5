"""Benchmark: lint 500 generated playbooks through the CLI; wall time and the linters' share.

Run by `make bench` (not part of the test run). It builds a throwaway repository in a temp dir
(this repository's pyproject.toml and ActionTypes, plus N renamed copies of the sample playbooks,
every tenth with a shell warning so the reporters have work), runs `playbookctl lint` on it in
process, and prints the figures. Target: under 10 s on 2 cores.

    python tooling/bench/bench_lint.py [--count 500] [--runs 3] [--subprocess]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tooling"))

from playbookctl import cli  # noqa: E402 - after the path set-up above
from playbookctl.lint import external  # noqa: E402

TARGET_SECONDS = 10.0


def generate(dest: Path, count: int, *, distinct_scripts: bool = False) -> int:
    """A repository with count playbooks, named <sample>-<i>; returns the number written.

    Each copy gets its own name and version. Scripts stay byte-identical to the sample's (as
    shared helpers are in a monorepo, and as the linters are told apart by content) unless
    distinct_scripts, the worst case, where every script differs.
    """
    shutil.copyfile(REPO / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(REPO / "registry" / "action-types", dest / "registry" / "action-types")
    samples = sorted(p for p in (REPO / "playbooks").iterdir() if (p / "workflow.yaml").is_file())
    if not samples:
        raise SystemExit("no sample playbooks under playbooks/")
    for i in range(count):
        sample = samples[i % len(samples)]
        name = f"{sample.name}-{i:04d}"
        target = dest / "playbooks" / name
        shutil.copytree(sample, target)
        wf = target / "workflow.yaml"
        text = wf.read_text()
        text = text.replace(f"  name: {sample.name}\n", f"  name: {name}\n", 1)
        wf.write_text(text.replace('version: "1.0.0"', f'version: "1.{i}.0"', 1))
        if distinct_scripts:
            for script in target.glob("*.sh"):
                script.write_text(script.read_text() + f"# variation {i}\n")
        if i % 10 == 0:
            extra = target / "extra.sh"
            extra.write_text(f'#!/bin/sh\necho $1 "{name}"\n')
            extra.chmod(0o755)
    return count


def lint_in_process(root: Path) -> tuple[float, int, list[dict[str, object]]]:
    external.reset_timings()
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = cli.main(["-C", str(root), "lint", "--format", "json"])
    elapsed = time.perf_counter() - started
    return elapsed, code, json.loads(out.getvalue())


def lint_subprocess(root: Path) -> tuple[float, int]:
    exe = Path(sys.executable).parent / "playbookctl"
    started = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "-C", str(root), "lint", "--format", "json"],
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - started, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--subprocess", action="store_true", help="also time a fresh process")
    parser.add_argument(
        "--distinct-scripts", action="store_true", help="make every script differ (worst case)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as tmp:
        root = Path(tmp)
        generate(root, args.count, distinct_scripts=args.distinct_scripts)
        files = [p for p in root.rglob("*") if p.is_file()]
        scripts = {p.read_bytes() for p in files if external.is_shell_script(p)}
        print(
            f"lint benchmark: {args.count} playbooks ({len(files)} files, {len(scripts)} "
            f"distinct scripts), {os.cpu_count()} CPUs"
        )
        best: tuple[float, dict[str, float]] = (float("inf"), {})
        for run in range(1, args.runs + 1):
            elapsed, code, findings = lint_in_process(root)
            timings = dict(external.TIMINGS)
            errors = sum(1 for f in findings if f["severity"] == "error")
            print(
                f"  run {run}: {elapsed:6.2f} s wall, exit {code}, {len(findings)} findings "
                f"({errors} errors); hadolint {timings['hadolint']:.2f} s, "
                f"shellcheck {timings['shellcheck']:.2f} s (process time, batches overlap), "
                f"external phase {timings['external']:.2f} s"
            )
            if elapsed < best[0]:
                best = (elapsed, timings)
        elapsed, timings = best
        print(f"best wall time: {elapsed:.2f} s (target < {TARGET_SECONDS:.0f} s)")
        print(
            f"share of wall time: hadolint {100 * timings['hadolint'] / elapsed:.0f}%, "
            f"shellcheck {100 * timings['shellcheck'] / elapsed:.0f}%, "
            f"external phase (both, in parallel) {100 * timings['external'] / elapsed:.0f}%, "
            f"the rest (load, rules, render) {100 * (elapsed - timings['external']) / elapsed:.0f}%"
        )
        if args.subprocess:
            sub, code = lint_subprocess(root)
            print(f"fresh process: {sub:.2f} s wall, exit {code}")
        return 0 if elapsed < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
