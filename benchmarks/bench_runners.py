"""The raw runner's speed on ViT-Tiny/16 at several batch sizes: what `jetvit-daemon bench` reports, for the
figures in docs/PERFORMANCE.md ("Raw runner, ViT-Tiny/16").

    .venv/bin/python benchmarks/bench_runners.py [--seconds 10] [--batches 1,4,8] [--threads 1]
                                                 [--runner auto] [--model engines/out/vit_tiny16_224.onnx]

Writes engines/out/vit_tiny16_224.onnx (seeded random weights, the compute of timm's vit_tiny_patch16_224) if it is
missing. Prints the trtexec-style report of each run, then one markdown table row per batch size. On a Jetson,
pass the engine built from that model (`--model engines/out/vit_tiny16_224_fp16.engine`) to measure TensorRT.
"""

import argparse
import os
import platform
from pathlib import Path

from jetvit_daemon.engine.bench import format_bench, run_bench
from jetvit_daemon.engine.export import make_vit_tiny
from jetvit_daemon.runners.base import choose_runner_name, create_runner

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "engines" / "out" / "vit_tiny16_224.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed run per batch size")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--batches", default="1,4,8")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (0: all cores)")
    parser.add_argument("--runner", default="auto", choices=["auto", "onnxruntime", "tensorrt"])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    if not args.model.exists() and args.model == DEFAULT_MODEL:
        make_vit_tiny(DEFAULT_MODEL, seed=0)
        print(f"generated {DEFAULT_MODEL}")
    name = choose_runner_name(args.runner, args.model)
    options = {"intra_op_threads": args.threads} if name == "onnxruntime" else {}
    runner = create_runner(name, args.model, options)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{runner.info().device}" + (f", {args.threads} intra-op thread(s)" if name == "onnxruntime" else ""))
    rows = []
    try:
        for batch in (int(b) for b in args.batches.split(",")):
            result = run_bench(runner, batch, args.seconds, warmup_s=args.warmup)
            print(format_bench(result), flush=True)
            s = {k: v * 1000.0 for k, v in result.latency_stats_s().items()}
            rows.append(f"| {batch} | {result.qps:.2f} | {result.frames_per_s:.1f} | {s['min']:.1f} | {s['mean']:.1f} "
                        f"| {s['median']:.1f} | {s['p90']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} | {s['max']:.1f} "
                        f"| {result.queries} |")
    finally:
        runner.close()
    print("\n| batch | queries/s | frames/s | min | mean | median | p90 | p95 | p99 | max (ms) | queries |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
