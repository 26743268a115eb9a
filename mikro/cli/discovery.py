"""The CLI's view of custom resources: the CLI runs in another process than the API server, so
the kinds CustomResourceDefinitions add are learnt from the server's discovery (as kubectl
learns them), or from the CRDs of the manifests being applied, into resources.DYNAMIC.
"""

from __future__ import annotations

import copy
from typing import Any

from mikro.api import resources
from mikro.api.resources import Resource
from mikro.cli.client import Client
from mikro.errors import ApiError

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def learn(client: Client) -> None:
    """Every served resource of a group the built-in table does not hold."""
    static = {r.group for r in resources.RESOURCES}
    for group in client.request("GET", "/apis").get("groups") or []:
        name = group.get("name", "")
        if name in static:
            continue
        for gv in group.get("versions") or []:
            version = gv.get("version", "")
            try:
                listing = client.request("GET", f"/apis/{name}/{version}")
            except ApiError:
                continue
            for entry in listing.get("resources") or []:
                res = _resource(name, version, entry)
                if res is not None:
                    resources.DYNAMIC.setdefault((res.group, res.version, res.plural), res)


def _resource(group: str, version: str, entry: dict[str, Any]) -> Resource | None:
    plural = entry.get("name", "")
    if "/" in plural or not plural or not entry.get("kind"):
        return None
    from mikro.api import crds  # jsonschema and the validators: only when a kind is learnt

    custom = crds.Custom(
        crd_name=f"{plural}.{group}",
        singular=entry.get("singularName") or entry["kind"].lower(),
        list_kind=entry["kind"] + "List",
        categories=tuple(entry.get("categories") or ()),
        storage_version=version,
        schema={},
        printer_columns=(),
    )
    return Resource(
        entry["kind"],
        group,
        version,
        plural,
        bool(entry.get("namespaced")),
        tuple(entry.get("shortNames") or ()),
        tuple(entry.get("verbs") or ()),
        custom=custom,
    )


def learn_from_manifests(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CRDs among `objs` that are valid, their kinds made known (an apply that creates a
    CRD and objects of it checks those objects against the CRD it is about to create)."""
    from mikro.api import crds

    found = []
    for obj in objs:
        if obj.get("kind") != crds.CRD_KIND or obj.get("apiVersion") != "apiextensions.k8s.io/v1":
            continue
        errors, _ = crds.validate_crd(obj, [])
        if errors:
            continue
        for res in crds.served(crds.established(copy.deepcopy(obj))):
            resources.DYNAMIC[(res.group, res.version, res.plural)] = res
        found.append(obj)
    return found


def needs_learning(names: list[str]) -> bool:
    """Whether some resource name (`widgets`, `wd,po`, `widget.example.com/x`) is unknown here."""
    for arg in names:
        for part in arg.partition("/")[0].split(","):
            if part and part != "all" and resources.lookup(part) is None:
                return True
    return False


def _text(cell: Any) -> str:
    """A cell as kubectl prints it: nothing for a missing value, Go's spelling of booleans."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    return str(cell)


def table_rows(
    client: Client, res: Resource, ns: str | None, names: list[str], wide: bool
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the server's Table for custom resources (their printer columns)."""
    headers: list[str] = []
    rows: list[list[str]] = []
    paths = [res.base_path(ns) + f"/{n}" for n in names] if names else [res.base_path(ns)]
    for path in paths:
        table = client.request("GET", path, accept=TABLE)
        keep = [i for i, c in enumerate(table.get("columnDefinitions") or []) if wide or not c.get("priority")]
        headers = [table["columnDefinitions"][i]["name"].upper() for i in keep]
        for row in table.get("rows") or []:
            rows.append([_text(row["cells"][i]) for i in keep])
    return headers, rows
