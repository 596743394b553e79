"""OrtRunner: the bundled digits ViT and the ViT-Tiny benchmark model at batch 1..8 against direct ONNX Runtime
calls, fixed-batch models, provider choice and the errors for mismatched models."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.engine.export import make_vit_tiny
from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.base import create_runner
from jetvit_daemon.runners.ort_runner import AUTO_PROVIDERS, OrtRunner, resolve_providers


@pytest.fixture(scope="module")
def vit_tiny(tmp_path_factory) -> Path:
    return make_vit_tiny(tmp_path_factory.mktemp("tiny") / "vit_tiny16_224.onnx", seed=0)


def _direct(model: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"pixel_values": x})[0]


@pytest.mark.parametrize("which", ["bundled", "vit_tiny"])
def test_batches_1_to_8_match_a_direct_onnxruntime_call(which, request):
    model = DEFAULT_MODEL if which == "bundled" else request.getfixturevalue("vit_tiny")
    size = 32 if which == "bundled" else 224
    runner = create_runner("auto", model, {"providers": ["CPUExecutionProvider"], "intra_op_threads": 1})
    assert isinstance(runner, OrtRunner)
    info = runner.info()
    assert info.runner == "onnxruntime" and info.device == f"CPU (onnxruntime {ort.__version__})"
    assert info.input.shape == [-1, 3, size, size] and info.max_batch == 32

    x = np.random.default_rng(5).normal(size=(8, 3, size, size)).astype(np.float32)
    want = _direct(model, x)
    classes = 10 if which == "bundled" else 1000
    assert want.shape == (8, classes) and np.abs(want).max() > 0.1
    for n in range(1, 9):
        got = runner.infer(x[:n])["logits"]
        assert got.shape == (n, classes)
        # Same graph, same inputs; batched kernels may sum in another order.
        np.testing.assert_allclose(got, want[:n], rtol=0, atol=1e-4)
    runner.close()


def test_fixed_batch_model_pads_smaller_batches(tmp_path):
    model = onnx.load(str(DEFAULT_MODEL))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 4
    path = tmp_path / "fixed.onnx"
    onnx.save(model, str(path))
    manifest = json.loads(DEFAULT_MODEL.with_name("vit_digits.manifest.json").read_text())
    manifest["input"]["shape"][0] = 4
    manifest["batch"] = {"min": 1, "max": 4}
    manifest["labels"] = None
    (tmp_path / "fixed.manifest.json").write_text(json.dumps(manifest))

    runner = OrtRunner(path)
    assert runner.info().max_batch == 4 and runner.info().input.shape == [4, 3, 32, 32]
    x = np.random.default_rng(1).normal(size=(4, 3, 32, 32)).astype(np.float32)
    full = runner.infer(x)["logits"]
    np.testing.assert_allclose(runner.infer(x[:3])["logits"], full[:3], rtol=0, atol=1e-5)
    with pytest.raises(EngineError, match=r"batch of 5; this model takes 1\.\.4"):
        runner.infer(np.zeros((5, 3, 32, 32), np.float32))


def test_batch_of_the_wrong_dtype_or_layout_is_refused():
    runner = OrtRunner(DEFAULT_MODEL)
    with pytest.raises(EngineError, match=r"float32 array of shape \[n, 3, 32, 32\], got uint8 \[1, 32, 32, 3\]"):
        runner.infer(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(EngineError, match=r"batch of 33; this model takes 1\.\.32"):
        runner.infer(np.zeros((33, 3, 32, 32), np.float32))


def test_providers_auto_keeps_what_this_build_has_in_gpu_first_order():
    assert resolve_providers(["auto"], ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert resolve_providers(["auto"], ["CPUExecutionProvider", "CUDAExecutionProvider",
                                        "TensorrtExecutionProvider"]) == list(AUTO_PROVIDERS)
    with pytest.raises(EngineError, match=r"CUDAExecutionProvider not available .* available: CPUExecutionProvider"):
        resolve_providers(["CUDAExecutionProvider"], ["CPUExecutionProvider"])
    runner = OrtRunner(DEFAULT_MODEL, providers=["auto"])
    assert runner.info().device.startswith("CPU") or "CUDA" in runner.info().device


def test_manifest_for_another_framework_or_input_is_refused(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(DEFAULT_MODEL.read_bytes())
    manifest = json.loads(DEFAULT_MODEL.with_name("vit_digits.manifest.json").read_text())
    manifest["labels"] = None
    manifest["framework"] = "tensorrt"
    (tmp_path / "m.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EngineError, match=r"framework 'tensorrt'; ONNX Runtime runs \.onnx models"):
        OrtRunner(path)
    manifest["framework"] = "onnx"
    manifest["input"]["shape"] = [-1, 3, 64, 64]
    (tmp_path / "m.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EngineError,
                       match=r"input shape is \['batch', 3, 32, 32\], the manifest says \[-1, 3, 64, 64\]"):
        OrtRunner(path)


def test_corrupt_onnx_file_is_an_engine_error(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(DEFAULT_MODEL.read_bytes()[:5000])
    manifest = json.loads(DEFAULT_MODEL.with_name("vit_digits.manifest.json").read_text())
    (tmp_path / "m.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EngineError, match="ONNX Runtime cannot load the model"):
        OrtRunner(path)
