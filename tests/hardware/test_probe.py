import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import boardtrees
from boardtrees import SPECS, FakeBoardRunner, result

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.hardware.commands import CommandResult
from jetvit_daemon.hardware.probe import (
    JTOP_CONFIG,
    acquire_instance_lock,
    detect_board,
    detect_conflicts,
    parse_l4t_release,
    system_is_stopping,
)
from jetvit_daemon.hardware.sysfs import SysfsTree

EXPECTED_BOARDS = {
    "nano-jp4": ("NVIDIA Jetson Nano Developer Kit", "t210", "32.7.1", "4.6.1"),
    "xavier-nx-jp5": ("NVIDIA Jetson Xavier NX Developer Kit", "t194", "35.4.1", "5.1.2"),
    "orin-nano-jp6": ("NVIDIA Jetson Orin Nano Developer Kit", "t234", "36.4.3", "6.2"),
    "thor": ("NVIDIA Jetson AGX Thor Developer Kit", "t264", "38.4.0", "7.1"),
}


def test_detect_board_on_every_fixture(any_board: Tuple[str, Path]) -> None:
    name, root = any_board
    info = detect_board(SysfsTree(root))
    assert info is not None
    assert (info.model, info.soc, info.l4t_release, info.jetpack) == EXPECTED_BOARDS[name]
    assert info.compatible == SPECS[name].compatible  # NUL-separated list, trailing NUL dropped


def test_not_a_jetson(tmp_path: Path) -> None:
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/compatible").write_text("raspberrypi,4-model-b\x00brcm,bcm2711\x00")
    assert detect_board(SysfsTree(tmp_path)) is None
    assert detect_board(SysfsTree(tmp_path / "nothing")) is None


def test_release_file_alone_is_enough(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R35 (release), REVISION: 1.0, GCID: 31250864, BOARD: t186ref\n")
    info = detect_board(SysfsTree(tmp_path))
    assert info is not None
    assert (info.model, info.soc, info.l4t_release, info.jetpack) == ("unknown Jetson", None, "35.1.0", "5.0.2")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: x", "36.4.3"),
        ("# R32 (release), REVISION: 4.3, GCID: 21589087, BOARD: t210ref, EABI: aarch64", "32.4.3"),
        ("# R39 (release), REVISION: 2, GCID: 1", "39.2.0"),
        ("not a release line", None),
    ],
)
def test_parse_l4t_release(text: str, expected: Optional[str]) -> None:
    assert parse_l4t_release(text) == expected


def test_no_conflicts_on_a_clean_board(tmp_path: Path) -> None:
    root = boardtrees.make_tree(tmp_path, "orin-nano-jp6")
    assert detect_conflicts(SysfsTree(root), FakeBoardRunner(root)) == []


def test_jetson_clocks_pinned_gpu_is_a_gpu_freq_conflict(tmp_path: Path) -> None:
    root = boardtrees.make_tree(tmp_path, "orin-nano-jp6")
    tree = SysfsTree(root)
    tree.write_text(SPECS["orin-nano-jp6"].devfreq_dir + "/min_freq", "624750000")
    (conflict,) = detect_conflicts(tree, FakeBoardRunner(root))
    assert (conflict.source, conflict.knobs) == ("jetson_clocks", ("gpu_freq",))
    assert "min_freq = max_freq = 624750000 Hz" in conflict.message


def test_jtop_service_and_nvfancontrol(tmp_path: Path) -> None:
    root = boardtrees.make_tree(tmp_path, "xavier-nx-jp5", processes=("systemd", "nvfancontrol", "sshd"))
    runner = FakeBoardRunner(root)
    runner.systemctl["is-active jtop.service"] = "active"
    conflicts = {c.source: c for c in detect_conflicts(SysfsTree(root), runner)}
    assert set(conflicts) == {"jtop.service", "nvfancontrol"}
    assert conflicts["jtop.service"].knobs == ()  # a telemetry server with nothing configured at boot
    assert "telemetry server" in conflicts["jtop.service"].message
    assert conflicts["nvfancontrol"].knobs == ("fan",)
    assert ["systemctl", "is-active", "jtop.service"] in runner.calls


def test_jtop_configured_to_run_jetson_clocks_at_boot_is_a_gpu_freq_conflict(tmp_path: Path) -> None:
    root = boardtrees.make_tree(tmp_path, "xavier-nx-jp5")
    tree = SysfsTree(root)
    (root / JTOP_CONFIG.lstrip("/")).parent.mkdir(parents=True)
    tree.write_text(JTOP_CONFIG, json.dumps({"jetson_clocks": {"boot": True}, "fan": {"pwmfan": {"profile": "quiet"}}}))
    runner = FakeBoardRunner(root)
    runner.systemctl["is-active jtop.service"] = "active"
    (conflict,) = detect_conflicts(tree, runner)
    assert conflict.knobs == ("gpu_freq", "fan")
    assert "jetson_clocks at boot" in conflict.message and JTOP_CONFIG in conflict.message


def test_an_unreadable_jtop_config_counts_as_no_boot_settings(tmp_path: Path) -> None:
    root = boardtrees.make_tree(tmp_path, "xavier-nx-jp5")
    tree = SysfsTree(root)
    (root / JTOP_CONFIG.lstrip("/")).parent.mkdir(parents=True)
    tree.write_text(JTOP_CONFIG, "{not json")
    runner = FakeBoardRunner(root)
    runner.systemctl["is-active jtop.service"] = "active"
    (conflict,) = detect_conflicts(tree, runner)
    assert conflict.knobs == ()


class NoSystemctl(FakeBoardRunner):
    def run(self, argv: Sequence[str], timeout_s: float) -> CommandResult:
        if argv[0] == "systemctl":
            return result(argv, "", 127)  # what SubprocessRunner returns when the program is missing
        return super().run(argv, timeout_s)


def test_missing_systemctl_is_no_conflict_and_not_stopping(tmp_path: Path) -> None:
    root = boardtrees.make_tree(tmp_path, "nano-jp4")
    runner = NoSystemctl(root)
    assert detect_conflicts(SysfsTree(root), runner) == []
    assert system_is_stopping(runner) is False


@pytest.mark.parametrize("state,stopping", [("stopping", True), ("running", False), ("degraded", False)])
def test_system_is_stopping(tmp_path: Path, state: str, stopping: bool) -> None:
    runner = FakeBoardRunner(tmp_path)
    runner.systemctl["is-system-running"] = state
    assert system_is_stopping(runner) is stopping
    assert runner.calls == [["systemctl", "is-system-running"]]


def test_instance_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = acquire_instance_lock(state)
    assert (state / "jetvit-daemon.lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(ConfigError, match=rf"another jetvit-daemon \(pid {os.getpid()}\) holds {state}"):
        acquire_instance_lock(state)
    first.release()
    first.release()  # idempotent
    with acquire_instance_lock(state) as again:
        assert again.fd is not None
    assert again.fd is None
