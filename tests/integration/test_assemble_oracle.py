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
uses) does not have: its oracle is the same COPY without the flag, from a context in which the
source already has the mode asked for (the meaning BuildKit gives the flag). The context the
engine receives normalises modes to 0644/0755 (build.context_tar), so the modes covered there
are those two.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from playbookctl import assemble, build, platforms
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl_dev.registry import LocalRegistry
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
            "d/f": "f\n",
            "dxf": "excluded\n",
            "dyf": "y\n",
            "a1.txt": "a\n",
            "d1.txt": "d\n",
            "-x": "dash\n",
            "\\x": "backslash\n",
        },
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
            ours = assemble.assemble_image(
                the_plan,
                base,
                context=context,
                read=lambda p: (our_dir / p).read_bytes(),
                epoch=EPOCH,
                platform=platform,
                containerfile=("Containerfile", sent),
            )
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
