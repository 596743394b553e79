"""A thread with one owner, a stop event, a heartbeat and a reported death.

Every long-lived thread of the daemon (capture, inference, governor, policy watch, telemetry readers, the
simulated board's physics, HTTP) runs in a `WorkerThread`, and the supervisor watches them all the same way:
a death (its `failure`) stops the daemon with exit 1, and the watchdog is fed only while every one is alive
and its heartbeat fresh. The loop
body receives the stop event and waits on it (`stop.wait(interval_s)`), never on a bare sleep; it calls
`beat()` each turn so the service feeds the systemd watchdog only while every worker is alive and turning.
"""

import logging
import threading
import time
from typing import Callable, Optional

log = logging.getLogger(__name__)


class WorkerThread:
    """Runs `body(worker)` on its own thread until it returns or `stop()` is called.

    If `body` raises, the exception is logged with its traceback, kept in `failure`, and `on_death(name, exc)` is
    called so the owner can shut down and exit non-zero (systemd then restarts the daemon).
    start/stop/join are for the owner's thread; `beat`/`stopping` for the worker's own.
    """

    def __init__(
        self,
        name: str,
        body: Callable[["WorkerThread"], None],
        on_death: Optional[Callable[[str, BaseException], None]] = None,
    ) -> None:
        self.name = name
        self._body = body
        self._on_death = on_death
        self.stop_event = threading.Event()
        self.failure: Optional[BaseException] = None
        self._last_beat_s = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._last_beat_s = time.monotonic()
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Ask the loop to end and wait up to `timeout_s`; returns whether it ended."""
        self.stop_event.set()
        if self._thread.ident is None:
            return True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("worker %s did not stop within %.1f s", self.name, timeout_s)
            return False
        return True

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def join(self, timeout_s: Optional[float] = None) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout_s)

    def beat(self) -> None:
        self._last_beat_s = time.monotonic()

    def heartbeat_age_s(self) -> float:
        # Wall monotonic time on purpose: the watchdog is about this process being alive, not virtual time.
        return time.monotonic() - self._last_beat_s

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._body(self)
        except BaseException as exc:
            self.failure = exc
            log.error("worker %s died", self.name, exc_info=True)
            if self._on_death is not None:
                self._on_death(self.name, exc)
