"""verify against a real registry: bundles at their digests, their Pipelines, their images."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playbookctl.bundle import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_HASH,
    ANNOTATION_VERSION,
    build_bundle,
    push_bundle,
)
from playbookctl.cli import main
from playbookctl.config import Config
from playbookctl.oci import RegistryClient
from playbookctl.verify import verify
from playbookctl_dev.registry import LocalRegistry
from tests.unit.test_verify import ACTION_TYPE, kustomization, registration

pytestmark = pytest.mark.integration

SOURCE_HASH = "sha256:" + "f" * 64


def pipeline(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {"name": "workflow"},
        "spec": {
            "params": [
                {"name": "TARGET_RESOURCE_NAME", "type": "string"},
                {"name": "TARGET_RESOURCE", "type": "string"},
            ],
            "tasks": [
                {
                    "name": "restart",
                    "params": [{"name": "NAME", "value": "$(params.TARGET_RESOURCE_NAME)"}],
                    "taskSpec": {
                        "params": [{"name": "NAME", "type": "string"}],
                        "steps": [
                            {
                                "name": "run",
                                "image": image,
                                "env": [{"name": "NAME", "value": "$(params.NAME)"}],
                                "script": 'echo "$NAME"\n',
                            }
                        ],
                    },
                }
            ],
        },
    }


class World:
    """A repository whose one registration points at a bundle pushed to the real registry."""

    def __init__(self, root: Path, registry: LocalRegistry, client: RegistryClient) -> None:
        self.root = root
        self.host = registry.host
        self.client = client
        self.prefix = f"{self.host}/verify-{uuid.uuid4().hex[:8]}"
        image = build_bundle(
            [
                {
                    "apiVersion": "tekton.dev/v1",
                    "kind": "Task",
                    "metadata": {"name": "img"},
                    "spec": {"steps": [{"name": "s", "image": "x"}]},
                }
            ],
            {},
        )
        self.image = f"{self.prefix}/images/restart:1.0.0@{image.digest}"
        push_bundle(client, self.image.split("@")[0], image)
        space = self.prefix.split("/", 1)[1]
        self.config = Config(
            root=root,
            registry=self.host,
            image_repo=f"{space}/images",
            bundle_repo=f"{space}/bundles",
        )

    def publish(
        self, objects: list[dict[str, Any]], version: str = "1.0.0", tag: str = "1.0.0"
    ) -> str:
        bundle = build_bundle(
            objects,
            {
                ANNOTATION_VERSION: version,
                ANNOTATION_SOURCE_HASH: SOURCE_HASH,
                ANNOTATION_SOURCE: "https://github.com/acme/playbooks",
                ANNOTATION_REVISION: "a" * 40,
            },
        )
        ref = f"{self.prefix}/bundles/restart:{tag}"
        push_bundle(self.client, ref, bundle)
        return f"{ref}@{bundle.digest}"

    def register(self, bundle: str) -> None:
        files = {
            "action-types/restart-deployment.yaml": ACTION_TYPE,
            "workflows/restart.yaml": registration(bundle=bundle),
            "kustomization.yaml": kustomization(
                "action-types/restart-deployment.yaml", "workflows/restart.yaml"
            ),
        }
        for rel, text in files.items():
            path = self.root / "registry" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def verify(self) -> list[tuple[str, str]]:
        report = verify(self.config, self.client)
        return [(f.rule, f.severity.value) for f in report.findings]


@pytest.fixture
def world(registry: LocalRegistry, tmp_path: Path) -> Iterator[World]:
    with RegistryClient(Config(root=tmp_path, registry=registry.host)) as client:
        yield World(tmp_path, registry, client)


def test_good_registration(world: World) -> None:
    world.register(world.publish([pipeline(world.image)]))
    report = verify(world.config, world.client)
    assert report.findings == []
    assert (report.bundles_checked, report.images_checked) == (1, 1)


def test_bundle_not_in_registry(world: World) -> None:
    ref = world.publish([pipeline(world.image)])
    world.register(ref.rsplit(":", 1)[0] + ":" + "0" * 64)  # same repo, another digest
    assert world.verify() == [("bundle.missing", "error")]


def test_image_missing(world: World) -> None:
    missing = world.image.rsplit(":", 1)[0] + ":" + "1" * 64
    world.register(world.publish([pipeline(missing)]))
    assert world.verify() == [("verify.image-missing", "error")]


def test_image_not_pinned(world: World) -> None:
    world.register(world.publish([pipeline("playbook://self")]))
    assert world.verify() == [("verify.image-pinned", "error")]


def test_invalid_pipeline(world: World) -> None:
    bad = pipeline(world.image)
    bad["spec"]["tasks"].append(copy.deepcopy(bad["spec"]["tasks"][0]))  # duplicate task name
    del bad["spec"]["params"][0]  # the required parameter is not declared
    world.register(world.publish([bad]))
    rules = world.verify()
    assert ("playbook.param-missing", "error") in rules
    assert any(r.startswith("tekton.") for r, _ in rules)
    assert {r for r, _ in rules} <= {"playbook.param-missing"} | {
        r for r, _ in rules if r.startswith("tekton.")
    }


def test_no_workflow_pipeline(world: World) -> None:
    other = pipeline(world.image)
    other["metadata"]["name"] = "other"
    world.register(world.publish([other]))
    assert world.verify() == [("bundle.no-workflow", "error")]


def test_provenance_and_moved_tag(world: World) -> None:
    world.register(world.publish([pipeline(world.image)], version="9.9.9"))
    assert world.verify() == [("verify.provenance", "error")]
    # overwrite the tag with other content: the pinned digest still works, but the tag moved:
    # published tags are immutable, so verify fails (exit 1)
    first = world.publish([pipeline(world.image)])
    world.register(first)
    changed = pipeline(world.image)
    changed["spec"]["tasks"][0]["name"] = "restart-again"
    world.publish([changed])
    assert world.verify() == [("verify.tag-moved", "error")]


def test_unreachable_registry(world: World) -> None:
    world.config = world.config.with_overrides(registry="127.0.0.1:1")
    world.register(f"{world.config.bundle_ref('restart')}:1.0.0@sha256:" + "2" * 64)
    assert world.verify() == [("verify.registry", "error")]


def test_a_bundle_outside_the_configured_repository_is_not_ours(world: World) -> None:
    """A bundle not where this repository's release publishes (`<registry>/<bundle-repo>/
    <name>:<version>`) is not trusted, and not fetched: the one finding says where it is."""
    ref = world.publish([pipeline(world.image)])
    world.register(ref.replace("/bundles/restart:", "/other/restart:"))
    assert world.verify() == [("verify.location", "error")]


def test_cli(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.register(world.publish([pipeline(world.image)]))
    args = ["-C", str(world.root), "verify", "--registry", world.host]
    args += ["--image-repo", world.config.image_repo, "--bundle-repo", world.config.bundle_repo]
    assert main(args) == 0
    assert capsys.readouterr().out == "verified 1 registration(s), 1 bundle(s), 1 image(s)\n"
    world.register(world.publish([pipeline(world.image.rsplit(":", 1)[0] + ":" + "3" * 64)]))
    assert main([*args, "--format", "github"]) == 1
    assert "::error file=registry/workflows/restart.yaml,line=27" in capsys.readouterr().out
