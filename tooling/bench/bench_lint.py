"""Benchmark: `playbookctl lint` over 500 generated playbooks, cold, warm and as a typical PR.

Run by `make bench` (not part of the test run). It builds a throwaway repository in a temp dir
(this repository's pyproject.toml and ActionTypes, plus N playbooks derived from the samples in
which every script, Containerfile, workflow.yaml and pipeline.yaml is distinct: each script gets
its own pre-flight function (one of several shapes, its own names and numbers) called from its
validate phase and its own defaults; each Containerfile its own labels, environment and a RUN
step; each workflow its own name, version and description; every tenth playbook an extra script
with a shell warning so the reporters have work). Then it lints the whole repository in process,
with the verdict cache in a temp dir, in these scenarios:

    samples  this repository's own playbooks, empty cache
    cold     the 500 playbooks, empty cache (a fresh CI runner without a cache restore)
    warm     the same again, nothing changed (a re-run, or a CI cache restored)
    pr       warm cache, 5 of the 500 playbooks changed (script, Containerfile and workflow)

and prints, per scenario, the median wall time over --runs runs, the CPU seconds of hadolint and
shellcheck and their share of all CPU the run used (ours included), and whether it meets the
target: under 10 s on 2 cores. A warm run's findings must equal the cold run's (the cache must not
change a verdict) and the generated repository must lint without errors: a wrong result fails the
benchmark (exit 1); a missed target is reported, and fails only with --strict.

    python tooling/bench/bench_lint.py [--count 500] [--runs 3] [--changed 5] [--strict]
        [--no-external]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tooling"))

from bench_args import positive_int  # noqa: E402 - the benches' argument types

from playbookctl import cli  # noqa: E402 - after the path set-up above
from playbookctl.lint import external  # noqa: E402

TARGET_SECONDS = 10.0

# Pre-flight checks of four shapes; {n} numbers the function, {a}/{b} are its constants.
PREFLIGHT = [
    """\
preflight_{n}() {{
  # Refuse to act while too many pods of the namespace are pending (scheduler pressure).
  local limit={a} pending ns="${{TARGET_RESOURCE_NAMESPACE:-kube-system}}"
  pending="$(kubectl get pods --namespace "$ns" \\
    --field-selector=status.phase=Pending -o name 2>/dev/null | wc -l)"
  if ((pending > limit)); then
    die "preflight {n}: $pending pending pod(s) in $ns, limit $limit"
  fi
  log "preflight {n}: $pending pending pod(s), limit $limit"
}}
""",
    """\
preflight_{n}() {{
  # Only act inside the change window, {a}:00 to {b}:59 UTC, unless forced.
  local hour force=false
  hour="$(date -u +%H)"
  hour=$((10#$hour))
  case "$force" in
    true) log "preflight {n}: change window forced open" ;;
    false)
      ((hour >= {a} && hour <= {b})) || die "preflight {n}: outside the change window ({a}-{b} UTC)"
      ;;
    *) die "PREFLIGHT_FORCE_{n} must be true or false" ;;
  esac
}}
""",
    """\
preflight_{n}() {{
  # Wait up to {a} tries for the API server to answer, {b} s apart.
  local try=1
  until kubectl version --request-timeout=5s >/dev/null 2>&1; do
    ((try < {a})) || die "preflight {n}: the API server did not answer after {a} tries"
    log "preflight {n}: API server not ready (try $try/{a}), retrying in {b}s"
    sleep {b}
    try=$((try + 1))
  done
}}
""",
    """\
preflight_{n}() {{
  # The namespace must carry the opt-in label and no freeze annotation.
  local labels freeze ns="${{TARGET_RESOURCE_NAMESPACE:-kube-system}}"
  labels="$(kubectl get namespace "$ns" \\
    -o jsonpath='{{.metadata.labels.remediation-tier-{a}}}' 2>/dev/null || true)"
  freeze="$(kubectl get namespace "$ns" \\
    -o jsonpath='{{.metadata.annotations.freeze-{b}}}' 2>/dev/null || true)"
  [[ "$labels" == enabled ]] || die "preflight {n}: namespace has not opted in (tier {a})"
  [[ -z "$freeze" ]] || die "preflight {n}: namespace frozen: $freeze"
}}
""",
]


PREFLIGHT_RULES = """
rules:
  - apiGroups: [""]
    resources: ["pods", "namespaces"]
    verbs: ["get", "list"]
"""


def _script(sample_text: str, sample: str, name: str, i: int) -> str:
    text = sample_text.replace(f"readonly PLAYBOOK={sample}\n", f"readonly PLAYBOOK={name}\n", 1)
    fn = PREFLIGHT[i % len(PREFLIGHT)].format(n=i, a=2 + i % 9, b=10 + i % 13)
    text = text.replace("\nmain() {", f"\n{fn}\nmain() {{", 1)
    text = text.replace('  log "validate: ok"', f'  preflight_{i}\n  log "validate: ok"', 1)
    # Distinct defaults too, so the scripts differ in more than the added function.
    return text.replace(":-600}", f":-{600 + i}}}").replace(":-300}", f":-{300 + i}}}")


def _containerfile(sample_text: str, name: str, i: int) -> str:
    extra = (
        f'LABEL org.opencontainers.image.title="{name}" '
        f'org.opencontainers.image.revision="r{i}"\n'
        f"ENV REMEDIATION_RETRIES={1 + i % 7} REMEDIATION_TIER={i % 4}\n"
        f"RUN mkdir -p /var/lib/{name} && chmod 0755 /var/lib/{name}\n"
    )
    return sample_text.replace("\nUSER ", f"\n{extra}\nUSER ", 1)


def _mutate_playbook(target: Path, sample: Path, name: str, i: int, revision: int = 0) -> None:
    """Write the playbook's distinct files from the sample's (revision: a later edit)."""
    n = i + 100_000 * revision
    (target / "remediate.sh").write_text(
        _script((sample / "remediate.sh").read_text(), sample.name, name, n)
    )
    (target / "Containerfile").write_text(
        _containerfile((sample / "Containerfile").read_text(), name, n)
    )
    wf = (sample / "workflow.yaml").read_text()
    wf = wf.replace(f"  name: {sample.name}\n", f"  name: {name}\n", 1)
    wf = wf.replace(f"serviceAccountName: {sample.name}-", f"serviceAccountName: {name}-", 1)
    wf = wf.replace('version: "1.0.0"', f'version: "1.{i}.{revision}"', 1)
    wf = wf.replace("    what: >-\n", f"    what: >-\n      Variant {n} ({name}).\n", 1)
    (target / "workflow.yaml").write_text(wf)
    pipeline = sample / "pipeline.yaml"
    if pipeline.is_file():
        text = pipeline.read_text()
        text = text.replace("  description: ", f"  description: Variant {n}. ", 1)
        (target / "pipeline.yaml").write_text(text)


def _samples() -> list[Path]:
    samples = sorted(p for p in (REPO / "playbooks").iterdir() if (p / "workflow.yaml").is_file())
    if not samples:
        raise SystemExit("no sample playbooks under playbooks/")
    return samples


def generate(dest: Path, count: int) -> list[tuple[Path, Path, str]]:
    """A repository with count distinct playbooks; returns (dir, sample, name) of each."""
    shutil.copyfile(REPO / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(REPO / "registry" / "action-types", dest / "registry" / "action-types")
    samples = _samples()
    out = []
    for i in range(count):
        sample = samples[i % len(samples)]
        name = f"{sample.name}-{i:04d}"
        target = dest / "playbooks" / name
        shutil.copytree(sample, target)
        _mutate_playbook(target, sample, name, i)
        # What the preflight functions read (pending pods, namespace labels), granted as the
        # script contract (script.rbac) requires.
        # Its objects named after it, as `new` names them: two playbooks defining one object
        # is a lint error (playbook.duplicate-object).
        rbac = target / "rbac.yaml"
        text = rbac.read_text().replace("\nrules:\n", PREFLIGHT_RULES, 1)
        rbac.write_text(text.replace(sample.name, name))
        if i % 10 == 0:
            extra = target / "extra.sh"
            extra.write_text(f'#!/bin/sh\necho $1 "{name}"\n')
            extra.chmod(0o755)
        out.append((target, sample, name))
    return out


@dataclass
class Run:
    wall: float
    external: float
    hadolint_cpu: float
    shellcheck_cpu: float
    own_cpu: float
    linted: int
    hits: int
    code: int
    findings: list[dict[str, object]]

    @property
    def all_cpu(self) -> float:
        return self.own_cpu + self.hadolint_cpu + self.shellcheck_cpu


@contextlib.contextmanager
def cache_at(directory: Path) -> Iterator[None]:
    old = os.environ.get("PLAYBOOKCTL_CACHE_DIR")
    os.environ["PLAYBOOKCTL_CACHE_DIR"] = str(directory)
    try:
        yield
    finally:
        if old is None:
            del os.environ["PLAYBOOKCTL_CACHE_DIR"]
        else:
            os.environ["PLAYBOOKCTL_CACHE_DIR"] = old


def lint_in_process(root: Path, cache: Path, *, no_external: bool = False) -> Run:
    external.reset_timings()
    out = io.StringIO()
    cpu0 = time.process_time()
    started = time.perf_counter()
    argv = ["-C", str(root), "lint", "--format", "json"] + (
        ["--no-external"] if no_external else []
    )
    with cache_at(cache), contextlib.redirect_stdout(out):
        code = cli.main(argv)
    wall = time.perf_counter() - started
    t, c = external.TIMINGS, external.COUNTS
    return Run(
        wall=wall,
        external=t["external"],
        hadolint_cpu=t["hadolint_cpu"],
        shellcheck_cpu=t["shellcheck_cpu"],
        own_cpu=time.process_time() - cpu0,
        linted=c["linted"],
        hits=c["cache_hits"],
        code=code,
        findings=json.loads(out.getvalue()),
    )


def lint_subprocess(root: Path, cache: Path) -> tuple[float, int]:
    exe = Path(sys.executable).parent / "playbookctl"
    started = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "-C", str(root), "lint", "--format", "json"],
        capture_output=True,
        check=False,
        env={**os.environ, "PLAYBOOKCTL_CACHE_DIR": str(cache)},
    )
    return time.perf_counter() - started, proc.returncode


def row(label: str, runs: list[Run]) -> str:
    med = sorted(runs, key=lambda r: r.wall)[len(runs) // 2]
    wall = statistics.median(r.wall for r in runs)
    verdict = "yes" if wall < TARGET_SECONDS else "NO"
    cpu = max(med.all_cpu, 1e-9)
    return (
        f"{label:<8} {wall:7.2f} {med.wall - med.external:7.2f} {med.external:8.2f} "
        f"{med.hadolint_cpu:6.2f} ({100 * med.hadolint_cpu / cpu:3.0f}%) "
        f"{med.shellcheck_cpu:6.2f} ({100 * med.shellcheck_cpu / cpu:3.0f}%) "
        f"{med.own_cpu:6.2f} {med.linted:7d} {med.hits:6d}   {verdict}"
    )


HEADER = (
    "scenario  wall s  ours s  extern s  hadolint CPU s   shellcheck CPU s  ours CPU s"
    "  linted   hits"
    f"   < {TARGET_SECONDS:.0f} s"
)


def check(ok: bool, what: str, problems: list[str]) -> None:
    if not ok:
        problems.append(what)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=positive_int, default=500)
    parser.add_argument(
        "--runs", type=positive_int, default=3, help="runs per scenario (median shown)"
    )
    parser.add_argument("--changed", type=int, default=5, help="playbooks a PR changes")
    parser.add_argument("--strict", action="store_true", help="a missed target fails too")
    parser.add_argument(
        "--no-external",
        action="store_true",
        help="only our own checks (`lint --no-external`): the samples, then the generated "
        "playbooks --runs times",
    )
    args = parser.parse_args()
    if args.no_external:
        return main_no_external(args)
    problems: list[str] = []
    results: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as tmp:
        base = Path(tmp)
        caches = iter(base / f"cache-{n}" for n in range(10_000))

        # This repository's own playbooks, cold then warm (a developer's first and next run).
        samples_cache = next(caches)
        results["samples"] = [lint_in_process(REPO, samples_cache)]
        check(results["samples"][0].code == 0, "the sample playbooks do not lint clean", problems)
        results["samples+"] = [lint_in_process(REPO, samples_cache) for _ in range(args.runs)]

        root = base / "repo"
        root.mkdir()
        playbooks = generate(root, args.count)
        files = [p for p in root.rglob("*") if p.is_file()]
        scripts = [p for p in files if external.is_shell_script(p)]
        containerfiles = [p for p in files if p.name == "Containerfile"]
        print(
            f"lint benchmark: {args.count} playbooks, {len(files)} files: {len(scripts)} scripts "
            f"({len({p.read_bytes() for p in scripts})} distinct), {len(containerfiles)} "
            f"Containerfiles ({len({p.read_bytes() for p in containerfiles})} distinct); "
            f"{os.cpu_count()} CPUs, {external.cores()} usable"
        )

        cache = next(caches)
        results["cold"] = []
        for _ in range(args.runs):
            cache = next(caches)  # each cold run starts from an empty cache
            results["cold"].append(lint_in_process(root, cache))
        cold = results["cold"][-1]
        check(cold.code == 0, "the generated repository has lint errors", problems)
        check(cold.hits == 0, "a cold run had cache hits", problems)
        results["warm"] = [lint_in_process(root, cache) for _ in range(args.runs)]
        for run in results["warm"]:
            check(run.findings == cold.findings, "warm findings differ from cold", problems)
            check(run.linted == 0, "a warm run linted files", problems)

        results["pr"] = []
        step = max(1, len(playbooks) // max(1, args.changed))
        for r in range(args.runs):
            for j in range(args.changed):
                target, sample, name = playbooks[(j * step + r) % len(playbooks)]
                _mutate_playbook(target, sample, name, (j * step + r) % len(playbooks), r + 1)
            run = lint_in_process(root, cache)
            check(run.code == 0, "the PR run has lint errors", problems)
            # Each changed playbook: its script and Containerfile (both new content).
            check(run.linted == 2 * args.changed, f"the PR run linted {run.linted} files", problems)
            results["pr"].append(run)
        fresh, code = lint_subprocess(root, cache)
        check(code == 0, "the fresh-process run failed", problems)

    print(f"\n{HEADER}")
    print(row("samples", results["samples"]))
    print(row("samples+", results["samples+"]))
    for name in ("cold", "warm", "pr"):
        print(row(name, results[name]))
    print(
        f"\nwall: median of {args.runs} in-process run(s) of `playbookctl lint` over the whole "
        f"repository; extern: wall time of the external phase (hadolint and shellcheck side by "
        f"side); ours s: the rest of the wall time (our own checks); "
        f"CPU shares are of all CPU the run used (ours + both tools); linted: files "
        f"given to a tool (cache misses); samples+: the repository's samples again, cache warm; "
        f"pr: {args.changed} playbooks changed, cache warm. A fresh `playbookctl lint` process "
        f"on the PR state took {fresh:.2f} s (interpreter start and imports included)."
    )
    missed = [
        n
        for n in ("cold", "warm", "pr")
        if statistics.median(r.wall for r in results[n]) >= TARGET_SECONDS
    ]
    print(
        f"target: under {TARGET_SECONDS:.0f} s on 2 cores: "
        + ("met by every scenario" if not missed else f"MISSED by {', '.join(missed)}")
    )
    for p in problems:
        print(f"WRONG RESULT: {p}")
    return 1 if problems or (args.strict and missed) else 0


def main_no_external(args: argparse.Namespace) -> int:
    """Our own checks only: no hadolint, no shellcheck, so no cache to warm."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as tmp:
        base = Path(tmp)
        samples = [
            lint_in_process(REPO, base / "cache", no_external=True) for _ in range(args.runs)
        ]
        check(samples[0].code == 0, "the sample playbooks do not lint clean", problems)
        root = base / "repo"
        root.mkdir()
        generate(root, args.count)
        runs = [lint_in_process(root, base / "cache", no_external=True) for _ in range(args.runs)]
        check(all(r.code == 0 for r in runs), "the generated repository has lint errors", problems)
        check(all(r.findings == runs[0].findings for r in runs), "runs disagree", problems)
    print(f"lint benchmark, --no-external: {args.count} playbooks; {external.cores()} cores usable")
    print(f"\n{HEADER}")
    print(row("samples", samples))
    print(row("no-ext", runs))
    print(f"\nwall: median of {args.runs} in-process run(s) of `playbookctl lint --no-external`")
    for p in problems:
        print(f"WRONG RESULT: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
