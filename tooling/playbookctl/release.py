"""Release: plan -> publish -> register -> one commit -> push, safe under races and crashes.

- Provenance must name a real commit: a dirty tree is refused (except leftovers of a killed run
  in the generated registry files, which are restored: register rewrites them anyway), and so is
  a HEAD with commits the remote lacks (other than our own unpushed release commits).
- A non-fast-forward push means the remote moved: fetch, reset onto the new head, register the
  same publish results again there (results whose source moved on are skipped, deletions are
  re-planned from the new tree), commit, push; bounded, with backoff. Nothing is resent blindly
  and other rejections fail.
- Idempotent: nothing to change, no commit and no push. A run killed after publishing, after
  registering or after committing is repaired by a rerun: publish reuses what it pushed, a
  leftover release commit is pushed (or rebuilt) rather than duplicated, and a registration is
  committed only after its bundle was found in the registry by digest.
- A local loop cannot hurt the real repository: registrations pinned to a loopback registry
  (127.0.0.0/8, localhost, ::1) are pushed only to a remote on this machine (a path or file://),
  checked before anything is published and again on what a push would carry.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbookctl.config import Config
from playbookctl.crashpoints import crash_point
from playbookctl.errors import FatalError, GitError, RefusalsError, RegistryError
from playbookctl.gitrepo import GitRepo, PushStatus, is_local_url, normalise_remote
from playbookctl.oci import is_loopback
from playbookctl.plan import Plan, make_plan
from playbookctl.register import (
    GENERATED_PATHS,
    WORKFLOWS,
    Change,
    RegisterAction,
    Registration,
    parse_registration,
    register,
)
from playbookctl.results import Action, PublishResult

TRAILER = "Released-by: playbookctl"
Publisher = Callable[..., list[PublishResult]]


@dataclass(frozen=True)
class ReleaseOptions:
    base: str | None = None
    branch: str | None = None  # push here instead of the checked-out branch
    remote: str = "origin"
    jobs: int | None = None
    author_name: str | None = None
    author_email: str | None = None


@dataclass
class Row:
    name: str
    version: str
    bundle: str
    what: str


@dataclass
class ReleaseReport:
    source_commit: str
    target: str
    plan: Plan | None = None
    results: list[PublishResult] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    commit: str | None = None  # the release commit on the remote, None when nothing changed
    pushed: bool = False
    attempts: int = 0
    notes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def rows(self) -> list[Row]:
        published = {r.name: r for r in self.results}
        rows: list[Row] = []
        seen: set[str] = set()
        for c in self.changes:
            seen.add(c.name)
            r = published.get(c.name)
            steps = []
            if r is not None:
                steps.append(_publish_summary(r))
            steps.append(c.action.value + (f" ({c.detail})" if c.detail else ""))
            rows.append(Row(c.name, c.version, c.bundle, ", ".join(steps)))
        for r in self.results:
            if r.name not in seen:
                # Not registered: the publish outcome, with its error, is all there is to say.
                what = _publish_summary(r)
                rows.append(Row(r.name, r.version, r.bundle.ref if r.bundle else "", what))
        return sorted(rows, key=lambda row: row.name)


def _publish_summary(r: PublishResult) -> str:
    if not r.ok:
        return f"publish {r.status.value}: {r.error or ''}".rstrip(": ")
    image = r.image.action.value if r.image else "-"
    if r.image and r.image.platforms:
        image += f" ({', '.join(r.image.platforms)})"
    bundle = r.bundle.action.value if r.bundle else "-"
    return f"image {image}, bundle {bundle}"


def commit_message(changes: list[Change]) -> str:
    done = [c for c in changes if c.action in (RegisterAction.REGISTERED, RegisterAction.REMOVED)]
    names = ", ".join(
        f"{c.name} {c.version}" if c.action is RegisterAction.REGISTERED else f"-{c.name}"
        for c in done
    )
    subject = f"registry: release {names}" if names else "registry: regenerate kustomization"
    if len(subject) > 72:
        subject = f"registry: release {len(done)} playbook change(s)"
    lines = [subject, ""]
    for c in done:
        if c.action is RegisterAction.REGISTERED:
            lines.append(f"{c.name} {c.version} {c.digest}")
        else:
            lines.append(f"{c.name}: removed (playbook deleted)")
    lines += ["", TRAILER]
    return "\n".join(lines) + "\n"


def is_release_commit(message: str) -> bool:
    return TRAILER in message.splitlines()


def source_repository(
    config: Config, repo: GitRepo | None, remote: str, env: Mapping[str, str] | None = None
) -> str:
    """Where the source lives, for provenance: configured, GitHub's, or the remote's URL in its
    one spelling (gitrepo.normalise_remote: two clones of one remote spelt differently must not
    rewrite each other's registrations; credentials never reach a manifest)."""
    env = os.environ if env is None else env
    if config.source_repository:
        return config.source_repository
    if env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server.rstrip('/')}/{env['GITHUB_REPOSITORY']}"
    url = repo.remote_url(remote) if repo is not None else None
    return normalise_remote(url, repo.root) if repo is not None and url else ""


def _registrations_at(repo: GitRepo, rev: str) -> dict[str, Registration]:
    out: dict[str, Registration] = {}
    for fn in repo.list_dir(rev, f"registry/{WORKFLOWS}"):
        if fn.endswith(".yaml"):
            text = repo.show(rev, f"registry/{WORKFLOWS}/{fn}")
            reg = parse_registration(text, fn[: -len(".yaml")]) if text else None
            if reg is not None:
                out[reg.name] = reg
    return out


class LoopbackRemoteError(FatalError):
    """Registrations pinned to a loopback registry were headed for a remote off this machine."""


def _ref_host(ref: str) -> str:
    return ref.split("/", 1)[0] if "/" in ref else ref


def loopback_problem(refs: Sequence[str], remote: str, urls: Sequence[str]) -> str | None:
    """Why pushing registrations pinning `refs` to `remote` (push URLs `urls`) is refused.
    Loopback refs only make sense on this machine: anyone else reading the commit (Argo CD, a
    teammate) would resolve 127.0.0.1 to their own host."""
    hosts = sorted({_ref_host(r) for r in refs if r and is_loopback(_ref_host(r))})
    if not hosts or (urls and all(is_local_url(u) for u in urls)):
        return None
    return (
        f"release refused: registrations would pin the loopback registry {', '.join(hosts)} "
        f"and remote {remote!r} ({', '.join(urls) or 'not configured'}) is not on this "
        "machine; release to a local bare remote instead (`playbookctl dev remote`, then "
        "`playbookctl release --remote dev --branch dev-release`) or publish to a registry "
        "others can reach"
    )


def _backoff(attempt: int) -> None:
    time.sleep(min(5.0, 0.2 * 2**attempt) * (0.5 + random.random()))  # noqa: S311 - jitter


class _Releaser:
    def __init__(
        self,
        config: Config,
        opts: ReleaseOptions,
        publisher: Publisher | None,
        log: Any,
        inputs: Sequence[Path] = (),
    ) -> None:
        self.config = config
        # Result files read by a register job (downloaded into the checkout in CI): inputs, not
        # uncommitted release content.
        self.inputs = [p.resolve() for p in inputs]
        self.opts = opts
        self.publisher = publisher
        self.log: Callable[[str], None] = log
        self.on_event: Callable[[str, str, str], None] | None = None  # publish's progress
        # (bundle repository, digest) this process's publish read back from the registry.
        self.read_back: set[tuple[str, str]] = set()
        self.repo = GitRepo(config.root)
        self.author = (
            opts.author_name or config.git_author_name,
            opts.author_email or config.git_author_email,
        )

    # -- preconditions ------------------------------------------------------------------------

    def check_tree(self) -> None:
        dirty = [p for p in self.repo.dirty_files() if not self.is_input(p)]
        generated = tuple(p.rstrip("/") for p in GENERATED_PATHS)
        ours = [p for p in dirty if p.startswith(generated)]
        others = [p for p in dirty if p not in ours]
        if others:
            shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
            raise GitError(
                f"the working tree has uncommitted changes ({shown}); a release records the "
                "commit it was made from, so commit or stash them first"
            )
        if ours:
            # A killed register left these; they are regenerated from scratch below.
            self.repo.restore(list(GENERATED_PATHS))
            self.log(f"restored {len(ours)} generated file(s) left by an interrupted run")

    def check_loopback(self, refs: Sequence[str]) -> None:
        remote = self.opts.remote
        problem = loopback_problem(refs, remote, self.repo.push_urls(remote))
        if problem:
            raise LoopbackRemoteError(problem)

    def check_loopback_push(self, upstream: str, head: str) -> None:
        """The registrations `head` changes from `upstream` (carried, given or made here)."""
        before = _registrations_at(self.repo, upstream)
        refs = [
            ref
            for name, reg in _registrations_at(self.repo, head).items()
            if before.get(name) != reg
            for ref in (reg.bundle, reg.image)
        ]
        self.check_loopback(refs)

    def is_input(self, path: str) -> bool:
        where = (self.config.root / path).resolve()
        return any(where == p or where.is_relative_to(p) for p in self.inputs)

    def upstream(self, branch: str) -> str:
        head = self.repo.fetch(self.opts.remote, branch)
        if head is None:
            raise GitError(f"{self.opts.remote} has no branch {branch!r} to release from")
        return head

    def own_commits(self, upstream: str) -> list[str]:
        """Commits of HEAD the remote lacks; only unpushed release commits are allowed."""
        ahead = self.repo.commits_between(upstream, "HEAD")
        foreign = [c for c in ahead if not is_release_commit(self.repo.commit_message(c))]
        if foreign:
            raise GitError(
                f"HEAD has {len(foreign)} commit(s) that {self.opts.remote} does not have; push "
                "them first (a release must name a source commit the remote has)"
            )
        return ahead

    # -- the run ------------------------------------------------------------------------------

    def run(self, given: list[PublishResult] | None = None) -> ReleaseReport:
        """The whole release; with `given` results (a register job), plan and publish are
        skipped and those results are registered, committed and pushed the same way."""
        repo, opts = self.repo, self.opts
        self.check_loopback([self.config.registry])
        self.check_tree()
        source_branch = repo.current_branch()
        if opts.branch is not None and opts.branch == source_branch:
            # Pushing "to a branch" that is the checked-out one is the ordinary direct push.
            opts = self.opts = ReleaseOptions(**{**vars(opts), "branch": None})
        target = opts.branch or source_branch
        if target is None:
            raise GitError("HEAD is detached: check out the branch to release, or pass --branch")
        upstream = self.upstream(source_branch) if source_branch else repo.head()
        leftovers = self.own_commits(upstream) if source_branch else []
        source = repo.merge_base(upstream, "HEAD") if leftovers else repo.head()
        report = ReleaseReport(source_commit=source or repo.head(), target=target)

        carried: list[PublishResult] = []
        if leftovers and source:
            # A previous run committed but never pushed: its registrations are carried over.
            before = _registrations_at(repo, source)
            for name, reg in _registrations_at(repo, "HEAD").items():
                if before.get(name) != reg:
                    carried.append(reg.to_result())
            report.notes.append(f"found {len(leftovers)} unpushed release commit(s)")

        if given is not None:
            results = list(given)
        else:
            plan = self.plan(opts.base)
            report.plan = plan
            if plan.note:
                report.notes.append(plan.note)
            if plan.refused:
                raise RefusalsError(
                    [f"release refused: {e.name}: {e.reason}" for e in plan.refused]
                )
            names = [e.name for e in plan.publish]
            crash_point("planned")
            results = []
            if names:
                self.log(f"publishing {', '.join(names)}")
                results = self.publish(names, report.source_commit)
                results = self.published_meanwhile(results, report)
        report.results = results
        report.failed = [r.name for r in results if not r.ok]
        pending = self.verified([r for r in results if r.ok] + carried, report)

        crash_point("published")
        if results and not pending:
            # Every publish failed: a commit now could only carry the plan's side changes (a
            # kustomization listing a new ActionType, a removal) under a "release" of nothing,
            # pushed by a run that failed. The next release plans them again.
            report.notes.append("every publish failed: nothing of this release is registered")
            # What register would say, for the table (a rename held back, with its reason),
            # without writing: a removal it lists is left for the next release too.
            outcome = register(self.config, [], dry_run=True)
            report.changes = [c for c in outcome.changes if c.action is not RegisterAction.REMOVED]
            waiting = [c.name for c in outcome.changes if c.action is RegisterAction.REMOVED]
            if waiting:
                report.notes.append(
                    f"not removed in a release of nothing: {', '.join(waiting)} (the next "
                    "release removes them)"
                )
            if opts.branch is None:
                self.registered_meanwhile(report, self.upstream(target))
            return report
        if opts.branch is None:
            return self.commit_and_push(pending, upstream, target, report)
        # Branch mode: the release commit is made beside the checkout (then the local branch of
        # that name points at it), never on it: HEAD, the index and the checked-out branch stay
        # as they were, so a run killed at any point leaves nothing a rerun must untangle.
        try:
            return self.commit_and_push(pending, upstream, target, report, onto=repo.head())
        finally:
            repo.restore(list(GENERATED_PATHS))

    def commit_and_push(
        self,
        pending: list[PublishResult],
        upstream: str,
        target: str,
        report: ReleaseReport,
        *,
        onto: str | None = None,
    ) -> ReleaseReport:
        """Register, commit, push, retried while the remote moves. `onto` (branch mode): the
        commit is made on top of it beside the checkout instead of on the checked-out branch."""
        repo, opts = self.repo, self.opts
        retries = max(0, self.config.push_retries)
        for attempt in range(retries + 1):
            report.attempts = attempt + 1
            outcome = register(self.config, pending)
            report.changes = outcome.changes
            refused = [c for c in outcome.changes if c.action is RegisterAction.REFUSED]
            report.failed = sorted({*report.failed, *(c.name for c in refused)})
            crash_point("registered")
            message, paths = commit_message(outcome.changes), list(GENERATED_PATHS)
            if onto is None:
                sha = repo.commit(message, paths, *self.author)
                tip = repo.head()
            else:
                sha = repo.commit_onto(onto, message, paths, *self.author)
                tip = sha or onto
                if sha and opts.branch:
                    repo.set_branch(opts.branch, sha)
            if sha:
                self.log(f"committed {sha[:12]}")
                crash_point("committed")
            status = self.push(upstream, target, report, tip)
            if status is None:
                if report.failed and onto is None:
                    self.registered_meanwhile(report, self.upstream(target))
                return report
            self.log(f"push rejected ({status}); the remote moved, rebuilding on its new head")
            _backoff(attempt)
            if opts.branch is None:
                upstream = self.upstream(target)
                repo.reset_hard(upstream)
                crash_point("reset")
        raise GitError(
            f"gave up after {retries + 1} push attempts to {opts.remote}/{target}: the remote "
            "kept moving; rerun the release"
        )

    def plan(self, base: str | None) -> Plan:
        """The plan, every registration it would skip checked against the registry first: a
        registration is taken as published only when the registry bears it out (see
        verify.publication_problem), never because a file says so."""
        from playbookctl.oci import RegistryClient  # noqa: PLC0415
        from playbookctl.verify import (  # noqa: PLC0415
            prefetch_publication_tokens,
            publication_problem,
        )

        with RegistryClient(self.config) as client:
            return make_plan(
                self.config,
                self.repo,
                base=base,
                prove=lambda reg: publication_problem(self.config, client, reg),
                before_proving=lambda regs: prefetch_publication_tokens(self.config, client, regs),
                missing_base=True,
            )

    def publish(self, names: list[str], commit: str) -> list[PublishResult]:
        if self.publisher is not None:
            publisher: Publisher = self.publisher
        else:
            from playbookctl.publish import publish  # noqa: PLC0415

            publisher = publish
        results = publisher(
            self.config,
            names,
            jobs=self.opts.jobs or self.config.jobs,
            dry_run=False,
            commit=commit,
            source_repository=source_repository(self.config, self.repo, self.opts.remote),
            **({"on_event": self.on_event} if self.on_event is not None else {}),
        )
        if self.publisher is None:
            # publish read each of these bundles back by digest a moment ago (a pushed one's
            # manifest, its bytes checked as Tekton reads them before the push; a reused one
            # compared with the Pipeline): verified need not ask the registry again. Only this
            # process's own publish is taken so.
            self.read_back.update(
                (r.bundle.repository, r.bundle.digest)
                for r in results
                if r.ok
                and r.bundle is not None
                and r.bundle.digest
                and r.bundle.action in (Action.PUSHED, Action.REUSED)
            )
        return results

    def registered_meanwhile(self, report: ReleaseReport, head: str) -> None:
        """A playbook this run failed to publish that another release has registered meanwhile
        (on the remote's `head`, not at this run's source commit), at the version and from the
        source this run had, is released (that release checked its bundle before registering
        it): not a failure of this run."""
        failed = {r.name: r for r in report.results if r.name in report.failed and not r.ok}
        if not failed:
            return
        before = _registrations_at(self.repo, report.source_commit)
        now = _registrations_at(self.repo, head)
        for name, r in sorted(failed.items()):
            reg, old = now.get(name), before.get(name)
            if reg is None or (reg.version, reg.source_hash) != (r.version, r.source_hash):
                continue
            if old is not None and (old.version, old.source_hash) == (reg.version, reg.source_hash):
                continue  # registered before this run began: this run's failure stands
            report.failed.remove(name)
            report.notes.append(
                f"{name}: {r.version} was registered meanwhile by another release "
                f"({reg.bundle}); this run's publish {r.status.value}: {r.error or 'no detail'}"
            )

    def published_meanwhile(
        self, results: list[PublishResult], report: ReleaseReport
    ) -> list[PublishResult]:
        """Another release publishing the same version at the same time (two merges in quick
        succession, each release picking up the other's playbook) is not a failure of this one:
        a playbook that failed or was refused here, and whose bundle tag now holds a bundle from
        the same source, is published once more, which reuses that bundle only after the usual
        checks (same source, its image an index of every platform, its Pipeline exactly what
        this playbook renders to). What fails then is this run's failure."""
        from playbookctl.oci import RegistryClient  # noqa: PLC0415
        from playbookctl.publish import published_bundle  # noqa: PLC0415

        again: list[str] = []
        failed = [
            r
            for r in results
            if r.status in (Action.FAILED, Action.REFUSED) and r.version and r.source_hash
        ]
        if not failed:
            return results
        try:
            with RegistryClient(self.config) as client:
                for r in failed:
                    ref = f"{self.config.bundle_ref(r.name)}:{r.version}"
                    found = published_bundle(client, ref)
                    if found is not None and found.source_hash == r.source_hash:
                        again.append(r.name)
        except RegistryError as exc:
            # Only a second look: the failures stand as they are.
            self.log(f"cannot look for versions published meanwhile: {exc}")
            return results
        if not again:
            return results
        self.log(f"published meanwhile by another run: {', '.join(again)}; checking it")
        redone = {r.name: r for r in self.publish(again, report.source_commit)}
        out: list[PublishResult] = []
        for r in results:
            new = redone.get(r.name)
            if new is None:
                out.append(r)
                continue
            if new.ok:
                report.notes.append(
                    f"{r.name}: {r.version} was published meanwhile by another run (this run: "
                    f"{r.status.value}: {r.error or 'no detail'}); reused after checking it"
                )
            out.append(new)
        return out

    def verified(self, results: list[PublishResult], report: ReleaseReport) -> list[PublishResult]:
        """Only results whose bundle the registry holds at that digest (never register a
        bundle that is not there)."""
        if not results:
            return []
        from playbookctl.oci import RegistryClient  # noqa: PLC0415

        out: list[PublishResult] = []
        with RegistryClient(self.config) as client:
            for r in results:
                if r.bundle is None or not r.bundle.digest:
                    continue  # ok results always carry one; nothing to register otherwise
                if (r.bundle.repository, r.bundle.digest) in self.read_back:
                    out.append(r)
                    continue
                if client.resolve(f"{r.bundle.repository}@{r.bundle.digest}") is None:
                    report.failed.append(r.name)
                    report.notes.append(
                        f"{r.name}: bundle {r.bundle.ref} is not in the registry; not registered"
                    )
                    continue
                out.append(r)
        return out

    def push(
        self, upstream: str, target: str, report: ReleaseReport, head: str
    ) -> PushStatus | None:
        """Push `head` if there is anything to push; None when done, else the retryable
        status."""
        repo, remote = self.repo, self.opts.remote
        if self.opts.branch is None:
            if not repo.commits_between(upstream, head):
                return None  # nothing new (or HEAD is behind the remote: nothing of ours)
            self.check_loopback_push(upstream, head)
            outcome = repo.push(remote, head, target)
        else:
            if head == upstream or not repo.commits_between(upstream, head):
                return None
            lease = repo.fetch(remote, target)
            if lease is not None and repo.tree_id(lease) == repo.tree_id(head):
                report.commit, report.pushed = lease, False
                report.notes.append(f"{remote}/{target} already holds this release")
                return None
            if lease is not None:
                base = (repo.commit_parents(lease) or [lease])[0]
                if base != upstream and repo.is_ancestor(upstream, base):
                    report.notes.append(
                        f"{remote}/{target} holds a release of a newer {upstream[:12]}..; left"
                    )
                    return None
            self.check_loopback_push(upstream, head)
            outcome = repo.push(remote, head, target, expect=lease)
        if outcome.status is PushStatus.OK:
            report.commit, report.pushed = head, True
            self.log(f"pushed {head[:12]} to {remote}/{target}")
            crash_point("pushed")
            return None
        if outcome.retryable:
            return outcome.status
        raise GitError(f"push to {remote}/{target} was rejected: {outcome.detail}")


def release(
    config: Config,
    opts: ReleaseOptions,
    *,
    publisher: Publisher | None = None,
    log: Callable[[str], None] | None = None,
    on_event: Callable[[str, str, str], None] | None = None,
) -> ReleaseReport:
    """Run a release; raises FatalError subclasses for what stops it. `on_event` receives
    publish's progress events (see publish.EventCallback)."""
    releaser = _Releaser(config, opts, publisher, log or (lambda _m: None))
    releaser.on_event = on_event
    return releaser.run()


def register_and_push(
    config: Config,
    results: list[PublishResult],
    opts: ReleaseOptions,
    *,
    log: Callable[[str], None] | None = None,
    inputs: Sequence[Path] = (),
) -> ReleaseReport:
    """The second half of a release, for results published elsewhere (parallel CI jobs):
    check each bundle is in the registry, register, one commit, push with the same bounded
    rebuild-and-retry on a non-fast-forward rejection. `inputs`: the result files or
    directories read, which may lie untracked inside the checkout (not a dirty tree)."""
    releaser = _Releaser(config, opts, None, log or (lambda _m: None), inputs)
    return releaser.run(given=results)


def format_table(report: ReleaseReport) -> str:
    rows = report.rows()
    if not rows:
        return "nothing to release"
    header = ("playbook", "version", "bundle", "what happened")
    cells = [header] + [(r.name, r.version, r.bundle or "-", r.what) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = []
    for c in cells:
        lines.append("  ".join(c[i].ljust(widths[i]) for i in range(3)) + "  " + c[3])
    return "\n".join(lines)


def write_step_summary(report: ReleaseReport, path: Path) -> None:
    lines = ["### playbookctl release", ""]
    rows = report.rows()
    if rows:
        lines += ["| playbook | version | bundle digest | what happened |", "|---|---|---|---|"]
        for r in rows:
            digest = r.bundle.rpartition("@")[2] if "@" in r.bundle else "-"
            cells = [r.name, r.version, f"`{digest}`", r.what]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    else:
        lines.append("Nothing to release: every playbook is registered.")
    if report.commit:
        lines += ["", f"Commit `{report.commit}` on `{report.target}`."]
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n\n")


def succeeded(report: ReleaseReport) -> bool:
    """Every planned playbook was published and registered (or found already registered)."""
    return not report.failed
