"""BoardPhysics: power model, first-order thermal response, throttling, calibration against the reference
measurements and NVIDIA's published ViT-B/16 throughput."""

import math
import time

import pytest

from jetvit_daemon.sim.board import BoardPhysics
from jetvit_daemon.sim.boards import PROFILES, ROLE_PART, ROLE_TOTAL, get_profile, load_conf

MHZ = 1_000_000


def _physics(profile: str, mode: str, cooling: str = "fan", ambient_c: float = 25.0) -> BoardPhysics:
    spec = get_profile(profile)
    conf = load_conf(spec)
    phys = BoardPhysics(spec, cooling=cooling, ambient_c=ambient_c)
    m = conf.mode_by_name(mode)
    assert m is not None
    phys.apply_mode(conf, m)
    return phys


def _power(phys: BoardPhysics, gpu_util: float, cpu_util: float = 0.1) -> float:
    phys.step(0.0, gpu_util, cpu_util)
    return phys.power_w


def test_power_rises_with_frequency_and_utilisation() -> None:
    phys = _physics("orin-nano-super", "MAXN_SUPER")
    table = phys.table_hz()
    by_freq = []
    for f in table:
        phys.set_controls(None, f, table[0], 6, 4)
        by_freq.append(_power(phys, 1.0))
    assert by_freq == sorted(by_freq) and by_freq[-1] > by_freq[0] * 1.8
    phys.set_controls(None, table[-1], table[0], 6, 4)
    by_util = [_power(phys, u / 10) for u in range(11)]
    assert all(b > a for a, b in zip(by_util, by_util[1:]))
    # Dynamic power goes as f·V(f)² with V rising with f: more than linear in f.
    p_low = phys.gpu_power_w_at(1.0, 510 * MHZ, 4)
    p_high = phys.gpu_power_w_at(1.0, 1020 * MHZ, 4)
    assert p_high / p_low > 2.0


def test_calibration_against_orin_nano_samples_29_and_30() -> None:
    phys = _physics("orin-nano", "15W")
    # Sample 30: idle, VDD_IN 4824 mW, VDD_CPU_GPU_CV 518 mW, VDD_SOC 1475 mW.
    phys.step(0.0, 0.0, 0.01)
    assert phys.rails_w["VDD_IN"] == pytest.approx(4.824, rel=0.03)
    assert phys.rails_w["VDD_CPU_GPU_CV"] == pytest.approx(0.518, rel=0.1)
    assert phys.rails_w["VDD_SOC"] == pytest.approx(1.475, rel=0.03)
    # Sample 29: GPU 63 % at 621 MHz (table 624.75), CPUs ~12 %: 12479 / 4667 / 2817 mW.
    assert phys.gpu_freq_hz == 624_750_000
    phys.step(0.0, 0.63, 0.12)
    assert phys.rails_w["VDD_IN"] == pytest.approx(12.479, rel=0.03)
    assert phys.rails_w["VDD_CPU_GPU_CV"] == pytest.approx(4.667, rel=0.05)
    assert phys.rails_w["VDD_SOC"] == pytest.approx(2.817, rel=0.05)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_full_load_stays_within_every_mode_budget(profile: str) -> None:
    spec = get_profile(profile)
    for mode in load_conf(spec).modes:
        phys = _physics(profile, mode.name)
        powers = []
        for _ in range(50):  # mean over a run at full GPU load, default CPU load
            phys.step(0.1, 1.0)
            powers.append(phys.power_w)
        mean_w = sum(powers) / len(powers)
        assert mean_w <= spec.mode_budget_w[mode.name], (mode.name, mean_w)


def test_super_modes_use_their_budgets() -> None:
    full = {m: _power(_physics("orin-nano-super", m), 1.0) for m in ("15W", "25W", "MAXN_SUPER")}
    assert 13.0 < full["15W"] <= 15.0
    assert 20.0 < full["25W"] <= 25.0
    assert full["25W"] < full["MAXN_SUPER"] <= 30.0


def test_nano_idles_near_one_watt_and_stays_under_ten() -> None:
    phys = _physics("nano", "MAXN")
    assert _power(phys, 0.0, 0.01) == pytest.approx(1.0, abs=0.15)
    assert _power(phys, 1.0, 1.0) <= 10.0


def test_rails_add_up_to_the_module_power() -> None:
    for name, spec in PROFILES.items():
        phys = _physics(name, load_conf(spec).modes[0].name)
        phys.step(1.0, 0.8, 0.3)
        total = [r.label for r in spec.rails if r.role == ROLE_TOTAL]
        parts = [r.label for r in spec.rails if r.role == ROLE_PART]
        expected = phys.rails_w[total[0]] if total else sum(phys.rails_w[p] for p in parts)
        assert phys.power_w == pytest.approx(expected), name
    agx = PROFILES["agx-orin-64gb"]
    assert not any(r.role == ROLE_TOTAL for r in agx.rails)  # README: AGX Orin has no total rail


def test_temperature_follows_first_order_response() -> None:
    phys = _physics("orin-nano-super", "25W")
    t0 = phys.tj_c
    phys.step(0.0, 1.0)
    power = phys.power_w
    cooling = get_profile("orin-nano-super").physics.cooling["fan"]
    t_ss = 25.0 + cooling.r_c_per_w * power
    tau = cooling.tau_s
    assert phys.tau_s() == pytest.approx(tau)
    steps = 200
    for _ in range(steps):
        phys.step(tau / steps, 1.0)
    # After one time constant: 63.2 % of the way to the steady state.
    assert (phys.tj_c - t0) / (t_ss - t0) == pytest.approx(1 - math.exp(-1), abs=0.005)
    for _ in range(100):
        phys.step(tau / 10, 1.0)
    assert phys.tj_c == pytest.approx(t_ss, abs=0.01)


def test_worse_cooling_runs_hotter() -> None:
    temps = {}
    for cooling in ("fan", "passive", "enclosure"):
        phys = _physics("orin-nano-super", "15W", cooling=cooling)
        phys.step(10_000.0, 1.0)
        temps[cooling] = phys.tj_c
    # The enclosure keeps the fan (recirculating warmer air): worse than open air, better than no fan at all.
    assert temps["fan"] < temps["enclosure"] < temps["passive"]
    phys = _physics("orin-nano-super", "15W")
    phys.set_controls(phys.mode_cap_hz, phys.devfreq_max_hz, phys.devfreq_min_hz, 6, 4, cooling_failed=True)
    phys.step(10_000.0, 1.0)
    assert phys.tj_c > temps["fan"] + 50  # the fan failed (thermal_runaway fault): R ×4


def test_throttling_engages_at_the_trip_and_releases_below_hysteresis() -> None:
    phys = _physics("orin-nano-super", "MAXN_SUPER", cooling="enclosure")
    assert (phys.throttle_trip_c, phys.throttle_release_c) == (99.0, 94.0)  # tj-thermal passive trip, hyst 5
    phys.tj_c = 98.9
    phys.step(0.0, 1.0)
    assert not phys.throttled and phys.gpu_freq_hz == 1020 * MHZ
    fast_before = phys.inference_time_s(8)
    phys.step(10.0, 1.0)  # enclosure at ~27 W: steady state (25 + 3.0·27 °C) above 99 °C
    assert phys.tj_c >= 99.0
    assert phys.throttled and phys.throttle_events == 1
    assert phys.gpu_freq_hz == 612 * MHZ  # the profile's throttle cap
    assert phys.inference_time_s(8) > fast_before * 1.4
    phys.tj_c = 95.0
    phys.step(0.5, 0.0)
    assert phys.throttled  # between release and trip: still capped
    phys.tj_c = 93.9
    phys.step(0.5, 0.0)
    assert not phys.throttled and phys.gpu_freq_hz == 1020 * MHZ
    assert phys.throttled_time_s == pytest.approx(1.0)


def test_effective_frequency_is_the_lowest_cap_snapped_to_the_table() -> None:
    phys = _physics("orin-nano-super", "25W")
    assert phys.gpu_freq_hz == 918 * MHZ
    phys.set_controls(918 * MHZ, 1020 * MHZ, 306 * MHZ, 6, 4)  # devfreq above the mode cap: the cap wins
    phys.step(0.0, 1.0)
    assert phys.gpu_freq_hz == 918 * MHZ
    phys.set_controls(918 * MHZ, 700 * MHZ, 306 * MHZ, 6, 4)  # not a table value: rounds down
    phys.step(0.0, 1.0)
    assert phys.gpu_freq_hz == 612 * MHZ
    phys.step(0.0, 0.0)
    assert phys.gpu_cur_freq_hz == 306 * MHZ  # idle: devfreq reports the floor


def test_vit_throughput_matches_nvidias_numbers() -> None:
    super_maxn = _physics("orin-nano-super", "MAXN_SUPER")
    assert super_maxn.fps(8) == pytest.approx(158.0, rel=0.05)
    # A physics object not told its mode yet runs the module's own TPCs (4 on the Orin Nano).
    assert BoardPhysics(get_profile("orin-nano-super")).fps(8) == pytest.approx(158.0, rel=0.05)
    original = _physics("orin-nano", "15W")
    assert original.fps(8) == pytest.approx(98.0, rel=0.05)


def test_inference_time_scales_with_one_over_f_and_batch_efficiency_rises() -> None:
    phys = _physics("orin-nano-super", "MAXN_SUPER")
    overhead = phys._vit.overhead_s
    assert 0.0 < overhead < 0.01
    t_fast = phys.inference_time_s(8, 1020 * MHZ) - overhead
    t_slow = phys.inference_time_s(8, 510 * MHZ) - overhead
    assert t_slow == pytest.approx(2 * t_fast)
    fps = [phys.fps(b) for b in (1, 2, 4, 8, 16, 32)]
    assert fps == sorted(fps) and fps[0] < 0.6 * fps[-1]
    # Fewer TPCs (Orin Nano 7W: mask 252, 2 TPCs) are slower at the same clock.
    seven = _physics("orin-nano", "7W")
    assert seven.active_tpcs == 2
    assert seven.fps(8, 408 * MHZ) < _physics("orin-nano", "15W").fps(8, 408 * MHZ) * 0.6


def test_step_is_cheap_enough_for_a_fast_offline_simulation() -> None:
    phys = _physics("orin-nano-super", "25W")
    n = 20_000
    start = time.perf_counter()
    for i in range(n):
        phys.step(0.1, (i % 10) / 10)
    elapsed = time.perf_counter() - start
    # 20 000 ticks of 0.1 s = 2000 s of board time; >1000× real time needs < 2 s (it takes ~0.1 s).
    assert elapsed < 2.0


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="cooling"):
        BoardPhysics(get_profile("nano"), cooling="water")
    phys = _physics("nano", "MAXN")
    with pytest.raises(ValueError):
        phys.step(-1.0, 0.5)
    with pytest.raises(ValueError):
        phys.inference_time_s(0)
    phys.step(0.0, 7.0, -3.0)  # utilisations are clamped to 0..1
    assert (phys.gpu_util, phys.cpu_util) == (1.0, 0.0)
