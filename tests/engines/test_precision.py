"""`engine export --precision fp16|int8`: the converted graphs run in ONNX Runtime, keep what must stay float32,
quantize the way TensorRT takes it (symmetric int8, per-channel weights), calibrate on the user's images through
the model's own preprocessing, and say in the manifest how the precision was obtained."""

from pathlib import Path
from typing import Any, Dict

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from jetvit_daemon.engine.calibration import calibration_images
from jetvit_daemon.engine.export import IMAGENET, export_onnx
from jetvit_daemon.engine.vit_onnx import ViTConfig, init_weights
from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.manifest import load_manifest
from jetvit_daemon.runners.ort_runner import OrtRunner

SMALL = ViTConfig(image_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
                  num_classes=5)


def _images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        cv2.imwrite(str(folder / f"f{i:03d}.png"), rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8))
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory: Any) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("export")
    images = _images(root / "calib", 24)
    weights = init_weights(SMALL, 3)
    return {p: export_onnx(weights, SMALL, root / f"m_{p}.onnx", model_name="m", preprocess=IMAGENET, precision=p,
                           calib_images=images, calib_method="percentile" if p == "int8" else "entropy")
            for p in ("fp32", "fp16", "int8")}


def _logits(path: Path, x: np.ndarray) -> np.ndarray:
    runner = OrtRunner(path)
    try:
        return runner.infer(x)["logits"]
    finally:
        runner.close()


def test_fp16_model_has_float16_weights_float32_io_and_keeps_the_sensitive_ops(exported):
    model = onnx.load(str(exported["fp16"]))
    types = {t.name: t.data_type for t in model.graph.initializer}
    assert types["blocks.0.attn.qkv.weight_t"] == onnx.TensorProto.FLOAT16
    assert types["head.weight_t"] == onnx.TensorProto.FLOAT  # the logits head stays float32
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    onnx.checker.check_model(model)  # topologically sorted, well typed
    inferred = onnx.shape_inference.infer_shapes(model)
    dtype = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    for node in model.graph.node:
        if node.op_type in ("Softmax", "LayerNormalization"):
            assert dtype[node.output[0]] == onnx.TensorProto.FLOAT, node.name
    # no float32 → float16 → float32 round trip is left in front of the logits
    producer = {o: n for n in model.graph.node for o in n.output}
    node = producer[model.graph.output[0].name]
    while node.op_type in ("Identity", "Cast"):
        assert not (node.op_type == "Cast" and node.attribute[0].i == onnx.TensorProto.FLOAT16)
        node = producer[node.input[0]]
    assert node.name.startswith("head/")

    x = np.random.default_rng(1).normal(size=(6, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_logits(exported["fp16"], x), _logits(exported["fp32"], x), atol=2e-3)
    manifest = load_manifest(exported["fp16"])
    assert manifest.precision == "fp16" and manifest.input.dtype == "float32"
    assert manifest.precision_source is not None and manifest.precision_source.method == "fp16-weights"


def test_int8_model_is_symmetric_qdq_with_per_channel_weights(exported):
    model = onnx.load(str(exported["int8"]))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    dequantize = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert quantize and dequantize
    for node in quantize + dequantize:  # TensorRT takes zero points of 0 only, int8
        zero = init[node.input[2]]
        assert zero.dtype == np.int8 and not zero.any(), node.name
    weights = [n for n in dequantize if n.input[0] in init and init[n.input[0]].ndim == 2]
    assert weights and all(init[n.input[1]].size > 1 for n in weights)  # one scale per output channel
    quantized_ops = {c.op_type for c in model.graph.node for i in c.input
                     if any(i == d.output[0] for d in dequantize)}
    assert quantized_ops == {"MatMul", "Conv", "Shape"}  # not the residual adds, the softmax, the layer norms

    x = np.random.default_rng(1).normal(size=(6, 3, 16, 16)).astype(np.float32)
    q, f = _logits(exported["int8"], x), _logits(exported["fp32"], x)
    assert np.abs(q - f).max() < 0.25 * np.abs(f).max()  # int8 noise, not another model
    source = load_manifest(exported["int8"]).precision_source
    assert source is not None and (source.method, source.calibration_images, source.calibration_method,
                                   source.per_channel) == ("qdq", 24, "percentile", True)
    assert source.describe() == "QDQ calibrated on 24 images (percentile, 99.99th percentile, per-channel weights)"


def test_int8_needs_a_calibration_folder(tmp_path):
    with pytest.raises(EngineError, match="--precision int8 needs --calib-images DIR"):
        export_onnx(init_weights(SMALL, 0), SMALL, tmp_path / "m.onnx", model_name="m", preprocess=IMAGENET,
                    precision="int8")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EngineError, match=r"--calib-images .*empty: no images there"):
        export_onnx(init_weights(SMALL, 0), SMALL, tmp_path / "m.onnx", model_name="m", preprocess=IMAGENET,
                    precision="int8", calib_images=empty)


def test_calibration_images_are_spread_over_the_folder(tmp_path):
    folder = _images(tmp_path / "c", 10)
    (folder / "sub").mkdir()
    cv2.imwrite(str(folder / "sub" / "z.jpg"), np.zeros((4, 4, 3), np.uint8))
    files = calibration_images(folder, 4)
    assert len(files) == 4 and files[0].name == "f000.png"
    assert len(calibration_images(folder, 100)) == 11  # recursive, non-images ignored
