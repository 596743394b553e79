"""Table tests of the pure decision function: one case per rule, and the hysteresis and dwell edges."""

from dataclasses import replace
from typing import Optional

import pytest

from jetvit_daemon.governor.decide import Memory, Observation, PipelineView, decide
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


def mem(index: int = 1, entered: float = 0.0, **kw) -> Memory:
    return Memory(index=index, entered_s=entered, **kw)


@pytest.mark.parametrize(
    "name, observation, memory, index, rule",
    [
        ("steady: hold", obs(100), mem(1), 1, "hold"),
        ("critical drops to the lowest at once", obs(100, tj=91), mem(2, entered=99.9), 0, "critical"),
        ("critical at the lowest holds", obs(100, tj=95), mem(0), 0, "hold"),
        ("hot steps down one", obs(100, tj=81), mem(2), 1, "hot"),
        ("hot waits up_after_s in a fresh state", obs(100, tj=81), mem(2, entered=99), 2, "hold"),
        ("over budget steps down", obs(100, power=13.5), mem(2), 1, "budget"),
        ("SLO at risk, not yet persistent", obs(100, pipeline=LATE), mem(1), 1, "hold"),
        ("SLO at risk for up_after_s steps up", obs(100, pipeline=LATE), mem(1, up_since_s=98), 2, "slo"),
        ("SLO at risk 1.9 s: not yet", obs(100, pipeline=LATE), mem(1, up_since_s=98.1), 1, "hold"),
        ("SLO at risk but warm: hold", obs(100, tj=72, pipeline=LATE), mem(1, up_since_s=90), 1, "hold"),
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
    d = decide(POLICY, obs(100, tj=81.24), mem(2))
    assert d.reason == "step down s2 → s1: tj 81.2 °C ≥ hot 80 °C"
    d = decide(POLICY, obs(100, pipeline=LATE), mem(1, up_since_s=90))
    assert d.reason == "step up s1 → s2: latency p95 300 ms > target 200 ms"


def test_hot_hold_blocks_stepping_up_until_below_hot_minus_hysteresis():
    m = decide(POLICY, obs(100, tj=82), mem(2)).memory
    assert m.hot_hold and m.index == 1
    # 76 °C: below hot but not below hot - hysteresis (75): still held, SLO risk does not step up.
    d = decide(POLICY, obs(120, tj=76, pipeline=LATE), replace(m, up_since_s=110))
    assert (d.index, d.memory.hot_hold) == (1, True)
    # 74.9 °C: released from the hot hold, but still warm (≥ 70): no step up yet.
    d = decide(POLICY, obs(121, tj=74.9, pipeline=LATE), replace(d.memory, up_since_s=110))
    assert (d.index, d.rule, d.memory.hot_hold) == (1, "hold", False)
    # 69 °C: below warm, and the persistent SLO risk steps up.
    d = decide(POLICY, obs(122, tj=69, pipeline=LATE), d.memory)
    assert (d.index, d.rule) == (2, "slo")


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
