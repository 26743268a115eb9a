"""The protobuf schema of Kubernetes' built-in kinds, and the facts of its mapping to JSON.

The messages come from the descriptors Kubernetes' Go code registers (proto/kubernetes.binpb,
extracted from kubectl by tools/kube_descriptors.py). What the descriptors do not say is in the
tables below: fields JSON inlines or names differently, the special types, which API group lives
in which protobuf package.
"""

from __future__ import annotations

import functools
from importlib import resources as pkg_resources

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

MAGIC = b"k8s\x00"
META = "k8s.io.apimachinery.pkg.apis.meta.v1"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
DURATION = f"{META}.Duration"
FIELDS_V1 = f"{META}.FieldsV1"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
WATCH_EVENT = f"{META}.WatchEvent"
# Go types `[]string` that protobuf wraps in a message of one repeated field.
STRING_LISTS = {
    f"{META}.Verbs",
    "k8s.io.api.authentication.v1.ExtraValue",
    "k8s.io.api.authorization.v1.ExtraValue",
    "k8s.io.api.certificates.v1.ExtraValue",
}
# Embedded Go structs that JSON inlines: (message, field) whose sub-fields sit in the parent dict.
INLINE = {
    ("k8s.io.api.core.v1.Probe", "handler"),
    ("k8s.io.api.core.v1.Volume", "volumeSource"),
    ("k8s.io.api.core.v1.PersistentVolumeSpec", "persistentVolumeSource"),
    ("k8s.io.api.core.v1.EphemeralContainer", "ephemeralContainerCommon"),
    ("k8s.io.api.networking.v1.IngressRule", "ingressRuleValue"),
    ("k8s.io.api.admissionregistration.v1.RuleWithOperations", "rule"),
    *(
        (f"k8s.io.api.core.v1.{m}", "localObjectReference")
        for m in (
            "ConfigMapEnvSource",
            "ConfigMapKeySelector",
            "ConfigMapProjection",
            "ConfigMapVolumeSource",
            "SecretEnvSource",
            "SecretKeySelector",
            "SecretProjection",
        )
    ),
}
# Fields whose protobuf name is not their JSON name (go-to-protobuf's quirks).
RENAMED = {
    ("k8s.io.api.networking.v1.IngressClassParametersReference", "aPIGroup"): "apiGroup",
    ("k8s.io.api.authentication.v1.BoundObjectReference", "uID"): "uid",
    ("k8s.io.api.admissionregistration.v1.MutatingWebhookConfiguration", "Webhooks"): "webhooks",
    ("k8s.io.api.admissionregistration.v1.ValidatingWebhookConfiguration", "Webhooks"): "webhooks",
}
# API group -> the protobuf package of its v1 (or named) version.
GROUP_PACKAGES = {
    "": "k8s.io.api.core",
    "apps": "k8s.io.api.apps",
    "batch": "k8s.io.api.batch",
    "networking.k8s.io": "k8s.io.api.networking",
    "storage.k8s.io": "k8s.io.api.storage",
    "policy": "k8s.io.api.policy",
    "rbac.authorization.k8s.io": "k8s.io.api.rbac",
    "autoscaling": "k8s.io.api.autoscaling",
    "coordination.k8s.io": "k8s.io.api.coordination",
    "discovery.k8s.io": "k8s.io.api.discovery",
    "events.k8s.io": "k8s.io.api.events",
    "scheduling.k8s.io": "k8s.io.api.scheduling",
    "node.k8s.io": "k8s.io.api.node",
    "authentication.k8s.io": "k8s.io.api.authentication",
    "authorization.k8s.io": "k8s.io.api.authorization",
    "certificates.k8s.io": "k8s.io.api.certificates",
    "admissionregistration.k8s.io": "k8s.io.api.admissionregistration",
}
# Kinds of meta.k8s.io that travel under any group's apiVersion (Status, DeleteOptions, ...).
META_KINDS = {
    "Status",
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "GetOptions",
    "ListOptions",
    "WatchEvent",
    "APIResourceList",
    "APIGroupList",
    "APIGroup",
    "APIVersions",
}
GO_ZERO_TIME = -62135596800  # time.Time{}.Unix()
NULLABLE_FALSE = b"\xc8\xde\x1f\x00"  # (gogoproto.nullable) = false, field 65001, varint 0


class ProtobufError(ValueError):
    """A body that is not a Kubernetes protobuf object mikro can read."""


class NoSchema(ProtobufError):
    """The kind has no protobuf message (custom resources, Table): JSON only."""


class _Schema:
    def __init__(self) -> None:
        data = pkg_resources.files("mikro.api.kubeproto").joinpath("proto/kubernetes.binpb").read_bytes()
        files = descriptor_pb2.FileDescriptorSet.FromString(data)
        self.pool = descriptor_pool.DescriptorPool()
        self.values: set[tuple[str, str]] = set()  # (message, field) that are Go non-pointers
        for fd in files.file:
            self.pool.Add(fd)
            for msg in fd.message_type:
                self._note_values(fd.package, msg)

    def _note_values(self, prefix: str, msg: descriptor_pb2.DescriptorProto) -> None:
        full = f"{prefix}.{msg.name}"
        for f in msg.field:
            if NULLABLE_FALSE in f.options.SerializeToString():
                self.values.add((full, f.name))
        for nested in msg.nested_type:
            self._note_values(full, nested)

    @functools.cache  # noqa: B019 - one schema per process
    def message(self, full_name: str) -> type[Message]:
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def find(self, api_version: str, kind: str) -> str | None:
        group, _, version = api_version.rpartition("/")
        if kind in META_KINDS:
            name = f"{META}.{kind}"
        elif group in GROUP_PACKAGES:
            name = f"{GROUP_PACKAGES[group]}.{version}.{kind}"
        else:
            return None
        try:
            self.pool.FindMessageTypeByName(name)
        except KeyError:
            return None
        return name


@functools.cache
def schema() -> _Schema:
    return _Schema()


def has_schema(api_version: str, kind: str) -> bool:
    return schema().find(api_version, kind) is not None
