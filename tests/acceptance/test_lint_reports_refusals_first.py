"""Whatever publish, register or release refuses, `playbookctl lint` reports first (issue 8).

`refusal_sites()` finds every place the pipeline refuses by what the code reports, not by how
it is spelt (tests/support/refusals.py): each `raise`, each result given a refusing status (any
call or assignment with FAILED, REFUSED, SKIPPED or INVALID of Action, Status or
RegisterAction), each error value set on a result (`result.error = ...; return`), each non-zero
exit of the plan, publish, register and release commands, and what decides it (plan's
--forbid-generated-changes refusals, followed from the exit into the functions that compute
them), in publish, register, release, plan, platforms, build and assemble. `CATALOGUE` maps
every one of them either to the lint rule that reports it first, with a case below that
crafts a playbook triggering it, runs `playbookctl lint` through the CLI and then shows the
stage refusing the same thing; or to why no tree can show it (registry, git or machine state
at release time).

A new refusal without an entry fails `test_every_refusal_is_catalogued`: map it here, and if the
tree can show it, make lint report it first, through the very function the stage calls.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import playbookctl
from playbookctl import build
from playbookctl.cli import main
from playbookctl.config import Config, load_config
from playbookctl.dockerignore import DockerignoreError
from playbookctl.errors import FatalError, GitError, ImmutableVersionError
from playbookctl.gitrepo import GitRepo, submodule_problem
from playbookctl.lint.playbook import check_playbook
from playbookctl.lint.tekton import check_document
from playbookctl.plan import Status, make_plan
from playbookctl.playbook import load_playbook, source_hash
from playbookctl.publish import lint_gate
from playbookctl.register import RegisterAction, register
from playbookctl.release import ReleaseOptions, release
from playbookctl.render import render_pipeline
from playbookctl.results import Action, Artifact, PublishResult
from tests.support.gitrepos import MakeRepo, PlaybookRepo, commit_all, git
from tests.support.refusals import refusal_sites as find_refusals

SOURCE = Path(playbookctl.__file__).parent
# The release pipeline: the stages (publish builds through platforms/build/assemble) and the
# commands a release and its workflow run, whose exit status is the refusal a user sees.
MODULES = (
    "publish",
    "register",
    "release",
    "plan",
    "platforms",
    "build",
    "assemble",
    "dockerignore",
)
COMMANDS = ("plan", "publish", "register", "release")
# assemble.Refused is caught by publish, which has the engine build the image instead; so is
# publish's _EngineNeededError (the same refusal, met where the tag was not looked up yet), and
# dockerignore's NotExactError, which assembly turns into a Refused.
FALLBACKS = ("Refused", "_EngineNeededError", "NotExactError")


def refusal_sites() -> set[str]:
    modules = {m: (SOURCE / f"{m}.py").read_text("utf-8") for m in MODULES}
    commands = {
        f"commands.{c}": (SOURCE / "commands" / f"{c}.py").read_text("utf-8") for c in COMMANDS
    }
    return find_refusals({**modules, **commands}, commands=commands, fallbacks=FALLBACKS)


@dataclass(frozen=True)
class Lint:
    """Lint reports it first: `rule` (an id, or a family ending in '.'), shown by `case`."""

    rule: str
    case: str


@dataclass(frozen=True)
class NotTree:
    """No file of the repository can show it; `why` says what state it depends on."""

    why: str


GIT = "git state at release time (the checkout, the remote, its history), not file content"
REGISTRY = "what the registry holds or answers at release time, not file content"
# The bundle just built is read as Tekton's resolver reads it before it is pushed: a difference
# is build_bundle and read_bundle disagreeing (a defect here), whatever the tree holds.
BUILT_BUNDLE = "build_bundle and the resolver's checks disagreeing on bytes built here"
CATALOGUE: dict[str, Lint | NotTree] = {
    # -- publish ----------------------------------------------------------------------------
    "publish._publish_steps: status = Action.SKIPPED": Lint("workflow.", "lint_gate"),
    "publish._publish_one: raise FatalError 'hash_error'": Lint(
        "playbook.special-file", "special_file"
    ),
    "publish._publish_steps: raise FatalError ': a Containerfile and spec.version are r'": Lint(
        "playbook.missing-file", "missing_containerfile"
    ),
    "publish._publish_steps: raise FatalError 'the rendered Pipeline fails'": Lint(
        "playbook.script-injection", "rendered_pipeline"
    ),
    "publish._check_same_source: raise _RefusedError 'is already published ('": Lint(
        "playbook.version-bump", "version_bump"
    ),
    "publish._publish_one: status = Action.FAILED": NotTree(
        "the handler of the raises listed here (each is catalogued on its own)"
    ),
    "publish._publish_one: status = Action.REFUSED": NotTree(
        "the handler of the _RefusedError raises listed here (each is catalogued on its own)"
    ),
    "publish._publish_steps: raise _RefusedError 'str(exc)'": NotTree(
        "base-image stand-ins (PLAYBOOKCTL_BASE_IMAGE_OVERRIDES, a test/demo setting) pushed "
        "to a registry that is not on loopback: the environment, not the tree"
    ),
    "publish._publish_steps: raise _RefusedError 'is published but'": NotTree(REGISTRY),
    "publish._check_holds: raise _RefusedError ') does not hold the Pipeline this playbo'": (
        NotTree(REGISTRY + " (a tag holding a foreign or tampered bundle)")
    ),
    "publish._check_holds: raise _RefusedError ') is not a valid bundle ('": NotTree(REGISTRY),
    "publish._check_raced_index: raise _RefusedError 'appeared while this run built it ('": (
        NotTree(REGISTRY + " (an image index another writer pushed while this run built)")
    ),
    "publish._check_built_bundle: raise FatalError ': annotation(s)'": NotTree(BUILT_BUNDLE),
    "publish._check_index: raise _RefusedError 'problem'": NotTree(
        REGISTRY + " (a reused image that is not an index of every configured platform)"
    ),
    "publish._publish_steps: raise _RefusedError 'lists'": NotTree(REGISTRY),
    "publish._image: raise FatalError 'str(exc)'": NotTree(
        "a base image's registry or the engine's multi-platform build (platforms.py): the "
        "base image is not found, or lacks a configured platform, in its registry at release "
        "time"
    ),
    "publish._check_built_bundle: raise FatalError ': the Pipeline read back differs from th'": (
        NotTree(BUILT_BUNDLE)
    ),
    "publish._check_built_bundle: raise FatalError ': the bundle does not read as Tekton rea'": (
        NotTree(BUILT_BUNDLE)
    ),
    "publish.publish: raise UsageError 'no such playbook(s) under'": NotTree(
        "the command line names a playbook that does not exist"
    ),
    "publish.source_revisions: raise GitError 'the checkout is not commit'": NotTree(GIT),
    "publish.source_revisions: raise GitError 'this is a shallow clone: the last commit'": (
        NotTree(GIT)
    ),
    # The export refuses a submodule (GitRepo.export_tree); otherwise it fails only on git's
    # own state (objects missing from the clone), which no tree shows.
    "publish._build_context: raise FatalError 'str(exc)'": Lint("playbook.submodule", "submodule"),
    "publish.source_revisions: raise GitError 'uncommitted changes in a playbook to pub'": (
        NotTree(GIT)
    ),
    # -- register ---------------------------------------------------------------------------
    "register._check_action_types: raise FatalError 'refusing to register:'": Lint(
        "action-type.sync-wave", "action_type_sync_wave"
    ),
    "register._check_staying_action_types: raise FatalError 'refusing to register:'": Lint(
        "workflow.action-type", "action_type_deleted"
    ),
    'register.check_registration: raise FatalError "f\'{prefix}: {first.file}:{first.line}:{f"': (
        Lint("workflow.namespace", "registration_invalid")
    ),
    "register.register: raise FatalError ': workflow.yaml cannot be read; run play'": Lint(
        "load.syntax", "workflow_unreadable"
    ),
    "register.register: raise FatalError 'problem'": Lint(
        "playbook.registration-path", "registration_path"
    ),
    "register.register: raise FatalError 'cannot write'": NotTree(
        "the file system refuses the write (permissions, a full disk)"
    ),
    "register.render_registration: raise FatalError ': the publish result has no bundle diges'": (
        NotTree("a publish result file without a bundle digest (the input, not the tree)")
    ),
    "register.register: Change(RegisterAction.SKIPPED) 'why'": NotTree(
        "the publish of that playbook failed (its own refusal is catalogued under publish)"
    ),
    "register.register: Change(RegisterAction.SKIPPED) 'playbook is gone'": NotTree(
        "a result for a playbook deleted since it was published (the release removes it)"
    ),
    "register.register: Change(RegisterAction.SKIPPED) 'source changed since it was published (n'": (  # noqa: E501
        NotTree("the branch moved on since publishing; the next release converges on it")
    ),
    "register.register: Change(RegisterAction.REFUSED) 'is already registered with bundle'": (
        NotTree(
            "a racing release registered this version first with another bundle digest "
            "(content changed under the version is playbook.version-bump, case version_bump)"
        )
    ),
    # -- release and plan -------------------------------------------------------------------
    "release._Releaser.run: raise RefusalsError 'release refused:'": Lint(
        "playbook.version-bump", "version_bump"
    ),
    "plan._entry: Entry(Status.REFUSED) 'conflict'": Lint("playbook.version-bump", "version_bump"),
    "plan._entry: Entry(Status.INVALID) 'the directory name is not a DNS-1123 lab'": Lint(
        "playbook.name", "directory_name"
    ),
    "plan._entry: Entry(Status.INVALID) 'workflow.yaml has no readable spec.versi'": Lint(
        "workflow.", "no_version"
    ),
    "plan._entry: Entry(Status.INVALID) 'why'": Lint("playbook.submodule", "submodule"),
    "plan.make_plan: raise GitError 'and'": NotTree(GIT),
    "plan._Source._read: raise _too_large 'limit'": Lint("load.too-large", "too_large"),
    "plan._bounded_show: raise _too_large 'limit'": Lint("load.too-large", "too_large"),
    "plan.make_plan: raise ValueError 'a base revision needs a git repository'": NotTree(
        "a programming error: the commands always pass a repository with a base"
    ),
    "release._Releaser.check_tree: raise GitError 'the working tree has uncommitted changes'": (
        NotTree(GIT)
    ),
    "release._Releaser.commit_and_push: raise GitError 'gave up after'": NotTree(GIT),
    "release._Releaser.check_loopback: raise LoopbackRemoteError 'problem'": NotTree(
        "registrations pinned to a loopback registry (the dev environment's) pushed to a remote "
        "that is not on this machine: the configured registry and the remote, not the tree"
    ),
    "release._Releaser.own_commits: raise GitError 'HEAD has'": NotTree(GIT),
    "release._Releaser.push: raise GitError 'push to'": NotTree(GIT),
    "release._Releaser.run: raise GitError 'HEAD is detached: check out the branch t'": NotTree(
        GIT
    ),
    "release._Releaser.upstream: raise GitError 'has no branch'": NotTree(GIT),
}


ENGINE = "the Docker engine's state or answer at release time (reachable, its build or push)"
MACHINE = "the machine the release runs on (emulation for a foreign platform's RUN steps)"
CLI = "the command line or the environment the command runs in, not the tree"
HANDLER = "the handler of the raises listed here (each is catalogued on its own)"
PLACEHOLDER = (
    "an artifact marked failed until it is pushed and read back: the raise that leaves it so is "
    "catalogued on its own"
)
READ_RACE = (
    "a Containerfile that publish read a moment before (an unreadable one is "
    "playbook.missing-file or a load finding first): it vanished or lost its permissions meanwhile"
)
GATE = (
    "a change to registry/ between two revisions (the pull request's diff, not a tree): only "
    "the gate can see it; `verify --offline` reports a hand edit of a tree as verify.hand-edit"
)
CATALOGUE.update(
    {
        # -- the commands' exits: each refusal deciding them is catalogued on its own ---------
        "commands.plan.run: exit '1 if plan.refused or edited else 0'": NotTree(HANDLER),
        'commands.publish.run: exit "0 if all((r.ok or r.status.value == \'dry"': NotTree(HANDLER),
        "commands.register._write: exit '1 if skipped else 0'": NotTree(HANDLER),
        "commands.plan.run: raise FatalError 'GITHUB_OUTPUT: cannot append to'": NotTree(CLI),
        "commands.plan.run: raise UsageError '--forbid-generated-changes needs --base'": NotTree(
            CLI
        ),
        "commands.publish._check_writable: raise UsageError '--output'": NotTree(CLI),
        "commands.publish.head_commit: raise FatalError 'cannot tell which commit is published ('": (  # noqa: E501
            NotTree(GIT)
        ),
        "commands.publish.run: raise FatalError 'cannot write'": NotTree(CLI),
        "commands.publish.run: raise UsageError '--commit'": NotTree(CLI),
        "commands.publish.run: raise UsageError '--jobs must be at least 1'": NotTree(CLI),
        "commands.register.run: raise UsageError '--push and --dry-run exclude each other'": (
            NotTree(CLI)
        ),
        # -- plan: the gate's refusals of registry/ edits, and registrations not borne out ----
        "plan.make_plan: replace(Status.REFUSED) 'collisions[name]'": Lint(
            "playbook.duplicate-object", "duplicate_object"
        ),
        "plan.make_plan: replace(Status.REFUSED) '_unproven(repo, rev, name, problem)'": NotTree(
            REGISTRY + " (a registration whose bundle or image tags the registry does not bear "
            "out, or whose pins a registry that lost its data no longer holds)"
        ),
        "plan.generated_changes: reports '(path, why)'": NotTree(GATE),
        "plan.generated_changes: reports 'not a registration register writes'": NotTree(GATE),
        "plan.generated_changes: reports 'not what register writes from this tree '": NotTree(GATE),
        "plan.generated_changes: reports 'removed, but playbooks/'": NotTree(GATE),
        "plan._not_registered_before: reports 'holds no readable RemediationWorkflow'": NotTree(
            GATE
        ),
        "plan._not_registered_before: reports 're-points the registered version'": NotTree(GATE),
        "plan._not_registered_before: reports 'registers version'": NotTree(GATE),
        "plan._not_registered_before: reports 'registers'": NotTree(GATE),
        "plan._edited_registration: reports 'holds no readable RemediationWorkflow'": NotTree(GATE),
        "plan._edited_registration: reports 'records source hash'": NotTree(GATE),
        "plan._edited_registration: reports 'registers playbooks/'": NotTree(GATE),
        "plan._edited_registration: reports 'registers version'": NotTree(GATE),
        "plan._edited_registration: reports 'registration differs from what register '": NotTree(
            GATE
        ),
        "plan._stale_registration: reports 'invalid'": NotTree(GATE),
        "plan._stale_registration: reports 'publish'": NotTree(GATE),
        # -- publish's results ----------------------------------------------------------------
        "publish._image: Artifact(Action.FAILED) 'Action.FAILED'": NotTree(PLACEHOLDER),
        "publish._publish_steps: Artifact(Action.FAILED) 'Action.FAILED'": NotTree(PLACEHOLDER),
        "publish._publish_steps: Artifact(Action.SKIPPED) 'Action.SKIPPED'": Lint(
            "workflow.", "lint_gate"
        ),
        "publish._publish_steps: error = 'not published:'": Lint("workflow.", "lint_gate"),
        "publish._publish_one: PublishResult(Action.FAILED) 'run.source_repository'": NotTree(
            HANDLER
        ),
        "publish._publish_one: error = 'exc'": NotTree(HANDLER),
        "publish._publish_one: error = 'internal error:'": NotTree(
            "a programming error, reported with its log file instead of a traceback"
        ),
        # -- platforms, build and assemble: images made for every platform --------------------
        "platforms.build_children: raise BuildError ': cannot read:'": NotTree(READ_RACE),
        "platforms.platform_pins: raise BuildError ': cannot read:'": NotTree(READ_RACE),
        "platforms.build_children: raise PlatformError 'holds a'": NotTree(
            REGISTRY + " (a child tag holding another platform's image)"
        ),
        "platforms.build_children: raise PlatformError 'problem[1]'": NotTree(MACHINE),
        "platforms.push_index: raise PlatformError 'was not pushed; no index'": NotTree(
            "a programming error: a child without a digest outside a dry run"
        ),
        "platforms.resolve_base: raise PlatformError ': base image'": NotTree(
            REGISTRY + " (a base image missing, or lacking a configured platform)"
        ),
        "platforms.resolve_base: raise PlatformError ': cannot read base image'": NotTree(REGISTRY),
        "assemble._copy_blob: raise FatalError 'copying base layer'": NotTree(REGISTRY),
        # A base layer that does not inflate: BaseCache._read_layer turns it into Refused (the
        # engine builds the image instead), as it does for any layer that does not read as a tar.
        "assemble.summarise_layer: raise tarfile.ReadError 'invalid compressed data:'": NotTree(
            REGISTRY + " (a damaged base layer)"
        ),
        "assemble.assemble_children: raise FatalError ': cannot read:'": NotTree(READ_RACE),
        'assemble.assemble_children: raise platforms.PlatformError ": the base\'s"': NotTree(
            REGISTRY + " (a base image lacking a configured platform)"
        ),
        # -- dockerignore: the context, for the engine path and assembly alike ----------------
        # Each pattern dockerignore.read reports as an error (_UnsupportedError, caught there)
        # is refused by _checked, before any context is chosen.
        **{
            site: Lint("playbook.dockerignore-pattern", "dockerignore_pattern")
            for site in (
                "dockerignore._checked: raise DockerignoreError ': line'",
                "dockerignore._class: raise _UnsupportedError 'the range'",
                "dockerignore._class_char: raise _UnsupportedError \"Docker's matcher reads `[:` "
                'inside [...]"',
                'dockerignore._class_char: raise _UnsupportedError "Docker\'s matcher turns `"',
                "dockerignore._escape_char: raise _UnsupportedError "
                '"Docker\'s matcher reads `\\\\"',
                "dockerignore._new: raise _UnsupportedError "
                "'Docker refuses the build (\"illegal exclu'",
                "dockerignore._new: raise _UnsupportedError 'Docker refuses the build:'",
                "dockerignore._new: raise _UnsupportedError "
                "'a NUL or byte-order mark (U+FEFF) in the'",
            )
        },
        "build.Engine.__init__: raise BuildError 'cannot reach a Docker engine at'": NotTree(
            ENGINE
        ),
        "build.Engine._guarded: raise BuildError \"f'{what}: {_short(exc)}'\"": NotTree(ENGINE),
        "build.Engine._guarded: raise BuildError 'deadline.message(what)'": NotTree(ENGINE),
        "build.Engine._iterate: raise BuildError \"f'{what}: {_short(exc)}'\"": NotTree(ENGINE),
        "build.Engine._iterate_bytes: raise BuildError \"f'{what}: {_short(exc)}'\"": NotTree(
            ENGINE
        ),
        "build.Engine.pull: raise BuildError \"f'{what}: {_error_text(item)}'\"": NotTree(ENGINE),
        "build.Engine._iterate: raise BuildError 'deadline.message(what)'": NotTree(ENGINE),
        "build.Engine._push_once: raise BuildError \"f'{what}: {_error_text(item)}'\"": NotTree(
            REGISTRY + " (the engine's push refused by the registry)"
        ),
        "build.Engine._push_once: raise BuildError ': the engine reported no digest'": NotTree(
            ENGINE
        ),
        "build.Engine._push_once: raise BuildError 'deadline.message(what)'": NotTree(
            REGISTRY + " (an upload stalled past push-stall-timeout or push-timeout)"
        ),
        "build.Engine.build: raise BuildError ': cannot read:'": NotTree(READ_RACE),
        "build.Engine.build: raise BuildError ': image build failed at'": NotTree(
            "a build step that fails when the engine runs it (a RUN command's exit status): "
            "only the engine can tell, and `publish --dry-run` on the pull request runs it"
        ),
        "build.Engine.build: raise BuildError ': image build'": NotTree(
            ENGINE + " (a build past build-timeout)"
        ),
        "build.Engine.push: raise BuildError ': push'": NotTree(
            REGISTRY + " (a push stopped by its deadline)"
        ),
        'build._member: raise BuildError "the engine\'s image archive has no file"': NotTree(
            ENGINE
        ),
        "build.check_platform: raise BuildError ': built for'": NotTree(
            ENGINE + " (it built another platform than asked)"
        ),
        "build.check_publishable: raise StandInRefusedError 'refusing to publish'": NotTree(
            "base-image stand-ins (PLAYBOOKCTL_BASE_IMAGE_OVERRIDES, a test/demo setting) pushed "
            "to a registry that is not on loopback: the environment, not the tree"
        ),
        'build.engine_image: raise BuildError ": the engine\'s image archive is unreadab"': NotTree(
            ENGINE
        ),
        'build.engine_image: raise BuildError ": the engine\'s image does not start with"': NotTree(
            ENGINE
        ),
        "build.engine_image: raise BuildError ': reading the built image'": NotTree(ENGINE),
        "build.stand_ins: raise BuildError ': cannot read:'": NotTree(READ_RACE),
    }
)


def test_every_refusal_is_catalogued() -> None:
    found = refusal_sites()
    missing = sorted(found - set(CATALOGUE))
    stale = sorted(set(CATALOGUE) - found)
    assert not missing, (
        "refusals without an entry in CATALOGUE (map each to the lint rule that reports it "
        "first, or say why no tree can show it):\n  " + "\n  ".join(missing)
    )
    assert not stale, "CATALOGUE entries whose refusal no longer exists:\n  " + "\n  ".join(stale)


# -- the cases ---------------------------------------------------------------------------------


def lint_json(root: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    code = main(["-C", str(root), "lint", "--no-external", "--format", "json"])
    findings: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert code == (1 if any(f["severity"] == "error" for f in findings) else 0)
    return findings


def reported(findings: list[dict[str, Any]], rule: str, file: str | None = None) -> dict[str, Any]:
    """The error lint reported for rule (or a rule of that family), with a real position."""
    hits = [
        f
        for f in findings
        if f["severity"] == "error"
        and (f["rule"] == rule or (rule.endswith(".") and f["rule"].startswith(rule)))
        and (file is None or f["file"] == file)
    ]
    assert hits, f"lint did not report {rule} in {file}: {findings}"
    assert hits[0]["line"] >= 1
    assert hits[0]["column"] >= 1
    return hits[0]


def result_for(config: Config, name: str, digest_char: str = "1") -> PublishResult:
    pb = load_playbook(config.playbooks_dir / name, config.root, config.max_file_bytes)
    version = pb.version or "1.0.0"
    digest = "sha256:" + digest_char * 64
    return PublishResult(
        name=name,
        version=version,
        source_hash=source_hash(pb.dir),
        image=Artifact(config.image_ref(name), version, "sha256:" + "2" * 64, Action.BUILT),
        bundle=Artifact(config.bundle_ref(name), version, digest, Action.PUSHED),
        status=Action.PUSHED,
        commit="a" * 40,
        source_repository="https://git.example.invalid/playbooks",
    )


Case = Callable[[PlaybookRepo, Config, pytest.CaptureFixture[str]], None]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


WF = "playbooks/alpha/workflow.yaml"


@case
def case_lint_gate(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    """publish skips a playbook with lint errors: its gate is `lint_paths` itself."""
    wf = repo.path / WF
    wf.write_text(
        wf.read_text().replace("    engine: tekton\n", "    engine: tekton\n    bundle: x\n")
    )
    first = reported(lint_json(repo.path, capsys), "workflow.", WF)
    gate = lint_gate(config, ["alpha"])["alpha"]
    assert (first["rule"], first["line"]) in {(f.rule, f.line) for f in gate}


@case
def case_special_file(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    os.mkfifo(repo.path / "playbooks/alpha/pipe")
    reported(lint_json(repo.path, capsys), "playbook.special-file", "playbooks/alpha/pipe")
    with pytest.raises(FatalError, match="not a regular file"):
        source_hash(config.playbooks_dir / "alpha")  # what publish would raise
    assert [f.rule for f in lint_gate(config, ["alpha"])["alpha"]] == ["playbook.special-file"]


@case
def case_missing_containerfile(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    (repo.path / "playbooks/alpha/Containerfile").unlink()
    reported(lint_json(repo.path, capsys), "playbook.missing-file", "playbooks/alpha")
    assert "playbook.missing-file" in {f.rule for f in lint_gate(config, ["alpha"])["alpha"]}


PIPELINE = """\
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: workflow
spec:
  params:
    - name: TARGET_RESOURCE
      type: string
    - name: TARGET_RESOURCE_NAME
      type: string
    - name: TARGET_RESOURCE_NAMESPACE
      type: string
      default: ""
  tasks:
    - name: run
      taskSpec:
        steps:
          - name: run
            image: playbook://self
            securityContext:
              runAsUser: 65532
            script: |
              echo $(params.TARGET_RESOURCE_NAME)
"""


@case
def case_rendered_pipeline(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    """publish checks the Pipeline it renders with the pinned image by check_document and
    check_playbook: the functions lint runs on the same render with the placeholder."""
    (repo.path / "playbooks/alpha/pipeline.yaml").write_text(PIPELINE)
    first = reported(
        lint_json(repo.path, capsys), "playbook.script-injection", "playbooks/alpha/pipeline.yaml"
    )
    pb = load_playbook(config.playbooks_dir / "alpha", config.root, config.max_file_bytes)
    pinned = f"{config.image_ref('alpha')}:1.0.0@sha256:{'3' * 64}"
    rendered = render_pipeline(pb, config, image=pinned)
    publish_sees = check_document(rendered.document) + check_playbook(pb, rendered, config)
    assert (first["rule"], first["line"]) in {(f.rule, f.line) for f in publish_sees}


@case
def case_version_bump(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    """Content changed under a registered version: lint says so on the pull request, with the
    very text plan gives and the release refuses with."""
    register(config, [result_for(config, "alpha")])
    repo.commit_all("release alpha 1.0.0")
    repo.push()
    script = repo.path / "playbooks/alpha/remediate.sh"
    script.write_text(script.read_text() + "echo changed\n")
    first = reported(lint_json(repo.path, capsys), "playbook.version-bump", WF)
    assert first["line"] == 7  # spec.version
    (entry,) = [e for e in make_plan(config, None).entries if e.name == "alpha"]
    assert entry.status is Status.REFUSED
    assert first["message"].startswith(entry.reason)
    repo.commit_all("change alpha without a bump")
    repo.push()
    with pytest.raises(ImmutableVersionError, match="release refused: alpha: content changed"):
        release(config, ReleaseOptions())


@case
def case_action_type_sync_wave(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    at = repo.path / "registry/action-types/restart-deployment.yaml"
    at.write_text(at.read_text().replace('sync-wave: "-2"', 'sync-wave: "1"'))
    first = reported(
        lint_json(repo.path, capsys),
        "action-type.sync-wave",
        "registry/action-types/restart-deployment.yaml",
    )
    where = f"{first['file']}:{first['line']}:{first['column']}: [{first['rule']}]"
    with pytest.raises(FatalError, match=re.escape(where)):
        register(config, [result_for(config, "alpha")])


@case
def case_action_type_deleted(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    """An ActionType deleted while a registration names it: lint reports it on the registration,
    and register refuses with that very finding (check_workflow on the registration)."""
    register(config, [result_for(config, "alpha")])
    repo.commit_all("release alpha 1.0.0")
    (repo.path / "registry/action-types/restart-deployment.yaml").unlink()
    first = reported(
        lint_json(repo.path, capsys), "workflow.action-type", "registry/workflows/alpha.yaml"
    )
    where = f"{first['file']}:{first['line']}:{first['column']}: [{first['rule']}]"
    with pytest.raises(FatalError, match=re.escape(where)):
        register(config, [])


@case
def case_registration_invalid(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    """register checks the manifest it generates with check_workflow, lint's workflow rules."""
    wf = repo.path / WF
    wf.write_text(wf.read_text().replace("namespace: kubernaut-system", "namespace: other", 1))
    reported(lint_json(repo.path, capsys), "workflow.namespace", WF)
    with pytest.raises(
        FatalError, match=r"the generated manifest is invalid: .*\[workflow\.namespace\]"
    ):
        register(config, [result_for(config, "alpha")])


@case
def case_workflow_unreadable(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    """An unreadable workflow.yaml has no version, so register's version check already keeps
    it out (the raise is the guard behind that check); either way it is never registered."""
    result = result_for(config, "alpha")
    wf = repo.path / WF
    wf.write_text("apiVersion: [unclosed\n")
    reported(lint_json(repo.path, capsys), "load.syntax", WF)
    (change,) = register(config, [result]).changes
    assert change.action is RegisterAction.SKIPPED
    assert not (repo.path / "registry/workflows/alpha.yaml").exists()


@case
def case_registration_path(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    (repo.path / "registry/workflows/alpha.yaml").mkdir(parents=True)
    first = reported(
        lint_json(repo.path, capsys), "playbook.registration-path", "registry/workflows/alpha.yaml"
    )
    with pytest.raises(FatalError) as caught:
        register(config, [result_for(config, "alpha")])
    assert first["message"].startswith(str(caught.value))


@case
def case_directory_name(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    (repo.path / "playbooks/alpha").rename(repo.path / "playbooks/Alpha_1")
    reported(lint_json(repo.path, capsys), "playbook.name")
    (entry,) = [e for e in make_plan(config, None).entries if e.name == "Alpha_1"]
    assert entry.status is Status.INVALID


@case
def case_no_version(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    wf = repo.path / WF
    wf.write_text(re.sub(r"\n  version: .*\n", "\n", wf.read_text()))
    reported(lint_json(repo.path, capsys), "workflow.", WF)
    (entry,) = [e for e in make_plan(config, None).entries if e.name == "alpha"]
    assert entry.status is Status.INVALID


@case
def case_too_large(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    wf = repo.path / WF
    wf.write_bytes(wf.read_bytes() + b"#" * config.max_file_bytes + b"\n")
    reported(lint_json(repo.path, capsys), "load.too-large", WF)
    with pytest.raises(FatalError, match="larger than max-file-bytes"):
        make_plan(config, None)
    head = repo.commit_all("too large")
    repo.git("checkout", "--quiet", "--detach", "HEAD~1")  # plan --head reads git's objects
    with pytest.raises(FatalError, match="larger than max-file-bytes"):
        make_plan(config, GitRepo(repo.path), head=head)


@case
def case_dockerignore_pattern(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    """A .dockerignore pattern Docker reads as a regex class: lint names its line, publish's
    gate has it, and the context (engine path and assembly alike) is refused on that line."""
    ignore = repo.path / "playbooks/alpha/.dockerignore"
    ignore.write_text("# keep it small\n*.tmp\n\\d*.log\n")
    first = reported(
        lint_json(repo.path, capsys),
        "playbook.dockerignore-pattern",
        "playbooks/alpha/.dockerignore",
    )
    assert first["line"] == 3
    gate = lint_gate(config, ["alpha"])["alpha"]
    assert ("playbook.dockerignore-pattern", 3) in {(f.rule, f.line) for f in gate}
    with pytest.raises(DockerignoreError, match=r"\.dockerignore: line 3: pattern '\\\\d\*\.log'"):
        build.context_files(ignore.parent, "Containerfile")


@case
def case_submodule(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    """A submodule in a playbook: lint names it once; plan refuses the playbook, and the build
    context's export and the source hash refuse it, all in gitrepo.submodule_problem's words
    (the export and the hash left its files out before, silently)."""
    lib = repo.path.parent / "lib"
    lib.mkdir()
    (lib / "helper.sh").write_text("#!/bin/sh\n")
    git(lib, "init", "-q", "-b", "main")
    commit_all(lib, "lib")
    where = "playbooks/alpha/vendor/lib"
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), where)
    head = repo.commit_all("a submodule")
    first = reported(lint_json(repo.path, capsys), "playbook.submodule", where)
    assert first["message"] == submodule_problem(where)
    (entry,) = [e for e in make_plan(config, None).entries if e.name == "alpha"]
    assert (entry.status, entry.reason) == (Status.INVALID, f"{where}: {first['message']}")
    with pytest.raises(GitError) as caught:  # what publish._build_context raises
        GitRepo(repo.path).export_tree(head, "playbooks/alpha", repo.path.parent / "ctx")
    assert str(caught.value) == entry.reason
    with pytest.raises(FatalError, match=re.escape(entry.reason)):
        source_hash(config.playbooks_dir / "alpha")
    assert [f.rule for f in lint_gate(config, ["alpha"])["alpha"]] == ["playbook.submodule"]


@case
def case_duplicate_object(repo: PlaybookRepo, config: Config, capsys: Any) -> None:
    """A new playbook whose rbac.yaml names its Role as the registered alpha's: lint names both
    rbac.yaml files, with the very text plan refuses the new one with."""
    register(config, [result_for(config, "alpha")])
    repo.commit_all("release alpha 1.0.0")
    rbac = repo.write_playbook("dup") / "rbac.yaml"
    rbac.write_text(
        rbac.read_text().replace(
            "kind: Role\nmetadata:\n  name: dup-runner",
            "kind: Role\nmetadata:\n  name: alpha-runner",
        )
    )
    findings = lint_json(repo.path, capsys)
    first = reported(findings, "playbook.duplicate-object", "playbooks/dup/rbac.yaml")
    assert first["line"] == rbac.read_text().split("\n").index("  name: alpha-runner") + 1
    (entry,) = [e for e in make_plan(config, None).entries if e.name == "dup"]
    assert entry.status is Status.REFUSED
    # The same object; plan names alpha's registration (it stays), lint alpha's rbac.yaml (what
    # registry/ holds once the tree is released: lint needs no registry state).
    same = "playbooks/dup/rbac.yaml defines Role kubernaut-workflows/alpha-runner, which "
    assert entry.reason.startswith(same + "registry/workflows/alpha.yaml defines too")
    assert first["message"].startswith(same + "playbooks/alpha/rbac.yaml defines too")
    # and on alpha's side, naming dup's file: either one may be the one to rename
    other = reported(findings, "playbook.duplicate-object", "playbooks/alpha/rbac.yaml")
    assert "playbooks/dup/rbac.yaml defines too" in other["message"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_lint_reports_it_first(
    name: str, playbook_repo_factory: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = playbook_repo_factory({"alpha": "1.0.0"})
    config = load_config(repo.path)
    assert lint_json(repo.path, capsys) == []  # the clean start: each case breaks one thing
    CASES[name](repo, config, capsys)


def test_every_lint_mapping_has_its_case() -> None:
    used = {m.case for m in CATALOGUE.values() if isinstance(m, Lint)}
    assert used == set(CASES), used ^ set(CASES)
