"""End to end through the real daemon process: a file:// H.264 video of digits and an rtsp:// stream from a
real GstRtspServer, the bundled digits model, results in a JSON Lines sink with the right labels (checked per
frame number for the file), per-source /status entries and `jetvit_source_*` metrics, and a third source
whose file is missing: `failed` with its reason while the others run."""

import json
import sys
import time
from pathlib import Path

import media
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "service"))
from daemon_process import DaemonProcess, write_setup

pytestmark = pytest.mark.slow


def read_jsonl(path: Path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_file_and_rtsp_cameras_through_the_daemon(tmp_path, digit_video, digit_stills, rtsp_servers):
    video, truth = digit_video
    label = sorted(digit_stills)[-1]
    server = media.RtspServer({"/live": media.still_mount(digit_stills[label])})
    rtsp_servers.append(server)
    results = tmp_path / "results.jsonl"
    setup = write_setup(tmp_path, sources=[
        {"uri": f"file://{video}", "name": "clip", "pace": "realtime"},
        {"uri": server.url("/live", "op:pw-never-logged"), "name": "door"},
        {"uri": "file://missing.mp4", "name": "gone"},
    ], sinks=[{"type": "jsonl", "path": str(results)}])
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            recs = read_jsonl(results)
            if {r["frame"] for r in recs if r["source"] == "clip"} >= set(range(len(truth))) and \
                    sum(r["source"] == "door" for r in recs) >= 40:
                break
            time.sleep(0.2)
        status = json.loads(daemon.get("/status"))
        metrics = daemon.metrics()
    finally:
        daemon.terminate()
        daemon.kill()
    recs = read_jsonl(results)
    clip = sorted((r for r in recs if r["source"] == "clip"), key=lambda r: r["frame"])
    assert [r["frame"] for r in clip] == list(range(len(truth))), "the file source lost or repeated frames"
    right = sum(r["label"] == str(truth[r["frame"]]) for r in clip)
    assert right / len(truth) >= 0.9, f"file: {right}/{len(truth)} right"
    door = [r for r in recs if r["source"] == "door"]
    assert sum(r["label"] == str(label) for r in door) / len(door) >= 0.9
    assert all(r["ts"].endswith("Z") for r in clip + door)

    by_name = {s["name"]: s for s in status["sources"]}
    assert by_name["clip"]["state"] in ("streaming", "ended") and by_name["clip"]["backend"] == "gstreamer"
    assert by_name["door"]["state"] == "streaming" and by_name["door"]["frame_shape"] == [32, 32, 3]
    assert by_name["gone"]["state"] == "failed"
    assert by_name["gone"]["last_error"] == f"no such file: {setup['config'].parent / 'missing.mp4'}"
    assert metrics['jetvit_source_state{source="gone",state="failed"}'] == 1
    assert metrics['jetvit_source_state{source="door",state="streaming"}'] == 1
    assert metrics['jetvit_source_frames_total{source="clip"}'] == len(truth)
    assert metrics['jetvit_source_dropped_frames_total{reason="stale",source="clip"}'] == 0
    assert "pw-never-logged" not in daemon.log and "pw-never-logged" not in json.dumps(status)
    assert "source door: rtsp://op:***@127.0.0.1" in daemon.log
    assert "via gstreamer (gst-launch-1.0, scaled to 32x32 in the pipeline (videoscale, CPU)" in daemon.log
