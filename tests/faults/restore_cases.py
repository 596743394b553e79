"""Matrix rows for the restore promises (issue 9 items 1, 5, 8 and the lock-first note): a switch in flight at
SIGTERM or SIGKILL, GPU caps the kernel reverts, planted symlinks and an untrusted state directory, a second
instance. Added to CASES in test_fault_matrix.py; the harness is matrix.py."""

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from daemon_process import DaemonProcess
from matrix import FAST_POLICY, MODE_ID, WAIT_S, Case, Run

from jetvit_daemon.sim.emulators import SLOW_SWITCH_S

EXTERNAL_GPU_CAP = 'jetvit_governor_external_changes_total{knob="gpu_cap"}'
# 25W with a 612 MHz cap on top: a revert puts the mode's own 918 MHz back.
REVERT_POLICY = dict(FAST_POLICY, ladder=[{"name": "low", "mode": "25W", "gpu_cap_mhz": 408, "batch_size": 4},
                                          {"name": "top", "mode": "25W", "gpu_cap_mhz": 612, "batch_size": 4}])


def _journal(run: Run) -> Dict[str, Any]:
    return json.loads((run.setup["state"] / "baseline.json").read_text())


def _switch_in_flight(run: Run) -> Dict[str, Any]:
    """The journal's record of the running `nvpmodel -m`, once its pid is known."""
    def recorded() -> Any:
        try:
            switch = _journal(run).get("switch")
        except (FileNotFoundError, ValueError):
            return None
        return switch if switch and switch.get("pid") else None
    return run.wait_until(recorded, "a switch in flight recorded in the journal")  # type: ignore[no-any-return]


def _until_it_could_have_landed(switch: Dict[str, Any]) -> None:
    """Past the moment the slow switch would have written the board, had it not been dealt with."""
    time.sleep(max(0.0, switch["started_at"] + SLOW_SWITCH_S + 2.0 - time.time()))


def slow_nvpmodel(run: Run) -> None:
    run.faults(nvpmodel="slow")


def stop_mid_switch(run: Run) -> None:
    """SIGTERM while the governor's `nvpmodel -m` (own session) still runs: the stop kills it after its grace,
    re-applies the original mode, and it can never land afterwards."""
    switch = _switch_in_flight(run)
    assert switch["target_name"] == "MAXN_SUPER" and run.board_state().mode_id == MODE_ID["25W"]
    t0 = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait_exit(90) == 0, run.d.log
    run.recovered("stop", time.monotonic() - t0)
    _until_it_could_have_landed(switch)


def sigkill_mid_switch_then_restore(run: Run) -> None:
    """SIGKILL while `nvpmodel -m` runs: it survives the daemon; `restore` finds it by pid and start time,
    waits for it (until the dead daemon's own deadline for it), then re-applies the original mode."""
    switch = _switch_in_flight(run)
    run.signal(signal.SIGKILL)
    run.wait_exit()
    assert _journal(run)["switch"]["pid"] == switch["pid"]  # the trace SIGKILL leaves
    t0 = time.monotonic()
    done = run.restore_command()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"in-flight switch to MAXN_SUPER (id 2, 'nvpmodel -m 2', pid {switch['pid']})" in done.stdout, done.stdout
    run.recovered("restore", time.monotonic() - t0)
    _until_it_could_have_landed(switch)


def devfreq_revert(run: Run) -> None:
    """The kernel puts the GPU cap back once: /status and the metrics show the truth, the change is counted,
    and the cap is re-applied."""
    run.wait_metric("jetvit_governor_gpu_cap_hertz", 612e6)
    assert run.counter(EXTERNAL_GPU_CAP) == 0  # the counter exists from the start
    run.faults(devfreq_revert=True)
    seen = run.wait_until(lambda: json.loads(run.d.get("/status"))["governor"]["gpu_cap_hz"] == 918_000_000,
                          "/status to report the reverted cap")
    assert seen
    run.wait_counter(EXTERNAL_GPU_CAP, 1)
    run.recovered("gpu_cap", run.wait_metric("jetvit_governor_gpu_cap_hertz", 612e6))
    assert run.board_state().gpu_max_hz == 612_000_000
    assert json.loads(run.d.get("/status"))["governor"]["gpu_cap_hz"] == 612_000_000
    assert run.healthy()


GPU_CAP_WRITES = ('jetvit_governor_actuations_total{knob="gpu_cap",result="ok"}',
                  'jetvit_governor_actuations_total{knob="gpu_cap",result="error"}')


def devfreq_reverts_every_write(run: Run) -> None:
    """The kernel reverts the cap and then undoes every new one: the truth is shown and counted, and the cap is
    re-applied with a growing backoff, not every tick; once the kernel lets go, the cap holds."""
    run.wait_metric("jetvit_governor_gpu_cap_hertz", 612e6)
    run.faults(devfreq_revert=True, devfreq_reject=True)
    run.wait_until(lambda: json.loads(run.d.get("/status"))["governor"]["gpu_cap_hz"] == 918_000_000,
                   "/status to report the reverted cap")
    run.wait_counter(EXTERNAL_GPU_CAP, 1)
    writes = sum(run.counter(name) for name in GPU_CAP_WRITES)
    time.sleep(8.0)  # 40 governor ticks at interval_s 0.2
    retries = sum(run.counter(name) for name in GPU_CAP_WRITES) - writes
    # 40 ticks, but the backoff (2 s, 4 s, 8 s …) allows about 3 attempts; a loaded machine may make fewer.
    assert retries <= 5, f"{retries} cap writes in 8 s: the backoff (2 s, then doubling) is not kept"
    assert run.healthy()
    run.faults()
    t0 = time.monotonic()
    run.wait_until(lambda: run.board_state().gpu_max_hz == 612_000_000
                   and run.metric("jetvit_governor_gpu_cap_hertz") == 612e6, "the cap to hold once the kernel lets go",
                   90)
    run.recovered("gpu_cap", time.monotonic() - t0)


def _victim(run: Run) -> Any:
    victim = run.tmp / "root-only"
    victim.write_text("root:secret\n")
    victim.chmod(0o600)
    return victim


def writable_state_dir(run: Run) -> None:
    state = run.setup["state"]
    state.mkdir()
    state.chmod(0o777)


def planted_lock_symlink(run: Run) -> None:
    state = run.setup["state"]
    state.mkdir(mode=0o700)
    os.symlink(_victim(run), state / "jetvit-daemon.lock")


def planted_baseline_symlink(run: Run) -> None:
    state = run.setup["state"]
    state.mkdir(mode=0o700)
    attacker = run.tmp / "attacker.json"
    attacker.write_text(json.dumps({"version": 1, "board": "x", "mode_name": "15W", "mode_id": MODE_ID["15W"],
                                    "gpu_devfreq_dir": None, "gpu_min_hz": None, "gpu_max_hz": None,
                                    "recorded_at": 0, "pid": 1}))
    os.symlink(attacker, state / "baseline.json")


def refused_at_start(run: Run) -> None:
    """Nothing of the board is touched: the daemon exits 2 before opening it, and `restore` refuses too."""
    assert run.wait_exit() == 2, run.d.log
    done = run.restore_command()
    assert done.returncode == 2 and "refused" in done.stderr, done.stdout + done.stderr
    victim = run.tmp / "root-only"
    if victim.exists():
        assert victim.read_text() == "root:secret\n"


def second_instance(run: Run) -> None:
    """A second daemon on the same state directory is refused before it opens the (shared simulated) board:
    no second physics thread; the first runs on."""
    run.wait_metric('jetvit_board_power_mode{mode="MAXN_SUPER"}', 1)
    second = DaemonProcess(run.setup["config"])
    try:
        second.proc.wait(WAIT_S)
    finally:
        second.kill()
    assert second.proc.returncode == 2, second.log
    assert "another jetvit-daemon (pid" in second.log and "simulated" not in second.log, second.log
    assert run.healthy()


RESTORE_CASES: List[Case] = [
    Case("stop_mid_switch", "SIGTERM during a power-mode switch: the switch is killed, the original mode "
         "re-applied; it never lands after the restore", stop_mid_switch, prepare=slow_nvpmodel,
         log=(r"stopping: an actuation was still running after 2 s; killed pid \d+",),
         max_recovery_s=60.0, issue_items=("9.1",)),
    Case("sigkill_mid_switch_then_restore", "SIGKILL during a switch, then `restore`: the orphaned switch is "
         "waited for or killed before the restore, which it never overrides", sigkill_mid_switch_then_restore,
         prepare=slow_nvpmodel, config={"hardware": {"nvpmodel_timeout_s": SLOW_SWITCH_S + 4}},
         exit_codes=(-signal.SIGKILL,), max_recovery_s=60.0, issue_items=("9.1",)),
    Case("devfreq_revert", "a cap the kernel reverts is reported as the truth, counted and re-applied",
         devfreq_revert, policy=REVERT_POLICY,
         log=(r"the board changed behind the governor: .* GPU cap 612 MHz; it reads mode 25W, GPU cap 918 MHz",),
         issue_items=("9.5",)),
    Case("devfreq_reverts_every_write", "a kernel that undoes every cap: the truth shown, re-applied with backoff",
         devfreq_reverts_every_write, policy=REVERT_POLICY, max_recovery_s=90.0, issue_items=("9.5",)),
    Case("state_dir_writable_by_others", "a state directory others can write is refused (exit 2, named)",
         refused_at_start, prepare=writable_state_dir, wait_ready=False, exit_codes=(2,),
         log=(r"error: state directory .*/state refused: .*/state is writable by group and others \(drwxrwxrwx; "
              r"fix: chmod go-w",), issue_items=("9.8",)),
    Case("planted_lock_symlink", "a lock symlink planted in the state directory is refused, its target untouched",
         refused_at_start, prepare=planted_lock_symlink, wait_ready=False, exit_codes=(2,),
         log=(r"jetvit-daemon\.lock is a symbolic link: refused",), issue_items=("9.8",)),
    Case("planted_baseline_symlink", "a planted baseline.json symlink is refused, never \"restored\" from",
         refused_at_start, prepare=planted_baseline_symlink, wait_ready=False, exit_codes=(2,),
         log=(r"baseline\.json is a symbolic link to .*attacker\.json.*: refused",), journal="kept",
         issue_items=("9.8",)),
    Case("second_instance", "a second instance is refused before it starts a physics thread on the board",
         second_instance, issue_items=("9",)),
]
