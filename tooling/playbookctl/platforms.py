"""Platforms stage: one image per platform, and the image index that lists them.

Kubernaut schedules a workflow's steps on any node; an image holding amd64 alone dies with
`exec format error` on an arm64 node. So every playbook image is built once per configured
platform (`platforms`, default linux/amd64 and linux/arm64) and published as one image index
(a Docker manifest list, or an OCI index when the children are OCI manifests); the version tag
names the index and the rendered Pipeline pins its digest, so Tekton and the kubelet pull the
right child on every node.

Why each step is shaped the way it is:
- The base is resolved to each platform's child digest *before* building, from the FROM image's
  own index in its registry, and each build is made FROM that digest. Docker 20.10's classic
  builder, asked for `--platform linux/amd64` FROM a tag it already holds for arm64, silently
  reuses the cached arm64 base; a digest leaves it no choice. A base lacking a configured
  platform is one clear error; never a silent fallback to fewer platforms.
- A RUN step executes the base's binaries: for a platform the engine cannot run natively it
  needs user-mode emulation (binfmt_misc entries for qemu-<arch>). That is checked before any
  build and named with the two ways out. A RUN-less Containerfile (base + COPY + USER +
  ENTRYPOINT, the usual playbook) builds for every platform on any machine.
- Each built image's Os/Architecture is read back from the engine before it is pushed.
- Each child is written to the registry by us, by digest (build.engine_image made it
  reproducible, assemble.push_assembled writes it, as for assembled images): no
  `<version>_<os>-<arch>` tag. A rerun builds again (the engine's cache makes that quick) and
  writes the same bytes. A child tag an earlier release wrote (when the engine pushed the
  children, under tags, the only way the Engine API pushes) is still found and reused when it
  holds this source. Only an image whose base cannot be read by digest is still pushed by the
  engine, under such a tag (`_` never occurs in a semver version, so a child tag can never be
  taken for a version).
  The index is assembled only after every child is pushed, and pushed under `<version>` last.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from playbookctl import dockerfile
from playbookctl.assemble import BaseCache, BaseImage, push_assembled, read_base, scratch_base
from playbookctl.crashpoints import crash_point
from playbookctl.errors import BuildError, FatalError, RegistryError
from playbookctl.oci import (
    INDEX_MEDIA_TYPES,
    Descriptor,
    ManifestNotFoundError,
    Reference,
    RegistryClient,
    parse_reference,
)

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
# The kernel's architecture names (uname -m, the engine's Info.Architecture) as OCI spells them.
_KERNEL_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
# The qemu-user binary (and binfmt_misc entry) that runs each architecture's executables.
_QEMU_NAME = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "arm": "arm",
    "386": "i386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
# Architectures a kernel runs without emulation besides its own.
_ALSO_NATIVE = {"amd64": {"386"}}
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


class PlatformError(FatalError):
    """A platform cannot be built: the base lacks it, or a RUN step needs missing emulation."""


class Platform(NamedTuple):
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else "")

    def __str__(self) -> str:
        return "/".join(p for p in self if p)

    @property
    def tag_suffix(self) -> str:
        """`_linux-arm64`: appended to the version for this platform's child tag."""
        return "_" + "-".join(p for p in self if p)

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """True if an index entry's `platform` (or an image config) is this platform.

        An entry without a variant matches a platform without one; arm64's implied v8 is
        accepted either way, as containerd does."""
        if entry.get("os") != self.os or entry.get("architecture") != self.architecture:
            return False
        variant = str(entry.get("variant") or "")
        if self.architecture == "arm64":
            return (variant or "v8") == (self.variant or "v8")
        return variant == self.variant


def parse_platforms(values: Sequence[str]) -> list[Platform]:
    return [Platform.parse(v) for v in values]


def platform_of(data: Mapping[str, Any]) -> str:
    """os/architecture[/variant] of an index entry's platform or an image config."""
    return str(
        Platform(
            str(data.get("os") or "?"),
            str(data.get("architecture") or "?"),
            str(data.get("variant") or ""),
        )
    )


# ---------------------------------------------------------------------------------------------
# The Containerfile: its base references and its RUN steps.


@dataclass(frozen=True)
class BaseRef:
    line: int
    ref: str  # as written (after ARG defaults), before any stand-in override


@dataclass(frozen=True)
class Step:
    line: int
    text: str

    def short(self, limit: int = 60) -> str:
        flat = " ".join(self.text.split())
        return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _instructions(text: str) -> list[tuple[int, str]]:
    """(first line number, the instruction as written with its blanks collapsed), as the
    builders read the file (dockerfile.scan: continuations, comments, heredoc bodies, a BOM),
    never raising."""
    return [
        (ins.line, " ".join(ins.original.split())) for ins in dockerfile.scan(text).instructions
    ]


_VAR_RE = re.compile(r"^\$\{?(\w+)\}?$")


def base_references(text: str) -> list[BaseRef]:
    """The external images a Containerfile builds FROM (stages and `scratch` excluded)."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    found: list[BaseRef] = []
    for line, instruction in _instructions(text):
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not found:
            name, eq, value = rest.strip().partition("=")
            if eq:
                args[name.strip()] = value.strip().strip("\"'")
        elif keyword == "FROM":
            tokens = [t for t in rest.split() if not t.startswith("--")]
            if not tokens:
                continue
            image = tokens[0]
            if len(tokens) >= 3 and tokens[1].upper() == "AS":
                stages.add(tokens[2].lower())
            var = _VAR_RE.match(image)
            if var:
                image = args.get(var.group(1), "")
            if not image or image.lower() in stages or image == "scratch":
                continue
            found.append(BaseRef(line, image))
    return found


def run_steps(text: str) -> list[Step]:
    """The RUN instructions: what executes the base's binaries during a build."""
    return [
        Step(line, instruction)
        for line, instruction in _instructions(text)
        if instruction.split(" ", 1)[0].upper() == "RUN"
    ]


# ---------------------------------------------------------------------------------------------
# Emulation.


def kernel_architecture(machine: str) -> str:
    """A kernel's `uname -m` (the engine's Info.Architecture) as an OCI architecture."""
    return _KERNEL_ARCH.get(machine, machine)


def emulation_available(architecture: str, binfmt_dir: Path = BINFMT_DIR) -> bool:
    """True if binfmt_misc has an enabled qemu entry for `architecture`'s executables."""
    qemu = _QEMU_NAME.get(architecture, architecture)
    try:
        status = (binfmt_dir / "status").read_text().strip()
        if status and status != "enabled":
            return False
    except OSError:
        pass  # some kernels expose the entries without a status file
    for name in (f"qemu-{qemu}", f"qemu-{qemu}-static"):
        try:
            first = (binfmt_dir / name).read_text().splitlines()
        except OSError:
            continue
        if first and first[0].strip() == "enabled":
            return True
    return False


def needs_emulation(native: str, platform: Platform) -> bool:
    return platform.architecture != native and platform.architecture not in _ALSO_NATIVE.get(
        native, set()
    )


def emulation_problem(
    display: str,
    text: str,
    platforms: Sequence[Platform],
    native: str,
    binfmt_dir: Path = BINFMT_DIR,
) -> tuple[Platform, str] | None:
    """The first platform a RUN step cannot run on here, with the one-line reason, or None."""
    steps = run_steps(text)
    if not steps:
        return None
    for platform in platforms:
        if not needs_emulation(native, platform):
            continue
        if emulation_available(platform.architecture, binfmt_dir):
            continue
        step = steps[0]
        qemu = _QEMU_NAME.get(platform.architecture, platform.architecture)
        return platform, (
            f"{display}:{step.line}: `{step.short()}` must run for {platform}, which this "
            f"{native} engine cannot execute (no binfmt_misc entry for qemu-{qemu}): install "
            "QEMU user emulation (apt-get install qemu-user-static binfmt-support, or "
            "docker/setup-qemu-action in CI), or build on a native "
            f"{platform.architecture} runner"
        )
    return None


# ---------------------------------------------------------------------------------------------
# Base images: resolved to each platform's child digest.


def api_reference(ref: str) -> Reference:
    """The registry reference to look `ref` up at: Docker Hub names are normalised (`alpine`
    -> docker.io/library/alpine) and read from Docker Hub's API host."""
    first = ref.split("/", 1)[0]
    hub = "/" not in ref or not ("." in first or ":" in first or first == "localhost")
    if hub:
        ref = f"{DOCKER_HUB}/{ref if '/' in ref else 'library/' + ref}"
    r = parse_reference(ref)
    if r.registry == DOCKER_HUB:
        return Reference(DOCKER_HUB_API, r.repository, r.tag, r.digest)
    return r


def pin_name(ref: str) -> str:
    """`ref` without its tag and digest: the name a per-platform digest is appended to."""
    name = ref.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


@dataclass
class ResolvedBase:
    ref: str  # what the build's FROM names (a stand-in when one is configured)
    digest: str  # the index (or single manifest) digest
    children: dict[str, str] = field(default_factory=dict)  # platform -> child manifest digest


def resolve_base(
    client: RegistryClient, ref: str, platforms: Sequence[Platform], *, where: str
) -> ResolvedBase:
    """Read `ref`'s index from its registry; every platform must have a child. `where` names
    the FROM line for the error message."""
    r = api_reference(ref)
    try:
        data, media_type, digest = client.get_manifest(r)
    except ManifestNotFoundError:
        raise PlatformError(f"{where}: base image {ref} not found in its registry") from None
    except RegistryError as exc:
        raise PlatformError(f"{where}: cannot read base image {ref}: {exc}") from None
    manifest = _json(data)
    resolved = ResolvedBase(ref, digest)
    if media_type in INDEX_MEDIA_TYPES or isinstance(manifest.get("manifests"), list):
        entries = [m for m in manifest.get("manifests") or [] if isinstance(m, dict)]
        offered = [
            platform_of(m["platform"]) for m in entries if isinstance(m.get("platform"), dict)
        ]
        for platform in platforms:
            child = next(
                (
                    m.get("digest")
                    for m in entries
                    if isinstance(m.get("platform"), dict) and platform.matches(m["platform"])
                ),
                None,
            )
            if not isinstance(child, str):
                raise PlatformError(
                    f"{where}: base image {ref} has no {platform} image (it offers "
                    f"{', '.join(offered) or 'no platforms'}); use a base published for every "
                    "configured platform, or change `platforms`"
                )
            resolved.children[str(platform)] = child
        return resolved
    # A single-platform manifest: usable only for the platform its config names.
    config = manifest.get("config")
    config_digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(config_digest, str):
        raise PlatformError(f"{where}: base image {ref}: manifest without a config")
    try:
        blob = _json(client.get_blob(r.repository, config_digest, registry=r.registry))
    except RegistryError as exc:
        raise PlatformError(f"{where}: cannot read base image {ref}: {exc}") from None
    for platform in platforms:
        if not platform.matches(blob):
            raise PlatformError(
                f"{where}: base image {ref} is a single {platform_of(blob)} image, not an "
                f"index with {platform}; use a base published for every configured platform, "
                "or change `platforms`"
            )
        resolved.children[str(platform)] = digest
    return resolved


def platform_pins(
    client: RegistryClient,
    containerfile: Path,
    display: str,
    platforms: Sequence[Platform],
    overrides: Mapping[str, str],
) -> dict[str, dict[str, str]]:
    """platform -> {FROM reference as the build sees it -> name@child digest}.

    The keys are the references after stand-in overrides (build.rewrite_from applies the
    overrides first, then these pins)."""
    try:
        text = containerfile.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{containerfile}: cannot read: {exc}") from None
    pins: dict[str, dict[str, str]] = {str(p): {} for p in platforms}
    for base in base_references(text):
        effective = overrides.get(base.ref, base.ref)
        resolved = resolve_base(client, effective, platforms, where=f"{display}:{base.line}")
        for platform, child in resolved.children.items():
            pins[platform][effective] = f"{pin_name(effective)}@{child}"
    return pins


# ---------------------------------------------------------------------------------------------
# The index.


def index_platforms(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(platform, child digest) of every entry of an index."""
    out: list[tuple[str, str]] = []
    for m in manifest.get("manifests") or []:
        if isinstance(m, dict) and isinstance(m.get("platform"), dict):
            out.append((platform_of(m["platform"]), str(m.get("digest", ""))))
    return out


def index_entries(client: RegistryClient, ref: str) -> list[tuple[str, str]]:
    """(platform, digest) of every entry of the index at `ref`, in order, an entry without a
    platform as "" (empty for a single image or none): all it lists, not only what we look
    for."""
    try:
        data, _media_type, _digest = client.get_manifest(ref)
    except ManifestNotFoundError:
        return []
    out: list[tuple[str, str]] = []
    for m in _json(data).get("manifests") or []:
        if isinstance(m, dict):
            where = m.get("platform")
            out.append(
                (platform_of(where) if isinstance(where, dict) else "", str(m.get("digest")))
            )
    return out


def find_child(manifest: Mapping[str, Any], platform: Platform) -> str | None:
    for m in manifest.get("manifests") or []:
        if (
            isinstance(m, dict)
            and isinstance(m.get("platform"), dict)
            and platform.matches(m["platform"])
            and isinstance(m.get("digest"), str)
        ):
            return str(m["digest"])
    return None


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


# (stage, message): stage is build, push or output (a line of the engine's own output).
EventCallback = Callable[[str, str], None]


# ---------------------------------------------------------------------------------------------
# Publishing: every platform's child, then the index.


@dataclass(frozen=True)
class Child:
    platform: str
    digest: str | None  # None in a dry run (built locally, not pushed)
    action: str  # built | reused | dry-run | skipped
    # Set when we PUT the manifest's bytes ourselves (assembled images): the registry's answer
    # was checked against those bytes, so the index lists it without reading it back.
    descriptor: Descriptor | None = None


@dataclass(frozen=True)
class PublishedChild:
    digest: str
    source_hash: str | None
    config: dict[str, Any]  # the image config (its os, architecture, variant)


def published_child(client: RegistryClient, ref: str) -> PublishedChild | None:
    """A child tag's manifest digest, its source-hash label and its config's platform."""
    from playbookctl.build import SOURCE_HASH_LABEL  # noqa: PLC0415 - build imports docker

    try:
        data, _media_type, digest = client.get_manifest(ref)
    except ManifestNotFoundError:
        return None
    r = parse_reference(ref)
    manifest = _json(data)
    config = manifest.get("config")
    config_digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(config_digest, str):
        return PublishedChild(digest, None, {})
    blob = _json(client.get_blob(r.repository, config_digest, registry=r.registry))
    inner = blob.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    value = labels.get(SOURCE_HASH_LABEL) if isinstance(labels, dict) else None
    return PublishedChild(digest, value if isinstance(value, str) else None, blob)


SameSourceCheck = Callable[[str, str, "str | None"], None]  # (ref, digest, source hash)
# (platform, local image ref): smoke.py's run of a built image, before any push; raises.
SmokeCheck = Callable[[str, str], None]


def build_children(
    engine: Any,
    client: RegistryClient,
    *,
    directory: Path,
    containerfile: str,
    display: str,
    repo: str,
    version: str,
    labels: Mapping[str, str],
    source_hash: str,
    platforms: Sequence[str],
    overrides: Mapping[str, str],
    dry_run: bool,
    push_auth: Mapping[str, str] | None,
    push_retries: int,
    check_same_source: SameSourceCheck,
    on_event: EventCallback,
    binfmt_dir: Path = BINFMT_DIR,
    epoch: int | None = None,
    before_first_push: Callable[[], None] | None = None,
    smoke: SmokeCheck | None = None,
    hermetic: bool | None = None,
    bases: BaseCache | None = None,
) -> list[Child]:
    """Build (or reuse) and push one image per platform; nothing is pushed unless every
    platform can be built (base children resolved, emulation present for RUN steps).

    A dry run (the pull-request gate) builds every platform it can and says which it could
    not, instead of failing on missing emulation: the release builds those with emulation or
    natively. `smoke` is called for every platform built here, after all are built and before
    the first push (a dry run too)."""
    from playbookctl import build  # noqa: PLC0415 - build imports docker

    wanted = parse_platforms(platforms)
    path = directory / containerfile
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{path}: cannot read: {exc}") from None
    native = kernel_architecture(engine.native_architecture())
    skipped: list[Child] = []
    buildable = list(wanted)
    while True:
        problem = emulation_problem(display, text, buildable, native, binfmt_dir)
        if problem is None:
            break
        if not dry_run:
            raise PlatformError(problem[1])
        on_event("build", f"not built: {problem[1]}")
        buildable.remove(problem[0])
        skipped.append(Child(str(problem[0]), None, "skipped"))
    pins = platform_pins(client, path, display, wanted, overrides)
    children: list[Child] = []
    to_push: list[tuple[str, str, Any]] = []
    for platform in buildable:
        name = str(platform)
        child_ref = f"{repo}:{version}{platform.tag_suffix}"
        existing = published_child(client, child_ref)
        if existing is not None:
            check_same_source(child_ref, existing.digest, existing.source_hash)
            if not platform.matches(existing.config):
                raise PlatformError(
                    f"{child_ref} holds a {platform_of(existing.config)} image, not {name}; "
                    "bump the version"
                )
            on_event("build", f"{child_ref} already published from this source: reused")
            children.append(Child(name, existing.digest, "reused"))
            continue
        on_event("build", f"building {child_ref}")
        built = build.build_playbook_image(
            engine,
            directory,
            containerfile=containerfile,
            ref=child_ref,
            labels=labels,
            overrides=overrides,
            platform=name,
            pins=pins[name],
            on_line=lambda line: on_event("output", line),
            hermetic=hermetic,
        )
        to_push.append((name, child_ref, built))
    # Every platform built, then every one smoke-run, then pushed: one that cannot start its
    # step stops them all before anything is written. The smoke run starts the engine's own
    # build (by image id), whose files and config are what is pushed but for the times that
    # engine_image clamps.
    if smoke is not None:
        for name, child_ref, built in to_push:
            on_event("build", f"smoke-running {child_ref}")
            smoke(name, built.image_id)
    if dry_run:
        return [Child(name, None, "dry-run") for name, _ref, _built in to_push] + skipped
    # Made reproducible and written by us (build.engine_image), every platform before the
    # first push; where the base is not an image we can read by digest, pushed by the engine.
    images: list[tuple[str, str, Any]] = []
    try:
        for name, child_ref, built in to_push:
            base, why = engine_base(client, built.containerfile_text, repo)
            if base is None:
                on_event(
                    "build", f"{child_ref} pushed by the engine as built, not reproducible: {why}"
                )
                images.append((name, child_ref, None))
                continue
            # The stand-in guard reads the image's own labels, as an engine push would.
            build.check_publishable(repo, engine.labels(built.image_id))
            image = build.engine_image(engine, built, base, epoch=epoch or 0, platform=name)
            images.append((name, child_ref, image))
            crash_point("engine-saved")
        for name, child_ref, image in images:
            if before_first_push is not None:
                before_first_push()  # every check passed and every child is built: not sooner
                before_first_push = None
            if image is None:
                on_event("push", f"pushing {child_ref} (the engine)")
                digest = build.push_image(
                    engine,
                    child_ref,
                    auth=push_auth,
                    retries=push_retries,
                    on_line=lambda line: on_event("output", line),
                )
                children.append(Child(name, digest, "built"))
                continue
            on_event("push", f"pushing {repo}@{image.digest} ({name}, built by the engine)")
            # The run's cache: a base in another registry is copied there once, then mounted.
            digest = push_assembled(client, repo, image, bases)
            descriptor = Descriptor(image.media_type, digest, len(image.manifest))
            children.append(Child(name, digest, "built", descriptor))
            crash_point("engine-child-pushed")
        crash_point("engine-children-pushed")
        return children + skipped
    finally:
        for _name, _ref, image in images:
            if image is not None:
                image.close()  # its layers' temporary files


def engine_base(
    client: RegistryClient, containerfile_text: str, repo: str
) -> tuple[BaseImage | None, str]:
    """The base an engine build's image is written on (build.engine_image): its final stage's
    FROM as the build saw it, pinned to this platform's child digest (platform_pins), read from
    its registry; or None with the reason when the text does not say which image that is or
    names it without a digest: that image is pushed by the engine as it built it. (`FROM
    ${ARG}` whose ARG has no default never gets here: lint refuses it, and the engine refuses
    to build a blank base; tests/integration/test_engine_publish.py.)"""
    from playbookctl import build  # noqa: PLC0415 - build imports docker

    final = build.final_base(containerfile_text)
    if final is None:
        return None, "its base image cannot be told from the Containerfile (an ARG without default)"
    if final.lower() == "scratch":
        return scratch_base(repo), ""
    if "@sha256:" not in final:
        return None, f"its base {final} is not an image in a registry, pinned by digest"
    r = api_reference(final)
    return read_base(client, f"{r.registry}/{r.repository}", str(r.digest)), ""


def push_index(client: RegistryClient, repo: str, version: str, children: Sequence[Child]) -> str:
    """Assemble the index of the pushed children (each looked up by digest: it must be there)
    and push it under `<version>`, in the children's natural type (a Docker manifest list of
    Docker manifests, else an OCI index) unless the registry refuses that type and takes the
    other (RegistryClient.index_media_type, asked before the children were pushed); return
    its digest."""
    from playbookctl.oci import image_index, preferred_index_type  # noqa: PLC0415

    r = parse_reference(f"{repo}:{version}")
    listed = []
    for child in children:
        if child.digest is None:
            raise PlatformError(f"{repo}:{version}: {child.platform} was not pushed; no index")
        # Trust nothing: a child the engine reported pushed is listed only once read back.
        descriptor = child.descriptor or client.read_back(f"{repo}@{child.digest}")
        p = Platform.parse(child.platform)
        listed.append(
            (descriptor, {"os": p.os, "architecture": p.architecture, "variant": p.variant})
        )
    natural = preferred_index_type([d.media_type for d, _ in listed])
    data, index_type = image_index(listed, client.index_media_type(str(r), prefer=natural))
    digest = client.push_manifest(r.repository, version, data, index_type, registry=r.registry)
    client.read_back(f"{repo}@{digest}")
    return digest


@dataclass
class ImagePlatforms:
    """What an image reference holds, platform-wise, and what is wrong with it."""

    ref: str
    digest: str | None = None
    platforms: list[str] = field(default_factory=list)
    index: bool = False
    problems: list[str] = field(default_factory=list)


def image_platforms(client: RegistryClient, ref: str, wanted: Sequence[str] = ()) -> ImagePlatforms:
    """The platforms of the image at `ref` (an index's entries, or a single image's config),
    with problems: missing, not an index of every `wanted` platform, a child manifest gone."""
    out = ImagePlatforms(ref)
    try:
        data, media_type, out.digest = client.get_manifest(ref)
    except ManifestNotFoundError:
        out.problems.append(f"{ref} does not exist in its registry")
        return out
    manifest = _json(data)
    r = parse_reference(ref)
    if media_type not in INDEX_MEDIA_TYPES and not isinstance(manifest.get("manifests"), list):
        config = manifest.get("config")
        digest = config.get("digest") if isinstance(config, dict) else None
        if isinstance(digest, str):
            blob = _json(client.get_blob(r.repository, digest, registry=r.registry))
            out.platforms = [platform_of(blob)]
        if wanted:
            out.problems.append(
                f"{ref} is a single-platform image ({', '.join(out.platforms) or 'unknown'}), "
                f"not an index of {', '.join(wanted)}"
            )
        return out
    out.index = True
    entries = index_platforms(manifest)
    out.platforms = [p for p, _ in entries]
    for name in wanted:
        if find_child(manifest, Platform.parse(name)) is None:
            out.problems.append(
                f"{ref} has no {name} image (it lists {', '.join(out.platforms) or 'none'})"
            )
    configured = [Platform.parse(name) for name in wanted]
    for m in manifest.get("manifests") or [] if wanted else []:
        where = m.get("platform") if isinstance(m, dict) else None
        if isinstance(where, dict) and any(p.matches(where) for p in configured):
            continue
        # The configured platforms are part of the source hash: an index of this source that
        # lists anything else was not written by a release of it (a foreign image a node of
        # that platform would run).
        what = platform_of(where) if isinstance(where, dict) else "an entry without a platform"
        digest = m.get("digest") if isinstance(m, dict) else None
        out.problems.append(
            f"{ref} also lists {what} ({digest}), which is not a configured platform "
            f"({', '.join(wanted)}), so a release of this source did not write it"
        )
    for platform, child in entries:
        if client.resolve(f"{r.name}@{child}") is None:
            out.problems.append(f"{ref}: its {platform} child manifest {child} is missing")
    return out


def index_problem(client: RegistryClient, ref: str, platforms: Sequence[str]) -> str | None:
    """Why the image at `ref` is not a usable multi-platform release (see image_platforms),
    or None when it is whole."""
    found = image_platforms(client, ref, platforms)
    if not found.problems:
        return None
    return f"{found.problems[0]}: bump the version to publish every configured platform"
