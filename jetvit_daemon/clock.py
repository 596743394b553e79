"""The clock seam: everything that needs the time takes a `Clock`, so tests and the offline simulator can
drive time themselves."""

import time
from typing import Protocol


class Clock(Protocol):
    """A source of time. `monotonic()` for intervals, `time()` for wall-clock timestamps (seconds)."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The real clock. Thread-safe."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to: for tests and the virtual-time simulator. Not thread-safe."""

    def __init__(self, start_s: float = 1000.0, wall_offset_s: float = 1.7e9) -> None:
        self._now_s = start_s
        self._wall_offset_s = wall_offset_s

    def monotonic(self) -> float:
        return self._now_s

    def time(self) -> float:
        return self._now_s + self._wall_offset_s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._now_s += seconds
