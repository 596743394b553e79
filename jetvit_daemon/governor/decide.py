"""The governor's decision: a pure function of the policy, one observation and the memory carried from the last
tick. No I/O, no clock reads: everything it needs is in its arguments, so it is table-tested and the offline
simulator runs the very same code on a virtual clock.

Rules, most urgent first:
  stale telemetry for `after_s`   → the policy's safe state
  temperature ≥ critical          → the lowest state at once
  temperature ≥ hot               → step down, and hold (no step up) until below hot − hysteresis
  board power over the budget     → step down
  SLO at risk for `up_after_s`    → step up, if below warm and within the budget
  headroom for `down_after_s`     → step down (after `min_state_s` in the state)
"""

from dataclasses import dataclass, replace
from typing import Optional

from jetvit_daemon.governor.policy import Policy
from jetvit_daemon.hardware.base import TelemetrySample


@dataclass(frozen=True)
class PipelineView:
    """The pipeline figures the governor reads (a subset of PipelineStats, so tests need not build one)."""

    arrival_fps: float
    processed_fps: float
    dropped_fps: float
    queue_depth: int
    latency_p95_s: Optional[float]
    batch_size: int


@dataclass(frozen=True)
class Observation:
    now_s: float
    telemetry: Optional[TelemetrySample]
    telemetry_fresh: bool
    pipeline: PipelineView
    board_power_avg_w: Optional[float]  # over the policy's budget window


@dataclass(frozen=True)
class Memory:
    """What the governor carries from one tick to the next."""

    index: int
    entered_s: float
    hot_hold: bool = False
    up_since_s: Optional[float] = None
    down_since_s: Optional[float] = None
    stale_since_s: Optional[float] = None


@dataclass(frozen=True)
class Decision:
    index: int
    rule: str  # hold | stale | critical | hot | budget | slo | headroom
    reason: str
    memory: Memory

    def changed(self, previous_index: int) -> bool:
        return self.index != previous_index


def initial_memory(policy: Policy, now_s: float) -> Memory:
    return Memory(index=policy.start_index, entered_s=now_s)


def _move(policy: Policy, memory: Memory, index: int, rule: str, reason: str, now_s: float) -> Decision:
    new = replace(memory, index=index, entered_s=now_s, up_since_s=None, down_since_s=None)
    verb = "step up" if index > memory.index else "step down"
    text = f"{verb} {policy.ladder[memory.index].name} → {policy.ladder[index].name}: {reason}"
    return Decision(index=index, rule=rule, reason=text, memory=new)


def _hold(memory: Memory, reason: str) -> Decision:
    return Decision(index=memory.index, rule="hold", reason=reason, memory=memory)


def slo_at_risk(policy: Policy, p: PipelineView) -> Optional[str]:
    """Why the service-level objective is at risk, or None."""
    target_ms = policy.slo.latency_p95_ms
    if target_ms is not None and p.latency_p95_s is not None and p.latency_p95_s * 1000.0 > target_ms:
        return f"latency p95 {p.latency_p95_s * 1000.0:.0f} ms > target {target_ms:.0f} ms"
    if p.dropped_fps > 0:
        return f"dropping {p.dropped_fps:.1f} frames/s"
    if p.queue_depth > 2 * max(1, p.batch_size) and p.processed_fps < p.arrival_fps:
        return f"backlog of {p.queue_depth} frames growing ({p.arrival_fps:.1f} in, {p.processed_fps:.1f} out per s)"
    if policy.slo.min_fps is not None and p.arrival_fps >= policy.slo.min_fps > p.processed_fps:
        return f"processing {p.processed_fps:.1f} frames/s < minimum {policy.slo.min_fps:.1f}"
    return None


def has_headroom(policy: Policy, p: PipelineView) -> Optional[str]:
    """Why the current state is more than needed, or None."""
    if p.dropped_fps > 0 or p.queue_depth > max(1, p.batch_size):
        return None
    target_ms = policy.slo.latency_p95_ms
    if target_ms is not None:
        if p.latency_p95_s is None or p.latency_p95_s * 1000.0 > 0.5 * target_ms:
            return None
        return f"latency p95 {p.latency_p95_s * 1000.0:.0f} ms ≤ half the {target_ms:.0f} ms target, no backlog"
    return "no backlog, no drops"


def decide(policy: Policy, obs: Observation, memory: Memory) -> Decision:
    now = obs.now_s
    top = len(policy.ladder) - 1
    index = min(memory.index, top)  # a reloaded policy may have fewer states
    if index != memory.index:
        memory = replace(memory, index=index)
    in_state_s = now - memory.entered_s

    # Stale telemetry: without a temperature we cannot know we are safe.
    if not obs.telemetry_fresh or obs.telemetry is None:
        since = memory.stale_since_s if memory.stale_since_s is not None else now
        memory = replace(memory, stale_since_s=since, up_since_s=None, down_since_s=None)
        stale_for = now - since
        target = policy.stale_index
        if stale_for >= policy.stale_telemetry.after_s and index > target:
            return _move(policy, memory, target, "stale",
                         f"no fresh telemetry for {stale_for:.0f} s ≥ {policy.stale_telemetry.after_s:.0f} s",
                         now)
        return _hold(memory, f"telemetry stale for {stale_for:.0f} s")
    memory = replace(memory, stale_since_s=None)

    th = policy.thermal
    temp = obs.telemetry.temp_c(th.sensor)
    label = th.sensor
    if temp is not None:
        if temp >= th.critical_c:
            memory = replace(memory, hot_hold=True)
            if index > 0:
                return _move(policy, memory, 0, "critical",
                             f"{label} {temp:.1f} °C ≥ critical {th.critical_c:.0f} °C", now)
            return _hold(memory, f"{label} {temp:.1f} °C critical, already lowest")
        if temp >= th.hot_c:
            memory = replace(memory, hot_hold=True)
            if index > 0 and in_state_s >= policy.dwell.up_after_s:
                return _move(policy, memory, index - 1, "hot",
                             f"{label} {temp:.1f} °C ≥ hot {th.hot_c:.0f} °C", now)
            return _hold(memory, f"{label} {temp:.1f} °C hot")
        if memory.hot_hold and temp < th.hot_c - th.hysteresis_c:
            memory = replace(memory, hot_hold=False)

    budget = policy.power_budget.watts
    power = obs.board_power_avg_w
    if budget is not None and power is not None and power > budget:
        memory = replace(memory, up_since_s=None)
        if index > 0 and in_state_s >= policy.dwell.up_after_s:
            return _move(policy, memory, index - 1, "budget",
                         f"board power {power:.1f} W > budget {budget:.1f} W", now)
        return _hold(memory, "over the power budget")

    risk = slo_at_risk(policy, obs.pipeline)
    if risk is not None:
        since = memory.up_since_s if memory.up_since_s is not None else now
        memory = replace(memory, up_since_s=since, down_since_s=None)
        if index >= top:
            return _hold(memory, f"{risk}; already at the highest state")
        if memory.hot_hold:
            return _hold(memory, f"{risk}; holding below hot until {label} < {th.hot_c - th.hysteresis_c:.0f} °C")
        if temp is not None and temp >= th.warm_c:
            return _hold(memory, f"{risk}; {label} {temp:.1f} °C ≥ warm {th.warm_c:.0f} °C")
        if budget is not None and power is not None and power > 0.9 * budget:
            return _hold(memory, f"{risk}; power {power:.1f} W near the {budget:.1f} W budget")
        if now - since >= policy.dwell.up_after_s:
            return _move(policy, memory, index + 1, "slo", risk, now)
        return _hold(memory, risk)

    room = has_headroom(policy, obs.pipeline)
    if room is not None and index > 0:
        since = memory.down_since_s if memory.down_since_s is not None else now
        memory = replace(memory, down_since_s=since, up_since_s=None)
        if now - since >= policy.dwell.down_after_s and in_state_s >= policy.dwell.min_state_s:
            return _move(policy, memory, index - 1, "headroom", room, now)
        return _hold(memory, room)
    return _hold(replace(memory, up_since_s=None, down_since_s=None), "within targets")
