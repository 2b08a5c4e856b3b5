"""The tekton.* rules against the Tekton v1.14.1 conformance corpus.

`tests/references/tekton-conformance/` (vendored, see its PROVENANCE.json) holds 423 objects
with the verdict Tekton v1.14.1's own code gives each (verdicts.json): lint must report an
error on exactly the invalid ones.
Loading is part of the check, as it is in the cluster: the YAML is read with go-yaml v2's
YAML 1.1 rules (`name: y` is a boolean), so load.* errors count. Also checked:
- duplicate-keys/: refused, as the strict decoder on the bundles-resolver path refuses them
  (our bundles are read that way);
- divergent/: where plain validation is not what a cluster gives, we follow the cluster
  (knative's JSON round trip refuses a param without a value; the API server names an object
  from generateName before admission).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from playbookctl.config import TEKTON_VERSION
from playbookctl.findings import Finding, Severity
from playbookctl.lint.tekton import check_document
from playbookctl.load import load_file

CORPUS = Path(__file__).resolve().parents[2] / "references" / "tekton-conformance"
VERDICTS: dict[str, dict[str, object]] = json.loads((CORPUS / "verdicts.json").read_text())


def _errors(path: Path) -> list[Finding]:
    loaded = load_file(path, path.name)
    found = list(loaded.findings)
    for doc in loaded.documents:
        found.extend(check_document(doc))
    return [f for f in found if f.severity is Severity.ERROR]


def test_the_corpus_is_the_one_for_our_tekton_release() -> None:
    assert TEKTON_VERSION == "1.14"
    assert "v1.14.1" in (CORPUS / "README.md").read_text()
    assert len(VERDICTS) == 423
    assert sum(1 for v in VERDICTS.values() if v["valid"]) == 192


def test_every_verdict_agrees() -> None:
    """100%: one test over all cases, so that a miss names every disagreeing case at once."""
    wrong: list[str] = []
    for key, verdict in sorted(VERDICTS.items()):
        path = CORPUS / key
        assert hashlib.sha256(path.read_bytes()).hexdigest() == verdict["sha256"], key
        errors = _errors(path)
        if bool(errors) == bool(verdict["valid"]):
            shown = "; ".join(f"{f.rule} {f.line}:{f.column} {f.message}" for f in errors[:3])
            wrong.append(f"{key}: Tekton says valid={verdict['valid']}, we say: {shown or 'valid'}")
    assert wrong == [], f"{len(wrong)} of {len(VERDICTS)} disagree:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "path", sorted((CORPUS / "duplicate-keys").glob("00[1-5]*")), ids=lambda p: p.name
)
def test_duplicate_keys_are_refused_as_the_strict_decoder_refuses_them(path: Path) -> None:
    assert [f.rule for f in _errors(path)] == ["load.duplicate-key"]


def test_unknown_field_in_json_is_refused() -> None:
    path = CORPUS / "duplicate-keys" / "006-json-unknown-field.json"
    assert {f.rule for f in _errors(path)} == {"tekton.unknown-field"}


DIVERGENT: dict[str, dict[str, object]] = json.loads(
    (CORPUS / "divergent" / "divergent.json").read_text()
)


@pytest.mark.parametrize("key", sorted(DIVERGENT), ids=lambda k: k.split("/", 2)[-1])
def test_divergent_cases_follow_the_cluster(key: str) -> None:
    verdict = DIVERGENT[key]
    path = CORPUS / key
    errors = _errors(path)
    why = str(verdict["why"])
    if "generateName" in why or "generatename" in key:
        expected_valid = True  # the API server fills metadata.name in first
    elif "case-insensitive" in why or "same as key-case-variant" in why:
        # Go's JSON decoder ignores key case, the API server's structural schema would not:
        # refusing the unknown key is what a bundle's strict decoding does.
        expected_valid = False
    else:
        expected_valid = bool(verdict["admission_like_valid"])
    assert bool(errors) != expected_valid, [f.message for f in errors]
