"""`bench` (the raw runner's throughput and latency percentiles) and the `engine` commands through the CLI."""

import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from jetvit_daemon.cli import main
from jetvit_daemon.clock import ManualClock
from jetvit_daemon.engine.bench import format_bench, percentile, run_bench
from jetvit_daemon.engine.vit_onnx import ViTConfig, init_weights
from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.base import Runner, RunnerInfo
from jetvit_daemon.runners.manifest import InputSpec, load_manifest


class ClockedRunner(Runner):
    """Each call takes the next of `durations_s` on a manual clock; records the batches it is given."""

    def __init__(self, clock: ManualClock, durations_s: List[float]) -> None:
        self.clock, self.durations_s, self.batches = clock, durations_s, []
        self.calls = 0

    def info(self) -> RunnerInfo:
        spec = InputSpec(name="frames", shape=[-1, 8, 8, 3], dtype="uint8", layout="NHWC")
        return RunnerInfo(runner="test", device="a manual clock", model_path="m.onnx", input=spec,
                          output_names=("logits",), max_batch=8)

    def infer(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        self.batches.append(batch)
        self.clock.advance(self.durations_s[self.calls % len(self.durations_s)])
        self.calls += 1
        return {"logits": np.zeros((len(batch), 2), np.float32)}


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0 and percentile(values, 90) == 9.0
    assert percentile(values, 95) == 10.0 and percentile(values, 99) == 10.0 and percentile(values, 1) == 1.0


def test_bench_times_each_call_after_the_warm_up():
    clock = ManualClock()
    # warm-up: 0.4 s + 0.4 s reaches 0.5 s after two calls; then 10, 20, ..., 100 ms repeating
    runner = ClockedRunner(clock, [0.4, 0.4] + [0.01 * k for k in range(1, 11)])
    result = run_bench(runner, batch=4, seconds=0.545, warmup_s=0.5, clock=clock)
    assert result.queries == 10 and result.wall_s == pytest.approx(0.55)
    assert result.qps == pytest.approx(10 / 0.55) and result.frames_per_s == pytest.approx(40 / 0.55)
    stats = result.latency_stats_s()
    assert stats["min"] == pytest.approx(0.01) and stats["max"] == pytest.approx(0.1)
    assert stats["median"] == pytest.approx(0.05) and stats["p90"] == pytest.approx(0.09)
    assert stats["mean"] == pytest.approx(0.055)
    # one random uint8 batch of the runner's input shape, the same object every call
    assert runner.batches[0].shape == (4, 8, 8, 3) and runner.batches[0].dtype == np.uint8
    assert all(b is runner.batches[0] for b in runner.batches)
    text = format_bench(result)
    assert "Throughput: 18.18 qps, 72.73 frames/s" in text
    assert ("Latency: min = 10 ms, max = 100 ms, mean = 55 ms, median = 50 ms, percentile(90%) = 90 ms, "
            "percentile(95%) = 100 ms, percentile(99%) = 100 ms") in text
    assert result.summary()["latency_p95_ms"] == pytest.approx(100.0)


def test_bench_refuses_a_batch_the_model_cannot_take():
    with pytest.raises(EngineError, match=r"--batch 9: m\.onnx takes 1\.\.8 images"):
        run_bench(ClockedRunner(ManualClock(), [0.01]), batch=9, seconds=1.0)


def test_bench_command_on_the_bundled_model(capsys):
    assert main(["bench", "--seconds", "0.2", "--warmup", "0.05", "--batch", "4"]) == 0
    out = capsys.readouterr().out
    assert "Runner: onnxruntime on CPU (onnxruntime" in out and "vit_digits.onnx, batch 4" in out
    assert "Throughput:" in out and "percentile(99%)" in out

    assert main(["bench", "--seconds", "0.1", "--warmup", "0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["runner"] == "onnxruntime" and summary["batch"] == 1 and summary["queries"] >= 1
    assert summary["latency_min_ms"] <= summary["latency_median_ms"] <= summary["latency_max_ms"]

    assert main(["bench", "--batch", "64", "--seconds", "0.1"]) == 3
    assert "takes 1..32 images per batch" in capsys.readouterr().err


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    cfg = ViTConfig(image_size=16, patch_size=4, in_chans=3, embed_dim=64, depth=1, num_heads=2, mlp_ratio=2.0,
                    num_classes=3)
    path = tmp_path / "tiny.npz"
    np.savez(path, **init_weights(cfg, 0))
    return path


def test_engine_export_command(checkpoint, tmp_path, capsys):
    out = tmp_path / "out" / "tiny.onnx"
    code = main(["engine", "export", "--checkpoint", str(checkpoint), "--out", str(out), "--num-heads", "2",
                 "--fold-preprocess", "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", "--max-batch", "16"])
    assert code == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "input frames uint8 [-1, 16, 16, 3] NHWC" in text
    assert "preprocessing folded into the graph" in text
    manifest = load_manifest(out)
    assert manifest.model_name == "tiny" and manifest.batch.max == 16 and manifest.preprocess.mean == [0.5] * 3


def test_engine_export_without_onnx_says_how_to_install_it(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["engine", "export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.onnx")]) == 3
    assert "pip install 'jetvit-daemon[export]'" in capsys.readouterr().err


def test_engine_build_without_tensorrt_prints_the_trtexec_command_and_exits_3(checkpoint, tmp_path, capsys,
                                                                               monkeypatch):
    model = tmp_path / "tiny_fp16.onnx"
    assert main(["engine", "export", "--checkpoint", str(checkpoint), "--out", str(model), "--num-heads", "2",
                 "--precision", "fp16"]) == 0
    assert "precision fp16: fp16 weights and compute (float32 kept for Softmax" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert main(["engine", "build", str(model), "--max-batch", "8"]) == 3
    captured = capsys.readouterr()
    assert captured.out.strip() == (
        f"trtexec --onnx={model} --saveEngine={tmp_path / 'tiny_fp16.engine'} "
        "--minShapes=pixel_values:1x3x16x16 --optShapes=pixel_values:8x3x16x16 --maxShapes=pixel_values:8x3x16x16 "
        "--stronglyTyped")
    assert "error: TensorRT (neither its Python API nor trtexec) is not installed here" in captured.err
    assert "flags of TensorRT 10.3.0" in captured.err

    assert main(["engine", "build", str(model), "--print-trtexec", "--tensorrt-version", "8.6.2"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith("--maxShapes=pixel_values:32x3x16x16 --fp16")
    assert captured.err.strip() == "# trtexec flags of TensorRT 8.6.2 (--tensorrt-version)"
    assert main(["engine", "build", str(model), "--print-trtexec", "--tensorrt-version", "11.4.0"]) == 0
    assert capsys.readouterr().out.strip().endswith("--stronglyTyped")


def test_engine_check_without_tensorrt_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    (tmp_path / "m.engine").write_bytes(b"x")
    (tmp_path / "m.manifest.json").write_text(json.dumps({
        "model_name": "m", "framework": "tensorrt", "outputs": ["logits"], "preprocess": {},
        "input": {"name": "pixel_values", "shape": [-1, 3, 16, 16]},
        "build": {"tensorrt_version": "10.3.0", "device": "t234 Orin sm_87", "jetpack": "6.2"}}))
    assert main(["engine", "check", str(tmp_path / "m.engine")]) == 3
    assert "TensorRT is not installed here" in capsys.readouterr().err
