"""USB (UVC) cameras: parse `v4l2-ctl --list-formats-ext` and pick the camera's own format closest to what
was asked (MJPEG or YUYV, width/height/fps). A camera only delivers the sizes and rates it lists; asking
GStreamer for another fails to negotiate."""

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from jetvit_daemon.hardware.commands import CommandRunner

_FORMAT = re.compile(r"^\s*(?:\[\d+\]:\s*)?'(\w+)'\s*(?:\((.*)\))?")
_SIZE = re.compile(r"^\s*Size:\s*Discrete\s+(\d+)x(\d+)")
_INTERVAL = re.compile(r"^\s*Interval:\s*Discrete\s+[\d.]+s\s*\(([\d.]+)\s*fps\)")

# V4L2 fourcc → (our name, GStreamer caps prefix).
FOURCCS = {"MJPG": ("mjpeg", "image/jpeg"), "YUYV": ("yuyv", "video/x-raw,format=YUY2")}


@dataclass(frozen=True)
class V4l2Mode:
    fourcc: str  # MJPG, YUYV, ...
    width: int
    height: int
    fps: float

    @property
    def kind(self) -> Optional[str]:
        entry = FOURCCS.get(self.fourcc)
        return entry[0] if entry else None

    def caps(self) -> str:
        prefix = FOURCCS[self.fourcc][1]
        return f"{prefix},width={self.width},height={self.height},framerate={_fraction(self.fps)}"


def _fraction(fps: float) -> str:
    # UVC intervals are 1/fps in 100 ns units: 30 fps is exact, 7.5 fps is 15/2.
    if abs(fps - round(fps)) < 1e-6:
        return f"{round(fps)}/1"
    return f"{round(fps * 2)}/2"


def parse_formats(text: str) -> List[V4l2Mode]:
    """Every (format, size, rate) in a `v4l2-ctl --list-formats-ext` listing."""
    modes: List[V4l2Mode] = []
    fourcc: Optional[str] = None
    size: Optional[Tuple[int, int]] = None
    for line in text.splitlines():
        m = _FORMAT.match(line)
        if m and "Size" not in line and "Interval" not in line:
            fourcc, size = m.group(1), None
            continue
        m = _SIZE.match(line)
        if m:
            size = (int(m.group(1)), int(m.group(2)))
            continue
        m = _INTERVAL.match(line)
        if m and fourcc is not None and size is not None:
            modes.append(V4l2Mode(fourcc, size[0], size[1], float(m.group(1))))
    return modes


def choose_mode(modes: List[V4l2Mode], width: Optional[int], height: Optional[int], fps: float,
                fmt: str = "auto") -> Optional[V4l2Mode]:
    """The camera's mode closest to the request. Size first (relative pixel distance), then rate (at least
    the asked fps where possible), then MJPEG over YUYV at sizes above 640×480 (USB 2 carries YUYV 1080p at
    5 fps at best), YUYV at small sizes (no decode). None when the camera lists no usable format."""
    usable = [m for m in modes if m.kind is not None and (fmt == "auto" or m.kind == fmt)]
    if not usable:
        return None
    want_w, want_h = (width, height) if width and height else (640, 480)

    def score(m: V4l2Mode) -> Tuple[float, float, int]:
        size_err = abs(m.width - want_w) / want_w + abs(m.height - want_h) / want_h
        rate_err = (fps - m.fps) * 10.0 if m.fps < fps - 0.01 else (m.fps - fps)
        big = m.width * m.height > 640 * 480
        prefer = 0 if (m.kind == "mjpeg") == big else 1
        return (round(size_err, 6), rate_err, prefer)

    return min(usable, key=score)


def list_formats(runner: CommandRunner, device: str, timeout_s: float = 5.0) -> Optional[str]:
    """`v4l2-ctl --list-formats-ext` of a device, or None (no v4l2-ctl, no device)."""
    try:
        result = runner.run(["v4l2-ctl", "-d", device, "--list-formats-ext"], timeout_s)
    except OSError:
        return None
    return result.stdout if result.ok else None
