"""The pipeline over the real inference worker: frames a killed worker held are counted as dropped, reason
`worker_restart` (in the totals and against their source), and results resume after the restart."""

import os
import signal
import sys
import threading
import time

import pytest

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.pipeline.pipeline import WORKER_RESTART, Pipeline
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sinks import MemorySink
from jetvit_daemon.pipeline.sources import SyntheticCamera
from jetvit_daemon.runners.manifest import load_manifest
from jetvit_daemon.runners.worker_client import InferenceWorker, WorkerSpec

pytest.importorskip("onnxruntime")


def wait_for(predicate, timeout_s, what):
    deadline, pause = time.monotonic() + timeout_s, threading.Event()
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.02)


def test_frames_held_by_a_killed_worker_are_dropped_as_worker_restart_and_results_resume():
    m = load_manifest(DEFAULT_MODEL)
    worker = InferenceWorker(WorkerSpec(sys.executable, "onnxruntime", DEFAULT_MODEL, m,
                                        {"providers": ["CPUExecutionProvider"], "intra_op_threads": 1}, 1),
                             backoff_first_s=0.1)
    sink = MemorySink()
    clock = SystemClock()
    pipe = Pipeline(clock, [SyntheticCamera(clock, fps=200.0)], worker, Preprocessor(m.preprocess, m.input),
                    Top1Classifier(m.outputs[0]), [sink], batch_size=4)
    worker.start()
    pipe.start()
    try:
        wait_for(lambda: len(sink.results()) >= 20, 20.0, "first results")
        pid = worker.status()["pid"]
        os.kill(pid, signal.SIGSTOP)  # hold the batches in flight
        wait_for(lambda: worker.status()["in_flight"] >= 1, 5.0, "a batch in flight")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: worker.restarts_total == 1 and worker.status()["state"] == "running", 20.0, "restart")
        before = len(sink.results())
        wait_for(lambda: len(sink.results()) >= before + 20, 20.0, "results after the restart")
    finally:
        pipe.stop()
        worker.stop(3.0)
    stats = pipe.stats()
    lost = dict(stats.dropped_by_reason).get(WORKER_RESTART, 0)
    assert lost >= 1
    (counts,) = pipe.slot_counts()
    assert counts.dropped.get(WORKER_RESTART, 0) == lost  # counted against the source too
