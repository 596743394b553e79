"""Per-source metrics, `jetvit_source_*{source}`, read at scrape time from the supervisors' status.

Labels: `source` (the configured or derived name, never a URI, so never a credential), plus `state` (one of
seven) or `reason` (why frames were dropped). Bounded by the number of configured sources.
"""

from typing import Callable, Iterable, List

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jetvit_daemon.pipeline.capture.supervisor import SourceState, SourceStatus

DROP_REASONS = ("stale", "worker_restart")


class SourcesCollector(Collector):
    def __init__(self, statuses: Callable[[], List[SourceStatus]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterable[Metric]:
        statuses = self._statuses()
        frames = CounterMetricFamily("jetvit_source_frames", "Frames delivered by the source", labels=["source"])
        dropped = CounterMetricFamily("jetvit_source_dropped_frames",
                                      "Frames dropped before a result, by reason (stale: overwritten in a "
                                      "live source's slot by a newer frame; worker_restart: held by an inference "
                                      "worker that died or hung)", labels=["source", "reason"])
        reconnects = CounterMetricFamily("jetvit_source_reconnects", "Times the source streamed again after "
                                         "losing its stream", labels=["source"])
        restarts = CounterMetricFamily("jetvit_source_restarts", "Capture attempts after the first (child "
                                       "processes started again)", labels=["source"])
        stalls = CounterMetricFamily("jetvit_source_stalls", "Times no frame came for the stall timeout",
                                     labels=["source"])
        state = GaugeMetricFamily("jetvit_source_state", "1 for the source's current state",
                                  labels=["source", "state"])
        fps = GaugeMetricFamily("jetvit_source_frame_rate_fps", "Frames per second delivered (last 5 s)",
                                labels=["source"])
        age = GaugeMetricFamily("jetvit_source_last_frame_age_seconds", "Time since the source's last frame",
                                labels=["source"])
        for st in statuses:
            frames.add_metric([st.name], st.frames_total)
            for reason in sorted(set(DROP_REASONS) | set(st.dropped)):
                dropped.add_metric([st.name, reason], st.dropped.get(reason, 0))
            reconnects.add_metric([st.name], st.reconnects_total)
            restarts.add_metric([st.name], st.restarts_total)
            stalls.add_metric([st.name], st.stalls_total)
            for s in SourceState:
                state.add_metric([st.name, s.value], 1.0 if s.value == st.state else 0.0)
            fps.add_metric([st.name], st.fps)
            if st.last_frame_age_s is not None:
                age.add_metric([st.name], st.last_frame_age_s)
        yield from (frames, dropped, reconnects, restarts, stalls, state, fps, age)
