"""The scheduler's filters for mikro's one node (pure): a cordoned node, node selectors and
affinity, taints; the wording is kube-scheduler's."""

from __future__ import annotations

from typing import Any

import pytest

from mikro.node.scheduling import unfit_reason

NODE: dict[str, Any] = {"metadata": {"name": "mikro", "labels": {"kubernetes.io/hostname": "mikro"}}, "spec": {}}


def node(**spec: Any) -> dict[str, Any]:
    return {**NODE, "spec": spec}


def test_a_plain_pod_fits_a_plain_node() -> None:
    assert unfit_reason({"containers": [{"name": "c"}]}, NODE) == ""


def test_a_cordoned_node_takes_no_new_pod() -> None:
    assert unfit_reason({}, node(unschedulable=True)) == "node(s) were unschedulable"


@pytest.mark.parametrize(
    "toleration",
    [
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"},
        {"operator": "Exists"},
    ],
)
def test_a_pod_tolerating_the_unschedulable_taint_goes_to_a_cordoned_node(toleration: dict[str, Any]) -> None:
    assert unfit_reason({"tolerations": [toleration]}, node(unschedulable=True)) == ""


def test_a_toleration_of_another_effect_does_not_pass_a_cordon() -> None:
    spec = {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}]}
    assert unfit_reason(spec, node(unschedulable=True)) == "node(s) were unschedulable"


def test_selector_and_affinity_that_the_node_does_not_match() -> None:
    assert (
        unfit_reason({"nodeSelector": {"disktype": "ssd"}}, NODE) == "node(s) didn't match Pod's node affinity/selector"
    )
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["other"]}]}
                ]
            }
        }
    }
    assert unfit_reason({"affinity": affinity}, NODE) == "node(s) didn't match Pod's node affinity/selector"
    assert unfit_reason({"nodeSelector": {"kubernetes.io/hostname": "mikro"}}, NODE) == ""


def test_an_untolerated_taint_and_a_daemon_toleration_not_given_to_plain_pods() -> None:
    tainted = node(taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])
    assert unfit_reason({}, tainted) == "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
