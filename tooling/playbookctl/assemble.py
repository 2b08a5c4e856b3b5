"""Assemble stage: RUN-less images made without an engine, from the build context's files.

The approach of ko, Jib and crane, for Containerfiles. A Containerfile whose every instruction
has a result known without running anything (`FROM` one image, `ARG`, `ENV`, `LABEL`,
`COPY`/`ADD` of local non-archive files with `--chown`/`--chmod`, `WORKDIR`, `USER`, `EXPOSE`,
`ENTRYPOINT`, `CMD`, `SHELL`, `VOLUME`, `STOPSIGNAL`, `HEALTHCHECK`, `ONBUILD`, `MAINTAINER`)
is interpreted here the way Docker 20.10's classic builder executes it (a `COPY --chmod`, which
only BuildKit takes, the way BuildKit does), and the image is written
directly: each `COPY`/`ADD` (and a `WORKDIR` that creates a directory) becomes one layer,
built once from the context's bytes with fixed headers, written as gzip of stored blocks (the
same bytes on every machine: oci/storedgzip.py), and stacked on every platform's base manifest
(resolved from the base's index): every platform without emulation, one upload of each layer
shared by all. The config is what `docker build` writes, field by field, made reproducible as
build.py makes an engine build (`created` and the new history entries at the revision's commit
time, no intermediate container or image ids).

What the classic builder writes that depends on the base's filesystem is read from the base's
layers (once per layer, cached on disk by digest): the owner, mode and time of each directory
a layer passes through (overlayfs copies them up into the layer), whether a destination is an
existing directory, and /etc/passwd and /etc/group for `--chown` by name.

Anything else raises `Refused` with the reason, and the playbook is built by the engine as
before: `RUN`, several stages, `COPY --from`, `ADD` of a URL or an archive, `ONBUILD` triggers in
the base, a destination that crosses a symbolic link, parser features dockerfile.py does not
reproduce. The differences that remain from `docker build` (the classic builder, and BuildKit)
are listed in the README ("What is assembled and what is built");
tests/integration/test_assemble_oracle.py holds both builders to them.

No engine is called here: only the registry client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import logging
import os
import posixpath
import re
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from zlib_ng import gzip_ng, zlib_ng

from playbookctl import dockerfile, dockerignore
from playbookctl.concurrently import concurrently
from playbookctl.crashpoints import crash_point
from playbookctl.dockerfile import Instruction, Unsupported
from playbookctl.errors import FatalError, RegistryError
from playbookctl.oci import Descriptor, RegistryClient, parse_reference, sha256_digest
from playbookctl.oci.fileblob import FileBlob
from playbookctl.oci.storedgzip import stored_gzip

log = logging.getLogger("playbookctl.assemble")

DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A base layer is read once to learn its directories (then cached by digest); beyond this size
# it is not read at all and the playbook goes to the engine.
MAX_BASE_LAYER_BYTES = 1024 * 1024 * 1024
CACHE_VERSION = "base-fs-v1"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Refused(Exception):  # noqa: N818 - a reason to use the engine, not a failure
    """This Containerfile is built by the engine instead; str() says why, in one line."""


# ---------------------------------------------------------------------------------------------
# A filesystem view: the base's entries and what the layers above it changed.


@dataclass
class Entry:
    kind: str  # dir | file | link
    mode: int  # permission bits (with setuid, setgid, sticky)
    uid: int
    gid: int
    mtime: int
    link: str = ""


@dataclass
class BaseFS:
    """What the base's layers leave: every entry (no content), and the user databases."""

    entries: dict[str, Entry] = field(default_factory=dict)  # "usr/local/bin" -> Entry
    files: dict[str, bytes] = field(default_factory=dict)  # etc/passwd, etc/group


_KEPT_FILES = ("etc/passwd", "etc/group")
# zlib-ng's stub declares its error as an instance (`error: Exception`); it is a class.
_ZLIB_NG_ERROR: type[Exception] = zlib_ng.error  # type: ignore[assignment]


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/") if name not in ("", ".", "./") else ""


def apply_layer(fs: BaseFS, layer: Mapping[str, Any]) -> None:
    """Apply one cached layer summary (see summarise_layer) to `fs`, whiteouts first."""
    for opaque in layer.get("opaque", []):
        prefix = opaque + "/"
        for key in [k for k in fs.entries if k.startswith(prefix)]:
            del fs.entries[key]
        for key in [k for k in fs.files if k.startswith(prefix)]:
            del fs.files[key]
    for gone in layer.get("whiteouts", []):
        prefix = gone + "/"
        for key in [k for k in fs.entries if k == gone or k.startswith(prefix)]:
            del fs.entries[key]
        fs.files.pop(gone, None)
    for name, (kind, mode, uid, gid, mtime, link) in layer.get("entries", {}).items():
        fs.entries[name] = Entry(kind, mode, uid, gid, mtime, link)
        if kind != "file":
            fs.files.pop(name, None)
    for name, text in layer.get("files", {}).items():
        fs.files[name] = text.encode("latin-1")


def is_layer_summary(value: object) -> bool:
    """Whether `value` has the shape summarise_layer gives (what apply_layer may be given)."""
    if not isinstance(value, dict) or set(value) != {"entries", "whiteouts", "opaque", "files"}:
        return False
    entries, whiteouts, opaque, files = (
        value[k] for k in ("entries", "whiteouts", "opaque", "files")
    )
    if not (isinstance(entries, dict) and isinstance(files, dict)):
        return False
    if not all(
        isinstance(x, list) and all(isinstance(n, str) for n in x) for x in (whiteouts, opaque)
    ):
        return False
    for name, entry in entries.items():
        if not (isinstance(entry, list) and len(entry) == 6):
            return False
        kind, *numbers, link = entry
        if kind not in ("dir", "file", "link") or not isinstance(link, str):
            return False
        if not all(type(n) is int for n in numbers) or not isinstance(name, str):
            return False
    return all(_latin1(text) for text in files.values())


def _latin1(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def summarise_layer(fileobj: io.BufferedIOBase | io.BytesIO) -> dict[str, Any]:
    """A layer tar (compressed or not) as {entries, whiteouts, opaque, files}: no contents but
    /etc/passwd and /etc/group."""
    entries: dict[str, list[Any]] = {}
    whiteouts: list[str] = []
    opaque: list[str] = []
    files: dict[str, str] = {}
    # A gzip layer (nearly all) is inflated by zlib-ng, about twice as fast as the standard
    # library's zlib: on a cold cache the base's layers are inflated whole, on the run's
    # critical path. Only reading: the layers we write are compressed by the standard library,
    # whose bytes (and so digests) are the reproducible ones.
    gzipped = fileobj.seekable() and fileobj.read(2) == b"\x1f\x8b"
    if fileobj.seekable():
        fileobj.seek(0)
    try:
        with contextlib.ExitStack() as stack:
            stream: Any = fileobj
            if gzipped:
                # (GzipNGFile.__init__ carries no annotations, unlike the rest of zlib-ng)
                inflated = gzip_ng.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[no-untyped-call]
                stream = stack.enter_context(inflated)
            # Read in large blocks: file contents are skipped by reading through them (a stream
            # cannot seek), and tarfile's default 10 KiB blocks make that Python-bound on 40 MB.
            tar = stack.enter_context(
                tarfile.open(fileobj=stream, mode="r|" if gzipped else "r|*", bufsize=1 << 20)
            )
            _summarise_members(tar, entries, whiteouts, opaque, files)
    except _ZLIB_NG_ERROR as exc:  # reported as tarfile reports the standard library's zlib's
        raise tarfile.ReadError(f"invalid compressed data: {exc}") from None
    return {"entries": entries, "whiteouts": whiteouts, "opaque": opaque, "files": files}


def _summarise_members(
    tar: tarfile.TarFile,
    entries: dict[str, list[Any]],
    whiteouts: list[str],
    opaque: list[str],
    files: dict[str, str],
) -> None:
    for member in tar:
        name = _clean(member.name)
        if not name:
            continue
        base = posixpath.basename(name)
        parent = posixpath.dirname(name)
        if base == ".wh..wh..opq":
            opaque.append(parent)
            continue
        if base.startswith(".wh."):
            whiteouts.append(posixpath.join(parent, base[4:]))
            continue
        if member.isdir():
            kind = "dir"
        elif member.issym():
            kind = "link"
        else:
            kind = "file"
        entries[name] = [
            kind,
            member.mode & 0o7777,
            member.uid,
            member.gid,
            int(member.mtime),
            member.linkname if member.issym() else "",
        ]
        if name in _KEPT_FILES and member.isreg():
            fh = tar.extractfile(member)
            if fh is not None:
                files[name] = fh.read(1024 * 1024).decode("latin-1")


# ---------------------------------------------------------------------------------------------
# The plan: the Containerfile interpreted, layers described, config built.


@dataclass
class ContextFile:
    path: str  # relative, posix
    kind: str  # file | dir
    mode: int  # 0o644 / 0o755 as the engine's context sends them


@dataclass
class LayerEntry:
    path: str
    kind: str  # dir | file
    mode: int
    uid: int
    gid: int
    mtime: int
    source: str = ""  # context path of a file's content


@dataclass
class Plan:
    """A RUN-less Containerfile, interpreted: the base, the layers (before the base's
    filesystem is known) and the steps that build the config."""

    base: str  # the FROM reference as written (ARG defaults applied)
    base_line: int
    steps: list[Instruction]
    escape: str
    meta_args: dict[str, str | None]


_NO_LAYER = {
    "ARG",
    "ENV",
    "LABEL",
    "USER",
    "EXPOSE",
    "ENTRYPOINT",
    "CMD",
    "SHELL",
    "VOLUME",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
}
_SUPPORTED = _NO_LAYER | {"COPY", "ADD", "WORKDIR"}


def plan(text: str) -> Plan:
    """Check that `text` can be assembled without running anything; Refused says why not."""
    try:
        parsed = dockerfile.parse(text)
    except Unsupported as exc:
        raise Refused(str(exc)) from None
    meta: dict[str, str | None] = {}
    base: str | None = None
    base_line = 0
    steps: list[Instruction] = []
    for ins in parsed.instructions:
        builder_flags(ins.flags, ins.line)
        if ins.keyword == "FROM":
            if base is not None:
                raise Refused(f"line {ins.line}: several stages (a second FROM)")
            if ins.flags:
                raise Refused(f"line {ins.line}: FROM {' '.join(ins.flags)}")
            words = dockerfile.split_whitespace(ins.rest)
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise Refused(f"line {ins.line}: FROM {ins.rest!r}")
            env = {k: v for k, v in meta.items() if v is not None}
            try:
                base = dockerfile.expand(words[0], env, parsed.escape)
            except Unsupported as exc:
                raise Refused(f"line {ins.line}: {exc}") from None
            if not base or base == "scratch":
                raise Refused(f"line {ins.line}: FROM {base or words[0]!r} (no base to stack on)")
            base_line = ins.line
            continue
        if base is None:
            if ins.keyword != "ARG":
                raise Refused(f"line {ins.line}: {ins.keyword} before FROM")
            name, value = _arg(ins, {}, parsed.escape)
            meta[name] = value
            continue
        if ins.keyword == "RUN":
            raise Refused(f"line {ins.line}: RUN executes the base's programs")
        if ins.keyword not in _SUPPORTED:
            raise Refused(f"line {ins.line}: {ins.keyword}")
        if ins.keyword in ("COPY", "ADD"):
            for item in ins.flags:
                key = item[2:].partition("=")[0]
                if key not in ("chown", "chmod"):
                    raise Refused(f"line {ins.line}: {ins.keyword} {item}")
            chmod_mode(ins.flags, ins.line)
        elif ins.flags and ins.keyword != "HEALTHCHECK":
            raise Refused(f"line {ins.line}: {ins.keyword} {' '.join(ins.flags)}")
        steps.append(ins)
    if base is None:
        raise Refused("no FROM")
    return Plan(base, base_line, steps, parsed.escape, meta)


def builder_flags(flags: Sequence[str], line: int) -> None:
    """Refuse what every builder refuses before building (moby's BFlags.Parse, in the classic
    builder and in BuildKit's frontend alike; tried on both): a flag's name is matched exactly
    (`--CHMOD=0755` is "Unknown flag: CHMOD"), and a flag given twice is "Duplicate flag
    specified" (only RUN --mount, which nothing assembles, may repeat). The engine then says so
    in its own words, and lint's playbook.builder-flag before it."""
    seen: set[str] = set()
    for item in flags:
        name = item[2:].partition("=")[0]
        if name != name.lower():
            raise Refused(f"line {line}: --{name}: Unknown flag (flag names are lower case)")
        if name in seen and name != "mount":
            raise Refused(f"line {line}: --{name}: Duplicate flag specified")
        seen.add(name)


def chmod_mode(flags: Sequence[str], line: int) -> int | None:
    """The mode a COPY/ADD's `--chmod` among flags (as written) gives its files, None without
    one; Refused for one BuildKit versions read differently (no other builder takes the flag,
    so their agreement is the only meaning it has; read from moby/buildkit's dockerfile
    frontend and tonistiigi/fsutil's copy). The one reading of the flag: assembly applies it
    and lint's playbook.executable trusts it (lint/playbook.copied_files)."""
    builder_flags(flags, line)  # a flag no builder takes settles no mode
    value = dockerfile.flag_value(flags, "chmod")
    if value is None:
        return None
    if not re.fullmatch(r"[0-7]{3,4}", value):
        raise Refused(
            f"line {line}: --chmod={value}: only an octal mode is assembled (BuildKit's "
            "Dockerfile frontend before 0.16 ignores any other value, 0.16 to 0.19 refuse it, "
            "0.20 and later read it as chmod(1) does)"
        )
    if int(value, 8) & 0o7000:
        raise Refused(
            f"line {line}: --chmod={value}: the setuid, setgid and sticky bits are dropped "
            "by BuildKit before 0.13 (Docker 26) and kept since"
        )
    return int(value, 8)


def _arg(ins: Instruction, env: Mapping[str, str], escape: str) -> tuple[str, str | None]:
    words = dockerfile.parse_words(ins.rest, escape)
    if len(words) != 1:
        raise Refused(f"line {ins.line}: ARG with {len(words)} names")
    name, eq, value = words[0].partition("=")
    try:
        name = dockerfile.expand(name, env, escape)
        return name, (dockerfile.expand(value, env, escape) if eq else None)
    except Unsupported as exc:
        raise Refused(f"line {ins.line}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Interpretation against one base: the layers and the config.


@dataclass
class Layer:
    entries: list[LayerEntry]
    created_by: str


@dataclass
class Result:
    layers: list[Layer | None]  # per history entry added: a layer, or None (empty_layer)
    config: dict[str, Any]  # the image config, as the classic builder writes it (normalised)
    history: list[dict[str, Any]]


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


_CONTAINER_CONFIG_FIELDS: tuple[tuple[str, Any, bool], ...] = (
    # (field, zero value, omitted when empty): Docker 20.10's container.Config, in its order.
    ("Hostname", "", False),
    ("Domainname", "", False),
    ("User", "", False),
    ("AttachStdin", False, False),
    ("AttachStdout", False, False),
    ("AttachStderr", False, False),
    ("ExposedPorts", None, True),
    ("Tty", False, False),
    ("OpenStdin", False, False),
    ("StdinOnce", False, False),
    ("Env", None, False),
    ("Cmd", None, False),
    ("Healthcheck", None, True),
    ("ArgsEscaped", False, True),
    ("Image", "", False),
    ("Volumes", None, False),
    ("WorkingDir", "", False),
    ("Entrypoint", None, False),
    ("NetworkDisabled", False, True),
    ("MacAddress", "", True),
    ("OnBuild", None, False),
    ("Labels", None, False),
    ("StopSignal", "", True),
    ("StopTimeout", None, True),
    ("Shell", None, True),
)


def _run_config(base: Mapping[str, Any]) -> dict[str, Any]:
    """The base's config as Docker re-reads it: its known fields only, zero values filled."""
    out: dict[str, Any] = {}
    for name, zero, _omit in _CONTAINER_CONFIG_FIELDS:
        value = base.get(name, zero)
        out[name] = json.loads(json.dumps(value)) if value is not None else None
    return out


def _serialise_run_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, zero, omit in _CONTAINER_CONFIG_FIELDS:
        value = cfg.get(name, zero)
        if omit and (value in (None, "", False, {}, [])):
            continue
        out[name] = value
    return out


_DURATION_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
_DURATION_UNITS["h"] = 3600 * 10**9
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration for non-negative values, in nanoseconds."""
    if text == "0":
        return 0
    pos, total = 0, 0
    while pos < len(text):
        m = _DURATION_RE.match(text, pos)
        if m is None:
            raise Refused(f"duration {text!r}")
        total += int(float(m.group(1)) * _DURATION_UNITS[m.group(2)])
        pos = m.end()
    if not text:
        raise Refused("an empty duration")
    return total


def go_duration(ns: int) -> str:
    """Go's Duration.String() for the whole-unit values a Containerfile writes."""
    if ns == 0:
        return "0s"
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 1000), ("ns", 1)):
            if ns >= size:
                value = ns / size
                text = f"{value:.9f}".rstrip("0").rstrip(".")
                return f"{text}{unit}"
    out = ""
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    seconds = f"{rest / 10**9:.9f}".rstrip("0").rstrip(".")
    return out + f"{seconds}s"


def _go_rune(value: int) -> str:
    escapes = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
    if value in escapes:
        return f"'{escapes[value]}'"
    if value == 39:
        return "'\\''"
    if value == 92:
        return "'\\\\'"
    if value < 0x20 or value == 0x7F:
        return f"'\\x{value:02x}'"
    return f"'{chr(value)}'"


def _signal_ok(value: str) -> bool:
    import signal  # noqa: PLC0415 - only STOPSIGNAL needs it

    if value.isdigit():
        return int(value) > 0
    name = value.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    return (
        hasattr(signal.Signals, name) or re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?", name) is not None
    )


class _Interpreter:
    """Runs the steps of a Plan against a base's config and filesystem."""

    def __init__(
        self,
        the_plan: Plan,
        base_config: Mapping[str, Any],
        fs: BaseFS,
        *,
        context: Mapping[str, ContextFile],
        read: Callable[[str], bytes],
        epoch: int,
    ) -> None:
        self.plan = the_plan
        self.base_config = base_config
        self.fs = BaseFS(dict(fs.entries), dict(fs.files))
        self.context = context
        self.read = read
        self.epoch = epoch
        self.run = _run_config(base_config.get("config") or {})
        if self.run["OnBuild"]:
            raise Refused("the base image has ONBUILD triggers, which run at build time")
        env = list(self.run["Env"] or [])
        if not any(e.startswith("PATH=") for e in env):
            env.append(f"PATH={DEFAULT_PATH}")
        self.run["Env"] = env
        self.args: dict[str, str | None] = {}
        self.cmd_set = False
        self.author = base_config.get("author") or ""
        self.layers: list[Layer | None] = []
        self.history: list[dict[str, Any]] = []

    # -- helpers -----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        out = {k: v for k, v in self.args.items() if v is not None}
        for item in self.run["Env"] or []:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def x(self, ins: Instruction, word: str) -> str:
        try:
            return dockerfile.expand(word, self.env(), self.plan.escape)
        except Unsupported as exc:
            raise Refused(f"line {ins.line}: {exc}") from None

    def shell(self) -> list[str]:
        return list(self.run["Shell"] or DEFAULT_SHELL)

    def comment(self, text: str) -> None:
        """A metadata step: the builder commits an empty layer, `#(nop) ` then the text."""
        self.layers.append(None)
        self.history.append({"created_by": " ".join([*self.shell(), "#(nop) ", text])})

    def layer(self, entries: list[LayerEntry] | None, text: str) -> None:
        created_by = " ".join([*self.shell(), "#(nop) " + text])
        self.layers.append(Layer(entries, created_by) if entries else None)
        self.history.append({"created_by": created_by})

    # -- the filesystem ----------------------------------------------------------------------

    def lookup(self, path: str) -> Entry | None:
        return self.fs.entries.get(path)

    def check_no_link(self, ins: Instruction, path: str) -> None:
        parts = path.split("/") if path else []
        for i in range(1, len(parts) + 1):
            entry = self.lookup("/".join(parts[:i]))
            if entry is not None and entry.kind == "link":
                raise Refused(
                    f"line {ins.line}: /{'/'.join(parts[:i])} is a symbolic link in the image "
                    "(the engine follows it)"
                )
            if entry is not None and entry.kind == "file" and i < len(parts):
                raise Refused(f"line {ins.line}: /{'/'.join(parts[:i])} is a file, not a directory")

    def check_no_link_path(self, path: str) -> None:
        parts = path.split("/")
        for n in range(1, len(parts) + 1):
            entry = self.fs.entries.get("/".join(parts[:n]))
            if entry is not None and entry.kind == "link":
                raise Refused(f"/{'/'.join(parts[:n])} is a symbolic link in the image")

    # -- steps -------------------------------------------------------------------------------

    def execute(self) -> Result:
        for ins in self.plan.steps:
            getattr(self, "do_" + ins.keyword.lower())(ins)
        return self.result()

    def do_arg(self, ins: Instruction) -> None:
        name, value = _arg(ins, self.env(), self.plan.escape)
        if value is None and name in self.plan.meta_args:
            value = self.plan.meta_args[name]
        self.args[name] = value
        self.comment(f"ARG {name}" + (f"={value}" if value is not None else ""))

    def do_env(self, ins: Instruction) -> None:
        pairs = self._pairs(ins)
        env = list(self.run["Env"] or [])
        text = "ENV"
        for key, value in pairs:
            text += f" {key}={value}"
            for i, item in enumerate(env):
                if item.partition("=")[0] == key:
                    env[i] = f"{key}={value}"
                    break
            else:
                env.append(f"{key}={value}")
        self.run["Env"] = env
        self.comment(text)

    def _pairs(self, ins: Instruction) -> list[tuple[str, str]]:
        try:
            raw = dockerfile.name_values(ins.rest, ins.keyword, self.plan.escape)
        except Unsupported as exc:
            raise Refused(f"line {ins.line}: {exc}") from None
        pairs = [(self.x(ins, k), self.x(ins, v)) for k, v in raw]
        if any(not k for k, _ in pairs):
            raise Refused(f"line {ins.line}: {ins.keyword} with an empty name")
        return pairs

    def do_label(self, ins: Instruction) -> None:
        labels = dict(self.run["Labels"] or {})
        text = "LABEL"
        for key, value in self._pairs(ins):
            labels[key] = value
            text += f" {key}={value}"
        self.run["Labels"] = labels
        self.comment(text)

    def do_maintainer(self, ins: Instruction) -> None:
        self.author = ins.rest
        self.comment(f"MAINTAINER {ins.rest}")

    def do_user(self, ins: Instruction) -> None:
        value = self.x(ins, ins.rest)
        self.run["User"] = value
        self.comment(f"USER {value}")

    def do_stopsignal(self, ins: Instruction) -> None:
        value = self.x(ins, ins.rest)
        if not _signal_ok(value):
            raise Refused(f"line {ins.line}: STOPSIGNAL {value!r}")
        self.run["StopSignal"] = value
        self.comment(f"STOPSIGNAL {value}")

    def do_expose(self, ins: Instruction) -> None:
        ports: list[str] = []
        env = self.env()
        for word in dockerfile.split_whitespace(ins.rest):
            try:
                ports += dockerfile.expand_words(word, env, self.plan.escape)
            except Unsupported as exc:
                raise Refused(f"line {ins.line}: {exc}") from None
        exposed = dict(self.run["ExposedPorts"] or {})
        for port in ports:
            m = re.fullmatch(r"(\d+)(?:/(tcp|udp|sctp))?", port, re.IGNORECASE)
            if m is None or not 0 < int(m.group(1)) < 65536:
                raise Refused(f"line {ins.line}: EXPOSE {port!r}")
            exposed[f"{int(m.group(1))}/{(m.group(2) or 'tcp').lower()}"] = {}
        self.run["ExposedPorts"] = exposed
        self.comment("EXPOSE " + " ".join(sorted(ports)))

    def _command(self, ins: Instruction) -> list[str]:
        words = dockerfile.json_or_none(ins.rest)
        if words is not None:
            return words
        return [*self.shell(), ins.rest]

    def do_entrypoint(self, ins: Instruction) -> None:
        self.run["Entrypoint"] = self._command(ins)
        if not self.cmd_set:
            self.run["Cmd"] = None
        self.comment(f"ENTRYPOINT {dockerfile.go_quote_list(self.run['Entrypoint'])}")

    def do_cmd(self, ins: Instruction) -> None:
        self.run["Cmd"] = self._command(ins)
        self.cmd_set = True
        self.comment(f"CMD {dockerfile.go_quote_list(self.run['Cmd'])}")

    def do_shell(self, ins: Instruction) -> None:
        words = dockerfile.json_or_none(ins.rest)
        if not words:
            raise Refused(f"line {ins.line}: SHELL needs the JSON form")
        self.run["Shell"] = words
        self.comment(f"SHELL [{' '.join(words)}]")

    def do_volume(self, ins: Instruction) -> None:
        words = dockerfile.json_or_none(ins.rest)
        if words is None:
            words = dockerfile.split_whitespace(ins.rest)
        volumes = [self.x(ins, w) for w in words]
        if not volumes or any(not v.strip() for v in volumes):
            raise Refused(f"line {ins.line}: VOLUME with an empty path")
        current = dict(self.run["Volumes"] or {})
        for v in volumes:
            current[v] = {}
        self.run["Volumes"] = current
        self.comment(f"VOLUME [{' '.join(volumes)}]")

    def do_onbuild(self, ins: Instruction) -> None:
        expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", ins.original)
        trigger = expression.split(None, 1)[0].upper() if expression.strip() else ""
        if trigger in ("", "ONBUILD", "FROM", "MAINTAINER"):
            raise Refused(f"line {ins.line}: ONBUILD {trigger or 'without an instruction'}")
        self.run["OnBuild"] = [*(self.run["OnBuild"] or []), expression]
        self.comment(f"ONBUILD {expression}")

    def do_healthcheck(self, ins: Instruction) -> None:
        words = dockerfile.split_whitespace(ins.rest)
        if not words:
            raise Refused(f"line {ins.line}: HEALTHCHECK without arguments")
        kind = words[0].upper()
        if kind == "NONE":
            if len(words) > 1 or ins.flags:
                raise Refused(f"line {ins.line}: HEALTHCHECK NONE takes no arguments")
            check: dict[str, Any] = {"Test": ["NONE"]}
        elif kind == "CMD":
            rest = ins.rest[len(words[0]) :].strip()
            test = dockerfile.json_or_none(rest)
            check = {"Test": ["CMD", *test] if test is not None else ["CMD-SHELL", rest]}
            for item in ins.flags:
                key, _, value = item[2:].partition("=")
                name = {
                    "interval": "Interval",
                    "timeout": "Timeout",
                    "start-period": "StartPeriod",
                    "retries": "Retries",
                }.get(key)
                if name is None:
                    raise Refused(f"line {ins.line}: HEALTHCHECK {item}")
                if name == "Retries":
                    if not value.isdigit():
                        raise Refused(f"line {ins.line}: HEALTHCHECK {item}")
                    check[name] = int(value)
                else:
                    ns = parse_duration(value)
                    if 0 < ns < 10**6:
                        raise Refused(f"line {ins.line}: HEALTHCHECK {item} is under 1ms")
                    check[name] = ns
        else:
            raise Refused(f"line {ins.line}: HEALTHCHECK {words[0]}")
        self.run["Healthcheck"] = {k: v for k, v in check.items() if v}
        shown = (
            f"&{{{dockerfile.go_quote_list(check['Test'])} "
            f"{dockerfile.go_quote(go_duration(check.get('Interval', 0)))} "
            f"{dockerfile.go_quote(go_duration(check.get('Timeout', 0)))} "
            f"{dockerfile.go_quote(go_duration(check.get('StartPeriod', 0)))} "
            f"{_go_rune(check.get('Retries', 0))}}}"
        )
        self.comment(f"HEALTHCHECK {shown}")

    def do_workdir(self, ins: Instruction) -> None:
        requested = self.x(ins, ins.rest)
        if not requested:
            raise Refused(f"line {ins.line}: WORKDIR with an empty path")
        current = self.run["WorkingDir"] or ""
        if requested.startswith("/"):
            workdir = requested
        else:
            workdir = posixpath.join("/", current, requested)
            workdir = posixpath.normpath(workdir)
        self.run["WorkingDir"] = workdir
        target = _clean(workdir)
        self.check_no_link(ins, target)
        changes = _Changes(self)
        changes.mkdirs(target, 0, 0)
        self.layer(changes.entries(), f"WORKDIR {workdir}")

    def do_add(self, ins: Instruction) -> None:
        self._copy(ins, add=True)

    def do_copy(self, ins: Instruction) -> None:
        self._copy(ins, add=False)

    def _copy(self, ins: Instruction, *, add: bool) -> None:
        words = dockerfile.json_or_none(ins.rest)
        if words is None:
            words = dockerfile.split_whitespace(ins.rest)
        words = [self.x(ins, w) for w in words]
        if len(words) < 2:
            raise Refused(f"line {ins.line}: {ins.keyword} needs a source and a destination")
        *sources, dest = words
        if add and any(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s) for s in sources):
            raise Refused(f"line {ins.line}: ADD of a URL (fetched at build time)")
        mode = self._chmod(ins)
        # Only BuildKit takes --chmod: such a COPY is done as BuildKit does it.
        buildkit = mode is not None
        uid, gid = self._chown(ins, buildkit=buildkit)
        ends_slash = dest.endswith("/")
        absolute = (
            dest
            if dest.startswith("/")
            else posixpath.join("/", self.run["WorkingDir"] or "", dest)
        )
        target = _clean(absolute)
        infos: list[ContextFile] = []
        for source in sources:
            infos += self._sources(ins, source)
        if len(infos) > 1 and not ends_slash:
            raise Refused(f"line {ins.line}: several sources need a destination that ends with /")
        if not infos:
            raise Refused(f"line {ins.line}: no source files were specified")
        changes = _Changes(self, buildkit=buildkit)
        for info in infos:
            if add and info.kind == "file" and _is_archive(self.read(info.path)):
                raise Refused(f"line {ins.line}: ADD of {info.path}, which the engine would unpack")
            if info.kind == "dir":
                self.check_no_link(ins, target)
                changes.copy_dir(info, target, uid, gid, mode)
                continue
            exists = self.lookup(target)
            self.check_no_link(ins, posixpath.dirname(target))
            if ends_slash or (exists is not None and exists.kind == "dir"):
                path = posixpath.join(target, posixpath.basename(info.path))
            else:
                path = target
            self.check_no_link(ins, path)
            changes.copy_file(info, path, uid, gid, mode)
        if mode is not None and mode != 0o755 and changes.created:
            # BuildKit makes the directories a COPY creates 0755 before 0.21 (Docker 28.1) and
            # gives them the --chmod mode since (fsutil's copy, moby/moby#49851): an image
            # that depends on the version is not written.
            raise Refused(
                f"line {ins.line}: --chmod={ins.flag('chmod')} creates /{changes.created[0]}, "
                "which BuildKit makes 0755 before 0.21 (Docker 28.1) and gives that mode "
                "since: create the directory first (WORKDIR, or a COPY without --chmod)"
            )
        srcs = " ".join(self._source_names(infos))
        chown = ins.flag("chown")
        # As the builder writes it, without a space before the sources.
        shown = f"--chown={self.x(ins, chown)}" if chown else ""
        self.layer(changes.entries(), f"{ins.keyword} {shown}{srcs} in {dest} ")

    def _source_names(self, infos: Sequence[ContextFile]) -> list[str]:
        # The builder names sources by a content hash of its own ("file:<tarsum>"); ours is the
        # sha256 of the paths, modes and contents (a documented difference: history only).
        digest = hashlib.sha256()
        for info in infos:
            # A name's own bytes: git and the file system hand one that is not UTF-8 back as
            # surrogates (lint refuses such a name; this must still not crash on one).
            digest.update(
                f"{info.path}\0{info.kind}\0{info.mode:o}\n".encode("utf-8", "surrogateescape")
            )
            if info.kind == "file":
                digest.update(self.read(info.path))
        kind = "multi" if len(infos) > 1 else infos[0].kind
        return [f"{kind}:{digest.hexdigest()}"]

    def _sources(self, ins: Instruction, source: str) -> list[ContextFile]:
        rel = _clean(source)
        if re.search(r"(?<!\\)[*?\[]", source):
            pattern = _go_match_regex(source.lstrip("/").removeprefix("./"))
            return [self.context[p] for p in sorted(self.context) if p and pattern.fullmatch(p)]
        if rel == "":
            return [ContextFile("", "dir", 0o755)]
        if rel not in self.context:
            raise Refused(f"line {ins.line}: {source}: no such file or directory in the context")
        return [self.context[rel]]

    def _chown(self, ins: Instruction, *, buildkit: bool = False) -> tuple[int, int]:
        value = ins.flag("chown")
        if value is None:
            return 0, 0
        value = self.x(ins, value)
        parts = value.split(":")
        if len(parts) > 2 or not value:
            raise Refused(f"line {ins.line}: --chown={value}")
        user, group = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
        uid = self._lookup(ins, user, "etc/passwd", 2)
        if buildkit and len(parts) == 1 and not re.fullmatch(r"-?\d+", user):
            # BuildKit takes a named user's group from its /etc/passwd line; the classic
            # builder, the group of the same name in /etc/group.
            return uid, self._lookup(ins, user, "etc/passwd", 3)
        return uid, self._lookup(ins, group, "etc/group", 2)

    def _lookup(self, ins: Instruction, name: str, db: str, column: int) -> int:
        if re.fullmatch(r"-?\d+", name):
            return int(name)
        text = self.fs.files.get(db)
        if text is None:
            raise Refused(f"line {ins.line}: --chown by name, but the image has no /{db}")
        for line in text.decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if len(fields) > column and fields[0] == name and fields[column].isdigit():
                return int(fields[column])
        raise Refused(f"line {ins.line}: --chown: no {name!r} in /{db}")

    def _chmod(self, ins: Instruction) -> int | None:
        return chmod_mode(ins.flags, ins.line)

    # -- the result --------------------------------------------------------------------------

    def result(self) -> Result:
        stamp = _iso(self.epoch)
        history = [dict(h) for h in self.base_config.get("history") or []]
        diff_ids = list((self.base_config.get("rootfs") or {}).get("diff_ids") or [])
        for entry, layer in zip(self.history, self.layers, strict=True):
            item: dict[str, Any] = {"created": stamp, "created_by": entry["created_by"]}
            if layer is None:
                item["empty_layer"] = True
            history.append(item)
        config: dict[str, Any] = {}
        if self.base_config.get("architecture"):
            config["architecture"] = self.base_config["architecture"]
        if self.author:
            config["author"] = self.author
        run = dict(self.run)
        run["Image"] = ""
        run["Hostname"] = ""
        config["config"] = _serialise_run_config(run)
        config["created"] = stamp
        config["history"] = history
        config["os"] = self.base_config.get("os") or "linux"
        for key in ("os.version", "os.features", "variant"):
            if self.base_config.get(key):
                config[key] = self.base_config[key]
        config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        return Result(self.layers, config, history)


class _Changes:
    """What one COPY/ADD/WORKDIR changes, recorded in the view as the classic builder would
    leave it in the container's upper directory (overlayfs): new and modified entries, and every
    directory above them, copied up with its owner, mode and time."""

    def __init__(self, interp: _Interpreter, *, buildkit: bool = False) -> None:
        self.i = interp
        self.touched: set[str] = set()
        self.epoch = interp.epoch
        self.buildkit = buildkit  # a COPY --chmod, which only BuildKit builds
        self.created: list[str] = []  # directories mkdirs made

    def _modified(self, directory: str) -> None:
        """An entry was created or removed in `directory`: its time becomes the build's."""
        if directory:
            # A new Entry: the base's own are shared by every playbook and platform of the run.
            entry = self.i.fs.entries[directory]
            self.i.fs.entries[directory] = dataclasses.replace(entry, mtime=self.epoch)
            self.touched.add(directory)

    def mkdirs(self, path: str, uid: int, gid: int) -> None:
        """MkdirAllAndChownNew(path, 0755, uid:gid): missing directories created, new ones
        owned by uid:gid, existing ones untouched."""
        if not path:
            return
        parts = path.split("/")
        for n in range(1, len(parts) + 1):
            here = "/".join(parts[:n])
            entry = self.i.fs.entries.get(here)
            if entry is None:
                self._modified("/".join(parts[: n - 1]))
                self.i.fs.entries[here] = Entry("dir", 0o755, uid, gid, self.epoch)
                self.touched.add(here)
                self.created.append(here)

    def copy_file(self, info: ContextFile, path: str, uid: int, gid: int, mode: int | None) -> None:
        self.mkdirs(posixpath.dirname(path), uid, gid)
        self._modified(posixpath.dirname(path))
        self.i.fs.entries[path] = Entry("file", info.mode if mode is None else mode, uid, gid, 0)
        self.i.fs.entries[path].link = info.path  # the content's source
        self.touched.add(path)
        if path in _KEPT_FILES:
            self.i.fs.files[path] = self.i.read(info.path)

    def copy_dir(self, info: ContextFile, dest: str, uid: int, gid: int, mode: int | None) -> None:
        existed = self.i.fs.entries.get(dest)
        if existed is not None and existed.kind != "dir":
            raise Refused(f"/{dest} exists and is not a directory")
        # CopyWithTar: MkdirAll(dest, 0755) as root, then the source's tree below it. BuildKit
        # (fsutil's copy) gives every directory it creates the --chown owner.
        self.mkdirs(dest, *((uid, gid) if self.buildkit else (0, 0)))
        prefix = info.path + "/" if info.path else ""
        below = sorted(p for p in self.i.context if p.startswith(prefix) and p != info.path)
        if existed is None and dest:
            # fixPermissions chowns the destination directory too when it was created.
            top = self.i.fs.entries[dest]
            top.uid, top.gid = uid, gid
        for rel in below:
            item = self.i.context[rel]
            path = posixpath.join(dest, rel[len(prefix) :]) if dest else rel[len(prefix) :]
            self.i.check_no_link_path(path)
            old = self.i.fs.entries.get(path)
            if old is not None and (old.kind == "dir") != (item.kind == "dir"):
                raise Refused(f"/{path} exists as another kind of entry")
            parent = posixpath.dirname(path)
            if parent == dest:
                # Only the destination's own time changes: the directories below it are the
                # context's, whose times (0) the untar restores after filling them.
                self._modified(parent)
            new_mode = item.mode if mode is None else mode
            # Copied entries get the context's time (0), its mode, and the --chown owner.
            if item.kind == "dir":
                self.i.fs.entries[path] = Entry("dir", new_mode, uid, gid, 0)
            else:
                self.i.fs.entries[path] = Entry("file", new_mode, uid, gid, 0, item.path)
                if path in _KEPT_FILES:
                    self.i.fs.files[path] = self.i.read(item.path)
            self.touched.add(path)

    def entries(self) -> list[LayerEntry]:
        """The layer: every touched path and its ancestors, in the order a tar walk gives."""
        paths: set[str] = set()
        for path in self.touched:
            parts = path.split("/")
            for n in range(1, len(parts) + 1):
                paths.add("/".join(parts[:n]))
        out: list[LayerEntry] = []
        for path in sorted(paths, key=lambda p: p.split("/")):
            e = self.i.fs.entries[path]
            mtime = min(e.mtime, self.epoch)
            if e.kind == "dir":
                out.append(LayerEntry(path, "dir", e.mode, e.uid, e.gid, mtime))
            elif e.kind == "file" and path in self.touched:
                out.append(LayerEntry(path, "file", e.mode, e.uid, e.gid, mtime, e.link))
            else:  # pragma: no cover - a link or base file is never an ancestor (checked)
                raise Refused(f"/{path}: not a directory")
        return out


def _go_match_regex(pattern: str) -> re.Pattern[str]:
    """dockerfile.go_match_regex; a pattern it does not read as the engine does is Refused (the
    engine builds the image then)."""
    try:
        return dockerfile.go_match_regex(pattern)
    except ValueError as exc:
        raise Refused(str(exc)) from None


def _is_archive(data: bytes) -> bool:
    """True when the engine's ADD would unpack this file (a tar, compressed or not)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            return tar.next() is not None
    except (tarfile.TarError, EOFError, OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Layers as bytes.


def layer_tar(entries: Sequence[LayerEntry], read: Callable[[str], bytes]) -> bytes:
    """The uncompressed layer: fixed headers (owner names for 0 only, PAX format)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.path)
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, e.mtime
            # The engine names owners from its host's user database; every host has root.
            info.uname = "root" if e.uid == 0 else ""
            info.gname = "root" if e.gid == 0 else ""
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = read(e.source)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Bases: their manifests, configs and filesystems, read once per run (and per machine).


@dataclass
class BaseImage:
    ref: str  # the name the child digest was resolved under (a stand-in when configured)
    manifest: dict[str, Any]
    media_type: str
    config: dict[str, Any]
    fs: BaseFS


class BaseCache:
    """Base children already read in this run, and layer summaries on disk by digest.

    One per run, shared by its worker threads: each base child, and each of its layers, is read
    once however many playbooks ask at once (a lock per key: the others wait for the first
    reader, they do not read it again). It also remembers, for the run, which repository of a
    target registry already holds a base layer, so that a base from another registry is copied
    into that registry once and mounted from there by every other repository (as the engine's
    push does), not downloaded and uploaded again for each playbook."""

    # Base layers from another registry than `target` that were downloaded to be summarised
    # are kept for the run, up to this many bytes, for their copy into `target` (a cold cache
    # would otherwise download them twice).
    KEEP_BLOB_BYTES = 256 * 1024 * 1024

    def __init__(self, directory: Path | None, *, target: str | None = None) -> None:
        self.directory = directory
        self.target = target
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._images: dict[str, BaseImage] = {}
        self._layers: dict[str, dict[str, Any]] = {}
        self._resolved: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._placed: dict[tuple[str, str], str] = {}  # (host, digest) -> a repository holding it
        self._blobs: dict[str, bytes] = {}
        self._blob_bytes = 0
        self._copies: list[threading.Thread] = []  # early copies into the target (_read_layer)

    def settle(self) -> None:
        """Wait for the early copies of base layers still running (the end of a run: none
        outlives it)."""
        with self._lock:
            copies, self._copies = self._copies, []
        for copy in copies:
            copy.join()

    def key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def resolve(
        self, client: RegistryClient, ref: str, wanted: Sequence[Any], *, where: str
    ) -> Any:
        """platforms.resolve_base, once per run for each base (a failure is not kept: each
        playbook reports it against its own FROM line)."""
        from playbookctl import platforms  # noqa: PLC0415

        key = (ref, tuple(str(p) for p in wanted))
        with self.key_lock(f"resolve {key}"):
            if key not in self._resolved:
                self._resolved[key] = platforms.resolve_base(client, ref, wanted, where=where)
            return self._resolved[key]

    def images(
        self,
        client: RegistryClient,
        name: str,
        digests: Sequence[str],
        *,
        place_in: tuple[str, str] | None = None,
    ) -> list[BaseImage]:
        """image() of each digest (a base's platform children), the ones not yet read in this
        run read at the same time: their downloads and decompression overlap. `place_in`:
        (registry, repository) the images will be pushed to; a layer downloaded from another
        registry is copied there while it is being summarised (see _read_layer)."""
        with self._lock:
            missing = [d for d in dict.fromkeys(digests) if f"{name}@{d}" not in self._images]
        if len(missing) > 1:
            concurrently(
                [functools.partial(self.image, client, name, d, place_in) for d in missing]
            )
        return [self.image(client, name, d, place_in) for d in digests]

    def image(
        self,
        client: RegistryClient,
        name: str,
        digest: str,
        place_in: tuple[str, str] | None = None,
    ) -> BaseImage:
        key = f"{name}@{digest}"
        with self.key_lock(key):
            if key not in self._images:
                self._images[key] = self._read(client, name, digest, place_in)
            return self._images[key]

    def _read(
        self,
        client: RegistryClient,
        name: str,
        digest: str,
        place_in: tuple[str, str] | None = None,
    ) -> BaseImage:
        image = read_base(client, name, digest)
        r = parse_reference(f"{name}@{digest}")
        layers = list(image.manifest.get("layers") or [])
        summaries = concurrently(
            [
                functools.partial(self._layer, client, r.registry, r.repository, la, place_in)
                for la in layers
            ]
        )
        for summary in summaries:  # in the manifest's order: later layers win
            apply_layer(image.fs, summary)
        return image

    def _layer(
        self,
        client: RegistryClient,
        registry: str,
        repository: str,
        layer: Mapping[str, Any],
        place_in: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        digest = str(layer["digest"])
        with self.key_lock(f"layer {digest}"):
            if digest not in self._layers:
                self._layers[digest] = self._read_layer(
                    client, registry, repository, layer, place_in
                )
            return self._layers[digest]

    def _read_layer(
        self,
        client: RegistryClient,
        registry: str,
        repository: str,
        layer: Mapping[str, Any],
        place_in: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        digest = str(layer["digest"])
        path = self.directory / f"{digest.replace(':', '-')}.json" if self.directory else None
        if path is not None:
            with contextlib.suppress(OSError, ValueError):
                cached = json.loads(path.read_text("utf-8"))
                # The cache may come from elsewhere (CI restores it with actions/cache): an
                # entry that is not a summary is read again from the layer (and rewritten), so
                # a damaged cache costs a download, never a traceback.
                if is_layer_summary(cached):
                    return cast("dict[str, Any]", cached)
        size = int(layer.get("size") or 0)
        if size > MAX_BASE_LAYER_BYTES:
            raise Refused(f"a base layer of {size} bytes (more than {MAX_BASE_LAYER_BYTES})")
        blob = client.get_blob(
            repository, digest, registry=registry, max_bytes=MAX_BASE_LAYER_BYTES
        )
        with self._lock:
            if (
                self.target is not None
                and registry != self.target
                and self._blob_bytes + len(blob) <= self.KEEP_BLOB_BYTES
            ):
                self._blobs[digest] = blob
                self._blob_bytes += len(blob)
        # A layer from another registry is needed in the target one too: its upload overlaps
        # the summary (network and the registry's disk against our CPU) instead of following
        # it, and it is not waited for here: the images' own blobs go up meanwhile, and only
        # the push of this layer (_ensure_blob, behind the same lock) waits for it. A failure
        # here is not reported: that push copies it again and reports what goes wrong then.
        if place_in is not None and place_in[0] != registry:

            def place() -> None:
                try:
                    _ensure_blob(
                        client,
                        place_in[0],
                        place_in[1],
                        digest,
                        source=(registry, repository),
                        cache=self,
                    )
                except Exception as exc:  # the push that needs it copies it again and says why
                    log.debug("early copy of %s into %s failed: %s", digest, place_in, exc)

            copy = threading.Thread(target=place, name=f"place {digest[:19]}", daemon=True)
            with self._lock:
                self._copies.append(copy)
            copy.start()
        try:
            summary = summarise_layer(io.BytesIO(blob))
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise Refused(f"base layer {digest[:19]} does not read as a tar: {exc}") from None
        if path is not None:
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(summary, fh)
                os.replace(tmp, path)
        return summary

    def kept_blob(self, digest: str) -> bytes | None:
        """A base layer's bytes if this run downloaded them already (checked against the
        digest then)."""
        with self._lock:
            return self._blobs.get(digest)

    def placed(self, host: str, digest: str) -> str | None:
        """A repository on `host` this run put the blob in, if any."""
        with self._lock:
            return self._placed.get((host, digest))

    def place(self, host: str, digest: str, repo: str) -> None:
        with self._lock:
            self._placed.setdefault((host, digest), repo)


def read_base(client: RegistryClient, name: str, digest: str) -> BaseImage:
    """A base child's manifest and config (its filesystem left empty: BaseCache reads that)."""
    r = parse_reference(f"{name}@{digest}")
    data, media_type, _ = client.get_manifest(r)
    manifest = json.loads(data)
    config_digest = manifest["config"]["digest"]
    config = json.loads(client.get_blob(r.repository, config_digest, registry=r.registry))
    return BaseImage(name, manifest, media_type, config, BaseFS())


def scratch_base(name: str) -> BaseImage:
    """`FROM scratch`: no layers, no history, a Docker manifest."""
    config: dict[str, Any] = {"rootfs": {"type": "layers", "diff_ids": []}, "history": []}
    return BaseImage(name, {"layers": []}, DOCKER_MANIFEST, config, BaseFS())


def default_cache(target: str | None = None) -> BaseCache:
    """The run's cache, its summaries on disk unless caching is off; `target` is the registry
    the run pushes to (see BaseCache.KEEP_BLOB_BYTES)."""
    from playbookctl.lint.cache import cache_disabled, cache_root  # noqa: PLC0415

    return BaseCache(None if cache_disabled() else cache_root() / CACHE_VERSION, target=target)


# ---------------------------------------------------------------------------------------------
# The context: what the engine would be sent, read from a directory.


def context_entries(directory: Path, containerfile: str) -> dict[str, ContextFile]:
    """The context the engine's build sees: what build.context_tar sends (.dockerignore applied
    as `docker build` applies it, dockerignore.context_files), less what the daemon removes
    after reading .dockerignore: the .dockerignore itself and the Containerfile, when the
    patterns exclude them (moby's removeDockerfile). Refused when Docker versions may disagree
    on that removal (a pattern lint's playbook.dockerignore-version names): the engine decides."""
    files = dockerignore.context_files(directory, containerfile)
    try:
        gone = dockerignore.daemon_removes(directory, containerfile)
    except dockerignore.NotExactError as exc:
        raise Refused(str(exc)) from None
    return read_context(directory, [f for f in files if f not in gone])


def read_context(directory: Path, files: Sequence[str]) -> dict[str, ContextFile]:
    """Context entries (relative path -> ContextFile) as build.context_tar sends them: regular
    files 0644 or 0755 by their executable bit, directories 0755. A symbolic link is Refused
    (the engine copies a link as a link; the git export never leaves one)."""
    out: dict[str, ContextFile] = {"": ContextFile("", "dir", 0o755)}
    for rel in files:
        full = directory / rel
        st = full.lstat()
        import stat as _stat  # noqa: PLC0415

        if _stat.S_ISLNK(st.st_mode):
            raise Refused(f"{rel} is a symbolic link in the build context")
        if _stat.S_ISDIR(st.st_mode):
            out[rel] = ContextFile(rel, "dir", 0o755)
        elif _stat.S_ISREG(st.st_mode):
            out[rel] = ContextFile(rel, "file", 0o755 if st.st_mode & 0o111 else 0o644)
        # sockets, fifos, devices: never part of a build context
        parent = posixpath.dirname(rel)
        while parent and parent not in out:
            out[parent] = ContextFile(parent, "dir", 0o755)
            parent = posixpath.dirname(parent)
    return out


# ---------------------------------------------------------------------------------------------
# Per platform: the image, then the push.


@dataclass
class Assembled:
    platform: str
    manifest: bytes
    media_type: str
    config: bytes
    # (digest, gzip bytes) of the layers added; in a file for an engine build's (engine_image)
    layers: list[tuple[str, bytes | FileBlob]]
    base: BaseImage
    base_name: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    def close(self) -> None:
        """Remove the temporary files of layers held in files (an engine build's)."""
        for _digest, data in self.layers:
            if isinstance(data, FileBlob):
                data.close()


def assemble_image(
    the_plan: Plan,
    base: BaseImage,
    *,
    context: Mapping[str, ContextFile],
    read: Callable[[str], bytes],
    epoch: int,
    platform: str,
    containerfile: tuple[str, str] | None = None,
) -> Assembled:
    """The image for one platform: the interpretation on this base, its layers as bytes.

    `containerfile` is (its context path, the text the engine's context would carry for this
    platform: build.sent_containerfile), read instead of the file if a COPY takes it."""
    if containerfile is not None:
        name, text = containerfile
        data = text.encode("utf-8")
        plain = read

        def read(path: str) -> bytes:
            return data if path == name else plain(path)

    result = _Interpreter(
        the_plan, base.config, base.fs, context=context, read=read, epoch=epoch
    ).execute()
    raw_layers = (layer_tar(layer.entries, read) for layer in result.layers if layer is not None)
    return stack_image(base, result.config, raw_layers, platform=platform)


def stack_image(
    base: BaseImage, config: dict[str, Any], raw_layers: Iterable[bytes], *, platform: str
) -> Assembled:
    """The image `config` describes, on `base`: the base's layers as its own manifest's
    descriptors (never re-read, never re-compressed), then each uncompressed layer of
    `raw_layers` as gzip of stored blocks (its diff_id appended to the config's): the same
    layer content gives the same blob on any machine, whatever its zlib (oci/storedgzip.py)."""
    packed: list[tuple[str, bytes | FileBlob]] = [
        ("sha256:" + hashlib.sha256(raw).hexdigest(), stored_gzip(raw)) for raw in raw_layers
    ]
    return stack_packed(base, config, packed, platform=platform)


def stack_packed(
    base: BaseImage,
    config: dict[str, Any],
    packed_layers: Iterable[tuple[str, bytes | FileBlob]],
    *,
    platform: str,
) -> Assembled:
    """stack_image for layers already compressed: (diff_id, gzip bytes), the bytes in memory
    or in a file (an engine build's layers, which can be large: build.engine_image)."""
    oci = base.media_type == OCI_MANIFEST
    layer_type = OCI_LAYER if oci else DOCKER_LAYER
    diff_ids = config["rootfs"]["diff_ids"]
    descriptors = [dict(d) for d in base.manifest.get("layers") or []]
    blobs: list[tuple[str, bytes | FileBlob]] = []
    for diff_id, packed in packed_layers:
        diff_ids.append(diff_id)
        digest = packed.digest if isinstance(packed, FileBlob) else sha256_digest(packed)
        descriptors.append({"mediaType": layer_type, "size": len(packed), "digest": digest})
        blobs.append((digest, packed))
    data_config = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
            "size": len(data_config),
            "digest": sha256_digest(data_config),
        },
        "layers": descriptors,
    }
    data = json.dumps(manifest, indent=3).encode()
    return Assembled(platform, data, manifest["mediaType"], data_config, blobs, base, base.ref)


def push_assembled(
    client: RegistryClient, repo: str, image: Assembled, cache: BaseCache | None = None
) -> str:
    """push_images of one image; its digest."""
    return push_images(client, repo, [image], cache)[0]


def push_images(
    client: RegistryClient,
    repo: str,
    images: Sequence[Assembled],
    cache: BaseCache | None = None,
) -> list[str]:
    """Every platform's image of one playbook into `repo`: all blobs first and at the same
    time (the base's mounted from its repository, or copied when it is in another registry;
    each of ours uploaded once, however many platforms share it), then the manifests by digest,
    also at once; their digests, in the images' order. No manifest is written before every
    blob is in, so none can name a blob the repository lacks.
    With `cache` (the run's), a base layer copied from another registry is copied once per
    target registry and mounted from there into the other repositories."""
    r = parse_reference(repo + ":x")
    blobs: list[Callable[[], Any]] = []
    queued: set[str] = set()
    for image in images:
        base = parse_reference(
            image.base_name + ":x" if "@" not in image.base_name else image.base_name
        )
        for layer in image.base.manifest.get("layers") or []:
            digest = str(layer["digest"])
            if digest not in queued:
                queued.add(digest)
                blobs.append(
                    functools.partial(
                        _ensure_blob,
                        client,
                        r.registry,
                        r.repository,
                        digest,
                        source=(base.registry, base.repository),
                        cache=cache,
                    )
                )
        for digest, data in [*image.layers, (sha256_digest(image.config), image.config)]:
            if digest not in queued:
                queued.add(digest)
                blobs.append(
                    functools.partial(
                        client.push_blob,
                        r.repository,
                        data,
                        digest,
                        registry=r.registry,
                        check=False,
                    )
                )
    # Each request waits on the registry's disk or network, not on us: overlapping them is
    # what makes a playbook's images take a few round trips rather than one per blob.
    concurrently(blobs)
    crash_point("child-blobs-pushed")
    return concurrently(
        [
            functools.partial(
                client.push_manifest,
                r.repository,
                image.digest,
                image.manifest,
                image.media_type,
                registry=r.registry,
            )
            for image in images
        ]
    )


def _ensure_blob(
    client: RegistryClient,
    host: str,
    repo: str,
    digest: str,
    *,
    source: tuple[str, str],
    cache: BaseCache | None = None,
) -> None:
    from_host, from_repo = source
    if from_host == host and client.mount_blob(repo, digest, from_repo, registry=host):
        return
    if cache is None:
        _copy_blob(client, host, repo, digest, source=source, cache=None)
        return
    # From another registry: the first playbook to need the layer copies it in (the others
    # wait for it rather than each downloading it), the rest mount it from that repository.
    known = cache.placed(host, digest)
    if known is None:
        with cache.key_lock(f"place {host} {digest}"):
            known = cache.placed(host, digest)
            if known is None:
                _copy_blob(client, host, repo, digest, source=source, cache=cache)
                cache.place(host, digest, repo)
                return
    if known == repo or client.mount_blob(repo, digest, known, registry=host):
        return
    _copy_blob(client, host, repo, digest, source=source, cache=cache)


def _copy_blob(
    client: RegistryClient,
    host: str,
    repo: str,
    digest: str,
    *,
    source: tuple[str, str],
    cache: BaseCache | None,
) -> None:
    """Upload a base layer from its own registry into host/repo, unless it is there already."""
    from_host, from_repo = source
    if client.blob_exists(repo, digest, registry=host):
        return
    data = cache.kept_blob(digest) if cache is not None else None
    if data is None:
        try:
            data = client.get_blob(
                from_repo, digest, registry=from_host, max_bytes=MAX_BASE_LAYER_BYTES
            )
        except RegistryError as exc:
            raise FatalError(
                f"copying base layer {digest[:19]} from {from_host}/{from_repo}: {exc}"
            ) from None
    client.push_blob(repo, data, digest, registry=host, check=False)


# ---------------------------------------------------------------------------------------------
# Publishing: every platform's child, as platforms.build_children returns them.


def assemble_children(
    client: RegistryClient,
    cache: BaseCache,
    *,
    directory: Path,
    containerfile: str,
    display: str,
    repo: str,
    labels: Mapping[str, str],
    platforms_wanted: Sequence[str],
    overrides: Mapping[str, str],
    epoch: int,
    dry_run: bool,
    on_event: Callable[[str, str], None],
    keep: list[tuple[Assembled, str]] | None = None,
) -> list[Any]:
    """Assemble (and, unless a dry run, push by digest) one image per platform from the build
    context in `directory`; Refused when the Containerfile needs the engine (nothing is written
    before that is known), PlatformError when the base lacks a platform. `keep` receives each
    image with its base pinned by digest (a dry run's smoke run loads them into an engine).

    Children are pushed by digest, not under `<version>_<os>-<arch>` tags: the Engine API pushes
    tags only, this does not need to, and the index names them by digest either way."""
    from playbookctl import build, platforms  # noqa: PLC0415 - build imports the docker SDK

    path = directory / containerfile
    try:
        original = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FatalError(f"{display}: cannot read: {exc}") from None
    sent = build.sent_containerfile(original, overrides, None, labels)
    if sent.api_labels is not None:
        raise Refused("a label the Containerfile cannot carry (a line break in it)")
    the_plan = plan(sent.text)
    build.check_publishable(repo, sent.labels)
    context = context_entries(directory, containerfile)
    wanted = platforms.parse_platforms(platforms_wanted)
    resolved = cache.resolve(client, the_plan.base, wanted, where=f"{display}:{the_plan.base_line}")
    # The base's references as build.sent_containerfile pins them: after the stand-ins.
    written = next(
        (b.ref for b in platforms.base_references(original) if b.line == the_plan.base_line),
        the_plan.base,
    )
    effective = overrides.get(written, written)
    api = platforms.api_reference(the_plan.base)
    images: list[Assembled] = []
    # Every platform's base child at once (each is read once per run, whoever asks first).
    target = parse_reference(repo + ":x")
    bases = cache.images(
        client,
        f"{api.registry}/{api.repository}",
        [resolved.children[str(p)] for p in wanted],
        place_in=None if dry_run else (target.registry, target.repository),
    )
    for platform, base in zip(wanted, bases, strict=True):
        name = str(platform)
        child = resolved.children[name]
        if not platform.matches(base.config):
            raise platforms.PlatformError(
                f"{display}:{the_plan.base_line}: the base's {name} child is a "
                f"{platforms.platform_of(base.config)} image"
            )
        pins = {effective: f"{platforms.pin_name(effective)}@{child}"}
        text = build.sent_containerfile(original, overrides, pins, labels).text
        images.append(
            assemble_image(
                the_plan,
                base,
                context=context,
                read=lambda rel: (directory / rel).read_bytes(),
                epoch=epoch,
                platform=name,
                containerfile=(containerfile, text),
            )
        )
        if keep is not None:
            keep.append((images[-1], pins[effective]))
    if dry_run:
        for image in images:
            on_event("build", f"{repo}: {image.platform} assembled ({image.digest}); not pushed")
        return [platforms.Child(image.platform, None, "dry-run") for image in images]
    for image in images:
        on_event("push", f"pushing {repo}@{image.digest} ({image.platform}, assembled)")
    digests = push_images(client, repo, images, cache)
    return [
        platforms.Child(
            image.platform,
            digest,
            "built",
            Descriptor(image.media_type, digest, len(image.manifest)),
        )
        for image, digest in zip(images, digests, strict=True)
    ]
