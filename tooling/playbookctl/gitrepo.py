"""The git module: every git operation playbookctl needs, and the only module importing `git`.

GitPython runs the real git binary, so behaviour matches what a user sees on the command line.
Every failure becomes a GitError with one line a user can act on.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from playbookctl.errors import GitError


class PushStatus(StrEnum):
    OK = "ok"  # the ref now points at what we pushed (or already did)
    NON_FAST_FORWARD = "non-fast-forward"  # the remote moved: fetch, rebuild, retry
    STALE_LEASE = "stale-lease"  # force-with-lease: the branch is not where we last saw it
    REJECTED = "rejected"  # refused for another reason (hook, protected branch): do not retry


@dataclass(frozen=True)
class PushOutcome:
    status: PushStatus
    detail: str

    @property
    def retryable(self) -> bool:
        return self.status in (PushStatus.NON_FAST_FORWARD, PushStatus.STALE_LEASE)


@dataclass(frozen=True)
class TreeFile:
    path: str  # relative to the repository root, posix
    executable: bool
    sha256: str  # hex digest of the content: a link's target's, as a checkout reads it


_LINK_MODE = 0o120000
_MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit
GITLINK_MODE = 0o160000  # a submodule: git records a commit of another repository there


def submodule_problem(path: str, *, gitlink: bool = True) -> str:
    """Why a git repository inside a playbook (`path`, repository-relative) cannot be part of
    it: lint's playbook.submodule and every stage that reads the tree refuse it in these
    words. `gitlink`: git's index or tree records it (a submodule); else a checkout with its
    own .git that `git add` would record as one."""
    if gitlink:
        what = (
            "a git submodule (a gitlink: this repository records only a commit of another "
            "repository here, checked out or not)"
        )
        vendor = (
            f"git rm --cached {path}, remove its .gitmodules entry and {path}/.git, put the "
            f"files in {path} and git add {path}"
        )
    else:
        what = (
            f"a git repository of its own ({path}/.git): git does not add its files to this "
            "repository (`git add` records it as a submodule)"
        )
        vendor = f"delete {path}/.git, then git add {path}"
    return (
        f"{what}: its files are not in this repository's tree, so they would be in no image "
        f"or release; vendor them ({vendor}), or fetch them in a RUN step from a pinned source"
    )


def _blob_sha256(blob: Any) -> str:
    """Streamed: a 2 GB file in git costs 2 GB of reading, not of memory."""
    digest = hashlib.sha256()
    stream = blob.data_stream
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _follow_links(blobs: dict[str, Any], path: str) -> Any:
    """The blob a checkout of `path` reads: a symbolic link inside the tree is followed to its
    target, as `playbook.source_hash` follows it in the working tree (so plan and publish agree
    on a playbook's hash); a link that leaves the tree or loops stays itself (lint refuses it)."""
    blob = blobs[path]
    for _ in range(_MAX_LINK_HOPS):
        if blob.mode != _LINK_MODE:
            return blob
        target = blob.data_stream.read(4096).decode("utf-8", "replace")
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if path not in blobs:
            return blob
        blob = blobs[path]
    return blob


def _one_line(exc: GitCommandError) -> str:
    """The most useful line of a failed git command: git's own 'fatal:'/'error:' message."""
    text = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    lines = [ln.strip() for ln in text.replace("stderr:", "").splitlines()]
    lines = [ln.strip("'").strip() for ln in lines if ln.strip("'").strip()]
    for prefix in ("fatal:", "error:"):
        for ln in lines:
            if ln.startswith(prefix):
                return ln
    if lines:
        return lines[-1]
    return f"git {exc.command[1] if len(exc.command) > 1 else ''} exited with {exc.status}"


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except GitCommandError as exc:
        raise GitError(f"{what}: {_one_line(exc)}") from None
    except (ValueError, OSError) as exc:
        raise GitError(f"{what}: {exc}") from None


def is_local_url(url: str) -> bool:
    """True for a remote on this machine, read as git reads a URL (git-clone(1), GIT URLS):
    `file://...` and paths are local; `scheme://...` and scp-like `host:path` (a colon before
    any slash) are not."""
    if "://" in url:
        return url.lower().startswith("file://")
    colon, slash = url.find(":"), url.find("/")
    return colon < 0 or (0 <= slash < colon)


_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^/:]+):(?P<path>.*)$")


def normalise_remote(url: str, base: Path | None = None) -> str:
    """The one spelling of a remote for provenance (source-repository), so clones whose remote
    is spelt differently record the same repository:
    - a forge: `https://<host>/<path>` (host lower-cased, no `.git`, no trailing `/`) from
      scp-like `git@host:o/r.git`, `ssh://`, `git://` (their port dropped: not the web's) or
      `https://` (its port kept); `http://` stays http. On GitHub this is what
      GITHUB_SERVER_URL/GITHUB_REPOSITORY make.
    - a path or `file://` URL: `file://` + its real absolute path (`..` and symbolic links
      resolved, a relative one against base), no `.git`.
    Credentials (`user:token@`) never survive: they would reach labels and registrations."""
    url = url.strip()
    if is_local_url(url):
        path = url
        if url.lower().startswith("file://"):
            path = url[len("file://") :]
            if not path.startswith("/"):  # file://host/path: the host is this machine
                path = "/" + path.partition("/")[2]
        local = Path(path) if Path(path).is_absolute() else (base or Path.cwd()) / path
        return Path(os.path.realpath(local)).as_uri().removesuffix("/").removesuffix(".git")
    scp = _SCP_LIKE.match(url)
    if scp and "://" not in url:
        scheme, host, path = "https", scp["host"], scp["path"]
    else:
        scheme, _, rest = url.partition("://")
        scheme = scheme.lower()
        authority, _, path = rest.partition("/")
        host = authority.rpartition("@")[2]
        if scheme in ("ssh", "git", "git+ssh", "ssh+git"):
            scheme = "https"
            if ":" in host and not host.endswith("]"):
                host = host.rsplit(":", 1)[0]  # an ssh port does not belong to the web URL
        elif scheme != "http":
            scheme = "https"
    path = path.strip("/").removesuffix(".git").rstrip("/")
    host = host.lower()
    return f"{scheme}://{host}/{path}" if path else f"{scheme}://{host}"


_WHERE: dict[str, tuple[Path, Path] | None] = {}  # a directory's parent -> (root, index file)
_INDEX: dict[tuple[str, int, int], dict[str, int]] = {}
_REPOS: dict[Path, GitRepo] = {}


def index_of(directory: Path) -> tuple[Path, dict[str, int]] | None:
    """(git root, path -> mode in git's index) for the repository holding directory, or None
    outside git. Read once per index version (one git process): lint and the source hash ask
    for every playbook."""
    key = str(directory.absolute().parent)
    if key not in _WHERE:
        try:
            # The parent's repository: a playbook directory that is a submodule's checkout (a
            # .git of its own) is judged by the repository holding it, not by itself.
            repo = GitRepo(Path(key))
            _WHERE[key] = (repo.root, repo.index_file)
        except GitError:
            _WHERE[key] = None
    found = _WHERE[key]
    if found is None:
        return None
    root, index_file = found
    try:
        st = index_file.stat()
    except OSError:
        return root, {}  # no index yet: nothing is tracked
    version = (str(index_file), st.st_mtime_ns, st.st_size)
    if version not in _INDEX:
        try:
            modes = _repo_at(root).index_modes(".")
        except GitError:
            return None
        if len(_INDEX) > 16:
            _INDEX.clear()
        _INDEX[version] = modes
    return root, _INDEX[version]


def _repo_at(root: Path) -> GitRepo:
    repo = _REPOS.get(root)
    if repo is None:
        repo = _REPOS[root] = GitRepo(root)
    return repo


def _placed(directory: Path) -> tuple[Path, str, dict[str, int]] | None:
    """(git root, directory relative to it, index_of's modes), or None outside git or the
    root (the directory itself is not followed if it is a link)."""
    found = index_of(directory)
    if found is None:
        return None
    root, modes = found
    here = directory.absolute().parent.resolve() / directory.name
    try:
        return root, here.relative_to(root.resolve()).as_posix(), modes
    except ValueError:
        return None


def not_in_index(directory: Path, files: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(untracked, ignored): the files (on disk, under directory) that git's index does not
    hold, split by whether an ignore rule covers them. Outside git, or when git cannot be
    read, nothing (the directory is all there is). No git process while every file is in the
    index (the usual case); else one for the directory."""
    found = _placed(directory)
    if found is None:
        return [], []
    root, rel_dir, modes = found
    by_path = {f"{rel_dir}/{f.relative_to(directory).as_posix()}": f for f in files}
    missing = [p for p in by_path if p not in modes]
    if not missing:
        return [], []
    try:
        _untracked, ignored = _repo_at(root).untracked_files([rel_dir])
    except GitError:
        return [], []
    skip = set(ignored)
    return (
        [by_path[p] for p in missing if p not in skip],
        [by_path[p] for p in missing if p in skip],
    )


def gitlinks_under(directory: Path) -> list[str]:
    """The submodules (gitlinks, repository-relative) git's index records at or under
    directory, whether or not they are checked out; [] outside git. No git process
    (index_of)."""
    found = _placed(directory)
    if found is None:
        return []
    _root, rel_dir, modes = found
    return sorted(
        p
        for p, mode in modes.items()
        if mode == GITLINK_MODE and (p == rel_dir or p.startswith(rel_dir + "/"))
    )


def converted_files(directory: Path, files: Sequence[Path]) -> list[tuple[Path, str]]:
    """(file, conversion) for the files (on disk, under directory) that a .gitattributes
    conversion applies to (GitRepo.conversions): a checkout of each holds other bytes than the
    git object images and the source hash are made from. No git process unless an attributes
    file can apply (one in the playbook, in its parents, the repository's, the global or the
    system one: none, in the usual repository). Outside git, nothing."""
    found = _placed(directory)
    if found is None:
        return []
    root, rel_dir, _modes = found
    repo = _repo_at(root)
    inside = any(f.name == ".gitattributes" for f in files)
    if not inside and not repo.attribute_files(rel_dir):
        return []
    by_path = {f"{rel_dir}/{f.relative_to(directory).as_posix()}": f for f in files}
    try:
        conversions = repo.conversions(list(by_path))
    except GitError:
        return []
    return [(by_path[p], what) for p, what in conversions.items() if p in by_path]


# Attributes under which a checkout writes other bytes than git's object holds.
_CONVERTING = ("filter", "ident", "working-tree-encoding", "eol")


class GitRepo:
    """A working tree. Paths given to and returned by methods are relative to its root."""

    def __init__(self, path: Path) -> None:
        try:
            self._repo = git.Repo(path, search_parent_directories=True)
        except (InvalidGitRepositoryError, NoSuchPathError):
            raise GitError(f"{path}: not inside a git repository") from None
        if self._repo.working_tree_dir is None:
            raise GitError(f"{path}: a bare repository has no working tree")
        self.root = Path(self._repo.working_tree_dir)
        self._git: Any = self._repo.git

    # -- reading --------------------------------------------------------------------------

    def rev_parse(self, rev: str) -> str:
        # A full commit id names the same commit for ever: asked again (one export per
        # playbook), it is not a git process again.
        known: dict[str, str] = self.__dict__.setdefault("_commit_ids", {})
        if rev in known:
            return known[rev]
        try:
            sha = str(self._git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}"))
            if len(rev) == 40 and rev == sha:
                known[rev] = sha
            return sha
        except GitCommandError:
            # A shallow clone (CI's default fetch-depth 1) is the usual reason a base is missing.
            hint = (
                "; this is a shallow clone: fetch more history (actions/checkout fetch-depth: 0)"
                if (Path(self._repo.git_dir) / "shallow").exists()
                else ""
            )
            raise GitError(f"cannot resolve {rev!r}: no such commit in {self.root}{hint}") from None

    def has_commit(self, rev: str) -> bool:
        """True when rev names a commit this repository holds (a --commit may come from CI)."""
        try:
            self._git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}")
        except GitCommandError:
            return False
        return True

    def is_shallow(self) -> bool:
        """A clone made with --depth: commits beyond its edge are missing."""
        return (Path(self._repo.git_dir) / "shallow").exists()

    def head(self) -> str:
        """The commit HEAD points at."""
        if not self._repo.head.is_valid():
            raise GitError(f"{self.root}: the repository has no commit yet")
        return str(self._repo.head.commit.hexsha)

    def current_branch(self) -> str | None:
        """The checked-out branch, or None on a detached HEAD."""
        try:
            return str(self._repo.active_branch.name)
        except TypeError:
            return None

    def is_dirty(self, paths: Sequence[str] = ()) -> bool:
        """Modified, staged or untracked (not ignored) files, optionally limited to paths."""
        with _errors("cannot read the working tree status"):
            out = self._git.status("--porcelain", "--untracked-files=all", "--", *paths)
        return bool(str(out).strip())

    def dirty_files(self, paths: Sequence[str] = ()) -> list[str]:
        with _errors("cannot read the working tree status"):
            out = str(self._git.status("--porcelain", "--untracked-files=all", "--", *paths))
        return [ln[3:] for ln in out.splitlines() if ln.strip()]

    def index_modes(self, path: str = ".") -> dict[str, int]:
        """Path -> mode (0o100644, 0o100755, 0o120000, ...) of every file git's index holds
        under path: what a checkout (and so CI's image build) will give each file."""
        with _errors("cannot read git's index"):
            out = str(self._git.ls_files("--stage", "-z", "--", path))
        modes: dict[str, int] = {}
        for entry in out.split("\0"):
            meta, tab, name = entry.partition("\t")
            if tab and meta:
                modes[name] = int(meta.split(" ", 1)[0], 8)
        return modes

    def conversions(self, paths: Sequence[str]) -> dict[str, str]:
        """Path -> the .gitattributes conversion under which a checkout of it holds other bytes
        than git's object (`filter=lfs`, `ident`, `working-tree-encoding=UTF-16`,
        `eol=crlf`); paths without one are left out. `text=auto` with a machine's
        `core.autocrlf` is not one: that is the machine's setting, not the repository's."""
        if not paths:
            return {}
        with _errors("cannot read git's attributes"):
            out = str(self._git.check_attr("-z", *_CONVERTING, "text", "--", *paths))
        fields = out.split("\0")
        values: dict[str, dict[str, str]] = {}
        for i in range(0, len(fields) - 2, 3):
            path, attr, value = fields[i : i + 3]
            values.setdefault(path, {})[attr] = value
        found: dict[str, str] = {}
        for path, attrs in values.items():
            what = [
                attr if attrs.get(attr) == "set" else f"{attr}={attrs.get(attr)}"
                for attr in _CONVERTING
                if attrs.get(attr) not in (None, "unspecified", "unset")
                # eol converts only text, and only to CRLF (LF is what git holds)
                and not (attr == "eol" and (attrs[attr] != "crlf" or attrs.get("text") == "unset"))
                and not (attr == "ident" and attrs[attr] != "set")
            ]
            if what:
                found[path] = ", ".join(what)
        return found

    def attribute_files(self, rel_dir: str) -> list[Path]:
        """The attribute files outside the tree below rel_dir that can apply to it: a
        .gitattributes in rel_dir's parents (the root's included), the repository's
        info/attributes, the global and the system file. Those that exist."""
        candidates = [Path(self._repo.git_dir) / "info" / "attributes", Path("/etc/gitattributes")]
        parts = Path(rel_dir).parts
        candidates += [self.root.joinpath(*parts[:i], ".gitattributes") for i in range(len(parts))]
        try:
            configured = self._repo.config_reader().get_value("core", "attributesFile", "")
        except (OSError, ValueError, configparser.Error):  # git itself says so later
            configured = ""
        if configured:
            candidates.append(Path(str(configured)).expanduser())
        else:
            xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
            candidates.append(Path(xdg) / "git" / "attributes")
        return [c for c in candidates if c.is_file()]

    @property
    def index_file(self) -> Path:
        return Path(self._repo.git_dir) / "index"

    def merge_base(self, a: str, b: str) -> str | None:
        try:
            return str(self._git.merge_base(a, b)).strip() or None
        except GitCommandError:
            return None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            self._git.merge_base("--is-ancestor", ancestor, descendant)
        except GitCommandError:
            return False
        return True

    def changed_files(self, base: str, head: str = "HEAD") -> list[str]:
        """Files changed between base and head, as pre-commit computes them.

        `base...head` (changes on head's side since the merge base) when the two share history,
        else `base..head` (a plain tree diff), so unrelated or grafted histories still work.
        """
        base_sha, head_sha = self.rev_parse(base), self.rev_parse(head)
        spec = (
            [f"{base_sha}...{head_sha}"]
            if self.merge_base(base_sha, head_sha)
            else [
                base_sha,
                head_sha,
            ]
        )
        with _errors(f"cannot diff {base}..{head}"):
            out = str(self._git.diff("--name-only", "--no-renames", "-z", *spec, "--"))
        return sorted(p for p in out.split("\0") if p)

    def tree_diff(self, a: str, b: str, paths: Sequence[str]) -> list[str]:
        """Files under paths whose content differs between the trees of a and b."""
        with _errors(f"cannot diff {a}..{b}"):
            out = str(self._git.diff("--name-only", "--no-renames", "-z", a, b, "--", *paths))
        return sorted(p for p in out.split("\0") if p)

    def _object(self, rev: str, path: str, kind: str) -> Any:
        """The blob, tree or submodule at path in rev, or None when there is none of that
        kind."""
        sha = self.rev_parse(rev)
        try:
            obj = self._repo.commit(sha).tree / path
        except KeyError:
            return None
        return obj if obj.type == kind else None

    def show(self, rev: str, path: str) -> bytes | None:
        """A file's content at rev, or None when the file does not exist there."""
        blob = self._object(rev, path, "blob")
        if blob is None:
            return None
        data: bytes = blob.data_stream.read()
        return data

    def size(self, rev: str, path: str) -> int | None:
        """A file's size in bytes at rev (from the object header, without reading it), or None
        when the file does not exist there."""
        blob = self._object(rev, path, "blob")
        return None if blob is None else int(blob.size)

    def list_dir(self, rev: str, path: str) -> list[str]:
        """Names of the entries of a directory at rev (empty when absent)."""
        tree = self._object(rev, path, "tree")
        if tree is None:
            return []
        # A submodule's entry has no name of its own in GitPython (it asks .gitmodules).
        return sorted(posixpath.basename(str(item.path)) for item in tree)

    def gitlinks(self, rev: str, path: str) -> list[str]:
        """The submodules (gitlinks) at or under path at rev."""
        if self._object(rev, path, "submodule") is not None:
            return [path]
        tree = self._object(rev, path, "tree")
        if tree is None:
            return []
        return sorted(str(item.path) for item in tree.traverse() if item.type == "submodule")

    def _files_of(self, rev: str, path: str) -> dict[str, Any] | None:
        """path -> blob of every file under the directory path at rev, None when there is no
        such directory. A submodule there is a GitError saying why (submodule_problem): its
        files are not in the tree, and leaving them out would be silent."""
        tree = self._object(rev, path, "tree")
        if tree is None:
            if self._object(rev, path, "submodule") is not None:
                raise GitError(f"{path}: {submodule_problem(path)}")
            return None
        blobs: dict[str, Any] = {}
        for item in tree.traverse():
            if item.type == "submodule":
                raise GitError(f"{item.path}: {submodule_problem(str(item.path))}")
            if isinstance(item, git.Blob):
                blobs[str(item.path)] = item
        return blobs

    def tree_files(self, rev: str, path: str) -> list[TreeFile]:
        """Every file under a directory at rev, with its executable bit and content; a
        submodule there is a GitError (_files_of)."""
        blobs = self._files_of(rev, path)
        if blobs is None:
            return []
        out: list[TreeFile] = []
        for file_path in sorted(blobs):
            blob = _follow_links(blobs, file_path)
            out.append(TreeFile(file_path, bool(blob.mode & 0o111), _blob_sha256(blob)))
        return out

    def untracked_files(self, paths: Sequence[str]) -> tuple[list[str], list[str]]:
        """(untracked, ignored): the files under paths that git's index does not hold, those
        no ignore rule covers and those one does. What a commit (and so a build context, see
        worktree_commit) leaves out. One git process each, whatever the number of files."""
        with _errors("cannot list untracked files"):
            others = ("--others", "--exclude-standard", "-z")
            untracked = str(self._git.ls_files(*others, "--", *paths))
            ignored = str(self._git.ls_files(*others, "--ignored", "--", *paths))
        return (
            sorted(p for p in untracked.split("\0") if p),
            sorted(p for p in ignored.split("\0") if p),
        )

    def stage(self, paths: Sequence[str]) -> None:
        """`git add` the files: tracked, so lint, a dry run and `try` take them (as they are
        on disk), with their content staged. Not `--intent-to-add`: its index entry is empty,
        so a `git checkout -- .` meant to discard other edits would empty the new files."""
        with _errors("cannot stage the new files"):
            self._git.add("--", *paths)

    def worktree_commit(self, paths: Sequence[str]) -> str:
        """A commit holding the working tree's copy of the *tracked* files under paths (the
        rest of the tree as the index has it): what `git commit -a` would commit there, made
        without touching the index, HEAD or any ref. HEAD itself when that is what it holds.

        Untracked and ignored files never enter it: it is the build context of a dry run and
        of `try`, exported by export_tree exactly as a release exports its commit, so a dry
        run checks the bytes the release will publish. Through a private copy of the index
        (GIT_INDEX_FILE), not `git stash create`: stash refreshes and rewrites the checkout's
        own index (taking index.lock, which a user's `git add` or another `try` may hold at
        that moment), works on the whole tree rather than the playbooks asked for, and cannot
        run before the first commit. A copy keeps the index's stat cache, so `add --update`
        hashes only the files that changed. A run killed at any point leaves at most an
        unreferenced object.
        """
        head = self.head() if self._repo.head.is_valid() else None
        with tempfile.TemporaryDirectory(prefix="playbookctl-index-") as tmp:
            index = Path(tmp) / "index"
            env = {"GIT_INDEX_FILE": str(index)}
            with _errors("cannot snapshot the working tree"), self._git.custom_environment(**env):
                try:
                    shutil.copyfile(self.index_file, index)
                except FileNotFoundError:  # no index yet: nothing is tracked but HEAD's files
                    if head is not None:
                        self._git.read_tree(head)
                # git refuses a pathspec that matches nothing on disk or in the index; one
                # that matches only untracked files (a brand-new playbook) adds nothing.
                paths = [
                    p for p in paths if (self.root / p).exists() or self._git.ls_files("--", p)
                ]
                if paths:
                    self._git.add("--update", "--", *paths)
                tree = str(self._git.write_tree()).strip()
        if head is not None and tree == self.tree_id(head):
            return head
        ident = {
            "GIT_AUTHOR_NAME": "playbookctl",
            "GIT_AUTHOR_EMAIL": "playbookctl@localhost",
            "GIT_COMMITTER_NAME": "playbookctl",
            "GIT_COMMITTER_EMAIL": "playbookctl@localhost",
        }
        parent = ["-p", head] if head is not None else []
        message = "playbookctl: the working tree's tracked files (never referenced)"
        with _errors("cannot snapshot the working tree"), self._git.custom_environment(**ident):
            return str(self._git.commit_tree(tree, *parent, "-m", message)).strip()

    def export_tree(self, rev: str, path: str, dest: Path) -> int:
        """Write the files under `path` at `rev` into `dest` from git's objects (not the working
        tree): regular files 0644, or 0755 when git records them executable, directories 0755,
        whatever the umask. A symbolic link is followed inside `path` (as tree_files follows
        it); one that leaves `path`, or loops, is a GitError naming it. Returns the files
        written. The build context of a publish is this: the commit, nothing beside it. A
        submodule there is a GitError saying why (_files_of), not a context without its files."""
        blobs = self._files_of(rev, path)
        if blobs is None:
            raise GitError(f"{path} is not a directory at {rev[:12]}")
        prefix = path.rstrip("/") + "/"
        dest.mkdir(parents=True, exist_ok=True)
        dest.chmod(0o755)
        written = 0
        for file_path in sorted(blobs):
            blob = _follow_links(blobs, file_path)
            rel = file_path[len(prefix) :]
            if blob.mode == _LINK_MODE:
                raise GitError(
                    f"{file_path}: a symbolic link that leaves {path} (or loops); the image is "
                    "made from the playbook's own files only"
                )
            target = dest / rel
            for parent in reversed(target.relative_to(dest).parents):
                d = dest / parent
                if not d.is_dir():
                    d.mkdir()
                    d.chmod(0o755)
            with target.open("wb") as fh:
                stream = blob.data_stream
                while chunk := stream.read(1 << 20):
                    fh.write(chunk)
            target.chmod(0o755 if blob.mode & 0o111 else 0o644)
            written += 1
        return written

    def last_commit_touching(self, paths: Sequence[str], rev: str = "HEAD") -> str | None:
        with _errors("cannot read the history"):
            out = str(self._git.log("-1", "--format=%H", rev, "--", *paths)).strip()
        return out or None

    def last_change(self, paths: Sequence[str], rev: str = "HEAD") -> tuple[str, int] | None:
        """(commit, its committer time) of the last commit at or before rev touching paths."""
        with _errors("cannot read the history"):
            out = str(self._git.log("-1", "--format=%H %ct", rev, "--", *paths)).split()
        return (out[0], int(out[1])) if len(out) == 2 else None

    def commit_message(self, rev: str) -> str:
        return str(self._repo.commit(self.rev_parse(rev)).message)

    def commit_parents(self, rev: str) -> list[str]:
        return [str(p.hexsha) for p in self._repo.commit(self.rev_parse(rev)).parents]

    def commits_between(self, base: str, head: str) -> list[str]:
        with _errors(f"cannot list commits {base}..{head}"):
            return str(self._git.rev_list(f"{base}..{head}")).split()

    def local_remote(self, name: str, path: Path | None = None) -> tuple[Path, str | None]:
        """A bare repository on this machine as remote `name`, holding the checked-out branch
        (pushed there again on every call), for releases that must not leave the machine.
        Default place: inside this clone's git directory, so it lives and dies with the clone.
        Returns its path and the branch pushed (None on a detached HEAD)."""
        if path is None:
            # git prints the common dir relative to the working tree it runs in.
            path = self.root / str(self._git.rev_parse("--git-common-dir")) / "playbookctl"
            path = path / f"{name}-remote.git"
        path = path.resolve()
        urls = self.push_urls(name)
        if urls and [str(path)] != urls:
            raise GitError(
                f"remote {name!r} already exists ({', '.join(urls)}); choose another name with "
                "--name, or remove it with `git remote remove " + name + "`"
            )
        try:
            if not (path / "HEAD").exists():
                path.mkdir(parents=True, exist_ok=True)
                git.Repo.init(path, bare=True)
            if not urls:
                self._git.remote("add", name, str(path))
            branch = self.current_branch()
            if branch is not None:
                self._git.push("--quiet", name, f"HEAD:refs/heads/{branch}")
                self._git.fetch("--quiet", name)
        except GitCommandError as exc:
            raise GitError(
                f"cannot set up the local remote {name!r} at {path}: {_one_line(exc)}"
            ) from None
        return path, branch

    def push_urls(self, remote: str) -> list[str]:
        """Where `git push remote` writes (pushurl when set, else url); [] without the remote."""
        try:
            out = str(self._git.remote("get-url", "--push", "--all", remote))
        except GitCommandError:
            return []
        return [line.strip() for line in out.splitlines() if line.strip()]

    def remote_url(self, remote: str = "origin") -> str | None:
        try:
            return str(self._git.remote("get-url", remote)).strip() or None
        except GitCommandError:
            return None

    # -- writing --------------------------------------------------------------------------

    def commit(
        self,
        message: str,
        paths: Sequence[str],
        author_name: str,
        author_email: str,
    ) -> str | None:
        """Stage paths (additions and deletions) and commit them; None when nothing changed.

        Author and committer are both the configured identity, so a CI release commit looks the
        same whichever runner made it; the environment's identity is not needed.
        """
        with _errors("cannot stage the registry changes"):
            # A path neither on disk nor tracked (nothing registered yet) is not an error.
            paths = [p for p in paths if (self.root / p).exists() or self._git.ls_files("--", p)]
            if not paths:
                return None
            self._git.add("--all", "--", *paths)
            staged = str(self._git.diff("--cached", "--name-only", "--", *paths)).strip()
        if not staged:
            return None
        env = {
            "GIT_AUTHOR_NAME": author_name,
            "GIT_AUTHOR_EMAIL": author_email,
            "GIT_COMMITTER_NAME": author_name,
            "GIT_COMMITTER_EMAIL": author_email,
        }
        with _errors("cannot commit"), self._git.custom_environment(**env):
            # Only the given paths: anything else a user staged stays out of a release commit.
            self._git.commit("--no-verify", "--quiet", "-m", message, "--", *paths)
        return self.head()

    def commit_onto(
        self,
        parent: str,
        message: str,
        paths: Sequence[str],
        author_name: str,
        author_email: str,
    ) -> str | None:
        """A commit on top of `parent` holding the working tree's copy of `paths`, made without
        touching HEAD, the index or any branch; None when it would change nothing.

        Through a private index (GIT_INDEX_FILE), so a run killed at any point leaves the
        checkout where it was: at worst an unreferenced commit object.
        """
        author = {
            "GIT_AUTHOR_NAME": author_name,
            "GIT_AUTHOR_EMAIL": author_email,
            "GIT_COMMITTER_NAME": author_name,
            "GIT_COMMITTER_EMAIL": author_email,
        }
        with tempfile.TemporaryDirectory(prefix="playbookctl-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            with _errors("cannot stage the registry changes"), self._git.custom_environment(**env):
                self._git.read_tree(parent)
                paths = [
                    p for p in paths if (self.root / p).exists() or self._git.ls_files("--", p)
                ]
                if not paths:
                    return None
                self._git.add("--all", "--", *paths)
                tree = str(self._git.write_tree()).strip()
            if tree == self.tree_id(parent):
                return None
            with _errors("cannot commit"), self._git.custom_environment(**author):
                sha = str(self._git.commit_tree(tree, "-p", parent, "-m", message)).strip()
        return sha

    def restore(self, paths: Sequence[str]) -> None:
        """Put paths back as HEAD has them, removing untracked files under them."""
        with _errors("cannot restore " + ", ".join(paths)):
            self._git.reset("--quiet", "HEAD", "--", *paths)
            tracked = [p for p in paths if self._git.ls_files("--", p)]
            if tracked:
                self._git.checkout("HEAD", "--", *tracked)
            self._git.clean("-fdq", "--", *paths)

    def tree_id(self, rev: str) -> str:
        return str(self._repo.commit(self.rev_parse(rev)).tree.hexsha)

    def _require_remote(self, remote: str) -> None:
        # Only a configured remote: also keeps an option-like name (`--upload-pack=...`) from
        # ever reaching git.
        names = sorted(r.name for r in self._repo.remotes)
        if remote not in names:
            raise GitError(f"no remote named {remote!r} (remotes: {', '.join(names) or 'none'})")

    def fetch(self, remote: str, branch: str) -> str | None:
        """Fetch one branch; returns the remote's commit for it, None when it does not exist."""
        self._require_remote(remote)
        with _errors(f"cannot fetch {branch} from {remote}"):
            out = str(self._git.ls_remote("--heads", remote, f"refs/heads/{branch}")).strip()
        if not out:
            return None
        with _errors(f"cannot fetch {branch} from {remote}"):
            refspec = f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"
            self._git.fetch("--quiet", "--no-tags", remote, refspec)
        return self.rev_parse(f"refs/remotes/{remote}/{branch}")

    def reset_hard(self, rev: str) -> None:
        with _errors(f"cannot reset onto {rev}"):
            self._git.reset("--hard", "--quiet", rev)

    def rebase(self, onto: str) -> bool:
        """Rebase the current branch onto `onto`; on a conflict abort and return False."""
        try:
            self._git.rebase("--quiet", onto)
        except GitCommandError:
            with _errors("cannot abort the rebase"):
                self._git.rebase("--abort")
            return False
        return True

    def checkout(self, rev: str, *, detach: bool = False) -> None:
        with _errors(f"cannot check out {rev}"):
            if detach:
                self._git.checkout("--quiet", "--detach", rev)
            else:
                self._git.checkout("--quiet", rev)

    def set_branch(self, name: str, rev: str) -> None:
        """Create or move a local branch to rev (without checking it out)."""
        with _errors(f"cannot set branch {name}"):
            self._git.branch("--force", "--no-track", name, rev)

    def push(
        self,
        remote: str,
        rev: str,
        branch: str,
        *,
        expect: str | bool | None = False,
    ) -> PushOutcome:
        """Push rev to refs/heads/branch and classify the outcome from git's per-ref flags.

        expect=False: a plain (fast-forward only) push. expect=None: force-with-lease that the
        branch does not exist yet; expect=SHA: force-with-lease that it is at SHA. A non-fast-
        forward or stale-lease rejection is retryable; anything else is not. The verdict comes
        from git's exit status, its porcelain per-ref flag and, for a `[remote rejected]`, the
        ref read back from the remote, never from text the remote (or its hooks) wrote.
        """
        ref = f"refs/heads/{branch}"
        args = ["--porcelain", remote, f"{rev}:{ref}"]
        if expect is not False:
            args.insert(0, f"--force-with-lease={ref}:{expect or ''}")
        self._require_remote(remote)
        said = ""
        try:
            _, out, _ = self._git.push(*args, with_extended_output=True)
        except GitCommandError as exc:
            # A refused ref exits 1 but still reports per ref on stdout; no line means git
            # never got that far (unreachable remote, auth): a plain error.
            out = exc.stdout if isinstance(exc.stdout, str) else ""
            said = _remote_said(exc.stderr if isinstance(exc.stderr, str) else "")
            line = _porcelain_line(out, ref)
            if line is None:
                raise GitError(f"cannot push to {remote}: {_one_line(exc)}") from None
        else:
            line = _porcelain_line(out, ref)
            if line is None:
                raise GitError(f"cannot push to {remote}: git reported nothing for {ref}")
        flag, summary = line
        if flag != "!":
            return PushOutcome(PushStatus.OK, summary)
        # `[rejected] (...)` is the client's own verdict from the refs the remote advertised:
        # git's words, not the remote's, so its reason can be trusted.
        if summary.startswith("[rejected]"):
            if "stale info" in summary:
                return PushOutcome(PushStatus.STALE_LEASE, summary)
            if "fetch first" in summary or "non-fast-forward" in summary:
                return PushOutcome(PushStatus.NON_FAST_FORWARD, summary)
        detail = summary or "rejected"
        detail = f"{detail}; the remote said: {said}" if said else detail
        now = self._remote_ref(remote, ref) if summary.startswith("[remote rejected]") else None
        if now is not None and now == self.rev_parse(rev):
            # Another push put the very same commit there first (two runs releasing one commit
            # make the same commit): the ref holds what we pushed.
            return PushOutcome(PushStatus.OK, f"{detail}; the remote already holds {now[:12]}")
        if summary.startswith("[remote rejected]") and self._moved(now, rev, expect):
            # The ref moved between the remote's advertisement and its update: another push
            # won the race (receive-pack answers `(failed to update ref)`, GitHub `(cannot lock
            # ref ...)`). Everything after `[remote rejected]` is the remote's text, and a
            # hook can print those very words while refusing, so the ref itself decides:
            # fetch, rebuild and retry only when it really is somewhere else now.
            status = PushStatus.NON_FAST_FORWARD if expect is False else PushStatus.STALE_LEASE
            return PushOutcome(status, detail)
        # "[remote rejected] (pre-receive hook declined)", "[remote failure]", protected
        # branches...: the hook's own words (`remote: ...`) say what to do about it.
        return PushOutcome(PushStatus.REJECTED, detail)

    def _remote_ref(self, remote: str, ref: str) -> str | None:
        """Where the remote's ref is now: None when absent, "" when the remote cannot be read."""
        try:
            out = str(self._git.ls_remote(remote, ref))
        except GitCommandError:
            return ""
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name == ref:
                return sha
        return None

    def _moved(self, now: str | None, rev: str, expect: str | bool | None) -> bool:
        """After a `[remote rejected]`: does the remote's ref (`now`) hold something this push
        was not built on? With a lease, anything but the expected value; without one, anything
        our commit does not descend from (a refusal leaves the ref where it was: an ancestor
        of what we pushed). A remote that cannot be read did not move as far as we can tell:
        the refusal is reported, not retried."""
        if now == "":
            return False
        if expect is not False:
            return now != (expect or None)
        if now is None:
            return False  # gone is not "moved ahead of us": a plain push would create it
        return not (self.has_commit(now) and self.is_ancestor(now, rev))


def _remote_said(stderr: str, limit: int = 300) -> str:
    """The `remote: ...` lines of git push's stderr, on one line."""
    lines = []
    for raw in stderr.replace("stderr:", "").splitlines():
        # The remote's words reach a terminal: no escape sequences or control characters.
        line = "".join(ch if ch.isprintable() else " " for ch in raw).strip().strip("'").strip()
        if line.startswith("remote:") and line[len("remote:") :].strip():
            lines.append(line[len("remote:") :].strip())
    text = "; ".join(lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _porcelain_line(out: str, ref: str) -> tuple[str, str] | None:
    """(flag, summary) from `git push --porcelain` for ref (`<flag>\t<from>:<to>\t<summary>`)."""
    for raw in out.replace("stdout:", "").splitlines():
        line = raw.strip("'")
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].endswith(":" + ref):
            return parts[0][:1] or " ", parts[2].strip()
    return None
