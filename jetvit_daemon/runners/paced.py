"""A runner slowed to a simulated device's speed (`simulator.simulate_speed: true`), so the governor's effect
on frames per second shows on a machine whose CPU is far faster or slower than the simulated GPU."""

import time
from typing import Callable, Dict

import numpy as np

from jetvit_daemon.runners.base import Runner, RunnerInfo


class PacedRunner(Runner):
    """Wraps a runner; each `infer` takes at least `time_for_batch(n)` seconds. Same threading as the inner one."""

    def __init__(self, inner: Runner, time_for_batch: Callable[[int], float]) -> None:
        self._inner = inner
        self._time_for_batch = time_for_batch
        self.manifest = inner.manifest

    def info(self) -> RunnerInfo:
        return self._inner.info()

    def infer(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        start = time.monotonic()
        outputs = self._inner.infer(batch)
        remaining_s = self._time_for_batch(int(batch.shape[0])) - (time.monotonic() - start)
        if remaining_s > 0:
            # Standing in for time the GPU would be busy: a plain sleep, bounded by one batch's duration.
            time.sleep(remaining_s)
        return outputs

    def close(self) -> None:
        self._inner.close()
