"""Reused frame buffers for a capture that reads fixed-size raw frames (gst_process.py).

>>> pool = FramePool((224, 224, 3))                                   # doctest: +SKIP
>>> buf = pool.take()   # a buffer nobody else holds; fill it, hand it on (Grab → Frame → slot)   # doctest: +SKIP

Without it every frame was a fresh `np.empty` (150 KB at 224×224, 2.7 MB at 1280×720: an mmap and page
faults per frame above glibc's mmap threshold). A frame handed on may be held for a while by its slot
(depth 1 live, FILE_SLOT_FRAMES for a file), the batch being formed and inferred (≤ the model's max batch),
the pipeline's newest-frame-per-source for snapshots, and a snapshot being encoded. A buffer is therefore
reused only when nothing but the pool refers to it: CPython's reference count tells, and every numpy view
of it (a crop, a reshape, a memoryview) holds a reference to it through `.base`, so a frame still in use,
whole or in part, is never overwritten. Only the capture's thread takes buffers, and a buffer nobody else
holds can be reached by no other thread, so the check cannot race.

The pool grows to what is in flight (each miss adds a buffer) up to `max_frames`; past that a miss is a
plain allocation, counted in `allocated_unpooled`.
"""

import sys
from typing import List, Tuple

import numpy as np

# Enough for a file's slot (4) + a batch of 8 + the snapshot frame + the one being filled, with room to spare.
MAX_POOL_FRAMES = 24


def _refs(buf: np.ndarray) -> int:
    return sys.getrefcount(buf)


def _baseline_refs() -> int:
    """What `_refs` reports for a buffer held only by a list and one local, measured the way `take` asks
    (interpreters differ in the references a call adds: 3.14 borrows some)."""
    ring = [np.empty(1, dtype=np.uint8)]
    buf = ring[0]
    return _refs(buf)


class FramePool:
    """A ring of `shape` uint8 buffers; `take()` returns one that nothing outside the pool references.
    One thread (the capture's) takes; any thread may drop references."""

    def __init__(self, shape: Tuple[int, ...], max_frames: int = MAX_POOL_FRAMES) -> None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be ≥ 1, got {max_frames}")
        self.shape = tuple(shape)
        self.max_frames = max_frames
        self._buffers: List[np.ndarray] = []
        self._next = 0
        self._free_refs = _baseline_refs()
        self.reused = 0
        self.allocated_unpooled = 0

    @property
    def size(self) -> int:
        return len(self._buffers)

    def take(self) -> np.ndarray:
        n = len(self._buffers)
        for i in range(n):
            idx = (self._next + i) % n
            buf = self._buffers[idx]
            if _refs(buf) <= self._free_refs:
                self._next = (idx + 1) % n
                self.reused += 1
                return buf
        fresh = np.empty(self.shape, dtype=np.uint8)
        if n < self.max_frames:
            self._buffers.append(fresh)
            self._next = 0
        else:
            self.allocated_unpooled += 1
        return fresh
