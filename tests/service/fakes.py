"""Fakes for the in-process service tests: a platform, a runner and a camera that record what is done to them
(into one shared event list, so start and stop ORDER can be asserted), a notifier that records sd_notify
messages, and `run_in_thread` to drive a `Service` from the test."""

import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import yaml

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.config import DEFAULT_MODEL, DaemonConfig
from jetvit_daemon.hardware.base import GpuFreqState, Platform, PowerMode, TelemetrySample
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.sources import FrameSource
from jetvit_daemon.runners.base import Runner, RunnerInfo
from jetvit_daemon.runners.manifest import load_manifest
from jetvit_daemon.service.app import Service
from jetvit_daemon.service.board import BoardAccess
from jetvit_daemon.service.components import ReloadTracker, build
from jetvit_daemon.service.notify import SystemdNotifier
from jetvit_daemon.workers import WorkerThread

MODES = [PowerMode(0, "15W", 612_000_000, 6), PowerMode(1, "25W", None, 6)]
GPU_TABLE = [306_000_000, 612_000_000, 918_000_000]

POLICY = {
    "version": 1,
    "interval_s": 0.05,
    "ladder": [
        {"name": "low", "mode": "15W", "gpu_cap_mhz": 306, "batch_size": 2},
        {"name": "top", "mode": "25W", "gpu_cap_mhz": "max", "batch_size": 2},
    ],
    "start_state": "top",
    "dwell": {"min_state_s": 60, "up_after_s": 1, "down_after_s": 60},
}


class FakePlatform(Platform):
    """Records start/stop (with the stop's timeout) into `events`; its telemetry thread is a real
    WorkerThread that dies when `kill_telemetry` is set and stops beating when `wedge_telemetry` is."""

    description = "fake board"

    def __init__(self, clock: ManualClock, events: List[str]) -> None:
        self.clock = clock
        self.events = events
        self.mode = MODES[1]
        self.cap_hz = GPU_TABLE[-1]
        self.stale = False
        self.stop_takes_s = 0.0
        self.stop_timeouts: List[Optional[float]] = []
        self.kill_telemetry = threading.Event()
        self.wedge_telemetry = threading.Event()
        self._worker = WorkerThread("fake-telemetry", self._telemetry_body)

    def _telemetry_body(self, worker: WorkerThread) -> None:
        while not worker.stop_event.wait(0.02):
            if self.kill_telemetry.is_set():
                raise RuntimeError("telemetry reader bug")
            if not self.wedge_telemetry.is_set():
                worker.beat()

    def start(self) -> None:
        self.events.append("platform.start")
        self._worker.start()

    def stop(self, restore: bool = True, timeout_s: Optional[float] = None) -> None:
        self._worker.stop(1.0)
        self.clock.advance(self.stop_takes_s)
        self.stop_timeouts.append(timeout_s)
        self.events.append(f"platform.stop restore={restore}")

    def workers(self) -> Sequence[WorkerThread]:
        return [self._worker]

    def latest_telemetry(self) -> Optional[TelemetrySample]:
        return TelemetrySample(t_mono_s=self.clock.monotonic(), temps_c={"tj": 50.0}, board_power_w=5.0)

    def telemetry_stale(self) -> bool:
        return self.stale

    def power_modes(self) -> Sequence[PowerMode]:
        return MODES

    def current_mode(self) -> PowerMode:
        return self.mode

    def set_mode(self, name: str) -> PowerMode:
        self.mode = next(m for m in MODES if m.name == name)
        return self.mode

    def gpu_freq_state(self) -> GpuFreqState:
        return GpuFreqState(available_hz=GPU_TABLE, min_hz=GPU_TABLE[0], max_hz=self.cap_hz)

    def set_gpu_cap_hz(self, cap_hz: Optional[int]) -> int:
        self.cap_hz = cap_hz or GPU_TABLE[-1]
        return self.cap_hz


class FakeRunner(Runner):
    """The bundled model's manifest, zero logits; `fail` makes every batch raise, `fail_warm_up` the warm-up,
    `close_takes_s` makes close() take that long on the manual clock."""

    def __init__(self, clock: ManualClock, events: List[str]) -> None:
        self.manifest = load_manifest(DEFAULT_MODEL)
        self.clock = clock
        self.events = events
        self.fail = False
        self.fail_warm_up = False
        self.close_takes_s = 0.0
        self.batches = 0

    def info(self) -> RunnerInfo:
        return RunnerInfo("fake", "CPU", str(DEFAULT_MODEL), self.manifest.input, ("logits",), 8)

    def warm_up(self, iterations: int = 3, batch_sizes: Sequence[int] = (1,)) -> None:
        self.events.append("runner.warm_up")
        if self.fail_warm_up:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def infer(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        self.batches += 1
        if self.fail:
            raise RuntimeError("engine execution failed")
        return {"logits": np.zeros((batch.shape[0], 10), dtype=np.float32)}

    def close(self) -> None:
        self.clock.advance(self.close_takes_s)
        self.events.append("runner.close")


class FakeCamera(FrameSource):
    """A frame every 10 ms of real time, stamped on the manual clock."""

    name = "fake0"

    def __init__(self, clock: ManualClock, events: List[str]) -> None:
        self.clock = clock
        self.events = events
        self._n = 0

    def open(self) -> None:
        self.events.append("source.open")

    def read(self, stop: threading.Event) -> Optional[Frame]:
        if stop.wait(0.01):
            return None
        self._n += 1
        return Frame(self._n, self.name, self.clock.monotonic(), np.zeros((48, 64, 3), dtype=np.uint8))

    def close(self) -> None:
        self.events.append("source.close")


class RecordingNotifier(SystemdNotifier):
    def __init__(self, watchdog_interval_s: Optional[float] = 0.05) -> None:
        super().__init__({})
        self.watchdog_interval_s = watchdog_interval_s
        self.messages: List[str] = []
        self._lock = threading.Lock()

    def notify(self, message: str) -> None:
        with self._lock:
            self.messages.append(message)

    def sent(self, prefix: str) -> List[str]:
        with self._lock:
            return [m for m in self.messages if m.startswith(prefix)]


class Harness:
    """A Service over fakes, its run() on a thread. `code` is its exit status once it returned."""

    def __init__(self, tmp: Path, policy: Optional[dict] = None, **config: object) -> None:
        self.tmp = tmp
        self.clock = ManualClock()
        self.events: List[str] = []
        self.policy_file = tmp / "policy.yaml"
        self.policy_file.write_text(yaml.safe_dump(policy or POLICY))
        cfg = {"state_dir": str(tmp / "state"), "policy_file": str(self.policy_file), "sources": [],
               "http": {"host": "127.0.0.1", "port": 0}, "status_interval_s": 0.2}
        cfg.update(config)
        self.config = DaemonConfig.model_validate(cfg)
        self.platform = FakePlatform(self.clock, self.events)
        self.runner = FakeRunner(self.clock, self.events)
        self.camera = FakeCamera(self.clock, self.events)
        self.notifier = RecordingNotifier()
        board = BoardAccess(SysfsTree(tmp / "noboard"), SubprocessRunner({}), "fake board")
        self.parts = build(self.config, board, self.clock, platform=self.platform, runner=self.runner,
                           sources=[self.camera], sinks=[], reloads=ReloadTracker(self.notifier))
        self.service = Service(self.parts, self.notifier, install_signals=False)
        self.code: Optional[int] = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.code = self.service.run()
        except BaseException as exc:
            self.error = exc

    def start(self) -> "Harness":
        self._thread.start()
        return self

    def wait(self, condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}; events {self.events}")
            time.sleep(0.01)

    def join(self, timeout_s: float = 20.0) -> Optional[int]:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the service did not return"
        if self.error is not None:
            raise self.error
        return self.code

    def stop(self) -> Optional[int]:
        self.service.signals.request_stop()
        return self.join()
