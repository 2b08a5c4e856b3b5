"""The engine as the oracle: an assembled image equals what Docker builds from the same context.

For every case below (the sample playbooks, then the edges of COPY: directories, trailing
slashes, wildcards, .dockerignore, --chown by name and by number, --chmod, WORKDIR creation,
files overwritten by a later layer, and the metadata instructions), the same Containerfile and
context are built twice on the stand-in base, for linux/amd64 and linux/arm64: once by the real
engine (Docker 20.10's classic builder, made reproducible as publish does), once by
assemble.py without it. The layers above the base must hold the same entries (name, type,
mode, owner, time, content, link target) and the configs must be equal, except the fields the
README lists as differences (the source names in a COPY/ADD history entry).

`--chmod` needs BuildKit, which the engine's classic builder (and the Engine API the project
uses) does not have: its classic oracle is the same COPY without the flag, from a context in
which the source already has the mode asked for. The second oracle is BuildKit itself (`docker
build` since Docker 23), through the docker CLI (tests/support/buildkit.py): every case again,
with the real --chmod, and a table of modes on files and on directories' files and
subdirectories, with --chown by name and by number; where the two builders copy differently
and the assembler follows the classic one (the engine path's builder), exactly those entries
must differ.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from playbookctl import assemble, build, platforms
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl_dev.registry import LocalRegistry
from tests.support.buildkit import BuildKitBuildError, buildkit_cli
from tests.support.registry import logged_in

pytestmark = pytest.mark.integration
EPOCH = 1_700_000_000
PLATFORMS = ("linux/amd64", "linux/arm64")
LABELS = {
    "org.opencontainers.image.version": "1.2.3",
    "dev.playbookctl.source-hash": "sha256:" + "ab" * 32,
}
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Case:
    name: str
    containerfile: str  # "{base}" is the stand-in base's reference
    files: dict[str, str | tuple[str, int]] = field(default_factory=dict)  # path -> text[, mode]
    # --chmod: what the engine builds instead (BuildKit's meaning on the classic builder)
    oracle_containerfile: str | None = None
    oracle_modes: dict[str, int] = field(default_factory=dict)


def _sample_cases() -> Iterator[Case]:
    for d in sorted((REPO_ROOT / "playbooks").iterdir()):
        cf = d / "Containerfile"
        if not cf.is_file():
            continue
        text = re.sub(r"(?m)^FROM \S+", "FROM {base}", cf.read_text())
        files: dict[str, str | tuple[str, int]] = {}
        for f in sorted(d.iterdir()):
            if f.is_file() and f.name != "Containerfile":
                files[f.name] = (f.read_text(), 0o755 if f.stat().st_mode & 0o111 else 0o644)
        yield Case(f"sample-{d.name}", text, files)


CASES = [
    *_sample_cases(),
    Case(
        "directory-trees",
        "FROM {base}\nCOPY lib /opt/lib\nCOPY lib/ /opt/again/\nCOPY . /ctx/\n",
        {
            "lib/a.txt": "a\n",
            "lib/sub/b.sh": ("#!/bin/sh\necho b\n", 0o755),
            "lib/sub/deeper/c": "c\n",
            "top.txt": "top\n",
        },
    ),
    Case(
        "trailing-slashes",
        "FROM {base}\nCOPY a.txt /opt/file\nCOPY a.txt /opt/dir/\nCOPY a.txt /etc\n"
        "COPY a.txt b.txt /multi/\n",
        {"a.txt": "a\n", "b.txt": "b\n"},
    ),
    Case(
        "wildcards",
        "FROM {base}\nCOPY *.sh /usr/local/bin/\nCOPY conf/?.yaml /conf/\nCOPY [ab]* /letters/\n",
        {
            "one.sh": ("#!/bin/sh\n", 0o755),
            "two.sh": "echo\n",
            "conf/x.yaml": "x: 1\n",
            "conf/xy.yaml": "no\n",
            "a1": "a\n",
            "b2": "b\n",
            "c3": "c\n",
        },
    ),
    Case(
        # Go's filepath.Match on the whole context path: a class may match `/` (`*` and `?`
        # may not) and `\` escapes inside one (the Containerfile's `[\\-]x` is `[\-]x`).
        "wildcard-classes",
        "FROM {base}\nCOPY d[^x]f /crossing/\nCOPY [a-c]?.txt /ranges/\nCOPY [\\\\-]x /esc/\n",
        {
            "dxf": "excluded\n",
            "dyf": "y\n",
            "a1.txt": "a\n",
            "d1.txt": "d\n",
            "-x": "dash\n",
            "\\x": "backslash\n",
        },
    ),
    Case(
        # ... and then d/f too (BuildKit: not, see BUILDKIT_CASES).
        "wildcard-class-crossing",
        "FROM {base}\nCOPY d[^x]f /crossing/\n",
        {"d/f": "f\n", "dxf": "excluded\n", "dyf": "y\n"},
    ),
    Case(
        "dockerignore",
        "FROM {base}\nCOPY . /app/\n",
        {
            ".dockerignore": "*\n!keep.sh\n!docs/\ndocs/secret.txt\n!**/*.md\n",
            "keep.sh": ("#!/bin/sh\n", 0o755),
            "drop.txt": "gone\n",
            "docs/readme.md": "# r\n",
            "docs/secret.txt": "s\n",
            "other/note.md": "n\n",
        },
    ),
    Case(
        "chown",
        "FROM {base}\nCOPY --chown=playbook a.txt /home/byname/\n"
        "COPY --chown=1000:1001 a.txt /srv/bynumber/a\n"
        "COPY --chown=playbook:root dir /srv/tree\n"
        "COPY --chown=65532 a.txt /etc/owned.txt\n",
        {"a.txt": "a\n", "dir/x": "x\n", "dir/y/z": "z\n"},
    ),
    Case(
        # A directory copy's new parents: root's (BuildKit: the --chown owner's).
        "chown-new-parents",
        "FROM {base}\nCOPY --chown=1000:1001 dir /new/parents/tree\n",
        {"dir/x": "x\n"},
    ),
    Case(
        "chmod",
        "FROM {base}\nCOPY --chmod=0755 run.txt /usr/local/bin/run\n"
        "COPY --chmod=644 tool.sh /usr/local/bin/tool.sh\n",
        {"run.txt": "echo run\n", "tool.sh": ("#!/bin/sh\n", 0o755)},
        oracle_containerfile="FROM {base}\nCOPY run.txt /usr/local/bin/run\n"
        "COPY tool.sh /usr/local/bin/tool.sh\n",
        oracle_modes={"run.txt": 0o755, "tool.sh": 0o644},
    ),
    Case(
        "workdir",
        "FROM {base}\nWORKDIR /work/deep\nCOPY a.txt rel/\nWORKDIR sub\nCOPY a.txt .\n"
        "WORKDIR /etc\nWORKDIR /etc\nCOPY a.txt here.txt\n",
        {"a.txt": "a\n"},
    ),
    Case(
        "overwritten-later",
        "FROM {base}\nCOPY first.txt /opt/f\nCOPY second.txt /opt/f\nADD first.txt /etc/passwd\n",
        {"first.txt": "first\n", "second.txt": "second, longer\n"},
    ),
    Case(
        "metadata",
        'FROM {base}\nARG GREETING="hello world"\nARG EMPTY\n'
        'ENV A=1 B="two words" C=${GREETING:-x} D=$A\\ and\\ more\n'
        "ENV LEGACY value with spaces\n"
        'LABEL one=1 "two words"="x y" three="$B"\n'
        "EXPOSE 8080 53/udp\nVOLUME /data\nSTOPSIGNAL SIGTERM\n"
        "HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD wget -q -O- http://localhost/\n"
        'SHELL ["/bin/sh", "-ec"]\n'
        'USER playbook\nCMD echo $A\nENTRYPOINT ["/bin/sh", "-c"]\n'
        "ONBUILD COPY . /onbuild\n",
        {},
    ),
]


def _write_context(directory: Path, case: Case, *, oracle: bool) -> None:
    directory.mkdir(parents=True)
    text = case.oracle_containerfile if oracle and case.oracle_containerfile else case.containerfile
    (directory / "Containerfile").write_text(text)
    for rel, spec in case.files.items():
        content, mode = (spec, 0o644) if isinstance(spec, str) else spec
        if oracle and rel in case.oracle_modes:
            mode = case.oracle_modes[rel]
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)


def _entries(layer: tarfile.TarFile) -> list[tuple[Any, ...]]:
    out = []
    for m in layer:
        data = layer.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
        out.append(
            (
                m.name.rstrip("/"),
                m.type,
                oct(m.mode),
                m.uid,
                m.gid,
                # Names come from the engine host's user database: compared for root only.
                m.uname if m.uid == 0 else "",
                m.gname if m.gid == 0 else "",
                int(m.mtime),
                m.linkname,
                hashlib.sha256(data).hexdigest()[:16],
            )
        )
    return out


def _assembled_image(
    image: assemble.Assembled,
) -> tuple[dict[str, Any], list[list[tuple[Any, ...]]]]:
    import gzip

    layers = []
    for _digest, data in image.layers:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(bytes(data)))) as layer:
            layers.append(_entries(layer))
    return json.loads(image.config), layers


_SOURCE = re.compile(r"(COPY|ADD) (--chown=\S*?)?(file|dir|multi):[0-9a-f]{64}")


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The config without the documented difference: how a COPY/ADD history entry names its
    sources (the builder's own content hash)."""
    out = json.loads(json.dumps(config))
    for entry in out.get("history") or []:
        if "created_by" in entry:
            entry["created_by"] = _SOURCE.sub(r"\1 \2<sources>", entry["created_by"])
    # The layers' diff_ids are compared apart (_same_layer_ids): the engine names owners from
    # its host's user database, which changes the bytes but not the entries compared above.
    out["rootfs"]["diff_ids"] = len(out["rootfs"]["diff_ids"])
    return out


def _same_layer_ids(got: dict[str, Any], want: dict[str, Any], layers: list[list[Any]]) -> None:
    """Byte-identical layers (same diff_ids) wherever the engine needed no owner name but root's."""
    if all(e[3] == 0 and e[4] == 0 for layer in layers for e in layer):
        assert got["rootfs"]["diff_ids"] == want["rootfs"]["diff_ids"]
    else:
        n = len(got["rootfs"]["diff_ids"]) - len(layers)
        assert got["rootfs"]["diff_ids"][:n] == want["rootfs"]["diff_ids"][:n]


@pytest.fixture(scope="module")
def base_children(
    session_registry: LocalRegistry, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    config = Config(root=Path("."), registry=session_registry.host)
    # Module scope runs before a test's own Docker config exists: a login of its own.
    with (
        logged_in(session_registry, tmp_path_factory.mktemp("docker-config")),
        RegistryClient(config) as client,
    ):
        resolved = platforms.resolve_base(
            client, base_image, [platforms.Platform.parse(p) for p in PLATFORMS], where="test"
        )
    return resolved.children


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_assembled_equals_engine_build(
    case: Case,
    docker_engine: str,
    registry: LocalRegistry,
    base_image: str,
    base_children: dict[str, str],
    tmp_path: Path,
) -> None:
    oracle_dir, our_dir = tmp_path / "oracle", tmp_path / "ours"
    _write_context(oracle_dir, case, oracle=True)
    _write_context(our_dir, case, oracle=False)
    for path in (oracle_dir / "Containerfile", our_dir / "Containerfile"):
        path.write_text(path.read_text().replace("{base}", base_image))
    text = build.append_labels((our_dir / "Containerfile").read_text(), LABELS)
    assert text is not None
    the_plan = assemble.plan(text)
    context = assemble.context_entries(our_dir, "Containerfile")
    cache = assemble.BaseCache(None)
    config = Config(root=tmp_path, registry=registry.host)
    name = platforms.pin_name(base_image)
    with RegistryClient(config) as client, build.Engine(docker_engine) as engine:
        for platform in PLATFORMS:
            child = base_children[platform]
            base = cache.image(client, name, child)
            pins = {base_image: f"{name}@{child}"}
            sent = build.sent_containerfile(
                (our_dir / "Containerfile").read_text(), {}, pins, LABELS
            ).text
            ours = _assemble(the_plan, base, context, our_dir, platform, sent)
            ref = f"{registry.host}/oracle/{case.name}:{platform.replace('/', '-')}"
            built = build.build_playbook_image(
                engine,
                oracle_dir,
                containerfile="Containerfile",
                ref=ref,
                labels=LABELS,
                overrides={},
                platform=platform,
                pins=pins,
            )
            # The engine's build as publish writes it (clamped, normalised, our gzip).
            theirs = build.engine_image(engine, built, base, epoch=EPOCH, platform=platform)
            want_config, want_layers = _assembled_image(theirs)
            got_config, got_layers = _assembled_image(ours)
            _same("layers", platform, got_layers, want_layers)
            _same("config", platform, _comparable(got_config), _comparable(want_config))
            _same_layer_ids(got_config, want_config, want_layers)


def _assemble(
    the_plan: assemble.Plan,
    base: assemble.BaseImage,
    context: Mapping[str, assemble.ContextFile],
    our_dir: Path,
    platform: str,
    sent: str,
) -> assemble.Assembled:
    """The assembled image of `our_dir` for `platform`, its Containerfile read as `sent` (the
    text the engine's context carries)."""
    return assemble.assemble_image(
        the_plan,
        base,
        context=context,
        read=lambda p: (our_dir / p).read_bytes(),
        epoch=EPOCH,
        platform=platform,
        containerfile=("Containerfile", sent),
    )


def _same(what: str, platform: str, got: Any, want: Any) -> None:
    """Equal, or a failure showing the lines that differ (assembled -, engine +)."""
    if got == want:
        return
    lines = [
        difflib.unified_diff(
            json.dumps(got, indent=1, sort_keys=True, default=str).splitlines(),
            json.dumps(want, indent=1, sort_keys=True, default=str).splitlines(),
            "assembled",
            "engine",
            lineterm="",
        )
    ]
    pytest.fail(f"{platform}: the {what} differ:\n" + "\n".join(lines[0]))


# --- BuildKit ---------------------------------------------------------------------------------
#
# `docker build` since Docker 23 is BuildKit, and only BuildKit takes --chmod: the same cases
# (the real --chmod, not its classic stand-in) and the --chmod ones below are built again by the
# engine's BuildKit through the docker CLI (tests/support/buildkit.py chooses one that can),
# with the context as publish sends it (modes 0644/0755, times 0). Compared as above, less
# what the README lists as BuildKit's differences (_kit_image). A case whose
# `buildkit_differs` names entries is one where the classic builder and BuildKit copy
# differently and the assembler follows the classic builder (the engine path's builder): exactly
# those entries must differ.

_MODES = ("0644", "0755", "0700", "0750", "0640", "0600", "0555", "0444", "0400", "0777", "755")
_TREE_MODES = ("0700", "0750", "0640", "0600", "0555", "0755")
KIT_CASES = [
    Case(
        # Every mode on a file, and on a directory's files and subdirectories (copied into a
        # directory that exists: one a --chmod other than 0755 creates is refused, see below).
        "chmod-modes",
        "FROM {base}\n"
        + "".join(f"COPY --chmod={m} f.txt /etc/f{m}\n" for m in _MODES)
        + "".join(f"COPY --chmod={m} t{m} /etc/\n" for m in _TREE_MODES)
        + "COPY --chmod=0755 t0755 /new/deep/\nADD --chmod=0600 f.txt /etc/added\n",
        {
            "f.txt": "f\n",
            **{f"t{m}/d{m}/x": "x\n" for m in _TREE_MODES},
            **{f"t{m}/d{m}/sub/y.sh": ("y\n", 0o755) for m in _TREE_MODES},
        },
    ),
    Case(
        # --chown by name (BuildKit: the user's group from /etc/passwd) and by number, with
        # --chmod; new parents of a directory copy owned by the --chown owner (BuildKit's).
        "chmod-chown",
        "FROM {base}\nCOPY --chmod=0750 --chown=playbook tree /etc/\n"
        "COPY --chmod=0640 --chown=1000:1001 f.txt /etc/n\n"
        "COPY --chmod=0600 --chown=playbook:root f.txt /etc/named\n"
        # no group "nobody" (the classic builder would refuse it): its /etc/passwd group
        "COPY --chmod=0644 --chown=nobody f.txt /etc/nobody\n"
        "COPY --chmod=0755 --chown=65532 tree /srv/owned/by/\n"
        "COPY --chmod=0755 --chown=1000:0 f.txt /opt/x/y\n",
        {"f.txt": "f\n", "tree/d/x": "x\n", "tree/d/sub/y": "y\n"},
    ),
]


@dataclass
class KitCase:
    case: Case
    buildkit_differs: frozenset[str] = frozenset()  # entries the two builders copy differently


BUILDKIT_CASES = [
    *(KitCase(c) for c in CASES if c.name not in ("wildcard-class-crossing", "chown-new-parents")),
    # The classic builder matches a wildcard on the whole path (a class may match `/`);
    # BuildKit (fsutil) each path component on its own.
    KitCase(
        next(c for c in CASES if c.name == "wildcard-class-crossing"), frozenset({"crossing/f"})
    ),
    # BuildKit gives the directories a directory copy creates above its destination the
    # --chown owner; the classic builder leaves them root's.
    KitCase(
        next(c for c in CASES if c.name == "chown-new-parents"), frozenset({"new", "new/parents"})
    ),
    *(KitCase(c) for c in KIT_CASES),
]


def _kit_image(
    config: dict[str, Any], layers: list[list[tuple[Any, ...]]]
) -> tuple[dict[str, Any], list[list[tuple[Any, ...]]]]:
    """An image without BuildKit's documented differences from the classic builder: history
    names an instruction as written (`COPY a /b # buildkit`, with a comment) and has no ONBUILD
    entry; a WORKDIR that exists is an empty layer (BuildKit 0.8), not a history entry alone; the
    run config holds only the fields that are set (and ArgsEscaped, meaningless on Linux); a
    directory copied from the context has the build's time (BuildKit 0.8's context transfer does
    not keep a directory's), so its time 0 compares as the epoch."""
    out = _comparable(config)
    history = [
        h for h in out.get("history") or [] if "#(nop)  ONBUILD " not in h.get("created_by", "")
    ]
    kept: list[list[tuple[Any, ...]]] = []
    non_empty = [h for h in history if not h.get("empty_layer")]
    base_layers = len(non_empty) - len(layers)
    for entry, layer in zip(non_empty[base_layers:], layers, strict=True):
        if layer:
            kept.append(layer)
        else:
            entry["empty_layer"] = True
    for entry in history:
        entry.pop("comment", None)
        entry["created_by"] = ""
    out["history"] = history
    out["rootfs"]["diff_ids"] -= len(layers) - len(kept)
    out["config"] = {k: v for k, v in out["config"].items() if v and k != "ArgsEscaped"}
    times = [
        [(*e[:7], EPOCH if e[1] == tarfile.DIRTYPE and e[7] == 0 else e[7], *e[8:]) for e in layer]
        for layer in kept
    ]
    return out, times


def _differing(got: list[list[tuple[Any, ...]]], want: list[list[tuple[Any, ...]]]) -> set[str]:
    """The names whose entries differ, layer by layer."""
    assert len(got) == len(want), "as many layers"
    out: set[str] = set()
    for ours, theirs in zip(got, want, strict=True):
        a, b = {e[0]: e for e in ours}, {e[0]: e for e in theirs}
        out |= {name for name in a.keys() | b.keys() if a.get(name) != b.get(name)}
    return out


def _as_sent(directory: Path) -> None:
    """The context as publish sends it (build.context_tar): directories 0755, every time 0
    (BuildKit copies the context's times and modes as they are on disk)."""
    for path in [directory, *directory.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (0, 0), follow_symlinks=False)


@pytest.fixture(scope="module")
def kit_bases(
    docker_engine: str, session_registry: LocalRegistry, base_image: str,
    base_children: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:  # fmt: skip
    """platform -> the base pinned by digest, in the engine's store: BuildKit 0.8 in dockerd
    takes it from there (it does not read the CA the engine trusts the test registry with)."""
    name = platforms.pin_name(base_image)
    config = Config(root=Path("."), registry=session_registry.host)
    out = {}
    with (
        logged_in(session_registry, tmp_path_factory.mktemp("docker-config")),
        build.Engine(docker_engine) as engine,
    ):
        auth = build.registry_auth(config, session_registry.host)
        for platform in PLATFORMS:
            out[platform] = f"{name}@{base_children[platform]}"
            engine.pull(out[platform], platform=platform, auth=auth)
    return out


@pytest.mark.parametrize("kit", BUILDKIT_CASES, ids=[k.case.name for k in BUILDKIT_CASES])
def test_assembled_equals_buildkit_build(
    kit: KitCase,
    docker_engine: str,
    registry: LocalRegistry,
    base_image: str,
    base_children: dict[str, str],
    kit_bases: dict[str, str],
    tmp_path: Path,
) -> None:
    cli = buildkit_cli()
    case = kit.case
    our_dir = tmp_path / "ours"
    _write_context(our_dir, case, oracle=False)
    raw = (our_dir / "Containerfile").read_text().replace("{base}", base_image)
    text = build.append_labels(raw, LABELS)
    assert text is not None
    the_plan = assemble.plan(text)
    context = assemble.context_entries(our_dir, "Containerfile")
    cache = assemble.BaseCache(None)
    config = Config(root=tmp_path, registry=registry.host)
    with RegistryClient(config) as client, build.Engine(docker_engine) as engine:
        for platform in PLATFORMS:
            name, _, child = kit_bases[platform].partition("@")
            base = cache.image(client, name, child)
            sent = build.sent_containerfile(raw, {}, {base_image: kit_bases[platform]}, LABELS)
            ours = _assemble(the_plan, base, context, our_dir, platform, sent.text)
            kit_dir = tmp_path / f"buildkit-{platform.replace('/', '-')}"
            _write_context(kit_dir, case, oracle=False)
            (kit_dir / "Containerfile").write_text(sent.text)
            _as_sent(kit_dir)
            ref = f"buildkit-oracle/{case.name}:{platform.replace('/', '-')}"
            image_id = cli.build(kit_dir, tag=ref, docker_host=docker_engine, platform=platform)
            built = build.BuiltImage(image_id=image_id, tag=ref, labels={})
            theirs = build.engine_image(engine, built, base, epoch=EPOCH, platform=platform)
            got_config, got_layers = _kit_image(*_assembled_image(ours))
            want_config, want_layers = _kit_image(*_assembled_image(theirs))
            if kit.buildkit_differs:
                assert _differing(got_layers, want_layers) == kit.buildkit_differs
            else:
                _same("layers", platform, got_layers, want_layers)
            _same("config", platform, got_config, want_config)


def test_where_buildkit_versions_disagree_assembly_refuses(
    docker_engine: str, base_image: str, kit_bases: dict[str, str], tmp_path: Path
) -> None:
    """A --chmod other than 0755 that creates a directory, and the setuid/setgid/sticky bits:
    BuildKit before 0.21 (Docker 28.1) makes the directory 0755 and later ones give it the
    mode; before 0.13 (Docker 26) it drops the bits and later ones keep them (moby/buildkit's
    frontend and tonistiigi/fsutil's copy). Assembly refuses both; this engine's BuildKit must
    give one of the two readings the refusal names."""
    lines = ["COPY --chmod=0640 f.txt /fresh/dir/f", "COPY --chmod=4755 f.txt /etc/suid"]
    for line in lines:
        text = f"FROM {base_image}\n{line}\n"
        with pytest.raises(
            assemble.Refused, match=r"^line 2: --chmod=\d+(: the setuid| creates /fresh,)"
        ):
            assemble.assemble_image(
                assemble.plan(text), assemble.scratch_base("x"),
                context=assemble.read_context(tmp_path, []) | {
                    "f.txt": assemble.ContextFile("f.txt", "file", 0o644)},
                read=lambda p: b"f\n", epoch=EPOCH, platform=PLATFORMS[0],
            )  # fmt: skip
    kit_dir = tmp_path / "buildkit"
    kit_dir.mkdir()
    (kit_dir / "f.txt").write_text("f\n")
    (kit_dir / "Containerfile").write_text(f"FROM {kit_bases[PLATFORMS[0]]}\n" + "\n".join(lines))
    _as_sent(kit_dir)
    cli = buildkit_cli()
    image_id = cli.build(kit_dir, tag="buildkit-versions/x:1", docker_host=docker_engine)
    with build.Engine(docker_engine) as engine:
        saved = b"".join(engine._api.get_image(image_id))
    modes = {}
    with tarfile.open(fileobj=io.BytesIO(saved)) as image:
        manifest = json.load(image.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"][-2:]:
            with tarfile.open(fileobj=image.extractfile(name)) as layer:
                modes |= {m.name.rstrip("/"): m.mode & 0o7777 for m in layer}
    assert modes["fresh/dir"] in (0o755, 0o640), oct(modes["fresh/dir"])
    assert modes["etc/suid"] in (0o755, 0o4755), oct(modes["etc/suid"])


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        ("--CHMOD=0755", "Unknown flag: CHMOD"),
        ("--Chown=1:1", "Unknown flag: Chown"),
        ("--chmod=0644 --chmod=0755", "Duplicate flag specified: chmod"),
        ("--chown=1:1 --chown=2:2", "Duplicate flag specified: chown"),
    ],
)
def test_a_flag_every_builder_refuses_is_not_assembled(
    docker_engine: str, kit_bases: dict[str, str], tmp_path: Path, flags: str, said: str
) -> None:
    """Flag names are matched exactly and given once, by BuildKit as by the classic builder
    (tests/integration/test_builder_agreement.py): assembly refuses what BuildKit refuses,
    rather than building an image no `docker build` makes."""
    line = f"COPY {flags} f.txt /f"
    with pytest.raises(assemble.Refused, match=r"^line 2: --\w+: (Unknown|Duplicate) flag"):
        assemble.plan(f"FROM r/b:1@sha256:{'a' * 64}\n{line}\n")
    kit_dir = tmp_path / "buildkit"
    kit_dir.mkdir()
    (kit_dir / "f.txt").write_text("f\n")
    (kit_dir / "Containerfile").write_text(f"FROM {kit_bases[PLATFORMS[0]]}\n{line}\n")
    _as_sent(kit_dir)
    with pytest.raises(BuildKitBuildError, match=said):
        buildkit_cli().build(kit_dir, tag="buildkit-flags/x:1", docker_host=docker_engine)
