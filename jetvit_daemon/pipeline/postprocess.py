"""Model outputs → results: softmax and top-1 over classification logits."""

from typing import List, Optional, Sequence

import numpy as np

from jetvit_daemon.pipeline.frames import Frame, Result


class Top1Classifier:
    """Turns a batch of logits into one `Result` per frame. Stateless: thread-safe."""

    def __init__(self, output_name: str, labels: Optional[Sequence[str]] = None) -> None:
        self.output_name = output_name
        self.labels = list(labels) if labels is not None else None

    def results(self, frames: Sequence[Frame], logits: np.ndarray, t_result_s: float) -> List[Result]:
        if logits.ndim != 2 or logits.shape[0] != len(frames):
            raise ValueError(f"expected logits of shape [{len(frames)}, classes], got {logits.shape}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        top = probs.argmax(axis=1)
        out = []
        for frame, idx, row in zip(frames, top, probs):
            i = int(idx)
            label = self.labels[i] if self.labels is not None and i < len(self.labels) else str(i)
            out.append(
                Result(
                    frame_id=frame.frame_id,
                    source=frame.source,
                    t_capture_s=frame.t_capture_s,
                    t_result_s=t_result_s,
                    class_index=i,
                    label=label,
                    score=float(row[i]),
                    truth=frame.truth,
                    t_capture_wall_s=frame.t_capture_wall_s,
                )
            )
        return out
