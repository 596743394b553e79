"""The batcher: frames from the per-source slots → one batch, round-robin across the sources that have a
frame, so every camera gets its turn whatever its rate.

`max_batch_wait` counts from the FIRST frame of the batch (as nvstreammux's batched-push-timeout and Triton's
max_queue_delay do): a frame never waits longer than that for company, however the frames trickle in. Batch
size and wait are set live by the governor (`set_batching`).
"""

import threading
from typing import List, Optional

from jetvit_daemon.clock import Clock
from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.slots import SlotSet


class Batcher:
    """Forms batches from a `SlotSet`. `next_batch` from one consumer thread; `set_batching` and the
    properties from any thread."""

    def __init__(self, slots: SlotSet, clock: Clock, batch_size: int = 1, max_batch_wait_s: float = 0.02,
                 max_batch: int = 1024) -> None:
        self._slots = slots
        self._clock = clock
        self.max_batch = max(1, max_batch)
        self._size = self._clamp(batch_size)
        self._wait_s = max(0.0, max_batch_wait_s)
        self._next = 0  # the slot that goes first in the next pass (round-robin)
        self._lock = threading.Lock()

    def _clamp(self, n: int) -> int:
        return max(1, min(int(n), self.max_batch))

    def set_max_batch(self, max_batch: int) -> None:
        """The largest batch the model takes (known once the worker loaded it); the size is clamped to it."""
        with self._lock:
            self.max_batch = max(1, max_batch)
            self._size = self._clamp(self._size)

    def set_batching(self, batch_size: int, max_batch_wait_s: float) -> int:
        with self._lock:
            self._size = self._clamp(batch_size)
            self._wait_s = max(0.0, max_batch_wait_s)
            return self._size

    @property
    def batch_size(self) -> int:
        with self._lock:
            return self._size

    @property
    def max_batch_wait_s(self) -> float:
        with self._lock:
            return self._wait_s

    def next_batch(self, idle_timeout_s: float, stop: Optional[threading.Event] = None) -> List[Frame]:
        """Up to `batch_size` frames, round-robin over the slots. Waits up to `idle_timeout_s` for a first
        frame ([] if none), then until the batch is full or `max_batch_wait_s` after the first frame arrived
        (a first frame that already waited that long goes at once, with whatever else is there)."""
        with self._lock:
            size, wait_s = self._size, self._wait_s
        cond = self._slots.cond
        with cond:
            if not cond.wait_for(self._any_locked, idle_timeout_s):
                return []
            first_s = min(t for t in (s.oldest_locked() for s in self._slots.slots) if t is not None)
            deadline_s = first_s + wait_s
            batch: List[Frame] = []
            # Frames move into the forming batch as they arrive, so a live camera's one-frame slot is free
            # again at once and a single camera can still fill a batch.
            while True:
                batch.extend(self._take_locked(size - len(batch)))
                remaining = deadline_s - self._clock.monotonic()
                if len(batch) >= size or remaining <= 0 or (stop is not None and stop.is_set()):
                    return batch
                cond.wait(remaining)

    def _any_locked(self) -> bool:
        return any(len(s) for s in self._slots.slots)

    def _take_locked(self, size: int) -> List[Frame]:
        slots = self._slots.slots
        n = len(slots)
        batch: List[Frame] = []
        start = self._next % n if n else 0
        while len(batch) < size:
            took = False
            for k in range(n):
                slot = slots[(start + k) % n]
                if len(slot) and len(batch) < size:
                    batch.append(slot.take_locked())
                    took = True
                    self._next = (start + k + 1) % n
            if not took:
                break
            start = self._next
        return batch
