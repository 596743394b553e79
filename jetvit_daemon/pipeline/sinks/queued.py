"""A sink behind its own bounded queue and thread: the inference stage only enqueues (a lock, a deque append),
the sink's thread delivers. When the queue is full the OLDEST result is dropped and counted, so a sink that is
slow or disconnected loses old results, never stalls frames, and resumes with the newest ones."""

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional, Sequence

from jetvit_daemon.pipeline.frames import Result
from jetvit_daemon.pipeline.sinks.base import ResultSink
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger(__name__)

# Why a result did not reach a sink's destination (the `reason` label of the dropped counter):
#   queue_full    the queue overflowed while the sink was connected: it is slower than inference
#   disconnected  the queue overflowed while the sink was not connected (broker down, ...)
#   error         delivery raised (disk full, publish refused, a client that went away, ...)
#   slow_client   an HTTP stream client's own queue overflowed (it reads slower than results come)
DROP_REASONS = ("queue_full", "disconnected", "error", "slow_client")


@dataclass(frozen=True)
class SinkStats:
    """One sink's counters: results sent, dropped by reason, skipped on purpose (on_change/rate filters)."""

    name: str
    kind: str
    sent_total: int
    dropped_total: Dict[str, int]
    skipped_total: int
    queue_depth: int
    queue_capacity: int
    connected: bool


class QueuedSink(ResultSink):
    """Base of every I/O sink. Subclasses implement `_deliver` (and optionally `_open`, `_tick`, `_shutdown`),
    all called on the sink's own thread; `emit` and `stats` are thread-safe.

    >>> sink = SomeSink(...); sink.start(); sink.emit(results); sink.stats(); sink.close()  # doctest: +SKIP
    """

    kind = "queued"
    # How long the sink's thread waits for results before it turns its loop (beat, `_tick`).
    tick_s = 0.2
    # At most this many results are handed to one `_deliver` call.
    batch_max = 256

    def __init__(
        self,
        name: str,
        queue_size: int,
        drain_timeout_s: float = 1.0,
        on_death: Optional[Callable[[str, BaseException], None]] = None,
        on_error: Optional[Callable[[str, BaseException], None]] = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"sink {name}: queue_size must be at least 1, got {queue_size}")
        self.name = name
        self.queue_capacity = queue_size
        self.drain_timeout_s = drain_timeout_s
        self._on_error = on_error
        self._items: Deque[Result] = collections.deque()
        self._cond = threading.Condition()
        self._connected = False
        self._sent = 0
        self._skipped = 0
        self._dropped: Dict[str, int] = {reason: 0 for reason in DROP_REASONS}
        self._failing = False
        self._started = False
        self._worker = WorkerThread(f"sink-{name}", self._body, on_death)

    # -- the inference thread ----------------------------------------------------------------------------
    def emit(self, results: Sequence[Result]) -> None:
        if not results:
            return
        with self._cond:
            reason = "queue_full" if self._connected else "disconnected"
            for r in results:
                if len(self._items) >= self.queue_capacity:
                    self._items.popleft()
                    self._dropped[reason] += 1
                self._items.append(r)
            self._cond.notify()

    # -- the owner's thread --------------------------------------------------------------------------------
    def start(self) -> None:
        self._started = True
        self._worker.start()

    def close(self) -> None:
        """Deliver what is queued (up to `drain_timeout_s`, if connected), then stop the thread and release."""
        if not self._started:
            self._shutdown()
            return
        self._worker.stop_event.set()
        self._wake()
        self._worker.stop(self.drain_timeout_s + 3.0)

    @property
    def workers(self) -> List[WorkerThread]:
        return [self._worker]

    def stats(self) -> SinkStats:
        with self._cond:
            return SinkStats(self.name, self.kind, self._sent, dict(self._dropped), self._skipped,
                             len(self._items), self.queue_capacity, self._connected)

    # -- for subclasses (any thread) -----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    def _set_connected(self, connected: bool) -> None:
        with self._cond:
            self._connected = connected
            self._cond.notify_all()

    def _count_dropped(self, reason: str, n: int = 1) -> None:
        with self._cond:
            self._dropped[reason] = self._dropped.get(reason, 0) + n

    def _count_skipped(self, n: int = 1) -> None:
        with self._cond:
            self._skipped += n

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _report(self, what: str, exc: BaseException) -> None:
        """A failure at the loop boundary: logged once per run of failures (with the traceback), always counted."""
        if not self._failing:
            log.warning("sink %s: %s failed: %s", self.name, what, exc, exc_info=True)
            self._failing = True
        if self._on_error is not None:
            self._on_error(f"sink-{self.kind}", exc)

    # -- hooks (the sink's thread) -------------------------------------------------------------------------
    def _open(self) -> None:
        """Called once when the thread starts."""

    def _deliver(self, batch: List[Result]) -> int:
        """Deliver `batch`; return how many were sent (the rest are counted as dropped with reason `error`)."""
        raise NotImplementedError

    def _tick(self) -> None:
        """Called every turn of the loop (at least every `tick_s`)."""

    def _shutdown(self) -> None:
        """Called once when the thread ends, after the drain."""

    # -- the sink's thread ---------------------------------------------------------------------------------
    def _take(self, timeout_s: float) -> List[Result]:
        with self._cond:
            ready = lambda: (bool(self._items) and self._connected) or self._worker.stop_event.is_set()  # noqa: E731
            if not ready():
                self._cond.wait_for(ready, timeout_s)
            if not self._connected:
                return []
            n = min(self.batch_max, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def _deliver_counted(self, batch: List[Result]) -> None:
        try:
            sent = self._deliver(batch)
        except Exception as exc:  # one batch is the loop boundary: count it, report, go on
            self._count_dropped("error", len(batch))
            self._report("delivery", exc)
            return
        with self._cond:
            self._sent += sent
            if sent < len(batch):
                self._dropped["error"] += len(batch) - sent
        if sent:
            self._failing = False

    def _body(self, worker: WorkerThread) -> None:
        self._open()
        try:
            while not worker.stop_event.is_set():
                worker.beat()
                batch = self._take(self.tick_s)
                if batch:
                    self._deliver_counted(batch)
                try:
                    self._tick()
                except Exception as exc:
                    self._report("periodic work", exc)
            deadline = time.monotonic() + self.drain_timeout_s
            while time.monotonic() < deadline:
                batch = self._take(0.0)
                if not batch:
                    break
                self._deliver_counted(batch)
        finally:
            self._shutdown()
