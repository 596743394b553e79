"""Model outputs → results: softmax, top-1 and top-k over classification logits."""

from typing import List, Optional, Sequence

import numpy as np

from jetvit_daemon.pipeline.frames import Frame, Result


class Top1Classifier:
    """Turns a batch of logits into one `Result` per frame (top-1, and the best `top_k` classes). Stateless:
    thread-safe."""

    def __init__(self, output_name: str, labels: Optional[Sequence[str]] = None, top_k: int = 5) -> None:
        self.output_name = output_name
        self.labels = list(labels) if labels is not None else None
        self.top_k = max(1, top_k)

    def _label(self, i: int) -> str:
        return self.labels[i] if self.labels is not None and i < len(self.labels) else str(i)

    def results(self, frames: Sequence[Frame], logits: np.ndarray, t_result_s: float) -> List[Result]:
        if logits.ndim != 2 or logits.shape[0] != len(frames):
            raise ValueError(f"expected logits of shape [{len(frames)}, classes], got {logits.shape}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        k = min(self.top_k, probs.shape[1])
        # Best k per row, best first (argsort of the negated row; ties keep the lower index like argmax).
        best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        out = []
        for frame, order, row in zip(frames, best, probs):
            i = int(order[0])
            label = self._label(i)
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
                    top_k=tuple((self._label(int(j)), float(row[j])) for j in order),
                )
            )
        return out
