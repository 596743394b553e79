"""The inference worker as a real process (`python -m jetvit_daemon.runners.worker`) on the bundled ViT with
ONNX Runtime: results identical to the runner in-process, and its faults: SIGKILL mid-batch, a hang (SIGSTOP),
an engine that cannot load, slots reused over 10 000 batches, a stop within the deadline."""

import os
import shutil
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.manifest import load_manifest
from jetvit_daemon.runners.ort_runner import OrtRunner
from jetvit_daemon.runners.worker_client import InferenceWorker, WorkerSpec

pytest.importorskip("onnxruntime")

OPTIONS = {"providers": ["CPUExecutionProvider"], "intra_op_threads": 1}


def make_worker(model: Path = DEFAULT_MODEL, **kwargs) -> InferenceWorker:
    spec = WorkerSpec(sys.executable, "onnxruntime", model, load_manifest(model), OPTIONS, 1)
    return InferenceWorker(spec, **kwargs)


@pytest.fixture
def worker():
    w = make_worker(backoff_first_s=0.1)
    w.start()
    yield w
    w.stop(5.0)


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.02)


def run_one(w: InferenceWorker, batch: np.ndarray, tag=None, timeout_s: float = 5.0):
    slot = w.acquire(timeout_s)
    assert slot is not None, "no free slot"
    w.input(slot)[: len(batch)] = batch
    w.submit(slot, len(batch), tag)
    done = w.collect(timeout_s)
    assert done is not None, "no completion"
    return done


def digits(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, 32, 32)).astype(np.float32)


def test_results_match_the_runner_in_process_with_two_batches_in_flight(worker):
    local = OrtRunner(DEFAULT_MODEL, **OPTIONS)
    info = worker.info()
    assert info.runner == "onnxruntime" and info.max_batch == 32 and info.input.shape == [-1, 3, 32, 32]
    a, b = digits(8, 1), digits(3, 2)
    slots = [worker.acquire(1.0), worker.acquire(1.0)]
    assert None not in slots and slots[0] != slots[1]
    assert worker.acquire(0.05) is None  # both in use: the third batch waits for one to come back
    for slot, batch, tag in zip(slots, (a, b), "ab"):
        worker.input(slot)[: len(batch)] = batch
        worker.submit(slot, len(batch), tag)
    first, second = worker.collect(5.0), worker.collect(5.0)
    assert (first.tag, second.tag) == ("a", "b")  # in submit order
    np.testing.assert_allclose(first.outputs["logits"], local.infer(a)["logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(second.outputs["logits"], local.infer(b)["logits"], rtol=1e-5, atol=1e-5)
    assert first.infer_s > 0 and worker.status()["rss_bytes"] > 10 * 2**20
    worker.release(first.slot)
    worker.release(second.slot)


def test_sigkill_mid_batch_restarts_the_worker_and_gives_the_batch_back_as_lost(worker):
    run_one(worker, digits(2))
    pid = worker.status()["pid"]
    os.kill(pid, signal.SIGSTOP)  # hold it inside the batch so the kill lands mid-batch, not between batches
    slot = worker.acquire(1.0)
    worker.input(slot)[:4] = digits(4)
    worker.submit(slot, 4, "in flight")
    os.kill(pid, signal.SIGKILL)
    lost = worker.collect(5.0)
    assert lost is not None and lost.lost and lost.tag == "in flight" and lost.n == 4 and lost.outputs is None
    worker.release(lost.slot)
    wait_for(lambda: worker.status()["state"] == "running", 10.0, "the restarted worker")
    status = worker.status()
    assert status["restarts_total"] == 1 and status["pid"] != pid and "exited" in status["last_restart_reason"]
    done = run_one(worker, digits(4), "after")  # results resume
    assert not done.lost and done.outputs["logits"].shape == (4, 10)


def test_a_hung_worker_is_killed_within_the_batch_deadline_and_restarted(worker):
    for _ in range(20):
        worker.release(run_one(worker, digits(1)).slot)
    bound_s = worker.status()["batch_deadline_s"]
    assert bound_s == pytest.approx(1.0)  # max(1 s, 10 × a few ms)
    pid = worker.status()["pid"]
    os.kill(pid, signal.SIGSTOP)
    slot = worker.acquire(1.0)
    worker.input(slot)[:1] = digits(1)
    t0 = time.monotonic()
    worker.submit(slot, 1, "hung")
    lost = worker.collect(10.0)
    took_s = time.monotonic() - t0
    assert lost is not None and lost.lost and lost.tag == "hung"
    assert bound_s <= took_s < bound_s + 0.5, f"detected after {took_s:.2f} s"
    assert "hung" in worker.status()["last_restart_reason"]
    worker.release(lost.slot)
    wait_for(lambda: worker.status()["state"] == "running", 10.0, "the restarted worker")
    assert not run_one(worker, digits(2)).lost


def test_an_engine_that_fails_to_load_is_a_clear_error_and_no_restart_loop(tmp_path):
    broken = tmp_path / "vit_digits.onnx"
    broken.write_bytes(b"not an onnx model")
    shutil.copy(DEFAULT_MODEL.with_name("vit_digits.manifest.json"), tmp_path / "vit_digits.manifest.json")
    w = make_worker(broken)
    with pytest.raises(EngineError, match=r"vit_digits.onnx: ONNX Runtime cannot load the model"):
        w.start()
    assert not w.thread.started  # nothing restarts it: the start fails once, for good (exit 3)
    assert w.restarts_total == 0
    w.stop(1.0)


def test_repeated_load_failures_after_a_crash_end_the_supervision_with_the_engine_error(tmp_path):
    model = tmp_path / "vit_digits.onnx"
    shutil.copy(DEFAULT_MODEL, model)
    shutil.copy(DEFAULT_MODEL.with_name("vit_digits.manifest.json"), tmp_path / "vit_digits.manifest.json")
    w = make_worker(model, backoff_first_s=0.05, max_load_failures=3)
    w.start()
    try:
        model.write_bytes(b"truncated")  # the engine file broke while the worker ran
        os.kill(w.status()["pid"], signal.SIGKILL)
        w.thread.join(20.0)
        assert not w.thread.alive
        assert isinstance(w.thread.failure, EngineError)
        assert "failed to load the model 3 times in a row" in str(w.thread.failure)
        assert "ONNX Runtime cannot load the model" in str(w.thread.failure)
        assert w.restarts_total == 1  # one crash; the failed loads are not restarts that ran
    finally:
        w.stop(1.0)


def test_slots_are_reused_with_no_growth_over_10000_batches(worker):
    path, size = worker._slots.path, os.stat(worker._slots.path).st_size
    views = [worker.input(k) for k in range(worker.n_slots)]
    batch = digits(1)
    for i in range(500):  # warm: allocator pools and caches settle
        worker.release(run_one(worker, batch, i).slot)
    rss_before = worker.status()["rss_bytes"]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(10_000):
            slot = worker.acquire(5.0)
            worker.input(slot)[:1] = batch
            worker.submit(slot, 1, i)
            done = worker.collect(5.0)
            assert done.tag == i and not done.lost
            worker.release(done.slot)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 256 * 1024, f"the daemon side grew by {after - before} bytes"
    assert worker.status()["rss_bytes"] - rss_before < 4 * 2**20, "the worker's memory grew"
    assert worker._slots.path == path and os.stat(path).st_size == size  # the same file, never grown
    assert all(a is b for a, b in zip(views, [worker.input(k) for k in range(worker.n_slots)]))


def test_stop_ends_even_a_hung_worker_within_the_deadline_and_removes_the_slots():
    w = make_worker()
    w.start()
    pid, path = w.status()["pid"], w._slots.path
    os.kill(pid, signal.SIGSTOP)  # the worst case: it cannot even read the stop message
    t0 = time.monotonic()
    w.stop(3.0)
    took_s = time.monotonic() - t0
    assert took_s < 3.0, f"stop took {took_s:.2f} s"
    assert not os.path.exists(path)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped


def test_stop_of_a_healthy_worker_is_an_orderly_exit():
    w = make_worker()
    w.start()
    proc = w._proc
    t0 = time.monotonic()
    w.stop(3.0)
    assert time.monotonic() - t0 < 1.5
    assert proc.popen.returncode == 0  # it exited on the stop message, not a signal
