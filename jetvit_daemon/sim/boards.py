"""Board profiles of the simulated Jetson: what each board IS (files, names, tables, calibration).

>>> profile = get_profile("orin-nano-super")
>>> profile.long_name
'Jetson Orin Nano 8GB Super (JetPack 6.2)'
>>> [m.name for m in load_conf(profile).modes]
['15W', '25W', 'MAXN_SUPER']

Pure data, immutable, shared freely between threads. Every fact cites its source: the reference captures in
`jetson-reference/` (README.md sections, tegrastats `samples.txt` line numbers, nvpmodel confs and
SOURCES.md). Values that are the simulator's own estimates say so; docs/SIMULATION.md gives the reasoning.
The power modes themselves (GPU caps, online cores, power-gating masks) are never restated here: they come
from the profile's nvpmodel.conf in `confs/`, parsed with the daemon's own parser.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.hardware.nvpmodel import NvpmodelConf, parse_conf

CONF_DIR = Path(__file__).resolve().parent / "confs"

# Style of the tegrastats line and of the sysfs layout, by JetPack generation.
STYLE_JP4 = "jp4"  # L4T 32: no timestamp, `GR3D_FREQ x%@MHz`, rails `cur/avg` without unit, iio INA3221
STYLE_JP6 = "jp6"  # L4T 36: timestamp, `GR3D_FREQ x%@[MHz]`, rails `cur mW/avg mW`, hwmon INA3221

# Rail roles: the module's total input rail; a part of the total (AGX Orin, whose three main rails sum to
# the module input, jetson-reference README "Power monitors"); a sub-rail measured inside the total;
# an unconnected channel.
ROLE_TOTAL = "total"
ROLE_PART = "part"
ROLE_SUB = "sub"
ROLE_NC = "nc"

COOLINGS = ("fan", "passive", "enclosure")


@dataclass(frozen=True)
class TripPoint:
    """One thermal-zone trip point as sysfs shows it (`trip_point_N_temp/_type/_hyst`)."""

    temp_c: float
    type: str  # "passive" (software throttling), "hot" (hardware throttling), "critical" (shutdown)
    hyst_c: float = 0.0


@dataclass(frozen=True)
class ThermalZoneSpec:
    """A thermal zone: its sysfs `type`, where its temperature comes from, and how tegrastats names it.

    temperature = junction temperature + `offset_c`, quantised to `resolution_c`; `fixed_c` replaces that
    with a constant (Nano PMIC-Die prints a fixed 100 °C; Orin Nano cv zones read 0), `gated` makes the
    zone read -256 °C, the value Orin sensors show while their cluster is power-gated (DLA idle).
    """

    type: str
    offset_c: float = 0.0
    resolution_c: float = 1.0 / 32.0
    fixed_c: Optional[float] = None
    gated: bool = False
    tegrastats_name: Optional[str] = None  # None: tegrastats does not print this zone
    trips: Tuple[TripPoint, ...] = ()


@dataclass(frozen=True)
class RailSpec:
    """One INA3221 channel. Its power = idle_w + core_idle_w × online cores + gpu_share × GPU power +
    cpu_share × CPU power; the total rail thus carries the memory/SoC/regulator overhead the compute load
    drags along (calibrated from samples 29 and 30)."""

    label: str
    role: str
    idle_w: float = 0.0
    core_idle_w: float = 0.0
    gpu_share: float = 0.0
    cpu_share: float = 0.0
    bus_mv: int = 5000


@dataclass(frozen=True)
class PowerMonitorSpec:
    """One INA3221 chip: `iio` (JetPack 4 ina3221x driver, channels 0..2) or `hwmon` (JetPack 5+ ina3221
    driver, channels 1..3 plus in7 "sum of shunt voltages"), at `device_dir` (board path)."""

    layout: str  # "iio" | "hwmon"
    device_dir: str  # .../iio:device0 or .../hwmon/hwmon1
    rails: Tuple[RailSpec, ...]


@dataclass(frozen=True)
class CoolingSpec:
    """First-order thermal path to ambient: thermal resistance (°C/W) and heat capacity (J/°C);
    the time constant is τ = R·C."""

    r_c_per_w: float
    heat_capacity_j_per_c: float

    @property
    def tau_s(self) -> float:
        return self.r_c_per_w * self.heat_capacity_j_per_c


@dataclass(frozen=True)
class ViTCalibration:
    """Throughput of a ViT-B/16-class model used to calibrate `inference_time_s`: `fps` at `batch` with the
    GPU at `freq_hz` with `tpcs` active TPCs. Two points fix the batch overhead and the work per image."""

    points: Tuple[Tuple[int, float], ...]  # (GPU Hz, images/s)
    batch: int
    tpcs: int
    batch_penalty: float  # batch work = (batch + penalty) × image work: small batches fill the GPU less
    source: str


@dataclass(frozen=True)
class PhysicsSpec:
    """The numbers of the board's physics (board.py); see docs/SIMULATION.md for each derivation."""

    cpu_core_w: float  # power of one CPU core at 100 % load at the top of the cpufreq table
    gpu_w_per_tpc_ghz_v2: float  # GPU switched capacitance: W per active TPC per GHz per V²
    gpu_v0_v: float  # GPU voltage V(f) = v0 + dv × f[GHz]: rising with f (assumed linear DVFS curve)
    gpu_dv_v_per_ghz: float
    gpu_clock_share: float  # β: un-gated clock tree + leakage, as a fraction of the full-load dynamic power
    gpu_gate_util: float  # below this utilisation the GPU spends part of the time rail-gated
    tpcs_total: int  # TPCs of the full GPU (a TPC_PG_MASK bit each); 1 on the Nano (no mask)
    tpcs_module: int  # TPCs the module has enabled at most (the rest are fused off)
    throttle_zone: str  # the zone whose passive trip throttles the GPU
    throttle_cap_hz: int  # GPU cap while throttled (snapped to the table)
    cooling: Mapping[str, CoolingSpec]
    vit: ViTCalibration


@dataclass(frozen=True)
class TegrastatsSpec:
    """The constant parts of the board's tegrastats line (RAM, swap, engines), from its real samples."""

    ram_total_mb: int
    ram_used_mb: int
    lfb: str  # "25x4MB"
    swap_total_mb: Optional[int]
    swap_used_mb: int
    swap_cached_mb: int
    emc_max_mhz: int
    engines: str  # printed verbatim between GR3D_FREQ and the temperatures
    gpcs: int  # JetPack 5.1+ prints one GR3D clock per GPC: `@[f]` / `@[f,f]`
    iram: Optional[str] = None  # Nano as root: "IRAM 0/252kB(lfb 252kB)"


@dataclass(frozen=True)
class DevfreqSpec:
    """Where the GPU's devfreq node lives and what points at it."""

    real_dir: str  # the node's directory under /sys/devices
    class_name: str  # its name in /sys/class/devfreq
    device_dir: str  # the GPU device (`device` link target; has `load`)
    of_node_dir: str  # the device tree node (`device/of_node` link target)
    of_node_name: str  # `of_node/name`, matched by jetson_clocks (gpu, ga10b, ...)


@dataclass(frozen=True)
class BoardProfile:
    """Everything that makes one simulated board model. See the module docstring."""

    name: str
    long_name: str
    model: str  # /proc/device-tree/model
    compatible: Tuple[str, ...]  # /proc/device-tree/compatible
    nv_tegra_release: str  # /etc/nv_tegra_release, first line
    conf_file: str  # in CONF_DIR; becomes /etc/nvpmodel/<conf_file>, /etc/nvpmodel.conf links to it
    conf_source: str
    style: str  # STYLE_JP4 | STYLE_JP6
    gpu_table_hz: Tuple[int, ...]
    gpu_table_source: str
    devfreq: DevfreqSpec
    cpu_clusters: Tuple[Tuple[int, ...], ...]  # CPUs sharing one cpufreq policy, first is the policy's name
    cpu_table_khz: Tuple[int, ...]
    thermal_zones: Tuple[ThermalZoneSpec, ...]  # thermal_zone0, 1, ... in this order
    tegrastats_temp_order: Tuple[str, ...]  # zone types in the order tegrastats prints them
    power_monitors: Tuple[PowerMonitorSpec, ...]
    physics: PhysicsSpec
    tegrastats: TegrastatsSpec
    mode_budget_w: Mapping[str, float]  # mode name → power budget the sim keeps full load under
    budget_source: str
    extra_devfreq: Tuple[DevfreqSpec, ...] = ()  # other devfreq nodes (not the GPU), for discovery realism
    notes: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def cpu_count(self) -> int:
        return sum(len(c) for c in self.cpu_clusters)

    @property
    def rails(self) -> Tuple[RailSpec, ...]:
        return tuple(r for mon in self.power_monitors for r in mon.rails)

    def zone(self, zone_type: str) -> ThermalZoneSpec:
        for z in self.thermal_zones:
            if z.type == zone_type:
                return z
        raise KeyError(zone_type)


# --- GPU frequency tables (Hz), jetson-reference README "GPU devfreq" -----------------------------------

# Nano: 76.8 MHz … 921.6 MHz in 12 steps of 76.8 MHz.
GPU_TABLE_NANO_HZ = tuple(76800000 * k for k in range(1, 13))
# Orin NX 16GB: 306 … 918 MHz in steps of 102 MHz.
GPU_TABLE_ORIN_NX_HZ = (306000000, 408000000, 510000000, 612000000, 714000000, 816000000, 918000000)
# Orin Nano Super: the Orin NX table plus 1020 MHz.
GPU_TABLE_ORIN_NANO_SUPER_HZ = (*GPU_TABLE_ORIN_NX_HZ, 1020000000)
# Orin Nano (original, JetPack 5/6.0): the p3767 table cut at the module's 625 MHz maximum (README "Power
# modes in numbers": 15W GPU uncapped ≈ 625 MHz). The top entry 624750000 is the t234 GPU clock step on the
# AGX Orin table below; sample 29 shows the clock reading 621 MHz near it.
GPU_TABLE_ORIN_NANO_HZ = (306000000, 408000000, 510000000, 612000000, 624750000)
# AGX Orin: 114.75 … 1300.5 MHz, 13 entries (README); the steps between are 102 MHz.
GPU_TABLE_AGX_ORIN_HZ = (*(114750000 + 102000000 * k for k in range(12)), 1300500000)


def _orin_cpu_table(top_khz: int) -> Tuple[int, ...]:
    # Orin A78AE cpufreq steps of 76.8 MHz from 115.2 MHz: every CPU value in the Orin confs (729600, 960000,
    # 1113600, 1190400, 1497600, 1651200, 1728000 kHz) and in samples 24-30 (729, 1420, 2201 MHz) is on it.
    grid = [115200 + 76800 * k for k in range(40)]
    return (*(f for f in grid if f < top_khz), top_khz)


# Nano A57 cpufreq table (kHz); samples 5-7 show 204, 1036, 1224 MHz and the 5W mode caps at 918000.
CPU_TABLE_NANO_KHZ = (
    102000, 204000, 307200, 403200, 518400, 614400, 710400, 825600, 918000, 1036800, 1132800, 1224000,
    1326000, 1428000, 1479000,
)

# --- thermal zones -----------------------------------------------------------------------------------------

# Orin trip points: README "thermal zones" reports 99 / 103 / 105 °C figures; we give them the kernel's
# passive (software throttling) / hot (hardware throttling) / critical (shutdown) roles. The 5 °C release
# hysteresis is the simulator's choice (no real value in the reference set).
_ORIN_TRIPS = (
    TripPoint(99.0, "passive", 5.0),
    TripPoint(103.0, "hot", 0.0),
    TripPoint(105.0, "critical", 0.0),
)
# Nano: README "GPU throttles near 101 °C, shuts down at 103 °C"; same 5 °C release hysteresis.
_NANO_TRIPS = (TripPoint(101.0, "passive", 5.0), TripPoint(103.0, "critical", 0.0))


def _orin_zones(dla: bool) -> Tuple[ThermalZoneSpec, ...]:
    # JetPack 6 Orin zone list and order (README): cpu, gpu, cv0-2, soc0-2, tj. Offsets from tj are those of
    # sample 29 (Orin Nano, GPU 63 % busy): cpu 53.968 = tj, gpu 53.343, soc2 52.437, soc1 51.656, soc0 50.75.
    # cv zones: on the Orin Nano (no DLA) they read 0 (README "0 on boards without DLA"); boards with DLAs
    # show -256 °C while the DLA is power-gated (sample 23, AGX Orin), and the daemon never uses the DLA.
    def cv(n: int) -> ThermalZoneSpec:
        if dla:
            return ThermalZoneSpec(f"cv{n}-thermal", gated=True)
        return ThermalZoneSpec(f"cv{n}-thermal", fixed_c=0.0)

    return (
        ThermalZoneSpec("cpu-thermal", 0.0, tegrastats_name="cpu", trips=_ORIN_TRIPS),
        ThermalZoneSpec("gpu-thermal", -0.625, tegrastats_name="gpu", trips=_ORIN_TRIPS),
        cv(0),
        cv(1),
        cv(2),
        ThermalZoneSpec("soc0-thermal", -3.21875, tegrastats_name="soc0", trips=_ORIN_TRIPS),
        ThermalZoneSpec("soc1-thermal", -2.3125, tegrastats_name="soc1", trips=_ORIN_TRIPS),
        ThermalZoneSpec("soc2-thermal", -1.53125, tegrastats_name="soc2", trips=_ORIN_TRIPS),
        ThermalZoneSpec("tj-thermal", 0.0, tegrastats_name="tj", trips=_ORIN_TRIPS),
    )


# tegrastats prints Orin temperatures in this order on JetPack 6 (samples 24-26, 29, 30).
_ORIN_TEMP_ORDER = (
    "cpu-thermal", "soc2-thermal", "soc0-thermal", "gpu-thermal", "tj-thermal", "soc1-thermal",
)

# Nano zones and order (README: AO-therm, CPU-therm, GPU-therm, PLL-therm, PMIC-Die, thermal-fan-est).
# Offsets from GPU-therm, the junction the simulator integrates, as samples 5 and 7 show them: AO runs 3.5 °C
# above, CPU 0.5, PLL 2 below, thermal-fan-est (a weighted estimate) 0.25 above. Resolution 0.5 °C
# (every Nano zone value in samples 5-7 is a multiple of 0.5, thermal-fan-est of 0.25). PMIC-Die: 100 °C.
_NANO_ZONES = (
    ThermalZoneSpec("AO-therm", 3.5, 0.5, tegrastats_name="AO"),
    ThermalZoneSpec("CPU-therm", 0.5, 0.5, tegrastats_name="CPU", trips=_NANO_TRIPS),
    ThermalZoneSpec("GPU-therm", 0.0, 0.5, tegrastats_name="GPU", trips=_NANO_TRIPS),
    ThermalZoneSpec("PLL-therm", -2.0, 0.5, tegrastats_name="PLL"),
    ThermalZoneSpec("PMIC-Die", 0.0, 0.5, fixed_c=100.0, tegrastats_name="PMIC"),
    ThermalZoneSpec("thermal-fan-est", 0.25, 0.25, tegrastats_name="thermal"),
)
# Sample 7 (Nano, JetPack 4): PLL CPU PMIC GPU AO thermal.
_NANO_TEMP_ORDER = ("PLL-therm", "CPU-therm", "PMIC-Die", "GPU-therm", "AO-therm", "thermal-fan-est")

# --- power monitors ----------------------------------------------------------------------------------------

# Orin Nano / Orin NX: one INA3221 on the JetPack 5+ hwmon driver: VDD_IN, VDD_CPU_GPU_CV, VDD_SOC (README).
# Calibration from samples 30 (idle: 4824 / 518 / 1475 mW) and 29 (GPU 63 % at 621 MHz: 12479 / 4667 / 2817
# mW): the compute rail rose 4.15 W, VDD_SOC 1.34 W (0.32 of it: memory traffic), VDD_IN 7.66 W (1.845 of
# it: SoC, DRAM and regulator losses ride on top). CPU load drags less memory along (estimate: 0.10 / 1.3).
# Each online core costs 0.25 W of idle input power (the core, its cluster clocks and their conversion loss),
# 0.05 W of it on the compute rail: an estimate that puts the 4-core 7W mode ~1 W below 15W at idle, in line
# with a stripped Orin Nano idling at 2.2 W (README "Measured power").
_ORIN_HWMON = "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"


def _orin_small_rails(idle_total_w: float, idle_cgc_w: float, idle_soc_w: float) -> Tuple[RailSpec, ...]:
    return (
        RailSpec("VDD_IN", ROLE_TOTAL, idle_total_w, 0.25, 1.845, 1.3, 5048),
        RailSpec("VDD_CPU_GPU_CV", ROLE_SUB, idle_cgc_w, 0.05, 1.0, 1.0, 5040),
        RailSpec("VDD_SOC", ROLE_SUB, idle_soc_w, 0.0, 0.323, 0.10, 5040),
    )


# --- profiles ----------------------------------------------------------------------------------------------

_ORIN_DEVFREQ = DevfreqSpec(
    # JetPack 6 layout (README "GPU devfreq"): /sys/class/devfreq/17000000.gpu → this node; `device/of_node/
    # name` is "gpu".
    real_dir="/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu",
    class_name="17000000.gpu",
    device_dir="/sys/devices/platform/bus@0/17000000.gpu",
    of_node_dir="/sys/firmware/devicetree/base/bus@0/gpu@17000000",
    of_node_name="gpu",
)
# A second devfreq node every Orin has (the VIC video engine), so GPU discovery must match `of_node/name`.
_ORIN_VIC_DEVFREQ = DevfreqSpec(
    real_dir="/sys/devices/platform/bus@0/13e00000.host1x/15340000.vic/devfreq/15340000.vic",
    class_name="15340000.vic",
    device_dir="/sys/devices/platform/bus@0/13e00000.host1x/15340000.vic",
    of_node_dir="/sys/firmware/devicetree/base/bus@0/host1x@13e00000/vic@15340000",
    of_node_name="vic",
)

# Orin GPU (Ampere ga10b, TPCs of 2 SMs, 8 TPCs on the full t234): calibrated on the Orin Nano, see
# docs/SIMULATION.md "GPU power". Cross-check: AGX Orin per-TPC GPU power from README "Measured power".
_ORIN_VIT = ViTCalibration(
    # NVIDIA's published ViT-B/16 throughput (README "Power modes in numbers"): 98 FPS on the original Orin
    # Nano (GPU 624.75 MHz), 158 FPS on the Super in MAXN_SUPER (1020 MHz), both with 4 TPCs (mask 240).
    # The batch size is not published; we take the numbers as batch-8 throughput.
    points=((624750000, 98.0), (1020000000, 158.0)),
    batch=8,
    tpcs=4,
    batch_penalty=1.0,
    source="NVIDIA ViT-B/16 98 FPS (Orin Nano) / 158 FPS (Orin Nano Super), jetson-reference README",
)


def _orin_physics(cooling: Mapping[str, CoolingSpec], throttle_cap_hz: int) -> PhysicsSpec:
    # Orin Nano 8GB and Orin NX 16GB: 1024 CUDA cores = 8 SMs = 4 TPCs of the t234's 8 (NVIDIA module
    # specifications); their confs never ungate more (TPC_PG_MASK 240 at most).
    return PhysicsSpec(
        cpu_core_w=0.55,
        gpu_w_per_tpc_ghz_v2=4.08,
        gpu_v0_v=0.5,
        gpu_dv_v_per_ghz=1.0 / 3.06,
        gpu_clock_share=0.6,
        gpu_gate_util=0.1,
        tpcs_total=8,
        tpcs_module=4,
        throttle_zone="tj-thermal",
        throttle_cap_hz=throttle_cap_hz,
        cooling=cooling,
        vit=_ORIN_VIT,
    )


# Orin Nano / NX developer kit (same carrier and heatsink): with the fan, R from sample 29 (tj 54 °C at
# 12.5 W, ambient taken as 25 °C) = 2.3 °C/W; passive and enclosure are estimates. "enclosure" is the fan
# heatsink inside a vented camera box: the fan recirculates warmer air (worse than open air), but still moves
# it (better than no fan); 3.0 °C/W puts full load at 45 °C ambient over the 99 °C trip in 25W/MAXN_SUPER
# (≥ 23 W) and under it in 15W (≤ 14.3 W), the trade a hot-site operator faces. C = 60 J/°C (module plus
# ~60 g aluminium heatsink) gives τ = 138 s with the fan.
_ORIN_DEVKIT_COOLING = {
    "fan": CoolingSpec(2.3, 60.0),
    "passive": CoolingSpec(5.0, 60.0),
    "enclosure": CoolingSpec(3.0, 60.0),
}

_JP6_ORIN_NANO_TEGRASTATS = TegrastatsSpec(
    # Sample 29 (Orin Nano 8GB, JetPack 6): RAM 6185/7620MB, SWAP 851/3810MB, EMC at 2133 MHz, engines.
    ram_total_mb=7620,
    ram_used_mb=3452,
    lfb="25x4MB",
    swap_total_mb=3810,
    swap_used_mb=851,
    swap_cached_mb=1,
    emc_max_mhz=2133,
    engines="NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200",
    gpcs=1,
)

# L4T release lines: format of the real file (`# R36 (release), REVISION: 4.3, GCID: ..., BOARD: generic,
# EABI: aarch64, DATE: ...`); GCID and DATE are illustrative, the release numbers are what matters.
_L4T_36_3_0 = (
    "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, "
    "DATE: Mon May  6 17:34:21 UTC 2024"
)
_L4T_36_4_3 = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025"
)
_L4T_32_6_1 = (
    "# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t210ref, EABI: aarch64, "
    "DATE: Mon Jul 26 19:20:30 UTC 2021"
)

# Engines of the Orin modules with encoder and DLAs, as sample 26 (AGX Orin, JetPack 6) prints them idle.
_ORIN_DLA_ENGINES = (
    "NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off NVDLA0 off NVDLA1 off PVA0_FREQ off"
)

_LINEAGE = (
    "LineageOS/android_device_nvidia_concord nvpmodel/nvpmodel_{}.conf @ 54e49538 "
    "(jetson-reference/nvpmodel)"
)

ORIN_NANO_SUPER = BoardProfile(
    name="orin-nano-super",
    long_name="Jetson Orin Nano 8GB Super (JetPack 6.2)",
    model="NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
    compatible=("nvidia,p3768-0000+p3767-0005-super", "nvidia,p3767-0005", "nvidia,tegra234"),
    nv_tegra_release=_L4T_36_4_3,
    conf_file="nvpmodel_p3767_0003_super.conf",
    conf_source="derived from the stock p3767_0003 file per SOURCES.md (commit 370b63a8); see its header",
    style=STYLE_JP6,
    gpu_table_hz=GPU_TABLE_ORIN_NANO_SUPER_HZ,
    gpu_table_source="README 'GPU devfreq': Orin NX 16GB table plus 1020000000",
    devfreq=_ORIN_DEVFREQ,
    extra_devfreq=(_ORIN_VIC_DEVFREQ,),
    cpu_clusters=((0, 1, 2, 3), (4, 5)),
    cpu_table_khz=_orin_cpu_table(1728000),  # Super CPU maximum 1.7 GHz (NVIDIA Super announcement)
    thermal_zones=_orin_zones(dla=False),
    tegrastats_temp_order=_ORIN_TEMP_ORDER,
    power_monitors=(PowerMonitorSpec("hwmon", _ORIN_HWMON, _orin_small_rails(3.3, 0.218, 1.475)),),
    physics=_orin_physics(_ORIN_DEVKIT_COOLING, throttle_cap_hz=612000000),
    tegrastats=TegrastatsSpec(
        ram_total_mb=7620, ram_used_mb=3452, lfb="25x4MB", swap_total_mb=3810, swap_used_mb=851,
        swap_cached_mb=1,
        emc_max_mhz=3199,  # Super: LPDDR5 at 3199 MHz (68 → 102 GB/s); EMC@3199 appears in samples 27-28
        engines="NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200", gpcs=1,
    ),
    mode_budget_w={"15W": 15.0, "25W": 25.0, "MAXN_SUPER": 30.0},
    budget_source=(
        "15W and 25W from the mode names; MAXN_SUPER has no published cap (README: uncapped), the sim keeps "
        "it under 30 W (its own bound, 20 % above the 25W mode)"
    ),
)

ORIN_NANO = BoardProfile(
    name="orin-nano",
    long_name="Jetson Orin Nano 8GB (JetPack 6.0)",
    # The Super's model string without " Super" (the JetPack 6.0 devkit); not from a capture.
    model="NVIDIA Jetson Orin Nano Engineering Reference Developer Kit",
    compatible=("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"),
    nv_tegra_release=_L4T_36_3_0,
    conf_file="nvpmodel_p3767_0003.conf",
    conf_source=_LINEAGE.format("p3767_0003"),
    style=STYLE_JP6,
    gpu_table_hz=GPU_TABLE_ORIN_NANO_HZ,
    gpu_table_source="README 'GPU devfreq' p3767 table cut at 625 MHz (README 'Power modes in numbers')",
    devfreq=_ORIN_DEVFREQ,
    extra_devfreq=(_ORIN_VIC_DEVFREQ,),
    cpu_clusters=((0, 1, 2, 3), (4, 5)),
    cpu_table_khz=_orin_cpu_table(1510400),  # Orin Nano CPU maximum 1.5 GHz
    thermal_zones=_orin_zones(dla=False),
    tegrastats_temp_order=_ORIN_TEMP_ORDER,
    power_monitors=(PowerMonitorSpec("hwmon", _ORIN_HWMON, _orin_small_rails(3.3, 0.218, 1.475)),),
    physics=_orin_physics(_ORIN_DEVKIT_COOLING, throttle_cap_hz=408000000),
    tegrastats=_JP6_ORIN_NANO_TEGRASTATS,
    mode_budget_w={"15W": 15.0, "7W": 7.0},
    budget_source="the mode names (stock p3767_0003 conf)",
)

ORIN_NX_16GB = BoardProfile(
    name="orin-nx-16gb",
    long_name="Jetson Orin NX 16GB (JetPack 6.0)",
    model="NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
    compatible=("nvidia,p3768-0000+p3767-0000", "nvidia,p3767-0000", "nvidia,tegra234"),
    nv_tegra_release=_L4T_36_3_0,
    conf_file="nvpmodel_p3767_0000.conf",
    conf_source=_LINEAGE.format("p3767_0000"),
    style=STYLE_JP6,
    gpu_table_hz=GPU_TABLE_ORIN_NX_HZ,
    gpu_table_source="README 'GPU devfreq': Orin NX 16GB",
    devfreq=_ORIN_DEVFREQ,
    extra_devfreq=(_ORIN_VIC_DEVFREQ,),
    cpu_clusters=((0, 1, 2, 3), (4, 5, 6, 7)),
    cpu_table_khz=_orin_cpu_table(1984000),  # Orin NX 16GB CPU maximum 2.0 GHz
    thermal_zones=_orin_zones(dla=True),
    tegrastats_temp_order=_ORIN_TEMP_ORDER,
    # No Orin NX capture in the reference set: the Orin Nano calibration (same module family and rails,
    # README) with a 0.5 W higher idle for the two extra cores, 16 GB and the DLAs (estimate).
    power_monitors=(PowerMonitorSpec("hwmon", _ORIN_HWMON, _orin_small_rails(3.3, 0.218, 1.6)),),
    physics=_orin_physics(_ORIN_DEVKIT_COOLING, throttle_cap_hz=510000000),
    tegrastats=TegrastatsSpec(
        ram_total_mb=15389, ram_used_mb=3980, lfb="1290x4MB", swap_total_mb=7694, swap_used_mb=0,
        swap_cached_mb=0, emc_max_mhz=3199,
        engines=_ORIN_DLA_ENGINES + " APE 200",
        gpcs=1,
    ),
    mode_budget_w={"MAXN": 25.0, "10W": 10.0, "15W": 15.0, "25W": 25.0},
    budget_source="the mode names; MAXN: the Orin NX 16GB module's 25 W maximum (sim's bound)",
)

AGX_ORIN_64GB = BoardProfile(
    name="agx-orin-64gb",
    long_name="Jetson AGX Orin 64GB (JetPack 6.0)",
    model="NVIDIA Jetson AGX Orin Developer Kit",
    compatible=("nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"),
    nv_tegra_release=_L4T_36_3_0,
    # The 64GB module ships nvpmodel_p3701_0005.conf, not in the reference set; p3701_0000 (the devkit
    # module) has the same modes the README lists for the 64GB: MAXN, 15W ≤ 408, 30W ≤ 612, 50W ≤ 816 MHz.
    conf_file="nvpmodel_p3701_0000.conf",
    conf_source=_LINEAGE.format("p3701_0000"),
    style=STYLE_JP6,
    gpu_table_hz=GPU_TABLE_AGX_ORIN_HZ,
    gpu_table_source="README 'GPU devfreq': AGX Orin, 13 entries",
    devfreq=_ORIN_DEVFREQ,
    extra_devfreq=(_ORIN_VIC_DEVFREQ,),
    cpu_clusters=((0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)),
    cpu_table_khz=_orin_cpu_table(2201600),  # samples 24-26: CPU at 2201 MHz
    thermal_zones=_orin_zones(dla=True),
    tegrastats_temp_order=_ORIN_TEMP_ORDER,
    power_monitors=(
        # Sample 23 (AGX Orin 64GB idle, JetPack 5): VDD_GPU_SOC 2340, VDD_CPU_CV 390, VIN_SYS_5V0 4025,
        # second chip NC / VDDQ_VDD2_1V8AO 301 / NC (mW). The three main rails sum to the module input
        # (README).
        PowerMonitorSpec("hwmon", _ORIN_HWMON, (
            RailSpec("VDD_GPU_SOC", ROLE_PART, 2.34, 0.0, 1.0, 0.05, 5032),
            RailSpec("VDD_CPU_CV", ROLE_PART, 0.09, 0.025, 0.0, 1.0, 5032),
            RailSpec("VIN_SYS_5V0", ROLE_PART, 4.025, 0.0, 0.35, 0.25, 5024),
        )),
        PowerMonitorSpec("hwmon", "/sys/bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon2", (
            RailSpec("NC", ROLE_NC),
            RailSpec("VDDQ_VDD2_1V8AO", ROLE_SUB, 0.30, 0.0, 0.15, 0.02, 5024),
            RailSpec("NC", ROLE_NC),
        )),
    ),
    physics=PhysicsSpec(
        cpu_core_w=0.6,
        gpu_w_per_tpc_ghz_v2=4.08,
        gpu_v0_v=0.5,
        gpu_dv_v_per_ghz=1.0 / 3.06,
        gpu_clock_share=0.6,
        gpu_gate_util=0.1,
        tpcs_total=8,
        tpcs_module=8,  # AGX Orin 64GB: 2048 CUDA cores, all 8 TPCs (MAXN mask 0)
        throttle_zone="tj-thermal",
        throttle_cap_hz=726750000,
        # Dev kit: large heatsink and fan (estimates): 60 W → 73 °C with the fan; C = 250 J/°C.
        cooling={"fan": CoolingSpec(0.8, 250.0), "passive": CoolingSpec(2.0, 250.0),
                 "enclosure": CoolingSpec(3.0, 250.0)},
        vit=_ORIN_VIT,
    ),
    tegrastats=TegrastatsSpec(
        # Sample 26 (AGX Orin 64GB, JetPack 6): RAM 7822/62841MB, SWAP 0/31421MB, two GPCs, engines.
        ram_total_mb=62841, ram_used_mb=7822, lfb="73x4MB", swap_total_mb=31421, swap_used_mb=0,
        swap_cached_mb=0, emc_max_mhz=3199,
        engines=_ORIN_DLA_ENGINES + " APE 174",
        gpcs=2,
    ),
    mode_budget_w={"MAXN": 60.0, "MODE_15W": 15.0, "MODE_30W": 30.0, "MODE_50W": 50.0},
    budget_source="the mode names; MAXN: README 'module maximum 60 W (64GB)'",
)

NANO = BoardProfile(
    name="nano",
    long_name="Jetson Nano 4GB (JetPack 4.6)",
    model="NVIDIA Jetson Nano Developer Kit",
    compatible=("nvidia,p3449-0000-b00+p3448-0000-b00", "nvidia,jetson-nano", "nvidia,tegra210"),
    nv_tegra_release=_L4T_32_6_1,
    # On the Nano the file is /etc/nvpmodel/nvpmodel_t210_jetson-nano.conf; content: the stock NVIDIA 2019
    # file from rageer-git/jetson-nano-image-maker @ df3f4672 (SOURCES.md).
    conf_file="nvpmodel_t210_jetson-nano.conf",
    conf_source="rageer-git/jetson-nano-image-maker nvpmodel.conf @ df3f4672 (jetson-reference/nvpmodel)",
    style=STYLE_JP4,
    gpu_table_hz=GPU_TABLE_NANO_HZ,
    gpu_table_source="README 'GPU devfreq': Nano 76.8 … 921.6 MHz in 12 steps",
    devfreq=DevfreqSpec(
        # README: /sys/devices/57000000.gpu/devfreq/57000000.gpu/ (also reached as /sys/devices/gpu.0/
        # devfreq/57000000.gpu/, the path the Nano conf names); `of_node/name` is "gpu".
        real_dir="/sys/devices/57000000.gpu/devfreq/57000000.gpu",
        class_name="57000000.gpu",
        device_dir="/sys/devices/57000000.gpu",
        of_node_dir="/sys/firmware/devicetree/base/gpu@57000000",
        of_node_name="gpu",
    ),
    cpu_clusters=((0, 1, 2, 3),),
    cpu_table_khz=CPU_TABLE_NANO_KHZ,
    thermal_zones=_NANO_ZONES,
    tegrastats_temp_order=_NANO_TEMP_ORDER,
    power_monitors=(
        # JetPack 4 iio layout (README); rails POM_5V_IN / POM_5V_GPU / POM_5V_CPU (samples 5-7). Idle from
        # sample 7: 1022 / 0 / 204 mW. Shares: estimates (docs/SIMULATION.md).
        PowerMonitorSpec("iio", "/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0", (
            RailSpec("POM_5V_IN", ROLE_TOTAL, 0.822, 0.05, 1.35, 1.2, 5016),
            RailSpec("POM_5V_GPU", ROLE_SUB, 0.0, 0.0, 1.0, 0.0, 5016),
            RailSpec("POM_5V_CPU", ROLE_SUB, 0.004, 0.05, 0.0, 1.0, 5016),
        )),
    ),
    physics=PhysicsSpec(
        cpu_core_w=0.55,
        # Maxwell GM20B, one SM (128 cores), no TPC mask: full load at 921.6 MHz ≈ 4.5 W on POM_5V_GPU,
        # so MAXN stays under the Nano's 10 W (README "Measured power"); V 0.80 … 1.10 V (assumed).
        gpu_w_per_tpc_ghz_v2=4.035,
        gpu_v0_v=0.8,
        gpu_dv_v_per_ghz=0.3 / 0.9216,
        gpu_clock_share=0.6,
        gpu_gate_util=0.1,
        tpcs_total=1,
        tpcs_module=1,
        throttle_zone="GPU-therm",
        throttle_cap_hz=537600000,
        # Dev kit heatsink (passive as shipped, optional 5 V fan): estimates; C = 80 J/°C.
        cooling={"fan": CoolingSpec(3.0, 80.0), "passive": CoolingSpec(5.0, 80.0),
                 "enclosure": CoolingSpec(7.5, 80.0)},
        vit=ViTCalibration(
            # No published ViT-B/16 figure for the Nano: ~10 FPS at batch 8 estimated from its 472 GFLOPS
            # FP16 peak at ~37 % efficiency (17.6 GFLOP per image); docs/SIMULATION.md.
            points=((921600000, 10.0),),
            batch=8,
            tpcs=1,
            batch_penalty=1.0,
            source="estimate (no published Nano ViT-B/16 figure)",
        ),
    ),
    tegrastats=TegrastatsSpec(
        # Sample 7 (Nano 4GB, JetPack 4): RAM x/3964MB, SWAP x/1982MB, IRAM, EMC at 1600 MHz, APE 25.
        ram_total_mb=3964, ram_used_mb=1923, lfb="98x4MB", swap_total_mb=1982, swap_used_mb=5,
        swap_cached_mb=1, emc_max_mhz=1600, engines="APE 25", gpcs=1, iram="IRAM 0/252kB(lfb 252kB)",
    ),
    mode_budget_w={"MAXN": 10.0, "5W": 5.0},
    budget_source="the mode names; MAXN: README 'draws up to 10 W in MAXN'",
)

PROFILES: Dict[str, BoardProfile] = {
    p.name: p for p in (NANO, ORIN_NANO, ORIN_NANO_SUPER, ORIN_NX_16GB, AGX_ORIN_64GB)
}
DEFAULT_PROFILE = ORIN_NANO_SUPER.name


def get_profile(name: str) -> BoardProfile:
    """The profile called `name`; ConfigError naming the valid ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            "unknown simulated board {!r}; valid: {}".format(name, ", ".join(sorted(PROFILES)))
        ) from None


def conf_text(profile: BoardProfile) -> str:
    """The profile's nvpmodel.conf, as shipped in jetvit_daemon/sim/confs/."""
    return (CONF_DIR / profile.conf_file).read_text(encoding="utf-8")


def load_conf(profile: BoardProfile) -> NvpmodelConf:
    """The profile's nvpmodel.conf parsed by the daemon's own parser (hardware/nvpmodel.py)."""
    return parse_conf(conf_text(profile), str(CONF_DIR / profile.conf_file))


def snap_down_hz(table: Tuple[int, ...], freq_hz: int) -> int:
    """The highest table frequency not above `freq_hz`, or the lowest entry (devfreq's rounding of a max)."""
    best = table[0]
    for f in table:
        if f <= freq_hz:
            best = f
        else:
            break
    return best


def snap_up_hz(table: Tuple[int, ...], freq_hz: int) -> int:
    """The lowest table frequency not below `freq_hz`, or the highest entry (devfreq's rounding of a min)."""
    for f in table:
        if f >= freq_hz:
            return f
    return table[-1]


def active_tpcs(profile: BoardProfile, tpc_pg_mask: Optional[int]) -> int:
    """TPCs left powered by a TPC_PG_MASK (a set bit gates one TPC), at most the module's; all of the
    module's without a mask."""
    total = profile.physics.tpcs_total
    module = profile.physics.tpcs_module
    if tpc_pg_mask is None:
        return module
    gated = bin(tpc_pg_mask & ((1 << total) - 1)).count("1")
    return max(1, min(module, total - gated))
