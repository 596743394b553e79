"""Prometheus metrics. One registry per daemon (no global state at import). Names follow
`jetvit_<subsystem>_<name>_<unit>` with base units; label sets are small and bounded.

Counters and gauges that mirror pipeline or board state are read at scrape time by collectors from read-only
views, so the hot path (per frame) only feeds the two latency histograms.
"""

import threading
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jetvit_daemon import __version__
from jetvit_daemon.governor.decide import RULES
from jetvit_daemon.governor.policy import LadderState
from jetvit_daemon.pipeline.frames import Result
from jetvit_daemon.pipeline.pipeline import WORKER_RESTART, PipelineStats
from jetvit_daemon.service.status import StatusSnapshot

DROP_REASONS = ("stale", WORKER_RESTART)  # always exported, at 0 until it happens
LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.0, 5.0)


class _SnapshotCollector(Collector):
    """Renders the service's `StatusSnapshot` (taken once per scrape) as metrics."""

    def __init__(self, snapshot: Callable[[], StatusSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        if snap.pipeline is not None:
            yield from _pipeline_metrics(snap.pipeline)
        yield from _board_metrics(snap)
        yield from _service_metrics(snap)
        yield from _inference_worker_metrics(snap.inference)


def _pipeline_metrics(s: PipelineStats) -> Iterable[Metric]:
    for name, doc, value in (
        ("jetvit_pipeline_frames_in", "Frames delivered by the sources", s.frames_in_total),
        ("jetvit_pipeline_frames_processed", "Frames that produced a result", s.frames_out_total),
        ("jetvit_pipeline_labelled_results", "Results of frames with a known label (synthetic camera)",
         s.labelled_total),
        ("jetvit_pipeline_correct_results", "Labelled results whose top-1 class was right", s.correct_total),
        ("jetvit_inference_failed_batches", "Batches whose inference failed", s.failed_batches_total),
    ):
        c = CounterMetricFamily(name, doc)
        c.add_metric([], value)
        yield c
    dropped = CounterMetricFamily("jetvit_pipeline_frames_dropped", "Frames dropped before a result, by reason "
                                  "(stale: overwritten in a live source's slot; worker_restart: held by an inference "
                                  "worker that died or hung)", labels=["reason"])
    by_reason = dict(s.dropped_by_reason)
    for reason in sorted(set(DROP_REASONS) | set(by_reason)):
        dropped.add_metric([reason], by_reason.get(reason, 0))
    yield dropped
    for name, doc, gvalue in (
        ("jetvit_pipeline_queue_depth_frames", "Frames waiting for inference", s.queue_depth),
        ("jetvit_pipeline_batch_size_frames", "Current target batch size", s.batch_size),
        ("jetvit_pipeline_busy_ratio", "Share of time spent inside inference (stats window)", s.busy_fraction),
        ("jetvit_inference_failing_batches", "Failed batches since the last that succeeded", s.failing_batches),
    ):
        g = GaugeMetricFamily(name, doc)
        g.add_metric([], gvalue)
        yield g

def _inference_worker_metrics(status: Mapping[str, Any]) -> Iterable[Metric]:
    """The inference worker process (runners/worker_client.py): restarts, memory, batch time."""
    if status.get("mode") != "worker":
        return
    restarts = CounterMetricFamily("jetvit_worker_restarts", "Inference worker restarts (it died or hung; the "
                                   "frames it held are dropped, reason worker_restart)")
    restarts.add_metric([], status.get("restarts_total", 0))
    yield restarts
    up = GaugeMetricFamily("jetvit_worker_process_up", "1 while the inference worker process is running")
    up.add_metric([], 1.0 if status.get("state") == "running" else 0.0)
    yield up
    if status.get("rss_bytes") is not None:
        rss = GaugeMetricFamily("jetvit_worker_rss_bytes", "Resident memory of the inference worker process")
        rss.add_metric([], status["rss_bytes"])
        yield rss
    if status.get("batch_p50_s") is not None:
        batch = GaugeMetricFamily("jetvit_worker_batch_p50_seconds", "Median time the worker took per batch "
                                  "(its last 16)")
        batch.add_metric([], status["batch_p50_s"])
        yield batch
    deadline = GaugeMetricFamily("jetvit_worker_batch_deadline_seconds", "How long a batch may take before the "
                                 "worker counts as hung: max(1 s, 10 x its recent batch time)")
    deadline.add_metric([], status.get("batch_deadline_s", 0.0))
    yield deadline


def _board_metrics(snap: StatusSnapshot) -> Iterable[Metric]:
    sample, age_s = snap.telemetry, snap.telemetry_age_s
    stale = GaugeMetricFamily("jetvit_telemetry_stale", "1 when no fresh telemetry reading is available")
    stale.add_metric([], 1.0 if snap.telemetry_stale else 0.0)
    yield stale
    if sample is None or age_s is None:
        return
    age = GaugeMetricFamily("jetvit_telemetry_age_seconds", "Age of the newest telemetry reading")
    age.add_metric([], age_s)
    yield age
    temps = GaugeMetricFamily("jetvit_board_temperature_celsius", "Sensor temperature", labels=["sensor"])
    for name, value in sorted(sample.temps_c.items()):
        temps.add_metric([name], value)
    yield temps
    if sample.board_power_w is not None:
        p = GaugeMetricFamily("jetvit_board_power_watts", "Module input power (total rail or sum of parts)")
        p.add_metric([], sample.board_power_w)
        yield p
    rails = GaugeMetricFamily("jetvit_board_rail_power_watts", "Power rail reading", labels=["rail"])
    for name, value in sorted(sample.rails_w.items()):
        rails.add_metric([name], value)
    yield rails
    if sample.gpu_load_pct is not None:
        g = GaugeMetricFamily("jetvit_board_gpu_load_ratio", "GPU utilisation 0..1")
        g.add_metric([], sample.gpu_load_pct / 100.0)
        yield g
    if sample.gpu_freq_hz is not None:
        g = GaugeMetricFamily("jetvit_board_gpu_frequency_hertz", "GPU clock now")
        g.add_metric([], sample.gpu_freq_hz)
        yield g


def _service_metrics(snap: StatusSnapshot) -> Iterable[Metric]:
    ready = GaugeMetricFamily("jetvit_service_ready", "1 when /readyz answers 200")
    ready.add_metric([], 1.0 if snap.ready else 0.0)
    yield ready
    up = GaugeMetricFamily("jetvit_worker_up", "1 while the worker thread is alive and turning", labels=["worker"])
    for w in snap.workers:
        up.add_metric([w.name], 0.0 if w.problem else 1.0)
    yield up


class Metrics:
    """All of the daemon's metrics in one registry. Thread-safe (prometheus_client objects are)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Gauge("jetvit_build_info", "Version and chosen components (value 1)",
                                ["version", "runner", "device", "model", "board"], registry=r)
        self.errors = Counter("jetvit_errors", "Errors caught at a loop boundary", ["component"], registry=r)
        self.latency = Histogram("jetvit_pipeline_latency_seconds", "Capture-to-result latency per frame",
                                 buckets=LATENCY_BUCKETS_S, registry=r)
        self.inference = Histogram("jetvit_inference_latency_seconds", "Runner time per batch",
                                   buckets=LATENCY_BUCKETS_S, registry=r)
        self.power_mode = Gauge("jetvit_board_power_mode", "1 for the current nvpmodel power mode",
                                ["mode"], registry=r)
        self.gpu_cap = Gauge("jetvit_governor_gpu_cap_hertz", "GPU frequency cap applied by the governor",
                             registry=r)
        self.state = Gauge("jetvit_governor_state_index", "Ladder index of the applied state (0 = lowest)",
                           registry=r)
        self.state_info = Gauge("jetvit_governor_state", "1 for the applied ladder state", ["state"], registry=r)
        self.batch = Gauge("jetvit_governor_batch_size_frames", "Batch size applied by the governor", registry=r)
        self.decisions = Counter("jetvit_governor_decisions", "State changes decided, by rule", ["rule"],
                                 registry=r)
        self.actuations = Counter("jetvit_governor_actuations", "Hardware/pipeline actuations by knob and result",
                                  ["knob", "result"], registry=r)
        self.policy_reloads = Counter("jetvit_policy_reloads", "Policy reload attempts by result", ["result"],
                                      registry=r)
        self.external_changes = Counter("jetvit_governor_external_changes",
                                        "Applied power mode or GPU cap found changed on the board by someone "
                                        "else (then re-applied, or left alone: hardware.on_conflict), by knob",
                                        ["knob"], registry=r)
        for knob in ("power_mode", "gpu_cap"):
            self.external_changes.labels(knob=knob)  # exists at 0 from the start
        self.reload_results = ("ok", "error")
        for result in self.reload_results:
            self.policy_reloads.labels(result=result)  # exists at 0, so increase() alerts see the first refusal
        # The daemon's own process_* series (CPU, RSS, fds, start time), from the library's collector.
        ProcessCollector(registry=r)
        self._lock = threading.Lock()
        self._known_modes: List[str] = []
        self._known_states: List[str] = []

    def add_snapshot(self, snapshot: Callable[[], StatusSnapshot]) -> None:
        """Pipeline, board and service gauges, rendered from the service's status snapshot at scrape time."""
        self.registry.register(_SnapshotCollector(snapshot))

    def declare_components(self, components: Sequence[str]) -> None:
        """Every component that can count an error, and every decision rule and actuation, at 0 from the start."""
        for component in components:
            self.errors.labels(component=component)
        for rule in RULES:
            self.decisions.labels(rule=rule)
        for knob, results in (("power_mode", ("ok", "error")), ("gpu_cap", ("ok", "error")), ("batch_size", ("ok",)),
                              ("verify", ("error",)), ("tick", ("error",))):
            for result in results:
                self.actuations.labels(knob=knob, result=result)

    def declare_modes(self, modes: Sequence[str]) -> None:
        with self._lock:
            self._known_modes = list(modes)
        for m in modes:
            self.power_mode.labels(mode=m).set(0)

    # -- pipeline hook (inference thread) -------------------------------------------------------------------
    def on_batch(self, results: Sequence[Result], infer_s: float) -> None:
        self.inference.observe(infer_s)
        for r in results:
            self.latency.observe(r.latency_s)

    # -- GovernorEvents -----------------------------------------------------------------------------------
    def decision(self, rule: str, from_state: str, to_state: str, reason: str) -> None:
        self.decisions.labels(rule=rule).inc()

    def actuation(self, knob: str, result: str) -> None:
        self.actuations.labels(knob=knob, result=result).inc()

    def applied(self, state: LadderState, index: int, mode: str, gpu_cap_hz: Optional[int], batch: int) -> None:
        with self._lock:
            if mode not in self._known_modes:
                self._known_modes.append(mode)
            if state.name not in self._known_states:
                self._known_states.append(state.name)
            modes, states = list(self._known_modes), list(self._known_states)
        for m in modes:
            self.power_mode.labels(mode=m).set(1 if m == mode else 0)
        for s in states:
            self.state_info.labels(state=s).set(1 if s == state.name else 0)
        self.state.set(index)
        if gpu_cap_hz is not None:
            self.gpu_cap.set(gpu_cap_hz)
        self.batch.set(batch)

    def external_change(self, knob: str, mode: str, gpu_cap_hz: int) -> None:
        self.external_changes.labels(knob=knob).inc()
        # Show what the board runs, not what was last written (the re-apply sets them again).
        with self._lock:
            if mode not in self._known_modes:
                self._known_modes.append(mode)
            modes = list(self._known_modes)
        for m in modes:
            self.power_mode.labels(mode=m).set(1 if m == mode else 0)
        self.gpu_cap.set(gpu_cap_hz)

    def error(self, component: str, exc: BaseException) -> None:
        self.errors.labels(component=component).inc()

    def set_build_info(self, runner: str, device: str, model: str, board: str) -> None:
        self.build_info.labels(version=__version__, runner=runner, device=device, model=model, board=board).set(1)
