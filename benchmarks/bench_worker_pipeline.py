"""Pipeline efficiency against the engine (issue 12): the whole pipeline (replayed sources → batcher →
preprocessing into the shared slot → the inference worker process → results) with the GPU-like runner
(runners/gpu_like.py: T(n) = 3.12 ms + 1.6 ms × (n − 1), ViT-Tiny/16 FP16 on an Orin Nano, CPU idle) in the
worker, against that same runner's raw speed (`jetvit-daemon bench`'s loop: `infer` back to back in one
thread), measured side by side in one run, case by case.

    nice -n 10 .venv/bin/python benchmarks/bench_worker_pipeline.py [--seconds 4] [--warmup 1]
                                                                    [--batches 1,8] [--sources 1,4]

Prints, per case (frame size × sources × batch):
- efficiency = pipeline frames/s ÷ raw frames/s (goal ≥ 95%);
- host cost = CPU ms per frame outside the runner: the daemon process (capture threads excluded: a camera's
  decoding is not the pipeline's) and the worker process (its IPC; the runner sleeps), goal ≤ 0.5 ms per
  model-size frame;
then the latency at light load (one 30 FPS source): capture-to-result p50 minus the runner's p50, against one
batch wait + 2 ms. Sources replay frames rendered once (no rendering per frame), as fast as the pipeline takes
them (a file source's blocking slot: nothing dropped, no spinning). Recorded in docs/PERFORMANCE.md.
"""

import argparse
import datetime
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.engine.bench import run_bench
from jetvit_daemon.engine.export import IMAGENET
from jetvit_daemon.pipeline.capture.base import FrameSourceCapture
from jetvit_daemon.pipeline.capture.supervisor import SourceSupervisor, SupervisorSettings
from jetvit_daemon.pipeline.digits import load_digits_test, render_digit_frame
from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.pipeline import Pipeline
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sources import FrameSource
from jetvit_daemon.runners.executor import N_SLOTS
from jetvit_daemon.runners.gpu_like import GpuLikeRunner
from jetvit_daemon.runners.manifest import BatchRange, InputSpec, Manifest
from jetvit_daemon.runners.worker_client import InferenceWorker, WorkerSpec

MODEL_SIZE = 224  # ViT-Tiny/16's input
CLASSES = 1000
# The runner stands in for an engine; it never opens this path (the manifest travels in the `load` message).
MODEL = Path("gpu-like/vit_tiny16_224_fp16.engine")


def vit_tiny_manifest(uint8_nhwc: bool = False) -> Manifest:
    """ViT-Tiny/16 at 224 as `engine export` describes a timm ViT (centre crop, linear resize, ImageNet
    normalisation on the CPU, float32 NCHW), or (`uint8_nhwc`) with the preprocessing folded into the graph
    (BGR uint8 NHWC frames)."""
    if uint8_nhwc:
        spec = InputSpec(name="frames", shape=[-1, MODEL_SIZE, MODEL_SIZE, 3], dtype="uint8", layout="NHWC")
        pre = IMAGENET.model_copy(update={"channel_order": "BGR", "normalize": "graph"})
    else:
        spec = InputSpec(name="pixel_values", shape=[-1, 3, MODEL_SIZE, MODEL_SIZE])
        pre = IMAGENET
    return Manifest(model_name="vit-tiny16-224", framework="tensorrt", input=spec, outputs=["logits"],
                    preprocess=pre, precision="fp16", batch=BatchRange(min=1, max=8))


class ReplaySource(FrameSource):
    """Frames rendered once (digits on a `width`×`height` background), replayed in a cycle: as fast as they are
    taken (`fps` None) or at `fps`. Keeps its capture thread's CPU time (`cpu_s`) so it can be left out."""

    def __init__(self, clock: SystemClock, name: str, width: int, height: int, fps: Optional[float] = None,
                 n_frames: int = 16, seed: int = 0) -> None:
        self.name = name
        self.fps = fps
        self._clock = clock
        rng = np.random.default_rng(seed)
        images, labels = load_digits_test()
        self._frames = [(render_digit_frame(images[i], rng, width, height), int(labels[i])) for i in range(n_frames)]
        self._count = 0
        self._next_s: Optional[float] = None
        self.cpu_s = 0.0

    def read(self, stop: threading.Event) -> Optional[Frame]:
        if self.fps is not None:
            now = self._clock.monotonic()
            self._next_s = now if self._next_s is None else self._next_s
            if self._next_s > now and stop.wait(self._next_s - now):
                return None
            self._next_s += 1.0 / self.fps
        image, truth = self._frames[self._count % len(self._frames)]
        frame = Frame(self._count, self.name, self._clock.monotonic(), image, truth)
        self._count += 1
        self.cpu_s = time.thread_time()  # this thread's CPU so far: the capture side's share
        return frame


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Measured(NamedTuple):
    fps: float
    daemon_ms_per_frame: float
    worker_ms_per_frame: float
    latency_p50_ms: float
    infer_p50_ms: float
    dropped: int


def raw_fps(batch: int, seconds: float, manifest: Manifest) -> float:
    """The runner alone, `infer` back to back (what `jetvit-daemon bench` measures)."""
    runner = GpuLikeRunner(MODEL, manifest=manifest, classes=CLASSES)
    return run_bench(runner, batch, seconds, warmup_s=min(0.5, seconds / 4)).frames_per_s


def pipeline_run(batch: int, seconds: float, warmup_s: float, manifest: Manifest, sources: List[ReplaySource],
                 wait_s: float = 0.02, n_slots: int = N_SLOTS) -> Measured:
    clock = SystemClock()
    worker = InferenceWorker(WorkerSpec(sys.executable, "gpu-like", MODEL, manifest, {"classes": CLASSES}, 3),
                             n_slots=n_slots)
    worker.start()
    live = sources[0].fps is not None
    sups = [SourceSupervisor(s.name, f"replay:{s.name}", lambda s=s: FrameSourceCapture(s),
                             SupervisorSettings(live=live, nominal_fps=s.fps), clock, backend="in-process")
            for s in sources]
    pipe = Pipeline(clock, sups, worker, Preprocessor(manifest.preprocess, manifest.input),
                    Top1Classifier("logits"), [], batch_size=batch, max_batch_wait_s=wait_s, window_s=seconds)
    try:
        pipe.start()
        threading.Event().wait(warmup_s)
        pid = int(worker.status()["pid"])
        t0, cpu0, wcpu0 = time.monotonic(), time.process_time(), process_cpu_s(pid)
        cap0, out0 = sum(s.cpu_s for s in sources), pipe.stats().frames_out_total
        threading.Event().wait(seconds)
        t1, cpu1, wcpu1 = time.monotonic(), time.process_time(), process_cpu_s(pid)
        stats = pipe.stats()
        cap1, out1 = sum(s.cpu_s for s in sources), stats.frames_out_total
    finally:
        pipe.stop()
        worker.stop(5.0)
    frames = max(1, out1 - out0)
    ms = lambda v: float("nan") if v is None else v * 1000.0  # noqa: E731
    return Measured(fps=(out1 - out0) / (t1 - t0),
                    daemon_ms_per_frame=((cpu1 - cpu0) - (cap1 - cap0)) * 1000.0 / frames,
                    worker_ms_per_frame=(wcpu1 - wcpu0) * 1000.0 / frames,
                    latency_p50_ms=ms(stats.latency_p50_s), infer_p50_ms=ms(stats.infer_p50_s),
                    dropped=stats.frames_dropped_total)


def frame_sizes() -> Dict[str, Tuple[int, int]]:
    return {"1280x720": (1280, 720), f"{MODEL_SIZE}x{MODEL_SIZE}": (MODEL_SIZE, MODEL_SIZE)}


def efficiency_table(args: argparse.Namespace) -> List[str]:
    rows = ["| frames | input | sources | batch | raw frames/s | pipeline frames/s | efficiency | from raw "
            "| host CPU ms/frame: daemon | worker | total |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    clock = SystemClock()
    inputs = [("float32 NCHW", vit_tiny_manifest())]
    if args.uint8:
        inputs.append(("uint8 NHWC", vit_tiny_manifest(uint8_nhwc=True)))
    for label, (width, height) in frame_sizes().items():
        for input_label, manifest in inputs:
            for n_sources in args.sources:
                for batch in args.batches:
                    raw = raw_fps(batch, args.seconds, manifest)
                    sources = [ReplaySource(clock, f"cam{i}", width, height, seed=i) for i in range(n_sources)]
                    got = pipeline_run(batch, args.seconds, args.warmup, manifest, sources, n_slots=args.slots)
                    eff = got.fps / raw
                    total = got.daemon_ms_per_frame + got.worker_ms_per_frame
                    rows.append(f"| {label} | {input_label} | {n_sources} | {batch} | {raw:.1f} | {got.fps:.1f} "
                                f"| {eff:.1%} | {eff - 1:+.1%} | {got.daemon_ms_per_frame:.3f} "
                                f"| {got.worker_ms_per_frame:.3f} | {total:.3f} |")
                    print(rows[-1], flush=True)
    return rows


def latency_table(args: argparse.Namespace) -> List[str]:
    rows = ["| frames | batch | batch wait ms | latency p50 ms | runner p50 ms | p50 − runner ms | bound ms |",
            "|---|---|---|---|---|---|---|"]
    clock = SystemClock()
    manifest = vit_tiny_manifest()
    for label, (width, height) in frame_sizes().items():
        for batch in args.batches:
            wait_s = 0.02
            source = ReplaySource(clock, "cam0", width, height, fps=30.0)
            got = pipeline_run(batch, args.seconds, args.warmup, manifest, [source], wait_s=wait_s,
                               n_slots=args.slots)
            # A batch of one is full with its first frame: it never waits. Larger ones wait for company.
            wait_ms = 0.0 if batch == 1 else wait_s * 1000.0
            over = got.latency_p50_ms - got.infer_p50_ms
            rows.append(f"| {label} | {batch} | {wait_ms:.0f} | {got.latency_p50_ms:.2f} | {got.infer_p50_ms:.2f} "
                        f"| {over:.2f} | {wait_ms + 2.0:.0f} |")
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed run per case (raw and pipeline each)")
    parser.add_argument("--warmup", type=float, default=1.0, help="pipeline run before timing, per case")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--sources", default="1,4")
    parser.add_argument("--uint8", action="store_true", help="also an engine taking uint8 NHWC frames")
    parser.add_argument("--slots", type=int, default=N_SLOTS, help="the worker's shared slots (the daemon's)")
    parser.add_argument("--no-latency", dest="latency", action="store_false")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    args.sources = [int(s) for s in args.sources.split(",")]
    load = os.getloadavg()
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
          f"{os.cpu_count()} cores (load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}), Python "
          f"{platform.python_version()}, numpy {np.__version__}, OpenCV {cv2.__version__}; GPU-like runner in the "
          "worker process", flush=True)
    rows = efficiency_table(args)
    if args.latency:
        print()
        rows += ["", *latency_table(args)]
    print("\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
