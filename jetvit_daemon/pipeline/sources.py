"""Frame sources. `SyntheticCamera` films the held-out digits so the whole pipeline can be checked end to end
on any machine; a real camera (OpenCV / GStreamer) implements the same interface."""

import abc
import threading
from typing import Optional

import numpy as np

from jetvit_daemon.clock import Clock
from jetvit_daemon.pipeline.digits import load_digits_test, render_digit_frame
from jetvit_daemon.pipeline.frames import Frame


class FrameSource(abc.ABC):
    """A camera. `read` is called from one thread (the source's capture thread)."""

    name: str = "source"

    def open(self) -> None:
        """Acquire the device. Raises SourceError when it cannot."""

    @abc.abstractmethod
    def read(self, stop: threading.Event) -> Optional[Frame]:
        """Block until the next frame is due and return it; None when `stop` was set or the stream ended."""

    def close(self) -> None:
        """Release the device."""


class SyntheticCamera(FrameSource):
    """A camera at a fixed frame rate filming labelled handwritten digits (BGR, `width`×`height`).

    Deterministic for a given seed. `read` paces itself on the injected clock; not thread-safe (one reader).
    """

    def __init__(
        self,
        clock: Clock,
        fps: float = 30.0,
        width: int = 640,
        height: int = 480,
        seed: int = 0,
        name: str = "synthetic0",
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.name = name
        self.fps = fps
        self._clock = clock
        self._width = width
        self._height = height
        self._rng = np.random.default_rng(seed)
        self._images, self._labels = load_digits_test()
        self._order = self._rng.permutation(len(self._labels))
        self._count = 0
        self._next_due_s: Optional[float] = None

    def read(self, stop: threading.Event) -> Optional[Frame]:
        now = self._clock.monotonic()
        if self._next_due_s is None:
            self._next_due_s = now
        delay_s = self._next_due_s - now
        if delay_s > 0 and stop.wait(delay_s):
            return None
        if stop.is_set():
            return None
        # Schedule from the due time, not from now, so the rate holds on average; after a long stall, do not
        # burst to catch up (a camera drops the frames it could not deliver).
        now = self._clock.monotonic()
        self._next_due_s = max(self._next_due_s + 1.0 / self.fps, now - 1.0 / self.fps)
        index = int(self._order[self._count % len(self._order)])
        image = render_digit_frame(self._images[index], self._rng, self._width, self._height)
        frame = Frame(
            frame_id=self._count,
            source=self.name,
            t_capture_s=self._clock.monotonic(),
            image=image,
            truth=int(self._labels[index]),
        )
        self._count += 1
        return frame
