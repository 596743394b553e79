"""The thread lifecycle and staleness rule that every threaded `TelemetrySource` shares.

`ThreadedTelemetry` owns the worker thread (a `WorkerThread`, so the supervisor watches it like every other:
a death stops the daemon with exit 1 and starves the watchdog), its stop event, the lock-guarded newest sample
and the `is_stale()` verdict, the one staleness rule of the daemon; a source (tegrastats, sysfs, jtop)
subclasses it and writes only its loop body, `_run()`, which lets a bug escape after reporting it.
"""

import abc
import logging
import threading
from typing import List, Optional

from jetvit_daemon.clock import Clock
from jetvit_daemon.errors import TelemetryError
from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.workers import WorkerThread

__all__ = ["STALE_INTERVALS", "ThreadedTelemetry"]

STALE_INTERVALS = 3  # no good reading for this many intervals: stale (TelemetrySource contract)


class ThreadedTelemetry(abc.ABC):
    """The `start`/`stop`/`latest`/`is_stale` half of a `TelemetrySource` that polls on its own thread.

    >>> class Constant(ThreadedTelemetry):                                 # doctest: +SKIP
    ...     name, _thread_name = "constant", "constant-telemetry"
    ...     def _run(self):
    ...         while not self._stop.is_set():
    ...             with self._lock:
    ...                 self._latest = TelemetrySample(t_mono_s=self._clock.monotonic())
    ...             self._stop.wait(self._interval_s)
    >>> source = Constant(SystemClock(), interval_s=1.0)                    # doctest: +SKIP
    >>> source.start(); source.latest(); source.is_stale(); source.stop()   # doctest: +SKIP

    `_run()` is the worker thread's whole body: it loops until `self._stop` is set, stores each sample in
    `self._latest` under `self._lock`, calls `self._beat()` each turn, and lets a bug escape (the
    `WorkerThread` logs it with its traceback and keeps it in `failure`). Staleness is judged on the
    injected clock: no sample for `STALE_INTERVALS` intervals since the last one (or since `start()`).
    `latest()` and `is_stale()` are thread-safe; `start()`/`stop()` belong to the owner.
    """

    name: str
    _thread_name = "telemetry"  # the worker thread's name
    _stop_warning = "telemetry thread did not stop within %.1f s"  # logged with the timeout

    def __init__(self, clock: Clock, interval_s: float) -> None:
        self._clock = clock
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._worker: Optional[WorkerThread] = None
        self._latest: Optional[TelemetrySample] = None
        self._started_at: Optional[float] = None

    @property
    def _thread(self) -> Optional[WorkerThread]:
        return self._worker

    @property
    def failure(self) -> Optional[BaseException]:
        """The exception that killed the worker thread, else None."""
        return self._worker.failure if self._worker is not None else None

    def workers(self) -> List[WorkerThread]:
        """The reader's thread, for the supervisor (empty before start)."""
        return [self._worker] if self._worker is not None else []

    def start(self) -> None:
        if self._worker is not None:
            raise TelemetryError(f"{type(self).__name__} already started")
        worker = WorkerThread(self._thread_name, lambda w: self._run())
        self._stop = worker.stop_event
        with self._lock:
            self._started_at = self._clock.monotonic()
        self._worker = worker
        worker.start()

    def _beat(self) -> None:
        worker = self._worker
        if worker is not None:
            worker.beat()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        worker = self._worker
        if worker is not None and not worker.stop(timeout_s):
            # The subclass's module logger, so the warning keeps the logger name it always had.
            logging.getLogger(type(self).__module__).warning(self._stop_warning, timeout_s)
        self._worker = None

    def begin_stop(self) -> None:
        """Stopping has begun: the loop ends at its next check and restarts nothing; `stop()` still joins.
        Thread-safe."""
        self._stop.set()

    def _emit(self, kind: str, message: str) -> None:
        """Report an event (restart, stale, parse error …) to the owner's `on_event`, if any; a failing
        callback is logged, never raised into the worker."""
        callback = getattr(self, "_on_event", None)
        if callback is None:
            return
        try:
            callback(kind, message)
        except Exception:
            logging.getLogger(type(self).__module__).exception("%s: on_event callback failed for %s",
                                                               self._thread_name, kind)

    def latest(self) -> Optional[TelemetrySample]:
        with self._lock:
            return self._latest

    def is_stale(self) -> bool:
        now = self._clock.monotonic()
        limit_s = STALE_INTERVALS * self._interval_s
        with self._lock:
            if self._latest is not None:
                return now - self._latest.t_mono_s > limit_s
            if self._started_at is None:
                return True
            return now - self._started_at > limit_s

    @abc.abstractmethod
    def _run(self) -> None:
        """The worker thread's body: poll until `self._stop` is set."""
