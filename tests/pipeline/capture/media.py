"""Real media for the capture tests: H.264 videos of held-out digits (x264 through gst-launch-1.0), PNG digit
images, and a real GstRtspServer (rtsp_server.py under /usr/bin/python3, which has gi) on 127.0.0.1."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pytest

from jetvit_daemon.pipeline.digits import load_digits_test, render_digit_frame

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: .ci/run installs it (install_gstreamer)")
    pytest.skip(f"{what} not installed (apt-get install the GStreamer packages listed in .ci/run)")


def require_gstreamer() -> None:
    for tool in ("gst-launch-1.0", "gst-inspect-1.0"):
        if shutil.which(tool) is None:
            _missing(tool)


def require_rtsp_server() -> None:
    require_gstreamer()
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                              "from gi.repository import GstRtspServer"],
        capture_output=True, check=False) if Path(SYSTEM_PYTHON).exists() else None
    if probe is None or probe.returncode != 0:
        _missing("GstRtspServer for /usr/bin/python3 (gir1.2-gst-rtsp-server-1.0, python3-gi)")


def digit_frames(n: int, width: int, height: int, seed: int = 0,
                 first: int = 0) -> "tuple[List[np.ndarray], List[int]]":
    """`n` BGR frames of held-out digits (the synthetic camera's rendering) and their labels."""
    images, labels = load_digits_test()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    frames, truth = [], []
    for k in range(first, first + n):
        i = int(order[k % len(order)])
        frames.append(render_digit_frame(images[i], rng, width, height))
        truth.append(int(labels[i]))
    return frames, truth


def write_h264(path: Path, frames: Sequence[np.ndarray], fps: int = 30) -> Path:
    """Encode BGR frames into an MP4 (H.264, x264, near-lossless) with gst-launch-1.0."""
    h, w = frames[0].shape[:2]
    argv = ["gst-launch-1.0", "-q", "fdsrc", "fd=0", "!",
            "rawvideoparse", f"width={w}", f"height={h}", "format=bgr", f"framerate={fps}/1", "!",
            "videoconvert", "!", "x264enc", "speed-preset=ultrafast", "pass=quant", "quantizer=12",
            "key-int-max=30", "!", "h264parse", "!", "mp4mux", "!", "filesink", f"location={path}"]
    proc = subprocess.run(argv, input=b"".join(f.tobytes() for f in frames), capture_output=True, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return path


def write_png(path: Path, frame: np.ndarray) -> Path:
    import cv2

    assert cv2.imwrite(str(path), frame)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def still_mount(image: Path, fps: int = 30) -> str:
    """An RTSP mount's launch line: one still image as a live H.264 stream at `fps`."""
    return (f"( filesrc location={image} ! pngdec ! imagefreeze ! video/x-raw,framerate={fps}/1 ! videoconvert ! "
            "video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! "
            "rtph264pay name=pay0 pt=96 )")


class RtspServer:
    """A real GstRtspServer child on 127.0.0.1:`port` with `mounts` {path: launch line}."""

    def __init__(self, mounts: "dict[str, str]", port: Optional[int] = None, auth: Optional[str] = None) -> None:
        self.mounts = mounts
        self.port = port or free_port()
        self.auth = auth
        self.proc: Optional[subprocess.Popen[str]] = None
        self.start()

    def url(self, path: str, credentials: str = "") -> str:
        return f"rtsp://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}{path}"

    def start(self, timeout_s: float = 30.0) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        argv = [SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), str(self.port)]
        if self.auth:
            argv += ["--auth", self.auth]
        argv += [f"{p}={launch}" for p, launch in self.mounts.items()]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return
            if not line and self.proc.poll() is not None:
                break
        raise AssertionError(f"RTSP server did not start (exit {self.proc.poll()})")

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        self.kill()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
