"""Workload profiles: the model's batch time on each simulated board."""

import pytest

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.sim.board import BoardPhysics, ViTModel
from jetvit_daemon.sim.boards import get_profile
from jetvit_daemon.sim.offline import simulate
from jetvit_daemon.sim.oracle import search_space
from jetvit_daemon.sim.scenario import load_scenario
from jetvit_daemon.sim.workload import builtin_workloads, load_workload


def ms(timing: ViTModel, board: str, batch: int, mhz: float) -> float:
    return timing.inference_time_s(batch, mhz * 1e6, get_profile(board).physics.tpcs_module) * 1000.0


def test_vit_b16_profile_is_the_boards_own_calibration():
    b16 = load_workload("vit-b16")
    for board in ("nano", "orin-nano-super", "agx-orin-64gb"):
        own = ViTModel(get_profile(board).physics.vit)
        assert ms(b16.timing(get_profile(board)), board, 8, 600) == pytest.approx(ms(own, board, 8, 600))


def test_smaller_models_are_faster_by_their_documented_work_ratio():
    assert builtin_workloads() == ["vit-b16", "vit-s16", "vit-tiny16"]
    nano = get_profile("nano")
    b16, tiny = load_workload("vit-b16").timing(nano), load_workload("vit-tiny16").timing(nano)
    assert ms(b16, "nano", 8, 921.6) == pytest.approx(800, rel=0.01)  # the Nano's ~10 FPS estimate
    assert ms(tiny, "nano", 8, 921.6) == pytest.approx(5 + 795 * 0.115, rel=0.01)  # overhead + scaled work
    assert 1000 / ms(tiny, "nano", 1, 921.6) > 30  # one frame well within a 250 ms target


def test_measurements_fix_overhead_and_work(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("""version: 1
name: measured
source: jetvit-daemon bench on a board
measurements:
  - {board: orin-nano-super, gpu_mhz: 1020, batch: 8, ms_per_batch: 20}
  - {board: orin-nano-super, gpu_mhz: 510, batch: 8, ms_per_batch: 38}
""")
    timing = load_workload(str(path)).timing(get_profile("orin-nano-super"))
    assert ms(timing, "orin-nano-super", 8, 1020) == pytest.approx(20)
    assert ms(timing, "orin-nano-super", 8, 510) == pytest.approx(38)
    assert timing.overhead_s == pytest.approx(0.002)
    with pytest.raises(ConfigError, match="no measurement for nano and no relative_work"):
        load_workload(str(path)).timing(get_profile("nano"))


@pytest.mark.parametrize("body, message", [
    ("", r"w\.yaml:1: .*give relative_work .* or measurements"),
    ("relative_work: -1\n", r"w\.yaml:\d: relative_work: Input should be greater than 0"),
    ("measurements:\n  - {board: tx2, gpu_mhz: 1, batch: 1, ms_per_batch: 1}\n",
     r"w\.yaml:\d: measurements\.0: .*no simulated board 'tx2'; valid: agx-orin-64gb"),
])
def test_a_bad_profile_names_file_line_field(tmp_path, body, message):
    path = tmp_path / "w.yaml"
    path.write_text("version: 1\nname: w\nsource: x\n" + body)
    with pytest.raises(ConfigError, match=message):
        load_workload(str(path))
    with pytest.raises(ConfigError, match="no workload profile 'vit-h14': built-in ones are vit-b16"):
        load_workload("vit-h14")


def test_scenario_workload_runs_the_nano_within_its_slo(tmp_path):
    text = "version: 2\nname: n\nduration_s: 120\nworkload: vit-tiny16\ncameras:\n  - count: 2\n    fps: 15\n"
    (tmp_path / "n.yaml").write_text(text)
    scenario = load_scenario(str(tmp_path / "n.yaml"))
    tiny = simulate("nano", "static:MAXN", scenario).summary
    b16 = simulate("nano", "static:MAXN", scenario, workload="vit-b16").summary
    assert tiny["workload"] == "vit-tiny16" and tiny["slo_violation_ratio"] < 0.01
    assert b16["slo_violation_ratio"] > 0.5  # ViT-B/16: ~10 FPS against 30 offered


def test_scenario_workload_file_is_relative_to_the_scenario(tmp_path):
    (tmp_path / "mine.yaml").write_text("version: 1\nname: mine\nsource: s\nrelative_work: 0.5\n")
    (tmp_path / "s.yaml").write_text("version: 2\nname: s\nworkload: mine.yaml\ncameras:\n  - fps: 5\n")
    scenario = load_scenario(str(tmp_path / "s.yaml"))
    assert scenario.workload == str((tmp_path / "mine.yaml").resolve())
    (tmp_path / "bad.yaml").write_text("version: 2\nname: s\nworkload: none.yaml\ncameras:\n  - fps: 5\n")
    with pytest.raises(ConfigError, match=r"none\.yaml"):
        load_scenario(str(tmp_path / "bad.yaml"))


def test_oracle_search_space_uses_the_workload():
    b16 = search_space("nano", slo_ms=250)
    tiny = search_space("nano", slo_ms=250, workload="vit-tiny16")
    top = max(b16.infer_1_s)
    assert tiny.infer_1_s[top] < b16.infer_1_s[top] / 3
    # Waits that fit the SLO: with ViT-B/16 one frame takes ~180 ms, so no wait of 80 ms or more survives.
    assert tiny.size > b16.size


def test_board_physics_takes_a_workload_timing():
    tiny = load_workload("vit-tiny16").timing(get_profile("orin-nano-super"))
    physics = BoardPhysics(get_profile("orin-nano-super"), vit=tiny)
    assert physics.inference_time_s(8, 1020e6) == pytest.approx(tiny.inference_time_s(8, 1020e6, 4))
