"""`script.*` rules: the contract of a playbook's shell scripts, read from the scripts themselves.

Each shell script of the playbook (remediate.sh and any other `*.sh` or shell-shebang file) is
parsed with a real shell parser (lint/shell.py) and checked against what will surround it when
Tekton runs it:

- script.variable: every variable it reads (`$X`, `${X}`, `${X:-d}`, `${X:?}`, arithmetic, inside
  double quotes and unquoted heredocs) is provided by someone: a workflow parameter that reaches
  the step's env, the script itself (assignment, `read`, `for`, `local`/`declare`/`export`,
  `mapfile`, `printf -v`, `getopts`), the image (`ENV` in the Containerfile), the container
  runtime and kubelet (PATH, HOME, HOSTNAME, KUBERNETES_SERVICE_*) or the shell (SECONDS,
  RANDOM, PWD...). A plain read of an unprovided variable is an error under `set -u` (the run
  dies with "unbound variable") and a warning otherwise; `${X:?}` is an error either way; a read
  with a default (`${X:-d}`) is a warning: the default always applies.
- script.tekton-substitution: `$(params.X)` (or any Tekton variable) written in the script. Tekton
  substitutes only inside the Pipeline and Task YAML; in a file of the image bash runs a command
  named `params.X`.
- script.rbac: every kubectl call mapped to API requests (lint/kubectl.py) and each checked
  against the Roles and ClusterRoles of rbac.yaml; what is missing is written out as rules to
  paste.
- script.unchecked (info): a kubectl call, or a part of the script, that cannot be judged
  statically, with the reason.

Flow-insensitive by design: a variable set anywhere in the script counts as set everywhere, and
every branch's kubectl calls count (lint cannot know which branch runs).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from playbookctl.findings import Finding, Severity
from playbookctl.lint import k8s, kubectl, shell
from playbookctl.lint.cache import ResultCache
from playbookctl.lint.rbac import PolicyRule, policy_rules, snippet
from playbookctl.load import Document

# Set by bash itself before the first line runs (or whenever read).
SHELL_VARIABLES = frozenset(
    [
        "BASH",
        "BASHOPTS",
        "BASHPID",
        "BASH_ALIASES",
        "BASH_ARGC",
        "BASH_ARGV",
        "BASH_ARGV0",
        "BASH_CMDS",
        "BASH_COMMAND",
        "BASH_LINENO",
        "BASH_SOURCE",
        "BASH_SUBSHELL",
        "BASH_VERSINFO",
        "BASH_VERSION",
        "DIRSTACK",
        "EPOCHREALTIME",
        "EPOCHSECONDS",
        "EUID",
        "FUNCNAME",
        "GROUPS",
        "HISTCMD",
        "HOSTTYPE",
        "IFS",
        "LINENO",
        "MACHTYPE",
        "OPTERR",
        "OPTIND",
        "OSTYPE",
        "PIPESTATUS",
        "PPID",
        "PS4",
        "PWD",
        "RANDOM",
        "SECONDS",
        "SHELLOPTS",
        "SHLVL",
        "SRANDOM",
        "UID",
    ]
)
# Set for every container by the runtime and the kubelet (service links of the `kubernetes`
# Service are injected into every pod).
RUNTIME_VARIABLES = frozenset(
    [
        "PATH",
        "HOME",
        "HOSTNAME",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "KUBERNETES_SERVICE_PORT_HTTPS",
        "KUBERNETES_PORT",
        "KUBERNETES_PORT_443_TCP",
        "KUBERNETES_PORT_443_TCP_ADDR",
        "KUBERNETES_PORT_443_TCP_PORT",
        "KUBERNETES_PORT_443_TCP_PROTO",
    ]
)


@dataclass
class Surroundings:
    """What provides variables to the playbook's scripts, and what RBAC they run with."""

    parameters: set[str] = field(default_factory=set)  # declared in workflow.yaml
    step_env: dict[str, str] = field(default_factory=dict)  # name -> where (pipeline file)
    step_env_from: str | None = None  # a step's envFrom: names unknown
    image_env: dict[str, int] = field(default_factory=dict)  # Containerfile ENV name -> line
    containerfile: str = "Containerfile"
    rbac_file: str = "rbac.yaml"
    rules: list[PolicyRule] = field(default_factory=list)
    has_rbac: bool = False
    # False: the Pipeline (or the workflow.yaml its wrapper is made from), the Containerfile or
    # workflow.yaml's parameters did not load, so what provides a variable (or what its finding
    # would say of it: a parameter not passed, or no parameter at all) is unknown and none is
    # judged unprovided.
    env_known: bool = True


def step_environment(data: Any) -> tuple[set[str], bool]:
    """Names set by `env:` of every step and stepTemplate of a Pipeline (inline task specs
    included), and whether any uses `envFrom` (names known only at run time)."""
    names: set[str] = set()
    env_from = False
    stack = [data]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            env = cur.get("env")
            if isinstance(env, list) and ("image" in cur or "name" in cur or "script" in cur):
                names.update(
                    e["name"] for e in env if isinstance(e, dict) and isinstance(e.get("name"), str)
                )
            if cur.get("envFrom"):
                env_from = True
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return names, env_from


def image_env(instructions: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """ENV names of the final stage: (keyword, args, line) of each Containerfile instruction."""
    out: dict[str, int] = {}
    for keyword, args, line in instructions:
        if keyword == "FROM":
            out = {}
        elif keyword == "ENV":
            words = shell.parse(f"export {args}\n").sets
            if "=" not in args.split(None, 1)[0]:  # legacy `ENV NAME value`
                out[args.split(None, 1)[0]] = line
            else:
                out.update(dict.fromkeys(words, line))
    return out


def check_script(text: str, file: str, env: Surroundings) -> list[Finding]:
    model = shell.parse(text)
    out: list[Finding] = []
    if env.env_known:
        out.extend(_variables(model, file, env))
    for ref in model.tekton_refs:
        out.append(
            Finding(
                "script.tekton-substitution",
                Severity.ERROR,
                file,
                ref.line,
                ref.column,
                _tekton_message(ref.text),
            )
        )
    if env.has_rbac:
        out.extend(_rbac(model, file, env))
    for line, column in model.unparsed[:1]:
        out.append(
            Finding(
                "script.unchecked",
                Severity.INFO,
                file,
                line,
                column,
                "the shell parser could not read the script from here (shellcheck reports the "
                "syntax); variables and kubectl calls in the unread part are not checked",
            )
        )
    return out


def _tekton_message(text: str) -> str:
    inner = text[2:-1].strip()
    name = inner.split(".", 1)[1] if inner.startswith("params.") else None
    fix = (
        f"read ${name} instead: every workflow parameter reaches the script as an environment "
        f"variable of the same name (an authored pipeline.yaml passes it with env: - name: "
        f"{name}, value: $(params.{name}))"
        if name
        else "pass the value through the step's env in the Pipeline and read the variable"
    )
    return (
        f"{text} in a script: Tekton substitutes $(...) only inside the Pipeline and Task YAML, "
        f"never in files of the image, so bash runs a command named {inner!r} (command not "
        f"found) and uses its empty output; {fix}"
    )


def _provided(name: str, model: shell.Script, env: Surroundings) -> bool:
    return (
        name in env.step_env
        or name in env.image_env
        or name in SHELL_VARIABLES
        or name in RUNTIME_VARIABLES
    )


def _variables(model: shell.Script, file: str, env: Surroundings) -> list[Finding]:
    by_name: dict[str, list[shell.Read]] = {}
    for r in model.reads:
        if _provided(r.name, model, env):
            continue
        # `X=$((X + 1))` or `X="${X:-d}"` reads X before setting it: fine when X is also set
        # somewhere else, else X can only come from outside.
        if r.name in model.sets and (not r.self_default or model.set_count[r.name] > 1):
            continue
        by_name.setdefault(r.name, []).append(r)
    out: list[Finding] = []
    unknown_env = env.step_env_from or (f"line {model.sources}'s source" if model.sources else None)
    for name, reads in by_name.items():
        reads.sort(key=lambda r: (r.line, r.column))
        fatal = [r for r in reads if r.mode == "required" or (r.mode == "plain" and model.nounset)]
        first = fatal[0] if fatal else reads[0]
        severity = Severity.ERROR if fatal and not unknown_env else Severity.WARNING
        others = len({r.line for r in reads}) - 1
        also = f" (and {others} more line{'s' if others > 1 else ''})" if others > 0 else ""
        if name in env.parameters:
            why = (
                f"{name} is a workflow parameter, but no step's env in the Pipeline passes it to "
                f"the script; add env: - name: {name}, value: $(params.{name}) to the step"
            )
        else:
            why = (
                f"nothing provides {name}: it is not a workflow parameter, the script never sets "
                f"it, and neither the step's env nor the image's ENV ({env.containerfile}) has it"
            )
        if first.mode == "required":
            effect = f"${{{name}:?}} stops the script with an error"
        elif fatal:
            effect = (
                f"under set -u (line {model.nounset}) the script dies with "
                f"'{name}: unbound variable'"
            )
        elif first.mode in ("default", "assign-default"):
            effect = "the default always applies, so it is not a setting anyone can change"
        else:
            effect = "the script reads it as empty"
        fix = (
            ""
            if name in env.parameters
            else f"; declare it in workflow.yaml (spec.parameters: - name: {name}), or set it "
            "in the script"
        )
        note = f"; {unknown_env} may set it" if unknown_env else ""
        out.append(
            Finding(
                "script.variable",
                severity,
                file,
                first.line,
                first.column,
                f"${name} is read here{also} but {why}: {effect}{fix}{note}",
            )
        )
    return out


def _rbac(model: shell.Script, file: str, env: Surroundings) -> list[Finding]:
    out: list[Finding] = []
    for cmd in model.invocations():
        if not cmd.words or not kubectl.is_kubectl(cmd.words[0]):
            continue
        call = kubectl.analyse(cmd.words)
        missing: list[kubectl.Access] = []
        by_name: list[kubectl.Access] = []
        for access in dict.fromkeys(call.accesses):
            verdict = _granted(access, env.rules)
            if verdict is None:
                by_name.append(access)
            elif not verdict:
                missing.append(access)
        if missing:
            needed = [(a.verb, a.group, a.resource) for a in missing]
            what = "; ".join(
                f"{a.verb} {a.resource}{' (' + a.group + ')' if a.group else ''}: {a.why}"
                for a in _unique(missing)
            )
            scope = ""
            if any(a.cluster_wide for a in missing):
                scope = (
                    " (in a ClusterRole bound by a ClusterRoleBinding: a cluster-scoped "
                    "resource or --all-namespaces)"
                )
            out.append(
                Finding(
                    "script.rbac",
                    Severity.ERROR,
                    file,
                    cmd.line,
                    cmd.column,
                    f"{call.text} needs what {env.rbac_file} does not grant: {what}. Add to "
                    f"the rules{scope}:\n{snippet(needed)}",
                )
            )
        for a in by_name:
            out.append(
                Finding(
                    "script.unchecked",
                    Severity.INFO,
                    file,
                    cmd.line,
                    cmd.column,
                    f"{call.text}: {a.verb} {a.resource} is granted only for some resourceNames "
                    "and the object's name is not known statically",
                )
            )
        for reason in dict.fromkeys(call.unchecked):
            out.append(
                Finding(
                    "script.unchecked",
                    Severity.INFO,
                    file,
                    cmd.line,
                    cmd.column,
                    f"{call.text}: not checked against {env.rbac_file}: {reason}",
                )
            )
    return out


def _unique(accesses: list[kubectl.Access]) -> list[kubectl.Access]:
    seen: dict[tuple[str, str, str], kubectl.Access] = {}
    for a in accesses:
        seen.setdefault((a.verb, a.group, a.resource), a)
    return list(seen.values())


def _granted(access: kubectl.Access, rules: list[PolicyRule]) -> bool | None:
    partial = False
    for rule in rules:
        if access.cluster_wide and not rule.cluster:
            continue  # a Role grants only inside its namespace
        verdict = rule.grants(access.verb, access.group, access.resource, access.name)
        if verdict:
            return True
        if verdict is None:
            partial = True
    return None if partial else False


def surroundings(
    parameters: set[str] | None,
    pipeline: Document | None,
    containerfile: tuple[str, list[tuple[str, str, int]]] | None,
    rbac: list[Document],
    rbac_file: str,
) -> Surroundings:
    env = Surroundings(parameters=set(parameters or ()), rbac_file=rbac_file)
    # parameters None: workflow.yaml did not load. An authored Pipeline still gives the step's
    # env, but whether a variable it lacks is a parameter it forgot to pass or no parameter at
    # all (the finding's claim and its fix) is in the file that did not load.
    env.env_known = pipeline is not None and containerfile is not None and parameters is not None
    if pipeline is not None:
        names, env_from = step_environment(pipeline.data)
        env.step_env = dict.fromkeys(names, pipeline.file)
        if env_from:
            env.step_env_from = f"a step's envFrom in {pipeline.file}"
    if containerfile is not None:
        env.containerfile = containerfile[0]
        env.image_env = image_env(containerfile[1])
    env.rules = policy_rules(rbac)
    env.has_rbac = bool(rbac)
    return env


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """What the contract's verdict depends on besides its inputs: this code and the API data."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for module in ("script", "shell", "kubectl", "rbac", "k8s"):
        h.update((here / f"{module}.py").read_bytes())
    api = [(r.group, r.name, sorted(r.verbs), sorted(r.subresources)) for r in k8s.api().resources]
    h.update(json.dumps(api).encode())
    h.update(importlib.metadata.version("kubernetes-validate").encode())  # the schemas
    return h.hexdigest()


def content_key(kind: str, raw: bytes) -> str:
    """A lint-cache key for a verdict that depends only on one file's bytes and this code."""
    h = hashlib.sha256(f"{kind}\0{_code_digest()}\0".encode())
    h.update(raw)
    return h.hexdigest()


def _key(raw: bytes, env: Surroundings) -> str:
    inputs = {
        "contract": _code_digest(),
        "script": hashlib.sha256(raw).hexdigest(),
        "parameters": sorted(env.parameters),
        "step_env": sorted(env.step_env.items()),
        "step_env_from": env.step_env_from,
        "image_env": sorted(env.image_env.items()),
        "containerfile": env.containerfile,
        "rbac_file": env.rbac_file,
        "rules": [
            (r.cluster, r.api_groups, r.resources, r.verbs, r.resource_names) for r in env.rules
        ],
        "has_rbac": env.has_rbac,
        "env_known": env.env_known,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def check_files(
    scripts: list[tuple[Path, str]], env: Surroundings, cache: ResultCache | None = None
) -> list[Finding]:
    """The contract of each script; verdicts are kept in the lint cache (lint/cache.py), keyed
    by the script's bytes, everything around it that the verdict reads, and this code."""
    out: list[Finding] = []
    for path, shown in scripts:
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # load.encoding / load.io report it
        key = _key(raw, env) if cache is not None else ""
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            found = check_script(text, shown, env)
            if cache is not None:
                cache.put(key, found)
        else:
            found = [f._replace(file=shown) for f in cached]
        out.extend(found)
    return out
