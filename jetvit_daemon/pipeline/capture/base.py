"""The capture interface the supervisor drives: one attempt at a stream (open → read frames → close). The
supervisor decides what a failure means (stall, backoff, failed) and when to try again."""

import abc
import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from jetvit_daemon.errors import SourceError
from jetvit_daemon.pipeline.sources import FrameSource


@dataclass(frozen=True)
class Grab:
    """One captured image (H×W×3 BGR uint8) and, for the synthetic camera, the label it filmed."""

    image: np.ndarray
    truth: Optional[int] = None
    t_capture_s: Optional[float] = None  # when the backend knows better than "now" (monotonic clock)


class CaptureError(SourceError):
    """This attempt failed. `permanent`: retrying soon will not help (no such file or device, bad URI path,
    401, a missing GStreamer element); the supervisor reports `failed` and retries slowly."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class CaptureEnded(SourceError):
    """The stream ended cleanly (end of a file)."""


class Capture(abc.ABC):
    """One attempt at a stream. All methods are called from the supervisor's thread only."""

    #: which backend this is and why it was chosen (logged at start, shown in /status)
    backend: str = "unknown"

    @abc.abstractmethod
    def open(self) -> None:
        """Start capturing. Raises CaptureError."""

    @abc.abstractmethod
    def read(self, timeout_s: float, stop: threading.Event) -> Optional[Grab]:
        """The next frame, or None when none arrived within `timeout_s` (or `stop` was set). Raises
        CaptureEnded at the end of a file and CaptureError when the stream broke. Must return within about
        `timeout_s`: the supervisor's stall timer and stop requests depend on it."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything (kill the child, close the device). Safe to call twice."""


class FrameSourceCapture(Capture):
    """Adapts a `FrameSource` (the synthetic camera) to the supervisor: its `read` paces itself and never
    blocks longer than one frame period."""

    backend = "in-process"

    def __init__(self, source: FrameSource) -> None:
        self.source = source

    def open(self) -> None:
        self.source.open()

    def read(self, timeout_s: float, stop: threading.Event) -> Optional[Grab]:
        frame = self.source.read(stop)
        if frame is None:
            if stop.is_set():
                return None
            raise CaptureEnded(f"{self.source.name} ended")
        return Grab(frame.image, frame.truth, frame.t_capture_s)

    def close(self) -> None:
        self.source.close()
