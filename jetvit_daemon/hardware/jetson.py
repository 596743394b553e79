"""`JetsonPlatform`: the `Platform` of a real Jetson, and unchanged of the simulated board.

>>> platform = JetsonPlatform(SysfsTree("/"), SubprocessRunner(), SystemClock(),
...                           Path("/var/lib/jetvit-daemon"), telemetry)         # doctest: +SKIP
>>> platform.start()                 # lock, restore after a crash, conflicts, telemetry  # doctest: +SKIP
>>> platform.set_mode("25W")          # Orin NX 16GB from MAXN: same reboot group       # doctest: +SKIP
>>> platform.set_gpu_cap_hz(612_000_000)                                                # doctest: +SKIP
>>> platform.stop()                  # mode first, then GPU limits, then the journal is cleared  # doctest: +SKIP

Restore order: the mode goes back first because `nvpmodel -m` rewrites the GPU devfreq limits itself
(its GPU MIN_FREQ/MAX_FREQ settings); the recorded devfreq min/max are written after it.
"""

import contextlib
import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from jetvit_daemon.clock import Clock, SystemClock
from jetvit_daemon.errors import ActuationError, ConfigError, JetvitError, RebootRequiredError
from jetvit_daemon.hardware.base import GpuFreqState, Platform, PowerMode, TelemetrySample, TelemetrySource
from jetvit_daemon.hardware.baseline import Baseline, BaselineJournal, SwitchRecord
from jetvit_daemon.hardware.commands import ChildProcess, CommandRunner
from jetvit_daemon.hardware.devfreq import GpuDevfreq, find_gpu_devfreq
from jetvit_daemon.hardware.nvpmodel import Nvpmodel, reboot_reason
from jetvit_daemon.hardware.probe import (
    KNOB_GPU_FREQ,
    KNOB_POWER_MODE,
    BoardInfo,
    Conflict,
    InstanceLock,
    acquire_instance_lock,
    detect_board,
    detect_conflicts,
    system_is_stopping,
)
from jetvit_daemon.hardware.sensors import SysfsTelemetry, throttle_trips_c
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger(__name__)

ON_CONFLICT_CHOICES = ("refuse", "leave_alone")
# The knobs this platform actuates; a conflict over anything else (the fan) is reported, never blocking.
ACTUATED_KNOBS = (KNOB_POWER_MODE, KNOB_GPU_FREQ)
# `nvpmodel -q` is a subprocess (on the simulated board a Python start-up); the governor asks for the
# current mode every tick, and the mode only changes through us or a rare human, so a short cache suffices.
MODE_CACHE_S = 5.0
# How long stop() lets an in-flight actuation (an `nvpmodel -m`) finish before killing it; a live switch
# takes well under a second on every board (jetson-reference README), and the governor was already given 2 s.
SWITCH_GRACE_S = 2.0
# After the kill, how long the actuating thread gets to let go: its `run` returns as soon as the child died.
ACTUATION_RELEASE_S = 5.0
# The least a restore on stop gets, however late it starts (a query and a switch on a real board: < 1 s).
MIN_RESTORE_S = 1.5
# `systemctl is-system-running` answers at once; on stop it may take at most a quarter of what the restore has.
SYSTEMCTL_TIMEOUT_S = 5.0


def _mhz(freq_hz: Optional[int]) -> str:
    return "none" if freq_hz is None else f"{freq_hz / 1e6:g} MHz"


def _settle_switch(runner: CommandRunner, clock: Clock, switch: SwitchRecord,
                   limit_s: Optional[float] = None) -> str:
    """Wait for a switch recorded as in flight until the deadline its daemon had for it (at most `limit_s`,
    what the caller's own deadline leaves), then kill it."""
    remaining_s = min(switch.timeout_s, switch.started_at + switch.timeout_s - clock.time())
    if limit_s is not None:
        remaining_s = min(remaining_s, limit_s)
    return runner.settle(switch.argv, switch.child, max(0.0, remaining_s))


def _restore_baseline(
    tree: SysfsTree, runner: CommandRunner, nvpmodel: Nvpmodel, clock: Clock, baseline: Baseline,
    interrupted: bool = False,
) -> Tuple[bool, List[str]]:
    """Put the board back as `baseline` says and read it back. (restored and verified, report lines).

    First no switch may still be running (one the journal records as in flight is waited for, then killed);
    then the mode (forced when a switch was interrupted: it may have written part of its settings), then the
    GPU limits; then the board is read back, and only a match counts as restored."""
    lines: List[str] = []
    if baseline.switch is not None:
        try:
            lines.append(f"in-flight {baseline.switch.describe()}: "
                         + _settle_switch(runner, clock, baseline.switch, nvpmodel.time_left_s()))
        except ActuationError as exc:
            return False, [f"nothing restored: the in-flight {baseline.switch.describe()} may still land: {exc}"]
        interrupted = True
    ok = True
    # The mode as last read from the board: `set_mode` reads it back after its switch, so the read-back
    # below needs no query of its own (every nvpmodel call costs a process start on a starved machine).
    read_mode: Optional[PowerMode] = None
    try:
        conf = nvpmodel.conf()
        target = conf.mode_by_id(baseline.mode_id)
        if target is None or target.name != baseline.mode_name:
            raise ActuationError(
                f"recorded mode {baseline.mode_name} (id {baseline.mode_id}) is not in {conf.source} any more"
            )
        current = read_mode = nvpmodel.query()
        if current.id == target.id and not interrupted:
            lines.append(f"power mode {target.name} already set")
        else:
            read_mode = nvpmodel.set_mode(target.name, current=current, force=interrupted)
            lines.append(f"power mode {current.name} → {target.name}" + (" (re-applied)" if interrupted else ""))
    except (ActuationError, ConfigError) as exc:
        ok = False
        lines.append(f"power mode NOT restored to {baseline.mode_name}: {exc}")
    gpu: Optional[GpuDevfreq] = None
    if baseline.gpu_devfreq_dir and baseline.gpu_min_hz is not None and baseline.gpu_max_hz is not None:
        gpu = GpuDevfreq(tree, baseline.gpu_devfreq_dir)
        try:
            gpu.restore(baseline.gpu_min_hz, baseline.gpu_max_hz)
            lines.append(
                f"GPU min/max {_mhz(baseline.gpu_min_hz)}/{_mhz(baseline.gpu_max_hz)} in {baseline.gpu_devfreq_dir}"
            )
        except ActuationError as exc:
            ok = False
            lines.append(f"GPU limits NOT restored: {exc}")
    if ok:
        mismatch = _read_back_mismatch(nvpmodel, gpu, baseline, read_mode)
        if mismatch is not None:
            ok = False
            lines.append(f"read back after restoring: {mismatch}")
    return ok, lines


def _read_back_mismatch(nvpmodel: Nvpmodel, gpu: Optional[GpuDevfreq], baseline: Baseline,
                        mode: Optional[PowerMode] = None) -> Optional[str]:
    """What the board reads back differently from `baseline`, or None when it matches. `mode`: the mode
    already read back since the last write to it (None: query it)."""
    try:
        if mode is None:
            mode = nvpmodel.query()
        if mode.id != baseline.mode_id:
            return f"the board reports mode {mode.name} (id {mode.id}), not {baseline.mode_name}"
        if gpu is not None:
            st = gpu.state()
            if (st.min_hz, st.max_hz) != (baseline.gpu_min_hz, baseline.gpu_max_hz):
                return (f"GPU min/max read back {_mhz(st.min_hz)}/{_mhz(st.max_hz)}, not "
                        f"{_mhz(baseline.gpu_min_hz)}/{_mhz(baseline.gpu_max_hz)}")
    except ActuationError as exc:
        return f"cannot read the board back: {exc}"
    return None


def restore_from_journal(
    tree: SysfsTree, runner: CommandRunner, state_dir: Path, timeout_s: float = 10.0,
    lock: Optional[InstanceLock] = None, clock: Optional[Clock] = None,
) -> str:
    """For `jetvit-daemon restore`: put back what a crashed (or killed) daemon recorded; a report for
    humans. Takes the instance lock (unless the caller holds it: `lock`), so it refuses (ConfigError) while
    a daemon runs. A switch the journal records as in flight is waited for or killed first. The journal is
    cleared only when everything was restored and read back."""
    held = lock if lock is not None else acquire_instance_lock(state_dir)
    try:
        journal = BaselineJournal(state_dir)
        baseline = journal.load()
        if baseline is None:
            text = f"nothing to restore: no journal at {journal.path}"
            if journal.quarantined is not None:
                text += f" (a corrupt one was moved to {journal.quarantined})"
            return text
        ok, lines = _restore_baseline(tree, runner, Nvpmodel(runner, tree, timeout_s),
                                      clock if clock is not None else SystemClock(), baseline)
        if ok:
            journal.clear()
            lines.append(f"journal {journal.path} cleared")
        else:
            lines.append(f"journal {journal.path} kept; fix the cause and run `jetvit-daemon restore` again")
        return f"restoring {baseline.describe()}:\n" + "\n".join("  " + ln for ln in lines)
    finally:
        if lock is None:
            held.release()


class JetsonPlatform(Platform):
    """A Jetson board driven through nvpmodel and the GPU devfreq node.

    >>> p = JetsonPlatform(tree, runner, clock, state_dir, telemetry, on_conflict="leave_alone")  # doctest: +SKIP
    >>> p.start(); p.set_mode("15W"); p.stop()                                                 # doctest: +SKIP

    `on_conflict`: "refuse" makes `start()` raise ConfigError when another controller (jetson_clocks, jtop)
    would fight over the power mode or GPU clocks; "leave_alone" starts anyway and makes actuating those
    knobs raise ActuationError "left alone because …". `latest_telemetry()` is thread-safe; everything else
    (reads included: the current-mode cache is unlocked) belongs to one thread, the governor's, with
    start and stop called by the owner before and after it runs.
    """

    def __init__(
        self,
        tree: SysfsTree,
        runner: CommandRunner,
        clock: Clock,
        state_dir: Path,
        telemetry: TelemetrySource,
        description: str = "Jetson",
        nvpmodel_timeout_s: float = 10.0,
        on_conflict: str = "refuse",
        lock: Optional[InstanceLock] = None,
    ) -> None:
        if on_conflict not in ON_CONFLICT_CHOICES:
            raise ConfigError(f"on_conflict must be one of {', '.join(ON_CONFLICT_CHOICES)}, got {on_conflict!r}")
        self.description = description
        self._tree = tree
        self._runner = runner
        self._clock = clock
        self._state_dir = Path(state_dir)
        self._telemetry = telemetry
        self._on_conflict = on_conflict
        self._nvpmodel = Nvpmodel(runner, tree, nvpmodel_timeout_s)
        self._nvpmodel_timeout_s = nvpmodel_timeout_s
        self._journal = BaselineJournal(self._state_dir)
        self._lock: Optional[InstanceLock] = lock  # given: taken by the owner before anything else; ours now
        # Actuations (governor thread) and stop() (owner) exclude each other: a restore never runs while a
        # switch it cannot see is still under way. After stop() begins, no new actuation starts.
        self._actuation_lock = threading.Lock()
        self._closing = threading.Event()
        self._board: Optional[BoardInfo] = None
        self._gpu: Optional[GpuDevfreq] = None
        self._baseline: Optional[Baseline] = None  # what stop() restores; set before the first write
        self._left_alone: Dict[str, str] = {}  # knob → why it is not actuated
        self._mode: Optional[PowerMode] = None
        self._mode_read_at_s = 0.0
        # The devfreq (min, max) the daemon last left behind: a pinned state equal to it is ours, not
        # jetson_clocks' (a cap at the table's lowest frequency makes min == max too).
        self._gpu_limits_set: Optional[Tuple[int, int]] = None
        self._trips_c: Optional[Dict[str, float]] = None  # read once, on first use
        self.conflicts: List[Conflict] = []
        self.restore_report: Optional[str] = None  # what start() restored after a crash, for logs/status

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._lock is None:
            self._lock = acquire_instance_lock(self._state_dir)
        try:
            self._start_locked()
        except BaseException:
            self._lock.release()
            self._lock = None
            raise

    def _start_locked(self) -> None:
        self._board = detect_board(self._tree)
        gpu_dir = find_gpu_devfreq(self._tree)
        self._gpu = GpuDevfreq(self._tree, gpu_dir) if gpu_dir is not None else None
        self._nvpmodel.conf()
        leftover = self._journal.load()
        if leftover is not None:
            self._restore_leftover(leftover)
        self.conflicts = detect_conflicts(self._tree, self._runner)
        blocking = [c for c in self.conflicts if set(c.knobs) & set(ACTUATED_KNOBS)]
        for c in self.conflicts:
            if c not in blocking:
                log.info("not a conflict for the daemon (it does not touch %s): %s", "/".join(c.knobs), c.message)
        if blocking and self._on_conflict == "refuse":
            raise ConfigError(
                "another controller steers the board: "
                + "; ".join(f"{c.source}: {c.message}" for c in blocking)
                + ". Stop it, or set on_conflict: leave_alone to run without touching those knobs"
            )
        for c in blocking:
            for knob in set(c.knobs) & set(ACTUATED_KNOBS):
                self._left_alone.setdefault(knob, f"{c.source}: {c.message}")
                log.warning("leaving %s alone because %s: %s", knob, c.source, c.message)
        self._refresh_mode()
        self._telemetry.start()

    def _restore_leftover(self, leftover: Baseline) -> None:
        ok, lines = _restore_baseline(self._tree, self._runner, self._nvpmodel, self._clock, leftover)
        if ok:
            self.restore_report = (
                f"restored power mode {leftover.mode_name} left by a crashed run (pid {leftover.pid}): "
                + "; ".join(lines)
            )
            log.warning("%s", self.restore_report)
            self._journal.clear()
        else:
            # Keep it: it still holds the board's original settings, which this run restores at stop
            # (and `jetvit-daemon restore` can retry).
            self.restore_report = (
                f"could not restore what a crashed run (pid {leftover.pid}) left: " + "; ".join(lines)
            )
            log.error("%s; journal %s kept", self.restore_report, self._journal.path)
            self._baseline = leftover

    def begin_stop(self) -> None:
        self._telemetry.begin_stop()

    def stop(self, restore: bool = True, timeout_s: Optional[float] = None) -> None:
        """Stop telemetry and, with `restore`, put the board back (skipped while the system shuts down, the
        journal then kept so the next start restores). `restore=False` leaves the board and the journal
        as they are. `timeout_s` bounds the whole stop (the service's stop deadline): telemetry gets a small
        share, and the restoring nvpmodel switch at most what is left less a second. Releases the instance lock.

        With `restore`, no actuation may still land afterwards: new ones are refused, one in flight gets
        SWITCH_GRACE_S to finish, then its nvpmodel is killed (and the mode re-applied, since it may have
        written part of its settings). The journal is cleared only once the board reads back as restored."""
        quiet = interrupted = False
        started_s = time.monotonic()
        try:
            try:
                self._telemetry.stop(2.0 if timeout_s is None else max(0.1, min(2.0, timeout_s / 8)))
            except JetvitError as exc:
                log.error("telemetry %s did not stop cleanly: %s", self._telemetry.name, exc)
            if restore:
                quiet, interrupted = self._quiesce()
            if restore and self._baseline is not None:
                nvpmodel = self._nvpmodel
                if timeout_s is not None:
                    # One deadline for the whole restore (systemctl, nvpmodel -q, -m and its read-back): each
                    # program gets what is left of it, not a timeout of its own. Out of time, the restore
                    # stops, says so and keeps the journal (ExecStopPost's `jetvit-daemon restore` or the
                    # next start finishes it): a stop that overran TimeoutStopSec would be SIGKILLed anyway.
                    nvpmodel = nvpmodel.bounded(max(started_s + timeout_s, time.monotonic() + MIN_RESTORE_S))
                self._restore_on_stop(self._baseline, interrupted, keep_journal=not quiet, nvpmodel=nvpmodel)
        finally:
            if quiet:
                self._actuation_lock.release()
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _quiesce(self) -> Tuple[bool, bool]:
        """Refuse new actuations and end the one in flight: (holding the actuation lock, a switch killed)."""
        self._closing.set()
        if self._actuation_lock.acquire(timeout=SWITCH_GRACE_S):
            return True, False
        killed = self._runner.cancel_running()
        log.warning("stopping: an actuation was still running after %.0f s; killed %s", SWITCH_GRACE_S,
                    ", ".join(f"pid {p}" for p in killed) or "nothing (no child was running)")
        if self._actuation_lock.acquire(timeout=ACTUATION_RELEASE_S):
            return True, bool(killed)
        log.error("stopping: the actuating thread did not let go within %.0f s", ACTUATION_RELEASE_S)
        return False, bool(killed)

    @contextlib.contextmanager
    def _actuating(self) -> Iterator[None]:
        with self._actuation_lock:
            if self._closing.is_set():
                raise ActuationError("the platform is stopping: no new actuation")
            yield

    def _restore_on_stop(self, baseline: Baseline, interrupted: bool, keep_journal: bool,
                         nvpmodel: Optional[Nvpmodel] = None) -> None:
        left_s = (nvpmodel or self._nvpmodel).time_left_s()
        if system_is_stopping(self._runner, timeout_s=SYSTEMCTL_TIMEOUT_S if left_s is None else
                              max(0.05, min(SYSTEMCTL_TIMEOUT_S, left_s / 4))):
            log.warning(
                "system is shutting down: restore skipped, journal %s kept for the next start", self._journal.path
            )
            return
        ok, lines = _restore_baseline(self._tree, self._runner, nvpmodel or self._nvpmodel, self._clock, baseline,
                                      interrupted)
        if ok and keep_journal:
            log.error("restored %s, but an actuation may still be under way: journal %s kept (the next start or "
                      "`jetvit-daemon restore` checks again)", "; ".join(lines), self._journal.path)
        elif ok:
            log.info("restored %s", "; ".join(lines))
            self._journal.clear()
            self._baseline = None
            self._gpu_limits_set = None
            self._mode = None
        else:
            log.error(
                "restore failed: %s; journal %s kept (next start or `jetvit-daemon restore` retries)",
                "; ".join(lines),
                self._journal.path,
            )

    # -- reads --------------------------------------------------------------------------------------

    def latest_telemetry(self) -> Optional[TelemetrySample]:
        return self._telemetry.latest()

    def telemetry_stale(self) -> bool:
        return self._telemetry.is_stale()

    def workers(self) -> Sequence[WorkerThread]:
        return self._telemetry.workers()

    def power_modes(self) -> Sequence[PowerMode]:
        return self._nvpmodel.conf().power_modes

    def throttle_trips_c(self) -> Mapping[str, float]:
        """Read from the thermal zones' trip points once (they are fixed by the device tree)."""
        if self._trips_c is None:
            zones = SysfsTelemetry(self._tree, self._clock).thermal_zones()
            self._trips_c = throttle_trips_c((z.name, [(t.type, t.temp_c) for t in z.trips]) for z in zones)
        return self._trips_c

    def current_mode(self) -> PowerMode:
        """The current nvpmodel mode, re-queried when the cached answer is older than MODE_CACHE_S."""
        if self._mode is None or self._clock.monotonic() - self._mode_read_at_s >= MODE_CACHE_S:
            return self._refresh_mode()
        return self._mode

    def _refresh_mode(self) -> PowerMode:
        self._mode = self._nvpmodel.query()
        self._mode_read_at_s = self._clock.monotonic()
        return self._mode

    def reachable_modes(self) -> List[PowerMode]:
        """Modes the current one can switch to without a reboot (itself included)."""
        return self._nvpmodel.reachable_without_reboot(self.current_mode())

    def gpu_freq_state(self) -> GpuFreqState:
        return self._require_gpu().state()

    def _require_gpu(self) -> GpuDevfreq:
        if self._gpu is None:
            raise ActuationError("no GPU devfreq node found under /sys/class/devfreq or the known paths")
        return self._gpu

    # -- actuations ---------------------------------------------------------------------------------

    def _check_knob(self, knob: str) -> None:
        reason = self._left_alone.get(knob)
        if reason is not None:
            raise ActuationError(f"{knob} left alone because {reason}")

    def _ensure_baseline(self) -> None:
        """Record the board as found before the first write (first baseline wins, see BaselineJournal)."""
        if self._baseline is not None:
            return
        mode = self._nvpmodel.query()
        state = self._gpu.state() if self._gpu is not None else None
        if state is not None and state.pinned and self._gpu_limits_set is None:
            log.warning(
                "GPU clocks are pinned (min = max = %s, jetson_clocks?): recorded as found and restored so, "
                "but the daemon does not own them and will not cap them",
                _mhz(state.max_hz),
            )
        baseline = Baseline(
            board=self._board.model if self._board is not None else self.description,
            mode_name=mode.name,
            mode_id=mode.id,
            gpu_devfreq_dir=self._gpu.path if self._gpu is not None else None,
            gpu_min_hz=state.min_hz if state is not None else None,
            gpu_max_hz=state.max_hz if state is not None else None,
            recorded_at=self._clock.time(),
            pid=os.getpid(),
            gpu_pinned=bool(state is not None and state.pinned),
        )
        if not self._journal.record(baseline):
            # Only reachable when a journal appeared after start() (another tool wrote it): keep the older.
            kept = self._journal.load()
            baseline = kept if kept is not None else baseline
        self._baseline = baseline

    def set_mode(self, name: str) -> PowerMode:
        with self._actuating():
            return self._set_mode(name)

    def _set_mode(self, name: str) -> PowerMode:
        self._check_knob(KNOB_POWER_MODE)
        target = self._nvpmodel.target(name).power_mode
        current = self._refresh_mode()
        if current.id == target.id:
            return current
        reason = reboot_reason(current, target)
        if reason is not None:
            raise RebootRequiredError(reason)
        self._ensure_baseline()
        try:
            now = self._journalled_switch(target, current)
        finally:
            self._mode = None  # whatever happened, ask the board next time
        self._mode, self._mode_read_at_s = now, self._clock.monotonic()
        if self._gpu is not None:
            # nvpmodel rewrote the devfreq limits (the mode's GPU MIN_FREQ/MAX_FREQ): that state is now
            # the one the daemon caused, so it is ours to change.
            state = self._gpu.state()
            self._gpu_limits_set = (state.min_hz, state.max_hz)
        log.info("power mode %s → %s", current.name, now.name)
        return now

    def _journalled_switch(self, target: PowerMode, current: PowerMode) -> PowerMode:
        """`nvpmodel -m` with the switch recorded in the journal from before the child starts until after it
        ended, so a daemon killed meanwhile leaves a trace `restore` can act on (baseline.py)."""
        baseline = self._baseline
        assert baseline is not None  # _ensure_baseline ran
        record = SwitchRecord(target_id=target.id, target_name=target.name,
                              argv=Nvpmodel.switch_argv(target.id), started_at=self._clock.time(),
                              timeout_s=self._nvpmodel.timeout_s)
        self._journal.update(dataclasses.replace(baseline, switch=record))

        def started(child: ChildProcess) -> None:
            with_pid = dataclasses.replace(record, pid=child.pid, start_ticks=child.start_ticks)
            self._journal.update(dataclasses.replace(baseline, switch=with_pid))

        try:
            return self._nvpmodel.set_mode(target.name, current=current, on_start=started)
        finally:
            # The runner returns only once the child has ended: nothing of this switch can land any more.
            self._journal.update(dataclasses.replace(baseline, switch=None))

    def set_gpu_cap_hz(self, cap_hz: Optional[int]) -> int:
        with self._actuating():
            return self._set_gpu_cap_hz(cap_hz)

    def _set_gpu_cap_hz(self, cap_hz: Optional[int]) -> int:
        self._check_knob(KNOB_GPU_FREQ)
        gpu = self._require_gpu()
        state = gpu.state()
        ours = self._gpu_limits_set == (state.min_hz, state.max_hz)
        if state.pinned and not ours:
            raise ActuationError(
                f"clocks are pinned (jetson_clocks?) at {_mhz(state.max_hz)} in {gpu.path}; "
                "the daemon does not own them. Run `jetson_clocks --restore` to hand them back"
            )
        self._ensure_baseline()
        mode = self.current_mode()
        applied = gpu.set_cap_hz(cap_hz, mode.gpu_max_freq_hz, force=True)
        after = gpu.state()
        self._gpu_limits_set = (after.min_hz, after.max_hz)
        return applied

    # -- description --------------------------------------------------------------------------------

    def facts(self) -> Dict[str, str]:
        facts: Dict[str, str] = {"board": self.description}
        if self._board is not None:
            facts["board"] = self._board.model
            facts["l4t"] = self._board.l4t_release or "unknown"
            if self._board.jetpack:
                facts["jetpack"] = self._board.jetpack
        try:
            mode = self.current_mode()
            facts["power_mode"] = f"{mode.name} (id {mode.id}, GPU cap {_mhz(mode.gpu_max_freq_hz)})"
        except JetvitError as exc:
            facts["power_mode"] = f"unknown ({exc})"
        if self._gpu is not None:
            try:
                st = self._gpu.state()
                facts["gpu_freq"] = (
                    f"{_mhz(st.available_hz[0])}–{_mhz(st.available_hz[-1])} in {len(st.available_hz)} steps, "
                    f"limits {_mhz(st.min_hz)}–{_mhz(st.max_hz)}"
                )
            except ActuationError as exc:
                facts["gpu_freq"] = f"unreadable ({exc})"
            facts["gpu_devfreq"] = self._gpu.path
        else:
            facts["gpu_freq"] = "no GPU devfreq node"
        for knob, reason in sorted(self._left_alone.items()):
            facts[f"left_alone_{knob}"] = reason
        if self.restore_report:
            facts["crash_restore"] = self.restore_report
        return facts


def _mode_dict(mode: PowerMode) -> Dict[str, Any]:
    return {
        "id": mode.id,
        "name": mode.name,
        "gpu_max_freq_hz": mode.gpu_max_freq_hz,
        "online_cores": mode.online_cores,
        "tpc_pg_mask": mode.tpc_pg_mask,
        "fbp_pg_mask": mode.fbp_pg_mask,
    }


def _sensors_report(tree: SysfsTree, gpu_dir: Optional[str], clock: Clock) -> Dict[str, Any]:
    sensors = SysfsTelemetry(tree, clock, gpu_devfreq_dir=gpu_dir)
    sample = sensors.read_once()
    return {
        "thermal_zones": [
            {
                "path": z.path,
                "type": z.type,
                "name": z.name,
                "temp_c": z.temp_c,
                "trips": [{"temp_c": t.temp_c, "type": t.type, "hyst_c": t.hyst_c} for t in z.trips],
            }
            for z in sensors.thermal_zones()
        ],
        "rails": [{"name": r.name, "layout": r.layout} for r in sensors.rails],
        "rails_w": dict(sample.rails_w),
        "board_power_w": sample.board_power_w,
        "gpu_load_pct": sample.gpu_load_pct,
        "gpu_load_path": sensors.gpu_load_path,
    }


def probe_report(
    tree: SysfsTree, runner: CommandRunner, timeout_s: float = 10.0, clock: Optional[Clock] = None
) -> Dict[str, Any]:
    """Everything `jetvit-daemon probe --json` shows. Changes nothing on the board. What could not be read
    is listed under "problems" rather than raised, so a half-working board still gets a report."""
    problems: List[str] = []
    board = detect_board(tree)
    report: Dict[str, Any] = {
        "jetson": board is not None,
        "board": None,
        "power_modes": [],
        "default_mode_id": None,
        "current_mode": None,
        "gpu": None,
        "sensors": None,
        "conflicts": [],
        "problems": problems,
    }
    if board is not None:
        report["board"] = {
            "model": board.model,
            "soc": board.soc,
            "l4t_release": board.l4t_release,
            "jetpack": board.jetpack,
            "compatible": list(board.compatible),
        }
    nvpmodel = Nvpmodel(runner, tree, timeout_s)
    current: Optional[PowerMode] = None
    try:
        conf = nvpmodel.conf()
        report["default_mode_id"] = conf.default_id
        try:
            current = nvpmodel.query()
            report["current_mode"] = _mode_dict(current)
        except ActuationError as exc:
            problems.append(f"current power mode unknown: {exc}")
        for mode in conf.power_modes:
            entry = _mode_dict(mode)
            entry["current"] = current is not None and mode.id == current.id
            entry["reachable_without_reboot"] = (
                None if current is None else mode.reboot_group() == current.reboot_group()
            )
            report["power_modes"].append(entry)
    except ConfigError as exc:
        problems.append(str(exc))
    gpu_dir = find_gpu_devfreq(tree)
    if gpu_dir is None:
        problems.append("no GPU devfreq node found")
    else:
        try:
            st = GpuDevfreq(tree, gpu_dir).state()
            report["gpu"] = {
                "devfreq_dir": gpu_dir,
                "available_hz": list(st.available_hz),
                "min_hz": st.min_hz,
                "max_hz": st.max_hz,
                "cur_hz": st.cur_hz,
                "pinned": st.pinned,
            }
        except ActuationError as exc:
            problems.append(str(exc))
    report["sensors"] = _sensors_report(tree, gpu_dir, clock if clock is not None else SystemClock())
    report["conflicts"] = [
        {"source": c.source, "knobs": list(c.knobs), "message": c.message} for c in detect_conflicts(tree, runner)
    ]
    return report
