"""deploy/kubernetes: the manifests are valid Kubernetes objects, the group overlay moves a DaemonSet to another
policy group and nothing else, the PodMonitor scrapes the port the pods expose, and the container config the
manifests mount runs the daemon with its probes answering and its mounted policy obeyed."""

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "service"))
from daemon_process import FAST_POLICY, DaemonProcess  # noqa: E402

KUBE = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest Kubernetes line k3s still ships for JetPack 6 fleets


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is missing: .ci/run must install it")
        pytest.skip(f"{program} not installed")
    return path


def kustomize(directory: Path) -> List[Dict[str, Any]]:
    out = subprocess.run([_require("kubectl"), "kustomize", str(directory)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: List[Dict[str, Any]], kind: str) -> Dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


@pytest.mark.parametrize("directory", [KUBE, KUBE / "groups" / "canary"], ids=["base", "canary"])
def test_every_rendered_object_is_valid_for_kubernetes(directory: Path) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = kustomize(directory)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)  # raises on any schema error


def test_the_daemonset_selects_its_own_pods_and_mounts_the_policy_as_a_directory() -> None:
    ds = by_kind(kustomize(KUBE), "DaemonSet")
    spec = ds["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert spec["template"]["spec"]["nodeSelector"]["jetvit.io/policy-group"] == labels["jetvit.io/policy-group"]
    mounts = {m["name"]: m for m in spec["template"]["spec"]["containers"][0]["volumeMounts"]}
    # A subPath mount never receives ConfigMap updates: the policy must be a whole-directory mount.
    assert "subPath" not in mounts["policy"]
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["policy"]["configMap"]["name"] == "jetvit-policy-default"
    assert volumes["state"]["hostPath"]["path"] == "/var/lib/jetvit-daemon"  # the journal outlives the pod


def test_the_canary_overlay_changes_only_the_group() -> None:
    base = by_kind(kustomize(KUBE), "DaemonSet")
    canary_docs = kustomize(KUBE / "groups" / "canary")
    assert [d["kind"] for d in canary_docs] == ["DaemonSet"]  # it adds a group, not a second namespace/service
    canary = canary_docs[0]
    assert canary["metadata"]["name"] == "jetvit-daemon-canary"
    template = canary["spec"]["template"]
    assert template["spec"]["nodeSelector"]["jetvit.io/policy-group"] == "canary"
    assert canary["spec"]["selector"]["matchLabels"]["jetvit.io/policy-group"] == "canary"
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["policy"]["configMap"]["name"] == "jetvit-policy-canary"
    assert volumes["config"]["configMap"]["name"] == "jetvit-daemon-config"  # shared, not renamed
    assert template["spec"]["containers"] == base["spec"]["template"]["spec"]["containers"]


def test_the_service_and_podmonitor_reach_the_pods_metrics_port() -> None:
    docs = kustomize(KUBE)
    ds, service = by_kind(docs, "DaemonSet"), by_kind(docs, "Service")
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"]: p for p in ds["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ports
    monitor = yaml.safe_load((KUBE / "podmonitor.yaml").read_text())
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] in ports and endpoint["path"] == "/metrics"


def _container_setup(tmp: Path) -> Path:
    """The container's /etc/jetvit-daemon (as the ConfigMaps lay it out) under `tmp`, with the daemon's state,
    board and port moved into the test's own space; everything else as shipped."""
    etc = tmp / "etc" / "jetvit-daemon"
    (etc / "policy").mkdir(parents=True)
    config = yaml.safe_load((KUBE / "daemon.yaml").read_text())
    assert config["http"]["host"] == "0.0.0.0"  # reachable by the kubelet and Prometheus from outside the pod
    config.update(
        state_dir=str(tmp / "state"),
        http={"host": "127.0.0.1", "port": 0},
        simulator={"board": "orin-nano-super", "root_dir": str(tmp / "board"), "tick_s": 0.1},
        telemetry={"source": "tegrastats", "interval_s": 0.2},
    )
    (etc / "daemon.yaml").write_text(yaml.safe_dump(config))
    (etc / "policy" / "policy.yaml").write_text(yaml.safe_dump(FAST_POLICY))
    return etc / "daemon.yaml"


def _status_code(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.slow
def test_the_container_config_runs_the_daemon_with_its_probes_answering(tmp_path: Path) -> None:
    ds = by_kind(kustomize(KUBE), "DaemonSet")
    container = ds["spec"]["template"]["spec"]["containers"][0]
    probe_paths = {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe", "startupProbe")}
    daemon = DaemonProcess(_container_setup(tmp_path))
    try:
        port = daemon.wait_ready()
        daemon.wait_for_log(r"policy/policy\.yaml")  # the mounted policy is the one obeyed
        deadline = time.monotonic() + 60
        codes: Dict[str, int] = {}
        while time.monotonic() < deadline:
            codes = {path: _status_code(f"http://127.0.0.1:{port}{path}") for path in probe_paths}
            if all(code == 200 for code in codes.values()):
                break
            time.sleep(0.5)
        assert all(code == 200 for code in codes.values()), f"probe answers {codes}; log:\n{daemon.log}"
        assert daemon.terminate() < 20
        assert daemon.proc.returncode == 0
    finally:
        daemon.kill()
