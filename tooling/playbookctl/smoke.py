"""Smoke stage: every built image started as Tekton would start its step, on every platform,
after the build and before the push.

A playbook can lint clean and build, and still die in the cluster on its first instruction: the
shebang's interpreter missing from the base on one platform, `remediate.sh` not executable by the
image's USER, `kubectl` absent, an arm64 image holding amd64 binaries. So, per platform image, for
each step of the rendered Pipeline that runs the playbook's image:

1. What Tekton would execute is worked out from the step and the image, as Tekton does: the
   step's `script` (Tekton writes it to a file and runs it: its shebang, `#!/bin/sh` when it has
   none), else the step's `command`, else the image's ENTRYPOINT (and CMD); the user is the
   step's `runAsUser`, else the image's USER. Kubernaut's pod template has `runAsNonRoot: true`:
   a root or non-numeric user is refused, as the kubelet would.
2. The image's filesystem is read (the engine's export of a created, never started, container)
   and checked without running anything, so it holds on every platform, emulated or not: the
   program exists; a script's shebang interpreter exists (`/usr/bin/env bash` is followed
   along the image's PATH to a `bash`); the script is readable and executable, and the
   interpreter and `kubectl` executable, by that user (owner, group and other bits, every
   directory on the way searchable); every executable found is an ELF for this platform's
   architecture (or a script).
3. Where this machine can execute the platform (natively, or through QEMU user emulation
   registered in binfmt_misc), the image is started like the step: that user, no network, all
   capabilities dropped, no new privileges, the engine's default seccomp profile (Kubernaut's
   `RuntimeDefault`), a read-only root filesystem when the step's securityContext asks for one.
   The shebang's interpreter itself runs a probe, in place of the script: the script readable and
   executable by this user (access(2), as the kernel will judge it), `kubectl` found on PATH and
   `kubectl version --client` answering. The script itself is never run (it would act on a
   cluster).
Where the platform cannot be executed here, the setting `smoke` decides: `auto` (the default)
checks it statically and says why it was not started and how to enable emulation; `required`
fails; `off` skips the whole stage.

Every failure is one line naming the platform and what is missing, e.g.
`linux/arm64: /usr/bin/env: bash not found in the image (PATH=/usr/sbin:/usr/bin:/sbin:/bin)`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import posixpath
import shlex
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from playbookctl.config import Config
from playbookctl.errors import FatalError
from playbookctl.oci.reference import parse_reference
from playbookctl.platforms import (
    _QEMU_NAME,
    BINFMT_DIR,
    Platform,
    emulation_available,
    needs_emulation,
)
from playbookctl.playbook import Playbook
from playbookctl.render import iter_step_images, render_pipeline

DEFAULT_SMOKE = "auto"
HEAD_BYTES = 128  # of each regular file: enough for a shebang line's start and an ELF header
WHOLE_FILES = {"/etc/passwd", "/etc/group"}  # read whole (up to WHOLE_LIMIT bytes)
WHOLE_LIMIT = 1 << 20
PROBE_TIMEOUT = 180.0  # seconds for one started probe (kubectl under QEMU takes a few)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's default
TEKTON_SCRIPT_DIR = "/tekton/scripts"
SHELLS = {"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox"}
_MAX_LINKS = 40  # symbolic links followed in one lookup, as Linux's ELOOP limit
# ELF e_machine -> OCI architecture.
_ELF_MACHINE = {62: "amd64", 183: "arm64", 40: "arm", 3: "386", 21: "ppc64le", 22: "s390x"}
_ELF_NAME = {
    "amd64": "an x86-64",
    "arm64": "an aarch64",
    "arm": "a 32-bit ARM",
    "386": "an i386",
    "ppc64le": "a ppc64le",
    "s390x": "an s390x",
}
ENABLE_EMULATION = (
    "apt-get install qemu-user-static binfmt-support (Debian/Ubuntu, as root), or "
    "docker/setup-qemu-action in GitHub Actions"
)


class SmokeError(FatalError):
    """An image would not start its step on some platform; the message is one line."""


# ---------------------------------------------------------------------------------------------
# The step, as Tekton will run it.


@dataclass(frozen=True)
class StepSpec:
    """A Pipeline step that runs the playbook's image."""

    name: str  # task/step, for messages
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    script: str | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    read_only_root: bool = False
    path: str | None = None  # a literal PATH from the step's env


def _security_context(*contexts: Any) -> dict[str, Any]:
    """The effective securityContext: the step's fields over the stepTemplate's."""
    out: dict[str, Any] = {}
    for ctx in contexts:
        if isinstance(ctx, dict):
            out.update(ctx)
    return out


def steps_for_image(pipeline: Any, image: str) -> list[StepSpec]:
    """The steps of a rendered Pipeline that run `image` (directly or through stepTemplate)."""
    found: list[StepSpec] = []
    spec = pipeline.get("spec") if isinstance(pipeline, dict) else None
    if not isinstance(spec, dict):
        return found
    paths = {path for path, value in iter_step_images(pipeline) if value == image}
    for section in ("tasks", "finally"):
        for i, task in enumerate(spec.get(section) or []):
            ts = task.get("taskSpec") if isinstance(task, dict) else None
            if not isinstance(ts, dict):
                continue
            raw_template = ts.get("stepTemplate")
            template: dict[str, Any] = raw_template if isinstance(raw_template, dict) else {}
            from_template = (*("spec", section, i, "taskSpec"), "stepTemplate", "image") in paths
            for j, step in enumerate(ts.get("steps") or []):
                if not isinstance(step, dict):
                    continue
                own = (*("spec", section, i, "taskSpec"), "steps", j, "image") in paths
                if not (own or ("image" not in step and from_template)):
                    continue
                ctx = _security_context(
                    template.get("securityContext"), step.get("securityContext")
                )
                found.append(
                    StepSpec(
                        name=f"{task.get('name', '?')}/{step.get('name', j)}",
                        command=_strings(step.get("command", template.get("command"))),
                        args=_strings(step.get("args", template.get("args"))),
                        script=step["script"] if isinstance(step.get("script"), str) else None,
                        run_as_user=_int(ctx.get("runAsUser")),
                        run_as_group=_int(ctx.get("runAsGroup")),
                        read_only_root=ctx.get("readOnlyRootFilesystem") is True,
                        path=_literal_path(template.get("env"), step.get("env")),
                    )
                )
    return found


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _literal_path(*envs: Any) -> str | None:
    path = None
    for env in envs:
        for item in env if isinstance(env, list) else []:
            if (
                isinstance(item, dict)
                and item.get("name") == "PATH"
                and isinstance(item.get("value"), str)
                and "$(" not in item["value"]
            ):
                path = item["value"]
    return path


# ---------------------------------------------------------------------------------------------
# The image's filesystem, read from the engine's export.


@dataclass(frozen=True)
class Entry:
    kind: str  # file | dir | link | other
    mode: int
    uid: int
    gid: int
    link: str = ""
    head: bytes = b""


@dataclass
class ImageFS:
    """Path (absolute, normalised) -> Entry, with Linux's lookup rules on top."""

    entries: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def from_tar(cls, stream: IO[bytes] | _Reader) -> ImageFS:
        fs = cls({"/": Entry("dir", 0o755, 0, 0)})
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                path = posixpath.normpath("/" + member.name.lstrip("./"))
                fs.entries[path] = fs._entry(tar, member, path)
        return fs

    def overlaid(self, layers: Iterable[bytes]) -> ImageFS:
        """A copy with image layers (gzip or plain tars, in order) applied on top, as the
        engine's overlay stacks them: entries replaced, whiteouts (`.wh.<name>`, the opaque
        `.wh..wh..opq`) removing what is below."""
        fs = ImageFS(dict(self.entries))
        for layer in layers:
            with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as tar:
                for member in tar:
                    path = posixpath.normpath("/" + member.name.lstrip("./"))
                    parent, base = posixpath.split(path)
                    if base.startswith(".wh."):
                        gone = (
                            parent if base == ".wh..wh..opq" else posixpath.join(parent, base[4:])
                        )
                        prefix = gone.rstrip("/") + "/"
                        fs.entries = {
                            k: v
                            for k, v in fs.entries.items()
                            if not k.startswith(prefix) and (base == ".wh..wh..opq" or k != gone)
                        }
                        continue
                    fs.entries[path] = fs._entry(tar, member, path)
        return fs

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> Entry:
        if member.isdir():
            return Entry("dir", member.mode, member.uid, member.gid)
        if member.issym():
            return Entry("link", member.mode, member.uid, member.gid, member.linkname)
        if member.islnk():
            target = self.entries.get(posixpath.normpath("/" + member.linkname.lstrip("./")))
            return target or Entry("other", member.mode, member.uid, member.gid)
        if member.isreg():
            fh = tar.extractfile(member)
            limit = WHOLE_LIMIT if path in WHOLE_FILES else HEAD_BYTES
            head = fh.read(limit) if fh is not None else b""
            return Entry("file", member.mode, member.uid, member.gid, head=head)
        return Entry("other", member.mode, member.uid, member.gid)

    def lookup(self, path: str) -> tuple[str, list[str]] | None:
        """(the real path `path` names, every directory searched on the way), following
        symbolic links as the kernel does; None when it does not exist."""
        parts = [p for p in path.split("/") if p]
        current = "/"
        searched: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                current = posixpath.dirname(current) or "/"
                continue
            searched.append(current)
            candidate = posixpath.join(current, part)
            entry = self.entries.get(candidate)
            if entry is None:
                return None
            if entry.kind == "link":
                hops += 1
                if hops > _MAX_LINKS:
                    return None
                target = entry.link
                base = "/" if target.startswith("/") else current
                parts = [p for p in target.split("/") if p] + parts
                current = base if target.startswith("/") else current
                continue
            if parts and entry.kind != "dir":
                return None
            current = candidate
        return current, searched

    def which(self, name: str, path: str) -> str | None:
        """`name` looked up along PATH, as execvp does: the first regular file found."""
        if "/" in name:
            return name if self.lookup(name) else None
        for directory in path.split(":"):
            candidate = posixpath.join(directory or ".", name)
            found = self.lookup(candidate)
            if found and self.entries[found[0]].kind == "file":
                return candidate
        return None


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: frozenset[int]
    shown: str  # as a message says it: "uid 65532"


def _allowed(entry: Entry, user: User, bit: int) -> bool:
    """Whether `user` has permission `bit` (4 read, 2 write, 1 execute/search) on `entry`.

    Root gets read always and execute when any x bit is set, as the kernel decides."""
    if user.uid == 0:
        return bit != 1 or entry.kind == "dir" or bool(entry.mode & 0o111)
    if entry.uid == user.uid:
        return bool(entry.mode & (bit << 6))
    if entry.gid in user.groups:
        return bool(entry.mode & (bit << 3))
    return bool(entry.mode & bit)


def resolve_user(
    fs: ImageFS, image_user: str, run_as_user: int | None, run_as_group: int | None
) -> User | str:
    """The step's user, or why Kubernaut (runAsNonRoot) would refuse to start it."""
    passwd = _table(fs, "/etc/passwd")
    groups = _table(fs, "/etc/group")
    name, _, group = image_user.partition(":")
    if run_as_user is not None:
        uid: int = run_as_user
    elif not name:
        uid = 0
    elif name.isdigit():
        uid = int(name)
    else:
        # The kubelet cannot verify a named user against runAsNonRoot and refuses the step.
        return (
            f"the image's USER {image_user!r} is not numeric: with Kubernaut's runAsNonRoot the "
            "kubelet cannot verify it and refuses to start the step (use a numeric USER, e.g. "
            "USER 65532:65532)"
        )
    if uid == 0:
        why = "runAsUser 0" if run_as_user == 0 else "the image's USER is unset or 0"
        return (
            f"the step would run as root ({why}): Kubernaut's pod template has "
            "runAsNonRoot: true, so the kubelet refuses to start it"
        )
    entry = next((row for row in passwd if row[2:3] == [str(uid)]), None)
    gid = run_as_group
    if gid is None and group:
        gid = int(group) if group.isdigit() else _gid(groups, group)
    if gid is None:
        gid = int(entry[3]) if entry and len(entry) > 3 and entry[3].isdigit() else 0
    member_of = {gid}
    if entry:
        member_of |= {
            int(row[2]) for row in groups if len(row) > 3 and entry[0] in row[3].split(",")
        }
    return User(uid, gid, frozenset(member_of), f"uid {uid}")


def _table(fs: ImageFS, path: str) -> list[list[str]]:
    found = fs.lookup(path)
    if not found:
        return []
    text = fs.entries[found[0]].head.decode("utf-8", errors="replace")
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _gid(groups: list[list[str]], name: str) -> int | None:
    row = next((r for r in groups if r and r[0] == name and len(r) > 2), None)
    return int(row[2]) if row and row[2].isdigit() else None


# ---------------------------------------------------------------------------------------------
# The static checks.


@dataclass(frozen=True)
class Program:
    """What the kernel is asked to execute, and what it then runs."""

    argv: tuple[str, ...]  # the step's program and arguments, as Tekton execs them
    script: str | None  # the script file it runs through its shebang (None for a binary)
    interpreter: tuple[str, ...] | None  # the shebang's interpreter argv
    in_image: bool  # whether the program is a file of the image (not Tekton's script file)


def shebang(head: bytes) -> tuple[str, ...] | None:
    """The interpreter argv of a `#!` line, split as Linux does (path, then one argument)."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    if not line:
        return None
    path, _, arg = line.partition(" ")
    arg = arg.strip()
    return (path, arg) if arg else (path,)


def elf_architecture(head: bytes) -> str | None:
    """The OCI architecture an ELF header names; None when `head` is not an ELF header."""
    if len(head) < 20 or not head.startswith(b"\x7fELF"):
        return None
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return _ELF_MACHINE.get(machine, f"machine {machine}")


class _Failed(Exception):  # noqa: N818 - internal: one failed check, its message
    pass


def check_image(
    fs: ImageFS,
    config: Mapping[str, Any],
    step: StepSpec,
    platform: Platform,
) -> tuple[Program, User, str]:
    """The static checks (see the module docstring); returns (program, user, PATH) or raises
    SmokeError naming the platform."""
    try:
        return _check_image(fs, config, step, platform)
    except _Failed as exc:
        raise SmokeError(f"{platform}: {exc}") from None


def _image_path(config: Mapping[str, Any], step: StepSpec) -> str:
    if step.path is not None:
        return step.path
    for item in config.get("Env") or []:
        if isinstance(item, str) and item.startswith("PATH="):
            return item[5:]
    return DEFAULT_PATH


def _check_image(
    fs: ImageFS, config: Mapping[str, Any], step: StepSpec, platform: Platform
) -> tuple[Program, User, str]:
    path = _image_path(config, step)
    user = resolve_user(fs, str(config.get("User") or ""), step.run_as_user, step.run_as_group)
    if isinstance(user, str):
        raise _Failed(user)
    interpreter: tuple[str, ...] | None
    if step.script is not None:
        head = step.script.encode("utf-8")[:HEAD_BYTES]
        interpreter = shebang(head) or ("/bin/sh",)  # Tekton's default for a script without one
        program = Program((TEKTON_SCRIPT_DIR + "/script",), None, interpreter, in_image=False)
    else:
        argv: tuple[str, ...] = step.command or tuple(config.get("Entrypoint") or ())
        argv = (*argv, *(step.args if step.args is not None else ()))
        if step.command is None and step.args is None:
            argv = (*argv, *(config.get("Cmd") or ()))
        if not argv:
            raise _Failed(
                f"step {step.name} has no command or script, and the image no ENTRYPOINT or CMD"
            )
        found = fs.which(argv[0], path)
        if found is None:
            where = "" if "/" in argv[0] else f" (PATH={path})"
            raise _Failed(f"{argv[0]} not found in the image{where}")
        real = _executable(fs, found, user, platform, what=found)
        interpreter = shebang(fs.entries[real].head)
        if interpreter is not None and not _allowed(fs.entries[real], user, 4):
            raise _Failed(f"{found} not readable by {user.shown} (its interpreter must read it)")
        program = Program(
            (found, *argv[1:]),
            found if interpreter else None,
            interpreter,
            in_image=True,
        )
    if program.interpreter is not None:
        interp = program.interpreter[0]
        where = f" (the interpreter of {program.script or 'the step script'})"
        if not interp.startswith("/"):
            raise _Failed(f"shebang interpreter {interp!r} is not an absolute path{where}")
        if fs.lookup(interp) is None:
            raise _Failed(f"{interp} not found in the image{where}")
        _executable(fs, interp, user, platform, what=interp)
        if posixpath.basename(interp) == "env" and len(program.interpreter) > 1:
            wanted = program.interpreter[1].split()[0]
            if not wanted.startswith("-"):
                target = fs.which(wanted, path)
                if target is None:
                    raise _Failed(f"{interp}: {wanted} not found in the image (PATH={path})")
                _executable(fs, target, user, platform, what=target)
    kubectl = fs.which("kubectl", path)
    if kubectl is None:
        raise _Failed(f"kubectl not found in the image (PATH={path})")
    _executable(fs, kubectl, user, platform, what=kubectl)
    return program, user, path


def _executable(fs: ImageFS, path: str, user: User, platform: Platform, *, what: str) -> str:
    """The real path of `path` if `user` may execute it and it can run on `platform`."""
    found = fs.lookup(path)
    if found is None:
        raise _Failed(f"{what} not found in the image")
    real, searched = found
    for directory in searched:
        entry = fs.entries.get(directory)
        if entry is not None and not _allowed(entry, user, 1):
            raise _Failed(f"{what} not executable by {user.shown}: {directory} is not searchable")
    entry = fs.entries[real]
    if entry.kind != "file":
        raise _Failed(f"{what} is not a regular file")
    if not _allowed(entry, user, 1):
        mode = f"{entry.mode & 0o7777:04o}"
        raise _Failed(
            f"{what} not executable by {user.shown} (mode {mode}, owner {entry.uid}:{entry.gid})"
        )
    arch = elf_architecture(entry.head)
    if arch is not None and arch != platform.architecture:
        raise _Failed(
            f"{what} is {_ELF_NAME.get(arch, arch)} executable, not one for {platform} "
            "(exec format error)"
        )
    return real


# ---------------------------------------------------------------------------------------------
# The started probe.

# Runs under the shebang's interpreter, as the step's user: $1 is the script ("" for a Tekton
# script, which Tekton writes itself), $2 the uid. Lines starting "smoke:" are read back.
PROBE = r"""
s="$1"
if [ -n "$s" ]; then
  [ -r "$s" ] || { echo "smoke:fail $s not readable by uid $2"; exit 97; }
  [ -x "$s" ] || { echo "smoke:fail $s not executable by uid $2"; exit 97; }
fi
k="$(command -v kubectl)" || { echo "smoke:fail kubectl not found on PATH=$PATH"; exit 97; }
if ! out="$(kubectl version --client 2>&1)"; then
  echo "smoke:fail $k version --client failed: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)"
  exit 97
fi
echo "smoke:ok $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)"
"""


def probe_command(program: Program, uid: int) -> list[str] | None:
    """The argv that starts the probe under the program's interpreter, or None when the
    interpreter is not a shell (then only kubectl is started)."""
    interp = program.interpreter
    if interp is None:
        return None
    shell = posixpath.basename(interp[-1].split()[0] if len(interp) > 1 else interp[0])
    if posixpath.basename(interp[0]) == "env" and len(interp) > 1:
        argv = [interp[0], *interp[1].split()]
    else:
        argv = list(interp)
        shell = posixpath.basename(interp[0])
    if shell not in SHELLS:
        return None
    return [*argv, "-c", PROBE, "smoke", program.script or "", str(uid)]


def describe_start_failure(platform: Platform, argv: Sequence[str], error: str) -> str:
    """A one-line reason for an engine that could not start the probe at all."""
    low = error.lower()
    if "exec format error" in low:
        why = "exec format error (a binary of another architecture)"
    elif "no such file or directory" in low:
        why = (
            "no such file or directory (a dynamically linked program whose loader or "
            "libraries are not in the image?)"
        )
    elif "permission denied" in low:
        why = "permission denied"
    else:
        why = error.strip().splitlines()[-1] if error.strip() else "the engine refused"
    return f"{platform}: cannot start {shlex.join(argv[:2])}: {why}"


# ---------------------------------------------------------------------------------------------
# One image on one platform.


@dataclass(frozen=True)
class Outcome:
    platform: str
    started: bool
    message: str  # one line for the publish result


def can_execute(platform: Platform, native: str, binfmt_dir: Path = BINFMT_DIR) -> str | None:
    """None if this machine can execute `platform`'s binaries, else why not and how to."""
    if not needs_emulation(native, platform):
        return None
    if emulation_available(platform.architecture, binfmt_dir):
        return None
    qemu = _QEMU_NAME.get(platform.architecture, platform.architecture)
    return (
        f"this {native} machine cannot execute {platform.architecture} binaries (no "
        f"binfmt_misc entry for qemu-{qemu}); to start it: {ENABLE_EMULATION}"
    )


def smoke_image(
    engine: Any,
    ref: str,
    platform: Platform,
    steps: Sequence[StepSpec],
    *,
    mode: str = DEFAULT_SMOKE,
    binfmt_dir: Path = BINFMT_DIR,
) -> Outcome:
    """Smoke-run the local image `ref` (built for `platform`) for `steps`; SmokeError on a
    failure. `engine` is a build.Engine (the only module that talks to the engine)."""
    if not steps:
        return Outcome(
            str(platform), False, f"smoke: {platform}: no step of the Pipeline runs this image"
        )
    config = engine.image_config(ref)
    fs = ImageFS.from_tar(_Reader(engine.export_filesystem(ref)))
    return _smoke(
        engine, fs, config, platform, steps, mode=mode, binfmt_dir=binfmt_dir, image=lambda: ref
    )


def _smoke(
    engine: Any,
    fs: ImageFS,
    config: Mapping[str, Any],
    platform: Platform,
    steps: Sequence[StepSpec],
    *,
    mode: str,
    binfmt_dir: Path,
    image: Callable[[], str],
    shown: str | None = None,
    memo: ProbeMemo | None = None,
    observed: Callable[[set[str]], str] | None = None,
    not_startable: str | None = None,
) -> Outcome:
    """The checks of one image whose filesystem and config are known: static, then started.
    `image()` gives the engine's reference of the image (loading or pulling it first if need
    be), asked only when a probe is started; `shown` names it in other images' messages. With
    `memo` and `observed` (assembled images), a probe is started once per run for everything
    it can observe (`observed(executed)`): an image that differs from one started before only
    in what the probe never reads reuses its outcome. `not_startable`: why the image cannot be
    started, whatever the platform (the static checks still run)."""
    name = str(platform)
    checked = [(step, *check_image(fs, config, step, platform)) for step in steps]
    native = memo.architecture(engine) if memo is not None else engine_architecture(engine)
    blocked = not_startable or can_execute(platform, native, binfmt_dir)
    if blocked is not None:
        if mode == "required":
            raise SmokeError(f"{name}: cannot be started here (smoke = required): {blocked}")
        return Outcome(name, False, f"smoke: {name} checked in the image, not started: {blocked}")
    identity = None
    if memo is not None and observed is not None:
        identity = observed(_executed(fs, [(program, path) for _s, program, _u, path in checked]))
    seen: set[tuple[tuple[str, ...], int]] = set()
    lines: list[str] = []
    same_as: list[str] = []
    for step, program, user, _path in checked:
        argv = probe_command(program, user.uid) or ["kubectl", "version", "--client"]
        if (tuple(argv), user.uid) in seen:
            continue
        seen.add((tuple(argv), user.uid))
        what = program.interpreter or program.argv[:1]
        lines.append(f"{' '.join(what)} as {user.shown}")
        if memo is None or identity is None:
            _start(engine, image(), platform, argv, user, step.read_only_root)
            continue
        key = (identity, name, tuple(argv), user.uid, user.gid, step.read_only_root)
        with memo.slot(key) as slot:
            if slot.started_as is not None:
                same_as.append(slot.started_as)
                continue
            ref = image()
            _start(engine, ref, platform, argv, user, step.read_only_root)
            slot.started_as = shown or ref
    note = (
        f" (as started for {', '.join(sorted(set(same_as)))}: the same base, settings and "
        "files but for scripts the probe never runs)"
        if same_as
        else ""
    )
    return Outcome(
        name,
        True,
        f"smoke: {name} started ({'; '.join(lines)}): interpreter, script and kubectl "
        f"present{note}",
    )


def _start(  # noqa: PLR0917 - the probe and where it runs, one helper of _smoke
    engine: Any, ref: str, platform: Platform, argv: list[str], user: User, read_only: bool
) -> None:
    """Start the probe in `ref`; SmokeError naming the platform when it does not pass."""
    name = str(platform)
    result = engine.run_probe(
        ref, argv, user=f"{user.uid}:{user.gid}", read_only=read_only, timeout=PROBE_TIMEOUT
    )
    if result.start_error is not None:
        raise SmokeError(describe_start_failure(platform, argv, result.start_error))
    if result.timed_out:
        raise SmokeError(
            f"{name}: {shlex.join(argv[:2])} did not finish within {PROBE_TIMEOUT:g} s"
        )
    marks = [line for line in result.output.splitlines() if line.startswith("smoke:")]
    if marks and marks[-1].startswith("smoke:fail "):
        raise SmokeError(f"{name}: {marks[-1].removeprefix('smoke:fail ')}")
    if result.exit_code != 0:
        tail = " ".join(result.output.strip().splitlines()[-2:])[:300]
        raise SmokeError(
            f"{name}: {shlex.join(argv[:2])} failed (exit {result.exit_code}) as "
            f"{user.shown}: {tail or 'no output'}"
        )


def _executed(fs: ImageFS, programs: Sequence[tuple[Program, str]]) -> set[str]:
    """The real paths of what a probe executes: each interpreter (and what `env` runs) and
    kubectl. A path that does not resolve is left out (the static check refused it already)."""
    out: set[str] = set()
    for program, path in programs:
        names: list[str] = []
        if program.interpreter is not None:
            names.append(program.interpreter[0])
            if posixpath.basename(program.interpreter[0]) == "env" and len(program.interpreter) > 1:
                names.append(fs.which(program.interpreter[1].split()[0], path) or "")
        else:
            names.append(fs.which(program.argv[0], path) or "")
        names.append(fs.which("kubectl", path) or "")
        for n in names:
            found = fs.lookup(n) if n else None
            if found is not None:
                out.add(found[0])
    return out


class _Loader:
    """An assembled child's engine reference, made there the first time a probe needs it: loaded
    from the bytes just pushed (its config and its own layers, over the base the engine pulled
    for ProbeMemo.base_fs), so no registry request is spent on it. An engine that refuses the
    load (an image store that wants every layer inside the archive) pulls it by digest, as
    pushed: the same config and layers either way, so the same image id."""

    def __init__(
        self, engine: Any, image: Any, name: str, ref: str, auth: Mapping[str, str] | None
    ) -> None:
        self.engine, self.image, self.ref, self.auth = engine, image, ref, auth
        self.tag = f"playbookctl-smoke/{name}:{image.digest.removeprefix('sha256:')[:16]}"
        self.made: str | None = None

    def __call__(self) -> str:
        if self.made is None:
            try:
                self.engine.load_archive(image_archive(self.image, self.tag), self.tag)
                self.made = self.tag
            except FatalError:
                self.engine.pull(self.ref, platform=self.image.platform, auth=self.auth)
                self.made = self.ref
        return self.made


class _Slot:
    __slots__ = ("lock", "started_as")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started_as: str | None = None


class ProbeMemo:
    """One publish run's memory for the smoke runs of assembled images: each base child's
    filesystem (pulled and exported once), and each started probe's outcome by everything it
    can observe. A failed probe is not remembered: every image that meets it starts its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[Any, _Slot] = {}
        self._bases: dict[str, ImageFS | None] = {}
        self._base_locks: dict[str, threading.Lock] = {}
        self._architecture: str | None = None

    def architecture(self, engine: Any) -> str:
        """The engine's kernel architecture, asked once per run (one engine per run)."""
        with self._lock:
            known = self._architecture
        if known is None:
            known = engine_architecture(engine)
            with self._lock:
                self._architecture = known
        return known

    @contextlib.contextmanager
    def slot(self, key: Any) -> Iterator[_Slot]:
        """The slot of `key`, held: a second image with the same key waits for the first."""
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
        with slot.lock:
            yield slot

    def base_fs(
        self, engine: Any, base: str, platform: str, auth: Mapping[str, str] | None
    ) -> ImageFS | None:
        """The filesystem of the base child `base` (pinned by digest), pulled and exported once
        per run; None when the engine cannot pull it (a private base in another registry than
        the run's, whose credentials are not the run's to hand over): then each child is
        pulled from the run's registry and exported, as pushed."""
        with self._lock:
            lock = self._base_locks.setdefault(base, threading.Lock())
        with lock:
            if base not in self._bases:
                try:
                    engine.pull(base, platform=platform, auth=auth)
                    fs: ImageFS | None = ImageFS.from_tar(_Reader(engine.export_filesystem(base)))
                except FatalError:
                    fs = None
                self._bases[base] = fs
            return self._bases[base]


def observed_identity(image: Any, base: str, config: Mapping[str, Any], executed: set[str]) -> str:
    """What a started probe of an assembled image can observe, as one digest: its base child,
    the config that shapes a process (Env, User, WorkingDir, Entrypoint, Cmd, Shell), and every
    entry its layers add (name, type, mode, owner, link target, size, content), except the
    content of a script (`#!`) the probe does not execute (the playbook's own script: the probe
    only asks whether it is readable and executable, which its mode and owner decide). Nothing
    is left out when the environment names a file a shell reads at start (BASH_ENV, ENV), or
    when what the probe executes is itself a script."""
    h = hashlib.sha256()
    h.update(base.encode())
    shaping = {
        k: config.get(k) for k in ("Env", "User", "WorkingDir", "Entrypoint", "Cmd", "Shell")
    }
    h.update(json.dumps(shaping, sort_keys=True, default=str).encode())
    env = [e for e in (config.get("Env") or []) if isinstance(e, str)]
    careful = any(e.startswith(("BASH_ENV=", "ENV=")) for e in env)
    layers = [bytes(data) for _digest, data in image.layers]  # assembled: in memory
    for layer in layers:
        with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as tar:
            for member in tar:
                path = posixpath.normpath("/" + member.name.lstrip("./"))
                size, content = member.size, ""
                if member.isreg():
                    fh = tar.extractfile(member)
                    data = fh.read() if fh is not None else b""
                    if path in executed and data.startswith(b"#!"):
                        careful = True
                    content = hashlib.sha256(data).hexdigest()
                    if data.startswith(b"#!") and path not in executed:
                        size, content = 0, "a script"  # its bytes (and so its size) unread
                fields = [path, member.type.decode("latin-1"), member.mode, member.uid]
                fields += [member.gid, member.linkname, size, content]
                h.update(json.dumps(fields).encode())
    if careful:  # every byte counts: the whole layers
        for layer in layers:
            h.update(hashlib.sha256(layer).digest())
    return h.hexdigest()


def _image_steps(config: Config, pb: Playbook) -> list[StepSpec]:
    """The steps of the Pipeline rendered around a stand-in reference for the playbook's image
    (its digest is not known before the push) that run that image."""
    marker = f"{config.image_ref(pb.name)}:smoke@sha256:{'0' * 64}"
    return steps_for_image(render_pipeline(pb, config, image=marker).data, marker)


def _stacked(below: ImageFS, image: Any) -> tuple[ImageFS, dict[str, Any]]:
    """An assembled image's filesystem (its own layers, the bytes pushed, over its base's) and
    the config it carries."""
    fs = below.overlaid(bytes(data) for _digest, data in image.layers)
    return fs, json.loads(image.config).get("config") or {}


def checker(
    config: Config,
    pb: Playbook,
    engine: Any,
    messages: list[str],
    *,
    binfmt_dir: Path = BINFMT_DIR,
    on_event: Callable[[str], None] | None = None,
) -> Callable[[str, str], None] | None:
    """publish's smoke run (platforms.build_children's `smoke`), or None when `smoke` is off:
    the steps come from the Pipeline rendered around a stand-in reference for the image (its
    digest is not known before the push); each platform's outcome goes to `messages`."""
    if config.smoke == "off":
        return None
    steps = _image_steps(config, pb)

    def check(platform: str, ref: str) -> None:
        outcome = smoke_image(
            engine,
            ref,
            Platform.parse(platform),
            steps,
            mode=config.smoke,
            binfmt_dir=binfmt_dir,
        )
        messages.append(outcome.message)
        if on_event is not None:
            on_event(outcome.message)

    return check


def check_pushed(
    config: Config,
    pb: Playbook,
    *,
    engine_of: Callable[[], Any],
    children: Sequence[Any],
    repo: str,
    messages: list[str],
    auth: Mapping[str, str] | None,
    dry_run: bool,
    binfmt_dir: Path = BINFMT_DIR,
    on_event: Callable[[str], None] | None = None,
    assembled: Sequence[tuple[Any, str]] = (),
    memo: ProbeMemo | None = None,
) -> None:
    """The smoke run of images assembled without an engine (assemble.py), whose children are
    in the registry by digest only: no tag names them before this passes. The engine pulls
    `repo@digest` (only the layers it lacks travel: the exact bytes that will be released) and
    each is checked as `checker` checks an engine build. No engine: `auto` says so, `required`
    fails. A dry run pushes nothing: each image in `assembled` ((assemble.Assembled, its base
    pinned by digest)) is loaded into the engine instead, over its base pulled by digest.

    With `memo` (publish's, one per run) and the pushed images in `assembled`, the filesystem
    is the base child's export (once per run) with the image's own layers stacked on it (the
    bytes just pushed), and a probe is started only for what no image of this run has shown
    it yet (ProbeMemo, observed_identity): for that start only, the child is loaded into the
    engine from those bytes (pulled by digest where the engine refuses the load)."""
    if config.smoke == "off":
        return
    if dry_run and not assembled:
        messages.append("smoke: not run: nothing assembled to load in this dry run")
        return
    try:
        engine = engine_of()
        engine.native_architecture()
    except FatalError as exc:
        why = f"no Docker engine to start images assembled without one ({exc})"
        if config.smoke == "required":
            shown = ", ".join(str(c.platform) for c in children)
            raise SmokeError(f"{shown}: cannot be started here (smoke = required): {why}") from None
        messages.append(f"smoke: not run: {why}")
        return
    if memo is not None and assembled and not dry_run:
        _check_assembled(
            config, pb, engine, repo, assembled, memo, messages, auth, binfmt_dir, on_event
        )
        return
    check = checker(config, pb, engine, messages, binfmt_dir=binfmt_dir, on_event=on_event)
    if check is None:  # pragma: no cover - smoke is not off here
        return
    if dry_run:
        for image, base in assembled:
            tag = f"playbookctl-smoke/{pb.name}:{image.digest.removeprefix('sha256:')[:16]}"
            if on_event is not None:
                on_event(f"smoke-running {repo}@{image.digest} ({image.platform}, loaded)")
            # The run's credentials go to the run's registry only (the engine would send them
            # to whatever registry the base is in).
            own = parse_reference(base).registry == config.registry
            engine.pull(base, platform=image.platform, auth=auth if own else None)
            try:
                engine.load_archive(image_archive(image, tag), tag)
            except FatalError as exc:
                # An image store that wants every layer inside the archive (containerd's, the
                # default of new Docker 29 installs: "layer ... not found") refuses one without
                # the base's: the image is checked from the base's export and its own layers,
                # and not started; the release's publish starts it, pulled as pushed.
                outcome = _checked_unloaded(config, pb, engine, image, base, exc, binfmt_dir)
                messages.append(outcome.message)
                if on_event is not None:
                    on_event(outcome.message)
                continue
            check(image.platform, tag)
        return
    for child in children:
        if child.digest is None:
            continue
        ref = f"{repo}@{child.digest}"
        if on_event is not None:
            on_event(f"smoke-running {ref} ({child.platform})")
        engine.pull(ref, platform=child.platform, auth=auth)
        check(child.platform, ref)


def _check_assembled(  # noqa: PLR0917 - check_pushed's state, one call site
    config: Config,
    pb: Playbook,
    engine: Any,
    repo: str,
    assembled: Sequence[tuple[Any, str]],
    memo: ProbeMemo,
    messages: list[str],
    auth: Mapping[str, str] | None,
    binfmt_dir: Path,
    on_event: Callable[[str], None] | None,
) -> None:
    steps = _image_steps(config, pb)
    for image, base in assembled:
        ref = f"{repo}@{image.digest}"
        platform = Platform.parse(image.platform)
        if not steps:
            outcome = Outcome(
                image.platform, False, f"smoke: {platform}: no step of the Pipeline runs this image"
            )
        else:
            if on_event is not None:
                on_event(f"smoke-running {ref} ({image.platform})")
            # The run's credentials go to the run's registry only: a base elsewhere is pulled
            # as the engine can without them.
            own = parse_reference(base).registry == config.registry
            below = memo.base_fs(engine, base, image.platform, auth if own else None)
            if below is None:  # the engine cannot pull the base: the child, as pushed
                engine.pull(ref, platform=image.platform, auth=auth)
                outcome = smoke_image(
                    engine, ref, platform, steps, mode=config.smoke, binfmt_dir=binfmt_dir
                )
                messages.append(outcome.message)
                if on_event is not None:
                    on_event(outcome.message)
                continue
            fs, image_config = _stacked(below, image)
            made = _Loader(engine, image, pb.name, ref, auth)
            outcome = _smoke(
                engine,
                fs,
                image_config,
                platform,
                steps,
                mode=config.smoke,
                binfmt_dir=binfmt_dir,
                image=made,
                shown=ref,
                memo=memo,
                observed=functools.partial(observed_identity, image, base, image_config),
            )
        messages.append(outcome.message)
        if on_event is not None:
            on_event(outcome.message)


def _checked_unloaded(  # noqa: PLR0917 - the dry run's state, one call site
    config: Config,
    pb: Playbook,
    engine: Any,
    image: Any,
    base: str,
    refused: FatalError,
    binfmt_dir: Path,
) -> Outcome:
    """A dry run's assembled image the engine would not load: every static check on the base
    child's export with the image's own layers stacked on it and the config it carries; not
    started (`required` fails)."""
    steps = _image_steps(config, pb)
    platform = Platform.parse(image.platform)
    if not steps:
        return Outcome(
            image.platform, False, f"smoke: {platform}: no step of the Pipeline runs this image"
        )
    below = ImageFS.from_tar(_Reader(engine.export_filesystem(base)))
    fs, image_config = _stacked(below, image)
    why = f"the engine refused to load it without its base's layers ({refused})"
    return _smoke(
        engine,
        fs,
        image_config,
        platform,
        steps,
        mode=config.smoke,
        binfmt_dir=binfmt_dir,
        image=lambda: "",
        not_startable=why,
    )


def image_archive(image: Any, tag: str) -> bytes:
    """A `docker load` archive of an assembled image: its config and the layers it adds; the
    base's layers are named but not carried (the engine holds them, pulled by digest)."""
    config = json.loads(image.config)
    diff_ids = config["rootfs"]["diff_ids"]
    added = len(image.layers)
    names = [f"{i}/layer.tar" for i in range(len(diff_ids))]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("config.json", image.config)
        for name, (_digest, data) in zip(names[len(names) - added :], image.layers, strict=True):
            add(name, bytes(data))  # gzip: the engine decompresses what it loads
        manifest = [{"Config": "config.json", "RepoTags": [tag], "Layers": names}]
        add("manifest.json", json.dumps(manifest).encode())
    return out.getvalue()


def engine_architecture(engine: Any) -> str:
    from playbookctl.platforms import kernel_architecture  # noqa: PLC0415

    return kernel_architecture(engine.native_architecture())


class _Reader:
    """A read()-able file over an iterator of byte chunks (the engine's streamed export)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf = b""
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        want = size
        while want != 0:
            if self._pos >= len(self._buf):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buf, self._pos = chunk, 0
            end = len(self._buf) if want < 0 else min(len(self._buf), self._pos + want)
            parts.append(self._buf[self._pos : end])
            if want > 0:
                want -= end - self._pos
            self._pos = end
        return b"".join(parts)
