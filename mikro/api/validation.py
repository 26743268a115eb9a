"""Validation of objects, as the API server does it: a list of field errors with paths.

Pure. Messages follow Kubernetes' wording (`spec.replicas: Invalid value: -1: must be
greater than or equal to 0`) so that users recognise them.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from typing import Any

from mikro.api import batch, checks, storage

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?\Z")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?\Z")

SUFFIX_FACTORS = {
    "": 1,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}

# Kinds whose names are DNS-1123 labels rather than subdomains.
LABEL_NAMED_KINDS = {"Namespace", "Service"}
POD_TEMPLATE_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"}


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str  # Required, Invalid, Unsupported, Duplicate, Forbidden
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    @property
    def cause_type(self) -> str:
        return "Field" + {
            "Required": "ValueRequired",
            "Invalid": "ValueInvalid",
            "Unsupported": "ValueNotSupported",
            "Duplicate": "ValueDuplicate",
            "Forbidden": "ValueForbidden",
            "NotFound": "ValueNotFound",
        }.get(self.reason, "ValueInvalid")


def parse_quantity(value: Any) -> float:
    """Parse a Kubernetes quantity ("100m", "64Mi", "1.5", 2) into a number; ValueError if invalid."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(value) from None
        if not math.isfinite(number):
            raise ValueError(value)
        return number
    if not isinstance(value, str):
        raise ValueError(value)
    m = QUANTITY.match(value.strip())
    if not m or value.strip() != value:
        raise ValueError(value)
    number, suffix = m.group(1), m.group(2) or ""
    try:
        base = float(number)
        value = base * 10.0 ** int(suffix[1:]) if suffix[:1] in ("e", "E") else base * SUFFIX_FACTORS[suffix]
    except OverflowError:
        raise ValueError(value) from None
    if not math.isfinite(value):
        raise ValueError(value)
    return value


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def required(self, path: str) -> None:
        self.errors.append(FieldError(path, "Required", "Required value"))

    def invalid(self, path: str, value: Any, why: str) -> None:
        shown = f'"{value}"' if isinstance(value, str) else value
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            # Go's %#v of a map[string]string, as the API server prints labels.
            shown = "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in value.items()) + "}"
        self.errors.append(FieldError(path, "Invalid", f"Invalid value: {shown}: {why}"))

    def unsupported(self, path: str, value: Any, allowed: list[str]) -> None:
        choices = ", ".join(f'"{a}"' for a in allowed)
        shown = f'"{value}"' if isinstance(value, str) else value
        self.errors.append(FieldError(path, "Unsupported", f"Unsupported value: {shown}: supported values: {choices}"))

    def duplicate(self, path: str, value: Any) -> None:
        self.errors.append(FieldError(path, "Duplicate", f'Duplicate value: "{value}"'))

    def each(self, path: str, value: Any, messages: list[str]) -> None:
        """One Invalid error per message of a `checks` function."""
        for message in messages:
            self.invalid(path, value, message)

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.invalid(path, type(value).__name__, "must be a mapping")
            return {}
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.invalid(path, type(value).__name__, "must be a list")
            return []
        return value

    def integer(self, value: Any, path: str, low: int | None = None, high: int | None = None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            self.invalid(path, value, "must be an integer")
        elif low is not None and value < low:
            self.invalid(path, value, f"must be greater than or equal to {low}")
        elif high is not None and value > high:
            self.invalid(path, value, f"must be less than or equal to {high}")

    def port(self, value: Any, path: str, allow_name: bool = False) -> None:
        if isinstance(value, str) and allow_name:
            if not IANA_SVC_NAME.match(value) or not re.search("[a-z]", value):
                self.invalid(path, value, "must be a port number or a valid port name (IANA_SVC_NAME)")
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.invalid(path, value, "must be between 1 and 65535, inclusive")

    def labels(self, labels: Any, path: str) -> None:
        for key, value in self.mapping(labels, path).items():
            name = str(key).rsplit("/", 1)[-1]
            if not LABEL_NAME.match(name) or len(name) > 63:
                self.invalid(f"{path}", key, "name part must consist of alphanumeric characters, '-', '_' or '.'")
            if value is not None and (not isinstance(value, str) or not LABEL_VALUE.match(value) or len(value) > 63):
                self.invalid(
                    f"{path}.{key}",
                    value,
                    "a valid label must be an empty string or consist of "
                    "alphanumeric characters, '-', '_' or '.', at most 63 characters",
                )

    def quantity(self, value: Any, path: str) -> None:
        try:
            if parse_quantity(value) < 0:
                self.invalid(path, value, "must be greater than or equal to 0")
        except ValueError:
            self.invalid(
                path,
                value,
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            )


def validate(obj: dict[str, Any]) -> list[FieldError]:
    """Every field error of one object (empty when it is valid)."""
    c = _Checker()
    kind = obj.get("kind", "")
    meta = c.mapping(obj.get("metadata"), "metadata")
    _metadata(c, meta, kind, "metadata")
    spec = c.mapping(obj.get("spec"), "spec")
    if kind == "Pod":
        _pod_spec(c, spec, "spec")
    elif kind in POD_TEMPLATE_KINDS:
        _workload(c, kind, spec, obj)
    elif kind == "CronJob":
        job = c.mapping(c.mapping(spec.get("jobTemplate"), "spec.jobTemplate").get("spec"), "spec.jobTemplate.spec")
        _template(c, job, "spec.jobTemplate.spec", restart_policies=None)
        c.errors += [FieldError(*e) for e in batch.validate_cronjob(obj)]
    elif kind == "HorizontalPodAutoscaler":
        _hpa(c, spec)
    elif kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "PodDisruptionBudget", "ResourceQuota"):
        from mikro.api import policy  # policy imports this module

        c.errors += [FieldError(*e) for e in policy.validate(obj)]
    elif kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        from mikro.api import webhooks

        c.errors += [FieldError(*e) for e in webhooks.validate_config(obj)]
    elif kind == "PersistentVolumeClaim":
        c.errors += [FieldError(*e) for e in storage.validate_claim(obj)]
    elif kind == "PersistentVolume":
        c.errors += [FieldError(*e) for e in storage.validate_volume(obj)]
    elif kind == "Service":
        _service(c, spec)
    elif kind == "Ingress":
        _ingress(c, spec)
    elif kind == "Endpoints":
        _endpoints(c, obj)
    elif kind == "Secret":
        _config_keys(c, obj, ("data", "stringData"))
        for key, value in c.mapping(obj.get("data"), "data").items():
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                c.invalid(f"data[{key}]", "<value>", "illegal base64 data")
        for key, value in c.mapping(obj.get("stringData"), "stringData").items():
            if not isinstance(value, str):
                c.invalid(f"stringData[{key}]", value, "must be a string")
    elif kind == "ConfigMap":
        _config_keys(c, obj, ("data", "binaryData"))
        for key, value in c.mapping(obj.get("data"), "data").items():
            if not isinstance(value, str):
                c.invalid(f"data[{key}]", value, "must be a string")
    return c.errors


def _config_keys(c: _Checker, obj: dict[str, Any], fields: tuple[str, ...]) -> None:
    """ConfigMap and Secret keys become file names in volumes: Kubernetes' config key rule."""
    seen: set[str] = set()
    for field in fields:
        for key in c.mapping(obj.get(field), field):
            c.each(f"{field}[{key}]", key, checks.config_key(key))
            if field != "stringData" and key in seen:
                c.errors.append(
                    FieldError(
                        f"{field}[{key}]", "Invalid", f'Invalid value: "{key}": duplicate of key present in {fields[0]}'
                    )
                )
            seen.add(key)


def _endpoints(c: _Checker, obj: dict[str, Any]) -> None:
    for i, subset in enumerate(c.sequence(obj.get("subsets"), "subsets")):
        subset = c.mapping(subset, f"subsets[{i}]")
        for field in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(c.sequence(subset.get(field), f"subsets[{i}].{field}")):
                address = c.mapping(address, f"subsets[{i}].{field}[{j}]")
                ip = address.get("ip")
                if ip is None:
                    c.required(f"subsets[{i}].{field}[{j}].ip")
                else:
                    c.each(f"subsets[{i}].{field}[{j}].ip", ip, checks.endpoint_ip(ip))
                if address.get("hostname") is not None:
                    hostname = address["hostname"]
                    c.each(f"subsets[{i}].{field}[{j}].hostname", hostname, checks.dns1123_label(hostname))
        for j, port in enumerate(c.sequence(subset.get("ports"), f"subsets[{i}].ports")):
            port = c.mapping(port, f"subsets[{i}].ports[{j}]")
            ppath = f"subsets[{i}].ports[{j}]"
            if port.get("name") not in (None, ""):  # Endpoints port names are DNS labels, as a Service's
                c.each(f"{ppath}.name", port["name"], checks.dns1123_label(port["name"]))
            if port.get("port") is None:
                c.required(f"{ppath}.port")
            else:
                c.port(port["port"], f"{ppath}.port")
            protocol = port.get("protocol", "TCP")
            if protocol not in ("TCP", "UDP", "SCTP"):
                c.unsupported(f"{ppath}.protocol", protocol, ["SCTP", "TCP", "UDP"])


def _metadata(c: _Checker, meta: dict[str, Any], kind: str, path: str) -> None:
    name = meta.get("name")
    if not name and not meta.get("generateName"):
        c.required(f"{path}.name")
    elif name is not None and kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        # RBAC names are path segments (system:aggregate-to-view): IsValidPathSegmentName
        bad = ["may not be '.'"] if name == "." else ["may not be '..'"] if name == ".." else []
        bad += [f"may not contain '{ch}'" for ch in "/%" if isinstance(name, str) and ch in name]
        for why in bad if isinstance(name, str) else ["must be a string"]:
            c.invalid(f"{path}.name", name, why)
    elif name is not None:
        pattern = DNS1123_LABEL if kind in LABEL_NAMED_KINDS else DNS1123_SUBDOMAIN
        limit = 63 if kind in LABEL_NAMED_KINDS else 253
        if not isinstance(name, str) or not pattern.match(name) or len(name) > limit:
            c.invalid(
                f"{path}.name",
                name,
                "a lowercase RFC 1123 "
                + ("label" if limit == 63 else "subdomain")
                + " must consist of lower case alphanumeric characters, '-' or '.', and must start "
                "and end with an alphanumeric character",
            )
    ns = meta.get("namespace")
    if ns is not None and (not isinstance(ns, str) or not DNS1123_LABEL.match(ns)):
        c.invalid(
            f"{path}.namespace",
            ns,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
        )
    c.labels(meta.get("labels"), f"{path}.labels")
    for key, value in c.mapping(meta.get("annotations"), f"{path}.annotations").items():
        if not isinstance(value, str):
            c.invalid(f"{path}.annotations.{key}", value, "must be a string")


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, Any] | None) -> bool:
    """LabelSelector semantics (matchLabels and matchExpressions); an empty selector matches all."""
    labels = labels or {}
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _workload(c: _Checker, kind: str, spec: dict[str, Any], obj: dict[str, Any]) -> None:
    c.integer(spec.get("replicas"), "spec.replicas", low=0)
    selector = spec.get("selector")
    template = c.mapping(spec.get("template"), "spec.template")
    if kind == "ReplicationController":
        selector = {"matchLabels": selector} if selector else None
    elif kind != "Job":
        if not selector:
            c.required("spec.selector")
        else:
            selector = c.mapping(selector, "spec.selector")
            if not selector.get("matchLabels") and not selector.get("matchExpressions"):
                c.invalid("spec.selector", selector, "empty selector is invalid for deployment")
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and template and not selector_matches(selector, template_labels):
        c.invalid("spec.template.metadata.labels", template_labels, "`selector` does not match template `labels`")
    policies = None if kind == "Job" else ["Always"]  # a Job's restartPolicy: batch.validate_job
    _template(c, spec, "spec", restart_policies=policies)
    if kind == "Job":
        c.errors += [FieldError(*e) for e in batch.validate_job(obj)]
    if kind in ("StatefulSet", "DaemonSet"):
        from mikro.api import validation_apps

        (validation_apps.statefulset if kind == "StatefulSet" else validation_apps.daemonset)(c, spec)
    if kind == "Deployment":
        strategy = c.mapping(spec.get("strategy"), "spec.strategy")
        stype = strategy.get("type")
        if stype is not None and stype not in ("RollingUpdate", "Recreate"):
            c.unsupported("spec.strategy.type", stype, ["Recreate", "RollingUpdate"])
        rolling = c.mapping(strategy.get("rollingUpdate"), "spec.strategy.rollingUpdate")
        if stype == "Recreate" and rolling:
            c.errors.append(
                FieldError(
                    "spec.strategy.rollingUpdate",
                    "Forbidden",
                    "Forbidden: may not be specified when strategy `type` is 'Recreate'",
                )
            )
        for field in ("maxSurge", "maxUnavailable"):
            value = rolling.get(field)
            if value is None:
                continue
            if isinstance(value, str):
                if not re.match(r"^\d+%\Z", value):
                    c.invalid(
                        f"spec.strategy.rollingUpdate.{field}", value, "must be an integer or percentage (e.g '5%')"
                    )
            else:
                c.integer(value, f"spec.strategy.rollingUpdate.{field}", low=0)
        c.integer(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit", low=0)


def _template(c: _Checker, spec: dict[str, Any], path: str, restart_policies: list[str] | None) -> None:
    template = c.mapping(spec.get("template"), f"{path}.template")
    if not template:
        c.required(f"{path}.template")
        return
    tmeta = c.mapping(template.get("metadata"), f"{path}.template.metadata")
    c.labels(tmeta.get("labels"), f"{path}.template.metadata.labels")
    pod = c.mapping(template.get("spec"), f"{path}.template.spec")
    # A StatefulSet's claim templates are volumes of its pods.
    claims = {
        str(t.get("metadata", {}).get("name")) for t in spec.get("volumeClaimTemplates") or [] if isinstance(t, dict)
    }
    _pod_spec(c, pod, f"{path}.template.spec", restart_policies, claims)


def _pod_spec(
    c: _Checker,
    spec: dict[str, Any],
    path: str,
    restart_policies: list[str] | None = None,
    claims: set[str] | None = None,
) -> None:
    allowed = restart_policies or ["Always", "OnFailure", "Never"]
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in allowed:
        c.unsupported(f"{path}.restartPolicy", policy, allowed)
    c.integer(spec.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds", low=0)
    containers = c.sequence(spec.get("containers"), f"{path}.containers")
    if not containers:
        c.required(f"{path}.containers")
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, ctr in enumerate(c.sequence(spec.get(field), f"{path}.{field}")):
            _container(c, c.mapping(ctr, f"{path}.{field}[{i}]"), f"{path}.{field}[{i}]", names)
    volumes: set[str] = set()
    for i, vol in enumerate(c.sequence(spec.get("volumes"), f"{path}.volumes")):
        vol = c.mapping(vol, f"{path}.volumes[{i}]")
        name = vol.get("name")
        if not name:
            c.required(f"{path}.volumes[{i}].name")
        elif name in volumes:
            c.duplicate(f"{path}.volumes[{i}].name", name)
        else:
            c.each(f"{path}.volumes[{i}].name", name, checks.dns1123_label(name))
        volumes.add(str(name))
        _volume_source(c, vol, f"{path}.volumes[{i}]")
    for field in ("initContainers", "containers"):
        for i, ctr in enumerate(c.sequence(spec.get(field), f"{path}.{field}")):
            if isinstance(ctr, dict):
                _volume_mounts(c, ctr, f"{path}.{field}[{i}]", volumes | (claims or set()))
    _security_context(c, c.mapping(spec.get("securityContext"), f"{path}.securityContext"), f"{path}.securityContext")


def _security_context(c: _Checker, sc: dict[str, Any], path: str, container: bool = False) -> None:
    """The ids and switches a pod or container security context passes to the runtime."""
    for field in ("runAsUser", "runAsGroup", "fsGroup"):
        if field == "fsGroup" and container:
            continue
        c.integer(sc.get(field), f"{path}.{field}", low=0, high=2147483647)
    if not container:
        for j, gid in enumerate(c.sequence(sc.get("supplementalGroups"), f"{path}.supplementalGroups")):
            c.integer(gid, f"{path}.supplementalGroups[{j}]", low=0, high=2147483647)
    for field in ("runAsNonRoot", "privileged", "allowPrivilegeEscalation", "readOnlyRootFilesystem"):
        value = sc.get(field)
        if value is not None and not isinstance(value, bool):
            c.invalid(f"{path}.{field}", value, "must be a boolean")
    if not container:
        return
    caps = c.mapping(sc.get("capabilities"), f"{path}.capabilities")
    for field in ("add", "drop"):
        for j, cap in enumerate(c.sequence(caps.get(field), f"{path}.capabilities.{field}")):
            if not isinstance(cap, str) or not re.fullmatch(r"[A-Za-z_]{1,64}", cap):
                c.invalid(f"{path}.capabilities.{field}[{j}]", cap, "must be a capability name (e.g. NET_ADMIN)")
    if sc.get("allowPrivilegeEscalation") is False and (sc.get("privileged") or "SYS_ADMIN" in (caps.get("add") or [])):
        c.invalid(
            path,
            sc,
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
            if sc.get("privileged")
            else "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
        )


def _volume_source(c: _Checker, vol: dict[str, Any], path: str) -> None:
    """configMap, secret, projected and downwardAPI items become files: relative paths only."""
    sources: list[tuple[str, Any]] = []
    for kind in ("configMap", "secret", "downwardAPI"):
        if isinstance(vol.get(kind), dict):
            sources.append((f"{path}.{kind}", vol[kind]))
    projected = vol.get("projected")
    if isinstance(projected, dict):
        for j, src in enumerate(c.sequence(projected.get("sources"), f"{path}.projected.sources")):
            for kind in ("configMap", "secret", "downwardAPI"):
                if isinstance(src, dict) and isinstance(src.get(kind), dict):
                    sources.append((f"{path}.projected.sources[{j}].{kind}", src[kind]))
    for spath, source in sources:
        for k, item in enumerate(c.sequence(source.get("items"), f"{spath}.items")):
            item = c.mapping(item, f"{spath}.items[{k}]")
            ipath = f"{spath}.items[{k}]"
            if "key" in item or not spath.endswith("downwardAPI"):
                if not item.get("key"):
                    c.required(f"{ipath}.key")
            if not item.get("path"):
                c.required(f"{ipath}.path")
            else:
                c.each(f"{ipath}.path", item["path"], checks.local_descending_path(item["path"]))
    host_path = vol.get("hostPath")
    if isinstance(host_path, dict) and not host_path.get("path"):
        c.required(f"{path}.hostPath.path")


def _volume_mounts(c: _Checker, ctr: dict[str, Any], path: str, volumes: set[str]) -> None:
    for j, mount in enumerate(c.sequence(ctr.get("volumeMounts"), f"{path}.volumeMounts")):
        mount = c.mapping(mount, f"{path}.volumeMounts[{j}]")
        mpath = f"{path}.volumeMounts[{j}]"
        name = mount.get("name")
        if not name:
            c.required(f"{mpath}.name")
        elif name not in volumes:
            c.errors.append(FieldError(f"{mpath}.name", "NotFound", f'Not found: "{name}"'))
        if not mount.get("mountPath"):
            c.required(f"{mpath}.mountPath")
        elif not isinstance(mount["mountPath"], str) or "\x00" in mount["mountPath"]:
            c.invalid(f"{mpath}.mountPath", mount["mountPath"], "must be a path")
        for field in ("subPath", "subPathExpr"):
            if mount.get(field):
                c.each(f"{mpath}.{field}", mount[field], checks.local_descending_path(mount[field]))


def _container(c: _Checker, ctr: dict[str, Any], path: str, names: set[str]) -> None:
    name = ctr.get("name")
    if not name:
        c.required(f"{path}.name")
    elif not isinstance(name, str) or not DNS1123_LABEL.match(name):
        c.invalid(
            f"{path}.name", name, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"
        )
    elif name in names:
        c.duplicate(f"{path}.name", name)
    else:
        names.add(name)
    image = ctr.get("image")
    if not image or not isinstance(image, str) or not image.strip():
        c.required(f"{path}.image")
    pull = ctr.get("imagePullPolicy")
    if pull is not None and pull not in ("Always", "IfNotPresent", "Never"):
        c.unsupported(f"{path}.imagePullPolicy", pull, ["Always", "IfNotPresent", "Never"])
    for field in ("command", "args"):
        for j, item in enumerate(c.sequence(ctr.get(field), f"{path}.{field}")):
            if not isinstance(item, str):
                c.invalid(f"{path}.{field}[{j}]", item, "must be a string")
    port_names: set[str] = set()
    for j, port in enumerate(c.sequence(ctr.get("ports"), f"{path}.ports")):
        port = c.mapping(port, f"{path}.ports[{j}]")
        if port.get("containerPort") is None:
            c.required(f"{path}.ports[{j}].containerPort")
        else:
            c.port(port.get("containerPort"), f"{path}.ports[{j}].containerPort")
        if port.get("hostPort") is not None:
            c.port(port.get("hostPort"), f"{path}.ports[{j}].hostPort")
        protocol = port.get("protocol")
        if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
            c.unsupported(f"{path}.ports[{j}].protocol", protocol, ["SCTP", "TCP", "UDP"])
        pname = port.get("name")
        if pname is not None:
            if not isinstance(pname, str) or not IANA_SVC_NAME.match(pname):
                c.invalid(
                    f"{path}.ports[{j}].name",
                    pname,
                    "must be no more than 15 characters, lower case alphanumeric or '-'",
                )
            elif pname in port_names:
                c.duplicate(f"{path}.ports[{j}].name", pname)
            port_names.add(str(pname))
    for j, env in enumerate(c.sequence(ctr.get("env"), f"{path}.env")):
        env = c.mapping(env, f"{path}.env[{j}]")
        ename = env.get("name")
        if not ename:
            c.required(f"{path}.env[{j}].name")
        elif not isinstance(ename, str) or not ENV_NAME.match(ename):
            c.invalid(
                f"{path}.env[{j}].name",
                ename,
                "a valid environment variable name must consist of "
                "alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
            )
        if "value" in env and env["value"] is not None and not isinstance(env["value"], str):
            c.invalid(f"{path}.env[{j}].value", env["value"], "must be a string")
    _security_context(
        c, c.mapping(ctr.get("securityContext"), f"{path}.securityContext"), f"{path}.securityContext", True
    )
    resources = c.mapping(ctr.get("resources"), f"{path}.resources")
    for section in ("limits", "requests"):
        for key, value in c.mapping(resources.get(section), f"{path}.resources.{section}").items():
            c.quantity(value, f"{path}.resources.{section}.{key}")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.mapping(ctr.get(probe), f"{path}.{probe}")
        for field in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold"):
            c.integer(p.get(field), f"{path}.{probe}.{field}", low=0)


def _service(c: _Checker, spec: dict[str, Any]) -> None:
    stype = spec.get("type", "ClusterIP")
    types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    if stype not in types:
        c.unsupported("spec.type", stype, types)
    ports = c.sequence(spec.get("ports"), "spec.ports")
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        c.required("spec.ports")
    seen: set[tuple[Any, Any]] = set()
    names: set[str] = set()
    for i, port in enumerate(ports):
        port = c.mapping(port, f"spec.ports[{i}]")
        path = f"spec.ports[{i}]"
        if port.get("port") is None:
            c.required(f"{path}.port")
        else:
            c.port(port.get("port"), f"{path}.port")
        if port.get("targetPort") is not None:
            c.port(port.get("targetPort"), f"{path}.targetPort", allow_name=True)
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            c.unsupported(f"{path}.protocol", protocol, ["SCTP", "TCP", "UDP"])
        key = (port.get("port"), protocol)
        if key in seen:
            c.duplicate(path, f"{key[0]}/{key[1]}")
        seen.add(key)
        if len(ports) > 1 and not port.get("name"):
            c.required(f"{path}.name")
        if port.get("name"):
            # A Service port's name is a DNS label (`kubectl create service --tcp=80:8080` names it
            # 80-8080); IANA_SVC_NAME is for container ports and for backends that name them.
            c.each(f"{path}.name", port["name"], checks.dns1123_label(port["name"]))
            if port["name"] in names:
                c.duplicate(f"{path}.name", port["name"])
            names.add(port["name"])
        node_port = port.get("nodePort")
        if node_port is not None:
            if stype not in ("NodePort", "LoadBalancer"):
                c.errors.append(
                    FieldError(f"{path}.nodePort", "Forbidden", "Forbidden: may not be used when `type` is 'ClusterIP'")
                )
            elif isinstance(node_port, bool) or not isinstance(node_port, int) or not 30000 <= node_port <= 32767:
                c.invalid(
                    f"{path}.nodePort",
                    node_port,
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                )
    selector = c.mapping(spec.get("selector"), "spec.selector")
    c.labels(selector, "spec.selector")
    cluster_ip = spec.get("clusterIP")
    if cluster_ip not in (None, "", "None") and not re.match(r"^\d+\.\d+\.\d+\.\d+\Z", str(cluster_ip)):
        c.invalid("spec.clusterIP", cluster_ip, "must be a valid IP address, (e.g. 10.9.8.7) or None")


PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]


def _ingress_backend(c: _Checker, backend: dict[str, Any], path: str) -> None:
    service = c.mapping(backend.get("service"), f"{path}.service")
    if not service and not backend.get("resource"):
        c.required(f"{path}.service")
        return
    if service:
        if not service.get("name"):
            c.required(f"{path}.service.name")
        else:
            c.each(f"{path}.service.name", service["name"], checks.dns1035_label(service["name"]))
        port = c.mapping(service.get("port"), f"{path}.service.port")
        if "number" in port and "name" in port:
            c.invalid(f"{path}.service.port", port, "cannot set both port name & port number")
        elif "number" in port:
            c.port(port["number"], f"{path}.service.port.number")
        elif not port.get("name"):
            c.required(f"{path}.service.port")
        else:
            c.each(f"{path}.service.port.name", port["name"], checks.port_name(port["name"]))


def _ingress(c: _Checker, spec: dict[str, Any]) -> None:
    if spec.get("defaultBackend"):
        _ingress_backend(c, c.mapping(spec["defaultBackend"], "spec.defaultBackend"), "spec.defaultBackend")
    rules = c.sequence(spec.get("rules"), "spec.rules")
    if not rules and not spec.get("defaultBackend"):
        c.errors.append(
            FieldError("spec", "Invalid", "Invalid value: either `defaultBackend` or `rules` must be specified")
        )
    for i, rule in enumerate(rules):
        rule = c.mapping(rule, f"spec.rules[{i}]")
        host = rule.get("host")
        if host not in (None, ""):
            c.each(f"spec.rules[{i}].host", host, checks.ingress_host(host))
        http = c.mapping(rule.get("http"), f"spec.rules[{i}].http")
        paths = c.sequence(http.get("paths"), f"spec.rules[{i}].http.paths")
        if "http" in rule and not paths:
            c.required(f"spec.rules[{i}].http.paths")
        for j, item in enumerate(paths):
            item = c.mapping(item, f"spec.rules[{i}].http.paths[{j}]")
            ipath = f"spec.rules[{i}].http.paths[{j}]"
            ptype = item.get("pathType")
            if ptype is None:
                c.required(f"{ipath}.pathType")
            elif ptype not in PATH_TYPES:
                c.unsupported(f"{ipath}.pathType", ptype, PATH_TYPES)
            value = item.get("path")
            if ptype in ("Exact", "Prefix") and not value:
                c.required(f"{ipath}.path")
            elif value not in (None, ""):
                c.each(f"{ipath}.path", value, checks.ingress_path(value, ptype))
            _ingress_backend(c, c.mapping(item.get("backend"), f"{ipath}.backend"), f"{ipath}.backend")
    for i, tls in enumerate(c.sequence(spec.get("tls"), "spec.tls")):
        tls = c.mapping(tls, f"spec.tls[{i}]")
        for j, host in enumerate(c.sequence(tls.get("hosts"), f"spec.tls[{i}].hosts")):
            messages = checks.ingress_host(host)
            c.each(f"spec.tls[{i}].hosts[{j}]", host, [m for m in messages if "not an IP" not in m])
        if tls.get("secretName") not in (None, ""):
            secret = tls["secretName"]
            c.each(f"spec.tls[{i}].secretName", secret, checks.dns1123_subdomain(secret))


def _hpa(c: _Checker, spec: dict[str, Any]) -> None:
    ref = c.mapping(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    for key in ("kind", "name"):
        if not ref.get(key):
            c.required(f"spec.scaleTargetRef.{key}")
    maximum = spec.get("maxReplicas")
    if maximum is None:
        c.required("spec.maxReplicas")
    elif not isinstance(maximum, int) or isinstance(maximum, bool) or maximum < 1:
        c.invalid("spec.maxReplicas", maximum, "must be greater than or equal to 1")
    minimum = spec.get("minReplicas", 1)
    if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1:
        c.invalid("spec.minReplicas", minimum, "must be greater than or equal to 1")
    elif isinstance(maximum, int) and minimum > maximum:
        c.invalid("spec.maxReplicas", maximum, "must be greater than or equal to `minReplicas`")
    for i, metric in enumerate(spec.get("metrics") or []):
        path = f"spec.metrics[{i}]"
        if metric.get("type") not in ("Resource", "Pods", "Object", "External", "ContainerResource"):
            c.errors.append(FieldError(f"{path}.type", "NotSupported", f'Unsupported value: "{metric.get("type")}": '
                                       'supported values: "ContainerResource", "External", "Object", "Pods", "Resource"'))
            continue
        if metric["type"] != "Resource":
            continue
        target = c.mapping((metric.get("resource") or {}).get("target"), f"{path}.resource.target")
        if target.get("type") == "Utilization":
            value = target.get("averageUtilization")
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                c.invalid(f"{path}.resource.target.averageUtilization", value, "must be greater than 0")
        elif target.get("type") == "AverageValue":
            try:
                parse_quantity(target.get("averageValue"))
            except ValueError:
                c.invalid(f"{path}.resource.target.averageValue", target.get("averageValue"), "must be a quantity")
        else:
            c.errors.append(FieldError(f"{path}.resource.target.type", "NotSupported",
                                       f'Unsupported value: "{target.get("type")}": supported values: '
                                       '"AverageValue", "Utilization", "Value"'))
