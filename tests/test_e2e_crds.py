"""CustomResourceDefinitions on a real mikro, driven by real kubectl (kubeconfig from `mikro
config`) and by mikro's own CLI: a CRD and custom resources of it applied, listed with the
printer columns, patched, refused when they break the schema, their status written through the
subresource, and gone with their CRD."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Mikro, wait_for
from .kubectl_harness import kubectl_binary

pytestmark = pytest.mark.docker

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Ready, type: boolean, jsonPath: .status.ready}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [color]
            x-kubernetes-validations:
            - {rule: "self.color != 'blue' || self.replicas <= 1", message: blue widgets run one replica}
            properties:
              color: {type: string, enum: [red, blue]}
              replicas: {type: integer, minimum: 0, default: 1}
          status:
            type: object
            properties:
              ready: {type: boolean}
"""
WIDGETS = """\
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {color: red, replicas: 2}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w2}
spec: {color: blue}
"""
GADGETS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.tools.example.org}
spec:
  group: tools.example.org
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 3}
---
apiVersion: tools.example.org/v1alpha1
kind: Gadget
metadata: {name: g1}
spec: {}
"""


@pytest.fixture(scope="module")
def kubectl(mikro: Mikro, tmp_path_factory: pytest.TempPathFactory) -> Any:
    kubeconfig = tmp_path_factory.mktemp("kubeconfig") / "config"
    kubeconfig.write_text(mikro.run("config").stdout)

    def run(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(kubeconfig), *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


def test_kubectl_crd_lifecycle(kubectl: Any, tmp_path: Path) -> None:
    crd, widgets = tmp_path / "crd.yaml", tmp_path / "widgets.yaml"
    crd.write_text(CRD)
    widgets.write_text(WIDGETS)
    assert kubectl("apply", "-f", str(crd)).stdout == (
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created\n"
    )
    established = kubectl("get", "crd", "widgets.example.com", "-o", "jsonpath={.status.conditions[*].type}")
    assert set(established.stdout.split()) == {"Established", "NamesAccepted"}
    # Real kubectl validates the custom resources (--validate=strict, the default) and applies them.
    assert kubectl("apply", "-f", str(widgets)).stdout == (
        "widget.example.com/w1 created\nwidget.example.com/w2 created\n"
    )
    table = kubectl("get", "widgets").stdout.splitlines()
    assert table[0].split() == ["NAME", "COLOR", "REPLICAS", "READY"]
    # (a column whose path finds nothing is empty, as on Kubernetes)
    assert [line.split() for line in table[1:]] == [["w1", "red", "2"], ["w2", "blue", "1"]]
    assert kubectl("get", "wd", "w2", "-o", "jsonpath={.spec.replicas}").stdout == "1"  # defaulted
    explained = kubectl("explain", "widgets.spec").stdout  # from the OpenAPI v3 document
    assert "KIND:       Widget" in explained and "color\t<string> -required-" in explained
    shown = yaml.safe_load(kubectl("get", "widget", "w1", "-o", "yaml").stdout)
    assert shown["apiVersion"] == "example.com/v1" and shown["kind"] == "Widget"
    assert shown["spec"] == {"color": "red", "replicas": 2}

    assert kubectl("patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"replicas":5}}').stdout == (
        "widget.example.com/w1 patched\n"
    )
    bad = kubectl("patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"replicas":"many"}}', check=False)
    assert bad.returncode == 1
    assert 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "many"' in bad.stderr
    bad = kubectl("patch", "widget", "w1", "-p", '{"spec":{"replicas":6}}', check=False)  # strategic merge
    assert bad.returncode == 1 and "application/merge-patch+json" in bad.stderr
    bad = kubectl("apply", "-f", "-", check=False, stdin=WIDGETS.split("---")[0].replace("color: red", "color: green"))
    assert (
        bad.returncode == 1 and 'spec.color: Unsupported value: "green": supported values: "red", "blue"' in bad.stderr
    )
    assert kubectl("get", "widget", "w1", "-o", "jsonpath={.spec.color}/{.spec.replicas}").stdout == "red/5"

    kubectl(
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"ready":true},"spec":{"color":"blue"}}',
    )
    after = yaml.safe_load(kubectl("get", "widget", "w1", "-o", "yaml").stdout)
    assert after["status"] == {"ready": True} and after["spec"]["color"] == "red"
    assert kubectl("get", "widgets", "w1").stdout.splitlines()[1].split() == ["w1", "red", "5", "true"]

    assert kubectl("delete", "crd", "widgets.example.com").stdout == (
        'customresourcedefinition.apiextensions.k8s.io "widgets.example.com" deleted\n'
    )
    kubectl("apply", "-f", str(crd))
    assert kubectl("get", "widgets", "-o", "name").stdout == ""  # the objects went with the CRD
    kubectl("delete", "crd", "widgets.example.com")


def test_cel_rules_refuse_with_kubernetes_wording(kubectl: Any, tmp_path: Path) -> None:
    crd, bad = tmp_path / "crd.yaml", tmp_path / "bad.yaml"
    crd.write_text(CRD)
    bad.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w3}\nspec: {color: blue, replicas: 3}\n")
    kubectl("apply", "-f", str(crd))
    refused = kubectl("apply", "-f", str(bad), check=False)
    assert refused.returncode == 1
    assert 'The Widget "w3" is invalid: spec: Invalid value: "object": blue widgets run one replica' in refused.stderr
    assert kubectl("get", "widget", "w3", check=False).returncode == 1
    kubectl("delete", "crd", "widgets.example.com")


def test_a_crd_waits_for_its_objects_finalizers(kubectl: Any, tmp_path: Path) -> None:
    """As on Kubernetes: deleting a CRD deletes its objects, and an object an operator still
    holds by a finalizer keeps the CRD (Terminating, no new objects) until it is released."""
    crd, held = tmp_path / "crd.yaml", tmp_path / "held.yaml"
    crd.write_text(CRD)
    held.write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: held\n"
        "  finalizers: [example.com/cleanup]\nspec: {color: red}\n"
    )
    kubectl("apply", "-f", str(crd))
    kubectl("apply", "-f", str(held))
    kubectl("delete", "crd", "widgets.example.com", "--wait=false")
    wait_for(
        lambda: kubectl("get", "widget", "held", "-o", "jsonpath={.metadata.deletionTimestamp}").stdout != "",
        30,
        what="the held widget marked for deletion",
    )
    reason = "jsonpath={.status.conditions[?(@.type=='Terminating')].reason}"
    assert kubectl("get", "crd", "widgets.example.com", "-o", reason).stdout == "InstanceDeletionInProgress"
    refused = kubectl("create", "-f", str(held), check=False)
    assert refused.returncode == 1
    assert "create not allowed while custom resource definition is terminating" in refused.stderr
    kubectl("patch", "widget", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for(
        lambda: kubectl("get", "crd", "widgets.example.com", check=False).returncode == 1,
        30,
        what="the CRD gone once its last object is",
    )


def test_mikro_apply_of_a_crd_and_its_objects(mikro: Mikro, tmp_path: Path) -> None:
    both = tmp_path / "gadgets.yaml"
    both.write_text(GADGETS)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GADGETS.replace("spec: {}", "spec: {size: big}"))
    refused = mikro.run("apply", "-f", str(bad), check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert 'spec.size: Invalid value: "string": spec.size in body must be of type integer: "big"' in refused.stderr
    # nothing half-applied: the CRD of the refused file was not created either
    assert "gadgets" not in mikro.kubectl("get", "crd", "-o", "name").stdout

    applied = mikro.run("apply", "-f", str(both))
    assert applied.stdout == (
        "customresourcedefinition.apiextensions.k8s.io/gadgets.tools.example.org created\n"
        "gadget.tools.example.org/g1 created\n"
    )
    assert mikro.run("apply", "-f", str(both)).stdout.endswith("gadget.tools.example.org/g1 unchanged\n")
    table = mikro.kubectl("get", "gadgets").stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE"] and table[1].split()[0] == "g1"
    assert mikro.json("gadget", "g1")["spec"] == {"size": 3}
    mikro.kubectl("delete", "crd", "gadgets.tools.example.org")
    gone = mikro.kubectl("get", "gadgets", check=False)
    assert gone.returncode == 1 and 'the server doesn\'t have a resource type "gadgets"' in gone.stderr
