"""In-cluster API access: the `default/kubernetes` Service (the first ClusterIP of the service range,
port 443, whose Endpoints are the API server on the cluster network's gateway address), the
`kube-root-ca.crt` ConfigMap, the ServiceAccount admission (a pod's `serviceAccountName` and its
`kube-api-access-*` projected token volume), and the environment the kubelet gives every
container (`KUBERNETES_SERVICE_HOST`/`PORT` and the docker-links service variables).
Pure, apart from `ensure` and `listen_on`, which write objects and open a socket.
"""

from __future__ import annotations

import ipaddress
import random
import string
import threading
from typing import Any

from mikro.api.resources import BY_KIND
from mikro.errors import ApiError

Obj = dict[str, Any]
NAME = "kubernetes"
ROOT_CA = "kube-root-ca.crt"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_SECONDS = 3607  # what the ServiceAccount admission asks; the kubelet's token lasts a year (extended)
SVC, EP, CM, SA = BY_KIND["Service"], BY_KIND["Endpoints"], BY_KIND["ConfigMap"], BY_KIND["ServiceAccount"]


def cluster_ip(service_cidr: str) -> str:
    return str(next(ipaddress.ip_network(service_cidr, strict=False).hosts()))


def service_body(service_cidr: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": NAME,
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip(service_cidr),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            "sessionAffinity": "None",
        },
    }


def endpoints_subsets(host_ip: str, api_port: int) -> list[Obj]:
    return [{"addresses": [{"ip": host_ip}], "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}]}]


def ensure(registry: Any, service_cidr: str, host_ip: str, api_port: int, ca_pem: str) -> None:
    """The `kubernetes` Service and its Endpoints (the API's current port), the default
    ClusterRoles (cluster-admin, admin, edit, view), and the cluster CA in
    kube-system/kube-root-ca.crt for the ServiceAccount controller to copy."""
    store = registry.store
    if store.find(SVC, "default", NAME) is None:
        body = service_body(service_cidr)
        try:
            registry.create(SVC, "default", body)
        except ApiError:  # an older cluster gave the first address away: any free one
            body["spec"].pop("clusterIP")
            registry.create(SVC, "default", body)
    subsets = endpoints_subsets(host_ip, api_port)
    current = store.find(EP, "default", NAME)
    if current is None:
        registry.create(
            EP, "default", {"metadata": {"name": NAME, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}, "subsets": subsets}
        )
    elif current.get("subsets") != subsets:
        current["subsets"] = subsets
        store.update(EP, current)
    from mikro.api import rbac

    for role in rbac.default_cluster_roles():
        if store.find(BY_KIND["ClusterRole"], "", role["metadata"]["name"]) is None:
            registry.create(BY_KIND["ClusterRole"], "", role)
    cm = store.find(CM, "kube-system", ROOT_CA)
    if cm is None:
        registry.create(CM, "kube-system", {"metadata": {"name": ROOT_CA}, "data": {"ca.crt": ca_pem}})
    elif (cm.get("data") or {}).get("ca.crt") != ca_pem:
        cm["data"] = {"ca.crt": ca_pem}
        store.update(CM, cm)


def listen_on(primary: Any, address: str) -> Any:
    """A second listener of the API server on `address` (the cluster network's gateway, which
    pods reach), same port, TLS, token and handlers; None if the address cannot be bound."""
    from mikro.api.server import ApiHTTPServer

    try:
        second = ApiHTTPServer((address, primary.server_address[1]), primary.registry, primary.token, primary.runtime)
    except OSError:
        return None
    second.tls_context = primary.tls_context
    second.issuer = primary.issuer
    second.ready = primary.ready
    second.stopping = primary.stopping
    threading.Thread(target=second.serve_forever, name="apiserver-cluster", daemon=True).start()
    return second


def wire(registry: Any, runtime: Any, server: Any, service_cidr: str, host_ip: str, ca_pem: str) -> None:
    """The control plane's part: the objects above, the gateway listener, and the kubelet's
    token issuer (tokens bound to the pod, valid a year as the kubelet's extended tokens are)."""
    import logging
    import time

    ensure(registry, service_cidr, host_ip, server.server_address[1], ca_pem)
    if listen_on(server, host_ip) is None:
        logging.getLogger("mikro.apiserver").warning("cannot listen on %s: pods will not reach the API", host_ip)

    def issue(pod: Obj, audience: str | None, seconds: int) -> str:
        from mikro.node.podplan import MissingReference

        meta, spec = pod["metadata"], pod.get("spec") or {}
        name = spec.get("serviceAccountName") or "default"
        account = registry.store.find(SA, meta["namespace"], name)
        if account is None:
            raise MissingReference(f'serviceaccount "{name}" not found')
        bound = {"kind": "Pod", "name": meta["name"], "uid": meta["uid"]}
        token, _ = server.issuer.issue(
            meta["namespace"], name, account["metadata"]["uid"], int(time.time()), max(seconds, 365 * 86400),
            [audience] if audience else None, bound,
        )
        return str(token)

    runtime.issue_token = issue


# -- the kubelet's environment ---------------------------------------------------------------


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _links(svc: Obj) -> dict[str, str]:
    """The docker-links variables of one Service (kubelet's makeEnvironmentVariables)."""
    spec = svc.get("spec") or {}
    ip = spec.get("clusterIP")
    ports = spec.get("ports") or []
    if not ip or ip == "None" or not ports:
        return {}
    prefix = _env_name(svc["metadata"]["name"])
    first = ports[0]
    env = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(first["port"])}
    for p in ports:
        if p.get("name"):
            env[f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p["port"])
    proto = str(first.get("protocol", "TCP"))
    env[f"{prefix}_PORT"] = f"{proto.lower()}://{ip}:{first['port']}"
    for p in ports:
        proto = str(p.get("protocol", "TCP"))
        base = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
        env[base] = f"{proto.lower()}://{ip}:{p['port']}"
        env[f"{base}_PROTO"] = proto.lower()
        env[f"{base}_PORT"] = str(p["port"])
        env[f"{base}_ADDR"] = ip
    return env


def service_env(pod: Obj, namespace_services: list[Obj], kubernetes_service: Obj | None) -> dict[str, str]:
    """What the kubelet sets before the container's own env: the services of the pod's namespace
    (unless `enableServiceLinks: false`), then the `kubernetes` Service's, which always count."""
    env: dict[str, str] = {}
    if (pod.get("spec") or {}).get("enableServiceLinks", True) is not False:
        for svc in sorted(namespace_services, key=lambda s: s["metadata"]["name"]):
            env.update(_links(svc))
    if kubernetes_service is not None:
        env.update(_links(kubernetes_service))
    return env


# -- ServiceAccount admission ----------------------------------------------------------------


def _suffix() -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))


def access_volume(name: str) -> Obj:
    return {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]
                    }
                },
            ],
        },
    }


def admit_pod(pod: Obj, account: Obj | None) -> None:
    """The ServiceAccount admission plugin: `serviceAccountName` defaults to `default`, and unless
    the pod or its ServiceAccount says `automountServiceAccountToken: false`, a projected
    token volume is mounted read-only in every container at MOUNT_PATH."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    automount = spec.get("automountServiceAccountToken")
    if automount is None and account is not None:
        automount = account.get("automountServiceAccountToken")
    if automount is False:
        return
    containers = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) if isinstance(c, dict)]
    if any(m.get("mountPath") == MOUNT_PATH for c in containers for m in c.get("volumeMounts") or []):
        return  # the user mounted something there already
    volumes = spec.setdefault("volumes", [])
    volume = next((v for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    if volume is None:
        volume = access_volume(VOLUME_PREFIX + _suffix())
        volumes.append(volume)
    for ctr in containers:
        ctr.setdefault("volumeMounts", []).append({"name": volume["name"], "mountPath": MOUNT_PATH, "readOnly": True})


def projected_files(pod: Obj, volume: Obj, lookup: Any, issue_token: Any) -> dict[str, bytes]:
    """The files of a projected volume: serviceAccountToken (a token `issue_token(pod, audience,
    seconds)` makes), configMap and secret items (`lookup(kind, name)` -> the object or None)
    and downwardAPI fields. Raises KeyError naming what is missing."""
    from mikro.node import podplan

    files: dict[str, bytes] = {}
    meta = pod["metadata"]
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "serviceAccountToken" in source:
            sat = source["serviceAccountToken"] or {}
            token = issue_token(pod, sat.get("audience"), int(sat.get("expirationSeconds") or TOKEN_SECONDS))
            files[str(sat.get("path", "token"))] = token.encode()
        for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
            ref = source.get(key)
            if ref is None:
                continue
            obj = lookup(kind, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise KeyError(f'{kind.lower()} "{ref.get("name", "")}" not found')
            files.update(podplan.volume_files(kind, obj, ref.get("items")))
        if "downwardAPI" in source:
            for item in (source["downwardAPI"] or {}).get("items") or []:
                field = (item.get("fieldRef") or {}).get("fieldPath", "")
                value = {
                    "metadata.namespace": meta.get("namespace", ""),
                    "metadata.name": meta.get("name", ""),
                    "metadata.uid": meta.get("uid", ""),
                }.get(field)
                if field == "metadata.labels":
                    value = "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items()))
                elif field == "metadata.annotations":
                    value = "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items()))
                if value is not None:
                    files[str(item.get("path", ""))] = value.encode()
    return files
