"""Settings: `[tool.playbookctl]` in pyproject.toml, then PLAYBOOKCTL_* variables, then flags.

Every setting and its default is listed in DEFAULTS (and documented in the README); the project's
own pyproject.toml repeats them so a reader sees them in one place.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from playbookctl.errors import ConfigError, UsageError

# The Tekton Pipelines release whose admission validation `lint` reproduces (v1.14.x, checked
# against v1.14.1's own verdicts); behaviour of later releases is not followed. The setting
# `tekton-version` names it explicitly and refuses any release we do not reproduce.
TEKTON_VERSION = "1.14"
SUPPORTED_TEKTON_VERSIONS = (TEKTON_VERSION,)
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")
ASSEMBLE_MODES = ("auto", "never")
SMOKE_MODES = ("auto", "required", "off")  # the `smoke` setting (smoke.py)
BUNDLE_LAYOUTS = ("artifact", "tkn")  # the `bundle-layout` setting (bundle.LAYOUTS)
# A playbook's name: its directory's, a DNS label (lower case, digits, '-').
PLAYBOOK_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# os/architecture[/variant], as Docker and the OCI image index spell a platform.
PLATFORM_RE = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")


@dataclass(frozen=True)
class Config:
    root: Path
    registry: str = "ghcr.io"
    image_repo: str = "kubernaut-playbooks/images"
    bundle_repo: str = "kubernaut-playbooks/bundles"
    insecure_registries: tuple[str, ...] = ()
    # docker's per-registry trust: <dir>/<host[:port]>/*.crt CAs, client.cert + client.key.
    registry_certs_dir: str = "/etc/docker/certs.d"
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
    # Seconds for one registry request, its whole answer read (a drip-fed body included), and
    # for one registry operation with its retries; an operation never outlasts registry-deadline.
    registry_timeout: float = 10.0
    registry_deadline: float = 25.0
    registry_retries: int = 4
    # Seconds an engine build and an engine push (its retries included) may take in all: the
    # engine itself has no limit, so a registry that stalls an upload would hang a release.
    build_timeout: float = 1800.0
    push_timeout: float = 600.0
    # Seconds an engine push may go without progress (no layer bytes sent, no layer finished)
    # before it is stopped, naming the layer. The engine reports progress every 512 kB (or 1 %
    # of a layer) as it hands bytes to the kernel: the last report of a layer comes while the
    # socket's send buffer (up to 4 MiB) still drains, so 60 s takes an uplink of ~100 kB/s.
    push_stall_timeout: float = 60.0
    # A playbook directory's total size (its files' bytes): more is a lint error (playbook.size).
    max_playbook_bytes: int = 64 * 1024 * 1024
    tekton_version: str = TEKTON_VERSION
    # Every image is built for each of these and pushed as one image index (platforms.py); the
    # list is part of the source hash, so changing it needs a version bump.
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS
    # auto: a RUN-less Containerfile is assembled without an engine (assemble.py), anything
    # else is built by the engine; never: the engine builds every image.
    assemble: str = "auto"
    # RUN steps of engine builds get no network at all ("none"); otherwise they get the
    # engine's default network (a bridge of its own), never the host's.
    hermetic: bool = False
    # Playbooks whose engine builds are hermetic whatever `hermetic` says (by name): set in the
    # repository's pyproject, not in the playbook's files, whose bytes are its source hash.
    hermetic_playbooks: tuple[str, ...] = ()
    # [tool.playbookctl.lint]: rules disabled, and severities changed, by rule id (checked
    # against the catalogue by lint/policy.py when lint runs).
    # Kubernaut runs as a fleet hub (signals carry a cluster ID): its catalog then excludes a
    # workflow without spec.labels.cluster from a fleet signal's selection (lint warns).
    fleet: bool = False
    # Every built image is started before its push, per platform (smoke.py): auto (where this
    # machine can execute the platform; others are checked in the image and reported as not
    # started), required (a platform that cannot be started fails), off.
    smoke: str = "auto"
    # How bundles are laid out (bundle.py): artifact, an OCI artifact with the empty config
    # (one config for every bundle, mounted, not uploaded); tkn, `tkn bundle push`'s layout.
    # A registry that refuses the artifact gets tkn's layout for the rest of the run.
    bundle_layout: str = "artifact"
    lint_disable: tuple[str, ...] = ()
    lint_severity: dict[str, str] = field(default_factory=dict)
    # Where lint_disable and lint_severity came from ("disable"/"severity" -> the pyproject
    # table or the environment variable), so a bad rule id blames the right place.
    lint_origins: dict[str, str] = field(default_factory=dict)

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
        """A copy with the non-None changes (command-line flags); a bad value is a usage error
        naming the flag."""
        clean = {k: v for k, v in changes.items() if v is not None}
        for name, value in clean.items():
            problem = setting_problem(name, value)
            if problem:
                flag = _FLAGS.get(name, _key(name))
                shown = ",".join(value) if isinstance(value, tuple) else value
                raise UsageError(f"--{flag} {shown!r}: {problem}")
        return replace(self, **clean) if clean else self

    def is_hermetic(self, name: str) -> bool:
        """The RUN steps of playbook `name`'s engine builds run with no network at all."""
        return self.hermetic or name in self.hermetic_playbooks

    def image_ref(self, name: str) -> str:
        return f"{self.registry}/{self.image_repo}/{name}"

    def bundle_ref(self, name: str) -> str:
        return f"{self.registry}/{self.bundle_repo}/{name}"


# Flags whose name is not the setting's (repeated flags are singular).
_FLAGS = {
    "platforms": "platform",
    "insecure_registries": "insecure-registry",
    "hermetic_playbooks": "hermetic-playbook",
}


def _key(name: str) -> str:
    return name.replace("_", "-")


# Lower bounds a value must meet: 0 jobs would hang publish, a negative timeout or bound makes
# every request or file fail with a confusing message far from its cause.
_MINIMUM: dict[str, tuple[float, str]] = {
    "jobs": (1, "at least 1"),
    "max_file_bytes": (1, "at least 1"),
    "max_playbook_bytes": (1, "at least 1"),
    "push_retries": (0, "0 or more"),
    "registry_retries": (0, "0 or more"),
}


# As Docker parses references (oci.parse_reference): a registry host has a `.` or a `:` or is
# localhost, a repository is lower-case path components. Checked here so a typo is reported
# against the setting, not as an invalid reference deep inside publish.
_HOST_RE = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?"
)
_REPO_RE = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)


def _host_problem(host: str) -> str | None:
    if "://" in host:
        return "a registry is host[:port], without a scheme"
    if not _HOST_RE.fullmatch(host) or not ("." in host or ":" in host or host == "localhost"):
        return "expected host[:port] with a '.' or a port, or localhost (e.g. ghcr.io)"
    return None


def setting_problem(name: str, value: Any) -> str | None:
    """Why value is not a valid setting `name` (a Config field), or None."""
    if name == "registry":
        return _host_problem(value)
    if name == "insecure_registries":
        return next((f"{h!r}: {p}" for h in value if (p := _host_problem(h))), None)
    if name in ("image_repo", "bundle_repo") and not _REPO_RE.fullmatch(value):
        return (
            "expected lower-case path components (letters, digits, '.', '_', '-'), e.g. org/images"
        )
    if name == "jobs" and value < 1:
        return "must be at least 1"
    if isinstance(value, float) and not (math.isfinite(value) and value > 0):
        return "expected a number greater than 0"
    if name == "tekton_version" and value not in SUPPORTED_TEKTON_VERSIONS:
        return (
            f"lint reproduces Tekton {', '.join(SUPPORTED_TEKTON_VERSIONS)} only "
            "(its admission validation, release by release)"
        )
    if name == "platforms":
        return platforms_problem(value)
    if name == "assemble" and value not in ASSEMBLE_MODES:
        return f"expected one of {', '.join(ASSEMBLE_MODES)}"
    if name == "smoke" and value not in SMOKE_MODES:
        return f"expected one of {', '.join(SMOKE_MODES)}"
    if name == "bundle_layout" and value not in BUNDLE_LAYOUTS:
        return f"expected one of {', '.join(BUNDLE_LAYOUTS)}"
    if name == "hermetic_playbooks":
        bad = next((n for n in value if not PLAYBOOK_NAME_RE.match(n) or len(n) > 63), None)
        if bad is not None:
            return f"{bad!r} is not a playbook name (its directory's: lower case, digits, '-')"
    return None


def platforms_problem(value: tuple[str, ...]) -> str | None:
    """Why a platform list is not usable: empty, a malformed entry, a duplicate."""
    if not value:
        return "name at least one platform, e.g. linux/amd64"
    bad = next((p for p in value if not PLATFORM_RE.fullmatch(p)), None)
    if bad is not None:
        return f"{bad!r} is not os/architecture[/variant] (e.g. linux/arm64)"
    dup = next((p for i, p in enumerate(value) if p in value[:i]), None)
    if dup is not None:
        return f"{dup!r} is listed twice"
    return None


def _type_name(raw: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(raw), f"a {type(raw).__name__}"
    )


# The one reading of a boolean environment variable (every PLAYBOOKCTL_* boolean setting and
# PLAYBOOKCTL_NO_CACHE): git's words, any case, blanks around ignored; anything else is an error.
BOOLEAN_WORDS = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "on": True,
    "off": False,
}
BOOLEAN_WORDS_TEXT = "true/false, 1/0, yes/no, on/off"
# Read outside load_config (lint/cache.py), checked here so a typo is an error, not "false".
OTHER_BOOLEAN_VARIABLES = ("PLAYBOOKCTL_NO_CACHE",)


def parse_boolean(raw: str) -> bool:
    """raw as a boolean environment value; ValueError names the accepted words."""
    word = raw.strip().lower()
    if word not in BOOLEAN_WORDS:
        raise ValueError(f"expected one of {BOOLEAN_WORDS_TEXT}, got {raw!r}")
    return BOOLEAN_WORDS[word]


def _convert(raw: Any, default: Any, from_env: bool) -> Any:
    """raw as the type of default; a TOML value must already have that type, an env one parses."""
    if isinstance(default, bool):  # before int: a bool is an int to Python
        if from_env:
            return parse_boolean(raw)
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false, got {_type_name(raw)}")
        return raw
    if isinstance(default, int):
        if from_env:
            try:
                return int(raw.strip())
            except ValueError:
                raise ValueError(f"expected an integer, got {raw!r}") from None
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"expected an integer, got {_type_name(raw)}")
        return raw
    if isinstance(default, float):
        if from_env:
            try:
                value = float(raw.strip())
            except ValueError:
                raise ValueError(f"expected a number, got {raw!r}") from None
        elif isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueError(f"expected a number, got {_type_name(raw)}")
        else:
            value = float(raw)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"expected a number greater than 0, got {raw!r}")
        return value
    if isinstance(default, tuple):
        if from_env:
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            raise ValueError("expected an array of strings")
        return tuple(raw)
    if isinstance(default, dict):
        if from_env:
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc})") from None
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise ValueError("expected a JSON object / table mapping strings to strings")
        return dict(raw)
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {_type_name(raw)}")
    return raw


def _coerce(name: str, raw: Any, default: Any, origin: str, *, from_env: bool = False) -> Any:
    try:
        value = _convert(raw, default, from_env)
        if name in _MINIMUM and value < _MINIMUM[name][0]:
            raise ValueError(f"must be {_MINIMUM[name][1]}, got {value!r}")
        problem = setting_problem(name, value)
        if problem:
            raise ValueError(f"{problem}, got {value!r}")
    except ValueError as exc:
        raise ConfigError(f"{origin}: invalid value for {_key(name)!r}: {exc}") from None
    return value


def _read_toml_text(path: Path) -> str:
    # Editors on Windows save a BOM that tomllib refuses as "Invalid statement" at 1:1.
    return path.read_text("utf-8").removeprefix("\ufeff")


def is_repository_root(directory: Path) -> bool:
    """directory holds a pyproject.toml with [tool.playbookctl]: a playbook repository."""
    py = directory / "pyproject.toml"
    if not py.is_file():
        return False
    try:
        tool = tomllib.loads(_read_toml_text(py)).get("tool", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
        return False
    return isinstance(tool, dict) and "playbookctl" in tool


def find_root(start: Path | None = None) -> Path:
    """The nearest directory upwards holding a pyproject.toml with [tool.playbookctl], or cwd."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if is_repository_root(candidate):
            return candidate
    return here


_OWNER_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def github_defaults(config: Config, env: dict[str, str]) -> Config:
    """On GitHub (GITHUB_REPOSITORY=owner/name), images and bundles default to the repository
    owner's packages, `<owner>/kubernaut-playbooks/images` and `.../bundles`: a workflow's token
    can push only to its own owner's packages. A value in pyproject.toml, PLAYBOOKCTL_* or a
    flag still wins (they are applied on top)."""
    owner = env.get("GITHUB_REPOSITORY", "").partition("/")[0]
    if not _OWNER_RE.fullmatch(owner):
        return config
    owner = owner.lower()  # ghcr.io refuses upper-case repository names
    return replace(
        config,
        image_repo=f"{owner}/{config.image_repo}",
        bundle_repo=f"{owner}/{config.bundle_repo}",
    )


def load_config(root: Path | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ) if env is None else env
    if root is None:
        if env.get("PLAYBOOKCTL_ROOT"):
            root = Path(env["PLAYBOOKCTL_ROOT"])
            if not root.is_dir():
                raise ConfigError(f"PLAYBOOKCTL_ROOT: {root} is not a directory")
        else:
            root = find_root()
    elif not root.is_dir():
        raise ConfigError(f"repository root {root} is not a directory")
    root = root.resolve()
    table: Any = {}
    py = root / "pyproject.toml"
    if py.is_file():
        try:
            table = tomllib.loads(_read_toml_text(py)).get("tool", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{py}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{py}: not valid UTF-8 (byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(f"{py}: cannot read: {exc.strerror}") from None
        table = table.get("playbookctl", {}) if isinstance(table, dict) else None
        if not isinstance(table, dict):
            raise ConfigError(f"{py}: [tool.playbookctl] must be a table")
    known = {_key(f.name): f for f in fields(Config) if f.name not in _NOT_FLAT}
    lint_table = table.pop("lint", {})
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"{py}: unknown [tool.playbookctl] setting(s): {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    base = github_defaults(Config(root=root), env)
    values: dict[str, Any] = {}
    for key, f in known.items():
        default = getattr(base, f.name)
        if key in table:
            values[f.name] = _coerce(f.name, table[key], default, str(py))
        env_name = "PLAYBOOKCTL_" + f.name.upper()
        if env_name in env:
            values[f.name] = _coerce(f.name, env[env_name], default, env_name, from_env=True)
    values.update(_lint_settings(lint_table, env, str(py)))
    for variable in OTHER_BOOLEAN_VARIABLES:
        if variable in env:
            try:
                parse_boolean(env[variable])
            except ValueError as exc:
                raise ConfigError(f"{variable}: {exc}") from None
    return replace(base, **values)


_NOT_FLAT = ("root", "lint_disable", "lint_severity", "lint_origins")


def _lint_settings(table: Any, env: dict[str, str], origin: str) -> dict[str, Any]:
    """`[tool.playbookctl.lint]`: disable = [rule, ...], severity = {rule = "error"|"warning"};
    PLAYBOOKCTL_LINT_DISABLE (comma-separated) and PLAYBOOKCTL_LINT_SEVERITY (rule=level,...)
    replace them."""
    where = f"{origin}: [tool.playbookctl.lint]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - {"disable", "severity"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: disable, severity)"
        )
    out: dict[str, Any] = {}
    origins = {"disable": where, "severity": where}
    out["lint_origins"] = origins
    if "disable" in table:
        raw = table["disable"]
        if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
            raise ConfigError(f"{where}: disable must be an array of rule ids")
        out["lint_disable"] = tuple(raw)
    if "severity" in table:
        raw = table["severity"]
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise ConfigError(f'{where}: severity must be a table of rule = "error"|"warning"')
        out["lint_severity"] = dict(raw)
    if "PLAYBOOKCTL_LINT_DISABLE" in env:
        parts = env["PLAYBOOKCTL_LINT_DISABLE"].split(",")
        out["lint_disable"] = tuple(p.strip() for p in parts if p.strip())
        origins["disable"] = "PLAYBOOKCTL_LINT_DISABLE"
    if "PLAYBOOKCTL_LINT_SEVERITY" in env:
        levels: dict[str, str] = {}
        for part in env["PLAYBOOKCTL_LINT_SEVERITY"].split(","):
            if not part.strip():
                continue
            rule, sep, level = part.partition("=")
            if not sep:
                raise ConfigError(
                    f"PLAYBOOKCTL_LINT_SEVERITY: expected rule=error|warning, got {part.strip()!r}"
                )
            levels[rule.strip()] = level.strip()
        out["lint_severity"] = levels
        origins["severity"] = "PLAYBOOKCTL_LINT_SEVERITY"
    return out
