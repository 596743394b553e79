"""The sink interface, and an in-memory sink for tests and the end-to-end accuracy check."""

import abc
import threading
from typing import List, Sequence

from jetvit_daemon.pipeline.frames import Result
from jetvit_daemon.workers import WorkerThread


class ResultSink(abc.ABC):
    """Receives every batch of results from the inference stage.

    `emit` is called from one thread (the inference stage) and must not block: a sink that does I/O queues
    inside (see `QueuedSink`). The pipeline calls `start()` before the first batch and `close()` after the
    last; `workers` are the sink's own threads, supervised with the pipeline's.
    """

    @abc.abstractmethod
    def emit(self, results: Sequence[Result]) -> None: ...

    def start(self) -> None:
        """Start the sink's own threads, if any."""

    def close(self) -> None:
        """Flush and release."""

    @property
    def workers(self) -> List[WorkerThread]:
        return []


class MemorySink(ResultSink):
    """Keeps results in memory (bounded), for tests and the end-to-end accuracy check. Thread-safe reads."""

    def __init__(self, limit: int = 100000) -> None:
        self._lock = threading.Lock()
        self._results: List[Result] = []
        self._limit = limit

    def emit(self, results: Sequence[Result]) -> None:
        with self._lock:
            room = self._limit - len(self._results)
            if room > 0:
                self._results.extend(results[:room])

    def results(self) -> List[Result]:
        with self._lock:
            return list(self._results)
