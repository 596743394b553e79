"""Faults injected into the simulated board reach the daemon's real hardware code the way a board's do."""

import threading

import pytest

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.errors import ActuationError
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.hardware.nvpmodel import Nvpmodel
from jetvit_daemon.hardware.tegrastats import TegrastatsReader
from jetvit_daemon.sim.live import SimulatedBoard


@pytest.fixture
def board(tmp_path):
    sim = SimulatedBoard("orin-nano-super", tmp_path / "board", SystemClock(), tick_s=0.05)
    sim.start()
    yield sim
    sim.stop()


def wait_until(predicate, timeout_s=15.0):
    ev = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        if predicate():
            return True
        ev.wait(0.05)
    return predicate()


@pytest.mark.parametrize("fault", ["exit", "garbage", "hang"])
def test_tegrastats_faults_make_the_reader_report_stale_restart_and_recover(board, fault):
    events = []
    reader = TegrastatsReader(SubprocessRunner(board.programs), SystemClock(), interval_s=0.1,
                              backoff_initial_s=0.1, backoff_max_s=0.2,
                              on_event=lambda kind, msg: events.append(kind))
    reader.start()
    try:
        assert wait_until(lambda: reader.latest() is not None), "no reading from the emulator"
        board.set_faults(tegrastats=fault)
        assert wait_until(lambda: reader.restarts >= 1 and reader.is_stale())
        assert "restart" in events
        board.set_faults()
        assert wait_until(lambda: not reader.is_stale()), "readings did not resume after the fault cleared"
        assert reader.latest().board_power_w > 0
    finally:
        reader.stop()


def test_nvpmodel_failure_and_hang_are_typed_failures_with_the_mode_unchanged(board):
    nvp = Nvpmodel(SubprocessRunner(board.programs), board.tree, timeout_s=2.0)
    board.set_faults(nvpmodel="fail")
    with pytest.raises(ActuationError, match="NVPM ERROR"):
        nvp.set_mode("15W")
    board.set_faults(nvpmodel="hang")
    with pytest.raises(ActuationError, match=r"timed out|timeout"):
        nvp.set_mode("15W")
    board.set_faults()
    assert nvp.query().name == "25W"
