"""Hostile values the API must refuse as Kubernetes does (issue 11, items 2, 4 and 11)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mikro.api import checks
from mikro.api.validation import validate

INGRESS: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "rules": [
            {
                "host": "web.local",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
        "tls": [{"hosts": ["web.local"], "secretName": "web-tls"}],
    },
}

INJECTED_PATH = '/x { return 200 "pwn"; } location /leak/ { alias /var/lib/mikro/; autoindex on; } location /y'


def ingress_errors(mutate: Any) -> list[str]:
    obj = copy.deepcopy(INGRESS)
    mutate(obj)
    return [str(e) for e in validate(obj)]


def rule(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["rules"][0]


def path0(obj: dict[str, Any]) -> dict[str, Any]:
    return rule(obj)["http"]["paths"][0]


def test_valid_ingress() -> None:
    assert ingress_errors(lambda o: None) == []


@pytest.mark.parametrize("ptype", ["Exact", "Prefix"])
def test_injected_path_is_refused(ptype: str) -> None:
    found = ingress_errors(lambda o: path0(o).update(path=INJECTED_PATH, pathType=ptype))
    assert found == [
        f'spec.rules[0].http.paths[0].path: Invalid value: "{INJECTED_PATH}": cannot be used with pathType '
        f"{ptype}: only the characters of a URL path (RFC 3986) are allowed"
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/a//b", "must not contain '//'"),
        ("/a/../b", "must not contain '/../'"),
        ("/a/./b", "must not contain '/./'"),
        ("/a%2fb", "must not contain '%2f'"),
        ("/a%2Fb", "must not contain '%2F'"),
        ("/a/..", "cannot end with '/..'"),
        ("/a/.", "cannot end with '/.'"),
        ("a", "must be an absolute path"),
    ],
)
def test_kubernetes_path_rules(path: str, message: str) -> None:
    found = ingress_errors(lambda o: path0(o).update(path=path))
    assert f'spec.rules[0].http.paths[0].path: Invalid value: "{path}": {message}' in found


def test_implementation_specific_path_may_hold_more_but_no_control_characters() -> None:
    assert ingress_errors(lambda o: path0(o).update(path="/a b", pathType="ImplementationSpecific")) == []
    found = ingress_errors(lambda o: path0(o).update(path="/a\n}", pathType="ImplementationSpecific"))
    assert found == ['spec.rules[0].http.paths[0].path: Invalid value: "/a\n}": must not contain control characters']


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("web.local\n", checks.DNS1123_SUBDOMAIN_MSG),
        ("evil.local; location / { return 200; }", checks.DNS1123_SUBDOMAIN_MSG),
        ("1.2.3.4", "must be a DNS name, not an IP address"),
        ("*.x;y", checks.WILDCARD_SUBDOMAIN_MSG),
        ("Web.Local", checks.DNS1123_SUBDOMAIN_MSG),
    ],
)
def test_hosts(host: str, message: str) -> None:
    found = ingress_errors(lambda o: rule(o).update(host=host))
    assert f'spec.rules[0].host: Invalid value: "{host}": {message}' in found


def test_wildcard_host_is_valid() -> None:
    assert ingress_errors(lambda o: rule(o).update(host="*.web.local")) == []


def test_tls_hosts_and_secret_name() -> None:
    found = ingress_errors(lambda o: o["spec"]["tls"][0].update(hosts=["evil.local; location /"], secretName="../x"))
    assert found == [
        f'spec.tls[0].hosts[0]: Invalid value: "evil.local; location /": {checks.DNS1123_SUBDOMAIN_MSG}',
        f'spec.tls[0].secretName: Invalid value: "../x": {checks.DNS1123_SUBDOMAIN_MSG}',
    ]


def test_backend_service_and_port_names() -> None:
    found = ingress_errors(
        lambda o: path0(o)["backend"].update(service={"name": "Bad_Name;", "port": {"name": "a b{"}})
    )
    assert found == [
        'spec.rules[0].http.paths[0].backend.service.name: Invalid value: "Bad_Name;": ' + checks.DNS1035_LABEL_MSG,
        'spec.rules[0].http.paths[0].backend.service.port.name: Invalid value: "a b{": '
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
    ]


def test_service_port_names() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http }", "port": 80}]},
    }
    # A Service port's name is a DNS label (kubectl create service names ports like 80-8080).
    assert [str(e) for e in validate(svc)] == [
        'spec.ports[0].name: Invalid value: "http }": '
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
        "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
        "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    ]


def endpoints(ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 80}]}],
    }


@pytest.mark.parametrize(
    ("ip", "message"),
    [
        ("127.0.0.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        ("169.254.169.254", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
        ("0.0.0.0", "may not be unspecified (0.0.0.0)"),
        ("10.0.0.1:80; } server { listen 81", "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
        ("10.0.0.1\n", "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
    ],
)
def test_endpoint_addresses(ip: str, message: str) -> None:
    assert [str(e) for e in validate(endpoints(ip))] == [
        f'subsets[0].addresses[0].ip: Invalid value: "{ip}": {message}'
    ]


def test_endpoint_address_valid() -> None:
    assert validate(endpoints("10.1.2.3")) == []


# -- volumes (item 4) -------------------------------------------------------------------------


def test_config_keys() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"../../../../tmp/x": "pwn"}}
    assert [str(e) for e in validate(cm)] == [
        f'data[../../../../tmp/x]: Invalid value: "../../../../tmp/x": {checks.CONFIG_KEY_MSG}',
        "data[../../../../tmp/x]: Invalid value: \"../../../../tmp/x\": must not start with '..'",
    ]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a/b": "x"}}
    assert [str(e) for e in validate(secret)] == [f'stringData[a/b]: Invalid value: "a/b": {checks.CONFIG_KEY_MSG}']
    assert validate({**cm, "data": {"app.conf": "x", "KEY_1-a": "y"}}) == []


def pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], **security: Any) -> dict[str, Any]:
    ctr = {"name": "app", "image": "busybox", "volumeMounts": mounts}
    if security:
        ctr["securityContext"] = security
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [ctr], "volumes": volumes},
    }


def test_volume_item_paths_and_names() -> None:
    found = [
        str(e)
        for e in validate(
            pod(
                [
                    {"name": "../x", "emptyDir": {}},
                    {"name": "cfg", "configMap": {"name": "c", "items": [{"key": "k", "path": "/tmp/x"}]}},
                    {"name": "sec", "secret": {"secretName": "s", "items": [{"key": "k", "path": "a/../../b"}]}},
                ],
                [{"name": "cfg", "mountPath": "/cfg"}],
            )
        )
    ]
    assert found == [
        f'spec.volumes[0].name: Invalid value: "../x": {checks.DNS1123_LABEL_MSG}',
        'spec.volumes[1].configMap.items[0].path: Invalid value: "/tmp/x": must be a relative path',
        "spec.volumes[2].secret.items[0].path: Invalid value: \"a/../../b\": must not contain '..'",
    ]


def test_sub_path_and_undeclared_volume() -> None:
    found = [
        str(e)
        for e in validate(
            pod(
                [{"name": "data", "emptyDir": {}}],
                [
                    {"name": "data", "mountPath": "/d", "subPath": "../../../.."},
                    {"name": "data", "mountPath": "/e", "subPath": "/etc"},
                    {"name": "state", "mountPath": "/s"},
                ],
            )
        )
    ]
    assert found == [
        "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"../../../..\": must not contain '..'",
        'spec.containers[0].volumeMounts[1].subPath: Invalid value: "/etc": must be a relative path',
        'spec.containers[0].volumeMounts[2].name: Not found: "state"',
    ]


def test_security_context_values() -> None:
    found = [
        str(e)
        for e in validate(
            pod(
                [],
                [],
                runAsUser=-1,
                privileged=True,
                allowPrivilegeEscalation=False,
                capabilities={"add": ["NET_ADMIN; rm"]},
            )
        )
    ]
    assert (
        found[0]
        == "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be greater than or equal to 0"
    )
    assert 'capabilities.add[0]: Invalid value: "NET_ADMIN; rm": must be a capability name (e.g. NET_ADMIN)' in found[1]
    assert found[2].endswith("cannot set `allowPrivilegeEscalation` to false and `privileged` to true")
