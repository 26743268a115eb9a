#!/usr/bin/env python3
"""Write mikro/api/kubeproto/proto/kubernetes.binpb: the protobuf schema of Kubernetes' built-in kinds.

Every Go client built on k8s.io/api (kubectl, Helm, client-go programs) registers the
FileDescriptorProto of each `generated.proto` it was compiled with, as a gzip stream inside the
binary. This script finds those streams in a kubectl binary and keeps the files mikro needs, so
the field numbers mikro speaks are exactly the ones real clients use (no hand transcription).

    python3 tools/kube_descriptors.py /usr/lib/google-cloud-sdk/bin/kubectl.1.32

The descriptors keep their gogoproto options (as unknown fields): `(gogoproto.nullable) = false`
marks a Go non-pointer field, which mikro's codec needs to tell "absent" from "zero". Only the
import of gogo.proto itself is dropped, since nothing in it is needed to read the messages.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

from google.protobuf import descriptor_pb2

GZIP_MAGIC = b"\x1f\x8b\x08\x00"
GOGO = "github.com/gogo/protobuf/gogoproto/gogo.proto"
WANTED = [
    "k8s.io/apimachinery/pkg/runtime/schema/generated.proto",
    "k8s.io/apimachinery/pkg/runtime/generated.proto",
    "k8s.io/apimachinery/pkg/util/intstr/generated.proto",
    "k8s.io/apimachinery/pkg/api/resource/generated.proto",
    "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto",
    "k8s.io/api/core/v1/generated.proto",
    "k8s.io/api/apps/v1/generated.proto",
    "k8s.io/api/batch/v1/generated.proto",
    "k8s.io/api/networking/v1/generated.proto",
    "k8s.io/api/storage/v1/generated.proto",
    "k8s.io/api/policy/v1/generated.proto",
    "k8s.io/api/rbac/v1/generated.proto",
    "k8s.io/api/autoscaling/v1/generated.proto",
    "k8s.io/api/autoscaling/v2/generated.proto",
    "k8s.io/api/coordination/v1/generated.proto",
    "k8s.io/api/discovery/v1/generated.proto",
    "k8s.io/api/events/v1/generated.proto",
    "k8s.io/api/scheduling/v1/generated.proto",
    "k8s.io/api/node/v1/generated.proto",
    "k8s.io/api/authentication/v1/generated.proto",
    "k8s.io/api/authorization/v1/generated.proto",
    "k8s.io/api/certificates/v1/generated.proto",
    "k8s.io/api/admissionregistration/v1/generated.proto",
]
OUT = Path(__file__).resolve().parent.parent / "mikro" / "api" / "kubeproto" / "proto" / "kubernetes.binpb"


def registered_files(binary: bytes) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    found: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    at = binary.find(GZIP_MAGIC)
    while at >= 0:
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(binary[at : at + 4_000_000])
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except Exception:  # noqa: BLE001 - most gzip-looking bytes are not descriptors
            fd = None
        if fd is not None and fd.name.startswith("k8s.io/") and fd.name.endswith(".proto"):
            found[fd.name] = fd
        at = binary.find(GZIP_MAGIC, at + 4)
    return found


def main(path: str) -> None:
    found = registered_files(Path(path).read_bytes())
    missing = [name for name in WANTED if name not in found]
    if missing:
        sys.exit(f"not registered in {path}: {', '.join(missing)}")
    out = descriptor_pb2.FileDescriptorSet()
    for name in WANTED:
        fd = found[name]
        deps = [d for d in fd.dependency if d != GOGO]
        del fd.dependency[:]
        fd.dependency.extend(deps)
        out.file.append(fd)
    OUT.write_bytes(out.SerializeToString(deterministic=True))
    print(f"wrote {OUT} ({len(out.file)} files, {OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/google-cloud-sdk/bin/kubectl.1.32")
