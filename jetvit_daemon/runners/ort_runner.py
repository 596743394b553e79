"""ONNX Runtime runner: the default everywhere that is not a Jetson with a TensorRT engine."""

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.base import Runner, RunnerInfo
from jetvit_daemon.runners.manifest import load_manifest

log = logging.getLogger(__name__)

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}


class OrtRunner(Runner):
    """Runs an `.onnx` model with ONNX Runtime. `infer` from one thread at a time.

    >>> runner = OrtRunner(Path("model.onnx"), providers=["CPUExecutionProvider"])  # doctest: +SKIP
    >>> runner.infer(batch)["logits"]                                             # doctest: +SKIP
    """

    def __init__(
        self,
        model_path: Path,
        providers: Optional[Sequence[str]] = None,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        self.model_path = Path(model_path)
        self.manifest = load_manifest(self.model_path)
        available = ort.get_available_providers()
        wanted: List[str] = list(providers or ["CPUExecutionProvider"])
        missing = [p for p in wanted if p not in available]
        if missing:
            raise EngineError(
                "{}: execution provider(s) {} not available in this onnxruntime; available: {}".format(
                    self.model_path, ", ".join(missing), ", ".join(available)
                )
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        try:
            self._session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt or missing files
            raise EngineError(f"{self.model_path}: ONNX Runtime cannot load the model: {exc}") from None
        self._check_against_manifest()
        self._input_name = self.manifest.input.name
        self._output_names = [o.name for o in self._session.get_outputs()]
        self._providers = self._session.get_providers()

    def _check_against_manifest(self) -> None:
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
        names = [o.name for o in self._session.get_outputs()]
        missing = [n for n in self.manifest.outputs if n not in names]
        if missing:
            raise EngineError(f"{self.model_path}: manifest outputs {missing} not in the model (has {names})")

    def info(self) -> RunnerInfo:
        device = "CPU" if self._providers[0] == "CPUExecutionProvider" else self._providers[0]
        return RunnerInfo(
            runner="onnxruntime",
            device=device,
            model_path=str(self.model_path),
            input=self.manifest.input,
            output_names=tuple(self.manifest.outputs),
            max_batch=self.manifest.batch.max,
        )

    def infer(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        outputs = self._session.run(self._output_names, {self._input_name: batch})
        return dict(zip(self._output_names, outputs))
