"""Build stage: a playbook's container image, through the Docker Engine API.

The only module that talks to a Docker engine (the `docker` SDK is imported here and nowhere
else; commands import this module inside `run`, so commands that don't build stay fast).
`Engine` builds a directory's Containerfile, pushes a tag and reads an image's labels;
`build_playbook_image` and `push_image` add what a release needs on top.

Base-image stand-ins. Base images can't be pulled on every machine (no Docker Hub in test and
demo environments) and a playbook's FROM line must stay what production needs. So a test or demo
environment maps exact FROM references to local stand-ins (`base_image_overrides`, env
PLAYBOOKCTL_BASE_IMAGE_OVERRIDES as a JSON object). The map is applied to the copy of the
Containerfile inside the build context only, never to the playbook's file, and:
- every image built with a stand-in is labelled BASE_OVERRIDE_LABEL (which FROM was replaced by
  what), so the fact travels with the image itself;
- `check_publishable` refuses to push such an image, or even to start such a build, for any
  registry that is not a loopback one (127.0.0.0/8, localhost, [::1], or a name that resolves
  only to loopback addresses, as the test world's HTTPS registries do: README "The test world").
  A real release pushes to a real registry, so it can never carry a stand-in, whatever the
  environment says.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import socket
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import docker
import requests
import urllib3
from docker.errors import DockerException
from docker.utils import kwargs_from_env

from playbookctl import dockerfile, dockerignore
from playbookctl.assemble import Assembled, BaseImage, stack_packed
from playbookctl.bundle import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_HASH,
    ANNOTATION_VERSION,
)
from playbookctl.config import Config
from playbookctl.errors import BuildError, cap_text
from playbookctl.oci import is_loopback, load_credentials
from playbookctl.oci.fileblob import FileBlob, gzip_to_file

# Image labels: the same keys as the bundle's manifest annotations. The source hash is what
# decides "same version, same content" on a re-run.
SOURCE_HASH_LABEL = ANNOTATION_SOURCE_HASH
OCI_SOURCE = ANNOTATION_SOURCE
OCI_REVISION = ANNOTATION_REVISION
OCI_VERSION = ANNOTATION_VERSION
BASE_OVERRIDE_LABEL = "dev.playbookctl.base-override"

TAIL_LINES = 20
# A build's output line and an engine's error are capped (head and tail kept, the cut counted):
# one 50 MB line must not become a 50 MB error, JSON result or registration input.
LINE_LIMIT = 2000
ERROR_LIMIT = 4000
PUSH_RETRY_BUDGET = 30.0  # seconds after which a failing push is not tried again
DEFAULT_BUILD_TIMEOUT = 1800.0  # Config.build_timeout
DEFAULT_PUSH_TIMEOUT = 600.0  # Config.push_timeout
DEFAULT_PUSH_STALL_TIMEOUT = 60.0  # Config.push_stall_timeout
CALL_TIMEOUT = 120.0  # any other engine call (inspect, tag, list): whole answer included
# Context tar headers are fixed so the same tree sends the same bytes (and COPY keeps no mtimes).
_CONTEXT_MTIME = 0
# The layers a build added, compressed by playbookctl (not by the engine) at zlib's default
# level: a RUN step's output can be large, so these are compressed, unlike the few files of an
# assembled layer (oci/storedgzip.py); their bytes are then this host's zlib's.
GZIP_LEVEL = 6

LineCallback = Callable[[str], None]

_FROM_RE = re.compile(
    r"^(?P<lead>\s*FROM\s+(?:--\S+\s+)*)(?P<image>\S+)(?P<rest>(?:\s+AS\s+\S+)?\s*)$",
    re.IGNORECASE,
)
# `ARG BASE=ref` feeding `FROM ${BASE}`: the default is where the reference is written.
_ARG_RE = re.compile(
    r"^(?P<lead>\s*ARG\s+\w+=)(?P<q>[\"']?)(?P<image>[^\s\"']+)(?P=q)(?P<rest>\s*)$",
    re.IGNORECASE,
)


def _noop(_line: str) -> None:
    return None


# ---------------------------------------------------------------------------------------------
# Pure parts: FROM rewriting, the loopback rule, the build context.


def rewrite_from(text: str, overrides: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """Replace FROM references found in `overrides` (exact match); return (text, used overrides).

    Only the image token of a FROM instruction (or the default of an `ARG NAME=ref` a FROM
    uses) changes; comments, flags, `AS name` and every other line stay byte for byte.
    """
    if not overrides:
        return text, {}
    used: dict[str, str] = {}
    out: list[str] = []
    continued = False
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        m = None if continued else (_FROM_RE.match(body) or _ARG_RE.match(body))
        if m and m.group("image") in overrides:
            image = m.group("image")
            used[image] = overrides[image]
            quote = m.groupdict().get("q") or ""
            body = f"{m.group('lead')}{quote}{overrides[image]}{quote}{m.group('rest')}"
        out.append(body + ending)
        stripped = body.strip()
        # A continuation line belongs to the previous instruction, even if it starts with FROM.
        continued = stripped.endswith("\\") and not stripped.startswith("#")
    return "".join(out), used


_ESCAPE_DIRECTIVE = re.compile(r"^\s*#\s*escape\s*=", re.IGNORECASE | re.MULTILINE)


def append_labels(text: str, labels: Mapping[str, str]) -> str | None:
    """`text` with one `LABEL "k"="v" ...` instruction appended (it applies to the final
    stage, as the API's labels do), or None where that cannot be written safely: no labels, a
    value with a line break, an `# escape=` directive, or a last line that continues."""
    if not labels or any("\n" in v or "\r" in v for v in [*labels, *labels.values()]):
        return None
    if _ESCAPE_DIRECTIVE.search(text):
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[-1].rstrip().endswith("\\"):
        return None

    def quoted(value: str) -> str:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        return f'"{escaped}"'

    pairs = " ".join(f"{quoted(k)}={quoted(v)}" for k, v in sorted(labels.items()))
    ending = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{ending}LABEL {pairs}\n"


@dataclass(frozen=True)
class SentContainerfile:
    """The Containerfile as a build's context carries it (assemble.py copies the same text)."""

    text: str
    used: dict[str, str]  # the stand-in overrides applied (FROM reference -> stand-in)
    labels: dict[str, str]  # every label the image gets (BASE_OVERRIDE_LABEL included)
    api_labels: dict[str, str] | None  # those the text could not carry (then the API's)


def sent_containerfile(
    original: str,
    overrides: Mapping[str, str] | None,
    pins: Mapping[str, str] | None,
    labels: Mapping[str, str] | None,
) -> SentContainerfile:
    """Stand-ins, then per-platform pins, applied to FROM lines, and the labels appended as one
    LABEL instruction, not the API's `labels` (which the classic builder applies as one LABEL
    step, one container commit, per label): per platform, per playbook, that is most of a
    RUN-less build's steps."""
    text, used = rewrite_from(original, overrides or {})
    text, _pinned = rewrite_from(text, pins or {})
    all_labels = dict(labels or {})
    if used:
        all_labels[BASE_OVERRIDE_LABEL] = json.dumps(used, sort_keys=True)
    labelled = append_labels(text, all_labels)
    if labelled is None:
        return SentContainerfile(text, used, all_labels, all_labels)
    return SentContainerfile(labelled, used, all_labels, None)


def registry_host(ref: str) -> str:
    """The registry part of an image reference; a string without "/" is a registry host."""
    first = ref.split("/", 1)[0]
    if "/" not in ref or "." in first or ":" in first or first == "localhost" or "[" in first:
        return first
    return "docker.io"


def is_loopback_registry(registry: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (with or without a port), host or reference, and
    for a name that resolves to loopback addresses only (an image pushed there stays on this
    machine: the test world's `reg-*.playbookctl.test` registries, mapped to ::1 in /etc/hosts).
    A name that does not resolve is not loopback."""
    host = registry_host(registry)
    if is_loopback(host):
        return True
    name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]).split("%", 1)[0] for info in infos}
    return bool(addresses) and all(is_loopback(a) for a in addresses)


class StandInRefusedError(BuildError):
    """A build on a base-image stand-in was headed for a registry that is not loopback."""


def check_publishable(target: str, labels: Mapping[str, str]) -> None:
    """Refuse a stand-in build for a registry that is not loopback (see the module docstring)."""
    override = labels.get(BASE_OVERRIDE_LABEL)
    if override and not is_loopback_registry(target):
        raise StandInRefusedError(
            f"refusing to publish {target}: it was built with a base-image stand-in "
            f"({override}); stand-ins are for loopback test registries only, unset "
            "PLAYBOOKCTL_BASE_IMAGE_OVERRIDES for a real release"
        )


def context_files(directory: Path, containerfile: str) -> list[str]:
    """Relative paths (files and directories) the build context holds, .dockerignore applied
    as `docker build` applies it (dockerignore.py: moby's rules, not the SDK's exclude_paths,
    which reads some patterns otherwise); the Containerfile and .dockerignore always sent, as
    Docker does (its daemon removes them when the patterns exclude them).
    dockerignore.DockerignoreError for a pattern not read here as Docker reads it.
    """
    return dockerignore.context_files(directory, containerfile)


def context_tar(
    directory: Path, containerfile: str, containerfile_text: str | None = None
) -> IO[bytes]:
    """The build context as an uncompressed tar, with the Containerfile's text replaced if given.

    Headers are normalised (mtime, owner, mode 0644/0755) so the context depends only on names,
    contents and executable bits.
    """
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in context_files(directory, containerfile):
            full = directory / rel
            info = tar.gettarinfo(str(full), arcname=rel)
            info.mtime = _CONTEXT_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isdir():
                info.mode = 0o755
                tar.addfile(info)
            elif info.issym():
                info.mode = 0o777
                tar.addfile(info)
            elif info.isfile():
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                if rel == containerfile and containerfile_text is not None:
                    data = containerfile_text.encode("utf-8")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                else:
                    with full.open("rb") as fh:
                        tar.addfile(info, fh)
            # sockets, fifos, devices: never part of a build context
    out.seek(0)
    return out


# ---------------------------------------------------------------------------------------------
# The engine.


@dataclass
class BuiltImage:
    image_id: str
    tag: str
    labels: dict[str, str]
    overrides: dict[str, str] = field(default_factory=dict)
    containerfile_text: str = ""  # as built (stand-ins applied)


class _Lines:
    """Splits the engine's stream chunks into lines, hands each to a callback, keeps a tail.

    A line longer than LINE_LIMIT keeps its head and tail and says how much was cut; it never
    grows past that in memory, however long the engine's output goes on without a newline."""

    def __init__(self, on_line: LineCallback) -> None:
        self.on_line = on_line
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.step = ""
        self._buf = ""
        self._head: str | None = None  # set once the current line is over the limit
        self._after = 0  # characters of the current line after its head

    def feed(self, text: str) -> None:
        while text:
            nl = text.find("\n")
            if nl < 0:
                self._append(text)
                return
            self._append(text[:nl])
            self._line(self._take())
            text = text[nl + 1 :]

    def flush(self) -> None:
        if self._buf or self._head is not None:
            self._line(self._take())

    def _append(self, part: str) -> None:
        half = LINE_LIMIT // 2
        if self._head is None:
            if len(self._buf) + len(part) <= LINE_LIMIT:
                self._buf += part
                return
            # Over the limit: keep the first `half` characters as the head, then only a tail.
            need = half - len(self._buf)
            if need > 0:
                self._head, self._buf, part = self._buf + part[:need], "", part[need:]
            else:
                self._head, self._buf = self._buf[:half], self._buf[half:]
            self._after = len(self._buf)
        self._after += len(part)
        self._buf = (self._buf + part[-half:])[-half:]

    def _take(self) -> str:
        if self._head is None:
            line = self._buf
        else:
            cut = self._after - len(self._buf)
            line = f"{self._head} [... {cut} characters cut ...] {self._buf}"
        self._buf, self._head, self._after = "", None, 0
        return line

    def _line(self, line: str) -> None:
        line = line.rstrip("\r")
        if line.startswith("Step ") and " : " in line:
            self.step = line
        self.tail.append(line)
        self.on_line(line)


def _error_text(item: Mapping[str, Any]) -> str:
    detail = item.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return cap_text(str(detail["message"]).strip(), ERROR_LIMIT)
    return cap_text(str(item.get("error", "")).strip(), ERROR_LIMIT)


def _socket_of(resp: requests.Response) -> socket.socket | None:
    """The socket a streamed response reads from (urllib3 keeps its connection while it streams)."""
    raw = resp.raw
    conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class _Deadline:
    """Ends an engine call that outlives `seconds`, or (with `idle`) that reports no progress for
    `idle` seconds: the engine's push and build have no limit of their own (a registry that
    stalls an upload holds a push for ever). At the deadline the socket of the call's streamed
    answer is shut down, which ends the read blocked on it and makes the engine cancel the
    operation (it does when its client goes away). `touch()` says progress was seen."""

    def __init__(
        self,
        seconds: float,
        setting: str,
        *,
        whole_call: bool = False,
        idle: float = 0.0,
        idle_setting: str = "",
    ) -> None:
        self.seconds = seconds
        self.setting = setting
        self.whole_call = whole_call  # fn() reads the whole answer: fired means it was cut
        self.idle = idle  # 0: no idle limit
        self.idle_setting = idle_setting
        self.fired = False
        self.stalled = False  # fired by the idle limit, not the whole-call one
        self.where: Callable[[], str] | None = None  # where a stalled call stood, for message()
        self._resp: requests.Response | None = None
        self._lock = threading.Lock()
        self._started = self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="engine-deadline")

    def start(self) -> _Deadline:
        self._started = self._last = time.monotonic()
        self._thread.start()
        return self

    def touch(self, ahead: float = 0.0) -> None:
        """Progress now; `ahead` seconds more before the idle limit counts (a pause of ours)."""
        self._last = time.monotonic() + ahead

    def attach(self, resp: requests.Response) -> None:
        with self._lock:
            self._resp = resp
            fired = self.fired
        if fired:
            self._end(resp)

    def cancel(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)  # it wakes at once: no thread outlives its call

    def message(self, what: str) -> str:
        if self.stalled:
            where = f" {self.where()}" if self.where is not None else ""
            return (
                f"{what}: stalled: no progress for {self.idle:g} s ({self.idle_setting}){where}; "
                "stopped"
            )
        return f"{what}: did not finish within {self.seconds:g} s ({self.setting}); stopped"

    def _watch(self) -> None:
        while True:
            now = time.monotonic()
            due = self._started + self.seconds
            idle_due = self._last + self.idle if self.idle > 0 else due
            if now >= min(due, idle_due):
                self._fire(stalled=idle_due < due)
                return
            if self._stop.wait(min(due, idle_due) - now):
                return

    def _fire(self, *, stalled: bool = False) -> None:
        with self._lock:
            self.fired, self.stalled = True, stalled
            resp = self._resp
        if resp is not None:
            self._end(resp)

    @staticmethod
    def _end(resp: requests.Response) -> None:
        sock = _socket_of(resp)
        with contextlib.suppress(OSError):
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            else:
                resp.close()


def _size(n: int) -> str:
    """Bytes as the engine's progress shows them (decimal units)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} GB"


@dataclass
class _Layer:
    status: str = ""
    current: int = 0
    total: int = 0
    done: bool = False


# The statuses of a layer that is finished with, as the engine writes them.
_LAYER_DONE = ("Pushed", "Layer already exists", "Mounted from")


class _PushProgress:
    """What the engine's push stream says of each layer (`id` + `status` + `progressDetail`),
    so a stalled push can be told from a slow one and its message can name the layer.

    Progress is any new report about a layer: bytes sent (`Pushing` with a new `current`, which
    the engine writes every 512 kB or 1 % of the layer, at most ten times a second), a layer
    finished, a retry counting down. A push whose upload is held by the registry writes
    nothing at all."""

    def __init__(self) -> None:
        self.layers: dict[str, _Layer] = {}

    def feed(self, item: Mapping[str, Any]) -> bool:
        """Record one stream item; True when it reports progress."""
        layer_id, status = item.get("id"), item.get("status")
        if not isinstance(layer_id, str) or not isinstance(status, str):
            return False
        layer = self.layers.setdefault(layer_id, _Layer())
        detail = item.get("progressDetail")
        current = total = 0
        if isinstance(detail, dict):
            current, total = (
                v if isinstance(v := detail.get(k), int) else 0 for k in ("current", "total")
            )
        if status == layer.status and current == layer.current:
            return False
        layer.status, layer.current, layer.total = status, current, total or layer.total
        layer.done = status.startswith(_LAYER_DONE)
        return True

    def stalled_at(self) -> str:
        """Where the push stood when it stopped progressing: the layer(s) being sent."""
        sending = [(i, la) for i, la in self.layers.items() if la.status == "Pushing"]
        if sending:
            shown = []
            for layer_id, layer in sending[:3]:
                of = f" of {_size(layer.total)}" if layer.total > layer.current else ""
                shown.append(f"layer {layer_id} ({_size(layer.current)}{of} sent)")
            more = f" and {len(sending) - 3} more" if len(sending) > 3 else ""
            return "on " + ", ".join(shown) + more
        if self.layers and all(la.done for la in self.layers.values()):
            return "after every layer was sent (the image config or manifest upload)"
        if self.layers:
            waiting = [i for i, la in self.layers.items() if not la.done]
            return f"before layer {waiting[0]} started sending ({self.layers[waiting[0]].status})"
        return "before any layer started (the registry did not answer)"


def build_network_mode(hermetic: bool) -> str | None:
    """The network of a build's RUN steps: never the host's, where a step would reach the
    runner's loopback services, the registry and the engine (a pull request's dry run builds
    too). "none" when hermetic; else None, the engine's default: its own bridge (the internet
    through NAT where the engine has one; an engine started with --bridge=none gives only a
    loopback of the container's own), whose 127.0.0.1 is the container's, not the host's."""
    return "none" if hermetic else None


class Engine:
    """A Docker engine at DOCKER_HOST (or the given URL), through the docker SDK."""

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = 900.0,
        *,
        build_timeout: float = DEFAULT_BUILD_TIMEOUT,
        push_timeout: float = DEFAULT_PUSH_TIMEOUT,
        push_stall_timeout: float = DEFAULT_PUSH_STALL_TIMEOUT,
        call_timeout: float = CALL_TIMEOUT,
        hermetic: bool = False,
    ) -> None:
        """`timeout` bounds each socket operation; build_timeout and push_timeout a whole build
        and a whole push (its retries included), push_stall_timeout a push's time without
        progress (0: no such limit), call_timeout any other call (inspect, tag). hermetic: RUN
        steps run with no network at all (see build_network_mode)."""
        self.hermetic = hermetic
        self.build_timeout = build_timeout
        self.push_timeout = push_timeout
        self.push_stall_timeout = push_stall_timeout
        self.call_timeout = call_timeout
        self._local = threading.local()  # .deadline: the _Deadline of this thread's call
        try:
            kwargs = kwargs_from_env() if base_url is None else {"base_url": base_url}
            self._api = docker.APIClient(version="auto", timeout=timeout, **kwargs)
        except DockerException as exc:
            where = base_url or os.environ.get("DOCKER_HOST") or "the default Docker socket"
            raise BuildError(
                f"cannot reach a Docker engine at {where} (set DOCKER_HOST): {_unreachable(exc)}"
            ) from None
        self._api.hooks["response"].append(self._on_response)

    def _on_response(self, resp: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        deadline: _Deadline | None = getattr(self._local, "deadline", None)
        if deadline is not None:
            deadline.attach(resp)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """fn() with engine errors as BuildError; outside a build or push (which have their own
        deadline), within call_timeout: an inspect or a tag answers in well under a second."""
        if getattr(self._local, "deadline", None) is not None:
            return self._guarded(what, fn)
        limit = _Deadline(self.call_timeout, "the limit of a short engine call", whole_call=True)
        with self._deadline(limit):
            return self._guarded(what, fn)

    def _guarded(self, what: str, fn: Callable[[], Any]) -> Any:
        deadline: _Deadline | None = getattr(self._local, "deadline", None)
        try:
            result = fn()
        except (DockerException, requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            if deadline is not None and deadline.fired:
                raise BuildError(deadline.message(what)) from None
            raise BuildError(f"{what}: {_short(exc)}") from None
        if deadline is not None and deadline.fired and deadline.whole_call:
            raise BuildError(deadline.message(what))
        return result

    @contextlib.contextmanager
    def _deadline(self, deadline: _Deadline) -> Iterator[_Deadline]:
        self._local.deadline = deadline.start()
        try:
            yield deadline
        finally:
            deadline.cancel()
            self._local.deadline = None

    def build(
        self,
        directory: Path,
        *,
        tag: str,
        containerfile: str = "Containerfile",
        labels: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
        platform: str | None = None,
        pins: Mapping[str, str] | None = None,
        on_line: LineCallback = _noop,
        apply_tag: bool = True,
        hermetic: bool | None = None,
    ) -> BuiltImage:
        """Build `directory/containerfile` with the directory as context; stream lines to on_line.

        `platform` is the Engine API's build option (os/arch[/variant]); `pins` rewrites FROM
        references (after the stand-in overrides) to that platform's child digest, unlabelled:
        a pin is the same base, only named exactly (see platforms.py). `hermetic`: RUN steps
        with no network at all (None: this engine's setting; see build_network_mode).
        On failure the BuildError names the failing step and shows the last lines of output.
        """
        path = directory / containerfile
        try:
            original = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"{path}: cannot read: {exc}") from None
        sent = sent_containerfile(original, overrides, pins, labels)
        text, used, all_labels, api_labels = sent.text, sent.used, sent.labels, sent.api_labels
        lines = _Lines(on_line)
        image_id = ""
        deadline = _Deadline(self.build_timeout, "build-timeout")
        rewritten = text if text != original else None
        with (
            context_tar(directory, containerfile, rewritten) as ctx,
            self._deadline(deadline),
        ):
            stream: Iterable[dict[str, Any]] = self._call(
                f"{tag}: build",
                lambda: self._api.build(
                    fileobj=ctx,
                    custom_context=True,
                    dockerfile=containerfile,
                    tag=tag if apply_tag else None,
                    labels=api_labels,
                    network_mode=build_network_mode(
                        self.hermetic if hermetic is None else hermetic
                    ),
                    platform=platform,
                    rm=True,
                    forcerm=True,
                    decode=True,
                ),
            )
            error = ""
            for item in self._iterate(f"{tag}: build", stream):
                if "stream" in item:
                    lines.feed(str(item["stream"]))
                if "error" in item or "errorDetail" in item:
                    error = _error_text(item)
                aux = item.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
                    image_id = aux["ID"]
            lines.flush()
        if deadline.fired:
            raise BuildError(deadline.message(f"{tag}: image build"))
        if error or not image_id:
            step = lines.step or "(before the first step)"
            tail = "\n".join(f"    {line}" for line in lines.tail)
            raise BuildError(
                cap_text(
                    f"{tag}: image build failed at {step}\n  {error or 'no image produced'}\n"
                    f"  last lines of output:\n{tail}",
                    4 * ERROR_LIMIT,
                )
            )
        return BuiltImage(
            image_id=image_id, tag=tag, labels=all_labels, overrides=used, containerfile_text=text
        )

    def _iterate(self, what: str, stream: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            yield from stream
        except (
            DockerException,
            requests.RequestException,
            urllib3.exceptions.HTTPError,  # the SDK reads the stream from urllib3 directly
            OSError,
            ValueError,  # a JSON message cut short
        ) as exc:
            deadline: _Deadline | None = getattr(self._local, "deadline", None)
            if deadline is not None and deadline.fired:
                raise BuildError(deadline.message(what)) from None
            raise BuildError(f"{what}: {_short(exc)}") from None

    def _iterate_bytes(self, what: str, stream: Iterable[bytes]) -> Iterator[bytes]:
        try:
            yield from stream
        except (DockerException, requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise BuildError(f"{what}: {_short(exc)}") from None

    def image_platform(self, ref: str) -> dict[str, str]:
        """The local image's os, architecture and variant, as its config says."""
        info = self._call(f"{ref}: inspect", lambda: self._api.inspect_image(ref))
        return {
            "os": str(info.get("Os") or ""),
            "architecture": str(info.get("Architecture") or ""),
            "variant": str(info.get("Variant") or ""),
        }

    def native_architecture(self) -> str:
        """The engine's kernel architecture (`uname -m` of its host: x86_64, aarch64, ...)."""
        info = self._call("engine info", self._api.info)
        return str(info.get("Architecture") or "")

    def labels(self, ref: str) -> dict[str, str]:
        info = self._call(f"{ref}: inspect", lambda: self._api.inspect_image(ref))
        raw = (info.get("Config") or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in raw.items()}

    def remove_images(self, prefix: str) -> list[str]:
        """Remove every image tag starting with `prefix` (`127.0.0.1:PORT/`); the tags removed.

        `playbookctl dev down` on an engine that is not its own: what the dev environment built
        there goes, nothing else."""
        images = self._call("list images", self._api.images)
        removed: list[str] = []
        for image in images:
            for tag in image.get("RepoTags") or []:
                if isinstance(tag, str) and tag.startswith(prefix):
                    self._call(f"{tag}: remove", partial(self._api.remove_image, tag))
                    removed.append(tag)
        return removed

    def tag(self, source: str, ref: str) -> None:
        repo, tag = split_tag(ref)
        self._call(f"{ref}: tag", lambda: self._api.tag(source, repo, tag))

    def pull(
        self,
        ref: str,
        *,
        platform: str | None = None,
        auth: Mapping[str, str] | None = None,
    ) -> None:
        """Pull `repo:tag` (that platform's child of an index) or `repo@digest` into the
        engine (only the layers it lacks travel)."""
        repo, sep, digest = ref.partition("@")
        repo, tag = (repo, digest) if sep else split_tag(ref)
        what = f"{ref}: pull"
        auth_config = dict(auth) if auth else None
        stream = self._call(
            what,
            lambda: self._api.pull(
                repo,
                tag=tag,
                platform=platform,
                stream=True,
                decode=True,
                auth_config=auth_config,
            ),
        )
        for item in self._iterate(what, stream):
            if "error" in item or "errorDetail" in item:
                raise BuildError(f"{what}: {_error_text(item)}")

    def push(
        self,
        ref: str,
        *,
        auth: Mapping[str, str] | None = None,
        retries: int = 0,
        on_line: LineCallback = _noop,
    ) -> str:
        """Push `repo:tag`; return the pushed manifest digest (the push stream's aux.Digest).

        Connection errors and server errors are retried up to `retries` times with backoff, and
        not after PUSH_RETRY_BUDGET seconds (the engine already retries each layer upload itself,
        with pauses of its own): pushing the same local image to the same tag again writes the
        same manifest, so a retry never changes what a tag points to.
        The whole push is bounded by push_timeout; a push reporting no progress for
        push_stall_timeout seconds is stopped at once, naming the layer it was sending (a
        registry holding an upload), while a slow push that keeps progressing goes on.
        """
        repo, tag = split_tag(ref)
        auth_config = dict(auth) if auth else None
        attempt = 0
        started = time.monotonic()
        deadline = _Deadline(
            self.push_timeout,
            "push-timeout",
            idle=self.push_stall_timeout,
            idle_setting="push-stall-timeout",
        )
        with self._deadline(deadline):
            while True:
                try:
                    return self._push_once(repo, tag, auth_config, on_line)
                except BuildError as exc:
                    if deadline.fired:
                        # A stall is not retried: another try would wait as long again.
                        raise BuildError(deadline.message(f"{ref}: push")) from None
                    out_of_time = time.monotonic() - started > PUSH_RETRY_BUDGET
                    if attempt >= retries or out_of_time or not _transient(str(exc)):
                        raise
                    attempt += 1
                    on_line(f"push of {ref} failed ({exc}); retry {attempt}/{retries}")
                    delay = min(0.5 * 2 ** (attempt - 1), 8.0)
                    deadline.touch(ahead=delay)  # our own wait is not the registry stalling
                    time.sleep(delay)

    def _push_once(
        self, repo: str, tag: str, auth_config: dict[str, str] | None, on_line: LineCallback
    ) -> str:
        what = f"{repo}:{tag}: push"
        deadline: _Deadline | None = getattr(self._local, "deadline", None)
        progress = _PushProgress()
        if deadline is not None:
            deadline.where = progress.stalled_at
            deadline.touch()
        stream: Iterable[dict[str, Any]] = self._call(
            what,
            lambda: self._api.push(
                repo, tag=tag, stream=True, decode=True, auth_config=auth_config
            ),
        )
        digest = ""
        for item in self._iterate(what, stream):
            if progress.feed(item) and deadline is not None:
                deadline.touch()
            if "error" in item or "errorDetail" in item:
                raise BuildError(f"{what}: {_error_text(item)}")
            aux = item.get("aux")
            if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                digest = aux["Digest"]
            status = item.get("status")
            if isinstance(status, str) and "id" not in item:
                on_line(cap_text(status, LINE_LIMIT))
        if deadline is not None and deadline.fired:  # the stream ended because we shut it
            raise BuildError(deadline.message(what))
        if not digest.startswith("sha256:"):
            raise BuildError(f"{what}: the engine reported no digest")
        return digest

    # -- containers, for the smoke run (smoke.py): never started with a network ---------------

    def image_config(self, ref: str) -> dict[str, Any]:
        """The local image's Config (User, Entrypoint, Cmd, Env, ...)."""
        info = self._call(f"{ref}: inspect", lambda: self._api.inspect_image(ref))
        config = info.get("Config") or {}
        return dict(config) if isinstance(config, dict) else {}

    def load_archive(self, data: bytes, what: str) -> None:
        """`docker load` of an image archive (manifest.json, config, layer files). A layer the
        engine already holds (by chain id) is not read from the archive, so one made of new
        layers over a base the engine has pulled need not carry the base."""
        self._call(f"{what}: load", lambda: list(self._api.load_image(data)))

    def export_filesystem(self, ref: str) -> Iterator[bytes]:
        """The image's flattened filesystem as a tar stream, from a container that is created
        and never started (nothing in the image runs), removed once the stream is read."""
        created = self._call(
            f"{ref}: create",
            lambda: self._api.create_container(
                ref, entrypoint=["/playbookctl-never-started"], network_disabled=True
            ),
        )
        container = str(created["Id"])
        try:
            stream: Iterable[bytes] = self._call(
                f"{ref}: export", lambda: self._api.export(container)
            )
            yield from self._iterate_bytes(f"{ref}: export", stream)
        finally:
            with contextlib.suppress(DockerException, requests.RequestException):
                self._api.remove_container(container, force=True)

    def run_probe(
        self,
        ref: str,
        argv: list[str],
        *,
        user: str,
        read_only: bool,
        timeout: float,
    ) -> ProbeResult:
        """Start `argv` in the image as `user`, with no network, no capabilities and no new
        privileges (the engine's default seccomp profile); its exit code and output."""
        host_config = self._api.create_host_config(
            network_mode="none",
            read_only=read_only,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
        created = self._call(
            f"{ref}: create",
            lambda: self._api.create_container(
                ref, entrypoint=argv, user=user, host_config=host_config, network_disabled=True
            ),
        )
        container = str(created["Id"])
        try:
            try:
                self._api.start(container)
            except (DockerException, requests.RequestException) as exc:
                return ProbeResult(-1, "", start_error=_short(exc))
            try:
                status = self._api.wait(container, timeout=timeout)
            except (requests.RequestException, urllib3.exceptions.HTTPError):  # read timed out
                with contextlib.suppress(DockerException, requests.RequestException):
                    self._api.kill(container)
                return ProbeResult(-1, "", timed_out=True)
            error = (status.get("Error") or {}).get("Message") if isinstance(status, dict) else ""
            code = int(status.get("StatusCode", -1)) if isinstance(status, dict) else -1
            logs = self._call(
                f"{ref}: logs", lambda: self._api.logs(container, stdout=True, stderr=True)
            )
            output = logs.decode("utf-8", errors="replace") if isinstance(logs, bytes) else ""
            if error:
                return ProbeResult(code, output, start_error=str(error))
            return ProbeResult(code, cap_text(output, ERROR_LIMIT))
        finally:
            with contextlib.suppress(DockerException, requests.RequestException):
                self._api.remove_container(container, force=True)


@dataclass(frozen=True)
class ProbeResult:
    exit_code: int
    output: str
    start_error: str | None = None  # the engine could not start the program at all
    timed_out: bool = False


def split_tag(ref: str) -> tuple[str, str]:
    """`registry/repo:tag` -> (`registry/repo`, `tag`); a port colon is not a tag."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def _unreachable(exc: BaseException) -> str:
    """Why the engine did not answer, in words (the SDK's text nests urllib3 reprs)."""
    text = str(exc)
    for needle, reason in (
        ("FileNotFoundError", "no such socket"),
        ("No such file or directory", "no such socket"),
        ("Connection refused", "connection refused"),
        ("Permission denied", "permission denied on the socket"),
        ("Name or service not known", "cannot resolve the host name"),
    ):
        if needle in text:
            return reason
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return cap_text(text[-1], ERROR_LIMIT) if text else type(exc).__name__


_TRANSIENT = (
    "connection refused",
    "connection reset",
    "eof",
    "timeout",
    "i/o timeout",
    "500 internal server error",
    "502",
    "503",
    "504",
    "429",
    "toomanyrequests",
    "received unexpected http status: 5",
    "broken pipe",
)


def _transient(message: str) -> bool:
    low = message.lower()
    return any(marker in low for marker in _TRANSIENT)


# ---------------------------------------------------------------------------------------------
# What a release adds: labels, the stand-in guard.


def registry_auth(config: Config, host: str) -> dict[str, str] | None:
    """The engine's X-Registry-Auth for a push, from the credentials oci.py uses for `host`
    (PLAYBOOKCTL_REGISTRY_* variables, then the Docker config at DOCKER_CONFIG)."""
    creds = load_credentials(host, config)
    if creds is None:
        return None
    if creds.bearer:
        return {"registrytoken": creds.bearer}
    if creds.identity_token:
        return {"identitytoken": creds.identity_token, "serveraddress": host}
    if creds.username is not None and creds.password is not None:
        return {"username": creds.username, "password": creds.password, "serveraddress": host}
    return None


def image_labels(
    *, source_repository: str, commit: str, version: str, source_hash: str
) -> dict[str, str]:
    labels = {OCI_VERSION: version, SOURCE_HASH_LABEL: source_hash}
    if source_repository:
        labels[OCI_SOURCE] = source_repository
    if commit:
        labels[OCI_REVISION] = commit
    return labels


def stand_ins(containerfile: Path, overrides: Mapping[str, str]) -> dict[str, str]:
    """The overrides a build of `containerfile` would use (FROM reference -> stand-in)."""
    if not overrides:
        return {}
    try:
        text = containerfile.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{containerfile}: cannot read: {exc}") from None
    return rewrite_from(text, overrides)[1]


def check_stand_ins(target: str, containerfile: Path, overrides: Mapping[str, str]) -> None:
    """Refuse up front, before any build or registry access, what push_image would refuse."""
    used = stand_ins(containerfile, overrides)
    if used:
        check_publishable(target, {BASE_OVERRIDE_LABEL: json.dumps(used, sort_keys=True)})


def build_playbook_image(
    engine: Engine,
    directory: Path,
    *,
    containerfile: str,
    ref: str,
    labels: Mapping[str, str],
    overrides: Mapping[str, str],
    platform: str | None = None,
    pins: Mapping[str, str] | None = None,
    on_line: LineCallback = _noop,
    hermetic: bool | None = None,
) -> BuiltImage:
    """Build a playbook image tagged `ref`; refuse up front a stand-in build for a real registry.

    With `platform`, the built image's own os/architecture must be that platform (the engine
    can silently build another one from a cached base): a mismatch is a BuildError.
    `hermetic` (None: the engine's setting) chooses the network of the RUN steps."""
    check_stand_ins(ref, directory / containerfile, overrides)
    built = engine.build(
        directory,
        tag=ref,
        containerfile=containerfile,
        labels=labels,
        overrides=overrides,
        platform=platform,
        pins=pins,
        on_line=on_line,
        hermetic=hermetic,
    )
    if platform is not None:
        check_platform(engine, built.image_id, platform, shown=ref)
    return built


def check_platform(engine: Engine, ref: str, platform: str, *, shown: str = "") -> None:
    """Refuse an image whose config names another platform than the one it was built for."""
    got = engine.image_platform(ref)
    ref = shown or ref
    want = platform.split("/")
    same = got["os"] == want[0] and got["architecture"] == want[1]
    if same and len(want) > 2 and want[1] != "arm64":
        same = got["variant"] == want[2]
    if not same:
        shown = "/".join(v for v in (got["os"], got["architecture"], got["variant"]) if v)
        raise BuildError(
            f"{ref}: built for {platform}, but the image says {shown or 'no platform'} "
            "(the engine used a base of another platform); not pushed"
        )


def push_image(
    engine: Engine,
    ref: str,
    *,
    auth: Mapping[str, str] | None = None,
    retries: int = 0,
    on_line: LineCallback = _noop,
) -> str:
    """Push a built image, after checking its own labels for a stand-in base (see the top)."""
    check_publishable(ref, engine.labels(ref))
    return engine.push(ref, auth=auth, retries=retries, on_line=on_line)


# ---------------------------------------------------------------------------------------------
# Reproducible images: what the classic builder stamps with the time of the build is rewritten.
#
# Measured on Docker 20.10 (two builds of one context, no cache): the config's `created`, the
# `created` of every history entry the build added, `container`, `container_config` (the
# intermediate container) and `config.Image` (the intermediate image id) differ, and so does
# every layer the build added: directories it created or touched (`usr/local/bin` for a COPY)
# carry the time of the build. Files copied from the context do not (context_tar sends mtime 0).
# So, after a build, the layers above the base get every mtime clamped to `epoch` (the revision's
# commit time, SOURCE_DATE_EPOCH style), those fields are fixed, and the image is written to the
# registry by us (engine_image, then assemble.push_assembled), compressed as assembled layers are:
# the same context on the same base gives the same pushed digest whatever engine built it. Docker
# 20.10 cannot be asked for this directly (its classic builder has no SOURCE_DATE_EPOCH, its
# BuildKit 0.8 neither). Nothing is loaded back into the engine and the engine pushes nothing. The
# base's own layers are never touched. What a RUN step writes (downloaded packages, generated
# files) still varies.


def final_base(containerfile_text: str) -> str | None:
    """The image the last stage starts FROM, through stage names and `ARG` defaults; None when
    it cannot be told from the text alone. "scratch" is returned as is."""
    args: dict[str, str] = {}
    stages: dict[str, str] = {}
    last: str | None = None
    for line in _logical_lines(containerfile_text):
        arg = _ARG_RE.match(line)
        if arg and last is None:
            name = line.split(None, 1)[1].split("=", 1)[0].strip()
            args[name] = arg.group("image")
            continue
        m = _STAGE_RE.match(line)
        if m is None:
            continue
        image = re.sub(
            r"\$\{?(\w+)\}?", lambda v: args.get(v.group(1), v.group(0)), m.group("image")
        )
        image = stages.get(image.lower(), image)
        if m.group("name"):
            stages[m.group("name").lower()] = image
        last = image
    return None if last is None or "$" in last else last


_STAGE_RE = re.compile(
    r"^\s*FROM\s+(?:--\S+\s+)*(?P<image>\S+)(?:\s+AS\s+(?P<name>\S+))?\s*$", re.IGNORECASE
)


def _logical_lines(text: str) -> Iterator[str]:
    """Instructions as the builders read them (dockerfile.scan: continuations joined, comments
    and heredoc bodies dropped), as `KEYWORD arguments`."""
    for ins in dockerfile.scan(text).instructions:
        yield " ".join((ins.keyword, *ins.flags, ins.rest))


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes what passes through it (a layer's diff_id)."""

    def __init__(self, dest: IO[bytes]) -> None:
        self.dest = dest
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self.sha.update(view)
        self.dest.write(view)
        return len(view)


def clamp_layer(src: IO[bytes], dest: IO[bytes], epoch: int) -> str:
    """Copy a layer tar with every mtime clamped to `epoch`; return its diff_id (sha256:...).

    Only times change (sub-second and access/change times dropped): names, modes, owners,
    link targets, extended attributes and contents are copied as they are. The layer may come
    compressed (gzip, bzip2, xz): the classic image store saves layers as plain tars, but
    containerd's (the default of new Docker 29 installs) saves the blobs it holds, gzipped; the
    diff_id is of the plain tar either way."""
    out = _HashingWriter(dest)
    with (
        tarfile.open(fileobj=src, mode="r|*") as tin,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tout,
    ):
        for member in tin:
            member.mtime = min(int(member.mtime), epoch)
            member.pax_headers = {
                k: v for k, v in member.pax_headers.items() if k not in ("mtime", "atime", "ctime")
            }
            tout.addfile(member, tin.extractfile(member) if member.isreg() else None)
    return f"sha256:{out.sha.hexdigest()}"


def normalise_config(config: dict[str, Any], *, base_history: int, epoch: int) -> dict[str, Any]:
    """The image config without what the build's clock and intermediate containers put in it."""
    out: dict[str, Any] = json.loads(json.dumps(config))
    stamp = _iso(epoch)
    out["created"] = stamp
    for entry in (out.get("history") or [])[base_history:]:
        if isinstance(entry, dict):
            entry["created"] = stamp
    for key in ("container", "container_config", "docker_version"):
        out.pop(key, None)
    inner = out.get("config")
    if isinstance(inner, dict):
        inner["Image"] = ""
        inner["Hostname"] = ""
    return out


def engine_image(
    engine: Engine,
    built: BuiltImage,
    base: BaseImage,
    *,
    epoch: int,
    platform: str,
) -> Assembled:
    """The engine's build of one platform as the image we write to the registry ourselves
    (assemble.push_assembled), without loading anything back into the engine or pushing
    through it: the image is saved once (`docker save`), its first layers must be `base`'s
    (by diff_id) and are written as the base manifest's own descriptors, the layers the build
    added get every mtime clamped to `epoch` and are compressed as assembled layers are
    (assemble.stack_image), and the config is normalised (see above). So the same content on
    the same base gives the same digest whatever engine built and whichever gzip it has."""
    what = built.tag
    base_ids = [str(x) for x in (base.config.get("rootfs") or {}).get("diff_ids") or []]
    base_history = len(base.config.get("history") or [])
    deadline = _Deadline(engine.build_timeout, "build-timeout")  # part of the build's time
    packed: list[tuple[str, FileBlob]] = []  # (diff_id, the layer compressed, in a file)
    with tempfile.TemporaryFile() as saved, engine._deadline(deadline):
        stream = engine._call(f"{what}: save", lambda: engine._api.get_image(built.image_id))
        for chunk in engine._iterate_bytes(f"{what}: save", stream):
            saved.write(chunk)
        saved.seek(0)
        try:
            with tarfile.open(fileobj=saved, mode="r:") as tar:
                manifest = json.load(_member(tar, "manifest.json"))[0]
                config = json.load(_member(tar, manifest["Config"]))
                diff_ids = [str(x) for x in config["rootfs"]["diff_ids"]]
                paths = list(manifest["Layers"])
                if diff_ids[: len(base_ids)] != base_ids or len(paths) != len(diff_ids):
                    raise BuildError(
                        f"{what}: the engine's image does not start with the layers of its "
                        f"base {base.ref} (the engine built from another image); not pushed"
                    )
                for path in paths[len(base_ids) :]:
                    # Through temporary files, never whole in memory: a RUN step can write
                    # gigabytes. Clamped (its diff_id hashed on the way), then compressed (its
                    # digest hashed on the way), as stack_image would in memory, byte for byte.
                    with tempfile.TemporaryFile() as clamped:
                        diff_id = clamp_layer(_member(tar, path), clamped, epoch)
                        clamped.seek(0)
                        packed.append((diff_id, gzip_to_file(clamped, GZIP_LEVEL)))
        except (tarfile.TarError, KeyError, IndexError, TypeError, ValueError) as exc:
            _close(packed)
            if deadline.fired:
                raise BuildError(deadline.message(f"{what}: reading the built image")) from None
            raise BuildError(f"{what}: the engine's image archive is unreadable: {exc}") from None
        except BaseException:
            _close(packed)
            raise
    if deadline.fired:
        _close(packed)
        raise BuildError(deadline.message(f"{what}: reading the built image"))
    config["rootfs"]["diff_ids"] = list(base_ids)
    normal = normalise_config(config, base_history=base_history, epoch=epoch)
    return stack_packed(base, normal, packed, platform=platform)


def _close(packed: list[tuple[str, FileBlob]]) -> None:
    for _diff_id, blob in packed:
        blob.close()


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    fh = tar.extractfile(name)
    if fh is None:
        raise BuildError(f"the engine's image archive has no file {name}")
    return fh
