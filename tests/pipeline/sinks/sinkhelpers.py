"""Results and sinks for the sink tests."""

import threading
import time
from typing import Callable, List, Optional

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.pipeline.frames import Result
from jetvit_daemon.pipeline.sinks.queued import QueuedSink
from jetvit_daemon.pipeline.sinks.schema import ModelIdentity, ResultEncoder

MODEL = ModelIdentity("vit-digits", "sha256:0123456789ab")


def result(frame: int, source: str = "cam0", label: str = "7", t_capture_s: float = 1000.0,
           latency_s: float = 0.025) -> Result:
    return Result(frame_id=frame, source=source, t_capture_s=t_capture_s, t_result_s=t_capture_s + latency_s,
                  class_index=int(label) if label.isdigit() else 0, label=label, score=0.9,
                  top_k=((label, 0.9), ("1", 0.06), ("4", 0.04)))


def encoder(clock: Optional[ManualClock] = None) -> ResultEncoder:
    return ResultEncoder(clock or ManualClock(), MODEL)


def wait_until(cond: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class GateSink(QueuedSink):
    """Delivers into a list, but only while its gate is open: a sink that is as slow as a test wants."""

    kind = "gate"

    def __init__(self, queue_size: int, connected: bool = True, fail: bool = False, **kw) -> None:
        super().__init__("gate", queue_size, **kw)
        self.gate = threading.Event()
        self.delivered: List[Result] = []
        self.fail = fail
        self._set_connected(connected)

    def _deliver(self, batch: List[Result]) -> int:
        while not self.gate.wait(0.05):
            if self._worker.stop_event.is_set():
                break
        if self.fail:
            raise OSError(28, "No space left on device")
        self.delivered.extend(batch)
        return len(batch)
