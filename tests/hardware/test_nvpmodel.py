import sys
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import boardtrees
from boardtrees import BAD_INPUT, NVPMODEL_DIR, REBOOT_PROMPT, FakeBoardRunner, result

from jetvit_daemon.errors import ActuationError, ConfigError, RebootRequiredError
from jetvit_daemon.hardware.nvpmodel import Nvpmodel, NvpmodelConf, parse_conf, parse_query, reboot_reason
from jetvit_daemon.hardware.sysfs import SysfsTree

ALL_CONFS = sorted(NVPMODEL_DIR.glob("*.conf"))
LINEAGE = "LineageOS__android_device_nvidia_concord__nvpmodel_{}.conf"

# (id, name, GPU MAX_FREQ Hz or None, online cores, TPC_PG_MASK, FBP_PG_MASK), from SOURCES.md.
Row = Tuple[int, str, Optional[int], int, Optional[int], Optional[int]]
STOCK: List[Tuple[str, int, List[Row]]] = [
    (
        "rageer-git__jetson-nano-image-maker__nvpmodel.conf",
        0,
        [(0, "MAXN", None, 4, None, None), (1, "5W", 640000000, 2, None, None)],
    ),
    (
        # TX2: CORE_0 is defined but never set (cpu0 cannot go offline), so MAXQ has 4 cores online.
        "farouk09__Distributed-computing-for-lane-detection-models__nvpmodel_origin.conf",
        3,
        [
            (0, "MAXN", None, 6, None, None),
            (1, "MAXQ", 850000000, 4, None, None),
            (2, "MAXP_CORE_ALL", 1120000000, 6, None, None),
            (3, "MAXP_CORE_ARM", 1120000000, 4, None, None),
        ],
    ),
    (
        "dev10110__gatekeeper-exp-xavier__nvpmodel.conf",
        5,
        [
            (0, "MODE_15W_2CORE", 1109250000, 2, 1, None),
            (1, "MODE_15W_4CORE", 1109250000, 4, 1, None),
            (2, "MODE_15W_6CORE", 1109250000, 6, 1, None),
            (3, "MODE_10W_2CORE", 803250000, 2, 1, None),
            (4, "MODE_10W_4CORE", 803250000, 4, 1, None),
            (5, "MODE_10W_DESKTOP", 510000000, 4, 1, None),
            (6, "MODE_20W_2CORE", 1109250000, 2, 1, None),
            (7, "MODE_20W_4CORE", 1109250000, 4, 1, None),
            (8, "MODE_20W_6CORE", 1109250000, 6, 1, None),
        ],
    ),
    (
        LINEAGE.format("p3701_0000"),
        2,
        [
            (0, "MAXN", None, 12, 0, None),
            (1, "MODE_15W", 408000000, 4, 248, None),
            (2, "MODE_30W", 612000000, 8, 240, None),
            (3, "MODE_50W", 816000000, 12, 0, None),
        ],
    ),
    (
        LINEAGE.format("p3701_0004"),
        2,
        [
            (0, "MAXN", None, 8, 128, None),
            (1, "MODE_15W", 408000000, 4, 248, None),
            (2, "MODE_30W", 612000000, 8, 240, None),
            (3, "MODE_40W", 816000000, 8, 128, None),
        ],
    ),
    (
        LINEAGE.format("p3767_0000"),
        2,
        [
            (0, "MAXN", None, 8, 240, 2),
            (1, "10W", 612000000, 4, 252, 2),
            (2, "15W", 612000000, 4, 252, 2),
            (3, "25W", 408000000, 8, 240, 2),
        ],
    ),
    (
        LINEAGE.format("p3767_0001"),
        2,
        [
            (0, "MAXN", None, 6, 240, 2),
            (1, "10W", 612000000, 4, 252, 2),
            (2, "15W", 612000000, 4, 252, 2),
            (3, "20W", 408000000, 6, 240, 2),
        ],
    ),
    (LINEAGE.format("p3767_0003"), 0, [(0, "15W", None, 6, 240, 2), (1, "7W", 408000000, 4, 252, 2)]),
    (
        LINEAGE.format("p3767_0004"),
        0,
        [(0, "10W", None, 6, 252, 2), (1, "7W_AI", 408000000, 4, 252, 2), (2, "7W_CPU", 306000000, 4, 252, 2)],
    ),
]


def load(name: str) -> NvpmodelConf:
    return parse_conf((NVPMODEL_DIR / name).read_text(encoding="utf-8"), name)


@pytest.mark.parametrize("name,default_id,rows", STOCK, ids=[s[0][:40] for s in STOCK])
def test_stock_confs_parse_to_the_published_modes(name: str, default_id: int, rows: List[Row]) -> None:
    conf = load(name)
    assert conf.default_id == default_id
    got = [
        (m.id, m.name, m.gpu_max_freq_hz, m.online_cores, m.tpc_pg_mask, m.fbp_pg_mask) for m in conf.power_modes
    ]
    assert got == rows
    assert all(m.gpu_min_freq_hz == 0 for m in conf.modes)


@pytest.mark.parametrize("path", ALL_CONFS, ids=[p.name[:50] for p in ALL_CONFS])
def test_every_reference_conf_parses(path: Path) -> None:
    conf = parse_conf(path.read_text(encoding="utf-8"), str(path))
    assert conf.modes
    assert conf.default_mode.id == conf.default_id
    assert conf.gpu_max_freq_path is not None and conf.gpu_max_freq_path.endswith("/max_freq")
    assert conf.gpu_min_freq_path is not None and conf.gpu_min_freq_path.endswith("/min_freq")
    for mode in conf.modes:
        assert mode.setting("GPU", "MAX_FREQ") is not None


@pytest.mark.parametrize(
    "name,mode_id,mode_name,gpu_max_hz,cores",
    [
        ("stiven-ding__yolov8-rs-ncnn__nvpmodel.conf", 2, "7W", 640000000, 4),
        ("umr-ds__BirdEdge-OS__etc_nvpmodel.conf", 2, "BirdEdge", 230400000, 2),
        ("ricsamikwa__RES-Things__nvpmodel.conf", 2, "5W2", 640000000, 1),
        ("ricsamikwa__RES-Things__nvpmodel.conf", 3, "5W3", 640000000, 3),
        ("The-OASIS-Project__dawn__etc_nvpmodel.conf", 0, "MODE_28_1_W", 918000000, 8),
        ("farouk09__Distributed-computing-for-lane-detection-models__nvpmodel.conf", 17, "MODE_17", 854250000, 6),
        ("borongyuan__XavierNXOverclock__nvpmodel_t194_p3668.conf", 0, "MAXN", 1109250000, 6),
    ],
)
def test_user_added_modes(name: str, mode_id: int, mode_name: str, gpu_max_hz: int, cores: int) -> None:
    mode = load(name).mode_by_id(mode_id)
    assert mode is not None
    assert (mode.name, mode.power_mode.gpu_max_freq_hz, mode.power_mode.online_cores) == (
        mode_name,
        gpu_max_hz,
        cores,
    )


def test_param_definitions_and_raw_settings_are_kept() -> None:
    nano = load("rageer-git__jetson-nano-image-maker__nvpmodel.conf")
    assert nano.params["GPU"].type == "CLOCK"
    assert nano.gpu_max_freq_path == "/sys/devices/gpu.0/devfreq/57000000.gpu/max_freq"
    assert nano.gpu_freq_table_path == "/sys/devices/gpu.0/devfreq/57000000.gpu/available_frequencies"
    maxn = nano.mode_by_name("MAXN")
    assert maxn is not None
    assert maxn.setting("GPU", "MAX_FREQ") == "-1"  # raw, for the emulator; parsed as "no cap"
    assert maxn.settings[0] == ("CPU_ONLINE", "CORE_0", "1")
    assert ("GPU_POWER_CONTROL_DISABLE", "GPU_PWR_CNTL_DIS", "auto") in maxn.settings
    assert nano.params["CPU_ONLINE"].args["CORE_3"] == "/sys/devices/system/cpu/cpu3/online"


def test_param_header_without_space_after_bracket() -> None:
    # p3767_0003 has `<PARAM TYPE=CLOCK NAME=EMC >`.
    conf = load(LINEAGE.format("p3767_0003"))
    assert conf.params["EMC"].args["MAX_FREQ"] == "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap"
    seven = conf.mode_by_name("7W")
    assert seven is not None and seven.setting("EMC", "MAX_FREQ") == "2133000000"


def test_hwmon_params_and_fan_config() -> None:
    xavier = load("dev10110__gatekeeper-exp-xavier__nvpmodel.conf")
    hwmon = xavier.params["VDDIN_OC_LIMIT"]
    assert hwmon.type == "HWMON"
    assert hwmon.args["WARN"] == "/sys/devices/platform/c250000.i2c/i2c-7/7-0040/hwmon curr1_max"
    tx2 = load("farouk09__Distributed-computing-for-lane-detection-models__nvpmodel.conf")
    assert tx2.fan_default == "quiet"


MINIMAL = """< PARAM TYPE=FILE NAME=CPU_ONLINE >
CORE_0 /sys/devices/system/cpu/cpu0/online
< PARAM TYPE=CLOCK NAME=GPU >
MAX_FREQ /sys/devices/gpu.0/devfreq/57000000.gpu/max_freq
< POWER_MODEL ID=0 NAME=A >
CPU_ONLINE CORE_0 1
GPU MAX_FREQ -1
< PM_CONFIG DEFAULT=0 >
"""


def test_minimal_conf_parses_with_comments_and_odd_spacing() -> None:
    text = "# header\n\n" + MINIMAL.replace("GPU MAX_FREQ -1", "GPU   MAX_FREQ\t-1   # user note")
    conf = parse_conf(text, "x.conf")
    assert conf.power_modes[0].gpu_max_freq_hz is None
    assert conf.power_modes[0].online_cores == 1


@pytest.mark.parametrize(
    "text,line,expected",
    [
        ("CORE_0 /x\n" + MINIMAL, 1, "section header"),
        (MINIMAL.replace("ID=0 NAME=A", "ID=x NAME=A"), 5, "ID=<non-negative integer>"),
        (MINIMAL.replace("GPU MAX_FREQ -1", "GPUX MAX_FREQ -1"), 7, "a PARAM defined above"),
        (MINIMAL.replace("GPU MAX_FREQ -1", "GPU MIN_FREQ 0"), 7, "an argument of PARAM GPU"),
        (MINIMAL.replace("GPU MAX_FREQ -1", "GPU MAX_FREQ fast"), 7, "an integer value"),
        (MINIMAL.replace("CPU_ONLINE CORE_0 1", "CPU_ONLINE CORE_0 2"), 6, "0 or 1"),
        (MINIMAL.replace("GPU MAX_FREQ -1", "GPU MAX_FREQ"), 7, "'PARAM_NAME ARG_NAME VALUE'"),
        (MINIMAL.replace("< POWER_MODEL ID=0 NAME=A >", "< POWER_MODEL ID=0 NAME=A"), 5, "section header"),
        (MINIMAL.replace("< POWER_MODEL ID=0 NAME=A >", "< POWER_MODEL NAME=A >"), 5, "ID= in the POWER_MODEL"),
        (MINIMAL.replace("< PM_CONFIG DEFAULT=0 >", "< PM_CONFIG DEFAULT=3 >"), 8, "PM_CONFIG DEFAULT naming"),
        (MINIMAL.replace("< PM_CONFIG DEFAULT=0 >", "< PM_CONFIGS DEFAULT=0 >"), 8, "a section kind"),
        (MINIMAL.replace("< PM_CONFIG DEFAULT=0 >\n", ""), 7, "mandatory '< PM_CONFIG"),
        (MINIMAL.replace("< PM_CONFIG DEFAULT=0 >", "< POWER_MODEL ID=0 NAME=B >"), 8, "ID not used before"),
        ("# nothing\n", 1, "at least one"),
    ],
)
def test_malformed_conf_names_source_line_and_expectation(text: str, line: int, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_conf(text, "/etc/nvpmodel.conf")
    message = str(info.value)
    assert message.startswith(f"/etc/nvpmodel.conf:{line}: expected ")
    assert expected in message


def test_malformed_line_in_a_real_conf_is_located() -> None:
    lines = (NVPMODEL_DIR / LINEAGE.format("p3767_0003")).read_text(encoding="utf-8").splitlines()
    bad = lines.index("GPU MAX_FREQ 408000000")
    lines[bad] = "GPU MAX_FREQ 408MHz"
    with pytest.raises(ConfigError, match=rf"^p3767:{bad + 1}: expected an integer value .* got '408MHz'"):
        parse_conf("\n".join(lines), "p3767")


XAVIER_VERBOSE = """NVPM VERB: Config file: /etc/nvpmodel.conf
NVPM VERB: parsing done for /etc/nvpmodel.conf
NV Fan Mode:quiet
NVPM VERB: Current mode: NV Power Mode: MODE_15W_6CORE
2
NVPM VERB: PARAM CPU_ONLINE: ARG CORE_0: PATH /sys/devices/system/cpu/cpu0/online: REAL_VAL: 1 CONF_VAL: 1
"""
ORIN_VERBOSE = """NVPM VERB: Config file: /etc/nvpmodel.conf
NVPM VERB: parsing done for /etc/nvpmodel.conf
NVPM VERB: Current mode: NV Power Mode: 25W
3
NVPM VERB: PARAM CPU_ONLINE: ARG CORE_0: PATH /sys/devices/system/cpu/cpu0/online: REAL_VAL: 1 CONF_VAL: 1
"""


@pytest.mark.parametrize(
    "stdout,expected",
    [
        ("NV Power Mode: MAXN\n0\n", ("MAXN", 0)),
        ("NV Fan Mode:quiet\nNV Power Mode: MODE_10W_DESKTOP\n5\n", ("MODE_10W_DESKTOP", 5)),
        (XAVIER_VERBOSE, ("MODE_15W_6CORE", 2)),
        (ORIN_VERBOSE, ("25W", 3)),
        ("NV Power Mode: MAXN_SUPER\n", ("MAXN_SUPER", None)),
    ],
)
def test_parse_query_real_outputs(stdout: str, expected: Tuple[str, Optional[int]]) -> None:
    assert parse_query(stdout) == expected


def test_parse_query_rejects_output_without_mode() -> None:
    with pytest.raises(ActuationError, match="no 'NV Power Mode:' line"):
        parse_query("NVPM ERROR: failed to read PARAM CPU_ONLINE\n")


def test_reboot_groups_orin_nx_16gb() -> None:
    conf = load(LINEAGE.format("p3767_0000"))
    modes = {m.name: m for m in conf.power_modes}
    groups = {name: {n for n, o in modes.items() if o.reboot_group() == m.reboot_group()} for name, m in modes.items()}
    assert groups["MAXN"] == groups["25W"] == {"MAXN", "25W"}
    assert groups["10W"] == groups["15W"] == {"10W", "15W"}
    assert reboot_reason(modes["MAXN"], modes["25W"]) is None
    assert reboot_reason(modes["MAXN"], modes["10W"]) == (
        "MAXN → 10W needs a reboot: TPC_PG_MASK 240 ≠ 252, online CPU cores 8 ≠ 4"
    )


def test_reboot_reason_orin_nano_and_nano() -> None:
    orin = {m.name: m for m in load(LINEAGE.format("p3767_0003")).power_modes}
    assert reboot_reason(orin["15W"], orin["7W"]) == (
        "15W → 7W needs a reboot: TPC_PG_MASK 240 ≠ 252, online CPU cores 6 ≠ 4"
    )
    assert reboot_reason(orin["7W"], orin["15W"]) is not None
    nano = {m.name: m for m in load("rageer-git__jetson-nano-image-maker__nvpmodel.conf").power_modes}
    assert reboot_reason(nano["MAXN"], nano["5W"]) == "MAXN → 5W needs a reboot: online CPU cores 4 ≠ 2"


# -- the Nvpmodel driver against a fixture tree and a runner playing nvpmodel --


def board(tmp_path: Path, name: str) -> Tuple[Nvpmodel, FakeBoardRunner, SysfsTree]:
    root = boardtrees.make_tree(tmp_path, name)
    runner = FakeBoardRunner(root, devfreq_dir=boardtrees.SPECS[name].devfreq_dir)
    tree = SysfsTree(root)
    return Nvpmodel(runner, tree, timeout_s=10.0), runner, tree


def test_query_with_and_without_fan_line_and_verbose(tmp_path: Path) -> None:
    nv, runner, _ = board(tmp_path, "xavier-nx-jp5")
    assert nv.query().name == "MODE_10W_DESKTOP"
    runner.fan_line = True
    assert nv.query().id == 5
    runner.verbose_query = True
    assert nv.query().online_cores == 4
    assert runner.calls[0] == ["nvpmodel", "-q"]


def test_conf_read_through_the_jp6_symlink(tmp_path: Path) -> None:
    nv, _, _ = board(tmp_path, "orin-nano-jp6")
    assert [m.name for m in nv.conf().power_modes] == ["15W", "7W"]
    assert nv.conf().source == "/etc/nvpmodel.conf"


def test_set_mode_switches_and_verifies(tmp_path: Path) -> None:
    nv, runner, tree = board(tmp_path, "xavier-nx-jp5")
    now = nv.set_mode("MODE_10W_4CORE")
    assert (now.id, now.name) == (4, "MODE_10W_4CORE")
    assert runner.set_calls == [["nvpmodel", "-m", "4"]]
    assert runner.timeouts[runner.calls.index(["nvpmodel", "-m", "4"])] == 10.0
    assert tree.read_text("/var/lib/nvpmodel/status") == "pmode:0004"
    assert tree.read_int(boardtrees.SPECS["xavier-nx-jp5"].devfreq_dir + "/max_freq") == 803250000


def test_set_mode_to_the_current_mode_runs_nothing(tmp_path: Path) -> None:
    nv, runner, _ = board(tmp_path, "xavier-nx-jp5")
    assert nv.set_mode("MODE_10W_DESKTOP").id == 5
    assert runner.set_calls == []


def test_switch_needing_reboot_is_refused_before_nvpmodel_runs(tmp_path: Path) -> None:
    nv, runner, tree = board(tmp_path, "orin-nano-jp6")
    with pytest.raises(RebootRequiredError, match="15W → 7W needs a reboot: TPC_PG_MASK 240 ≠ 252"):
        nv.set_mode("7W")
    assert runner.set_calls == []
    assert tree.read_text("/var/lib/nvpmodel/status") == "pmode:0000"
    assert [m.name for m in nv.reachable_without_reboot(nv.query())] == ["15W"]


def test_reachable_without_reboot_xavier_nx(tmp_path: Path) -> None:
    nv, _, _ = board(tmp_path, "xavier-nx-jp5")
    names = [m.name for m in nv.reachable_without_reboot(nv.query())]
    assert names == ["MODE_15W_4CORE", "MODE_10W_4CORE", "MODE_10W_DESKTOP", "MODE_20W_4CORE"]


def test_unexpected_reboot_prompt_is_a_failure_quoting_the_output(tmp_path: Path) -> None:
    nv, runner, tree = board(tmp_path, "xavier-nx-jp5")
    runner.on_set = lambda argv: result(argv, REBOOT_PROMPT.format(id=4) + "\n" + BAD_INPUT, 255)
    with pytest.raises(RebootRequiredError, match="DO YOU WANT TO REBOOT NOW"):
        nv.set_mode("MODE_10W_4CORE")
    assert tree.read_text("/var/lib/nvpmodel/status") == "pmode:0005"


def test_prompt_left_waiting_until_the_timeout(tmp_path: Path) -> None:
    nv, runner, _ = board(tmp_path, "xavier-nx-jp5")
    runner.on_set = lambda argv: result(argv, REBOOT_PROMPT.format(id=4), None, timed_out=True)
    with pytest.raises(RebootRequiredError, match="Reboot required for changing to this power mode: 4"):
        nv.set_mode("MODE_10W_4CORE")


def test_timeout_without_output(tmp_path: Path) -> None:
    nv, runner, _ = board(tmp_path, "xavier-nx-jp5")
    runner.on_set = lambda argv: result(argv, "", None, timed_out=True)
    with pytest.raises(ActuationError, match=r"'nvpmodel -m 4' timed out after 10 s") as info:
        nv.set_mode("MODE_10W_4CORE")
    assert not isinstance(info.value, RebootRequiredError)


def test_nvpm_error_line_fails_even_with_exit_0(tmp_path: Path) -> None:
    nv, runner, _ = board(tmp_path, "xavier-nx-jp5")
    runner.on_set = lambda argv: result(argv, BAD_INPUT, 0)
    with pytest.raises(ActuationError, match="NVPM ERROR: bad input!"):
        nv.set_mode("MODE_10W_4CORE")


def test_nonzero_exit_fails(tmp_path: Path) -> None:
    nv, runner, _ = board(tmp_path, "xavier-nx-jp5")
    runner.on_set = lambda argv: result(argv, "", 1)
    with pytest.raises(ActuationError, match="'nvpmodel -m 4' exited 1"):
        nv.set_mode("MODE_10W_4CORE")


def test_switch_that_does_not_take_effect_is_caught_by_verification(tmp_path: Path) -> None:
    nv, runner, _ = board(tmp_path, "xavier-nx-jp5")
    runner.ignore_set = True
    with pytest.raises(ActuationError, match=r"board reports mode MODE_10W_DESKTOP \(id 5\), not MODE_10W_4CORE"):
        nv.set_mode("MODE_10W_4CORE")


def test_unknown_mode_name_lists_the_valid_ones(tmp_path: Path) -> None:
    nv, runner, _ = board(tmp_path, "orin-nano-jp6")
    with pytest.raises(ActuationError, match=r"no power mode named 'MAXN' in /etc/nvpmodel\.conf; modes: 15W, 7W"):
        nv.set_mode("MAXN")
    assert runner.calls == []


def test_missing_conf_is_a_config_error(tmp_path: Path) -> None:
    nv, _, _ = board(tmp_path, "thor")
    with pytest.raises(ConfigError, match=r"cannot read /etc/nvpmodel\.conf"):
        nv.conf()


def test_query_naming_a_mode_the_conf_lacks(tmp_path: Path) -> None:
    # The conf was edited under a running board: nvpmodel reports a name the parsed conf does not have.
    nv, runner, _ = board(tmp_path, "orin-nano-jp6")
    runner.query_stdout = "NV Power Mode: 7W_OLD\n1\n"
    with pytest.raises(ActuationError, match=r"reports mode 7W_OLD \(id 1\) which /etc/nvpmodel.conf does not"):
        nv.query()
