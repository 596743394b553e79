"""Signal handling: handlers only record; the main loop acts (stop on SIGTERM/SIGINT, reload on SIGHUP).

A handler runs on the main thread between two bytecodes, possibly while that thread holds a lock (a queue's,
an Event's): so it takes none, it only bumps a counter or sets a flag. The supervisor polls them every tick.
SIGHUPs coalesce into one pending reload, so a storm of them costs one reload, never a queue that delays
SIGTERM; a second SIGTERM/SIGINT while stopping says "hurry" (skip the drain, still restore).
"""

import signal
from types import FrameType
from typing import Any, Dict, Optional


class SignalInbox:
    """Installs the handlers (main thread only); `stop_requests`, `take_reload()` and `hurry` are read by
    the supervisor. Tests call `request_stop()` / `request_reload()` instead of sending signals."""

    def __init__(self) -> None:
        self.stop_requests = 0
        self._reload_pending = False
        self._previous: Dict[int, Any] = {}

    def install(self) -> None:
        for sig, handler in ((signal.SIGTERM, self._on_stop), (signal.SIGINT, self._on_stop),
                             (signal.SIGHUP, self._on_reload)):
            self._previous[sig] = signal.signal(sig, handler)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_stop(self, signum: int, frame: Optional[FrameType]) -> None:
        self.stop_requests += 1

    def _on_reload(self, signum: int, frame: Optional[FrameType]) -> None:
        self._reload_pending = True

    def request_stop(self) -> None:
        self.stop_requests += 1

    def request_reload(self) -> None:
        self._reload_pending = True

    @property
    def stop_requested(self) -> bool:
        return self.stop_requests > 0

    @property
    def hurry(self) -> bool:
        """A second stop request: skip the drain."""
        return self.stop_requests > 1

    def take_reload(self) -> bool:
        """Whether a reload was asked for since the last call (any number of SIGHUPs count once)."""
        pending, self._reload_pending = self._reload_pending, False
        return pending
