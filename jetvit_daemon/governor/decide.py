"""The governor's decision: a pure function of the policy, one observation and the memory carried from the last
tick. No I/O, no clock reads: everything it needs is in its arguments, so it is table-tested and the offline
simulator runs the very same code on a virtual clock.

Rules, most urgent first:
  stale telemetry for `after_s`   → the policy's safe state
  temperature ≥ the last resort   → the lowest state at once (the board's throttling trip − critical
                                    margin; no trips declared: critical_c)
  heading over the setpoint       → thermal PI control (rule_hot): the power allowed holds the sensor at a
                                    setpoint a margin below the first throttling trip (else hot_c); states
                                    over the allowance are above the ceiling: step down to it, at most once
                                    per TREND_S; no step up over it
  budget average over, or heading → step down to a state measured within the budget: the budget is an
  over it                           average over its window, so a state drawing more is left only when the
                                    window's projected average would pass the budget before a step down
                                    shows (BUDGET_REACT_S), and entered (rule_slo) when its projected
                                    average over a minimum stay stays within it: lulls pay for bursts
  SLO at risk for `up_after_s`    → step up, within the thermal ceiling and the budget: straight to the lowest state
                                    whose capacity (measured, else the larger of the clock-scaled capacity
                                    and the clock-scaled floors) covers demand × (1 + margin), demand taking
                                    the recent arrival rate, so a sharp rise is one move. Judged only on
                                    figures of the current state: the window's latency, drops and processed
                                    rate a window after the move (or after the backlog it inherited cleared),
                                    the recent rates (a backlog growing now) once they are its own
  headroom for `down_after_s`     → step down, only if the lower state's capacity (measured, else estimated
                                    as above) still covers demand × (1 + margin), demand taking the peak of
                                    the last PEAK_HOLD_S (after `min_state_s` in the state): no probe of a
                                    state the clock-scaled floor says cannot cope; measured states several
                                    at once after `down_measured_after_s`, estimated ones after
                                    `down_after_s`

What the governor learns per state (carried in `Memory.learned`): its capacity in frames/s (processed rate over
the share of time inference was busy, measured only while saturated, once the state has held for a stats
window), its floor (the same ratio at any load with inference busy ≥ FLOOR_MIN_BUSY: at least what the state
can do, so a short or light episode teaches something) and the board power in it. A lower state never seen
saturated is explored one rung at a time, slowly; one seen falling behind itself is marked "fell short" at
that demand and not probed again at it for `FELL_SHORT_TTL_S`.
"""

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Optional, Sequence, Tuple, Union

from jetvit_daemon.governor.policy import Policy
from jetvit_daemon.hardware.base import TelemetrySample

# Weight of a new measurement in a state's learned capacity and power (exponential moving average): a few
# ticks of a settled state dominate, one odd tick does not.
LEARN_WEIGHT = 0.2
# A state's power is learned once it has held this long: the board's rails settle within a second or two.
POWER_SETTLE_S = 3.0
# The thermal controller smooths the reading over TEMP_SMOOTH_S (Orin zones read in 1/32 °C steps, the Nano's
# in 0.5 °C) and its trend over TREND_S: long enough to be steady, short against the board's thermal time
# constant (τ = R·C, 2-3 minutes on the Orin dev kits, docs/SIMULATION.md), so a move shows in the trend
# within TREND_S. A thermal step down waits that long after a move: the temperature cannot have responded.
TEMP_SMOOTH_S = 5.0
TREND_S = 20.0
# The integral term corrects the proportional estimate by at most this many degrees' worth of power: enough
# for the estimate's bias, not so much that it winds up past a state the board cannot hold (then the
# temperature overshoots for as long as it takes to unwind).
INTEGRAL_BOUND_C = 3.0
# A "fell short" mark is trusted this long, then the state may be probed again: loads drift (cameras come and
# go, a scene gets busier), and a failed probe costs a few seconds of backlog, so one retry per five minutes is
# cheap next to staying a rung too high for the rest of the day.
FELL_SHORT_TTL_S = 300.0
# A capacity floor is learned once inference was busy this share of the window: a few batches already give
# frames per busy second (the ratio is exact per batch); below it the window may hold none of this state's.
FLOOR_MIN_BUSY = 0.05
# A step down shows in the budget window's average once the board's rails have settled in the lower state
# (POWER_SETTLE_S) and the next tick has read it: the budget rule looks this far ahead.
BUDGET_REACT_S = POWER_SETTLE_S + 1.0
# A state drawing more than the budget is entered only when leaving it could wait this share of the window: a
# shorter excursion costs two actuations for a few seconds of capacity.
BUDGET_STAY_SHARE = 0.5
# ... and not again within this long of the budget's last step down (or a window, if longer): an excursion is
# two actuations, and bursts come every minute or two (super-budget-bursty), so following each one would
# spend several times issue 14's 30 actuations per hour; one every 5 minutes spends at most 24.
BUDGET_EXCURSION_GAP_S = 300.0
# Headroom steps down only into a state that covers the highest demand of the last PEAK_HOLD_S, not only the
# demand now: cameras that come and go (`bursty`: each on ~60 s, off ~90 s) would otherwise be followed down
# at every lull and up again at the next burst, two moves a burst.
PEAK_HOLD_S = 120.0
# Power scaled by GPU clock from another state is off by up to 8 % on the simulated Orin Nano Super (full load
# in MAXN_SUPER, 20.4 W, scaled to the shipped ladder's 612-918 MHz states against their own: -3 % to +8 %;
# idle power does not scale, dynamic power scales faster than the clock): a state is skipped as over the
# budget on such an estimate only when it is over by more than 10 %.
ESTIMATE_SLACK = 1.1


@dataclass(frozen=True)
class PipelineView:
    """The pipeline figures the governor reads (a subset of PipelineStats, so tests need not build one)."""

    arrival_fps: float
    processed_fps: float
    dropped_fps: float
    queue_depth: int
    latency_p95_s: Optional[float]
    batch_size: int
    arrival_recent_fps: Optional[float] = None  # over the last `recent_s`
    busy_fraction: Optional[float] = None  # share of the window the inference stage was busy
    window_s: float = 10.0  # the window of the rates and percentiles above
    processed_recent_fps: Optional[float] = None  # over the last `recent_s`
    recent_s: float = 2.0  # the window of the recent rates (the pipeline's RECENT_S)

    @property
    def demand_fps(self) -> float:
        recent = self.arrival_recent_fps if self.arrival_recent_fps is not None else 0.0
        return max(self.arrival_fps, recent)

    @property
    def backlog(self) -> bool:
        """More than two batches waiting now."""
        return self.queue_depth > 2 * max(1, self.batch_size)

    def falling_behind(self) -> bool:
        """Fewer frames processed than arrived: over the last `recent_s` where known (a backlog that drains is
        no risk), else over the window against demand."""
        if self.processed_recent_fps is None:
            return self.processed_fps < self.demand_fps
        arrived = self.arrival_recent_fps if self.arrival_recent_fps is not None else self.arrival_fps
        return self.processed_recent_fps < arrived


@dataclass(frozen=True)
class Observation:
    now_s: float
    telemetry: Optional[TelemetrySample]
    telemetry_fresh: bool
    pipeline: PipelineView
    board_power_avg_w: Optional[float]  # over the policy's budget window
    # The readings that average is of, oldest first, as (monotonic s, W): which leave the window next, for
    # projecting it. Empty: unknown (the projection then takes the leaving ones at the average).
    board_power_samples: Tuple[Tuple[float, float], ...] = ()
    state_applied: bool = True  # the hardware has converged to the current state (learning is valid)
    # Each sensor's first throttling trip point (°C) as the board declares it (Platform.throttle_trips_c);
    # empty: unknown, the policy's fixed hot_c / critical_c stand in.
    throttle_trips_c: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Learned:
    capacity_fps: Optional[float] = None
    power_w: Optional[float] = None
    # The demand at which this state, not yet measured, was seen falling behind (a backlog growing while it was
    # the applied state): a probe that failed is not repeated until demand is clearly lower, or the mark expires.
    insufficient_fps: Optional[float] = None
    insufficient_s: Optional[float] = None  # when it was marked (None: no expiry known)
    # Processed frames per busy second at whatever load it had: at least what the state can do (batches that
    # do not fill cost more per frame), learned without saturation, so a short episode teaches something.
    floor_fps: Optional[float] = None


@dataclass(frozen=True)
class Heat:
    """The thermal controller's state (rule_thermal): the smoothed temperature and its trend, the integral
    term, and the power it allows this tick with the highest state within it (None: not limiting)."""

    at_s: Optional[float] = None
    temp_c: Optional[float] = None  # smoothed over TEMP_SMOOTH_S
    trend_c_per_s: float = 0.0  # of the smoothed temperature, over TREND_S
    integral_w: float = 0.0
    estimate_w: Optional[float] = None  # the proportional part, recomputed once the trend shows the state
    allowance_w: Optional[float] = None
    ceiling: Optional[int] = None


@dataclass(frozen=True)
class Memory:
    """What the governor carries from one tick to the next."""

    index: int
    entered_s: float
    heat: Heat = Heat()
    up_since_s: Optional[float] = None
    down_since_s: Optional[float] = None
    stale_since_s: Optional[float] = None
    learned: Tuple[Learned, ...] = ()
    # The state was entered with a backlog that has not cleared yet: the window's late frames are not its own.
    inherited_backlog: bool = False
    # When the inherited backlog cleared (None: there was none, the window is the state's from `entered_s`).
    own_window_from_s: Optional[float] = None
    # The highest demand (frames/s) since `peak_at_s`, held for PEAK_HOLD_S.
    peak_demand_fps: float = 0.0
    peak_at_s: Optional[float] = None
    # When the budget rule last stepped down: for BUDGET_EXCURSION_GAP_S after it no state over the budget is
    # entered again (the projected average that allowed the excursion has been spent).
    budget_down_s: Optional[float] = None


@dataclass(frozen=True)
class Decision:
    index: int
    rule: str  # hold | stale | critical | hot | budget | slo | headroom
    reason: str
    memory: Memory

    def changed(self, previous_index: int) -> bool:
        return self.index != previous_index


def initial_memory(policy: Policy, now_s: float) -> Memory:
    return Memory(index=policy.start_index, entered_s=now_s, learned=tuple(Learned() for _ in policy.ladder))


# Every rule a state change can name (Decision.rule of a move); "hold" is no change.
RULES = ("stale", "critical", "hot", "budget", "slo", "headroom")


def _move(policy: Policy, memory: Memory, index: int, rule: str, reason: str, now_s: float) -> Decision:
    new = replace(memory, index=index, entered_s=now_s, up_since_s=None, down_since_s=None, inherited_backlog=False,
                  own_window_from_s=None)
    verb = "step up" if index > memory.index else "step down"
    text = f"{verb} {policy.ladder[memory.index].name} → {policy.ladder[index].name}: {reason}"
    return Decision(index=index, rule=rule, reason=text, memory=new)


def _hold(memory: Memory, reason: str) -> Decision:
    return Decision(index=memory.index, rule="hold", reason=reason, memory=memory)


def _ewma(old: Optional[float], new: float) -> float:
    return new if old is None else old + LEARN_WEIGHT * (new - old)


def learn(policy: Policy, obs: Observation, memory: Memory) -> Memory:
    """Fold this tick's measurements of the current state into what the governor knows of it."""
    learned = list(memory.learned) + [Learned()] * (len(policy.ladder) - len(memory.learned))
    learned = learned[: len(policy.ladder)]
    in_state_s = obs.now_s - memory.entered_s
    if obs.state_applied:
        current = learned[memory.index]
        p = obs.pipeline
        busy = p.busy_fraction
        saturated = busy is not None and busy >= policy.capacity.min_busy and p.queue_depth >= p.batch_size
        own_window = in_state_s >= p.window_s
        if own_window and busy is not None and busy >= FLOOR_MIN_BUSY and p.processed_fps > 0:
            # Processed frames over the share of time spent processing: what the state would do at 100 % busy
            # with batches as full as now. Saturated, that is its capacity; otherwise a lower bound.
            rate = p.processed_fps / busy
            if saturated:
                current = replace(current, capacity_fps=_ewma(current.capacity_fps, rate))
            current = replace(current, floor_fps=_ewma(current.floor_fps, rate))
        power = obs.telemetry.board_power_w if obs.telemetry is not None else None
        if in_state_s >= POWER_SETTLE_S and power is not None:
            current = replace(current, power_w=_ewma(current.power_w, power))
        learned[memory.index] = current
    return replace(memory, learned=tuple(learned))


def note_backlog_cleared(obs: Observation, memory: Memory) -> Memory:
    """The backlog the state was entered with has cleared: its window becomes its own a window from now."""
    if memory.inherited_backlog and not obs.pipeline.backlog:
        return replace(memory, inherited_backlog=False, own_window_from_s=obs.now_s)
    return memory


def note_peak(obs: Observation, memory: Memory) -> Memory:
    """Hold the highest demand for PEAK_HOLD_S; then start over from the demand now."""
    demand = obs.pipeline.demand_fps
    expired = memory.peak_at_s is None or obs.now_s - memory.peak_at_s >= PEAK_HOLD_S
    if expired or demand >= memory.peak_demand_fps:
        return replace(memory, peak_demand_fps=demand, peak_at_s=obs.now_s)
    return memory


def window_is_own(obs: Observation, memory: Memory) -> bool:
    """The window's latency p95, drops and processed rate describe the current state alone: a whole window has
    passed since it was entered, or since the backlog it inherited cleared (until then the window holds the
    previous state's late frames, and the frames that waited through its backlog)."""
    if memory.inherited_backlog:
        return False
    start = memory.own_window_from_s if memory.own_window_from_s is not None else memory.entered_s
    return obs.now_s - start >= obs.pipeline.window_s


def slo_at_risk(policy: Policy, p: PipelineView, capacity_fps: Optional[float] = None, window_own: bool = True,
                recent_own: bool = True) -> Optional[str]:
    """Why the service-level objective is at risk, or None. `window_own`: the window's figures (latency p95,
    drops, processed rate) are the current state's; `recent_own`: so are the recent rates. Figures that still
    describe the previous state are not judged."""
    target_ms = policy.slo.latency_p95_ms
    if (window_own and target_ms is not None and p.latency_p95_s is not None
            and p.latency_p95_s * 1000.0 > target_ms):
        return f"latency p95 {p.latency_p95_s * 1000.0:.0f} ms > target {target_ms:.0f} ms"
    if window_own and p.dropped_fps > 0:
        return f"dropping {p.dropped_fps:.1f} frames/s"
    if recent_own and p.backlog and p.falling_behind():
        out = p.processed_recent_fps if p.processed_recent_fps is not None else p.processed_fps
        return f"backlog of {p.queue_depth} frames growing ({p.demand_fps:.1f} in, {out:.1f} out per s)"
    if window_own and policy.slo.min_fps is not None and p.arrival_fps >= policy.slo.min_fps > p.processed_fps:
        return f"processing {p.processed_fps:.1f} frames/s < minimum {policy.slo.min_fps:.1f}"
    near = policy.capacity.near_ratio
    if capacity_fps is not None and p.demand_fps >= near * capacity_fps:
        return (f"demand {p.demand_fps:.1f} frames/s ≥ {near:.0%} of this state's measured capacity "
                f"{capacity_fps:.1f}")
    return None


def has_headroom(policy: Policy, p: PipelineView) -> Optional[str]:
    """Why the current state looks like more than needed, or None."""
    if p.dropped_fps > 0 or p.queue_depth > max(1, p.batch_size):
        return None
    if p.demand_fps == 0 and p.queue_depth == 0:
        return "no frames arriving"
    target_ms = policy.slo.latency_p95_ms
    ratio = policy.capacity.headroom_latency_ratio
    if target_ms is not None:
        if p.latency_p95_s is None or p.latency_p95_s * 1000.0 > ratio * target_ms:
            return None
        return (f"latency p95 {p.latency_p95_s * 1000.0:.0f} ms ≤ {ratio:.0%} of the {target_ms:.0f} ms target, "
                "no backlog")
    return "no backlog, no drops"


def capacity_of(memory: Memory, j: int, state_freqs_hz: Optional[Sequence[float]]) -> Optional[float]:
    """State j's capacity: measured, or else the larger of the estimate scaled by GPU clock from the nearest
    measured state (inference time of a GPU-bound ViT goes as 1/f, docs/SIMULATION.md "Inference time") and
    its floor (`floor_of`); None when nothing is known."""
    measured = memory.learned[j].capacity_fps
    if measured is not None:
        return measured
    estimates = [floor_of(memory, j, state_freqs_hz)]
    known = [(abs(i - j), i) for i, lr in enumerate(memory.learned) if lr.capacity_fps is not None]
    if known and state_freqs_hz:
        ref = min(known)[1]
        ref_cap = memory.learned[ref].capacity_fps
        assert ref_cap is not None
        estimates.append(ref_cap * state_freqs_hz[j] / state_freqs_hz[ref])
    return max((e for e in estimates if e is not None), default=None)


def floor_of(memory: Memory, j: int, state_freqs_hz: Optional[Sequence[float]]) -> Optional[float]:
    """State j's floor: the largest of the states' floors, each scaled by GPU clock to j (scaled down, a lower
    bound still; scaled up, an estimate, which batches fuller than when it was learned tend to offset); without
    clocks, j's own only; None when there is none."""
    floors = [(i, lr.floor_fps) for i, lr in enumerate(memory.learned) if lr.floor_fps is not None]
    if not state_freqs_hz:
        floors = [(i, f) for i, f in floors if i == j]
        return floors[0][1] if floors else None
    return max((f * state_freqs_hz[j] / state_freqs_hz[i] for i, f in floors), default=None)


def projected_average_w(policy: Policy, obs: Observation, power_w: float, horizon_s: float) -> Optional[float]:
    """The budget window's average `horizon_s` from now if the board draws `power_w` meanwhile: the readings
    still in the window then, plus readings of `power_w` at the readings' spacing. Without the readings, those
    the window sheds meanwhile are taken at its average. None when no average is known."""
    average, samples = obs.board_power_avg_w, obs.board_power_samples
    if average is None:
        return None
    window_s = policy.power_budget.window_s
    spacing_s = (samples[-1][0] - samples[0][0]) / (len(samples) - 1) if len(samples) >= 2 else 0.0
    if spacing_s <= 0.0:
        return average + (power_w - average) * min(1.0, horizon_s / window_s)
    kept = [w for t, w in samples if t >= obs.now_s + horizon_s - window_s]
    coming = min(horizon_s, window_s) / spacing_s
    return (sum(kept) + coming * power_w) / (len(kept) + coming)


def _affordable(policy: Policy, obs: Observation, memory: Memory, j: int, share: float = 0.98) -> bool:
    """State j may be entered under the budget: its learned power is within `share` of it (or unknown), or
    the window's projected average over a stay of BUDGET_STAY_SHARE of the window is, and the budget rule
    has not stepped down within BUDGET_EXCURSION_GAP_S (or the last window)."""
    budget = policy.power_budget.watts
    power = memory.learned[j].power_w
    if budget is None or power is None or power <= share * budget:
        return True
    window_s = policy.power_budget.window_s
    gap_s = max(window_s, BUDGET_EXCURSION_GAP_S)
    if memory.budget_down_s is not None and obs.now_s - memory.budget_down_s < gap_s:
        return False
    ahead = projected_average_w(policy, obs, power, max(BUDGET_STAY_SHARE * window_s, BUDGET_REACT_S))
    return ahead is not None and ahead <= share * budget


def _step_up_target(policy: Policy, obs: Observation, memory: Memory,
                    state_freqs_hz: Optional[Sequence[float]]) -> int:
    """The lowest state above the current one whose (measured or clock-scaled) capacity covers demand ×
    (1 + margin); with nothing known, the next rung; never a state the budget cannot afford (`_affordable`)."""
    need = obs.pipeline.demand_fps * (1.0 + policy.capacity.margin)
    target = memory.index
    for j in range(memory.index + 1, len(policy.ladder)):
        if not _affordable(policy, obs, memory, j):
            break
        target = j
        # A state that fell short is not skipped here: skipping it measured worse in simulation (bursty: 22-24%
        # less energy than MAXN_SUPER against 27-28%, when marks never expired) than one more step up.
        cap = capacity_of(memory, j, state_freqs_hz)
        if cap is None or cap >= need:
            break
    return target


@dataclass(frozen=True)
class Tick:
    """What every rule reads this tick: the policy, the observation, the state clocks' inputs."""

    policy: Policy
    obs: Observation
    freqs: Optional[Sequence[float]]
    index: int  # the current state (clamped to the ladder)
    top: int
    in_state_s: float
    temp_c: Optional[float]  # the policy's sensor; None while telemetry is stale
    setpoint_c: float  # where the thermal controller holds temp_c
    critical_c: float  # the last resort: at or above, the lowest state at once


# A rule returns a Decision (it applies: the tick ends there) or the memory to hand to the next rule.
_Outcome = Union[Decision, Memory]


def make_tick(policy: Policy, obs: Observation, memory: Memory, freqs: Optional[Sequence[float]] = None) -> Tick:
    temp = obs.telemetry.temp_c(policy.thermal.sensor) if obs.telemetry is not None else None
    setpoint, critical = thermal_limits_c(policy, obs.throttle_trips_c)
    return Tick(policy=policy, obs=obs, freqs=freqs, index=min(memory.index, len(policy.ladder) - 1),
                top=len(policy.ladder) - 1, in_state_s=obs.now_s - memory.entered_s, temp_c=temp,
                setpoint_c=setpoint, critical_c=critical)


def thermal_limits_c(policy: Policy, trips_c: Mapping[str, float]) -> Tuple[float, float]:
    """(setpoint, last resort) in °C for the policy's sensor: margins below its first throttling trip (for
    `hottest`, the lowest trip of any zone: the hottest sensor may be one without a trip of its own), else
    the policy's fixed hot_c and critical_c."""
    th = policy.thermal
    if not trips_c:
        return th.hot_c, th.critical_c
    trip = trips_c.get(th.sensor.lower(), min(trips_c.values()))
    return trip - th.setpoint_margin_c, trip - th.critical_margin_c


def decide(policy: Policy, obs: Observation, memory: Memory,
           state_freqs_hz: Optional[Sequence[float]] = None) -> Decision:
    """`state_freqs_hz`: each ladder state's GPU clock limit on this board (its cap, else its mode's maximum,
    else the table's top), for estimating the capacity of states not measured yet; None: no estimates.

    The rules run in the module docstring's order; the first that returns a Decision wins."""
    index = min(memory.index, len(policy.ladder) - 1)  # a reloaded policy may have fewer states
    if index != memory.index:
        memory = replace(memory, index=index)
    memory = note_peak(obs, note_backlog_cleared(obs, learn(policy, obs, memory)))
    tick = make_tick(policy, obs, memory, state_freqs_hz)
    for rule in RULE_ORDER:
        outcome = rule(tick, memory)
        if isinstance(outcome, Decision):
            if outcome.index != memory.index and obs.pipeline.backlog:
                outcome = replace(outcome, memory=replace(outcome.memory, inherited_backlog=True))
            return outcome
        memory = outcome
    return _hold(replace(memory, up_since_s=None, down_since_s=None), "within targets")


def rule_stale(t: Tick, memory: Memory) -> _Outcome:
    """Stale telemetry, or fresh telemetry without the policy's sensor: without a temperature we cannot know we
    are safe. After `after_s`, the safe state."""
    obs, policy, now = t.obs, t.policy, t.obs.now_s
    sensor = policy.thermal.sensor
    sensor_missing = obs.telemetry_fresh and obs.telemetry is not None and t.temp_c is None
    if obs.telemetry_fresh and obs.telemetry is not None and not sensor_missing:
        return replace(memory, stale_since_s=None)
    since = memory.stale_since_s if memory.stale_since_s is not None else now
    memory = replace(memory, stale_since_s=since, up_since_s=None, down_since_s=None)
    stale_for = now - since
    target = policy.stale_index
    what = f"no {sensor} temperature in telemetry" if sensor_missing else "no fresh telemetry"
    if stale_for >= policy.stale_telemetry.after_s and t.index > target:
        return _move(policy, memory, target, "stale",
                     f"{what} for {stale_for:.0f} s ≥ {policy.stale_telemetry.after_s:.0f} s", now)
    return _hold(memory, f"{what} for {stale_for:.0f} s")


def rule_critical(t: Tick, memory: Memory) -> _Outcome:
    """At or above the last resort (`critical_margin_c` below the throttling trip, or `critical_c`): the lowest
    state at once, and the thermal controller's integral at its floor so that it climbs back slowly."""
    th, temp = t.policy.thermal, t.temp_c
    if temp is None or temp < t.critical_c:
        return memory
    floor_w = -th.k_p_w_per_c * INTEGRAL_BOUND_C
    memory = replace(memory, heat=replace(memory.heat, integral_w=floor_w, allowance_w=None, ceiling=0))
    if t.index > 0:
        return _move(t.policy, memory, 0, "critical",
                     f"{th.sensor} {temp:.1f} °C ≥ critical {t.critical_c:.0f} °C", t.obs.now_s)
    return _hold(memory, f"{th.sensor} {temp:.1f} °C critical, already lowest")


def rule_hot(t: Tick, memory: Memory) -> _Outcome:
    """Within `engage_c` of the setpoint: proportional-integral control of the power allowed (after the
    kernel's power_allocator governor). The excess is the temperature `trend_horizon_s` ahead at its trend
    over the setpoint; allowance = the current state's power − k_p × excess + integral (k_i × excess over
    time, bounded). Every state whose (learned or clock-scaled) power exceeds the allowance is above the
    ceiling: no step up into it (rule_slo), and the current state steps down to the highest within it, at
    most once per TREND_S (the temperature cannot have responded sooner)."""
    heat = track_heat(t, memory)
    memory = replace(memory, heat=heat)
    if heat.ceiling is None or t.index <= heat.ceiling:
        return memory
    why = f"{heat_text(t, heat)}: {t.policy.ladder[t.index].name} over it"
    if t.in_state_s < TREND_S:
        return _hold(memory, f"{why}; waiting for the trend to show this state")
    return _move(t.policy, memory, heat.ceiling, "hot", why, t.obs.now_s)


def heat_text(t: Tick, heat: Heat) -> str:
    """The thermal controller's reading, for reasons."""
    allowed = f"{heat.allowance_w:.1f} W allowed" if heat.allowance_w is not None else "no power known"
    return (f"{t.policy.thermal.sensor} {t.temp_c:.1f} °C, trend {heat.trend_c_per_s * 60:+.1f} °C/min, setpoint "
            f"{t.setpoint_c:.0f} °C: {allowed}")


def track_heat(t: Tick, memory: Memory) -> Heat:
    """This tick's thermal controller: smoothed temperature, trend, integral, allowance and ceiling."""
    th, now, temp, heat = t.policy.thermal, t.obs.now_s, t.temp_c, memory.heat
    if temp is None:
        return replace(heat, allowance_w=None, ceiling=None)
    if heat.at_s is None or heat.temp_c is None or now <= heat.at_s:
        return replace(heat, at_s=now, temp_c=temp, allowance_w=None, ceiling=None)
    dt = now - heat.at_s
    smooth = heat.temp_c + (temp - heat.temp_c) * min(1.0, dt / TEMP_SMOOTH_S)
    trend = heat.trend_c_per_s + ((smooth - heat.temp_c) / dt - heat.trend_c_per_s) * min(1.0, dt / TREND_S)
    heat = replace(heat, at_s=now, temp_c=smooth, trend_c_per_s=trend)
    excess = smooth - t.setpoint_c
    if excess < -th.engage_c:
        return replace(heat, integral_w=0.0, estimate_w=None, allowance_w=None, ceiling=None)
    settled = t.in_state_s >= TREND_S  # the trend shows this state, not the last
    reference = _state_power_w(t, memory)
    estimate = heat.estimate_w
    if reference is not None and (settled or estimate is None):
        # The power at which the temperature would settle at the setpoint, judged `trend_horizon_s` ahead.
        estimate = reference - th.k_p_w_per_c * (excess + th.trend_horizon_s * trend)
    if estimate is None:
        # No power known at all: a rung down while the prediction is over the setpoint, else no step up.
        ahead = excess + th.trend_horizon_s * trend
        return replace(heat, allowance_w=None, ceiling=max(0, t.index - 1) if ahead > 0 else t.index)
    bound = th.k_p_w_per_c * INTEGRAL_BOUND_C
    integral = heat.integral_w
    limited = heat.ceiling is not None and heat.ceiling <= t.index < t.top
    if excess > 0 or limited:  # wind up only while the allowance is what holds the state down
        integral = min(bound, max(-bound, integral - th.k_i_w_per_c_s * excess * dt))
    allowance = estimate + integral
    ceiling = _power_ceiling(t, memory, allowance)
    if not settled:
        ceiling = min(ceiling, t.index)  # no step up on the last state's trend
    return replace(heat, estimate_w=estimate, integral_w=integral, allowance_w=allowance, ceiling=ceiling)


def _state_power_w(t: Tick, memory: Memory) -> Optional[float]:
    """The current state's power: learned, else the reading now."""
    learned = memory.learned[t.index].power_w
    if learned is not None:
        return learned
    return t.obs.telemetry.board_power_w if t.obs.telemetry is not None else None


def power_of(memory: Memory, j: int, state_freqs_hz: Optional[Sequence[float]]) -> Optional[float]:
    """State j's board power: learned, or else scaled by GPU clock from the nearest learned state (an
    underestimate going up: power grows faster than the clock, and the state's own is learned within
    POWER_SETTLE_S of entering it); None when nothing is known."""
    learned = memory.learned[j].power_w
    if learned is not None or not state_freqs_hz:
        return learned
    known = [(abs(i - j), i) for i, lr in enumerate(memory.learned) if lr.power_w is not None]
    if not known:
        return None
    ref = min(known)[1]
    ref_w = memory.learned[ref].power_w
    assert ref_w is not None
    return ref_w * state_freqs_hz[j] / state_freqs_hz[ref]


def _power_ceiling(t: Tick, memory: Memory, allowance_w: float) -> int:
    """The highest state below the first (from the lowest up) whose power exceeds `allowance_w`; the current
    state is judged by the power `allowance_w` was computed from. At least the lowest state."""
    for j in range(t.index + 1):
        power = _state_power_w(t, memory) if j == t.index else power_of(memory, j, t.freqs)
        if power is not None and power > allowance_w:
            return max(0, j - 1)
    for j in range(t.index + 1, t.top + 1):
        power = power_of(memory, j, t.freqs)
        if power is None or power > allowance_w:
            return j - 1
    return t.top


def rule_budget(t: Tick, memory: Memory) -> _Outcome:
    """The budget window's average over `watts`, or heading over it within BUDGET_REACT_S in a state drawing
    more than the budget: step down to a state measured within the budget, judging the state entered by its
    own power once settled (the average lags). A state within the budget is never left for it: the average
    is falling."""
    policy, obs = t.policy, t.obs
    budget, average = policy.power_budget.watts, obs.board_power_avg_w
    if budget is None or average is None:
        return memory
    # The average lags, and a state's own power shows only after POWER_SETTLE_S in it: judge the state
    # entered by its own power once settled (the reading now: what it draws at this load; learned, it may
    # be of a lighter one), before that by what was learned of it, or a lagging average cascades down to the
    # lowest state.
    learned = memory.learned
    settled = t.in_state_s >= max(policy.dwell.up_after_s, POWER_SETTLE_S)
    now_w = obs.telemetry.board_power_w if obs.telemetry is not None else None
    state_power = learned[t.index].power_w
    if state_power is None or (settled and now_w is not None):
        state_power = now_w
    ahead = None if state_power is None else projected_average_w(policy, obs, state_power, BUDGET_REACT_S)
    if average <= budget and (ahead is None or ahead <= budget):
        return memory
    memory = replace(memory, up_since_s=None)
    if average > budget:
        why = f"board power {average:.1f} W (average) > budget {budget:.1f} W"
    else:
        why = (f"board power {average:.1f} W (average) heading over the {budget:.1f} W budget: "
               f"{ahead:.1f} W in {BUDGET_REACT_S:.0f} s at {state_power:.1f} W")
    if t.index > 0 and settled and (state_power is None or state_power > budget):
        target = t.index - 1
        while target > 0 and not _estimated_within(t, memory, target, budget):
            target -= 1
        moved = _move(policy, memory, target, "budget", why, obs.now_s)
        return replace(moved, memory=replace(moved.memory, budget_down_s=obs.now_s))
    if average <= budget:
        return _hold(memory, f"{why}, settling")
    return _hold(memory, f"board power {average:.1f} W over the {budget:.1f} W budget, settling")


def _estimated_within(t: Tick, memory: Memory, j: int, budget_w: float) -> bool:
    """State j's power is within the budget: learned, or clock-scaled (`power_of`) within it by more than the
    scaling's error (ESTIMATE_SLACK), or unknown. So a board started in its top state under a low budget skips
    the states clearly over it rather than trying one rung per settling time, over the budget all the while."""
    learned = memory.learned[j].power_w
    if learned is not None:
        return learned <= budget_w
    power = power_of(memory, j, t.freqs)
    return power is None or power <= ESTIMATE_SLACK * budget_w


def rule_slo(t: Tick, memory: Memory) -> _Outcome:
    """SLO at risk for `up_after_s`: step up, within the thermal ceiling and the budget, straight to the lowest state
    whose capacity covers demand × (1 + margin)."""
    policy, obs, index, now = t.policy, t.obs, t.index, t.obs.now_s
    p, learned = obs.pipeline, memory.learned
    risk = slo_at_risk(policy, p, learned[index].capacity_fps, window_own=window_is_own(obs, memory),
                       recent_own=t.in_state_s >= p.recent_s)
    if risk is None:
        return memory
    since = memory.up_since_s if memory.up_since_s is not None else now
    memory = replace(memory, up_since_s=since, down_since_s=None)
    if index >= t.top:
        return _hold(memory, f"{risk}; already at the highest state")
    ceiling = memory.heat.ceiling
    if ceiling is not None and ceiling <= index:
        return _hold(memory, f"{risk}; {heat_text(t, memory.heat)}")
    budget, power = policy.power_budget.watts, obs.board_power_avg_w
    if budget is not None and power is not None and power > 0.9 * budget and learned[index + 1].power_w is None:
        return _hold(memory, f"{risk}; power {power:.1f} W near the {budget:.1f} W budget and "
                             f"{policy.ladder[index + 1].name} not measured yet")
    target = _step_up_target(policy, obs, memory, t.freqs)
    if ceiling is not None:
        target = min(target, ceiling)
    if target == index:
        return _hold(memory, f"{risk}; the next state is measured over the {budget} W budget")
    if now - since < policy.dwell.up_after_s:
        return _hold(memory, risk)
    if learned[index].capacity_fps is None and fell_behind_here(t):
        marked = list(learned)
        marked[index] = replace(learned[index], insufficient_fps=p.demand_fps, insufficient_s=now)
        memory = replace(memory, learned=tuple(marked))
    return _move(policy, memory, target, "slo", risk, now)


def fell_behind_here(t: Tick) -> bool:
    """The current state itself is falling behind: applied, held long enough that the recent rates are its own,
    and a backlog growing now (processed < arrived). Only such a state is marked "fell short"; one the governor
    passes through on its way up, or leaves for latency alone, is not."""
    p = t.obs.pipeline
    return t.obs.state_applied and t.in_state_s >= p.recent_s and p.backlog and p.falling_behind()


def rule_headroom(t: Tick, memory: Memory) -> _Outcome:
    """Headroom for `down_after_s` (or `down_measured_after_s` when measured): step down, only into a state whose
    capacity still covers demand × (1 + margin), after `min_state_s` in the state."""
    policy, p, index = t.policy, t.obs.pipeline, t.index
    room = has_headroom(policy, p)
    if room is None or index == 0:
        return memory
    demand = max(p.demand_fps, memory.peak_demand_fps)
    need = demand * (1.0 + policy.capacity.margin)
    veto = _step_down_veto(t, memory, need, demand)
    if veto is not None:
        return _hold(replace(memory, up_since_s=None, down_since_s=None), veto)
    now = t.obs.now_s
    since = memory.down_since_s if memory.down_since_s is not None else now
    memory = replace(memory, down_since_s=since, up_since_s=None)
    if t.in_state_s < policy.dwell.min_state_s:
        return _hold(memory, room)
    waited_s = now - since
    if demand == 0 and p.queue_depth == 0:
        # Nothing to serve: any state covers it, measured or not.
        if waited_s >= policy.dwell.down_measured_after_s:
            return _move(policy, memory, 0, "headroom", f"{room}: the lowest state serves nothing as well", now)
        return _hold(memory, room)
    learned = memory.learned
    if learned[index - 1].capacity_fps is not None:
        # Measured: go straight to the lowest state measured to cover the need, without the long wait.
        if waited_s < policy.dwell.down_measured_after_s:
            return _hold(memory, room)
        target = _measured_step_down_target(memory, index, need)
        cap = learned[target].capacity_fps
        assert cap is not None
        return _move(policy, memory, target, "headroom",
                     f"{room}; {policy.ladder[target].name} measured {cap:.0f} frames/s ≥ {need:.0f} needed", now)
    if waited_s >= policy.dwell.down_after_s:
        target = _estimated_step_down_target(t, memory, need)
        if target == index - 1:
            return _move(policy, memory, target, "headroom", f"{room}; trying the lower state", now)
        cap = capacity_of(memory, target, t.freqs)
        assert cap is not None
        return _move(policy, memory, target, "headroom",
                     f"{room}; {policy.ladder[target].name} estimated {cap:.0f} frames/s ≥ {need:.0f} needed", now)
    return _hold(memory, room)


def _step_down_veto(t: Tick, memory: Memory, need: float, demand: float) -> Optional[str]:
    """Why the next lower state must not be entered at this demand (the demand now, or the held peak when
    higher), or None."""
    policy, p, lower = t.policy, t.obs.pipeline, t.index - 1
    learned = memory.learned[lower]
    margin = 1 + policy.capacity.margin
    what = (f"demand {demand:.0f}" if demand <= p.demand_fps
            else f"peak demand {demand:.0f} in the last {PEAK_HOLD_S:.0f} s")
    estimate = capacity_of(memory, lower, t.freqs)
    if estimate is not None and estimate < need:
        how = "measured" if learned.capacity_fps is not None else "estimated"
        return (f"{policy.ladder[lower].name} {how} {estimate:.0f} frames/s < {need:.0f} needed "
                f"({what} × {margin:.2f})")
    failed_at = fell_short_at(learned, t.obs.now_s)
    if learned.capacity_fps is None and failed_at is not None and need > failed_at:
        return (f"{policy.ladder[lower].name} fell short at {failed_at:.0f} frames/s; {what} × "
                f"{margin:.2f} is not clearly lower")
    return None


def fell_short_at(learned: Learned, now_s: float) -> Optional[float]:
    """The demand at which the state was seen falling behind, while the mark is trusted (FELL_SHORT_TTL_S;
    a mark without a time never expires); None: no such mark."""
    at_s = learned.insufficient_s
    if at_s is not None and now_s - at_s >= FELL_SHORT_TTL_S:
        return None
    return learned.insufficient_fps


def _estimated_step_down_target(t: Tick, memory: Memory, need: float) -> int:
    """The lowest state reached from the current one − 1 through consecutive lower states whose estimated
    capacity (`capacity_of`) covers `need` and that have no fresh "fell short" mark at it: one move where
    probing rung by rung would be one actuation per rung and `down_after_s` each."""
    target = t.index - 1
    while target > 0:
        below = target - 1
        cap = capacity_of(memory, below, t.freqs)
        marked = fell_short_at(memory.learned[below], t.obs.now_s)
        if cap is None or cap < need or (marked is not None and need > marked):
            break
        target = below
    return target


def _measured_step_down_target(memory: Memory, index: int, need: float) -> int:
    """The lowest state reached from `index` − 1 through consecutive measured states that each cover `need`."""
    target = index - 1
    while target > 0:
        below = memory.learned[target - 1].capacity_fps
        if below is None or below < need:
            break
        target -= 1
    return target


RULE_ORDER: Tuple[Callable[[Tick, Memory], _Outcome], ...] = (
    rule_stale, rule_critical, rule_hot, rule_budget, rule_slo, rule_headroom)
