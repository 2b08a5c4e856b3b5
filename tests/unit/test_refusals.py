"""tests/support/refusals.py finds a refusal however it is written: on crafted modules."""

from __future__ import annotations

import textwrap

from tests.support.refusals import refusal_sites

STAGE = textwrap.dedent(
    """
    from dataclasses import replace

    class Refused(Exception):
        pass

    def publish_one(result, bad):
        if bad:
            result.error = "not published: the playbook is bad"
            return
        result.error = None
        result.error = ""
        result.status = Action.PUSHED

    def plan_one(entry, problem):
        if problem:
            return replace(entry, status=Status.REFUSED, reason=f"refused: {problem}")
        return entry

    def give_up():
        raise Refused("this way is closed; the caller takes another")

    def forbidden_changes(paths):
        out = []
        for path in paths:
            why = _why_not(path)
            if why:
                out.append((path, why))
        return out

    def _why_not(path):
        if path.endswith(".bak"):
            return "a backup is not a registration"
        return None

    def unrelated(path):
        return "a string nobody reports"
    """
)
COMMAND = textwrap.dedent(
    """
    import sys

    def run(args):
        edited = forbidden_changes(args.paths)
        if args.strict and not args.paths:
            return 2
        if args.bail:
            sys.exit("bailing out")
        return 1 if edited else 0

    def fine(args):
        return 0
    """
)


def sites() -> set[str]:
    return refusal_sites(
        {"stage": STAGE, "commands.gate": COMMAND},
        commands=["commands.gate"],
        fallbacks=["Refused"],
    )


def test_an_error_value_set_then_return_is_a_refusal() -> None:
    found = sites()
    assert "stage.publish_one: error = 'not published: the playbook is bad'" in found
    # Clearing an error, or a status that is not a refusal, is not one.
    assert not [s for s in found if s.startswith("stage.publish_one:") and "bad" not in s]


def test_a_refusing_status_passed_anyhow_is_a_refusal() -> None:
    assert "stage.plan_one: replace(Status.REFUSED) 'refused:'" in sites()


def test_exits_and_what_decides_them_are_refusals() -> None:
    found = sites()
    assert "commands.gate.run: exit '2'" in found
    assert "commands.gate.run: exit 'bailing out'" in found
    assert "commands.gate.run: exit '1 if edited else 0'" in found
    # Followed from the exit's condition into the function that computes it, and from there
    # into the function each reported value comes from.
    assert "stage.forbidden_changes: reports '(path, why)'" in found
    assert "stage._why_not: reports 'a backup is not a registration'" in found
    assert not [s for s in found if "fine" in s or "unrelated" in s]


def test_an_exception_the_pipeline_recovers_from_is_not_a_refusal() -> None:
    assert not [s for s in sites() if "give_up" in s]
    with_it = refusal_sites({"stage": STAGE})
    assert "stage.give_up: raise Refused 'this way is closed; the caller takes ano'" in with_it
