"""The fault matrix harness: the real `jetvit-daemon run` process on a simulated board, a fault injected, and
the promise checked at the end: exit code and message, the board's power mode and GPU limits read back, the
baseline journal, no traceback; during the run each case checks the metric that shows the fault and records
how long recovery took.

A case is one `Case` row (tests/faults/test_fault_matrix.py holds the table); what it does to the running
daemon is a small function `act(run)` using the `Run` helpers below. How to add one: tests/faults/README.md.

Cases are independent: each has its own temp directory (config, policy, state directory, board tree) and its
own daemon on an ephemeral port, so they can run in any order or in parallel. Every wait is a poll with a
generous timeout (the suite runs on 2 loaded cores); no assertion is on wall-clock speed except recovery
bounds far above the design values.
"""

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from daemon_process import FAST_POLICY, DaemonProcess, write_setup

from jetvit_daemon.hardware.devfreq import find_gpu_devfreq
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.sim.emulators import write_faults
from jetvit_daemon.sim.live import create_tree

# Mode ids of the simulated Orin Nano Super (jetvit_daemon/sim/confs/nvpmodel_p3767_0003_super.conf).
MODE_ID = {"15W": 0, "25W": 1, "MAXN_SUPER": 2}
WAIT_S = 30.0  # the longest any single condition is waited for (2 loaded cores, several daemons a minute)

# FAST_POLICY with the stale-telemetry safe state after 1 s: a telemetry fault shows within seconds.
STALE_POLICY = dict(FAST_POLICY, stale_telemetry={"after_s": 1.0, "state": "low"})


@dataclass(frozen=True)
class BoardState:
    """What the board reads back: nvpmodel's persisted mode and the GPU devfreq limits."""

    mode_id: int
    gpu_min_hz: int
    gpu_max_hz: int


@dataclass(frozen=True)
class Case:
    """One row of the matrix: what happens to the daemon and which promise must hold.

    act: what the case does to the running daemon (inject, edit, signal) and the metrics it checks on the way.
    prepare: runs before the daemon starts (e.g. make the policy path a symlink).
    exit_codes: the allowed exit statuses (negative: killed by that signal).
    log: regexes that must each match a line of the daemon's output.
    restored: at the end the board reads back the mode and GPU limits it had before the daemon started.
    journal: "cleared" (no baseline.json left) or "kept".
    """

    name: str
    promise: str
    act: Callable[["Run"], None]
    policy: Optional[Dict[str, Any]] = None
    config: Dict[str, Any] = field(default_factory=dict)
    board: str = "orin-nano-super"
    boot_mode_id: Optional[int] = None
    prepare: Optional[Callable[["Run"], None]] = None
    wait_ready: bool = True
    prefix: Callable[[], Sequence[str]] = lambda: ()
    exit_codes: Tuple[int, ...] = (0,)
    log: Tuple[str, ...] = ()
    restored: bool = True
    journal: str = "cleared"
    tracebacks_ok: bool = False
    max_recovery_s: float = 20.0
    issue_items: Tuple[str, ...] = ()


class Run:
    """One daemon on one simulated board in `tmp`, with the helpers cases use. Not thread-safe: one case."""

    def __init__(self, tmp: Path, policy: Optional[Dict[str, Any]] = None, config: Optional[Dict[str, Any]] = None,
                 board: str = "orin-nano-super", boot_mode_id: Optional[int] = None) -> None:
        self.tmp = tmp
        overrides = dict(config or {})
        overrides.setdefault("simulator", {"board": board, "root_dir": str(tmp / "board"), "tick_s": 0.1})
        self.setup = write_setup(tmp, policy=policy or FAST_POLICY, **overrides)
        self.policy_path = self.setup["policy"]
        # The board exists before the daemon starts (as a real one does): faults can be set in advance, and
        # what "restored" means is read from it, not assumed.
        self.tree: SysfsTree = create_tree(board, self.setup["board"], mode_id=boot_mode_id)
        gpu_dir = find_gpu_devfreq(self.tree)
        assert gpu_dir is not None
        self.gpu_dir = gpu_dir
        self.original = self.board_state()
        self.daemon: Optional[DaemonProcess] = None
        self.earlier_logs: List[str] = []  # of daemons this case started before the current one
        self.recoveries: Dict[str, float] = {}
        self.cleanups: List[Callable[[], None]] = []
        self.started_at = 0.0

    # -- the daemon ----------------------------------------------------------------------------------------
    def start(self, *extra: str, wait_ready: bool = True, prefix: Sequence[str] = ()) -> DaemonProcess:
        if self.daemon is not None:  # a restart: keep what the last one said, close its pipe
            self.daemon.kill()
            self.earlier_logs.append(self.daemon.log)
        self.started_at = time.monotonic()
        self.daemon = DaemonProcess(self.setup["config"], *extra, prefix=prefix)
        if wait_ready:
            self.daemon.wait_ready(WAIT_S)
        return self.daemon

    @property
    def d(self) -> DaemonProcess:
        assert self.daemon is not None, "the daemon was not started"
        return self.daemon

    def alive(self) -> bool:
        return self.daemon is not None and self.daemon.proc.poll() is None

    def signal(self, sig: int) -> None:
        self.d.proc.send_signal(sig)

    def stop(self, timeout_s: float = WAIT_S) -> int:
        """SIGTERM (unless it already exited) and wait; the exit status."""
        if self.alive():
            self.d.proc.send_signal(signal.SIGTERM)
        self.d.proc.wait(timeout_s)
        self.d._reader.join(5)
        return self.d.proc.returncode

    def wait_exit(self, timeout_s: float = WAIT_S) -> int:
        self.d.proc.wait(timeout_s)
        self.d._reader.join(5)
        return self.d.proc.returncode

    def restore_command(self) -> "subprocess.CompletedProcess[str]":
        """`jetvit-daemon restore` with the same config, as an operator (or the unit's ExecStopPost) runs it."""
        return subprocess.run([sys.executable, "-m", "jetvit_daemon", "restore", "--config", str(self.setup["config"])],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    # -- what it shows -------------------------------------------------------------------------------------
    def metric(self, name: str, default: Optional[float] = None) -> Optional[float]:
        return self.d.metrics().get(name, default)

    def counter(self, name: str) -> float:
        value = self.metric(name, 0.0)
        assert value is not None
        return value

    def healthy(self) -> bool:
        return '"status": "ok"' in self.d.get("/healthz")

    def mark(self) -> int:
        """A position in the log: `wait_log(..., since=mark)` looks only at lines after it."""
        return len(self.d.lines)

    def wait_log(self, pattern: str, since: int = 0, timeout_s: float = WAIT_S) -> "re.Match[str]":
        regex = re.compile(pattern)
        found = self.wait_until(lambda: next((m for m in map(regex.search, self.d.lines[since:]) if m), None),
                                f"a log line matching {pattern!r}", timeout_s)
        return found  # type: ignore[no-any-return]

    def wait_until(self, predicate: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
        """Poll `predicate` until it returns something true; that value. AssertionError naming `what` (with the
        daemon's log) on timeout or when the daemon exits meanwhile."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = predicate()
            except OSError:  # HTTP refused or reset: the daemon is gone, or not yet answering
                value = None
            if value:
                return value
            if self.daemon is not None and not self.alive():
                raise AssertionError(f"the daemon exited ({self.d.proc.returncode}) while waiting for {what}; "
                                     f"log:\n{self.d.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout_s:.0f} s for {what}; log:\n{self.d.log}")
            time.sleep(0.05)

    def wait_metric(self, name: str, value: float, timeout_s: float = WAIT_S) -> float:
        """Wait until the metric sample reads `value`; the seconds it took."""
        t0 = time.monotonic()
        self.wait_until(lambda: self.metric(name) == value, f"{name} == {value}", timeout_s)
        return time.monotonic() - t0

    def wait_counter(self, name: str, at_least: float, timeout_s: float = WAIT_S) -> float:
        t0 = time.monotonic()
        self.wait_until(lambda: self.counter(name) >= at_least, f"{name} ≥ {at_least}", timeout_s)
        return time.monotonic() - t0

    def recovered(self, what: str, seconds: float) -> None:
        """Record how long recovery from a fault took (checked against the case's bound)."""
        self.recoveries[what] = seconds

    # -- the board -----------------------------------------------------------------------------------------
    def board_state(self) -> BoardState:
        status = self.tree.read_text("/var/lib/nvpmodel/status").strip()  # `pmode:000N`
        return BoardState(int(status.split(":")[1]), int(self.tree.read_text(self.gpu_dir + "/min_freq")),
                          int(self.tree.read_text(self.gpu_dir + "/max_freq")))

    def faults(self, **faults: Any) -> None:
        """Replace the board's injected faults (jetvit_daemon/sim/emulators.py FAULT_KEYS); none clears them."""
        write_faults(self.setup["board"], faults)

    def gpu_file(self, name: str) -> Path:
        return self.tree.path(f"{self.gpu_dir}/{name}")

    def journal_exists(self) -> bool:
        return (self.setup["state"] / "baseline.json").exists()

    # -- the policy file -----------------------------------------------------------------------------------
    def save_policy(self, content: Union[bytes, str, Dict[str, Any]], path: Optional[Path] = None) -> None:
        """Save like an editor: write a temporary file, then rename it over the policy (mode 0644)."""
        target = path or self.policy_path
        data = content if isinstance(content, bytes) else (
            content.encode() if isinstance(content, str) else yaml.safe_dump(content).encode())
        tmp = target.with_name(f".{target.name}.swp")
        tmp.write_bytes(data)
        tmp.chmod(0o644)
        os.replace(tmp, target)

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()
        if self.daemon is not None:
            self.daemon.kill()


def run_case(case: Case, tmp: Path) -> Run:
    """Run one case and check its promise; AssertionError naming what broke, with the daemon's log."""
    run = Run(tmp, case.policy, case.config, case.board, case.boot_mode_id)
    try:
        if case.prepare is not None:
            case.prepare(run)
        run.start(wait_ready=case.wait_ready, prefix=case.prefix())
        case.act(run)
        code = run.stop()
        check_promise(case, run, code)
        return run
    finally:
        run.close()


def check_promise(case: Case, run: Run, code: int) -> None:
    log = run.d.log
    assert code in case.exit_codes, f"{case.name}: exit status {code}, expected one of {case.exit_codes}; log:\n{log}"
    for pattern in case.log:
        assert any(re.search(pattern, line) for line in run.d.lines), \
            f"{case.name}: no log line matches {pattern!r}; log:\n{log}"
    if not case.tracebacks_ok:
        for text in (*run.earlier_logs, log):
            assert "Traceback" not in text, f"{case.name}: a traceback in the daemon's output:\n{text}"
    if case.restored:
        assert run.board_state() == run.original, \
            f"{case.name}: the board reads {run.board_state()}, not its original {run.original}; log:\n{log}"
    if case.journal == "cleared":
        assert not run.journal_exists(), f"{case.name}: baseline.json left behind; log:\n{log}"
    else:
        assert run.journal_exists(), f"{case.name}: no baseline.json kept; log:\n{log}"
    for what, seconds in run.recoveries.items():
        assert seconds <= case.max_recovery_s, f"{case.name}: {what} took {seconds:.1f} s to recover"
    print(f"{case.name}: exit {code}; recovery " +
          (", ".join(f"{k} {v:.1f} s" for k, v in run.recoveries.items()) or "-"))
