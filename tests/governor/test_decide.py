"""Table tests of the pure decision function: one case per rule, and the hysteresis and dwell edges."""

from dataclasses import replace
from typing import Optional

import pytest

from jetvit_daemon.governor.decide import TREND_S, Heat, Memory, Observation, PipelineView, decide
from jetvit_daemon.governor.policy import parse_policy
from jetvit_daemon.hardware.base import TelemetrySample

POLICY = parse_policy(
    """\
version: 1
ladder:
  - {name: s0, mode: 15W, gpu_cap_mhz: 408, batch_size: 8}
  - {name: s1, mode: 15W, gpu_cap_mhz: max, batch_size: 8}
  - {name: s2, mode: 25W, gpu_cap_mhz: max, batch_size: 4}
thermal: {sensor: tj, warm_c: 70, hot_c: 80, critical_c: 90, hysteresis_c: 5}
slo: {latency_p95_ms: 200}
power_budget: {watts: 12, window_s: 30}
dwell: {min_state_s: 10, up_after_s: 2, down_after_s: 30}
stale_telemetry: {after_s: 10, state: s1}
""",
    "test",
)

CALM = PipelineView(arrival_fps=30, processed_fps=30, dropped_fps=0, queue_depth=0, latency_p95_s=0.150, batch_size=4)
IDLE = replace(CALM, latency_p95_s=0.040)
LATE = replace(CALM, latency_p95_s=0.300)


def obs(now: float, tj: Optional[float] = 50.0, pipeline: PipelineView = CALM, power: Optional[float] = 8.0,
        fresh: bool = True) -> Observation:
    sample = TelemetrySample(t_mono_s=now, temps_c={"tj": tj} if tj is not None else {})
    return Observation(now_s=now, telemetry=sample if fresh else None, telemetry_fresh=fresh, pipeline=pipeline,
                       board_power_avg_w=power)


# The controller's memory of the last tick: 1 °C per 20 s rising (0.05 °C/s: 3 °C a minute ahead) or falling.
RISING = Heat(at_s=99.0, temp_c=79.0, trend_c_per_s=0.05)
FALLING = Heat(at_s=99.0, temp_c=78.0, trend_c_per_s=-0.05)


def mem(index: int = 1, entered: float = 0.0, **kw) -> Memory:
    return Memory(index=index, entered_s=entered, **kw)


@pytest.mark.parametrize(
    "name, observation, memory, index, rule",
    [
        ("steady: hold", obs(100), mem(1), 1, "hold"),
        ("critical drops to the lowest at once", obs(100, tj=91), mem(2, entered=99.9), 0, "critical"),
        ("critical at the lowest holds", obs(100, tj=95), mem(0), 0, "hold"),
        # No trip points in these observations: the setpoint is hot_c (80 °C); no power known: a rung at a time.
        ("heading over the setpoint steps down one", obs(100, tj=79), mem(2, heat=RISING), 1, "hot"),
        ("hot waits for the trend in a fresh state", obs(100, tj=81), mem(2, entered=99, heat=RISING), 2, "hold"),
        ("cooling below the setpoint: hold", obs(100, tj=78), mem(2, heat=FALLING), 2, "hold"),
        ("over budget steps down", obs(100, power=13.5), mem(2), 1, "budget"),
        ("SLO at risk, not yet persistent", obs(100, pipeline=LATE), mem(1), 1, "hold"),
        ("SLO at risk for up_after_s steps up", obs(100, pipeline=LATE), mem(1, up_since_s=98), 2, "slo"),
        ("SLO at risk 1.9 s: not yet", obs(100, pipeline=LATE), mem(1, up_since_s=98.1), 1, "hold"),
        ("SLO at risk near the setpoint, no power known: hold", obs(100, tj=78, pipeline=LATE),
         mem(1, up_since_s=90, heat=replace(RISING, temp_c=78, trend_c_per_s=0.02)), 1, "hold"),
        ("SLO at risk well below the setpoint: step up", obs(100, tj=69, pipeline=LATE),
         mem(1, up_since_s=90, heat=replace(RISING, temp_c=69)), 2, "slo"),
        ("SLO at risk near budget: hold", obs(100, power=11, pipeline=LATE), mem(1, up_since_s=90), 1, "hold"),
        ("SLO at risk at the top: hold", obs(100, pipeline=LATE), mem(2, up_since_s=90), 2, "hold"),
        ("drops are an SLO risk", obs(100, pipeline=replace(CALM, dropped_fps=2)), mem(1, up_since_s=90), 2, "slo"),
        ("growing backlog is an SLO risk",
         obs(100, pipeline=replace(CALM, queue_depth=20, processed_fps=25)), mem(1, up_since_s=90), 2, "slo"),
        ("headroom for down_after_s steps down", obs(100, pipeline=IDLE), mem(2, down_since_s=70), 1, "headroom"),
        ("headroom 29 s: not yet", obs(100, pipeline=IDLE), mem(2, down_since_s=71), 2, "hold"),
        ("headroom but min_state_s not served", obs(100, pipeline=IDLE), mem(2, entered=95, down_since_s=0), 2, "hold"),
        ("headroom at the lowest: hold", obs(100, pipeline=IDLE), mem(0, down_since_s=0), 0, "hold"),
        ("stale 9 s: hold", obs(100, fresh=False), mem(2, stale_since_s=91), 2, "hold"),
        ("stale 10 s: safe state", obs(100, fresh=False), mem(2, stale_since_s=90), 1, "stale"),
        ("stale below the safe state: stay", obs(100, fresh=False), mem(0, stale_since_s=0), 0, "hold"),
    ],
)
def test_rules(name, observation, memory, index, rule):
    decision = decide(POLICY, observation, memory)
    assert (decision.index, decision.rule) == (index, rule), decision.reason


def test_reason_names_the_sensor_value_and_threshold():
    d = decide(POLICY, obs(100, tj=79.24), mem(2, heat=RISING))
    assert d.reason == ("step down s2 → s1: tj 79.2 °C, trend +3.0 °C/min, setpoint 80 °C: no power known: "
                        "s2 over it")
    d = decide(POLICY, obs(100, pipeline=LATE), mem(1, up_since_s=90))
    assert d.reason == "step up s1 → s2: latency p95 300 ms > target 200 ms"


def test_hot_steps_are_paced_by_the_trend_not_by_the_tick():
    """Issue 14, mechanism 5: the old rule dropped a rung per up_after_s (2 s) while over hot_c, all the way
    down within seconds; the temperature (τ of minutes) cannot have responded. Now one rung, then nothing
    until the trend has had TREND_S to show the new state, and then only if still heading over the setpoint."""
    d = decide(POLICY, obs(100, tj=81), mem(2, heat=replace(RISING, temp_c=81)))
    assert (d.index, d.rule) == (1, "hot")
    m = d.memory
    # The new state cools at 3 °C a minute; the governor neither steps again before the trend can show it
    # (the old rule: another rung 2 s later) nor after, once it shows the cooling.
    for now in range(101, 100 + 3 * int(TREND_S)):
        d = decide(POLICY, obs(now, tj=81 - 0.05 * (now - 100)), m)
        assert (d.index, d.rule) == (1, "hold"), (now, d.reason)
        m = d.memory
    assert m.heat.trend_c_per_s < 0


def test_need_timers_reset_when_the_need_goes_away():
    d = decide(POLICY, obs(100, pipeline=LATE), mem(1))
    assert d.memory.up_since_s == 100
    d = decide(POLICY, obs(101), d.memory)
    assert d.memory.up_since_s is None
    d = decide(POLICY, obs(102, pipeline=LATE), d.memory)
    assert d.memory.up_since_s == 102  # a new episode starts its own clock


def test_a_move_resets_the_dwell_clock():
    d = decide(POLICY, obs(100, pipeline=LATE), mem(1, up_since_s=90))
    assert d.memory.entered_s == 100 and d.memory.up_since_s is None


def test_a_shorter_reloaded_ladder_clamps_the_state():
    short = POLICY.model_copy(update={"ladder": POLICY.ladder[:2]})
    d = decide(short, obs(100), mem(2))
    assert d.index == 1
