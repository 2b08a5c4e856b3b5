"""The consumer references the project checks itself against, vendored as data.

Each directory under `tests/references/` holds files copied byte for byte from one upstream
source, and a `PROVENANCE.json` saying where they came from (source, version, commit, license,
date, how obtained) and the sha256 of every file, so that an edit by hand is caught by
`verify()` (tests/unit/test_references.py) and an update is one command:

    make refresh-references UPSTREAM_KUBERNAUT=<kubernaut checkout> UPSTREAM_TEKTON_REFS=<dir>

`refresh()` checks the upstream has every file first (bad input changes nothing), replaces
the vendored copies, rewrites the provenance and shows the diff. The data the runtime needs
(Kubernaut's parameter contract, `playbookctl/references/kubernaut.json`) is written by hand from
Kubernaut's Go code; the refresh cannot regenerate it, so it names the Go files that changed
since the table was written, for a human to re-read.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playbookctl.errors import FatalError

PROVENANCE = "PROVENANCE.json"
REFERENCES = Path("tests/references")
# Written by hand from Kubernaut's code: its "sources" pin the Go files (path -> sha256) it was
# read from. Lives in the package: lint and `pipelinerun` read it at run time.
KUBERNAUT_CONTRACT = Path("tooling/playbookctl/references/kubernaut.json")
REQUIRED_KEYS = ("name", "source", "version", "commit", "license", "obtained", "how", "files")


@dataclass(frozen=True)
class Reference:
    """One vendored directory: `collect` maps upstream -> {vendored relative path: source file}."""

    directory: str
    upstream: str  # which --option gives its upstream: "kubernaut" or "tekton_refs"
    collect: Callable[[Path], dict[str, Path]]
    describe: Callable[[Path], dict[str, str]]  # version, commit (and anything else to update)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _need(path: Path) -> Path:
    if not path.is_file():
        raise FatalError(f"{path}: not found (is this the right upstream directory?)")
    return path


KUBERNAUT_CRDS = ("kubernaut.ai_remediationworkflows.yaml", "kubernaut.ai_actiontypes.yaml")


def _kubernaut_crds(upstream: Path) -> dict[str, Path]:
    return {name: _need(upstream / "config" / "crd" / "bases" / name) for name in KUBERNAUT_CRDS}


def _describe_git(upstream: Path) -> dict[str, str]:
    commit = _git(upstream, "rev-parse", "HEAD")
    if commit is None:
        raise FatalError(f"{upstream}: not a git checkout (the provenance needs its commit)")
    version = _git(upstream, "describe", "--tags", "--always") or commit[:12]
    return {"version": version, "commit": commit}


def _tekton_readme(upstream: Path) -> str:
    return _need(upstream / "README.md").read_text(encoding="utf-8")


def _tekton_swagger(upstream: Path) -> dict[str, Path]:
    version = _describe_tekton(upstream)["version"]
    return {
        "v1/swagger.json": _need(upstream / f"swagger-{version}.json"),
        "v1beta1/swagger.json": _need(upstream / f"swagger-v1beta1-{version}.json"),
    }


CORPUS_PARTS = ("README.md", "verdicts.json", "cases", "divergent", "duplicate-keys")


def _tekton_corpus(upstream: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for part in CORPUS_PARTS:
        top = upstream / part
        if top.is_dir():
            found = sorted(p for p in top.rglob("*") if p.is_file())
            out.update({p.relative_to(upstream).as_posix(): p for p in found})
        else:
            out[part] = _need(top)
    return out


def _describe_tekton(upstream: Path) -> dict[str, str]:
    readme = _tekton_readme(upstream)
    version = re.search(r"Tekton Pipelines (v\d+\.\d+\.\d+)", readme)
    commit = re.search(r"tag commit ([0-9a-f]{7,40})", readme)
    if version is None or commit is None:
        raise FatalError(
            f"{upstream / 'README.md'}: does not say which Tekton release and tag commit "
            "the verdicts come from ('Tekton Pipelines vX.Y.Z', 'tag commit <hex>')"
        )
    return {"version": version.group(1), "commit": commit.group(1)}


REFERENCE_SET = (
    Reference("kubernaut-crds", "kubernaut", _kubernaut_crds, _describe_git),
    Reference("tekton-swagger", "tekton_refs", _tekton_swagger, _describe_tekton),
    Reference("tekton-conformance", "tekton_refs", _tekton_corpus, _describe_tekton),
)


def _files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != PROVENANCE:
            yield path


def load_provenance(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / PROVENANCE).read_text(encoding="utf-8"))
    return data


def verify(repo_root: Path) -> list[str]:
    """Problems with the vendored references: a file edited, added or missing, a key missing."""
    problems: list[str] = []
    for ref in REFERENCE_SET:
        directory = repo_root / REFERENCES / ref.directory
        try:
            prov = load_provenance(directory)
        except (OSError, ValueError) as exc:
            problems.append(f"{directory / PROVENANCE}: {exc}")
            continue
        problems += [f"{ref.directory}: no {k!r}" for k in REQUIRED_KEYS if not prov.get(k)]
        listed: dict[str, str] = prov.get("files", {})
        present = {p.relative_to(directory).as_posix(): p for p in _files(directory)}
        for name in sorted(set(listed) - set(present)):
            problems.append(f"{ref.directory}/{name}: listed in {PROVENANCE}, missing")
        for name in sorted(set(present) - set(listed)):
            problems.append(f"{ref.directory}/{name}: not from upstream (not in {PROVENANCE})")
        for name in sorted(set(present) & set(listed)):
            if _sha256(present[name]) != listed[name]:
                problems.append(
                    f"{ref.directory}/{name}: differs from upstream (sha256 in {PROVENANCE}); "
                    "vendored files are never edited, refresh them (make refresh-references)"
                )
    return problems


def changed_contract_sources(repo_root: Path, kubernaut: Path) -> list[str]:
    """Kubernaut Go files the hand-written contract table was read from that differ upstream."""
    contract_file = repo_root / KUBERNAUT_CONTRACT
    if not contract_file.is_file():
        return []
    contract = json.loads(contract_file.read_text(encoding="utf-8"))
    changed = []
    for path, digest in sorted(contract["provenance"]["sources"].items()):
        source = kubernaut / path
        now = _sha256(source) if source.is_file() else "missing"
        if now != digest:
            changed.append(path if now != "missing" else f"{path} (gone)")
    return changed


def refresh(
    repo_root: Path,
    *,
    kubernaut: Path | None = None,
    tekton_refs: Path | None = None,
    today: datetime.date | None = None,
) -> list[str]:
    """Replace the vendored references from the upstreams given; return what it says to a human.

    Every upstream is read and checked before anything is written."""
    upstreams = {"kubernaut": kubernaut, "tekton_refs": tekton_refs}
    if not any(upstreams.values()):
        raise FatalError("nothing to refresh: give UPSTREAM_KUBERNAUT and/or UPSTREAM_TEKTON_REFS")
    for option, path in upstreams.items():
        if path is not None and not path.is_dir():
            raise FatalError(f"{path}: not a directory (--{option.replace('_', '-')})")
    date = (today or datetime.datetime.now(datetime.UTC).date()).isoformat()
    planned: list[tuple[Reference, dict[str, Path], dict[str, str]]] = []
    for ref in REFERENCE_SET:
        upstream = upstreams[ref.upstream]
        if upstream is not None:
            planned.append((ref, ref.collect(upstream), ref.describe(upstream)))
    notes: list[str] = []
    for ref, files, described in planned:
        directory = repo_root / REFERENCES / ref.directory
        prov = load_provenance(directory)
        with tempfile.TemporaryDirectory(dir=directory.parent) as staging_name:
            staging = Path(staging_name) / ref.directory
            staging.mkdir()
            for name, source in files.items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, staging / name)
            before = dict(prov)
            prov.update(described)
            prov["files"] = {name: _sha256(staging / name) for name in sorted(files)}
            # The date says when this content was obtained: a refresh that brings the very same
            # files and description keeps it (no churn, and no diff that depends on the day).
            same = (
                all(before.get(k) == v for k, v in described.items())
                and before.get("files") == prov["files"]
            )
            prov["obtained"] = before.get("obtained", date) if same else date
            (staging / PROVENANCE).write_text(json.dumps(prov, indent=2) + "\n", encoding="utf-8")
            old = Path(staging_name) / "old"
            directory.rename(old)
            staging.rename(directory)
        notes.append(f"{ref.directory}: {described['version']} ({described['commit']})")
    if kubernaut is not None:
        for go_file in changed_contract_sources(repo_root, kubernaut):
            notes.append(
                f"Kubernaut changed {go_file} since {KUBERNAUT_CONTRACT} was written: re-read it, "
                "update the table and its sources' sha256"
            )
    return notes


def show_diff(repo_root: Path) -> str:
    """What the refresh changed, as git sees it (stat, new files, provenance in full)."""
    where = str(REFERENCES)
    stat = _git(repo_root, "--no-pager", "diff", "--stat", "--", where) or ""
    status = _git(repo_root, "status", "--short", "--untracked-files=all", "--", where) or ""
    prov = _git(repo_root, "--no-pager", "diff", "--", f"{REFERENCES}/*/{PROVENANCE}") or ""
    if not (stat or status):
        return "references unchanged"
    return "\n".join(part for part in (status, stat, prov) if part)
