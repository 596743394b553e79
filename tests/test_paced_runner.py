import time

import numpy as np

from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.runners.ort_runner import OrtRunner
from jetvit_daemon.runners.paced import PacedRunner


def test_paced_runner_takes_the_simulated_time_and_returns_the_real_outputs():
    inner = OrtRunner(DEFAULT_MODEL)
    asked = []

    def time_for_batch(n: int) -> float:
        asked.append(n)
        return 0.05 * n

    paced = PacedRunner(inner, time_for_batch)
    batch = np.zeros((3, 3, 32, 32), np.float32)
    start = time.monotonic()
    out = paced.infer(batch)
    elapsed = time.monotonic() - start
    assert asked == [3]
    assert 0.15 <= elapsed < 0.5
    np.testing.assert_array_equal(out["logits"], inner.infer(batch)["logits"])
    assert paced.info() == inner.info()
