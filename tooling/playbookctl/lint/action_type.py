"""`action-type.*` rules: the ActionType resources of registry/action-types/ (contract section 3).

Structure is checked by schemas/actiontype.schema.json; the rules here add the namespace, the
Kubernetes name of the object, the Argo CD sync wave, and uniqueness across the directory (the
cluster's webhook looks ActionTypes up by spec.name, so two with one name would make a workflow's
reference ambiguous).

- action-type.placeholder-text (warning): the scaffold's "TODO:" descriptions.
- action-type.sync-wave: `argocd.argoproj.io/sync-wave: "-2"`. Argo CD applies lower waves first
  and prunes in reverse, so an ActionType exists before the RBAC (-1) and workflows (0) naming it
  and outlives them on a prune. `playbookctl register` refuses a registry without it, through this
  same rule (register.py calls `load_action_types`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from playbookctl.config import Config
from playbookctl.findings import Finding, Severity
from playbookctl.lint.schema import schema_findings
from playbookctl.load import Document, YamlPath, load_file, read_text_file

KIND = "ActionType"
SCHEMA = "actiontype"
DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_SUBDOMAIN_MAX = 253
SUFFIXES = (".yaml", ".yml")
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
PLACEHOLDER_PREFIX = "TODO:"  # what `playbookctl new` writes for the author to replace
WAVE_ACTION_TYPE = "-2"

_RULES: tuple[tuple[YamlPath, str], ...] = (
    (("apiVersion",), "action-type.api-version"),
    (("kind",), "action-type.kind"),
    (("status",), "action-type.status"),
    (("metadata", "name"), "action-type.metadata-name"),
    (("metadata", "namespace"), "action-type.namespace"),
    (("metadata",), "action-type.metadata"),
    (("spec", "name"), "action-type.name"),
    (("spec", "description"), "action-type.description"),
)


def rule_for(path: YamlPath, validator: str) -> str:
    if validator == "additionalProperties" and path != ("status",):
        return "action-type.unknown-field"
    for prefix, rule in _RULES:
        if path[: len(prefix)] == prefix:
            return rule
    return "action-type.schema"


def _unknown_message(path: YamlPath, key: str, known: list[str]) -> str | None:
    if path == ("status",):
        return "status is written by the cluster; a manifest never carries it"
    return None


def check_action_type(doc: Document, *, namespace: str = "kubernaut-system") -> list[Finding]:
    """Every `action-type.*` finding for one ActionType document."""
    out: list[Finding] = []
    name = doc.get(("metadata", "name"))
    if isinstance(name, str) and (
        len(name) > DNS_SUBDOMAIN_MAX or not DNS_SUBDOMAIN_RE.match(name)
    ):
        out.append(
            doc.finding(
                "action-type.metadata-name",
                ("metadata", "name"),
                f"metadata.name {name!r} must be a DNS-1123 subdomain: lower-case "
                "letters, digits, '-' and '.', starting and ending alphanumeric",
            )
        )
    elif isinstance(doc.data, dict) and doc.data.get("kind") == KIND:
        out.extend(_kebab_names(doc, name))
    ns = doc.get(("metadata", "namespace"))
    if isinstance(ns, str) and ns != namespace:
        out.append(
            doc.finding(
                "action-type.namespace",
                ("metadata", "namespace"),
                f"metadata.namespace must be {namespace!r} (the webhook looks for "
                f"ActionTypes beside the workflows), not {ns!r}",
            )
        )
    if isinstance(doc.data, dict) and doc.data.get("kind") == KIND:
        out.extend(_sync_wave(doc))
        out.extend(_placeholders(doc))
    return schema_findings(doc, SCHEMA, rule_for, unknown_message=_unknown_message) + out


def kebab_case(pascal: str) -> str:
    """ScaleDown -> scale-down, HTTPRestart -> http-restart: ActionType file and object names."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", pascal)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", s)
    return s.lower()


_PASCAL = re.compile(r"[A-Z][A-Za-z0-9]*\Z")


def _kebab_names(doc: Document, name: object) -> list[Finding]:
    """action-type.metadata-name beyond DNS validity: metadata.name is the kebab-case of
    spec.name (RollbackDeployment -> rollback-deployment), so a typo in either is caught
    before the cluster holds two names for one action. A spec.name that is not PascalCase is
    action-type.name's finding, not this one's."""
    spec_name = doc.get(("spec", "name"))
    if not isinstance(spec_name, str) or not _PASCAL.match(spec_name):
        return []
    want = kebab_case(spec_name)
    if len(want) > DNS_SUBDOMAIN_MAX:
        return []  # no metadata.name could be it: action-type.name reports the length
    if not isinstance(name, str) or name == want:
        return []
    return [
        doc.finding(
            "action-type.metadata-name",
            ("metadata", "name"),
            f"metadata.name {name!r} is not {want!r}, the kebab-case of spec.name "
            f"{spec_name!r} (playbookctl new names the file {want}.yaml too)",
        )
    ]


def _placeholders(doc: Document) -> list[Finding]:
    """action-type.placeholder-text (warning): `playbookctl new`'s "TODO:" texts, which
    Kubernaut's agent would read when choosing the kind of action."""
    description = doc.get(("spec", "description"))
    if not isinstance(description, dict):
        return []
    return [
        doc.finding(
            "action-type.placeholder-text",
            ("spec", "description", key),
            f"spec.description.{key} is still the scaffold's placeholder: Kubernaut's agent "
            "reads it; say what this kind of action is for",
            Severity.WARNING,
        )
        for key, value in description.items()
        if isinstance(value, str) and value.lstrip().startswith(PLACEHOLDER_PREFIX)
    ]


def _sync_wave(doc: Document) -> list[Finding]:
    annotations = doc.get(("metadata", "annotations"))
    wave = annotations.get(SYNC_WAVE) if isinstance(annotations, dict) else None
    if wave == WAVE_ACTION_TYPE:
        return []
    if isinstance(annotations, dict) and SYNC_WAVE in annotations:
        path: YamlPath = ("metadata", "annotations", SYNC_WAVE)
    elif isinstance(annotations, dict):
        path = ("metadata", "annotations")
    else:
        path = ("metadata",)
    found = "no such annotation" if wave is None else f"found {wave!r}"
    return [
        doc.finding(
            "action-type.sync-wave",
            path,
            f'ActionType must carry the annotation {SYNC_WAVE}: "{WAVE_ACTION_TYPE}" (Argo CD '
            "applies it before the RBAC and workflows naming it, and prunes it after them); "
            f"{found}",
            at_key=wave is None,
        )
    ]


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def action_type_files(config: Config) -> list[Path]:
    base = config.action_types_dir
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_file() and p.suffix in SUFFIXES)


def misplaced_action_type_files(config: Config) -> list[Path]:
    """YAML files in subdirectories of registry/action-types/. Only the files directly in it
    are ActionTypes: register lists those in registry/kustomization.yaml, and Argo CD syncs
    nothing else, so one nested deeper would never reach the cluster (action-type.location)."""
    base = config.action_types_dir
    if not base.is_dir():
        return []
    found: list[Path] = []
    for where, dirs, files in os.walk(base):  # symbolic links to directories are not followed
        dirs.sort()
        if Path(where) != base:
            found += [Path(where) / f for f in sorted(files) if f.endswith(SUFFIXES)]
    return found


def _misplaced(config: Config, path: Path, docs: list[Document]) -> Finding:
    names = [d.get(("spec", "name")) for d in docs if isinstance(d.data, dict)]
    name = next((n for n in names if isinstance(n, str) and n), None)
    where = f"{kebab_case(name)}.yaml" if name else "<kebab-case of spec.name>.yaml"
    base = _display(config.action_types_dir, config.root)
    return Finding(
        "action-type.location",
        Severity.ERROR,
        _display(path, config.root),
        1,
        1,
        f"an ActionType file in a subdirectory of {base}/ is not listed in "
        f"registry/kustomization.yaml (register lists only the files directly in {base}/), "
        f"so Argo CD never syncs it: move it to {base}/{where}",
    )


def load_action_types(config: Config) -> tuple[dict[str, Document], list[Finding]]:
    """ActionTypes of registry/action-types/*.yaml by spec.name, with every finding about them:
    load problems, check_action_type's findings, and duplicates across the directory (callers
    need not check these documents again)."""
    found, findings, _unreadable = read_action_types(config)
    return found, findings


class Declared(Mapping[str, Document]):
    """What a workflow's spec.actionType is held against: the ActionTypes that loaded, by
    spec.name (the mapping), and the files of which some document did not load or is not a
    mapping (`unreadable`: file as shown -> its text, None when it is not text). A name one of
    those files may declare is neither found nor missing until it loads (`undecided`): its
    load finding is what is said. A file may declare a name when the file is named for it
    (`playbookctl new` writes ScaleUp to scale-up.yaml) or the name is in its text as a word (a
    double-quoted escape could spell it otherwise: a text with a backslash may declare
    anything, and so may one that is not text); any other name is checked as usual."""

    def __init__(self, loaded: Mapping[str, Document], unreadable: Mapping[str, str | None]):
        self.loaded = dict(loaded)
        self.unreadable = dict(unreadable)

    def __getitem__(self, name: str) -> Document:
        return self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.loaded)

    def __len__(self) -> int:
        return len(self.loaded)

    def undecided(self, name: str) -> list[str]:
        """The files that did not load and may declare `name` (none for a loaded name)."""
        if name in self.loaded:
            return []
        word = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")
        own = kebab_case(name)
        return sorted(
            file
            for file, text in self.unreadable.items()
            if PurePosixPath(file).stem == own or text is None or "\\" in text or word.search(text)
        )


def declared(config: Config) -> tuple[Declared, list[Finding]]:
    """read_action_types as a Declared, with the findings."""
    found, findings, unreadable = read_action_types(config)
    return Declared(found, unreadable), findings


def read_action_types(
    config: Config,
) -> tuple[dict[str, Document], list[Finding], dict[str, str | None]]:
    """load_action_types, and the files (as shown in findings) of which some document did not
    load or is not a mapping, with their text (None when not text): an ActionType may be
    declared there, so whether a name it may hold is missing cannot be said while they
    stand (Declared.undecided)."""
    found: dict[str, Document] = {}
    by_object: dict[str, Document] = {}
    findings: list[Finding] = []
    unreadable: dict[str, str | None] = {}

    def hold(path: Path, file: str) -> None:
        text, _problems = read_text_file(path, file, config.max_file_bytes)
        unreadable[file] = text

    for path in misplaced_action_type_files(config):
        loaded = load_file(path, _display(path, config.root), config.max_file_bytes)
        findings.append(_misplaced(config, path, loaded.documents))
    for path in action_type_files(config):
        result = load_file(path, _display(path, config.root), config.max_file_bytes)
        findings.extend(result.findings)
        if not result.complete:
            hold(path, result.file)
        for doc in result.documents:
            findings.extend(check_action_type(doc, namespace=config.workflow_namespace))
            if not isinstance(doc.data, dict) and result.file not in unreadable:
                hold(path, result.file)
            if not isinstance(doc.data, dict) or doc.data.get("kind") != KIND:
                continue
            name = doc.get(("spec", "name"))
            if isinstance(name, str):
                if name in found:
                    first = found[name]
                    findings.append(
                        doc.finding(
                            "action-type.duplicate",
                            ("spec", "name"),
                            f"spec.name {name!r} is already defined at {first.file}:"
                            f"{first.pos(('spec', 'name')).line}",
                        )
                    )
                else:
                    found[name] = doc
            obj = doc.get(("metadata", "name"))
            if isinstance(obj, str):
                if obj in by_object:
                    first = by_object[obj]
                    findings.append(
                        doc.finding(
                            "action-type.duplicate",
                            ("metadata", "name"),
                            f"metadata.name {obj!r} is already used at {first.file}:"
                            f"{first.pos(('metadata', 'name')).line}; one object would "
                            "overwrite the other",
                        )
                    )
                else:
                    by_object[obj] = doc
    return found, findings, unreadable
