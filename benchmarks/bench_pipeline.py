"""Throughput of the whole pipeline on this machine: synthetic camera → preprocess → ONNX Runtime (bundled ViT)
→ top-1, at several batch sizes, with the camera running faster than the pipeline can keep up.

    .venv/bin/python benchmarks/bench_pipeline.py [--seconds 5] [--batches 1,4,8]

Prints one line per batch size: processed frames/s, capture-to-result latency p50/p95 and inference p50 per
batch. Results are recorded in docs/PERFORMANCE.md.
"""

import argparse
import os
import platform
import threading

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.pipeline.pipeline import Pipeline
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sources import SyntheticCamera
from jetvit_daemon.runners.ort_runner import OrtRunner


def run_once(batch_size: int, seconds: float, threads: int, cameras: int) -> str:
    clock = SystemClock()
    runner = OrtRunner(DEFAULT_MODEL, intra_op_threads=threads)
    runner.warm_up(3, (batch_size,))
    m = runner.manifest
    cams = [SyntheticCamera(clock, fps=1000.0, seed=i, name=f"cam{i}") for i in range(cameras)]
    pipe = Pipeline(clock, cams, runner, Preprocessor(m.preprocess, m.input),
                    Top1Classifier(m.outputs[0]), [], batch_size=batch_size,
                    window_s=seconds)
    pipe.start()
    threading.Event().wait(seconds)
    s = pipe.stats()
    pipe.stop()
    ms = lambda v: float("nan") if v is None else v * 1000.0  # noqa: E731
    return (f"batch {batch_size:>2}: {s.processed_fps:7.1f} frames/s processed ({s.arrival_fps:6.1f} offered), "
            f"latency p50 {ms(s.latency_p50_s):6.1f} ms p95 {ms(s.latency_p95_s):6.1f} ms, "
            f"inference p50 {ms(s.infer_p50_s):5.2f} ms/batch, busy {s.busy_fraction:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batches", default="1,4,8")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--cameras", type=int, default=1, help="synthetic cameras, each as fast as it renders")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.cameras} camera(s), {args.threads} ORT thread(s)")
    for b in (int(x) for x in args.batches.split(",")):
        print(run_once(b, args.seconds, args.threads, args.cameras), flush=True)


if __name__ == "__main__":
    main()
