"""TegrastatsReader against real child processes that behave like tegrastats (good, exiting, stalling,
printing garbage), started through the real SubprocessRunner."""

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List, Tuple

import pytest

from jetvit_daemon.clock import ManualClock, SystemClock
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.hardware.tegrastats import TegrastatsReader

# Orin Nano, JetPack 6 (jetson-reference/tegrastats/samples.txt line 29).
GOOD_LINE = (
    "11-15-2024 08:38:09 RAM 6185/7620MB (lfb 8x2MB) SWAP 851/3810MB (cached 1MB) "
    "CPU [15%@729,11%@729,14%@729,13%@729,11%@729,8%@729] EMC_FREQ 43%@2133 GR3D_FREQ 63%@[621] "
    "NVDEC off APE 200 cpu@53.968C soc2@52.437C gpu@53.343C tj@53.968C "
    "VDD_IN 12479mW/12479mW VDD_CPU_GPU_CV 4667mW/4667mW VDD_SOC 2817mW/2817mW"
)

# A stand-in for tegrastats: behaviour chosen by argv[1]; records its pid and arguments in argv[2].
CHILD = r"""
import os, sys, time
mode, state = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
interval_s = int(args[args.index("--interval") + 1]) / 1000.0
with open(os.path.join(state, "pids"), "a") as f:
    f.write("%d\n" % os.getpid())
with open(os.path.join(state, "argv"), "w") as f:
    f.write(" ".join(args))
def out(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
n = 0
while True:
    if mode == "good":
        out(LINE)
    elif mode == "exit_after_2":
        out(LINE)
        n += 1
        if n >= 2:
            sys.exit(3)
    elif mode == "stall":
        if n == 0:
            out(LINE)
        n += 1
    elif mode == "garbage":
        out("this is not tegrastats %d" % n)
        n += 1
    elif mode == "blank_then_good":
        out("")
        out(LINE)
    time.sleep(interval_s)
"""

INTERVAL_S = 0.05


class Events:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: List[Tuple[str, str]] = []

    def __call__(self, kind: str, message: str) -> None:
        with self._lock:
            self.items.append((kind, message))

    def kinds(self) -> List[str]:
        with self._lock:
            return [k for k, _ in self.items]


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def runner_for(mode: str, state: Path) -> SubprocessRunner:
    script = CHILD.replace("LINE", repr(GOOD_LINE))
    return SubprocessRunner(programs={"tegrastats": [sys.executable, "-c", script, mode, str(state)]})


def child_pids(state: Path) -> List[int]:
    path = state / "pids"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def assert_all_dead(pids: List[int]) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def make_reader(mode: str, state: Path, events: Events, **kw) -> TegrastatsReader:
    kw.setdefault("clock", SystemClock())
    kw.setdefault("backoff_initial_s", 0.05)
    kw.setdefault("backoff_max_s", 0.2)
    return TegrastatsReader(runner_for(mode, state), interval_s=INTERVAL_S, on_event=events, **kw)


def test_readings_arrive_with_real_values(tmp_path):
    events = Events()
    reader = make_reader("good", tmp_path, events)
    assert reader.is_stale()  # nothing read yet, not started
    reader.start()
    try:
        assert wait_for(lambda: reader.latest() is not None)
        sample = reader.latest()
        assert sample is not None
        assert sample.board_power_w == pytest.approx(12.479)
        assert sample.gpu_freq_hz == 621e6 and sample.gpu_load_pct == 63
        assert sample.temp_c("tj") == pytest.approx(53.968)
        assert not reader.is_stale()
        # tegrastats --interval is in milliseconds.
        assert (tmp_path / "argv").read_text() == "--interval 50"
        assert wait_for(lambda: reader.lines_read >= 3)
        assert reader.restarts == 0 and reader.parse_errors == 0
    finally:
        reader.stop()
    assert_all_dead(child_pids(tmp_path))


def test_child_exit_is_restarted_and_readings_resume(tmp_path):
    events = Events()
    reader = make_reader("exit_after_2", tmp_path, events)
    reader.start()
    try:
        assert wait_for(lambda: reader.restarts >= 2)
        first = reader.latest()
        assert first is not None
        assert wait_for(lambda: (reader.latest() or first).t_mono_s > first.t_mono_s)
        assert len(child_pids(tmp_path)) >= 3
        assert "restart" in events.kinds()
        assert any("exited (code 3)" in m for k, m in events.items if k == "restart")
    finally:
        reader.stop()
    assert_all_dead(child_pids(tmp_path))


def test_stalled_child_is_reported_stale_killed_and_restarted(tmp_path):
    events = Events()
    reader = make_reader("stall", tmp_path, events, startup_grace_s=0.5)
    reader.start()
    try:
        assert wait_for(lambda: reader.restarts >= 1)
        assert "telemetry_stale" in events.kinds()
        assert any("stalled" in m for k, m in events.items if k == "restart")
        pids = child_pids(tmp_path)
        assert wait_for(lambda: len(child_pids(tmp_path)) >= 2)
        # The stalled first child was killed before the next one started.
        assert_all_dead(pids[:1])
        assert reader.is_stale() or reader.latest() is not None
    finally:
        reader.stop()
    assert_all_dead(child_pids(tmp_path))


def test_garbage_lines_are_counted_and_the_child_restarted(tmp_path):
    events = Events()
    reader = make_reader("garbage", tmp_path, events)
    reader.start()
    try:
        assert wait_for(lambda: reader.restarts >= 1 and reader.parse_errors >= 3)
        assert reader.latest() is None
        assert events.kinds().count("parse_error") >= 3
        assert any("unparseable" in m for k, m in events.items if k == "restart")
        message = next(m for k, m in events.items if k == "parse_error")
        assert "not a tegrastats line" in message and "this is not tegrastats" in message
    finally:
        reader.stop()
    assert_all_dead(child_pids(tmp_path))


def test_blank_lines_are_neither_good_nor_garbage(tmp_path):
    events = Events()
    reader = make_reader("blank_then_good", tmp_path, events)
    reader.start()
    try:
        assert wait_for(lambda: reader.lines_read >= 6)
        assert reader.latest() is not None
        assert reader.parse_errors == 0 and reader.restarts == 0
    finally:
        reader.stop()


def test_stop_is_prompt_and_kills_the_child(tmp_path):
    events = Events()
    reader = make_reader("good", tmp_path, events)
    reader.start()
    assert wait_for(lambda: reader.latest() is not None)
    start = time.monotonic()
    reader.stop(timeout_s=2.0)
    assert time.monotonic() - start < 1.0
    assert_all_dead(child_pids(tmp_path))
    assert not any(t.name == "tegrastats-reader" for t in threading.enumerate())


def test_missing_program_backs_off_and_keeps_trying(tmp_path):
    events = Events()
    runner = SubprocessRunner(programs={"tegrastats": [str(tmp_path / "no-such-tegrastats")]})
    reader = TegrastatsReader(
        runner, SystemClock(), interval_s=INTERVAL_S, backoff_initial_s=0.02, backoff_max_s=0.05, on_event=events
    )
    reader.start()
    try:
        assert wait_for(lambda: reader.restarts >= 3)
        assert "spawn_failed" in events.kinds()
        assert wait_for(lambda: "telemetry_stale" in events.kinds())
        assert reader.latest() is None and reader.is_stale()
    finally:
        start = time.monotonic()
        reader.stop()
        assert time.monotonic() - start < 1.0


def test_staleness_follows_the_injected_clock(tmp_path):
    clock = ManualClock()
    events = Events()
    reader = make_reader("good", tmp_path, events, clock=clock)
    reader.start()
    try:
        assert not reader.is_stale()  # just started: 3 intervals of grace
        assert wait_for(lambda: reader.latest() is not None)
    finally:
        reader.stop()  # no more readings: only the clock moves from here
    assert not reader.is_stale()
    clock.advance(3 * INTERVAL_S - 0.01)
    assert not reader.is_stale()
    clock.advance(0.02)
    assert reader.is_stale()


def test_a_raising_event_callback_does_not_kill_the_reader(tmp_path):
    def bad_callback(kind: str, message: str) -> None:
        raise RuntimeError("callback bug")

    reader = TegrastatsReader(
        runner_for("garbage", tmp_path),
        SystemClock(),
        interval_s=INTERVAL_S,
        backoff_initial_s=0.05,
        backoff_max_s=0.1,
        on_event=bad_callback,
    )
    reader.start()
    try:
        assert wait_for(lambda: reader.restarts >= 1)
        assert reader.failure is None
    finally:
        reader.stop()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        TegrastatsReader(SubprocessRunner(), SystemClock(), interval_s=0)
    with pytest.raises(ValueError):
        TegrastatsReader(SubprocessRunner(), SystemClock(), backoff_initial_s=5, backoff_max_s=1)


def test_a_child_ended_by_the_service_stop_is_neither_restarted_nor_reported(tmp_path):
    """Regression: under systemd, SIGTERM to the whole cgroup ended tegrastats with the daemon, and the reader
    logged a telemetry restart (and started a new child) while the daemon was stopping."""
    events = Events()
    reader = make_reader("good", tmp_path, events, backoff_initial_s=1.0, backoff_max_s=2.0)
    reader.start()
    try:
        assert wait_for(lambda: reader.latest() is not None and len(child_pids(tmp_path)) == 1)
        os.kill(child_pids(tmp_path)[0], signal.SIGTERM)  # the cgroup's SIGTERM reaches the child first
        time.sleep(0.2)  # the daemon's main loop notices its own SIGTERM within 0.2 s …
        reader.begin_stop()  # … and its stop begins
        time.sleep(1.5)  # past the first backoff: a restart would have happened by now
        assert len(child_pids(tmp_path)) == 1
        assert "restart" not in events.kinds() and reader.restarts == 0
    finally:
        reader.stop()
    assert_all_dead(child_pids(tmp_path))


def test_a_child_killed_by_a_signal_is_named_in_the_restart_event(tmp_path):
    events = Events()
    reader = make_reader("good", tmp_path, events)
    reader.start()
    try:
        assert wait_for(lambda: len(child_pids(tmp_path)) == 1)
        os.kill(child_pids(tmp_path)[0], signal.SIGTERM)
        assert wait_for(lambda: "restart" in events.kinds())
        assert any("was killed by SIGTERM" in m for k, m in events.items if k == "restart")
    finally:
        reader.stop()
    assert_all_dead(child_pids(tmp_path))
