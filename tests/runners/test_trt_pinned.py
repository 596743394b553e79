"""The TensorRT runner on page-locked shared slots (issue 12): where pycuda can register the slots' mapping, a
batch is copied to the GPU straight from its slot and the outputs straight into the slot; where it cannot
(Jetson TX2's CUDA, pycuda 2024.1+'s broken register_host_memory, an unaligned region) the reason is logged and
the staged path gives the same results. Against the recorded pycuda/TensorRT stand-ins (fake_trt.py); and the
real worker process importing them."""

import logging
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fake_trt import FakeCuda, write_importable
from test_trt_runner import batch_of, expected_logits, make_runner, names, write_engine

from jetvit_daemon.runners.manifest import load_manifest
from jetvit_daemon.runners.shm_slots import SlotFile, SlotLayout, TensorLayout
from jetvit_daemon.runners.worker_client import InferenceWorker, WorkerSpec


def slots_for(runner, tmp_path: Path) -> SlotFile:
    info = runner.info()
    layout = SlotLayout(TensorLayout(info.input.name, info.input.item_shape, info.input.dtype),
                        [TensorLayout("logits", (10,), "float32")], info.max_batch, 2)
    return SlotFile.create(layout, str(tmp_path))


def address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def run_in_slot(runner, slots: SlotFile, k: int, batch: np.ndarray) -> np.ndarray:
    n = len(batch)
    slots.input(k)[:n] = batch
    runner.infer_into(slots.input(k)[:n], {"logits": slots.output(k, "logits")[:n]})
    return slots.output(k, "logits")[:n]


def test_pinned_slots_are_copied_from_and_into_directly(tmp_path, caplog):
    runner, _, cuda = make_runner(tmp_path, "10.3.0")
    slots = slots_for(runner, tmp_path)
    try:
        with caplog.at_level(logging.INFO):
            assert runner.pin_host_memory(slots.memory()) is None
        assert "page-locked the shared slots" in caplog.text
        assert [c[1:3] for c in names(cuda.calls, "register_host_memory")] == [
            (address(slots.memory()), slots.layout.total_nbytes)]
        for k, n in ((0, 8), (1, 3), (0, 1)):
            x = batch_of(n, seed=n)
            np.testing.assert_allclose(run_in_slot(runner, slots, k, x), expected_logits(x), rtol=1e-6)
            h2d, d2h = names(cuda.calls, "memcpy_htod_async")[-1], names(cuda.calls, "memcpy_dtoh_async")[-1]
            # straight from the slot's input and into its output area, by DMA from page-locked memory
            assert h2d[3] == address(slots.input(k)) and h2d[2] == x.nbytes and h2d[4]
            assert d2h[3] == address(slots.output(k, "logits")) and d2h[2] == n * 10 * 4 and d2h[4]
        # a batch elsewhere (not in the pinned region) still goes through the runner's own buffers
        x = batch_of(2)
        np.testing.assert_allclose(runner.infer(x)["logits"], expected_logits(x), rtol=1e-6)
        assert names(cuda.calls, "memcpy_htod_async")[-1][3] == address(runner._in_buf.host)
    finally:
        runner.close()
        assert cuda.registered == [] and names(cuda.calls, "unregister")  # unregistered at close
        slots.close()
    assert slots._mmap.closed  # nothing kept the mapping alive


@pytest.mark.parametrize("mode,reason", [
    ("unsupported", "LogicError: cuMemHostRegister failed: operation not supported"),
    ("numpy-base", "SystemError: .* \\(ValueError: Cannot set the NumPy array 'base' dependency more than once\\)"),
])
def test_when_pycuda_cannot_page_lock_the_reason_is_logged_and_results_are_the_same(tmp_path, caplog, mode,
                                                                                   reason):
    runner, _, cuda = make_runner(tmp_path, "10.3.0", cuda=FakeCuda(host_register=mode))
    slots = slots_for(runner, tmp_path)
    try:
        with caplog.at_level(logging.WARNING):
            why = runner.pin_host_memory(slots.memory())
        assert why is not None and re.search(reason, why), why
        assert "could not be page-locked" in caplog.text and why in caplog.text
        x = batch_of(5)
        np.testing.assert_allclose(run_in_slot(runner, slots, 1, x), expected_logits(x), rtol=1e-6)
        # staged: copied through the runner's own page-locked buffers
        assert names(cuda.calls, "memcpy_htod_async")[-1][3] == address(runner._in_buf.host)
        assert names(cuda.calls, "memcpy_dtoh_async")[-1][3] == address(runner._out_bufs[0].host)
    finally:
        runner.close()
        slots.close()


def test_an_unaligned_region_is_refused_by_cuda_and_falls_back(tmp_path):
    runner, _, cuda = make_runner(tmp_path, "10.3.0")
    try:
        region = np.zeros(4096 + 100, np.uint8)[100:]  # neither its address nor its size page-aligned
        assert "invalid argument" in runner.pin_host_memory(region)
        assert cuda.registered == []
    finally:
        runner.close()


def test_a_batch_below_the_engines_fixed_batch_is_padded_in_the_runner_and_still_lands_in_the_slot(tmp_path):
    runner, _, cuda = make_runner(tmp_path, "10.3.0", input_shape=(4, 3, 32, 32), batch=(4, 4))
    slots = slots_for(runner, tmp_path)
    try:
        assert runner.pin_host_memory(slots.memory()) is None
        x = batch_of(3)
        np.testing.assert_allclose(run_in_slot(runner, slots, 0, x), expected_logits(x), rtol=1e-6)
        h2d, d2h = names(cuda.calls, "memcpy_htod_async")[-1], names(cuda.calls, "memcpy_dtoh_async")[-1]
        assert h2d[3] == address(runner._in_buf.host) and h2d[2] == 4 * 3 * 32 * 32 * 4  # padded to 4
        assert d2h[3] == address(slots.output(0, "logits")) and d2h[2] == 3 * 10 * 4  # only the 3 real rows
    finally:
        runner.close()
        slots.close()


def test_infer_into_refuses_an_output_area_of_the_wrong_shape(tmp_path):
    runner, _, _ = make_runner(tmp_path, "10.3.0")
    try:
        with pytest.raises(Exception, match=r"output 'logits' goes into a float32 array of shape \[2, 10\]"):
            runner.infer_into(batch_of(3), {"logits": np.zeros((2, 10), np.float32)})
    finally:
        runner.close()


@pytest.mark.parametrize("mode,pinned", [("ok", True), ("unsupported", False)])
def test_the_worker_process_pins_its_slots_and_runs_batches_from_them(tmp_path, monkeypatch, mode, pinned):
    # The real worker (python -m jetvit_daemon.runners.worker) imports `tensorrt` and `pycuda.driver`: the
    # stand-ins, found on PYTHONPATH as any module is.
    modules = write_importable(tmp_path / "modules", "10.3.0", host_register=mode)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(modules), os.environ.get("PYTHONPATH")) if p))
    engine = write_engine(tmp_path, "10.3.0", build={"jetpack": None, "l4t_release": None})
    facts = {"soc": None, "l4t_release": None, "jetpack": None}
    worker = InferenceWorker(WorkerSpec(sys.executable, "tensorrt", engine, load_manifest(engine),
                                        {"board_facts": facts}, 1), slot_dir=str(tmp_path))
    worker.start()
    try:
        assert worker.status()["slots_pinned"] is pinned
        for n in (8, 3):
            slot = worker.acquire(5.0)
            x = batch_of(n, seed=n)
            worker.input(slot)[:n] = x
            worker.submit(slot, n, n)
            done = worker.collect(10.0)
            assert done is not None and done.tag == n and not done.lost and done.error is None
            np.testing.assert_allclose(done.outputs["logits"], expected_logits(x), rtol=1e-6)
            worker.release(done.slot)
    finally:
        worker.stop(5.0)
