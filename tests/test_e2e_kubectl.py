"""Real kubectl (1.32) against a real mikro: apply with validation, diff, explain, edit, replace,
patch, server-side apply, get all, auth, label/annotate, delete, and agreement between
`mikro apply` and `kubectl apply`. Each step is its own test on one cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Mikro, wait_for

pytestmark = pytest.mark.docker

KUBECTL = os.environ.get("MIKRO_TEST_KUBECTL") or shutil.which("kubectl") or "kubectl"


def deployment(name: str, replicas: int = 1, extra: str = "") -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\n"
        f"spec:\n  replicas: {replicas}\n{extra}  selector:\n    matchLabels: {{app: {name}}}\n"
        f"  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n"
        "      - name: web\n        image: hello-ip:1\n        ports:\n        - containerPort: 8080\n"
    )


def service(name: str, port_field: str = "targetPort") -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n"
        f"  ports:\n  - port: 80\n    {port_field}: 8080\n"
    )


class Kubectl:
    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=120,
            input=input,
            env={**os.environ, "KUBECACHEDIR": str(self.workdir / "cache"), **(env or {})},
        )

    def file(self, name: str, text: str) -> str:
        path = self.workdir / name
        path.write_text(text)
        return str(path)

    def get(self, *args: str) -> dict:
        done = self("get", *args, "-o", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def kubectl(mikro: Mikro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    workdir = tmp_path_factory.mktemp("kubectl")
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(mikro.run("config").stdout)
    yield Kubectl(kubeconfig, workdir)


def test_kubectl_is_1_32(kubectl: Kubectl) -> None:
    version = json.loads(kubectl("version", "--client", "-o", "json").stdout)
    assert version["clientVersion"]["minor"].rstrip("+") == "32"


def test_apply_validates_created_unchanged_configured(kubectl: Kubectl) -> None:
    path = kubectl.file("a.yaml", deployment("ka"))
    first = kubectl("apply", "-f", path)
    assert (first.returncode, first.stdout, first.stderr) == (0, "deployment.apps/ka created\n", "")
    again = kubectl("apply", "-f", path)
    assert (again.returncode, again.stdout) == (0, "deployment.apps/ka unchanged\n")
    kubectl.file("a.yaml", deployment("ka", replicas=2))
    changed = kubectl("apply", "-f", path)
    assert (changed.returncode, changed.stdout) == (0, "deployment.apps/ka configured\n")
    assert kubectl.get("deployment", "ka")["spec"]["replicas"] == 2


def test_apply_refuses_unknown_field_strictly(kubectl: Kubectl, mikro: Mikro) -> None:
    path = kubectl.file("bad.yaml", service("kbad", port_field="targetport"))
    refused = kubectl("apply", "-f", path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f'Error from server (BadRequest): error when creating "{path}": Service in version "v1" cannot be '
        'handled as a Service: strict decoding error: unknown field "spec.ports[0].targetport"'
    )
    mine = mikro.run("apply", "-f", path, check=False)
    assert mine.returncode == 1 and mine.stdout == ""
    assert mine.stderr.strip() == (
        f'error: from server (BadRequest): error when creating "{path}": Service in version "v1" cannot be '
        'handled as a Service: strict decoding error: unknown field "spec.ports[0].targetport"'
    )
    assert kubectl("get", "service", "kbad").returncode == 1
    misplaced = kubectl.file("surge.yaml", deployment("ksurge", extra="  strategy:\n    maxSurge: 1\n"))
    refused = mikro.run("apply", "-f", misplaced, check=False)
    assert refused.returncode == 1 and 'unknown field "spec.strategy.maxSurge"' in refused.stderr
    warned = kubectl("apply", "--validate=warn", "-f", path)
    assert warned.returncode == 0 and 'Warning: unknown field "spec.ports[0].targetport"' in warned.stderr
    assert "targetport" not in json.dumps(kubectl.get("service", "kbad")["spec"])


def test_diff(kubectl: Kubectl) -> None:
    path = kubectl.file("d.yaml", deployment("kd"))
    assert kubectl("apply", "-f", path).returncode == 0
    same = kubectl("diff", "-f", path)
    assert (same.returncode, same.stdout) == (0, "")
    kubectl.file("d.yaml", deployment("kd", replicas=3))
    different = kubectl("diff", "-f", path)
    assert different.returncode == 1
    assert "-  replicas: 1\n+  replicas: 3\n" in different.stdout


def test_explain_deployment_spec(kubectl: Kubectl) -> None:
    explained = kubectl("explain", "deployment.spec")
    assert explained.returncode == 0, explained.stderr
    assert "KIND:       Deployment" in explained.stdout and "FIELD: spec <DeploymentSpec>" in explained.stdout
    assert "strategy\t<DeploymentStrategy>" in explained.stdout
    nested = kubectl("explain", "deployment.spec.strategy.rollingUpdate.maxSurge")
    assert nested.returncode == 0 and "The maximum number of pods that can be scheduled" in nested.stdout


def test_explain_from_openapi_v2(kubectl: Kubectl) -> None:
    explained = kubectl("explain", "deployment.spec.strategy", "--output=plaintext-openapiv2")
    assert explained.returncode == 0, explained.stderr
    assert "RESOURCE: strategy <Object>" in explained.stdout and "rollingUpdate\t<Object>" in explained.stdout


def test_logs_since_and_limit_bytes(kubectl: Kubectl) -> None:
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: klogs}\nspec:\n  containers:\n  - name: main\n"
        "    image: hello-ip:1\n    command: [sh, -c, 'echo first; echo second; sleep 3600']\n"
    )
    assert kubectl("apply", "-f", kubectl.file("logs.yaml", pod)).returncode == 0
    wait_for(lambda: kubectl("logs", "klogs").stdout == "first\nsecond\n", timeout=120, what="the pod's output")
    assert kubectl("logs", "klogs", "--limit-bytes=5").stdout == "first"
    assert kubectl("logs", "klogs", "--since=1h").stdout == "first\nsecond\n"
    assert kubectl("logs", "klogs", "--since-time=2099-01-01T00:00:00Z").stdout == ""
    stamped = kubectl("logs", "klogs", "--since=1h", "--timestamps").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["first", "second"]
    assert kubectl("logs", "klogs", "--tail=1").stdout == "second\n"


def test_edit(kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", kubectl.file("e.yaml", deployment("ke"))).returncode == 0
    edited = kubectl("edit", "deployment", "ke", env={"KUBE_EDITOR": "sed -i s/replicas:\\ 1/replicas:\\ 2/"})
    assert (edited.returncode, edited.stdout.strip()) == (0, "deployment.apps/ke edited"), edited.stderr
    assert kubectl.get("deployment", "ke")["spec"]["replicas"] == 2


def test_replace_and_create(kubectl: Kubectl) -> None:
    path = kubectl.file("r.yaml", service("kr"))
    created = kubectl("create", "-f", path)
    assert (created.returncode, created.stdout) == (0, "service/kr created\n"), created.stderr
    replaced = kubectl("replace", "-f", kubectl.file("r.yaml", service("kr").replace("port: 80", "port: 81")))
    assert (replaced.returncode, replaced.stdout) == (0, "service/kr replaced\n"), replaced.stderr
    assert kubectl.get("service", "kr")["spec"]["ports"][0]["port"] == 81


def test_patch_three_types(kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", kubectl.file("p.yaml", deployment("kp"))).returncode == 0
    strategic = kubectl("patch", "deployment", "kp", "-p", '{"spec":{"replicas":2}}')
    assert (strategic.returncode, strategic.stdout) == (0, "deployment.apps/kp patched\n")
    merge = kubectl("patch", "deployment", "kp", "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    assert merge.returncode == 0
    json_patch = kubectl(
        "patch", "deployment", "kp", "--type=json", "-p", '[{"op":"replace","path":"/spec/replicas","value":3}]'
    )
    assert json_patch.returncode == 0
    got = kubectl.get("deployment", "kp", "--show-managed-fields")
    assert got["spec"]["replicas"] == 3 and got["metadata"]["labels"]["m"] == "1"
    managers = {e["manager"] for e in got["metadata"]["managedFields"]}
    assert {"kubectl-client-side-apply", "kubectl-patch"} <= managers


def test_server_side_apply_and_conflict(kubectl: Kubectl) -> None:
    path = kubectl.file("s.yaml", deployment("ks"))
    applied = kubectl("apply", "--server-side", "-f", path)
    assert (applied.returncode, applied.stdout) == (0, "deployment.apps/ks serverside-applied\n"), applied.stderr
    entry = kubectl.get("deployment", "ks", "--show-managed-fields")["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"]) == ("kubectl", "Apply")
    assert 'k:{"name":"web"}' in entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert kubectl("scale", "deployment", "ks", "--replicas=2").returncode == 0
    assert kubectl("patch", "deployment", "ks", "-p", '{"spec":{"replicas":3}}').returncode == 0
    conflict = kubectl("apply", "--server-side", "-f", path)
    assert conflict.returncode == 1
    assert (
        'error: Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: .spec.replicas'
        in conflict.stderr
    )
    forced = kubectl("apply", "--server-side", "--force-conflicts", "-f", path)
    assert forced.returncode == 0 and kubectl.get("deployment", "ks")["spec"]["replicas"] == 1


def test_get_all(kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", kubectl.file("g.yaml", deployment("kg") + "---\n" + service("kg"))).returncode == 0
    everything = kubectl("get", "all")
    assert everything.returncode == 0, everything.stderr
    assert "deployment.apps/kg" in everything.stdout and "service/kg" in everything.stdout
    assert "replicaset.apps/kg-" in everything.stdout


def test_sort_by_status_fields(kubectl: Kubectl) -> None:
    """`--sort-by` reads the objects the Tables carry (includeObject): rows in that order,
    never `No resources found` with exit 0."""
    assert kubectl("apply", "-f", kubectl.file("s.yaml", deployment("ks", replicas=2))).returncode == 0
    assert kubectl("rollout", "status", "deployment/ks", "--timeout=120s").returncode == 0
    pods = kubectl("get", "pods", "-l", "app=ks", "--sort-by=.status.startTime", "-o", "name")
    assert pods.returncode == 0 and len(pods.stdout.split()) == 2, pods.stdout + pods.stderr
    events = kubectl("get", "events", "--sort-by=.lastTimestamp", "--no-headers")
    assert events.returncode == 0 and events.stdout.strip(), events.stderr
    stamps = [
        line for line in kubectl("get", "events", "--sort-by=.lastTimestamp", "-o",
                                 "jsonpath={range .items[*]}{.lastTimestamp}{\"\\n\"}{end}").stdout.splitlines() if line
    ]
    assert stamps == sorted(stamps)


def test_auth(kubectl: Kubectl) -> None:
    can = kubectl("auth", "can-i", "create", "deployments")
    assert (can.returncode, can.stdout) == (0, "yes\n"), can.stderr
    who = kubectl("auth", "whoami")
    assert who.returncode == 0 and "admin" in who.stdout


def test_label_annotate(kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", kubectl.file("l.yaml", service("kl"))).returncode == 0
    labeled = kubectl("label", "service", "kl", "tier=front")
    assert (labeled.returncode, labeled.stdout) == (0, "service/kl labeled\n")
    annotated = kubectl("annotate", "service", "kl", "note=hi")
    assert (annotated.returncode, annotated.stdout) == (0, "service/kl annotated\n")
    meta = kubectl.get("service", "kl")["metadata"]
    assert meta["labels"] == {"tier": "front"} and meta["annotations"]["note"] == "hi"


def test_mikro_apply_then_kubectl_apply_is_unchanged(kubectl: Kubectl, mikro: Mikro) -> None:
    path = kubectl.file("m.yaml", deployment("km") + "---\n" + service("km"))
    mine = mikro.run("apply", "-f", path)
    assert mine.stdout == "deployment.apps/km created\nservice/km created\n"
    theirs = kubectl("apply", "-f", path)
    assert (theirs.returncode, theirs.stdout) == (0, "deployment.apps/km unchanged\nservice/km unchanged\n")
    # mikro's own get hides managedFields as kubectl does
    shown = mikro.kubectl("get", "deployment", "km", "-o", "yaml").stdout
    assert "kubectl.kubernetes.io/last-applied-configuration" in shown and "managedFields" not in shown


def test_kubectl_apply_then_mikro_apply_is_unchanged(kubectl: Kubectl, mikro: Mikro) -> None:
    path = kubectl.file("k.yaml", deployment("kk") + "---\n" + service("kk"))
    theirs = kubectl("apply", "-f", path)
    assert (theirs.returncode, theirs.stdout) == (0, "deployment.apps/kk created\nservice/kk created\n")
    mine = mikro.run("apply", "-f", path)
    assert mine.stdout == "deployment.apps/kk unchanged\nservice/kk unchanged\n"


def test_delete(kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", kubectl.file("x.yaml", service("kx"))).returncode == 0
    deleted = kubectl("delete", "service", "kx")
    assert (deleted.returncode, deleted.stdout) == (0, 'service "kx" deleted\n'), deleted.stderr
    assert kubectl("get", "service", "kx").returncode == 1


def test_mikro_kubectl_runs_the_real_kubectl_when_there_is_one(mikro: Mikro) -> None:
    """As `microk8s kubectl`: with a kubectl on PATH (or named by MIKRO_KUBECTL), `mikro kubectl`
    is that kubectl pointed at this cluster; MIKRO_KUBECTL=builtin keeps mikro's own verbs."""
    import shutil
    import subprocess
    import sys

    real = shutil.which("kubectl")
    assert real, ".ci/run provides kubectl"
    env = {k: v for k, v in mikro.env.items() if k != "MIKRO_KUBECTL"}

    def mikro_kubectl(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mikro.cli", "kubectl", *args],
            env={**env, **extra}, capture_output=True, text=True, timeout=60,
        )

    version = mikro_kubectl("version", "--client")
    assert version.returncode == 0 and version.stdout.startswith("Client Version: v1.32"), version.stdout
    named = mikro_kubectl("get", "namespace", "default", "-o", "name", MIKRO_KUBECTL=real)
    assert (named.returncode, named.stdout) == (0, "namespace/default\n"), named.stderr
    assert (mikro.home / "kubeconfig").stat().st_mode & 0o777 == 0o600
    missing = mikro_kubectl("get", "pods", "nosuch")
    assert missing.returncode == 1 and missing.stderr.startswith('Error from server (NotFound): pods "nosuch" not found')
    builtin = mikro_kubectl("get", "pods", "nosuch", MIKRO_KUBECTL="builtin")
    assert builtin.stderr == 'error: from server (NotFound): pods "nosuch" not found\n'
    bad = mikro_kubectl("get", "pods", MIKRO_KUBECTL="/nonexistent/kubectl")
    assert bad.returncode == 1 and "MIKRO_KUBECTL='/nonexistent/kubectl' is not an executable file" in bad.stderr



def manifest(name: str) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "hello-ip:1", "ports": [{"containerPort": 8080}]}]},
            },
        },
    }


def test_kr8s_create_wait_watch_delete(kubectl: Kubectl) -> None:
    import kr8s
    from kr8s.objects import Deployment

    api = kr8s.api(kubeconfig=str(kubectl.kubeconfig))
    deploy = Deployment(manifest("kr8s-web"), api=api)
    deploy.create()
    deploy.wait("condition=Available", timeout=120)
    pods = list(api.get("pods", namespace="default", label_selector={"app": "kr8s-web"}))
    assert len(pods) == 1 and pods[0].status.phase == "Running"
    seen = []
    for event, obj in api.watch("pods", namespace="default", label_selector={"app": "kr8s-web"}):
        seen.append((event, obj.name))
        if event == "ADDED":
            break
    assert seen and seen[0] == ("ADDED", pods[0].name)
    deploy.delete()
    wait_gone = kubectl("wait", "--for=delete", "deployment/kr8s-web", "--timeout=60s")
    assert wait_gone.returncode == 0, wait_gone.stderr


def test_lightkube_apply_wait_watch_delete(kubectl: Kubectl) -> None:
    from lightkube import Client, KubeConfig
    from lightkube.codecs import from_dict
    from lightkube.resources.apps_v1 import Deployment
    from lightkube.resources.core_v1 import Pod

    client = Client(config=KubeConfig.from_file(str(kubectl.kubeconfig)), field_manager="lightkube-test")
    client.apply(from_dict(manifest("lk-web")))  # server-side apply, creating it
    done = client.wait(Deployment, "lk-web", for_conditions=["Available"], namespace="default")
    assert done.status.availableReplicas == 1
    fields = kubectl.get("deployment", "lk-web", "--show-managed-fields")["metadata"]["managedFields"]
    assert ("lightkube-test", "Apply") in {(m["manager"], m["operation"]) for m in fields}
    for kind, pod in client.watch(Pod, namespace="default", labels={"app": "lk-web"}):
        assert kind == "ADDED" and pod.metadata.name.startswith("lk-web-")
        break
    client.delete(Deployment, "lk-web", namespace="default")
    wait_gone = kubectl("wait", "--for=delete", "deployment/lk-web", "--timeout=60s")
    assert wait_gone.returncode == 0, wait_gone.stderr


def test_imperative_verbs_rollouts_wait_and_follow(kubectl: Kubectl) -> None:
    def ok(*args: str) -> str:
        done = kubectl(*args)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()

    assert ok("create", "deployment", "kv", "--image=hello-ip:1", "--port=8080") == "deployment.apps/kv created"
    ok("rollout", "status", "deployment/kv", "--timeout=120s")
    assert ok("expose", "deployment", "kv", "--port=8080") == "service/kv exposed"
    assert kubectl.get("endpoints", "kv")["subsets"][0]["ports"][0]["port"] == 8080
    assert ok("set", "image", "deployment/kv", "hello-ip=hello-ip:2") == "deployment.apps/kv image updated"
    assert "successfully rolled out" in ok("rollout", "status", "deployment/kv", "--timeout=120s")
    revisions = [line.split()[0] for line in ok("rollout", "history", "deployment/kv").splitlines()[2:]]
    assert revisions == ["1", "2"]
    assert ok("rollout", "undo", "deployment/kv") == "deployment.apps/kv rolled back"
    ok("rollout", "status", "deployment/kv", "--timeout=120s")
    assert kubectl.get("deployment", "kv")["spec"]["template"]["spec"]["containers"][0]["image"] == "hello-ip:1"
    assert ok("rollout", "pause", "deployment/kv") == "deployment.apps/kv paused"
    assert ok("rollout", "resume", "deployment/kv") == "deployment.apps/kv resumed"
    assert ok("rollout", "restart", "deployment/kv") == "deployment.apps/kv restarted"
    ok("rollout", "status", "deployment/kv", "--timeout=120s")
    run = ok("run", "kvlog", "--image=hello-ip:1", "--restart=Never", "--command", "--", "sh", "-c", "echo a; sleep 2; echo b")
    assert run == "pod/kvlog created"
    ok("wait", "--for=condition=Ready", "pod/kvlog", "--timeout=120s")
    assert kubectl("logs", "-f", "kvlog").stdout == "a\nb\n"  # follows until the container ends
    ok("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/kvlog", "--timeout=60s")
    ok("delete", "deployment/kv", "service/kv", "pod/kvlog")
