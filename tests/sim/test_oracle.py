"""The oracle: the best fixed configuration in hindsight, searched with the offline simulator itself."""

import json

import pytest

from jetvit_daemon.cli import main
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.sim.boards import get_profile
from jetvit_daemon.sim.offline import FixedConfig, parse_fixed, simulate
from jetvit_daemon.sim.oracle import (
    SLO_MET_RATIO,
    CapChoice,
    SearchSpace,
    boot_group,
    format_oracle,
    holds_budget,
    meets_slo,
    non_throttling_key,
    oracle_key,
    search,
    search_space,
)
from jetvit_daemon.sim.scenario import Scenario

BOARD = "orin-nano-super"


def cameras(n, fps=30.0, activity="always", **extra):
    return Scenario(name=f"{n}x{fps:g}", cameras=[{"count": n, "fps": fps, "activity": activity}], **extra)


def two_state_space(board=BOARD, batch=8, wait_ms=40.0):
    """A space anyone can check by hand: the lowest GPU clock in 15W and MAXN_SUPER uncapped."""
    profile = get_profile(board)
    low, top = profile.gpu_table_hz[0], profile.gpu_table_hz[-1]
    return SearchSpace(caps=(CapChoice("15W", low, low), CapChoice("MAXN_SUPER", None, top)), batches=(batch,),
                       waits_ms=(wait_ms,), slo_ms=250.0, infer_1_s={low: 0.0, top: 0.0})


def test_fixed_spec_round_trips_and_bad_specs_say_what_is_valid():
    config = FixedConfig("25W", 318_750_000, 8, 40.0)
    assert config.spec == "fixed:25W:318.75:8:40"  # MHz exactly, not rounded to 318
    assert parse_fixed(config.spec) == config
    assert parse_fixed("fixed:MAXN_SUPER:max:1:0") == FixedConfig("MAXN_SUPER", None, 1, 0.0)
    for bad in ("fixed:25W:612:8", "fixed:25W:fast:8:40", "fixed:25W:612:0:40", "fixed::612:8:40"):
        with pytest.raises(ConfigError, match="fixed:MODE:CAP_MHZ"):
            parse_fixed(bad)


def test_a_fixed_configuration_is_held_for_the_whole_run():
    run = simulate(BOARD, "fixed:15W:408:8:40", cameras(1), duration_s=120)
    assert {(r["mode"], r["gpu_cap_mhz"], r["batch_size"]) for r in run.timeline} == {("15W", 408, 8)}
    assert run.summary["mode_switches"] == 0
    with pytest.raises(ConfigError, match="fixed:MAXN:max:8:40: no such power mode on orin-nano-super"):
        simulate(BOARD, "fixed:MAXN:max:8:40", cameras(1), duration_s=10)


def test_the_search_space_runs_each_board_state_once():
    space = search_space(BOARD)
    # The Super's three modes differ only in their GPU cap: one candidate per table clock, named by the
    # lowest-power mode that reaches it, the top of each mode as `max`.
    assert [c.effective_hz // 1_000_000 for c in space.caps] == [306, 408, 510, 612, 714, 816, 918, 1020]
    assert [(c.mode, c.gpu_cap_hz) for c in space.caps if c.gpu_cap_hz is None] == [
        ("15W", None), ("25W", None), ("MAXN_SUPER", None)]
    grid = space.full_grid(space.caps[0])
    assert [c for c in grid if c.batch_size == 1] == [FixedConfig("15W", 306_000_000, 1, 0.0)]  # wait moot
    tight = search_space(BOARD, slo_ms=60.0)
    assert max(c.batch_wait_ms for c in tight.full_grid(tight.caps[0])) < 60.0
    assert boot_group("orin-nano-super") == ["15W", "25W", "MAXN_SUPER"]


def test_when_both_meet_the_slo_the_cheaper_per_frame_wins():
    found = search(BOARD, cameras(1), duration_s=180, jobs=1, space=two_state_space())
    low, top = (found.evaluated[FixedConfig("15W", 306_000_000, 8, 40.0)],
                found.evaluated[FixedConfig("MAXN_SUPER", None, 8, 40.0)])
    assert meets_slo(low) and meets_slo(top)  # one camera: both keep up
    assert low["energy_per_frame_j"] < top["energy_per_frame_j"]  # the low clock costs less per frame
    assert found.best == FixedConfig("15W", 306_000_000, 8, 40.0) and found.meets_slo


def test_meeting_the_slo_comes_before_energy():
    # Four cameras (120 FPS) overload 306 MHz (about 50 FPS at batch 8); MAXN_SUPER keeps up.
    found = search(BOARD, cameras(4), duration_s=180, jobs=1, space=two_state_space())
    low = found.evaluated[FixedConfig("15W", 306_000_000, 8, 40.0)]
    assert not meets_slo(low) and low["slo_violation_ratio"] > 0.5
    assert found.best == FixedConfig("MAXN_SUPER", None, 8, 40.0) and found.meets_slo


def test_when_nothing_meets_the_slo_the_most_frames_win():
    found = search(BOARD, cameras(8), duration_s=180, jobs=1, space=two_state_space())  # 240 FPS: too many
    assert not found.meets_slo
    assert found.best == FixedConfig("MAXN_SUPER", None, 8, 40.0)
    assert found.best_summary["frames_processed"] == max(s["frames_processed"] for s in found.evaluated.values())


def test_under_a_budget_only_configurations_that_hold_it_can_win():
    # Four cameras under a 12 W budget: MAXN_SUPER keeps up but draws ~20 W, 306 MHz holds the budget and
    # falls behind. Without the budget MAXN_SUPER would win (test_meeting_the_slo_comes_before_energy).
    found = search(BOARD, cameras(4, power_budget_w=12), duration_s=180, jobs=1, space=two_state_space())
    top = found.evaluated[FixedConfig("MAXN_SUPER", None, 8, 40.0)]
    low = found.evaluated[FixedConfig("15W", 306_000_000, 8, 40.0)]
    assert meets_slo(top) and not holds_budget(top) and top["budget_exceeded_s"] > 0.01 * 180
    assert holds_budget(low) and not meets_slo(low)
    assert found.best == FixedConfig("15W", 306_000_000, 8, 40.0) and not found.meets_slo
    assert found.best_non_throttling == FixedConfig("15W", 306_000_000, 8, 40.0)
    assert not found.slo_met_without_throttling
    # Without a budget nothing is held to one.
    assert holds_budget({"budget_exceeded_s": None, "duration_s": 180})
    # What `simulate --policy oracle` prints says so, and why the winner misses the SLO.
    text = format_oracle(found)
    assert "misses the SLO" in text
    assert f"holds the 12 W budget: average over it {low['budget_exceeded_s']:.0f} s (bar 1% of the run)" in text
    assert "some configuration meets the SLO without throttling within the budget: no" in text


def test_the_best_non_throttling_configuration_excludes_any_that_throttled():
    hot = cameras(4, ambient_c=45.0, cooling="enclosure")
    found = search(BOARD, hot, duration_s=1200, jobs=1, space=two_state_space())
    top = found.evaluated[FixedConfig("MAXN_SUPER", None, 8, 40.0)]
    low = found.evaluated[FixedConfig("15W", 306_000_000, 8, 40.0)]
    assert top["throttled_s"] > 0 and low["throttled_s"] == 0
    assert top["frames_processed"] > low["frames_processed"]  # it would have won on frames alone
    assert found.best_non_throttling == FixedConfig("15W", 306_000_000, 8, 40.0)
    assert found.best == FixedConfig("MAXN_SUPER", None, 8, 40.0)  # nothing meets the SLO: most frames
    assert not found.slo_met_without_throttling


def test_the_oracle_beats_or_equals_every_configuration_it_searched_and_every_static_mode():
    bursty = cameras(3, activity={"on_mean_s": 20, "off_mean_s": 30})
    found = search(BOARD, bursty, duration_s=300, seed=3, jobs=2)
    assert len(found.evaluated) < found.space_size  # coarse-to-fine: not the whole grid
    best = oracle_key(found.best_summary)
    assert all(best <= oracle_key(s) for s in found.evaluated.values())
    nt = non_throttling_key(found.best_non_throttling_summary)
    assert all(nt <= k for k in map(non_throttling_key, found.evaluated.values()) if k is not None)
    for mode in boot_group(BOARD):
        static = simulate(BOARD, f"static:{mode}", bursty, duration_s=300, seed=3).summary
        assert best <= oracle_key(static), mode
    # What it reports is what the simulator gives that configuration.
    again = simulate(BOARD, found.best.spec, bursty, duration_s=300, seed=3, timeline=False).summary
    assert again == found.best_summary
    assert found.best_summary["slo_violation_ratio"] <= SLO_MET_RATIO


def test_simulate_policy_oracle_prints_the_winner_and_how_to_reproduce_it(tmp_path, capsys):
    scenario = tmp_path / "two.yaml"
    scenario.write_text("version: 1\nname: two\ncameras:\n  - {count: 2, fps: 30}\n", encoding="utf-8")
    assert main(["simulate", "--policy", "oracle", "--scenario", str(scenario), "--duration", "60",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["controller"] == "oracle" and summary["oracle_meets_slo"] is True
    assert summary["configs_searched"] >= len(search_space(BOARD).caps)
    assert main(["simulate", "--policy", summary["oracle_spec"], "--scenario", str(scenario), "--duration", "60",
                 "--json"]) == 0
    replay = json.loads(capsys.readouterr().out)
    assert replay["energy_per_frame_j"] == summary["energy_per_frame_j"]
    assert main(["simulate", "--policy", "oracle", "--scenario", str(scenario), "--duration", "60"]) == 0
    text = capsys.readouterr().out
    assert f"oracle: {parse_fixed(summary['oracle_spec']).label}" in text
    assert "best non-throttling fixed configuration:" in text
