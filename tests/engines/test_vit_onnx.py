"""jetvit_daemon/engine/vit_onnx.py (ViT → ONNX builder, preprocessing folding), the ViT-Tiny benchmark model
(engines/make_vit_tiny.py, `make_vit_tiny`) and the bundled digits model."""

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from jetvit_daemon.engine.export import make_vit_tiny, vit_tiny_config
from jetvit_daemon.engine.vit_onnx import (
    FoldedPreprocess,
    ViTConfig,
    build_model,
    count_params,
    forward_numpy,
    init_weights,
)
from jetvit_daemon.pipeline.digits import load_digits_test, render_digit_frame
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.runners.manifest import load_labels, load_manifest

ENGINES = Path(__file__).resolve().parents[2] / "engines"
VIT_TINY_16_224 = vit_tiny_config()

BUNDLED = Path(__file__).resolve().parents[2] / "jetvit_daemon" / "assets" / "vit_digits" / "vit_digits.onnx"
SMALL = ViTConfig(
    image_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0, num_classes=7
)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    return session.run(["logits"], {"pixel_values": x})[0]


@pytest.fixture(scope="module")
def small_weights():
    """Seeded weights with non-trivial biases and LayerNorm parameters, so every term of the maths shows."""
    weights = init_weights(SMALL, seed=3)
    rng = np.random.default_rng(7)
    for name, value in weights.items():
        if value.ndim == 1:
            weights[name] = (value + rng.normal(0.0, 0.2, size=value.shape)).astype(np.float32)
        else:
            weights[name] = (value * 10.0).astype(np.float32)  # std 0.2: logits far from zero
    return weights


@pytest.mark.parametrize("decompose_layernorm", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_graph_matches_numpy_reference(small_weights, batch, decompose_layernorm):
    session = _session(build_model(SMALL, small_weights, decompose_layernorm=decompose_layernorm))
    x = np.random.default_rng(batch).normal(size=(batch, 3, 16, 16)).astype(np.float32)

    got = _run(session, x)
    want = forward_numpy(SMALL, small_weights, x)

    assert got.shape == (batch, 7)
    assert np.abs(want).max() > 0.5  # a reference of all-zero logits would prove nothing
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_dynamic_batch_axis(small_weights):
    model = build_model(SMALL, small_weights)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "pixel_values" and out.name == "logits"
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [3, 16, 16]
    assert out.type.tensor_type.shape.dim[0].dim_param == "batch"

    session = _session(model)
    x = np.random.default_rng(0).normal(size=(5, 3, 16, 16)).astype(np.float32)
    full = _run(session, x)
    for n in (1, 2, 5):
        got = _run(session, x[:n])
        assert got.shape == (n, 7)
        # Each image's logits do not depend on what else is in the batch.
        np.testing.assert_allclose(got, full[:n], rtol=0, atol=1e-5)


def test_weight_names_and_count_follow_timm():
    weights = init_weights(VIT_TINY_16_224, seed=0)
    # timm's vit_tiny_patch16_224 has 5,717,416 parameters.
    assert count_params(VIT_TINY_16_224) == 5717416
    assert sum(v.size for v in weights.values()) == 5717416
    assert weights["blocks.11.attn.qkv.weight"].shape == (576, 192)
    assert weights["pos_embed"].shape == (1, 197, 192)
    assert weights["patch_embed.proj.weight"].shape == (192, 3, 16, 16)
    assert np.all(weights["blocks.0.norm1.weight"] == 1.0) and np.all(weights["head.bias"] == 0.0)
    qkv = weights["blocks.0.attn.qkv.weight"]
    assert abs(float(qkv.std()) - 0.0176) < 0.001  # std 0.02 normal truncated at ±2σ has std 0.0176
    assert float(np.abs(qkv).max()) <= 0.04


def test_wrong_weight_shape_is_named(small_weights):
    bad = dict(small_weights)
    bad["blocks.1.mlp.fc1.weight"] = np.zeros((10, 32), dtype=np.float32)
    with pytest.raises(ValueError, match=r"blocks\.1\.mlp\.fc1\.weight.*\(64, 32\)"):
        build_model(SMALL, bad)


def test_make_vit_tiny_is_deterministic(tmp_path):
    first = make_vit_tiny(tmp_path / "a" / "vit.onnx", seed=0)
    again = make_vit_tiny(tmp_path / "b" / "vit.onnx", seed=0)
    other = make_vit_tiny(tmp_path / "c" / "vit.onnx", seed=1)

    x = np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32)
    logits = [
        _run(ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]), x) for p in (first, again, other)
    ]
    assert logits[0].shape == (2, 1000)
    np.testing.assert_array_equal(logits[0], logits[1])
    assert np.abs(logits[0] - logits[2]).max() > 0.1
    assert first.read_bytes() == again.read_bytes()

    manifest = load_manifest(first)
    assert manifest.model_name == "vit-tiny16-224"
    assert manifest.input.shape == [-1, 3, 224, 224]
    assert manifest.preprocess.mean == [0.485, 0.456, 0.406]
    assert manifest.preprocess.std == [0.229, 0.224, 0.225]
    assert manifest.preprocess.interpolation == "linear"
    assert manifest.labels is None and manifest.batch.max == 32


def test_make_vit_tiny_script_writes_the_same_model(tmp_path):
    spec = importlib.util.spec_from_file_location("make_vit_tiny", ENGINES / "make_vit_tiny.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.VIT_TINY_16_224 == VIT_TINY_16_224
    assert script.main(["--out", str(tmp_path / "s" / "vit.onnx")]) == 0
    assert (tmp_path / "s" / "vit.onnx").read_bytes() == make_vit_tiny(tmp_path / "p" / "vit.onnx").read_bytes()
    assert (tmp_path / "s" / "vit.manifest.json").is_file()


@pytest.mark.parametrize("model_order", ["RGB", "BGR"])
def test_folded_graph_on_uint8_bgr_frames_equals_the_float_graph_on_normalised_input(small_weights, model_order):
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    fold = FoldedPreprocess(scale=1 / 255.0, mean=mean, std=std, model_channel_order=model_order)
    folded = build_model(SMALL, small_weights, fold=fold)
    (inp,) = folded.graph.input
    assert inp.name == "frames" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [16, 16, 3]

    frames = np.random.default_rng(3).integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)  # BGR, NHWC
    model_input = frames[..., ::-1] if model_order == "RGB" else frames
    x = (model_input.astype(np.float32) / 255.0 - np.array(mean, np.float32)) / np.array(std, np.float32)
    want = _run(_session(build_model(SMALL, small_weights)), np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    got = _session(folded).run(["logits"], {"frames": frames})[0]
    assert np.abs(want).max() > 0.5
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_bundled_model_matches_its_manifest():
    manifest = load_manifest(BUNDLED)
    assert load_labels(BUNDLED, manifest) == [str(i) for i in range(10)]

    model = onnx.load(str(BUNDLED))
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == manifest.input.name
    assert dims[0].dim_param  # dynamic batch, written -1 in the manifest
    assert [-1] + [d.dim_value for d in dims[1:]] == manifest.input.shape
    assert [o.name for o in model.graph.output] == manifest.outputs
    assert BUNDLED.stat().st_size < 2_000_000


def test_bundled_model_reads_filmed_held_out_digits():
    images, labels = load_digits_test()
    assert images.shape == (360, 8, 8) and images.dtype == np.uint8 and int(images.max()) == 16
    assert np.bincount(labels).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]  # stratified 20 %

    manifest = load_manifest(BUNDLED)
    pre = Preprocessor(manifest.preprocess, manifest.input)
    session = ort.InferenceSession(str(BUNDLED), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2024)
    pick = rng.choice(len(images), size=100, replace=False)
    frames = [render_digit_frame(images[i], rng, 640, 480) for i in pick]
    batch = pre.batch(frames)
    pred = np.concatenate([_run(session, batch[s : s + 32]) for s in range(0, len(batch), 32)]).argmax(axis=1)

    accuracy = float((pred == labels[pick]).mean())
    assert accuracy >= 0.90, accuracy
