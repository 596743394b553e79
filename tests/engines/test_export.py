"""`engine export`: checkpoints (.npz, torch), shapes read off the weights, the folded-preprocessing graph run end
to end through the daemon's Preprocessor and OrtRunner, labels, and the messages for what is missing."""

import sys
from pathlib import Path

import numpy as np
import pytest

from jetvit_daemon.engine.export import (
    IMAGENET,
    config_from_weights,
    export_onnx,
    load_checkpoint,
    require_onnx,
    vit_tiny_config,
    weights_from_timm,
)
from jetvit_daemon.engine.vit_onnx import ViTConfig, init_weights, weight_shapes
from jetvit_daemon.errors import EngineError
from jetvit_daemon.pipeline.digits import load_digits_test, render_digit_frame
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.runners.manifest import load_labels, load_manifest
from jetvit_daemon.runners.ort_runner import OrtRunner

SMALL = ViTConfig(image_size=32, patch_size=8, in_chans=3, embed_dim=128, depth=2, num_heads=2, mlp_ratio=3.0,
                  num_classes=4)


def _weights(cfg: ViTConfig = SMALL):
    weights = init_weights(cfg, seed=1)
    rng = np.random.default_rng(2)
    return {k: (v * 10 if v.ndim > 1 else v + rng.normal(0, 0.2, v.shape)).astype(np.float32)
            for k, v in weights.items()}


def test_config_is_read_off_timm_shaped_weights():
    tiny = {name: np.zeros(shape, np.float32) for name, shape in weight_shapes(vit_tiny_config()).items()}
    assert config_from_weights(tiny) == vit_tiny_config()  # 192 / 64 = 3 heads, as timm's vit_tiny
    cfg = config_from_weights(_weights(), num_heads=2)
    assert cfg == SMALL
    assert config_from_weights(_weights()).num_heads == 2  # 128 / 64


@pytest.mark.parametrize("extra,message", [
    ("fc_norm.weight", "average pooling with fc_norm"),
    ("reg_token", "register tokens"),
    ("blocks.0.ls1.gamma", "LayerScale"),
])
def test_unsupported_vit_variants_are_refused_by_name(extra, message):
    weights = _weights()
    weights[extra] = np.ones(128, np.float32)
    with pytest.raises(EngineError, match=f"uses {message}"):
        config_from_weights(weights)


def test_weights_that_are_not_a_vit_are_named():
    with pytest.raises(EngineError, match=r"lacks \['patch_embed.proj.weight'"):
        config_from_weights({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)})
    weights = _weights()
    weights["pos_embed"] = np.zeros((1, 18, 128), np.float32)  # 17 patches: not a square grid
    with pytest.raises(EngineError, match="pos_embed has 18 positions"):
        config_from_weights(weights)


def test_npz_and_torch_checkpoints_load_the_same_weights(tmp_path):
    weights = _weights()
    np.savez(tmp_path / "vit.npz", **weights)
    from_npz = load_checkpoint(tmp_path / "vit.npz")
    assert set(from_npz) == set(weights)
    np.testing.assert_array_equal(from_npz["blocks.1.attn.qkv.weight"], weights["blocks.1.attn.qkv.weight"])

    torch = pytest.importorskip("torch")
    state = {"module." + k: torch.from_numpy(v) for k, v in weights.items()}  # DataParallel-style names
    torch.save({"state_dict": state, "epoch": 3}, str(tmp_path / "vit.pth"))
    from_pth = load_checkpoint(tmp_path / "vit.pth")
    assert set(from_pth) == set(weights)
    np.testing.assert_array_equal(from_pth["head.weight"], weights["head.weight"])


def test_checkpoint_errors(tmp_path):
    with pytest.raises(EngineError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "vit.ckpt").write_bytes(b"x")
    with pytest.raises(EngineError, match=r"unknown checkpoint type '\.ckpt'"):
        load_checkpoint(tmp_path / "vit.ckpt")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(EngineError, match=r"cannot read the \.npz checkpoint"):
        load_checkpoint(tmp_path / "bad.npz")


def test_folded_model_gives_the_same_logits_from_camera_frames(tmp_path):
    """The daemon's uint8 NHWC path (crop + resize on the CPU, the rest in the graph) against the float path."""
    weights = _weights()
    plain = export_onnx(weights, SMALL, tmp_path / "plain.onnx", model_name="plain", preprocess=IMAGENET)
    folded = export_onnx(weights, SMALL, tmp_path / "folded.onnx", model_name="folded", preprocess=IMAGENET,
                         fold=True)
    m_plain, m_folded = load_manifest(plain), load_manifest(folded)
    assert m_folded.input.model_dump() == {"name": "frames", "shape": [-1, 32, 32, 3], "dtype": "uint8",
                                           "layout": "NHWC"}
    assert m_folded.preprocess.normalize == "graph" and m_folded.preprocess.channel_order == "BGR"
    assert m_folded.preprocess.mean == list(IMAGENET.mean)  # recorded for reference

    images, _ = load_digits_test()
    rng = np.random.default_rng(7)
    frames = [render_digit_frame(images[i], rng, 640, 480) for i in range(6)]  # BGR camera frames
    float_batch = Preprocessor(m_plain.preprocess, m_plain.input).batch(frames)
    uint8_batch = Preprocessor(m_folded.preprocess, m_folded.input).batch(frames)
    assert float_batch.dtype == np.float32 and float_batch.shape == (6, 3, 32, 32)
    assert uint8_batch.dtype == np.uint8 and uint8_batch.shape == (6, 32, 32, 3)

    want = OrtRunner(plain).infer(float_batch)["logits"]
    got = OrtRunner(folded).infer(uint8_batch)["logits"]
    assert np.abs(want).max() > 0.5
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_labels_are_copied_next_to_the_model_and_counted(tmp_path):
    labels = tmp_path / "names.txt"
    labels.write_text("cat\ndog\nbird\nfish\n")
    out = export_onnx(_weights(), SMALL, tmp_path / "m" / "vit.onnx", model_name="vit", preprocess=IMAGENET,
                      labels=labels)
    assert load_labels(out, load_manifest(out)) == ["cat", "dog", "bird", "fish"]
    labels.write_text("cat\ndog\n")
    with pytest.raises(EngineError, match="2 labels for a model with 4 classes"):
        export_onnx(_weights(), SMALL, tmp_path / "m" / "vit.onnx", model_name="vit", preprocess=IMAGENET,
                    labels=labels)


def test_missing_onnx_and_timm_say_how_to_install_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(EngineError, match="--timm needs timm and torch: pip install timm torch"):
        weights_from_timm("vit_tiny_patch16_224")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(EngineError, match=r"pip install 'jetvit-daemon\[export\]'"):
        require_onnx()


def test_timm_download_failure_explains_the_offline_way(monkeypatch):
    class Timm:
        @staticmethod
        def create_model(name: str, pretrained: bool) -> None:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load this file")

    monkeypatch.setitem(sys.modules, "timm", Timm)
    with pytest.raises(EngineError, match=r"timm cannot create 'vit_small_patch16_224' \(We couldn't connect.*"
                                          r"pass --checkpoint FILE"):
        weights_from_timm("vit_small_patch16_224")


def test_export_needs_an_onnx_suffix(tmp_path):
    with pytest.raises(EngineError, match=r"must end in \.onnx"):
        export_onnx(_weights(), SMALL, tmp_path / "vit.engine", model_name="vit", preprocess=IMAGENET)
    assert not Path(tmp_path / "vit.engine").exists()
