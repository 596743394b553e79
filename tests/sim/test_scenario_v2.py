"""Scenario format v2: schedules, cameras that start and stop, traces; version 1 files unchanged."""

import csv

import pytest

from jetvit_daemon.cli import main
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.sim.offline import simulate
from jetvit_daemon.sim.scenario import (
    SCENARIO_DIR,
    AmbientSchedule,
    FpsSchedule,
    builtin_scenarios,
    compile_schedule,
    load_scenario,
)


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def offered_per_second(rows):
    return [r["fps_offered"] for r in rows]


def test_every_version_1_file_still_loads_and_a_v2_copy_runs_the_same(tmp_path):
    for name in builtin_scenarios():
        v1 = (SCENARIO_DIR / f"{name}.yaml").read_text()
        assert "version: 1" in v1
        v2 = write(tmp_path, v1.replace("version: 1", "version: 2"), f"{name}.yaml")
        a = simulate("orin-nano-super", "threshold", load_scenario(name), duration_s=120, seed=3).summary
        b = simulate("orin-nano-super", "threshold", load_scenario(v2), duration_s=120, seed=3).summary
        assert a == b


def test_a_version_1_file_using_v2_fields_is_told_to_say_version_2(tmp_path):
    path = write(tmp_path, "version: 1\nname: x\ncameras:\n  - fps: {steps: [[0, 5], [60, 30]]}\n"
                           "    start_s: 10\n")
    with pytest.raises(ConfigError, match=r"s\.yaml:1: .*cameras\.0\.start_s, cameras\.0\.fps \(a schedule\): "
                                          r"version 2 only \(set version: 2\)"):
        load_scenario(path)


def test_step_schedule_sets_each_second_s_rate():
    sched = compile_schedule(FpsSchedule(steps=[(0, 5), (10, 30), (20, 0)]))
    assert [sched.at(t) for t in (0, 9.9, 10, 19.9, 20, 1e6)] == [5, 5, 30, 30, 0, 0]
    rep = compile_schedule(FpsSchedule(steps=[(0, 5), (50, 120)], repeat_s=60))
    assert [rep.at(t) for t in (0, 49, 50, 59, 60, 110, 121)] == [5, 5, 120, 120, 5, 120, 5]


def test_points_ramp_and_sine_shapes():
    points = compile_schedule(AmbientSchedule(points=[(0, 20), (100, 40)]))
    assert points.at(50) == pytest.approx(30) and points.at(-1) == 20 and points.at(500) == 40
    ramp = compile_schedule(AmbientSchedule.model_validate({"ramp": {"from": 25, "to": 45, "start_s": 100,
                                                                     "end_s": 300}}))
    assert (ramp.at(0), ramp.at(200), ramp.at(400)) == (25, pytest.approx(35), 45)
    sine = compile_schedule(AmbientSchedule.model_validate({"sine": {"mean": 30, "amplitude": 10,
                                                                     "period_s": 400}}))
    assert (sine.at(0), sine.at(100), sine.at(300)) == (pytest.approx(30), pytest.approx(40), pytest.approx(20))


def test_cameras_follow_their_schedule_and_start_and_stop(tmp_path):
    path = write(tmp_path, """version: 2
name: steps
duration_s: 60
cameras:
  - name: spike
    fps: {steps: [[0, 5], [20, 30], [40, 5]]}
  - name: late
    fps: 10
    start_s: 30
    stop_s: 50
""")
    rows = simulate("orin-nano-super", "static:MAXN_SUPER", load_scenario(path), seed=1).timeline
    fps = offered_per_second(rows)
    assert sum(fps[2:19]) / 17 == pytest.approx(5, abs=0.5)     # spike group alone, 5 FPS
    assert sum(fps[21:29]) / 8 == pytest.approx(30, abs=1)       # 30 FPS before the late camera
    assert sum(fps[31:39]) / 8 == pytest.approx(40, abs=1)       # + the late camera's 10
    assert sum(fps[41:49]) / 8 == pytest.approx(15, abs=1)       # back to 5, late still on
    assert sum(fps[51:59]) / 8 == pytest.approx(5, abs=0.5)      # late camera stopped


def test_ambient_schedule_heats_the_board_and_is_in_the_timeline(tmp_path):
    text = ("version: 2\nname: hot-afternoon\nduration_s: 600\ncooling: enclosure\n"
            "ambient_c: {ramp: {from: 25, to: 45, start_s: 0, end_s: 600}}\ncameras:\n  - count: 2\n    fps: 30\n")
    rows = simulate("orin-nano-super", "static:15W", load_scenario(write(tmp_path, text)), seed=0).timeline
    assert rows[0]["ambient_c"] == pytest.approx(25, abs=0.1) and rows[-1]["ambient_c"] == pytest.approx(45, abs=0.1)
    assert rows[-1]["temp_c"] > rows[100]["temp_c"] + 10  # the board follows its ambient


def test_budget_schedule_is_scored_and_given_to_a_policy_without_one(tmp_path):
    text = ("version: 2\nname: b\nduration_s: 300\npower_budget_w: {steps: [[0, 30], [150, 14]]}\n"
            "cameras:\n  - count: 4\n    fps: 30\n")
    scenario = load_scenario(write(tmp_path, text))
    static = simulate("orin-nano-super", "static:MAXN_SUPER", scenario)
    assert [r["budget_w"] for r in static.timeline][::100] == [30, 30, 14]
    # MAXN_SUPER at 120 FPS draws ~20 W: within 30 W, over 14 W from the step on.
    assert static.summary["budget_exceeded_s"] == pytest.approx(150, abs=1)
    assert static.summary["power_budget_scheduled"] is True
    from jetvit_daemon.governor.policy import DEFAULT_POLICY_FILE

    governed = simulate("orin-nano-super", str(DEFAULT_POLICY_FILE), scenario)
    late = [r for r in governed.timeline if r["t_s"] > 200]
    assert sum(r["power_w"] for r in late) / len(late) < 14  # it heard of the lower budget: stepped down
    assert governed.summary["budget_exceeded_s"] < static.summary["budget_exceeded_s"]


def test_trace_replay_sources_and_ambient(tmp_path):
    with open(tmp_path / "site.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "door", "yard", "ambient_c"])
        w.writerow([0, 5, 0, 20])
        w.writerow([10, 5, 25, 30])
        w.writerow([20, 0, 10, 35])
    path = write(tmp_path, "version: 2\nname: replay\nduration_s: 30\ntrace: site.csv\n")
    scenario = load_scenario(path)
    assert [g.name for g in scenario.cameras] == ["door", "yard"]
    rows = simulate("orin-nano-super", "static:MAXN_SUPER", scenario, seed=2).timeline
    fps = offered_per_second(rows)
    assert sum(fps[1:9]) / 8 == pytest.approx(5, abs=0.5)
    assert sum(fps[11:19]) / 8 == pytest.approx(30, abs=1)
    assert sum(fps[21:29]) / 8 == pytest.approx(10, abs=1)
    assert [rows[i]["ambient_c"] for i in (5, 15, 25)] == [20, 30, 35]


@pytest.mark.parametrize("csv_text, message", [
    ("", r"empty; expected a header t_s"),
    ("time,a\n0,1\n", r"t\.csv:1: the first column must be t_s"),
    ("t_s,a\n0,1\n1,x\n", r"t\.csv:3: column a: 'x' is not a number"),
    ("t_s,a\n0,1\n0,2\n", r"t\.csv:3: column t_s: times must be ≥ 0 and increase"),
    ("t_s,a\n0,1,2\n", r"t\.csv:2: 3 values, the header has 2 columns"),
    ("t_s,a\n0,500\n", r"t\.csv:2: column a: 500 fps is outside 0 ≤ fps ≤ 240"),
    ("t_s,a,ambient_c\n0,5,99\n", r"t\.csv:2: column ambient_c: 99 °C is outside -40 ≤ ambient °C ≤ 85"),
])
def test_a_bad_trace_names_file_line_column_and_what_is_valid(tmp_path, csv_text, message):
    (tmp_path / "t.csv").write_text(csv_text)
    with pytest.raises(ConfigError, match=message):
        load_scenario(write(tmp_path, "version: 2\nname: x\ntrace: t.csv\n"))


def test_a_missing_trace_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"gone\.csv: cannot read the trace"):
        load_scenario(write(tmp_path, "version: 2\nname: x\ntrace: gone.csv\n"))


@pytest.mark.parametrize("fps, message", [
    ("fast", r"cameras\.0\.fps: .*a number \(0 ≤ fps ≤ 240\) or a schedule: \{steps"),
    ("{stepz: [[0, 5]]}", r"cameras\.0\.fps\.stepz: unknown field; valid here: constant, points, ramp, "
                          r"repeat_s, sine, steps"),
    ("{steps: [[10, 5], [5, 30]]}", r"cameras\.0\.fps: .*times .* must increase"),
    ("{steps: [[0, 5], [5, 300]]}", r"cameras\.0\.fps: .*0 ≤ fps ≤ 240 throughout; this schedule spans 5\.\.300"),
    ("{steps: [[0, 5]], points: [[0, 1]]}", r"cameras\.0\.fps: .*exactly one shape, got steps, points"),
    ("{steps: [[0, 5], [70, 1]], repeat_s: 60}", r"cameras\.0\.fps: .*with repeat_s 60 every time must be below it"),
    ("0", r"cameras\.0\.fps: .*a constant rate must be > 0"),
])
def test_a_bad_schedule_names_file_line_field_and_what_is_valid(tmp_path, fps, message):
    path = write(tmp_path, f"version: 2\nname: x\ncameras:\n  - fps: {fps}\n")
    with pytest.raises(ConfigError, match=r"s\.yaml:4: " + message):
        load_scenario(path)


def test_timeline_rule_and_reason_name_each_move(tmp_path):
    out = tmp_path / "out"
    assert main(["simulate", "--scenario", "bursty", "--duration", "300", "--out", str(out), "--json"]) == 0
    with open(out / "timeline.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    moves = [(a, b) for a, b in zip(rows, rows[1:]) if a["state"] != b["state"]]
    assert moves
    for _, after in moves:
        assert after["rule"] in ("stale", "critical", "hot", "budget", "slo", "headroom")
        assert "→" in after["reason"] and after["state"] in after["reason"]
    static = simulate("orin-nano-super", "static:15W", load_scenario("steady"), duration_s=5).timeline
    assert {r["rule"] for r in static} == {"fixed"}
