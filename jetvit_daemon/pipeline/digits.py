"""The labelled scenes the built-in synthetic camera films: handwritten digits from scikit-learn's `digits`
dataset (UCI "Optical Recognition of Handwritten Digits", CC BY 4.0), held-out split only.

The bundled ViT was trained on the other split, rendered by this same function, so what the camera shows the
model matches what it learned from (engines/train_digits_vit.py).
"""

from pathlib import Path
from typing import Dict, Tuple

import numpy as np

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None  # type: ignore[assignment]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DIGITS_TEST_FILE = ASSETS / "digits_test.npz"


def load_digits_test() -> Tuple[np.ndarray, np.ndarray]:
    """The held-out digits: images (N×8×8, uint8, 0..16 ink) and labels (N, int64)."""
    with np.load(DIGITS_TEST_FILE) as data:
        return data["images"].astype(np.uint8), data["labels"].astype(np.int64)


def render_digit_frame(
    digit: np.ndarray, rng: np.random.Generator, width: int = 640, height: int = 480
) -> np.ndarray:
    """Film one 8×8 digit as a BGR uint8 frame: a bright digit on a dim, uneven background, off-centre by a
    few percent, under a tinted light, with sensor noise."""
    if cv2 is None:
        raise ImportError("OpenCV is needed by the synthetic camera: pip install opencv-python-headless")
    side = min(width, height)
    digit_px = int(side * rng.uniform(0.78, 0.92))
    ink = cv2.resize(digit.astype(np.float32) / 16.0, (digit_px, digit_px), interpolation=cv2.INTER_LINEAR)

    background = rng.uniform(20, 70)
    gradient = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :] * rng.uniform(0, 15)
    gray = np.full((height, width), background, dtype=np.float32) + gradient

    max_shift = int(side * 0.04)
    top = (height - digit_px) // 2 + int(rng.integers(-max_shift, max_shift + 1))
    left = (width - digit_px) // 2 + int(rng.integers(-max_shift, max_shift + 1))
    top = min(max(top, 0), height - digit_px)
    left = min(max(left, 0), width - digit_px)
    brightness = rng.uniform(170, 240)
    region = gray[top : top + digit_px, left : left + digit_px]
    gray[top : top + digit_px, left : left + digit_px] = region + ink * (brightness - region)

    tint = rng.uniform(0.85, 1.0, size=3).astype(np.float32)
    frame = gray[:, :, None] * tint[None, None, :]
    # Sensor noise: a window of a fixed noise bank at a random row offset. Drawing fresh Gaussian noise for a
    # 640×480×3 frame costs ~15 ms, half a frame period at 30 FPS on two cores.
    bank = _noise_bank(height, width)
    offset = int(rng.integers(0, height))
    frame += bank[offset : offset + height]
    return np.clip(frame, 0, 255).astype(np.uint8)


_NOISE_BANKS: Dict[Tuple[int, int], np.ndarray] = {}


def _noise_bank(height: int, width: int) -> np.ndarray:
    bank = _NOISE_BANKS.get((height, width))
    if bank is None:
        noise_rng = np.random.default_rng(20240917)
        bank = noise_rng.normal(0.0, 8.0, size=(2 * height, width, 3)).astype(np.float32)
        _NOISE_BANKS[(height, width)] = bank
    return bank
