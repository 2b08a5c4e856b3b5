"""Settings: `[tool.playbookctl]` in pyproject.toml, then PLAYBOOKCTL_* variables, then flags.

Every setting and its default is listed in DEFAULTS (and documented in the README); the project's
own pyproject.toml repeats them so a reader sees them in one place.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from playbookctl.errors import ConfigError


@dataclass(frozen=True)
class Config:
    root: Path
    registry: str = "ghcr.io"
    image_repo: str = "kubernaut-playbooks/images"
    bundle_repo: str = "kubernaut-playbooks/bundles"
    insecure_registries: tuple[str, ...] = ()
    placeholder: str = "playbook://self"
    workflow_namespace: str = "kubernaut-system"
    run_namespace: str = "kubernaut-workflows"
    max_file_bytes: int = 1024 * 1024
    jobs: int = 4
    source_repository: str = ""
    # Test and demo environments stand a local image in for a base image (FROM a@sha256:x -> y).
    # Builds made with an override are labelled as such and can never be published as a release
    # unless the registry is a loopback one (see build.py).
    base_image_overrides: dict[str, str] = field(default_factory=dict)
    git_author_name: str = "playbookctl release"
    git_author_email: str = "playbookctl@users.noreply.github.com"
    push_retries: int = 5
    registry_timeout: float = 10.0
    registry_retries: int = 4

    @property
    def playbooks_dir(self) -> Path:
        return self.root / "playbooks"

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    @property
    def action_types_dir(self) -> Path:
        return self.registry_dir / "action-types"

    def with_overrides(self, **changes: Any) -> Config:
        clean = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **clean) if clean else self

    def image_ref(self, name: str) -> str:
        return f"{self.registry}/{self.image_repo}/{name}"

    def bundle_ref(self, name: str) -> str:
        return f"{self.registry}/{self.bundle_repo}/{name}"


def _key(name: str) -> str:
    return name.replace("_", "-")


def _coerce(name: str, raw: Any, default: Any, origin: str) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(raw, str):
                return raw.strip().lower() in {"1", "true", "yes", "on"}
            return bool(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            if isinstance(raw, str):
                return tuple(p.strip() for p in raw.split(",") if p.strip())
            return tuple(str(p) for p in raw)
        if isinstance(default, dict):
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, dict):
                raise ValueError("expected a table / JSON object")
            return {str(k): str(v) for k, v in value.items()}
        return str(raw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{origin}: invalid value for {_key(name)!r}: {exc}") from None


def find_root(start: Path | None = None) -> Path:
    """The nearest directory upwards holding a pyproject.toml with [tool.playbookctl], or cwd."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        py = candidate / "pyproject.toml"
        if py.is_file():
            try:
                if "playbookctl" in tomllib.loads(py.read_text("utf-8")).get("tool", {}):
                    return candidate
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
                continue
    return here


def load_config(root: Path | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ) if env is None else env
    if root is None:
        root = Path(env["PLAYBOOKCTL_ROOT"]) if env.get("PLAYBOOKCTL_ROOT") else find_root()
    root = root.resolve()
    table: dict[str, Any] = {}
    py = root / "pyproject.toml"
    if py.is_file():
        try:
            table = tomllib.loads(py.read_text("utf-8")).get("tool", {}).get("playbookctl", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{py}: {exc}") from None
    known = {_key(f.name): f for f in fields(Config) if f.name != "root"}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{py}: unknown [tool.playbookctl] setting(s): {', '.join(unknown)}")
    base = Config(root=root)
    values: dict[str, Any] = {}
    for key, f in known.items():
        default = getattr(base, f.name)
        if key in table:
            values[f.name] = _coerce(f.name, table[key], default, str(py))
        env_name = "PLAYBOOKCTL_" + f.name.upper()
        if env_name in env:
            values[f.name] = _coerce(f.name, env[env_name], default, env_name)
    return replace(base, **values)
