"""Regression tests, one per defect found in review of the learning governor (docs/POLICY.md history)."""

import pytest

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.errors import PolicyError
from jetvit_daemon.governor.decide import Learned, Memory, Observation, PipelineView, decide
from jetvit_daemon.governor.loop import Governor
from jetvit_daemon.governor.policy import parse_policy
from jetvit_daemon.hardware.base import TelemetrySample

POLICY = parse_policy("""\
version: 1
ladder:
  - {name: s0, mode: 15W, gpu_cap_mhz: 306, batch_size: 8}
  - {name: s1, mode: 15W, gpu_cap_mhz: 510, batch_size: 8}
  - {name: s2, mode: 15W, gpu_cap_mhz: max, batch_size: 8}
  - {name: s3, mode: 25W, gpu_cap_mhz: max, batch_size: 8}
thermal: {sensor: tj, warm_c: 70, hot_c: 80, critical_c: 90, hysteresis_c: 5}
dwell: {min_state_s: 10, up_after_s: 1, down_after_s: 30, down_measured_after_s: 5}
stale_telemetry: {after_s: 10, state: s0}
""", "test")
FREQS = [306e6, 510e6, 612e6, 918e6]


def view(demand, latency_ms=40.0, queue=0, busy=0.3):
    return PipelineView(arrival_fps=demand, processed_fps=demand, dropped_fps=0.0, queue_depth=queue,
                        latency_p95_s=None if latency_ms is None else latency_ms / 1000.0, batch_size=8,
                        arrival_recent_fps=demand, busy_fraction=busy)


def obs(now, pipeline, temps=None, applied=True):
    sample = TelemetrySample(t_mono_s=now, temps_c={"tj": 50.0} if temps is None else temps, board_power_w=8.0)
    return Observation(now_s=now, telemetry=sample, telemetry_fresh=True, pipeline=pipeline,
                       board_power_avg_w=8.0, state_applied=applied)


def mem(index, learned=(), **kw):
    lr = list(learned) + [Learned()] * (4 - len(learned))
    return Memory(index=index, entered_s=0.0, learned=tuple(lr), **kw)


def test_zero_demand_goes_to_the_lowest_without_calling_unmeasured_states_measured():
    learned = [Learned(), Learned(), Learned(capacity_fps=140.0)]
    d = decide(POLICY, obs(100.0, view(0.0, latency_ms=None, busy=0.0)), mem(3, learned, down_since_s=0.0), FREQS)
    assert (d.index, d.rule) == (0, "headroom") and "measured" not in d.reason


def test_a_measured_step_down_stops_above_an_unmeasured_state():
    learned = [Learned(), Learned(), Learned(capacity_fps=140.0)]
    d = decide(POLICY, obs(100.0, view(20.0)), mem(3, learned, down_since_s=0.0), FREQS)
    assert (d.index, d.rule) == (2, "headroom")
    assert "s2 measured 140 frames/s" in d.reason


def test_a_policy_sensor_missing_from_telemetry_is_treated_as_stale_not_as_safe():
    no_tj = {"cpu": 60.0}
    late = view(60.0, latency_ms=400.0, queue=30, busy=1.0)
    d = decide(POLICY, obs(100.0, late, temps=no_tj), mem(1, up_since_s=90.0), FREQS)
    assert (d.index, d.rule) == (1, "hold") and "no tj temperature" in d.reason  # no step up without a reading
    d = decide(POLICY, obs(110.0, late, temps=no_tj), d.memory, FREQS)
    assert (d.index, d.rule) == (0, "stale")
    assert "no tj temperature in telemetry for 10 s" in d.reason


def test_near_ratio_and_margin_that_would_flap_are_refused():
    with pytest.raises(PolicyError, match=r"capacity: Value error, near_ratio × \(1 \+ margin\) must exceed 1"):
        parse_policy("version: 1\nladder: [{name: a, mode: 15W}]\ncapacity: {near_ratio: 0.8, margin: 0.2}\n", "p")


def test_nothing_is_learned_while_the_hardware_has_not_reached_the_state():
    saturated = view(90.0, queue=16, busy=0.95)
    d = decide(POLICY, obs(100.0, saturated, applied=False), mem(2), FREQS)
    assert d.memory.learned[2] == Learned()
    d = decide(POLICY, obs(100.0, saturated, applied=True), mem(2), FREQS)
    assert d.memory.learned[2].capacity_fps == pytest.approx(90.0 / 0.95)


def test_the_loop_marks_observations_before_the_state_is_applied():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("loop_tests", Path(__file__).with_name("test_loop.py"))
    assert spec is not None and spec.loader is not None
    loop_tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop_tests)
    clock = ManualClock()
    platform = loop_tests.ScriptedPlatform(clock)
    gov = Governor(platform, loop_tests.POLICY, lambda: loop_tests.CALM, lambda n, w: n, clock)
    assert gov.observe().state_applied is False  # nothing applied yet
    gov.tick()
    assert gov.observe().state_applied is True
    from jetvit_daemon.errors import ActuationError

    platform.fail_mode = ActuationError("nvpmodel failed")
    ladder = loop_tests.POLICY.ladder
    moved = ladder[1].model_copy(update={"mode": "15W"})  # the state now needs a mode switch, which fails
    gov.set_policy(loop_tests.POLICY.model_copy(update={"ladder": [ladder[0], moved]}))
    gov.tick()
    assert gov.observe().state_applied is False  # the re-application failed: do not learn
