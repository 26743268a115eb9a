"""The store: metadata, resourceVersion conflicts, generation, and durability under kill -9."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.errors import ApiError

CM = BY_KIND["ConfigMap"]
DEPLOY = BY_KIND["Deployment"]


def test_create_sets_metadata(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    obj = store.create(CM, {"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}})
    meta = obj["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["resourceVersion"] == "1" and meta["generation"] == 1
    assert obj["apiVersion"] == "v1" and obj["kind"] == "ConfigMap"
    with pytest.raises(ApiError) as err:
        store.create(CM, {"metadata": {"name": "a", "namespace": "default"}})
    assert err.value.code == 409 and err.value.reason == "AlreadyExists"


def test_stale_resource_version_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    first = store.create(CM, {"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "1"}})
    stale = copy.deepcopy(first)
    store.update(CM, dict(copy.deepcopy(first), data={"k": "2"}))
    stale["data"] = {"k": "3"}
    with pytest.raises(ApiError) as err:
        store.update(CM, stale)
    assert err.value.code == 409 and "has been modified" in err.value.message


def test_generation_moves_with_spec_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    d = store.create(DEPLOY, {"metadata": {"name": "d", "namespace": "default"}, "spec": {"replicas": 1}})
    d["metadata"]["labels"] = {"a": "b"}
    d = store.update(DEPLOY, d)
    assert d["metadata"]["generation"] == 1
    d["spec"]["replicas"] = 3
    d = store.update(DEPLOY, d)
    assert d["metadata"]["generation"] == 2
    d["status"] = {"replicas": 3}
    d = store.update(DEPLOY, d, status_only=True)
    assert d["metadata"]["generation"] == 2 and d["status"] == {"replicas": 3}


def test_watch_replays_from_a_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.create(CM, {"metadata": {"name": "a", "namespace": "default"}})
    store.create(CM, {"metadata": {"name": "b", "namespace": "default"}})
    w = store.watch(lambda c: True, since=1)
    change = w.next(0.1)
    assert change is not None and change.obj["metadata"]["name"] == "b" and change.type == "ADDED"
    assert w.next(0.05) is None


WRITER = """
import os, sys
from pathlib import Path
from mikro.api.store import Store
from mikro.api.resources import BY_KIND
store = Store(Path(sys.argv[1]))
for i in range(50):
    store.create(BY_KIND["ConfigMap"], {"metadata": {"name": f"cm{i}", "namespace": "default"}})
print("committed", flush=True)
sys.stdin.read()
"""


def test_committed_writes_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "committed"
    proc.kill()
    proc.wait()
    store = Store(db)
    items, rv = store.list(CM)
    assert len(items) == 50 and rv == 50
