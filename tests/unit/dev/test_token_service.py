"""The token service's scope parsing and grants (playbookctl_dev/token_service.py), table-style.
Its HTTP side runs for real in tests/integration/test_test_world.py."""

from __future__ import annotations

import pytest

from playbookctl_dev.token_service import Grant, User, granted, parse_scope

WRITER = User("pw", (Grant("repository", "*", frozenset({"*"})),))
READER = User("pw", (Grant("repository", "*", frozenset({"pull"})),))
TEAM = User(
    "pw",
    (
        Grant("repository", "team/*", frozenset({"pull", "push"})),
        Grant("registry", "catalog", frozenset({"*"})),
    ),
)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("repository:a/b:pull", ("repository", "a/b", {"pull"})),
        ("repository:a/b:pull,push", ("repository", "a/b", {"pull", "push"})),
        ("repository:a/b:push,pull", ("repository", "a/b", {"pull", "push"})),
        ("registry:catalog:*", ("registry", "catalog", {"*"})),
        ("repository(plugin):a/b:pull", ("repository", "a/b", {"pull"})),
        ("repository:a/b:", ("repository", "a/b", set())),
        ("repository:a/b", None),
        ("garbage", None),
        (":a:pull", None),
    ],
)
def test_parse_scope(scope: str, expected: tuple[str, str, set[str]] | None) -> None:
    assert parse_scope(scope) == expected


@pytest.mark.parametrize(
    ("user", "rtype", "name", "wanted", "expected"),
    [
        (WRITER, "repository", "a/b", {"pull", "push"}, ["pull", "push"]),
        (WRITER, "repository", "a/b", {"delete"}, ["delete"]),
        (WRITER, "registry", "catalog", {"*"}, []),  # no registry grant at all
        (READER, "repository", "a/b", {"pull", "push"}, ["pull"]),
        (READER, "repository", "a/b", {"push"}, []),
        (TEAM, "repository", "team/x", {"pull", "push", "delete"}, ["pull", "push"]),
        (TEAM, "repository", "other/x", {"pull"}, []),
        (TEAM, "registry", "catalog", {"*"}, ["*"]),
    ],
)
def test_granted_is_the_requested_actions_the_user_may_do(
    user: User, rtype: str, name: str, wanted: set[str], expected: list[str]
) -> None:
    assert granted(user, rtype, name, wanted) == expected
