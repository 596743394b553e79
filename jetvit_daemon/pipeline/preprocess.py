"""Frame → model input, as the model's manifest describes it. Runs on the inference thread, per batch."""

from typing import Sequence

import numpy as np

from jetvit_daemon.runners.manifest import InputSpec, PreprocessSpec

try:  # OpenCV: JetPack's own (GStreamer-enabled) build on a board, opencv-python-headless elsewhere.
    import cv2
except ImportError:  # pragma: no cover - exercised only where OpenCV is missing
    cv2 = None  # type: ignore[assignment]

_INTERPOLATION = {"area": "INTER_AREA", "linear": "INTER_LINEAR", "nearest": "INTER_NEAREST"}


class Preprocessor:
    """Turns BGR uint8 frames (H×W×3) into one input batch. Stateless apart from its spec: thread-safe."""

    def __init__(self, spec: PreprocessSpec, input_spec: InputSpec) -> None:
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

    def frame(self, image: np.ndarray) -> np.ndarray:
        """One frame to one H×W×3 image in the model's size, channel order and dtype (HWC)."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 BGR frame, got shape {image.shape}")
        if self.spec.resize == "center_crop":
            h, w = image.shape[:2]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            image = image[top : top + side, left : left + side]
        if image.shape[0] != self._height or image.shape[1] != self._width:
            image = cv2.resize(image, (self._width, self._height), interpolation=self._interp)
        if self.spec.channel_order == "RGB":
            image = image[:, :, ::-1]
        if self.input_spec.dtype == "uint8":
            return np.ascontiguousarray(image)
        out = image.astype(np.float32) * self._mul + self._add
        return out.astype(self.input_spec.dtype, copy=False)

    def batch_into(self, images: Sequence[np.ndarray], out: np.ndarray) -> None:
        """Frames into `out` (an input slot's first len(images) rows), in the model's layout."""
        if out.shape[0] != len(images):
            raise ValueError(f"{len(images)} frames for {out.shape[0]} rows")
        nchw = self.input_spec.layout == "NCHW"
        for row, image in zip(out, images):
            item = self.frame(image)
            row[...] = item.transpose(2, 0, 1) if nchw else item

    def batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Frames to one batch in the model's layout."""
        stacked = np.stack([self.frame(img) for img in images])
        if self.input_spec.layout == "NCHW":
            stacked = stacked.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(stacked)
