"""Publish stage: per playbook, image -> rendered Pipeline -> Tekton bundle, immutably.

For each playbook, in a thread pool:
1. lint them all first (`lint_paths`; a playbook with lint errors is not published);
2. look up `<bundle>:<version>` in the registry: present with this source hash, its image's tag
   too, and its objects exactly what the playbook renders to around that image -> everything
   is reused (no build, no write); otherwise refused (bump the version, or find out who
   overwrote the tag);
3. otherwise look up `<image>:<version>` the same way; absent -> build and push it. A version git
   does not register, assembled, is made first and its tag looked up once, just before the
   index would be written (_known_new);
4. render the Pipeline with the image pinned as `repo:tag@sha256:...`, run every `tekton.*`
   and `playbook.*` rule on it (a failing one is never bundled);
5. build the bundle, check once more that the tag is still absent (another publisher may have
   raced us: its bundle is adopted if its objects are ours, refused otherwise), push it, read it
   back by digest as Tekton would and compare.

A dry run does all of this except writing to the registry: images not yet published are built
in the local engine (so a pull request shows whether they build), never pushed.

Every image is made from git's objects, exported by GitRepo.export_tree: a release from its
commit, a dry run and `try` from a commit of the working tree's tracked files
(GitRepo.worktree_commit), so a dry run checks the very bytes the release will publish and no
untracked, ignored or out-of-tree file enters an image. Only outside a git checkout (a source
export published with --commit) is the directory itself the context.

Versions are immutable: nothing here overwrites or deletes a tag. A result's status says what
really happened; an image pushed before a later step failed is reported as built, with the
playbook failed, and the next run reuses it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playbookctl import assemble, build, dockerfile, platforms, smoke
from playbookctl.bump import bump_advice, bump_command
from playbookctl.bundle import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_HASH,
    ANNOTATION_VERSION,
    EMPTY_CONFIG,
    EMPTY_CONFIG_DIGEST,
    Bundle,
    build_bundle,
    canonical_json,
    check_built,
    push_bundle,
    read_bundle,
)
from playbookctl.config import Config
from playbookctl.crashpoints import crash_point
from playbookctl.errors import (
    FatalError,
    GitError,
    ImmutableVersionError,
    RegistryError,
    UsageError,
)
from playbookctl.findings import Finding, Severity
from playbookctl.lint import apply_policy, lint_paths
from playbookctl.lint.playbook import check_playbook
from playbookctl.lint.tekton import check_document
from playbookctl.oci import (
    INDEX_MEDIA_TYPES,
    ManifestNotFoundError,
    ManifestRefusedError,
    RegistryClient,
    parse_reference,
)
from playbookctl.oci.auth import MAX_MOUNT_SOURCES
from playbookctl.playbook import (
    CONTAINERFILES,
    Playbook,
    discover,
    load_playbook,
    shown_path,
    source_hash,
)
from playbookctl.register import WORKFLOWS, parse_registration
from playbookctl.render import RenderedPipeline, render_pipeline
from playbookctl.results import Action, Artifact, PublishResult

if TYPE_CHECKING:
    from playbookctl.gitrepo import GitRepo

# (playbook name, stage, message); run-wide events have name "". Stages: lint (the gate over
# all playbooks), build and push (the image), bundle (render, push, read back), output (a line
# of the engine's build or push output), done (the message is the final status).
EventCallback = Callable[[str, str, str], None]
log = logging.getLogger("playbookctl.publish")
# Dry runs validate the rendered Pipeline without a pushed image: a digest of the right shape.
DRY_RUN_DIGEST = "sha256:" + "0" * 64
MAX_SHOWN_FINDINGS = 5


def _no_events(_name: str, _stage: str, _message: str) -> None:
    return None


def dev_version(version: str, source_hash: str) -> str:
    """`playbookctl try`'s version: `1.2.0-dev.<12 hex of the source hash>`, so a try never
    spends the real version and the same working tree reuses its earlier try."""
    short = source_hash.removeprefix("sha256:")[:12]
    if short.isdigit() and short.startswith("0"):
        short = "x" + short[1:]  # a numeric semver identifier must not start with 0
    return f"{version}-dev.{short}"


@dataclass(frozen=True)
class Published:
    """What the registry holds under a tag: its digest and the source hash it was made from."""

    digest: str
    source_hash: str | None
    # The commit the published artifact was made from (bundles only): a reused release keeps
    # naming the source that really produced it, not the commit of the run that found it.
    revision: str | None = None
    # Images: the platforms an index lists (none for a single-platform image).
    platforms: tuple[str, ...] = ()


class _RefusedError(FatalError):
    """Internal: stop this playbook with status refused."""


class _EngineNeededError(Exception):
    """Internal: assembly was refused (the reason is the message) for a playbook whose tag
    was not looked up first (an engine build is not reproducible, so its tag is looked up
    before it: _image)."""


class _Run:
    """State shared by the worker threads of one publish run."""

    def __init__(
        self,
        config: Config,
        client: RegistryClient,
        *,
        dry_run: bool,
        commit: str,
        source_repository: str,
        on_event: EventCallback,
        docker_host: str | None,
        dev_versions: bool = False,
    ) -> None:
        self.config = config
        self.dev_versions = dev_versions
        self.client = client
        self.dry_run = dry_run
        self.commit = commit
        self.source_repository = source_repository
        self.on_event = on_event
        self.docker_host = docker_host
        self.lint_errors: dict[str, list[Finding]] = {}
        self.revisions: dict[str, tuple[str, int]] = {}
        self._local = threading.local()
        self._engines: list[build.Engine] = []
        self._lock = threading.Lock()
        # Base images read for assembly: once per run (their layer summaries once per machine).
        self.bases = assemble.default_cache(target=config.registry)
        # Smoke runs of assembled images: base filesystems and started probes, once per run.
        self.smoke_memo = smoke.ProbeMemo()
        # The commit every build context is exported from (see _build_context), None outside
        # a git checkout; and per playbook, the files on disk that it leaves out. Set by
        # publish().
        self.context_rev: str | None = None
        self.left_out: dict[str, tuple[list[str], list[str]]] = {}
        # Set when a version git calls new was found published all the same (an earlier run
        # was killed before it registered): the rest of the run looks each tag up first again.
        self.leftovers = threading.Event()
        # The artifact layout's empty config: the repository it is mounted from (the first
        # playbook's bundle repository, named in every token request: _plan_tokens), put there
        # once by the first bundle pushed (config_source). Unset: each bundle uploads its own.
        self.config_anchor: str | None = None
        self._anchor_lock = threading.Lock()
        self._anchor_ready: bool | None = None  # None: not tried yet; False: put there failed
        # Set once the registry refused a bundle as an OCI artifact: the rest of the run
        # pushes tkn's layout (a registry's manifest types are its own, not a repository's).
        self.artifact_refused = threading.Event()

    def bundle_layout(self) -> str:
        return "tkn" if self.artifact_refused.is_set() else self.config.bundle_layout

    def config_source(self, bundle: Bundle) -> str | None:
        """The repository to mount `bundle`'s config from: the anchor, once the empty config is
        stored there (by the first caller, while the others wait: two requests per run, where
        every bundle uploading its own cost two each). None for tkn's layout, whose config is
        each bundle's own, and when the anchor could not take it (each then uploads its own)."""
        anchor = self.config_anchor
        if anchor is None or bundle.config_descriptor.digest != EMPTY_CONFIG_DIGEST:
            return None
        r = parse_reference(anchor)
        with self._anchor_lock:
            if self._anchor_ready is None:
                try:
                    self.client.push_blob(
                        r.repository,
                        EMPTY_CONFIG,
                        EMPTY_CONFIG_DIGEST,
                        registry=r.registry,
                        check=False,
                    )
                    self._anchor_ready = True
                except RegistryError as exc:
                    log.debug("the empty config was not stored in %s: %s", anchor, exc)
                    self._anchor_ready = False
        return r.repository if self._anchor_ready else None

    def engine(self) -> build.Engine:
        """One Docker client per worker thread, made only when a build is needed."""
        engine: build.Engine | None = getattr(self._local, "engine", None)
        if engine is None:
            engine = build.Engine(
                self.docker_host,
                build_timeout=self.config.build_timeout,
                push_timeout=self.config.push_timeout,
                push_stall_timeout=self.config.push_stall_timeout,
                hermetic=self.config.hermetic,
            )
            self._local.engine = engine
            with self._lock:
                self._engines.append(engine)
        return engine

    def export(self, rev: str, directory: Path, target: Path) -> None:
        """Write `directory`'s files at `rev` into `target` from git's objects. One
        repository object per worker thread: each starts its own git processes (made once, not
        per playbook), and its object reader must not be shared between threads."""
        repo = self._git()
        here = directory.absolute().parent.resolve() / directory.name  # a link stays itself
        repo.export_tree(rev, here.relative_to(repo.root.resolve()).as_posix(), target)

    def _git(self) -> GitRepo:
        """This worker thread's repository object (see export); a GitError outside a checkout."""
        from playbookctl.gitrepo import GitRepo  # noqa: PLC0415 - git loads only when publishing

        repo: GitRepo | None = getattr(self._local, "git", None)
        if repo is None:
            repo = GitRepo(self.config.root)
            self._local.git = repo
        return repo

    def unregistered(self, name: str, version: str) -> bool:
        """True when git's record at the run's commit says `version` of `name` is not
        registered: registry/workflows/<name>.yaml is absent or registers another version.
        False when it registers this version, or when that cannot be told (no checkout, a
        commit git lacks, a file past max-file-bytes or unreadable)."""
        path = self.config.registry_dir / WORKFLOWS / f"{name}.yaml"
        try:
            repo = self._git()
            repo.rev_parse(self.commit)  # a GitError when git lacks it (a --commit from CI)
            rel = path.resolve().relative_to(repo.root.resolve()).as_posix()
            size = repo.size(self.commit, rel)
            if size is None:
                return True
            if size > self.config.max_file_bytes:
                return False
            text = repo.show(self.commit, rel)
        except (ValueError, GitError):
            return False
        registered = parse_registration(text, name) if text is not None else None
        return registered is not None and registered.version != version

    def close(self) -> None:
        self.bases.settle()
        for engine in self._engines:
            engine.close()


def publish(
    config: Config,
    names: list[str] | None,
    *,
    jobs: int,
    dry_run: bool,
    commit: str,
    source_repository: str,
    on_event: EventCallback = _no_events,
    docker_host: str | None = None,
    allow_dirty: bool = False,
    dev_versions: bool = False,
) -> list[PublishResult]:
    """Publish the named playbooks (default: all), `jobs` at a time; one result per playbook.

    Unknown names are a UsageError before anything starts, and so are uncommitted changes in a
    playbook to publish (a GitError: the image and the bundle would name a revision that does
    not hold them, using up an immutable version); `allow_dirty` lifts that for callers that
    publish throwaway versions, and dry runs write nothing so they need no clean tree. Every
    other problem is recorded in that playbook's result and the others carry on.

    Each playbook's revision (image label, bundle annotation, registration) is the last commit
    at or before `commit` that touched its directory, not `commit` itself: the same content
    gives the same bytes whichever later commit a release runs from. `dev_versions`
    (`playbookctl try` only) publishes under `dev_version(...)` instead of spec.version.
    """
    available = discover(config)
    if names:
        unknown = sorted(set(names) - set(available))
        if unknown:
            raise UsageError(
                f"no such playbook(s) under {config.playbooks_dir}: {', '.join(unknown)}"
            )
        selected = sorted(set(names))
    else:
        selected = available
    if not selected:
        return []
    worktree = dry_run or allow_dirty
    revisions = source_revisions(config, selected, commit, check_clean=not worktree)
    context_rev, left_out = context_revision(config, selected, commit, worktree=worktree)
    with RegistryClient(config) as client:
        run = _Run(
            config,
            client,
            dry_run=dry_run,
            commit=commit,
            source_repository=source_repository,
            on_event=on_event,
            docker_host=docker_host,
            dev_versions=dev_versions,
        )
        run.revisions = revisions
        run.context_rev, run.left_out = context_rev, left_out
        on_event("", "lint", f"linting {len(selected)} playbook(s)")
        run.lint_errors = lint_gate(config, selected)
        if not dry_run:
            # The bundles' shared config goes to a playbook that will be published (lint
            # passed), so no repository is made for a blob alone.
            clean = [n for n in selected if not run.lint_errors.get(n)]
            if config.bundle_layout == "artifact" and clean:
                run.config_anchor = config.bundle_ref(clean[0])
            _plan_tokens(config, client, selected, run.config_anchor)
        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                return list(pool.map(lambda n: _publish_one(run, n), selected))
        finally:
            run.close()


def _plan_tokens(
    config: Config, client: RegistryClient, names: list[str], anchor: str | None = None
) -> None:
    """The repositories this run may write (each playbook's image and bundle) and those it
    mounts from (the bundles' config `anchor`, and a base in the same registry), asked for
    together with the run's first token (Authenticator.plan_tokens): one token request per few
    dozen playbooks instead of one per repository. A base is read from the Containerfile's text
    as the build resolves it (the stand-ins by build.rewrite_from, then build.final_base); one
    it cannot tell is left out (its repository's mounts ask their own token, as before)."""
    scopes: list[str] = []
    common: list[str] = []
    if anchor is not None:
        common.append(f"repository:{parse_reference(anchor).repository}:pull")
    for name in names:
        for ref in (config.image_ref(name), config.bundle_ref(name)):
            scopes.append(f"repository:{parse_reference(ref).repository}:pull,push")
        directory = config.playbooks_dir / name
        path = next((directory / c for c in CONTAINERFILES if (directory / c).is_file()), None)
        try:
            text = ""
            if path is not None:
                with path.open("rb") as fh:  # bounded: lint has not judged the file yet
                    text = fh.read(config.max_file_bytes).decode("utf-8")
            # The stand-ins as the build applies them (rewrite_from), then its final stage.
            base = build.final_base(build.rewrite_from(text, config.base_image_overrides)[0])
            if base is None or base.lower() == "scratch":
                continue
            found = parse_reference(base)
        except (OSError, UnicodeError, ValueError, FatalError):
            continue
        if found.registry == config.registry:
            scope = f"repository:{found.repository}:pull"
            if scope not in common:
                common.append(scope)
    client.auth.plan_tokens(config.registry, scopes, common[:MAX_MOUNT_SOURCES])


def _errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]


def _describe(findings: list[Finding]) -> list[str]:
    shown = [f"{f.file}:{f.line}:{f.column}: {f.rule}: {f.message}" for f in findings]
    if len(shown) > MAX_SHOWN_FINDINGS:
        shown = [*shown[:MAX_SHOWN_FINDINGS], f"... and {len(shown) - MAX_SHOWN_FINDINGS} more"]
    return shown


def _publish_one(run: _Run, name: str) -> PublishResult:
    config = run.config
    pb = load_playbook(config.playbooks_dir / name, config.root, config.max_file_bytes)
    # A FIFO or a looping link makes the hash fail; that is this playbook's failure (the lint
    # gate names it as playbook.special-file), not the whole run's. (Read from the checkout,
    # files git ignores left out: with lint's playbook.untracked, the files of the context.)
    hash_error = None
    try:
        digest = source_hash(pb.dir, config.platforms)
    except FatalError as exc:
        digest, hash_error = "", str(exc)
    version = pb.version or ""
    if run.dev_versions and version and digest:
        version = dev_version(version, digest)
    result = PublishResult(
        name=name,
        version=version,
        source_hash=digest,
        image=None,
        bundle=None,
        status=Action.FAILED,
        commit=run.revisions.get(name, (run.commit, 0))[0],
        source_repository=run.source_repository,
    )
    untracked, ignored = run.left_out.get(name, ([], []))
    if untracked:
        result.messages.append(
            f"not in the image: untracked file(s) {_shown(untracked)} (images are made from "
            "git's objects: git add them, or delete them)"
        )
    ignored = _copied(pb, ignored)
    if ignored:
        result.messages.append(
            f"not in the image: file(s) git ignores {_shown(ignored)} (the Containerfile "
            "copies them, but images are made from git's objects)"
        )
    try:
        if hash_error and not run.lint_errors.get(name):
            raise FatalError(hash_error)
        _publish_steps(run, pb, result)
    except _RefusedError as exc:
        result.status = Action.REFUSED
        result.error = str(exc)
    except FatalError as exc:
        result.status = Action.FAILED
        result.error = str(exc)
    except Exception as exc:  # a bug must not hide the other playbooks' results
        result.status = Action.FAILED
        result.error = f"internal error: {type(exc).__name__}: {exc}"
    run.on_event(
        name, "done", f"{result.status.value}" + (f": {result.error}" if result.error else "")
    )
    return result


def source_revisions(
    config: Config, names: list[str], commit: str, *, check_clean: bool
) -> dict[str, tuple[str, int]]:
    """Each playbook's revision: the last commit at or before `commit` touching its directory,
    with its commit time (the SOURCE_DATE_EPOCH of the playbook's image).

    With `check_clean`, uncommitted changes in those directories (or a `commit` whose copy of
    them differs from the checkout) are a GitError naming the files. Outside a git checkout
    (a source export published with --commit) there is nothing to check: `commit` is used.
    """
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415 - git loads only when publishing

    try:
        repo = GitRepo(config.root)
    except GitError:
        return {}
    top = repo.root.resolve()
    rels: dict[str, str] = {}
    for name in names:
        try:
            rels[name] = (config.playbooks_dir / name).resolve().relative_to(top).as_posix()
        except ValueError:  # pragma: no cover - playbooks_dir lies inside the root
            continue
    paths = sorted(rels.values())
    if check_clean and paths:
        dirty = repo.dirty_files(paths)
        if dirty:
            raise GitError(
                f"uncommitted changes in a playbook to publish ({_shown(dirty)}); the image and "
                "the bundle name the commit they were made from, so commit them first"
            )
        if repo.has_commit(commit) and repo.head() != repo.rev_parse(commit):
            differ = repo.tree_diff(commit, "HEAD", paths)
            if differ:
                raise GitError(
                    f"the checkout is not commit {commit[:12]} ({_shown(differ)} differ): "
                    "publish from a checkout of the commit it names"
                )
    if not repo.has_commit(commit):
        return {}
    # One `git log` per playbook, a few at a time: each is a process that mostly waits on
    # disk, and a 200-playbook release would otherwise spend seconds here one after another.
    names = list(rels)
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(names)))) as pool:
        found = list(pool.map(lambda n: repo.last_change([rels[n]], commit), names))
    if check_clean and repo.is_shallow():
        # git log stops at a shallow clone's boundary, which seems to touch every path: taken
        # for the revision, it would record another commit (and commit time, the layers' mtime)
        # than a full clone does, so other bytes for the same content.
        boundary = _shallow_boundary(repo.root)
        cut = sorted(n for n, c in zip(names, found, strict=True) if c and c[0] in boundary)
        if cut:
            where = _shown([rels[n] for n in cut])
            raise GitError(
                f"this is a shallow clone: the last commit that touched {where} (the revision "
                "its image and bundle record) may be older than its history here; fetch more "
                "history (actions/checkout fetch-depth: 0, or git fetch --unshallow)"
            )
    return {name: change or (commit, 0) for name, change in zip(names, found, strict=True)}


def _shallow_boundary(root: Path) -> set[str]:
    """The commits a shallow clone's history stops at (git's `shallow` file)."""
    done = subprocess.run(
        ["git", "rev-parse", "--git-path", "shallow"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    path = root / done.stdout.strip()  # relative to root unless absolute (then / keeps it)
    try:
        return set(path.read_text("ascii").split()) if done.returncode == 0 else set()
    except OSError:
        return set()


def context_revision(
    config: Config, names: list[str], commit: str, *, worktree: bool
) -> tuple[str | None, dict[str, tuple[list[str], list[str]]]]:
    """The commit the build contexts are exported from, and per playbook the files on disk it
    leaves out (untracked, ignored), by path inside the playbook.

    A release: `commit` (source_revisions checked the checkout holds it). A dry run, `try`
    (allow_dirty), or a release from a commit this clone lacks (checked clean, so HEAD's
    files): GitRepo.worktree_commit, the tracked files as they are on disk. Outside a git
    checkout: None (the directories themselves are the contexts).
    """
    from playbookctl.gitrepo import GitRepo  # noqa: PLC0415 - git loads only when publishing

    try:
        repo = GitRepo(config.root)
    except GitError:
        return None, {}
    top = repo.root.resolve()
    rels: dict[str, str] = {}
    for name in names:
        try:
            # The parent resolved, not the playbook: a playbook directory that is a link stays
            # itself (git holds a link there, so the export refuses it; lint says why).
            here = (config.playbooks_dir.resolve() / name).relative_to(top)
        except ValueError:  # pragma: no cover - playbooks_dir lies inside the root
            continue
        rels[name] = here.as_posix()
    paths = sorted(rels.values())
    if not worktree and repo.has_commit(commit):
        rev = repo.rev_parse(commit)
    else:
        rev = repo.worktree_commit(paths)
    untracked, ignored = repo.untracked_files(paths) if paths else ([], [])
    left_out: dict[str, tuple[list[str], list[str]]] = {}
    for name, rel in rels.items():
        prefix = rel + "/"
        mine = (
            [p[len(prefix) :] for p in untracked if p.startswith(prefix)],
            [p[len(prefix) :] for p in ignored if p.startswith(prefix)],
        )
        if mine[0] or mine[1]:
            left_out[name] = mine
    return rev, left_out


def _copied(pb: Playbook, paths: list[str]) -> list[str]:
    """The files of `paths` (git ignores them) that the Containerfile's COPY/ADD would take
    from the directory: their absence is news to the author; ignored debris the Containerfile
    never names (__pycache__/, editor files) is what ignoring it asked for."""
    if not paths or pb.containerfile is None:
        return []
    try:
        sources = dockerfile.context_sources(pb.containerfile.read_text("utf-8"))
    except (OSError, UnicodeDecodeError):
        sources = None  # the build says what is wrong with it; here, say everything
    if sources is None:
        return paths
    return [p for p in paths if dockerfile.takes(sources, p)]


def _shown(paths: list[str]) -> str:
    paths = [shown_path(p) for p in paths]  # a name that is not UTF-8 shows as \xNN escapes
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def lint_gate(config: Config, names: list[str]) -> dict[str, list[Finding]]:
    """The errors `playbookctl lint` reports for each playbook (external linters batched)."""
    dirs = [config.playbooks_dir / n for n in names]
    findings = _errors(lint_paths(dirs, config))
    out: dict[str, list[Finding]] = {n: [] for n in names}
    for name, directory in zip(names, dirs, strict=True):
        shown = _display(directory, config)
        # The playbook's files, the directory itself (playbook.missing-file names it) and its
        # registration (playbook.registration-path): whatever lint reports about this playbook.
        own = {shown, _display(config.registry_dir / "workflows" / f"{name}.yaml", config)}
        out[name] = [f for f in findings if f.file in own or f.file.startswith(shown + "/")]
    return out


def _display(path: Path, config: Config) -> str:
    # The parent resolved, not the path: a playbook directory that is a symbolic link is shown
    # by its own name, as lint names it (playbook.directory-link), not by where it points.
    try:
        return (path.parent.resolve() / path.name).relative_to(config.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _publish_steps(run: _Run, pb: Playbook, result: PublishResult) -> None:
    config, client, name = run.config, run.client, pb.name
    errors = run.lint_errors.get(name, [])
    if errors:
        result.status = Action.SKIPPED
        result.error = f"not published: {len(errors)} lint error(s)"
        result.messages += _describe(errors)
        return
    if pb.containerfile is None or not result.version:  # pragma: no cover - the gate reports it
        raise FatalError(f"{name}: a Containerfile and spec.version are required")
    version = result.version
    image_repo, bundle_repo = config.image_ref(name), config.bundle_ref(name)
    image_ref, bundle_ref = f"{image_repo}:{version}", f"{bundle_repo}:{version}"
    # A test or demo environment's base-image stand-ins never reach a real registry: refused
    # here, before any lookup, and again before any push from the image's own label.
    try:
        build.check_stand_ins(image_ref, pb.containerfile, config.base_image_overrides)
    except build.StandInRefusedError as exc:
        raise _RefusedError(str(exc)) from None
    result.image = Artifact(image_repo, version, None, Action.SKIPPED)
    result.bundle = Artifact(bundle_repo, version, None, Action.SKIPPED)
    if not run.dry_run:  # one token for the lookups and the pushes of each repository
        client.intend_push(image_ref)
        client.intend_push(bundle_ref)

    # 2. The bundle is the last thing a release writes, after its image: with the image's tag
    # absent, a release does not look the bundle's up now (one request fewer for every new
    # version); it checks it once, just before its own would be written (step 5), where a
    # bundle someone else wrote is adopted only if it holds exactly what this run renders. A
    # dry run cannot tell that without the image's digest, so it looks now and refuses.
    # The image's tag is not looked up now either when git says the version is new and the
    # image will be assembled (_known_new): the one lookup is then just before its index is
    # written (step 3), where an image already there is judged as this lookup would judge it.
    looked = not _known_new(run, pb, version)
    image = published_image(client, image_ref, config.platforms) if looked else None
    existing = published_bundle(client, bundle_ref) if image is not None or run.dry_run else None
    if existing is not None:
        _check_same_source(bundle_ref, existing, result.source_hash, config)
        # Reused only if it holds what this playbook renders to now, around the image its
        # tag holds: the annotation says where it came from, not what is in it.
        if image is None:
            raise _RefusedError(
                f"{bundle_ref} is published but {image_ref}, the image its Pipeline runs, is "
                f"not: not reused; bump the version: {_bump(bundle_ref, config)}"
            )
        _check_same_source(image_ref, image, result.source_hash, config)
        missing = [p for p in config.platforms if p not in image.platforms]
        if missing:
            raise _RefusedError(
                f"{image_ref} lists {', '.join(image.platforms) or 'no platforms'}, not "
                f"{', '.join(missing)}: not reused; bump the version"
            )
        expected = render_pipeline(pb, config, image=f"{image_ref}@{image.digest}")
        _check_holds(client, bundle_ref, f"{bundle_repo}@{existing.digest}", expected)
        result.bundle = Artifact(bundle_repo, version, existing.digest, Action.REUSED)
        result.commit = existing.revision or result.commit
        result.image = Artifact(
            image_repo, version, image.digest, Action.REUSED, platforms=list(image.platforms)
        )
        result.status = Action.REUSED
        run.on_event(name, "bundle", f"{bundle_ref} already published with this content: reused")
        return

    # 3. The image.
    image_digest = _image(run, pb, result, pb.containerfile.name, image_repo, image, looked)

    # 4. Render with the pinned image and validate what will be bundled.
    pinned = f"{image_ref}@{image_digest or DRY_RUN_DIGEST}"
    rendered = render_pipeline(pb, config, image=pinned)
    found = check_document(rendered.document) + check_playbook(pb, rendered, config)
    errors = _errors(apply_policy(found, config, pb))
    if errors:
        result.messages += _describe(errors)
        raise FatalError(f"the rendered Pipeline fails {len(errors)} rule(s); not bundled")

    # 5. The bundle.
    annotations = {
        ANNOTATION_SOURCE: run.source_repository,
        ANNOTATION_REVISION: result.commit,
        ANNOTATION_VERSION: version,
        ANNOTATION_SOURCE_HASH: result.source_hash,
    }

    def built(layout: str) -> Bundle:
        made = build_bundle([rendered.data], annotations, layout=layout)
        # What Tekton's resolver will read, checked on these bytes before any of them is pushed.
        _check_built_bundle(made, f"{bundle_repo}@{made.digest}", rendered, annotations)
        return made

    bundle = built(run.bundle_layout())
    if run.dry_run:
        digest = bundle.digest if image_digest else None
        result.bundle = Artifact(bundle_repo, version, digest, Action.DRY_RUN)
        result.status = Action.DRY_RUN
        return
    run.on_event(name, "bundle", f"bundle {bundle_ref} built ({bundle.digest})")
    # Just before writing: another publisher may have pushed this version meanwhile.
    raced = published_bundle(client, bundle_ref)
    if raced is not None:
        # First writer wins: adopted only if it holds exactly what we rendered.
        if raced.digest != bundle.digest:
            _check_holds(client, bundle_ref, f"{bundle_repo}@{raced.digest}", rendered)
        result.bundle = Artifact(bundle_repo, version, raced.digest, Action.REUSED)
        result.commit = raced.revision or result.commit
        result.status = Action.REUSED
        result.messages.append(f"{bundle_ref} was published meanwhile with the same content")
        return
    run.on_event(name, "bundle", f"pushing bundle {bundle_ref}")
    # Failed until proven pushed and read back: an exception below leaves it so.
    result.bundle = Artifact(bundle_repo, version, None, Action.FAILED)
    try:
        digest = push_bundle(client, bundle_ref, bundle, config_from=run.config_source(bundle))
    except ManifestRefusedError as exc:
        if bundle.layout == "tkn":
            raise
        # A registry that takes images but not artifacts (its config media type, or
        # artifactType, refused): tkn's layout, the same layers, for the rest of the run.
        run.artifact_refused.set()
        result.messages.append(
            f"the registry refused the bundle as an OCI artifact ({exc}); pushed in tkn's "
            'layout (bundle-layout = "tkn" says so from the start)'
        )
        bundle = built("tkn")
        digest = push_bundle(client, bundle_ref, bundle)
    # Stored, not only acknowledged: the manifest read back by its digest. Its layers were
    # checked by digest as they were uploaded, and the registry refuses a manifest that names a
    # blob it does not hold (push_bundle uploads it again then), so the manifest is the one
    # write a registry could acknowledge and drop.
    client.read_back(f"{bundle_repo}@{digest}")
    result.bundle = Artifact(bundle_repo, version, digest, Action.PUSHED)
    result.status = Action.PUSHED


def _known_new(run: _Run, pb: Playbook, version: str) -> bool:
    """Whether a release may skip looking the image's tag up before making the image: git's
    registration at the run's commit does not register this version (the plan publishes it for
    that reason: its tag is almost always absent), and the Containerfile can be assembled
    (reproducible, and cheap to make again when the check before the index is written finds
    the tag there after all; an engine build is neither). Dry runs and `try` look first: they
    refuse early and write nothing."""
    if run.dry_run or run.dev_versions or run.config.assemble != "auto" or pb.containerfile is None:
        return False
    if run.leftovers.is_set():
        return False
    try:
        assemble.plan(pb.containerfile.read_text("utf-8"))
    except (assemble.Refused, OSError, UnicodeDecodeError):
        return False
    return run.unregistered(pb.name, version)


def _image(  # noqa: PLR0917 - one call site
    run: _Run,
    pb: Playbook,
    result: PublishResult,
    containerfile: str,
    image_repo: str,
    existing: Published | None,
    looked: bool,
) -> str | None:
    """The image's digest: reused if published from this source (`existing`: what its tag held
    when this run looked, if it `looked`), else built and pushed."""
    version, name = result.version, pb.name
    image_ref = f"{image_repo}:{version}"
    if existing is not None:
        return _reuse_image(run, result, image_repo, existing)
    result.image = Artifact(image_repo, version, None, Action.FAILED)  # until pushed
    labels = build.image_labels(
        source_repository=run.source_repository,
        commit=result.commit,
        version=version,
        source_hash=result.source_hash,
    )
    try:
        # One export per playbook, and only for an image that is made.
        with _build_context(run, pb) as context:
            used = build.stand_ins(context / containerfile, run.config.base_image_overrides)
            if used:
                result.messages.append(
                    "built on base-image stand-in(s): "
                    + ", ".join(f"{k} -> {v}" for k, v in sorted(used.items()))
                )
            try:
                children = platform_images(
                    run, pb, result, context, containerfile, labels, engine=looked
                )
            except _EngineNeededError as exc:
                # Refused by the base (an ONBUILD trigger, a link...): looked up now, before
                # an engine build, as every engine build's tag is.
                existing = published_image(run.client, image_ref, run.config.platforms)
                if existing is not None:
                    return _reuse_image(run, result, image_repo, existing)
                looked = True
                children = platform_images(
                    run, pb, result, context, containerfile, labels, refused=str(exc)
                )
    except platforms.PlatformError as exc:
        raise FatalError(str(exc)) from None
    result.image.platforms = [c.platform for c in children if c.action != "skipped"]
    if run.dry_run:
        # Built in the local engine only (a pull request's check that it builds): no digest,
        # since only a push gives the registry's.
        result.image = Artifact(
            image_repo, version, None, Action.DRY_RUN, platforms=result.image.platforms
        )
        result.messages.append(
            "built "
            + ", ".join(c.platform for c in children if c.action == "dry-run")
            + " locally; not pushed (dry run)"
        )
        result.messages += [
            f"{c.platform} not built here: its RUN steps need emulation"
            for c in children
            if c.action == "skipped"
        ]
        return None
    # The index is written once, after every child is in the registry, and before the bundle.
    run.on_event(name, "push", f"every platform of {image_ref} pushed")
    raced = published_image(run.client, image_ref, run.config.platforms)
    if raced is not None and not looked:
        # Not looked up before making the image (_known_new): what is there now is judged as
        # that lookup would have judged it, by its source (an earlier run's, killed before it
        # registered; a publish that named another source repository...).
        run.leftovers.set()
        digest = _reuse_image(run, result, image_repo, raced)
        result.messages.append(f"{image_ref} is already published from this source: reused")
        return digest
    if raced is not None:
        _check_same_source(image_ref, raced, result.source_hash, run.config)
        _check_raced_index(run, image_repo, image_ref, raced.digest, children)
        _check_index(run, image_ref)
        result.image = Artifact(
            image_repo, version, raced.digest, Action.REUSED, platforms=result.image.platforms
        )
        result.messages.append(f"{image_ref} was published meanwhile from the same source")
        return raced.digest
    run.on_event(name, "push", f"pushing index {image_ref} ({', '.join(result.image.platforms)})")
    # Every child reused (an earlier run pushed them and stopped short of the index): ask now.
    digest = platforms.push_index(run.client, image_repo, version, children)
    result.image = Artifact(
        image_repo, version, digest, Action.BUILT, platforms=result.image.platforms
    )
    crash_point("image-pushed")
    return digest


def _reuse_image(run: _Run, result: PublishResult, image_repo: str, existing: Published) -> str:
    """Reuse the image a lookup found under the version's tag, if it is from this source and
    an index of every configured platform; its digest."""
    image_ref = f"{image_repo}:{result.version}"
    _check_same_source(image_ref, existing, result.source_hash, run.config)
    _check_index(run, image_ref)
    result.image = Artifact(
        image_repo,
        result.version,
        existing.digest,
        Action.REUSED,
        platforms=list(existing.platforms),
    )
    run.on_event(result.name, "build", f"{image_ref} already published from this source: reused")
    return existing.digest


@contextlib.contextmanager
def _build_context(run: _Run, pb: Playbook) -> Iterator[Path]:
    """The directory images are made from: the playbook's files in run.context_rev, from git's
    objects (no untracked or ignored file, links followed inside the playbook only, modes by
    git's executable bit); the directory itself only outside a git checkout."""
    if run.context_rev is None:
        yield pb.dir
        return
    with tempfile.TemporaryDirectory(prefix="playbookctl-context-") as tmp:
        target = Path(tmp) / pb.name
        try:
            run.export(run.context_rev, pb.dir, target)
        except GitError as exc:
            raise FatalError(str(exc)) from None
        yield target


def platform_images(  # noqa: PLR0917 - the seam publish calls, one call site
    run: _Run,
    pb: Playbook,
    result: PublishResult,
    directory: Path,
    containerfile: str,
    labels: dict[str, str],
    *,
    engine: bool = True,
    refused: str | None = None,
) -> list[platforms.Child]:
    """One image per platform, pushed (or made locally in a dry run), whichever way it is made:
    assembled without an engine when the Containerfile allows it (assemble.py), else built by
    the engine (platforms.build_children). The result's messages say which, and why. Without
    `engine`, a refused assembly raises _EngineNeededError instead of building; `refused`
    (its reason) goes straight to the engine, without assembling again."""
    name, version = pb.name, result.version
    image_repo = run.config.image_ref(name)
    overrides = run.config.base_image_overrides
    display = _display(pb.dir / containerfile, run.config)
    epoch = run.revisions.get(name, (run.commit, 0))[1]
    why = refused or "the assemble setting is never"

    def settle_index_type() -> None:
        # The index's media type is settled before the first child is pushed: a registry that
        # takes only one of OCI index and Docker manifest list must not end with children and
        # no index (RegistryClient.index_media_type says how it asks; the answer is cached).
        run.client.index_media_type(f"{image_repo}:{version}")

    if run.config.assemble == "auto" and refused is None:
        if not run.dry_run:
            settle_index_type()  # the assembler writes children straight away
        assembled: list[tuple[assemble.Assembled, str]] = []
        try:
            children = assemble.assemble_children(
                run.client,
                run.bases,
                directory=directory,
                containerfile=containerfile,
                display=display,
                repo=image_repo,
                labels=labels,
                platforms_wanted=run.config.platforms,
                overrides=overrides,
                epoch=epoch,
                dry_run=run.dry_run,
                on_event=lambda stage, line: run.on_event(name, stage, line),
                keep=assembled,
            )
        except assemble.Refused as exc:
            if not engine:
                raise _EngineNeededError(str(exc)) from None
            why = str(exc)
        else:
            result.messages.append("image assembled without an engine (no RUN step)")
            if run.dry_run:
                # The digests a release of the same files and commit time pushes: a dry run
                # exports its context as the release does (_build_context), byte for byte.
                result.messages.append(
                    "assembled, not pushed: "
                    + ", ".join(f"{a.platform} {a.digest}" for a, _pin in assembled)
                )
            # Pushed by digest only: smoke-run (pulled by digest) before any tag names them.
            smoke.check_pushed(
                run.config,
                pb,
                engine_of=run.engine,
                children=children,
                repo=image_repo,
                messages=result.messages,
                auth=build.registry_auth(run.config, run.config.registry),
                dry_run=run.dry_run,
                on_event=lambda line: run.on_event(name, "build", line),
                assembled=assembled,
                memo=run.smoke_memo,
            )
            return children
    result.messages.append(f"image built by the engine: {display}: {why}")
    if run.config.is_hermetic(name):
        result.messages.append("RUN steps built with no network at all (hermetic)")
    run.on_event(name, "build", f"built by the engine: {why}")

    def same_source(ref: str, digest: str, found: str | None) -> None:
        _check_same_source(ref, Published(digest, found), result.source_hash, run.config)

    return platforms.build_children(
        run.engine(),
        run.client,
        directory=directory,
        containerfile=containerfile,
        display=display,
        repo=image_repo,
        version=version,
        labels=labels,
        source_hash=result.source_hash,
        platforms=run.config.platforms,
        overrides=overrides,
        dry_run=run.dry_run,
        push_auth=None if run.dry_run else build.registry_auth(run.config, run.config.registry),
        push_retries=run.config.push_retries,
        check_same_source=same_source,
        on_event=lambda stage, line: run.on_event(name, stage, line),
        epoch=None if run.dry_run else epoch,
        before_first_push=None if run.dry_run else settle_index_type,
        hermetic=run.config.is_hermetic(name),
        bases=run.bases,
        smoke=smoke.checker(
            run.config,
            pb,
            run.engine(),
            result.messages,
            on_event=lambda line: run.on_event(name, "build", line),
        ),
    )


def _bump(ref: str, config: Config | None = None) -> str:
    """The `playbookctl bump` command for `<registry>/<repo>/<name>:<version>`, with the version
    it gives when `config` says where registry/ is (past the registered version as well: a
    version lower than the registered one must not be advised onto it)."""
    name = ref.rpartition(":")[0].rpartition("/")[2]
    if config is None:
        return bump_command(name)
    return bump_advice(config, name, ref.rpartition(":")[2])


def _check_index(run: _Run, image_ref: str) -> None:
    """A reused image must be an index of every configured platform (never single-platform)."""
    problem = platforms.index_problem(run.client, image_ref, run.config.platforms)
    if problem is not None:
        raise _RefusedError(problem)


def _check_raced_index(
    run: _Run,
    image_repo: str,
    image_ref: str,
    raced: str,
    children: Sequence[platforms.Child],
) -> None:
    """First writer wins, by content: an index that appeared while we built is adopted only if
    it lists, platform by platform, exactly the images we built (the same digests, which
    reproducible builds give); its source-hash label alone says where it claims to be from."""
    entries = platforms.index_entries(run.client, f"{image_repo}@{raced}")
    theirs = dict(entries)
    for child in children:
        if child.digest is None or theirs.get(child.platform) == child.digest:
            continue
        found = theirs.get(child.platform) or "no such entry"
        raise _RefusedError(
            f"{image_ref} appeared while this run built it ({raced}) and its {child.platform} "
            f"image is {found}, not {child.digest}, the one built here from the same source: "
            "not adopted (the build is not reproducible, or the tag was written by someone "
            f"else); find out who wrote it and bump the version: {_bump(image_ref, run.config)}"
        )
    # Nothing more: an entry we did not build (a foreign linux/s390x image beside our two) is
    # someone else's image under our tag, whatever its source-hash label claims.
    ours = {(c.platform, c.digest) for c in children if c.digest is not None}
    extra = [
        f"{p or 'an entry without a platform'} ({d})" for p, d in entries if (p, d) not in ours
    ]
    if extra or len(entries) != len(ours):
        listed = ", ".join(extra) or f"{len(entries)} entries for {len(ours)} images"
        raise _RefusedError(
            f"{image_ref} appeared while this run built it ({raced}) and lists {listed}, which "
            "this run did not build: not adopted (an index is adopted only when it lists exactly "
            f"the images built here); find out who wrote it and bump the version: "
            f"{_bump(image_ref, run.config)}"
        )


def _check_same_source(
    ref: str, published: Published, local_hash: str, config: Config | None = None
) -> None:
    if published.source_hash == local_hash:
        return
    found = published.source_hash or "no source hash"
    raise _RefusedError(
        str(
            ImmutableVersionError(
                f"{ref} is already published ({published.digest}, {found}) from other content "
                f"than this source ({local_hash}): the content changed, bump the version: "
                f"{_bump(ref, config)}"
            )
        )
    )


def _check_holds(
    client: RegistryClient, tag_ref: str, ref: str, expected: RenderedPipeline
) -> None:
    """Refuse a published bundle whose objects are not exactly the Pipeline rendered now."""
    back = read_bundle(client, ref)
    digest = ref.rpartition("@")[2]
    if not back.ok:
        problem = "; ".join(f"{f.rule}: {f.message}" for f in _errors(back.findings))
        raise _RefusedError(f"{tag_ref} ({digest}) is not a valid bundle ({problem}); not reused")
    want = json.loads(canonical_json(expected.data))
    objects = [o.object for o in back.objects]
    where = _first_difference(objects[0] if len(objects) == 1 else objects, want)
    if where is not None:
        raise _RefusedError(
            f"{tag_ref} ({digest}) does not hold the Pipeline this playbook renders to "
            f"(differs at {where}): changed after it was published, or published from other "
            f"content; not reused, find out who wrote it and bump the version: {_bump(tag_ref)}"
        )


def _first_difference(got: Any, want: Any, path: str = "") -> str | None:
    """The path of the first place two JSON values differ (`spec.tasks[0].name`), or None."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want)):
            if key not in got or key not in want:
                return f"{path}.{key}".lstrip(".")
            found = _first_difference(got[key], want[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(got, list) and isinstance(want, list):
        for i, (a, b) in enumerate(zip(got, want, strict=False)):
            found = _first_difference(a, b, f"{path}[{i}]")
            if found is not None:
                return found
        return None if len(got) == len(want) else f"{path}[{min(len(got), len(want))}]"
    return None if got == want and type(got) is type(want) else (path.lstrip(".") or "the top")


def published_bundle(client: RegistryClient, ref: str) -> Published | None:
    """The bundle a tag points at and its source-hash annotation, or None (one GET)."""
    try:
        data, _media_type, digest = client.get_manifest(ref)
    except ManifestNotFoundError:
        return None
    manifest = _json_object(data)
    annotations = manifest.get("annotations") if isinstance(manifest, dict) else None
    if not isinstance(annotations, dict):
        return Published(digest, None)
    value = annotations.get(ANNOTATION_SOURCE_HASH)
    revision = annotations.get(ANNOTATION_REVISION)
    return Published(
        digest,
        value if isinstance(value, str) else None,
        revision if isinstance(revision, str) and revision else None,
    )


def published_image(
    client: RegistryClient, ref: str, prefer: Sequence[str] = ("linux/amd64",)
) -> Published | None:
    """The image a tag points at and its source-hash label, or None.

    For an index (a multi-platform image) the label is read from the entry of the first of
    `prefer` (every child of our indexes carries the same labels).
    """
    try:
        data, media_type, digest = client.get_manifest(ref)
    except ManifestNotFoundError:
        return None
    r = client.parse_reference(ref)
    manifest = _json_object(data)
    listed: tuple[str, ...] = ()
    if media_type in INDEX_MEDIA_TYPES or "manifests" in manifest:
        listed = tuple(p for p, _ in platforms.index_platforms(manifest))
        child = _platform_child(manifest, prefer)
        if child is None:
            return Published(digest, None, platforms=listed)
        data, _, _ = client.get_manifest(f"{r.name}@{child}")
        manifest = _json_object(data)
    config = manifest.get("config")
    config_digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(config_digest, str):
        return Published(digest, None, platforms=listed)
    blob = _json_object(client.get_blob(r.repository, config_digest, registry=r.registry))
    inner = blob.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    value = labels.get(build.SOURCE_HASH_LABEL) if isinstance(labels, dict) else None
    return Published(digest, value if isinstance(value, str) else None, platforms=listed)


def _platform_child(index: dict[str, Any], prefer: Sequence[str]) -> str | None:
    """The child of the first configured platform: the one whose labels are read."""
    return platforms.find_child(index, platforms.Platform.parse(prefer[0]))


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _check_built_bundle(
    bundle: Bundle, ref: str, rendered: RenderedPipeline, annotations: dict[str, str]
) -> None:
    """Read the built bundle as Tekton's resolver will read it once pushed, and compare."""
    back = check_built(bundle, ref)
    if not back.ok:  # pragma: no cover - build_bundle makes what the resolver reads
        raise FatalError(
            f"{ref}: the bundle does not read as Tekton reads it: "
            + "; ".join(f"{f.rule}: {f.message}" for f in _errors(back.findings))
        )
    expected = json.loads(canonical_json(rendered.data))
    if back.workflow() != expected:
        raise FatalError(f"{ref}: the Pipeline read back differs from the one rendered")
    wrong = sorted(k for k, v in annotations.items() if back.annotations.get(k) != v)
    if wrong:
        raise FatalError(f"{ref}: annotation(s) {', '.join(wrong)} read back differ")
