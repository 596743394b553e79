import errno
import shutil
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import boardtrees
from boardtrees import NANO_HZ, SPECS, RecordingTree

from jetvit_daemon.errors import ActuationError
from jetvit_daemon.hardware.devfreq import GpuDevfreq, find_gpu_devfreq
from jetvit_daemon.hardware.sysfs import SysfsTree

NANO_DIR = SPECS["nano-jp4"].devfreq_dir
MHZ = 1_000_000


def test_discovery_on_every_fixture_board(any_board: Tuple[str, Path]) -> None:
    name, root = any_board
    assert find_gpu_devfreq(SysfsTree(root)) == SPECS[name].devfreq_dir


def test_thor_prefers_the_gpc_node_over_nvd(tmp_path: Path) -> None:
    root = boardtrees.make_tree(tmp_path, "thor")
    tree = SysfsTree(root)
    # Both nodes belong to the same gb10b GPU device; only the GPC one carries the graphics clock.
    assert tree.read_text("/sys/class/devfreq/gpu-nvd-0/device/of_node/name").rstrip("\x00") == "gb10b"
    assert find_gpu_devfreq(tree) == "/sys/devices/platform/gpu/devfreq/gpu-gpc-0"


def test_discovery_without_of_node_uses_the_node_name(tmp_path: Path) -> None:
    root = boardtrees.make_tree(tmp_path, "orin-nano-jp6")
    (root / "sys/devices/platform/bus@0/17000000.gpu/of_node").unlink()
    assert find_gpu_devfreq(SysfsTree(root)) == SPECS["orin-nano-jp6"].devfreq_dir


def test_discovery_falls_back_to_known_paths(tmp_path: Path) -> None:
    root = boardtrees.make_tree(tmp_path, "xavier-nx-jp5")
    shutil.rmtree(root / "sys/class/devfreq")
    assert find_gpu_devfreq(SysfsTree(root)) == "/sys/devices/17000000.gv11b/devfreq/17000000.gv11b"
    nano = boardtrees.make_tree(tmp_path, "nano-jp4")
    shutil.rmtree(nano / "sys/class/devfreq")
    # Through the nvpmodel.conf path (/sys/devices/gpu.0/...) or the real one, it is one node.
    assert find_gpu_devfreq(SysfsTree(nano)) == NANO_DIR


def test_other_devfreq_nodes_are_not_the_gpu(tmp_path: Path) -> None:
    root = tmp_path / "board"
    (root / "sys/devices/platform/13e40000.host1x/15340000.vic/devfreq/15340000.vic/device").mkdir(parents=True)
    node = root / "sys/devices/platform/13e40000.host1x/15340000.vic"
    (node / "of_node").mkdir()
    (node / "of_node/name").write_text("vic\x00")
    (root / "sys/class/devfreq").mkdir(parents=True)
    (root / "sys/class/devfreq/15340000.vic").symlink_to("../../devices/platform/13e40000.host1x/15340000.vic")
    assert find_gpu_devfreq(SysfsTree(root)) is None


def nano(tmp_path: Path, min_hz: int = NANO_HZ[0], max_hz: int = NANO_HZ[-1]) -> Tuple[GpuDevfreq, RecordingTree]:
    root = boardtrees.make_tree(tmp_path, "nano-jp4")
    tree = RecordingTree(root)
    tree.write_text(NANO_DIR + "/min_freq", str(min_hz))
    tree.write_text(NANO_DIR + "/max_freq", str(max_hz))
    tree.writes.clear()
    return GpuDevfreq(tree, NANO_DIR), tree


def writes(tree: RecordingTree) -> List[Tuple[str, int]]:
    return [(path.rsplit("/", 1)[1], int(value)) for path, value in tree.writes]


def assert_min_le_max_throughout(start: Tuple[int, int], steps: List[Tuple[str, int]]) -> None:
    lo, hi = start
    for name, value in steps:
        lo, hi = (value, hi) if name == "min_freq" else (lo, value)
        assert lo <= hi, f"min {lo} > max {hi} after writing {name}"


def test_state_reads_the_nano_table(tmp_path: Path) -> None:
    gpu, _ = nano(tmp_path)
    st = gpu.state()
    assert list(st.available_hz) == [76_800_000 * k for k in range(1, 13)]
    assert (st.min_hz, st.max_hz, st.cur_hz) == (76_800_000, 921_600_000, 76_800_000)
    assert not gpu.is_pinned()


def test_cap_snaps_down_and_writes_only_max(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path)
    assert gpu.set_cap_hz(600 * MHZ, mode_max_hz=None) == 537_600_000
    assert writes(tree) == [("max_freq", 537_600_000)]
    assert gpu.state().max_hz == 537_600_000


def test_cap_below_the_table_gives_the_lowest(tmp_path: Path) -> None:
    gpu, _ = nano(tmp_path)
    assert gpu.set_cap_hz(50 * MHZ, mode_max_hz=None) == 76_800_000


def test_cap_never_exceeds_the_mode_cap(tmp_path: Path) -> None:
    gpu, _ = nano(tmp_path, max_hz=614_400_000)
    # Nano 5W: GPU MAX_FREQ 640000000, not a table value: the highest step below it is 614.4 MHz.
    assert gpu.set_cap_hz(900 * MHZ, mode_max_hz=640_000_000) == 614_400_000
    assert gpu.set_cap_hz(None, mode_max_hz=640_000_000) == 614_400_000
    assert gpu.set_cap_hz(None, mode_max_hz=None) == 921_600_000


def test_lowering_below_a_high_min_writes_min_first(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path, min_hz=768_000_000)
    assert gpu.set_cap_hz(460_800_000, mode_max_hz=None) == 460_800_000
    assert writes(tree) == [("min_freq", 76_800_000), ("max_freq", 460_800_000)]
    assert_min_le_max_throughout((768_000_000, 921_600_000), writes(tree))


def test_raising_writes_max_only(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path, max_hz=230_400_000)
    assert gpu.set_cap_hz(None, mode_max_hz=None) == 921_600_000
    assert writes(tree) == [("max_freq", 921_600_000)]


def test_restore_raising_min_above_the_current_max_writes_max_first(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path, max_hz=230_400_000)
    gpu.restore(691_200_000, 921_600_000)
    assert writes(tree) == [("max_freq", 921_600_000), ("min_freq", 691_200_000)]
    assert_min_le_max_throughout((76_800_000, 230_400_000), writes(tree))


def test_restore_lowering_both_writes_min_first(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path, min_hz=460_800_000)
    gpu.restore(76_800_000, 153_600_000)
    assert writes(tree) == [("min_freq", 76_800_000), ("max_freq", 153_600_000)]
    assert_min_le_max_throughout((460_800_000, 921_600_000), writes(tree))


def test_restore_rejects_inverted_limits(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path)
    with pytest.raises(ActuationError, match="recorded min 921600000 Hz > max 76800000 Hz"):
        gpu.restore(921_600_000, 76_800_000)
    assert tree.writes == []


def test_readback_mismatch_names_file_written_and_read(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path)
    tree.distort[NANO_DIR + "/max_freq"] = "921600000"  # a driver that ignores the write
    with pytest.raises(ActuationError) as info:
        gpu.set_cap_hz(460_800_000, mode_max_hz=None)
    assert str(info.value) == f"{NANO_DIR}/max_freq: wrote 460800000 but read back 921600000"


@pytest.mark.parametrize("code,name", [(errno.EACCES, "EACCES"), (errno.EINVAL, "EINVAL"), (errno.EBUSY, "EBUSY")])
def test_write_errors_name_errno_and_path(tmp_path: Path, code: int, name: str) -> None:
    gpu, tree = nano(tmp_path)
    tree.fail[NANO_DIR + "/max_freq"] = code
    with pytest.raises(ActuationError, match=rf"writing 460800000 to {NANO_DIR}/max_freq failed: {name} \("):
        gpu.set_cap_hz(460_800_000, mode_max_hz=None)


def test_pinned_clocks_are_refused_unless_forced(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path, min_hz=921_600_000)  # what jetson_clocks leaves: min = max = top
    assert gpu.is_pinned()
    with pytest.raises(ActuationError, match=r"clocks are pinned \(jetson_clocks\?\) at 921600000 Hz"):
        gpu.set_cap_hz(460_800_000, mode_max_hz=None)
    assert tree.writes == []
    assert gpu.set_cap_hz(460_800_000, mode_max_hz=None, force=True) == 460_800_000
    assert writes(tree) == [("min_freq", 76_800_000), ("max_freq", 460_800_000)]


def test_unreadable_cur_freq_is_no_reading(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path)
    tree.path(NANO_DIR + "/cur_freq").unlink()
    assert gpu.state().cur_hz is None


def test_garbage_frequency_table(tmp_path: Path) -> None:
    gpu, tree = nano(tmp_path)
    tree.path(NANO_DIR + "/available_frequencies").write_text("76800000 fast\n")
    with pytest.raises(ActuationError, match="available_frequencies: expected frequencies in Hz"):
        gpu.state()
