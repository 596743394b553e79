"""ONNX Runtime runner: the default everywhere that is not a Jetson with a TensorRT engine, and the fallback on
one. CPU by default; the CUDA and TensorRT execution providers when this onnxruntime build has them.

Runs in the inference worker on Python 3.6 too: given a `manifest` (a `PlainManifest` there) it never imports the
pydantic one."""

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np

from jetvit_daemon.errors import EngineError
from jetvit_daemon.extras import require
from jetvit_daemon.runners.base import Runner, RunnerInfo

if TYPE_CHECKING:
    from jetvit_daemon.runners.manifest import Manifest

log = logging.getLogger(__name__)

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}
# `providers: [auto]` tries these in order and keeps the ones this onnxruntime build has.
AUTO_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def resolve_providers(wanted: Sequence[str], available: Sequence[str]) -> List[str]:
    """`auto` → the GPU providers present, then CPU; named providers must all be present."""
    if list(wanted) == ["auto"]:
        return [p for p in AUTO_PROVIDERS if p in available]
    missing = [p for p in wanted if p not in available]
    if missing:
        raise EngineError("execution provider(s) {} not available in this onnxruntime; available: {} (or use "
                          "providers: [auto])".format(", ".join(missing), ", ".join(available)))
    return list(wanted)


class OrtRunner(Runner):
    """Runs an `.onnx` model with ONNX Runtime. `infer` from one thread at a time.

    >>> runner = OrtRunner(Path("model.onnx"), providers=["CPUExecutionProvider"])  # doctest: +SKIP
    >>> runner.infer(batch)["logits"]                                             # doctest: +SKIP

    A model with a fixed batch axis B takes 1..B images per call (fewer are zero-padded to B); a dynamic batch
    axis takes up to the manifest's `batch.max`.
    """

    def __init__(
        self,
        model_path: Path,
        providers: Optional[Sequence[str]] = None,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        manifest: Optional["Manifest"] = None,
    ) -> None:
        ort: Any = require("onnxruntime", "the onnxruntime runner")

        self.model_path = Path(model_path)
        if manifest is None:
            from jetvit_daemon.runners.manifest import load_manifest

            manifest = load_manifest(self.model_path)
        self.manifest = manifest
        if self.manifest.framework != "onnx":
            raise EngineError(f"{self.model_path}: the manifest says framework {self.manifest.framework!r}; "
                              "ONNX Runtime runs .onnx models (use runner tensorrt for engines)")
        try:
            wanted = resolve_providers(providers or ["CPUExecutionProvider"], ort.get_available_providers())
        except EngineError as exc:
            raise EngineError(f"{self.model_path}: {exc}") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        try:
            self._session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt or missing files
            raise EngineError(f"{self.model_path}: ONNX Runtime cannot load the model: {exc}") from None
        self._ort_version = ort.__version__
        self._fixed_batch = self._check_against_manifest()
        self._input_name = self.manifest.input.name
        self._output_names = [o.name for o in self._session.get_outputs()]
        self._providers = self._session.get_providers()
        self._item_shape = self.manifest.input.item_shape
        self._dtype = np.dtype(self.manifest.input.dtype)
        self._max_batch = self._fixed_batch or self.manifest.batch.max

    def _check_against_manifest(self) -> Optional[int]:
        """Compare the graph's input with the manifest; returns the graph's fixed batch size, None if dynamic."""
        inputs = self._session.get_inputs()
        spec = self.manifest.input
        if len(inputs) != 1 or inputs[0].name != spec.name:
            raise EngineError(
                f"{self.model_path}: the manifest names input {spec.name!r}, the model has {[i.name for i in inputs]}"
            )
        dtype = _DTYPES.get(inputs[0].type)
        if dtype != spec.dtype:
            raise EngineError(
                f"{self.model_path}: input dtype is {inputs[0].type} in the model, {spec.dtype} in the manifest"
            )
        shape = list(inputs[0].shape)
        fixed_dims = [d if isinstance(d, int) and d > 0 else None for d in shape]
        if len(shape) != len(spec.shape) or any(
            d is not None and d != want for d, want in zip(fixed_dims[1:], spec.shape[1:])
        ):
            raise EngineError(f"{self.model_path}: the model's input shape is {shape}, the manifest says {spec.shape}")
        names = [o.name for o in self._session.get_outputs()]
        missing = [n for n in self.manifest.outputs if n not in names]
        if missing:
            raise EngineError(f"{self.model_path}: manifest outputs {missing} not in the model (has {names})")
        return fixed_dims[0]

    def info(self) -> RunnerInfo:
        first = self._providers[0]
        device = "CPU" if first == "CPUExecutionProvider" else first.replace("ExecutionProvider", "")
        spec = self.manifest.input
        if self._fixed_batch is not None:
            spec = spec.with_batch(self._fixed_batch)
        return RunnerInfo(
            runner="onnxruntime",
            device=f"{device} (onnxruntime {self._ort_version})",
            model_path=str(self.model_path),
            input=spec,
            output_names=tuple(self.manifest.outputs),
            max_batch=self._max_batch,
        )

    def infer(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        if not isinstance(batch, np.ndarray) or batch.dtype != self._dtype or batch.shape[1:] != self._item_shape:
            raise EngineError("{}: a batch must be a {} array of shape [n, {}], got {} {}".format(
                self.model_path, self._dtype.name, ", ".join(str(d) for d in self._item_shape),
                getattr(batch, "dtype", type(batch).__name__), list(getattr(batch, "shape", []))))
        n = int(batch.shape[0])
        if not 1 <= n <= self._max_batch:
            raise EngineError(f"{self.model_path}: batch of {n}; this model takes 1..{self._max_batch} images")
        if self._fixed_batch is not None and n < self._fixed_batch:
            padded = np.zeros((self._fixed_batch, *self._item_shape), dtype=self._dtype)
            padded[:n] = batch
            outputs = self._session.run(self._output_names, {self._input_name: padded})
            return {name: out[:n] for name, out in zip(self._output_names, outputs)}
        outputs = self._session.run(self._output_names, {self._input_name: batch})
        return dict(zip(self._output_names, outputs))
