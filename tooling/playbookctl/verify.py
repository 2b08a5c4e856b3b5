"""Verify stage: what registry/ says is true of the cluster's view and of the OCI registry.

Offline, from the files alone:
- every registry/workflows/<name>.yaml holds exactly one RemediationWorkflow that passes the
  `workflow.*` rules as a registration (bundle present and digest-pinned, actionType existing in
  registry/action-types/), and otherwise only the RBAC kinds the Argo CD project allows, in the
  namespaces it allows;
- registry/action-types/ passes the `action-type.*` rules;
- registry/kustomization.yaml builds: every file it lists exists and holds Kubernetes objects,
  no object is defined twice, no file is listed twice, it is as register writes it; a file it
  does not list yet is a warning (the next release lists it);
- every registration whose playbook is at the registered version and source hash is exactly
  what `register` writes from the playbook's files now (description, parameters, service
  account, RBAC, ...): a hand edit is an error naming the field. A playbook at another version
  is a release still to come, one that is gone a removal still to come (warnings).
Online, against the registry:
- each registration's bundle exists at its pinned digest and reads as Tekton's bundles resolver
  reads it (`bundle.*` findings), its tag still points at that digest (a moved or deleted tag is
  an error: published tags are immutable), its provenance agrees;
- the bundle's `workflow` Pipeline is what the playbook renders to now with the registered image,
  passes Tekton's validation (`tekton.*`) and the playbook rules that concern a pipeline
  (`playbook.*`: identity, params, workspaces, script injection);
- every step image is digest-pinned and exists in its registry at that digest.
Everything is a finding; a registry that cannot be reached is one too, so one bad entry never
hides the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbookctl import platforms
from playbookctl.bump import bump_command
from playbookctl.bundle import canonical_json, read_bundle
from playbookctl.config import Config
from playbookctl.errors import FatalError, RegistryError, RegistryUnavailableError
from playbookctl.findings import Finding, Severity, sorted_unique
from playbookctl.lint import playbook as playbook_rules
from playbookctl.lint import tekton
from playbookctl.lint.action_type import action_type_files, declared
from playbookctl.lint.registration import with_pending_hint
from playbookctl.lint.workflow import BUNDLE_RE, check_workflow
from playbookctl.load import Document, load_file, load_text
from playbookctl.oci import RegistryClient, parse_reference
from playbookctl.playbook import Playbook, is_playbook_dir, load_playbook, source_hash
from playbookctl.register import (
    HEADER,
    differences,
    dotted,
    expected_registration,
    object_id,
    object_label,
    parse_documents,
    parse_registration,
    registry_moved,
    render_kustomization,
)
from playbookctl.register import Registration as Registered
from playbookctl.register import diff_paths as _diff_paths
from playbookctl.render import RenderedPipeline, iter_step_images, render_pipeline, to_yaml

WORKFLOWS = "workflows"
ACTION_TYPES = "action-types"
KUSTOMIZATION = "kustomization.yaml"
WORKFLOW_KIND = ("kubernaut.ai/v1alpha1", "RemediationWorkflow")
# The kinds a registration may carry besides its workflow (the Argo CD project allows these),
# and whether they are namespaced.
RBAC_KINDS = {
    ("v1", "ServiceAccount"): True,
    ("rbac.authorization.k8s.io/v1", "Role"): True,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): True,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): False,
}
ANN_SOURCE_HASH = "playbookctl.kubernaut.ai/source-hash"
ANN_IMAGE = "playbookctl.kubernaut.ai/image"
BUNDLE_SOURCE_HASH = "dev.playbookctl.source-hash"
BUNDLE_VERSION = "org.opencontainers.image.version"
_DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}\Z")
# playbook.* rules that concern a Pipeline on its own; the others need the playbook's source
# (Containerfile, rbac.yaml), which a bundle does not carry. Images are checked here instead:
# in a bundle every image, the playbook's own included, must be pinned and exist.
PIPELINE_RULES: tuple[Callable[[Any], None], ...] = (
    playbook_rules.rule_pipeline_identity,
    playbook_rules.rule_params,
    playbook_rules.rule_workspaces,
    playbook_rules.rule_script_injection,
)


@dataclass
class Registration:
    name: str
    file: str  # as shown in findings, relative to the repository root
    workflow: Document
    documents: list[Document] = field(default_factory=list)  # every document of the file
    # The playbook at HEAD when it is at the registered version and source hash (what the
    # registration and its bundle must equal), else None.
    playbook: Playbook | None = None
    image: str = ""  # the registered image annotation

    @property
    def bundle(self) -> str | None:
        value = self.workflow.get(("spec", "execution", "bundle"))
        return value if isinstance(value, str) and BUNDLE_RE.match(value) else None

    def at_bundle(self, rule: str, message: str, severity: Severity = Severity.ERROR) -> Finding:
        return self.workflow.finding(rule, ("spec", "execution", "bundle"), message, severity)


@dataclass
class Report:
    registrations: list[Registration] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    bundles_checked: int = 0
    images_checked: int = 0
    # The playbook image of each registration -> the platforms its index lists.
    image_platforms: dict[str, list[str]] = field(default_factory=dict)


def _rel(config: Config, path: Path) -> str:
    try:
        return path.resolve().relative_to(config.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def workflow_files(config: Config) -> list[Path]:
    base = config.registry_dir / WORKFLOWS
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def _check_other_document(doc: Document, config: Config) -> list[Finding]:
    data = doc.data if isinstance(doc.data, dict) else {}
    key = (data.get("apiVersion"), data.get("kind"))
    if key not in RBAC_KINDS:
        what = (
            f"kind {key[1]!r} (apiVersion {key[0]!r})"
            if isinstance(doc.data, dict) and all(key)
            else "a document that is not a Kubernetes object (apiVersion or kind missing)"
        )
        return [
            doc.finding(
                "verify.registration-kind",
                (),
                f"{what} does not belong in a registration: only the "
                "RemediationWorkflow and its ServiceAccount, Role(Binding)s and "
                "ClusterRole(Binding)s (the Argo CD project allows nothing else)",
            )
        ]
    ns = doc.get(("metadata", "namespace"))
    if RBAC_KINDS[key] and ns != config.run_namespace:
        return [
            doc.finding(
                "verify.registration-namespace",
                ("metadata", "namespace"),
                f"{key[1]} must be in namespace {config.run_namespace!r}, where the "
                f"PipelineRuns run, not {ns!r}",
            )
        ]
    return []


def check_registrations(
    config: Config, action_types: Mapping[str, Document]
) -> tuple[list[Registration], list[Finding]]:
    regs: list[Registration] = []
    findings: list[Finding] = []
    for path in workflow_files(config):
        display = _rel(config, path)
        loaded = load_file(path, display, config.max_file_bytes)
        findings += loaded.findings
        workflows = []
        for doc in loaded.documents:
            data = doc.data if isinstance(doc.data, dict) else {}
            if (data.get("apiVersion"), data.get("kind")) == WORKFLOW_KIND:
                workflows.append(doc)
            else:
                findings += _check_other_document(doc, config)
        if len(workflows) != 1:
            if not loaded.findings:
                where = workflows[1] if workflows else None
                findings.append(
                    Finding(
                        "verify.registration",
                        Severity.ERROR,
                        display,
                        where.start.line if where else 1,
                        where.start.column if where else 1,
                        f"a registration holds exactly one RemediationWorkflow, this file "
                        f"{len(workflows)}",
                    )
                )
            if not workflows:
                continue
        wf = workflows[0]
        findings += with_pending_hint(
            config,
            wf,
            check_workflow(
                wf,
                action_types=action_types,
                expected_name=path.stem,
                authored=False,
                namespace=config.workflow_namespace,
            ),
        )
        regs.append(Registration(path.stem, display, wf, list(loaded.documents)))
    return regs, findings


def check_kustomization(config: Config) -> list[Finding]:
    """registry/kustomization.yaml lists exactly the workflow and ActionType files."""
    path = config.registry_dir / KUSTOMIZATION
    display = _rel(config, path)
    expected = {f"{WORKFLOWS}/{p.name}" for p in workflow_files(config)}
    expected |= {f"{ACTION_TYPES}/{p.name}" for p in action_type_files(config)}
    if not path.is_file():
        if not expected:
            return []
        return [
            Finding(
                "verify.kustomization",
                Severity.ERROR,
                display,
                1,
                1,
                f"missing: Argo CD syncs registry/ through it ({len(expected)} file(s) to list)",
            )
        ]
    loaded = load_file(path, display, config.max_file_bytes)
    if loaded.findings or not loaded.documents:
        return loaded.findings or [
            Finding("verify.kustomization", Severity.ERROR, display, 1, 1, "file is empty")
        ]
    doc = loaded.documents[0]
    resources = doc.get(("resources",))
    if not isinstance(resources, list):
        return [doc.finding("verify.kustomization", ("resources",), "resources must be a list")]
    out: list[Finding] = []
    listed: dict[str, int] = {}
    for i, item in enumerate(resources):
        if not isinstance(item, str):
            out.append(doc.finding("verify.kustomization", ("resources", i), "not a path"))
            continue
        if item in listed:
            out.append(
                doc.finding("verify.kustomization", ("resources", i), f"{item} is listed twice")
            )
        listed[item] = i
        if item not in expected:
            what = (
                # Deleting an ActionType: README's pull request runs register, which lists
                # only what exists.
                "does not exist (`playbookctl register` regenerates this file)"
                if not (config.registry_dir / item).exists()
                else "is not a registration or an ActionType"
            )
            out.append(doc.finding("verify.kustomization", ("resources", i), f"{item} {what}"))
    for missing in sorted(expected - set(listed)):
        out.append(
            doc.finding(
                "verify.kustomization",
                ("resources",),
                f"{missing} is not listed yet: Argo CD does not sync it until the next release "
                "regenerates this file",
                Severity.WARNING,
                at_key=True,
            )
        )
    if not out and path.read_text("utf-8") != render_kustomization(list(listed)):
        out.append(
            Finding(
                "verify.kustomization",
                Severity.ERROR,
                display,
                1,
                1,
                "not as register writes it (header, order or formatting): it is generated, "
                "do not edit it by hand (`playbookctl register` regenerates it)",
            )
        )
    out += check_objects(config, sorted(r for r in listed if r in expected))
    return out


def check_objects(config: Config, listed: list[str]) -> list[Finding]:
    """What `kustomize build registry/` needs of the listed files: every document a Kubernetes
    object (apiVersion, kind, metadata.name), and no object defined twice."""
    out: list[Finding] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for rel in listed:
        path = config.registry_dir / rel
        loaded = load_file(path, _rel(config, path), config.max_file_bytes)
        for doc in loaded.documents:
            if not isinstance(doc.data, dict):
                continue  # reported as a load or registration finding
            oid = object_id(doc.data)
            if oid is None:
                out.append(
                    doc.finding(
                        "verify.kustomization-object",
                        (),
                        "not a Kubernetes object (apiVersion, kind and metadata.name are "
                        "required): kustomize cannot build registry/",
                    )
                )
                continue
            label = object_label(oid)
            if oid in seen:
                out.append(
                    doc.finding(
                        "verify.duplicate-object",
                        ("metadata", "name"),
                        f"{label} is also defined in {seen[oid]}: kustomize refuses to build "
                        "registry/ with an object defined twice",
                    )
                )
            else:
                seen[oid] = doc.file
    return out


def check_against_playbooks(config: Config, regs: list[Registration]) -> list[Finding]:
    """Every registration against what `register` writes now from its playbook's files.

    Only a registration of the playbook's current version and source hash can be regenerated
    (the bundle digest comes from the registry); a playbook at another version, or gone, is a
    release still to come. Without playbooks/ (a checkout of registry/ alone) nothing is
    compared."""
    if not config.playbooks_dir.is_dir():
        return []
    out: list[Finding] = []
    for reg in regs:
        directory = config.playbooks_dir / reg.name
        if not is_playbook_dir(directory):
            out.append(
                reg.workflow.finding(
                    "verify.pending",
                    ("metadata", "name"),
                    f"playbooks/{reg.name}/ is gone: the next release removes this registration",
                    Severity.WARNING,
                )
            )
            continue
        text = (config.root / reg.file).read_bytes()
        registered = parse_registration(text, reg.name)
        pb = load_playbook(directory, config.root, config.max_file_bytes)
        if registered is None or pb.workflow is None or not isinstance(pb.workflow.data, dict):
            continue  # lint and the workflow checks say why
        reg.image = registered.image
        if pb.version != registered.version:
            out.append(
                reg.workflow.finding(
                    "verify.pending",
                    ("spec", "version"),
                    f"the playbook is version {pb.version}, {registered.version} is registered: "
                    "the next release registers it",
                    Severity.WARNING,
                )
            )
            continue
        try:
            current = source_hash(directory, config.platforms)
        except FatalError:
            continue  # a FIFO or a looping link: lint reports it
        if current != registered.source_hash:
            out.append(
                reg.workflow.finding(
                    "verify.source-changed",
                    ("metadata", "annotations", ANN_SOURCE_HASH),
                    f"playbooks/{reg.name}/ hashes to {current}, not the registered "
                    f"{registered.source_hash or '(none)'}, under the same version "
                    f"{registered.version}: bump spec.version: {bump_command(reg.name)}",
                )
            )
            continue
        if any(f.severity is Severity.ERROR for f in pb.load_findings):
            continue
        reg.playbook = pb
        expected = expected_registration(pb.workflow.data, [d.data for d in pb.rbac], registered)
        if expected is None or expected.encode() == text:
            continue  # no bundle digest: the workflow checks report it
        want = parse_documents(expected) or []
        found = differences([d.data for d in reg.documents], want)
        hint = "registry/ is generated: a hand edit is overwritten by the next release"
        for diff in found[:20]:
            doc = reg.documents[diff.document] if diff.document is not None else reg.workflow
            out.append(doc.finding("verify.hand-edit", diff.path, f"{diff.what} ({hint})"))
        if len(found) > 20:
            out.append(
                reg.workflow.finding(
                    "verify.hand-edit", (), f"... and {len(found) - 20} more difference(s)"
                )
            )
        if not found:
            detail = (
                "the header is missing"
                if not text.startswith(HEADER.encode())
                else "comments or formatting differ"
            )
            out.append(
                Finding(
                    "verify.hand-edit",
                    Severity.ERROR,
                    reg.file,
                    1,
                    1,
                    f"not as register writes it from the playbook: {detail} ({hint})",
                )
            )
    return out


def verify_offline(config: Config) -> Report:
    report = Report()
    # Declared: a registration naming an ActionType in a file that did not load is not said to
    # name none (that file's load finding is), as in lint.
    action_types, findings = declared(config)
    report.findings += findings
    regs, findings = check_registrations(config, action_types)
    report.registrations = regs
    report.findings += findings
    report.findings += check_kustomization(config)
    report.findings += check_against_playbooks(config, regs)
    return report


def _pipeline_findings(
    config: Config, reg: Registration, pipeline: dict[str, Any]
) -> list[Finding]:
    """Tekton and playbook rules over the bundle's Pipeline, re-homed at the registration's
    bundle line (the Pipeline has no file of its own)."""
    doc = load_text(to_yaml(pipeline), f"{reg.bundle} (pipeline)").documents[0]
    found = tekton.check_document(doc)
    pb = Playbook(
        name=reg.name, dir=config.playbooks_dir / reg.name, root=config.root, workflow=reg.workflow
    )
    ctx = playbook_rules._Ctx(pb, RenderedPipeline(doc, authored=True), config, None)
    for rule in PIPELINE_RULES:
        rule(ctx)
    found += [f for f in ctx.findings if f.file == doc.file]
    # playbook rules may also point at the workflow itself (e.g. a required parameter the
    # Pipeline lacks); those keep their own position
    others = [f for f in ctx.findings if f.file != doc.file]
    return [
        reg.at_bundle(f.rule, f"in the bundle's Pipeline: {f.message}", f.severity) for f in found
    ] + others


def _check_rendering(config: Config, reg: Registration, pipeline: dict[str, Any]) -> list[Finding]:
    """The bundle's Pipeline is what the playbook (at the registered version and source hash)
    renders to now with the registered image: a bundle pushed or overwritten with anything
    else (a step made privileged) is not trusted because its annotations say the right hash."""
    if reg.playbook is None or "@" not in reg.image:
        return []
    try:
        rendered = render_pipeline(reg.playbook, config, image=reg.image)
    except FatalError:
        return []  # lint reports why the playbook does not render
    if canonical_json(rendered.data) == canonical_json(pipeline):
        return []
    paths = _diff_paths(pipeline, rendered.data, ())
    shown = ", ".join(dotted(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
    return [
        reg.at_bundle(
            "verify.bundle-content",
            f"the bundle's Pipeline is not what playbooks/{reg.name}/ renders to now "
            f"(differs at {shown or 'its layout'}): the bundle was not built from this source",
        )
    ]


def _check_images(
    client: RegistryClient,
    reg: Registration,
    pipeline: dict[str, Any],
    cache: dict[str, str | None],
    config: Config,
) -> list[Finding]:
    out: list[Finding] = []
    for _, image in iter_step_images(pipeline):
        if not isinstance(image, str):
            continue
        if image == config.placeholder or not _DIGEST_RE.search(image):
            out.append(
                reg.at_bundle(
                    "verify.image-pinned",
                    f"the bundle's Pipeline runs image {image!r}, which is not pinned by digest",
                )
            )
            continue
        if image not in cache:
            try:
                cache[image] = None if client.resolve(parse_reference(image)) else "missing"
            except RegistryError as exc:
                cache[image] = f"cannot be checked: {exc}"
        problem = cache[image]
        if problem is not None:
            rule = "verify.image-missing" if problem == "missing" else "verify.registry"
            text = "is not in its registry" if problem == "missing" else problem
            out.append(reg.at_bundle(rule, f"step image {image} {text}"))
    return out


def verify_online(config: Config, client: RegistryClient, report: Report) -> None:
    """Add the registry checks of every registration with a pinned bundle to report."""
    images: dict[str, str | None] = {}
    # A registry that could not be asked at all, and the registration that found it so: the
    # others it holds are not asked again (each would wait through the same retries, then say
    # the same; 200 registrations took minutes to print one cause 200 times).
    unavailable: dict[str, str] = {}
    for reg in report.registrations:
        ref = reg.bundle
        if ref is None:
            continue  # its workflow.bundle finding says why
        host = ref.partition("/")[0]
        if host in unavailable:
            report.findings.append(
                reg.at_bundle(
                    "verify.registry",
                    f"{ref}: not checked: registry {host} could not be asked "
                    f"(registry/{WORKFLOWS}/{unavailable[host]}.yaml says why)",
                )
            )
            continue
        version = reg.workflow.get(("spec", "version"))
        image = reg.workflow.get(("metadata", "annotations", ANN_IMAGE))
        where = location_problem(
            config,
            reg.name,
            version if isinstance(version, str) else "",
            ref,
            # A registration without the annotation was not written by register; its bundle's
            # step images are checked below all the same.
            image if isinstance(image, str) else None,
        )
        if where is not None:
            # Not ours, whatever it holds: nothing is fetched from a host the release never
            # published to.
            moved = registry_moved(config, ref, image if isinstance(image, str) else "")
            if moved is not None:
                where = (
                    f"{moved.partition(': published there again')[0]} (a dev registry started "
                    "again has a new port); release again to publish and register it there"
                )
            else:
                where += ": not published by this repository"
            report.findings.append(reg.at_bundle("verify.location", where))
            continue
        try:
            rb = read_bundle(client, ref)
            report.bundles_checked += 1
            report.findings += [
                reg.at_bundle(f.rule, f"bundle {ref}: {f.message}", f.severity) for f in rb.findings
            ]
            if rb.digest is None:
                continue  # bundle.missing
            report.findings += _check_provenance(client, reg, ref, rb.annotations)
            report.findings += _check_image_platforms(config, client, reg, report)
            pipeline = rb.workflow()
            if pipeline is None:
                continue  # bundle.no-workflow (or a layer that did not decode) says why
            report.findings += _pipeline_findings(config, reg, pipeline)
            report.findings += _check_rendering(config, reg, pipeline)
            before = len(images)
            report.findings += _check_images(client, reg, pipeline, images, config)
            report.images_checked += len(images) - before
        except RegistryError as exc:
            report.findings.append(reg.at_bundle("verify.registry", f"{ref}: {exc}"))
            if isinstance(exc, RegistryUnavailableError):
                unavailable[host] = reg.name


def _check_provenance(
    client: RegistryClient, reg: Registration, ref: str, annotations: dict[str, str]
) -> list[Finding]:
    out: list[Finding] = []
    version = reg.workflow.get(("spec", "version"))
    bundle_version = annotations.get(BUNDLE_VERSION)
    if bundle_version and isinstance(version, str) and bundle_version != version:
        out.append(
            reg.at_bundle(
                "verify.provenance",
                f"the registration is version {version} but the bundle says {bundle_version}",
            )
        )
    reg_hash = reg.workflow.get(("metadata", "annotations", ANN_SOURCE_HASH))
    bundle_hash = annotations.get(BUNDLE_SOURCE_HASH)
    if bundle_hash and isinstance(reg_hash, str) and reg_hash != bundle_hash:
        out.append(
            reg.at_bundle(
                "verify.provenance",
                f"the registration's source hash {reg_hash} is not the bundle's {bundle_hash}",
            )
        )
    m = BUNDLE_RE.match(ref)
    if m and m.group("tag"):
        tagged = ref.split("@", 1)[0]
        desc = client.resolve(tagged)
        digest = "sha256:" + m.group("digest")
        if desc is None:
            out.append(
                reg.at_bundle(
                    "verify.tag-moved",
                    f"tag {tagged} no longer exists (published tags must never be deleted)",
                )
            )
        elif desc.digest != digest:
            out.append(
                reg.at_bundle(
                    "verify.tag-moved",
                    f"tag {tagged} now points at {desc.digest}, not the registered {digest}: "
                    "published tags must never be overwritten; something rewrote it",
                )
            )
    return out


def location_problem(
    config: Config, name: str, version: str, bundle: str, image: str | None
) -> str | None:
    """Why a registration's pins are not where a release of this repository publishes
    (`<registry>/<bundle-repo>/<name>:<version>@sha256:...`, the image likewise; image None:
    not checked), or None.

    A digest proves content, not origin: a bundle on another host, or under another name, was
    not published by this repository's release, whatever it holds."""
    pins = [("bundle", bundle, config.bundle_ref(name))]
    if image is not None:
        pins.append(("image", image, config.image_ref(name)))
    for what, ref, repository in pins:
        want = f"{repository}:{version}@sha256:"
        if not ref.startswith(want) or not _DIGEST_RE.search(ref):
            return (
                f"its {what} {ref or '(none)'} is not {want}<digest>, where a release of this "
                f"repository publishes it"
            )
    return None


def prefetch_publication_tokens(
    config: Config, client: RegistryClient, regs: Iterable[Registered]
) -> None:
    """The pull tokens publication_problem's lookups of `regs` will need, asked for together
    (RegistryClient.prefetch_pull_tokens): one token request per few dozen repositories
    instead of one per repository. Only pins publication_problem would look up (where a
    release of this repository publishes): nothing is asked of any other host."""
    refs = [
        ref
        for reg in regs
        if location_problem(config, reg.name, reg.version, reg.bundle, reg.image) is None
        for ref in (reg.bundle, reg.image)
    ]
    if refs:
        client.prefetch_pull_tokens(refs)


class NotHeld(str):
    """A publication problem where the registry holds neither the pinned tag nor the pinned
    digest: what a registry that lost its data (wiped, garbage-collected, another registry at
    the same address) shows for every registration, and a forged one for its own. Plan tells
    them apart by who wrote the registration."""

    __slots__ = ()


def publication_problem(config: Config, client: RegistryClient, reg: Registered) -> str | None:
    """Why a registration is not proof that a release published what it pins, or None.

    A release publishes `<bundle-repo>/<name>:<version>` and `<image-repo>/<name>:<version>`
    to the configured registry, checks their content, and never moves a tag; so a registration
    is proof of publication only when both pins are there and both tags still point at the
    pinned digests. Anything else (a digest nobody built, a bundle on another host, a tag
    that moved) is not. Nothing is fetched from any other host.

    A registry that cannot be asked (down, the credentials refused) is a RegistryError, not a
    problem of this registration: nothing is known about any registration then, and the advice
    a refused one gets (restore it, or bump the version) would be wrong."""
    problem = location_problem(config, reg.name, reg.version, reg.bundle, reg.image)
    if problem is not None:
        return problem
    for what, ref in (("bundle", reg.bundle), ("image", reg.image)):
        tagged, _, digest = ref.partition("@")
        try:
            found = client.resolve(tagged)
        except RegistryError as exc:
            raise RegistryError(
                f"cannot check registry/{WORKFLOWS}/{reg.name}.yaml against the registry (its "
                f"{what} tag {tagged}): {exc}"
            ) from None
        if found is None:
            try:
                held = client.resolve(ref) is not None
            except RegistryError as exc:
                raise RegistryError(
                    f"cannot check registry/{WORKFLOWS}/{reg.name}.yaml against the registry "
                    f"(its {what} {ref}): {exc}"
                ) from None
            if not held:
                return NotHeld(
                    f"the registry does not hold {ref} that registry/{WORKFLOWS}/{reg.name}.yaml "
                    "pins"
                )
            return f"its {what} tag {tagged} does not exist in the registry"
        if found.digest != digest:
            return f"its {what} tag {tagged} points at {found.digest}, not the registered {digest}"
    return None


def verify(config: Config, client: RegistryClient | None) -> Report:
    """Every check; with client None only the offline ones."""
    report = verify_offline(config)
    if client is not None:
        verify_online(config, client, report)
    report.findings = sorted_unique(report.findings)
    return report


def _check_image_platforms(
    config: Config, client: RegistryClient, reg: Registration, report: Report
) -> list[Finding]:
    """The registered playbook image is an index of every configured platform, each child
    manifest present (a node of a missing platform could not start the step)."""
    path = ("metadata", "annotations", "playbookctl.kubernaut.ai/image")
    image = reg.workflow.get(path)
    if not isinstance(image, str) or "@sha256:" not in image:
        return []  # not registered by playbookctl; the bundle's step images are checked anyway
    found = platforms.image_platforms(client, image, config.platforms)
    report.image_platforms[image] = found.platforms
    return [reg.workflow.finding("verify.image-platforms", path, p) for p in found.problems]
