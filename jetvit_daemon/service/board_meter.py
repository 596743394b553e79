"""The board meter's thread and its metrics: energy, inference energy, throttling, memory, clocks, fan.

`BoardMeterLoop.body` runs in a `WorkerThread` ("board-meter"): it polls the platform's newest telemetry sample
twice per telemetry interval and feeds each new one (by its timestamp) once to a `BoardMeter`
(hardware/energy.py), with the pipeline's busy fraction, the power mode and the GPU cap applied now.
`BoardMeterCollector` renders the meter and the newest sample at scrape time. Every series exists from the
start (counters at 0), so `increase()` alerts see the first event.
"""

from typing import Callable, Dict, Iterable, Optional

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jetvit_daemon.clock import Clock
from jetvit_daemon.governor.policy import Policy
from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.hardware.energy import BoardMeter, PassiveTrip, passive_trips
from jetvit_daemon.hardware.sensors import SysfsTelemetry
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.workers import WorkerThread


class BoardMeterLoop:
    """Feeds a BoardMeter from the telemetry. `body` is the worker's; the meter is read by the collector."""

    def __init__(
        self,
        meter: BoardMeter,
        telemetry: Callable[[], Optional[TelemetrySample]],
        busy_fraction: Callable[[], float],
        mode: Callable[[], Optional[str]],
        gpu_cap_hz: Callable[[], Optional[float]],
        telemetry_interval_s: float,
    ) -> None:
        self.meter = meter
        self._telemetry = telemetry
        self._busy = busy_fraction
        self._mode = mode
        self._cap = gpu_cap_hz
        # Twice per telemetry interval: every sample is seen once, none is skipped.
        self._poll_s = max(0.05, telemetry_interval_s / 2.0)
        self._last_t: Optional[float] = None

    def poll_once(self) -> None:
        sample = self._telemetry()
        if sample is None or sample.t_mono_s == self._last_t:
            return
        self._last_t = sample.t_mono_s
        self.meter.feed(sample, self._busy(), self._mode(), self._cap())

    def body(self, worker: WorkerThread) -> None:
        while not worker.stop_event.wait(self._poll_s):
            self.poll_once()
            worker.beat()


class BoardMeterCollector(Collector):
    """Energy and throttling counters, and the telemetry gauges that are not in the board collector."""

    def __init__(self, meter: BoardMeter, telemetry: Callable[[], Optional[TelemetrySample]]) -> None:
        self._meter = meter
        self._telemetry = telemetry

    def collect(self) -> Iterable[Metric]:
        m = self._meter
        for name, doc, value in (
            ("jetvit_board_energy_joules", "Module input energy, integrated from input power between samples "
             "(docs/METRICS.md)", m.board_energy_j),
            ("jetvit_pipeline_inference_energy_joules", "Energy attributed to inference: input power above the "
             "mode's idle power, times the share of time inference ran (docs/METRICS.md)", m.inference_energy_j),
            ("jetvit_board_throttle_seconds", "Time the board spent throttled (passive trip reached, or a busy GPU "
             "clocked below the applied cap)", m.throttled_s),
            ("jetvit_board_unmetered_seconds", "Time no energy could be integrated (telemetry gaps, no power "
             "reading)", m.unmetered_s),
        ):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], value)
            yield c
        throttled = GaugeMetricFamily("jetvit_board_throttled", "1 while the board is throttled")
        throttled.add_metric([], 1.0 if m.throttled else 0.0)
        yield throttled
        if m.idle_power_w is not None:
            idle = GaugeMetricFamily("jetvit_board_idle_power_watts",
                                     "Lowest input power seen in the current power mode (the inference-energy "
                                     "baseline)")
            idle.add_metric([], m.idle_power_w)
            yield idle
        sample = self._telemetry()
        if sample is not None:
            yield from _sample_gauges(sample)


def _sample_gauges(s: TelemetrySample) -> Iterable[Metric]:
    for name, doc, value in (
        ("jetvit_board_ram_used_bytes", "RAM in use (tegrastats RAM)", s.ram_used_bytes),
        ("jetvit_board_ram_total_bytes", "RAM size", s.ram_total_bytes),
        ("jetvit_board_swap_used_bytes", "Swap in use (absent without swap)", s.swap_used_bytes),
        ("jetvit_board_swap_total_bytes", "Swap size", s.swap_total_bytes),
        ("jetvit_board_emc_load_ratio", "Memory controller load 0..1",
         None if s.emc_load_pct is None else s.emc_load_pct / 100.0),
        ("jetvit_board_emc_frequency_hertz", "Memory controller clock", s.emc_freq_hz),
        ("jetvit_board_cpu_load_ratio", "CPU load 0..1, mean of the online cores",
         None if s.cpu_load_pct is None else s.cpu_load_pct / 100.0),
        ("jetvit_board_cpu_frequency_hertz", "CPU clock, mean of the online cores", s.cpu_freq_hz),
        ("jetvit_board_fan_speed_rpm", "Fan tachometer", s.fan_rpm),
    ):
        if value is not None:
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], float(value))
            yield g


class PolicyTargetsCollector(Collector):
    """The running policy's targets, so dashboards and alerts compare against what the board obeys now."""

    def __init__(self, policy: Callable[[], Policy]) -> None:
        self._policy = policy

    def collect(self) -> Iterable[Metric]:
        p = self._policy()
        if p.slo.latency_p95_ms is not None:
            g = GaugeMetricFamily("jetvit_policy_latency_target_seconds", "The policy's capture-to-result p95 target")
            g.add_metric([], p.slo.latency_p95_ms / 1000.0)
            yield g
        if p.power_budget.watts is not None:
            g = GaugeMetricFamily("jetvit_policy_power_budget_watts",
                                  "The policy's board power budget (an average over its window)")
            g.add_metric([], p.power_budget.watts)
            yield g


def board_trips(tree: SysfsTree, clock: Clock) -> Dict[str, PassiveTrip]:
    """The board's passive trip points, read once at start (they differ by board and JetPack)."""
    return passive_trips(SysfsTelemetry(tree, clock).thermal_zones())
