"""The default capture backend: a `gst-launch-1.0 -q ... ! fdsink fd=1` child, read as fixed-size raw frames.

Why a child process and not OpenCV's GStreamer backend or PyGObject: it works on every JetPack whatever the
Python (JetPack 4.6's GStreamer-enabled OpenCV is built for Python 3.6 only; pip's OpenCV has no GStreamer),
and a stuck pipeline can always be killed. `-q` matters: without it gst-launch prints status lines into the
frame stream on stdout. The child runs in its own process group so that killing it leaves no orphans, its
stderr is drained on a thread (a full pipe would block it) and kept for the error reason, with credentials
redacted.
"""

import collections
import logging
import os
import select
import signal
import subprocess
import threading
from typing import IO, Callable, Deque, Optional, Sequence

import numpy as np

from jetvit_daemon.pipeline.capture.base import Capture, CaptureEnded, CaptureError, Grab
from jetvit_daemon.pipeline.capture.frame_pool import FramePool

log = logging.getLogger(__name__)

# Messages of gst-launch-1.0 1.16-1.22 (and nvarguscamerasrc) that no retry soon will fix.
PERMANENT_PATTERNS = (
    ("Resource not found", "no such file or device"),
    ("Cannot identify device", "no such device"),
    ("No such file", "no such file or device"),
    ("Not Found (404)", "the server has no such stream (404)"),
    ("Unauthorized (401)", "the server refused the credentials (401)"),
    ("Forbidden (403)", "the server refused access (403)"),
    ("no element", "a GStreamer element is missing"),
    ("could not link", "the pipeline cannot be linked"),
    ("Failed to create CaptureSession", "nvargus-daemon could not create a capture session (wedged?)"),
    ("No cameras available", "no CSI camera on this sensor id"),
)
ARGUS_WEDGED = "Failed to create CaptureSession"
_STDERR_LINES = 40
_KILL_GRACE_S = 1.0


def classify_stderr(lines: Sequence[str], returncode: Optional[int]) -> CaptureError:
    """The capture error a finished child left behind: permanent when its messages say so."""
    text = "\n".join(lines)
    for needle, meaning in PERMANENT_PATTERNS:
        if needle in text:
            return CaptureError(f"{meaning}: {_last_error(lines)}", permanent=True)
    what = f"gst-launch-1.0 exited {returncode}" if returncode is not None else "gst-launch-1.0 closed its output"
    detail = _last_error(lines)
    return CaptureError(f"{what}: {detail}" if detail else what)


def _last_error(lines: Sequence[str]) -> str:
    errors = [ln for ln in lines if ln.startswith("ERROR") or "error" in ln.lower()]
    picked = errors[0] if errors else (lines[-1] if lines else "")
    return picked.strip()[:300]


class GstLaunchCapture(Capture):
    """One gst-launch-1.0 child. Frames are `height×width×3` BGR, `frame_bytes` each. Not thread-safe (the
    supervisor's thread), apart from the stderr drain it owns."""

    backend = "gstreamer"

    def __init__(self, argv: Sequence[str], width: int, height: int, redact: Callable[[str], str] = str,
                 popen: Callable[..., "subprocess.Popen[bytes]"] = subprocess.Popen) -> None:
        self.argv = list(argv)
        self.shape = (height, width, 3)
        self.frame_bytes = width * height * 3
        self._redact = redact
        self._popen = popen
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._stdout: Optional[IO[bytes]] = None
        self._stderr_lines: Deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._drain: Optional[threading.Thread] = None
        # Frames are read into reused buffers; one still referenced downstream is never overwritten.
        self.pool = FramePool(self.shape)
        self._buf: Optional[np.ndarray] = None
        self._view: Optional[memoryview] = None
        self._filled = 0
        self.frames = 0

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    def open(self) -> None:
        try:
            self._proc = self._popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
        except OSError as exc:
            raise CaptureError(f"cannot start {self.argv[0]}: {exc.strerror or exc}", permanent=True) from None
        self._stdout = self._proc.stdout
        self._drain = threading.Thread(target=self._drain_stderr, name=f"gst-stderr-{self._proc.pid}",
                                       daemon=True)
        self._drain.start()

    def _drain_stderr(self) -> None:
        proc = self._proc
        if proc is None or proc.stderr is None:
            return
        try:
            for raw in proc.stderr:
                line = self._redact(raw.decode("utf-8", "replace").rstrip())
                if line:
                    self._stderr_lines.append(line)
                    log.debug("gst-launch[%d]: %s", proc.pid, line)
        except (OSError, ValueError):  # closed under us by close(): the attempt is over
            return

    def stderr_tail(self) -> "list[str]":
        return list(self._stderr_lines)

    def read(self, timeout_s: float, stop: threading.Event) -> Optional[Grab]:
        if self._stdout is None or self._proc is None:
            raise CaptureError("read before open")
        if self._buf is None:
            self._buf = self.pool.take()
            self._view = self._buf.reshape(-1).data
            self._filled = 0
        assert self._view is not None
        fd = self._stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            return None
        n = self._stdout.readinto(self._view[self._filled:])  # type: ignore[attr-defined]
        if not n:
            raise self._ended()
        self._filled += n
        if self._filled < self.frame_bytes:
            return None
        image, self._buf, self._view, self._filled = self._buf, None, None, 0
        self.frames += 1
        return Grab(image)

    def _ended(self) -> Exception:
        assert self._proc is not None
        try:
            code: Optional[int] = self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            code = None
        if self._drain is not None:
            self._drain.join(1.0)
        lines = self.stderr_tail()
        if code == 0 and self._filled == 0:
            return CaptureEnded(f"end of stream after {self.frames} frames")
        if code == 0:
            return CaptureError(f"stream ended inside a frame ({self._filled} of {self.frame_bytes} bytes): "
                                "the pipeline does not deliver the expected frame size")
        if code is not None and code < 0:
            return CaptureError(f"gst-launch-1.0 was killed by signal {-code}")
        return classify_stderr(lines, code)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=_KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5.0)
        # The child is gone, so its stderr reaches EOF and the drain ends; close the pipes after it.
        if self._drain is not None:
            self._drain.join(1.0)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()  # a drain still reading (a grandchild holding the pipe) ends on the error


def _signal_group(proc: "subprocess.Popen[bytes]", sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
