"""The rule catalogue: complete, documented, and the docs generated from it are current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playbookctl.lint.catalogue import (
    README_BEGIN,
    README_END,
    RULES,
    RULES_FILE,
    known,
    lookup,
    markdown_document,
    markdown_table,
)

ROOT = Path(__file__).resolve().parents[3]
# Strings that look like rule ids but are not: the Tekton API group, file names.
NOT_RULES = {"tekton.dev", "workflow.yaml", "pipeline.yaml", "playbook.py", "rbac.yaml"}
# Every family the catalogue has (verify.* and bundle.* included: `verify` and `inspect` print
# them), so an id of a new family is enumerated too.
_FAMILIES = sorted({rule_id.split(".", 1)[0] for rule_id in RULES}, key=len, reverse=True)
_LITERAL = re.compile(
    r"""["'](""" + "|".join(map(re.escape, _FAMILIES)) + r""")\.([a-z0-9-]+)["']"""
)


def _ids_in_source() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "tooling" / "playbookctl").rglob("*.py"):
        for m in _LITERAL.finditer(path.read_text()):
            found.add(f"{m.group(1)}.{m.group(2)}")
    return found - NOT_RULES


def test_every_rule_id_in_the_code_is_catalogued() -> None:
    """A check that emits an id the catalogue lacks fails here (and at run time, exit 3)."""
    ids = _ids_in_source()
    assert len(ids) > 100
    assert {"verify.location", "verify.tag-moved", "bundle.missing"} <= ids
    assert sorted(i for i in ids if not known(i)) == []


def test_dynamic_rule_ids_are_catalogued() -> None:
    # workflow.py builds workflow.parameter-{key} for these keys.
    for key in ("enum", "pattern"):
        assert known(f"workflow.parameter-{key}")


def test_every_catalogued_rule_is_documented_with_examples() -> None:
    for rule in RULES.values():
        assert rule.summary, rule.id
        assert not rule.summary.endswith("."), rule.id
        assert len(rule.explanation) > 25, rule.id
        assert rule.bad.strip(), rule.id
        assert rule.good.strip(), rule.id
        assert rule.bad != rule.good, rule.id


def test_external_codes_map_to_their_family_and_page() -> None:
    rule = lookup("shellcheck.SC2086")
    assert rule is not None
    assert rule.id == "shellcheck.*"
    assert rule.url_for("shellcheck.SC2086") == "https://www.shellcheck.net/wiki/SC2086"
    hado = lookup("hadolint.DL3018")
    assert hado is not None
    assert hado.url_for("hadolint.DL3018") == "https://github.com/hadolint/hadolint/wiki/DL3018"
    assert lookup("nope.rule") is None
    assert lookup("shellcheck.") is None


def test_readme_rule_table_is_generated_from_the_catalogue() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0]
    assert section.strip() == markdown_table().strip(), (
        "regenerate: playbookctl rules --markdown-table (between the rules markers in README.md)"
    )


def test_rules_md_is_generated_from_the_catalogue() -> None:
    assert (ROOT / RULES_FILE).read_text() == markdown_document(), (
        "regenerate: playbookctl rules --markdown > RULES.md"
    )


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_each_rule_has_a_heading_its_anchor_finds(rule_id: str) -> None:
    rule = RULES[rule_id]
    assert f"\n## {rule_id}\n" in markdown_document()
    assert re.fullmatch(r"[a-z0-9_-]+", rule.anchor)
