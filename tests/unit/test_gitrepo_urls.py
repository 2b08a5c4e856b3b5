"""Which remotes are on this machine, read as git reads a URL; the loopback refusal's verdict."""

from __future__ import annotations

import pytest

from playbookctl.gitrepo import is_local_url
from playbookctl.release import loopback_problem


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("/srv/git/playbooks.git", True),
        ("../remote.git", True),
        ("remote.git", True),
        ("./host:path.git", True),  # a slash before the colon: a path
        ("file:///srv/git/playbooks.git", True),
        ("FILE:///srv/git/playbooks.git", True),
        ("git@github.com:org/playbooks.git", False),
        ("github.com:org/playbooks.git", False),
        ("https://github.com/org/playbooks.git", False),
        ("ssh://git@host/org/playbooks.git", False),
        ("http://127.0.0.1:8080/playbooks.git", False),  # a server, not this clone's disk
    ],
)
def test_is_local_url(url: str, local: bool) -> None:
    assert is_local_url(url) is local


@pytest.mark.parametrize(
    ("refs", "urls", "refused"),
    [
        (["127.0.0.1:5000/x/b@sha256:1"], ["git@github.com:o/r.git"], True),
        (["127.9.9.9:5000"], ["https://github.com/o/r.git"], True),
        (["LocalHost:5000/x"], ["https://github.com/o/r.git"], True),
        (["[::1]:5000/x"], ["https://github.com/o/r.git"], True),
        (["127.0.0.1:5000/x"], [], True),  # no such remote: nothing says it is local
        (["127.0.0.1:5000/x"], ["/tmp/remote.git"], False),
        (["127.0.0.1:5000/x"], ["/tmp/a.git", "git@github.com:o/r.git"], True),
        (["ghcr.io/org/bundles/x@sha256:1"], ["git@github.com:o/r.git"], False),
        (["localhost.example.com/x"], ["git@github.com:o/r.git"], False),
    ],
)
def test_loopback_problem(refs: list[str], urls: list[str], refused: bool) -> None:
    problem = loopback_problem(refs, "origin", urls)
    assert (problem is not None) is refused
    if problem:
        assert "playbookctl dev remote" in problem
