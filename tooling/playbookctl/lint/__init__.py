"""Lint stage: every check over playbooks, registry files and standalone Tekton files.

`lint_paths` decides what each path is, loads it once, runs the rule families over it and
returns the findings deduplicated and sorted:
- load.*         YAML problems (load.py), and `load.kind` for a file of a kind we do not lint;
- workflow.*     RemediationWorkflow rules (lint/workflow.py);
- action-type.*  ActionType rules (lint/action_type.py);
- tekton.*       Tekton's admission validation (lint/tekton), on an authored pipeline.yaml (once,
                 with its positions) or on the standard wrapper rendered from workflow.yaml;
- playbook.*     the playbook's files against each other and the contract (lint/playbook.py);
- script.*       the shell scripts' contract: variables, Tekton syntax, kubectl calls against
                 rbac.yaml (lint/script.py);
- rbac.* / k8s.schema  rbac.yaml against the Argo CD project and the pinned Kubernetes API
                 (lint/rbac.py, lint/k8s.py); built-in objects of registry/ against its schema;
- hadolint.* / shellcheck.*  the external linters, batched over every playbook (lint/external.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from playbookctl.config import Config
from playbookctl.errors import UsageError
from playbookctl.findings import Finding, Severity, in_report_order
from playbookctl.lint import external, k8s, tekton
from playbookctl.lint import rbac as rbac_rules
from playbookctl.lint import script as script_rules
from playbookctl.lint.action_type import action_type_files, check_action_type, declared
from playbookctl.lint.cache import ResultCache, open_cache
from playbookctl.lint.cluster_yaml import reread_findings
from playbookctl.lint.playbook import check_playbook, embedded_scripts, load_containerfile
from playbookctl.lint.policy import LintPolicy
from playbookctl.lint.registration import duplicate_object_findings, with_pending_hint
from playbookctl.lint.workflow import check_workflow
from playbookctl.load import Document, load_file, read_text_file
from playbookctl.playbook import (
    WORKFLOW_FILE,
    Playbook,
    directory_link_problem,
    discover,
    load_playbook,
    name_problem,
    nested_repositories,
    shown_path,
    size_problem,
    source_files,
    special_file_problem,
)
from playbookctl.render import RenderedPipeline, RenderError, render_pipeline

YAML_SUFFIXES = (".yaml", ".yml")
WORKFLOW_KIND = ("kubernaut.ai/v1alpha1", "RemediationWorkflow")
ACTION_TYPE_KIND = ("kubernaut.ai/v1alpha1", "ActionType")


@dataclass
class Targets:
    """What one lint run covers; dicts keep first-seen order and drop repeats."""

    playbooks: dict[Path, None] = field(default_factory=dict)
    registry_files: dict[Path, None] = field(default_factory=dict)
    standalone: dict[Path, str] = field(default_factory=dict)  # path -> name as given
    all_action_types: bool = False


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
    except ValueError:
        return False
    return True


def _yaml_files(directory: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(YAML_SUFFIXES))
    return out


def _whole_repo(config: Config, targets: Targets) -> None:
    for name in discover(config):
        # The parent resolved, not the playbook: a playbook directory that is a symbolic link
        # stays itself, and playbook.directory-link refuses it (its target is not the tree).
        targets.playbooks[config.playbooks_dir.resolve() / name] = None
    if config.registry_dir.is_dir():
        for f in _yaml_files(config.registry_dir):
            targets.registry_files[f.resolve()] = None
    targets.all_action_types = True


def classify(paths: Iterable[Path], config: Config) -> Targets:
    """Sort the given paths into playbooks, registry files and standalone files."""
    targets = Targets()
    given = list(paths)
    if not given:
        _whole_repo(config, targets)
        return targets
    root = config.root.resolve()
    playbooks_dir = config.playbooks_dir.resolve()
    registry_dir = config.registry_dir.resolve()
    for raw in given:
        if not raw.exists():
            if raw.is_symlink():
                raise UsageError(f"broken or looping symbolic link: {raw}")
            raise UsageError(f"no such file or directory: {raw}")
        p = raw.resolve()
        unfollowed = raw.absolute().parent.resolve() / raw.name
        if unfollowed.is_symlink() and unfollowed.parent == playbooks_dir and p.is_dir():
            targets.playbooks[unfollowed] = None  # playbook.directory-link says why not
            continue
        if p.is_dir():
            if p == root:
                _whole_repo(config, targets)
            elif p == playbooks_dir:
                for name in discover(config):
                    targets.playbooks[playbooks_dir / name] = None
            elif p.parent == playbooks_dir or (p / WORKFLOW_FILE).is_file():
                # Outside the repository, findings show the path as given.
                targets.playbooks[p if _inside(p, root) else raw] = None
            elif _inside(p, registry_dir):
                for f in _yaml_files(p):
                    targets.registry_files[f.resolve()] = None
            else:
                targets.standalone[p] = str(raw)
            continue
        if _inside(p, playbooks_dir) and p.parent != playbooks_dir:
            # A file of a playbook (as pre-commit passes them): lint the whole playbook,
            # since its files are checked against each other.
            targets.playbooks[playbooks_dir / p.relative_to(playbooks_dir).parts[0]] = None
        elif _inside(p, registry_dir):
            targets.registry_files[p] = None
        else:
            targets.standalone[p] = _display(raw, root)
    return targets


def lint_playbook(
    directory: Path,
    config: Config,
    action_types: Mapping[str, object] | None,
    *,
    cache: ResultCache | None = None,
) -> tuple[Playbook, list[Finding]]:
    """Every finding of one playbook except the external linters'. cache: where the script
    contract keeps its verdicts (lint/cache.py)."""
    linked = directory_link_problem(directory, config.root)
    if linked:
        # Nothing behind the link is read: it is not the repository's tree.
        pb = Playbook(name=directory.name, dir=directory, root=config.root)
        return pb, [
            Finding("playbook.directory-link", Severity.ERROR, pb.rel(directory), 1, 1, linked)
        ]
    pb = load_playbook(directory, config.root, config.max_file_bytes)
    out = list(pb.load_findings)
    if pb.workflow is not None:
        out.extend(
            check_workflow(
                pb.workflow,
                action_types=action_types,
                expected_name=pb.name,
                authored=True,
                namespace=config.workflow_namespace,
                fleet=config.fleet,
            )
        )
    rendered = None
    # Without pipeline.yaml, the standard wrapper is made from workflow.yaml's parameters: from
    # an unreadable one it would be a guess, and nothing is judged against it.
    if pb.pipeline_path.is_file() or pb.workflow_readable:
        try:
            rendered = render_pipeline(pb, config)
        except RenderError:
            rendered = None  # pipeline.yaml did not load: its load.* findings say why
    if rendered is not None:
        out.extend(tekton.check_document(rendered.document))
    out.extend(check_playbook(pb, rendered, config))
    out.extend(_rbac_api_findings(pb, cache))
    out.extend(_script_findings(pb, rendered, config, cache))
    out.extend(reread_findings([pb.workflow, pb.pipeline, *pb.rbac], out))
    if pb.dir.is_dir():
        files = source_files(pb.dir)
        regular: list[Path] = []  # the files neither finding below refuses already
        for f in files:
            named = name_problem(f, pb.dir)
            if named:
                shown = shown_path(pb.rel(f))
                out.append(Finding("playbook.file-name", Severity.ERROR, shown, 1, 1, named))
                continue
            problem = special_file_problem(f, pb.dir)
            if problem:
                out.append(
                    Finding("playbook.special-file", Severity.ERROR, pb.rel(f), 1, 1, problem)
                )
            else:
                regular.append(f)
        out.extend(_submodule_findings(pb))
        out.extend(_untracked_findings(pb, regular))
        out.extend(_converted_findings(pb, regular))
        too_big = size_problem(pb.dir, files, config.max_playbook_bytes)
        if too_big:
            out.append(
                Finding("playbook.size", Severity.ERROR, pb.rel(too_big[0]), 1, 1, too_big[1])
            )
    return pb, out


def _submodule_findings(pb: Playbook) -> list[Finding]:
    """playbook.submodule: a git repository inside the playbook, one finding each (a
    submodule, or a checkout of its own git would record as one). Images, the source hash and
    a release are made from this repository's objects, which hold a commit id there, not the
    files; `git add` of a file inside cannot change that, so its files get no
    playbook.untracked (source_files leaves them out)."""
    from playbookctl.gitrepo import submodule_problem  # noqa: PLC0415 - git only when needed

    return [
        Finding(
            "playbook.submodule",
            Severity.ERROR,
            pb.rel(nested.path),
            1,
            1,
            submodule_problem(nested.rel, gitlink=nested.gitlink),
        )
        for nested in nested_repositories(pb.dir)
    ]


def _untracked_findings(pb: Playbook, files: list[Path]) -> list[Finding]:
    """playbook.untracked: a file in the playbook that git does not hold and no ignore rule
    covers. Images, the source hash and a release are made from git's objects, so it is in
    none of them, while lint and the author's eyes see it. (A file git ignores is not source:
    source_files leaves it out, and publish says it does.) No git process while every file is
    in the index."""
    from playbookctl.gitrepo import not_in_index  # noqa: PLC0415 - git only when needed

    untracked, _ignored = not_in_index(pb.dir, files)
    return [
        Finding(
            "playbook.untracked",
            Severity.ERROR,
            pb.rel(f),
            1,
            1,
            "git does not hold this file (untracked): images, the source hash and the "
            "release are made from git's objects, so it would be in none of them; "
            f"git add {pb.rel(f)}, or delete it (or ignore it in .gitignore)",
        )
        for f in untracked
    ]


def _converted_findings(pb: Playbook, files: list[Path]) -> list[Finding]:
    """playbook.git-conversion: a file .gitattributes has git convert on checkout (a filter
    such as Git LFS, ident, a working-tree encoding, eol=crlf). Images, the source hash and a
    release are made from git's objects, which hold the other bytes (for Git LFS, a pointer),
    while lint and the author see the checkout's."""
    from playbookctl.gitrepo import converted_files  # noqa: PLC0415 - git only when needed

    out: list[Finding] = []
    for f, what in converted_files(pb.dir, files):
        pointer = " (a Git LFS pointer)" if "filter=lfs" in what else ""
        out.append(
            Finding(
                "playbook.git-conversion",
                Severity.ERROR,
                pb.rel(f),
                1,
                1,
                f"git converts this file on checkout ({what}, from .gitattributes): images, "
                "the source hash and the release are made from git's objects, so they would "
                f"hold what git stores{pointer}, not this file as checked out; store the "
                "playbook's files unconverted (.gitattributes: "
                f"`{pb.rel(pb.dir)}/** -filter -ident -working-tree-encoding -eol`)",
            )
        )
    return out


def _rbac_api_findings(pb: Playbook, cache: ResultCache | None) -> list[Finding]:
    """rbac.yaml against the pinned Kubernetes API (rules and schema); a pure function of the
    file's bytes, so kept in the lint cache with the script contract's verdicts."""
    if not pb.rbac:
        return []
    key = ""
    if cache is not None:
        try:
            key = script_rules.content_key("rbac-api", pb.rbac_path.read_bytes())
        except OSError:
            key = ""
        cached = cache.get(key) if key else None
        if cached is not None:
            return [f._replace(file=pb.rbac[0].file) for f in cached]
    found = rbac_rules.check_api(pb.rbac) + _schema_findings(pb.rbac, pb.rbac_path)
    if cache is not None and key and all(f.file == pb.rbac[0].file for f in found):
        cache.put(key, found)
    return found


def _schema_findings(docs: list[Document], path: Path) -> list[Finding]:
    if not docs:
        return []
    try:
        source: str | None = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        source = None
    out: list[Finding] = []
    for doc in docs:
        out.extend(k8s.schema_findings(doc, source))
    return out


def _script_findings(
    pb: Playbook, rendered: object, config: Config, cache: ResultCache | None
) -> list[Finding]:
    """script.*: each shell script of the playbook against what surrounds it at run time."""
    if not pb.dir.is_dir():
        return []
    scripts = [
        (f, pb.rel(f))
        for f in source_files(pb.dir)
        if special_file_problem(f, pb.dir) is None
        and external.is_shell_script(f)
        and f.stat().st_size <= config.max_file_bytes
    ]
    if not scripts:
        return []
    params = pb.spec.get("parameters") if pb.workflow_readable else None
    names = (
        {
            p["name"]
            for p in (params if isinstance(params, list) else [])
            if isinstance(p, dict) and isinstance(p.get("name"), str)
        }
        if pb.workflow_readable
        else None
    )
    cf = load_containerfile(pb, config.max_file_bytes)
    # What a script may read comes from the step's env (the Pipeline, or the wrapper made from
    # workflow.yaml) and the image's ENV; when either did not load, or is not a Pipeline, every
    # read would look unprovided: script.variable stands back (surroundings) and the file's own
    # finding is reported, not one per variable. So does script.rbac for an unreadable rbac.yaml.
    document = rendered.document if isinstance(rendered, RenderedPipeline) else None
    data = document.data if document is not None else None
    if not isinstance(data, dict) or data.get("kind") != "Pipeline":
        document = None
    env = script_rules.surroundings(
        names,
        document,
        (cf.file, [(i.keyword, i.args, i.line) for i in cf.instructions]) if cf else None,
        pb.rbac if pb.rbac_readable else [],
        pb.rel(pb.rbac_path),
    )
    return script_rules.check_files(scripts, env, cache)


def apply_policy(findings: list[Finding], config: Config, pb: Playbook) -> list[Finding]:
    """findings about one playbook under the configured policy and its suppression comments
    (publish's second gate, on the Pipeline rendered with the pinned image)."""
    sources = {}
    if pb.dir.is_dir():
        sources = {
            pb.rel(f): f for f in source_files(pb.dir) if special_file_problem(f, pb.dir) is None
        }
    policy = LintPolicy.from_settings(
        config.lint_disable, config.lint_severity, config.lint_origins
    )
    return policy.apply(findings, sources)


def _check_document(
    doc: Document, config: Config, action_types: Mapping[str, object] | None, *, explicit: bool
) -> list[Finding]:
    data = doc.data
    kind = (data.get("apiVersion"), data.get("kind")) if isinstance(data, dict) else (None, None)
    if tekton.is_tekton_object(data):
        return tekton.check_document(doc)
    if kind == WORKFLOW_KIND:
        # Outside playbooks/ a RemediationWorkflow is a generated registration: bundle pinned.
        found = check_workflow(
            doc,
            action_types=action_types,
            expected_name=None,
            authored=False,
            namespace=config.workflow_namespace,
            fleet=config.fleet,
        )
        return with_pending_hint(config, doc, found)
    if kind == ACTION_TYPE_KIND:
        return check_action_type(doc, namespace=config.workflow_namespace)
    if explicit:
        if not isinstance(data, dict):
            what = "not a Kubernetes object"
        elif kind == (None, None):
            what = "a mapping without apiVersion and kind"
        else:
            what = f"kind {kind[1]!r} of apiVersion {kind[0]!r}"
        return [
            doc.finding(
                "load.kind",
                (),
                f"cannot lint this document: {what}; playbookctl lints playbook directories, "
                "registry/ files and tekton.dev/v1 or v1beta1 Pipelines and Tasks",
            )
        ]
    return []  # registry/ may hold kustomizations and Argo CD objects: loading them is the check


def _lint_file(
    path: Path,
    shown: str,
    config: Config,
    action_types: Mapping[str, object] | None,
    *,
    explicit: bool,
) -> tuple[list[Finding], list[Document]]:
    result = load_file(path, shown, config.max_file_bytes)
    out = list(result.findings)
    for doc in result.documents:
        out.extend(_check_document(doc, config, action_types, explicit=explicit))
    if not explicit:  # registry/: built-in objects as the API server would take them
        out.extend(_schema_findings(result.documents, path))
    out.extend(reread_findings(result.documents, out))
    if explicit and not result.documents and not result.findings:
        out.append(Finding("load.kind", Severity.ERROR, shown, 1, 1, "the file holds no document"))
    return out, result.documents


def _scripts_of(doc: Document, path: Path) -> list[external.EmbeddedScript]:
    try:
        source = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return embedded_scripts(doc, source)


def lint_paths(
    paths: list[Path], config: Config, *, run_external: bool = True, use_cache: bool = True
) -> list[Finding]:
    """Lint the given paths (the whole repository when empty); findings sorted and unique.

    use_cache: reuse the external linters' and the script contract's cached verdicts
    (lint/cache.py)."""
    targets = classify(paths, config)
    root = config.root.resolve()
    action_types_dir = config.action_types_dir.resolve()
    checked_types, at_findings = declared(config)
    action_types = checked_types.loaded
    # An ActionType file that did not load may declare the name a workflow gives: whether it
    # is missing (workflow.action-type) is not said, that file's load finding is (below). Only
    # for the names it may declare (Declared.undecided): the others are checked.
    findings: list[Finding] = []
    # load_action_types checks every ActionType once; keep the findings about the files in scope.
    # A file nested deeper is no ActionType, but what is said of it (action-type.location)
    # comes from load_action_types as well.
    at_files = {
        _display(p, root)
        for p in targets.registry_files
        if p.resolve().is_relative_to(action_types_dir)
    }
    findings.extend(f for f in at_findings if targets.all_action_types or f.file in at_files)
    at_docs = [d for d in action_types.values() if targets.all_action_types or d.file in at_files]
    findings.extend(reread_findings(at_docs, findings))
    # Every file the run covers, by its name in findings: suppression comments are read here.
    sources: dict[str, Path] = {}
    if targets.all_action_types:
        sources.update((_display(p, root), p) for p in action_type_files(config))
    sources.update((_display(p, root), p) for p in targets.registry_files)

    contract_cache = open_cache(use_cache)
    containerfiles: list[tuple[Path, str]] = []
    scripts: list[tuple[Path, str]] = []
    embedded: list[external.EmbeddedScript] = []
    used_action_types: set[str] = set()  # files of the linted playbooks' ActionTypes
    # The ActionType files that did not load and may declare a linted playbook's ActionType.
    holding: set[str] = set()
    units: list[str] = []  # each playbook's directory as shown: its findings stay together
    linted: list[Playbook] = []
    for directory in targets.playbooks:
        pb, found = lint_playbook(directory, config, checked_types, cache=contract_cache)
        findings.extend(found)
        linted.append(pb)
        units.append(pb.rel(pb.dir))
        data = pb.workflow.data if pb.workflow is not None else None
        spec = data.get("spec") if isinstance(data, dict) else None
        action = spec.get("actionType") if isinstance(spec, dict) else None
        if isinstance(action, str) and action in action_types:
            used_action_types.add(action_types[action].file)
        elif isinstance(action, str):
            holding.update(checked_types.undecided(action))

        if pb.pipeline is not None and run_external:
            embedded.extend(_scripts_of(pb.pipeline, pb.pipeline_path))
        if pb.containerfile is not None:
            containerfiles.append((pb.containerfile, pb.rel(pb.containerfile)))
        if pb.dir.is_dir() and directory_link_problem(pb.dir, config.root) is None:
            # A FIFO would block the shebang read; special-file reports it. Behind a directory
            # link nothing is read (playbook.directory-link).
            regular = [f for f in source_files(pb.dir) if special_file_problem(f, pb.dir) is None]
            sources.update((pb.rel(f), f) for f in regular)
            scripts.extend((f, pb.rel(f)) for f in regular if external.is_shell_script(f))
    # Against every playbook of the tree, not only the linted ones: read once per run.
    findings.extend(duplicate_object_findings(linted, config))
    if not targets.all_action_types and holding:
        # The ActionType files that did not load, when a linted playbook's ActionType may be in
        # one: the reason its existence is not checked, and an error until they load.
        findings.extend(f for f in at_findings if f.file in holding and f.file not in at_files)
        sources.update(
            (_display(p, root), p)
            for p in action_type_files(config)
            if _display(p, root) in holding
        )
    if not targets.all_action_types:
        # `lint playbooks/NAME` right after `new`: the TODOs `new` left in the playbook's
        # ActionType are part of finishing that playbook, so they are reported with it.
        findings.extend(
            f
            for f in at_findings
            if f.rule == "action-type.placeholder-text"
            and f.file in used_action_types
            and f.file not in at_files
        )
        sources.update(
            (_display(p, root), p)
            for p in action_type_files(config)
            if _display(p, root) in used_action_types
        )
    # A binary or huge Containerfile or script is one clear finding, not pages of parse errors
    # from hadolint or shellcheck (or minutes of shellcheck on megabytes).
    unreadable: set[Path] = set()
    for path, shown in [*containerfiles, *scripts]:
        text, problems = read_text_file(path, shown, config.max_file_bytes)
        if text is None:
            findings.extend(problems)
            unreadable.add(path)
    containerfiles = [c for c in containerfiles if c[0] not in unreadable]
    scripts = [s for s in scripts if s[0] not in unreadable]

    for path in targets.registry_files:
        if path.resolve().is_relative_to(action_types_dir):
            continue  # checked by load_action_types above
        findings.extend(
            _lint_file(path, _display(path, root), config, checked_types, explicit=False)[0]
        )

    for path, shown in targets.standalone.items():
        if path.is_dir():
            findings.append(
                Finding(
                    "load.kind",
                    Severity.ERROR,
                    shown,
                    1,
                    1,
                    f"not a playbook directory (no {WORKFLOW_FILE}) nor inside registry/",
                )
            )
            continue
        # A standalone Tekton file gets Tekton's verdict and nothing more: shellcheck on its
        # scripts would flag what Tekton accepts (`$(params.x)` reads as a command substitution).
        # Scripts of a playbook's own pipeline.yaml are linted above, as part of our gate.
        findings.extend(_lint_file(path, shown, config, checked_types, explicit=True)[0])
        sources[shown] = path

    if run_external:
        findings.extend(
            external.run_external(
                containerfiles,
                scripts,
                root,
                jobs=config.jobs,
                embedded=embedded,
                use_cache=use_cache,
            )
        )
    policy = LintPolicy.from_settings(
        config.lint_disable, config.lint_severity, config.lint_origins
    )
    return in_report_order(policy.apply(findings, sources), units)
