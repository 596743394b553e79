"""Results to a JSON Lines file (one schema-v1 record per line), rotated by size and/or age so that a board's
eMMC never fills: `results.jsonl` is the live file, `results.jsonl.1` the newest rotated one, up to
`results.jsonl.<keep>`; older ones are removed."""

import logging
import os
from pathlib import Path
from typing import IO, Callable, List, Optional

from jetvit_daemon.clock import Clock
from jetvit_daemon.pipeline.frames import Result
from jetvit_daemon.pipeline.sinks.queued import QueuedSink
from jetvit_daemon.pipeline.sinks.schema import ResultEncoder

log = logging.getLogger(__name__)


class JsonlSink(QueuedSink):
    """Appends one JSON object per result to `path`, flushed after every batch (so `tail -f` follows it).

    `max_bytes` (0: no size limit): rotate before a batch would take the file past it. `rotate_interval_s`
    (None: never): rotate a non-empty file that has been open this long (a restart starts a new interval).
    `keep`: rotated files kept; the oldest beyond it are deleted (0: rotation discards the old file).
    Thread-safety as `QueuedSink`; the file is touched only by the sink's thread.
    """

    kind = "jsonl"

    def __init__(
        self,
        path: Path,
        encoder: ResultEncoder,
        clock: Clock,
        max_bytes: int = 0,
        rotate_interval_s: Optional[float] = None,
        keep: int = 5,
        queue_size: int = 10000,
        name: Optional[str] = None,
        on_death: Optional[Callable[[str, BaseException], None]] = None,
        on_error: Optional[Callable[[str, BaseException], None]] = None,
    ) -> None:
        super().__init__(name or f"jsonl:{Path(path).name}", queue_size, on_death=on_death, on_error=on_error)
        self.path = Path(path)
        self._encoder = encoder
        self._clock = clock
        self.max_bytes = max_bytes
        self.rotate_interval_s = rotate_interval_s
        self.keep = keep
        self.rotations_total = 0
        # Opened here, not on the sink's thread: a path that cannot be written is a configuration error that
        # stops the start with the file's name, not a silent stream of dropped results.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: Optional[IO[bytes]] = None
        self._opened_s = 0.0
        self._reopen()
        self._remove_beyond_keep()
        self._set_connected(True)

    def rotated_path(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def _reopen(self) -> None:
        self._file = open(self.path, "ab")  # noqa: SIM115 - open for the sink's life, closed in _shutdown
        self._opened_s = self._clock.monotonic()

    def _remove_beyond_keep(self) -> None:
        prefix = self.path.name + "."
        for entry in self.path.parent.iterdir():
            suffix = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
            if suffix.isdigit() and int(suffix) > self.keep:
                entry.unlink()

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        oldest = self.rotated_path(self.keep)
        if self.keep == 0:
            self.path.unlink()
        else:
            if oldest.exists():
                oldest.unlink()
            for n in range(self.keep - 1, 0, -1):
                if self.rotated_path(n).exists():
                    os.replace(self.rotated_path(n), self.rotated_path(n + 1))
            os.replace(self.path, self.rotated_path(1))
        self.rotations_total += 1
        self._reopen()

    def _due(self, size: int, incoming: int) -> bool:
        if size == 0:
            return False
        if self.max_bytes and size + incoming > self.max_bytes:
            return True
        age_s = self._clock.monotonic() - self._opened_s
        return self.rotate_interval_s is not None and age_s >= self.rotate_interval_s

    def _deliver(self, batch: List[Result]) -> int:
        data = "".join(self._encoder.text(r) + "\n" for r in batch).encode("utf-8")
        if self._file is None:  # a failed rotation left no file open: try again
            self._reopen()
        assert self._file is not None
        if self._due(self._file.tell(), len(data)):
            self._rotate()
            assert self._file is not None
        self._file.write(data)
        self._file.flush()
        return len(batch)

    def _tick(self) -> None:
        # Age-based rotation also while no results come (a stopped camera must not keep a day's file open).
        if self._file is not None and self.rotate_interval_s is not None and self._due(self._file.tell(), 0):
            self._rotate()

    def _shutdown(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
