"""Builds the result sinks named in daemon.yaml and exposes their counters to Prometheus.

Metrics (read at scrape time from each sink's `stats()`, labelled by the sink's name):
  jetvit_sink_results_sent_total{sink}               results delivered
  jetvit_sink_results_dropped_total{sink,reason}     results lost, by reason (queued.DROP_REASONS)
  jetvit_sink_results_skipped_total{sink}            results left out on purpose (publish: on_change / rate)
  jetvit_sink_queue_depth_results{sink}              results waiting in the sink's queue
  jetvit_sink_connected{sink}                        1 while the sink can deliver (file open, broker connected)
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jetvit_daemon.clock import Clock
from jetvit_daemon.config_sinks import JsonlSinkConfig, SinkConfig
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.pipeline.sinks.jsonl import JsonlSink
from jetvit_daemon.pipeline.sinks.queued import QueuedSink
from jetvit_daemon.pipeline.sinks.schema import ModelIdentity, ResultEncoder

Death = Callable[[str, BaseException], None]


def build_sinks(
    configs: Sequence[SinkConfig],
    clock: Clock,
    model_name: str,
    model_file: Path,
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
    return sinks


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
