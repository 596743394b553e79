"""What the governor learns per ladder state (capacity, power) and how `decide()` uses it: table tests of each
rule and its edges, regression tests for known defects, and a property test that random traces through the
shipped policy do not flap."""

import random
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jetvit_daemon.governor.decide import (
    FELL_SHORT_TTL_S,
    LEARN_WEIGHT,
    PEAK_HOLD_S,
    POWER_SETTLE_S,
    TREND_S,
    Decision,
    Learned,
    Memory,
    Observation,
    PipelineView,
    capacity_of,
    decide,
    initial_memory,
    learn,
    projected_average_w,
)
from jetvit_daemon.governor.policy import DEFAULT_POLICY_FILE, Policy, load_policy, parse_policy
from jetvit_daemon.hardware.base import TelemetrySample

POLICY_TEXT = """\
version: 1
ladder:
  - {name: s0, mode: 15W, gpu_cap_mhz: 408, batch_size: 8}
  - {name: s1, mode: 15W, gpu_cap_mhz: max, batch_size: 8}
  - {name: s2, mode: 25W, gpu_cap_mhz: max, batch_size: 8}
  - {name: s3, mode: MAXN_SUPER, gpu_cap_mhz: max, batch_size: 8}
thermal: {sensor: tj, warm_c: 70, hot_c: 80, critical_c: 90, hysteresis_c: 5}
slo: {latency_p95_ms: 200}
power_budget: {watts: 12, window_s: 30}
dwell: {min_state_s: 10, up_after_s: 2, down_after_s: 30, down_measured_after_s: 5}
capacity: {margin: 0.25, near_ratio: 0.9, headroom_latency_ratio: 0.5, min_busy: 0.9}
"""
POLICY = parse_policy(POLICY_TEXT, "test")
# Each state's GPU clock limit as the loop computes it on the Orin Nano Super: 408 MHz cap, 15W's 612 MHz,
# 25W's 918 MHz, MAXN_SUPER uncapped (the table's top, 1020 MHz).
FREQS = [408e6, 612e6, 918e6, 1020e6]
NOW = 100.0


def view(demand: float = 30.0, *, latency_ms: Optional[float] = 150.0, processed: Optional[float] = None,
         queue: int = 0, busy: Optional[float] = None, dropped: float = 0.0, recent: Optional[float] = None,
         batch: int = 8, window_s: float = 10.0) -> PipelineView:
    return PipelineView(
        arrival_fps=demand, processed_fps=demand if processed is None else processed, dropped_fps=dropped,
        queue_depth=queue, latency_p95_s=None if latency_ms is None else latency_ms / 1000.0, batch_size=batch,
        arrival_recent_fps=recent, busy_fraction=busy, window_s=window_s)


CALM = view()  # 150 ms: under the 200 ms target, over the 100 ms headroom line
IDLE = view(40, latency_ms=50)  # headroom; needs 40 × 1.25 = 50 frames/s below
LATE = view(60, latency_ms=300)  # SLO at risk; needs 60 × 1.25 = 75 frames/s above
SATURATED = view(50, processed=45, busy=0.9, queue=8)  # 45 / 0.9 = 50 frames/s at 100 % busy


def obs(now: float = NOW, pipeline: PipelineView = CALM, *, tj: Optional[float] = 50.0,
        power_avg: Optional[float] = 8.0, power_now: Optional[float] = None, fresh: bool = True,
        applied: bool = True) -> Observation:
    sample = TelemetrySample(t_mono_s=now, temps_c={"tj": tj} if tj is not None else {}, board_power_w=power_now)
    return Observation(now_s=now, telemetry=sample if fresh else None, telemetry_fresh=fresh, pipeline=pipeline,
                       board_power_avg_w=power_avg, state_applied=applied)


def mem(index: int, *, entered: float = 0.0, caps: Sequence[Optional[float]] = (),
        powers: Sequence[Optional[float]] = (), n: int = 4, **kw) -> Memory:
    caps = [*caps, *[None] * (n - len(caps))]
    powers = [*powers, *[None] * (n - len(powers))]
    learned = tuple(Learned(capacity_fps=c, power_w=p) for c, p in zip(caps, powers))
    return Memory(index=index, entered_s=entered, learned=learned, **kw)


def caps_of(memory: Memory) -> List[Optional[float]]:
    return [lr.capacity_fps for lr in memory.learned]


def run(start: Union[Decision, Memory], *ticks: Tuple[float, PipelineView], policy: Policy = POLICY,
        **obs_kw) -> Decision:
    """Feed a few ticks through decide(); returns the last decision."""
    memory = start.memory if isinstance(start, Decision) else start
    decision = None
    for now, pipeline in ticks:
        decision = decide(policy, obs(now, pipeline, **obs_kw), memory, FREQS)
        memory = decision.memory
    assert decision is not None
    return decision


# -- learning ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, pipeline, in_state_s, applied, expected",
    [
        ("saturated and settled: processed over busy", SATURATED, 10.0, True, 50.0),
        ("busy just under min_busy: not saturated", replace(SATURATED, busy_fraction=0.89), 60.0, True, None),
        ("less than a full batch waiting: not saturated", replace(SATURATED, queue_depth=7), 60.0, True, None),
        ("exactly a full batch waiting counts", replace(SATURATED, queue_depth=8), 60.0, True, 50.0),
        ("busy fraction unknown", replace(SATURATED, busy_fraction=None), 60.0, True, None),
        ("nothing processed", replace(SATURATED, processed_fps=0.0, busy_fraction=0.95), 60.0, True, None),
        ("before a stats window in the state", SATURATED, 9.9, True, None),
        ("a short window (just after start) settles sooner", replace(SATURATED, window_s=4.0), 4.0, True, 50.0),
        ("the hardware has not converged to the state", SATURATED, 60.0, False, None),
    ],
)
def test_capacity_is_learned_only_when_saturated_and_settled(name, pipeline, in_state_s, applied, expected):
    before = mem(2, entered=NOW - in_state_s)
    after = learn(POLICY, obs(NOW, pipeline, applied=applied), before)
    assert caps_of(after) == [None, None, expected, None], name


def test_capacity_is_a_moving_average_of_measurements_in_the_current_state_only():
    before = mem(2, entered=0.0, caps=[None, 30.0, 100.0, 200.0])
    after = learn(POLICY, obs(NOW, SATURATED), before)
    assert LEARN_WEIGHT == 0.2
    assert caps_of(after) == [None, 30.0, pytest.approx(90.0), 200.0]  # 100 + 0.2 × (50 − 100)
    after = learn(POLICY, obs(NOW + 1, SATURATED), after)
    assert after.learned[2].capacity_fps == pytest.approx(82.0)


def test_decide_carries_what_it_learned_whatever_the_rule():
    # Stale telemetry: no power reading, but the pipeline's capacity figure is still valid.
    d = decide(POLICY, obs(NOW, SATURATED, fresh=False), mem(2, entered=0.0), FREQS)
    assert d.rule == "hold" and caps_of(d.memory)[2] == pytest.approx(50.0)
    # Critical: the move happens and what was measured in the state it leaves is kept.
    d = decide(POLICY, obs(NOW, SATURATED, tj=95), mem(2, entered=0.0), FREQS)
    assert d.rule == "critical" and caps_of(d.memory)[2] == pytest.approx(50.0)


@pytest.mark.parametrize(
    "name, in_state_s, power_now, applied, fresh, expected",
    [
        ("settled: the instantaneous board power", POWER_SETTLE_S, 11.0, True, True, 11.0),
        ("not settled yet", POWER_SETTLE_S - 0.1, 11.0, True, True, None),
        ("no power reading", 60.0, None, True, True, None),
        ("the hardware has not converged", 60.0, 11.0, False, True, None),
        ("stale telemetry", 60.0, 11.0, True, False, None),
    ],
)
def test_power_is_learned_once_the_state_settles(name, in_state_s, power_now, applied, fresh, expected):
    # The budget window's average (power_avg) lags across states: only the instantaneous reading is learned.
    before = mem(1, entered=NOW - in_state_s)
    after = learn(POLICY, obs(NOW, CALM, power_now=power_now, power_avg=20.0, applied=applied, fresh=fresh), before)
    assert [lr.power_w for lr in after.learned] == [None, expected, None, None], name


def test_power_is_a_moving_average_learned_even_when_not_saturated():
    before = mem(1, entered=0.0, powers=[None, 10.0])
    after = learn(POLICY, obs(NOW, view(5, busy=0.1), power_now=15.0), before)
    assert after.learned[1].power_w == pytest.approx(11.0)  # 10 + 0.2 × (15 − 10)
    assert after.learned[1].capacity_fps is None


def test_learned_is_resized_when_a_reloaded_policy_has_more_or_fewer_states():
    longer = parse_policy(POLICY_TEXT.replace(
        "batch_size: 8}\nthermal", "batch_size: 8}\n  - {name: s4, mode: MAXN_SUPER, batch_size: 16}\nthermal"),
        "test")
    d = decide(longer, obs(NOW), mem(1, caps=[10.0, 20.0, 30.0, 40.0]), [*FREQS, 1020e6])
    assert caps_of(d.memory) == [10.0, 20.0, 30.0, 40.0, None]
    shorter = POLICY.model_copy(update={"ladder": POLICY.ladder[:3]})
    d = decide(shorter, obs(NOW, SATURATED), mem(3, entered=0.0, caps=[10.0, 20.0, 30.0, 40.0]), FREQS[:3])
    assert d.index == 2
    # The state clamped to is the one measured now: 30 + 0.2 × (50 − 30).
    assert caps_of(d.memory) == [10.0, 20.0, pytest.approx(34.0)]


def test_initial_memory_has_one_empty_entry_per_state():
    m = initial_memory(POLICY, 5.0)
    assert (m.index, m.entered_s, m.learned) == (3, 5.0, (Learned(),) * 4)


# -- capacity_of -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, caps, freqs, j, expected",
    [
        ("measured: as measured, even with clocks", [None, 60.0, None, None], FREQS, 1, 60.0),
        ("unmeasured and no clocks: unknown", [None, 60.0, None, None], None, 2, None),
        ("nothing measured anywhere: unknown", [None, None, None, None], FREQS, 2, None),
        ("scaled up by clock from the nearest", [None, 60.0, None, None], FREQS, 3, 100.0),  # × 1020/612
        ("scaled down by clock", [None, 60.0, None, None], FREQS, 0, 40.0),  # × 408/612
        ("the nearest measured state, not the first", [40.0, None, None, 120.0], FREQS, 2, 108.0),  # × 918/1020
        ("nearest from below", [40.0, None, None, 120.0], FREQS, 1, 60.0),  # × 612/408
        ("equally near: the lower one", [30.0, None, 150.0, None], FREQS, 1, 45.0),  # × 612/408
    ],
)
def test_capacity_of(name, caps, freqs, j, expected):
    got = capacity_of(mem(0, caps=caps), j, freqs)
    assert got == (None if expected is None else pytest.approx(expected)), name


# -- stepping up -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, index, caps, powers, freqs, target",
    [
        ("measured: the lowest covering demand × 1.25", 0, [None, 50.0, 80.0, 120.0], [], None, 2),
        ("measured exactly the need is enough", 0, [None, 50.0, 75.0, 120.0], [], None, 2),
        ("none covers: as high as it goes", 0, [None, 50.0, 60.0, 70.0], [], None, 3),
        ("estimated by clock", 0, [40.0, None, None, None], [], FREQS, 2),  # s1 ≈ 60, s2 ≈ 90
        ("estimates need the clocks: one rung", 0, [40.0, None, None, None], [], None, 1),
        ("nothing known: one rung", 0, [None, None, None, None], [], FREQS, 1),
        ("an unknown state ends the jump", 0, [None, 50.0, None, 200.0], [], None, 2),
        ("from the middle", 1, [None, 30.0, 60.0, 90.0], [], None, 3),
    ],
)
def test_step_up_goes_straight_to_the_state_that_covers_demand(name, index, caps, powers, freqs, target):
    # Demand 60 frames/s, latency 300 ms > 200: at risk for 10 s (≥ up_after_s).
    d = decide(POLICY, obs(NOW, LATE), mem(index, caps=caps, powers=powers, up_since_s=90.0), freqs)
    assert (d.index, d.rule) == (target, "slo"), (name, d.reason)
    assert d.reason == f"step up s{index} → s{target}: latency p95 300 ms > target 200 ms"


# The budget is 12 W over a 30 s window; a state over 98 % of it (11.76 W) is entered only when the window's
# average, projected over a stay of half the window (15 s) in it, stays within 11.76 W.
@pytest.mark.parametrize(
    "name, power_avg, s2_power, budget_down_s, target",
    [
        ("within 98 % of the budget: entered whatever the average", 11.5, 11.7, None, 2),
        ("over it, the average high: not entered", 11.5, 12.5, None, 1),
        ("over 98 % counts as over", 11.75, 11.8, None, 1),
        ("over it, a lull's low average pays for it", 8.0, 12.5, None, 2),  # 8 + 4.5 / 2 = 10.25 W
        ("projected exactly at 98 % is affordable", 8.0, 15.52, None, 2),  # 8 + 7.52 / 2 = 11.76 W
        ("projected just over 98 % is not", 8.0, 15.6, None, 1),
        ("not again within BUDGET_EXCURSION_GAP_S of a budget step down", 8.0, 12.5, NOW - 299.0, 1),
        ("that long after it, again", 8.0, 12.5, NOW - 300.0, 2),
    ],
)
def test_step_up_into_a_state_over_the_budget_only_when_the_projected_average_allows(
        name, power_avg, s2_power, budget_down_s, target):
    memory = mem(0, caps=[None, 50.0, 80.0], powers=[None, 9.0, s2_power], up_since_s=90.0,
                 budget_down_s=budget_down_s)
    d = decide(POLICY, obs(NOW, LATE, power_avg=power_avg), memory, None)
    assert (d.index, d.rule) == (target, "slo"), (name, d.reason)


def test_step_up_holds_when_the_next_state_is_measured_over_the_budget():
    d = decide(POLICY, obs(NOW, LATE, power_avg=11.5), mem(1, powers=[None, 9.0, 12.5], up_since_s=90.0), FREQS)
    assert (d.index, d.rule) == (1, "hold")
    assert d.reason == "latency p95 300 ms > target 200 ms; the next state is measured over the 12.0 W budget"


@pytest.mark.parametrize(
    "name, power_avg, next_power, index, rule",
    [
        ("near the budget and the next state unmeasured: hold", 11.0, None, 1, "hold"),
        ("at 90 % of the budget exactly: not near", 10.8, None, 2, "slo"),
        ("near the budget, next state measured within it", 11.0, 11.0, 2, "slo"),
    ],
)
def test_near_the_budget_an_unmeasured_state_is_not_tried(name, power_avg, next_power, index, rule):
    d = decide(POLICY, obs(NOW, LATE, power_avg=power_avg), mem(1, powers=[None, 9.0, next_power], up_since_s=90.0))
    assert (d.index, d.rule) == (index, rule), (name, d.reason)
    if rule == "hold":
        assert d.reason == ("latency p95 300 ms > target 200 ms; power 11.0 W near the 12.0 W budget and s2 "
                            "not measured yet")


@pytest.mark.parametrize(
    "name, pipeline, caps, up_since, index, rule",
    [
        ("demand at near_ratio of the measured capacity", view(90), [None, 100.0], 90.0, 2, "slo"),
        ("just under near_ratio", view(89.9), [None, 100.0], 90.0, 1, "hold"),
        ("the recent arrival rate counts", view(50, recent=95), [None, 100.0], 90.0, 2, "slo"),
        ("not yet up_after_s", view(90), [None, 100.0], 99.0, 1, "hold"),
        ("the current state unmeasured: no early step", view(90), [None, None, None, 400.0], 90.0, 1, "hold"),
    ],
)
def test_demand_near_the_measured_capacity_is_an_slo_risk(name, pipeline, caps, up_since, index, rule):
    d = decide(POLICY, obs(NOW, pipeline), mem(1, caps=caps, up_since_s=up_since), FREQS)
    assert (d.index, d.rule) == (index, rule), (name, d.reason)


def test_near_ratio_reason_names_demand_share_and_capacity():
    d = decide(POLICY, obs(NOW, view(90)), mem(1, caps=[None, 100.0], up_since_s=90.0), FREQS)
    assert d.reason == ("step up s1 → s2: demand 90.0 frames/s ≥ 90% of this state's measured capacity 100.0")
    d = decide(POLICY, obs(NOW, view(90)), mem(1, caps=[None, 100.0]), FREQS)
    assert d.memory.up_since_s == NOW and d.rule == "hold"


# -- stepping down -----------------------------------------------------------------------------------------

MEASURED_BELOW = [40.0, 60.0, 90.0, None]  # demand 40 needs 50: s2 and s1 cover it, s0 does not


@pytest.mark.parametrize(
    "name, memory, index, rule",
    [
        ("measured: several states at once after down_measured_after_s",
         mem(3, caps=MEASURED_BELOW, down_since_s=94.0), 1, "headroom"),
        ("down_measured_after_s exactly", mem(3, caps=MEASURED_BELOW, down_since_s=95.0), 1, "headroom"),
        ("measured, but headroom only 4.5 s", mem(3, caps=MEASURED_BELOW, down_since_s=95.5), 3, "hold"),
        ("measured, but min_state_s not served", mem(3, entered=91.0, caps=MEASURED_BELOW, down_since_s=91.0),
         3, "hold"),
        ("all measured states cover: to the lowest", mem(3, caps=[60.0, 55.0, 90.0], down_since_s=90.0), 0, "headroom"),
        ("the jump stops at an unmeasured state", mem(3, caps=[60.0, None, 90.0], down_since_s=90.0), 2, "headroom"),
        ("unmeasured: one rung after down_after_s", mem(3, down_since_s=70.0), 2, "headroom"),
        ("unmeasured: not before down_after_s", mem(3, down_since_s=71.0), 3, "hold"),
        ("unmeasured: down_measured_after_s is not enough", mem(3, down_since_s=94.0), 3, "hold"),
        ("estimated to cover: still the slow wait", mem(3, caps=[None, None, None, 100.0], down_since_s=94.0),
         3, "hold"),
        # s3 measured 100 frames/s scales to s2 90, s1 60, s0 40 (FREQS): s1 is the lowest covering 50.
        ("estimated to cover: straight to the lowest estimated to cover, after down_after_s",
         mem(3, caps=[None, None, None, 100.0], down_since_s=70.0), 1, "headroom"),
        ("measured exactly demand × (1 + margin)", mem(3, caps=[None, None, 50.0], down_since_s=90.0), 2, "headroom"),
        ("measured just under demand × (1 + margin)", mem(3, caps=[None, None, 49.9], down_since_s=0.0), 3, "hold"),
    ],
)
def test_step_down_rules(name, memory, index, rule):
    d = decide(POLICY, obs(NOW, IDLE), memory, FREQS)
    assert (d.index, d.rule) == (index, rule), (name, d.reason)


@pytest.mark.parametrize(
    "name, peak_fps, peak_age_s, index, reason",
    [
        ("a peak held: the lower state must cover it", 90.0, 60.0, 3,
         "s2 measured 90 frames/s < 112 needed (peak demand 90 in the last 120 s × 1.25)"),
        ("the peak expires after PEAK_HOLD_S: the demand now rules", 90.0, PEAK_HOLD_S, 1,
         "step down s3 → s1: latency p95 50 ms ≤ 50% of the 200 ms target, no backlog; s1 measured 60 frames/s "
         "≥ 50 needed"),
        ("a peak under the demand now changes nothing", 30.0, 60.0, 1, None),
    ],
)
def test_headroom_covers_the_peak_demand_of_the_last_minutes(name, peak_fps, peak_age_s, index, reason):
    memory = mem(3, caps=MEASURED_BELOW, down_since_s=90.0, peak_demand_fps=peak_fps, peak_at_s=NOW - peak_age_s)
    d = decide(POLICY, obs(NOW, IDLE), memory, FREQS)
    assert d.index == index, (name, d.reason)
    if reason is not None:
        assert d.reason == reason


def test_the_peak_is_held_then_starts_over_from_the_demand_now():
    memory = mem(3, caps=MEASURED_BELOW)
    d = decide(POLICY, obs(NOW, view(90, latency_ms=50)), memory, FREQS)
    assert (d.memory.peak_demand_fps, d.memory.peak_at_s) == (90.0, NOW)
    d = decide(POLICY, obs(NOW + 60.0, IDLE), d.memory, FREQS)
    assert (d.memory.peak_demand_fps, d.memory.peak_at_s) == (90.0, NOW)  # 40 now: the peak is kept
    d = decide(POLICY, obs(NOW + PEAK_HOLD_S, IDLE), d.memory, FREQS)
    assert (d.memory.peak_demand_fps, d.memory.peak_at_s) == (40.0, NOW + PEAK_HOLD_S)


def test_step_down_reasons_name_the_target_capacity_and_need():
    d = decide(POLICY, obs(NOW, IDLE), mem(3, caps=MEASURED_BELOW, down_since_s=90.0), FREQS)
    assert d.reason == ("step down s3 → s1: latency p95 50 ms ≤ 50% of the 200 ms target, no backlog; "
                        "s1 measured 60 frames/s ≥ 50 needed")
    d = decide(POLICY, obs(NOW, IDLE), mem(3, down_since_s=70.0), FREQS)
    assert d.reason == ("step down s3 → s2: latency p95 50 ms ≤ 50% of the 200 ms target, no backlog; "
                        "trying the lower state")


@pytest.mark.parametrize(
    "name, caps, pipeline, reason",
    [
        ("measured", [None, None, 40.0], IDLE, "s2 measured 40 frames/s < 50 needed (demand 40 × 1.25)"),
        ("estimated by clock", [None, None, None, 60.0], view(48, latency_ms=50),
         "s2 estimated 54 frames/s < 60 needed (demand 48 × 1.25)"),  # 60 × 918/1020
    ],
)
def test_headroom_holds_when_the_lower_state_cannot_cover_demand(name, caps, pipeline, reason):
    d = decide(POLICY, obs(NOW, pipeline), mem(3, caps=caps, down_since_s=0.0, up_since_s=5.0), FREQS)
    assert (d.index, d.rule, d.reason) == (3, "hold", reason), name
    assert (d.memory.down_since_s, d.memory.up_since_s) == (None, None)  # the headroom clock starts over


def test_headroom_starts_its_clock_during_min_state_s():
    d = decide(POLICY, obs(NOW, IDLE), mem(3, entered=95.0, caps=MEASURED_BELOW), FREQS)
    assert (d.index, d.memory.down_since_s) == (3, NOW)
    d = run(d, (101.0, IDLE), (104.0, IDLE))
    assert d.index == 3  # headroom 4 s, 9 s in the state
    d = run(d, (105.0, IDLE))
    assert (d.index, d.rule) == (1, "headroom")  # 10 s in the state, headroom for 5 s


@pytest.mark.parametrize(
    "name, pipeline, headroom",
    [
        ("latency at headroom_latency_ratio of the target", view(40, latency_ms=100), True),
        ("latency just over it", view(40, latency_ms=101), False),
        ("no latency figure", view(40, latency_ms=None), False),
        ("more than a batch waiting", view(40, latency_ms=50, queue=9), False),
        ("a batch waiting is fine", view(40, latency_ms=50, queue=8), True),
        ("drops", view(40, latency_ms=50, dropped=0.5), False),
    ],
)
def test_what_counts_as_headroom(name, pipeline, headroom):
    d = decide(POLICY, obs(NOW, pipeline), mem(3, down_since_s=0.0), FREQS)
    assert (d.rule == "headroom") is headroom, (name, d.reason)


def test_without_a_latency_target_headroom_is_no_backlog_and_no_drops():
    policy = parse_policy(POLICY_TEXT.replace("slo: {latency_p95_ms: 200}", "slo: {latency_p95_ms: null}"), "t")
    d = decide(policy, obs(NOW, view(40, latency_ms=900)), mem(3, down_since_s=0.0), FREQS)
    assert d.reason == "step down s3 → s2: no backlog, no drops; trying the lower state"


# -- the power budget --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, memory, power_avg, power_now, index, rule",
    [
        ("down to the first state measured within the budget", mem(3, powers=[None, 11.0, 14.0]), 13.0, None, 1,
         "budget"),
        ("an unmeasured state is tried", mem(3, powers=[None, None, 14.0]), 13.0, None, 1, "budget"),
        ("the next state unmeasured", mem(3), 13.0, None, 2, "budget"),
        ("all measured over: the lowest", mem(3, powers=[13.0, 14.0, 14.0]), 13.0, None, 0, "budget"),
        ("the current state measured over the budget", mem(2, powers=[None, None, 12.5]), 13.0, None, 1, "budget"),
        ("the current state measured within: wait for the average", mem(2, powers=[None, None, 11.5]), 13.0, None,
         2, "hold"),
        ("measured exactly at the budget counts as within", mem(2, powers=[None, None, 12.0]), 13.0, None, 2,
         "hold"),
        ("not measured, but reading within the budget now", mem(2), 13.0, 11.0, 2, "hold"),
        ("not measured, reading over the budget now", mem(2), 13.0, 12.5, 1, "budget"),
        ("not before the entered state's power settles", mem(3, entered=NOW - POWER_SETTLE_S + 0.1), 13.0, None, 3,
         "hold"),
        ("once it has settled", mem(3, entered=NOW - POWER_SETTLE_S), 13.0, None, 2, "budget"),
        ("at the lowest state", mem(0), 13.0, None, 0, "hold"),
        ("the average at the budget is not over it", mem(3), 12.0, None, 3, "hold"),
    ],
)
def test_over_budget_rules(name, memory, power_avg, power_now, index, rule):
    d = decide(POLICY, obs(NOW, CALM, power_avg=power_avg, power_now=power_now), memory, FREQS)
    assert (d.index, d.rule) == (index, rule), (name, d.reason)


# BUDGET_REACT_S (4 s) of a 30 s window: the projection moves 4/30 of the way from the average to the power.
@pytest.mark.parametrize(
    "name, power_avg, s3_power, index, rule",
    [
        ("heading over: 11.5 + (16 - 11.5) × 4/30 = 12.1 W", 11.5, 16.0, 2, "budget"),
        ("not heading over yet: 11.0 + 5 × 4/30 = 11.67 W", 11.0, 16.0, 3, "hold"),
        ("a state within the budget is never left for it", 11.9, 12.0, 3, "hold"),
    ],
)
def test_the_budget_rule_steps_down_before_the_projected_average_passes_the_budget(
        name, power_avg, s3_power, index, rule):
    memory = mem(3, powers=[None, None, 9.0, s3_power])
    d = decide(POLICY, obs(NOW, CALM, power_avg=power_avg), memory, FREQS)
    assert (d.index, d.rule) == (index, rule), (name, d.reason)
    assert d.rule != "hold" or "budget" not in d.reason, d.reason


def test_heading_over_the_budget_says_so_and_blocks_a_return_for_a_while():
    d = decide(POLICY, obs(NOW, CALM, power_avg=11.5), mem(3, powers=[None, None, 9.0, 16.0]), FREQS)
    assert d.reason == ("step down s3 → s2: board power 11.5 W (average) heading over the 12.0 W budget: 12.1 W "
                        "in 4 s at 16.0 W")
    assert d.memory.budget_down_s == NOW
    # Still late, and a 6 W average would afford s3 (6 + (16 - 6) / 2 = 11 W ≤ 11.76), but not within
    # BUDGET_EXCURSION_GAP_S of the budget's step down.
    later = replace(d.memory, up_since_s=NOW + 10.0)
    d = decide(POLICY, obs(NOW + 290.0, LATE, power_avg=6.0), later, FREQS)
    assert (d.index, d.rule) == (2, "hold"), d.reason
    d = decide(POLICY, obs(NOW + 300.0, LATE, power_avg=6.0), replace(later, up_since_s=NOW + 295.0), FREQS)
    assert (d.index, d.rule) == (3, "slo"), d.reason


def _readings(*runs: Tuple[int, float]) -> Tuple[Tuple[float, float], ...]:
    """One reading a second up to NOW: (count, watts) runs, oldest first."""
    watts = [w for count, w in runs for _ in range(count)]
    return tuple((NOW - len(watts) + 1 + k, w) for k, w in enumerate(watts))


def test_the_projection_sheds_the_oldest_readings_first():
    # 10 s of a 6 W lull, then 20 s at 12 W: 10 W on average. 4 s at 16 W from now: the readings at NOW - 26 s
    # and older have left (3 of the lull's), 4 of 16 W have come: (7 × 6 + 20 × 12 + 4 × 16) / 31 W.
    o = replace(obs(NOW, CALM, power_avg=10.0), board_power_samples=_readings((10, 6.0), (20, 12.0)))
    assert projected_average_w(POLICY, o, 16.0, 4.0) == pytest.approx((7 * 6 + 20 * 12 + 4 * 16) / 31)
    # A horizon of a whole window or more: only readings of the new power remain.
    assert projected_average_w(POLICY, o, 16.0, 45.0) == pytest.approx(16.0)
    # Without the readings, the window sheds its average: 10 + (16 - 10) × 4 / 30.
    assert projected_average_w(POLICY, obs(NOW, CALM, power_avg=10.0), 16.0, 4.0) == pytest.approx(10.8)
    assert projected_average_w(POLICY, obs(NOW, CALM, power_avg=None), 16.0, 4.0) is None


def test_a_lull_leaving_the_window_is_seen_coming():
    # The window's oldest readings are a 2 W lull; the state draws 12.6 W, the average is 11.19 W. Taking the
    # shed readings at the average, 4 s ahead is 11.38 W; in fact the lull leaves: (2 + 26 × 12.6 + 4 × 12.6)
    # / 31 = 12.26 W > 12 W, so step down now.
    readings = _readings((4, 2.0), (26, 12.6))
    average = sum(w for _, w in readings) / len(readings)
    o = replace(obs(NOW, CALM, power_avg=average), board_power_samples=readings)
    d = decide(POLICY, o, mem(3, powers=[None, None, 9.0, 12.6]), FREQS)
    assert (d.index, d.rule) == (2, "budget"), d.reason
    assert "heading over the 12.0 W budget: 12.3 W in 4 s at 12.6 W" in d.reason


@pytest.mark.parametrize(
    "name, powers, target",
    [
        # s3 at 20 W scales to s2 18 W, s1 12 W, s0 8 W (FREQS): s2 is clearly over, s1 within 10 %.
        ("states clearly over on the clock-scaled estimate are skipped", [None, None, None, 20.0], 1),
        ("within the estimate's 10 % error: tried", [None, None, None, 22.0], 1),  # s1 13.2 W
        ("just beyond it: skipped", [None, None, None, 22.1], 0),
        ("a learned power is judged exactly", [None, 12.1, None, 20.0], 0),
    ],
)
def test_a_budget_step_down_skips_the_states_estimated_clearly_over_it(name, powers, target):
    d = decide(POLICY, obs(NOW, CALM, power_avg=15.0), mem(3, powers=powers), FREQS)
    assert (d.index, d.rule) == (target, "budget"), (name, d.reason)


def test_over_budget_judges_an_unlearned_state_by_its_reading_now():
    # The hardware has not converged (nothing is learned), but the latest reading is within the budget.
    o = replace(obs(NOW, CALM, power_avg=13.0, power_now=11.0), state_applied=False)
    d = decide(POLICY, o, mem(2), FREQS)
    assert (d.index, d.rule, d.memory.learned[2].power_w) == (2, "hold", None)
    o = replace(o, telemetry=replace(o.telemetry, board_power_w=12.5))
    assert decide(POLICY, o, mem(2), FREQS).index == 1


def test_over_budget_waits_up_after_s_when_longer_than_the_power_settling():
    slow = parse_policy(POLICY_TEXT.replace("up_after_s: 2,", "up_after_s: 5,"), "test")
    d = decide(slow, obs(NOW, CALM, power_avg=13.0), mem(3, entered=NOW - 4.9), FREQS)
    assert (d.index, d.rule) == (3, "hold")
    d = decide(slow, obs(NOW, CALM, power_avg=13.0), mem(3, entered=NOW - 5.0), FREQS)
    assert (d.index, d.rule) == (2, "budget")


def test_over_budget_reasons():
    d = decide(POLICY, obs(NOW, CALM, power_avg=13.04), mem(3, powers=[None, 11.0, 14.0]), FREQS)
    assert d.reason == "step down s3 → s1: board power 13.0 W (average) > budget 12.0 W"
    d = decide(POLICY, obs(NOW, CALM, power_avg=13.04), mem(2, powers=[None, None, 11.5]), FREQS)
    assert d.reason == "board power 13.0 W over the 12.0 W budget, settling"


def test_over_budget_takes_precedence_over_an_slo_risk_and_stops_its_clock():
    d = decide(POLICY, obs(NOW, LATE, power_avg=13.0), mem(2, powers=[None, None, 11.5], up_since_s=50.0), FREQS)
    assert (d.index, d.rule, d.memory.up_since_s) == (2, "hold", None)


def test_regression_budget_cascaded_past_states_within_it_while_the_average_lagged():
    # Found in `simulate --scenario budget`: max → high → low → eco within three seconds although low draws
    # less than the budget, because each step came before the entered state's power was known. Here s3 draws
    # 14 W, s2 11 W; the 30 s average lags at 12.5 W for the next seconds. The governor settles in s2.
    d = decide(POLICY, obs(NOW, CALM, power_avg=13.0, power_now=14.0), mem(3, powers=[None, None, None, 14.0]),
               FREQS)
    assert d.index == 2
    d = run(d, *[(NOW + k, CALM) for k in range(1, 11)], power_avg=12.5, power_now=11.0)
    assert (d.index, d.reason) == (2, "board power 12.5 W over the 12.0 W budget, settling")
    assert d.memory.learned[2].power_w == pytest.approx(11.0)


# -- no load, failed probes --------------------------------------------------------------------------------

def test_regression_no_frames_at_all_is_headroom():
    # With no frames there is no latency figure, which alone never counts as headroom: an idle daemon stayed
    # in its highest state.
    nothing = view(0.0, latency_ms=None, busy=0.0)
    d = decide(POLICY, obs(NOW, nothing), mem(3, down_since_s=0.0), FREQS)
    # Nothing to serve: every state covers it, so straight to the lowest, saying why (not "measured").
    assert (d.index, d.rule) == (0, "headroom")
    assert d.reason == "step down s3 → s0: no frames arriving: the lowest state serves nothing as well"
    # Frames still queued are load, whatever the arrival rate says.
    d = decide(POLICY, obs(NOW, view(0.0, latency_ms=None, queue=3)), mem(3, down_since_s=0.0), FREQS)
    assert d.rule == "hold"


@pytest.mark.parametrize(
    "name, capacity, index, marked",
    [
        ("leaving an unmeasured state falling behind marks where it fell short", None, 2, 60.0),
        ("a measured state is not marked: its capacity says it", 70.0, 2, None),
    ],
)
def test_an_slo_step_up_marks_an_unmeasured_state_short(name, capacity, index, marked):
    behind = view(60, latency_ms=300, queue=30, processed=45)  # a backlog growing: 60 in, 45 out per s
    d = decide(POLICY, obs(NOW, behind), mem(1, caps=[None, capacity], up_since_s=90.0))
    assert (d.index, d.rule) == (index, "slo"), name
    assert d.memory.learned[1].insufficient_fps == marked
    assert [lr.insufficient_fps for i, lr in enumerate(d.memory.learned) if i != 1] == [None] * 3


@pytest.mark.parametrize(
    "name, demand, lower, index, rule",
    [
        ("the same demand: not probed again", 40.0, Learned(insufficient_fps=40.0), 3, "hold"),
        ("demand × (1 + margin) just over where it fell short", 32.1, Learned(insufficient_fps=40.0), 3, "hold"),
        ("clearly lower: probed again", 32.0, Learned(insufficient_fps=40.0), 2, "headroom"),
        ("measured since: the measurement decides", 40.0, Learned(capacity_fps=60.0, insufficient_fps=45.0), 2,
         "headroom"),
    ],
)
def test_a_state_that_fell_short_is_probed_again_only_at_a_clearly_lower_demand(name, demand, lower, index, rule):
    memory = replace(mem(3, down_since_s=0.0), learned=(Learned(), Learned(), lower, Learned()))
    d = decide(POLICY, obs(NOW, view(demand, latency_ms=50)), memory, FREQS)
    assert (d.index, d.rule) == (index, rule), (name, d.reason)
    if rule == "hold":
        assert d.reason == f"s2 fell short at 40 frames/s; demand {demand:.0f} × 1.25 is not clearly lower"
        assert d.memory.down_since_s is None


def test_regression_a_failed_probe_was_repeated_every_down_after_s():
    # Constant demand of 40 frames/s. s3 copes (latency 50 ms, headroom); s2 does not (a backlog builds and
    # latency exceeds the target within seconds), so s2 is left before a stats window could measure it. It was
    # probed again every down_after_s, forever: 17 round trips in 10 minutes. Now once per FELL_SHORT_TTL_S,
    # when the mark expires (demand may have fallen since).
    memory = mem(3)
    probes: List[float] = []
    marked: List[float] = []
    backlog = 0.0
    for t in range(600):
        overloaded = memory.index < 3
        backlog = backlog + 10.0 if overloaded else 0.0
        p = view(40, latency_ms=50 + 30 * backlog, queue=int(backlog), processed=30 if overloaded else 40,
                 busy=1.0 if overloaded else 0.4)
        d = decide(POLICY, obs(float(t), p), memory, FREQS)
        if d.index < memory.index:
            probes.append(float(t))
        mark_s = d.memory.learned[2].insufficient_s
        if mark_s is not None and mark_s not in marked:
            marked.append(mark_s)
        memory = d.memory
    assert len(probes) == 2 and len(marked) == 2
    assert probes[1] - marked[0] >= FELL_SHORT_TTL_S
    assert memory.index == 3 and memory.learned[2].insufficient_fps == 40.0


# -- property: no flapping ---------------------------------------------------------------------------------

SHIPPED = load_policy(DEFAULT_POLICY_FILE)
URGENT = {"critical", "hot", "stale", "budget"}
TICKS = 600
IDLE_W = 5.0


def _shipped_on_the_super() -> Tuple[List[float], List[float]]:
    """The shipped ladder's GPU clock and true full-load power per state on the simulated Orin Nano Super
    (15W 14.3 W, 25W 22.9 W, MAXN_SUPER 26.6 W at their own maxima, docs/SIMULATION.md)."""
    from jetvit_daemon.sim.board import BoardPhysics
    from jetvit_daemon.sim.boards import get_profile, load_conf, snap_down_hz

    profile = get_profile("orin-nano-super")
    conf = load_conf(profile)
    freqs, watts = [], []
    for state in SHIPPED.ladder:
        phys = BoardPhysics(profile)
        mode = conf.mode_by_name(state.mode)
        assert mode is not None
        phys.apply_mode(conf, mode)
        top = phys.devfreq_max_hz
        cap = snap_down_hz(phys.table_hz(), min(state.gpu_cap_hz or top, top))
        phys.set_controls(phys.mode_cap_hz, cap, phys.devfreq_min_hz, phys.online_cores, phys.active_tpcs,
                          phys.cpu_freq_ratio)
        phys.step(1.0, 1.0)
        freqs.append(float(phys.gpu_freq_hz))
        watts.append(phys.power_w)
    return freqs, watts


SHIPPED_FREQS, FULL_LOAD_W = _shipped_on_the_super()


@dataclass(frozen=True)
class Move:
    t: float
    frm: int
    to: int
    rule: str
    reason: str
    demand_fps: float
    temp_c: Optional[float]  # None: telemetry stale
    explored: bool  # stepping down, the state just below had no measured capacity
    left_unmeasured: bool  # the state left had no measured capacity
    marked_fps: Optional[float]  # the "fell short" mark the move left on the state it left (None: none)


def _simulate(policy: Policy, seed: int, budget_w: Optional[float], random_latency: bool) -> List[Move]:
    """A closed loop: the state chosen sets the true capacity and power the next ticks observe."""
    rnd = random.Random(seed)
    top_fps = rnd.uniform(40.0, 200.0)
    # Capacity scales with the clock, give or take: estimates from one state to another may be wrong.
    caps = sorted(top_fps * f / SHIPPED_FREQS[-1] * rnd.uniform(0.7, 1.3) for f in SHIPPED_FREQS)
    ambient_c, c_per_w, temp_noise = rnd.uniform(15.0, 50.0), rnd.uniform(0.5, 2.5), rnd.uniform(0.0, 2.0)
    spike_p = rnd.uniform(0.0, 0.01)
    step_p, stale_p = rnd.uniform(0.0, 0.05), rnd.uniform(0.0, 0.01)
    if budget_w is not None:
        policy = policy.model_copy(update={"power_budget": policy.power_budget.model_copy(update={"watts": budget_w})})
    demand = rnd.uniform(0.0, 1.3 * caps[-1])
    temp = ambient_c + 10.0
    backlog = 0.0
    stale_left = 0
    powers: List[float] = []
    memory = initial_memory(policy, 0.0)
    moves: List[Move] = []
    for tick in range(TICKS):
        now = float(tick)
        if rnd.random() < step_p:
            demand = rnd.uniform(0.0, 1.3 * caps[-1])
        else:
            demand = max(0.0, demand * (1.0 + rnd.gauss(0.0, 0.02)))
        cap = caps[memory.index]
        processed = min(cap, demand + backlog)
        waiting = max(0.0, backlog + demand - cap)
        backlog, dropped = min(64.0, waiting), max(0.0, waiting - 64.0)  # a 64-frame queue drops the oldest
        util = processed / cap
        if random_latency:
            latency_s: Optional[float] = rnd.uniform(0.01, 0.4)
        elif demand == 0.0 and backlog == 0.0:
            latency_s = None
        else:
            # Under the target unless a backlog builds: batch wait, inference, then the queue.
            latency_s = (0.05 + 0.1 * util ** 4) * rnd.uniform(0.9, 1.1) + backlog / cap
        power = IDLE_W + (FULL_LOAD_W[memory.index] - IDLE_W) * util + rnd.gauss(0.0, 0.3)
        powers = [*powers[-int(policy.power_budget.window_s) + 1:], power]
        temp += (ambient_c + c_per_w * power - temp) / 30.0 + rnd.gauss(0.0, temp_noise)
        if rnd.random() < spike_p:  # a fan stall, a hot neighbour: a jump towards critical
            temp += rnd.uniform(10.0, 40.0)
        if stale_left == 0 and rnd.random() < stale_p:
            stale_left = rnd.randint(1, 30)
        stale_left = max(0, stale_left - 1)
        fresh = stale_left == 0
        sample = TelemetrySample(t_mono_s=now, temps_c={"tj": temp, "cpu": temp - 1.0}, board_power_w=power)
        pipeline = PipelineView(arrival_fps=demand, processed_fps=processed, dropped_fps=dropped,
                                queue_depth=int(backlog), latency_p95_s=latency_s, batch_size=8,
                                arrival_recent_fps=demand, busy_fraction=util, window_s=10.0)
        o = Observation(now_s=now, telemetry=sample if fresh else None, telemetry_fresh=fresh, pipeline=pipeline,
                        board_power_avg_w=sum(powers) / len(powers))
        d = decide(policy, o, memory, SHIPPED_FREQS)
        if d.index != memory.index:
            # Explored: the state just below was not measured (headroom's slow path, rung by rung or on estimates).
            explored = d.index < memory.index and d.memory.learned[memory.index - 1].capacity_fps is None
            left_unmeasured = d.memory.learned[memory.index].capacity_fps is None
            before, after = memory.learned[memory.index], d.memory.learned[memory.index]
            marked = after.insufficient_fps if after.insufficient_s != before.insufficient_s else None
            moves.append(Move(now, memory.index, d.index, d.rule, d.reason, pipeline.demand_fps,
                              temp if fresh else None, explored, left_unmeasured, marked))
        memory = d.memory
    return moves


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), budget_w=st.one_of(st.none(), st.floats(8.0, 30.0)),
       random_latency=st.booleans())
def test_random_traces_through_the_shipped_policy_do_not_flap(seed, budget_w, random_latency):
    policy = SHIPPED
    dw = policy.dwell
    moves = _simulate(policy, seed, budget_w, random_latency)

    # Every move's own dwell rule, measured from the previous move (a move restarts all the clocks).
    # A headroom step down needs min_state_s in the state and headroom since at least the entry for
    # down_after_s (unmeasured) or down_measured_after_s (measured), whichever applies.
    down_dwell = max(dw.min_state_s, min(dw.down_after_s, dw.down_measured_after_s))
    last = 0.0
    rules: Dict[str, int] = {}
    for m in moves:
        rules[m.rule] = rules.get(m.rule, 0) + 1
        in_state = m.t - last
        if m.rule == "headroom":
            assert m.to < m.frm and in_state >= down_dwell, m
            if m.explored:  # one rung, or several when each is estimated to cover the need
                assert m.to == m.frm - 1 or " estimated " in m.reason, m
                assert in_state >= max(dw.min_state_s, dw.down_after_s), m
            else:
                assert in_state >= max(dw.min_state_s, dw.down_measured_after_s), m
        elif m.rule == "slo":
            assert in_state >= dw.up_after_s, m
        elif m.rule == "hot":  # paced by the temperature's trend
            assert in_state >= TREND_S, m
        elif m.rule == "budget":  # and the state's own power has had time to show
            assert in_state >= max(dw.up_after_s, POWER_SETTLE_S), m
        if m.rule in ("hot", "budget", "headroom", "critical", "stale"):
            assert m.to < m.frm, m
        if m.rule == "slo":
            assert m.to > m.frm and m.temp_c is not None and m.temp_c < policy.thermal.critical_c, m
        last = m.t

    # Bound: headroom steps are at most one per down_dwell; every other step down is urgent; every step up
    # undoes rungs that some step down descended (the start state is the highest).
    headroom = rules.get("headroom", 0)
    urgent = sum(rules.get(r, 0) for r in URGENT)
    assert headroom <= TICKS // down_dwell
    downs = sum(1 for m in moves if m.to < m.frm)
    assert downs == headroom + urgent
    top = len(policy.ladder) - 1
    assert len(moves) <= downs + top * downs

    # No A → B → A within min_state_s unless an urgent rule made one of the two moves. Exempt: the SLO step
    # up straight after stepping down into a state that was not measured (the probe failed), or when the
    # demand has grown past what the measured state was chosen for (margin / near_ratio), or when the
    # latency figures are noise.
    for a, b in zip(moves, moves[1:]):
        if not (b.to == a.frm and b.t - a.t < dw.min_state_s):
            continue
        if a.rule in URGENT or b.rule in URGENT:
            continue
        assert (a.rule, b.rule) == ("headroom", "slo"), (a, b)  # an up is never undone by headroom this fast
        # Stepping down into a measured state needs its capacity ≥ demand × (1 + margin); an SLO risk there
        # needs demand ≥ near_ratio × that capacity (or a backlog, beyond it): demand grew by that much.
        grown = b.demand_fps >= 0.999 * a.demand_fps * (1 + policy.capacity.margin) * policy.capacity.near_ratio
        assert a.explored or grown or random_latency, (a, b)

    # A probe that failed is not repeated at the same demand: once the SLO drove the governor out of an
    # unmeasured state falling behind at demand f (marking it), it steps down into it again (unmeasured) only
    # when demand × (1 + margin) ≤ f, or once the mark is FELL_SHORT_TTL_S old. Only SLO moves mark.
    fell_short: Dict[int, Tuple[float, float]] = {}
    for m in moves:
        if m.rule == "headroom" and m.explored and m.to in fell_short:
            f, marked_t = fell_short[m.to]
            assert (m.demand_fps * (1 + policy.capacity.margin) <= f * (1 + 1e-9)
                    or m.t - marked_t >= FELL_SHORT_TTL_S), (m, fell_short)
        if m.marked_fps is not None:
            assert m.rule == "slo" and m.left_unmeasured, m
            fell_short[m.frm] = (m.marked_fps, m.t)
