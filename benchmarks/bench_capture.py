"""Capture cost per frame: a 1280×720 H.264 file read by the daemon's gst-launch-1.0 backend and delivered as
224×224 BGR, scaled inside the GStreamer pipeline (what the daemon does), against the same pipeline delivering
full 1280×720 BGR frames that Python then crops and resizes (what scaling in the preprocessing costs).

    .venv/bin/python benchmarks/bench_capture.py [--frames 300] [--rounds 2]

CPU time is the gst-launch-1.0 child's (user + system, from its rusage) plus this process's (reading the pipe
and, for the second case, cv2 crop + resize), per frame. Both cases run alternately in one run; the ratio is
what matters. Results are recorded in docs/PERFORMANCE.md.
"""

import argparse
import os
import platform
import resource
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Tuple

from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.pipeline.capture.base import CaptureEnded
from jetvit_daemon.pipeline.capture.elements import probe_elements
from jetvit_daemon.pipeline.capture.gst_pipeline import SourceOptions, Target, build_plan
from jetvit_daemon.pipeline.capture.gst_process import GstLaunchCapture
from jetvit_daemon.pipeline.capture.opencv_capture import scale_to_target
from jetvit_daemon.pipeline.capture.uri import parse_uri

MODEL = Target(224, 224, crop=True)


def make_video(path: Path, frames: int) -> None:
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "pattern=ball", f"num-buffers={frames}", "!",
                    "video/x-raw,width=1280,height=720,framerate=30/1", "!", "x264enc", "speed-preset=veryfast",
                    "!", "h264parse", "!", "mp4mux", "!", "filesink", f"location={path}"], check=True)


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(video: Path, in_pipeline: bool) -> Tuple[int, float, float, float]:
    """(frames, child CPU s, own CPU s, wall s)."""
    elements = probe_elements(SubprocessRunner())
    assert elements is not None, "gst-inspect-1.0 found no elements"
    target = MODEL if in_pipeline else Target(1280, 720, crop=False)
    plan = build_plan(parse_uri(f"file://{video}"), SourceOptions(pace="fast"), elements, target)
    capture = GstLaunchCapture(plan.argv, target.width, target.height)
    stop = threading.Event()
    child0, own0, wall0 = children_cpu_s(), time.process_time(), time.monotonic()
    capture.open()
    frames = 0
    try:
        while True:
            try:
                grab = capture.read(1.0, stop)
            except CaptureEnded:
                break
            if grab is None:
                continue
            image = grab.image if in_pipeline else scale_to_target(grab.image, MODEL)
            assert image.shape == (224, 224, 3)
            frames += 1
    finally:
        capture.close()
    return frames, children_cpu_s() - child0, time.process_time() - own0, time.monotonic() - wall0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}; "
          f"1280x720 H.264 → 224x224 BGR, {args.frames} frames, {args.rounds} rounds each, alternating")
    totals = {True: [0, 0.0, 0.0, 0.0], False: [0, 0.0, 0.0, 0.0]}
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "720p.mp4"
        make_video(video, args.frames)
        for _ in range(args.rounds):
            for in_pipeline in (True, False):
                for i, v in enumerate(run(video, in_pipeline)):
                    totals[in_pipeline][i] += v
    per = {}
    for in_pipeline, (n, child, own, wall) in totals.items():
        name = "scaled in the pipeline" if in_pipeline else "scaled in Python    "
        cpu_ms = (child + own) * 1000.0 / n
        per[in_pipeline] = cpu_ms
        pipe_kib = (224 * 224 * 3 if in_pipeline else 1280 * 720 * 3) / 1024
        print(f"{name}: {cpu_ms:6.2f} CPU ms/frame (gst-launch {child * 1000 / n:5.2f}, daemon {own * 1000 / n:5.2f}),"
              f" {n / wall:6.1f} frames/s, pipe {pipe_kib:.0f} KiB/frame")
    print(f"ratio (Python / pipeline): {per[False] / per[True]:.2f}x CPU per frame")


if __name__ == "__main__":
    main()
