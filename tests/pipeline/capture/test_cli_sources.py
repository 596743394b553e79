"""`jetvit-daemon sources` on a recorded board layout (CSI sensor node, USB camera with its by-id link) and
`sources test URI` against a real file through the real capture path."""

import os
import re
import shutil

from jetvit_daemon.cli import main
from jetvit_daemon.cli_sources import format_report, sources_report
from jetvit_daemon.hardware.commands import SubprocessRunner


def test_report_lists_csi_sensors_usb_cameras_by_stable_name_gstreamer_and_opencv(tmp_path):
    v4l = tmp_path / "sys" / "class" / "video4linux"
    for node, name in (("video0", "vi-output, imx219 9-0010"), ("video1", "HD Pro Webcam C920")):
        (v4l / node).mkdir(parents=True)
        (v4l / node / "name").write_text(name + "\n")
    by_id = tmp_path / "dev" / "v4l" / "by-id"
    by_id.mkdir(parents=True)
    os.symlink("../../video1", by_id / "usb-046d_HD_Pro_Webcam_C920_8A1B2C3D-video-index0")
    report = sources_report(tmp_path, SubprocessRunner(), shutil.which("gst-launch-1.0"))
    assert report["csi_sensors"] == [{"device": "/dev/video0", "name": "vi-output, imx219 9-0010", "kind": "csi",
                                      "uri": "csi://0"}]
    assert [d["device"] for d in report["v4l2_devices"]] == ["/dev/video1"]
    assert report["v4l2_by_id"][0]["uri"] == "v4l2:///dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_8A1B2C3D-video-index0"
    assert report["v4l2_by_id"][0]["target"] == "video1"
    assert set(report["opencv"]) == {"file", "gstreamer", "ffmpeg"}
    text = format_report(report)
    assert "csi://0" in text and "survive replugs" in text and "OpenCV: " in text


def test_sources_test_shows_rate_and_frame_size(digit_video, capsys):
    path, truth = digit_video
    assert main(["sources", "test", f"file://{path}", "--seconds", "4", "--size", "64x48"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"^(\d+) frames, ([\d.]+) fps, frame 64x48 BGR, state (\w+)", out, re.M)
    assert m, out
    # The file plays in real time (30 FPS) unless the machine is too loaded to decode that fast.
    assert 0 < int(m.group(1)) <= len(truth) and 0 < float(m.group(2)) <= 40 and m.group(3) in ("streaming", "ended")


def test_sources_test_of_a_missing_file_says_why_and_exits_1(tmp_path, capsys):
    assert main(["sources", "test", f"file://{tmp_path}/none.mp4", "--seconds", "1"]) == 1
    assert f"no such file: {tmp_path}/none.mp4" in capsys.readouterr().out


def test_sources_json_is_one_object(capsys):
    import json

    assert main(["sources", "--json"]) == 0
    assert "gstreamer" in json.loads(capsys.readouterr().out)
