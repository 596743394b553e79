"""The governor's control loop: every tick, observe (telemetry + pipeline), `decide()`, and apply the chosen
ladder state through the `Platform` (power mode, GPU cap) and the pipeline (batch size).

Actuation is verified by the platform (read back after each write); a failure is counted, logged with its
reason and retried with exponential backoff, not every tick. Every change is logged with its reason and
reported to `events`.

An applied state is re-read every VERIFY_EVERY_TICKS ticks: the kernel, a BPMP reset or a human (`nvpmodel -m`,
`jetson_clocks`) may change the power mode or the GPU cap behind the governor's back. A difference is logged,
reported as an external change (per knob), shown as the truth (status, metrics) and handled as
`hardware.on_conflict` says: `refuse` (the default) re-applies it, with its own exponential backoff so a board
that keeps reverting is not written every tick; `leave_alone` stops writing that knob for the rest of the run
(its value is then whatever the board reads; the other knobs are still governed).
"""

import collections
import logging
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Protocol, Tuple

from jetvit_daemon.clock import Clock
from jetvit_daemon.errors import ActuationError, ConfigError, RebootRequiredError
from jetvit_daemon.governor.decide import (
    Decision,
    Learned,
    Memory,
    Observation,
    PipelineView,
    decide,
    initial_memory,
)
from jetvit_daemon.governor.policy import LadderState, Policy
from jetvit_daemon.hardware.base import Platform
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger(__name__)

# Re-read the applied state every this many ticks (5 s at the default 1 s interval): cheap (one sysfs read,
# the platform's cached mode query) and soon enough to stop reporting a cap the board no longer has.
VERIFY_EVERY_TICKS = 5
# The knobs the governor writes, in the order it writes them (nvpmodel rewrites the GPU limits).
KNOB_POWER_MODE = "power_mode"
KNOB_GPU_CAP = "gpu_cap"
ON_EXTERNAL_CHANGE = ("refuse", "leave_alone")  # hardware.on_conflict: re-apply, or leave the knob alone


class GovernorEvents(Protocol):
    """Where the governor reports what it does (the service turns these into metrics)."""

    def decision(self, rule: str, from_state: str, to_state: str, reason: str) -> None: ...

    def actuation(self, knob: str, result: str) -> None: ...

    def applied(self, state: LadderState, index: int, mode: str, gpu_cap_hz: Optional[int], batch: int) -> None: ...

    def external_change(self, knob: str, mode: str, gpu_cap_hz: int) -> None:
        """`knob` ("power_mode" or "gpu_cap") was found changed; `mode` and `gpu_cap_hz` are what the board
        reads now."""
        ...


class NullEvents:
    def decision(self, rule: str, from_state: str, to_state: str, reason: str) -> None:
        pass

    def actuation(self, knob: str, result: str) -> None:
        pass

    def applied(self, state: LadderState, index: int, mode: str, gpu_cap_hz: Optional[int], batch: int) -> None:
        pass

    def external_change(self, knob: str, mode: str, gpu_cap_hz: int) -> None:
        pass


@dataclass(frozen=True)
class Applied:
    """The ladder state last applied in full, as the hardware confirmed it."""

    index: int
    mode: str
    gpu_cap_hz: int
    batch_size: int


class Governor:
    """Owns the control loop (run its `body` in a WorkerThread). `set_policy` and `status` are thread-safe;
    everything else runs on the governor's own thread."""

    def __init__(
        self,
        platform: Platform,
        policy: Policy,
        pipeline_view: Callable[[], PipelineView],
        set_batching: Callable[[int, Optional[float]], int],
        clock: Clock,
        events: Optional[GovernorEvents] = None,
        backoff_initial_s: float = 2.0,
        backoff_max_s: float = 60.0,
        on_conflict: str = "refuse",
    ) -> None:
        if on_conflict not in ON_EXTERNAL_CHANGE:
            raise ConfigError(f"on_conflict must be one of {', '.join(ON_EXTERNAL_CHANGE)}, got {on_conflict!r}")
        self._platform = platform
        self._on_conflict = on_conflict
        self._pipeline_view = pipeline_view
        self._set_batching = set_batching
        self._clock = clock
        self._events: GovernorEvents = events or NullEvents()
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._lock = threading.Lock()
        self._policy = policy
        self._memory: Memory = initial_memory(policy, clock.monotonic())
        self._applied: Optional[Applied] = None
        self._next_attempt_s = 0.0
        self._backoff_s = backoff_initial_s
        self._failures = 0
        self._last_error: Optional[str] = None
        self._last_decision: Optional[Decision] = None
        self._power: Deque[Tuple[float, float]] = collections.deque()
        self._freqs_for: Optional[Policy] = None
        self._freqs: Optional[List[float]] = None
        self._trips_c: Optional[Mapping[str, float]] = None  # the board's throttling trips, read once
        # What the board read back at the last check (mode, GPU cap): the truth status reports.
        self._board_reads: Optional[Tuple[str, int]] = None
        self._ticks_since_check = 0
        self._external_changes = 0
        self._external_backoff_s = backoff_initial_s
        # Knobs changed behind the governor's back under on_conflict: leave_alone → what was seen; never written
        # again this run (only this thread changes it; status() copies it under the lock).
        self._left_alone: Dict[str, str] = {}

    # -- thread-safe API -----------------------------------------------------------------------------------
    def set_policy(self, policy: Policy) -> None:
        """Swap the policy; the next tick uses it. The current state is kept if the new ladder has it, and so
        is what is still true: since when telemetry is stale (a reload never delays the safe state), the hot
        hold, and what was learned of each state the new ladder keeps unchanged (same name and settings)."""
        with self._lock:
            self._policy, self._memory = policy, carry_memory(self._policy, self._memory, policy)
            self._applied = None  # the state of the same name may differ: re-apply it
            self._next_attempt_s = 0.0

    @property
    def policy(self) -> Policy:
        with self._lock:
            return self._policy

    def status(self) -> Dict[str, Any]:
        with self._lock:
            policy, memory, applied = self._policy, self._memory, self._applied
            decision, error, failures = self._last_decision, self._last_error, self._failures
            reads, external = self._board_reads, self._external_changes
            left_alone = dict(self._left_alone)
        mode = reads[0] if reads is not None else None
        cap_hz = reads[1] if reads is not None else None
        return {
            "state": policy.ladder[memory.index].name,
            "state_index": memory.index,
            "applied_state": policy.ladder[applied.index].name if applied and applied.index < len(policy.ladder)
            else None,
            # As the board reads back (not as last written): they differ after an external change.
            "mode": mode,
            "gpu_cap_hz": cap_hz,
            "batch_size": applied.batch_size if applied else None,
            "external_changes": external,
            "left_alone": left_alone,
            "last_reason": decision.reason if decision else None,
            "actuation_failures": failures,
            "last_error": error,
        }

    def _state_freqs(self, policy: Policy) -> Optional[List[float]]:
        """Each ladder state's GPU clock limit on this board, for capacity estimates (cached per policy)."""
        if self._freqs_for is policy:
            return self._freqs
        try:
            modes = {m.name: m for m in self._platform.power_modes()}
            top_hz = max(self._platform.gpu_freq_state().available_hz)
        except Exception as exc:  # a board that cannot say: decide without estimates
            log.warning("no GPU frequency facts for capacity estimates: %s", exc)
            freqs: Optional[List[float]] = None
        else:
            freqs = []
            for st in policy.ladder:
                mode = modes.get(st.mode)
                mode_max = mode.gpu_max_freq_hz if mode is not None and mode.gpu_max_freq_hz else top_hz
                freqs.append(float(min(st.gpu_cap_hz or mode_max, mode_max)))
        self._freqs_for, self._freqs = policy, freqs
        return freqs

    # -- the loop ------------------------------------------------------------------------------------------
    def body(self, worker: WorkerThread) -> None:
        while not worker.stop_event.is_set():
            worker.beat()
            try:
                self.tick()
            except Exception:  # one tick is the loop boundary: report and go on
                log.error("governor tick failed", exc_info=True)
                self._events.actuation("tick", "error")
            if worker.stop_event.wait(self.policy.interval_s):
                return

    def observe(self) -> Observation:
        now = self._clock.monotonic()
        sample = self._platform.fresh_telemetry()  # staleness as the telemetry source judges it
        fresh = sample is not None
        window_s = self._policy.power_budget.window_s
        is_new = sample is not None and (not self._power or self._power[-1][0] != sample.t_mono_s)
        if is_new and sample is not None and sample.board_power_w is not None:
            self._power.append((sample.t_mono_s, sample.board_power_w))
        while self._power and self._power[0][0] < now - window_s:
            self._power.popleft()
        avg = sum(p for _, p in self._power) / len(self._power) if self._power else None
        applied = self._applied is not None and self._applied.index == self._memory.index
        return Observation(
            now_s=now,
            telemetry=sample,
            telemetry_fresh=fresh,
            pipeline=self._pipeline_view(),
            board_power_avg_w=avg,
            board_power_samples=tuple(self._power),
            state_applied=applied,
            throttle_trips_c=self._throttle_trips_c(),
        )

    def _throttle_trips_c(self) -> Mapping[str, float]:
        """The board's throttling trip points (fixed by its device tree: read once). A board that cannot say:
        none, and the policy's fixed thresholds stand in."""
        if self._trips_c is None:
            try:
                self._trips_c = dict(self._platform.throttle_trips_c())
            except Exception as exc:
                log.warning("cannot read the board's thermal trip points (using the policy's hot_c/critical_c): "
                            "%s", exc)
                self._trips_c = {}
            if self._trips_c:
                log.info("thermal trip points: %s", ", ".join(f"{k} {v:g} °C" for k, v in sorted(
                    self._trips_c.items())))
        return self._trips_c

    def tick(self) -> Decision:
        obs = self.observe()
        with self._lock:
            policy, memory = self._policy, self._memory
        decision = decide(policy, obs, memory, self._state_freqs(policy))
        with self._lock:
            if self._policy is policy:  # a reload in between wins
                self._memory = decision.memory
                self._last_decision = decision
        if decision.changed(memory.index):
            from_name, to_name = policy.ladder[memory.index].name, policy.ladder[decision.index].name
            log.info("%s", decision.reason)
            self._events.decision(decision.rule, from_name, to_name, decision.reason)
        self._converge(policy, decision.index, obs.now_s)
        self._ticks_since_check += 1
        if self._applied is not None and self._ticks_since_check >= VERIFY_EVERY_TICKS:
            self._check_applied(obs.now_s)
        return decision

    def _check_applied(self, now_s: float) -> None:
        """Read the applied state back; a knob found changed is reported, then re-applied (with backoff) or,
        under on_conflict: leave_alone, left alone."""
        applied = self._applied
        assert applied is not None
        self._ticks_since_check = 0
        try:
            mode = self._platform.current_mode().name
            cap_hz = self._platform.gpu_freq_state().max_hz
        except ActuationError as exc:
            log.warning("cannot read the applied state back: %s", exc)
            self._events.actuation("verify", "error")
            return
        with self._lock:
            self._board_reads = (mode, cap_hz)
        changed = [knob for knob, same in ((KNOB_POWER_MODE, mode == applied.mode),
                                           (KNOB_GPU_CAP, cap_hz == applied.gpu_cap_hz))
                   if not same and knob not in self._left_alone]
        if not changed:
            self._external_backoff_s = self._backoff_initial_s
            self._applied = replace(applied, mode=mode, gpu_cap_hz=cap_hz)  # a left-alone knob's value as read
            return
        for knob in changed:
            self._events.external_change(knob, mode, cap_hz)
        with self._lock:
            self._external_changes += len(changed)
        seen = f"applied mode {applied.mode}, GPU cap {applied.gpu_cap_hz / 1e6:.0f} MHz; it reads mode {mode}, " \
               f"GPU cap {cap_hz / 1e6:.0f} MHz ({', '.join(changed)})"
        if self._on_conflict == "leave_alone":
            self._leave_alone(changed, seen)
            self._applied = replace(applied, mode=mode, gpu_cap_hz=cap_hz)
            return
        delay = self._external_backoff_s
        self._external_backoff_s = min(self._external_backoff_s * 2.0, self._backoff_max_s)
        with self._lock:
            self._applied = None  # re-apply, after the backoff
        self._next_attempt_s = now_s + delay
        log.warning("the board changed behind the governor: %s; re-applying in %.0f s (hardware.on_conflict: "
                    "refuse)", seen, delay)

    def _leave_alone(self, knobs: List[str], seen: str) -> None:
        with self._lock:
            for knob in knobs:
                self._left_alone[knob] = f"changed behind the governor: {seen}"
        log.warning("the board changed behind the governor: %s; leaving %s alone from now on (hardware.on_conflict: "
                    "leave_alone)", seen, " and ".join(knobs))

    def _converge(self, policy: Policy, index: int, now_s: float) -> None:
        if self._applied is not None and self._applied.index == index:
            return
        if now_s < self._next_attempt_s:
            return
        state = policy.ladder[index]
        try:
            self._applied = self._apply(index, state)
        except ActuationError as exc:
            self._applied = None  # partly applied, perhaps: re-read the hardware on the next attempt
            self._failures += 1
            self._last_error = str(exc)
            # A switch that needs a reboot will not succeed by retrying: wait the longest.
            delay = self._backoff_max_s if isinstance(exc, RebootRequiredError) else self._backoff_s
            self._next_attempt_s = now_s + delay
            self._backoff_s = min(self._backoff_s * 2.0, self._backoff_max_s)
            log.error("cannot apply state %s (retrying in %.0f s): %s", state.name, delay, exc)
            return
        self._backoff_s = self._backoff_initial_s
        self._last_error = None
        applied = self._applied
        with self._lock:
            self._board_reads = (applied.mode, applied.gpu_cap_hz)  # read back by the platform as written
        self._ticks_since_check = 0
        self._events.applied(state, index, applied.mode, applied.gpu_cap_hz, applied.batch_size)

    def _apply(self, index: int, state: LadderState) -> Applied:
        """Mode first (nvpmodel rewrites the GPU limits), then the GPU cap, then the batch size; a knob left
        alone is read, not written."""
        mode_name = self._apply_mode(state)
        cap_hz = self._apply_gpu_cap(state)
        batch = self._set_batching(state.batch_size, state.batch_wait_s)
        self._events.actuation("batch_size", "ok")
        return Applied(index=index, mode=mode_name, gpu_cap_hz=cap_hz, batch_size=batch)

    def _apply_mode(self, state: LadderState) -> str:
        if KNOB_POWER_MODE in self._left_alone:
            return self._platform.current_mode().name
        previous = self._applied
        mode_name = previous.mode if previous is not None else self._platform.current_mode().name
        if mode_name == state.mode:
            return mode_name
        try:
            mode_name = self._platform.set_mode(state.mode).name
        except ActuationError:
            self._events.actuation(KNOB_POWER_MODE, "error")
            raise
        self._events.actuation(KNOB_POWER_MODE, "ok")
        return mode_name

    def _apply_gpu_cap(self, state: LadderState) -> int:
        if KNOB_GPU_CAP in self._left_alone:
            return self._platform.gpu_freq_state().max_hz
        try:
            cap_hz = self._platform.set_gpu_cap_hz(state.gpu_cap_hz)
        except ActuationError:
            self._events.actuation(KNOB_GPU_CAP, "error")
            raise
        self._events.actuation(KNOB_GPU_CAP, "ok")
        return cap_hz


def carry_memory(old: Policy, memory: Memory, new: Policy) -> Memory:
    """The governor's memory under a new policy: the state of the same name (else the nearest index), the
    staleness timer, the hot hold and the dwell timers as they were, and the learned capacity and power of
    every state whose name and settings are unchanged (a changed state is a new state: learned afresh)."""
    old_name = old.ladder[min(memory.index, len(old.ladder) - 1)].name
    names = [s.name for s in new.ladder]
    index = names.index(old_name) if old_name in names else min(memory.index, len(names) - 1)
    before = {st.name: (st, memory.learned[i]) for i, st in enumerate(old.ladder) if i < len(memory.learned)}
    learned = []
    for st in new.ladder:
        kept = before.get(st.name)
        learned.append(kept[1] if kept is not None and kept[0] == st else Learned())
    same_state = index == memory.index and old_name in names
    return replace(memory, index=index, learned=tuple(learned),
                   up_since_s=memory.up_since_s if same_state else None,
                   down_since_s=memory.down_since_s if same_state else None)
