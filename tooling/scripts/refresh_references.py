"""`make refresh-references`: update the vendored references from upstream and show the diff.

    python tooling/scripts/refresh_references.py --kubernaut <jordigilh/kubernaut checkout> \
        --tekton-refs <Tekton conformance corpus dir>

Either option alone refreshes only its references. See playbookctl_dev/references.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playbookctl.errors import FatalError
from playbookctl_dev.references import refresh, show_diff, verify

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernaut", type=Path, help="a checkout of jordigilh/kubernaut")
    parser.add_argument(
        "--tekton-refs",
        type=Path,
        help="the Tekton conformance corpus dir (README.md, cases/, verdicts.json, swagger-*.json)",
    )
    parser.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        notes = refresh(args.repo, kubernaut=args.kubernaut, tekton_refs=args.tekton_refs)
    except FatalError as exc:
        print(f"refresh-references: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(note)
    print(show_diff(args.repo))
    problems = verify(args.repo)
    for problem in problems:
        print(f"refresh-references: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
