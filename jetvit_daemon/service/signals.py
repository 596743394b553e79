"""Signal handling: handlers only enqueue; the main loop acts (stop on SIGTERM/SIGINT, reload on SIGHUP)."""

import queue
import signal
from types import FrameType
from typing import Any, Dict, Optional


class SignalInbox:
    """Installs handlers that put the signal's name into `inbox`. Use from the main thread only."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[str] = queue.Queue()
        self._previous: Dict[int, Any] = {}

    def install(self) -> None:
        for sig, name in ((signal.SIGTERM, "stop"), (signal.SIGINT, "stop"), (signal.SIGHUP, "reload")):
            self._previous[sig] = signal.signal(sig, self._handler(name))

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handler(self, name: str) -> Any:
        def handle(signum: int, frame: Optional[FrameType]) -> None:
            self.inbox.put_nowait(name)

        return handle
