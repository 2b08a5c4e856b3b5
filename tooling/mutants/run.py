"""`make mutants`: every guard behind a README guarantee is removed in turn, and a named test
must fail.

tooling/mutants/mutants.toml lists the guard sites: the file, an exact snippet of its source
(found exactly once), what replaces it (the guard disabled), and the tests expected to kill
it. For each, this copies the checkout to a temporary directory, applies the one change there,
runs only the named tests against the copy (PYTHONPATH puts the copy's tooling/ first, so the
tests and any playbookctl subprocess import the mutated code), and requires them to fail.
The checkout itself is never modified, so an interrupted run leaves nothing behind.

Before any mutation, the named tests run once on the unmodified copy and must pass: a test
that fails anyway would "kill" every mutation and prove nothing. A snippet that is not in its
file (code moved, reworded) is reported by id, file and snippet, and fails the run: the list
must follow the code. A test that hangs fails through pytest-timeout (see pyproject.toml), so
a mutation that makes a test hang is killed, never left running.

Usage: python tooling/mutants/run.py [--only ID ...] [--jobs N] [--list FILE]
Exit 0 when every listed mutation is killed; 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LIST = Path(__file__).resolve().parent / "mutants.toml"
# One pytest run of a mutant's tests; a test's own limit is pytest-timeout's, this only
# bounds a run that would otherwise outlive CI.
RUN_TIMEOUT = 1200.0
_COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.pyc"
)


@dataclass(frozen=True)
class Mutant:
    id: str
    guard: str  # what the README promises, in a few words
    file: str  # relative to the repository root
    find: str  # an exact snippet of the file's source, present exactly once
    replace: str  # the same place with the guard removed
    tests: tuple[str, ...]  # pytest node ids expected to fail


@dataclass
class Outcome:
    mutant: Mutant
    killed: bool
    seconds: float
    detail: str = ""
    failed_tests: list[str] = field(default_factory=list)


def load(path: Path) -> list[Mutant]:
    data = tomllib.loads(path.read_text("utf-8"))
    out: list[Mutant] = []
    seen: set[str] = set()
    for i, item in enumerate(data.get("mutant", []), 1):
        missing = [k for k in ("id", "guard", "file", "find", "replace", "tests") if k not in item]
        if missing:
            raise SystemExit(f"{path}: mutant #{i}: missing {', '.join(missing)}")
        if item["id"] in seen:
            raise SystemExit(f"{path}: mutant id {item['id']!r} is listed twice")
        seen.add(item["id"])
        if item["find"] == item["replace"]:
            raise SystemExit(f"{path}: mutant {item['id']!r}: replace is the same as find")
        out.append(
            Mutant(
                id=item["id"],
                guard=item["guard"],
                file=item["file"],
                find=item["find"],
                replace=item["replace"],
                tests=tuple(item["tests"]),
            )
        )
    return out


def locate(mutants: list[Mutant], root: Path) -> list[str]:
    """Why each mutant cannot be applied to the checkout (a snippet missing or ambiguous)."""
    problems = []
    for m in mutants:
        path = root / m.file
        if not path.is_file():
            problems.append(f"{m.id}: {m.file} does not exist")
            continue
        count = path.read_text("utf-8").count(m.find)
        if count != 1:
            first = next((ln.strip() for ln in m.find.splitlines() if ln.strip()), m.find)
            what = "could not find the snippet" if count == 0 else f"the snippet occurs {count}x"
            problems.append(f"{m.id}: {what} in {m.file}: {first!r}")
    return problems


def copy_tree(root: Path, dest: Path) -> Path:
    tree = dest / "tree"
    shutil.copytree(root, tree, ignore=_COPY_IGNORE, symlinks=True)
    return tree


def run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    env = dict(os.environ)
    # The copy's code before the editable install's checkout, in this process and in every
    # playbookctl subprocess a test starts.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tree / "tooling"), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-ra", "-p", "no:cacheprovider"]
    try:
        done = subprocess.run(
            [*cmd, *tests],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, f"the tests ran past {RUN_TIMEOUT:.0f} s"
    return done.returncode, done.stdout + done.stderr


def _failed(output: str) -> list[str]:
    return [ln.split()[1] for ln in output.splitlines() if ln.startswith(("FAILED ", "ERROR "))]


def _why(output: str) -> str:
    """The first assertion or error pytest printed (a timeout says `Timeout`): how it died."""
    for line in output.splitlines():
        if line.startswith("E "):
            return " ".join(line[1:].split())[:160]
    return ""


def check_imports_copy(tree: Path) -> None:
    """The mutation must reach the tests: the copy's playbookctl is what gets imported."""
    env = dict(os.environ, PYTHONPATH=str(tree / "tooling"))
    where = subprocess.run(
        [sys.executable, "-c", "import playbookctl; print(playbookctl.__file__)"],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"the copy's playbookctl is not the one imported ({where}); cannot run")


def mutate(m: Mutant, work: Path) -> Outcome:
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{m.id}-", dir=work) as tmp:
        tree = copy_tree(ROOT, Path(tmp))
        path = tree / m.file
        path.write_text(path.read_text("utf-8").replace(m.find, m.replace, 1), "utf-8")
        code, output = run_tests(tree, m.tests)
    seconds = time.monotonic() - start
    if code == 1:  # tests failed (a hang fails its test through pytest-timeout)
        return Outcome(
            m, True, seconds, _why(output), failed_tests=_failed(output) or [output[-300:]]
        )
    if code == 0:
        return Outcome(m, False, seconds, "SURVIVED: every named test passed with the guard gone")
    tail = " | ".join(output.strip().splitlines()[-3:])
    return Outcome(m, False, seconds, f"the tests could not run (pytest exit {code}): {tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST, help="the mutant list (TOML)")
    parser.add_argument("--only", nargs="*", default=None, metavar="ID", help="run these only")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    mutants = load(args.list)
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            print(f"mutants: no such id: {', '.join(unknown)}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.id in args.only]
    problems = locate(mutants, ROOT)
    if problems:
        print("mutants: the list no longer matches the code:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="playbookctl-mutants-") as work_dir:
        work = Path(work_dir)
        baseline = copy_tree(ROOT, work / "baseline")
        check_imports_copy(baseline)
        tests = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
        print(f"mutants: baseline, {len(tests)} test(s) on the unmodified code ...", flush=True)
        code, output = run_tests(baseline, tests)
        skipped = [ln for ln in output.splitlines() if ln.startswith("SKIPPED")]
        if code == 0 and skipped:
            # A skipped test kills nothing: every mutant it names would "survive" for no reason.
            print("\n".join(skipped), file=sys.stderr)
            print("mutants: named tests skip on this machine; they must run", file=sys.stderr)
            return 1
        if code != 0:
            print(output[-3000:], file=sys.stderr)
            print("mutants: the named tests fail with no mutation; fix them first", file=sys.stderr)
            return 1
        shutil.rmtree(baseline.parent)
        outcomes: list[Outcome] = []
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for outcome in pool.map(lambda m: mutate(m, work), mutants):
                outcomes.append(outcome)
                m = outcome.mutant
                if outcome.killed:
                    by = ", ".join(outcome.failed_tests[:2])
                    print(f"  killed    {m.id} ({outcome.seconds:.0f} s) by {by}", flush=True)
                    if outcome.detail:
                        print(f"            {outcome.detail}", flush=True)
                else:
                    print(f"  NOT KILLED {m.id} ({m.file}): {outcome.detail}", flush=True)
    killed = sum(o.killed for o in outcomes)
    elapsed = time.monotonic() - started
    print(f"{len(outcomes)} mutations, {killed} killed in {elapsed:.0f} s")
    return 0 if killed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
