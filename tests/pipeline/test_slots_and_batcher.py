"""Per-source slots (live: newest wins, counted `stale`; file: blocks, nothing lost), the round-robin batcher
(wait from the first frame of the batch) and the synthetic camera."""

import threading
import time

import numpy as np

from jetvit_daemon.clock import ManualClock, SystemClock
from jetvit_daemon.pipeline.batcher import Batcher
from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.slots import SlotSet
from jetvit_daemon.pipeline.sources import SyntheticCamera


def frame(i: int, source: str = "t") -> Frame:
    return Frame(frame_id=i, source=source, t_capture_s=float(i), image=np.zeros((1, 1, 3), np.uint8))


def ids(frames):
    return [(f.source, f.frame_id) for f in frames]


def test_live_slot_keeps_the_newest_frame_and_counts_the_overwritten_as_stale():
    drops = []
    slots = SlotSet(SystemClock(), on_drop=lambda f, reason: drops.append((f.frame_id, reason)))
    slot = slots.add("cam", live=True)
    for i in range(4):
        assert slot.put(frame(i, "cam"))
    assert drops == [(0, "stale"), (1, "stale"), (2, "stale")]
    assert slot.dropped == {"stale": 3}
    assert ids(Batcher(slots, SystemClock(), batch_size=8, max_batch_wait_s=0).next_batch(0.1)) == [("cam", 3)]


def test_file_slot_blocks_the_reader_instead_of_dropping():
    slots = SlotSet(SystemClock())
    slot = slots.add("file", live=False, capacity=2)
    batcher = Batcher(slots, SystemClock(), batch_size=1, max_batch_wait_s=0)
    got = []
    stop = threading.Event()

    def reader():
        for i in range(10):
            assert slot.put(frame(i, "file"), stop)

    t = threading.Thread(target=reader)
    t.start()
    while len(got) < 10:
        got.extend(batcher.next_batch(5.0))
    t.join(5)
    assert [f.frame_id for f in got] == list(range(10)) and slot.dropped == {}


def test_a_blocked_file_reader_gives_up_when_stopped():
    slots = SlotSet(SystemClock())
    slot = slots.add("file", live=False, capacity=1)
    stop = threading.Event()
    assert slot.put(frame(0), stop)
    stop.set()
    assert slot.put(frame(1), stop) is False


def test_batches_are_round_robin_across_sources():
    slots = SlotSet(SystemClock())
    a, b, c = (slots.add(n, live=False, capacity=4) for n in "abc")
    for i in range(3):
        a.put(frame(i, "a"))
    b.put(frame(0, "b"))
    c.put(frame(0, "c"))
    c.put(frame(1, "c"))
    batcher = Batcher(slots, SystemClock(), batch_size=4, max_batch_wait_s=0)
    assert ids(batcher.next_batch(0.1)) == [("a", 0), ("b", 0), ("c", 0), ("a", 1)]
    # The next batch starts after the last slot served: b is empty, so c then a.
    assert ids(batcher.next_batch(0.1)) == [("c", 1), ("a", 2)]


def test_a_single_live_camera_can_fill_a_batch_while_it_forms():
    slots = SlotSet(SystemClock())
    slot = slots.add("cam", live=True)
    batcher = Batcher(slots, SystemClock(), batch_size=3, max_batch_wait_s=10.0)

    def feed():
        for i in range(3):
            time.sleep(0.05)
            slot.put(frame(i, "cam"))

    t = threading.Thread(target=feed)
    t.start()
    batch = batcher.next_batch(10.0)
    t.join()
    assert [f.frame_id for f in batch] == [0, 1, 2] and slot.dropped == {}


def test_batch_wait_counts_from_the_first_frame_not_from_the_call():
    clock = ManualClock()
    slots = SlotSet(clock)
    a = slots.add("a", live=True)
    batcher = Batcher(slots, clock, batch_size=4, max_batch_wait_s=0.05)
    a.put(frame(0, "a"))
    clock.advance(0.06)  # the first frame has already waited longer than max_batch_wait
    out, stop = [], threading.Event()
    t = threading.Thread(target=lambda: out.append(batcher.next_batch(1.0, stop)), daemon=True)
    t.start()
    t.join(5.0)
    still_waiting = t.is_alive()
    stop.set()
    # Had the wait counted from the call, the batcher would still be waiting: this clock does not move.
    assert not still_waiting, "the batcher waited max_batch_wait from the call, not from the first frame"
    assert ids(out[0]) == [("a", 0)]


def test_batching_is_set_live_and_clamped():
    batcher = Batcher(SlotSet(SystemClock()), SystemClock(), batch_size=4, max_batch_wait_s=0.02, max_batch=32)
    assert batcher.set_batching(100, 0.1) == 32 and batcher.max_batch_wait_s == 0.1
    assert batcher.set_batching(0, -1) == 1 and batcher.max_batch_wait_s == 0.0
    assert batcher.next_batch(0.01) == []


def test_synthetic_camera_paces_on_its_clock_and_labels_frames():
    clock = ManualClock()
    cam = SyntheticCamera(clock, fps=10, width=64, height=48, seed=3)
    stop = threading.Event()
    first = cam.read(stop)
    assert first is not None and first.image.shape == (48, 64, 3) and first.image.dtype == np.uint8
    assert first.truth in range(10)
    clock.advance(0.1)
    second = cam.read(stop)
    assert second is not None and second.frame_id == 1
    # Not due yet: read waits (here: until stop is set) instead of producing a frame early.
    stop.set()
    assert cam.read(stop) is None


def test_synthetic_camera_is_deterministic_per_seed():
    def frames(seed):
        clock = ManualClock()
        cam = SyntheticCamera(clock, fps=1000, width=64, height=48, seed=seed)
        out = []
        for _ in range(3):
            clock.advance(0.001)
            f = cam.read(threading.Event())
            assert f is not None
            out.append((f.truth, f.image.sum()))
        return out

    assert frames(1) == frames(1)
    assert frames(1) != frames(2)
