"""Batches in flight: the interface the pipeline drives inference through, with two implementations: the
supervised worker process (runners/worker_client.py, the daemon's default) and `LocalExecutor` (a `Runner` in
this process: tests and benchmarks that inject a runner object).

    k = executor.acquire(0.1, stop)          # a free slot, None while none is (all in flight, worker down)
    preprocess_into(executor.input(k)[:n])   # the batch goes straight into the slot
    executor.submit(k, n, frames)            # inference thread
    done = executor.collect(0.1)             # results thread: the oldest batch's Completion, or None
    use(done.outputs); executor.release(done.slot)

At least two slots: the pipeline fills batch i+1 while batch i runs. Completions come back in submit order.
"""

import abc
import collections
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence

import numpy as np

from jetvit_daemon.runners.base import Runner, RunnerInfo
from jetvit_daemon.runners.manifest import Manifest
from jetvit_daemon.workers import WorkerThread

N_SLOTS = 2  # batch i+1 is written while batch i runs; a third would only add latency


class Completion:
    """One batch back: outputs (views into its slot, valid until `release`), or the error it raised, or
    `lost` (the worker died or hung with it: its frames are dropped, reason `worker_restart`)."""

    __slots__ = ("error", "infer_s", "lost", "n", "not_before_s", "outputs", "slot", "t_done_s", "tag")

    def __init__(self, slot: int, n: int, tag: Any, outputs: Optional[Dict[str, np.ndarray]] = None,
                 infer_s: float = 0.0, error: Optional[BaseException] = None, lost: bool = False,
                 t_done_s: float = 0.0, not_before_s: float = 0.0) -> None:
        self.slot, self.n, self.tag = slot, n, tag
        self.outputs, self.infer_s, self.error, self.lost = outputs, infer_s, error, lost
        self.t_done_s = t_done_s  # time.monotonic() when it came back
        self.not_before_s = not_before_s  # a paced (simulated-speed) batch is handed on no sooner


class BatchExecutor(abc.ABC):
    """Runs batches from shared slots. `acquire`/`submit` from one thread, `collect`/`release` from one
    (possibly another); `start`/`stop` from the owner's; `info`/`status` from any."""

    manifest: Manifest

    @abc.abstractmethod
    def info(self) -> RunnerInfo:
        """The runner's description (before `start`: what the manifest promises)."""

    def start(self) -> None:
        """Make it ready to run batches (load, warm up); EngineError when the model cannot."""

    def stop(self, timeout_s: float) -> None:
        """Release everything, within about `timeout_s`."""

    def workers(self) -> Sequence[WorkerThread]:
        return ()

    @property
    @abc.abstractmethod
    def n_slots(self) -> int: ...

    @abc.abstractmethod
    def input(self, slot: int) -> np.ndarray:
        """Slot `slot`'s input area, [max_batch, *item]: write the batch's n frames into [:n]."""

    @abc.abstractmethod
    def acquire(self, timeout_s: float, stop: Optional[threading.Event] = None) -> Optional[int]:
        """A free slot to fill, or None after `timeout_s` (all in flight, or no worker to run them)."""

    @abc.abstractmethod
    def submit(self, slot: int, n: int, tag: Any) -> None:
        """Run the first `n` rows of the slot's input; `tag` comes back with the Completion."""

    @abc.abstractmethod
    def collect(self, timeout_s: float) -> Optional[Completion]:
        """The oldest submitted batch once it is done (or lost), or None after `timeout_s`."""

    @abc.abstractmethod
    def release(self, slot: int) -> None:
        """The collector is done with the slot's outputs: it may be filled again."""

    @abc.abstractmethod
    def in_flight(self) -> int:
        """Batches submitted and not yet collected."""

    def status(self) -> Dict[str, Any]:
        """For /status: how the inference side is run."""
        return {"mode": "in-process"}


class LocalExecutor(BatchExecutor):
    """A `Runner` in this process: `submit` runs the batch on the submitting thread (no overlap with the next
    batch's preparation, unlike the worker), the completion waits for `collect`. For tests and benchmarks that
    inject a runner object; the daemon runs its model in the worker process."""

    def __init__(self, runner: Runner, n_slots: int = N_SLOTS, warmup_iterations: int = 0,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.runner = runner
        self._now = now  # the pipeline's clock: tests with a manual clock see their runner's time
        self.manifest = runner.manifest
        self._warmup_iterations = warmup_iterations
        info = runner.info()
        self._inputs: List[Optional[np.ndarray]] = [None] * n_slots
        self._shape = (info.max_batch, *info.input.item_shape)
        self._dtype = np.dtype(info.input.dtype)
        self._cond = threading.Condition()
        self._free: Deque[int] = collections.deque(range(n_slots))
        self._done: Deque[Completion] = collections.deque()
        self._in_flight = 0

    def info(self) -> RunnerInfo:
        return self.runner.info()

    def start(self) -> None:
        from jetvit_daemon.errors import EngineError

        if not self._warmup_iterations:
            return
        try:
            self.runner.warm_up(self._warmup_iterations)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"{self.info().model_path}: the model failed its warm-up batch: "
                              f"{type(exc).__name__}: {exc}") from None

    def stop(self, timeout_s: float) -> None:
        self.runner.close()

    @property
    def n_slots(self) -> int:
        return len(self._inputs)

    def input(self, slot: int) -> np.ndarray:
        array = self._inputs[slot]
        if array is None:  # made on first use: an injected runner's tests may never run a batch
            array = self._inputs[slot] = np.zeros(self._shape, dtype=self._dtype)
        return array

    def acquire(self, timeout_s: float, stop: Optional[threading.Event] = None) -> Optional[int]:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._free), timeout_s):
                return None
            return self._free.popleft()

    def submit(self, slot: int, n: int, tag: Any) -> None:
        t0 = self._now()
        try:
            outputs = self.runner.infer(self.input(slot)[:n])
        except Exception as exc:  # the batch is the boundary: the collector counts and reports it
            done = Completion(slot, n, tag, error=exc, infer_s=self._now() - t0, t_done_s=self._now())
        else:
            t1 = self._now()
            done = Completion(slot, n, tag, outputs=outputs, infer_s=t1 - t0, t_done_s=t1)
        with self._cond:
            self._in_flight += 1
            self._done.append(done)
            self._cond.notify_all()

    def collect(self, timeout_s: float) -> Optional[Completion]:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._done), timeout_s):
                return None
            self._in_flight -= 1
            return self._done.popleft()

    def release(self, slot: int) -> None:
        with self._cond:
            self._free.append(slot)
            self._cond.notify_all()

    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight
