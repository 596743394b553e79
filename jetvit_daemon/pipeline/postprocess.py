"""Model outputs → results: softmax, top-1 and top-k over classification logits."""

from typing import List, Optional, Sequence

import numpy as np

from jetvit_daemon.pipeline.frames import Frame, Result


def top_k_indices(probs: np.ndarray, k: int) -> np.ndarray:
    """The k best columns of each row, best first, ties to the lower index (like argmax): what a stable argsort
    of the negated rows gives in its first k columns, without sorting all of every row (a stable sort of 1000
    float32 classes costs ~0.2 ms a row with numpy 2; partitioning ~10 µs)."""
    n, classes = probs.shape
    if k >= classes:
        return np.argsort(-probs, axis=1, kind="stable")
    if n == 1:
        # A batch of one (every frame at batch 1): half the numpy calls, each of which costs several times
        # its warm cost when the results thread has just woken (docs/PERFORMANCE.md, issue 12's host cost).
        row = probs[0]
        part = np.argpartition(-row, k - 1)[:k]
        values = row[part]
        if np.count_nonzero(row >= values.min()) == k:  # no tie at the k-th value
            return np.array([[i for _, i in sorted(zip((-values).tolist(), part.tolist()))]])
    rows = np.arange(n)[:, None]
    part = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    kth = probs[rows, part].min(axis=1, keepdims=True)
    # argpartition breaks ties at the k-th value arbitrarily: rows with such a tie take its lowest indices.
    for row in np.flatnonzero((probs >= kth).sum(axis=1) > k):
        above = np.flatnonzero(probs[row] > kth[row])
        tied = np.flatnonzero(probs[row] == kth[row])[: k - len(above)]
        part[row] = np.concatenate([above, tied])
    return part[rows, np.lexsort((part, -probs[rows, part]), axis=1)]


class Top1Classifier:
    """Turns a batch of logits into one `Result` per frame (top-1, and the best `top_k` classes). Stateless but
    for a cache of the class names: thread-safe."""

    def __init__(self, output_name: str, labels: Optional[Sequence[str]] = None, top_k: int = 5) -> None:
        self.output_name = output_name
        self.labels = list(labels) if labels is not None else None
        self.top_k = max(1, top_k)
        self._names_cache: List[str] = []

    def _names(self, classes: int) -> List[str]:
        """A label for each of `classes` classes: the labels file's, then the class number."""
        names = self._names_cache
        if len(names) != classes:
            known = self.labels or []
            names = self._names_cache = [known[i] if i < len(known) else str(i) for i in range(classes)]
        return names

    def results(self, frames: Sequence[Frame], logits: np.ndarray, t_result_s: float) -> List[Result]:
        if logits.ndim != 2 or logits.shape[0] != len(frames):
            raise ValueError(f"expected logits of shape [{len(frames)}, classes], got {logits.shape}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        best = top_k_indices(probs, min(self.top_k, probs.shape[1]))
        scores = probs[np.arange(len(frames))[:, None], best]
        out = []
        # Python lists once per batch: indexing numpy scalars one by one costs more than the maths above.
        names = self._names(probs.shape[1])
        for frame, order, row in zip(frames, best.tolist(), scores.tolist()):
            labels = [names[j] for j in order]
            out.append(
                Result(
                    frame_id=frame.frame_id,
                    source=frame.source,
                    t_capture_s=frame.t_capture_s,
                    t_result_s=t_result_s,
                    class_index=order[0],
                    label=labels[0],
                    score=row[0],
                    truth=frame.truth,
                    top_k=tuple(zip(labels, row)),
                )
            )
        return out
