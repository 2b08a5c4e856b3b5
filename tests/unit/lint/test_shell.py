"""lint/shell.py: what a script reads, sets and runs, from tree-sitter-bash's parse."""

from __future__ import annotations

import pytest

from playbookctl.lint import shell
from playbookctl.lint.shell import UNKNOWN, literal


def reads(source: str) -> set[tuple[str, str]]:
    return {(r.name, r.mode) for r in shell.parse(source).reads}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("echo $A ${B}\n", {("A", "plain"), ("B", "plain")}),
        (
            'echo "x${A:-d} ${B-d} ${C:+y}"\n',
            {("A", "default"), ("B", "default"), ("C", "default")},
        ),
        ("echo ${A:?must be set} ${B?}\n", {("A", "required"), ("B", "required")}),
        (": ${A:=3}\n", {("A", "assign-default")}),
        ("echo ${#A} ${A,,} ${A//x/y} ${A:0:2}\n", {("A", "plain")}),
        (
            "x=$((A + 1)); ((B < 3)); echo $((10#$C))\n",
            {("A", "plain"), ("B", "plain"), ("C", "plain")},
        ),
        ("cat <<EOF\nhello $A ${B}\nEOF\n", {("A", "plain"), ("B", "plain")}),
        ("cat <<'EOF'\nhello $A\nEOF\n", set()),
        ("echo '$A' $1 $@ $# $? $$\n", set()),
        ("v=${!name:-}\n", {("name", "default")}),
        ('echo "${arr[@]}" ${#arr[@]}\n', {("arr", "plain")}),
        ("for ((i = 0; i < N; i++)); do :; done\n", {("i", "plain"), ("N", "plain")}),
    ],
)
def test_reads(source: str, expected: set[tuple[str, str]]) -> None:
    assert reads(source) == expected


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("A=1\n", "A"),
        ("export A=1\n", "A"),
        ("f() { local a b=2; }\n", "a"),
        ("readonly A=1 B=2\n", "B"),
        ("read -r a b <<<x\n", "b"),
        ("read -r -a arr <<<x\n", "arr"),
        ("read\n", "REPLY"),
        ("for x in 1 2; do :; done\n", "x"),
        ("mapfile -t lines <f\n", "lines"),
        ("printf -v out '%s' x\n", "out"),
        ("getopts ab opt\n", "opt"),
        (": ${A:=3}\n", "A"),
        ("((count++))\n", "count"),
        ("((n = 3))\n", "n"),
        ("let 'z = 1'\n", "z"),
        ("arr[3]=x\n", "arr"),
        ("args=(a b); args+=(c)\n", "args"),
    ],
)
def test_sets(source: str, name: str) -> None:
    assert name in shell.parse(source).sets


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("#!/bin/bash\nset -euo pipefail\n", 2),
        ("set -o nounset\n", 1),
        ("#!/bin/bash -eu\necho\n", 1),
        ("set -e\n", 0),
    ],
)
def test_nounset(source: str, line: int) -> None:
    assert shell.parse(source).nounset == line


def test_self_default_is_marked() -> None:
    (read,) = shell.parse('X="${X:-300}"\n').reads
    assert read.self_default
    assert shell.parse('X="${X:-300}"\n').set_count == {"X": 1}


def test_tekton_refs_are_found_with_positions() -> None:
    model = shell.parse('echo hi\nkubectl scale "$(params.NAME)" $(context.taskRun.name) $(date)\n')
    assert [(r.text, r.line, r.column) for r in model.tekton_refs] == [
        ("$(params.NAME)", 2, 16),
        ("$(context.taskRun.name)", 2, 32),
    ]


def test_the_base_prefix_gap_is_tolerated_and_other_errors_are_reported() -> None:
    assert shell.parse("x=$((10#$Y))\n").unparsed == []
    assert shell.parse("if then fi (\n").unparsed


def kubectl_lines(source: str) -> list[list[set[str]]]:
    return [[set(w) for w in c.words] for c in shell.parse(source).invocations()]


def test_values_follow_assignments_in_every_branch() -> None:
    source = (
        'case "$K" in d) R=deployments.apps ;; s) R=statefulsets.apps ;; esac\n'
        'T="$R/$NAME"\nkubectl get "$T"\n'
    )
    (cmd,) = [c for c in shell.parse(source).invocations() if literal(c.words[0]) == "kubectl"]
    assert set(cmd.words[2]) == {f"deployments.apps/{UNKNOWN}", f"statefulsets.apps/{UNKNOWN}"}


def test_wrappers_and_arrays_expand_at_the_call() -> None:
    source = (
        'k() { kubectl --namespace "$NS" "$@"; }\n'
        'retry() { "$@" || "$@"; }\n'
        "args=(drain node-1 --force)\n"
        "args+=(--delete-emptydir-data)\n"
        "k get pods\n"
        'retry kubectl "${args[@]}"\n'
        "timeout 30 kubectl cordon n\n"
    )
    cmds = [
        [literal(w) or "?" for w in c.words]
        for c in shell.parse(source).invocations()
        if c.words and literal(c.words[0]) == "kubectl"
    ]
    assert cmds == [
        ["kubectl", "--namespace", "?", "get", "pods"],
        ["kubectl", "drain", "node-1", "--force", "--delete-emptydir-data"],
        ["kubectl", "drain", "node-1", "--force", "--delete-emptydir-data"],
        ["kubectl", "cordon", "n"],
    ]


def test_an_array_assigned_twice_is_unknown() -> None:
    source = 'a=(get pods)\na=(get nodes)\nkubectl "${a[@]}"\n'
    (cmd,) = shell.parse(source).invocations()
    assert cmd.words[1] == frozenset({UNKNOWN})


def test_a_variable_read_from_outside_is_unknown_but_its_default_is_kept() -> None:
    (cmd,) = shell.parse('"${KUBECTL:-kubectl}" get pods\n').invocations()
    assert cmd.words[0] == frozenset({UNKNOWN, "kubectl"})
