"""contrib/grafana/jetvit-daemon.json: every query of the dashboard (panels, annotations, variables) runs
without error and returns data, through the HTTP API of Debian's real Prometheus scraping the real daemon on the
simulated board."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "contrib" / "grafana" / "jetvit-daemon.json"
sys.path.insert(0, str(REPO / "tests" / "service"))
from daemon_process import DaemonProcess, write_setup  # noqa: E402

# A policy that moves within seconds (a step down on headroom), so the decision annotations have events.
MOVING_POLICY = {
    "version": 1,
    "interval_s": 0.2,
    "ladder": [
        {"name": "low", "mode": "15W", "gpu_cap_mhz": 408, "batch_size": 4},
        {"name": "top", "mode": "MAXN_SUPER", "gpu_cap_mhz": "max", "batch_size": 4},
    ],
    "start_state": "top",
    "dwell": {"min_state_s": 1, "up_after_s": 1, "down_after_s": 8},  # after Prometheus has started
    "power_budget": {"watts": 30, "window_s": 10},  # far above what the board draws: a budget line to plot
}


def queries(dashboard: Dict[str, Any]) -> Iterator[Tuple[str, str]]:
    """(where, PromQL) for every query the dashboard sends."""
    def walk(panels: List[Dict[str, Any]]) -> Iterator[Tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
            yield from walk(panel.get("panels", []))
    yield from walk(dashboard["panels"])
    for ann in dashboard["annotations"]["list"]:
        yield f"annotation {ann['name']!r}", ann["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((\w+), *(\w+)\)", var["query"]["query"])
            assert m, var["query"]
            yield f"variable {var['name']!r}", m.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prometheus() -> str:
    path = shutil.which("prometheus")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is missing: .ci/run must install Debian's prometheus package")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    return path


def _query(port: int, expr: str, start_s: float) -> Dict[str, Any]:
    """The query over the test's time range, as Grafana asks for a panel or annotations (query_range)."""
    params = {"query": expr, "start": f"{start_s:.3f}", "end": f"{time.time():.3f}", "step": "1"}
    url = f"http://127.0.0.1:{port}/api/v1/query_range?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return dict(json.load(resp))
    except urllib.error.HTTPError as exc:
        return dict(json.load(exc))


def test_every_panel_has_a_query_and_a_unique_id():
    dashboard = json.loads(DASHBOARD.read_text())
    found = list(queries(dashboard))
    assert len(found) >= 25
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.slow
def test_every_dashboard_query_returns_data_from_a_real_prometheus(tmp_path: Path):
    binary = _prometheus()
    dashboard = json.loads(DASHBOARD.read_text())
    setup = write_setup(tmp_path, policy=MOVING_POLICY)
    daemon = DaemonProcess(setup["config"])
    prom = None
    try:
        port = daemon.wait_ready()
        target = f"127.0.0.1:{port}"
        prom_port = _free_port()
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "jetvit-daemon", "static_configs": [{"targets": [target]}]}],
        }))
        prom = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start_s = time.time()
        # A valid edit of the policy, so the reload annotation has an event too.
        time.sleep(6)
        setup["policy"].write_text(yaml.safe_dump(dict(MOVING_POLICY, interval_s=0.25)))
        subs = {"$instance": ".*", "$board": target, "$__rate_interval": "10s", "$__interval": "5s"}

        def run(expr: str) -> Dict[str, Any]:
            for key, value in subs.items():
                expr = expr.replace(key, value)
            return _query(prom_port, expr, start_s)

        failing: Dict[str, Any] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            failing = {}
            for where, expr in queries(dashboard):
                answer = run(expr)
                if answer.get("status") != "success" or not answer["data"]["result"]:
                    failing[where] = (expr, answer.get("error") or "empty result")
            if not failing:
                break
            time.sleep(2)
        assert not failing, json.dumps(failing, indent=1) + "\ndaemon log:\n" + daemon.log[-3000:]
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(20)
        daemon.kill()
