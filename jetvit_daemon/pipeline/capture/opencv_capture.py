"""Fallback backends in Python: OpenCV `VideoCapture` (FFmpeg or V4L2) where gst-launch-1.0 is missing, and
image files (an image, a directory, a glob), which need no video pipeline at all.

OpenCV's `read()` can block for 30-90 s on a dead stream unless CAP_PROP_OPEN_TIMEOUT_MSEC and
CAP_PROP_READ_TIMEOUT_MSEC are set (FFmpeg backend, OpenCV ≥ 4.5.2), and it is never called on the
supervisor's thread: a reader thread owns the VideoCapture and hands frames over, so the stall timer keeps
running whatever OpenCV does. Frames are cropped and scaled to the model's input here, in Python (the
capture-cost benchmark measures what that costs against scaling inside a GStreamer pipeline).
"""

import glob
import logging
import queue
import threading
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np

from jetvit_daemon.pipeline.capture.base import Capture, CaptureEnded, CaptureError, Grab
from jetvit_daemon.pipeline.capture.gst_pipeline import Target, crop_box
from jetvit_daemon.pipeline.capture.uri import IMAGE_SUFFIXES, SourceUri

try:
    import cv2
except ImportError:  # pragma: no cover - the daemon's dependencies include OpenCV
    cv2 = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

OPEN_TIMEOUT_MS = 10000
READ_TIMEOUT_MS = 5000
_END = object()


def opencv_build() -> Tuple[str, bool, bool]:
    """(cv2.__file__, GStreamer: YES?, FFMPEG: YES?) from OpenCV's own build information."""
    if cv2 is None:
        return ("(OpenCV not installed)", False, False)
    info = cv2.getBuildInformation()

    def says_yes(name: str) -> bool:
        for line in info.splitlines():
            if line.strip().startswith(name + ":"):
                return line.split(":", 1)[1].strip().upper().startswith("YES")
        return False

    return (str(getattr(cv2, "__file__", "?")), says_yes("GStreamer"), says_yes("FFMPEG"))


def scale_to_target(image: np.ndarray, target: Target) -> np.ndarray:
    """Centre-crop (if asked) and resize a BGR frame to the model's input, on the CPU."""
    if target.crop:
        h, w = image.shape[:2]
        left, right, top, bottom = crop_box(w, h, target)
        image = image[top:bottom, left:right]
    if image.shape[0] != target.height or image.shape[1] != target.width:
        image = cv2.resize(image, (target.width, target.height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


class OpenCvCapture(Capture):
    """A `cv2.VideoCapture` on its own reader thread. `open` waits for the device/stream to open (bounded
    by OPEN_TIMEOUT_MS plus slack); `read` never blocks longer than its timeout."""

    backend = "opencv"

    def __init__(self, uri: SourceUri, target: Target, realtime_fps: Optional[float] = None) -> None:
        if cv2 is None:
            raise CaptureError("OpenCV is not installed", permanent=True)
        self._uri = uri
        self._target = target
        self._frames: queue.Queue[Any] = queue.Queue(maxsize=2 if uri.live else 8)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._opened = threading.Event()
        self._open_error: Optional[str] = None

    def _open_capture(self) -> Any:
        uri = self._uri
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        if uri.scheme == "v4l2":
            return cv2.VideoCapture(uri.target, cv2.CAP_V4L2)
        if uri.scheme == "rtsp":
            url = uri.target
            if uri.username is not None:
                scheme, rest = url.split("://", 1)
                cred = uri.username + (f":{uri.password}" if uri.password else "")
                url = f"{scheme}://{cred}@{rest}"
            return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if uri.scheme == "file":
            if not Path(uri.target).exists():
                return None
            return cv2.VideoCapture(uri.target, cv2.CAP_FFMPEG, params)
        raise CaptureError(f"{uri.scheme}:// needs GStreamer (gst-launch-1.0 with its elements)", permanent=True)

    def open(self) -> None:
        if self._uri.scheme == "file" and not Path(self._uri.target).exists():
            raise CaptureError(f"no such file: {self._uri.target}", permanent=True)
        if self._uri.scheme == "csi":
            raise CaptureError("csi:// needs GStreamer with nvarguscamerasrc (a Jetson)", permanent=True)
        self._thread = threading.Thread(target=self._run, name=f"opencv-{self._uri.default_name()}", daemon=True)
        self._thread.start()
        if not self._opened.wait(OPEN_TIMEOUT_MS / 1000.0 + 5.0):
            raise CaptureError("OpenCV did not open the stream in time")
        if self._open_error is not None:
            permanent = self._uri.scheme in ("file", "v4l2")
            raise CaptureError(self._uri.redact(self._open_error), permanent=permanent)

    def _run(self) -> None:
        cap = None
        try:
            cap = self._open_capture()
            if cap is None or not cap.isOpened():
                self._open_error = f"OpenCV cannot open {self._uri.redacted}"
                return
            self._opened.set()
            while not self._stop.is_set():
                ok, image = cap.read()
                if not ok:
                    self._put(_END)
                    return
                self._put(scale_to_target(image, self._target))
        except Exception as exc:  # the reader thread's boundary: report through the queue
            self._open_error = self._open_error or f"OpenCV failed: {exc}"
            self._put(_END)
        finally:
            self._opened.set()
            if cap is not None:
                cap.release()

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            if self._uri.live and item is not _END:
                # newest wins here too: drop what the supervisor has not taken yet
                while self._frames.full():
                    try:
                        self._frames.get_nowait()
                    except queue.Empty:
                        break
            try:
                self._frames.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def read(self, timeout_s: float, stop: threading.Event) -> Optional[Grab]:
        try:
            item = self._frames.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if item is _END:
            if self._uri.live:
                raise CaptureError(self._open_error or "OpenCV: the stream stopped delivering frames")
            raise CaptureEnded("end of file")
        return Grab(item)

    def close(self) -> None:
        self._stop.set()
        # The reader may sit in cap.read() for up to READ_TIMEOUT_MS; it is a daemon thread and ends then.
        if self._thread is not None:
            self._thread.join(0.5)


def list_images(pattern: str) -> List[str]:
    """Image files named by a file:// target: one image, a directory's images, or a glob; sorted."""
    path = Path(pattern)
    if path.is_dir():
        return sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if any(c in pattern for c in "*?["):
        return sorted(p for p in glob.glob(pattern) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
    return [pattern] if path.is_file() else []


class ImageFilesCapture(Capture):
    """Images decoded with OpenCV, one per read, at `fps` (pace realtime) or as fast as taken."""

    backend = "images"

    def __init__(self, uri: SourceUri, target: Target, fps: Optional[float]) -> None:
        if cv2 is None:
            raise CaptureError("OpenCV is not installed", permanent=True)
        self._uri = uri
        self._target = target
        self._period_s = 1.0 / fps if fps else 0.0
        self._files: List[str] = []
        self._index = 0

    def open(self) -> None:
        self._files = list_images(self._uri.target)
        if not self._files:
            raise CaptureError(f"no images at {self._uri.target} (want {', '.join(IMAGE_SUFFIXES)})",
                               permanent=True)
        self._index = 0

    def read(self, timeout_s: float, stop: threading.Event) -> Optional[Grab]:
        if self._index >= len(self._files):
            raise CaptureEnded(f"read all {len(self._files)} images")
        if self._period_s and stop.wait(min(self._period_s, timeout_s)):
            return None
        name = self._files[self._index]
        self._index += 1
        image = cv2.imread(name, cv2.IMREAD_COLOR)
        if image is None:
            log.warning("source %s: cannot decode %s, skipped", self._uri.default_name(), name)
            return None
        return Grab(scale_to_target(image, self._target))

    def close(self) -> None:
        self._files = []
