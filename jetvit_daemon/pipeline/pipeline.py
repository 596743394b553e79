"""The pipeline: one supervised capture thread per source → its own frame slot (pipeline/slots.py) → the
round-robin batcher (pipeline/batcher.py) → the `inference` thread (preprocess into a free input slot, submit)
→ the inference worker (runners/executor.py: two slots in flight, so batch i+1 is prepared while batch i runs)
→ the `results` thread (collect, postprocess, sinks, statistics). It exposes read-only statistics and a
batch-size setter; the composition root hands those (not the pipeline) to the governor."""

import collections
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from jetvit_daemon.clock import Clock
from jetvit_daemon.pipeline.batcher import Batcher
from jetvit_daemon.pipeline.capture.base import FrameSourceCapture
from jetvit_daemon.pipeline.capture.supervisor import SourceStatus, SourceSupervisor, SupervisorSettings
from jetvit_daemon.pipeline.frames import Frame, Result
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sinks import ResultSink
from jetvit_daemon.pipeline.slots import SlotCounts, SlotSet
from jetvit_daemon.pipeline.sources import FrameSource
from jetvit_daemon.runners.base import Runner
from jetvit_daemon.runners.executor import BatchExecutor, Completion, LocalExecutor
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger(__name__)


# The short window of the "recent" arrival rate: long enough to average a few frames of every camera, short
# enough that a camera switching on shows within one governor tick or two.
RECENT_S = 2.0
# At stop, the results thread hands on the batches still in flight for at most this long.
DRAIN_S = 1.0
WORKER_RESTART = "worker_restart"  # the drop reason of frames a dead or hung worker held


@dataclass(frozen=True)
class PipelineStats:
    """A snapshot over the last `window_s` seconds. Rates in frames per second, latencies in seconds."""

    window_s: float
    arrival_fps: float
    arrival_recent_fps: float  # over the last RECENT_S only: how the governor sees a burst start
    processed_fps: float
    processed_recent_fps: float  # over the last RECENT_S only: whether a backlog grows or drains now
    dropped_fps: float  # frames dropped: overwritten in a live slot (`stale`), held by a lost worker
    queue_depth: int  # frames waiting in the sources' slots
    queue_capacity: int
    latency_p50_s: Optional[float]  # capture → result
    latency_p95_s: Optional[float]
    infer_p50_s: Optional[float]  # one runner.infer call (one batch)
    infer_p95_s: Optional[float]
    busy_fraction: float  # share of wall time spent inside runner.infer
    batch_size: int
    frames_in_total: int
    frames_out_total: int
    frames_dropped_total: int
    correct_total: int  # results whose top-1 matched the filmed label (synthetic camera only)
    labelled_total: int
    failed_batches_total: int = 0  # batches whose inference (or pre/postprocessing) raised
    failing_batches: int = 0  # failed batches since the last one that succeeded
    failing_since_s: Optional[float] = None  # when the current run of failures began (monotonic), else None
    dropped_by_reason: Tuple[Tuple[str, int], ...] = ()  # (reason, frames) since start


class _Window:
    """Timestamped values over a sliding window. Not thread-safe (guarded by the pipeline's lock)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._items: Deque[Tuple[float, float]] = collections.deque()

    def add(self, t_s: float, value: float = 1.0) -> None:
        self._items.append((t_s, value))

    def trim(self, now_s: float) -> None:
        horizon = now_s - self.window_s
        while self._items and self._items[0][0] < horizon:
            self._items.popleft()

    def count(self) -> int:
        return len(self._items)

    def count_since(self, t_s: float) -> int:
        n = 0
        for t, _ in reversed(self._items):
            if t < t_s:
                break
            n += 1
        return n

    def total(self) -> float:
        return sum(v for _, v in self._items)

    def percentiles(self, *qs: float) -> List[Optional[float]]:
        if not self._items:
            return [None for _ in qs]
        values = sorted(v for _, v in self._items)
        out: List[Optional[float]] = []
        for q in qs:
            # Nearest-rank percentile: an observed value, never an interpolated one.
            rank = max(0, min(len(values) - 1, int(q * len(values) + 0.999999) - 1))
            out.append(values[rank])
        return out


class Pipeline:
    """Owns the capture and inference threads.

    >>> pipe = Pipeline(clock, [camera], runner, preprocessor, classifier, [sink], batch_size=4)  # doctest: +SKIP
    >>> pipe.start(); pipe.stats(); pipe.set_batching(8, 0.05); pipe.stop()                      # doctest: +SKIP

    `sources` are `SourceSupervisor`s (real cameras, built by pipeline/capture/factory.py) or plain
    `FrameSource`s (supervised here as live sources). `runner` is a `BatchExecutor` (the worker process,
    started and stopped by its owner) or a plain `Runner` (run in this process by a `LocalExecutor`).
    `stats()`, `source_statuses()`, `set_batching()` and `batch_size` are thread-safe.
    """

    def __init__(
        self,
        clock: Clock,
        sources: Sequence[Union[FrameSource, SourceSupervisor]],
        runner: Union[Runner, BatchExecutor],
        preprocessor: Preprocessor,
        postprocessor: Top1Classifier,
        sinks: Sequence[ResultSink],
        batch_size: int = 1,
        max_batch_wait_s: float = 0.02,
        window_s: float = 10.0,
        on_worker_death: Optional[Callable[[str, BaseException], None]] = None,
        on_error: Optional[Callable[[str, BaseException], None]] = None,
        on_batch: Optional[Callable[[List[Result], float], None]] = None,
    ) -> None:
        self._clock = clock
        self.executor = runner if isinstance(runner, BatchExecutor) else LocalExecutor(runner, now=clock.monotonic)
        self._pre = preprocessor
        self._post = postprocessor
        self._sinks = list(sinks)
        self.max_batch = self.executor.info().max_batch
        self._default_batch_wait_s = max_batch_wait_s
        self._on_error = on_error
        self._on_batch = on_batch
        self._lock = threading.Lock()
        self._t_start_s = clock.monotonic()
        self._arrivals = _Window(window_s)
        self._processed = _Window(window_s)
        self._drops = _Window(window_s)
        self._latency = _Window(window_s)
        self._infer = _Window(window_s)
        self._in_total = 0
        self._out_total = 0
        self._dropped_total = 0
        self._dropped_by_reason: Dict[str, int] = {}
        self._correct_total = 0
        self._labelled_total = 0
        self._failed_total = 0
        self._failing = 0
        self._failing_since_s: Optional[float] = None
        # The newest frame of each source that reached the model (for snapshots): a reference, no copy.
        self._last_frames: Dict[str, Frame] = {}
        self._slots = SlotSet(clock, on_arrival=self._arrived, on_drop=self._dropped)
        self.batcher = Batcher(self._slots, clock, batch_size, max_batch_wait_s, self.max_batch)
        self.sources: List[SourceSupervisor] = [
            s if isinstance(s, SourceSupervisor) else _supervise(s, clock, on_worker_death) for s in sources]
        for sup in self.sources:
            sup.attach(self._slots.add(sup.name, sup.live))
        self._stage_workers: List[WorkerThread] = [sup.worker for sup in self.sources]
        self._stage_workers.append(WorkerThread("inference", self._inference_body, on_worker_death))
        self._stage_workers.append(WorkerThread("results", self._results_body, on_worker_death))
        # Supervised with the stages; each sink starts and stops its own.
        self.workers: List[WorkerThread] = [*self._stage_workers, *(w for s in self._sinks for w in s.workers)]

    # -- control -------------------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.batcher.batch_size

    def set_batching(self, n: int, wait_s: Optional[float] = None) -> int:
        """Set the batch size (clamped, returned) and how long a batch may wait to fill (None: the default)."""
        return self.batcher.set_batching(n, self._default_batch_wait_s if wait_s is None else wait_s)

    def start(self) -> None:
        """Start the sources' supervisors and the inference thread. A source that cannot open is reported
        by its supervisor (state `failed` or `backoff`); it never stops the pipeline or the other sources."""
        for sink in self._sinks:
            sink.start()
        # The worker's verdict may narrow the manifest's batch range (an engine's profile): known once started.
        self.max_batch = self.executor.info().max_batch
        self.batcher.set_max_batch(self.max_batch)
        self._t_start_s = self._clock.monotonic()
        for w in self._stage_workers:
            w.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        for w in self._stage_workers:
            w.stop_event.set()
        self._slots.wake_all()
        for w in self._stage_workers:
            w.stop(timeout_s)
        self._pre.close()
        for sink in self._sinks:
            sink.close()

    @property
    def source_names(self) -> List[str]:
        return [sup.name for sup in self.sources]

    def source_states(self) -> Dict[str, Dict[str, Any]]:
        """{source: {"state": ...}} for the retained MQTT state topics: the supervisor's state (starting,
        streaming, stalled, backoff, failed, ended, stopped). Thread-safe."""
        return {st.name: {"state": st.state} for st in self.source_statuses()}

    def last_frame(self, source: str) -> Optional[Frame]:
        """The newest frame of `source` that went through the model, or None. Thread-safe (a dict read)."""
        return self._last_frames.get(source)

    # -- statistics ----------------------------------------------------------------------------------------
    def stats(self) -> PipelineStats:
        now = self._clock.monotonic()
        with self._lock:
            for w in (self._arrivals, self._processed, self._drops, self._latency, self._infer):
                w.trim(now)
            span = max(1e-6, min(self._arrivals.window_s, now - self._t_start_s))
            lat50, lat95 = self._latency.percentiles(0.5, 0.95)
            inf50, inf95 = self._infer.percentiles(0.5, 0.95)
            return PipelineStats(
                window_s=span,
                arrival_fps=self._arrivals.count() / span,
                arrival_recent_fps=self._arrivals.count_since(now - RECENT_S) / min(RECENT_S, span),
                processed_fps=self._processed.count() / span,
                processed_recent_fps=self._processed.count_since(now - RECENT_S) / min(RECENT_S, span),
                dropped_fps=self._drops.count() / span,
                queue_depth=self._slots.depth(),
                queue_capacity=self._slots.capacity(),
                latency_p50_s=lat50,
                latency_p95_s=lat95,
                infer_p50_s=inf50,
                infer_p95_s=inf95,
                busy_fraction=min(1.0, self._infer.total() / span),
                batch_size=self.batcher.batch_size,
                frames_in_total=self._in_total,
                frames_out_total=self._out_total,
                frames_dropped_total=self._dropped_total,
                correct_total=self._correct_total,
                labelled_total=self._labelled_total,
                failed_batches_total=self._failed_total,
                failing_batches=self._failing,
                failing_since_s=self._failing_since_s,
                dropped_by_reason=tuple(sorted(self._dropped_by_reason.items())),
            )

    def busy_fraction(self) -> float:
        """Share of the last window spent inside `runner.infer` (cheap: no percentiles). Thread-safe."""
        now = self._clock.monotonic()
        with self._lock:
            self._infer.trim(now)
            span = max(1e-6, min(self._infer.window_s, now - self._t_start_s))
            return min(1.0, self._infer.total() / span)

    def source_statuses(self) -> List[SourceStatus]:
        return [sup.status() for sup in self.sources]

    def slot_counts(self) -> List[SlotCounts]:
        return self._slots.counts()

    # -- threads -------------------------------------------------------------------------------------------
    def _arrived(self, frame: Frame) -> None:
        with self._lock:
            self._in_total += 1
            self._arrivals.add(frame.t_capture_s)

    def _dropped(self, frame: Frame, reason: str) -> None:
        with self._lock:
            self._dropped_total += 1
            self._dropped_by_reason[reason] = self._dropped_by_reason.get(reason, 0) + 1
            self._drops.add(self._clock.monotonic())

    def _inference_body(self, worker: WorkerThread) -> None:
        """Batch → preprocess into a free slot → submit. Waits for a slot first: while every slot is in flight
        (or the worker is restarting) frames stay in the sources' slots, where live ones keep only the newest."""
        executor = self.executor
        while not worker.stop_event.is_set():
            worker.beat()
            slot = executor.acquire(0.1, worker.stop_event)
            if slot is None:
                continue
            frames = self.batcher.next_batch(0.1, worker.stop_event)
            if not frames:
                executor.release(slot)
                continue
            try:
                self._pre.batch_into([f.image for f in frames], executor.input(slot)[: len(frames)])
            except Exception as exc:  # one batch is the loop boundary: report, count, go on
                executor.release(slot)
                self._batch_failed(len(frames), exc)
                continue
            executor.submit(slot, len(frames), frames)

    def _results_body(self, worker: WorkerThread) -> None:
        """Collect → postprocess → sinks, in submit order. At stop, what is still in flight is handed on for
        up to DRAIN_S."""
        executor = self.executor
        drain_until_s: Optional[float] = None
        while True:
            worker.beat()
            if worker.stop_event.is_set():
                now = self._clock.monotonic()
                drain_until_s = now + DRAIN_S if drain_until_s is None else drain_until_s
                if not executor.in_flight() or now >= drain_until_s:
                    return
            done = executor.collect(0.1)
            if done is None:
                continue
            try:
                # The slot goes back before postprocessing (its logits copied: n × classes, small), so the
                # inference thread refills it while this one works: the worker always has a batch queued.
                logits = done.outputs[self._post.output_name].copy() if done.outputs is not None else None
            except Exception as exc:  # an output the manifest names but the worker did not return
                logits = exc
            finally:
                executor.release(done.slot)
            try:
                self._finish(done, logits)
            except Exception as exc:  # one batch is the loop boundary: report, count, go on
                self._batch_failed(done.n, exc)
            else:
                if not done.lost:
                    self._batch_succeeded()

    def _finish(self, done: Completion, logits: Union[np.ndarray, Exception, None]) -> None:
        frames: List[Frame] = done.tag
        if done.lost:
            self._slots.drop_taken(frames, WORKER_RESTART)
            return
        if done.error is not None:
            raise done.error
        if isinstance(logits, Exception):
            raise logits
        assert logits is not None
        t1 = self._clock.monotonic()
        results = self._post.results(frames, logits, t1)
        for f in frames:
            self._last_frames[f.source] = f
        for sink in self._sinks:
            sink.emit(results)
        self._record(results, t1, done.infer_s)
        if self._on_batch is not None:
            self._on_batch(results, done.infer_s)

    def _batch_failed(self, n_frames: int, exc: Exception) -> None:
        # A model that fails every batch must not write a traceback per batch: the first failure of a run is
        # logged with its traceback, the rest are counted (errors_total, failing_batches) until one succeeds.
        with self._lock:
            self._failed_total += 1
            self._failing += 1
            first = self._failing == 1
            if first:
                self._failing_since_s = self._clock.monotonic()
        if first:
            log.error("inference batch of %d frames failed; further failures are counted, not logged, until a "
                      "batch succeeds", n_frames, exc_info=True)
        if self._on_error is not None:
            self._on_error("inference", exc)

    def _batch_succeeded(self) -> None:
        with self._lock:
            failed, self._failing, self._failing_since_s = self._failing, 0, None
        if failed:
            log.warning("inference recovered after %d failed batches", failed)

    def _record(self, results: List[Result], t_done_s: float, infer_s: float) -> None:
        with self._lock:
            self._infer.add(t_done_s, infer_s)
            for r in results:
                self._processed.add(r.t_result_s)
                self._latency.add(r.t_result_s, r.latency_s)
                self._out_total += 1
                if r.truth is not None:
                    self._labelled_total += 1
                    if r.truth == r.class_index:
                        self._correct_total += 1


def _supervise(source: FrameSource, clock: Clock,
               on_worker_death: Optional[Callable[[str, BaseException], None]]) -> SourceSupervisor:
    """A plain `FrameSource` (the synthetic camera, a test's source) as a supervised live source."""
    fps = getattr(source, "fps", None)
    return SourceSupervisor(source.name, f"{type(source).__name__}", lambda: FrameSourceCapture(source),
                            SupervisorSettings(live=True, nominal_fps=fps), clock,
                            on_worker_death=on_worker_death, backend="in-process")


__all__ = ["Pipeline", "PipelineStats"]
