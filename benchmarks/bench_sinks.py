"""Inference throughput with every result sink on against none, side by side in one run: pre-rendered frames
(so that inference, not the synthetic camera's rendering, is the bound) → preprocess → ONNX Runtime (bundled
ViT) → top-1 → [no sinks | JSON Lines (rotating) + MQTT with the broker DOWN + HTTP feed with a stream client
that never reads | the same with a real mosquitto UP, when it is installed]. Runs alternate (A B C A B C ...)
so that drift in the machine's load hits every variant alike.

    .venv/bin/python benchmarks/bench_sinks.py [--seconds 4] [--repeats 3] [--batch 8]

Prints processed frames/s per run, the median per variant and its ratio to "no sinks", and what the sinks did
(sent / dropped by reason). Recorded in docs/PERFORMANCE.md.
"""

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.config_sinks import MqttSinkConfig
from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.pipeline import Pipeline
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sinks.http_feed import HttpFeedSink
from jetvit_daemon.pipeline.sinks.jsonl import JsonlSink
from jetvit_daemon.pipeline.sinks.mqtt import MqttSink
from jetvit_daemon.pipeline.sinks.queued import QueuedSink
from jetvit_daemon.pipeline.sinks.schema import ModelIdentity, ResultEncoder
from jetvit_daemon.pipeline.sources import FrameSource, SyntheticCamera
from jetvit_daemon.runners.manifest import load_labels
from jetvit_daemon.runners.ort_runner import OrtRunner


class ReplayCamera(FrameSource):
    """Cycles through frames rendered once, as fast as the pipeline takes them (no rendering per frame)."""

    def __init__(self, clock: SystemClock, n: int = 64) -> None:
        self.name = "cam0"
        cam = SyntheticCamera(clock, fps=1e6, seed=0, name=self.name)
        stop = threading.Event()
        self._frames = []
        for _ in range(n):
            frame = cam.read(stop)
            assert frame is not None
            self._frames.append(frame)
        self._clock = clock
        self._count = 0

    def read(self, stop: threading.Event) -> Optional[Frame]:
        if stop.is_set():
            return None
        src = self._frames[self._count % len(self._frames)]
        frame = Frame(self._count, self.name, self._clock.monotonic(), src.image, src.truth)
        self._count += 1
        if self._count % 8 == 0:
            stop.wait(0.0005)  # let the other threads have the GIL: a camera also waits for its next frame
        return frame


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mosquitto(tmp: Path) -> Optional[subprocess.Popen]:
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        return None
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"user {os.environ.get('USER') or 'root'}\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            proc.port = port  # type: ignore[attr-defined]
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None


def make_sinks(tmp: Path, clock: SystemClock, mqtt_port: int) -> List[QueuedSink]:
    encoder = ResultEncoder(clock, ModelIdentity.of_file("vit-digits", DEFAULT_MODEL))
    jsonl = JsonlSink(tmp / "results.jsonl", encoder, clock, max_bytes=5_000_000, keep=2)
    mqtt = MqttSink(MqttSinkConfig(type="mqtt", port=mqtt_port, topic_prefix="bench"), encoder, clock, "bench",
                    stats=lambda: {}, states=lambda: {"cam0": {"state": "running"}})
    feed = HttpFeedSink(encoder)
    feed.subscribe()  # a stream client that never reads: its queue overflows, counted as slow_client
    return [jsonl, mqtt, feed]


def run_once(label: str, sinks: List[QueuedSink], seconds: float, batch: int) -> float:
    clock = SystemClock()
    runner = OrtRunner(DEFAULT_MODEL, intra_op_threads=1)
    runner.warm_up(3, (batch,))
    m = runner.manifest
    pipe = Pipeline(clock, [ReplayCamera(clock)], runner, Preprocessor(m.preprocess, m.input),
                    Top1Classifier(m.outputs[0], load_labels(DEFAULT_MODEL, m)), sinks, batch_size=batch,
                    window_s=seconds)
    pipe.start()
    threading.Event().wait(seconds)
    fps = pipe.stats().processed_fps
    pipe.stop()
    done = "; ".join(f"{s.name}: sent {st.sent_total}, dropped "
                     + (", ".join(f"{k} {v}" for k, v in st.dropped_total.items() if v) or "0")
                     for s, st in ((s, s.stats()) for s in sinks))
    print(f"  {label:<28} {fps:7.1f} frames/s" + (f"   [{done}]" if sinks else ""), flush=True)
    return fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    clock = SystemClock()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"batch {args.batch}, {args.seconds:g} s per run, {args.repeats} rounds")
    results: Dict[str, List[float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        broker = start_mosquitto(tmp)
        try:
            for r in range(args.repeats):
                print(f"round {r + 1}")
                variants = [("no sinks", None), ("all sinks, broker down", free_port())]
                if broker is not None:
                    variants.append(("all sinks, broker up", broker.port))  # type: ignore[attr-defined]
                for i, (label, port) in enumerate(variants):
                    sinks = [] if port is None else make_sinks(tmp / f"round{r}-variant{i}", clock, port)
                    results.setdefault(label, []).append(run_once(label, sinks, args.seconds, args.batch))
        finally:
            if broker is not None:
                broker.kill()
                broker.wait(5)
    base = statistics.median(results["no sinks"])
    print("median frames/s (min..max) and ratio to no sinks:")
    for label, values in results.items():
        med = statistics.median(values)
        print(f"  {label:<28} {med:7.1f} ({min(values):.1f}..{max(values):.1f})  ratio {med / base:.3f}")


if __name__ == "__main__":
    main()
