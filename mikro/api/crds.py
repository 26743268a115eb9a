"""CustomResourceDefinitions: their checks, their registration as served resources, and the
schema work on custom resources (pruning, defaulting, validation).

A stored CRD is the whole record of a custom resource type: the served resources in
mikro.api.resources.DYNAMIC are rebuilt from the stored CRDs when the API server starts and
kept in step on every CRD write. Validation uses `jsonschema` (OpenAPI v3's schema object is
JSON Schema draft 4 plus a few keywords, which are translated first); its errors are worded
and placed as kube-apiserver words and places them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mikro.api import celrules, resources
from mikro.api.resources import Resource
from mikro.api.validation import FieldError

if TYPE_CHECKING:
    import jsonschema

# jsonschema is imported where a schema is checked: importing it costs 0.13 s of CPU, paid by
# every `mikro` command and the control plane's start otherwise.

CRD_KIND = "CustomResourceDefinition"
# Kept on a deleted CRD until the CRD finalizer controller has removed its every object.
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Fields every object has whatever its schema says.
ROOT_FIELDS = ("apiVersion", "kind", "metadata")


@dataclass(frozen=True)
class Custom:
    """What a served custom resource carries beyond the built-in table's columns."""

    crd_name: str
    singular: str
    list_kind: str
    categories: tuple[str, ...]
    storage_version: str
    schema: dict[str, Any] = field(compare=False, hash=False)
    printer_columns: tuple[dict[str, Any], ...] = field(compare=False, hash=False)
    status: bool = False
    scale: dict[str, Any] | None = field(default=None, compare=False, hash=False)


# -- the CRD itself --------------------------------------------------------------------------


def _names(crd: dict[str, Any]) -> dict[str, Any]:
    names = (crd.get("spec") or {}).get("names")
    return names if isinstance(names, dict) else {}


def validate_crd(crd: dict[str, Any], others: list[dict[str, Any]]) -> tuple[list[FieldError], list[str]]:
    """Field errors of a CRD, and warnings (the CEL rules mikro does not run)."""
    errors: list[FieldError] = []
    warnings: list[str] = []
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    name = (crd.get("metadata") or {}).get("name", "")
    group = spec.get("group")
    names = _names(crd)
    plural, kind = names.get("plural"), names.get("kind")
    if not isinstance(group, str) or not group:
        errors.append(FieldError("spec.group", "Required", "Required value"))
    elif "." not in group:
        errors.append(
            FieldError("spec.group", "Invalid", f'Invalid value: "{group}": should be a domain with at least one dot')
        )
    if not isinstance(plural, str) or not plural:
        errors.append(FieldError("spec.names.plural", "Required", "Required value"))
    elif not DNS_LABEL.match(plural):
        errors.append(
            FieldError(
                "spec.names.plural",
                "Invalid",
                f"Invalid value: \"{plural}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
            )
        )
    if not isinstance(kind, str) or not kind:
        errors.append(FieldError("spec.names.kind", "Required", "Required value"))
    for key in ("singular", "listKind"):
        if key in names and not isinstance(names[key], str):
            errors.append(
                FieldError(f"spec.names.{key}", "Invalid", f"Invalid value: {json.dumps(names[key])}: must be a string")
            )
    if isinstance(plural, str) and isinstance(group, str) and name != f"{plural}.{group}":
        errors.append(
            FieldError("metadata.name", "Invalid", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
        )
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        errors.append(
            FieldError(
                "spec.scope",
                "Unsupported" if scope else "Required",
                f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"'
                if scope
                else "Required value",
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        errors.append(
            FieldError(
                "spec.versions",
                "Invalid",
                "Invalid value: null: must have exactly one version marked as storage version",
            )
        )
        return errors, warnings
    storage = [v for v in versions if isinstance(v, dict) and v.get("storage") is True]
    if len(storage) != 1:
        errors.append(
            FieldError(
                "spec.versions",
                "Invalid",
                f"Invalid value: {json.dumps(versions, separators=(',', ':'))}: must have exactly one version marked as storage version",
            )
        )
    seen: set[str] = set()
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        if (
            not isinstance(version, dict)
            or not isinstance(version.get("name"), str)
            or not DNS_LABEL.match(version["name"])
        ):
            errors.append(
                FieldError(
                    f"{path}.name",
                    "Invalid",
                    f"Invalid value: {json.dumps((version or {}).get('name') if isinstance(version, dict) else version)}: must be a DNS-1035 label",
                )
            )
            continue
        if version["name"] in seen:
            errors.append(FieldError(f"{path}.name", "Duplicate", f'Duplicate value: "{version["name"]}"'))
        seen.add(version["name"])
        schema = (
            (version.get("schema") or {}).get("openAPIV3Schema") if isinstance(version.get("schema"), dict) else None
        )
        if schema is None:
            errors.append(
                FieldError(f"{path}.schema.openAPIV3Schema", "Required", "Required value: schemas are required")
            )
            continue
        errors += _schema_errors(schema, f"{path}.schema.openAPIV3Schema", warnings, root=True)
        for j, column in enumerate(version.get("additionalPrinterColumns") or []):
            if not isinstance(column, dict) or not column.get("name") or not column.get("jsonPath"):
                errors.append(
                    FieldError(
                        f"{path}.additionalPrinterColumns[{j}]",
                        "Required",
                        "Required value: name and jsonPath are required",
                    )
                )
    conversion = (
        (spec.get("conversion") or {}).get("strategy", "None") if isinstance(spec.get("conversion"), dict) else "None"
    )
    if conversion != "None":
        errors.append(
            FieldError(
                "spec.conversion.strategy",
                "Unsupported",
                f'Unsupported value: "{conversion}": supported values: "None" (mikro runs no conversion webhooks)',
            )
        )
    if not errors:
        for other in others:
            if (
                other["metadata"]["name"] != name
                and (other.get("spec") or {}).get("group") == group
                and _names(other).get("kind") == kind
            ):
                errors.append(
                    FieldError(
                        "spec.names.kind",
                        "Invalid",
                        f'Invalid value: "{kind}": is already in use by {other["metadata"]["name"]}',
                    )
                )
    return errors, warnings


def _schema_errors(schema: Any, path: str, warnings: list[str], root: bool = False) -> list[FieldError]:
    """A structural schema: every node a type (or int-or-string / preserve-unknown-fields), the
    root an object, and a valid JSON Schema once translated."""
    if not isinstance(schema, dict):
        return [FieldError(path, "Invalid", "Invalid value: must be an object")]
    errors: list[FieldError] = []
    if root and schema.get("type") != "object":
        errors.append(
            FieldError(
                f"{path}.type",
                "Invalid",
                'Invalid value: "' + str(schema.get("type", "")) + '": must be object at the root',
            )
        )

    def walk(node: Any, at: str) -> None:
        if not isinstance(node, dict):
            return
        for i, rule in enumerate(node.get("x-kubernetes-validations") or []):
            text = rule.get("rule") if isinstance(rule, dict) else None
            if not isinstance(text, str) or not text.strip():
                errors.append(FieldError(f"{at}.x-kubernetes-validations[{i}].rule", "Required", "Required value"))
            elif not celrules.compiles(text):
                warnings.append(f"{at}.x-kubernetes-validations[{i}].rule: mikro cannot compile this CEL rule: not enforced")
        if "$ref" in node:
            errors.append(FieldError(f"{at}.$ref", "Forbidden", "Forbidden: $ref is not supported"))
        if (
            not node.get("type")
            and not node.get("x-kubernetes-int-or-string")
            and not node.get("x-kubernetes-preserve-unknown-fields")
            and at != path + ".properties[metadata]"
        ):
            errors.append(
                FieldError(f"{at}.type", "Required", "Required value: must not be empty for specified object fields")
            )
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, f"{at}.properties[{key}]")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{at}.items")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{at}.additionalProperties")

    walk(schema, path)
    import jsonschema

    try:
        jsonschema.Draft4Validator.check_schema(to_json_schema(schema))
    except jsonschema.SchemaError as exc:
        where = ".".join(str(p) for p in exc.path)
        errors.append(FieldError(f"{path}{'.' + where if where else ''}", "Invalid", f"Invalid value: {exc.message}"))
    return errors


def established(crd: dict[str, Any]) -> dict[str, Any]:
    """The status a CRD has once accepted: its names and the Established, NamesAccepted conditions."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = dict(_names(crd))
    names.setdefault("singular", names.get("kind", "").lower())
    names.setdefault("listKind", names.get("kind", "") + "List")
    crd["spec"]["names"] = names
    conditions = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
            "lastTransitionTime": stamp,
        },
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
            "lastTransitionTime": stamp,
        },
    ]
    old = {c.get("type"): c for c in ((crd.get("status") or {}).get("conditions") or []) if isinstance(c, dict)}
    for c in conditions:
        if old.get(c["type"], {}).get("status") == "True":
            c["lastTransitionTime"] = old[c["type"]].get("lastTransitionTime", stamp)
    crd["status"] = {
        "conditions": conditions,
        "acceptedNames": names,
        "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
    }
    spec = crd["spec"]
    spec.setdefault("conversion", {"strategy": "None"})
    for version in spec["versions"]:
        version.setdefault("served", True)
    return crd


def set_condition(crd: dict[str, Any], type_: str, status: str, reason: str, message: str) -> bool:
    """Set one status condition as apiextensions writes it; whether anything changed."""
    conditions = (crd.setdefault("status", {})).setdefault("conditions", [])
    for c in conditions:
        if c.get("type") == type_:
            if (c.get("status"), c.get("reason"), c.get("message")) == (status, reason, message):
                return False
            if c.get("status") != status:
                c["lastTransitionTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            c.update(status=status, reason=reason, message=message)
            return True
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions.append(
        {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": stamp}
    )
    return True


def gone(crd: dict[str, Any]) -> bool:
    """Whether a CRD the store just wrote was removed by that write (marked, no finalizer left)."""
    meta = crd["metadata"]
    return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")


# -- registration ----------------------------------------------------------------------------


def served(crd: dict[str, Any]) -> list[Resource]:
    spec = crd["spec"]
    names = _names(crd)
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    out = []
    for version in sorted(spec["versions"], key=lambda v: version_priority(v["name"])):
        if version.get("served", True) is False:
            continue
        subs = version.get("subresources") or {}
        custom = Custom(
            crd_name=crd["metadata"]["name"],
            singular=names.get("singular") or names["kind"].lower(),
            list_kind=names.get("listKind") or names["kind"] + "List",
            categories=tuple(names.get("categories") or ()),
            storage_version=storage,
            schema=(version.get("schema") or {}).get("openAPIV3Schema") or {},
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            status="status" in subs,
            scale=subs.get("scale") if isinstance(subs.get("scale"), dict) else None,
        )
        out.append(
            Resource(
                names["kind"],
                spec["group"],
                version["name"],
                names["plural"],
                spec["scope"] == "Namespaced",
                tuple(names.get("shortNames") or ()),
                ("create", "delete", "get", "list", "patch", "update", "watch"),
                custom=custom,
            )
        )
    return out


# Counts the changes of resources.DYNAMIC: the OpenAPI documents are cached per generation.
_generation = [0]


def generation() -> int:
    return _generation[0]


def version_priority(name: str) -> tuple[Any, ...]:
    """Kubernetes' order of versions (v2, v1, v1beta2, v1beta1, v1alpha1, then others by
    name): the first is a group's preferred version."""
    m = re.fullmatch(r"v(\d+)(?:(beta|alpha)(\d+))?", name)
    if m is None:
        return (3, 0, 0, name)
    level = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (level, -int(m.group(1)), -int(m.group(3) or 0), name)


def register(crd: dict[str, Any]) -> None:
    unregister(crd["metadata"]["name"])
    _generation[0] += 1
    for res in served(crd):
        resources.DYNAMIC[(res.group, res.version, res.plural)] = res


def unregister(crd_name: str) -> None:
    _generation[0] += 1
    for key, res in list(resources.DYNAMIC.items()):
        if res.custom.crd_name == crd_name:
            del resources.DYNAMIC[key]


def rebuild(crds: list[dict[str, Any]]) -> None:
    """The served custom resources, from the stored CRDs (at API server start)."""
    resources.DYNAMIC.clear()
    _generation[0] += 1
    for crd in crds:
        register(crd)  # a terminating one too: its objects are listed and deleted until it goes


def stored() -> list[Resource]:
    """One served resource per custom resource type (its versions share one store key)."""
    return [r for r in resources.DYNAMIC.values() if r.custom.storage_version == r.version]


def as_version(obj: dict[str, Any], res: Resource) -> dict[str, Any]:
    """The `None` conversion: only apiVersion changes."""
    if res.custom is not None and isinstance(obj, dict) and obj.get("apiVersion") != res.api_version:
        return {**obj, "apiVersion": res.api_version}
    return obj


# -- custom resources ------------------------------------------------------------------------


def to_json_schema(schema: Any) -> Any:
    """OpenAPI v3 (as CRDs use it) to JSON Schema draft 4: `nullable`, int-or-string, and the
    Kubernetes extensions dropped."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("default", "example", "externalDocs", "nullable", "format"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("allOf", []).append({"anyOf": [{"type": "integer"}, {"type": "string"}]})
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def prune(
    value: Any, schema: dict[str, Any], root: bool = False, path: str = "", unknown: list[str] | None = None
) -> Any:
    """`value` without the fields its structural schema does not declare (their paths are
    appended to `unknown`)."""
    if not isinstance(schema, dict) or (
        schema.get("x-kubernetes-preserve-unknown-fields") is True and "properties" not in schema
    ):
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if root and key in ROOT_FIELDS:
                out[key] = item
            elif key in props:
                out[key] = prune(item, props[key], path=child, unknown=unknown)
            elif isinstance(extra, dict):
                out[key] = prune(item, extra, path=child, unknown=unknown)
            elif extra is True or schema.get("x-kubernetes-preserve-unknown-fields") is True:
                out[key] = item
            elif unknown is not None:
                unknown.append(child)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"], path=f"{path}[{i}]", unknown=unknown) for i, item in enumerate(value)]
    return value


def unknown_fields(obj: dict[str, Any], res: Resource) -> tuple[dict[str, Any], list[str]]:
    """The custom resource as decoded, and the paths of the fields its schema does not declare."""
    unknown: list[str] = []
    return prune(obj, res.custom.schema, root=True, unknown=unknown), unknown


def default(value: Any, schema: dict[str, Any]) -> Any:
    """`value` with the schema's `default`s set where a field is absent."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict):
                continue
            if key not in value and "default" in sub:
                value[key] = json.loads(json.dumps(sub["default"]))
            if key in value:
                value[key] = default(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in list(value):
                if key not in (schema.get("properties") or {}):
                    value[key] = default(value[key], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [default(item, schema["items"]) for item in value]
    return value


def _go(value: Any) -> str:
    """A value as kube-apiserver's field errors print it."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return '"' + type(value).__name__.replace("dict", "object").replace("list", "array") + '"'


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _field_error(err: jsonschema.ValidationError) -> FieldError:
    path = _path(err.absolute_path)
    value = err.instance
    keyword = err.validator
    if keyword == "required":
        missing = err.message.split("'")[1] if "'" in err.message else ""
        return FieldError(f"{path}.{missing}" if path else missing, "Required", "Required value")
    if keyword == "type":
        wanted = err.validator_value if isinstance(err.validator_value, str) else err.validator_value[0]
        return FieldError(
            path,
            "Invalid",
            f"Invalid value: {_go(_type_name(value))}: {path} in body must be of type {wanted}: {_go(value)}",
        )
    if keyword == "enum":
        allowed = ", ".join(_go(v) for v in err.validator_value)
        return FieldError(path, "Unsupported", f"Unsupported value: {_go(value)}: supported values: {allowed}")
    messages = {
        "minimum": f"should be greater than or equal to {err.validator_value}",
        "maximum": f"should be less than or equal to {err.validator_value}",
        "pattern": f"should match '{err.validator_value}'",
        "minLength": f"should be at least {err.validator_value} chars long",
        "maxLength": f"should be at most {err.validator_value} chars long",
        "minItems": f"should have at least {err.validator_value} items",
        "maxItems": f"should have at most {err.validator_value} items",
        "uniqueItems": "shouldn't contain duplicates",
        "minProperties": f"should have at least {err.validator_value} properties",
        "maxProperties": f"should have at most {err.validator_value} properties",
    }
    text = messages.get(str(keyword), err.message)
    if keyword in ("maxLength", "maxItems", "maxProperties"):
        unit = {"maxLength": "bytes", "maxItems": "items", "maxProperties": "properties"}[str(keyword)]
        return FieldError(
            path,
            "TooLong" if keyword == "maxLength" else "TooMany",
            f"Too long: may not be more than {err.validator_value} {unit}",
        )
    return FieldError(path, "Invalid", f"Invalid value: {_go(value)}: {path} in body {text}")


def validate(obj: dict[str, Any], res: Resource) -> list[FieldError]:
    schema = dict(res.custom.schema)
    props = dict(schema.get("properties") or {})
    props.pop("metadata", None)  # metadata is checked as every object's
    props.pop("apiVersion", None)
    props.pop("kind", None)
    schema["properties"] = props
    import jsonschema

    validator = jsonschema.Draft4Validator(to_json_schema(schema))
    body = {k: v for k, v in obj.items() if k not in ROOT_FIELDS}
    errors = sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
    return [_field_error(e) for e in errors]


def admit(obj: dict[str, Any], res: Resource) -> dict[str, Any]:
    """Prune, then default, as kube-apiserver decodes a custom resource."""
    obj = prune(obj, res.custom.schema, root=True)
    return default(obj, res.custom.schema)


# -- tables ----------------------------------------------------------------------------------

_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]|\[\*\]")


def json_path(obj: Any, expr: str) -> list[Any]:
    """The values a printer column's JSONPath (`.spec.replicas`, `.status.conditions[?(@.type=="Ready")].status`,
    `.items[0]`, `[*]`) selects."""
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    expr = expr.lstrip("$")
    current = [obj]
    pos = 0
    while pos < len(expr):
        m = _STEP.match(expr, pos)
        if m is None:
            return []
        pos = m.end()
        nxt: list[Any] = []
        for value in current:
            if m.group(1) is not None:
                if isinstance(value, dict) and m.group(1) in value:
                    nxt.append(value[m.group(1)])
            elif m.group(2) is not None:
                if isinstance(value, list) and int(m.group(2)) < len(value):
                    nxt.append(value[int(m.group(2))])
            elif m.group(3) is not None:
                for item in value if isinstance(value, list) else []:
                    found = json_path(item, "." + m.group(3))
                    if found and str(found[0]) == m.group(4):
                        nxt.append(item)
            elif isinstance(value, list):
                nxt.extend(value)
        current = nxt
    return current


def _cell(values: list[Any], column: dict[str, Any]) -> Any:
    from mikro.cli import printers

    if not values:
        return None
    value = values[0]
    kind = column.get("type", "string")
    if kind == "date" and isinstance(value, str):
        return printers.age(value)
    if kind in ("integer", "number", "boolean") and not isinstance(value, dict | list):
        return value
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def table(res: Resource, items: list[dict[str, Any]], resource_version: str = "") -> dict[str, Any]:
    """The Table of custom resources: Name, then the printer columns (Age when there are none),
    as kube-apiserver's table convertor for CRDs builds it."""
    columns = list(res.custom.printer_columns) or [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}]
    for c in columns:
        definitions.append(
            {
                "name": c["name"],
                "type": c.get("type", "string"),
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": c.get("priority", 0),
            }
        )
    rows = []
    for o in items:
        cells = [o.get("metadata", {}).get("name", "")]
        cells += [_cell(json_path(o, c.get("jsonPath", "")), c) for c in columns]
        rows.append(
            {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata", {}),
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }


# -- scale -----------------------------------------------------------------------------------


def _dotted(path: str) -> list[str]:
    return [p for p in path.lstrip(".").split(".") if p]


def scale_of(obj: dict[str, Any], res: Resource) -> dict[str, Any]:
    scale = res.custom.scale or {}
    meta = obj["metadata"]
    spec_replicas = json_path(obj, scale.get("specReplicasPath", ".spec.replicas"))
    status_replicas = json_path(obj, scale.get("statusReplicasPath", ".status.replicas"))
    selector = json_path(obj, scale["labelSelectorPath"]) if scale.get("labelSelectorPath") else []
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
        "spec": {"replicas": spec_replicas[0] if spec_replicas else 0},
        "status": {
            "replicas": status_replicas[0] if status_replicas else 0,
            **({"selector": selector[0]} if selector else {}),
        },
    }


def set_replicas(obj: dict[str, Any], res: Resource, replicas: int) -> None:
    parts = _dotted((res.custom.scale or {}).get("specReplicasPath", ".spec.replicas"))
    node = obj
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = replicas
