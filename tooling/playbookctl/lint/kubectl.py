"""What a kubectl command line asks of the API server: (verb, group, resource) accesses.

Mapped from kubectl 1.34's code paths for each subcommand (what its builder fetches and what it
sends), resource arguments resolved against the pinned API's discovery data (lint/k8s.py) the way
kubectl resolves them (`deploy`, `deployment`, `deployments.apps`, `Deployment`, `all`). A call
whose resource type, subcommand or objects cannot be known statically (a type from a variable,
`apply -f`, a custom resource, `--raw`) is returned as unchecked with the reason, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from playbookctl.lint import k8s
from playbookctl.lint.shell import ARGS, UNKNOWN, Alternatives, literal


@dataclass(frozen=True)
class Access:
    verb: str
    group: str
    resource: str  # plural, or plural/subresource
    name: str | None  # the object's name when literal
    cluster_wide: bool  # cluster-scoped resource or --all-namespaces
    why: str  # the kubectl step that needs it

    @property
    def base(self) -> str:
        return self.resource.split("/", 1)[0]


@dataclass
class Call:
    text: str  # `kubectl rollout undo deployment/...` as a reader would recognise it
    accesses: list[Access] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)


# Flags that take a value as the next word (`-n NS`); the `--flag=value` form needs no table.
_Handler = Callable[["Call", "_Args", list[Alternatives], bool, bool], None]
_VALUE_FLAGS = frozenset(
    [
        "-n",
        "--namespace",
        "--context",
        "--kubeconfig",
        "--cluster",
        "--user",
        "-s",
        "--server",
        "--token",
        "--as",
        "--as-group",
        "--as-uid",
        "--request-timeout",
        "--cache-dir",
        "--certificate-authority",
        "--client-certificate",
        "--client-key",
        "--tls-server-name",
        "--log-file",
        "-v",
        "--v",
        "--profile",
        "--profile-output",
        "-l",
        "--selector",
        "--field-selector",
        "-o",
        "--output",
        "-f",
        "--filename",
        "-k",
        "--kustomize",
        "-c",
        "--container",
        "-p",
        "--patch",
        "--type",
        "--timeout",
        "--grace-period",
        "--replicas",
        "--current-replicas",
        "--resource-version",
        "--for",
        "--to-revision",
        "--revision",
        "--sort-by",
        "--template",
        "--chunk-size",
        "--image",
        "--port",
        "--env",
        "-e",
        "--from",
        "--from-file",
        "--from-literal",
        "--from-env-file",
        "--pod-selector",
        "--field-manager",
        "--subresource",
        "--min",
        "--max",
        "--cpu-percent",
        "--target-port",
        "--protocol",
        "--name",
        "--cascade",
        "--pod-running-timeout",
        "--label-columns",
        "-L",
        "--show-labels-as",
        "--overrides",
        "--restart",
        "--serviceaccount",
        "--containers",
        "-q",
        "--limits",
        "--requests",
        "--local-port",
        "--address",
        "--skip-wait-for-delete-timeout",
        "--chunk-size",
    ]
)
_NO_ACCESS = frozenset(
    [
        "version",
        "api-resources",
        "api-versions",
        "explain",
        "config",
        "completion",
        "plugin",
        "help",
        "kustomize",
        "options",
        "alpha",
        "cluster-info",
    ]
)
_LINGERING = frozenset(
    (("", "pods"), ("", "persistentvolumeclaims"), ("", "persistentvolumes"), ("", "namespaces"))
)
_WRITE_LATEST = frozenset(("annotate", "label", "taint"))
_SET_SUB = frozenset(("image", "env", "resources", "selector", "serviceaccount", "subject"))


@dataclass
class _Args:
    positional: list[Alternatives]
    flags: dict[str, Alternatives]
    unknown_words: int = 0


def _split(words: list[Alternatives]) -> _Args:
    out = _Args([], {})
    i = 0
    while i < len(words):
        w = words[i]
        lit = literal(w)
        if w == ARGS:
            out.unknown_words += 1
        elif lit is None:
            if all(a.startswith("-") for a in w):
                # `--replicas="$N"`: a flag whose value is not known (all alternatives share
                # the flag's name as long as it precedes the first = or unknown part).
                text = min(w)
                head = text.split(UNKNOWN, 1)[0]
                name = head.split("=", 1)[0]
                if "=" in head:
                    out.flags[name] = frozenset(
                        a.split("=", 1)[1] if "=" in a else UNKNOWN for a in w
                    )
                else:
                    out.flags[name] = frozenset({UNKNOWN})
            else:
                out.positional.append(w)
        elif lit == "--":
            out.positional.extend(words[i + 1 :])
            break
        elif lit.startswith("-") and len(lit) > 1:
            name, eq, value = lit.partition("=")
            if eq:
                out.flags[name] = frozenset({value})
            elif name in _VALUE_FLAGS and i + 1 < len(words):
                out.flags[name] = words[i + 1]
                i += 1
            else:
                out.flags[name] = frozenset({"true"})
        else:
            out.positional.append(w)
        i += 1
    return out


def _has(args: _Args, *names: str) -> bool:
    return any(n in args.flags for n in names)


def _flag_literal(args: _Args, *names: str) -> str | None:
    for n in names:
        if n in args.flags:
            return literal(args.flags[n])
    return None


def show(words: list[Alternatives]) -> str:
    parts = []
    for w in words:
        lit = literal(w)
        if lit is not None:
            parts.append(lit if lit and " " not in lit else repr(lit))
        elif w == ARGS:
            parts.append('"$@"')
        elif len(w) == 1:
            parts.append(next(iter(w)).replace(UNKNOWN, "…"))
        else:
            parts.append("{" + "|".join(sorted(a.replace(UNKNOWN, "…") for a in w)) + "}")
    text = " ".join(parts)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass
class _Target:
    resource: k8s.Resource
    name: str | None  # literal name; None: unknown or none
    named: bool  # a name (literal or not) was given


def _targets(
    positional: list[Alternatives], call: Call, *, default: str | None = None
) -> list[_Target]:
    """`TYPE NAME...`, `TYPE/NAME ...` or `TYPE1,TYPE2`: the objects a builder visits."""
    api = k8s.api()
    out: list[_Target] = []
    if not positional:
        if default is None:
            return out
        positional = [frozenset({default})]
    first = positional[0]
    slashed = all("/" in a for a in first)
    if slashed:
        for word in positional:
            for alt in sorted(word):
                if "/" not in alt:
                    call.unchecked.append(f"the argument {show([word])} mixes TYPE/NAME forms")
                    continue
                type_text, _, name = alt.partition("/")
                out.extend(_resolve(type_text, name, call, api))
        return out
    names = positional[1:]
    name_lits = [literal(n) for n in names]
    for alt in sorted(first):
        for type_text in alt.split(","):
            if not names:
                out.extend(_resolve(type_text, "", call, api, named=False))
            for n in name_lits:
                out.extend(_resolve(type_text, n if n is not None else UNKNOWN, call, api))
    return out


def _resolve(
    type_text: str, name: str, call: Call, api: k8s.Api, *, named: bool = True
) -> list[_Target]:
    if UNKNOWN in type_text or not type_text:
        call.unchecked.append(
            "the resource type comes from a variable or command, so which resource it touches "
            "cannot be known before it runs"
        )
        return []
    found = api.resolve(type_text)
    if not found:
        names = sorted({n for r in api.resources for n in (r.name, r.kind.lower(), *r.short_names)})
        hint = "" if "." in type_text else api.suggest(type_text.lower(), names)
        call.unchecked.append(
            f"{type_text!r} is not a built-in resource of Kubernetes {api.version} "
            f"(a custom resource?): its RBAC is not checked{hint}"
        )
        return []
    lit = None if UNKNOWN in name or not name else name
    return [_Target(r, lit, named) for r in found]


def _acc(t: _Target, verb: str, why: str, wide: bool, sub: str = "") -> Access:
    return Access(
        verb,
        t.resource.group,
        t.resource.name + (f"/{sub}" if sub else ""),
        t.name,
        wide or not t.resource.namespaced,
        why,
    )


def _core(resource: str, group: str = "") -> k8s.Resource:
    found = k8s.api().get(group, resource)
    if found is None:  # only names of built-in resources are passed here
        raise LookupError(f"{group}/{resource} missing from the pinned API data")
    return found


def analyse(words: list[Alternatives]) -> Call:
    """words: the command line from `kubectl` on (words[0] is kubectl itself)."""
    call = Call(show(words))
    args = _split(words[1:])
    if not args.positional:
        if args.unknown_words or args.flags:
            call.unchecked.append("the subcommand is not known statically")
        return call
    sub = literal(args.positional[0])
    if sub is None:
        call.unchecked.append("the subcommand comes from a variable")
        return call
    rest = args.positional[1:]
    wide = _has(args, "-A", "--all-namespaces")
    selector = _has(args, "-l", "--selector", "--all", "--field-selector")
    if args.unknown_words:
        call.unchecked.append('arguments passed through "$@" are not known statically')
    if _has(args, "-f", "--filename", "-k", "--kustomize") and sub not in ("logs", "exec"):
        call.unchecked.append(
            f"kubectl {sub} -f/-k: the objects come from a file, so their types cannot be "
            "known statically"
        )
        return call
    if sub in _NO_ACCESS or (sub == "auth" and rest and literal(rest[0]) == "can-i"):
        return call  # discovery and self-reviews: every authenticated user may
    handler = _HANDLERS.get(sub)
    if handler is None:
        call.unchecked.append(f"kubectl {sub}: not mapped to API requests by playbookctl")
        return call
    handler(call, args, rest, wide, selector)
    return call


def _get(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    if _has(args, "--raw"):
        call.unchecked.append("kubectl get --raw: a raw API path")
        return
    watch = _has(args, "-w", "--watch", "--watch-only")
    for t in _targets(rest, call):
        if t.named and not selector:
            call.accesses.append(_acc(t, "get", "reads the object", wide))
            if watch:
                call.accesses.append(_acc(t, "watch", "--watch", wide))
        else:
            call.accesses.append(_acc(t, "list", "lists the objects", wide))
            if watch:
                call.accesses.append(_acc(t, "watch", "--watch", wide))


def _describe(
    call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool
) -> None:
    # describe's extra reads (events, a Deployment's ReplicaSets) tolerate a refusal: only the
    # object itself is needed.
    for t in _targets(rest, call):
        verb = "get" if t.named and not selector else "list"
        call.accesses.append(_acc(t, verb, "describe reads the object", wide))


def _delete(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    # --wait (the default) then gets each object (a refused get fails the command) and, while
    # it lingers, watches it until it is gone (kubectl's wait.IsDeleted). Objects that linger
    # by design: pods (grace period), PVCs and PVs (protection finalizers), namespaces.
    wait = _flag_literal(args, "--wait") not in ("false", "0")
    for t in _targets(rest, call):
        if selector or not t.named:
            call.accesses.append(_acc(t, "list", "delete finds the objects to delete", wide))
        call.accesses.append(_acc(t, "delete", "deletes the object", wide))
        if wait:
            why = "delete --wait (the default) checks that the object is gone"
            call.accesses.append(_acc(t, "get", why, wide))
            if (t.resource.group, t.resource.name) in _LINGERING:
                why = "delete --wait (the default) watches the object until it is gone"
                call.accesses.append(_acc(t, "list", why, wide))
                call.accesses.append(_acc(t, "watch", why, wide))


def _patch(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    sub = _flag_literal(args, "--subresource") or ""
    for t in _targets(rest, call):
        call.accesses.append(_acc(t, "patch", "patches the object", wide, sub))


def _write_latest(
    call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool
) -> None:
    # annotate, label, taint: the builder fetches the latest object, then kubectl patches it.
    if _has(args, "--local"):
        return
    # KEY=VALUE, KEY- (removal) and taints (KEY=VALUE:EFFECT, KEY:EFFECT-) are not objects.
    objects = [w for w in rest if not any("=" in a or a.endswith("-") for a in w)]
    for t in _targets(objects, call):
        if selector or not t.named:
            call.accesses.append(_acc(t, "list", "finds the objects", wide))
        else:
            call.accesses.append(_acc(t, "get", "fetches the latest object", wide))
        call.accesses.append(_acc(t, "patch", "patches it", wide))


def _scale(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    precondition = _has(args, "--current-replicas", "--resource-version")
    for t in _targets(rest, call):
        if "scale" not in t.resource.subresources:
            call.unchecked.append(f"{t.resource.qualified} has no scale subresource")
            continue
        if selector or not t.named:
            call.accesses.append(_acc(t, "list", "finds the objects to scale", wide))
        if precondition:
            # With a precondition kubectl reads the Scale, checks it and updates it.
            call.accesses.append(
                _acc(t, "get", "reads the scale to check the precondition", wide, "scale")
            )
            call.accesses.append(_acc(t, "update", "updates the scale", wide, "scale"))
        else:
            call.accesses.append(_acc(t, "patch", "patches the scale", wide, "scale"))
        if _flag_literal(args, "--timeout") not in (None, "0", "0s"):
            call.accesses.append(_acc(t, "get", "waits for the replicas", wide, "scale"))


def _history_resource(t: _Target) -> k8s.Resource | None:
    if t.resource.name == "deployments":
        return _core("replicasets", "apps")
    if t.resource.name in ("daemonsets", "statefulsets"):
        return _core("controllerrevisions", "apps")
    return None


def _rollout(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    action = literal(rest[0]) if rest else None
    if action is None:
        call.unchecked.append("kubectl rollout: the action comes from a variable")
        return
    for t in _targets(rest[1:], call):
        get = _acc(
            t,
            "list" if selector or not t.named else "get",
            f"rollout {action} reads the object",
            wide,
        )
        call.accesses.append(get)
        history = _history_resource(t)
        if action in ("undo", "history") and history is not None:
            what = "ReplicaSets" if history.name == "replicasets" else "ControllerRevisions"
            call.accesses.append(
                Access(
                    "list",
                    history.group,
                    history.name,
                    None,
                    wide,
                    f"rollout {action} lists its {what}",
                )
            )
        if action in ("undo", "restart", "pause", "resume"):
            call.accesses.append(_acc(t, "patch", f"rollout {action} patches the object", wide))
        elif action == "status":
            call.accesses.append(_acc(t, "list", "rollout status watches the object", wide))
            call.accesses.append(_acc(t, "watch", "rollout status watches the object", wide))
        elif action != "history":
            call.unchecked.append(f"kubectl rollout {action}: not mapped by playbookctl")


def _set(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    what = literal(rest[0]) if rest else None
    if what not in _SET_SUB:
        call.unchecked.append(f"kubectl set {what or '…'}: not mapped by playbookctl")
        return
    if _has(args, "--local"):
        return
    # CONTAINER=IMAGE, KEY=VALUE and KEY- are not objects.
    objects = [w for w in rest[1:] if not any("=" in a or a.endswith("-") for a in w)]
    for t in _targets(objects, call):
        verb = "list" if selector or not t.named else "get"
        call.accesses.append(_acc(t, verb, f"set {what} fetches the object", wide))
        call.accesses.append(_acc(t, "patch", f"set {what} patches it", wide))


def _node_targets(call: Call, rest: list[Alternatives]) -> list[_Target]:
    nodes = _core("nodes")
    if not rest:
        return [_Target(nodes, None, False)]
    out = []
    for w in rest:
        lit = literal(w)
        if lit is not None and "/" in lit:
            out.extend(_targets([w], call))
        else:
            out.append(_Target(nodes, lit, True))
    return out


def _cordon(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    for t in _node_targets(call, rest):
        call.accesses.append(
            _acc(t, "list" if selector or not t.named else "get", "reads the node", wide)
        )
        call.accesses.append(_acc(t, "patch", "sets spec.unschedulable", wide))


def _drain(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    _cordon(call, args, rest, wide, selector)
    pods = _Target(_core("pods"), None, False)
    call.accesses.append(_acc(pods, "list", "drain lists the node's pods in every namespace", True))
    if _has(args, "--disable-eviction"):
        call.accesses.append(
            _acc(pods, "delete", "drain deletes the pods (--disable-eviction)", True)
        )
    else:
        call.accesses.append(_acc(pods, "create", "drain evicts the pods", True, "eviction"))
    call.accesses.append(_acc(pods, "get", "drain waits for each evicted pod to go", True))
    ds = _Target(_core("daemonsets", "apps"), None, True)
    call.accesses.append(_acc(ds, "get", "drain looks up the DaemonSet of DaemonSet pods", True))


_POD_SUBRESOURCE = {"exec": "exec", "cp": "exec", "logs": "log", "attach": "attach"}
_POD_SUBRESOURCE["port-forward"] = "portforward"


def _pod_command(sub: str, verb: str, why: str) -> _Handler:
    """exec, cp, logs, attach, port-forward: `POD` or `TYPE/NAME` (kubectl picks one of its
    pods), then the pod's subresource."""

    def handler(
        call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool
    ) -> None:
        pods = _core("pods")
        first = rest[0] if rest else frozenset({UNKNOWN})
        if all("/" in a for a in first):
            targets = _targets([first], call)
        else:
            targets = [_Target(pods, literal(first), True)]
        for t in targets:
            call.accesses.append(_acc(t, "get", f"{sub} reads the object", wide))
            name = t.name
            if t.resource.name != "pods":
                name = None
                any_pod = _Target(pods, None, False)
                call.accesses.append(
                    _acc(any_pod, "list", f"{sub} picks a pod of the object", wide)
                )
            pod = _Target(pods, name, True)
            call.accesses.append(_acc(pod, verb, why, wide, _POD_SUBRESOURCE[sub]))

    return handler


def _wait(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    for t in _targets(rest, call):
        verb = "get" if t.named and not selector else "list"
        call.accesses.append(_acc(t, verb, "wait reads the object", wide))
        call.accesses.append(_acc(t, "list", "wait watches the object", wide))
        call.accesses.append(_acc(t, "watch", "wait watches the object", wide))


def _create(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    what = literal(rest[0]) if rest else None
    if what is None:
        call.unchecked.append("kubectl create: what it creates is not known statically")
        return
    if what == "job" and _has(args, "--from"):
        src = literal(args.flags["--from"])
        if src is not None:
            for t in _targets([frozenset({src})], call):
                call.accesses.append(_acc(t, "get", "create job --from reads the CronJob", wide))
    if what in ("secret", "service") and len(rest) > 1:
        what = {"secret": "secrets", "service": "services"}[what]
    for t in _targets([frozenset({what})], call, default=None):
        t.named = True
        call.accesses.append(_acc(t, "create", "creates the object", wide))


def _run(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    call.accesses.append(
        _acc(_Target(_core("pods"), None, True), "create", "run creates a pod", wide)
    )


def _expose(call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool) -> None:
    for t in _targets(rest, call):
        call.accesses.append(_acc(t, "get", "expose reads the object", wide))
    svc = _Target(_core("services"), None, True)
    call.accesses.append(_acc(svc, "create", "expose creates a Service", wide))


def _autoscale(
    call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool
) -> None:
    for t in _targets(rest, call):
        call.accesses.append(_acc(t, "get", "autoscale reads the object", wide))
    hpa = _Target(_core("horizontalpodautoscalers", "autoscaling"), None, True)
    call.accesses.append(_acc(hpa, "create", "autoscale creates a HorizontalPodAutoscaler", wide))


def _unmapped(reason: str) -> _Handler:
    def handler(
        call: Call, args: _Args, rest: list[Alternatives], wide: bool, selector: bool
    ) -> None:
        call.unchecked.append(reason)

    return handler


_HANDLERS = {
    "get": _get,
    "describe": _describe,
    "delete": _delete,
    "patch": _patch,
    "annotate": _write_latest,
    "label": _write_latest,
    "taint": _write_latest,
    "scale": _scale,
    "rollout": _rollout,
    "set": _set,
    "cordon": _cordon,
    "uncordon": _cordon,
    "drain": _drain,
    "exec": _pod_command("exec", "create", "exec runs a command in the pod"),
    "cp": _pod_command("cp", "create", "cp runs tar in the pod"),
    "attach": _pod_command("attach", "create", "attach connects to the pod"),
    "port-forward": _pod_command("port-forward", "create", "port-forward opens a tunnel"),
    "logs": _pod_command("logs", "get", "logs reads the pod's log"),
    "wait": _wait,
    "create": _create,
    "run": _run,
    "expose": _expose,
    "autoscale": _autoscale,
    "apply": _unmapped("kubectl apply without -f: not mapped by playbookctl"),
    "replace": _unmapped("kubectl replace: the objects come from a file"),
    "edit": _unmapped("kubectl edit is interactive"),
    "top": _unmapped("kubectl top reads metrics.k8s.io, which is not a built-in API"),
    "debug": _unmapped("kubectl debug: not mapped by playbookctl"),
    "certificate": _unmapped("kubectl certificate: not mapped by playbookctl"),
    "auth": _unmapped("kubectl auth: not mapped by playbookctl"),
}


def is_kubectl(word: Alternatives) -> bool:
    """`kubectl`, a path to it, `oc` (OpenShift's kubectl), or a variable that may hold one
    (`${KUBECTL:-kubectl}`)."""
    return any(a.rsplit("/", 1)[-1] in ("kubectl", "oc") for a in word)
