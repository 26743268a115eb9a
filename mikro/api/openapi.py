"""OpenAPI v2 and v3 documents for the kinds mikro serves, as kube-apiserver publishes them.

The schemas are upstream's own (Kubernetes 1.32, see tools/openapi_definitions.py), kept in
mikro/api/data/definitions.json.gz; the paths are generated from the resource table, so that
every kind has the operations, the `x-kubernetes-group-version-kind` and the query parameters
(`fieldValidation`, `fieldManager`, `dryRun`, `force`) kubectl looks for. Pure.
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import json
from importlib import resources as package_data
from typing import Any

from mikro.api import resources
from mikro.api.resources import Resource

VERSION = "v1.32.0"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
PACKAGES = {
    "": "io.k8s.api.core.v1",
    "apps": "io.k8s.api.apps.v1",
    "batch": "io.k8s.api.batch.v1",
    "networking.k8s.io": "io.k8s.api.networking.v1",
    "storage.k8s.io": "io.k8s.api.storage.v1",
}
# Subresources answered with the kind itself (status) or with autoscaling/v1 Scale.
SUBRESOURCES = {
    "Pod": ("status",),
    "Deployment": ("status", "scale"),
    "ReplicaSet": ("status", "scale"),
    "StatefulSet": ("status", "scale"),
    "DaemonSet": ("status",),
    "Job": ("status",),
    "CronJob": ("status",),
    "Service": ("status",),
    "Ingress": ("status",),
    "Namespace": ("status",),
    "ReplicationController": ("status",),
    "PersistentVolumeClaim": ("status",),
    "PersistentVolume": ("status",),
    "Node": ("status",),
}

QUERY_PARAMETERS = {
    "dryRun": "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making these changes.",
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn (the default) - Strict",
    "force": 'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.',
    "pretty": "If 'true', then the output is pretty printed.",
}
PATCH_TYPES = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
]


@functools.cache
def definitions() -> dict[str, Any]:
    data = package_data.files("mikro.api").joinpath("data/definitions.json.gz").read_bytes()
    return json.loads(gzip.decompress(data))


@functools.cache
def definition_name(group: str, version: str, kind: str) -> str | None:
    """The upstream definition that carries this group/version/kind."""
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return name
    return None


def schema_of(kind: str) -> dict[str, Any] | None:
    res = resources.BY_KIND.get(kind)
    if res is None:
        return None
    name = definition_name(res.group, res.version, res.kind)
    return definitions().get(name) if name else None


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref` (v2 form) to its definition."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return definitions().get(ref.rsplit("/", 1)[-1], {})
    return schema


# -- paths -----------------------------------------------------------------------------------


def _gvk(res: Resource, kind: str | None = None) -> dict[str, str]:
    if kind == "Scale":
        return {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    return {"group": res.group, "version": res.version, "kind": kind or res.kind}


def _param(name: str, v3: bool) -> dict[str, Any]:
    if v3:
        return {
            "name": name,
            "in": "query",
            "description": QUERY_PARAMETERS[name],
            "schema": {"type": "boolean" if name == "force" else "string", "uniqueItems": True},
        }
    return {
        "name": name,
        "in": "query",
        "description": QUERY_PARAMETERS[name],
        "type": "boolean" if name == "force" else "string",
        "uniqueItems": True,
    }


def _ref(name: str, v3: bool) -> dict[str, Any]:
    return {"$ref": ("#/components/schemas/" if v3 else "#/definitions/") + name}


def _operation(
    res: Resource, action: str, verb: str, schema: str, v3: bool, params: tuple[str, ...] = (), kind: str | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "description": f"{action} {kind or res.kind}",
        "operationId": f"{action}{res.kind}",
        "tags": [f"{res.group.split('.')[0] or 'core'}_{res.version}"],
        "parameters": [_param(p, v3) for p in ("pretty", *params)],
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": _gvk(res, kind),
    }
    ok = "201" if verb == "post" else "200"
    if v3:
        op["responses"] = {ok: {"description": "OK", "content": {"application/json": {"schema": _ref(schema, v3)}}}}
        if verb in ("put", "post"):
            op["requestBody"] = {"content": {"*/*": {"schema": _ref(schema, v3)}}, "required": True}
        elif verb == "patch":
            body = {"schema": _ref(f"{META}.Patch", v3)}
            # No strategic merge for custom resources: kubectl apply then sends a merge patch.
            types = [t for t in PATCH_TYPES if res.custom is None or "strategic" not in t]
            op["requestBody"] = {"content": {t: body for t in types}, "required": True}
    else:
        op["responses"] = {ok: {"description": "OK", "schema": _ref(schema, v3)}}
        op["produces"] = ["application/json", "application/yaml"]
        if verb in ("put", "post"):
            op["parameters"].append({"name": "body", "in": "body", "required": True, "schema": _ref(schema, v3)})
        elif verb == "patch":
            op["consumes"] = PATCH_TYPES
            op["parameters"].append(
                {"name": "body", "in": "body", "required": True, "schema": _ref(f"{META}.Patch", v3)}
            )
    return op


def _path_params(names: tuple[str, ...], v3: bool) -> list[dict[str, Any]]:
    out = []
    for name in names:
        p: dict[str, Any] = {"name": name, "in": "path", "required": True, "description": f"{name} of the object"}
        if v3:
            p["schema"] = {"type": "string", "uniqueItems": True}
        else:
            p.update(type="string", uniqueItems=True)
        out.append(p)
    return out


def paths_for(res: Resource, v3: bool) -> dict[str, Any]:
    name = _name(res, res.kind)
    if name is None:
        return {}
    list_name = _name(res, res.kind + "List") or name
    prefix = res.base_path("{namespace}")
    write = ("dryRun", "fieldManager", "fieldValidation")
    scope = ("namespace",) if res.namespaced else ()
    out: dict[str, Any] = {
        prefix: {
            "get": _operation(res, "list", "list", list_name, v3),
            "post": _operation(res, "create", "post", name, v3, write),
            "parameters": _path_params(scope, v3),
        },
        f"{prefix}/{{name}}": {
            "get": _operation(res, "read", "get", name, v3),
            "put": _operation(res, "replace", "put", name, v3, write),
            "patch": _operation(res, "patch", "patch", name, v3, (*write, "force")),
            "delete": _operation(res, "delete", "delete", f"{META}.Status", v3, ("dryRun",)),
            "parameters": _path_params(("name", *scope), v3),
        },
    }
    if res.namespaced:
        out[res.base_path()] = {"get": _operation(res, "list", "list", list_name, v3)}
    for sub in _subresources(res):
        kind = "Scale" if sub == "scale" else None
        schema = "io.k8s.api.autoscaling.v1.Scale" if sub == "scale" else name
        out[f"{prefix}/{{name}}/{sub}"] = {
            "get": _operation(res, "read", "get", schema, v3, kind=kind),
            "put": _operation(res, "replace", "put", schema, v3, write, kind=kind),
            "patch": _operation(res, "patch", "patch", schema, v3, (*write, "force"), kind=kind),
            "parameters": _path_params(("name", *scope), v3),
        }
    return out


# -- documents -------------------------------------------------------------------------------


def _closure(roots: list[str]) -> dict[str, Any]:
    defs = {**definitions(), **custom_definitions()}
    keep: dict[str, Any] = {}
    todo = [r for r in roots if r in defs]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = defs[name]
        todo.extend(_refs(defs[name]) - keep.keys())
    return dict(sorted(keep.items()))


def _refs(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                found |= _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _refs(value)
    return found


def _to_v3(schema: Any) -> Any:
    """Upstream's v3 form: references under components, and a reference with siblings
    (a description) wrapped in allOf."""
    if isinstance(schema, list):
        return [_to_v3(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (_to_v3(v) if k != "properties" else {n: _to_v3(p) for n, p in v.items()}) for k, v in schema.items()}
    ref = out.pop("$ref", None)
    if ref is None:
        return out
    ref = ref.replace("#/definitions/", "#/components/schemas/")
    if not out:
        return {"$ref": ref}
    out["allOf"] = [{"$ref": ref}]
    return out


@functools.cache
def v2_bytes() -> bytes:
    paths: dict[str, Any] = {}
    for res in resources.RESOURCES:
        paths.update(paths_for(res, v3=False))
    doc = {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": definitions(),
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@functools.cache
def v2_protobuf() -> bytes:
    from mikro.api import openapi_pb

    return openapi_pb.document(json.loads(v2_bytes()))


def group_versions() -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for res in resources.every():
        if (res.group, res.version) not in seen:
            seen.append((res.group, res.version))
    return seen


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def v3_bytes(group: str, version: str) -> bytes | None:
    return _v3_bytes(group, version, _custom_key())


@functools.lru_cache(maxsize=64)
def _v3_bytes(group: str, version: str, custom: tuple[int, int]) -> bytes | None:
    served = [r for r in resources.every() if (r.group, r.version) == (group, version)]
    if not served:
        return None
    paths: dict[str, Any] = {}
    roots = [f"{META}.Status", f"{META}.DeleteOptions", f"{META}.Patch", f"{META}.WatchEvent"]
    for res in served:
        res_paths = paths_for(res, v3=True)
        paths.update(res_paths)
        for kind in (res.kind, res.kind + "List"):
            name = _name(res, kind)
            if name:
                roots.append(name)
        if "scale" in _subresources(res):
            roots.append("io.k8s.api.autoscaling.v1.Scale")
    schemas = {name: _to_v3(schema) for name, schema in _closure(roots).items()}
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        },
        "security": [{"BearerToken": []}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def v3_index_bytes() -> bytes:
    return _v3_index_bytes(_custom_key())


@functools.lru_cache(maxsize=4)
def _v3_index_bytes(custom: tuple[int, int]) -> bytes:
    paths = {}
    for group, version in group_versions():
        body = v3_bytes(group, version) or b""
        digest = hashlib.sha512(body).hexdigest().upper()[:128]
        path = gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return json.dumps({"paths": paths}, separators=(",", ":")).encode()


# -- custom resources (v3 only: the v2 document and its protobuf form stay the built-in kinds') --


def _custom_key() -> tuple[int, int]:
    """What the documents of the custom resources depend on (changes with every CRD write)."""
    from mikro.api import crds

    return crds.generation(), len(resources.DYNAMIC)


def custom_name(res: Resource, kind: str) -> str:
    """`com.example.v1.Widget`, as kube-apiserver names a custom resource's definition."""
    return ".".join(reversed(res.group.split("."))) + f".{res.version}.{kind}"


def _name(res: Resource, kind: str) -> str | None:
    if res.custom is not None:
        return custom_name(res, kind)
    return definition_name(res.group, res.version, kind)


def _subresources(res: Resource) -> tuple[str, ...]:
    if res.custom is not None:
        return tuple(s for s in ("status", "scale") if getattr(res.custom, s))
    return SUBRESOURCES.get(res.kind, ())


def custom_definitions() -> dict[str, Any]:
    """The definitions of the served custom resources: each version's openAPIV3Schema with
    apiVersion, kind and metadata, and its List."""
    out: dict[str, Any] = {}
    type_meta = {
        "apiVersion": {
            "type": "string",
            "description": definitions()[f"{META}.Status"]["properties"]["apiVersion"]["description"],
        },
        "kind": {"type": "string", "description": definitions()[f"{META}.Status"]["properties"]["kind"]["description"]},
    }
    for res in resources.DYNAMIC.values():
        name = custom_name(res, res.kind)
        schema = copy.deepcopy(res.custom.schema) or {"type": "object"}
        schema.setdefault("type", "object")
        schema["properties"] = {
            **(schema.get("properties") or {}),
            **type_meta,
            "metadata": {"$ref": f"#/definitions/{META}.ObjectMeta"},
        }
        schema["x-kubernetes-group-version-kind"] = [_gvk(res)]
        out[name] = schema
        out[custom_name(res, res.kind + "List")] = {
            "type": "object",
            "required": ["items"],
            "properties": {
                **type_meta,
                "items": {"type": "array", "items": {"$ref": f"#/definitions/{name}"}},
                "metadata": {"$ref": f"#/definitions/{META}.ListMeta"},
            },
            "x-kubernetes-group-version-kind": [_gvk(res, res.kind + "List")],
        }
    return out


def lookup(path: str) -> bytes | None:
    """The document at /openapi/..., or None."""
    path = path.rstrip("/")
    if path == "/openapi/v2":
        return v2_bytes()
    if path == "/openapi/v3":
        return v3_index_bytes()
    if path.startswith("/openapi/v3/"):
        rest = path[len("/openapi/v3/") :]
        for group, version in group_versions():
            if rest == gv_path(group, version):
                return v3_bytes(group, version)
    return None
