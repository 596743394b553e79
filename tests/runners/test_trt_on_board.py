"""On a real Jetson: export → build (TensorRT's builder API) → TensorRTRunner, against ONNX Runtime. Skipped
elsewhere (tests/conftest.py). Needs TensorRT's Python bindings and pycuda in the venv (docs/ENGINES.md)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.runners.ort_runner import OrtRunner


@pytest.mark.jetson
@pytest.mark.slow
def test_bundled_model_as_an_fp16_engine_agrees_with_onnxruntime(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt", reason="TensorRT's Python bindings are not in this venv")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    from jetvit_daemon.engine.build import BuildOptions, build_engine, plan_build
    from jetvit_daemon.runners.trt_runner import TensorRTRunner

    for name in ("vit_digits.onnx", "vit_digits.manifest.json", "vit_digits.labels.txt"):
        shutil.copy(DEFAULT_MODEL.with_name(name), tmp_path / name)
    engine = build_engine(plan_build(BuildOptions(tmp_path / "vit_digits.onnx", precision="fp16", max_batch=8)),
                          method="api")
    runner = TensorRTRunner(engine)
    reference = OrtRunner(DEFAULT_MODEL)
    try:
        x = np.random.default_rng(0).normal(size=(8, 3, 32, 32)).astype(np.float32)
        want = reference.infer(x)["logits"]
        for n in (1, 3, 8):
            got = runner.infer(x[:n])["logits"]
            np.testing.assert_allclose(got, want[:n], rtol=0, atol=0.05)  # FP16 kernels
            assert (got.argmax(axis=1) == want[:n].argmax(axis=1)).all()
    finally:
        runner.close()
