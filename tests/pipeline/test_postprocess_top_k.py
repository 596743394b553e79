"""Top-k in every result: the best classes, best first, the top-1 included."""

import numpy as np

from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.postprocess import Top1Classifier, top_k_indices


def frames(n):
    return [Frame(frame_id=i, source="cam0", t_capture_s=1.0, image=np.zeros((2, 2, 3), np.uint8)) for i in range(n)]


def test_top_k_is_sorted_best_first_and_agrees_with_top_1():
    logits = np.log(np.array([[0.1, 0.6, 0.05, 0.25], [0.4, 0.1, 0.3, 0.2]], dtype=np.float32))
    out = Top1Classifier("logits", ["a", "b", "c", "d"], top_k=3).results(frames(2), logits, 2.0)
    assert [label for label, _ in out[0].top_k] == ["b", "d", "a"]
    assert [label for label, _ in out[1].top_k] == ["a", "c", "d"]
    assert np.allclose([p for _, p in out[0].top_k], [0.6, 0.25, 0.1], atol=1e-6)
    assert out[0].label == out[0].top_k[0][0] and out[0].score == out[0].top_k[0][1]


def test_top_k_is_capped_at_the_number_of_classes():
    out = Top1Classifier("logits", top_k=5).results(frames(1), np.array([[0.0, 1.0]], np.float32), 2.0)
    assert [label for label, _ in out[0].top_k] == ["1", "0"]


def test_top_k_indices_equal_a_stable_sort_ties_included():
    """The partition-based top-k gives exactly the first k columns of a stable argsort (ties to the lower
    index), on random rows and on rows full of ties, including ties at the k-th place."""
    rng = np.random.default_rng(1)
    for trial in range(400):
        # Every other trial a batch of one: its own path (partition, then a sort of the k in Python).
        n, classes = 1 if trial % 4 < 2 else int(rng.integers(2, 9)), int(rng.integers(2, 40))
        k = min(int(rng.integers(1, 8)), classes)
        if trial % 2:
            probs = rng.integers(0, 4, (n, classes)).astype(np.float32)  # many ties
        else:
            probs = rng.random((n, classes)).astype(np.float32)
        expected = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(top_k_indices(probs, k), expected)
    np.testing.assert_array_equal(top_k_indices(np.zeros((2, 1000), np.float32), 5), [[0, 1, 2, 3, 4]] * 2)
