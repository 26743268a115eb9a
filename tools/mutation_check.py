"""Break mikro on purpose, one mutation at a time, and check the unit tests notice.

Each mutation replaces one exact piece of source in a scratch copy of the tree and runs the
tests that should catch it there; a mutation that leaves them green is reported as SURVIVED (a
test is missing). The list holds the breakages issue 14 found passing every test: the
controllers' arithmetic, the store's durability and 410, the prober's thresholds, apply's
removal of dropped fields. Run from the repository root: `python tools/mutation_check.py` (no
Docker needed; about two minutes).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/test_deployment_controller.py",
    "tests/test_statefulset_controller.py",
    "tests/test_daemonset_controller.py",
    "tests/test_controllers.py",
]

# (what it breaks, file, exact source, replacement)
MUTATIONS = [
    (
        "rolling update: new ReplicaSet to N and old to 0 in one pass",
        "mikro/controllers/deployment.py",
        "for rs, count in scale_down_old(deploy, new_rs, old):",
        "for rs, count in [(r, 0) for r in old] + [(new_rs, replicas)]:",
    ),
    (
        "Endpoints: namespace filter removed",
        "mikro/controllers/endpoints.py",
        'if pmeta["namespace"] != ns or pmeta.get("deletionTimestamp"):',
        'if pmeta.get("deletionTimestamp"):',
    ),
    (
        "Endpoints: not-ready pods in addresses",
        "mikro/controllers/endpoints.py",
        'group["addresses" if pod_ready(pod) else "notReadyAddresses"]',
        'group["addresses"]',
    ),
    (
        "ReplicaSet: scale-down order reversed",
        "mikro/controllers/replicaset.py",
        "sorted(live, key=deletion_rank)[",
        "sorted(live, key=deletion_rank, reverse=True)[",
    ),
    (
        "Deployment: Available forced True",
        "mikro/controllers/deployment.py",
        "is_available = available >= replicas - max_unavailable",
        "is_available = True",
    ),
    (
        "Deployment: rollback revision bump dropped",
        "mikro/controllers/deployment.py",
        "elif new_rs is not None and revision_of(new_rs) != max_revision and old and not paused:",
        "elif False:",
    ),
    (
        "StatefulSet: OrderedReady does not wait",
        "mikro/controllers/statefulset.py",
        "if ordered and not healthy(pod):",
        "if False:",
    ),
    (
        "StatefulSet: scale down from the lowest ordinal",
        "mikro/controllers/statefulset.py",
        "condemned.sort(key=lambda p: ordinal_of(sts, p) or -1, reverse=True)",
        "condemned.sort(key=lambda p: ordinal_of(sts, p) or -1)",
    ),
    (
        "StatefulSet: partition ignored",
        "mikro/controllers/statefulset.py",
        "if ordinal < start_ordinal(sts) + partition:",
        "if False:",
    ),
    (
        "StatefulSet: rolling update ignores maxUnavailable",
        "mikro/controllers/statefulset.py",
        "            if unavailable >= budget:\n                return\n",
        "",
    ),
    (
        "DaemonSet: nodeSelector ignored",
        "mikro/controllers/daemonset.py",
        "        if labels.get(key) != value:\n",
        "        if False:\n",
    ),
    (
        "DaemonSet: taints ignored",
        "mikro/controllers/daemonset.py",
        'if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):',
        "if False:",
    ),
    (
        "DaemonSet: surge deletes the old pod before the new one is available",
        "mikro/controllers/daemonset.py",
        "elif any(pod_available(p, min_ready, now) for p in new):",
        "else:",
    ),
    (
        "store: synchronous=OFF (a kill -9 test cannot see it: the OS still holds the write)",
        "mikro/api/store.py",
        'self.db.execute("PRAGMA synchronous=FULL")',
        'self.db.execute("PRAGMA synchronous=OFF")',
        ["tests/test_store_guarantees.py"],
    ),
    (
        "store: the 410 Gone path deleted",
        "mikro/api/store.py",
        "                if since + 1 < oldest:\n",
        "                if False:\n",
        ["tests/test_store_guarantees.py", "tests/test_store.py"],
    ),
    (
        "prober: liveness restarts on the first failure",
        "mikro/node/prober.py",
        'failed_out = state.failures >= int(probe.get("failureThreshold", 3))',
        "failed_out = state.failures >= 1",
        ["tests/test_prober.py"],
    ),
    (
        "apply: a field dropped from the manifest is never removed",
        "mikro/cli/applyplan.py",
        "        if key not in desired and key in current:\n            patch[key] = None\n",
        "        if key not in desired and key in current:\n            pass\n",
        ["tests/test_apply.py", "tests/test_cli_inprocess.py"],
    ),
]


def main() -> int:
    survived = []
    for what, rel, old, new, *only in MUTATIONS:  # type: ignore[misc]
        tests = only[0] if only else TESTS
        with tempfile.TemporaryDirectory() as tmp:
            scratch = Path(tmp)
            for part in ("mikro", "tests", "addons", "pyproject.toml"):
                src = ROOT / part
                (shutil.copytree if src.is_dir() else shutil.copy)(src, scratch / part)
            target = scratch / rel
            text = target.read_text()
            if text.count(old) != 1:
                print(f"STALE     {what}: the source to mutate is not in {rel} exactly once")
                survived.append(what)
                continue
            target.write_text(text.replace(old, new))
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                cwd=scratch,
                env={"PYTHONPATH": str(scratch), "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
            )
            failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
            if proc.returncode == 0:
                print(f"SURVIVED  {what}")
                survived.append(what)
            else:
                print(f"killed    {what}: {failed[0].removeprefix('FAILED ') if failed else proc.stdout[-200:]}")
    print(f"{len(MUTATIONS) - len(survived)} of {len(MUTATIONS)} mutations killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
