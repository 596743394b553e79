"""SysfsTelemetry against small fixture trees laid out like the real boards (jetson-reference README:
thermal zones, INA3221 in the JetPack 4 iio and JetPack 5+ hwmon layouts, GPU devfreq)."""

import os
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from jetvit_daemon.clock import ManualClock, SystemClock
from jetvit_daemon.hardware.sensors import SysfsTelemetry, thermal_name
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.hardware.tegrastats import parse_line

ORIN_GPU_DEVFREQ = "/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"
NANO_GPU_DEVFREQ = "/sys/devices/57000000.gpu/devfreq/57000000.gpu"


def put(root: Path, board_path: str, value: str) -> None:
    path = root / board_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")


def zone(root: Path, n: int, zone_type: str, milli_c: str, trips: Tuple[Tuple[int, str, int], ...] = ()) -> None:
    base = f"/sys/class/thermal/thermal_zone{n}"
    put(root, base + "/type", zone_type)
    put(root, base + "/temp", milli_c)
    for k, (temp, kind, hyst) in enumerate(trips):
        put(root, f"{base}/trip_point_{k}_temp", str(temp))
        put(root, f"{base}/trip_point_{k}_type", kind)
        put(root, f"{base}/trip_point_{k}_hyst", str(hyst))


def hwmon(root: Path, chip: str, n: int, channels: Dict[int, Tuple[str, int, int]]) -> None:
    """JetPack 5+ INA3221: in<k>_label, in<k>_input (mV), curr<k>_input (mA)."""
    base = f"/sys/bus/i2c/drivers/ina3221/{chip}/hwmon/hwmon{n}"
    for k, (label, millivolt, milliamp) in channels.items():
        put(root, f"{base}/in{k}_label", label)
        put(root, f"{base}/in{k}_input", str(millivolt))
        put(root, f"{base}/curr{k}_input", str(milliamp))
        put(root, f"{base}/curr{k}_crit", "2000")


def orin_nano_jp6(root: Path) -> None:
    zone(root, 0, "cpu-thermal", "53968", ((99000, "passive", 2000), (103000, "hot", 0), (105000, "critical", 0)))
    zone(root, 1, "gpu-thermal", "53343")
    zone(root, 2, "cv0-thermal", "-256000")  # no DLA on Orin Nano: the sensor reads "off"
    zone(root, 3, "soc0-thermal", "50750")
    zone(root, 10, "tj-thermal", "53968", ((105000, "critical", 0),))
    # VDD_IN 5025 mV × 960 mA = 4824 mW: sample 30's VDD_IN, to cross-check with the tegrastats parser.
    hwmon(
        root,
        "1-0040",
        1,
        {
            1: ("VDD_IN", 5025, 960),
            2: ("VDD_CPU_GPU_CV", 5000, 104),
            3: ("VDD_SOC", 5000, 295),
            7: ("sum of shunt voltages", 40, 0),
        },
    )
    gpu_dev = "/sys/devices/platform/bus@0/17000000.gpu"
    put(root, ORIN_GPU_DEVFREQ + "/cur_freq", "624750000")
    put(root, gpu_dev + "/load", "631")
    # <devfreq>/device is a symlink to the GPU device, as in sysfs.
    os.symlink("../../", root / (ORIN_GPU_DEVFREQ.lstrip("/") + "/device"))


def test_thermal_names_match_tegrastats():
    cases = {
        "cpu-thermal": "cpu",
        "tj-thermal": "tj",
        "soc012-thermal": "soc012",
        "CPU-therm": "cpu",
        "GPU-therm": "gpu",
        "AO-therm": "ao",
        "PMIC-Die": "pmic",
        "thermal-fan-est": "thermal",
        "Tboard_tegra": "tboard",
        "Tdiode_tegra": "tdiode",
        "iwlwifi": "iwlwifi",
        "-thermal": "-thermal",
    }
    assert {t: thermal_name(t) for t in cases} == cases


def test_orin_nano_read_once(tmp_path):
    orin_nano_jp6(tmp_path)
    sensors = SysfsTelemetry(SysfsTree(tmp_path), ManualClock(start_s=50.0), gpu_devfreq_dir=ORIN_GPU_DEVFREQ)
    s = sensors.read_once()
    assert s.t_mono_s == 50.0
    assert s.temps_c == {"cpu": 53.968, "gpu": 53.343, "soc0": 50.75, "tj": 53.968}  # cv0 off: absent
    assert s.rails_w == pytest.approx({"VDD_IN": 4.824, "VDD_CPU_GPU_CV": 0.52, "VDD_SOC": 1.475})
    assert s.board_power_w == pytest.approx(4.824)
    assert s.gpu_freq_hz == 624750000
    assert s.gpu_load_pct == pytest.approx(63.1)
    assert s.cpu_load_pct is None
    assert sensors.read_errors == 0
    assert sensors.gpu_load_path == ORIN_GPU_DEVFREQ + "/device/load"
    assert s.fan_rpm is None  # no tachometer in this tree


@pytest.mark.parametrize("rpm_path", ["/sys/class/hwmon/hwmon3/rpm", "/sys/devices/pwm-fan/rpm_measured"])
def test_fan_tachometer_where_present(tmp_path, rpm_path):
    orin_nano_jp6(tmp_path)
    put(tmp_path, rpm_path, "2873\n")
    s = SysfsTelemetry(SysfsTree(tmp_path), ManualClock(), gpu_devfreq_dir=ORIN_GPU_DEVFREQ).read_once()
    assert s.fan_rpm == 2873


def test_sysfs_and_tegrastats_agree_on_board_power(tmp_path):
    orin_nano_jp6(tmp_path)
    sensors = SysfsTelemetry(SysfsTree(tmp_path), ManualClock())
    line = (
        "06-18-2025 11:25:24 RAM 3452/7620MB (lfb 25x4MB) SWAP 1518/16384MB (cached 174MB) "
        "CPU [1%@1420,2%@1420,0%@1420,2%@1420,2%@729,1%@729] GR3D_FREQ 0% cpu@50.031C soc2@49.031C "
        "soc0@50C gpu@49.031C tj@50.25C soc1@50.25C VDD_IN 4824mW/4824mW VDD_CPU_GPU_CV 518mW/518mW "
        "VDD_SOC 1475mW/1475mW"
    )  # jetson-reference sample 30 (Orin Nano, JetPack 6)
    reading = parse_line(line)
    assert reading.board_power_mw is not None
    assert sensors.read_once().board_power_w == pytest.approx(reading.board_power_mw / 1000.0)
    assert set(sensors.read_once().temps_c) <= set(reading.temps_c)  # same names from both sources


def test_thermal_zones_with_trip_points(tmp_path):
    orin_nano_jp6(tmp_path)
    zones = SysfsTelemetry(SysfsTree(tmp_path), ManualClock()).thermal_zones()
    assert [z.name for z in zones] == ["cpu", "gpu", "cv0", "soc0", "tj"]  # zone10 after zone3
    cpu = zones[0]
    assert cpu.type == "cpu-thermal" and cpu.path == "/sys/class/thermal/thermal_zone0"
    assert cpu.temp_c == pytest.approx(53.968)
    assert [(t.index, t.temp_c, t.type, t.hyst_c) for t in cpu.trips] == [
        (0, 99.0, "passive", 2.0),
        (1, 103.0, "hot", 0.0),
        (2, 105.0, "critical", 0.0),
    ]
    assert zones[2].temp_c is None  # -256000: sensor off
    assert zones[4].trips[0].temp_c == 105.0


def test_trip_points_are_read_at_call_time(tmp_path):
    orin_nano_jp6(tmp_path)
    sensors = SysfsTelemetry(SysfsTree(tmp_path), ManualClock())
    put(tmp_path, "/sys/class/thermal/thermal_zone0/trip_point_0_temp", "95000")
    assert sensors.thermal_zones()[0].trips[0].temp_c == 95.0


def test_nano_jp4_iio_rails_and_gpu_load_fallback(tmp_path):
    # Jetson Nano, JetPack 4: thermal zone names and INA3221 rails as on the board (sample 5 values).
    for n, (zone_type, milli_c) in enumerate(
        [("AO-therm", "65000"), ("CPU-therm", "60500"), ("GPU-therm", "59000"), ("PLL-therm", "57000"),
         ("PMIC-Die", "100000"), ("thermal-fan-est", "59750")]
    ):  # fmt: skip
        zone(tmp_path, n, zone_type, milli_c)
    base = "/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for k, (name, power_mw) in enumerate([("POM_5V_IN", 4520), ("POM_5V_GPU", 0), ("POM_5V_CPU", 1078)]):
        put(tmp_path, f"{base}/rail_name_{k}", name)
        put(tmp_path, f"{base}/in_power{k}_input", str(power_mw))
        put(tmp_path, f"{base}/in_current{k}_input", "1")
        put(tmp_path, f"{base}/in_voltage{k}_input", "5000")
    put(tmp_path, NANO_GPU_DEVFREQ + "/cur_freq", "76800000")
    put(tmp_path, "/sys/devices/gpu.0/load", "990")
    sensors = SysfsTelemetry(SysfsTree(tmp_path), ManualClock(), gpu_devfreq_dir=NANO_GPU_DEVFREQ + "/")
    s = sensors.read_once()
    assert s.temps_c == {"ao": 65.0, "cpu": 60.5, "gpu": 59.0, "pll": 57.0, "pmic": 100.0, "thermal": 59.75}
    assert s.hottest_c == 65.0  # the Nano's fixed PMIC 100 °C is not a measurement
    assert s.rails_w == {"POM_5V_IN": 4.52, "POM_5V_GPU": 0.0, "POM_5V_CPU": 1.078}
    assert s.board_power_w == pytest.approx(4.52)
    assert [r.layout for r in sensors.rails] == ["iio"] * 3
    assert s.gpu_freq_hz == 76800000 and s.gpu_load_pct == 99.0
    assert sensors.gpu_load_path == "/sys/devices/gpu.0/load"


def test_agx_orin_hwmon_sums_parts_and_skips_nc(tmp_path):
    hwmon(tmp_path, "1-0040", 1, {1: ("VDD_GPU_SOC", 5000, 468), 2: ("VDD_CPU_CV", 5000, 78),
                                  3: ("VIN_SYS_5V0", 5000, 805), 7: ("sum of shunt voltages", 10, 0)})  # fmt: skip
    hwmon(tmp_path, "1-0041", 2, {1: ("NC", 0, 0), 2: ("VDDQ_VDD2_1V8AO", 5000, 60), 3: ("NC", 0, 0)})
    sensors = SysfsTelemetry(SysfsTree(tmp_path), ManualClock())
    assert sorted(r.name for r in sensors.rails) == ["VDDQ_VDD2_1V8AO", "VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0"]
    s = sensors.read_once()
    assert s.rails_w == pytest.approx({"VDD_GPU_SOC": 2.34, "VDD_CPU_CV": 0.39, "VIN_SYS_5V0": 4.025,
                                       "VDDQ_VDD2_1V8AO": 0.3})  # fmt: skip
    assert s.board_power_w == pytest.approx(2.34 + 0.39 + 4.025)  # sample 23's sum, memory sub-rail left out
    assert s.temps_c == {} and s.gpu_freq_hz is None and s.gpu_load_pct is None


def test_unreadable_sensor_is_counted_not_silent(tmp_path):
    orin_nano_jp6(tmp_path)
    events: List[Tuple[str, str]] = []
    sensors = SysfsTelemetry(SysfsTree(tmp_path), ManualClock(), on_event=lambda k, m: events.append((k, m)))
    broken = tmp_path / "sys/class/thermal/thermal_zone3/temp"
    broken.unlink()
    broken.mkdir()  # reading it fails with EISDIR, as a read of a broken sensor fails with EIO
    put(tmp_path, "/sys/class/thermal/thermal_zone1/temp", "n/a")  # garbage: EINVAL
    s = sensors.read_once()
    assert "soc0" not in s.temps_c and "gpu" not in s.temps_c
    assert sensors.read_errors == 2
    sensors.read_once()
    assert sensors.read_errors == 4
    kinds = [k for k, _ in events]
    assert kinds == ["sensor_read_error", "sensor_read_error"]  # reported once per failing file
    assert any("thermal_zone3/temp" in m for _, m in events)
    put(tmp_path, "/sys/class/thermal/thermal_zone1/temp", "41000")
    assert sensors.read_once().temps_c["gpu"] == 41.0


def test_a_vanished_sensor_is_simply_absent(tmp_path):
    orin_nano_jp6(tmp_path)
    sensors = SysfsTelemetry(SysfsTree(tmp_path), ManualClock(), gpu_devfreq_dir=ORIN_GPU_DEVFREQ)
    (tmp_path / "sys/class/thermal/thermal_zone1/temp").unlink()
    (tmp_path / "sys/devices/platform/bus@0/17000000.gpu/load").unlink()
    s = sensors.read_once()
    assert "gpu" not in s.temps_c and s.gpu_load_pct is None
    assert sensors.read_errors == 0


def test_no_sensors_at_all(tmp_path):
    sensors = SysfsTelemetry(SysfsTree(tmp_path), ManualClock(), gpu_devfreq_dir="/sys/class/devfreq/none")
    s = sensors.read_once()
    assert (s.temps_c, s.rails_w, s.board_power_w, s.gpu_freq_hz, s.gpu_load_pct) == ({}, {}, None, None, None)


def test_poll_thread_start_stop_and_staleness(tmp_path):
    orin_nano_jp6(tmp_path)
    sensors = SysfsTelemetry(SysfsTree(tmp_path), SystemClock(), interval_s=0.05, gpu_devfreq_dir=ORIN_GPU_DEVFREQ)
    assert sensors.is_stale() and sensors.latest() is None
    sensors.start()
    try:
        deadline = time.monotonic() + 5
        while sensors.latest() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        first = sensors.latest()
        assert first is not None and first.board_power_w == pytest.approx(4.824)
        assert not sensors.is_stale()
        put(tmp_path, "/sys/class/thermal/thermal_zone10/temp", "70000")
        deadline = time.monotonic() + 5
        while (sensors.latest() or first).temps_c.get("tj") != 70.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (sensors.latest() or first).temps_c["tj"] == 70.0
    finally:
        start = time.monotonic()
        sensors.stop()
        assert time.monotonic() - start < 1.0
    assert not any(t.name == "sysfs-telemetry" for t in threading.enumerate())
    assert sensors.tick_errors == 0 and sensors.failure is None


def test_staleness_uses_the_injected_clock(tmp_path):
    orin_nano_jp6(tmp_path)
    clock = ManualClock()
    sensors = SysfsTelemetry(SysfsTree(tmp_path), clock, interval_s=1.0)
    sensors.start()
    try:
        deadline = time.monotonic() + 5
        while sensors.latest() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sensors.stop()
    assert not sensors.is_stale()
    clock.advance(2.9)
    assert not sensors.is_stale()
    clock.advance(0.2)
    assert sensors.is_stale()
