"""In-cluster API access, the pure parts: the `kubernetes` Service, the ServiceAccount admission
(token volume), the kubelet's service environment, a projected volume's files, and the API
certificate's SANs. No Docker."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from cryptography import x509

from mikro.api import incluster, pki
from mikro.api.resources import BY_KIND
from tests.controller_kit import Cluster


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "team", "uid": "u-1", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "a", "image": "hello-ip:1"}], "initContainers": [{"name": "i", "image": "hello-ip:1"}], **spec},
    }


def test_kubernetes_service_takes_the_first_address() -> None:
    svc = incluster.service_body("10.152.128.0/17")
    assert svc["spec"]["clusterIP"] == "10.152.128.1"
    assert svc["spec"]["ports"][0]["port"] == 443


def test_admission_mounts_the_token_volume_in_every_container() -> None:
    p = pod()
    incluster.admit_pod(p, {"metadata": {"name": "default"}})
    spec = p["spec"]
    assert spec["serviceAccountName"] == "default"
    (volume,) = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    kinds = [next(iter(s)) for s in volume["projected"]["sources"]]
    assert kinds == ["serviceAccountToken", "configMap", "downwardAPI"]
    for ctr in spec["containers"] + spec["initContainers"]:
        assert ctr["volumeMounts"] == [
            {"name": volume["name"], "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}
        ]


def test_automount_false_on_the_pod_or_the_account() -> None:
    p = pod(automountServiceAccountToken=False, serviceAccountName="robot")
    incluster.admit_pod(p, None)
    assert "volumes" not in p["spec"] and p["spec"]["serviceAccountName"] == "robot"
    q = pod()
    incluster.admit_pod(q, {"metadata": {"name": "default"}, "automountServiceAccountToken": False})
    assert "volumes" not in q["spec"]
    r = pod(automountServiceAccountToken=True)
    incluster.admit_pod(r, {"metadata": {"name": "default"}, "automountServiceAccountToken": False})
    assert len(r["spec"]["volumes"]) == 1


def test_service_env_as_the_kubelet_writes_it() -> None:
    web = {"metadata": {"name": "my-web"}, "spec": {"clusterIP": "10.152.183.7", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
    headless = {"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}}
    kube = incluster.service_body("10.152.128.0/17")
    env = incluster.service_env(pod(), [web, headless], kube)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.152.128.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.152.128.1:443"
    assert env["MY_WEB_SERVICE_HOST"] == "10.152.183.7"
    assert env["MY_WEB_PORT_80_TCP"] == "tcp://10.152.183.7:80"
    assert env["MY_WEB_PORT_80_TCP_ADDR"] == "10.152.183.7"
    assert not any(k.startswith("DB_") for k in env)
    no_links = incluster.service_env(pod(enableServiceLinks=False), [web], kube)
    assert "MY_WEB_SERVICE_HOST" not in no_links and no_links["KUBERNETES_SERVICE_HOST"] == "10.152.128.1"


def test_projected_files() -> None:
    p = pod()
    incluster.admit_pod(p, None)
    volume = p["spec"]["volumes"][0]
    objects = {("ConfigMap", "kube-root-ca.crt"): {"data": {"ca.crt": "PEM"}}}
    asked: list[tuple[str | None, int]] = []

    def issue(_: dict[str, Any], audience: str | None, seconds: int) -> str:
        asked.append((audience, seconds))
        return "tok"

    files = incluster.projected_files(p, volume, lambda kind, name: objects.get((kind, name)), issue)
    assert files == {"token": b"tok", "ca.crt": b"PEM", "namespace": b"team"}
    assert asked == [(None, 3607)]


def test_the_api_certificate_names_the_cluster_addresses(tmp_path: Path) -> None:
    pki.ensure(tmp_path / "pki")
    _, crt, _ = pki.ensure(tmp_path / "pki", ("10.152.128.1", "10.152.0.1"))
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {ipaddress.ip_address("10.152.128.1"), ipaddress.ip_address("10.152.0.1")} <= set(san.get_values_for_type(x509.IPAddress))
    assert "kubernetes.default.svc" in san.get_values_for_type(x509.DNSName)


def test_ensure_and_root_ca_publisher(tmp_path: Path) -> None:
    cl = Cluster(tmp_path)
    incluster.ensure(cl.reg, "10.152.128.0/17", "10.152.0.1", 16443, "PEM")
    incluster.ensure(cl.reg, "10.152.128.0/17", "10.152.0.1", 16444, "PEM")  # a restart on another port
    svc = cl.store.get(BY_KIND["Service"], "default", "kubernetes")
    assert svc["spec"]["clusterIP"] == "10.152.128.1"
    ep = cl.store.get(BY_KIND["Endpoints"], "default", "kubernetes")
    assert ep["subsets"][0]["addresses"] == [{"ip": "10.152.0.1"}]
    assert ep["subsets"][0]["ports"][0]["port"] == 16444
    cl.reg.create(BY_KIND["Namespace"], "", {"metadata": {"name": "team"}})
    cl.sync()
    assert cl.store.get(BY_KIND["ConfigMap"], "team", "kube-root-ca.crt")["data"] == {"ca.crt": "PEM"}
    created = cl.reg.create(BY_KIND["Pod"], "team", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}})
    assert created["spec"]["serviceAccountName"] == "default"
    assert created["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] == incluster.MOUNT_PATH
