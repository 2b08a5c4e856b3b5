"""smoke.py's pure parts: the image filesystem read from a tar, Linux's lookup and permission
rules, the shebang and ELF readers, and the static checks (table tests); the engine-backed run is
in tests/integration/test_smoke.py."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pytest

from playbookctl.platforms import Platform
from playbookctl.smoke import (
    PROBE,
    ImageFS,
    Program,
    SmokeError,
    StepSpec,
    _Reader,
    check_image,
    elf_architecture,
    observed_identity,
    probe_command,
    shebang,
    steps_for_image,
)

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")
ELF_X86 = b"\x7fELF\x02\x01\x01" + b"\0" * 11 + (62).to_bytes(2, "little") + b"\0" * 20
ELF_ARM = b"\x7fELF\x02\x01\x01" + b"\0" * 11 + (183).to_bytes(2, "little") + b"\0" * 20
BASH_SCRIPT = b"#!/usr/bin/env bash\nset -eu\n"
PATH = "/usr/local/bin:/usr/bin:/bin"
SCRIPT = "/usr/local/bin/remediate.sh"
PASSWD = b"root:x:0:0::/root:/bin/sh\nplaybook:x:65532:65532::/tmp:/bin/sh\n"
GROUP = b"root:x:0:\nplaybook:x:65532:\nops:x:4000:playbook\n"

# path -> (kind, mode, uid, gid, content or link target)
Spec = dict[str, tuple[str, int, int, int, Any]]


def image(changes: Spec | None = None, *, arch_elf: bytes = ELF_X86) -> ImageFS:
    files: Spec = {
        "bin": ("dir", 0o755, 0, 0, None),
        "etc": ("dir", 0o755, 0, 0, None),
        "usr": ("dir", 0o755, 0, 0, None),
        "usr/bin": ("dir", 0o755, 0, 0, None),
        "usr/lib": ("dir", 0o755, 0, 0, None),
        "usr/local": ("dir", 0o755, 0, 0, None),
        "loop": ("dir", 0o755, 0, 0, None),
        "bin/busybox": ("file", 0o755, 0, 0, arch_elf),
        "bin/sh": ("link", 0o777, 0, 0, "/bin/busybox"),
        "bin/bash": ("file", 0o755, 0, 0, arch_elf),
        "usr/bin/env": ("link", 0o777, 0, 0, "../../bin/busybox"),
        "usr/bin/kubectl": ("file", 0o755, 0, 0, arch_elf),
        "usr/local/bin": ("dir", 0o755, 0, 0, None),
        SCRIPT.lstrip("/"): ("file", 0o755, 0, 0, BASH_SCRIPT),
        "etc/passwd": ("file", 0o644, 0, 0, PASSWD),
        "etc/group": ("file", 0o644, 0, 0, GROUP),
    }
    files.update(changes or {})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, (kind, mode, uid, gid, content) in files.items():
            if kind == "gone":
                continue
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid = mode, uid, gid
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    # Through _Reader in small chunks, as the engine's export arrives.
    data = raw.getvalue()
    return ImageFS.from_tar(_Reader(data[i : i + 700] for i in range(0, len(data), 700)))


CONFIG: dict[str, Any] = {
    "User": "65532:65532",
    "Entrypoint": [SCRIPT],
    "Env": [f"PATH={PATH}"],
}
STEP = StepSpec("remediate/remediate")


@pytest.mark.parametrize(
    ("changes", "config", "step", "platform", "error"),
    [
        # the stand-in's samples: fine
        ({}, {}, STEP, AMD64, None),
        # the interpreter `env` looks for is missing
        (
            {"bin/bash": ("gone", 0, 0, 0, None)},
            {},
            STEP,
            AMD64,
            f"linux/amd64: /usr/bin/env: bash not found in the image (PATH={PATH})",
        ),
        # the shebang's interpreter itself is missing
        (
            {SCRIPT.lstrip("/"): ("file", 0o755, 0, 0, b"#!/usr/bin/bash\n")},
            {},
            STEP,
            AMD64,
            f"linux/amd64: /usr/bin/bash not found in the image (the interpreter of {SCRIPT})",
        ),
        # the script without its executable bit
        (
            {SCRIPT.lstrip("/"): ("file", 0o644, 0, 0, BASH_SCRIPT)},
            {},
            STEP,
            AMD64,
            f"linux/amd64: {SCRIPT} not executable by uid 65532 (mode 0644, owner 0:0)",
        ),
        # executable by its owner (root) only
        (
            {SCRIPT.lstrip("/"): ("file", 0o700, 0, 0, BASH_SCRIPT)},
            {},
            STEP,
            AMD64,
            f"linux/amd64: {SCRIPT} not executable by uid 65532 (mode 0700, owner 0:0)",
        ),
        # ... owned by the user: fine; by a group the user is in (/etc/group): fine
        ({SCRIPT.lstrip("/"): ("file", 0o700, 65532, 0, BASH_SCRIPT)}, {}, STEP, AMD64, None),
        ({SCRIPT.lstrip("/"): ("file", 0o750, 0, 4000, BASH_SCRIPT)}, {}, STEP, AMD64, None),
        # executable but not readable: the interpreter cannot read it
        (
            {SCRIPT.lstrip("/"): ("file", 0o711, 0, 0, BASH_SCRIPT)},
            {},
            STEP,
            AMD64,
            f"linux/amd64: {SCRIPT} not readable by uid 65532 (its interpreter must read it)",
        ),
        # a directory on the way that the user cannot search
        (
            {"usr/local/bin": ("dir", 0o700, 0, 0, None)},
            {},
            STEP,
            AMD64,
            f"linux/amd64: {SCRIPT} not executable by uid 65532: /usr/local/bin is not searchable",
        ),
        (
            {"usr/bin/kubectl": ("gone", 0, 0, 0, None)},
            {},
            STEP,
            ARM64,
            f"linux/arm64: kubectl not found in the image (PATH={PATH})",
        ),
        # root, or a user the kubelet cannot verify, is refused (runAsNonRoot)
        (
            {},
            {"User": ""},
            STEP,
            AMD64,
            "linux/amd64: the step would run as root (the image's USER is unset or 0): "
            "Kubernaut's pod template has runAsNonRoot: true, so the kubelet refuses to start it",
        ),
        (
            {},
            {"User": "playbook"},
            STEP,
            AMD64,
            "linux/amd64: the image's USER 'playbook' is not numeric: with Kubernaut's "
            "runAsNonRoot the kubelet cannot verify it and refuses to start the step (use a "
            "numeric USER, e.g. USER 65532:65532)",
        ),
        # ... unless the step names a numeric user
        ({}, {"User": "playbook"}, StepSpec("t/s", run_as_user=65532), AMD64, None),
        # the step's command, found along PATH
        ({}, {}, StepSpec("t/s", command=("remediate.sh", "verify")), AMD64, None),
        (
            {},
            {},
            StepSpec("t/s", command=("remedy.sh",)),
            AMD64,
            f"linux/amd64: remedy.sh not found in the image (PATH={PATH})",
        ),
        # a Tekton script: only its interpreter must be in the image (/bin/sh by default)
        ({}, {}, StepSpec("t/s", script="remediate.sh act\n"), AMD64, None),
        (
            {"bin/sh": ("gone", 0, 0, 0, None)},
            {},
            StepSpec("t/s", script="remediate.sh act\n"),
            AMD64,
            "linux/amd64: /bin/sh not found in the image (the interpreter of the step script)",
        ),
        # no command at all
        (
            {},
            {"Entrypoint": None},
            STEP,
            AMD64,
            "linux/amd64: step remediate/remediate has no command or script, and the image no "
            "ENTRYPOINT or CMD",
        ),
    ],
)
def test_static_checks(
    changes: Spec, config: dict[str, Any], step: StepSpec, platform: Platform, error: str | None
) -> None:
    elf = ELF_ARM if platform == ARM64 else ELF_X86
    fs = image(changes, arch_elf=elf)
    cfg = {**CONFIG, **config}
    if error is None:
        program, user, path = check_image(fs, cfg, step, platform)
        assert user.uid == 65532
        assert path == PATH
        assert program.interpreter is not None
    else:
        with pytest.raises(SmokeError) as caught:
            check_image(fs, cfg, step, platform)
        assert str(caught.value) == error


def test_an_arm64_env_reaching_an_amd64_bash_names_the_bash() -> None:
    fs = image({"bin/bash": ("file", 0o755, 0, 0, ELF_X86)}, arch_elf=ELF_ARM)
    with pytest.raises(SmokeError) as caught:
        check_image(fs, CONFIG, STEP, ARM64)
    assert str(caught.value) == (
        "linux/arm64: /bin/bash is an x86-64 executable, not one for linux/arm64 "
        "(exec format error)"
    )


def test_lookup_follows_links_as_the_kernel_does() -> None:
    fs = image(
        {
            "lib": ("link", 0o777, 0, 0, "usr/lib"),
            "usr/lib/x": ("file", 0o644, 0, 0, b"x"),
            "loop/a": ("link", 0o777, 0, 0, "b"),
            "loop/b": ("link", 0o777, 0, 0, "a"),
        }
    )
    assert fs.lookup("/usr/bin/env") == ("/bin/busybox", ["/", "/usr", "/usr/bin", "/", "/bin"])
    assert fs.lookup("/lib/x") is not None
    assert fs.lookup("/lib/x")[0] == "/usr/lib/x"  # type: ignore[index]
    assert fs.lookup("/loop/a") is None  # ELOOP
    assert fs.lookup("/bin/bash/x") is None  # ENOTDIR
    assert fs.lookup("/nope") is None
    assert fs.which("env", PATH) == "/usr/bin/env"
    assert fs.which("bin", PATH) is None  # a directory is not a program


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"#!/usr/bin/env bash\n", ("/usr/bin/env", "bash")),
        (b"#! /bin/sh -eu\nx", ("/bin/sh", "-eu")),
        (b"#!/usr/bin/env -S bash -e\n", ("/usr/bin/env", "-S bash -e")),
        (b"echo hi\n", None),
        (b"#!\n", None),
    ],
)
def test_shebang(head: bytes, expected: tuple[str, ...] | None) -> None:
    assert shebang(head) == expected


def test_elf_architecture() -> None:
    assert elf_architecture(ELF_X86) == "amd64"
    assert elf_architecture(ELF_ARM) == "arm64"
    assert elf_architecture(BASH_SCRIPT) is None
    assert elf_architecture(b"\x7fELF") is None


def test_probe_command_runs_the_probe_under_the_shebang_interpreter() -> None:
    program = Program((SCRIPT,), SCRIPT, ("/usr/bin/env", "bash"), in_image=True)
    assert probe_command(program, 65532) == [
        "/usr/bin/env",
        "bash",
        "-c",
        PROBE,
        "smoke",
        SCRIPT,
        "65532",
    ]
    python = Program((SCRIPT,), SCRIPT, ("/usr/bin/python3",), in_image=True)
    assert probe_command(python, 65532) is None  # not a shell: only kubectl is started
    assert probe_command(Program(("/app",), None, None, in_image=True), 1) is None


PIPELINE: dict[str, Any] = {
    "apiVersion": "tekton.dev/v1",
    "kind": "Pipeline",
    "spec": {
        "tasks": [
            {
                "name": "act",
                "taskSpec": {
                    "stepTemplate": {
                        "image": "IMG",
                        "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": True},
                    },
                    "steps": [
                        {"name": "a", "script": "#!/bin/bash\nremediate.sh\n"},
                        {"name": "b", "image": "other", "command": ["x"]},
                        {
                            "name": "c",
                            "image": "IMG",
                            "args": ["verify"],
                            "securityContext": {"runAsUser": 2000},
                            "env": [{"name": "PATH", "value": "/opt/bin"}],
                        },
                    ],
                },
            }
        ],
        "finally": [{"name": "f", "taskSpec": {"steps": [{"image": "IMG", "command": ["y"]}]}}],
    },
}


def test_steps_for_image_reads_steps_and_their_template() -> None:
    steps = steps_for_image(PIPELINE, "IMG")
    assert [s.name for s in steps] == ["act/a", "act/c", "f/0"]
    a, c, f = steps
    assert (a.script, a.run_as_user, a.read_only_root) == (
        "#!/bin/bash\nremediate.sh\n",
        1000,
        True,
    )
    assert (c.args, c.command, c.run_as_user, c.read_only_root, c.path) == (
        ("verify",),
        None,
        2000,
        True,
        "/opt/bin",
    )
    assert (f.command, f.run_as_user, f.read_only_root) == (("y",), None, False)


# -- assembled images: their filesystem stacked on the base's, and what a probe can observe --


def _layer(entries: dict[str, tuple[int, int, bytes]]) -> bytes:
    """A gzip layer of regular files: path -> (mode, uid, content)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, (mode, uid, content) in entries.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.uid, info.gid = len(content), mode, uid, uid
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


class _Assembled:
    def __init__(self, *layers: bytes) -> None:
        self.layers = [(f"sha256:{n}", data) for n, data in enumerate(layers)]


def test_layers_stack_on_the_base_with_whiteouts() -> None:
    base = image()
    fs = base.overlaid(
        [
            _layer({"usr/local/bin/new.sh": (0o700, 65532, b"#!/bin/sh\n")}),
            _layer({"usr/bin/.wh.kubectl": (0o644, 0, b""), "usr/lib/.wh..wh..opq": (0, 0, b"")}),
        ]
    )
    assert fs.entries["/usr/local/bin/new.sh"].mode == 0o700
    assert fs.entries["/usr/local/bin/new.sh"].head == b"#!/bin/sh\n"
    assert "/usr/bin/kubectl" not in fs.entries
    assert "/usr/bin/kubectl" in base.entries  # the base's own filesystem is untouched
    assert fs.entries["/usr/lib"].kind == "dir"  # opaque: what is below goes, not the directory


def test_what_a_probe_observes_leaves_out_only_scripts_it_never_runs() -> None:
    config: dict[str, Any] = {"Env": [f"PATH={PATH}"], "User": "65532:65532"}
    executed = {"/bin/busybox", "/usr/bin/kubectl"}
    base = "registry.example/base@sha256:" + "1" * 64

    def identity(*layers: bytes, cfg: dict[str, Any] = config, on: str = base) -> str:
        return observed_identity(_Assembled(*layers), on, cfg, executed)

    first = identity(_layer({SCRIPT.lstrip("/"): (0o755, 0, b"#!/bin/sh\necho one\n")}))
    # Another playbook's script: same mode and owner, other content the probe never reads.
    assert first == identity(_layer({SCRIPT.lstrip("/"): (0o755, 0, b"#!/bin/sh\necho 2!\n")}))
    different = [
        identity(_layer({SCRIPT.lstrip("/"): (0o700, 0, b"#!/bin/sh\necho one\n")})),  # mode
        identity(_layer({SCRIPT.lstrip("/"): (0o755, 7, b"#!/bin/sh\necho one\n")})),  # owner
        identity(  # a file that is not a script: its content counts
            _layer({SCRIPT.lstrip("/"): (0o755, 0, b"#!/bin/sh\necho one\n")}),
            _layer({"etc/kubectl.conf": (0o644, 0, b"other")}),
        ),
        identity(  # what the probe runs, replaced by a script: its content counts
            _layer({"usr/bin/kubectl": (0o755, 0, b"#!/bin/sh\necho fake\n")}),
        ),
        identity(
            _layer({SCRIPT.lstrip("/"): (0o755, 0, b"#!/bin/sh\necho one\n")}),
            cfg={**config, "User": "0"},
        ),
        identity(
            _layer({SCRIPT.lstrip("/"): (0o755, 0, b"#!/bin/sh\necho one\n")}),
            on=base.replace("1", "2"),
        ),
    ]
    assert first not in different
    assert len(set(different)) == len(different)
    # A kubectl script's content is part of it, whatever the content.
    fake = identity(_layer({"usr/bin/kubectl": (0o755, 0, b"#!/bin/sh\necho fake\n")}))
    assert fake != identity(_layer({"usr/bin/kubectl": (0o755, 0, b"#!/bin/sh\necho real\n")}))
    # A shell told to read a file at start (BASH_ENV) may read the script: every byte counts.
    hooked = {**config, "Env": [f"PATH={PATH}", f"BASH_ENV={SCRIPT}"]}
    assert identity(
        _layer({SCRIPT.lstrip("/"): (0o755, 0, b"#!/bin/sh\necho one\n")}), cfg=hooked
    ) != identity(_layer({SCRIPT.lstrip("/"): (0o755, 0, b"#!/bin/sh\necho 2!\n")}), cfg=hooked)


def test_a_base_the_engine_cannot_pull_is_tried_once_and_said_so() -> None:
    """A private base in another registry: the engine is not handed the run's credentials for
    it and cannot pull it; the memo says so once (each child is then checked as pushed)."""
    from playbookctl.errors import FatalError
    from playbookctl.smoke import ProbeMemo

    class Refusing:
        def __init__(self) -> None:
            self.pulls: list[tuple[str, object]] = []

        def pull(self, ref: str, *, platform: str, auth: object) -> None:
            self.pulls.append((ref, auth))
            raise FatalError(f"{ref}: pull: unauthorized")

    engine = Refusing()
    memo = ProbeMemo()
    base = "private.example/base@sha256:" + "3" * 64
    assert memo.base_fs(engine, base, "linux/amd64", None) is None
    assert memo.base_fs(engine, base, "linux/amd64", None) is None
    assert engine.pulls == [(base, None)]


@pytest.mark.parametrize(
    ("base_registry", "handed"),
    [("registry.example", {"username": "bot", "password": "s3cret"}), ("hub.example", None)],
)
def test_a_dry_run_hands_the_runs_credentials_to_the_runs_registry_only(
    tmp_path: Any, base_registry: str, handed: dict[str, str] | None
) -> None:
    """A dry run pulls each assembled image's base into the engine, which sends whatever
    credentials it is given to the base's own registry: the run's go with a base in the run's
    registry only. (A recording engine: what the Engine API is handed is not observable on a
    real engine.)"""
    from types import SimpleNamespace

    from playbookctl.config import Config
    from playbookctl.errors import FatalError
    from playbookctl.playbook import load_playbook
    from playbookctl.smoke import check_pushed
    from playbookctl_dev.sample_repo import write_playbook

    write_playbook(tmp_path, "demo")
    config = Config(root=tmp_path, registry="registry.example", smoke="auto")
    pb = load_playbook(tmp_path / "playbooks" / "demo", tmp_path, config.max_file_bytes)
    auth = {"username": "bot", "password": "s3cret"}
    pulls: list[tuple[str, object]] = []

    class Recording:
        def native_architecture(self) -> str:
            return "amd64"

        def pull(self, ref: str, *, platform: str, auth: object) -> None:
            pulls.append((ref, auth))
            raise FatalError(f"{ref}: pull: stop here")

    base = f"{base_registry}/base@sha256:" + "4" * 64
    image = SimpleNamespace(platform="linux/amd64", digest="sha256:" + "5" * 64)
    with pytest.raises(FatalError, match="stop here"):
        check_pushed(
            config,
            pb,
            engine_of=Recording,
            children=[],
            repo="registry.example/images/demo",
            messages=[],
            auth=auth,
            dry_run=True,
            assembled=[(image, base)],
        )
    assert pulls == [(base, handed)]


def test_an_engine_that_refuses_the_load_pulls_the_child_as_pushed() -> None:
    """The probe's child is loaded from the bytes just pushed; an engine whose image store
    wants every layer inside the archive (the base's are left out) refuses that load, and the
    child is then pulled by digest, with the run's credentials (it is in the run's registry).
    (A refusing engine: a real one that refuses such a load is not on this machine.)"""
    from types import SimpleNamespace

    from playbookctl.errors import FatalError
    from playbookctl.smoke import _Loader

    config = json.dumps({"rootfs": {"diff_ids": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]}})
    image = SimpleNamespace(
        platform="linux/arm64",
        digest="sha256:" + "6" * 64,
        config=config.encode(),
        layers=[("sha256:" + "7" * 64, b"own layer")],
    )
    auth = {"username": "bot", "password": "s3cret"}
    ref = "registry.example/images/demo@" + image.digest

    class Engine:
        def __init__(self, refuse: bool) -> None:
            self.refuse = refuse
            self.calls: list[tuple[str, ...]] = []

        def load_archive(self, data: bytes, what: str) -> None:
            self.calls.append(("load", what))
            if self.refuse:
                raise FatalError(f"{what}: load: content digest sha256:1111: not found")

        def pull(self, ref: str, *, platform: str, auth: object) -> None:
            self.calls.append(("pull", ref, platform, str(auth)))

    tag = "playbookctl-smoke/demo:" + "6" * 16
    loads = Engine(refuse=False)
    made = _Loader(loads, image, "demo", ref, auth)
    assert (made(), made()) == (tag, tag)  # made once
    assert loads.calls == [("load", tag)]
    refuses = Engine(refuse=True)
    made = _Loader(refuses, image, "demo", ref, auth)
    assert (made(), made()) == (ref, ref)
    assert refuses.calls == [("load", tag), ("pull", ref, "linux/arm64", str(auth))]
