"""Issue 14's mechanisms in `decide()`, one section each, with the regression that showed it: the SLO rule
judging the previous state's late frames (1), "fell short" marks (2), capacity lower bounds and the jump on a
sharp rise (3), step-down probes of states estimated too slow (6)."""

from typing import Optional, Sequence, Tuple

import pytest

from jetvit_daemon.governor.decide import Decision, Learned, Memory, Observation, PipelineView, decide
from jetvit_daemon.governor.policy import parse_policy
from jetvit_daemon.hardware.base import TelemetrySample

POLICY = parse_policy("""\
version: 1
ladder:
  - {name: s0, mode: 15W, gpu_cap_mhz: 408, batch_size: 8}
  - {name: s1, mode: 15W, gpu_cap_mhz: max, batch_size: 8}
  - {name: s2, mode: 25W, gpu_cap_mhz: max, batch_size: 8}
  - {name: s3, mode: MAXN_SUPER, gpu_cap_mhz: max, batch_size: 8}
thermal: {sensor: tj, warm_c: 70, hot_c: 80, critical_c: 90, hysteresis_c: 5}
slo: {latency_p95_ms: 200}
dwell: {min_state_s: 10, up_after_s: 2, down_after_s: 30, down_measured_after_s: 5}
capacity: {margin: 0.25, near_ratio: 0.9, headroom_latency_ratio: 0.5, min_busy: 0.9}
""", "test")
FREQS = [408e6, 612e6, 918e6, 1020e6]  # the Orin Nano Super's clock limit in each state
NOW = 100.0


def view(demand: float = 60.0, *, latency_ms: Optional[float] = 150.0, queue: int = 0,
         processed: Optional[float] = None, recent_out: Optional[float] = None, busy: Optional[float] = None,
         recent_in: Optional[float] = None) -> PipelineView:
    processed = demand if processed is None else processed
    return PipelineView(
        arrival_fps=demand, processed_fps=processed, dropped_fps=0.0, queue_depth=queue,
        latency_p95_s=None if latency_ms is None else latency_ms / 1000.0, batch_size=8,
        arrival_recent_fps=demand if recent_in is None else recent_in, busy_fraction=busy,
        processed_recent_fps=processed if recent_out is None else recent_out)


def obs(now: float, pipeline: PipelineView) -> Observation:
    sample = TelemetrySample(t_mono_s=now, temps_c={"tj": 50.0}, board_power_w=8.0)
    return Observation(now_s=now, telemetry=sample, telemetry_fresh=True, pipeline=pipeline, board_power_avg_w=8.0)


def mem(index: int, *, entered: float = 0.0, caps: Sequence[Optional[float]] = (), **kw) -> Memory:
    caps = [*caps, *[None] * (4 - len(caps))]
    return Memory(index=index, entered_s=entered, learned=tuple(Learned(capacity_fps=c) for c in caps), **kw)


def run(memory: Memory, ticks: Sequence[Tuple[float, PipelineView]]) -> Tuple[Decision, list]:
    """Feed ticks through decide(); the last decision and the index after each tick."""
    path = []
    decision = None
    for now, pipeline in ticks:
        decision = decide(POLICY, obs(now, pipeline), memory, FREQS)
        memory = decision.memory
        path.append(decision.index)
    assert decision is not None
    return decision, path


# -- 1. the SLO rule judges the current state's frames -----------------------------------------------------

LATE = view(latency_ms=300)  # the window's p95 over the 200 ms target, nothing waiting now


def test_regression_the_slo_rule_kept_stepping_up_on_the_previous_states_late_frames():
    # Issue 14, mechanism 1. s1 falls behind (a backlog of 40 frames, late frames); the SLO rule steps up to
    # s2, measured at 100 frames/s for a demand of 60. s2 drains the backlog in two seconds, but the 10 s window
    # holds late frames (p95 300 ms) for ten seconds more. Before the fix the governor stepped up again to s3
    # on those frames (up_after_s later), although s2 was coping.
    behind = view(latency_ms=300, queue=40, processed=45, recent_out=45)
    draining = view(latency_ms=300, queue=24, recent_out=90)
    start = mem(1, caps=[None, None, 100.0], up_since_s=NOW - 5)
    ticks = [(NOW, behind), (NOW + 1, draining), (NOW + 2, draining)]
    ticks += [(NOW + k, LATE) for k in range(3, 13)] + [(NOW + k, view(latency_ms=120)) for k in range(13, 30)]
    d, path = run(start, ticks)
    assert path == [2] * len(ticks), path
    assert d.rule == "hold"


def test_late_frames_that_are_the_states_own_still_step_up():
    # The same, but s2's own frames stay late once the backlog has cleared (at NOW + 3): a window later the
    # p95 is its own, and after up_after_s the governor steps up.
    start = mem(1, caps=[None, None, 100.0], up_since_s=NOW - 5)
    ticks = [(NOW, view(latency_ms=300, queue=40, processed=45, recent_out=45)),
             (NOW + 1, view(latency_ms=300, queue=24, recent_out=90))]
    ticks += [(NOW + k, LATE) for k in range(3, 16)]
    _, path = run(start, ticks)
    assert path == [2] * 14 + [3], path  # its own from NOW + 13, at risk for up_after_s at NOW + 15


@pytest.mark.parametrize(
    "name, memory, pipeline, expected",
    [
        ("a second in the state: the window's late frames are the previous state's",
         mem(1, entered=NOW - 1, up_since_s=NOW - 5), LATE, "hold 1"),
        ("a window in the state: its own", mem(1, entered=NOW - 10, up_since_s=NOW - 5), LATE, "slo 2"),
        ("an inherited backlog draining now", mem(1, entered=NOW - 5, up_since_s=NOW - 5, inherited_backlog=True),
         view(latency_ms=300, queue=30, recent_out=90), "hold 1"),
        ("an inherited backlog still growing", mem(1, entered=NOW - 5, up_since_s=NOW - 5, inherited_backlog=True),
         view(latency_ms=300, queue=30, recent_out=45), "slo 2"),
        ("falling behind, but the recent rates are the previous state's", mem(1, entered=NOW - 1, up_since_s=NOW - 5),
         view(queue=30, recent_out=45), "hold 1"),
        ("the inherited backlog cleared 9 s ago",
         mem(1, entered=NOW - 30, up_since_s=NOW - 5, own_window_from_s=NOW - 9), LATE, "hold 1"),
        ("the inherited backlog cleared a window ago",
         mem(1, entered=NOW - 30, up_since_s=NOW - 5, own_window_from_s=NOW - 10), LATE, "slo 2"),
        ("no recent rates: the window's processed rate against demand", mem(1, up_since_s=NOW - 5),
         PipelineView(arrival_fps=60.0, processed_fps=45.0, dropped_fps=0.0, queue_depth=30, latency_p95_s=0.1,
                      batch_size=8), "slo 2"),
    ],
)
def test_what_the_slo_rule_judges_after_a_move(name, memory, pipeline, expected):
    d = decide(POLICY, obs(NOW, pipeline), memory, FREQS)
    assert f"{d.rule} {d.index}" == expected, (name, d.reason)


# -- 2. "fell short" marks: only on a state that itself fell behind, and they expire ------------------------

BEHIND = view(latency_ms=300, queue=30, recent_out=45)  # a backlog growing now: 60 in, 45 out per s


def marks(d: Decision) -> list:
    return [(lr.insufficient_fps, lr.insufficient_s) for lr in d.memory.learned]


def test_regression_a_state_passed_through_on_the_way_up_was_marked_short():
    # Issue 14, mechanism 2. s1 keeps up with demand (nothing waiting), its window's p95 is over target: the
    # SLO rule steps up, and before the fix marked s1 "fell short at 60 frames/s", so headroom never tried it
    # again at that demand although it had processed all 60 frames/s.
    d = decide(POLICY, obs(NOW, LATE), mem(1, entered=NOW - 30, up_since_s=NOW - 5), FREQS)
    assert (d.rule, d.index) == ("slo", 2)
    assert marks(d) == [(None, None)] * 4


@pytest.mark.parametrize(
    "name, memory, pipeline, applied, mark",
    [
        ("fell behind itself: marked at the demand, with the time", mem(1, entered=NOW - 30, up_since_s=NOW - 5),
         BEHIND, True, (60.0, NOW)),
        ("measured: its capacity says it, no mark", mem(1, entered=NOW - 30, caps=[None, 50.0], up_since_s=NOW - 5),
         BEHIND, True, (None, None)),
        ("a backlog, but draining", mem(1, entered=NOW - 30, up_since_s=NOW - 5),
         view(latency_ms=300, queue=30, recent_out=70), True, (None, None)),
        ("falling behind, but not applied yet", mem(1, entered=NOW - 30, up_since_s=NOW - 5), BEHIND, False,
         (None, None)),
    ],
)
def test_only_a_state_that_fell_behind_is_marked(name, memory, pipeline, applied, mark):
    o = obs(NOW, pipeline)
    o = Observation(now_s=o.now_s, telemetry=o.telemetry, telemetry_fresh=True, pipeline=pipeline,
                    board_power_avg_w=8.0, state_applied=applied)
    d = decide(POLICY, o, memory, FREQS)
    assert (d.rule, d.index) == ("slo", 2), (name, d.reason)
    assert marks(d)[1] == mark, name
    assert [m for i, m in enumerate(marks(d)) if i != 1] == [(None, None)] * 3, name


IDLE = view(40, latency_ms=50)  # headroom; 40 × 1.25 = 50 needed below


@pytest.mark.parametrize(
    "name, marked_s, rule",
    [
        ("a fresh mark holds the probe back", NOW - 10, "hold"),
        ("just under five minutes old: still", NOW - 299, "hold"),
        ("five minutes old: expired, probed again", NOW - 300, "headroom"),
        ("no time known: kept", None, "hold"),
    ],
)
def test_a_fell_short_mark_expires(name, marked_s, rule):
    lower = Learned(insufficient_fps=40.0, insufficient_s=marked_s)
    memory = Memory(index=3, entered_s=0.0, down_since_s=0.0, learned=(Learned(), Learned(), lower, Learned()))
    d = decide(POLICY, obs(NOW, IDLE), memory, FREQS)
    assert d.rule == rule, (name, d.reason)
    assert d.index == (2 if rule == "headroom" else 3)


# -- 3. capacity floors, and the jump on a sharp rise -------------------------------------------------------

def floors_mem(index: int, floors: Sequence[Optional[float]], **kw) -> Memory:
    floors = [*floors, *[None] * (4 - len(floors))]
    return Memory(index=index, entered_s=0.0, learned=tuple(Learned(floor_fps=f) for f in floors), **kw)


@pytest.mark.parametrize(
    "name, pipeline, in_state_s, floor, capacity",
    [
        ("unsaturated: processed over busy is a floor, not a capacity", view(30, busy=0.3), 10.0, 100.0, None),
        ("saturated: both", view(50, processed=45, busy=0.9, queue=8), 10.0, 50.0, 50.0),
        ("busy under FLOOR_MIN_BUSY: nothing", view(1, busy=0.04), 60.0, None, None),
        ("the window is not the state's yet", view(30, busy=0.3), 9.9, None, None),
        ("nothing processed", view(30, processed=0.0, busy=0.3), 60.0, None, None),
    ],
)
def test_a_capacity_floor_is_learned_at_any_load(name, pipeline, in_state_s, floor, capacity):
    d = decide(POLICY, obs(NOW, pipeline), mem(1, entered=NOW - in_state_s), FREQS)
    lr = d.memory.learned[1]
    assert (lr.floor_fps, lr.capacity_fps) == (
        None if floor is None else pytest.approx(floor), None if capacity is None else pytest.approx(capacity)), name


def test_regression_a_sharp_rise_climbed_one_rung_per_up_after_s():
    # Issue 14, mechanism 3. s0 (408 MHz) has run a light load for minutes: 10 frames/s at 25 % busy, a floor
    # of 40 frames/s, never saturated, so no capacity. Demand jumps to 60 frames/s and a backlog grows. By clock
    # s1 does at least 60, s2 90: the need is 60 × 1.25 = 75, so the governor steps straight to s2. Before the
    # fix it stepped to s1 (nothing measured: "the next rung"), then waited up_after_s again in s1 while the
    # queue overflowed.
    light = view(10, latency_ms=100, busy=0.25)
    rise = view(20, latency_ms=400, queue=30, processed=20, busy=0.5, recent_in=60, recent_out=20)
    d, path = run(mem(0, entered=0.0), [(NOW, light), (NOW + 1, light), (NOW + 2, rise), (NOW + 3, rise),
                                        (NOW + 4, rise)])
    assert path == [0, 0, 0, 0, 2], path
    assert d.memory.learned[0].floor_fps == pytest.approx(40.0)
    assert (d.rule, d.reason) == ("slo", "step up s0 → s2: latency p95 400 ms > target 200 ms")


@pytest.mark.parametrize(
    "name, floors, caps, target",
    [
        ("the current state's floor scaled by clock", [40.0], [], 2),  # s1 ≥ 60, s2 ≥ 90 for 75 needed
        ("a low floor: as high as it goes", [20.0], [], 3),  # s2 ≥ 45, s3 ≥ 50
        ("a higher floor elsewhere counts", [20.0, None, None, 90.0], [], 2),  # s2 ≥ 90 × 918/1020 = 81
        ("a measured capacity wins over floors", [40.0], [None, 80.0], 1),
        ("a floor above the clock estimate of a measured state", [None, 70.0], [30.0], 2),  # s2 ≥ 105
        ("nothing known: one rung", [], [], 1),
    ],
)
def test_step_up_target_with_floors(name, floors, caps, target):
    memory = floors_mem(0, floors, up_since_s=NOW - 5)
    caps = [*caps, *[None] * (4 - len(caps))]
    memory = Memory(index=0, entered_s=0.0, up_since_s=NOW - 5,
                    learned=tuple(Learned(floor_fps=lr.floor_fps, capacity_fps=c)
                                  for lr, c in zip(memory.learned, caps)))
    d = decide(POLICY, obs(NOW, view(60, latency_ms=300, busy=None)), memory, FREQS)
    assert (d.rule, d.index) == ("slo", target), (name, d.reason)


# -- 6. exploratory step-downs: not into a state the floor says cannot cope ---------------------------------

def test_regression_step_downs_probed_states_estimated_too_slow():
    # Issue 14, mechanism 6. s2 serves 40 frames/s at 60 % busy: at least 66.7 frames/s per busy second, so s1
    # (612 of 918 MHz) would need to be about 90 % busy with batches as full: it cannot cover 40 × 1.25 = 50.
    # Before the fix, with no state measured saturated, headroom probed it after down_after_s all the same.
    serving = view(40, latency_ms=50, busy=0.6)
    d, path = run(mem(2, entered=0.0), [(NOW + k, serving) for k in range(60)])
    assert path == [2] * 60, path
    assert d.reason == "s1 estimated 44 frames/s < 50 needed (demand 40 × 1.25)"


@pytest.mark.parametrize(
    "name, index, floors, rule, reason",
    [
        ("the clock-scaled floor covers the need: probed", 2, [None, None, 100.0], "headroom",
         "step down s2 → s1: latency p95 50 ms ≤ 50% of the 200 ms target, no backlog; trying the lower state"),
        ("the clock-scaled floor says it cannot cope: held", 2, [None, None, 66.7], "hold",
         "s1 estimated 44 frames/s < 50 needed (demand 40 × 1.25)"),  # 66.7 × 612/918
        ("its own floor is high enough", 2, [None, 50.0, 66.7], "headroom", None),
    ],
)
def test_a_step_down_is_vetoed_by_the_clock_scaled_floor(name, index, floors, rule, reason):
    memory = floors_mem(index, floors, down_since_s=0.0)
    d = decide(POLICY, obs(NOW, view(40, latency_ms=50, busy=0.6)), memory, FREQS)
    assert d.rule == rule, (name, d.reason)
    if reason is not None:
        assert d.reason == reason, name
