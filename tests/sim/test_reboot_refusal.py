"""On the simulated Orin Nano (JetPack 6.0 modes) a switch that needs a reboot is refused exactly as on a board:
JetsonPlatform refuses it before calling nvpmodel, and nvpmodel itself (the emulator) prompts and fails with
stdin closed, leaving the mode unchanged."""

import subprocess

import pytest

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.errors import RebootRequiredError
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.hardware.jetson import JetsonPlatform
from jetvit_daemon.hardware.tegrastats import TegrastatsReader
from jetvit_daemon.sim.live import SimulatedBoard


@pytest.fixture
def board(tmp_path):
    sim = SimulatedBoard("orin-nano", tmp_path / "board", SystemClock(), tick_s=0.1)
    sim.start()
    yield sim
    sim.stop()


def test_platform_refuses_a_reboot_needing_switch_and_never_calls_nvpmodel(board, tmp_path):
    runner = SubprocessRunner(board.programs)
    platform = JetsonPlatform(board.tree, runner, SystemClock(), tmp_path / "state",
                              TegrastatsReader(runner, SystemClock(), interval_s=0.5))
    platform.start()
    try:
        assert platform.current_mode().name == "15W"
        with pytest.raises(RebootRequiredError, match=r"15W → 7W needs a reboot: TPC_PG_MASK 240 ≠ 252"):
            platform.set_mode("7W")
        assert board.tree.read_text("/var/lib/nvpmodel/status") == "pmode:0000"
        assert not (tmp_path / "state" / "baseline.json").exists()  # nothing was written, nothing to restore
    finally:
        platform.stop()


def test_the_emulated_nvpmodel_prompts_and_fails_with_stdin_closed(board):
    proc = subprocess.run([*board.programs["nvpmodel"], "-m", "1"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "NVPM WARN: Reboot required for changing to this power mode: 1" in proc.stdout
    assert proc.stdout.endswith("DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:")  # no newline: a prompt
    assert "NVPM ERROR" in proc.stdout + proc.stderr
    assert board.tree.read_text("/var/lib/nvpmodel/status") == "pmode:0000"
