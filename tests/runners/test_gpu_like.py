"""The GPU-like runner (runners/gpu_like.py) the pipeline benchmarks measure against: its timing model, the
outputs it gives (names, shapes, dtype; nothing allocated per batch), what it refuses, and that the inference
worker process loads and runs it like any other runner."""

import sys
from pathlib import Path

import numpy as np
import pytest

from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.gpu_like import GpuLikeRunner, batch_time_s
from jetvit_daemon.runners.manifest import BatchRange, InputSpec, Manifest, PreprocessSpec
from jetvit_daemon.runners.worker_client import InferenceWorker, WorkerSpec

MODEL = Path("gpu-like/vit_tiny16_224.engine")  # never opened: the manifest comes with the runner


def manifest(outputs=("logits",), max_batch: int = 8) -> Manifest:
    return Manifest(model_name="vit-tiny", framework="tensorrt",
                    input=InputSpec(name="pixel_values", shape=[-1, 3, 224, 224]), outputs=list(outputs),
                    preprocess=PreprocessSpec(), batch=BatchRange(min=1, max=max_batch))


class FakeClock:
    """now() and sleep(): sleeping advances the clock, and every sleep is recorded."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def test_timing_model_is_vit_tiny_fp16_on_an_orin_nano():
    assert batch_time_s(1) == pytest.approx(3.12e-3)
    assert batch_time_s(8) == pytest.approx(3.12e-3 + 7 * 1.6e-3)  # 14.32 ms
    assert batch_time_s(4, first_ms=10.0, extra_ms=0.5) == pytest.approx(11.5e-3)
    with pytest.raises(ValueError, match="at least one frame"):
        batch_time_s(0)


def test_infer_sleeps_its_batch_time_and_returns_the_outputs_shapes():
    clock = FakeClock()
    runner = GpuLikeRunner(MODEL, manifest=manifest(("logits", "features")), classes=10, sleep=clock.sleep,
                           now=clock.now)
    for n in (1, 3, 8):
        start = clock.t
        out = runner.infer(np.zeros((n, 3, 224, 224), np.float32))
        assert clock.t - start == pytest.approx(batch_time_s(n))
        assert sorted(out) == ["features", "logits"]
        assert all(v.shape == (n, 10) and v.dtype == np.float32 for v in out.values())
    first, again = runner.infer(np.zeros((2, 3, 224, 224), np.float32)), runner.infer(np.zeros((2, 3, 224, 224),
                                                                                               np.float32))
    assert np.shares_memory(first["logits"], again["logits"]), "outputs are views of one array, not new ones"
    assert np.ptp(first["logits"], axis=1).min() > 0, "untied logits: postprocessing does its usual work"


def test_a_sleep_that_wakes_early_is_resumed_to_the_batch_end():
    clock = FakeClock()

    def short_sleep(seconds: float) -> None:  # the first sleep comes back after half the time asked
        clock.sleeps.append(seconds)
        clock.t += seconds / 2 if len(clock.sleeps) == 1 else seconds

    runner = GpuLikeRunner(MODEL, manifest=manifest(), classes=5, sleep=short_sleep, now=clock.now)
    start = clock.t
    runner.infer(np.zeros((1, 3, 224, 224), np.float32))
    assert clock.t - start == pytest.approx(batch_time_s(1))
    assert len(clock.sleeps) == 2


def test_bad_batches_are_refused_like_an_engine_would():
    runner = GpuLikeRunner(MODEL, manifest=manifest(max_batch=4), classes=5, sleep=lambda s: None)
    with pytest.raises(EngineError, match=r"float32 array of shape \[n, 3, 224, 224\]"):
        runner.infer(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(EngineError, match="float32"):
        runner.infer(np.zeros((1, 3, 224, 224), np.float16))
    with pytest.raises(EngineError, match=r"takes 1\.\.4"):
        runner.infer(np.zeros((5, 3, 224, 224), np.float32))
    with pytest.raises(EngineError, match="classes >= 1"):
        GpuLikeRunner(MODEL, manifest=manifest(), classes=0)
    info = runner.info()
    assert (info.runner, info.max_batch, info.output_names) == ("gpu-like", 4, ("logits",))


def test_the_inference_worker_process_runs_it():
    """`gpu-like` is a runner the worker knows: loaded from the `load` message, run from the shared slots."""
    worker = InferenceWorker(WorkerSpec(sys.executable, "gpu-like", MODEL, manifest(), {"classes": 7}, 1))
    worker.start()
    try:
        assert worker.info().runner == "gpu-like"
        slot = worker.acquire(5.0)
        assert slot is not None
        worker.input(slot)[:3] = 0.5
        worker.submit(slot, 3, "tag")
        done = worker.collect(5.0)
        assert done is not None and done.error is None and not done.lost
        assert done.tag == "tag" and done.outputs["logits"].shape == (3, 7)
        assert done.infer_s >= batch_time_s(3)  # it slept (at least) the batch's time in the worker
        expected = GpuLikeRunner(MODEL, manifest=manifest(), classes=7).infer(np.zeros((3, 3, 224, 224),
                                                                                       np.float32))
        np.testing.assert_array_equal(done.outputs["logits"], expected["logits"])
        worker.release(done.slot)
    finally:
        worker.stop(5.0)
