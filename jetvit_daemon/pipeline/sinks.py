"""Where results go. Sinks are called from the inference thread: keep them fast, or queue inside."""

import abc
import json
import threading
from pathlib import Path
from typing import IO, List, Optional, Sequence

from jetvit_daemon.pipeline.frames import Result


class ResultSink(abc.ABC):
    """Receives every batch of results. Called from one thread (the inference stage)."""

    @abc.abstractmethod
    def emit(self, results: Sequence[Result]) -> None: ...

    def close(self) -> None:
        """Flush and release."""


class JsonlSink(ResultSink):
    """Appends one JSON object per result to a file (line-buffered, so `tail -f` sees results as they come)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: Optional[IO[str]] = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the sink's life

    def emit(self, results: Sequence[Result]) -> None:
        if self._file is None:
            return
        for r in results:
            self._file.write(
                json.dumps(
                    {
                        "frame_id": r.frame_id,
                        "source": r.source,
                        "label": r.label,
                        "class_index": r.class_index,
                        "score": round(r.score, 5),
                        "latency_ms": round(r.latency_s * 1000.0, 3),
                        "truth": r.truth,
                        "t_capture_unix_s": r.t_capture_wall_s,
                    }
                )
                + "\n"
            )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


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
