"""Field validation as the API server words it, and quantities."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mikro.api.validation import parse_quantity, validate

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "hello-ip:1"}]},
        },
    },
}


def errors(mutate: Any) -> list[str]:
    obj = copy.deepcopy(DEPLOYMENT)
    mutate(obj)
    return [str(e) for e in validate(obj)]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def test_valid_deployment() -> None:
    assert errors(lambda o: None) == []


def test_selector_must_match_template() -> None:
    found = errors(lambda o: o["spec"]["template"]["metadata"].update(labels={"app": "other"}))
    assert found == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
        "`selector` does not match template `labels`"
    ]


def test_negative_replicas() -> None:
    assert errors(lambda o: o["spec"].update(replicas=-1)) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    ]


def test_container_without_image_or_name() -> None:
    assert errors(lambda o: containers(o)[0].pop("image")) == ["spec.template.spec.containers[0].image: Required value"]
    assert errors(lambda o: containers(o)[0].pop("name")) == ["spec.template.spec.containers[0].name: Required value"]


def test_duplicate_container_names() -> None:
    found = errors(lambda o: containers(o).append({"name": "web", "image": "x"}))
    assert found == ['spec.template.spec.containers[1].name: Duplicate value: "web"']


def test_invalid_quantity() -> None:
    found = errors(lambda o: containers(o)[0].update(resources={"limits": {"cpu": "2 cores"}}))
    assert len(found) == 1 and found[0].startswith(
        'spec.template.spec.containers[0].resources.limits.cpu: Invalid value: "2 cores"'
    )


def test_restart_policy() -> None:
    found = errors(lambda o: o["spec"]["template"]["spec"].update(restartPolicy="Sometimes"))
    assert found == ['spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always"']
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]},
    }
    assert validate(pod) == []


@pytest.mark.parametrize(
    "text,value", [("100m", 0.1), ("2", 2), ("64Mi", 64 * 2**20), ("1G", 1e9), ("1.5", 1.5), ("1e3", 1000), (3, 3)]
)
def test_quantities(text: Any, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["2 cores", "", "1.2.3Mi", "abc", "5MB"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_service_ports() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]},
    }
    assert [str(e) for e in validate(svc)] == [
        "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. "
        "The range of valid ports is 30000-32767"
    ]
    svc["spec"] = {"ports": [{"port": 70000}]}
    assert "spec.ports[0].port" in str(validate(svc)[0])


def test_ingress_path_type() -> None:
    ing = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "i"},
        "spec": {
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "exact",
                                "backend": {"service": {"name": "s", "port": {"number": 80}}},
                            }
                        ]
                    }
                }
            ]
        },
    }
    assert [str(e) for e in validate(ing)] == [
        'spec.rules[0].http.paths[0].pathType: Unsupported value: "exact": supported values: '
        '"Exact", "ImplementationSpecific", "Prefix"'
    ]
