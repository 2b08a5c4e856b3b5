"""The local Actions runner (tests/support/actions.py) must refuse what it does not emulate.

A replay that silently skipped an unknown expression, key or action would prove nothing, so the
refusals are tested as carefully as the values.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.actions import (
    WORKSPACE,
    Event,
    NotEmulatedError,
    OpenMapping,
    Runner,
    evaluate,
    parse_output_file,
    substitute,
)

CONTEXTS: dict[str, Any] = {
    "github": {
        "event": OpenMapping({"before": "b" * 40}),
        "sha": "a" * 40,
        "ref": "refs/heads/main",
        "actor": "bot",
    },
    "inputs": OpenMapping({"base": ""}),
    "secrets": {"GITHUB_TOKEN": "tok"},
    "matrix": {"name": "alpha"},
    "needs": {
        "plan": {
            "result": "success",
            "outputs": {"has-work": "true", "matrix": '{"include":[{"name":"alpha"}]}'},
        }
    },
}


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("github.sha", "a" * 40),
        ("github.event.before", "b" * 40),
        ("github.event.pull_request.number", None),  # the payload is open: absent is null
        ("inputs.base", ""),
        ("inputs.other", None),
        ("secrets.GITHUB_TOKEN", "tok"),
        ("matrix.name", "alpha"),
        ("needs.plan.outputs.has-work == 'true'", True),
        ("needs.plan.outputs.has-work == 'TRUE'", True),  # GitHub ignores case
        ("needs.plan.outputs.has-work == 'false'", False),
        ("fromJSON(needs.plan.outputs.matrix)", {"include": [{"name": "alpha"}]}),
        ("'it''s'", "it's"),
        ("true == false", False),
        ("null", None),
        ("  github.ref  ", "refs/heads/main"),
        ("!cancelled()", True),
        ("!true", False),
        ("!inputs.base", True),
        ("true && false", False),
        ("'a' && 'b'", "b"),
        ("'' && 'b'", ""),
        ("!cancelled() && needs.plan.outputs.has-work == 'true'", True),
        ("!cancelled() && needs.plan.outputs.has-work == 'false'", False),
    ],
)
def test_supported_expressions(expr: str, value: object) -> None:
    assert evaluate(expr, CONTEXTS) == value


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("needs.plan.outputs.has-changes", "needs.plan.outputs.has-changes is not defined"),
        ("needs.publish.result", "needs.publish is not defined"),
        ("matrix.version", "matrix.version is not defined"),
        ("secrets.OTHER", "secrets.OTHER is not defined"),
        ("steps.plan.outputs.matrix", "unknown context 'steps'"),
        ("env.HOME", "unknown context 'env'"),
        ("runner.temp", "unknown context 'runner'"),
        ("always()", "unsupported function always()"),
        ("success()", "unsupported function success()"),
        ("failure() && true", "unsupported function failure()"),
        ("contains(github.ref)", "unsupported function contains()"),
        ("contains(github.ref, 'main')", "unsupported function contains()"),
        ("github.sha, github.ref", "unsupported ','"),
        ("hashFiles('/etc/*')", "outside a job"),
        ("toJSON(matrix)", "unsupported function toJSON()"),
        ("fromJSON(matrix)", "fromJSON() of a non-string"),
        ("true || false", "cannot read '|| false'"),
        ("cancelled(1)", "expected )"),
        ("github.sha != 'x'", "cannot read \"!= 'x'\""),
        ("github.event['before']", "cannot read"),
        ("1 == '1'", "comparison of int with str"),
        ("github.sha github.ref", "unsupported 'github'"),
        ("fromJSON(", "expected more"),
    ],
)
def test_anything_else_fails_the_replay(expr: str, why: str) -> None:
    with pytest.raises(NotEmulatedError) as exc:
        evaluate(expr, CONTEXTS)
    assert why in str(exc.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("publish ${{ matrix.name }}", "publish alpha"),
        ("${{ fromJSON(needs.plan.outputs.matrix) }}", {"include": [{"name": "alpha"}]}),
        ("release-register-${{ github.ref }}", "release-register-refs/heads/main"),
        ("${{ inputs.other }}x", "x"),
        ("${{ needs.plan.outputs.has-work == 'true' }}", True),
        ("plain", "plain"),
    ],
)
def test_substitute(text: str, value: object) -> None:
    assert substitute(text, CONTEXTS) == value


@pytest.mark.parametrize(
    ("text", "outputs"),
    [
        ("a=1\nb=x=y\n", {"a": "1", "b": "x=y"}),
        ("m<<EOF\nline 1\nline=2\nEOF\nn=3\n", {"m": "line 1\nline=2", "n": "3"}),
        ("a=1\na=2\n", {"a": "2"}),
        ("", {}),
    ],
)
def test_output_file(text: str, outputs: dict[str, str]) -> None:
    assert parse_output_file(text) == outputs


@pytest.mark.parametrize("text", ["m<<EOF\nnever ends\n", "just text\n"])
def test_unreadable_output_file(text: str) -> None:
    with pytest.raises(NotEmulatedError):
        parse_output_file(text)


def _runner(tmp_path: Path, workflow: str) -> Runner:
    path = tmp_path / "wf.yaml"
    path.write_text(textwrap.dedent(workflow))
    return Runner(path, tmp_path / "remote.git", tmp_path / "run", {"PATH": "/usr/bin:/bin"},
                  tmp_path / "playbookctl")  # fmt: skip


WORKFLOW = """\
name: t
on: {{push: {{branches: [main]}}}}
jobs:
  first:
    runs-on: ubuntu-24.04
    {job_extra}
    outputs:
      said: ${{{{ steps.say.outputs.word }}}}
    steps:
      - id: say
        run: |
          echo "word=$WORD" >> "$GITHUB_OUTPUT"
          echo "sha=$GITHUB_SHA actions=$GITHUB_ACTIONS" >> "$GITHUB_STEP_SUMMARY"
          {fail}
        env:
          WORD: ${{{{ github.actor }}}}
        {step_extra}
      - run: echo after
  second:
    needs: first
    if: needs.first.outputs.said == 'release-bot'
    runs-on: ubuntu-24.04
    steps:
      - run: echo "second ran"
"""


def test_steps_outputs_summaries_and_conditions(tmp_path: Path) -> None:
    text = WORKFLOW.format(job_extra="", fail="", step_extra="")
    runs = _runner(tmp_path, text).play(Event("push", "c" * 40))
    (first,) = runs["first"]
    assert first.result == "success"
    assert first.outputs == {"said": "release-bot"}
    assert first.summary == f"sha={'c' * 40} actions=true\n"
    assert [s.status for s in first.steps] == ["success", "success"]
    (second,) = runs["second"]
    assert second.result == "success"
    assert second.steps[0].stdout == "second ran\n"


def test_a_failing_step_fails_its_job_and_skips_the_rest_and_the_dependants(
    tmp_path: Path,
) -> None:
    text = WORKFLOW.format(job_extra="", fail="exit 3", step_extra="")
    runs = _runner(tmp_path, text).play(Event("push", "c" * 40))
    (first,) = runs["first"]
    assert first.result == "failure"
    assert [(s.status, s.returncode) for s in first.steps] == [("failure", 3), ("skipped", 0)]
    assert [r.result for r in runs["second"]] == ["skipped"]


@pytest.mark.parametrize(
    ("job_extra", "step_extra", "why"),
    [
        ("env: {A: b}", "", "job first: unsupported keys ['env']"),
        ("defaults: {run: {shell: sh}}", "", "unsupported keys ['defaults']"),
        ("", "shell: python", "step 0: unsupported keys ['shell']"),
        ("", "working-directory: sub", "unsupported keys ['working-directory']"),
        ("", "continue-on-error: true", "unsupported keys ['continue-on-error']"),
    ],
)
def test_unknown_keys_fail_the_replay(
    tmp_path: Path, job_extra: str, step_extra: str, why: str
) -> None:
    text = WORKFLOW.format(job_extra=job_extra, fail="", step_extra=step_extra)
    with pytest.raises(NotEmulatedError) as exc:
        _runner(tmp_path, text).play(Event("push", "c" * 40))
    assert why in str(exc.value)


@pytest.mark.parametrize(
    ("step", "why"),
    [
        ("uses: actions/cache/save@v4", "action actions/cache/save is not emulated"),
        ("{uses: actions/cache@v4, with: {lookup-only: true}}", "['lookup-only'] are not emulated"),
        ("{uses: actions/cache@v4, with: {path: 'a/*', key: k}}", "path patterns"),
        ("{uses: actions/checkout@v4, with: {ref: x}}", "inputs ['ref'] are not emulated"),
        ('run: echo "A=1" >> "$GITHUB_ENV"', "writes GITHUB_ENV"),
        ("run: echo ${{ runner.os }}", "unknown context 'runner'"),
    ],
)
def test_unknown_actions_and_side_channels_fail_the_replay(
    tmp_path: Path, step: str, why: str
) -> None:
    text = f"""\
    on: [push]
    jobs:
      only:
        runs-on: ubuntu-24.04
        steps:
          - {step}
    """
    with pytest.raises(NotEmulatedError) as exc:
        _runner(tmp_path, text).play(Event("push", "c" * 40))
    assert why in str(exc.value)


def test_an_event_the_workflow_does_not_take_fails_the_replay(tmp_path: Path) -> None:
    text = WORKFLOW.format(job_extra="", fail="", step_extra="")
    with pytest.raises(NotEmulatedError, match="does not run on workflow_dispatch"):
        _runner(tmp_path, text).play(Event("workflow_dispatch", "c" * 40))


@pytest.mark.parametrize(
    ("condition", "ran"),
    [
        ("needs.first.result == 'failure'", False),  # implicit success(): skipped
        ("${{ !cancelled() && needs.first.result == 'failure' }}", True),
        ("${{ !cancelled() && needs.first.result == 'success' }}", False),
    ],
)
def test_a_status_function_drops_the_implicit_success(
    tmp_path: Path, condition: str, ran: bool
) -> None:
    text = f"""\
    on: [push]
    jobs:
      first:
        runs-on: ubuntu-24.04
        steps:
          - run: exit 1
      second:
        needs: first
        if: "{condition}"
        runs-on: ubuntu-24.04
        steps:
          - run: echo ran
    """
    runs = _runner(tmp_path, text).play(Event("push", "c" * 40))
    assert [r.result for r in runs["first"]] == ["failure"]
    assert [r.result for r in runs["second"]] == ["success" if ran else "skipped"]


MATRIX_WORKFLOW = """\
name: t
on: {{push: {{branches: [main]}}}}
jobs:
  fan:
    runs-on: ubuntu-24.04
    strategy:
      matrix: ${{{{ fromJSON('{{"include":[{entries}]}}') }}}}
    steps:
      - run: echo "$N"
        env:
          N: ${{{{ matrix.n }}}}
"""


@pytest.mark.parametrize(("count", "result"), [(256, "success"), (257, "failure")])
def test_a_matrix_of_more_than_256_jobs_fails_as_on_github(
    tmp_path: Path, count: int, result: str
) -> None:
    entries = ",".join(f'{{"n":"{i}"}}' for i in range(count))
    runner = _runner(tmp_path, MATRIX_WORKFLOW.format(entries=entries))
    runs = runner.play(Event("push", "c" * 40))["fan"]
    assert {r.result for r in runs} == {result}
    if result == "success":
        assert sorted(int(r.steps[0].stdout) for r in runs) == list(range(count))


TOKEN_WORKFLOW = """\
on: [push]
permissions: {workflow}
jobs:
  writes:
    runs-on: ubuntu-24.04
    permissions: {{contents: read, packages: write}}
    steps:
      - run: echo "$T"
        env:
          T: ${{{{ secrets.GITHUB_TOKEN }}}}
  reads:
    runs-on: ubuntu-24.04
    permissions: {{contents: read, packages: read}}
    steps:
      - run: echo "$T"
        env:
          T: ${{{{ github.token }}}}
  inherits:
    runs-on: ubuntu-24.04
    steps:
      - run: echo "$T"
        env:
          T: ${{{{ github.token }}}}
"""
TOKENS = {"write": "w-token", "read": "r-token", "none": "no-packages-token"}


@pytest.mark.parametrize(
    ("workflow", "inherited"),
    [("{}", "no-packages-token"), ("{contents: read}", "no-packages-token"),
     ("{packages: read}", "r-token"), ("read-all", "r-token"), ("write-all", "w-token")],
)  # fmt: skip
def test_each_job_gets_the_token_its_package_permission_grants(
    tmp_path: Path, workflow: str, inherited: str
) -> None:
    """The token a job logs in to the registry with is what its own permissions make it (job
    permissions replace the workflow's): a job without `packages: read` cannot read a private
    registry in the replay either."""
    path = tmp_path / "wf.yaml"
    path.write_text(TOKEN_WORKFLOW.format(workflow=workflow))
    runner = Runner(path, tmp_path / "remote.git", tmp_path / "run", {"PATH": "/usr/bin:/bin"},
                    tmp_path / "playbookctl", tokens=TOKENS)  # fmt: skip
    runs = runner.play(Event("push", "c" * 40))
    said = {job: runs[job][0].steps[0].stdout.strip() for job in runs}
    assert said == {"writes": "w-token", "reads": "r-token", "inherits": inherited}


def test_the_job_token_is_not_a_secret_to_pass_and_is_undefined_without_tokens(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(TOKEN_WORKFLOW.format(workflow="{}"))
    with pytest.raises(NotEmulatedError, match="each job's own token"):
        Runner(path, tmp_path / "remote.git", tmp_path / "run", {}, tmp_path / "playbookctl",
               secrets={"GITHUB_TOKEN": "x"})  # fmt: skip
    runner = Runner(path, tmp_path / "remote.git", tmp_path / "run", {}, tmp_path / "playbookctl")
    with pytest.raises(NotEmulatedError, match="not defined here"):
        runner.play(Event("push", "c" * 40))


CACHE_WORKFLOW = """\
on: [push, pull_request]
jobs:
  only:
    runs-on: ubuntu-24.04
    steps:
      - id: restore
        uses: actions/cache@v4
        with:
          path: ~/.cache/t
          key: k-${{ github.sha }}
          restore-keys: |
            other-
            k-
      - run: |
          cat ~/.cache/t/by 2>/dev/null || echo none
          mkdir -p ~/.cache/t && echo "$REF" > ~/.cache/t/by
          exit "$FAIL"
        env:
          REF: ${{ github.ref }}
          FAIL: ${{ github.event.fail }}
"""


def test_actions_cache_keys_prefixes_and_branch_scopes(tmp_path: Path) -> None:
    """What actions/cache restores, as GitHub does: the exact key, else the newest entry a
    restore-key prefixes, from the run's own ref, else from the default branch; it saves (at the
    end of a successful job, when the key did not hit) into the run's own ref only."""
    path = tmp_path / "wf.yaml"
    path.write_text(CACHE_WORKFLOW)
    runner = Runner(path, tmp_path / "remote.git", tmp_path / "run", {"PATH": "/usr/bin:/bin"},
                    tmp_path / "playbookctl")  # fmt: skip

    def play(sha: str, ref: str = "refs/heads/main", fail: int = 0) -> tuple[str, str]:
        name = "pull_request" if ref.startswith("refs/pull/") else "push"
        base = "main" if name == "pull_request" else ""
        event = Event(name, sha * 40, ref=ref, base_ref=base, payload={"fail": str(fail)})
        (job,) = runner.play(event)["only"]
        assert job.result == ("failure" if fail else "success")
        restore, script = job.steps
        return restore.outputs["cache-hit"], script.stdout.strip()

    assert play("a", fail=1) == ("false", "none")  # a fresh runner's HOME; a failed job saves none
    assert play("a") == ("false", "none")
    assert play("a") == ("true", "refs/heads/main")  # exact: not saved again
    assert play("1", ref="refs/pull/1/merge") == ("false", "refs/heads/main")  # the default's
    assert play("1", ref="refs/pull/1/merge") == ("true", "refs/pull/1/merge")  # its own
    assert play("2", ref="refs/pull/2/merge") == ("false", "refs/heads/main")  # not #1's
    # A pull request never writes the default branch's scope: its newer entries are not seen.
    assert play("b") == ("false", "refs/heads/main")
    assert play("b") == ("true", "refs/heads/main")


def test_hash_files(tmp_path: Path) -> None:
    (tmp_path / "p" / "a").mkdir(parents=True)
    (tmp_path / "p" / "b").mkdir()
    (tmp_path / "p" / "a" / "Containerfile").write_text("FROM x\n")
    contexts = {**CONTEXTS, WORKSPACE: tmp_path}
    first = evaluate("hashFiles('p/*/Containerfile')", contexts)
    assert len(first) == 64
    assert evaluate("hashFiles('nothing/*', 'p/*/None')", contexts) == ""
    (tmp_path / "p" / "b" / "Containerfile").write_text("FROM y\n")
    second = evaluate("hashFiles('p/*/Containerfile')", contexts)
    assert second not in ("", first)
    assert evaluate("hashFiles('p/b/Containerfile', 'p/a/Containerfile')", contexts) == second
    with pytest.raises(NotEmulatedError, match="outside a job"):
        evaluate("hashFiles('p/*')", CONTEXTS)
    with pytest.raises(NotEmulatedError, match="relative glob strings"):
        evaluate("hashFiles('/etc/*')", contexts)


RERUN = """\
name: t
on: push
jobs:
  good:
    runs-on: ubuntu-24.04
    steps:
      - run: echo good >> {log}
  flaky:
    runs-on: ubuntu-24.04
    steps:
      - run: echo flaky >> {log}
      - run: test -e {fixed}
      - uses: actions/upload-artifact@v4
        with:
          name: flaky
          path: .
  after:
    needs: [good, flaky]
    runs-on: ubuntu-24.04
    steps:
      - run: echo after >> {log}
"""


def test_re_run_failed_jobs_runs_them_and_their_dependants_in_the_same_run(
    tmp_path: Path,
) -> None:
    """GitHub's "Re-run failed jobs": the failed ones and those that need them run again, each
    on a fresh runner, in the same run; the others keep their results. "Re-run all jobs" runs
    every one again, and an artifact name an earlier attempt took is refused."""
    log, fixed = tmp_path / "log", tmp_path / "fixed"
    runner = _runner(tmp_path, RERUN.format(log=log, fixed=fixed))
    runs = runner.play(Event("push", "c" * 40))
    results = {j: [r.result for r in rs] for j, rs in runs.items()}
    assert results == {"good": ["success"], "flaky": ["failure"], "after": ["skipped"]}
    assert log.read_text().split() == ["good", "flaky"]
    fixed.touch()
    again = runner.rerun(runs)
    assert again["good"] is runs["good"]
    results = {j: [r.result for r in rs] for j, rs in again.items()}
    assert results == {"good": ["success"], "flaky": ["success"], "after": ["success"]}
    assert log.read_text().split() == ["good", "flaky", "flaky", "after"]
    (flaky,) = again["flaky"]
    assert flaky.workspace is not None
    assert flaky.workspace != runs["flaky"][0].workspace
    assert (runner.run_dir / "artifacts" / "flaky").is_dir()
    # Re-run all jobs: flaky's upload finds its name taken by the attempt before.
    last = runner.rerun(again, jobs=list(again))
    assert log.read_text().split() == ["good", "flaky", "flaky", "after", "good", "flaky"]
    (flaky,) = last["flaky"]
    assert flaky.result == "failure"
    failed = flaky.failed_step()
    assert failed is not None
    assert "(409) Conflict: an artifact with this name already exists" in failed.stderr
