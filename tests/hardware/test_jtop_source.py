"""The optional jtop source: a clear error when jetson-stats is missing, and the stats mapping."""

import sys

import pytest

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.errors import TelemetryError
from jetvit_daemon.hardware.jtop_source import JtopTelemetry, sample_from_jtop


def test_missing_jetson_stats_is_a_clear_telemetry_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", None)  # makes `import jtop` raise ImportError
    with pytest.raises(TelemetryError) as info:
        JtopTelemetry(ManualClock())
    message = str(info.value)
    assert "jetson-stats" in message and "jetvit-daemon[jtop]" in message
    assert isinstance(info.value.__cause__, ImportError)


def test_sample_from_jtop_stats():
    stats = {
        "time": "2024-11-15 08:38:09",
        "CPU1": 15,
        "CPU2": 11,
        "CPU3": "OFF",
        "GPU": 63.0,
        "Temp cpu": 53.968,
        "Temp cv0": -256,
        "Temp tj": 53.968,
        "Power VDD_IN": 12479,
        "Power VDD_SOC": 2817,
        "Power TOT": 19963,  # jtop's plain sum of every rail: not the module power
        "jetson_clocks": "OFF",
    }
    gpu = {"gpu": {"status": {"load": 63.0}, "freq": {"cur": 621000, "max": 624750}}}
    s = sample_from_jtop(stats, gpu, t_mono_s=3.0)
    assert s.t_mono_s == 3.0
    assert s.gpu_load_pct == 63.0 and s.gpu_freq_hz == 621e6
    assert s.cpu_load_pct == 13.0
    assert s.temps_c == {"cpu": 53.968, "tj": 53.968}
    assert s.rails_w == {"VDD_IN": 12.479, "VDD_SOC": 2.817}
    assert s.board_power_w == pytest.approx(12.479)
