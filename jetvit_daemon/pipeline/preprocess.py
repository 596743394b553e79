"""Frame → model input, as the model's manifest describes it. `batch_into` runs on the inference thread, per
batch, and writes straight into the input slot the worker reads (runners/shm_slots.py).

Two paths with the same result: `frame`/`batch` (the reference: one frame at a time into new arrays, stateless;
calibration and the export checks use it) and `batch_into` (the pipeline's: into the caller's array through
buffers made once, no frame-sized allocation per batch). In `batch_into` a frame already at the model's size
only has its layout, dtype and normalisation changed, by OpenCV's vectorised kernels (channel split, then one
multiply-add per channel: about 4x faster than numpy's mixed-type ufuncs on a 224×224 frame, issue 12), or
is only copied for an engine taking uint8 NHWC frames; a frame that needs resizing is resized into a buffer,
the frames of a batch in a small thread pool (OpenCV releases the GIL).
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence

import numpy as np

from jetvit_daemon.runners.manifest import InputSpec, PreprocessSpec

try:  # OpenCV: JetPack's own (GStreamer-enabled) build on a board, opencv-python-headless elsewhere.
    import cv2
except ImportError:  # pragma: no cover - exercised only where OpenCV is missing
    cv2 = None  # type: ignore[assignment]

_INTERPOLATION = {"area": "INTER_AREA", "linear": "INTER_LINEAR", "nearest": "INTER_NEAREST"}
# Resizing threads: an Orin Nano has 6 cores, a Nano 4; the inference, results and capture threads need some.
MAX_RESIZE_THREADS = 4


def default_resize_threads() -> int:
    return max(1, min(MAX_RESIZE_THREADS, os.cpu_count() or 1))


class _RowBuffers:
    """One batch row's buffers, made at the row's first use and reused: the resized frame and the channel
    planes (uint8), and a float32 image for a float16 input (computed in float32 like the reference)."""

    def __init__(self, height: int, width: int, item_shape: Sequence[int], dtype: np.dtype) -> None:
        self.resized = np.empty((height, width, 3), np.uint8)
        self.planes = [np.empty((height, width), np.uint8) for _ in range(3)]
        self.float32 = np.empty(tuple(item_shape), np.float32) if dtype == np.float16 else None


def _into(result: np.ndarray, dst: np.ndarray) -> None:
    """OpenCV writes into `dst` when it can; should it ever have made a new array instead, copy it over."""
    if result is not dst:
        np.copyto(dst, result)


class Preprocessor:
    """Turns BGR uint8 frames (H×W×3) into one input batch. `frame` and `batch` are stateless (thread-safe);
    `batch_into` reuses its buffers: one caller at a time (the inference thread). `close` ends its threads."""

    def __init__(self, spec: PreprocessSpec, input_spec: InputSpec, resize_threads: Optional[int] = None) -> None:
        if cv2 is None:
            raise ImportError("OpenCV is needed for preprocessing: pip install opencv-python-headless "
                              "(on a Jetson use JetPack's python3-opencv)")
        self.spec = spec
        self.input_spec = input_spec
        self._height, self._width = input_spec.height_width
        self._interp = getattr(cv2, _INTERPOLATION[spec.interpolation])
        # Fold scale, mean and std into one multiply-add: x * a + b.
        std = np.asarray(spec.std, dtype=np.float32)
        self._mul = (np.float32(spec.scale) / std).reshape(1, 1, 3)
        self._add = (-np.asarray(spec.mean, dtype=np.float32) / std).reshape(1, 1, 3)
        self._dtype = np.dtype(input_spec.dtype)
        self._item_shape = tuple(input_spec.item_shape)
        self._nchw = input_spec.layout == "NCHW"
        self._rgb = spec.channel_order == "RGB"
        # Output channel c comes from the frame's channel _source[c] (BGR frames).
        self._source = (2, 1, 0) if self._rgb else (0, 1, 2)
        self._resize_threads = default_resize_threads() if resize_threads is None else max(1, resize_threads)
        self._rows: List[_RowBuffers] = []
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_lock = threading.Lock()

    # -- the reference path --------------------------------------------------------------------------------
    def frame(self, image: np.ndarray) -> np.ndarray:
        """One frame to one H×W×3 image in the model's size, channel order and dtype (HWC)."""
        image = self._sized_view(image)
        if image.shape[0] != self._height or image.shape[1] != self._width:
            image = cv2.resize(image, (self._width, self._height), interpolation=self._interp)
        if self.spec.channel_order == "RGB":
            image = image[:, :, ::-1]
        if self.input_spec.dtype == "uint8":
            return np.ascontiguousarray(image)
        out = image.astype(np.float32) * self._mul + self._add
        return out.astype(self.input_spec.dtype, copy=False)

    def batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Frames to one batch in the model's layout."""
        stacked = np.stack([self.frame(img) for img in images])
        if self.input_spec.layout == "NCHW":
            stacked = stacked.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(stacked)

    # -- the pipeline's path -------------------------------------------------------------------------------
    def batch_into(self, images: Sequence[np.ndarray], out: np.ndarray) -> None:
        """Frames into `out` (an input slot's first len(images) rows), in the model's layout; the same values
        as `batch(images)` (float32 to within a rounding of the multiply-add)."""
        n = len(images)
        if out.shape != (n, *self._item_shape) or out.dtype != self._dtype:
            raise ValueError(f"{n} frames for an array of {out.dtype} {list(out.shape)}; the model takes "
                             f"{self._dtype} [n, {', '.join(str(d) for d in self._item_shape)}]")
        while len(self._rows) < n:
            self._rows.append(_RowBuffers(self._height, self._width, self._item_shape, self._dtype))
        resizing = {k for k, image in enumerate(images) if self._needs_resize(image)}
        if len(resizing) > 1 and self._resize_threads > 1:
            pool = self._thread_pool()
            pending = [pool.submit(self._row_into, images[k], out[k], self._rows[k]) for k in sorted(resizing)]
            for k in range(n):
                if k not in resizing:
                    self._row_into(images[k], out[k], self._rows[k])
            for future in pending:
                future.result()
            return
        for k in range(n):
            self._row_into(images[k], out[k], self._rows[k])

    def close(self) -> None:
        """End the resizing threads (made again should `batch_into` be called later)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._resize_threads, thread_name_prefix="preprocess")
            return self._pool

    def _sized_view(self, image: np.ndarray) -> np.ndarray:
        """The frame checked and, for `center_crop`, its centred square (a view)."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 BGR frame, got shape {image.shape}")
        if self.spec.resize == "center_crop":
            h, w = image.shape[:2]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            image = image[top : top + side, left : left + side]
        return image

    def _needs_resize(self, image: np.ndarray) -> bool:
        if image.ndim != 3:
            return False  # _row_into says what is wrong with it
        h, w = image.shape[:2]
        if self.spec.resize == "center_crop":
            h = w = min(h, w)
        return (h, w) != (self._height, self._width)

    def _row_into(self, image: np.ndarray, dst: np.ndarray, buffers: _RowBuffers) -> None:
        if image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 BGR frame, got {image.dtype}")
        image = self._sized_view(image)
        if image.shape[0] != self._height or image.shape[1] != self._width:
            _into(cv2.resize(image, (self._width, self._height), dst=buffers.resized, interpolation=self._interp),
                  buffers.resized)
            image = buffers.resized
        if buffers.float32 is not None:  # float16: computed in float32 as the reference does, then rounded
            self._convert(image, buffers.float32, buffers)
            np.copyto(dst, buffers.float32, casting="same_kind")
        else:
            self._convert(image, dst, buffers)

    def _convert(self, image: np.ndarray, dst: np.ndarray, buffers: _RowBuffers) -> None:
        """A model-size BGR uint8 frame into `dst` (one image in the model's layout; float32 or uint8)."""
        if dst.dtype == np.uint8:
            if self._nchw:
                planes = [dst[self._source.index(k)] for k in range(3)]  # where the frame's channel k goes
                for made, plane in zip(cv2.split(image, planes), planes):
                    _into(made, plane)
            elif self._rgb:
                _into(cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=dst), dst)
            else:
                np.copyto(dst, image)
            return
        if not self._nchw:  # float NHWC: numpy's multiply-add straight into the slot (no intermediate)
            np.multiply(image[:, :, ::-1] if self._rgb else image, self._mul, out=dst)
            np.add(dst, self._add, out=dst)
            return
        for made, plane in zip(cv2.split(image, buffers.planes), buffers.planes):
            _into(made, plane)
        for c in range(3):
            plane, channel = buffers.planes[self._source[c]], dst[c]
            _into(cv2.addWeighted(plane, float(self._mul[0, 0, c]), plane, 0.0, float(self._add[0, 0, c]),
                                  dst=channel, dtype=cv2.CV_32F), channel)
