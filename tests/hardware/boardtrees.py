"""Fixture board trees (sysfs, procfs, /etc) for four Jetsons, and a command runner that plays nvpmodel.

Usage from a test module (test dirs have no __init__.py; pytest runs with --import-mode=importlib):

    sys.path.insert(0, str(Path(__file__).parent))
    import boardtrees
    root = boardtrees.make_tree(tmp_path, "orin-nano-jp6")
    runner = boardtrees.FakeBoardRunner(root)

or use the fixtures in conftest.py (`board_root`, `make_board`, `fake_runner`).

Layouts follow the jetson-reference README (devfreq table, INA3221 layouts, thermal zones) and real L4T files
(nv_tegra_release lines, NUL-terminated device-tree strings). Every link inside a tree is relative, so a tree
can be moved or copied. Values that are not in the reference data are marked "plausible" where they appear.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from jetvit_daemon.hardware.baseline import SwitchRecord
from jetvit_daemon.hardware.commands import ChildProcess, CommandResult, StreamingProcess
from jetvit_daemon.hardware.nvpmodel import NvpmodelConf, parse_conf, reboot_reason
from jetvit_daemon.hardware.sysfs import SysfsTree

FAKE_PID = 4242  # what the fake runner reports as the pid of the programs it "starts"

REFERENCE = Path("/work/shared/jetson-reference")
NVPMODEL_DIR = REFERENCE / "nvpmodel"

# The exact prompt nvpmodel prints before waiting on stdin, no newline after the last line (README "nvpmodel").
REBOOT_PROMPT = (
    "NVPM WARN: Golden image context is already created\n"
    "NVPM WARN: Reboot required for changing to this power mode: {id}\n"
    "NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:"
)
BAD_INPUT = "NVPM ERROR: bad input!\nNVPM ERROR: optMask is 1, no request for power mode\n"


@dataclass(frozen=True)
class BoardSpec:
    name: str
    conf_file: Optional[str]  # file in jetson-reference/nvpmodel, None: no nvpmodel.conf on the board
    conf_symlinked_as: Optional[str]  # JetPack 5+: /etc/nvpmodel.conf -> /etc/nvpmodel/<this>
    nv_tegra_release: str
    model: str
    compatible: Tuple[str, ...]
    devfreq_dir: str  # resolved board path of the GPU devfreq directory
    class_links: Dict[str, str]  # /sys/class/devfreq/<name> -> devfreq dir (board paths)
    of_node_name: str
    available_hz: Tuple[int, ...]
    mode_id: int  # the mode the board is in (status file; devfreq max follows it)
    cores: int
    thermal: Tuple[Tuple[str, int], ...]  # (type, milli-°C)
    rails: Tuple[Tuple[str, int, int], ...]  # (label, mV, mA)
    rails_layout: str  # "iio" (JetPack 4) or "hwmon" (JetPack 5+)
    ina_dir: str  # the INA3221 i2c device directory
    extra_links: Dict[str, str] = field(default_factory=dict)  # other symlinks: board path -> board target


NANO_HZ = tuple(76_800_000 * k for k in range(1, 13))  # README: 76.8 MHz × 12 steps
# Xavier NX gv11b table (plausible; holds every GPU MAX_FREQ of its stock conf: 510, 803.25, 1109.25 MHz).
XAVIER_NX_HZ = (
    114750000, 204000000, 306000000, 408000000, 510000000, 599250000, 701250000, 752250000,
    803250000, 854250000, 905250000, 956250000, 1007250000, 1058250000, 1109250000,
)  # fmt: skip
# Orin Nano 8GB, JetPack 6.0 (README: 15W uncapped ≈ 625 MHz, 7W ≤ 408 MHz; Orin NX shares the low steps).
ORIN_NANO_HZ = (306000000, 408000000, 510000000, 612000000, 624750000)
# Thor gpu-gpc-0 (plausible: the reference data holds no captured Thor table).
THOR_HZ = (
    300000000, 414000000, 528000000, 642000000, 756000000, 870000000, 984000000,
    1098000000, 1212000000, 1326000000, 1440000000, 1575000000,
)  # fmt: skip

SPECS: Dict[str, BoardSpec] = {
    "nano-jp4": BoardSpec(
        name="nano-jp4",
        conf_file="rageer-git__jetson-nano-image-maker__nvpmodel.conf",
        conf_symlinked_as=None,
        nv_tegra_release=(
            "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
            "DATE: Sat Feb 19 17:05:08 UTC 2022"
        ),
        model="NVIDIA Jetson Nano Developer Kit",
        compatible=("nvidia,p3449-0000-b00+p3448-0000-b00", "nvidia,jetson-nano", "nvidia,tegra210"),
        devfreq_dir="/sys/devices/57000000.gpu/devfreq/57000000.gpu",
        class_links={"57000000.gpu": "/sys/devices/57000000.gpu/devfreq/57000000.gpu"},
        of_node_name="gpu",
        available_hz=NANO_HZ,
        mode_id=0,
        cores=4,
        thermal=(
            ("AO-therm", 40500),
            ("CPU-therm", 36500),
            ("GPU-therm", 35000),
            ("PLL-therm", 34000),
            ("PMIC-Die", 100000),  # the Nano's fixed, not measured, PMIC value (README)
            ("thermal-fan-est", 35800),
        ),
        rails=(("POM_5V_IN", 5080, 201), ("POM_5V_GPU", 5064, 0), ("POM_5V_CPU", 5072, 39)),
        rails_layout="iio",
        ina_dir="/sys/bus/i2c/drivers/ina3221x/6-0040",
        # The path nvpmodel.conf names on the Nano is the same node (README devfreq table).
        extra_links={"/sys/devices/gpu.0": "/sys/devices/57000000.gpu"},
    ),
    "xavier-nx-jp5": BoardSpec(
        name="xavier-nx-jp5",
        conf_file="dev10110__gatekeeper-exp-xavier__nvpmodel.conf",
        conf_symlinked_as="nvpmodel_t194_p3668.conf",
        nv_tegra_release=(
            "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
            "DATE: Tue Aug  1 19:57:35 UTC 2023"
        ),
        model="NVIDIA Jetson Xavier NX Developer Kit",
        compatible=("nvidia,p3509-0000+p3668-0001", "nvidia,jetson-xavier-nx", "nvidia,tegra194"),
        devfreq_dir="/sys/devices/17000000.gv11b/devfreq/17000000.gv11b",
        class_links={"17000000.gv11b": "/sys/devices/17000000.gv11b/devfreq/17000000.gv11b"},
        of_node_name="gv11b",
        available_hz=XAVIER_NX_HZ,
        mode_id=5,  # MODE_10W_DESKTOP, the conf's default
        cores=6,
        thermal=(
            ("AUX-therm", 45000),
            ("CPU-therm", 46500),
            ("thermal-fan-est", 45600),
            ("AO-therm", 45000),
            ("GPU-therm", 45500),
            ("PMIC-Die", 50000),
        ),
        rails=(("VDD_IN", 5000, 553), ("VDD_CPU_GPU_CV", 5000, 130), ("VDD_SOC", 5000, 130)),
        rails_layout="hwmon",
        ina_dir="/sys/bus/i2c/drivers/ina3221/7-0040",
    ),
    "orin-nano-jp6": BoardSpec(
        name="orin-nano-jp6",
        conf_file="LineageOS__android_device_nvidia_concord__nvpmodel_p3767_0003.conf",
        conf_symlinked_as="nvpmodel_p3767_0003.conf",
        nv_tegra_release=(
            "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
            "DATE: Wed Jan  8 01:49:37 UTC 2025"
        ),
        model="NVIDIA Jetson Orin Nano Developer Kit",
        compatible=("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"),
        devfreq_dir="/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu",
        class_links={"17000000.gpu": "/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"},
        of_node_name="gpu",
        available_hz=ORIN_NANO_HZ,
        mode_id=0,  # 15W
        cores=6,
        thermal=(
            ("cpu-thermal", 50031),
            ("gpu-thermal", 49031),
            ("cv0-thermal", -256000),  # no DLA on the Orin Nano: sensor off (README)
            ("cv1-thermal", -256000),
            ("cv2-thermal", -256000),
            ("soc0-thermal", 50000),
            ("soc1-thermal", 50250),
            ("soc2-thermal", 49031),
            ("tj-thermal", 50250),
        ),
        # README sample 30: VDD_IN 4824 mW, VDD_CPU_GPU_CV 518 mW, SOC 1475 mW (idle, JetPack 6).
        rails=(("VDD_IN", 5024, 960), ("VDD_CPU_GPU_CV", 5016, 103), ("VDD_SOC", 5016, 294)),
        rails_layout="hwmon",
        ina_dir="/sys/bus/i2c/drivers/ina3221/1-0040",
    ),
    "thor": BoardSpec(
        name="thor",
        conf_file=None,  # no Thor nvpmodel.conf in the reference data
        conf_symlinked_as=None,
        nv_tegra_release=(
            "# R38 (release), REVISION: 4.0, GCID: 43443517, BOARD: generic, EABI: aarch64, "
            "DATE: Tue Dec 30 16:06:01 UTC 2025"
        ),
        model="NVIDIA Jetson AGX Thor Developer Kit",
        compatible=("nvidia,p3971-0080+p3834-0008", "nvidia,p3834-0008", "nvidia,tegra264"),
        devfreq_dir="/sys/devices/platform/gpu/devfreq/gpu-gpc-0",
        class_links={
            "gpu-gpc-0": "/sys/devices/platform/gpu/devfreq/gpu-gpc-0",
            "gpu-nvd-0": "/sys/devices/platform/gpu/devfreq/gpu-nvd-0",
        },
        of_node_name="gb10b",
        available_hz=THOR_HZ,
        mode_id=0,
        cores=14,
        thermal=(("cpu-thermal", 35250), ("tj-thermal", 36031), ("soc012-thermal", 36062), ("soc345-thermal", 34500)),
        rails=(("VDD_GPU", 5000, 0), ("VDD_CPU_SOC_MSS", 5000, 984), ("VIN_SYS_5V0", 5000, 865)),
        rails_layout="hwmon",
        ina_dir="/sys/bus/i2c/drivers/ina3221/2-0040",
    ),
}
BOARDS = tuple(SPECS)


def conf_text(conf_file: str) -> str:
    return (NVPMODEL_DIR / conf_file).read_text(encoding="utf-8")


def _write(root: Path, board_path: str, text: str) -> None:
    local = root / board_path.lstrip("/")
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(text, encoding="utf-8")


def _link(root: Path, board_path: str, board_target: str) -> None:
    """A relative symlink at `board_path` pointing at `board_target`, as sysfs links are."""
    local = root / board_path.lstrip("/")
    local.parent.mkdir(parents=True, exist_ok=True)
    target = root / board_target.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    local.symlink_to(os.path.relpath(target, local.parent))


def _mode_gpu_max(spec: BoardSpec) -> int:
    if spec.conf_file is None:
        return spec.available_hz[-1]
    mode = parse_conf(conf_text(spec.conf_file)).mode_by_id(spec.mode_id)
    assert mode is not None
    cap = mode.power_mode.gpu_max_freq_hz
    return snap_down(spec.available_hz, cap) if cap is not None else spec.available_hz[-1]


def snap_down(table: Sequence[int], hz: int) -> int:
    below = [f for f in table if f <= hz]
    return below[-1] if below else table[0]


def make_tree(tmp_path: Path, board: str, processes: Sequence[str] = ("systemd", "sshd", "nvargus-daemon")) -> Path:
    """Build the named board's tree under tmp_path/<board> and return its root."""
    spec = SPECS[board]
    root = tmp_path / board
    root.mkdir(parents=True)
    # -- identity --
    _write(root, "/etc/nv_tegra_release", spec.nv_tegra_release + "\n")
    _write(root, "/proc/device-tree/model", spec.model + "\x00")
    _write(root, "/proc/device-tree/compatible", "".join(c + "\x00" for c in spec.compatible))
    # -- nvpmodel --
    if spec.conf_file is not None:
        text = conf_text(spec.conf_file)
        if spec.conf_symlinked_as:
            _write(root, f"/etc/nvpmodel/{spec.conf_symlinked_as}", text)
            (root / "etc/nvpmodel.conf").symlink_to(f"nvpmodel/{spec.conf_symlinked_as}")
        else:
            _write(root, "/etc/nvpmodel.conf", text)
    _write(root, "/var/lib/nvpmodel/status", f"pmode:{spec.mode_id:04d}\n")
    # -- GPU devfreq --
    devfreq = spec.devfreq_dir
    device_dir = devfreq.rsplit("/devfreq/", 1)[0]
    _write(root, f"{devfreq}/available_frequencies", " ".join(str(f) for f in spec.available_hz) + "\n")
    _write(root, f"{devfreq}/min_freq", f"{spec.available_hz[0]}\n")
    _write(root, f"{devfreq}/max_freq", f"{_mode_gpu_max(spec)}\n")
    _write(root, f"{devfreq}/cur_freq", f"{spec.available_hz[0]}\n")
    _write(root, f"{devfreq}/governor", "nvhost_podgov\n")
    _write(root, f"{device_dir}/load", "0\n")  # 0-1000
    _write(root, f"{device_dir}/railgate_enable", "1\n")
    _link(root, f"{devfreq}/device", device_dir)
    unit_address = device_dir.rsplit("/", 1)[-1].split(".")[0]
    of_node = f"/sys/firmware/devicetree/base/{spec.of_node_name}@{unit_address}"
    _write(root, f"{of_node}/name", spec.of_node_name + "\x00")
    _link(root, f"{device_dir}/of_node", of_node)
    for name, target in spec.class_links.items():
        if target != devfreq:  # a second node of the same GPU (Thor NVD)
            _write(root, f"{target}/available_frequencies", " ".join(str(f) for f in spec.available_hz) + "\n")
            _write(root, f"{target}/min_freq", f"{spec.available_hz[0]}\n")
            _write(root, f"{target}/max_freq", f"{spec.available_hz[-1]}\n")
            _link(root, f"{target}/device", device_dir)
        _link(root, f"/sys/class/devfreq/{name}", target)
    for path, target in spec.extra_links.items():
        _link(root, path, target)
    # -- CPUs --
    for cpu in range(spec.cores):
        _write(root, f"/sys/devices/system/cpu/cpu{cpu}/online", "1\n")
    # -- thermal zones --
    for i, (zone_type, milli_c) in enumerate(spec.thermal):
        zone = f"/sys/devices/virtual/thermal/thermal_zone{i}"
        _write(root, f"{zone}/type", zone_type + "\n")
        _write(root, f"{zone}/temp", f"{milli_c}\n")
        if zone_type.lower().startswith(("cpu", "gpu", "tj")):
            # Trip temperatures differ by board and release (README); these are plausible Orin-like values.
            for k, (trip_c, trip_type) in enumerate(((99000, "passive"), (103000, "passive"), (105000, "critical"))):
                _write(root, f"{zone}/trip_point_{k}_temp", f"{trip_c}\n")
                _write(root, f"{zone}/trip_point_{k}_type", trip_type + "\n")
                _write(root, f"{zone}/trip_point_{k}_hyst", "2000\n")
        _link(root, f"/sys/class/thermal/thermal_zone{i}", zone)
    # -- INA3221 power monitor --
    if spec.rails_layout == "iio":
        iio = f"{spec.ina_dir}/iio:device0"
        for k, (label, mv, ma) in enumerate(spec.rails):
            _write(root, f"{iio}/rail_name_{k}", label + "\n")
            _write(root, f"{iio}/in_voltage{k}_input", f"{mv}\n")
            _write(root, f"{iio}/in_current{k}_input", f"{ma}\n")
            _write(root, f"{iio}/in_power{k}_input", f"{mv * ma // 1000}\n")
    else:
        hwmon = f"{spec.ina_dir}/hwmon/hwmon1"
        for k, (label, mv, ma) in enumerate(spec.rails, start=1):
            _write(root, f"{hwmon}/in{k}_label", label + "\n")
            _write(root, f"{hwmon}/in{k}_input", f"{mv}\n")
            _write(root, f"{hwmon}/curr{k}_input", f"{ma}\n")
            _write(root, f"{hwmon}/curr{k}_crit", "3000\n")
            _write(root, f"{hwmon}/curr{k}_max", "2500\n")
        _write(root, f"{hwmon}/in7_label", "sum of shunt voltages\n")
        _write(root, f"{hwmon}/in7_input", "0\n")
    # -- processes --
    for pid, comm in enumerate(processes, start=1):
        _write(root, f"/proc/{pid}/comm", comm + "\n")
    return root


class RecordingTree(SysfsTree):
    """A SysfsTree that records every write, and can fail or distort chosen writes like a kernel would.

    `fail[path] = errno.EACCES` makes writes to `path` raise; `distort[path] = "value"` stores that value
    instead of the one written (a driver that rounds or ignores the write).
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writes: List[Tuple[str, str]] = []
        self.fail: Dict[str, int] = {}
        self.distort: Dict[str, str] = {}

    def write_text(self, board_path: str, value: str) -> None:
        self.writes.append((board_path, value))
        code = self.fail.get(board_path)
        if code is not None:
            raise OSError(code, os.strerror(code), board_path)
        super().write_text(board_path, self.distort.get(board_path, value))

    def limits(self, devfreq_dir: str) -> Tuple[int, int]:
        return (self.read_int(devfreq_dir + "/min_freq"), self.read_int(devfreq_dir + "/max_freq"))


def result(
    argv: Sequence[str], stdout: str = "", returncode: Optional[int] = 0, timed_out: bool = False
) -> CommandResult:
    return CommandResult(argv=list(argv), returncode=returncode, stdout=stdout, stderr="", timed_out=timed_out)


class FakeBoardRunner:
    """A CommandRunner for a fixture tree: `nvpmodel -q/-m` behave as the real tool (real output text),
    applying a mode to the tree (status file, GPU devfreq min/max); `systemctl` answers from `systemctl`.

    Knobs for failure tests: `fan_line` (JetPack 4 `NV Fan Mode:` line), `verbose_query`, `on_set` (a
    function argv → CommandResult replacing the next `-m` call: timeouts, errors), `query_stdout` (replaces
    every `-q` answer), `ignore_set` (exit 0 but change nothing), `prompt_mode` ("eof": prompt then
    `bad input!`, as with stdin closed; "hang": prompt and a timeout, as if nobody answered a terminal).
    """

    def __init__(self, root: Path, devfreq_dir: Optional[str] = None, tree: Optional[SysfsTree] = None) -> None:
        self.tree = tree if tree is not None else SysfsTree(root)  # share a RecordingTree to see its writes
        self.calls: List[List[str]] = []
        self.systemctl: Dict[str, str] = {"is-active jtop.service": "inactive", "is-system-running": "running"}
        self.fan_line = False
        self.verbose_query = False
        self.on_set: Optional[Callable[[Sequence[str]], CommandResult]] = None
        self.ignore_set = False
        self.prompt_mode = "eof"
        self.query_stdout: Optional[str] = None  # replaces every `-q` answer when set
        self.devfreq_dir = devfreq_dir
        self.timeouts: List[float] = []
        self.settled: List[Tuple[List[str], Optional[ChildProcess]]] = []

    @property
    def set_calls(self) -> List[List[str]]:
        return [c for c in self.calls if c[:2] == ["nvpmodel", "-m"]]

    def _conf(self) -> NvpmodelConf:
        return parse_conf(self.tree.read_text("/etc/nvpmodel.conf"), "/etc/nvpmodel.conf")

    def _mode_id(self) -> int:
        return int(self.tree.read_text("/var/lib/nvpmodel/status").split(":")[1])

    def run(self, argv: Sequence[str], timeout_s: float,
            on_start: Optional[Callable[[ChildProcess], None]] = None) -> CommandResult:
        self.calls.append(list(argv))
        self.timeouts.append(timeout_s)
        if on_start is not None:
            on_start(ChildProcess(FAKE_PID, None))
        if argv[0] == "systemctl":
            key = " ".join(argv[1:])
            if key not in self.systemctl:
                return result(argv, "unknown\n", 4)
            state = self.systemctl[key]
            return result(argv, state + "\n", 0 if state in ("active", "running") else 3)
        if argv[0] != "nvpmodel":
            return result(argv, "", 127)
        if argv[1:] in (["-q"], ["-q", "--verbose"]):
            return self._query(argv)
        if argv[1] == "-m":
            return self._set(argv, int(argv[2]))
        return result(argv, "NVPM ERROR: bad input!\n", 255)

    def _query(self, argv: Sequence[str]) -> CommandResult:
        if self.query_stdout is not None:
            return result(argv, self.query_stdout)
        mode = self._conf().mode_by_id(self._mode_id())
        assert mode is not None
        out = "NV Fan Mode:quiet\n" if self.fan_line else ""
        if self.verbose_query:
            out = (
                "NVPM VERB: Config file: /etc/nvpmodel.conf\nNVPM VERB: parsing done for /etc/nvpmodel.conf\n"
                + out
                + f"NVPM VERB: Current mode: NV Power Mode: {mode.name}\n{mode.id}\n"
                + "NVPM VERB: PARAM CPU_ONLINE: ARG CORE_0: PATH /sys/devices/system/cpu/cpu0/online: "
                "REAL_VAL: 1 CONF_VAL: 1\n"
            )
        else:
            out += f"NV Power Mode: {mode.name}\n{mode.id}\n"
        return result(argv, out)

    def _set(self, argv: Sequence[str], mode_id: int) -> CommandResult:
        if self.on_set is not None:
            handler, self.on_set = self.on_set, None
            return handler(argv)
        conf = self._conf()
        target = conf.mode_by_id(mode_id)
        if target is None:
            return result(argv, f"NVPM ERROR: Invalid power mode id {mode_id}!\n", 255)
        current = conf.mode_by_id(self._mode_id())
        assert current is not None
        if reboot_reason(current.power_mode, target.power_mode) is not None:
            prompt = REBOOT_PROMPT.format(id=mode_id)
            if self.prompt_mode == "hang":
                return result(argv, prompt, None, timed_out=True)
            return result(argv, prompt + "\n" + BAD_INPUT, 255)
        if self.ignore_set:
            return result(argv)
        self.tree.write_text("/var/lib/nvpmodel/status", f"pmode:{mode_id:04d}\n")
        if self.devfreq_dir is not None:
            table = [int(w) for w in self.tree.read_text(self.devfreq_dir + "/available_frequencies").split()]
            cap = target.power_mode.gpu_max_freq_hz
            # nvpmodel writes the mode's GPU MIN_FREQ (0: the lowest) and MAX_FREQ (-1: the highest).
            self.tree.write_text(self.devfreq_dir + "/min_freq", str(table[0]))
            self.tree.write_text(self.devfreq_dir + "/max_freq", str(snap_down(table, cap) if cap else table[-1]))
        return result(argv)

    def spawn(self, argv: Sequence[str]) -> StreamingProcess:
        raise NotImplementedError("the fake board runs no streaming programs")

    def cancel_running(self) -> List[int]:
        return []  # its programs finish inside run()

    def settle(self, argv: Sequence[str], child: Optional[ChildProcess], wait_s: float) -> str:
        self.settled.append((list(argv), child))
        return f"{' '.join(argv)!r} is not running"


__all__ = [
    "BAD_INPUT",
    "BOARDS",
    "FAKE_PID",
    "REBOOT_PROMPT",
    "SPECS",
    "BoardSpec",
    "ChildProcess",
    "FakeBoardRunner",
    "RecordingTree",
    "SwitchRecord",
    "conf_text",
    "make_tree",
    "result",
    "snap_down",
]
