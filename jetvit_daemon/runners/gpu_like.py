"""A runner that behaves like a GPU, for benchmarks of the pipeline around the engine
(benchmarks/bench_worker_pipeline.py): each `infer` of n frames takes T(n) = first + per_extra × (n − 1) seconds
of wall time and no CPU (it sleeps, as a host thread waiting on a CUDA event does), and returns outputs of the
right names, shapes and dtype. Runner name `gpu-like`: the inference worker loads it like any other runner
(`load` message, runners/worker.py), so the pipeline is measured with the worker process, the shared slots
and the control pipe exactly as with TensorRT; it is not a choice of daemon.yaml (config's runner.name).

Default timing: ViT-Tiny/16 FP16 on a Jetson Orin Nano, 3.12 ms for one frame and 1.6 ms for each further
frame of a batch (the figures issue 12 measures the pipeline against).

Runs in the worker on Python 3.6 with numpy 1.13 (vermin --target=3.6-).
"""

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

import numpy as np

from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.base import Runner, RunnerInfo

if TYPE_CHECKING:
    from jetvit_daemon.runners.manifest import Manifest

# ViT-Tiny/16 FP16 on an Orin Nano (issue 12): one frame, and each further frame of the same batch.
ORIN_NANO_VIT_TINY_FIRST_MS = 3.12
ORIN_NANO_VIT_TINY_EXTRA_MS = 1.6


def batch_time_s(n: int, first_ms: float = ORIN_NANO_VIT_TINY_FIRST_MS,
                 extra_ms: float = ORIN_NANO_VIT_TINY_EXTRA_MS) -> float:
    """T(n) = first + extra × (n − 1), in seconds: how long a batch of n frames keeps the simulated GPU busy."""
    if n < 1:
        raise ValueError(f"a batch has at least one frame, got {n}")
    return (first_ms + extra_ms * (n - 1)) / 1000.0


class GpuLikeRunner(Runner):
    """Sleeps `batch_time_s(n)` per batch and returns fixed float32 logits of `classes` per frame for every
    output the manifest names (views of an array made once: nothing is allocated per batch). `infer` from one
    thread.

    >>> runner = GpuLikeRunner(Path("vit.onnx"), manifest=manifest, classes=1000)    # doctest: +SKIP
    >>> runner.infer(batch)["logits"].shape                                           # doctest: +SKIP
    (8, 1000)
    """

    def __init__(self, model_path: Path, manifest: Optional["Manifest"] = None, classes: int = 1000,
                 first_ms: float = ORIN_NANO_VIT_TINY_FIRST_MS, extra_ms: float = ORIN_NANO_VIT_TINY_EXTRA_MS,
                 sleep: Callable[[float], Any] = time.sleep, now: Callable[[], float] = time.monotonic,
                 **_ignored: Any) -> None:
        # **_ignored: the options meant for the runner it stands in for (providers, intra_op_threads) are
        # accepted, so a benchmark can swap the runner without rewriting them.
        self.model_path = Path(model_path)
        if manifest is None:
            from jetvit_daemon.runners.manifest import load_manifest

            manifest = load_manifest(self.model_path)
        self.manifest = manifest
        if classes < 1 or first_ms <= 0 or extra_ms < 0:
            raise EngineError("gpu-like runner: need classes >= 1, first_ms > 0 and extra_ms >= 0, "
                              f"got {classes}, {first_ms}, {extra_ms}")
        self.first_ms, self.extra_ms = float(first_ms), float(extra_ms)
        self._sleep, self._now = sleep, now
        spec = manifest.input
        self._item_shape = tuple(spec.shape[1:])
        self._dtype = np.dtype(spec.dtype)
        self._max_batch = spec.shape[0] if spec.shape[0] > 0 else int(manifest.batch.max)
        # Fixed, untied logits (a real model's rarely tie), made once: outputs are views, nothing per batch.
        logits = np.random.RandomState(0).standard_normal((self._max_batch, int(classes))).astype(np.float32)
        self._outputs = {name: logits for name in manifest.outputs}

    def info(self) -> RunnerInfo:
        return RunnerInfo(
            runner="gpu-like",
            device=f"simulated GPU: {self.first_ms:g} ms + {self.extra_ms:g} ms per further frame, CPU idle",
            model_path=str(self.model_path),
            input=self.manifest.input,
            output_names=tuple(self.manifest.outputs),
            max_batch=self._max_batch,
        )

    def infer(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        start_s = self._now()
        if batch.dtype != self._dtype or tuple(batch.shape[1:]) != self._item_shape:
            raise EngineError("{}: a batch must be a {} array of shape [n, {}], got {} {}".format(
                self.model_path, self._dtype.name, ", ".join(str(d) for d in self._item_shape), batch.dtype,
                list(batch.shape)))
        n = int(batch.shape[0])
        if not 1 <= n <= self._max_batch:
            raise EngineError(f"{self.model_path}: batch of {n}; this model takes 1..{self._max_batch} images")
        # Until the batch's end, as a host thread blocked on the GPU's completion event: no CPU meanwhile.
        end_s = start_s + batch_time_s(n, self.first_ms, self.extra_ms)
        remaining_s = end_s - self._now()
        while remaining_s > 0:
            self._sleep(remaining_s)
            remaining_s = end_s - self._now()
        return {name: out[:n] for name, out in self._outputs.items()}
