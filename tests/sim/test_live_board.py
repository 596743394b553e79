"""SimulatedBoard: the physics thread reads the control files, steps the physics and writes the sensors;
the board's state survives a restart; faults act on the files."""

import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.hardware.nvpmodel import Nvpmodel
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.sim.live import SimulatedBoard

MHZ = 1_000_000
DEVFREQ = "/sys/class/devfreq/17000000.gpu"
HWMON = "/sys/class/hwmon/hwmon1"
TJ = "/sys/class/thermal/thermal_zone8/temp"  # tj-thermal on Orin (README zone order)


@pytest.fixture
def boards() -> Iterator[List[SimulatedBoard]]:
    """Boards a test starts; all stopped at the end."""
    started: List[SimulatedBoard] = []
    yield started
    for b in started:
        b.stop()


def _wait_for(condition: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    done = threading.Event()
    while time.monotonic() < deadline:
        if condition():
            return True
        done.wait(0.01)
    return condition()


def _vdd_in_mw(tree: SysfsTree) -> int:
    return tree.read_int(HWMON + "/in1_input") * tree.read_int(HWMON + "/curr1_input") // 1000


def test_sensors_respond_to_load_and_devfreq_cap(tmp_path: Path, boards: List[SimulatedBoard],
                                                 fast_clock: Callable[[float], Any]) -> None:
    busy = [0.0]
    # 200× time: a second of test is ~3 minutes of board time, more than one thermal time constant.
    board = SimulatedBoard("orin-nano-super", tmp_path / "b", fast_clock(200.0), gpu_busy=lambda: busy[0],
                           tick_s=0.02)
    boards.append(board)
    board.start()
    tree = board.tree
    assert board.description == "simulated Jetson Orin Nano 8GB Super (JetPack 6.2)"
    idle_mw = _vdd_in_mw(tree)
    idle_tj = tree.read_int(TJ)
    assert 4600 < idle_mw < 5400  # sample 30 idle (4824 mW) plus the default 10 % CPU load

    tree.write_text(DEVFREQ + "/max_freq", "306000000")  # the daemon caps the GPU at the table floor
    busy[0] = 1.0
    assert _wait_for(lambda: tree.read_int(DEVFREQ + "/cur_freq") == 306 * MHZ)
    assert _wait_for(lambda: tree.read_int(DEVFREQ + "/device/load") == 1000)
    assert _wait_for(lambda: _vdd_in_mw(tree) > idle_mw + 2000)
    capped_mw = _vdd_in_mw(tree)
    assert board.snapshot().gpu_freq_hz == 306 * MHZ
    slow_s = board.inference_time_s(8)

    tree.write_text(DEVFREQ + "/max_freq", "918000000")  # back to the 25W mode's cap
    assert _wait_for(lambda: _vdd_in_mw(tree) > capped_mw + 5000)
    assert board.inference_time_s(8) < slow_s / 2.5
    assert _wait_for(lambda: tree.read_int(TJ) > idle_tj + 10_000, timeout_s=4.0)  # +10 °C, milli-°C
    state = board.snapshot()
    assert state.gpu_freq_hz == 918 * MHZ and not state.throttled
    assert board.error is None and board.alive


def test_restart_keeps_mode_devfreq_limits_and_temperature(tmp_path: Path, boards: List[SimulatedBoard],
                                                           fast_clock: Callable[[float], Any]) -> None:
    root = tmp_path / "b"
    first = SimulatedBoard("orin-nano-super", root, fast_clock(200.0), gpu_busy=lambda: 1.0, tick_s=0.02)
    boards.append(first)
    first.start()
    nv = Nvpmodel(SubprocessRunner(first.programs), first.tree)
    assert nv.set_mode("MAXN_SUPER").name == "MAXN_SUPER"
    first.tree.write_text(DEVFREQ + "/max_freq", "714000000")
    assert _wait_for(lambda: first.snapshot().gpu_freq_hz == 714 * MHZ)
    assert _wait_for(lambda: first.tree.read_int(TJ) > 45_000, timeout_s=4.0)
    first.stop()
    hot_tj = first.tree.read_int(TJ)

    second = SimulatedBoard("orin-nano-super", root, SystemClock(), tick_s=0.02)
    boards.append(second)
    second.start()
    assert second.tree.read_text("/var/lib/nvpmodel/status") == "pmode:0002"
    assert second.tree.read_int(DEVFREQ + "/max_freq") == 714 * MHZ
    assert Nvpmodel(SubprocessRunner(second.programs), second.tree).query().name == "MAXN_SUPER"
    assert abs(second.tree.read_int(TJ) - hot_tj) < 500  # no cool-down across a restart
    second.stop()

    with pytest.raises(ConfigError, match="holds a simulated orin-nano-super board"):
        SimulatedBoard("nano", root, SystemClock()).start()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a board")
    with pytest.raises(ConfigError, match="not empty"):
        SimulatedBoard("nano", other, SystemClock()).start()


def test_devfreq_writes_are_rounded_and_can_be_rejected(tmp_path: Path, boards: List[SimulatedBoard]) -> None:
    board = SimulatedBoard("orin-nano-super", tmp_path / "b", SystemClock(), tick_s=0.01)
    boards.append(board)
    board.start()
    tree = board.tree
    tree.write_text(DEVFREQ + "/max_freq", "500000000")  # not in available_frequencies
    assert _wait_for(lambda: tree.read_int(DEVFREQ + "/max_freq") == 408 * MHZ)  # silently rounded down
    board.set_faults(devfreq_reject=True)
    tree.write_text(DEVFREQ + "/max_freq", "612000000")
    assert _wait_for(lambda: tree.read_int(DEVFREQ + "/max_freq") == 408 * MHZ)  # reverted by the "kernel"
    assert board.snapshot().gpu_freq_hz == 408 * MHZ
    board.set_faults()
    tree.write_text(DEVFREQ + "/max_freq", "612000000")
    assert _wait_for(lambda: board.snapshot().gpu_freq_hz == 612 * MHZ)
    assert tree.read_int(DEVFREQ + "/max_freq") == 612 * MHZ


def test_sensor_faults(tmp_path: Path, boards: List[SimulatedBoard]) -> None:
    board = SimulatedBoard("orin-nano-super", tmp_path / "b", SystemClock(), tick_s=0.01)
    boards.append(board)
    board.start()
    tree = board.tree
    gpu_temp = "/sys/class/thermal/thermal_zone1/temp"  # gpu-thermal
    soc_curr = HWMON + "/curr3_input"  # VDD_SOC
    board.set_faults(sensor_off=["gpu-thermal"], sensor_missing=["VDD_SOC"])
    assert _wait_for(lambda: tree.read_int(gpu_temp) == -256000)
    assert _wait_for(lambda: not tree.exists(soc_curr))
    board.set_faults()
    assert _wait_for(lambda: tree.exists(soc_curr) and tree.read_int(gpu_temp) > 20_000)
    with pytest.raises(ConfigError, match="unknown fault"):
        board.set_faults(fan="stuck")
    with pytest.raises(ConfigError, match="tegrastats"):
        board.set_faults(tegrastats="explode")


def test_thermal_runaway_heats_the_board_until_it_throttles(tmp_path: Path, boards: List[SimulatedBoard],
                                                            fast_clock: Callable[[float], Any]) -> None:
    board = SimulatedBoard("orin-nano-super", tmp_path / "b", fast_clock(1000.0), cooling="passive",
                           gpu_busy=lambda: 1.0, tick_s=0.02)
    boards.append(board)
    board.start()
    board.set_faults(thermal_runaway=True)
    assert _wait_for(lambda: board.snapshot().throttled, timeout_s=5.0)
    state = board.snapshot()
    assert state.tj_c >= 99.0 and state.gpu_freq_hz == 612 * MHZ
    assert board.tree.read_int(DEVFREQ + "/cur_freq") <= 612 * MHZ


def test_a_dying_physics_thread_is_reported(tmp_path: Path, boards: List[SimulatedBoard],
                                            caplog: pytest.LogCaptureFixture) -> None:
    failing = [False]

    def busy() -> float:
        if failing[0]:
            raise RuntimeError("inference stats unavailable")
        return 0.5

    failing[0] = True
    first = SimulatedBoard("nano", tmp_path / "b", SystemClock(), gpu_busy=busy, tick_s=0.005)
    with pytest.raises(RuntimeError):
        first.start()  # the first tick runs inside start(): a broken input surfaces right away
    assert not first.alive

    failing[0] = False
    board = SimulatedBoard("nano", tmp_path / "b", SystemClock(), gpu_busy=busy, tick_s=0.005)
    boards.append(board)
    board.start()
    with caplog.at_level("ERROR", logger="jetvit_daemon.sim.live"):
        failing[0] = True
        assert _wait_for(lambda: board.error is not None, timeout_s=3.0)
        assert _wait_for(lambda: not board.alive)
    assert isinstance(board.error, RuntimeError)
    assert board.tick_errors >= 20  # single bad ticks are tolerated; a run of them kills the thread
    assert any(r.exc_info for r in caplog.records)  # logged with the traceback
    assert "thread died" in caplog.text


def test_programs_point_at_the_emulators(tmp_path: Path) -> None:
    board = SimulatedBoard("nano", tmp_path / "b", SystemClock())
    assert board.programs["nvpmodel"][:3] == [sys.executable, "-m", "jetvit_daemon.sim.emulators"]
    assert board.programs["tegrastats"][-2:] == ["--root", str(tmp_path / "b")]
    with pytest.raises(ConfigError, match="cooling"):
        SimulatedBoard("nano", tmp_path / "c", SystemClock(), cooling="liquid")
