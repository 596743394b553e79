"""The fault matrix: the real daemon process on the simulated board, one fault per case, the promise checked
(tests/faults/matrix.py runs a case; README.md says how to add one; docs/RELIABILITY.md maps promises to cases).

CASES is the table of cases that each get their own daemon; the bad policy edits share one daemon (below),
each saved over the running policy and then sent SIGHUP, since a refused edit must leave the daemon as it was.
"""

import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import List, Sequence

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_inputs import BAD_POLICIES
from matrix import FAST_POLICY, MODE_ID, STALE_POLICY, Case, Run, run_case
from restore_cases import RESTORE_CASES

pytestmark = pytest.mark.slow

IN_CI = bool(os.environ.get("CI"))
MAXN = 'jetvit_board_power_mode{mode="MAXN_SUPER"}'
POWER_MODE_ERRORS = 'jetvit_governor_actuations_total{knob="power_mode",result="error"}'
GPU_CAP_ERRORS = 'jetvit_governor_actuations_total{knob="gpu_cap",result="error"}'
RELOAD_OK = 'jetvit_policy_reloads_total{result="ok"}'
RELOAD_ERROR = 'jetvit_policy_reloads_total{result="error"}'


# -- telemetry ---------------------------------------------------------------------------------------------
def tegrastats_fault(fault: str):
    """tegrastats stops delivering (hang), exits at once (exit) or prints garbage: telemetry goes stale, the
    governor takes the safe state, and readings resume once the tool works again."""
    def act(run: Run) -> None:
        run.wait_metric(MAXN, 1)
        run.faults(tegrastats=fault)
        run.wait_metric("jetvit_telemetry_stale", 1)
        run.wait_metric('jetvit_board_power_mode{mode="15W"}', 1)
        assert run.board_state().mode_id == MODE_ID["15W"]
        assert run.counter('jetvit_governor_decisions_total{rule="stale"}') >= 1
        assert run.counter('jetvit_errors_total{component="telemetry"}') >= 1
        assert run.healthy()
        run.faults()
        run.recovered("telemetry", run.wait_metric("jetvit_telemetry_stale", 0))
    return act


# -- nvpmodel ----------------------------------------------------------------------------------------------
def nvpmodel_fault(fault: str):
    """nvpmodel fails or hangs while the governor switches to the safe state: the failure is counted, the
    mode is unchanged, the daemon stays healthy, and the retry lands once nvpmodel works again."""
    def act(run: Run) -> None:
        run.wait_metric(MAXN, 1)
        run.faults(nvpmodel=fault, tegrastats="hang")  # no telemetry → the safe state → a switch to 15W
        run.wait_counter(POWER_MODE_ERRORS, 1)
        assert run.board_state().mode_id == MODE_ID["MAXN_SUPER"]
        assert run.healthy()
        run.faults(tegrastats="hang")  # nvpmodel works again; still no telemetry, so still the safe state
        run.recovered("power_mode", run.wait_metric('jetvit_board_power_mode{mode="15W"}', 1))
        assert run.board_state().mode_id == MODE_ID["15W"]
        run.faults()
    return act


def reboot_prompt(run: Run) -> None:
    """The board boots in 7W; the policy's only mode, 15W, needs a reboot from there (TPC_PG_MASK differs):
    the switch is refused before nvpmodel could stop at its reboot prompt, the daemon keeps running."""
    run.wait_log(r"cannot apply state only \(retrying in 60 s\): 7W → 15W needs a reboot: TPC_PG_MASK 252 ≠ 240")
    run.wait_counter(POWER_MODE_ERRORS, 1)
    assert run.board_state().mode_id == 1
    assert run.healthy()


# -- devfreq -----------------------------------------------------------------------------------------------
# Two states of one mode: only the GPU cap changes, so nothing but the daemon's own devfreq write is at stake.
CAP_POLICY = dict(STALE_POLICY, ladder=[{"name": "low", "mode": "25W", "gpu_cap_mhz": 408, "batch_size": 4},
                                        {"name": "top", "mode": "25W", "gpu_cap_mhz": "max", "batch_size": 4}])


def without_dac_override() -> Sequence[str]:
    """As root, the daemon runs without CAP_DAC_OVERRIDE, so file modes bind it as they bind any user."""
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--") if os.geteuid() == 0 else ()


def devfreq_refused(how: str):
    """Writes to the GPU's devfreq limits fail with EACCES (mode 0444) or EPERM (immutable): counted, logged
    with the errno, retried with backoff; once writable again the cap lands and the board reads it back."""
    def act(run: Run) -> None:
        run.wait_metric("jetvit_governor_gpu_cap_hertz", 918e6)
        files = [run.gpu_file("max_freq"), run.gpu_file("min_freq")]
        lock, unlock = _lockers(how, files)
        lock()
        run.cleanups.append(unlock)
        run.faults(tegrastats="hang")  # the safe state: 25W at 408 MHz
        run.wait_counter(GPU_CAP_ERRORS, 1)
        run.wait_log(r"cannot apply state low .*max_freq failed: " + ("EACCES" if how == "eacces" else "EPERM"))
        assert run.board_state().gpu_max_hz == 918_000_000
        assert run.healthy()
        unlock()
        run.recovered("gpu_cap", run.wait_metric("jetvit_governor_gpu_cap_hertz", 408e6))
        assert run.board_state().gpu_max_hz == 408_000_000
        run.faults()
    return act


def _lockers(how: str, files: List[Path]):
    if how == "eacces":
        return (lambda: [f.chmod(0o444) for f in files]), (lambda: [f.chmod(0o644) for f in files])
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        if IN_CI:
            raise AssertionError("the EPERM case needs root and chattr (e2fsprogs) in CI")
        pytest.skip("EPERM (immutable file) needs root and chattr")
    import subprocess

    def chattr(flag: str) -> None:
        for f in files:
            subprocess.run(["chattr", flag, str(f)], check=True)
    return (lambda: chattr("+i")), (lambda: chattr("-i"))


# -- signals -----------------------------------------------------------------------------------------------
def moments(kind: str, n: int) -> List[float]:
    """n moments in the first 3 s after the start (start-up, the first switch, steady state), reproducible."""
    rng = random.Random(kind)
    return sorted(round(rng.uniform(0.0, 3.0), 2) for _ in range(n))


def sigterm_at(delay_s: float):
    def act(run: Run) -> None:
        time.sleep(max(0.0, run.started_at + delay_s - time.monotonic()))
        run.signal(signal.SIGTERM)
        run.wait_exit()
    return act


def sigkill_at(delay_s: float, recover_by: str):
    """SIGKILL leaves the board as it is; `restore` (or the next start) puts back what the journal holds."""
    def act(run: Run) -> None:
        time.sleep(max(0.0, run.started_at + delay_s - time.monotonic()))
        run.signal(signal.SIGKILL)
        run.wait_exit()
        killed_at = time.monotonic()
        if recover_by == "restore":
            done = run.restore_command()
            assert done.returncode == 0, done.stdout + done.stderr
        else:
            run.start("--duration", "2")
            run.wait_until(lambda: run.board_state() == run.original, "the next start to restore the board")
        run.recovered("restore", time.monotonic() - killed_at)
        if recover_by != "restore":
            assert run.wait_exit(60) == 0, run.d.log
    return act


# -- the policy file ---------------------------------------------------------------------------------------
def as_configmap(run: Run) -> None:
    """Kubernetes ConfigMap layout: policy.yaml → ..data/policy.yaml, ..data → ..v1 (swapped atomically)."""
    v1 = run.tmp / "..v1"
    v1.mkdir()
    (v1 / "policy.yaml").write_bytes(run.policy_path.read_bytes())
    (run.tmp / "..data").symlink_to("..v1")
    run.policy_path.unlink()
    run.policy_path.symlink_to("..data/policy.yaml")


def swap_configmap(run: Run, version: str, content: bytes) -> None:
    target = run.tmp / version
    if content:
        target.mkdir()
        (target / "policy.yaml").write_bytes(content)
        (target / "policy.yaml").chmod(0o644)
    tmp_link = run.tmp / "..data_tmp"
    tmp_link.symlink_to(version)
    os.replace(tmp_link, run.tmp / "..data")


def symlink_swaps(run: Run) -> None:
    """A bad version swapped in is refused; a dangling link keeps the running policy (and SIGHUP says why);
    a good version swapped in is applied."""
    import yaml

    run.wait_metric(MAXN, 1)
    swap_configmap(run, "..v2", BAD_POLICIES["unknown_mode"][0])
    run.wait_counter(RELOAD_ERROR, 1)
    swap_configmap(run, "..gone", b"")  # dangling: a swap caught half-way
    mark = run.mark()
    run.signal(signal.SIGHUP)
    run.wait_counter(RELOAD_ERROR, 2)
    run.wait_log(r"policy\.yaml: cannot read: No such file or directory", since=mark)
    edited = dict(FAST_POLICY, ladder=[FAST_POLICY["ladder"][0], dict(FAST_POLICY["ladder"][1], batch_size=2)])
    swap_configmap(run, "..v3", yaml.safe_dump(edited).encode())
    run.recovered("reload", run.wait_metric("jetvit_governor_batch_size_frames", 2))
    assert run.counter(RELOAD_OK) == 1
    assert run.healthy()


def permission_changes(run: Run) -> None:
    """strict permissions: a policy made group-writable (or given to another user) is refused, on SIGHUP and
    on an edit, until it is fixed; the running policy stays meanwhile."""
    import yaml

    run.wait_metric(MAXN, 1)
    run.policy_path.chmod(0o664)
    run.signal(signal.SIGHUP)
    run.wait_counter(RELOAD_ERROR, 1)
    run.wait_log(r"refused: the policy controls the hardware, and it is writable by group")
    edited = dict(FAST_POLICY, ladder=[FAST_POLICY["ladder"][0], dict(FAST_POLICY["ladder"][1], batch_size=2)])
    run.policy_path.write_text(yaml.safe_dump(edited))  # in place: the group-writable mode stays
    run.wait_counter(RELOAD_ERROR, 2)
    assert run.metric("jetvit_governor_batch_size_frames") == 4
    if os.geteuid() == 0:
        run.policy_path.chmod(0o644)
        os.chown(run.policy_path, 12345, -1)
        run.signal(signal.SIGHUP)
        run.wait_counter(RELOAD_ERROR, 3)
        run.wait_log(r"owned by uid 12345, not by the daemon's uid 0 or root")
        os.chown(run.policy_path, 0, -1)
    run.policy_path.chmod(0o644)
    run.signal(signal.SIGHUP)
    run.recovered("reload", run.wait_metric("jetvit_governor_batch_size_frames", 2))
    assert run.healthy()


def policy_path_lost(run: Run) -> None:
    """The policy file deleted (with policy_permissions: ignore) or replaced by a directory: the loader says
    so, the reload is refused, the running policy stays; the file put back is loaded again."""
    run.wait_metric(MAXN, 1)
    good = run.policy_path.read_bytes()
    run.policy_path.unlink()
    run.signal(signal.SIGHUP)
    run.wait_counter(RELOAD_ERROR, 1)
    run.wait_log(r"policy\.yaml: cannot read: No such file or directory")
    run.policy_path.mkdir()
    run.signal(signal.SIGHUP)
    run.wait_counter(RELOAD_ERROR, 2)
    run.wait_log(r"policy\.yaml: is a directory, not a file")
    assert run.healthy() and run.metric(MAXN) == 1
    run.policy_path.rmdir()
    run.save_policy(good)
    run.signal(signal.SIGHUP)
    run.recovered("reload", run.wait_counter(RELOAD_OK, 1))


CASES: List[Case] = [
    *(Case(f"tegrastats_{f}", "telemetry loss → safe state, shown in metrics, recovered", tegrastats_fault(f),
           policy=STALE_POLICY, log=(r"step down top → low: no fresh telemetry",))
      for f in ("hang", "exit", "garbage")),
    Case("nvpmodel_fail", "a failed switch is counted, retried with backoff, the mode unchanged meanwhile",
         nvpmodel_fault("fail"), policy=STALE_POLICY, log=(r"cannot apply state low .*NVPM ERROR",)),
    Case("nvpmodel_timeout", "a hung nvpmodel is killed at its deadline; retried; the daemon never wedges",
         nvpmodel_fault("hang"), policy=STALE_POLICY, config={"hardware": {"nvpmodel_timeout_s": 2}},
         log=(r"cannot apply state low \(retrying in \d+ s\): 'nvpmodel -q' timed out after 2 s",)),
    Case("nvpmodel_reboot_prompt", "a switch that needs a reboot is refused; the daemon never waits on the prompt",
         reboot_prompt, board="orin-nano", boot_mode_id=1,
         policy=dict(FAST_POLICY, ladder=[{"name": "only", "mode": "15W"}], start_state=None)),
    *(Case(f"devfreq_{how}", "a refused devfreq write is counted, retried, and lands once possible",
           devfreq_refused(how), policy=CAP_POLICY, prefix=without_dac_override)
      for how in ("eacces", "eperm")),
    *(Case(f"sigterm_at_{t:.2f}s", "SIGTERM at any moment: exit 0, the board restored, the journal cleared",
           sigterm_at(t), wait_ready=False, exit_codes=(0, -signal.SIGTERM))
      for t in moments("sigterm", 4)),
    *(Case(f"sigkill_at_{t:.2f}s_then_{how}", "SIGKILL at any moment: the journal survives; restore or the next "
           "start puts the board back", sigkill_at(t, how), wait_ready=False, exit_codes=(0, -signal.SIGKILL))
      for t, how in zip(moments("sigkill", 4), ("restore", "restart", "restore", "restart"))),
    Case("policy_symlink_swaps", "ConfigMap swaps: bad or dangling versions refused, good ones applied",
         symlink_swaps, prepare=as_configmap),
    Case("policy_permission_changes", "strict permissions refuse a policy others could write, until fixed",
         permission_changes),
    Case("policy_deleted_or_a_directory", "a policy path lost is a refused reload, not a dead watcher",
         policy_path_lost, config={"policy_permissions": "ignore"}, issue_items=("2",)),
    *RESTORE_CASES,  # a switch in flight at stop/SIGKILL, devfreq reverts, planted symlinks, second instance
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_matrix(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)


# -- bad policy edits: one daemon for all of them ----------------------------------------------------------
@pytest.fixture(scope="module")
def edited_daemon(tmp_path_factory: pytest.TempPathFactory):
    run = Run(tmp_path_factory.mktemp("policy-edits"))
    run.start()
    run.wait_metric(MAXN, 1)
    yield run
    run.close()


@pytest.mark.parametrize("name", list(BAD_POLICIES))
def test_bad_policy_edit_is_refused_and_the_last_good_policy_keeps_running(edited_daemon: Run, name: str) -> None:
    """Issue 9 items 2, 3, 11, 13: every bad kind of edit, saved over the live policy and then sent SIGHUP, is
    a refused reload with a clear error; the daemon keeps its state, stays healthy and answers SIGTERM."""
    run = edited_daemon
    content, message = BAD_POLICIES[name]
    errors = run.counter(RELOAD_ERROR)
    mark = run.mark()
    run.save_policy(content)
    run.wait_counter(RELOAD_ERROR, errors + 1)
    run.wait_log(message, since=mark)
    run.signal(signal.SIGHUP)
    run.wait_counter(RELOAD_ERROR, errors + 2)
    assert run.metric(MAXN) == 1 and run.metric("jetvit_governor_batch_size_frames") == 4
    assert run.healthy()


def test_after_every_bad_edit_a_good_one_applies_and_sigterm_restores(edited_daemon: Run) -> None:
    import yaml

    run = edited_daemon
    edited = dict(FAST_POLICY, ladder=[FAST_POLICY["ladder"][0], dict(FAST_POLICY["ladder"][1], batch_size=2)])
    run.save_policy(yaml.safe_dump(edited))
    run.wait_metric("jetvit_governor_batch_size_frames", 2)
    assert run.stop() == 0, run.d.log
    assert "Traceback" not in run.d.log, run.d.log
    assert run.board_state() == run.original
    assert not run.journal_exists()
