"""Strict decoding of Tekton objects, as the webhook and the bundles resolver decode them.

Tekton's webhook decodes the object into its Go types with unknown fields disallowed, and the
resolver decodes a fetched bundle layer strictly; either way an unknown field or a value of the
wrong JSON type (a number where a string is wanted, a mapping where a list is) rejects the whole
object before any validation rule runs. This module replays that decoding over the loaded data
with field tables written from Tekton v1.14's `v1` and `v1beta1` Go types and the corev1 types
they embed; tests/unit/lint/test_tekton_swagger.py checks every Tekton type's fields against
v1.14.1's swagger.json.

Type notation in the tables: a struct name (`"Step"`), a primitive (`str`, `int`, `bool`, `qty`
for a resource.Quantity, `intstr`, `dur` for a metav1.Duration, `pv` for a ParamValue, which
accepts any JSON, `any` for raw/opaque values), `[T]` for a list and `{T}` for a string-keyed map.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from playbookctl.findings import Finding, Severity
from playbookctl.lint.schema import quote_hint
from playbookctl.lint.tekton.common import field_path
from playbookctl.load import Document, YamlPath

RULE_UNKNOWN = "tekton.unknown-field"
RULE_TYPE = "tekton.field-type"
RULE_PARAM_VALUE = "tekton.param-value"

Table = dict[str, dict[str, str]]

# --- corev1 pieces (shared by both API versions) -------------------------------------------------

_LOCAL_REF = {"name": "str"}
_KEY_SELECTOR = {"name": "str", "key": "str", "optional": "bool"}
_KEY_TO_PATH = {"key": "str", "path": "str", "mode": "int"}
_HTTP_GET = {
    "path": "str",
    "port": "intstr",
    "host": "str",
    "scheme": "str",
    "httpHeaders": "[HTTPHeader]",
}
_HANDLER = {"exec": "ExecAction", "httpGet": "HTTPGetAction", "tcpSocket": "TCPSocketAction"}

_CORE: Table = {
    "ObjectMeta": {
        "name": "str",
        "generateName": "str",
        "namespace": "str",
        "selfLink": "str",
        "uid": "str",
        "resourceVersion": "str",
        "generation": "int",
        "creationTimestamp": "any",
        "deletionTimestamp": "any",
        "deletionGracePeriodSeconds": "int",
        "labels": "{str}",
        "annotations": "{str}",
        "ownerReferences": "[any]",
        "finalizers": "[str]",
        "managedFields": "[any]",
    },
    "EnvVar": {"name": "str", "value": "str", "valueFrom": "EnvVarSource"},
    "EnvVarSource": {
        "fieldRef": "ObjectFieldSelector",
        "resourceFieldRef": "ResourceFieldSelector",
        "configMapKeyRef": "KeySelector",
        "secretKeyRef": "KeySelector",
        "fileKeyRef": "any",
    },
    "ObjectFieldSelector": {"apiVersion": "str", "fieldPath": "str"},
    "ResourceFieldSelector": {"containerName": "str", "resource": "str", "divisor": "qty"},
    "KeySelector": _KEY_SELECTOR,
    "EnvFromSource": {
        "prefix": "str",
        "configMapRef": "OptionalLocalRef",
        "secretRef": "OptionalLocalRef",
    },
    "OptionalLocalRef": {"name": "str", "optional": "bool"},
    "LocalObjectReference": _LOCAL_REF,
    "ResourceRequirements": {"limits": "{qty}", "requests": "{qty}", "claims": "[ResourceClaim]"},
    "ResourceClaim": {"name": "str", "request": "str"},
    "VolumeMount": {
        "name": "str",
        "readOnly": "bool",
        "recursiveReadOnly": "str",
        "mountPath": "str",
        "subPath": "str",
        "mountPropagation": "str",
        "subPathExpr": "str",
    },
    "VolumeDevice": {"name": "str", "devicePath": "str"},
    "SecurityContext": {
        "capabilities": "Capabilities",
        "privileged": "bool",
        "seLinuxOptions": "SELinuxOptions",
        "windowsOptions": "WindowsOptions",
        "runAsUser": "int",
        "runAsGroup": "int",
        "runAsNonRoot": "bool",
        "readOnlyRootFilesystem": "bool",
        "allowPrivilegeEscalation": "bool",
        "procMount": "str",
        "seccompProfile": "Profile",
        "appArmorProfile": "Profile",
    },
    "Capabilities": {"add": "[str]", "drop": "[str]"},
    "SELinuxOptions": {"user": "str", "role": "str", "type": "str", "level": "str"},
    "WindowsOptions": {
        "gmsaCredentialSpecName": "str",
        "gmsaCredentialSpec": "str",
        "runAsUserName": "str",
        "hostProcess": "bool",
    },
    "Profile": {"type": "str", "localhostProfile": "str"},
    "ContainerPort": {
        "name": "str",
        "hostPort": "int",
        "containerPort": "int",
        "protocol": "str",
        "hostIP": "str",
    },
    "Probe": {
        **_HANDLER,
        "grpc": "GRPCAction",
        "initialDelaySeconds": "int",
        "timeoutSeconds": "int",
        "periodSeconds": "int",
        "successThreshold": "int",
        "failureThreshold": "int",
        "terminationGracePeriodSeconds": "int",
    },
    "ExecAction": {"command": "[str]"},
    "HTTPGetAction": _HTTP_GET,
    "HTTPHeader": {"name": "str", "value": "str"},
    "TCPSocketAction": {"port": "intstr", "host": "str"},
    "GRPCAction": {"port": "int", "service": "str"},
    "Lifecycle": {
        "postStart": "LifecycleHandler",
        "preStop": "LifecycleHandler",
        "stopSignal": "str",
    },
    "LifecycleHandler": {**_HANDLER, "sleep": "SleepAction"},
    "SleepAction": {"seconds": "int"},
    "Volume": {
        "name": "str",
        "emptyDir": "EmptyDirVolumeSource",
        "secret": "SecretVolumeSource",
        "configMap": "ConfigMapVolumeSource",
        "persistentVolumeClaim": "PVCVolumeSource",
        "projected": "ProjectedVolumeSource",
        "hostPath": "HostPathVolumeSource",
        "downwardAPI": "DownwardAPIVolumeSource",
        "csi": "CSIVolumeSource",
        "nfs": "NFSVolumeSource",
        "image": "ImageVolumeSource",
        "ephemeral": "any",
        # Rarely used in Tasks; decoded as opaque so that they are at least known names.
        "gcePersistentDisk": "any",
        "awsElasticBlockStore": "any",
        "gitRepo": "any",
        "iscsi": "any",
        "glusterfs": "any",
        "rbd": "any",
        "flexVolume": "any",
        "cinder": "any",
        "cephfs": "any",
        "flocker": "any",
        "fc": "any",
        "azureFile": "any",
        "vsphereVolume": "any",
        "quobyte": "any",
        "azureDisk": "any",
        "photonPersistentDisk": "any",
        "portworxVolume": "any",
        "scaleIO": "any",
        "storageos": "any",
    },
    "EmptyDirVolumeSource": {"medium": "str", "sizeLimit": "qty"},
    "SecretVolumeSource": {
        "secretName": "str",
        "items": "[KeyToPath]",
        "defaultMode": "int",
        "optional": "bool",
    },
    "ConfigMapVolumeSource": {
        "name": "str",
        "items": "[KeyToPath]",
        "defaultMode": "int",
        "optional": "bool",
    },
    "KeyToPath": _KEY_TO_PATH,
    "PVCVolumeSource": {"claimName": "str", "readOnly": "bool"},
    "ProjectedVolumeSource": {"sources": "[VolumeProjection]", "defaultMode": "int"},
    "VolumeProjection": {
        "secret": "SecretProjection",
        "configMap": "SecretProjection",
        "downwardAPI": "DownwardAPIProjection",
        "serviceAccountToken": "ServiceAccountTokenProjection",
        "clusterTrustBundle": "any",
        "podCertificate": "any",
    },
    "SecretProjection": {"name": "str", "items": "[KeyToPath]", "optional": "bool"},
    "DownwardAPIProjection": {"items": "[DownwardAPIVolumeFile]"},
    "DownwardAPIVolumeFile": {
        "path": "str",
        "fieldRef": "ObjectFieldSelector",
        "resourceFieldRef": "ResourceFieldSelector",
        "mode": "int",
    },
    "ServiceAccountTokenProjection": {"audience": "str", "expirationSeconds": "int", "path": "str"},
    "HostPathVolumeSource": {"path": "str", "type": "str"},
    "DownwardAPIVolumeSource": {"items": "[DownwardAPIVolumeFile]", "defaultMode": "int"},
    "CSIVolumeSource": {
        "driver": "str",
        "readOnly": "bool",
        "fsType": "str",
        "volumeAttributes": "{str}",
        "nodePublishSecretRef": "LocalObjectReference",
    },
    "NFSVolumeSource": {"server": "str", "path": "str", "readOnly": "bool"},
    "ImageVolumeSource": {"reference": "str", "pullPolicy": "str"},
}

# --- Tekton types common to v1 and v1beta1 -------------------------------------------------------

_CONTAINER_COMMON = {
    "name": "str",
    "image": "str",
    "command": "[str]",
    "args": "[str]",
    "workingDir": "str",
    "envFrom": "[EnvFromSource]",
    "env": "[EnvVar]",
    "volumeMounts": "[VolumeMount]",
    "volumeDevices": "[VolumeDevice]",
    "imagePullPolicy": "str",
    "securityContext": "SecurityContext",
}
# Container fields a Step lost in v1 (v1beta1 keeps them, deprecated) and a Sidecar keeps.
_CONTAINER_EXTRA = {
    "ports": "[ContainerPort]",
    "livenessProbe": "Probe",
    "readinessProbe": "Probe",
    "startupProbe": "Probe",
    "lifecycle": "Lifecycle",
    "terminationMessagePath": "str",
    "terminationMessagePolicy": "str",
    "stdin": "bool",
    "stdinOnce": "bool",
    "tty": "bool",
}
_STEP_TEKTON = {
    "displayName": "str",
    "script": "str",
    "timeout": "dur",
    "workspaces": "[WorkspaceUsage]",
    "onError": "str",
    "stdoutConfig": "StepOutputConfig",
    "stderrConfig": "StepOutputConfig",
    "ref": "Ref",
    "params": "[Param]",
    "results": "[StepResult]",
    "when": "[WhenExpression]",
}
_SIDECAR_TEKTON = {"script": "str", "workspaces": "[WorkspaceUsage]", "restartPolicy": "str"}

_TASK_SPEC = {
    "params": "[ParamSpec]",
    "displayName": "str",
    "description": "str",
    "steps": "[Step]",
    "volumes": "[Volume]",
    "stepTemplate": "StepTemplate",
    "sidecars": "[Sidecar]",
    "workspaces": "[WorkspaceDeclaration]",
    "results": "[TaskResult]",
}
_PIPELINE_TASK = {
    "name": "str",
    "displayName": "str",
    "description": "str",
    "taskRef": "TaskRef",
    "taskSpec": "EmbeddedTask",
    "when": "[WhenExpression]",
    "retries": "int",
    "runAfter": "[str]",
    "params": "[Param]",
    "matrix": "Matrix",
    "workspaces": "[WorkspacePipelineTaskBinding]",
    "timeout": "dur",
    "pipelineRef": "PipelineRef",
    "pipelineSpec": "PipelineSpec",
    "onError": "str",
}

_TEKTON_COMMON: Table = {
    "Task": {"apiVersion": "str", "kind": "str", "metadata": "ObjectMeta", "spec": "TaskSpec"},
    "Pipeline": {
        "apiVersion": "str",
        "kind": "str",
        "metadata": "ObjectMeta",
        "spec": "PipelineSpec",
    },
    "ParamSpec": {
        "name": "str",
        "type": "str",
        "description": "str",
        "properties": "{PropertySpec}",
        "default": "pv",
        "enum": "[str]",
    },
    "PropertySpec": {"type": "str"},
    "Param": {"name": "str", "value": "pv"},
    "WorkspaceUsage": {"name": "str", "mountPath": "str"},
    "StepOutputConfig": {"path": "str"},
    "Ref": {"name": "str", "resolver": "str", "params": "[Param]"},
    "StepResult": {
        "name": "str",
        "type": "str",
        "properties": "{PropertySpec}",
        "description": "str",
    },
    "WhenExpression": {"input": "str", "operator": "str", "values": "[str]", "cel": "str"},
    "WorkspaceDeclaration": {
        "name": "str",
        "description": "str",
        "mountPath": "str",
        "readOnly": "bool",
        "optional": "bool",
    },
    "TaskResult": {
        "name": "str",
        "type": "str",
        "properties": "{PropertySpec}",
        "description": "str",
        "value": "pv",
    },
    "PipelineWorkspaceDeclaration": {"name": "str", "description": "str", "optional": "bool"},
    "PipelineResult": {"name": "str", "type": "str", "description": "str", "value": "pv"},
    "WorkspacePipelineTaskBinding": {"name": "str", "workspace": "str", "subPath": "str"},
    "Matrix": {"params": "[Param]", "include": "[IncludeParams]"},
    # No `when` on an include entry in v1.14 (later releases added it).
    "IncludeParams": {"name": "str", "params": "[Param]"},
    "PipelineTaskMetadata": {"labels": "{str}", "annotations": "{str}"},
}


def _v1() -> Table:
    t: Table = {**_CORE, **_TEKTON_COMMON}
    t["TaskSpec"] = dict(_TASK_SPEC)
    t["Step"] = {
        **_CONTAINER_COMMON,
        "computeResources": "ResourceRequirements",
        **_STEP_TEKTON,
    }
    template = {k: v for k, v in _CONTAINER_COMMON.items() if k != "name"}
    t["StepTemplate"] = {**template, "computeResources": "ResourceRequirements"}
    t["Sidecar"] = {
        **_CONTAINER_COMMON,
        **_CONTAINER_EXTRA,
        "computeResources": "ResourceRequirements",
        **_SIDECAR_TEKTON,
    }
    t["TaskRef"] = {
        "name": "str",
        "kind": "str",
        "apiVersion": "str",
        "resolver": "str",
        "params": "[Param]",
    }
    t["PipelineRef"] = {"name": "str", "apiVersion": "str", "resolver": "str", "params": "[Param]"}
    t["EmbeddedTask"] = {
        "spec": "any",
        "metadata": "PipelineTaskMetadata",
        "apiVersion": "str",
        "kind": "str",
        **_TASK_SPEC,
    }
    t["PipelineTask"] = dict(_PIPELINE_TASK)
    t["PipelineSpec"] = {
        "displayName": "str",
        "description": "str",
        "tasks": "[PipelineTask]",
        "params": "[ParamSpec]",
        "workspaces": "[PipelineWorkspaceDeclaration]",
        "results": "[PipelineResult]",
        "finally": "[PipelineTask]",
    }
    return t


def _v1beta1() -> Table:
    t = _v1()
    # v1beta1 keeps PipelineResources (decoded, then disallowed by validation) and the corev1
    # container fields v1 dropped from Step and StepTemplate.
    t["TaskSpec"] = {**_TASK_SPEC, "resources": "any"}
    t["EmbeddedTask"] = {**t["EmbeddedTask"], "resources": "any"}
    t["Step"] = {
        **_CONTAINER_COMMON,
        **_CONTAINER_EXTRA,
        "resources": "ResourceRequirements",
        **_STEP_TEKTON,
    }
    t["StepTemplate"] = {
        **_CONTAINER_COMMON,
        **_CONTAINER_EXTRA,
        "resources": "ResourceRequirements",
    }
    t["Sidecar"] = {
        **_CONTAINER_COMMON,
        **_CONTAINER_EXTRA,
        "resources": "ResourceRequirements",
        **_SIDECAR_TEKTON,
    }
    t["TaskRef"] = {**t["TaskRef"], "bundle": "str"}
    t["PipelineRef"] = {**t["PipelineRef"], "bundle": "str"}
    t["PipelineTask"] = {**_PIPELINE_TASK, "resources": "any"}
    t["PipelineSpec"] = {**t["PipelineSpec"], "resources": "[any]"}
    return t


_TABLES: dict[str, Table] = {"v1": _v1(), "v1beta1": _v1beta1()}


def table_for(api_version: str) -> Table:
    """The field table of an apiVersion (`tekton.dev/v1beta1` or `v1beta1`; anything else: v1)."""
    return _TABLES["v1beta1"] if api_version.rsplit("/", 1)[-1] == "v1beta1" else _TABLES["v1"]


# --- scalar decoders -----------------------------------------------------------------------------

_GO_TYPE = {
    "str": "string",
    "int": "int32",
    "bool": "bool",
    "qty": "resource.Quantity",
    "intstr": "intstr.IntOrString",
    "dur": "metav1.Duration",
}

_QUANTITY = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?\Z")

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]+)")


def parse_go_duration(text: str) -> int | None:
    """Go's time.ParseDuration in nanoseconds, or None where Go reports an error."""
    s = text
    neg = False
    if s[:1] in ("-", "+"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total = 0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            return None
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            return None  # Go requires a digit on one side of the dot
        if unit not in _DURATION_UNITS:
            return None
        scale = _DURATION_UNITS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // (10 ** len(frac))
        total += value
        pos = m.end()
    if total > (1 << 63) - 1:
        return None
    return -total if neg else total


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "value"


def _scalar_error(kind: str, value: Any) -> str | None:
    """Why a Go decoder of kind would refuse value, or None when it accepts it."""
    if value is None or kind in ("any", "pv"):
        return None
    if kind == "str":
        return None if isinstance(value, str) else ""
    if kind == "bool":
        return None if isinstance(value, bool) else ""
    if kind == "int":
        if isinstance(value, bool):
            return ""
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return None
        return ""
    if kind == "intstr":
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return None
        return ""
    if kind == "qty":
        if isinstance(value, bool):
            return ""
        if isinstance(value, int | float):
            return None
        if isinstance(value, str):
            if _QUANTITY.match(value.strip()):
                return None
            return (
                "quantities must match the regular expression "
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            )
        return ""
    if kind == "dur":
        if not isinstance(value, str):
            return ""
        if parse_go_duration(value) is None:
            return f'time: invalid duration "{value}"'
        return None
    return None  # pragma: no cover - every kind is listed above


# --- the walk ------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _parse(spec: str) -> tuple[str, str]:
    """('list', T), ('map', T), ('struct', Name) or ('scalar', kind)."""
    if spec.startswith("[") and spec.endswith("]"):
        return "list", spec[1:-1]
    if spec.startswith("{") and spec.endswith("}"):
        return "map", spec[1:-1]
    if spec in _GO_TYPE or spec in ("any", "pv"):
        return "scalar", spec
    return "struct", spec


class _Walker:
    def __init__(self, doc: Document, table: Table) -> None:
        self.doc = doc
        self.table = table
        self.findings: list[Finding] = []

    def type_error(self, path: YamlPath, value: Any, go_type: str, detail: str = "") -> None:
        where = field_path(path) or "(root)"
        msg = f"cannot decode {_json_kind(value)} into {where} of type {go_type}"
        if detail:
            msg = f"{msg}: {detail}"
        elif go_type == "string" and isinstance(value, bool | int | float):
            # `name: on` is the boolean true to YAML; the fix is the text as written, quoted.
            msg = f"{msg}; {quote_hint(value, self.doc.written_as(path))}"
        self.findings.append(self.doc.finding(RULE_TYPE, path, msg, Severity.ERROR))

    def walk(self, value: Any, spec: str, path: YamlPath) -> None:
        shape, inner = _parse(spec)
        if value is None:
            return  # JSON null decodes to the zero value of any Go type
        if shape == "scalar":
            err = _scalar_error(inner, value)
            if err is not None:
                self.type_error(path, value, _GO_TYPE.get(inner, inner), err)
            return
        if shape == "list":
            if not isinstance(value, list):
                self.type_error(path, value, f"[]{_GO_TYPE.get(inner, inner)}")
                return
            for i, item in enumerate(value):
                self.walk(item, inner, (*path, i))
            return
        if shape == "map":
            if not isinstance(value, dict):
                self.type_error(path, value, f"map[string]{_GO_TYPE.get(inner, inner)}")
                return
            for k, item in value.items():
                self.walk(item, inner, (*path, k))
            return
        fields = self.table.get(inner)
        if fields is None:  # pragma: no cover - the tables are closed over their own names
            return
        if not isinstance(value, dict):
            self.type_error(path, value, inner)
            return
        for key, item in value.items():
            sub = fields.get(key)
            child = (*path, key)
            if sub is None:
                self.findings.append(
                    self.doc.finding(
                        RULE_UNKNOWN,
                        child,
                        f'unknown field "{key}" in {inner}'
                        + (f" ({field_path(path)})" if path else ""),
                        Severity.ERROR,
                        at_key=True,
                    )
                )
                continue
            self.walk(item, sub, child)
        if inner == "Param" and "value" not in value:
            # Decoding leaves the ParamValue's type unset; knative's webhook then round-trips
            # the object through JSON and ParamValue.MarshalJSON fails, refusing the object.
            name = value.get("name")
            self.findings.append(
                self.doc.finding(
                    RULE_PARAM_VALUE,
                    path,
                    f"param {name!r} has no value: admission refuses it (impossible "
                    'ParamValues.Type ""); give it a value (value: "" for an empty string)',
                    Severity.ERROR,
                )
            )


def check_fields(doc: Document, path: YamlPath, type_name: str, api_version: str) -> list[Finding]:
    """Strict-decoding findings for the value at path, read as type_name of api_version.

    type_name is one of the struct names of the tables ("Pipeline", "Task", "PipelineSpec",
    "PipelineTask", "EmbeddedTask", "TaskSpec", "Step", ...). A missing value yields nothing.
    """
    table = table_for(api_version)
    if type_name not in table:
        raise ValueError(f"unknown Tekton type {type_name!r}")
    walker = _Walker(doc, table)
    walker.walk(doc.get(tuple(path)), type_name, tuple(path))
    return walker.findings
