"""The metrics operators build dashboards and alerts on, read from the running daemon on the simulated board:
energy against the simulated board's own integral, every counter present at 0 from the start, process metrics,
OpenMetrics and gzip exposition."""

import gzip
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from daemon_process import DaemonProcess, write_setup

from jetvit_daemon.sim.live import read_meter


def _energy_pair(daemon: DaemonProcess, board: Path):
    """(daemon's board energy counter, simulated board's own energy), read back to back."""
    metric = daemon.metrics()["jetvit_board_energy_joules_total"]
    return metric, read_meter(board)["energy_j"]


@pytest.mark.slow
def test_board_energy_matches_the_simulated_boards_integral_over_60_s(tmp_path):
    setup = write_setup(tmp_path)
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        deadline = time.monotonic() + 30
        while daemon.metrics().get("jetvit_board_energy_joules_total", 0.0) <= 0:  # two samples integrated
            assert time.monotonic() < deadline, daemon.log
            time.sleep(0.2)
        m0, e0 = _energy_pair(daemon, setup["board"])
        time.sleep(60)
        m1, e1 = _energy_pair(daemon, setup["board"])
        metrics = daemon.metrics()
    finally:
        daemon.kill()
    truth_j = e1 - e0
    assert truth_j > 60 * 2.0  # an Orin Nano never idles below ~2 W: the board really ran
    assert m1 - m0 == pytest.approx(truth_j, rel=0.02)
    inference_j = metrics["jetvit_pipeline_inference_energy_joules_total"]
    assert 0 < inference_j < metrics["jetvit_board_energy_joules_total"]


@pytest.mark.slow
def test_every_counter_exists_at_zero_from_the_start_and_process_metrics_are_served(tmp_path):
    setup = write_setup(tmp_path)
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        deadline = time.monotonic() + 30
        while "jetvit_board_ram_used_bytes" not in daemon.metrics():  # the first telemetry sample
            assert time.monotonic() < deadline, daemon.log
            time.sleep(0.2)
        metrics = daemon.metrics()
        text = daemon.get("/metrics")
    finally:
        daemon.kill()
    for series in ('jetvit_policy_reloads_total{result="ok"}', 'jetvit_policy_reloads_total{result="error"}',
                   'jetvit_errors_total{component="governor"}', 'jetvit_errors_total{component="telemetry"}',
                   'jetvit_governor_decisions_total{rule="hot"}', 'jetvit_governor_decisions_total{rule="slo"}',
                   'jetvit_governor_actuations_total{knob="power_mode",result="error"}',
                   "jetvit_board_throttle_seconds_total", "jetvit_governor_external_changes_total{knob=\"gpu_cap\"}"):
        assert series in metrics, f"{series} missing; have:\n" + "\n".join(sorted(metrics))
    assert metrics["jetvit_board_throttled"] == 0
    assert metrics["process_resident_memory_bytes"] > 10e6 and "process_open_fds" in metrics
    for gauge in ("jetvit_board_ram_used_bytes", "jetvit_board_ram_total_bytes", "jetvit_board_cpu_load_ratio",
                  "jetvit_policy_latency_target_seconds"):
        assert gauge in metrics, gauge
    # Gauges that only repeated what rate() and the histograms give are gone.
    assert "jetvit_pipeline_arrival_rate_fps" not in text and "jetvit_pipeline_latency_p95_seconds" not in text


def test_openmetrics_and_gzip_are_negotiated(tmp_path):
    setup = write_setup(tmp_path)
    daemon = DaemonProcess(setup["config"])
    try:
        port = daemon.wait_ready()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            "Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
            body = gzip.decompress(resp.read()).decode()
        assert body.rstrip().endswith("# EOF")
        plain = daemon.get("/metrics")  # no Accept header: the classic text format, uncompressed
        assert "# EOF" not in plain and "jetvit_build_info" in plain
    finally:
        daemon.kill()


def test_the_exposition_passes_promtool_check_metrics(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run must install Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    setup = write_setup(tmp_path)
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        deadline = time.monotonic() + 30
        while "jetvit_board_energy_joules_total" not in daemon.metrics():
            assert time.monotonic() < deadline, daemon.log
            time.sleep(0.2)
        text = daemon.get("/metrics")
    finally:
        daemon.kill()
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        result.stdout + result.stderr
