"""The governor's evaluation suite (benchmarks/bench_governor.py's SUITE, benchmarks/scenarios/): every
registered scenario loads, names a real board, boot mode and workload, says what it models, and the board's
policy can be applied there; the suite covers issue 14's list of loads and boards."""

import importlib.util
from pathlib import Path

import pytest

from jetvit_daemon.governor.policy_check import load_checked
from jetvit_daemon.sim.boards import get_profile, load_conf
from jetvit_daemon.sim.offline import board_facts, simulate
from jetvit_daemon.sim.oracle import boot_group
from jetvit_daemon.sim.scenario import compile_schedule, load_scenario, load_trace
from jetvit_daemon.sim.workload import board_timing, load_workload

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_governor", ROOT / "benchmarks" / "bench_governor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
SUITE = BENCH.SUITE
IDS = [c.name for c in SUITE]


def test_names_are_unique_and_every_scenario_file_is_registered():
    assert len(IDS) == len(set(IDS))
    own = {p.stem for p in (ROOT / "benchmarks" / "scenarios").glob("*.yaml")}
    assert own <= set(IDS), f"scenario files not in the suite: {sorted(own - set(IDS))}"
    assert set(BENCH.QUICK) <= set(IDS)


@pytest.mark.parametrize("case", SUITE, ids=IDS)
def test_every_registered_scenario_loads_on_a_real_board_with_its_policy(case):
    path = BENCH.scenario_path(case.name)
    assert path.exists(), path
    scenario = load_scenario(str(path))
    assert scenario.name == case.name  # what the tables print is the file's own name
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#") and len(text.split("\nversion:")[0]) > 80, "say what it models in a comment"
    profile = get_profile(case.board)
    conf = load_conf(profile)
    group = boot_group(case.board, case.boot_mode)  # ConfigError for a mode the board lacks
    assert BENCH.top_mode(case.board, case.boot_mode) in group
    if scenario.workload is not None:
        assert load_workload(scenario.workload).max_batch >= 1
    board_timing(profile, scenario.workload)
    if scenario.trace is not None:
        assert load_trace(path.parent / scenario.trace).times_s
    for group_ in scenario.cameras:
        low, high = group_.fps.value_range()
        assert 0 <= low <= high
        compile_schedule(group_.fps).at(scenario.duration_s / 2)
    policy = BENCH.policy_for(case.board, {})
    assert policy is not None, f"no shipped policy for {case.board}"
    boot = conf.mode_by_name(case.boot_mode) if case.boot_mode else conf.default_mode
    load_checked(policy, board_facts(profile, conf, boot))  # PolicyError: never applicable there


@pytest.mark.parametrize("case", [c for c in SUITE if not c.shipped], ids=[c.name for c in SUITE if not c.shipped])
def test_every_evaluation_scenario_offers_frames_in_its_first_minutes(case):
    scenario = load_scenario(str(BENCH.scenario_path(case.name)))
    policy = BENCH.policy_for(case.board, {})
    s = simulate(case.board, str(policy), scenario, duration_s=min(scenario.duration_s, 400.0), timeline=False,
                 boot_mode=case.boot_mode).summary
    assert s["frames_offered"] > 0 and s["frames_processed"] > 0
    assert s["boot_mode"] == (case.boot_mode or load_conf(get_profile(case.board)).default_mode.name)


def test_the_suite_covers_issue_14s_boards_and_loads():
    boards = {c.board for c in SUITE}
    assert {"orin-nano-super", "orin-nx-16gb", "agx-orin-64gb", "nano"} <= boards
    agx = [c for c in SUITE if c.board == "agx-orin-64gb"]
    assert agx and all(c.boot_mode == "MAXN" for c in agx)  # its high-performance reboot group
    for c in (c for c in SUITE if c.board == "nano"):
        assert load_scenario(str(BENCH.scenario_path(c.name))).workload == "vit-tiny16"
    scenarios = {c.name: load_scenario(str(BENCH.scenario_path(c.name))) for c in SUITE}
    assert any(s.cooling == "passive" for s in scenarios.values())  # fanless
    assert any(s.ambient_c.constant is None for s in scenarios.values())  # rising ambient
    budgets = [s for s in scenarios.values() if s.power_budget_w is not None]
    assert any(any(g.activity != "always" for g in s.cameras) for s in budgets)  # budget with bursty load
    assert any(g.start_s > 0 or g.stop_s is not None for s in scenarios.values() for g in s.cameras)  # come, go
    assert any(sum(g.count for g in s.cameras) == 1 and g.fps.constant == 5 for s in scenarios.values()
               for g in s.cameras)  # a trickle of 5 FPS
    assert "super-budget-3841" in scenarios and scenarios["super-budget-3841"].power_budget_w.constant == 15
