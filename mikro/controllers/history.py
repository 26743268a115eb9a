"""ControllerRevisions (apps/v1) of StatefulSets and DaemonSets: one per pod template,
named `<owner>-<hash>`, numbered by `revision`; what `rollout history` lists and `rollout
undo` returns to. The data is the template as a strategic-merge patch of the owner's spec,
as Kubernetes stores it, so kubectl's own `rollout undo` can send it back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from mikro.api.resources import BY_KIND
from mikro.controllers.helpers import REVISION_HASH_LABEL, Api, Obj, owned_by, owner_ref, short_hash

CR = BY_KIND["ControllerRevision"]
CHANGE_CAUSE = "kubernetes.io/change-cause"


def revision_data(template: Obj) -> Obj:
    tpl = copy.deepcopy(template)
    tpl["$patch"] = "replace"
    return {"spec": {"template": tpl}}


def revision_template(rev: Obj) -> Obj:
    tpl = copy.deepcopy(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    tpl.pop("$patch", None)
    return tpl


def revision_hash(template: Obj, collision_count: int = 0) -> str:
    return short_hash({"template": template, "collisionCount": collision_count} if collision_count else template)


def revision_number(rev: Obj) -> int:
    return int(rev.get("revision") or 0)


def matching_revision(template: Obj, revisions: list[Obj]) -> Obj | None:
    """The newest revision holding exactly this template."""
    same = [r for r in revisions if revision_template(r) == template]
    return max(same, key=revision_number) if same else None


def revision_body(owner: Obj, template: Obj, number: int, collision_count: int, labels: dict[str, str]) -> Obj:
    h = revision_hash(template, collision_count)
    annotations = owner["metadata"].get("annotations") or {}
    return {
        "metadata": {
            "name": f"{owner['metadata']['name']}-{h}",
            "namespace": owner["metadata"]["namespace"],
            "labels": {**labels, REVISION_HASH_LABEL: h},
            "annotations": {k: v for k, v in annotations.items() if k == CHANGE_CAUSE},
            "ownerReferences": [owner_ref(owner)],
        },
        "data": revision_data(template),
        "revision": number,
    }


def revisions_to_prune(revisions: list[Obj], keep: set[str], limit: int) -> list[Obj]:
    """The oldest revisions beyond `revisionHistoryLimit`, never one in `keep` (pure)."""
    idle = sorted((r for r in revisions if r["metadata"]["name"] not in keep), key=revision_number)
    return idle[: max(len(idle) - limit, 0)]


@dataclass
class Revisions:
    all: list[Obj]
    current: Obj
    update: Obj
    collision_count: int


def owned_revisions(api: Api, owner: Obj) -> list[Obj]:
    ns, uid = owner["metadata"]["namespace"], owner["metadata"]["uid"]
    return sorted((r for r in api.list(CR, ns) if owned_by(r, uid)), key=revision_number)


def sync_revisions(api: Api, owner: Obj, selector_labels: dict[str, str]) -> Revisions:
    """Find or create the revision of the owner's template (an older one found again, as after
    `rollout undo`, becomes the newest), and pick the current one from the owner's status."""
    template = owner["spec"].get("template") or {}
    status = owner.get("status") or {}
    collision = int(status.get("collisionCount") or 0)
    revisions = owned_revisions(api, owner)
    newest = max([revision_number(r) for r in revisions] + [0])
    update = matching_revision(template, revisions)
    if update is None:
        ns = owner["metadata"]["namespace"]
        while True:
            body = revision_body(owner, template, newest + 1, collision, selector_labels)
            existing = api.find(CR, ns, body["metadata"]["name"])
            if existing is None:
                update = api.create(CR, ns, body)
                break
            if owned_by(existing, owner["metadata"]["uid"]) and revision_template(existing) == template:
                update = existing
                break
            collision += 1  # a name taken by another template or owner: hash again
        revisions.append(update)
    elif revision_number(update) < newest:
        update["revision"] = newest + 1
        update = api.update(CR, update)
        revisions = [r for r in revisions if r["metadata"]["name"] != update["metadata"]["name"]] + [update]
    current = next((r for r in revisions if r["metadata"]["name"] == status.get("currentRevision")), update)
    return Revisions(sorted(revisions, key=revision_number), current, update, collision)
