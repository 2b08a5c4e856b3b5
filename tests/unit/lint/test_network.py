"""lint/network.py as a table: a Containerfile in, its network-input findings out
(rule, line, warning). Every case lists exactly what it expects, so a false alarm fails as
surely as a miss."""

from __future__ import annotations

import pytest

from playbookctl.lint import network
from playbookctl.lint.playbook import parse_containerfile

D = "sha256:" + "a" * 64
BASE = f"FROM reg.example.com/base:1@{D}\n"
ADD = ("playbook.add-url", False)
COPY = ("playbook.copy-from-pinned", False)
RUN = ("playbook.run-download", True)

CASES: list[tuple[str, str, list[tuple[tuple[str, bool], int]]]] = [
    ("nothing-from-the-network", BASE + "COPY a /a\nADD b.tar /b/\n", []),
    # ADD of a URL
    ("add-url", BASE + "ADD https://example.com/kubectl /usr/local/bin/\n", [(ADD, 2)]),
    ("add-http-url", BASE + "ADD http://example.com/x /x\n", [(ADD, 2)]),
    ("add-url-json-form", BASE + 'ADD ["https://example.com/x", "/x"]\n', [(ADD, 2)]),
    ("add-git-repository", BASE + "ADD git@github.com:o/r.git /src\n", [(ADD, 2)]),
    ("add-url-with-checksum", BASE + f"ADD --checksum={D} https://e.com/x /x\n", []),
    ("add-local-file-named-like-a-host", BASE + "ADD example.com/x /x\n", []),
    ("add-url-continued", BASE + "ADD --chown=1:1 \\\n    https://e.com/x /x\n", [(ADD, 2)]),
    # COPY --from
    ("copy-from-tag", BASE + "COPY --from=bitnami/kubectl:1.34 /k /k\n", [(COPY, 2)]),
    ("copy-from-pinned", BASE + f"COPY --from=bitnami/kubectl:1.34@{D} /k /k\n", []),
    # A tab ends a flag as a space does (the builders split on blanks).
    ("copy-from-pinned-tab", BASE + f"COPY --from=bitnami/kubectl:1.34@{D}\t/k /k\n", []),
    ("copy-from-tag-tab", BASE + "COPY\t--from=bitnami/kubectl:1.34\t/k /k\n", [(COPY, 2)]),
    ("add-url-after-a-tab", BASE + "ADD --chown=1:1\thttps://e.com/x /x\n", [(ADD, 2)]),
    (
        "copy-from-stage-name",
        f"FROM reg.example.com/go:1@{D} AS Build\n" + BASE + "COPY --from=build /k /k\n",
        [],
    ),
    ("copy-from-stage-index", f"FROM r/go:1@{D}\n" + BASE + "COPY --from=0 /k /k\n", []),
    ("copy-from-later-stage-is-an-image", BASE + "COPY --from=1 /k /k\n", [(COPY, 2)]),
    (
        "copy-from-a-name-declared-later-is-an-image",
        BASE + "COPY --from=tools /k /k\n" + f"FROM r/t:1@{D} AS tools\n",
        [(COPY, 2)],
    ),
    ("copy-from-arg-pinned", f"ARG K=r/k:1@{D}\n" + BASE + "COPY --from=${K} /k /k\n", []),
    ("copy-from-arg-unpinned", "ARG K=r/k:1\n" + BASE + "COPY --from=$K /k /k\n", [(COPY, 3)]),
    ("copy-from-arg-unset", BASE + "COPY --from=$K /k /k\n", [(COPY, 2)]),
    # downloads in RUN
    ("curl-unchecked", BASE + "RUN curl -fsSLo /k https://dl.k8s.io/k\n", [(RUN, 2)]),
    ("wget-unchecked", BASE + "RUN wget -qO /k https://dl.k8s.io/k && chmod +x /k\n", [(RUN, 2)]),
    ("full-path-curl", BASE + "RUN /usr/bin/curl -o /k https://e.com/k\n", [(RUN, 2)]),
    ("curl-piped-to-sh", BASE + "RUN curl -fsSL https://e.com/install.sh | sh\n", [(RUN, 2)]),
    ("curl-in-exec-form", BASE + 'RUN ["curl", "-o", "/k", "https://e.com/k"]\n', [(RUN, 2)]),
    ("curl-variable-url", BASE + 'ARG URL\nRUN curl -o /k "$URL"\n', [(RUN, 3)]),
    ("curl-in-a-subshell", BASE + "RUN (cd /tmp && curl -O https://e.com/k)\n", [(RUN, 2)]),
    (
        "curl-then-sha256sum-check",
        BASE
        + 'RUN curl -fsSLo /k https://e.com/k && echo "'
        + "a" * 64
        + '  /k" | sha256sum -c -\n',
        [],
    ),
    (
        "check-in-a-later-run-step",
        BASE + "RUN curl -o /k https://e.com/k\nRUN sha256sum --check /k.sha256\n",
        [],
    ),
    (
        "check-in-an-earlier-run-step-does-not-count",
        BASE + "RUN sha256sum -c /s\nRUN curl -o /k https://e.com/k\n",
        [(RUN, 3)],
    ),
    (
        "check-in-another-stage-does-not-count",
        f"FROM r/a:1@{D} AS a\nRUN curl -o /k https://e.com/k\n" + BASE + "RUN sha256sum -c /s\n",
        [(RUN, 2)],
    ),
    (
        "sha256sum-without-check",
        BASE + "RUN curl -o /k https://e.com/k && sha256sum /k\n",
        [(RUN, 2)],
    ),
    ("shasum-short-options", BASE + "RUN curl -o /k https://e.com/k && shasum -a 256 -c s\n", []),
    ("gpg-verify", BASE + "RUN curl -O https://e.com/k && gpg --verify k.asc k\n", []),
    ("curl-version-is-no-download", BASE + "RUN curl --version\n", []),
    (
        "package-manager-is-not-judged",
        BASE + "RUN microdnf install -y jq && microdnf clean all\n",
        [],
    ),
    ("curl-in-a-quoted-word-is-no-command", BASE + "RUN echo 'curl https://e.com'\n", []),
    ("heredoc-is-left-to-hadolint", BASE + "RUN <<EOF\ncurl https://e.com/k\nEOF\n", []),
    (
        "one-finding-per-run-step",
        BASE + "RUN curl -O https://e.com/a && wget https://e.com/b\n",
        [(RUN, 2)],
    ),
    (
        "run-flags-are-not-the-command",
        BASE + "RUN --network=none curl -O https://e.com/a\n",
        [(RUN, 2)],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=i) for i, t, e in CASES])
def test_network_inputs(text: str, expected: list[tuple[tuple[str, bool], int]]) -> None:
    cf = parse_containerfile(text, "Containerfile")
    steps = [network.Step(i.keyword, i.args, i.line) for i in cf.instructions]
    got = [((f.rule, f.warning), f.line) for f in network.check(steps, cf.args)]
    assert got == expected


def test_messages_say_what_to_do() -> None:
    text = BASE + "ADD https://e.com/k /k\nCOPY --from=r/k:1 /k /k\nRUN wget https://e.com/x\n"
    cf = parse_containerfile(text, "Containerfile")
    steps = [network.Step(i.keyword, i.args, i.line) for i in cf.instructions]
    add, copy, run = network.check(steps, cf.args)
    assert add.message.startswith("ADD https://e.com/k fetches from the network at build time")
    assert "sha256sum -c" in add.message
    assert "COPY --from names the image 'r/k:1', which is not pinned by digest" in copy.message
    assert run.message.startswith("RUN downloads with wget and nothing checks what arrived")
