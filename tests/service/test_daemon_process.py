"""The real daemon process on the simulated board: metrics over HTTP, a clean SIGTERM, the board restored."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from daemon_process import DaemonProcess, board_mode_id, write_setup

pytestmark = pytest.mark.slow

MODE_25W, MODE_MAXN_SUPER = 1, 2  # ids in the Orin Nano Super conf (default 1 = 25W)


def test_daemon_serves_metrics_then_stops_cleanly_and_restores_the_power_mode(tmp_path):
    setup = write_setup(tmp_path)
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        daemon.wait_for_log(r"no Jetson detected: using the simulated Jetson Orin Nano")
        daemon.wait_for_log(r"runner: ONNX Runtime on CPU")
        daemon.wait_for_log(r"policy: .*policy\.yaml \(2 states: low < top\)")
        # The governor's first tick applies the start state: MAXN_SUPER, on the board itself.
        daemon.wait_for_log(r"fps in [\d.]+ out [\d.]+ \| infer p50 [\d.]+ ms p95 [\d.]+ ms \| batch 4 \| "
                            r"mode MAXN_SUPER \| gpu cap \d+ MHz \| hottest [\d.]+ °C \| board [\d.]+ W")
        assert board_mode_id(setup["board"]) == MODE_MAXN_SUPER
        metrics = daemon.metrics()
        assert metrics["jetvit_pipeline_frames_processed_total"] > 0
        assert metrics["jetvit_inference_latency_seconds_count"] > 0
        assert metrics['jetvit_board_power_mode{mode="MAXN_SUPER"}'] == 1
        assert metrics['jetvit_board_power_mode{mode="25W"}'] == 0
        assert any(k.startswith("jetvit_board_temperature_celsius{sensor=") for k in metrics)
        assert metrics["jetvit_board_power_watts"] > 0
        assert metrics["jetvit_telemetry_stale"] == 0
        assert '"status": "ok"' in daemon.get("/healthz")
        took_s = daemon.terminate()
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log
    assert took_s < 5.0
    assert board_mode_id(setup["board"]) == MODE_25W, daemon.log
    assert not (setup["state"] / "baseline.json").exists()


def test_duration_runs_then_exits_zero(tmp_path):
    setup = write_setup(tmp_path)
    daemon = DaemonProcess(setup["config"], "--duration", "3")
    try:
        daemon.proc.wait(60)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log
    assert "ran for 3 s as asked: stopping" in daemon.log
    assert board_mode_id(setup["board"]) == MODE_25W


def _kill_after_the_mode_changed(setup):
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        daemon.wait_for_log(r"power mode 25W → MAXN_SUPER")
        assert board_mode_id(setup["board"]) == MODE_MAXN_SUPER
        daemon.proc.kill()  # SIGKILL: no chance to restore
        daemon.proc.wait(10)
    finally:
        daemon.kill()
    assert board_mode_id(setup["board"]) == MODE_MAXN_SUPER
    assert (setup["state"] / "baseline.json").exists()


def test_after_sigkill_the_next_start_restores_the_original_mode_first(tmp_path):
    setup = write_setup(tmp_path)
    _kill_after_the_mode_changed(setup)
    daemon = DaemonProcess(setup["config"], "--duration", "2")
    try:
        daemon.proc.wait(60)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log
    restored = next(i for i, ln in enumerate(daemon.lines) if "restored" in ln and "crashed run" in ln)
    applied = next(i for i, ln in enumerate(daemon.lines) if "power mode 25W → MAXN_SUPER" in ln)
    assert restored < applied, daemon.log  # restore first, then the new run's own decisions
    assert board_mode_id(setup["board"]) == MODE_25W


def test_restore_command_puts_back_what_a_killed_daemon_changed(tmp_path):
    import subprocess

    setup = write_setup(tmp_path)
    _kill_after_the_mode_changed(setup)
    proc = subprocess.run([sys.executable, "-m", "jetvit_daemon", "restore", "--config", str(setup["config"])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MAXN_SUPER → 25W" in proc.stdout or "25W" in proc.stdout
    assert board_mode_id(setup["board"]) == MODE_25W
    assert not (setup["state"] / "baseline.json").exists()
    again = subprocess.run([sys.executable, "-m", "jetvit_daemon", "restore", "--config", str(setup["config"])],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing to restore" in again.stdout


def test_an_edited_policy_is_picked_up_within_2_s_and_an_invalid_one_keeps_the_old(tmp_path):
    import time

    import yaml
    from daemon_process import FAST_POLICY

    setup = write_setup(tmp_path)
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        daemon.wait_for_log(r"power mode 25W → MAXN_SUPER")
        daemon.wait_metric("jetvit_governor_batch_size_frames", 4)
        edited = dict(FAST_POLICY, ladder=[FAST_POLICY["ladder"][0], dict(FAST_POLICY["ladder"][1], batch_size=2)])
        saved_at = time.monotonic()
        setup["policy"].write_text(yaml.safe_dump(edited))
        while daemon.metrics()["jetvit_governor_batch_size_frames"] != 2:
            assert time.monotonic() - saved_at < 2.0, "the edited policy was not applied within 2 s"
            time.sleep(0.05)
        assert daemon.metrics()['jetvit_policy_reloads_total{result="ok"}'] == 1
        # SIGHUP (systemctl reload) reloads at once, even an unchanged file.
        import signal

        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_metric('jetvit_policy_reloads_total{result="ok"}', 2, timeout_s=2.0)
        daemon.wait_for_log(r"reload requested \(SIGHUP\)")

        setup["policy"].write_text("version: 1\nladder:\n  - {name: x, mode: TURBO}\n")
        saved_at = time.monotonic()
        while daemon.metrics().get('jetvit_policy_reloads_total{result="error"}', 0) < 1:
            assert time.monotonic() - saved_at < 2.0, "the invalid policy was not noticed within 2 s"
            time.sleep(0.05)
        daemon.wait_for_log(r"policy reload refused, the running policy stays")
        daemon.wait_for_log(r"ladder\.0\.mode: no power mode 'TURBO'")
        metrics = daemon.metrics()
        assert metrics["jetvit_governor_batch_size_frames"] == 2  # still the last good policy
        assert metrics['jetvit_board_power_mode{mode="MAXN_SUPER"}'] == 1
        assert '"status": "ok"' in daemon.get("/healthz")
        assert daemon.terminate() < 5.0
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log


def test_telemetry_loss_moves_the_running_daemon_to_the_safe_state_and_shows_in_metrics(tmp_path):
    from daemon_process import FAST_POLICY

    from jetvit_daemon.sim.emulators import write_faults

    policy = dict(FAST_POLICY, stale_telemetry={"after_s": 1.0, "state": "low"})
    setup = write_setup(tmp_path, policy=policy)
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        daemon.wait_metric('jetvit_board_power_mode{mode="MAXN_SUPER"}', 1)
        write_faults(setup["board"], {"tegrastats": "hang"})  # the board's tegrastats stops printing
        daemon.wait_for_log(r"step down top → low: no fresh telemetry for \d+ s ≥ 1 s", timeout_s=20)
        daemon.wait_metric('jetvit_board_power_mode{mode="15W"}', 1)
        metrics = daemon.metrics()
        assert metrics["jetvit_telemetry_stale"] == 1
        assert metrics['jetvit_governor_decisions_total{rule="stale"}'] == 1
        assert metrics['jetvit_errors_total{component="telemetry"}'] >= 1
        write_faults(setup["board"], {})  # readings return; the reader restarts the tool
        daemon.wait_metric("jetvit_telemetry_stale", 0, timeout_s=20)
        assert daemon.terminate() < 5.0
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log
    assert board_mode_id(setup["board"]) == MODE_25W
