"""The protobuf codec (mikro/api/kubeproto.py): round trips for every kind mikro serves, the bytes
real kubectl 1.32 sent (tests/fixtures/protobuf), Kubernetes' special types, the watch framing
and the Accept negotiation. No Docker, no kubectl needed."""

from __future__ import annotations

import base64
import gzip
import json
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from mikro.api import kubeproto, resources
from mikro.api.kubeproto import codec
from mikro.api.kubeproto import descriptors as tables

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "protobuf"

META = {
    "name": "x",
    "namespace": "ns",
    "uid": "0b5e7f8c-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
    "resourceVersion": "42",
    "generation": 3,
    "creationTimestamp": "2026-11-01T10:20:30Z",
    "labels": {"app": "x", "tier": ""},
    "annotations": {"note": "a\nb"},
    "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x-1", "uid": "u1", "controller": True}
    ],
    "finalizers": ["kubernetes"],
    "managedFields": [
        {
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-11-01T10:20:30Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
        }
    ],
}
POD_SPEC = {
    "containers": [
        {
            "name": "web",
            "image": "hello-ip:1",
            "command": ["sh", "-c"],
            "args": ["exec httpd"],
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "b", "optional": False}}},
                {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            ],
            "envFrom": [{"secretRef": {"name": "sec"}}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 2},
            "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 5},
            "startupProbe": {"exec": {"command": ["true"]}, "failureThreshold": 30},
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
            "securityContext": {"runAsUser": 0, "privileged": False},
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
            "imagePullPolicy": "IfNotPresent",
        }
    ],
    "volumes": [
        {"name": "data", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420, "items": [{"key": "a", "path": "a.txt"}]}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "c"}},
    ],
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 0,
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "hostname": "x",
    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
}
TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}
CONDITION = {"type": "Available", "status": "True", "lastTransitionTime": "2026-11-01T10:20:31Z", "reason": "R"}

# One object for every kind in mikro's resource table, exercising its spec and status.
SAMPLES: dict[str, dict[str, Any]] = {
    "Namespace": {"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
    "Pod": {
        "spec": POD_SPEC,
        "status": {
            "phase": "Running",
            "podIP": "10.152.128.5",
            "podIPs": [{"ip": "10.152.128.5"}],
            "startTime": "2026-11-01T10:20:32Z",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": True,
                    "restartCount": 2,
                    "image": "hello-ip:1",
                    "imageID": "docker://sha256:abc",
                    "started": True,
                    "state": {"running": {"startedAt": "2026-11-01T10:20:33Z"}},
                    "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
                }
            ],
        },
    },
    "Service": {
        "spec": {
            "type": "NodePort",
            "selector": {"app": "x"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"}],
            "clusterIP": "10.152.0.10",
            "clusterIPs": ["10.152.0.10"],
            "sessionAffinity": "None",
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
    },
    "Endpoints": {
        "subsets": [
            {
                "addresses": [{"ip": "10.152.128.5", "targetRef": {"kind": "Pod", "name": "x", "namespace": "ns"}}],
                "notReadyAddresses": [{"ip": "10.152.128.6"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        ]
    },
    "ConfigMap": {"data": {"a": "1", "empty": ""}, "binaryData": {"bin": base64.b64encode(b"\x00\xff").decode()}},
    "Secret": {"type": "Opaque", "data": {"k": base64.b64encode(b"v").decode(), "empty": ""}, "immutable": False},
    "Event": {
        "involvedObject": {"kind": "Pod", "name": "x", "namespace": "ns", "uid": "u"},
        "reason": "Started",
        "message": "Started container web",
        "source": {"component": "kubelet"},
        "firstTimestamp": "2026-11-01T10:20:30Z",
        "lastTimestamp": "2026-11-01T10:20:35Z",
        "eventTime": "2026-11-01T10:20:35.123456Z",
        "count": 2,
        "type": "Normal",
    },
    "ServiceAccount": {"secrets": [{"name": "tok"}], "automountServiceAccountToken": False},
    "PersistentVolumeClaim": {
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}},
    },
    "PersistentVolume": {
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/srv/pv", "type": "DirectoryOrCreate"},
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"name": "c", "namespace": "ns"},
        },
        "status": {"phase": "Bound"},
    },
    "ReplicationController": {
        "spec": {"replicas": 1, "selector": {"app": "x"}, "template": TEMPLATE},
        "status": {"replicas": 1, "readyReplicas": 1},
    },
    "Node": {
        "spec": {"podCIDR": "10.152.128.0/17", "taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
            "allocatable": {"cpu": "2"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-01T10:20:30Z"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "operatingSystem": "linux", "architecture": "amd64"},
        },
    },
    "Deployment": {
        "spec": {
            "replicas": 0,
            "selector": SELECTOR,
            "template": TEMPLATE,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "paused": True,
        },
        "status": {"observedGeneration": 3, "replicas": 2, "readyReplicas": 1, "conditions": [CONDITION]},
    },
    "ReplicaSet": {
        "spec": {"replicas": 2, "selector": SELECTOR, "template": TEMPLATE, "minReadySeconds": 5},
        "status": {"replicas": 2, "fullyLabeledReplicas": 2, "availableReplicas": 2},
    },
    "StatefulSet": {
        "spec": {
            "replicas": 3,
            "serviceName": "x",
            "selector": SELECTOR,
            "template": TEMPLATE,
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
        "status": {"replicas": 3, "currentRevision": "x-1", "collisionCount": 0},
    },
    "DaemonSet": {
        "spec": {
            "selector": SELECTOR,
            "template": TEMPLATE,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
        },
        "status": {"desiredNumberScheduled": 1, "numberReady": 1},
    },
    "ControllerRevision": {"data": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}, "revision": 2},
    "Job": {
        "spec": {
            "template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}},
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "activeDeadlineSeconds": 60,
            "ttlSecondsAfterFinished": 100,
            "completionMode": "NonIndexed",
            "suspend": False,
        },
        "status": {
            "succeeded": 1,
            "startTime": "2026-11-01T10:20:30Z",
            "completionTime": "2026-11-01T10:21:30Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    },
    "CronJob": {
        "spec": {
            "schedule": "*/5 * * * *",
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 30,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": {"spec": {**POD_SPEC, "restartPolicy": "OnFailure"}}}},
        },
        "status": {"lastScheduleTime": "2026-11-01T10:20:00Z", "active": [{"kind": "Job", "name": "x-1"}]},
    },
    "Ingress": {
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["demo.local"], "secretName": "tls"}],
            "defaultBackend": {"service": {"name": "x", "port": {"name": "http"}}},
            "rules": [
                {
                    "host": "demo.local",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "x", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": 80, "protocol": "TCP"}]}]}},
    },
    "IngressClass": {
        "spec": {
            "controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p", "scope": "Cluster"},
        }
    },
    "HorizontalPodAutoscaler": {
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}},
        },
        "status": {"currentReplicas": 1, "desiredReplicas": 2},
    },
    "StorageClass": {
        "provisioner": "mikro.io/hostpath",
        "parameters": {"root": "/srv"},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    },
    "ResourceQuota": {
        "spec": {"hard": {"pods": "2", "requests.cpu": "1"}, "scopes": ["NotTerminating"]},
        "status": {"hard": {"pods": "2", "requests.cpu": "1"}, "used": {"pods": "1", "requests.cpu": "100m"}},
    },
    "LimitRange": {
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": "500m"},
                    "defaultRequest": {"cpu": "100m"},
                    "max": {"memory": "1Gi"},
                    "min": {"memory": "4Mi"},
                }
            ]
        }
    },
    "PodTemplate": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": POD_SPEC}},
    "Role": {
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"], "resourceNames": ["a"]},
        ]
    },
    "ClusterRole": {
        "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]},
    },
    "RoleBinding": {
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
    },
    "ClusterRoleBinding": {
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
    },
    "MutatingWebhookConfiguration": {
        "webhooks": [
            {
                "name": "inject.example.com",
                "clientConfig": {
                    "service": {"namespace": "hooks", "name": "inject", "path": "/mutate", "port": 8443},
                    "caBundle": "Y2E=",
                },
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "timeoutSeconds": 5,
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": "IfNeeded",
                "namespaceSelector": {"matchLabels": {"inject": "on"}},
            }
        ]
    },
    "ValidatingWebhookConfiguration": {
        "webhooks": [
            {
                "name": "deny.example.com",
                "clientConfig": {"url": "https://hooks.example.com/validate"},
                "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}],
                "matchPolicy": "Equivalent",
                "sideEffects": "NoneOnDryRun",
                "admissionReviewVersions": ["v1", "v1beta1"],
                "matchConditions": [
                    {"name": "not-system", "expression": "!request.userInfo.username.startsWith('system:')"}
                ],
            }
        ]
    },
    "PodDisruptionBudget": {
        "spec": {
            "minAvailable": 1,
            "selector": {"matchLabels": {"app": "x"}},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
        "status": {
            "observedGeneration": 3,
            "currentHealthy": 2,
            "desiredHealthy": 1,
            "disruptionsAllowed": 1,
            "expectedPods": 2,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": "True",
                    "reason": "SufficientPods",
                    "message": "ok",
                    "lastTransitionTime": "2026-11-01T10:20:30Z",
                    "observedGeneration": 3,
                }
            ],
        },
    },
    "NetworkPolicy": {
        "spec": {
            "podSelector": {"matchLabels": {"app": "x"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"role": "fe"}}},
                        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                    ],
                    "ports": [{"protocol": "TCP", "port": 8080}, {"port": "http"}],
                }
            ],
            "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": 53, "endPort": 60}]}],
        }
    },
    "Lease": {
        "spec": {
            "holderIdentity": "mikro-1",
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-11-01T10:20:30.000000Z",
            "renewTime": "2026-11-01T10:20:31.123456Z",
            "leaseTransitions": 2,
        }
    },
    "PriorityClass": {
        "value": 1000,
        "globalDefault": True,
        "description": "high",
        "preemptionPolicy": "PreemptLowerPriority",
    },
    "EndpointSlice": {
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": ["10.152.128.5"],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "targetRef": {"kind": "Pod", "namespace": "ns", "name": "x-1", "uid": "u2"},
                "nodeName": "mikro",
            }
        ],
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
    },
}


def sample(res: resources.Resource) -> dict[str, Any]:
    meta = dict(META) if res.namespaced else {k: v for k, v in META.items() if k != "namespace"}
    return {"apiVersion": res.api_version, "kind": res.kind, "metadata": meta, **SAMPLES[res.kind]}


def roundtrip(obj: dict[str, Any]) -> dict[str, Any]:
    return kubeproto.decode(kubeproto.encode(obj))


# apiextensions.k8s.io has no message among the descriptors Go programs register (kubectl's):
# CustomResourceDefinitions are served as JSON only, as custom resources are.
JSON_ONLY = {"CustomResourceDefinition"}
PROTOBUF_RESOURCES = [r for r in resources.RESOURCES if r.kind not in JSON_ONLY]


def test_every_served_kind_has_a_sample_and_a_message() -> None:
    assert set(SAMPLES) == {r.kind for r in PROTOBUF_RESOURCES}
    for r in resources.RESOURCES:
        assert kubeproto.has_schema(r.api_version, r.kind) == (r.kind not in JSON_ONLY), r.kind
    for r in PROTOBUF_RESOURCES:
        assert kubeproto.has_schema(r.api_version, r.kind), r.kind
        assert kubeproto.has_schema(r.api_version, r.kind + "List"), r.kind


@pytest.mark.parametrize("res", PROTOBUF_RESOURCES, ids=lambda r: r.kind)
def test_roundtrip_every_kind(res: resources.Resource) -> None:
    obj = sample(res)
    assert roundtrip(obj) == obj


@pytest.mark.parametrize("res", PROTOBUF_RESOURCES, ids=lambda r: r.kind)
def test_roundtrip_every_list(res: resources.Resource) -> None:
    item = {k: v for k, v in sample(res).items() if k not in ("apiVersion", "kind")}
    listing = {
        "apiVersion": res.api_version,
        "kind": f"{res.kind}List",
        "metadata": {"resourceVersion": "77", "continue": "tok"},
        "items": [item, item],
    }
    assert roundtrip(listing) == listing


def corpus_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    files = sorted([*(ROOT / "tests" / "corpus").glob("*.yaml"), *(ROOT / "examples").glob("*.yml")])
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and kubeproto.has_schema(doc.get("apiVersion", ""), doc.get("kind", "")):
                docs.append((path.name, doc))
    return docs


def test_roundtrip_real_manifests() -> None:
    """Every built-in object of the corpus of public manifests and mikro's examples."""
    docs = corpus_documents()
    assert len(docs) > 100
    for name, doc in docs:
        # `creationTimestamp: null` (as kubectl writes it) is Go's zero time: no value at all.
        expected = json.loads(json.dumps(doc))
        if (expected.get("metadata") or {}).get("creationTimestamp", "") is None:
            del expected["metadata"]["creationTimestamp"]
        assert roundtrip(doc) == expected, name


# -- bytes real kubectl sent ---------------------------------------------------------------

TEMPLATE_META: dict[str, Any] = {}
EXPECTED_FROM_KUBECTL: dict[str, dict[str, Any]] = {
    "configmap": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg"},
        "data": {"a": "b", "greeting": "hello world"},
    },
    "secret-generic": {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sec"},
        "data": {"k": base64.b64encode(b"v").decode(), "empty": ""},
    },
    "secret-docker-registry": {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {
            ".dockerconfigjson": base64.b64encode(
                b'{"auths":{"registry.local:5000":{"username":"u","password":"p","auth":"dTpw"}}}'
            ).decode()
        },
    },
    "namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {}, "status": {}},
    "serviceaccount": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}},
    "deployment": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "hello-ip",
                            "image": "hello-ip:1",
                            "ports": [{"containerPort": 8080}],
                            "resources": {},
                        }
                    ]
                },
            },
            "strategy": {},
        },
        "status": {},
    },
    "job": {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "template": {
                "metadata": {},
                "spec": {
                    "containers": [
                        {"name": "once", "image": "hello-ip:1", "command": ["sh", "-c", "echo hi"], "resources": {}}
                    ],
                    "restartPolicy": "Never",
                },
            }
        },
        "status": {},
    },
    "cronjob": {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {
                "metadata": {"name": "nightly"},
                "spec": {
                    "template": {
                        "metadata": {},
                        "spec": {
                            "containers": [{"name": "nightly", "image": "hello-ip:1", "resources": {}}],
                            "restartPolicy": "OnFailure",
                        },
                    }
                },
            },
        },
        "status": {},
    },
    "service-clusterip": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "labels": {"app": "svc"}},
        "spec": {
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "svc"},
            "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    },
    "service-nodeport": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "np", "labels": {"app": "np"}},
        "spec": {
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}],
            "selector": {"app": "np"},
            "type": "NodePort",
        },
        "status": {"loadBalancer": {}},
    },
    "ingress": {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "ing"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "demo.local",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "svc", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
        "status": {"loadBalancer": {}},
    },
}


def test_every_captured_body_is_checked() -> None:
    recorded = json.loads((FIXTURES / "requests.json").read_text())
    assert recorded["kubectl"].startswith("v1.32")
    assert set(recorded["requests"]) == {p.stem for p in FIXTURES.glob("*.bin")}
    assert recorded["helm"].startswith("v3.17")
    helm = {name for name in recorded["requests"] if name.startswith("helm-")}
    assert set(recorded["requests"]) == set(EXPECTED_FROM_KUBECTL) | {"deployment-zero"} | helm
    assert helm == {
        "helm-install-release-secret",
        "helm-install-deployed-secret",
        "helm-uninstall-release-secret",
        "helm-uninstall-delete-options",
    }


@pytest.mark.parametrize("name", sorted(EXPECTED_FROM_KUBECTL))
def test_decode_kubectl_bodies(name: str) -> None:
    assert kubeproto.decode((FIXTURES / f"{name}.bin").read_bytes()) == EXPECTED_FROM_KUBECTL[name]


def test_kubectl_zero_replicas_is_kept_but_zero_value_fields_are_not() -> None:
    """gogo writes every Go value field (minReadySeconds, paused: zero) and pointers only when
    set: `--replicas=0` is a set pointer, and must survive as 0, not become the default 1."""
    body = (FIXTURES / "deployment-zero.bin").read_bytes()
    spec = kubeproto.decode(body)["spec"]
    assert spec["replicas"] == 0
    assert "minReadySeconds" not in spec and "paused" not in spec


def helm_release(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A release Secret Helm sent, and the release inside it (base64 of gzipped JSON)."""
    secret = kubeproto.decode((FIXTURES / f"helm-{name}.bin").read_bytes())
    inner = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    return secret, json.loads(gzip.decompress(inner))


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("install-release-secret", "pending-install"),
        ("install-deployed-secret", "deployed"),
        ("uninstall-release-secret", "uninstalling"),
    ],
)
def test_decode_helm_release_secrets(name: str, status: str) -> None:
    secret, release = helm_release(name)
    assert secret["type"] == "helm.sh/release.v1"
    assert secret["metadata"]["name"] == "sh.helm.release.v1.rel.v1"
    labels = secret["metadata"]["labels"]
    assert {k: labels[k] for k in ("owner", "name", "status", "version")} == {
        "owner": "helm",
        "name": "rel",
        "status": status,
        "version": "1",
    }
    assert release["name"] == "rel" and release["info"]["status"] == status
    assert release["chart"]["metadata"]["name"] == "demo"
    assert "kind: ConfigMap" in release["manifest"] and "image: hello-ip:1" in release["manifest"]


def test_decode_helm_delete_options() -> None:
    body = (FIXTURES / "helm-uninstall-delete-options.bin").read_bytes()
    assert kubeproto.decode(body) == {"apiVersion": "v1", "kind": "DeleteOptions"}
    assert roundtrip(kubeproto.decode(body)) == {"apiVersion": "v1", "kind": "DeleteOptions"}


def test_reencoding_kubectl_bodies_is_understood_by_the_decoder() -> None:
    for name, expected in EXPECTED_FROM_KUBECTL.items():
        assert roundtrip(kubeproto.decode((FIXTURES / f"{name}.bin").read_bytes())) == expected, name


# -- the envelope and special types --------------------------------------------------------


def test_envelope_layout() -> None:
    data = kubeproto.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    # magic, then runtime.Unknown: field 1 typeMeta {1: apiVersion, 2: kind}, field 2 raw.
    assert data.startswith(b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12")
    raw = data[len(b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12") + 1 :]
    assert raw == b"\x0a\x03\x0a\x01a"  # ConfigMap.metadata(1) { ObjectMeta.name(1) "a" }


def test_bad_bodies() -> None:
    with pytest.raises(kubeproto.ProtobufError, match="magic"):
        kubeproto.decode(b'{"kind": "ConfigMap"}')
    with pytest.raises(kubeproto.ProtobufError):
        kubeproto.decode(b"k8s\x00\x0a\xff\xff")
    custom = kubeproto.schema().message(kubeproto.UNKNOWN)()
    custom.typeMeta.apiVersion, custom.typeMeta.kind = "example.com/v1", "Widget"
    with pytest.raises(kubeproto.NoSchema):
        kubeproto.decode(b"k8s\x00" + custom.SerializeToString())
    with pytest.raises(kubeproto.NoSchema):
        kubeproto.encode({"apiVersion": "example.com/v1", "kind": "Widget"})


def test_times() -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e", "creationTimestamp": "2026-11-01T12:00:00+02:00"},
        "eventTime": "2026-11-01T10:00:00.5Z",
        "firstTimestamp": "2026-11-01T10:00:00.999Z",
    }
    back = roundtrip(event)
    assert back["metadata"]["creationTimestamp"] == "2026-11-01T10:00:00Z"  # UTC, as Go writes it
    assert back["eventTime"] == "2026-11-01T10:00:00.500000Z"  # MicroTime keeps microseconds
    assert back["firstTimestamp"] == "2026-11-01T10:00:00Z"  # Time is whole seconds in JSON
    with pytest.raises(kubeproto.ProtobufError, match="RFC 3339"):
        kubeproto.encode({**event, "eventTime": "yesterday"})


def test_zero_go_time_is_no_time() -> None:
    msg = kubeproto.schema().message("k8s.io.api.core.v1.ConfigMap")()
    msg.metadata.name = "a"
    msg.metadata.creationTimestamp.seconds = kubeproto.GO_ZERO_TIME
    assert kubeproto.to_dict(msg) == {"metadata": {"name": "a"}}


@pytest.mark.parametrize(
    ("text", "ns", "shown"),
    [
        ("1h30m", 5400 * 10**9, "1h30m0s"),
        ("2.5s", 2_500_000_000, "2.5s"),
        ("0", 0, "0s"),
        ("-1m", -60 * 10**9, "-1m0s"),
    ],
)
def test_durations(text: str, ns: int, shown: str) -> None:
    assert codec._parse_duration(text) == ns
    assert codec._format_duration(ns) == shown


def test_int_or_string_quantity_and_bytes() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 81, "targetPort": "web"}]},
    }
    assert roundtrip(svc) == svc
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 1, "memory": 1.5}}}]},
    }
    # YAML numbers for quantities travel as Quantity strings.
    limits = roundtrip(pod)["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "1", "memory": "1.5"}
    with pytest.raises(kubeproto.ProtobufError, match="base64"):
        kubeproto.encode({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "!!"}})


def test_renamed_fields() -> None:
    cls = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "nginx"},
        "spec": {"controller": "c", "parameters": {"apiGroup": "g", "kind": "K", "name": "n"}},
    }
    data = kubeproto.encode(cls)
    assert roundtrip(cls) == cls and b"\x0a\x01g" in data


def test_status_and_delete_options() -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "x" not found',
        "reason": "NotFound",
        "details": {"name": "x", "kind": "configmaps"},
        "code": 404,
    }
    assert roundtrip(status) == status
    options = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "propagationPolicy": "Foreground"}
    assert roundtrip(options) == options
    options_v1 = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
    assert roundtrip(options_v1) == options_v1


def test_proto_field_names_are_the_official_clients_json_names() -> None:
    """Every field of every message mikro can send maps (directly, renamed or inlined) to a JSON
    name the official Python client's models know: the mapping to JSON is complete."""
    import kubernetes.client.models as models

    s = kubeproto.schema()
    special = {
        tables.TIME,
        tables.MICRO_TIME,
        tables.DURATION,
        tables.FIELDS_V1,
        tables.INT_OR_STRING,
        tables.QUANTITY,
        tables.RAW_EXTENSION,
        *kubeproto.STRING_LISTS,
    }
    inlined = {s.pool.FindMessageTypeByName(m).fields_by_name[f].message_type.full_name for m, f in kubeproto.INLINE}

    def json_names(desc: Any) -> set[str]:
        out: set[str] = set()
        for f in desc.fields:
            if (desc.full_name, f.name) in kubeproto.INLINE:
                out |= json_names(f.message_type)
            else:
                out.add(kubeproto.RENAMED.get((desc.full_name, f.name), f.name))
        return out

    todo = [s.find(r.api_version, k) for r in PROTOBUF_RESOURCES for k in (r.kind, r.kind + "List")]
    todo += [s.find("v1", "Status"), s.find("autoscaling/v1", "Scale"), s.find("v1", "DeleteOptions")]
    seen: set[str] = set()
    checked = 0
    while todo:
        name = todo.pop()
        assert name is not None
        if name in seen or name in special:
            continue
        seen.add(name)
        desc = s.pool.FindMessageTypeByName(name)
        todo += [f.message_type.full_name for f in desc.fields if f.message_type is not None]
        if desc.GetOptions().map_entry or name in inlined:
            continue
        *_, group, version, short = name.split(".")
        model = getattr(models, f"{group.capitalize()}{version.capitalize()}{short}", None) or getattr(
            models, f"{version.capitalize()}{short}"
        )
        assert json_names(desc) <= set(model.attribute_map.values()), name
        checked += 1
    assert checked > 250


# -- the API server's side -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "protobuf"),
    [
        ("application/vnd.kubernetes.protobuf, */*", True),
        ("application/vnd.kubernetes.protobuf,application/json", True),
        ("application/json, application/vnd.kubernetes.protobuf", False),
        ("application/json;q=0.5, application/vnd.kubernetes.protobuf;q=0.9", True),
        ("application/vnd.kubernetes.protobuf;q=0", False),
        ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_accept_negotiation(accept: str, protobuf: bool) -> None:
    assert kubeproto.prefers_protobuf(accept) is protobuf


def test_render_falls_back_to_json() -> None:
    accept = "application/vnd.kubernetes.protobuf, */*"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    assert kubeproto.render(cm, accept)[0] == kubeproto.MEDIA_TYPE
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"}}
    assert kubeproto.render(widget, accept) == ("application/json", json.dumps(widget, separators=(",", ":")).encode())
    table = {"apiVersion": "meta.k8s.io/v1", "kind": "Table", "rows": []}
    assert kubeproto.render(table, accept)[0] == "application/json"
    assert kubeproto.render(cm, "application/json")[0] == "application/json"


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7


def test_watch_frames_follow_client_gos_length_delimited_format() -> None:
    """client-go reads a protobuf watch as frames of a 4-byte big-endian length followed by a
    bare metav1.WatchEvent (type = 1, object = 2), whose RawExtension.raw (1) holds the object
    in the enveloped form. Parsed here by hand, without the protobuf library."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"}}
    stream = kubeproto.encode_watch_event("ADDED", cm) + kubeproto.encode_watch_event("DELETED", cm)
    (length,) = struct.unpack(">I", stream[:4])
    frame = stream[4 : 4 + length]
    assert frame[:7] == b"\x0a\x05ADDED"
    assert frame[7] == 0x12  # field 2, length-delimited: the RawExtension
    ext_len, at = read_varint(frame, 8)
    assert at + ext_len == len(frame)
    assert frame[at] == 0x0A  # RawExtension.raw
    raw_len, at = read_varint(frame, at + 1)
    raw = frame[at : at + raw_len]
    assert raw.startswith(b"k8s\x00") and kubeproto.decode(raw) == cm
    assert kubeproto.decode_watch_stream(stream) == [("ADDED", cm), ("DELETED", cm)]
    with pytest.raises(kubeproto.ProtobufError):
        kubeproto.decode_watch_stream(stream[:-1])


def test_stored_values_protobuf_cannot_carry() -> None:
    """A single answer falls back to JSON; a watch frame leaves the one bad field out."""
    odd = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": "http"}]}]},
    }
    with pytest.raises(kubeproto.ProtobufError, match="containerPort"):
        kubeproto.encode(odd)
    ctype, data = kubeproto.render(odd, "application/vnd.kubernetes.protobuf, */*")
    assert ctype == "application/json" and json.loads(data) == odd
    ((type_, sent),) = kubeproto.decode_watch_stream(kubeproto.watch_frame("ADDED", odd, protobuf=True))
    assert type_ == "ADDED" and sent["metadata"] == odd["metadata"]
    assert sent["spec"]["containers"] == [{"name": "c", "ports": [{}]}]


@pytest.mark.parametrize(
    "obj",
    [
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": "default", "namespace": "default"},
            "spec": {
                "audiences": ["https://kubernetes.default.svc"],
                "expirationSeconds": 3600,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-1"},
            },
            "status": {"token": "eyJ", "expirationTimestamp": "2026-11-27T10:00:00Z"},
        },
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
            "status": {"allowed": True, "reason": "mikro has one user"},
        },
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "metadata": {},
            "status": {
                "userInfo": {"username": "admin", "groups": ["system:masters"], "extra": {"scopes": ["a", "b"]}}
            },
        },
    ],
    ids=lambda o: o["kind"],
)
def test_roundtrip_kinds_kubectl_auth_and_token_send(obj: dict[str, Any]) -> None:
    """kubectl create token, auth can-i and auth whoami send these in protobuf; the endpoints
    are other parts of mikro, the codec is this one's (the renamed `uID` and map-of-list
    `extra` included)."""
    assert roundtrip(obj) == obj


def test_descriptor_extraction_finds_registered_files() -> None:
    """tools/kube_descriptors.py finds the gzipped FileDescriptorProtos a Go binary registers,
    among other bytes and other gzip streams."""
    import gzip as gz

    from google.protobuf import descriptor_pb2

    from tools.kube_descriptors import registered_files

    fd = descriptor_pb2.FileDescriptorProto(name="k8s.io/api/core/v1/generated.proto", package="k8s.io.api.core.v1")
    fd.message_type.add(name="ConfigMap")
    other = descriptor_pb2.FileDescriptorProto(name="google/protobuf/any.proto")
    blob = (
        b"\x7fELF"
        + b"\x00" * 100
        + gz.compress(fd.SerializeToString(), mtime=0)
        + b"\x1f\x8b\x08\x00 not a stream"
        + gz.compress(other.SerializeToString(), mtime=0)
        + gz.compress(b"plain text, not a descriptor", mtime=0)
    )
    found = registered_files(blob)
    assert list(found) == ["k8s.io/api/core/v1/generated.proto"]
    assert found["k8s.io/api/core/v1/generated.proto"].message_type[0].name == "ConfigMap"


def test_committed_descriptors_are_the_kubernetes_files_mikro_needs() -> None:
    from google.protobuf import descriptor_pb2

    from tools.kube_descriptors import OUT, WANTED

    files = descriptor_pb2.FileDescriptorSet.FromString(OUT.read_bytes()).file
    assert [f.name for f in files] == WANTED
    assert all("gogo" not in dep for f in files for dep in f.dependency)
