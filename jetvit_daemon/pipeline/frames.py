"""What travels through the pipeline: frames in, results out. Frozen: one stage hands them to the next."""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Frame:
    frame_id: int
    source: str
    t_capture_s: float  # monotonic clock, when the source delivered it
    image: np.ndarray  # H×W×3 BGR uint8
    truth: Optional[int] = None  # the label the synthetic camera filmed; None for a real camera


@dataclass(frozen=True)
class Result:
    frame_id: int
    source: str
    t_capture_s: float
    t_result_s: float
    class_index: int
    label: str
    score: float  # softmax probability of the top-1 class
    truth: Optional[int] = None
    top_k: Tuple[Tuple[str, float], ...] = ()  # (label, probability), best first, the top-1 included

    @property
    def latency_s(self) -> float:
        return self.t_result_s - self.t_capture_s
