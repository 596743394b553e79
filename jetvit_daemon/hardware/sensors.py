"""Direct sysfs sensors: thermal zones, INA3221 power monitors and GPU devfreq load/clock.

The second telemetry source beside tegrastats, and the cross-check of it: the same numbers read straight from
the kernel. Discovery happens once, at construction, by globbing for the files each JetPack layout has
(probe once, then branch on which files exist, never on board names); every later poll only reads.
All paths are board paths read through the injected `SysfsTree`.
"""

import errno
import logging
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from jetvit_daemon.clock import Clock
from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.hardware.tegrastats import board_power_from_rails, is_sensor_off_c
from jetvit_daemon.hardware.telemetry_thread import ThreadedTelemetry

log = logging.getLogger(__name__)

__all__ = ["PowerRailChannel", "SysfsTelemetry", "ThermalZone", "TripPoint", "first_throttling_trip_c",
           "thermal_name", "throttle_trips_c"]

_THERMAL_GLOB = "/sys/class/thermal/thermal_zone*"
# JetPack 4 (L4T 32) INA3221 driver "ina3221x" exposes an iio device per chip (jetson-reference README).
_IIO_RAIL_GLOB = "/sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*"
# JetPack 5+ uses the mainline "ina3221" hwmon driver (jetson-reference README).
_HWMON_LABEL_GLOB = "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_label"
# Channels that carry no rail: unconnected ones, and the chip's summing channel (hwmon in7 on JetPack 5+).
_SKIP_LABELS = ("NC", "sum of shunt voltages")
# GPU load when the devfreq device has none under it: JetPack 4 Nano/TX1/TX2/Xavier expose it at
# /sys/devices/gpu.0/load (jetson_stats and tegrastats read it there); JetPack 5/6 at <devfreq>/device/load.
_JP4_GPU_LOAD = "/sys/devices/gpu.0/load"

# Fan tachometers: `rpm` under the pwm-fan/tachometer hwmon device (JetPack 5+), `rpm_measured` under
# /sys/devices/pwm-fan (JetPack 4: Nano, Xavier); the same files jetson_stats reads (jtop/core/fan.py).
_FAN_RPM_GLOBS = ("/sys/class/hwmon/hwmon*/rpm", "/sys/devices/pwm-fan/rpm_measured",
                  "/sys/devices/platform/pwm-fan/hwmon/hwmon*/rpm")

# Trip types at which the kernel slows the chip: "passive" (software throttling, Orin 99 °C) and "hot"
# (hardware throttling, Orin 103 °C). "active" starts a fan, "critical" shuts down: neither throttles.
THROTTLING_TRIP_TYPES = ("passive", "hot")

_TRIP_RE = re.compile(r"trip_point_([0-9]+)_temp")
_IIO_RE = re.compile(r"rail_name_([0-9]+)")
_HWMON_RE = re.compile(r"in([0-9]+)_label")


@dataclass(frozen=True)
class TripPoint:
    """A thermal zone trip point: at `temp_c` the kernel acts (`type`: passive, active, hot, critical)."""

    index: int
    temp_c: float
    type: Optional[str]
    hyst_c: Optional[float]


@dataclass(frozen=True)
class ThermalZone:
    """One /sys/class/thermal zone at the time it was read. `temp_c` None: sensor off or unreadable."""

    path: str  # board path of the zone directory
    type: str  # as the kernel names it ("CPU-therm", "tj-thermal")
    name: str  # as tegrastats names it ("cpu", "tj"), see thermal_name()
    temp_c: Optional[float]
    trips: Tuple[TripPoint, ...]


@dataclass(frozen=True)
class PowerRailChannel:
    """One INA3221 channel found at construction: its rail name and where its value lives."""

    name: str
    layout: str  # "iio" (JetPack 4, power in mW) or "hwmon" (JetPack 5+, mV and mA)
    power_path: Optional[str]  # iio: in_power<k>_input (mW)
    voltage_path: Optional[str]  # hwmon: in<k>_input (mV)
    current_path: Optional[str]  # hwmon: curr<k>_input (mA)


def _zone_number(zone_dir: str) -> Tuple[int, str]:
    digits = re.search(r"([0-9]+)$", zone_dir)
    return (int(digits.group(1)) if digits else -1, zone_dir)


def thermal_name(zone_type: str) -> str:
    """The tegrastats name of a thermal zone type, so both sources key temperatures alike.

    Lower-cased, then: "-thermal" (Orin JetPack 6: cpu-thermal → cpu, tj-thermal → tj), "-therm" (JetPack 4
    Nano/TX2/Xavier: CPU-therm → cpu) and "_tegra" (Xavier/TX2: Tboard_tegra → tboard) are cut, and two
    zones tegrastats renames are mapped: PMIC-Die → pmic (the Nano's fixed 100 °C value, which
    `TelemetrySample.hottest_c` leaves out) and thermal-fan-est → thermal (tegrastats' "thermal@").
    """
    name = zone_type.strip().lower()
    special = {"pmic-die": "pmic", "thermal-fan-est": "thermal"}
    if name in special:
        return special[name]
    for suffix in ("-thermal", "-therm", "_tegra"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def first_throttling_trip_c(trips: Iterable[Tuple[Optional[str], float]]) -> Optional[float]:
    """The lowest temperature (°C) among (type, temp_c) trips at which the kernel throttles, or None."""
    temps = [temp_c for kind, temp_c in trips if kind in THROTTLING_TRIP_TYPES]
    return min(temps) if temps else None


def throttle_trips_c(zones: Iterable[Tuple[str, Iterable[Tuple[Optional[str], float]]]]) -> Dict[str, float]:
    """Each zone's first throttling trip (°C) by its tegrastats name, from (name, [(type, temp_c), …]) pairs,
    for zones that have one: what the governor holds its sensors below (governor/decide.py)."""
    found: Dict[str, float] = {}
    for name, trips in zones:
        first = first_throttling_trip_c(trips)
        if first is not None:
            found[name] = min(first, found.get(name, first))
    return found


class SysfsTelemetry(ThreadedTelemetry):
    """Telemetry read straight from sysfs; implements `TelemetrySource` (name "sysfs").

    >>> gpu_dir = "/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"  # from hardware/devfreq.py
    >>> sensors = SysfsTelemetry(SysfsTree("/"), SystemClock(), gpu_devfreq_dir=gpu_dir)  # doctest: +SKIP
    >>> sensors.read_once().board_power_w                                                # doctest: +SKIP
    >>> sensors.start(); sensors.latest(); sensors.stop()                                # doctest: +SKIP

    `read_once()` and `thermal_zones()` may be called from any thread; `start()`/`stop()` belong to the owner,
    and the poll thread is the only writer of `latest()`. `latest()`, `is_stale()` and the counters are
    thread-safe. A sensor file that exists but cannot be read (EIO, EINVAL, garbage) is not a missing sensor:
    it counts in `read_errors` and is reported through `on_event("sensor_read_error", message)` when it
    starts failing.
    """

    name = "sysfs"
    _thread_name = "sysfs-telemetry"
    _stop_warning = "sysfs telemetry thread did not stop within %.1f s"

    def __init__(
        self,
        tree: SysfsTree,
        clock: Clock,
        interval_s: float = 1.0,
        gpu_devfreq_dir: Optional[str] = None,
        on_event: Optional[Callable[[str, str], None]] = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        super().__init__(clock, interval_s)
        self._tree = tree
        self._on_event = on_event
        self._read_errors = 0
        self._tick_errors = 0
        self._failing: Dict[str, bool] = {}

        # Zone types do not change while the system runs: read them once.
        self._zones: List[Tuple[str, str]] = []
        for zone_dir in sorted(tree.glob(_THERMAL_GLOB), key=_zone_number):
            zone_type = self._read_text(zone_dir + "/type")
            if zone_type:
                self._zones.append((zone_dir, zone_type))
        self._rails: List[PowerRailChannel] = self._discover_rails()
        fans = [p for pattern in _FAN_RPM_GLOBS for p in tree.glob(pattern)]
        self._fan_rpm_path: Optional[str] = fans[0] if fans else None
        self._gpu_freq_path: Optional[str] = None
        self._gpu_load_path: Optional[str] = None
        if gpu_devfreq_dir is not None:
            devfreq = gpu_devfreq_dir.rstrip("/")
            if tree.exists(devfreq + "/cur_freq"):
                self._gpu_freq_path = devfreq + "/cur_freq"
            for candidate in (devfreq + "/device/load", _JP4_GPU_LOAD):
                if tree.exists(candidate):
                    self._gpu_load_path = candidate
                    break

    # -- discovery --

    def _discover_rails(self) -> List[PowerRailChannel]:
        rails: List[PowerRailChannel] = []
        for name_path in self._tree.glob(_IIO_RAIL_GLOB):
            base, leaf = name_path.rsplit("/", 1)
            m = _IIO_RE.fullmatch(leaf)
            label = self._read_label(name_path)
            if m is None or label is None or label in _SKIP_LABELS:
                continue
            k = m.group(1)
            rails.append(PowerRailChannel(label, "iio", base + f"/in_power{k}_input", None, None))
        for label_path in self._tree.glob(_HWMON_LABEL_GLOB):
            base, leaf = label_path.rsplit("/", 1)
            m = _HWMON_RE.fullmatch(leaf)
            label = self._read_label(label_path)
            if m is None or label is None or label in _SKIP_LABELS:
                continue
            k = m.group(1)
            voltage_path, current_path = f"{base}/in{k}_input", f"{base}/curr{k}_input"
            rails.append(PowerRailChannel(label, "hwmon", None, voltage_path, current_path))
        return rails

    def _read_label(self, path: str) -> Optional[str]:
        try:
            return self._tree.read_text(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._read_failed(path, exc)
            return None

    # -- public --

    @property
    def rails(self) -> List[PowerRailChannel]:
        """The power monitor channels found at construction."""
        return list(self._rails)

    @property
    def gpu_load_path(self) -> Optional[str]:
        return self._gpu_load_path

    @property
    def read_errors(self) -> int:
        with self._lock:
            return self._read_errors

    @property
    def tick_errors(self) -> int:
        with self._lock:
            return self._tick_errors

    def thermal_zones(self) -> List[ThermalZone]:
        """Every thermal zone with its temperature and trip points, read now (trips differ by board and
        release: Nano GPU throttles near 101 °C, Orin figures of 99/103/105 °C; read them, never assume)."""
        zones: List[ThermalZone] = []
        for zone_dir, zone_type in self._zones:
            zones.append(
                ThermalZone(
                    path=zone_dir,
                    type=zone_type,
                    name=thermal_name(zone_type),
                    temp_c=self._read_temp_c(zone_dir + "/temp"),
                    trips=self._read_trips(zone_dir),
                )
            )
        return zones

    def read_once(self) -> TelemetrySample:
        """One sample read now. Missing sensors are absent; unreadable ones are counted and absent."""
        temps: Dict[str, float] = {}
        for zone_dir, zone_type in self._zones:
            temp_c = self._read_temp_c(zone_dir + "/temp")
            name = thermal_name(zone_type)
            # Two zones with one name: the lower-numbered zone wins, as the kernel lists it first.
            if temp_c is not None and name not in temps:
                temps[name] = temp_c
        rails_mw: Dict[str, float] = {}
        for rail in self._rails:
            power_mw = self._read_rail_mw(rail)
            if power_mw is not None:
                rails_mw[rail.name] = power_mw
        board_mw = board_power_from_rails(rails_mw)
        gpu_freq_hz: Optional[float] = None
        if self._gpu_freq_path is not None:
            freq = self._read_int(self._gpu_freq_path)
            gpu_freq_hz = float(freq) if freq is not None else None
        gpu_load_pct: Optional[float] = None
        if self._gpu_load_path is not None:
            load = self._read_int(self._gpu_load_path)
            # devfreq device "load" is per mille, 0..1000 (nvgpu driver; jetson-reference README).
            gpu_load_pct = load / 10.0 if load is not None else None
        fan_rpm = self._read_int(self._fan_rpm_path) if self._fan_rpm_path is not None else None
        return TelemetrySample(
            t_mono_s=self._clock.monotonic(),
            fan_rpm=float(fan_rpm) if fan_rpm is not None else None,
            gpu_load_pct=gpu_load_pct,
            gpu_freq_hz=gpu_freq_hz,
            board_power_w=board_mw / 1000.0 if board_mw is not None else None,
            cpu_load_pct=None,  # needs two /proc/stat reads; tegrastats carries it
            temps_c=temps,
            rails_w={name: mw / 1000.0 for name, mw in rails_mw.items()},
        )

    # -- worker --

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._beat()
                try:
                    sample = self.read_once()
                except Exception as exc:
                    # One bad tick is logged and counted; the next tick tries again.
                    with self._lock:
                        self._tick_errors += 1
                    log.exception("sysfs telemetry: a poll failed")
                    self._emit("poll_error", f"sysfs telemetry poll failed: {exc!r}")
                else:
                    with self._lock:
                        self._latest = sample
                self._stop.wait(self._interval_s)
        except Exception as exc:  # the loop itself broke: report, then let the WorkerThread log and relay it
            self._emit("worker_died", f"sysfs telemetry thread died: {exc!r}")
            raise

    # -- reads --

    def _read_failed(self, path: str, exc: OSError) -> None:
        with self._lock:
            self._read_errors += 1
            first = not self._failing.get(path, False)
            self._failing[path] = True
        if first:
            log.warning("cannot read %s: %s", path, exc)
            self._emit("sensor_read_error", f"cannot read {path}: {exc}")

    def _read_ok(self, path: str) -> None:
        with self._lock:
            self._failing.pop(path, None)

    def _read_raw(self, path: str) -> Optional[str]:
        """The file's text; None when it does not exist (a sensor that is not there) or cannot be read
        (counted and reported: a broken sensor must not pass for a missing one)."""
        try:
            return self._tree.read_text(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self._read_failed(path, exc)
            return None

    def _read_text(self, path: str) -> Optional[str]:
        text = self._read_raw(path)
        if text is not None:
            self._read_ok(path)
        return text

    def _read_int(self, path: str) -> Optional[int]:
        text = self._read_raw(path)
        if text is None:
            return None
        try:
            value = int(text.split()[0])
        except (ValueError, IndexError):
            self._read_failed(path, OSError(errno.EINVAL, f"not an integer: {text[:40]!r}"))
            return None
        self._read_ok(path)
        return value

    def _read_temp_c(self, path: str) -> Optional[float]:
        milli_c = self._read_int(path)
        if milli_c is None:
            return None
        temp_c = milli_c / 1000.0  # thermal zone "temp" is in milli-°C (kernel thermal sysfs ABI)
        # -256000: the zone's sensor is powered off (Orin CV/GPU clusters when gated): no reading.
        return None if is_sensor_off_c(temp_c) else temp_c

    def _read_trips(self, zone_dir: str) -> Tuple[TripPoint, ...]:
        trips: List[TripPoint] = []
        for temp_path in self._tree.glob(zone_dir + "/trip_point_*_temp"):
            m = _TRIP_RE.fullmatch(temp_path.rsplit("/", 1)[1])
            if m is None:
                continue
            k = int(m.group(1))
            temp_milli = self._read_int(temp_path)
            if temp_milli is None:
                continue
            hyst_milli = self._read_int(f"{zone_dir}/trip_point_{k}_hyst")
            trips.append(
                TripPoint(
                    index=k,
                    temp_c=temp_milli / 1000.0,
                    type=self._read_text(f"{zone_dir}/trip_point_{k}_type"),
                    hyst_c=hyst_milli / 1000.0 if hyst_milli is not None else None,
                )
            )
        trips.sort(key=lambda t: t.index)
        return tuple(trips)

    def _read_rail_mw(self, rail: PowerRailChannel) -> Optional[float]:
        if rail.power_path is not None:
            power = self._read_int(rail.power_path)
            return float(power) if power is not None else None
        if rail.voltage_path is None or rail.current_path is None:
            return None
        millivolt = self._read_int(rail.voltage_path)
        milliamp = self._read_int(rail.current_path)
        if millivolt is None or milliamp is None:
            return None
        return millivolt * milliamp / 1000.0  # mV × mA = µW; /1000 → mW
