"""Energy and throttling, accumulated from successive telemetry samples.

`BoardMeter.feed(sample, busy_fraction)` takes each new sample once (the caller polls faster than telemetry
arrives) and keeps running totals that only ever grow, for Prometheus counters:

- board energy: the trapezoid of the module's input power between consecutive samples. Input power is the
  total rail where the board has one (POM_5V_IN on the Nano, VDD_IN on TX2/Xavier NX/Orin NX/Nano, VIN on Thor)
  and the sum of the rails that make it up where it has none (AGX Orin: VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0;
  AGX Xavier likewise): the parser's `board_power_w` (jetson-reference README, "Power rails").
- inference energy: the part of that energy attributed to inference. Over each interval, the board's power
  above its idle power, times the share of the interval that inference ran (the pipeline's busy fraction):
  `(P - P_idle) × busy × dt`. P_idle is the lowest input power seen so far in the current power mode (a mode
  change resets it, since idle power differs by mode: Orin Nano 15W idles near 4.8 W). The result is an
  estimate of what inference costs beyond keeping the board on, so joules per frame is a PromQL ratio.
- throttled time: `throttled(sample)` is true while a thermal zone is at or above its first passive trip point
  (the kernel's thermal governor caps clocks from there on; it releases at trip − hysteresis), or while the GPU
  is busy (≥ 90%) yet its clock reads back below the cap the governor applied by more than one table step
  (a cap the daemon did not set: thermal or power-rail capping).

An interval longer than `max_gap_s` (telemetry lost, daemon suspended) is not integrated: its energy is
unknown, and guessing would make a counter lie. Thread-safety: `feed` from one thread; the read-only
properties from any (floats are replaced atomically).
"""

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

from jetvit_daemon.hardware.base import TelemetrySample

# The GPU counts as "busy" for the clock check at this load: below it, nvhost_podgov lowers the clock by itself.
_BUSY_LOAD_PCT = 90.0
# A clock this far under the applied cap is not rounding: devfreq tables step by ≥ 76.8 MHz (Nano) and the
# reading is the running clock, which sits on a table entry.
_CLOCK_SLACK = 0.9


@dataclass(frozen=True)
class PassiveTrip:
    """The first passive trip point of one thermal zone, by the sensor name telemetry uses ("tj", "gpu")."""

    sensor: str
    temp_c: float
    hyst_c: float = 0.0


def passive_trips(zones: Sequence[object]) -> Dict[str, PassiveTrip]:
    """The first passive trip of every zone that has one, from `SysfsTelemetry.thermal_zones()` objects
    (duck-typed: `.name`, `.trips` with `.type`, `.temp_c`, `.hyst_c`)."""
    out: Dict[str, PassiveTrip] = {}
    for zone in zones:
        trips = [t for t in getattr(zone, "trips", ()) if getattr(t, "type", None) == "passive"]
        if trips:
            first = min(trips, key=lambda t: t.temp_c)
            out[zone.name] = PassiveTrip(zone.name, first.temp_c, first.hyst_c or 0.0)  # type: ignore[attr-defined]
    return out


class BoardMeter:
    """Running energy and throttling totals. See the module docstring for the method."""

    def __init__(self, trips: Optional[Dict[str, PassiveTrip]] = None, max_gap_s: float = 10.0) -> None:
        self._trips = dict(trips or {})
        self._max_gap_s = max_gap_s
        self._last: Optional[TelemetrySample] = None
        self._idle_w: Optional[float] = None
        self._mode: Optional[str] = None
        self._hot = {name: False for name in self._trips}
        self.board_energy_j = 0.0
        self.inference_energy_j = 0.0
        self.throttled_s = 0.0
        self.unmetered_s = 0.0  # time in gaps longer than max_gap_s, or with no power reading
        self.throttled = False

    @property
    def idle_power_w(self) -> Optional[float]:
        return self._idle_w

    def feed(self, sample: TelemetrySample, busy_fraction: float, mode: Optional[str] = None,
             gpu_cap_hz: Optional[float] = None) -> None:
        """Account for the interval since the previous sample. `busy_fraction`: the share of recent time the
        inference stage ran (0..1); `mode`: the power mode now; `gpu_cap_hz`: the cap the governor applied."""
        if mode != self._mode:
            self._mode, self._idle_w = mode, None
        power_w = sample.board_power_w
        if power_w is not None and (self._idle_w is None or power_w < self._idle_w):
            self._idle_w = power_w
        throttled = self._judge_throttled(sample, gpu_cap_hz)
        last, self._last = self._last, sample
        if last is None:
            self.throttled = throttled
            return
        dt_s = sample.t_mono_s - last.t_mono_s
        if dt_s <= 0:
            return
        if dt_s > self._max_gap_s or power_w is None or last.board_power_w is None:
            self.unmetered_s += dt_s
        else:
            mean_w = (power_w + last.board_power_w) / 2.0
            self.board_energy_j += mean_w * dt_s
            busy = min(1.0, max(0.0, busy_fraction))
            above_idle_w = max(0.0, mean_w - (self._idle_w or 0.0))
            self.inference_energy_j += above_idle_w * busy * dt_s
        if self.throttled and dt_s <= self._max_gap_s:
            self.throttled_s += dt_s  # the state held over the interval that ends now
        self.throttled = throttled

    def _judge_throttled(self, sample: TelemetrySample, gpu_cap_hz: Optional[float]) -> bool:
        hot = False
        for name, trip in self._trips.items():
            temp = sample.temps_c.get(name)
            if temp is None:
                continue
            was_hot = self._hot[name]
            self._hot[name] = temp >= trip.temp_c or (was_hot and temp > trip.temp_c - trip.hyst_c)
            hot = hot or self._hot[name]
        clock_capped = (
            gpu_cap_hz is not None
            and sample.gpu_load_pct is not None
            and sample.gpu_freq_hz is not None
            and sample.gpu_load_pct >= _BUSY_LOAD_PCT
            and sample.gpu_freq_hz < _CLOCK_SLACK * gpu_cap_hz
        )
        return hot or clock_capped
