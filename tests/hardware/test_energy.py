"""BoardMeter: energy from successive power readings, the share attributed to inference, throttled time."""

import math

import pytest

from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.hardware.energy import BoardMeter, PassiveTrip, passive_trips
from jetvit_daemon.hardware.sensors import ThermalZone, TripPoint


def sample(t: float, power_w=None, tj=None, load=None, freq=None) -> TelemetrySample:
    return TelemetrySample(t_mono_s=t, board_power_w=power_w, temps_c={} if tj is None else {"tj": tj},
                           gpu_load_pct=load, gpu_freq_hz=freq)


def test_board_energy_is_the_trapezoid_of_power_over_time():
    meter = BoardMeter()
    for t, p in [(0.0, 5.0), (1.0, 7.0), (3.0, 7.0), (3.5, 12.0)]:
        meter.feed(sample(t, p), busy_fraction=0.0)
    assert meter.board_energy_j == pytest.approx(6.0 + 14.0 + 4.75)


def test_a_sine_power_trace_integrates_within_half_a_percent():
    meter = BoardMeter()
    exact = 0.0
    dt = 0.2
    for i in range(301):
        t = i * dt
        meter.feed(sample(t, 8.0 + 3.0 * math.sin(t / 5.0)), busy_fraction=0.5)
    exact = 8.0 * 60.0 + 15.0 * (1 - math.cos(60.0 / 5.0))
    assert meter.board_energy_j == pytest.approx(exact, rel=0.005)


def test_inference_energy_is_power_above_idle_times_busy_share():
    meter = BoardMeter()
    meter.feed(sample(0.0, 5.0), busy_fraction=0.0, mode="15W")  # idle reading: P_idle = 5 W
    meter.feed(sample(1.0, 5.0), busy_fraction=0.0, mode="15W")
    meter.feed(sample(2.0, 11.0), busy_fraction=0.5, mode="15W")  # mean 8 W: 3 W above idle, half the time
    assert meter.inference_energy_j == pytest.approx(1.5)
    assert meter.board_energy_j == pytest.approx(5.0 + 8.0)
    assert meter.inference_energy_j < meter.board_energy_j


def test_idle_power_is_relearned_after_a_mode_change():
    meter = BoardMeter()
    meter.feed(sample(0.0, 4.0), 0.0, mode="15W")
    meter.feed(sample(1.0, 9.0), 0.0, mode="MAXN_SUPER")
    assert meter.idle_power_w == 9.0


def test_a_gap_in_telemetry_is_not_guessed():
    meter = BoardMeter(max_gap_s=5.0)
    meter.feed(sample(0.0, 10.0), 1.0)
    meter.feed(sample(60.0, 10.0), 1.0)  # a minute without readings
    assert meter.board_energy_j == 0.0 and meter.unmetered_s == 60.0
    meter.feed(sample(61.0, 10.0), 1.0)
    assert meter.board_energy_j == pytest.approx(10.0)


def test_a_missing_power_reading_is_unmetered_not_zero_watts():
    meter = BoardMeter()
    meter.feed(sample(0.0, 10.0), 1.0)
    meter.feed(sample(1.0, None), 1.0)
    meter.feed(sample(2.0, 10.0), 1.0)
    assert meter.board_energy_j == 0.0 and meter.unmetered_s == 2.0


def test_throttled_from_the_passive_trip_with_hysteresis():
    meter = BoardMeter({"tj": PassiveTrip("tj", 99.0, hyst_c=5.0)})
    temps = [90.0, 99.5, 97.0, 95.5, 94.0, 93.0]
    states = []
    for t, tj in enumerate(temps):
        meter.feed(sample(float(t), 10.0, tj=tj), 1.0)
        states.append(meter.throttled)
    # hot at 99.5, stays hot above 99 − 5 = 94, released at 94
    assert states == [False, True, True, True, False, False]
    assert meter.throttled_s == pytest.approx(3.0)


def test_throttled_from_a_busy_gpu_clocked_below_the_applied_cap():
    meter = BoardMeter()
    meter.feed(sample(0.0, 10.0, load=99.0, freq=612e6), 1.0, gpu_cap_hz=1020e6)
    assert meter.throttled
    meter.feed(sample(1.0, 10.0, load=99.0, freq=1020e6), 1.0, gpu_cap_hz=1020e6)
    assert not meter.throttled
    meter.feed(sample(2.0, 10.0, load=20.0, freq=306e6), 1.0, gpu_cap_hz=1020e6)
    assert not meter.throttled  # a lightly loaded GPU is clocked down by its devfreq governor, not throttled


def test_passive_trips_come_from_the_thermal_zones():
    zones = [
        ThermalZone("/z0", "tj-thermal", "tj", 50.0,
                    (TripPoint(0, 105.0, "critical", None), TripPoint(1, 99.0, "passive", 2.0))),
        ThermalZone("/z1", "cv0-thermal", "cv0", None, ()),
    ]
    assert passive_trips(zones) == {"tj": PassiveTrip("tj", 99.0, 2.0)}
