"""One supervisor per source: runs its capture attempts on the source's own thread, through the states

    starting → streaming → stalled → backoff → (starting ...)      and      failed (permanent; slow retry)

A stall is our own timer, not GStreamer's: no frame for max(3 s, 5 frame periods) (a frozen RTSP server that
keeps the TCP connection open goes unnoticed by rtspsrc for ~25 s). The attempt is then closed (the child
killed) and retried after an exponential backoff with jitter, 1 s → 30 s, reset once the source has streamed
for 60 s. A permanent error (no such file or device, 404/401, a missing element) is `failed`, with its reason,
retried every `failed_retry_s`. Whatever happens here stays here: the other sources never notice.
"""

import collections
import enum
import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from jetvit_daemon.clock import Clock
from jetvit_daemon.pipeline.capture.base import Capture, CaptureEnded, CaptureError, Grab
from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.slots import FrameSlot
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger(__name__)

STALL_MIN_S = 3.0
STALL_PERIODS = 5
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0
HEALTHY_RESET_S = 60.0
FAILED_RETRY_S = 60.0
# How long one read may block before the loop looks at its stop event and stall timer again.
_READ_SLICE_S = 0.2
# Transitions kept for /status.
_HISTORY = 12
# Rate window of the per-source fps figure.
_FPS_WINDOW_S = 5.0


class SourceState(str, enum.Enum):
    STARTING = "starting"
    STREAMING = "streaming"
    STALLED = "stalled"
    BACKOFF = "backoff"
    FAILED = "failed"
    ENDED = "ended"  # a file without `loop` that was read to its end
    STOPPED = "stopped"


def stall_timeout_s(fps: Optional[float], minimum_s: float = STALL_MIN_S) -> float:
    """No frame for this long is a stall: max(3 s, 5 frame periods)."""
    if fps is None or fps <= 0:
        return minimum_s
    return max(minimum_s, STALL_PERIODS / fps)


class Backoff:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s ... ≤ 30 s, each ±20%; `reset()` after a healthy run.
    Not thread-safe (one supervisor)."""

    def __init__(self, initial_s: float = BACKOFF_INITIAL_S, max_s: float = BACKOFF_MAX_S,
                 rng: Optional[random.Random] = None, jitter: float = 0.2) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay_s(self) -> float:
        base = min(self.max_s, self.initial_s * (2.0 ** self.attempt))
        self.attempt += 1
        return min(self.max_s, base * self._rng.uniform(1.0 - self.jitter, 1.0 + self.jitter))

    def reset(self) -> None:
        self.attempt = 0


@dataclass(frozen=True)
class SupervisorSettings:
    live: bool
    nominal_fps: Optional[float] = None  # what the stall timer expects; None: unknown (3 s)
    loop: bool = False  # files: start again at the end
    stall_min_s: float = STALL_MIN_S
    start_timeout_s: float = 10.0  # first frame of an attempt (an RTSP connect, a CSI sensor's start)
    failed_retry_s: float = FAILED_RETRY_S
    healthy_reset_s: float = HEALTHY_RESET_S


@dataclass
class SourceStatus:
    """A snapshot for /status, metrics and `sources test`. Never holds credentials."""

    name: str
    uri: str  # redacted
    backend: str
    state: str
    state_for_s: float
    frames_total: int
    fps: float
    reconnects_total: int
    restarts_total: int
    stalls_total: int = 0
    dropped: Dict[str, int] = field(default_factory=dict)
    last_error: Optional[str] = None
    frame_shape: Optional[Any] = None
    last_frame_age_s: Optional[float] = None
    history: List[Any] = field(default_factory=list)  # recent transitions: [state, seconds ago, reason]

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


class SourceSupervisor:
    """Owns one source: its capture attempts, its thread (`worker`) and its state.

    >>> sup = SourceSupervisor("cam", "rtsp://cam/1", make_capture, settings, clock)   # doctest: +SKIP
    >>> sup.attach(slot); sup.worker.start(); sup.status(); sup.stop()                # doctest: +SKIP

    `status()` is thread-safe; `attach` before start; `stop` from the owner's thread.
    """

    def __init__(
        self,
        name: str,
        uri: str,
        make_capture: Callable[[], Capture],
        settings: SupervisorSettings,
        clock: Clock,
        backoff: Optional[Backoff] = None,
        on_worker_death: Optional[Callable[[str, BaseException], None]] = None,
        on_permanent: Optional[Callable[[CaptureError], bool]] = None,
        backend: str = "",
    ) -> None:
        self.name = name
        self.uri = uri
        self.live = settings.live
        self.settings = settings
        self._make_capture = make_capture
        self._clock = clock
        self._backoff = backoff or Backoff()
        # Called on a permanent error; True means "handled, retry with backoff" (restart_argus).
        self._on_permanent = on_permanent
        self.backend = backend
        self._slot: Optional[FrameSlot] = None
        self._lock = threading.Lock()
        self._state = SourceState.STOPPED
        self._state_since_s = clock.monotonic()
        self._frames_total = 0
        self._next_frame_id = 0
        self._reconnects = 0
        self._stalls = 0
        self._history: Deque[Tuple[float, str, Optional[str]]] = collections.deque(maxlen=_HISTORY)
        self._restarts = 0
        self._last_error: Optional[str] = None
        self._frame_shape: Optional[Any] = None
        self._last_frame_s: Optional[float] = None
        self._recent: Deque[float] = collections.deque()  # frame times within _FPS_WINDOW_S, oldest first
        self._streamed_once = False
        self.worker = WorkerThread(f"source-{name}", self._body, on_worker_death)

    def attach(self, slot: FrameSlot) -> None:
        self._slot = slot

    def stop(self, timeout_s: float = 3.0) -> None:
        self.worker.stop(timeout_s)

    # -- status --------------------------------------------------------------------------------------------
    @property
    def state(self) -> SourceState:
        with self._lock:
            return self._state

    def status(self) -> SourceStatus:
        now = self._clock.monotonic()
        slot = self._slot
        dropped = dict(slot.dropped) if slot is not None else {}
        with self._lock:
            self._trim_recent_locked(now)
            span = min(_FPS_WINDOW_S, max(1e-6, now - self._state_since_s)) if self._state == \
                SourceState.STREAMING else _FPS_WINDOW_S
            return SourceStatus(
                name=self.name, uri=self.uri, backend=self.backend, state=self._state.value,
                state_for_s=now - self._state_since_s, frames_total=self._frames_total,
                fps=len(self._recent) / span, reconnects_total=self._reconnects, restarts_total=self._restarts,
                stalls_total=self._stalls,
                history=[[state, round(now - t, 3), why] for t, state, why in self._history],
                dropped=dropped, last_error=self._last_error, frame_shape=self._frame_shape,
                last_frame_age_s=None if self._last_frame_s is None else now - self._last_frame_s)

    def _set_state(self, state: SourceState, reason: Optional[str] = None) -> None:
        with self._lock:
            if state == self._state:
                return
            old, self._state = self._state, state
            self._state_since_s = self._clock.monotonic()
            self._history.append((self._state_since_s, state.value, reason))
            if reason is not None and state in (SourceState.STALLED, SourceState.BACKOFF, SourceState.FAILED):
                self._last_error = reason
        level = logging.WARNING if state in (SourceState.STALLED, SourceState.FAILED) else logging.INFO
        log.log(level, "source %s: %s → %s%s", self.name, old.value, state.value, f" ({reason})" if reason else "")

    # -- the thread ----------------------------------------------------------------------------------------
    def _body(self, worker: WorkerThread) -> None:
        stop = worker.stop_event
        first = True
        while not stop.is_set():
            worker.beat()
            if not first:
                with self._lock:
                    self._restarts += 1
            first = False
            outcome, reason, healthy_s = self._attempt(worker)
            if stop.is_set():
                break
            if healthy_s >= self.settings.healthy_reset_s:
                self._backoff.reset()
            if outcome == "ended":
                self._set_state(SourceState.ENDED, reason)
                stop.wait()
                break
            if outcome == "loop":
                self._backoff.reset()
                continue
            if outcome == "failed":
                self._set_state(SourceState.FAILED, reason)
                self._wait(worker, self.settings.failed_retry_s)
                continue
            delay = self._backoff.next_delay_s()
            self._set_state(SourceState.BACKOFF, f"{reason}; retry in {delay:.1f} s")
            self._wait(worker, delay)
        self._set_state(SourceState.STOPPED)

    def _wait(self, worker: WorkerThread, seconds: float) -> None:
        end = self._clock.monotonic() + seconds
        while not worker.stop_event.is_set():
            worker.beat()
            remaining = end - self._clock.monotonic()
            if remaining <= 0:
                return
            worker.stop_event.wait(min(1.0, remaining))

    def _attempt(self, worker: WorkerThread) -> "tuple[str, str, float]":
        """One capture attempt: (outcome, reason, seconds it streamed). Outcomes: stopped, ended, loop,
        failed (permanent), stalled, error (transient)."""
        stop = worker.stop_event
        self._set_state(SourceState.STARTING)
        capture = self._make_capture()
        streaming_since: Optional[float] = None
        try:
            try:
                capture.open()
            except CaptureError as exc:
                return self._classify(exc), exc.reason, 0.0
            started_s = self._clock.monotonic()
            last_s = started_s
            stall_s = stall_timeout_s(self.settings.nominal_fps, self.settings.stall_min_s)
            while not stop.is_set():
                worker.beat()
                limit_s = stall_s if streaming_since is not None else self.settings.start_timeout_s
                # The read that would cross the stall deadline ends at it: the stall is declared when it is
                # due (3 s after the last frame), not up to a read slice later.
                slice_s = min(_READ_SLICE_S, max(0.0, last_s + limit_s - self._clock.monotonic()))
                try:
                    grab = capture.read(slice_s, stop)
                except CaptureEnded as exc:
                    healthy = self._since(streaming_since)
                    if self.live:
                        return "error", f"stream ended: {exc}", healthy
                    if streaming_since is None:  # an empty file must not loop at full speed
                        return "error", f"ended without a frame: {exc}", healthy
                    return ("loop" if self.settings.loop else "ended"), str(exc), healthy
                except CaptureError as exc:
                    return self._classify(exc), exc.reason, self._since(streaming_since)
                now = self._clock.monotonic()
                if grab is None:
                    if now - last_s >= limit_s:
                        what = "no frame" if streaming_since is not None else "no first frame"
                        reason = f"{what} for {now - last_s:.1f} s"
                        with self._lock:
                            self._stalls += 1
                        self._set_state(SourceState.STALLED, reason)  # shown while the child is killed
                        return "stalled", reason, self._since(streaming_since)
                    continue
                last_s = now
                if streaming_since is None:
                    streaming_since = now
                    if self._streamed_once:
                        with self._lock:
                            self._reconnects += 1
                    self._streamed_once = True
                    self._set_state(SourceState.STREAMING)
                if not self._deliver(grab, now, worker):
                    break
                # A file's slot may have blocked the reader: waiting for inference is not a stall.
                last_s = self._clock.monotonic()
            return "stopped", "stopped", self._since(streaming_since)
        finally:
            try:
                capture.close()
            except Exception:  # closing is best effort; the next attempt starts from scratch anyway
                log.warning("source %s: closing the capture failed", self.name, exc_info=True)

    def _trim_recent_locked(self, now: float) -> None:
        # Oldest first: trimming costs O(frames that left the window), not a pass over the whole window per
        # frame (at 300 frames/s the window holds 1 500).
        horizon = now - _FPS_WINDOW_S
        while self._recent and self._recent[0] < horizon:
            self._recent.popleft()

    def _since(self, t: Optional[float]) -> float:
        return 0.0 if t is None else self._clock.monotonic() - t

    def _classify(self, exc: CaptureError) -> str:
        if not exc.permanent:
            return "error"
        if self._on_permanent is not None and self._on_permanent(exc):
            return "error"
        return "failed"

    def _deliver(self, grab: Grab, now: float, worker: WorkerThread) -> bool:
        assert self._slot is not None, "attach a slot before starting"
        frame = Frame(frame_id=self._next_frame_id, source=self.name,
                      t_capture_s=grab.t_capture_s if grab.t_capture_s is not None else now,
                      image=grab.image, truth=grab.truth)
        self._next_frame_id += 1
        with self._lock:
            self._frames_total += 1
            self._last_frame_s = now
            self._frame_shape = tuple(grab.image.shape)
            self._recent.append(now)
            self._trim_recent_locked(now)
        return self._slot.put(frame, worker.stop_event, worker.beat)
