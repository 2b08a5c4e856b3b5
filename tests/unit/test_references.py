"""The vendored references (tests/references/*): pinned, unedited, refreshable; and the guard
that keeps every test inside the checkout."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from playbookctl.errors import FatalError
from playbookctl_dev.references import (
    KUBERNAUT_CRDS,
    PROVENANCE,
    REFERENCE_SET,
    REQUIRED_KEYS,
    refresh,
    show_diff,
    verify,
)
from tests.conftest import FORBIDDEN, OutsideCheckoutError, forbidden_path


def test_every_vendored_file_is_what_its_provenance_pins(repo_root: Path) -> None:
    assert verify(repo_root) == []


@pytest.mark.parametrize("ref", REFERENCE_SET, ids=lambda r: r.directory)
def test_provenance_says_where_from(references: Path, ref: object) -> None:
    prov = json.loads((references / ref.directory / PROVENANCE).read_text())  # type: ignore[attr-defined]
    assert all(prov.get(k) for k in REQUIRED_KEYS)
    assert "Apache-2.0" in prov["license"]
    datetime.date.fromisoformat(prov["obtained"])


def test_the_pins_are_the_releases_the_project_targets(references: Path) -> None:
    crds = json.loads((references / "kubernaut-crds" / PROVENANCE).read_text())
    assert crds["commit"].startswith("d5a4a870")  # Kubernaut v1.6.0 release candidates
    for name in ("tekton-swagger", "tekton-conformance"):
        assert json.loads((references / name / PROVENANCE).read_text())["version"] == "v1.14.1"


# --- the guard -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (FORBIDDEN, True),
        (FORBIDDEN + "/reference/kubernaut/x.yaml", True),
        (FORBIDDEN.encode() + b"/reference", True),
        (Path(FORBIDDEN) / "reference", True),
        (FORBIDDEN + "-other/x", False),  # a sibling whose name merely starts with "shared"
        (str(Path(FORBIDDEN).parent / "x" / ".." / "shared" / "y"), True),  # normalised first
        (3, False),  # a file descriptor
    ],
)
def test_guard_recognises_paths_beside_the_checkout(path: object, refused: bool) -> None:
    assert forbidden_path(path) is refused


def test_guard_refuses_an_open_beside_the_checkout() -> None:
    """The hook runs before the OS is asked, so it refuses even a path that does not exist."""
    with pytest.raises(OutsideCheckoutError, match="beside the checkout"):
        open(Path(FORBIDDEN) / "reference" / "nothing-here.yaml")  # noqa: SIM115
    with pytest.raises(OutsideCheckoutError):
        list(Path(FORBIDDEN).iterdir())


# --- refresh ---------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path, repo_root: Path) -> Path:
    """A git copy of the parts of this repository the refresh touches."""
    dest = tmp_path / "repo"
    shutil.copytree(repo_root / "tests" / "references", dest / "tests" / "references")
    _git(dest.parent, "init", "-q", str(dest))
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "references")
    return dest


def _kubernaut_upstream(tmp_path: Path, references: Path) -> Path:
    up = tmp_path / "kubernaut"
    bases = up / "config" / "crd" / "bases"
    bases.mkdir(parents=True)
    for name in KUBERNAUT_CRDS:
        shutil.copyfile(references / "kubernaut-crds" / name, bases / name)
    _git(tmp_path, "init", "-q", str(up))
    _git(up, "add", "-A")
    _git(up, "commit", "-qm", "v1.7")
    _git(up, "tag", "v1.7.0")
    return up


def test_refresh_from_a_kubernaut_checkout_updates_files_and_provenance(
    tmp_path: Path, checkout: Path, references: Path
) -> None:
    up = _kubernaut_upstream(tmp_path, references)
    crd = up / "config" / "crd" / "bases" / "kubernaut.ai_actiontypes.yaml"
    crd.write_text(crd.read_text() + "# a new upstream line\n")
    _git(up, "commit", "-qam", "v1.7.1")
    _git(up, "tag", "v1.7.1")
    head = _git(up, "rev-parse", "HEAD")

    notes = refresh(checkout, kubernaut=up, today=datetime.date(2027, 1, 2))

    assert notes == [f"kubernaut-crds: v1.7.1 ({head})"]
    assert verify(checkout) == []
    vendored = checkout / "tests/references/kubernaut-crds"
    assert (vendored / "kubernaut.ai_actiontypes.yaml").read_bytes() == crd.read_bytes()
    prov = json.loads((vendored / PROVENANCE).read_text())
    assert (prov["commit"], prov["version"], prov["obtained"]) == (head, "v1.7.1", "2027-01-02")
    assert prov["license"] == "Apache-2.0"  # what the refresh does not know stays
    diff = show_diff(checkout)
    assert "kubernaut.ai_actiontypes.yaml" in diff
    assert f'+  "commit": "{head}"' in diff
    # the other references were not given, so not touched
    assert _git(checkout, "status", "--short", "tests/references/tekton-conformance") == ""


def test_refresh_from_the_tekton_corpus_dir(tmp_path: Path, checkout: Path) -> None:
    """The corpus distribution's layout: swagger-<version>.json beside README.md and cases/."""
    src = checkout / "tests/references"
    up = tmp_path / "corpus"
    shutil.copytree(src / "tekton-conformance", up)
    (up / PROVENANCE).unlink()
    shutil.copyfile(src / "tekton-swagger/v1/swagger.json", up / "swagger-v1.14.1.json")
    beta = up / "swagger-v1beta1-v1.14.1.json"
    shutil.copyfile(src / "tekton-swagger/v1beta1/swagger.json", beta)
    gone = next(iter(sorted((up / "cases" / "when").iterdir())))
    gone.unlink()

    swagger_obtained = json.loads((src / "tekton-swagger" / PROVENANCE).read_text())["obtained"]

    refresh(checkout, tekton_refs=up, today=datetime.date(2030, 1, 2))

    problems = verify(checkout)
    assert problems == []
    conformance = json.loads((src / "tekton-conformance" / PROVENANCE).read_text())
    assert f"cases/when/{gone.name}" not in conformance["files"]
    assert conformance["obtained"] == "2030-01-02"  # its content changed: obtained today
    # The same swagger files: untouched, its date included (whatever day the refresh runs).
    assert _git(checkout, "status", "--short", "tests/references/tekton-swagger") == ""
    swagger = json.loads((src / "tekton-swagger" / PROVENANCE).read_text())
    assert swagger["obtained"] == swagger_obtained
    assert "D tests/references/tekton-conformance/cases/when/" in show_diff(checkout)


@pytest.mark.parametrize(
    ("make_upstream", "message"),
    [
        (lambda tmp: tmp, "config/crd/bases/kubernaut.ai_remediationworkflows.yaml: not found"),
        (lambda tmp: tmp / "absent", "not a directory"),
    ],
    ids=["not-a-kubernaut-checkout", "missing-dir"],
)
def test_bad_upstream_changes_nothing(
    tmp_path: Path, checkout: Path, make_upstream: object, message: str
) -> None:
    upstream = make_upstream(tmp_path / "empty")  # type: ignore[operator]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FatalError, match=message):
        refresh(checkout, kubernaut=upstream)
    assert _git(checkout, "status", "--short", "--untracked-files=all") == ""


def test_a_crd_dir_without_git_history_is_refused(
    tmp_path: Path, checkout: Path, references: Path
) -> None:
    up = _kubernaut_upstream(tmp_path, references)
    shutil.rmtree(up / ".git")
    with pytest.raises(FatalError, match="not a git checkout"):
        refresh(checkout, kubernaut=up)
    assert _git(checkout, "status", "--short", "--untracked-files=all") == ""


def test_an_edited_vendored_file_is_caught(checkout: Path) -> None:
    path = checkout / "tests/references/kubernaut-crds/kubernaut.ai_actiontypes.yaml"
    path.write_text(path.read_text().replace("ActionType", "ActionTipe", 1))
    (checkout / "tests/references/tekton-conformance/cases/extra.yaml").write_text("x: 1\n")
    problems = verify(checkout)
    assert any("kubernaut.ai_actiontypes.yaml: differs from upstream" in p for p in problems)
    assert any("cases/extra.yaml: not from upstream" in p for p in problems)


def test_make_refresh_references_runs_the_script(tmp_path: Path, checkout: Path) -> None:
    """The Makefile target passes both upstreams through; without any it says what it needs."""
    done = subprocess.run(
        ["make", "-n", "refresh-references", "UPSTREAM_KUBERNAUT=/k", "UPSTREAM_TEKTON_REFS=/t"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '--kubernaut "/k"' in done.stdout
    assert '--tekton-refs "/t"' in done.stdout
    with pytest.raises(FatalError, match="nothing to refresh"):
        refresh(checkout)


def test_refresh_names_the_kubernaut_go_files_the_contract_table_was_read_from(
    tmp_path: Path, checkout: Path, references: Path, repo_root: Path
) -> None:
    """The parameter table is hand-written from Go code: a refresh cannot regenerate it, so it
    says which of its pinned sources changed upstream, for a human to re-read."""
    table_path = repo_root / "tooling/playbookctl/references/kubernaut.json"
    (checkout / table_path.relative_to(repo_root)).parent.mkdir(parents=True)
    shutil.copyfile(table_path, checkout / table_path.relative_to(repo_root))
    up = _kubernaut_upstream(tmp_path, references)
    sources = json.loads(table_path.read_text())["provenance"]["sources"]
    changed, gone = sorted(sources)[:2]
    (up / changed).parent.mkdir(parents=True, exist_ok=True)
    (up / changed).write_text("package changed\n")
    notes = refresh(checkout, kubernaut=up)
    assert any(n.startswith(f"Kubernaut changed {changed} since") for n in notes)
    assert any(n.startswith(f"Kubernaut changed {gone} (gone) since") for n in notes)
    assert len([n for n in notes if n.startswith("Kubernaut changed")]) == len(sources)
