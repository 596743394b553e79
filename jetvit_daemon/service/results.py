"""Builds the result sinks named in daemon.yaml and exposes their counters to Prometheus.

Metrics (read at scrape time from each sink's `stats()`, labelled by the sink's name):
  jetvit_sink_results_sent_total{sink}               results delivered
  jetvit_sink_results_dropped_total{sink,reason}     results lost, by reason (queued.DROP_REASONS)
  jetvit_sink_results_skipped_total{sink}            results left out on purpose (publish: on_change / rate)
  jetvit_sink_queue_depth_results{sink}              results waiting in the sink's queue
  jetvit_sink_connected{sink}                        1 while the sink can deliver (file open, broker connected)
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jetvit_daemon.clock import Clock
from jetvit_daemon.config_sinks import HttpSinkConfig, JsonlSinkConfig, MqttSinkConfig, SinkConfig
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.sinks.http_feed import HttpFeedSink
from jetvit_daemon.pipeline.sinks.jsonl import JsonlSink
from jetvit_daemon.pipeline.sinks.mqtt import MqttSink
from jetvit_daemon.pipeline.sinks.queued import QueuedSink
from jetvit_daemon.pipeline.sinks.schema import ModelIdentity, ResultEncoder
from jetvit_daemon.service.results_http import ResultsRoutes

Death = Callable[[str, BaseException], None]
Provider = Callable[[], Dict[str, Any]]


@dataclass(frozen=True)
class SinkInputs:
    """What the sinks read from the rest of the daemon (late-bound: the pipeline is built after its sinks).

    stats: the `<prefix>/stats` payload (`stats_payload`); states: {source: state dict} for the retained
    `<prefix>/<source>/state` topics, published whenever a source's dict changes.
    """

    hostname: str
    stats: Optional[Provider] = None
    states: Optional[Provider] = None


def build_sinks(
    configs: Sequence[SinkConfig],
    clock: Clock,
    model_name: str,
    model_file: Path,
    inputs: SinkInputs,
    on_death: Optional[Death] = None,
    on_error: Optional[Death] = None,
) -> List[QueuedSink]:
    """One sink per entry, in order; a file that cannot be opened is a ConfigError naming it."""
    if not configs:
        return []  # no need to hash the model file
    encoder = ResultEncoder(clock, ModelIdentity.of_file(model_name, model_file))
    sinks: List[QueuedSink] = []
    for i, cfg in enumerate(configs):
        if isinstance(cfg, JsonlSinkConfig):
            try:
                sinks.append(JsonlSink(cfg.path, encoder, clock, max_bytes=cfg.max_bytes,
                                       rotate_interval_s=cfg.rotate_interval_s, keep=cfg.keep,
                                       queue_size=cfg.queue_size, name=f"jsonl{i}", on_death=on_death,
                                       on_error=on_error))
            except OSError as exc:
                raise ConfigError(f"sinks.{i}.path: cannot open {cfg.path} for appending: "
                                  f"{exc.strerror or exc}") from None
        elif isinstance(cfg, MqttSinkConfig):
            sinks.append(MqttSink(cfg, encoder, clock, inputs.hostname, stats=inputs.stats, states=inputs.states,
                                  name=f"mqtt{i}", where=f"sinks.{i}", on_death=on_death, on_error=on_error))
        elif isinstance(cfg, HttpSinkConfig):
            if any(isinstance(s, HttpFeedSink) for s in sinks):
                raise ConfigError(f"sinks.{i}: one http sink serves the /v1/ endpoints; remove the second one")
            sinks.append(HttpFeedSink(encoder, queue_size=cfg.queue_size, max_clients=cfg.max_stream_clients,
                                      name=f"http{i}", on_death=on_death, on_error=on_error))
    return sinks


def results_routes(
    configs: Sequence[SinkConfig],
    sinks: Sequence[QueuedSink],
    last_frame: Callable[[str], Optional[Frame]],
    source_names: Callable[[], List[str]],
) -> List[ResultsRoutes]:
    """The HTTP routes of the `type: http` sink, if one is configured (`sinks` as built from `configs`)."""
    for cfg, sink in zip(configs, sinks):
        if isinstance(cfg, HttpSinkConfig) and isinstance(sink, HttpFeedSink):
            return [ResultsRoutes(sink, last_frame, source_names, max_stream_s=cfg.max_stream_s,
                                  jpeg_quality=cfg.snapshot_jpeg_quality)]
    return []


class SinkCollector(Collector):
    """Prometheus view of the sinks' `stats()`; thread-safe as they are."""

    def __init__(self, sinks: Sequence[QueuedSink]) -> None:
        self._sinks = list(sinks)

    def collect(self) -> Iterable[Metric]:
        stats = [s.stats() for s in self._sinks]
        sent = CounterMetricFamily("jetvit_sink_results_sent", "Results delivered by the sink", labels=["sink"])
        dropped = CounterMetricFamily("jetvit_sink_results_dropped", "Results the sink lost, by reason",
                                      labels=["sink", "reason"])
        skipped = CounterMetricFamily("jetvit_sink_results_skipped",
                                      "Results left out on purpose (publish: on_change or rate)", labels=["sink"])
        depth = GaugeMetricFamily("jetvit_sink_queue_depth_results", "Results waiting in the sink's queue",
                                  labels=["sink"])
        connected = GaugeMetricFamily("jetvit_sink_connected", "1 while the sink can deliver", labels=["sink"])
        for s in stats:
            sent.add_metric([s.name], s.sent_total)
            for reason, n in sorted(s.dropped_total.items()):
                dropped.add_metric([s.name, reason], n)
            skipped.add_metric([s.name], s.skipped_total)
            depth.add_metric([s.name], s.queue_depth)
            connected.add_metric([s.name], 1.0 if s.connected else 0.0)
        yield from (sent, dropped, skipped, depth, connected)


def sinks_status(sinks: Sequence[QueuedSink]) -> List[Dict[str, Any]]:
    """The sinks' counters for /status."""
    return [s.stats().__dict__ for s in sinks]


def stats_payload(pipeline: Any, governor_status: Dict[str, Any], power_w: Optional[float]) -> Dict[str, Any]:
    """The `<prefix>/stats` payload (docs/RESULTS.md) from a PipelineStats, the governor's status and the board
    power (None: no fresh reading)."""
    return {
        "fps_in": round(pipeline.arrival_fps, 2),
        "fps_out": round(pipeline.processed_fps, 2),
        "dropped_fps": round(pipeline.dropped_fps, 2),
        "latency_p50_s": pipeline.latency_p50_s,
        "latency_p95_s": pipeline.latency_p95_s,
        "infer_p50_s": pipeline.infer_p50_s,
        "batch_size": pipeline.batch_size,
        "power_w": power_w,
        "mode": governor_status.get("mode"),
        "state": governor_status.get("state"),
        "gpu_cap_hz": governor_status.get("gpu_cap_hz"),
    }
