"""build.py against a real Docker engine and the loopback registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playbookctl import build
from playbookctl.config import Config
from playbookctl.errors import BuildError
from playbookctl.oci import RegistryClient
from playbookctl.publish import published_image
from playbookctl_dev.registry import LocalRegistry

pytestmark = pytest.mark.integration

PROD = "registry.example.com/base/busybox:1.36@sha256:" + "ab" * 32


def _context(tmp_path: Path, containerfile: str, files: dict[str, str] | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Containerfile").write_text(containerfile)
    for rel, text in (files or {}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_build_on_stand_in_is_labelled_and_pushed(
    docker_engine: str, base_image: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    ctx = _context(
        tmp_path / "ctx",
        f"FROM {PROD}\nCOPY keep.sh /src/\nRUN sh /src/keep.sh\nUSER 65532:65532\n",
        {"keep.sh": "echo hi\n"},
    )
    ref = f"{registry.host}/build-test/stand-in:1"
    lines: list[str] = []
    with build.Engine(docker_engine) as engine:
        built = build.build_playbook_image(
            engine,
            ctx,
            containerfile="Containerfile",
            ref=ref,
            labels={build.SOURCE_HASH_LABEL: "sha256:" + "1" * 64},
            overrides={PROD: base_image},
            on_line=lines.append,
        )
        assert built.overrides == {PROD: base_image}
        labels = engine.labels(ref)
        assert json.loads(labels[build.BASE_OVERRIDE_LABEL]) == {PROD: base_image}
        assert labels[build.SOURCE_HASH_LABEL] == "sha256:" + "1" * 64
        digest = build.push_image(engine, ref)
    assert any(line.startswith("Step 1/") for line in lines)
    # the playbook's own Containerfile still names the production base
    assert (ctx / "Containerfile").read_text().startswith(f"FROM {PROD}\n")
    # the digest the push reported is the one the registry serves, with the labels
    config = Config(root=tmp_path, registry=registry.host)
    with RegistryClient(config) as client:
        published = published_image(client, ref)
        desc = client.resolve(ref)
    assert desc is not None
    assert published is not None
    assert (published.digest, desc.digest) == (digest, digest)
    assert published.source_hash == "sha256:" + "1" * 64


def test_dockerignore_keeps_files_out_of_the_image(
    docker_engine: str, base_image: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    ctx = _context(
        tmp_path / "ctx",
        # the build fails if an ignored file made it into the context
        f"FROM {base_image}\nCOPY . /src/\nRUN test -f /src/keep.sh && test ! -e /src/secret.env "
        "&& test ! -e /src/docs\n",
        {
            "keep.sh": "x",
            "secret.env": "x",
            "docs/a.md": "x",
            ".dockerignore": "secret.env\ndocs\n",
        },
    )
    with build.Engine(docker_engine) as engine:
        engine.build(ctx, tag=f"{registry.host}/build-test/ignore:1")


def test_failed_build_names_the_step_and_shows_the_last_lines(
    docker_engine: str, base_image: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    ctx = _context(
        tmp_path / "ctx",
        f"FROM {base_image}\nRUN echo preparing\n"
        "RUN echo about to fail && echo 'kubectl: not found' >&2 && exit 3\nRUN echo never\n",
    )
    with build.Engine(docker_engine) as engine, pytest.raises(BuildError) as info:
        engine.build(ctx, tag=f"{registry.host}/build-test/fails:1")
    message = str(info.value)
    assert "failed at Step 3/4 : RUN echo about to fail" in message
    assert "returned a non-zero code: 3" in message
    assert "kubectl: not found" in message  # the output tail
    assert "Traceback" not in message
    assert "never" not in message


@pytest.mark.parametrize("target", ["ghcr.io/org/images/x:1", "10.1.2.3:5000/images/x:1"])
def test_stand_in_build_is_refused_for_a_real_registry(
    docker_engine: str, base_image: str, registry: LocalRegistry, tmp_path: Path, target: str
) -> None:
    ctx = _context(tmp_path / "ctx", f"FROM {PROD}\nUSER 65532:65532\n")
    with build.Engine(docker_engine) as engine:
        # up front: the build does not even start
        with pytest.raises(build.StandInRefusedError, match="base-image stand-in"):
            build.build_playbook_image(
                engine,
                ctx,
                containerfile="Containerfile",
                ref=target,
                labels={},
                overrides={PROD: base_image},
            )
        # and an image that carries the label can't be pushed there, however it was tagged
        local = f"{registry.host}/build-test/labelled:1"
        engine.build(ctx, tag=local, overrides={PROD: base_image})
        engine.tag(local, target)
        with pytest.raises(build.StandInRefusedError):
            build.push_image(engine, target)


def test_push_to_an_unreachable_registry_is_a_clear_error(
    docker_engine: str, base_image: str, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ref = f"127.0.0.1:{port}/build-test/nowhere:1"
    with build.Engine(docker_engine) as engine:
        engine.tag(base_image, ref)
        with pytest.raises(BuildError, match="connection refused") as info:
            engine.push(ref, retries=1)
    assert "Traceback" not in str(info.value)


def test_no_engine_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="cannot reach a Docker engine at unix://") as info:
        build.Engine(f"unix://{tmp_path}/none.sock")
    assert "DOCKER_HOST" in str(info.value)


def test_stand_in_through_an_arg_default(
    docker_engine: str, base_image: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    ctx = _context(tmp_path / "ctx", f"ARG BASE={PROD}\nFROM ${{BASE}}\nRUN test -x /bin/sh\n")
    with build.Engine(docker_engine) as engine:
        built = engine.build(
            ctx, tag=f"{registry.host}/build-test/arg:1", overrides={PROD: base_image}
        )
    assert built.overrides == {PROD: base_image}
    assert build.BASE_OVERRIDE_LABEL in built.labels
