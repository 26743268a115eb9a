"""The resource types mikro serves: kind, group/version, plural, scope and short names.

One table drives the API server's routes and discovery, the CLI's resource names and
the manifest parser's kind check, so that the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    # A custom resource's definition (mikro.api.crds.Custom); None for the built-in kinds.
    custom: Any = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.custom.singular if self.custom is not None else self.kind.lower()

    @property
    def qualified(self) -> str:
        """The name kubectl prints in `deployment.apps/web`."""
        return f"{self.singular}.{self.group}" if self.group else self.singular

    def base_path(self, namespace: str | None = None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"


RESOURCES: tuple[Resource, ...] = (
    Resource("Namespace", "", "v1", "namespaces", False, ("ns",)),
    Resource("Pod", "", "v1", "pods", True, ("po",)),
    Resource("Service", "", "v1", "services", True, ("svc",)),
    Resource("Endpoints", "", "v1", "endpoints", True, ("ep",)),
    Resource("ConfigMap", "", "v1", "configmaps", True, ("cm",)),
    Resource("Secret", "", "v1", "secrets", True),
    Resource("Event", "", "v1", "events", True, ("ev",)),
    Resource("ServiceAccount", "", "v1", "serviceaccounts", True, ("sa",)),
    Resource("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", True, ("pvc",)),
    Resource("PersistentVolume", "", "v1", "persistentvolumes", False, ("pv",)),
    Resource("ReplicationController", "", "v1", "replicationcontrollers", True, ("rc",)),
    Resource("Node", "", "v1", "nodes", False, ("no",)),
    Resource("Deployment", "apps", "v1", "deployments", True, ("deploy",)),
    Resource("ReplicaSet", "apps", "v1", "replicasets", True, ("rs",)),
    Resource("StatefulSet", "apps", "v1", "statefulsets", True, ("sts",)),
    Resource("DaemonSet", "apps", "v1", "daemonsets", True, ("ds",)),
    Resource("ControllerRevision", "apps", "v1", "controllerrevisions", True),
    Resource("Job", "batch", "v1", "jobs", True),
    Resource("CronJob", "batch", "v1", "cronjobs", True, ("cj",)),
    Resource("Ingress", "networking.k8s.io", "v1", "ingresses", True, ("ing",)),
    Resource("IngressClass", "networking.k8s.io", "v1", "ingressclasses", False),
    Resource("StorageClass", "storage.k8s.io", "v1", "storageclasses", False, ("sc",)),
    Resource("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", True, ("hpa",)),
    Resource("ResourceQuota", "", "v1", "resourcequotas", True, ("quota",)),
    Resource("LimitRange", "", "v1", "limitranges", True, ("limits",)),
    Resource("PodTemplate", "", "v1", "podtemplates", True),
    Resource("Role", "rbac.authorization.k8s.io", "v1", "roles", True),
    Resource("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", False),
    Resource("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", True),
    Resource("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    Resource("MutatingWebhookConfiguration", "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", False),
    Resource("ValidatingWebhookConfiguration", "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", False),
    Resource("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", True, ("pdb",)),
    Resource("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", True, ("netpol",)),
    Resource("Lease", "coordination.k8s.io", "v1", "leases", True),
    Resource("PriorityClass", "scheduling.k8s.io", "v1", "priorityclasses", False, ("pc",)),
    Resource("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", True),
    Resource(
        "CustomResourceDefinition", "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, ("crd", "crds")
    ),
)

# The custom resources the stored CustomResourceDefinitions define, one entry per served
# version, keyed (group, version, plural); kept by mikro.api.crds, consulted by every lookup here.
DYNAMIC: dict[tuple[str, str, str], Resource] = {}


def every() -> list[Resource]:
    """The built-in resources, then the custom ones."""
    return [*RESOURCES, *DYNAMIC.values()]


BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}


def kind_of(kind: str) -> Resource | None:
    """The resource of a kind: built-in, else custom (the first served version)."""
    return BY_KIND.get(kind) or next((r for r in DYNAMIC.values() if r.kind == kind), None)


def by_group_version_plural(group: str, version: str, plural: str) -> Resource | None:
    if (group, version, plural) in DYNAMIC:
        return DYNAMIC[(group, version, plural)]
    for r in RESOURCES:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None


def for_api_version(api_version: str, kind: str) -> Resource | None:
    r = BY_KIND.get(kind)
    if r is None:
        group, _, version = api_version.rpartition("/")
        r = next((d for d in DYNAMIC.values() if (d.group, d.version, d.kind) == (group, version, kind)), None)
    if r is None or r.api_version != api_version:
        return None
    return r


def lookup(name: str) -> Resource | None:
    """Resolve a name as kubectl does: plural, singular, kind, short name, or `plural.group`."""
    key = name.lower()
    for r in every():
        names = {r.plural, r.singular, *r.short_names}
        if r.custom is not None:
            names.add(r.kind.lower())
        if key in names:
            return r
        if "." in key:
            base, _, group = key.partition(".")
            if group == r.group and base in names:
                return r
    return None


def groups() -> dict[str, list[str]]:
    """group -> versions, for discovery (the core group is not listed under /apis)."""
    out: dict[str, list[str]] = {}
    for r in every():
        if r.group:
            versions = out.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)
    return out
