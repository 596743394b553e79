"""Fixtures with real media: digit videos encoded by x264 through gst-launch-1.0, digit stills, and a factory
for real GstRtspServer children (stopped at the end of each test)."""

import json
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import media


@pytest.fixture(scope="session")
def digit_video(tmp_path_factory) -> "tuple[Path, List[int]]":
    """A 1280×720 H.264 MP4 of 90 held-out digits at 30 FPS, and the label of each frame."""
    media.require_gstreamer()
    out = tmp_path_factory.mktemp("media")
    frames, truth = media.digit_frames(90, 1280, 720, seed=11)
    path = media.write_h264(out / "digits 720p.mp4", frames)
    (out / "truth.json").write_text(json.dumps(truth))
    return path, truth


@pytest.fixture(scope="session")
def digit_stills(tmp_path_factory) -> "dict[int, Path]":
    """PNG stills of one held-out digit per label (for live RTSP streams whose label is known)."""
    out = tmp_path_factory.mktemp("stills")
    frames, truth = media.digit_frames(60, 640, 480, seed=5)
    stills = {}
    for image, label in zip(frames, truth):
        if label not in stills:
            stills[label] = media.write_png(out / f"digit{label}.png", image)
    return stills


@pytest.fixture
def rtsp_servers() -> Iterator[List["media.RtspServer"]]:
    media.require_rtsp_server()
    started: List[media.RtspServer] = []
    yield started
    for server in started:
        server.close()
