"""Per-source frame slots: where a source's frames wait for the batcher.

A live camera's slot holds one frame and the newest wins (the overwritten frame is counted as dropped, reason
`stale`): a fresh frame is worth more than an old one, and a fast camera can never push out a slow camera's
frame, because each has its own slot. A file's slot blocks its reader when full instead (nothing is lost).
All slots of a pipeline share one lock and one condition, so the batcher wakes on a frame from any of them;
a blocked file reader waits on its own slot's condition (on the same lock), so a frame taken wakes only the
reader it made room for, not every blocked reader (four file sources at 300 frames/s made 1 200 needless
wake-ups a second, each costing the inference threads GIL time).
"""

import collections
import threading
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional, Tuple

from jetvit_daemon.clock import Clock
from jetvit_daemon.pipeline.frames import Frame

# A file source runs ahead of inference by at most this many frames (the pipe behind it holds more).
FILE_SLOT_FRAMES = 4
# How often a blocked file reader looks at its stop event (seconds).
_BLOCKED_POLL_S = 0.2


@dataclass(frozen=True)
class SlotCounts:
    name: str
    live: bool
    depth: int
    capacity: int
    put_total: int
    dropped: Dict[str, int]  # reason → frames


class FrameSlot:
    """One source's frames. `put` from the source's thread; `take` from the batcher (under the set's lock)."""

    def __init__(self, owner: "SlotSet", name: str, live: bool, capacity: int) -> None:
        self.name = name
        self.live = live
        self.capacity = capacity
        self._owner = owner
        self._items: Deque[Tuple[float, Frame]] = collections.deque()
        self._space = threading.Condition(owner.lock)  # a blocked file reader waits here for room
        self.put_total = 0
        self.dropped: Dict[str, int] = {}

    def put(self, frame: Frame, stop: Optional[threading.Event] = None, beat: Optional[Callable[[], None]] = None
            ) -> bool:
        """Hand a frame to the batcher. Live: never blocks (overwrites the oldest). File: blocks while full;
        returns False when `stop` was set while waiting (the frame was not queued)."""
        cond = self._owner.cond
        with cond:
            if self.live:
                while len(self._items) >= self.capacity:
                    _, old = self._items.popleft()
                    self._drop_locked(old, "stale")
            else:
                while len(self._items) >= self.capacity:
                    if stop is not None and stop.is_set():
                        return False
                    self._space.wait(_BLOCKED_POLL_S)
                    if beat is not None:
                        beat()
            self._items.append((self._owner.clock.monotonic(), frame))
            self.put_total += 1
            cond.notify_all()
        self._owner.arrived(frame)
        return True

    def _drop_locked(self, frame: Frame, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self._owner.dropped(frame, reason)

    # -- the batcher's side (caller holds the set's condition) ---------------------------------------------
    def oldest_locked(self) -> Optional[float]:
        return self._items[0][0] if self._items else None

    def take_locked(self) -> Frame:
        _, frame = self._items.popleft()
        self._space.notify()  # this slot's blocked file reader may go on
        return frame

    def __len__(self) -> int:
        return len(self._items)

    def counts_locked(self) -> SlotCounts:
        return SlotCounts(self.name, self.live, len(self._items), self.capacity, self.put_total, dict(self.dropped))


class SlotSet:
    """The slots of one pipeline and the condition they share. Thread-safe.

    `on_arrival(frame)` and `on_drop(frame, reason)` are called for statistics (outside / inside the lock:
    keep them short and never call back into the set).
    """

    def __init__(self, clock: Clock, on_arrival: Optional[Callable[[Frame], None]] = None,
                 on_drop: Optional[Callable[[Frame, str], None]] = None) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # notified when a frame arrives: the batcher waits on it
        self.slots: List[FrameSlot] = []
        self._on_arrival = on_arrival
        self._on_drop = on_drop

    def add(self, name: str, live: bool, capacity: Optional[int] = None) -> FrameSlot:
        with self.cond:
            if any(s.name == name for s in self.slots):
                raise ValueError(f"two sources are named {name!r}: give each a unique name")
            slot = FrameSlot(self, name, live, capacity or (1 if live else FILE_SLOT_FRAMES))
            self.slots.append(slot)
            return slot

    def arrived(self, frame: Frame) -> None:
        if self._on_arrival is not None:
            self._on_arrival(frame)

    def dropped(self, frame: Frame, reason: str) -> None:
        if self._on_drop is not None:
            self._on_drop(frame, reason)

    def drop_taken(self, frames: List[Frame], reason: str) -> None:
        """Frames the batcher already took that will give no result (the worker died with them): counted
        against their sources' slots with `reason`, like a slot's own drops."""
        with self.cond:
            by_name = {s.name: s for s in self.slots}
            for frame in frames:
                slot = by_name.get(frame.source)
                if slot is not None:
                    slot._drop_locked(frame, reason)
                else:
                    self.dropped(frame, reason)

    def wake_all(self) -> None:
        with self.cond:
            self.cond.notify_all()
            for slot in self.slots:
                slot._space.notify_all()

    def depth(self) -> int:
        with self.cond:
            return sum(len(s) for s in self.slots)

    def capacity(self) -> int:
        with self.cond:
            return sum(s.capacity for s in self.slots)

    def counts(self) -> List[SlotCounts]:
        with self.cond:
            return [s.counts_locked() for s in self.slots]
