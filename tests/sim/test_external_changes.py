"""On the simulated board, a person changes the power mode (the board's own `nvpmodel -m`) and the GPU cap (a
direct write to devfreq's max_freq) while the daemon's governor runs: each change is logged, counted in
`jetvit_governor_external_changes_total{knob=...}` and handled as `hardware.on_conflict` says (issue 14)."""

import logging
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import pytest

from jetvit_daemon.clock import ManualClock, SystemClock
from jetvit_daemon.governor.decide import PipelineView
from jetvit_daemon.governor.loop import VERIFY_EVERY_TICKS, Governor
from jetvit_daemon.governor.policy import parse_policy
from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.hardware.jetson import MODE_CACHE_S, JetsonPlatform
from jetvit_daemon.service.metrics import Metrics
from jetvit_daemon.sim.live import SimulatedBoard

MHZ = 1_000_000
DEVFREQ = "/sys/class/devfreq/17000000.gpu"
# One state, so the governor never moves on its own: whatever changes on the board came from outside.
POLICY = parse_policy("version: 1\ninterval_s: 1\nladder:\n  - {name: only, mode: 15W, gpu_cap_mhz: 612, "
                      "batch_size: 4}\n", "test")
CALM = PipelineView(arrival_fps=30, processed_fps=30, dropped_fps=0, queue_depth=0, latency_p95_s=0.05,
                    batch_size=4)


class FreshTelemetry:
    """Telemetry always fresh and cool: the governor's rules stay quiet (this test is about actuation)."""

    name = "stub"

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def start(self) -> None: ...

    def stop(self, timeout_s: float = 2.0) -> None: ...

    def begin_stop(self) -> None: ...

    def latest(self) -> Optional[TelemetrySample]:
        return TelemetrySample(t_mono_s=self.clock.monotonic(), temps_c={"tj": 50.0}, board_power_w=8.0)

    def is_stale(self) -> bool:
        return False

    def workers(self) -> list:
        return []


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        if condition():
            return True
        pause.wait(0.02)
    return condition()


class Run:
    """The simulated board, the daemon's platform and governor on it, and the metrics they report to."""

    def __init__(self, tmp_path: Path, on_conflict: str) -> None:
        self.board = SimulatedBoard("orin-nano-super", tmp_path / "board", SystemClock(), tick_s=0.02)
        self.board.start()
        self.clock = ManualClock()
        self.metrics = Metrics()
        self.platform = JetsonPlatform(self.board.tree, SubprocessRunner(self.board.programs), self.clock,
                                       tmp_path / "state", FreshTelemetry(self.clock), on_conflict=on_conflict)
        self.platform.start()
        self.governor = Governor(self.platform, POLICY, lambda: CALM, lambda n, wait: n, self.clock,
                                 events=self.metrics, backoff_initial_s=2, backoff_max_s=16,
                                 on_conflict=on_conflict)

    def reads(self) -> Tuple[str, int]:
        mode_id = int(self.board.tree.read_text("/var/lib/nvpmodel/status").split(":")[1])
        return {0: "15W", 1: "25W", 2: "MAXN_SUPER"}[mode_id], self.board.tree.read_int(DEVFREQ + "/max_freq")

    def ticks(self, n: int) -> None:
        for _ in range(n):
            self.clock.advance(1.0)
            self.governor.tick()

    def past_a_check(self) -> None:
        """Long enough for the platform's mode cache to expire and for a read-back check to run."""
        self.ticks(int(MODE_CACHE_S) + VERIFY_EVERY_TICKS)

    def person_runs_nvpmodel(self, mode_id: int) -> None:
        subprocess.run([*self.board.programs["nvpmodel"], "-m", str(mode_id)], check=True, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)

    def person_writes_max_freq(self, hz: int) -> None:
        self.board.tree.write_text(DEVFREQ + "/max_freq", str(hz))
        assert _wait_for(lambda: self.board.tree.read_int(DEVFREQ + "/max_freq") == hz)

    def counted(self, knob: str) -> float:
        value = self.metrics.registry.get_sample_value("jetvit_governor_external_changes_total", {"knob": knob})
        assert value is not None
        return value

    def stop(self) -> None:
        try:
            self.platform.stop()
        finally:
            self.board.stop()


@pytest.fixture
def runs() -> Iterator[List[Run]]:
    started: List[Run] = []
    yield started
    for run in started:
        run.stop()


def test_refuse_reapplies_a_cap_and_a_mode_changed_from_outside(tmp_path: Path, runs: List[Run],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    run = Run(tmp_path, "refuse")
    runs.append(run)
    run.ticks(1)
    assert run.reads() == ("15W", 612 * MHZ)

    caplog.set_level(logging.WARNING, logger="jetvit_daemon.governor.loop")
    run.person_writes_max_freq(408 * MHZ)
    run.past_a_check()
    assert run.counted("gpu_cap") == 1 and run.counted("power_mode") == 0
    assert "changed behind the governor" in caplog.text and "re-applying" in caplog.text
    run.ticks(3)  # the first re-apply waits 2 s
    assert run.reads() == ("15W", 612 * MHZ)

    run.person_runs_nvpmodel(1)  # 25W: nvpmodel also rewrites the GPU limits (to 25W's 918 MHz)
    assert run.reads() == ("25W", 918 * MHZ)
    run.past_a_check()
    assert run.counted("power_mode") == 1
    run.ticks(3)
    assert run.reads() == ("15W", 612 * MHZ)
    assert run.governor.status()["left_alone"] == {}


def test_leave_alone_stops_writing_the_knob_someone_else_changed(tmp_path: Path, runs: List[Run],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    run = Run(tmp_path, "leave_alone")
    runs.append(run)
    run.ticks(1)
    assert run.reads() == ("15W", 612 * MHZ)

    caplog.set_level(logging.WARNING, logger="jetvit_daemon.governor.loop")
    run.person_writes_max_freq(408 * MHZ)
    run.past_a_check()
    assert run.counted("gpu_cap") == 1
    assert "leaving gpu_cap alone" in caplog.text
    run.ticks(30)
    assert run.reads() == ("15W", 408 * MHZ)  # the person's cap stays
    assert run.counted("gpu_cap") == 1  # counted once, not at every check
    status = run.governor.status()
    assert list(status["left_alone"]) == ["gpu_cap"] and status["gpu_cap_hz"] == 408 * MHZ

    run.person_runs_nvpmodel(2)  # MAXN_SUPER
    run.past_a_check()
    assert run.counted("power_mode") == 1
    run.ticks(30)
    assert run.reads()[0] == "MAXN_SUPER"
    status = run.governor.status()
    assert sorted(status["left_alone"]) == ["gpu_cap", "power_mode"] and status["mode"] == "MAXN_SUPER"
    assert status["actuation_failures"] == 0
