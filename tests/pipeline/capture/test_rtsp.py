"""IP cameras against a real GstRtspServer on 127.0.0.1 (tests/pipeline/capture/rtsp_server.py): the right
labels through the pipeline; a frozen server (SIGSTOP) is `stalled` on our own timer and streams again when
thawed; a killed server means backoff and a reconnect when it returns; a wrong path (404) or password (401)
is `failed` with the reason, the password is never logged, and the other camera streams on."""

import logging
import time

import media  # tests/pipeline/capture (conftest puts it on sys.path)
import pytest

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.config import DEFAULT_MODEL, SourceConfig
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.pipeline.capture.factory import CaptureEnvironment, build_supervisors
from jetvit_daemon.pipeline.capture.gst_pipeline import Target
from jetvit_daemon.pipeline.capture.supervisor import SourceState
from jetvit_daemon.pipeline.pipeline import Pipeline
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sinks.base import MemorySink
from jetvit_daemon.runners.manifest import load_labels
from jetvit_daemon.runners.ort_runner import OrtRunner

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow
T32 = Target(32, 32, crop=True)


def start(configs, batch_size=4):
    env = CaptureEnvironment.probe(SubprocessRunner())
    sups = build_supervisors(configs, SystemClock(), T32, env)
    runner = OrtRunner(DEFAULT_MODEL)
    m = runner.manifest
    sink = MemorySink()
    pipe = Pipeline(SystemClock(), sups, runner, Preprocessor(m.preprocess, m.input),
                    Top1Classifier(m.outputs[0], load_labels(DEFAULT_MODEL, m)), [sink], batch_size=batch_size)
    pipe.start()
    return pipe, {s.name: s for s in sups}, sink


def wait_until(cond, timeout_s=30.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def frames_of(sup):
    return sup.status().frames_total


def test_two_rtsp_cameras_give_the_right_labels(rtsp_servers, digit_stills):
    a, b = sorted(digit_stills)[:2]
    server = media.RtspServer({"/a": media.still_mount(digit_stills[a]), "/b": media.still_mount(digit_stills[b])})
    rtsp_servers.append(server)
    pipe, sups, sink = start([SourceConfig(uri=server.url("/a"), name="cam_a"),
                              SourceConfig(uri=server.url("/b"), name="cam_b")])
    try:
        wait_until(lambda: all(sum(r.source == n for r in sink.results()) >= 40 for n in sups), 60, "results")
    finally:
        pipe.stop()
    for name, label in (("cam_a", a), ("cam_b", b)):
        results = [r for r in sink.results() if r.source == name]
        right = sum(r.label == str(label) for r in results)
        assert right / len(results) >= 0.9, f"{name}: {right}/{len(results)} labelled {label}"
        ids = [r.frame_id for r in results]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert sups["cam_a"].status().frame_shape == (32, 32, 3)


def test_frozen_server_stalls_within_the_stall_timer_and_resumes_when_thawed(rtsp_servers, digit_stills):
    server = media.RtspServer({"/cam": media.still_mount(next(iter(digit_stills.values())))})
    rtsp_servers.append(server)
    pipe, sups, _ = start([SourceConfig(uri=server.url("/cam"), name="cam")])
    cam = sups["cam"]
    try:
        wait_until(lambda: cam.state == SourceState.STREAMING and frames_of(cam) > 30, 60, "streaming")
        server.freeze()
        t_frozen = time.monotonic()
        wait_until(lambda: cam.status().stalls_total >= 1, 20, "a stall")
        st = cam.status()
        t_status = time.monotonic()
        assert st.last_error is not None and st.last_error.startswith("no frame for 3.")
        # Issue 11: stalled within max(3 s, 5 frame periods) = 3 s at 30 FPS, on our own timer (rtspsrc alone
        # notices a frozen server with its TCP connection open after ~25 s). Judged on the supervisor's own
        # timestamps (how long before this status its last frame came and it said `stalled`), so a test
        # thread that is scheduled late on a loaded machine does not count: 3 s, plus 0.5 s for the
        # supervisor's thread to be scheduled.
        stalled_ago_s = next(ago for state, ago, _ in reversed(st.history) if state == "stalled")
        assert st.last_frame_age_s is not None
        frame_to_stall_s = st.last_frame_age_s - stalled_ago_s
        assert 3.0 <= frame_to_stall_s <= 3.5, f"stalled {frame_to_stall_s:.2f} s after the last frame"
        # And from the freeze: the frames already in flight (the 200 ms jitter buffer, the pipe) may come
        # after it; a starved gst-launch child may deliver them late, hence 1.5 s more, not 25 s.
        freeze_to_stall_s = (t_status - stalled_ago_s) - t_frozen
        assert freeze_to_stall_s <= 3.0 + 1.5, f"stalled {freeze_to_stall_s:.2f} s after the freeze"
        server.thaw()
        before = cam.status().reconnects_total
        wait_until(lambda: cam.status().reconnects_total > before and cam.state == SourceState.STREAMING, 60,
                   "streaming again after the thaw")
        n = frames_of(cam)
        wait_until(lambda: frames_of(cam) > n + 30, 30, "frames after the thaw")
    finally:
        server.thaw()
        pipe.stop()


def test_killed_server_means_backoff_then_reconnect_when_it_returns(rtsp_servers, digit_stills):
    server = media.RtspServer({"/cam": media.still_mount(next(iter(digit_stills.values())))})
    rtsp_servers.append(server)
    pipe, sups, _ = start([SourceConfig(uri=server.url("/cam"), name="cam")])
    cam = sups["cam"]
    try:
        wait_until(lambda: cam.state == SourceState.STREAMING, 60, "streaming")
        server.kill()
        wait_until(lambda: cam.state == SourceState.BACKOFF, 20, "backoff")
        wait_until(lambda: cam.status().restarts_total >= 2, 30, "a retry against the dead server")
        assert cam.state != SourceState.FAILED  # connection refused is not permanent: the server may return
        server.start()
        wait_until(lambda: cam.state == SourceState.STREAMING and cam.status().reconnects_total >= 1, 60,
                   "reconnect")
    finally:
        pipe.stop()


def test_wrong_path_and_wrong_password_fail_with_reasons_while_another_camera_streams(
        rtsp_servers, digit_stills, caplog):
    caplog.set_level(logging.DEBUG)
    still = media.still_mount(next(iter(digit_stills.values())))
    server = media.RtspServer({"/cam": still}, auth="viewer:Op3n-Sesame")
    rtsp_servers.append(server)
    pipe, sups, _ = start([
        SourceConfig(uri=server.url("/cam", "viewer:Op3n-Sesame"), name="good"),
        SourceConfig(uri=server.url("/nope", "viewer:Op3n-Sesame"), name="nopath"),
        SourceConfig(uri=server.url("/cam", "viewer:not-the-Pa55word"), name="badpass"),
    ])
    try:
        wait_until(lambda: sups["nopath"].state == SourceState.FAILED and sups["badpass"].state == SourceState.FAILED,
                   60, "both failed")
        assert "404" in (sups["nopath"].status().last_error or "")
        assert "401" in (sups["badpass"].status().last_error or "")
        n = frames_of(sups["good"])
        wait_until(lambda: frames_of(sups["good"]) > n + 30, 30, "the good camera streaming on")
        assert sups["good"].state == SourceState.STREAMING
        statuses = [s.as_dict() for s in pipe.source_statuses()]
    finally:
        pipe.stop()
    assert sups["badpass"].uri == f"rtsp://viewer:***@127.0.0.1:{server.port}/cam"
    for secret in ("Op3n-Sesame", "not-the-Pa55word"):
        assert secret not in caplog.text
        assert secret not in repr(statuses)


def test_the_opencv_fallback_reads_the_same_rtsp_camera_with_the_right_labels(rtsp_servers, digit_stills):
    label = sorted(digit_stills)[0]
    server = media.RtspServer({"/cam": media.still_mount(digit_stills[label])})
    rtsp_servers.append(server)
    pipe, sups, sink = start([SourceConfig(uri=server.url("/cam"), name="cv", backend="opencv")])
    try:
        wait_until(lambda: len(sink.results()) >= 40, 60, "results through OpenCV")
    finally:
        pipe.stop()
    assert sups["cv"].backend == "opencv"
    results = sink.results()
    assert sum(r.label == str(label) for r in results) / len(results) >= 0.9
