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
- the reason, not only the verdict: for every invalid case one of our errors names the field
  path Tekton's error names (`...: spec.finally[1].params[x].value`), or the field an unknown-
  field decode error names; the cases where it cannot are listed below with the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
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


# --- conformance by reason: the field path -------------------------------------------------------

# Where Tekton's path is not the field's: we name the field (the first element, what the test
# requires of us); the second says why Tekton names something else.
_TWICE = (
    "Tekton checks spec.params once per task list and prefixes each error with the list "
    '(ValidatePipelineParameterVariables(...).ViaField("tasks"/"finally")): the field is '
    "spec.params"
)
_NO_INDEX = "Tekton's ViaField here drops the list index; we name the entry"
_STEP_RESULTS = (
    "Tekton applies the step's index after the results' (`steps.results[0][0]`); we name "
    "steps[i].results[j]"
)
PATH_EXCEPTIONS: dict[str, tuple[str, str]] = {
    "cases/params/004-array-type-string-default.yaml": ("spec.params.flags.type", _TWICE),
    "cases/params/005-string-type-array-default.yaml": ("spec.params.revision.type", _TWICE),
    "cases/params/006-object-type-string-default.yaml": ("spec.params.repo.type", _TWICE),
    "cases/params/009-type-integer.yaml": ("spec.params.count.type", _TWICE),
    "cases/params/010-type-capitalized.yaml": ("spec.params.revision.type", _TWICE),
    "cases/params/011-duplicate-names.yaml": ("spec.params[revision]", _TWICE),
    "cases/params/019-property-type-number.yaml": ("spec.params.repo.properties", _TWICE),
    "cases/params/023-enum-alpha-gated.yaml": ("spec.params[env]", _TWICE),
    "cases/params/031-array-default-of-numbers.yaml": ("spec.params.ports.type", _TWICE),
    "cases/params/032-object-default-with-number-value.yaml": ("spec.params.svc.type", _TWICE),
    "cases/v1beta1/008-param-enum.yaml": ("spec.params[env]", _TWICE),
    "cases/steps/029-sidecar-no-image.yaml": ("spec.sidecars[0].image", _NO_INDEX),
    "cases/steps/030-sidecar-script-and-command.yaml": ("spec.sidecars[0].script", _NO_INDEX),
    "cases/steps/031-sidecar-reserved-name.yaml": ("spec.sidecars[0].name", _NO_INDEX),
    "cases/results/015-step-result-invalid-name.yaml": (
        "spec.steps[0].results[0].name",
        _STEP_RESULTS,
    ),
    "cases/results/016-step-result-object-no-properties.yaml": (
        "spec.steps[0].results[0].meta.properties",
        _STEP_RESULTS,
    ),
    "cases/refs/012-taskref-resolver-params-duplicate.yaml": (
        "spec.tasks[0].taskRef.params[name].name",
        "Tekton keys the resolver param on taskRef itself (`taskRef[name].name`); it is an "
        "entry of taskRef.params",
    ),
    "cases/varrefs/042-taskspec-step-uses-undeclared-param.yaml": (
        "spec.tasks[0].taskSpec.steps[0].script",
        "Tekton's pipeline-level walk of an embedded task's steps leaves out `taskSpec`; the "
        "step is under it",
    ),
}

# Tekton's error names no field at all: nothing to compare (our finding still points at the
# line and column).
_UNNAMED = "Tekton's message ends in an empty path"
_DECODE = "a decoder's error, without the field"
NO_PATH: dict[str, str] = {
    "cases/matrix/015-consume-result-without-star.yaml": _UNNAMED,
    "cases/onerror/004-task-continue-with-retries.yaml": _UNNAMED,
    "cases/refs/022-pipelineref-alpha.yaml": _UNNAMED,
    "cases/refs/023-pipelinespec-alpha.yaml": _UNNAMED,
    "cases/steps/032-stdoutconfig-alpha.yaml": _UNNAMED,
    "cases/steps/033-windows-script-alpha.yaml": _UNNAMED,
    "cases/retries-timeouts/007-timeout-no-unit.yaml": _DECODE + " (Go's time.ParseDuration)",
    "cases/retries-timeouts/008-timeout-days.yaml": _DECODE + " (Go's time.ParseDuration)",
    "cases/retries-timeouts/011-timeout-number.yaml": _DECODE + " (`Go value of type string`)",
    "cases/steps/021-compute-resources-bad-quantity.yaml": _DECODE + " (resource.Quantity)",
    "cases/yaml-scalars/003-param-value-inf.yaml": "sigs.k8s.io/yaml's YAML-to-JSON conversion",
}

_UNKNOWN_FIELD = re.compile(r'^decode: json: unknown field "(?P<name>[^"]*)"')
# `cannot unmarshal bool into [Go struct field ]Pipeline.spec.tasks.0.name of type string`
_UNMARSHAL = re.compile(r"cannot unmarshal .+? into (?:Go struct field )?[A-Za-z]+\.(\S+) of type ")
_OUR_INTO = re.compile(r"cannot decode \S+ into (\S+) of type ")
_OUR_WHERE = re.compile(r"\((spec[^()\s]*|metadata[^()\s]*)\)$")


def _go_path(dotted: str) -> str:
    """`spec.tasks.0.name` (encoding/json's path) as Tekton writes paths: spec.tasks[0].name."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", dotted)


def tekton_named(error: str) -> tuple[str, frozenset[str]]:
    """What Tekton's error names: ("path", paths), ("field", {unknown field}) or ("none", {})."""
    first = error.splitlines()[0] if error else ""
    unknown = _UNKNOWN_FIELD.match(first)
    if unknown:
        return "field", frozenset({unknown["name"]})
    unmarshal = _UNMARSHAL.search(first)
    if unmarshal:
        return "path", frozenset({_go_path(unmarshal[1])})
    if first.startswith(("decode:", "yaml:")):
        return "none", frozenset()
    _head, _sep, tail = first.rpartition(": ")
    paths = frozenset(p.strip() for p in tail.split(", ") if p.strip())
    return ("path", paths) if paths else ("none", frozenset())


def our_paths(finding: Finding) -> set[str]:
    """The field paths one of our messages names: its `message: path, path` tail (details
    follow on other lines, as in Tekton's), a decode error's `into <path>`, an unknown field's
    `(<path>)`."""
    first = finding.message.splitlines()[0]
    _head, sep, tail = first.rpartition(": ")
    out = {p.strip() for p in tail.split(", ") if p.strip()} if sep else set()
    for pattern in (_OUR_INTO, _OUR_WHERE):
        m = pattern.search(first)
        if m:
            out.add(m[1])
    return out


def _invalid_cases() -> list[str]:
    return sorted(k for k, v in VERDICTS.items() if not v["valid"])


def test_every_invalid_case_is_refused_for_the_field_tekton_names() -> None:
    """Each invalid case: one of our errors names a field path Tekton's error names (or, for
    Go's `unknown field "x"`, is tekton.unknown-field for x), else it is listed above with the
    path we name instead and why. A listed case that comes to match is a stale entry."""
    wrong: list[str] = []
    counts = {"path": 0, "field": 0, "exception": 0, "none": 0}
    for key in _invalid_cases():
        kind, named = tekton_named(str(VERDICTS[key]["error"]))
        errors = _errors(CORPUS / key)
        ours = set().union(*(our_paths(f) for f in errors)) if errors else set()
        shown = "; ".join(f.message.splitlines()[0] for f in errors[:2]) or "no error"
        if key in NO_PATH:
            counts["none"] += 1
            if kind != "none":
                wrong.append(f"{key}: listed as naming no path, but Tekton names {sorted(named)}")
        elif key in PATH_EXCEPTIONS:
            counts["exception"] += 1
            path, _why = PATH_EXCEPTIONS[key]
            if path not in ours:
                wrong.append(f"{key}: we should name {path}, we say: {shown}")
            if named & ours:
                wrong.append(f"{key}: matches Tekton now; remove it from PATH_EXCEPTIONS")
        elif kind == "field":
            counts["field"] += 1
            (name,) = named
            if not any(
                f.rule == "tekton.unknown-field" and f'unknown field "{name}"' in f.message
                for f in errors
            ):
                wrong.append(f"{key}: Tekton: unknown field {name!r}; we say: {shown}")
        elif kind == "path":
            counts["path"] += 1
            if not named & ours:
                wrong.append(f"{key}: Tekton names {sorted(named)}; we say: {shown}")
        else:
            wrong.append(f"{key}: Tekton names no path: list it in NO_PATH with the reason")
    assert wrong == [], f"{len(wrong)} invalid case(s) refused for another reason:\n" + "\n".join(
        wrong
    )
    # Where the 231 invalid cases stand (a change here is a change of this test's scope).
    assert counts == {"path": 180, "field": 22, "exception": 18, "none": 11}, counts


def test_the_listed_exceptions_are_invalid_cases_of_the_corpus() -> None:
    invalid = set(_invalid_cases())
    assert set(PATH_EXCEPTIONS) <= invalid
    assert set(NO_PATH) <= invalid
    assert not set(PATH_EXCEPTIONS) & set(NO_PATH)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            "expected exactly one, got both: spec.finally[0].name",
            ("path", {"spec.finally[0].name"}),
        ),
        (
            'invalid value "Clean_Up": spec.finally[0].name\nPipeline Task name must be ...',
            ("path", {"spec.finally[0].name"}),
        ),
        ("expected exactly one, got both: a.b[x], a.c[x]", ("path", {"a.b[x]", "a.c[x]"})),
        ('decode: json: unknown field "when"', ("field", {"when"})),
        (
            "decode: json: cannot unmarshal bool into Go struct field Pipeline.spec.tasks.0.name "
            "of type string",
            ("path", {"spec.tasks[0].name"}),
        ),
        ('decode: time: unknown unit "d" in duration "1d"', ("none", set())),
        ("PipelineTask OnError cannot be set to ...: ", ("none", set())),
    ],
)
def test_tekton_named_reads_knative_field_errors(
    error: str, expected: tuple[str, set[str]]
) -> None:
    assert tekton_named(error) == (expected[0], frozenset(expected[1]))
