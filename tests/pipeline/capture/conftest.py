"""Fixtures with real media: digit videos encoded by x264 through gst-launch-1.0, digit stills, and a factory
for real GstRtspServer children (stopped at the end of each test)."""

import json
import sys
from pathlib import Path
from typing import Iterator, List

import numpy as np
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
    """PNG stills of one held-out digit per label (for live RTSP streams whose label is known): for each
    label the rendering the bundled model recognises most surely, so that a wrong label through the camera
    path is the path's fault, not the model's."""
    from jetvit_daemon.config import DEFAULT_MODEL
    from jetvit_daemon.pipeline.preprocess import Preprocessor
    from jetvit_daemon.runners.ort_runner import OrtRunner

    out = tmp_path_factory.mktemp("stills")
    frames, truth = media.digit_frames(120, 640, 480, seed=5)
    runner = OrtRunner(DEFAULT_MODEL)
    pre = Preprocessor(runner.manifest.preprocess, runner.manifest.input)
    logits = np.concatenate([runner.infer(pre.batch(frames[i:i + 30]))[runner.manifest.outputs[0]]
                             for i in range(0, len(frames), 30)])
    margin = logits[range(len(truth)), truth] - np.sort(logits, axis=1)[:, -2]
    best = {}
    for k, label in enumerate(truth):
        if int(logits[k].argmax()) == label and margin[k] > best.get(label, (0.0, -1))[0]:
            best[label] = (float(margin[k]), k)
    runner.close()
    return {label: media.write_png(out / f"digit{label}.png", frames[k]) for label, (_, k) in best.items()}


@pytest.fixture
def rtsp_servers() -> Iterator[List["media.RtspServer"]]:
    media.require_rtsp_server()
    started: List[media.RtspServer] = []
    yield started
    for server in started:
        server.close()
