"""StatefulSet and DaemonSet at the edges (pure): per-pod DNS names, printer columns and the
`rollout status` messages kubectl prints."""

from __future__ import annotations

from typing import Any

import pytest

from mikro.cli import rollout
from mikro.cli.printers import rows
from mikro.node.podplan import headless_aliases, labels_for

HEADLESS = {
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"clusterIP": "None", "selector": {"app": "web"}},
}


def test_pod_of_the_subdomain_gets_its_own_names() -> None:
    aliases = headless_aliases("default", {"app": "web"}, [HEADLESS], "web-0", "web")
    assert aliases == sorted(
        [
            "web.default",
            "web.default.svc",
            "web.default.svc.cluster.local",
            "web-0.web.default",
            "web-0.web.default.svc",
            "web-0.web.default.svc.cluster.local",
        ]
    )


@pytest.mark.parametrize(
    ("labels", "hostname", "subdomain", "namespace"),
    [
        ({"app": "web"}, "web-0", "other", "default"),  # subdomain names another Service
        ({"app": "db"}, "web-0", "web", "default"),  # the Service does not select the pod
        ({"app": "web"}, "web-0", "web", "prod"),  # another namespace
    ],
)
def test_no_pod_names_without_a_matching_headless_service(
    labels: dict[str, str], hostname: str, subdomain: str, namespace: str
) -> None:
    assert not any(
        a.startswith(f"{hostname}.") for a in headless_aliases(namespace, labels, [HEADLESS], hostname, subdomain)
    )


def test_container_labels_carry_hostname_and_subdomain_only_when_set() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "web-0", "namespace": "default", "uid": "u"}, "spec": {}}
    assert "io.mikro/subdomain" not in labels_for(pod, "POD")
    pod["spec"] = {"hostname": "web-0", "subdomain": "web"}
    labels = labels_for(pod, "POD")
    assert labels["io.mikro/hostname"] == "web-0" and labels["io.mikro/subdomain"] == "web"


def test_printer_columns() -> None:
    sts = {"metadata": {"name": "web"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 2}}
    headers, body = rows("StatefulSet", [sts], wide=False)
    assert headers == ["NAME", "READY", "AGE"] and body[0][:2] == ["web", "2/3"]
    ds = {
        "metadata": {"name": "agent"},
        "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}},
        "status": {
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "numberReady": 1,
            "updatedNumberScheduled": 1,
            "numberAvailable": 1,
        },
    }
    headers, body = rows("DaemonSet", [ds], wide=False)
    assert headers == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"]
    assert body[0][:7] == ["agent", "1", "1", "1", "1", "1", "kubernetes.io/os=linux"]
    cr = {
        "metadata": {
            "name": "web-abc",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True}],
        },
        "revision": 2,
    }
    headers, body = rows("ControllerRevision", [cr], wide=False)
    assert headers == ["NAME", "CONTROLLER", "REVISION", "AGE"] and body[0][:3] == [
        "web-abc",
        "statefulset.apps/web",
        "2",
    ]


def sts(
    status: dict[str, Any], partition: int | None = 0, generation: int = 1, strategy: str = "RollingUpdate"
) -> dict[str, Any]:
    """A StatefulSet as the API returns it; partition None: no rollingUpdate at all."""
    update: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate" and partition is not None:
        update["rollingUpdate"] = {"partition": partition}
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": 3, "updateStrategy": update},
        "status": {"observedGeneration": 1, **status},
    }


@pytest.mark.parametrize(
    ("obj", "done", "message"),
    [
        (sts({}, generation=2), False, "Waiting for statefulset spec update to be observed..."),
        (sts({"readyReplicas": 1}), False, "Waiting for 2 pods to be ready..."),
        (
            sts({"readyReplicas": 3, "updatedReplicas": 1}),
            False,
            "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated...",
        ),
        (
            sts({"readyReplicas": 3, "updatedReplicas": 3}),
            True,
            "partitioned roll out complete: 3 new pods have been updated...",
        ),
        (
            sts(
                {"readyReplicas": 3, "updatedReplicas": 1, "currentRevision": "web-a", "updateRevision": "web-b"},
                partition=None,
            ),
            False,
            "waiting for statefulset rolling update to complete 1 pods at revision web-b...",
        ),
        (
            sts(
                {"readyReplicas": 3, "currentReplicas": 3, "currentRevision": "web-b", "updateRevision": "web-b"},
                partition=None,
            ),
            True,
            "statefulset rolling update complete 3 pods at revision web-b...",
        ),
        (
            sts({"readyReplicas": 3, "updatedReplicas": 0}, partition=2),
            False,
            "Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated...",
        ),
        (
            sts({"readyReplicas": 3, "updatedReplicas": 1}, partition=2),
            True,
            "partitioned roll out complete: 1 new pods have been updated...",
        ),
    ],
)
def test_statefulset_rollout_status_messages(obj: dict[str, Any], done: bool, message: str) -> None:
    assert rollout.progress(obj) == (done, message)


def test_rollout_status_refuses_on_delete_but_apply_wait_counts_ready_pods() -> None:
    obj = sts({"readyReplicas": 2}, strategy="OnDelete")
    with pytest.raises(rollout.RolloutError, match="rollout status is only available for RollingUpdate strategy type"):
        rollout.progress(obj)
    assert rollout.progress(obj, for_apply=True) == (False, 'Waiting for statefulset "web": 2 of 3 pods are ready...')


@pytest.mark.parametrize(
    ("status", "done", "message"),
    [
        (
            {"desiredNumberScheduled": 1, "updatedNumberScheduled": 0},
            False,
            'Waiting for daemon set "agent" rollout to finish: 0 out of 1 new pods have been updated...',
        ),
        (
            {"desiredNumberScheduled": 1, "updatedNumberScheduled": 1},
            False,
            'Waiting for daemon set "agent" rollout to finish: 0 of 1 updated pods are available...',
        ),
        (
            {"desiredNumberScheduled": 1, "updatedNumberScheduled": 1, "numberAvailable": 1},
            True,
            'daemon set "agent" successfully rolled out',
        ),
    ],
)
def test_daemonset_rollout_status_messages(status: dict[str, Any], done: bool, message: str) -> None:
    ds = {
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "generation": 1},
        "spec": {},
        "status": {"observedGeneration": 1, **status},
    }
    assert rollout.progress(ds) == (done, message)
