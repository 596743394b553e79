"""The gst-launch-1.0 backend against real GStreamer: fixed-size frames from a real H.264 file, scaled in the
pipeline; the right labels through the whole pipeline; no frame lost from a file; a killed child restarted;
a missing file `failed` with a clear reason while another source streams on."""

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.config import DEFAULT_MODEL, SourceConfig
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.pipeline.capture.factory import CaptureEnvironment, build_supervisors
from jetvit_daemon.pipeline.capture.gst_pipeline import SourceOptions, Target, build_plan
from jetvit_daemon.pipeline.capture.gst_process import GstLaunchCapture
from jetvit_daemon.pipeline.capture.opencv_capture import OpenCvCapture
from jetvit_daemon.pipeline.capture.supervisor import SourceState
from jetvit_daemon.pipeline.capture.uri import parse_uri
from jetvit_daemon.pipeline.pipeline import Pipeline
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sinks import MemorySink
from jetvit_daemon.runners.manifest import load_labels
from jetvit_daemon.runners.ort_runner import OrtRunner

pytest.importorskip("onnxruntime")
T32 = Target(32, 32, crop=True)


@pytest.fixture(scope="module")
def env():
    environment = CaptureEnvironment.probe(SubprocessRunner())
    assert environment.elements is not None, "gst-inspect-1.0 listed no elements"
    return environment


def read_all(capture, limit_s=60.0):
    stop, frames = threading.Event(), []
    capture.open()
    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            try:
                grab = capture.read(0.5, stop)
            except Exception as exc:
                return frames, exc
            if grab is not None:
                frames.append(grab.image)
    finally:
        capture.close()
    raise AssertionError("the capture did not end")


def test_a_720p_h264_file_arrives_as_32x32_bgr_frames_scaled_in_the_pipeline(digit_video, env):
    path, truth = digit_video
    plan = build_plan(parse_uri(f"file://{path}"), SourceOptions(pace="fast"), env.elements, T32)
    frames, end = read_all(GstLaunchCapture(plan.argv, 32, 32))
    assert type(end).__name__ == "CaptureEnded", end
    assert len(frames) == len(truth)
    assert all(f.shape == (32, 32, 3) and f.dtype == np.uint8 for f in frames)
    # The same frames through OpenCV, scaled in Python: the pictures agree (different scalers, same content).
    cv_frames, _ = read_all(OpenCvCapture(parse_uri(f"file://{path}"), T32))
    assert len(cv_frames) == len(frames)
    diff = np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, cv_frames)])
    assert diff < 12, f"gst and OpenCV frames differ by {diff:.1f} grey levels on average"


def make_pipeline(supervisors, batch_size=4):
    runner = OrtRunner(DEFAULT_MODEL)
    m = runner.manifest
    sink = MemorySink()
    pipe = Pipeline(SystemClock(), supervisors, runner, Preprocessor(m.preprocess, m.input),
                    Top1Classifier(m.outputs[0], load_labels(DEFAULT_MODEL, m)), [sink], batch_size=batch_size)
    return pipe, sink


def wait_until(cond, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_file_source_through_the_pipeline_loses_no_frame_and_gives_the_right_labels(digit_video, env):
    path, truth = digit_video
    configs = [SourceConfig(uri=f"file://{path}", name="clip", pace="fast")]
    sups = build_supervisors(configs, SystemClock(), T32, env)
    pipe, sink = make_pipeline(sups, batch_size=8)
    pipe.start()
    try:
        assert wait_until(lambda: sups[0].state == SourceState.ENDED and len(sink.results()) >= len(truth))
    finally:
        pipe.stop()
    results = sink.results()
    assert sorted(r.frame_id for r in results) == list(range(len(truth)))  # every frame, once
    assert all(r.source == "clip" and r.t_capture_s > 0 for r in results)
    correct = sum(r.class_index == truth[r.frame_id] for r in results)
    assert correct / len(truth) >= 0.9, f"{correct}/{len(truth)} right"
    assert pipe.stats().frames_dropped_total == 0


def test_killed_gst_launch_is_restarted_and_a_missing_file_fails_without_disturbing_it(digit_video, env, tmp_path):
    path, _ = digit_video
    configs = [SourceConfig(uri=f"file://{path}", name="clip", loop=True),
               SourceConfig(uri=f"file://{tmp_path / 'nope.mp4'}", name="missing")]
    sups = build_supervisors(configs, SystemClock(), T32, env)
    pipe, sink = make_pipeline(sups)
    pipe.start()
    try:
        clip, missing = sups
        assert wait_until(lambda: clip.state == SourceState.STREAMING)
        assert wait_until(lambda: missing.state == SourceState.FAILED)
        assert missing.status().last_error == f"no such file: {tmp_path / 'nope.mp4'}"
        pids = gst_children(str(path))
        assert len(pids) == 1
        os.kill(pids[0], signal.SIGKILL)
        assert wait_until(lambda: clip.status().restarts_total >= 1 and clip.state == SourceState.STREAMING)
        assert "killed by signal 9" in (clip.status().last_error or "")
        n = len(sink.results())
        assert wait_until(lambda: len(sink.results()) > n + 10)  # inference goes on after the restart
        assert missing.state == SourceState.FAILED and missing.status().frames_total == 0
    finally:
        pipe.stop()
    assert gst_children(str(path)) == []  # stop leaves no child behind


def gst_children(needle: str):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"gst-launch-1.0") and any(needle.encode() in c for c in cmd) \
                and ") Z " not in stat:
            out.append(int(pid))
    return out


def test_a_failed_source_is_retried_slowly_and_comes_back_when_its_file_appears(digit_video, env, tmp_path):
    # The same path a replugged USB camera takes: permanent error → failed → retried every failed_retry_s.
    path, truth = digit_video
    later = tmp_path / "later.mp4"
    configs = [SourceConfig(uri=f"file://{later}", name="later", pace="fast", failed_retry_s=1.0)]
    sups = build_supervisors(configs, SystemClock(), T32, env)
    pipe, sink = make_pipeline(sups)
    pipe.start()
    try:
        assert wait_until(lambda: sups[0].state == SourceState.FAILED)
        partial = tmp_path / "later.part"
        partial.write_bytes(path.read_bytes())
        partial.rename(later)  # appears whole, as a camera does
        assert wait_until(lambda: sups[0].state == SourceState.ENDED)
        assert wait_until(lambda: len(sink.results()) == len(truth))
    finally:
        pipe.stop()
    assert [h[0] for h in sups[0].status().history][:2] == ["starting", "failed"]
