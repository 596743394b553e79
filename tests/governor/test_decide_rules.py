"""Each rule of `decide()` on its own, as a table: the tick it is given, and whether it decides (a move or a
hold, with its rule) or passes to the next rule. `decide()` runs them in `RULE_ORDER`; test_decide*.py test the
chain."""

from dataclasses import replace
from typing import Optional

import pytest

from jetvit_daemon.governor.decide import (
    RULE_ORDER,
    Decision,
    Heat,
    Learned,
    Memory,
    Observation,
    PipelineView,
    make_tick,
    rule_budget,
    rule_critical,
    rule_headroom,
    rule_hot,
    rule_slo,
    rule_stale,
)
from jetvit_daemon.governor.policy import parse_policy
from jetvit_daemon.hardware.base import TelemetrySample

POLICY = parse_policy("""\
version: 1
ladder:
  - {name: s0, mode: 15W, gpu_cap_mhz: 408, batch_size: 8}
  - {name: s1, mode: 15W, gpu_cap_mhz: max, batch_size: 8}
  - {name: s2, mode: 25W, gpu_cap_mhz: max, batch_size: 8}
thermal: {sensor: tj, warm_c: 70, hot_c: 80, critical_c: 90, hysteresis_c: 5}
slo: {latency_p95_ms: 200}
power_budget: {watts: 12, window_s: 30}
dwell: {min_state_s: 10, up_after_s: 2, down_after_s: 30, down_measured_after_s: 5}
stale_telemetry: {after_s: 10, state: s0}
""", "test")
FREQS = [408e6, 612e6, 918e6]
NOW = 100.0


def view(demand: float = 30.0, latency_ms: Optional[float] = 150.0, queue: int = 0) -> PipelineView:
    return PipelineView(arrival_fps=demand, processed_fps=demand, dropped_fps=0.0, queue_depth=queue,
                        latency_p95_s=None if latency_ms is None else latency_ms / 1000.0, batch_size=8,
                        arrival_recent_fps=demand, busy_fraction=0.3)


CALM = view()
QUIET = view(latency_ms=50)


def obs(pipeline: PipelineView = CALM, tj: Optional[float] = 50.0, power_avg: float = 8.0,
        fresh: bool = True) -> Observation:
    sample = TelemetrySample(t_mono_s=NOW, temps_c={} if tj is None else {"tj": tj}, board_power_w=power_avg)
    return Observation(now_s=NOW, telemetry=sample if fresh else None, telemetry_fresh=fresh, pipeline=pipeline,
                       board_power_avg_w=power_avg)


HOT_HEAT = Heat(at_s=NOW - 1, temp_c=80.0, trend_c_per_s=0.05)  # 3 °C a minute ahead, over the 80 °C setpoint


def mem(index: int = 1, **kw) -> Memory:
    return Memory(index=index, entered_s=0.0, learned=(Learned(),) * 3, **kw)


def outcome(rule, o: Observation, m: Memory) -> Optional[str]:
    """The rule's verdict: None when it passes, else "<rule> <index>"."""
    got = rule(make_tick(POLICY, o, m, FREQS), m)
    if isinstance(got, Decision):
        return f"{got.rule} {got.index}"
    assert isinstance(got, Memory)
    return None


@pytest.mark.parametrize(
    "name, rule, o, m, expected",
    [
        ("stale: fresh telemetry passes", rule_stale, obs(), mem(), None),
        ("stale: holds while stale", rule_stale, obs(fresh=False), mem(stale_since_s=95.0), "hold 1"),
        ("stale: safe state after after_s", rule_stale, obs(fresh=False), mem(2, stale_since_s=90.0), "stale 0"),
        ("stale: the sensor missing counts", rule_stale, obs(tj=None), mem(2, stale_since_s=90.0), "stale 0"),
        ("critical: below passes", rule_critical, obs(tj=89.9), mem(2), None),
        ("critical: at it, the lowest", rule_critical, obs(tj=90.0), mem(2), "critical 0"),
        ("critical: at the lowest, hold", rule_critical, obs(tj=95.0), mem(0), "hold 0"),
        ("hot: far below the setpoint passes", rule_hot, obs(tj=60.0), mem(2, heat=HOT_HEAT), None),
        ("hot: heading over the setpoint, a rung down", rule_hot, obs(tj=80.0), mem(2, heat=HOT_HEAT), "hot 1"),
        ("budget: within passes", rule_budget, obs(power_avg=12.0), mem(2), None),
        ("budget: over, one rung down", rule_budget, obs(power_avg=13.0), mem(2), "budget 1"),
        ("slo: no risk passes", rule_slo, obs(), mem(), None),
        ("slo: at risk, persisted", rule_slo, obs(view(latency_ms=300)), mem(up_since_s=90.0), "slo 2"),
        ("slo: at risk, young", rule_slo, obs(view(latency_ms=300)), mem(up_since_s=99.0), "hold 1"),
        ("headroom: none passes", rule_headroom, obs(), mem(), None),
        ("headroom: at the lowest passes", rule_headroom, obs(QUIET), mem(0, down_since_s=0.0), None),
        ("headroom: explores one rung", rule_headroom, obs(QUIET), mem(2, down_since_s=0.0), "headroom 1"),
        ("headroom: waits", rule_headroom, obs(QUIET), mem(2, down_since_s=99.0), "hold 2"),
    ],
)
def test_each_rule_alone(name, rule, o, m, expected):
    assert outcome(rule, o, m) == expected, name


def test_the_rules_run_in_the_documented_order():
    assert [r.__name__ for r in RULE_ORDER] == [
        "rule_stale", "rule_critical", "rule_hot", "rule_budget", "rule_slo", "rule_headroom"]


TRIPS = {"tj": 99.0, "cpu": 99.0}  # Orin's passive trips (sim/boards.py, as its sysfs tree declares them)


@pytest.mark.parametrize(
    "name, rule, tj, trips, expected",
    [
        # The old rule stepped down at the fixed hot_c (80 °C) whatever the board: the trips now set the
        # setpoint (99 - 3 = 96 °C) and the last resort (99 - 1 = 98 °C).
        ("hot: 85 °C rising, far from the trip", rule_hot, 85.0, TRIPS, None),
        ("hot: 85 °C rising, no trips: the hot_c setpoint", rule_hot, 85.0, {}, "hot 1"),
        ("hot: 94 °C rising to the 96 °C setpoint", rule_hot, 94.0, TRIPS, "hot 1"),
        ("critical: 95 °C, below the trip's last resort", rule_critical, 95.0, TRIPS, None),
        ("critical: 95 °C, no trips: critical_c", rule_critical, 95.0, {}, "critical 0"),
        ("critical: 98 °C, a degree below the trip", rule_critical, 98.0, TRIPS, "critical 0"),
        # For `sensor: tj`, its own trip; a sensor without one is held below the lowest trip of any zone.
        ("hot: its own sensor's trip", rule_hot, 93.0, {"tj": 105.0, "cpu": 99.0}, None),
        ("hot: no trip of its own, the lowest", rule_hot, 94.0, {"gpu": 99.0}, "hot 1"),
    ],
)
def test_the_boards_trip_points_set_the_setpoint_and_the_last_resort(name, rule, tj, trips, expected):
    o = replace(obs(tj=tj), throttle_trips_c=trips)
    assert outcome(rule, o, mem(2, heat=replace(HOT_HEAT, temp_c=tj))) == expected, name
