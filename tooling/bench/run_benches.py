"""Run benchmarks one after another (`make bench`): every one runs even when an earlier one
misses its target or fails, and the run ends with exit 1 naming each that did.

Each benchmark still exits non-zero on its own when it misses a target, so a person running one
by hand, or CI running them one by one, sees it too.

Usage: python tooling/bench/run_benches.py SCRIPT [SCRIPT...]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if not argv or any(a.startswith("-") for a in argv):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    missing = [a for a in argv if not Path(a).is_file()]
    if missing:
        print(f"run_benches: no such benchmark: {', '.join(missing)}", file=sys.stderr)
        return 2
    failed: list[str] = []
    for script in argv:
        name = Path(script).name
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            code = subprocess.run([sys.executable, script], check=False).returncode
        except KeyboardInterrupt:
            print(f"run_benches: interrupted during {name}", file=sys.stderr)
            return 130
        took = time.perf_counter() - started
        verdict = "ok" if code == 0 else f"exit {code}"
        print(f"== {name}: {verdict} ({took:.0f} s)\n", flush=True)
        if code != 0:
            failed.append(f"{name} (exit {code})")
    if failed:
        print(
            f"bench: {len(failed)} of {len(argv)} benchmarks missed a target or failed: "
            + ", ".join(failed)
        )
        return 1
    print(f"bench: all {len(argv)} benchmarks met their targets")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
