"""The `Runner` interface and the name → runner map (`auto`, `onnxruntime`, `tensorrt`), imported lazily so a
machine without TensorRT never imports it.

Imported by the inference worker (runners/worker.py), so it runs on Python 3.6 and imports nothing that needs
more (the pydantic manifest only for type checking: in the worker a runner gets a `PlainManifest`).
"""

import abc
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from jetvit_daemon.errors import EngineError

if TYPE_CHECKING:
    from jetvit_daemon.runners.manifest import InputSpec, Manifest


class RunnerInfo(NamedTuple):
    """What a loaded runner tells the pipeline and the first log lines. Immutable."""

    runner: str  # "onnxruntime", "tensorrt"
    device: str  # "CPU", "CUDA", "GPU (TensorRT 10.3)", …
    model_path: str
    input: "InputSpec"
    output_names: Tuple[str, ...]
    max_batch: int


class Runner(abc.ABC):
    """A loaded model. `infer` is called from one thread (the inference stage); `close` once, at shutdown."""

    manifest: "Manifest"

    @abc.abstractmethod
    def info(self) -> RunnerInfo: ...

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        """Run one batch (already preprocessed, in the input spec's layout and dtype); outputs by name."""

    def infer_into(self, batch: np.ndarray, outputs: Mapping[str, np.ndarray]) -> None:
        """Run one batch and write each output into `outputs[name]` (the shared slot's areas, [n, ...] each).
        Default: `infer`, then a copy; a runner that can write there directly (TensorRT's copy-out) does."""
        for name, value in self.infer(batch).items():
            np.copyto(outputs[name], value)

    def pin_host_memory(self, region: np.ndarray) -> Optional[str]:
        """Page-lock `region` (the shared slots, a flat page-aligned uint8 array) for the device's copies, until
        `unpin_host_memory`. None when done, else why not. Default: a runner without device copies has no use
        for it."""
        return "this runner makes no device copies"

    def unpin_host_memory(self) -> None:
        """Undo `pin_host_memory` (before the region is unmapped). Default: nothing was pinned."""

    def warm_up(self, iterations: int = 3, batch_sizes: Sequence[int] = (1,)) -> None:
        """Run dummy batches so the first real frame does not pay for lazy initialisation."""
        spec = self.info().input
        for size in batch_sizes:
            shape = [size] + [d for d in spec.shape[1:]]
            dummy = np.zeros(shape, dtype=spec.dtype)
            for _ in range(iterations):
                self.infer(dummy)

    def close(self) -> None:
        """Release the model. Default: nothing to release."""


# name → "module:Class"; imported only when chosen. `gpu-like` (runners/gpu_like.py) sleeps like a GPU and
# computes nothing: for the pipeline benchmarks, which start the worker with it; daemon.yaml's runner.name
# does not offer it.
RUNNERS: Mapping[str, str] = {
    "onnxruntime": "jetvit_daemon.runners.ort_runner:OrtRunner",
    "tensorrt": "jetvit_daemon.runners.trt_runner:TensorRTRunner",
    "gpu-like": "jetvit_daemon.runners.gpu_like:GpuLikeRunner",
}


def choose_runner_name(name: str, model_path: Path) -> str:
    """Resolve `auto`: a `.engine`/`.plan` file needs TensorRT; an `.onnx` file runs on ONNX Runtime."""
    if name != "auto":
        if name not in RUNNERS:
            raise EngineError(
                "unknown runner {!r}: choose one of auto, {}".format(name, ", ".join(sorted(RUNNERS)))
            )
        return name
    if model_path.suffix in (".engine", ".plan", ".trt"):
        return "tensorrt"
    return "onnxruntime"


def create_runner(name: str, model_path: Path, options: Optional[Mapping[str, Any]] = None) -> Runner:
    """Load `model_path` with the named runner (`auto` picks by file type)."""
    from jetvit_daemon.runners.manifest import check_model_file

    check_model_file(Path(model_path))  # before anything else: "no such model file" beats any later symptom
    chosen = choose_runner_name(name, model_path)
    module_name, _, class_name = RUNNERS[chosen].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = {
            "onnxruntime": "pip install onnxruntime (or the 'cpu' extra: pip install 'jetvit-daemon[cpu]')",
            "tensorrt": "TensorRT comes with JetPack: use a venv created with --system-site-packages",
        }.get(chosen, "reinstall jetvit-daemon")
        raise EngineError(f"runner {chosen!r} is not available here ({exc}): {hint}") from None
    cls = getattr(module, class_name)
    runner: Runner = cls(model_path, **dict(options or {}))
    return runner
