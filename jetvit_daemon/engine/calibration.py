"""Calibration images for INT8: a folder of the user's own frames, preprocessed exactly as the daemon will feed
the model (the model's manifest drives the daemon's own `Preprocessor`).

    files = calibration_images(Path("calib/"), max_images=512)
    for batch in calibration_batches(manifest, files, batch=8): ...     # [8, ...] arrays, the model's input

Used by `engine export --precision int8` (ONNX Runtime's static quantization) and by `engine build`'s implicit
calibration on TensorRT 8.x/10.x. Functions, no state: thread-safe.
"""

import logging
from pathlib import Path
from typing import Iterator, List, Sequence

import numpy as np

from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.manifest import Manifest

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff")


def calibration_images(folder: Path, max_images: int) -> List[Path]:
    """Image files in `folder` (sorted, recursive), at most `max_images` spread evenly over the sorted list."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EngineError(f"--calib-images {folder}: not a directory")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise EngineError(f"--calib-images {folder}: no images there ({', '.join(IMAGE_SUFFIXES)})")
    if len(files) > max_images:
        step = len(files) / float(max_images)
        files = [files[int(i * step)] for i in range(max_images)]
    return files


def calibration_batches(manifest: Manifest, files: Sequence[Path], batch: int) -> Iterator[np.ndarray]:
    """Batches of the images preprocessed as the daemon will feed the model (BGR frames through the manifest's
    preprocessing); unreadable files are skipped with a warning, the last partial batch is dropped."""
    import cv2

    from jetvit_daemon.pipeline.preprocess import Preprocessor

    pre = Preprocessor(manifest.preprocess, manifest.input)
    frames: List[np.ndarray] = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # BGR, like the camera frames
        if image is None:
            log.warning("calibration: %s is not a readable image, skipped", path)
            continue
        frames.append(image)
        if len(frames) == batch:
            yield np.array(pre.batch(frames))  # a copy: the preprocessor may reuse its buffer
            frames = []
