"""The publish result: what `publish --format json` prints and `register` consumes.

Kept in its own module so the publish and register stages agree on one shape. A result file may
come from several parallel publish jobs; `read_results` merges them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from playbookctl.errors import FatalError

SCHEMA_VERSION = 1


class Action(StrEnum):
    BUILT = "built"  # image built and pushed
    PUSHED = "pushed"  # bundle pushed
    REUSED = "reused"  # version already published with this source hash: nothing written
    REFUSED = "refused"  # version already published with other content: bump the version
    FAILED = "failed"
    DRY_RUN = "dry-run"
    SKIPPED = "skipped"  # not attempted (e.g. lint errors, or an earlier stage failed)


@dataclass
class Artifact:
    repository: str  # registry/repo/name, no tag
    tag: str
    digest: str | None
    action: Action
    # Images: the platforms of the index (os/arch[/variant]); empty for bundles.
    platforms: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """repository:tag@digest, or repository:tag before a digest is known."""
        base = f"{self.repository}:{self.tag}"
        return f"{base}@{self.digest}" if self.digest else base


@dataclass
class PublishResult:
    name: str
    version: str
    source_hash: str
    image: Artifact | None
    bundle: Artifact | None
    status: Action
    commit: str = ""
    source_repository: str = ""
    error: str | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (Action.PUSHED, Action.REUSED, Action.BUILT)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        for key in ("image", "bundle"):
            art = getattr(self, key)
            if art is not None:
                data[key] = {
                    "repository": art.repository,
                    "tag": art.tag,
                    "digest": art.digest,
                    "action": art.action.value,
                    "ref": art.ref,
                    "platforms": list(art.platforms),
                }
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublishResult:
        def artifact(raw: Any) -> Artifact | None:
            if raw is None:
                return None
            return Artifact(
                repository=str(raw["repository"]),
                tag=str(raw["tag"]),
                digest=raw.get("digest"),
                action=Action(raw["action"]),
                platforms=[str(p) for p in raw.get("platforms") or []],
            )

        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            source_hash=str(data["source_hash"]),
            image=artifact(data.get("image")),
            bundle=artifact(data.get("bundle")),
            status=Action(data["status"]),
            commit=str(data.get("commit", "")),
            source_repository=str(data.get("source_repository", "")),
            error=data.get("error"),
            messages=list(data.get("messages", [])),
        )


def dump_results(results: list[PublishResult]) -> str:
    payload = {"schema": SCHEMA_VERSION, "results": [r.to_json() for r in results]}
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _parse(payload: Any) -> list[PublishResult]:
    """The results of one file's payload; a ValueError says, in words, what is wrong."""
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise ValueError('expected a JSON object {"schema": 1, "results": [...]}')
    if payload.get("schema") != SCHEMA_VERSION:
        raise ValueError(
            f"unsupported schema {payload.get('schema')!r} (expected {SCHEMA_VERSION})"
        )
    out = []
    for i, raw in enumerate(payload["results"]):
        where = f"results[{i}]"
        try:
            if not isinstance(raw, dict):
                raise ValueError("expected an object")
            r = PublishResult.from_json(raw)
        except KeyError as exc:
            raise ValueError(f"{where}: missing {exc.args[0]!r}") from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        for kind, art in (("image", r.image), ("bundle", r.bundle)):
            # The digest ends up in a registration Argo CD applies: only a real one may.
            if art is not None and art.digest is not None and not _DIGEST.fullmatch(art.digest):
                raise ValueError(
                    f"{where} ({r.name}): {kind} digest {art.digest!r} is not sha256:<64 hex>"
                )
        out.append(r)
    return out


def read_results(paths: list[Path]) -> list[PublishResult]:
    """Read and merge result files (a file, or a directory of *.json files from parallel jobs)."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.rglob("*.json")) if p.is_dir() else [p])
    merged: dict[str, PublishResult] = {}
    seen_in: dict[str, Path] = {}
    for f in files:
        try:
            items = _parse(json.loads(f.read_text("utf-8")))
        except OSError as exc:
            raise FatalError(f"{f}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise FatalError(
                f"{f}: not a publish result file: not valid UTF-8 (byte {exc.start})"
            ) from None
        except json.JSONDecodeError as exc:
            raise FatalError(
                f"{f}: not a publish result file: invalid JSON at line {exc.lineno} column "
                f"{exc.colno}: {exc.msg}"
            ) from None
        except ValueError as exc:
            raise FatalError(f"{f}: not a publish result file: {exc}") from None
        for r in items:
            prev = merged.get(r.name)
            if prev is not None and (prev.version, prev.bundle and prev.bundle.digest) != (
                r.version,
                r.bundle and r.bundle.digest,
            ):
                raise FatalError(
                    f"{f}: conflicting results for {r.name}: {_describe(r)} here, "
                    f"{_describe(prev)} in {seen_in[r.name]}"
                )
            merged[r.name] = r
            seen_in[r.name] = f
    return [merged[k] for k in sorted(merged)]


def _describe(r: PublishResult) -> str:
    digest = r.bundle.digest if r.bundle is not None else None
    return f"{r.version} (bundle {digest or 'none'})"
