"""Load stage for playbook directories: discover them, read their files, hash their source."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbookctl.config import DEFAULT_PLATFORMS, PLAYBOOK_NAME_RE, Config
from playbookctl.errors import FatalError
from playbookctl.findings import Finding, Severity
from playbookctl.load import Document, load_file

WORKFLOW_FILE = "workflow.yaml"
PIPELINE_FILE = "pipeline.yaml"
RBAC_FILE = "rbac.yaml"
CONTAINERFILES = ("Containerfile", "Dockerfile")
NAME_RE = PLAYBOOK_NAME_RE
# Files that never belong to a playbook's source: editor and tool droppings.
_IGNORED_NAMES = {".DS_Store", "__pycache__", ".pytest_cache"}


@dataclass
class Playbook:
    name: str
    dir: Path
    root: Path
    workflow: Document | None = None
    pipeline: Document | None = None
    rbac: list[Document] = field(default_factory=list)
    containerfile: Path | None = None
    load_findings: list[Finding] = field(default_factory=list)
    # YAML files of which some document could not be read (load.* says why).
    incomplete: set[Path] = field(default_factory=set)

    def rel(self, path: Path) -> str:
        """Path as shown in findings: relative to the repository root when inside it."""
        try:  # the common case, without a system call: a path under the (resolved) root
            return path.relative_to(self.root).as_posix()
        except ValueError:
            pass
        try:
            # The parent only: a symbolic link is shown by its own name, and a looping one
            # cannot make resolve() raise.
            return (path.parent.resolve() / path.name).relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    @property
    def workflow_path(self) -> Path:
        return self.dir / WORKFLOW_FILE

    @property
    def pipeline_path(self) -> Path:
        return self.dir / PIPELINE_FILE

    @property
    def rbac_path(self) -> Path:
        return self.dir / RBAC_FILE

    @property
    def workflow_readable(self) -> bool:
        """Whether workflow.yaml loaded as a mapping with a spec mapping, so that its parameters,
        dependencies and service account are known. When not, its own finding (load.*,
        playbook.missing-file or empty-file, workflow.schema) is the one to report: rules that
        hold other files against it stand back, as a compiler reports a syntax error and not
        every use of the declarations it could not read."""
        data = self.workflow.data if self.workflow is not None else None
        return isinstance(data, dict) and isinstance(data.get("spec"), dict)

    @property
    def rbac_readable(self) -> bool:
        """Whether rbac.yaml loaded whole, every document a mapping: what it grants is known."""
        return (
            bool(self.rbac)
            and self.rbac_path not in self.incomplete
            and all(isinstance(d.data, dict) for d in self.rbac)
        )

    @property
    def spec(self) -> dict[str, Any]:
        data = self.workflow.data if self.workflow else None
        spec = data.get("spec") if isinstance(data, dict) else None
        return spec if isinstance(spec, dict) else {}

    @property
    def version(self) -> str | None:
        v = self.spec.get("version")
        return v if isinstance(v, str) else None

    @property
    def action_type(self) -> str | None:
        v = self.spec.get("actionType")
        return v if isinstance(v, str) else None

    @property
    def parameters(self) -> list[dict[str, Any]]:
        params = self.spec.get("parameters")
        return [p for p in params if isinstance(p, dict)] if isinstance(params, list) else []

    @property
    def dependencies(self) -> tuple[list[str], list[str]]:
        """Names of (secrets, configMaps) the workflow depends on."""
        deps = self.spec.get("dependencies")
        if not isinstance(deps, dict):
            return [], []

        def names(key: str) -> list[str]:
            items = deps.get(key)
            if not isinstance(items, list):
                return []
            return [
                i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)
            ]

        return names("secrets"), names("configMaps")

    @property
    def service_account(self) -> str | None:
        execution = self.spec.get("execution")
        if isinstance(execution, dict) and isinstance(execution.get("serviceAccountName"), str):
            return str(execution["serviceAccountName"])
        return None


def discover(config: Config) -> list[str]:
    """Names of the playbook directories under playbooks/, sorted."""
    base = config.playbooks_dir
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def name_argument_problem(config: Config, name: str) -> str | None:
    """Why a command's NAME argument is a path rather than a playbook's directory name
    (`fix-thing/`, `../playbooks/fix-thing`, `.`, empty), or None. Taken as given it would be
    joined to playbooks/ or registry/workflows/ and name a file elsewhere."""
    if name and "/" not in name and not name.startswith("."):
        return None
    return (
        f"no playbook {name!r}: NAME is a directory name under playbooks/, not a path "
        f"(playbooks: {', '.join(discover(config)) or 'none'})"
    )


def directory_link_problem(directory: Path, root: Path) -> str | None:
    """Why the playbook directory is not the repository's own tree, or None: it is a symbolic
    link. git stores the link, not the files, so lint and the source hash would read whatever
    it points at on this machine (outside the repository, untracked). (A playbooks/ directory
    that is itself a link is not judged here.)"""
    # Compared resolved (a repository under a linked /tmp is still itself), the directory's
    # own name kept: the link being asked about is not followed.
    root = root.resolve()
    directory = path = directory.absolute().parent.resolve() / directory.name
    while root in path.parents:  # the repository's own tree only, never the root's parents
        if path.is_symlink():
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            shown = "the playbook directory" if path == directory else f"{path.name}/"
            return (
                f"{shown} is a symbolic link (to {shown_path(target)}): a playbook is the "
                "repository's own files, as git holds them; move the directory itself here"
            )
        path = path.parent
    return None


def is_playbook_dir(path: Path) -> bool:
    return path.is_dir() and (path / WORKFLOW_FILE).is_file()


def load_playbook(directory: Path, root: Path, max_bytes: int) -> Playbook:
    pb = Playbook(name=directory.name, dir=directory, root=root)

    def load(path: Path) -> list[Document]:
        result = load_file(path, pb.rel(path), max_bytes)
        pb.load_findings.extend(result.findings)
        if not result.complete:
            pb.incomplete.add(path)
        return result.documents

    def load_single(path: Path, why: str) -> Document | None:
        docs = load(path)
        for extra in docs[1:2]:
            pb.load_findings.append(
                Finding(
                    "load.documents",
                    Severity.ERROR,
                    extra.file,
                    extra.start.line,
                    extra.start.column,
                    why,
                )
            )
        return docs[0] if docs else None

    if pb.workflow_path.is_file():
        pb.workflow = load_single(
            pb.workflow_path,
            "workflow.yaml must hold exactly one document (RBAC goes in rbac.yaml)",
        )
    if pb.pipeline_path.is_file():
        pb.pipeline = load_single(pb.pipeline_path, "pipeline.yaml must hold exactly one Pipeline")
    if pb.rbac_path.is_file():
        pb.rbac = load(pb.rbac_path)
    for candidate in CONTAINERFILES:
        if (directory / candidate).is_file():
            pb.containerfile = directory / candidate
            break
    return pb


def _walk(directory: Path) -> tuple[list[Path], list[Path]]:
    """(the files under directory, the directories holding a .git of their own)."""
    out: list[Path] = []
    holders: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        if ".git" in dirnames or ".git" in filenames:
            holders.append(Path(dirpath))
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_NAMES and d != ".git")
        out.extend(Path(dirpath) / d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))
        for fn in filenames:
            if fn in _IGNORED_NAMES or fn.endswith((".pyc", "~")):
                continue
            out.append(Path(dirpath) / fn)
    return out, holders


@dataclass(frozen=True)
class NestedRepository:
    """A git repository inside a playbook (lint's playbook.submodule)."""

    path: Path  # under the playbook directory (or the directory itself)
    rel: str  # relative to the repository's root, as git names it
    gitlink: bool  # git's index records it (a submodule); else a checkout of its own


def nested_repositories(
    directory: Path, holders: Sequence[Path] | None = None
) -> list[NestedRepository]:
    """The git repositories inside directory (itself included), in a git checkout: every
    submodule git's index records there, checked out or not, and every directory holding a
    .git of its own. Their files are not the repository's, so not the playbook's source (no
    image, source hash or release has them): source_files leaves them out and
    source_hash refuses a submodule. holders: _walk's, when already walked."""
    from playbookctl.gitrepo import gitlinks_under, index_of  # noqa: PLC0415 - git when needed

    found = index_of(directory)
    if found is None:
        return []
    root = found[0]
    here = directory.absolute().parent.resolve() / directory.name
    try:
        rel_dir = here.relative_to(root.resolve()).as_posix()
    except ValueError:
        return []
    out: dict[str, NestedRepository] = {}
    for rel in gitlinks_under(directory):
        inside = rel[len(rel_dir) + 1 :] if rel != rel_dir else ""
        out[rel] = NestedRepository(directory / inside if inside else directory, rel, True)
    for path in _walk(directory)[1] if holders is None else holders:
        inside = path.relative_to(directory).as_posix()
        rel = rel_dir if inside == "." else f"{rel_dir}/{inside}"
        if rel not in out:
            out[rel] = NestedRepository(path, rel, False)
    return [out[k] for k in sorted(out)]


def source_files(directory: Path) -> list[Path]:
    """Every file that makes up the playbook's source, sorted by relative path.

    A symbolic link to a directory is listed too (os.walk does not descend into it), so that
    lint and the source hash see it: special_file_problem refuses it. In a git checkout, a
    file git ignores is not source: images and releases are made from git's objects, so it is
    in neither, and the source hash read here must agree with the one plan reads from a
    commit (an untracked file stays: lint's playbook.untracked refuses it). Nor is a file of
    a repository nested in the playbook (a submodule's checkout: nested_repositories)."""
    out, holders = _walk(directory)
    if out:
        nested = nested_repositories(directory, holders)
        if nested:
            inside = [n.path for n in nested]
            out = [p for p in out if not any(p == n or n in p.parents for n in inside)]
    if out:
        from playbookctl.gitrepo import not_in_index  # noqa: PLC0415 - git only when needed

        _untracked, ignored = not_in_index(directory, out)
        if ignored:
            skip = set(ignored)
            out = [p for p in out if p not in skip]
    return sorted(out, key=lambda p: p.relative_to(directory).as_posix())


def path_bytes(text: str) -> bytes:
    """A path as the bytes the file system holds: names are bytes, and Python hands back one
    that is not UTF-8 as lone surrogates (surrogateescape), which a plain encode() refuses."""
    return text.encode("utf-8", "surrogateescape")


def shown_path(text: str) -> str:
    """A path fit to print: bytes that are not UTF-8 written as \\xNN escapes."""
    return path_bytes(text).decode("utf-8", "backslashreplace")


def name_problem(path: Path, directory: Path) -> str | None:
    """Why path's name (relative to directory) cannot be part of a playbook, or None: a file
    name that is not UTF-8 cannot be written in a Tekton object, a registration or a
    Containerfile, and tools along the way disagree on its bytes."""
    rel = path.relative_to(directory).as_posix()
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return (
            f"the file name is not UTF-8 ({shown_path(rel)}): every file name in a playbook must "
            "be UTF-8; rename it"
        )
    return None


def special_file_problem(path: Path, directory: Path) -> str | None:
    """Why path cannot be part of a playbook's source, or None: a playbook is regular files
    (a symbolic link only to one inside the playbook, since the image build copies the link)
    with a UTF-8 name."""
    return name_problem(path, directory) or kind_problem(path, directory)


def kind_problem(path: Path, directory: Path) -> str | None:
    """special_file_problem without the name: what the file is, and where a link leads."""
    try:
        st = path.stat()
    except OSError:
        return "a broken or looping symbolic link"
    if stat.S_ISDIR(st.st_mode):
        # The build copies the link itself, and the source hash could not say what it points
        # at: the image would change while the hash (the version's identity) did not.
        return (
            "a symbolic link to a directory: the image build copies the link, not the "
            "directory; put the directory itself in the playbook"
        )
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a FIFO, socket or device): a playbook holds regular files"
    if path.is_symlink():
        try:
            path.resolve(strict=True).relative_to(directory.resolve())
        except (OSError, RuntimeError, ValueError):
            return (
                "a symbolic link out of the playbook: the image build copies the link, not the "
                "file; copy the file in"
            )
    return None


def source_hash(directory: Path, platforms: Sequence[str] = DEFAULT_PLATFORMS) -> str:
    """A content hash of the playbook directory: relative paths, executable bits and contents,
    and the platforms its image is built for.

    It names what source produced a release; the same tree gives the same hash on any machine
    (no mtimes, no ownership, no absolute paths). The platform list is part of what was
    released: adding one is a content change that needs a version bump, so a published
    single-platform image is never reused for a multi-platform release.
    """
    outer = hashlib.sha256()
    for nested in nested_repositories(directory):
        if nested.gitlink:
            # Its files are in no image or release: a hash without them would name a source
            # the author does not see, with them one that no release holds.
            from playbookctl.gitrepo import submodule_problem  # noqa: PLC0415 - git when needed

            raise FatalError(f"{nested.rel}: {submodule_problem(nested.rel)}")
    for path in source_files(directory):
        rel = path.relative_to(directory).as_posix()
        problem = kind_problem(path, directory)
        if problem:
            # A FIFO would block the read forever; a looping link would raise mid-publish.
            raise FatalError(f"{shown_path(str(path))}: {problem}")
        with path.open("rb") as fh:
            executable = "x" if os.fstat(fh.fileno()).st_mode & 0o111 else "-"
            # Streamed in fixed-size chunks: a 2 GB file costs 2 GB of reading, not of memory.
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        # The name's own bytes (the same as encode() for a UTF-8 name): a name that is not
        # UTF-8 is lint's playbook.file-name error, and plan must still say so, not crash.
        outer.update(path_bytes(f"{rel}\0{executable}\0{digest}\n"))
    hash_platforms(outer, platforms)
    return "sha256:" + outer.hexdigest()


def size_problem(directory: Path, files: list[Path], limit: int) -> tuple[Path, str] | None:
    """(the largest file, why) when the playbook's regular files total more than `limit` bytes
    (max-playbook-bytes): a playbook is a build context and a few manifests, not a data store,
    and each one is hashed and sent to the engine on every publish."""
    total, largest, largest_size = 0, None, -1
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue  # special_file_problem names it
        if not stat.S_ISREG(st.st_mode):
            continue
        total += st.st_size
        if st.st_size > largest_size:
            largest, largest_size = path, st.st_size
    if total <= limit or largest is None:
        return None
    return largest, (
        f"the playbook's files total {total} bytes, more than max-playbook-bytes ({limit}); "
        f"the largest is this one ({largest_size} bytes)"
    )


def hash_platforms(outer: Any, platforms: Sequence[str]) -> None:
    """Fold the platform list (as a set) into a source hash; a path never starts with NUL, so
    this line cannot be mistaken for a file's."""
    outer.update(f"\0platforms\0{','.join(sorted(set(platforms)))}\n".encode())
