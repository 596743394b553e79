"""Board profiles: confs, modes and tables match the reference facts; materialised trees are found and read
by the daemon's own hardware code (devfreq discovery, board probe, sysfs sensors)."""

import itertools
import os
from pathlib import Path
from typing import Callable, Dict

import pytest

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.hardware.devfreq import GpuDevfreq, find_gpu_devfreq
from jetvit_daemon.hardware.nvpmodel import reboot_reason
from jetvit_daemon.hardware.probe import detect_board
from jetvit_daemon.hardware.sensors import SysfsTelemetry
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.sim.boards import (
    CONF_DIR,
    DEFAULT_PROFILE,
    PROFILES,
    active_tpcs,
    get_profile,
    load_conf,
)

MHZ = 1_000_000


def _modes(profile: str) -> Dict[str, object]:
    return {m.name: m.power_mode for m in load_conf(get_profile(profile)).modes}


def test_default_profile_is_the_super() -> None:
    assert DEFAULT_PROFILE == "orin-nano-super"
    assert set(PROFILES) == {"nano", "orin-nano", "orin-nano-super", "orin-nx-16gb", "agx-orin-64gb"}


def test_unknown_profile_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="orin-nano-super"):
        get_profile("xavier")


def test_super_modes_match_sources_md() -> None:
    # SOURCES.md, commit 370b63a8: 0 15W (612000000) · 1 25W (918000000) · 2 MAXN_SUPER (-1),
    # all TPC_PG_MASK 240, default 1.
    conf = load_conf(get_profile("orin-nano-super"))
    assert [(m.id, m.name, m.power_mode.gpu_max_freq_hz) for m in conf.modes] == [
        (0, "15W", 612 * MHZ),
        (1, "25W", 918 * MHZ),
        (2, "MAXN_SUPER", None),
    ]
    assert conf.default_id == 1
    assert {m.power_mode.tpc_pg_mask for m in conf.modes} == {240}
    for a, b in itertools.permutations(conf.power_modes, 2):
        assert reboot_reason(a, b) is None  # one mask, six cores: every switch is live


def test_orin_nano_15w_7w_needs_a_reboot() -> None:
    modes = _modes("orin-nano")
    m15, m7 = modes["15W"], modes["7W"]
    assert (m15.gpu_max_freq_hz, m15.online_cores, m15.tpc_pg_mask) == (None, 6, 240)
    assert (m7.gpu_max_freq_hz, m7.online_cores, m7.tpc_pg_mask) == (408 * MHZ, 4, 252)
    reason = reboot_reason(m15, m7)
    assert reason is not None and "TPC_PG_MASK" in reason


def test_orin_nx_reboot_groups() -> None:
    # README: Orin NX 16GB {MAXN, 25W} and {10W, 15W} are separate groups.
    modes = _modes("orin-nx-16gb")
    assert reboot_reason(modes["MAXN"], modes["25W"]) is None
    assert reboot_reason(modes["10W"], modes["15W"]) is None
    assert reboot_reason(modes["MAXN"], modes["15W"]) is not None
    assert modes["25W"].gpu_max_freq_hz == 408 * MHZ and modes["10W"].gpu_max_freq_hz == 612 * MHZ


def test_agx_and_nano_caps() -> None:
    agx = _modes("agx-orin-64gb")
    assert {n: m.gpu_max_freq_hz for n, m in agx.items()} == {
        "MAXN": None, "MODE_15W": 408 * MHZ, "MODE_30W": 612 * MHZ, "MODE_50W": 816 * MHZ}
    nano = _modes("nano")
    assert (nano["MAXN"].online_cores, nano["5W"].online_cores) == (4, 2)
    assert nano["5W"].gpu_max_freq_hz == 640 * MHZ


def test_frequency_tables_follow_the_readme() -> None:
    nano = get_profile("nano").gpu_table_hz
    assert len(nano) == 12 and nano[0] == 76_800_000 and nano[-1] == 921_600_000
    assert all(b - a == 76_800_000 for a, b in zip(nano, nano[1:]))
    agx = get_profile("agx-orin-64gb").gpu_table_hz
    assert len(agx) == 13 and agx[0] == 114_750_000 and agx[-1] == 1_300_500_000
    nx = get_profile("orin-nx-16gb").gpu_table_hz
    assert nx == tuple(f * MHZ for f in (306, 408, 510, 612, 714, 816, 918))
    assert get_profile("orin-nano-super").gpu_table_hz == (*nx, 1020 * MHZ)
    assert get_profile("orin-nano").gpu_table_hz[-1] == 624_750_000  # "≈ 625 MHz"
    for p in PROFILES.values():
        assert list(p.gpu_table_hz) == sorted(set(p.gpu_table_hz))


def test_active_tpcs_from_masks() -> None:
    orin = get_profile("agx-orin-64gb")
    assert [active_tpcs(orin, m) for m in (0, 240, 248, 252)] == [8, 4, 3, 2]
    nano8 = get_profile("orin-nano")  # 1024 CUDA cores: 4 TPCs even with an all-clear mask
    assert [active_tpcs(nano8, m) for m in (0, 240, 252, None)] == [4, 4, 2, 4]
    assert active_tpcs(get_profile("nano"), None) == 1


def test_stock_confs_are_byte_for_byte_copies(reference: Path) -> None:
    pairs = {
        "nvpmodel_t210_jetson-nano.conf": "rageer-git__jetson-nano-image-maker__nvpmodel.conf",
        "nvpmodel_p3767_0003.conf": "LineageOS__android_device_nvidia_concord__nvpmodel_p3767_0003.conf",
        "nvpmodel_p3767_0000.conf": "LineageOS__android_device_nvidia_concord__nvpmodel_p3767_0000.conf",
        "nvpmodel_p3701_0000.conf": "LineageOS__android_device_nvidia_concord__nvpmodel_p3701_0000.conf",
    }
    for ours, theirs in pairs.items():
        assert (CONF_DIR / ours).read_bytes() == (reference / "nvpmodel" / theirs).read_bytes(), ours


def test_super_conf_keeps_the_stock_header_and_params() -> None:
    stock = (CONF_DIR / "nvpmodel_p3767_0003.conf").read_text()
    derived = (CONF_DIR / "nvpmodel_p3767_0003_super.conf").read_text()
    marker = "# POWER_MODEL DEFINITIONS #"
    start = derived.index("#\n# Copyright (c) 2021-2022, NVIDIA")
    comment = derived[:start]
    assert all(line.startswith("#") for line in comment.splitlines())
    assert "370b63a8" in comment and "DERIVED" in comment
    # NVIDIA's header and the PARAM definitions are untouched.
    assert stock.startswith("#\n# Copyright (c) 2021-2022, NVIDIA")
    assert derived[start:].split(marker)[0] == stock.split(marker)[0]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_tree_is_found_by_the_daemons_hardware_code(profile: str, make_tree: Callable[..., Path]) -> None:
    root = make_tree(profile)
    spec = get_profile(profile)
    tree = SysfsTree(root)

    # GPU devfreq discovery (jetson_clocks' of_node/name match) finds the real node, not the VIC one...
    gpu_dir = find_gpu_devfreq(tree)
    assert gpu_dir == spec.devfreq.real_dir
    state = GpuDevfreq(tree, gpu_dir).state()
    assert tuple(state.available_hz) == spec.gpu_table_hz
    # ...and the path the conf names for GPU MAX_FREQ is the same node.
    conf = load_conf(spec)
    assert conf.gpu_max_freq_path is not None
    assert tree.realpath(conf.gpu_max_freq_path) == gpu_dir + "/max_freq"
    default = conf.default_mode.power_mode
    expected_max = spec.gpu_table_hz[-1] if default.gpu_max_freq_hz is None else default.gpu_max_freq_hz
    assert state.max_hz == GpuDevfreq.snap_down(list(spec.gpu_table_hz), expected_max)
    assert tree.read_text("/var/lib/nvpmodel/status") == f"pmode:{conf.default_id:04d}"

    info = detect_board(tree)
    assert info is not None
    assert info.model == spec.model
    assert info.soc == ("t210" if profile == "nano" else "t234")
    assert info.l4t_release == {"nano": "32.6.1", "orin-nano-super": "36.4.3"}.get(profile, "36.3.0")

    sample = SysfsTelemetry(tree, ManualClock(), gpu_devfreq_dir=gpu_dir).read_once()
    assert sample.board_power_w is not None
    # Idle in the boot mode: README (Nano ~1 W, Orin Nano 4.8 W), sample 23 (AGX Orin 6.8 W); the Orin NX
    # boots into 15W with 4 of its 8 cores online.
    idle_w = {"nano": 1.0, "agx-orin-64gb": 6.8, "orin-nx-16gb": 4.3}.get(profile, 4.8)
    assert sample.board_power_w == pytest.approx(idle_w, rel=0.06)
    assert sample.gpu_load_pct == 0.0
    junction = spec.physics.throttle_zone
    name = {"tj-thermal": "tj", "GPU-therm": "gpu"}[junction]
    assert 25.0 < sample.temps_c[name] < 45.0


def test_cv_zones_read_as_the_board_reports_them(make_tree: Callable[..., Path]) -> None:
    nano_root, nx_root = make_tree("orin-nano-super"), make_tree("orin-nx-16gb")
    # Orin Nano (no DLA): 0; Orin NX (DLA power-gated): -256 °C in milli-degrees.
    assert (nano_root / "sys/class/thermal/thermal_zone2/type").read_text() == "cv0-thermal\n"
    assert (nano_root / "sys/class/thermal/thermal_zone2/temp").read_text() == "0\n"
    assert (nx_root / "sys/class/thermal/thermal_zone2/temp").read_text() == "-256000\n"


def test_tree_links_are_relative(make_tree: Callable[..., Path]) -> None:
    root = make_tree("orin-nano-super")
    link = root / "sys/class/devfreq/17000000.gpu"
    assert os.readlink(link) == "../../devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"
    assert (root / "sys/class/devfreq/17000000.gpu/device/of_node/name").read_bytes() == b"gpu\x00"
    assert (root / "proc/device-tree/compatible").read_bytes().split(b"\x00")[-2] == b"nvidia,tegra234"


def test_create_tree_refuses_a_non_empty_directory(tmp_path: Path, make_tree: Callable[..., Path]) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "somebody-elses-file").write_text("hi")
    from jetvit_daemon.sim.live import create_tree

    with pytest.raises(ConfigError, match="not empty"):
        create_tree("nano", tmp_path / "x")
    with pytest.raises(ConfigError, match="no nvpmodel mode id 9"):
        make_tree("nano", mode_id=9)
