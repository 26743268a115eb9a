"""Regenerate mikro/api/data/definitions.json.gz from the upstream Kubernetes 1.32 definitions.

Source: the `kubernetes-validate` PyPI package, which ships upstream's OpenAPI definitions
(kubernetes/kubernetes api/openapi-spec) converted to JSON Schema, with descriptions, formats and
the `x-kubernetes-*` extensions kept. This script undoes that conversion (nullable types,
IntOrString/Quantity as `oneOf`, the `enum` added to apiVersion/kind, `#/$defs/` references) and
keeps only the definitions reachable from the kinds mikro serves, so the data stays small.

    pip download --no-deps kubernetes-validate==1.32.0 && python tools/openapi_definitions.py <wheel>
"""

from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mikro.api.resources import RESOURCES  # noqa: E402

MEMBER = "kubernetes_validate/kubernetes-json-schema/v1.32.0-local/_definitions.json"
OUT = Path(__file__).resolve().parent.parent / "mikro" / "api" / "data" / "definitions.json.gz"
EXTRA = [
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.api.autoscaling.v1.Scale",
]


def unnull(schema: Any, in_properties: bool = False) -> Any:
    if isinstance(schema, list):
        return [unnull(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            kept = [t for t in value if t != "null"]
            out[key] = kept[0] if len(kept) == 1 else kept
        elif key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/definitions/")
        elif key == "properties":
            out[key] = {k: unnull(v) for k, v in value.items()}
        else:
            out[key] = unnull(value)
    return out


def convert(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
        return {"type": "string", "format": "int-or-string"}
    if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
        return {"type": "string"}
    out = unnull(schema)
    if "x-kubernetes-group-version-kind" in out:
        for field in ("apiVersion", "kind"):
            (out.get("properties") or {}).get(field, {}).pop("enum", None)
    return out


def refs(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):  # JSONSchemaProps has a "$ref" property
                found.add(value.rsplit("/", 1)[-1])
            else:
                found |= refs(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= refs(value)
    return found


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        source = json.loads(zf.read(MEMBER))["$defs"]
    served = {(r.group, r.version, r.kind) for r in RESOURCES}
    roots = list(EXTRA)
    for name, schema in source.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk["group"], gvk["version"], gvk["kind"]) in served or (
                gvk["group"],
                gvk["version"],
                gvk["kind"].removesuffix("List"),
            ) in served:
                roots.append(name)
    keep: dict[str, Any] = {}
    while roots:
        name = roots.pop()
        if name in keep:
            continue
        keep[name] = convert(name, source[name])
        roots.extend(refs(source[name]) - keep.keys())
    data = json.dumps(dict(sorted(keep.items())), separators=(",", ":"), sort_keys=True).encode()
    OUT.write_bytes(gzip.compress(data, 9, mtime=0))
    print(f"{len(keep)} definitions, {len(data)} bytes, {OUT.stat().st_size} gzipped -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
