"""Frame buffers are reused only when nothing downstream still holds them (issue 11: no array per frame).

Unit tests on the holders a frame really has (a live slot, a crop view, a memoryview, the batch list), and
the gst-launch-1.0 backend against real GStreamer: a frame kept downstream is never overwritten while the
pool reuses the rest."""

import shutil
import threading
from collections import deque

import numpy as np
import pytest

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.pipeline.capture.frame_pool import FramePool
from jetvit_daemon.pipeline.capture.gst_process import GstLaunchCapture
from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.slots import SlotSet

SHAPE = (4, 4, 3)


def test_a_buffer_is_reused_once_its_frame_is_gone():
    pool = FramePool(SHAPE)
    first = pool.take()
    first_id = id(first)
    second = pool.take()
    assert second is not first and pool.size == 2
    del first
    again = pool.take()
    assert id(again) == first_id and pool.reused == 1 and pool.size == 2


def test_a_frame_held_by_a_live_slot_is_not_overwritten_until_the_slot_lets_it_go():
    pool = FramePool(SHAPE)
    slot = SlotSet(SystemClock()).add("cam", live=True)
    stop = threading.Event()
    buf = pool.take()
    buf[:] = 7
    slot.put(Frame(frame_id=0, source="cam", t_capture_s=0.0, image=buf), stop)
    held = buf
    del buf
    others = [pool.take() for _ in range(3)]
    assert all(o is not held for o in others), "a buffer in the slot was handed out again"
    assert (held == 7).all()
    newer = pool.take()
    slot.put(Frame(frame_id=1, source="cam", t_capture_s=0.0, image=newer), stop)  # overwrites frame 0: stale
    del held, others, newer
    size = pool.size
    pool.take()
    assert pool.size == size and pool.reused >= 1  # frame 0's buffer came back


@pytest.mark.parametrize("hold", ["crop", "memoryview", "batch list"])
def test_a_view_of_a_buffer_keeps_it_out_of_the_ring(hold):
    pool = FramePool(SHAPE, max_frames=2)
    buf = pool.take()
    keep = {"crop": lambda b: b[1:3, 1:3], "memoryview": lambda b: b.reshape(-1).data,
            "batch list": lambda b: [b]}[hold](buf)
    buf_id = id(buf)
    del buf
    assert all(id(pool.take()) != buf_id for _ in range(4))
    del keep
    assert any(id(pool.take()) == buf_id for _ in range(2))


def test_past_its_cap_the_pool_allocates_and_counts_it():
    pool = FramePool(SHAPE, max_frames=3)
    held = [pool.take() for _ in range(5)]
    assert pool.size == 3 and pool.allocated_unpooled == 2
    assert len({id(b) for b in held}) == 5


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="needs gst-launch-1.0 (CI installs it)")
def test_gst_capture_reuses_buffers_and_never_overwrites_a_frame_still_held():
    # videotestsrc's snow: every frame differs. Downstream keeps a sliding window of 3 (slot + batch) and
    # every 25th frame for good (the newest-frame snapshot, a slow consumer).
    argv = ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=200", "pattern=snow", "!",
            "video/x-raw,format=BGR,width=16,height=16", "!", "fdsink", "fd=1"]
    capture = GstLaunchCapture(argv, 16, 16)
    window: deque[np.ndarray] = deque(maxlen=3)
    kept, copies = [], []
    stop = threading.Event()
    capture.open()
    try:
        while True:
            try:
                grab = capture.read(5.0, stop)
            except Exception:  # the end of the stream
                break
            if grab is None:
                continue
            window.append(grab.image)
            if capture.frames % 25 == 0:
                kept.append(grab.image)
                copies.append(grab.image.copy())
    finally:
        capture.close()
    assert capture.frames == 200
    assert all(np.array_equal(k, c) for k, c in zip(kept, copies)), "a held frame was overwritten"
    assert len({id(k) for k in kept}) == len(kept)
    assert capture.pool.size <= len(kept) + 3 + 2 and capture.pool.allocated_unpooled == 0
    assert capture.pool.reused >= 200 - capture.pool.size
