"""The raw runner's speed (`jetvit-daemon bench`): throughput and latency percentiles of `runner.infer` alone,
reported the way trtexec reports them, to compare the whole pipeline against.

    result = run_bench(runner, batch=8, seconds=10.0)
    print(format_bench(result))

A query is one `infer` call on one batch (trtexec's "qps"); frames/s is queries/s × batch. Inputs are random
data of the model's input dtype and shape (as trtexec feeds by default), generated once before timing.
"""

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jetvit_daemon.clock import Clock, SystemClock
from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.base import Runner

PERCENTILES = (90.0, 95.0, 99.0)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values: the smallest value with at least p% at or below it."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return float(sorted_values[rank - 1])


@dataclass(frozen=True)
class BenchResult:
    """One benchmark run. Immutable: thread-safe."""

    runner: str
    device: str
    model: str
    batch: int
    warmup_s: float
    wall_s: float
    latencies_s: Tuple[float, ...]

    @property
    def queries(self) -> int:
        return len(self.latencies_s)

    @property
    def qps(self) -> float:
        return self.queries / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def frames_per_s(self) -> float:
        return self.qps * self.batch

    def latency_stats_s(self) -> Dict[str, float]:
        ordered = sorted(self.latencies_s)
        stats = {
            "min": ordered[0],
            "max": ordered[-1],
            "mean": float(np.mean(ordered)),
            "median": percentile(ordered, 50.0),
        }
        for p in PERCENTILES:
            stats[f"p{p:g}"] = percentile(ordered, p)
        return stats

    def summary(self) -> Dict[str, Any]:
        """Everything as one JSON-ready dict (latencies in milliseconds)."""
        out: Dict[str, Any] = {
            "runner": self.runner, "device": self.device, "model": self.model, "batch": self.batch,
            "queries": self.queries, "wall_s": round(self.wall_s, 4), "warmup_s": self.warmup_s,
            "qps": round(self.qps, 3), "frames_per_s": round(self.frames_per_s, 3),
        }
        for key, value in self.latency_stats_s().items():
            out[f"latency_{key}_ms"] = round(value * 1000.0, 4)
        return out


def bench_input(runner: Runner, batch: int, seed: int = 0) -> np.ndarray:
    """Random data for one batch in the runner's input dtype and shape (uint8: 0..255; floats: N(0, 1))."""
    spec = runner.info().input
    shape = (batch, *spec.item_shape)
    rng = np.random.default_rng(seed)
    if spec.dtype == "uint8":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.standard_normal(size=shape).astype(spec.dtype)


def run_bench(
    runner: Runner,
    batch: int,
    seconds: float,
    warmup_s: float = 1.0,
    clock: Optional[Clock] = None,
    seed: int = 0,
) -> BenchResult:
    """Warm up for `warmup_s` (at least one call), then call `runner.infer` back to back for `seconds` (at least
    one call), timing each call."""
    clock = clock or SystemClock()
    info = runner.info()
    if not 1 <= batch <= info.max_batch:
        raise EngineError(f"--batch {batch}: {info.model_path} takes 1..{info.max_batch} images per batch")
    if seconds <= 0 or warmup_s < 0:
        raise EngineError(f"--seconds must be > 0 and --warmup >= 0, got {seconds} and {warmup_s}")
    data = bench_input(runner, batch, seed)
    start = clock.monotonic()
    while True:
        runner.infer(data)
        if clock.monotonic() - start >= warmup_s:
            break
    latencies: List[float] = []
    begin = clock.monotonic()
    while True:
        t0 = clock.monotonic()
        runner.infer(data)
        t1 = clock.monotonic()
        latencies.append(t1 - t0)
        if t1 - begin >= seconds:
            break
    return BenchResult(runner=info.runner, device=info.device, model=info.model_path, batch=batch,
                       warmup_s=warmup_s, wall_s=t1 - begin, latencies_s=tuple(latencies))


def format_bench(result: BenchResult) -> str:
    """A trtexec-style performance summary."""
    s = {k: v * 1000.0 for k, v in result.latency_stats_s().items()}
    pct = ", ".join(f"percentile({p:g}%) = {s[f'p{p:g}']:.4g} ms" for p in PERCENTILES)
    return "\n".join([
        "=== Performance summary (jetvit-daemon bench) ===",
        f"Runner: {result.runner} on {result.device}",
        f"Model: {result.model}, batch {result.batch}",
        f"Throughput: {result.qps:.4g} qps, {result.frames_per_s:.4g} frames/s",
        f"Latency: min = {s['min']:.4g} ms, max = {s['max']:.4g} ms, mean = {s['mean']:.4g} ms, "
        f"median = {s['median']:.4g} ms, {pct}",
        f"Total wall time: {result.wall_s:.4g} s, {result.queries} queries after {result.warmup_s:g} s of warm-up",
    ])
