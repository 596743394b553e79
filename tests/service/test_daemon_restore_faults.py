"""Issue 9 regressions about restoring the board, against the real daemon process on the simulated board:
a switch still in flight at stop or at SIGKILL, a cap the kernel reverts, a second instance, an untrusted
state directory."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from daemon_process import FAST_POLICY, DaemonProcess, board_mode_id, write_setup

from jetvit_daemon.sim.emulators import SLOW_SWITCH_S, write_faults
from jetvit_daemon.sim.live import SimulatedBoard

pytestmark = pytest.mark.slow

MODE_25W, MODE_MAXN_SUPER = 1, 2  # ids in the Orin Nano Super conf (boots in 1 = 25W)
GPU_DIR = "sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"


def _slow_board(setup) -> None:
    SimulatedBoard.create_tree("orin-nano-super", setup["board"])
    write_faults(setup["board"], {"nvpmodel": "slow"})


def _switch_in_flight(state: Path, timeout_s: float = 60.0) -> dict:
    """The journal's record of the running `nvpmodel -m`, once its pid is known."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            switch = json.loads((state / "baseline.json").read_text()).get("switch")
        except (FileNotFoundError, ValueError):
            switch = None
        if switch and switch.get("pid"):
            return switch
        time.sleep(0.05)
    raise AssertionError("no switch in flight was recorded in the journal")


def _restore(setup) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", "jetvit_daemon", "restore", "--config", str(setup["config"])],
                          capture_output=True, text=True, timeout=120)


def _until_the_switch_could_have_landed(switch: dict) -> None:
    time.sleep(max(0.0, switch["started_at"] + SLOW_SWITCH_S + 2.0 - time.time()))


def test_regression_stop_while_a_switch_is_in_flight_keeps_the_original_mode(tmp_path):
    """Defect 1: the stop restored while `nvpmodel -m` (own session) still ran; it landed afterwards and the
    original mode was lost, the journal already cleared."""
    setup = write_setup(tmp_path)
    _slow_board(setup)
    daemon = DaemonProcess(setup["config"])
    try:
        switch = _switch_in_flight(setup["state"])
        assert switch["target_name"] == "MAXN_SUPER"
        daemon.terminate(timeout_s=90)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log
    assert f"killed pid {switch['pid']}" in daemon.log
    _until_the_switch_could_have_landed(switch)
    assert board_mode_id(setup["board"]) == MODE_25W, daemon.log
    assert not (setup["state"] / "baseline.json").exists(), daemon.log


def test_regression_sigkill_mid_switch_then_restore_waits_for_the_orphan_and_keeps_the_original_mode(tmp_path):
    """Defect 1, the SIGKILL case: the orphaned switch landed after `restore` had cleared the journal."""
    setup = write_setup(tmp_path, hardware={"nvpmodel_timeout_s": SLOW_SWITCH_S + 4})
    _slow_board(setup)
    daemon = DaemonProcess(setup["config"])
    try:
        switch = _switch_in_flight(setup["state"])
        daemon.proc.kill()
        daemon.proc.wait(10)
    finally:
        daemon.kill()
    proc = _restore(setup)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"in-flight switch to MAXN_SUPER (id 2, 'nvpmodel -m 2', pid {switch['pid']})" in proc.stdout
    assert "finished by itself" in proc.stdout or "killed at its deadline" in proc.stdout
    _until_the_switch_could_have_landed(switch)
    assert board_mode_id(setup["board"]) == MODE_25W, proc.stdout
    assert not (setup["state"] / "baseline.json").exists()


def test_regression_a_gpu_cap_the_kernel_reverts_is_reported_as_the_truth_then_reapplied(tmp_path):
    """Defect 5: after the kernel reverted the cap, /status and the metrics still said 612 MHz."""
    top = {"name": "top", "mode": "MAXN_SUPER", "gpu_cap_mhz": 612, "batch_size": 4}
    setup = write_setup(tmp_path, policy=dict(FAST_POLICY, ladder=[FAST_POLICY["ladder"][0], top]))
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        daemon.wait_metric("jetvit_governor_gpu_cap_hertz", 612e6, timeout_s=30)
        assert daemon.metrics()['jetvit_governor_external_changes_total{knob="gpu_cap"}'] == 0  # from the start
        write_faults(setup["board"], {"devfreq_revert": True})
        truth = None
        deadline = time.monotonic() + 30
        while truth is None and time.monotonic() < deadline:
            status = json.loads(daemon.get("/status"))["governor"]
            if status["gpu_cap_hz"] == 1_020_000_000:
                truth = status
            time.sleep(0.02)
        assert truth is not None and truth["external_changes"] >= 1, daemon.log
        daemon.wait_metric('jetvit_governor_external_changes_total{knob="gpu_cap"}', 1)
        daemon.wait_for_log(r"the board changed behind the governor: .* GPU cap 612 MHz; it reads mode MAXN_SUPER, "
                            r"GPU cap 1020 MHz \(gpu_cap\); re-applying")
        daemon.wait_metric("jetvit_governor_gpu_cap_hertz", 612e6, timeout_s=30)  # re-applied
        assert (setup["board"] / GPU_DIR / "max_freq").read_text().strip() == "612000000"
        assert json.loads(daemon.get("/status"))["governor"]["gpu_cap_hz"] == 612_000_000
        daemon.terminate(timeout_s=30)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log


def test_regression_a_second_instance_is_refused_before_it_starts_a_physics_thread(tmp_path):
    setup = write_setup(tmp_path)
    first = DaemonProcess(setup["config"])
    try:
        first.wait_ready()
        second = DaemonProcess(setup["config"])
        try:
            second.proc.wait(60)
        finally:
            second.kill()
        assert second.proc.returncode == 2, second.log
        assert "another jetvit-daemon (pid" in second.log
        assert "simulated" not in second.log, second.log  # no board opened, no physics thread
        proc = _restore(setup)
        assert proc.returncode == 2 and "another jetvit-daemon" in proc.stderr
        assert "simulated" not in proc.stdout + proc.stderr
        first.terminate(timeout_s=30)
    finally:
        first.kill()
    assert first.proc.returncode == 0, first.log


def test_regression_a_state_directory_others_can_write_is_refused_with_exit_2(tmp_path):
    setup = write_setup(tmp_path)
    setup["state"].mkdir()
    setup["state"].chmod(0o777)
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.proc.wait(60)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 2, daemon.log
    assert (f"error: state directory {setup['state']} refused: {setup['state']} is writable by group and others "
            f"(drwxrwxrwx; fix: chmod go-w {setup['state']})") in daemon.log
    assert not setup["board"].exists()  # nothing touched the board
    proc = _restore(setup)
    assert proc.returncode == 2 and "refused" in proc.stderr


def test_regression_a_planted_baseline_symlink_is_refused_and_the_board_left_alone(tmp_path):
    setup = write_setup(tmp_path)
    setup["state"].mkdir(mode=0o700)
    attacker = tmp_path / "attacker.json"
    attacker.write_text(json.dumps({"version": 1, "board": "x", "mode_name": "15W", "mode_id": 0,
                                    "gpu_devfreq_dir": None, "gpu_min_hz": None, "gpu_max_hz": None,
                                    "recorded_at": 0, "pid": 1}))
    os.symlink(attacker, setup["state"] / "baseline.json")
    proc = _restore(setup)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "baseline.json is a symbolic link" in proc.stderr
    assert board_mode_id(setup["board"]) == MODE_25W  # not "restored" to the attacker's 15W
    daemon = DaemonProcess(setup["config"], "--duration", "1")
    try:
        daemon.proc.wait(60)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 2 and "baseline.json is a symbolic link" in daemon.log
    assert board_mode_id(setup["board"]) == MODE_25W
