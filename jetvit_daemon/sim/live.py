"""The live simulated board: a sysfs tree in a directory, kept alive by a physics thread.

>>> board = SimulatedBoard("orin-nano-super", Path("/tmp/b"), SystemClock(), gpu_busy=busy)  # doctest: +SKIP
>>> board.start()                                                     # doctest: +SKIP
>>> platform = JetsonPlatform(tree=board.tree, runner=SubprocessRunner(board.programs), ...)  # doctest: +SKIP
>>> board.snapshot().power_w; board.stop()                            # doctest: +SKIP

The tree has the real board's layout (device tree, nv_tegra_release, nvpmodel conf and status, cpu online
and cpufreq, GPU devfreq with its /sys/class link and the aliases the conf names, thermal zones, INA3221,
/proc/stat). Each tick the thread reads what the daemon and the nvpmodel emulator wrote (nvpmodel status,
devfreq min/max, cpu online, TPC mask, cpufreq caps), steps `BoardPhysics`, and writes the sensors
atomically (temp file + rename), so a reader never sees half a number.
"""

import contextlib
import json
import logging
import math
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from jetvit_daemon.clock import Clock
from jetvit_daemon.errors import ConfigError, JetvitError
from jetvit_daemon.hardware.nvpmodel import CONF_PATH, ConfMode, NvpmodelConf
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.sim.board import DEFAULT_CPU_UTIL, BoardPhysics, BoardState
from jetvit_daemon.sim.boards import (
    COOLINGS,
    ROLE_NC,
    BoardProfile,
    DevfreqSpec,
    active_tpcs,
    conf_text,
    get_profile,
    snap_down_hz,
    snap_up_hz,
)
from jetvit_daemon.sim.emulators import (
    BOARD_META,
    apply_mode,
    current_mode_id,
    read_board_meta,
    read_conf,
    read_faults,
    sim_dir,
    write_faults,
)
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger(__name__)

__all__ = ["SimulatedBoard", "create_tree"]

SENSOR_OFF_MILLI_C = -256000  # what an Orin zone reads while its sensor is powered off (sample 23: -256C)
_USER_HZ = 100  # /proc/stat counts jiffies of 1/100 s on arm64 Linux
_MAX_TICK_FAILURES = 20  # consecutive failed ticks before the thread gives up and reports
_GPU_GOVERNOR = "nvhost_podgov"  # the Jetson GPU devfreq governor (README "GPU devfreq")
_META_FORMAT = 1
METER_FILE = "meter.json"


def _rel_symlink(tree: SysfsTree, link: str, target: str) -> None:
    """A relative symlink at board path `link` to board path `target`, as sysfs links are."""
    link_local = tree.path(link)
    link_local.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(tree.path(target), link_local.parent)
    os.symlink(rel, link_local)


def _put(tree: SysfsTree, path: str, content: str) -> None:
    local = tree.path(path)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(content, encoding="utf-8")


def _cpu_range(cpus: List[int]) -> str:
    """`0-3,5`: the kernel's cpulist format (/sys/devices/system/cpu/online)."""
    parts: List[str] = []
    start = prev = None
    for c in sorted(cpus):
        if start is None:
            start = prev = c
        elif prev is not None and c == prev + 1:
            prev = c
        else:
            parts.append(f"{start}-{prev}" if start != prev else str(start))
            start = prev = c
    if start is not None:
        parts.append(f"{start}-{prev}" if start != prev else str(start))
    return ",".join(parts)


def _make_devfreq(tree: SysfsTree, spec: DevfreqSpec, table: Tuple[int, ...], governor: str) -> None:
    d = spec.real_dir
    _put(tree, d + "/available_frequencies", " ".join(str(f) for f in table) + "\n")
    _put(tree, d + "/min_freq", f"{table[0]}\n")
    _put(tree, d + "/max_freq", f"{table[-1]}\n")
    _put(tree, d + "/cur_freq", f"{table[0]}\n")
    _put(tree, d + "/governor", governor + "\n")
    _put(tree, d + "/available_governors", f"{governor} userspace performance simple_ondemand\n")
    _put(tree, d + "/polling_interval", "25\n")
    _rel_symlink(tree, d + "/device", spec.device_dir)
    _put(tree, spec.device_dir + "/load", "0\n")
    _put(tree, spec.device_dir + "/railgate_enable", "1\n")
    # Device-tree properties are NUL-terminated strings, as on the board.
    _put(tree, spec.of_node_dir + "/name", spec.of_node_name + "\x00")
    _rel_symlink(tree, spec.device_dir + "/of_node", spec.of_node_dir)
    _rel_symlink(tree, "/sys/class/devfreq/" + spec.class_name, d)


def _alias_gpu_devfreq(tree: SysfsTree, conf: NvpmodelConf, real_dir: str) -> None:
    """Make every devfreq directory the conf names for the GPU (e.g. /sys/devices/17000000.ga10b/devfreq/
    17000000.ga10b on Orin, /sys/devices/gpu.0/devfreq/57000000.gpu on the Nano) a link to the real node, so
    nvpmodel's writes and the daemon's discovery land on the same files."""
    gpu = conf.params.get("GPU")
    if gpu is None:
        return
    for path in gpu.args.values():
        if " " in path:
            continue  # the stock Nano file wraps one KNEXT path with a run of spaces; nvpmodel never reads it
        directory, leaf = path.rsplit("/", 1)
        if leaf not in ("available_frequencies", "max_freq", "min_freq") or directory == real_dir:
            continue
        local = tree.path(directory)
        if local.exists() or local.is_symlink():
            continue
        _rel_symlink(tree, directory, real_dir)


def _materialise_conf_paths(tree: SysfsTree, conf: NvpmodelConf) -> None:
    """Every other file the conf names (power-gating masks, GPU power control, EMC and DLA/PVA clock caps)."""
    for pdef in conf.params.values():
        for arg, path in pdef.args.items():
            if " " in path or not path.startswith("/") or tree.path(path).exists():
                continue
            local = tree.path(path)
            if local.is_symlink():
                continue
            if arg.startswith("FREQ_TABLE"):
                continue  # only the GPU and CPU have tables, created with their nodes
            _put(tree, path, "0\n")


def create_tree(
    profile_name: str,
    root_dir: "os.PathLike[str] | str",
    ambient_c: float = 25.0,
    cooling: str = "fan",
    mode_id: Optional[int] = None,
) -> SysfsTree:
    """Materialise a freshly booted board of `profile_name` in `root_dir` (absent or empty) and return its
    tree: nvpmodel has applied `mode_id` (default: the conf's PM_CONFIG DEFAULT) and the sensors show the
    idle steady state at `ambient_c`. ConfigError when the directory is not empty or the mode is unknown."""
    profile = get_profile(profile_name)
    root = Path(root_dir)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"cannot create a simulated board in {root}: the directory is not empty")
    root.mkdir(parents=True, exist_ok=True)
    tree = SysfsTree(root)

    dt_base = "/sys/firmware/devicetree/base"
    _put(tree, dt_base + "/model", profile.model + "\x00")
    _put(tree, dt_base + "/compatible", "".join(c + "\x00" for c in profile.compatible))
    _rel_symlink(tree, "/proc/device-tree", dt_base)
    _put(tree, "/etc/nv_tegra_release", profile.nv_tegra_release + "\n")
    # JetPack 5+ (and the Nano) keep the confs in /etc/nvpmodel/ and link the active one
    # (hardware/nvpmodel.py).
    _put(tree, "/etc/nvpmodel/" + profile.conf_file, conf_text(profile))
    _rel_symlink(tree, CONF_PATH, "/etc/nvpmodel/" + profile.conf_file)
    conf = read_conf(tree)

    cpus = list(range(profile.cpu_count))
    cpu_base = "/sys/devices/system/cpu"
    for name in ("online", "present", "possible"):
        _put(tree, f"{cpu_base}/{name}", _cpu_range(cpus) + "\n")
    table_khz = profile.cpu_table_khz
    for cluster in profile.cpu_clusters:
        policy = f"{cpu_base}/cpufreq/policy{cluster[0]}"
        _put(tree, policy + "/scaling_available_frequencies", " ".join(str(f) for f in table_khz) + " \n")
        for name, value in (
            ("scaling_min_freq", table_khz[0]),
            ("scaling_max_freq", table_khz[-1]),
            ("scaling_cur_freq", table_khz[0]),
            ("cpuinfo_min_freq", table_khz[0]),
            ("cpuinfo_max_freq", table_khz[-1]),
        ):
            _put(tree, f"{policy}/{name}", f"{value}\n")
        _put(tree, policy + "/scaling_governor", "schedutil\n")
        _put(tree, policy + "/related_cpus", " ".join(str(c) for c in cluster) + "\n")
        for cpu in cluster:
            _put(tree, f"{cpu_base}/cpu{cpu}/online", "1\n")
            _rel_symlink(tree, f"{cpu_base}/cpu{cpu}/cpufreq", policy)

    _make_devfreq(tree, profile.devfreq, profile.gpu_table_hz, _GPU_GOVERNOR)
    for extra in profile.extra_devfreq:
        _make_devfreq(tree, extra, (115200000, 729600000), "simple_ondemand")
    # /sys/devices/gpu.0 is the GPU device nvpmodel addresses (power control, TPC/FBP masks; JetPack 4 readers
    # take the GPU load from gpu.0/load).
    _put(tree, "/sys/devices/gpu.0/power/control", "auto\n")
    _put(tree, "/sys/devices/gpu.0/load", "0\n")
    _alias_gpu_devfreq(tree, conf, profile.devfreq.real_dir)
    _materialise_conf_paths(tree, conf)

    for i, zone in enumerate(profile.thermal_zones):
        zdir = f"/sys/devices/virtual/thermal/thermal_zone{i}"
        _put(tree, zdir + "/type", zone.type + "\n")
        _put(tree, zdir + "/policy", "step_wise\n")
        _put(tree, zdir + "/mode", "enabled\n")
        for k, trip in enumerate(zone.trips):
            _put(tree, f"{zdir}/trip_point_{k}_temp", f"{round(trip.temp_c * 1000)}\n")
            _put(tree, f"{zdir}/trip_point_{k}_type", trip.type + "\n")
            _put(tree, f"{zdir}/trip_point_{k}_hyst", f"{round(trip.hyst_c * 1000)}\n")
        _rel_symlink(tree, f"/sys/class/thermal/thermal_zone{i}", zdir)

    for mon in profile.power_monitors:
        if mon.layout == "iio":
            for k, rail in enumerate(mon.rails):
                _put(tree, f"{mon.device_dir}/rail_name_{k}", rail.label + "\n")
            _put(tree, mon.device_dir + "/name", "ina3221x\n")
        else:
            _put(tree, mon.device_dir + "/name", "ina3221\n")
            for k, rail in enumerate(mon.rails, start=1):
                _put(tree, f"{mon.device_dir}/in{k}_label", rail.label + "\n")
                # Shunt current limits as the INA3221 driver exposes them (values illustrative).
                _put(tree, f"{mon.device_dir}/curr{k}_crit", "6000\n" if rail.role != ROLE_NC else "0\n")
                _put(tree, f"{mon.device_dir}/curr{k}_max", "5000\n" if rail.role != ROLE_NC else "0\n")
            _put(tree, f"{mon.device_dir}/in7_label", "sum of shunt voltages\n")
            hwmon_name = mon.device_dir.rsplit("/", 1)[1]
            _rel_symlink(tree, "/sys/class/hwmon/" + hwmon_name, mon.device_dir)

    boot = conf.default_mode if mode_id is None else conf.mode_by_id(mode_id)
    if boot is None:
        known = ", ".join(f"{m.id}={m.name}" for m in conf.modes)
        raise ConfigError(f"{profile.name} has no nvpmodel mode id {mode_id}; modes: {known}")
    apply_mode(tree, conf, boot)

    meta = {"profile": profile.name, "format": _META_FORMAT, "ambient_c": ambient_c, "cooling": cooling}
    sim_dir(root).mkdir(exist_ok=True)
    (sim_dir(root) / BOARD_META).write_text(json.dumps(meta, sort_keys=True) + "\n", encoding="utf-8")
    write_faults(root, {})

    # First sensor values: the idle steady state of the boot mode.
    loop = _BoardLoop(profile, tree, conf, BoardPhysics(profile, cooling, ambient_c), lambda: 0.0,
                      lambda: DEFAULT_CPU_UTIL * 0.1)
    loop.tick(0.0)
    return tree


class _SensorWriter:
    """Writes the sensor files from a physics state; skips unchanged values; tmp + rename per file."""

    def __init__(self, tree: SysfsTree, profile: BoardProfile) -> None:
        self.tree = tree
        self.profile = profile
        self._last: Dict[str, str] = {}
        self._tmp_suffix = f".sim{os.getpid()}"

    def put(self, path: str, value: str, cache: bool = True) -> None:
        """Write `value` unless it is what this writer last wrote there (`cache=False`: always write, for
        files others write too)."""
        if cache and self._last.get(path) == value:
            return
        local = self.tree.path(path)
        tmp = local.with_name("." + local.name + self._tmp_suffix)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(value)
        os.replace(tmp, local)
        if cache:
            self._last[path] = value

    def remove(self, path: str) -> None:
        self._last.pop(path, None)
        try:
            os.unlink(self.tree.path(path))
        except FileNotFoundError:
            pass

    def write(self, state: BoardState, faults: Dict[str, Any], cpu_state: "_CpuState") -> None:
        off = set(faults.get("sensor_off") or ())
        missing = set(faults.get("sensor_missing") or ())
        p = self.profile
        for i, zone in enumerate(p.thermal_zones):
            path = f"/sys/devices/virtual/thermal/thermal_zone{i}/temp"
            if zone.type in missing:
                self.remove(path)
                continue
            temp = state.temps_c.get(zone.type)
            milli = SENSOR_OFF_MILLI_C if temp is None or zone.type in off else round(temp * 1000)
            self.put(path, f"{milli}\n")
        for mon in p.power_monitors:
            for k, rail in enumerate(mon.rails):
                self._write_rail(mon.layout, mon.device_dir, k, rail.label, rail.role, rail.bus_mv,
                                 state.rails_w.get(rail.label, 0.0), rail.label in missing)
            if mon.layout == "hwmon":
                # in7: sum of the shunt voltages (mV) over 5 mΩ shunts; the driver has it, readers skip it.
                total_a = sum(state.rails_w.get(r.label, 0.0) * 1000.0 / r.bus_mv for r in mon.rails
                              if r.role != ROLE_NC)
                self.put(f"{mon.device_dir}/in7_input", f"{int(total_a * 5)}\n")
        dev = p.devfreq
        self.put(dev.real_dir + "/cur_freq", f"{state.gpu_cur_freq_hz}\n")
        load = f"{round(state.gpu_util * 1000)}\n"
        self.put(dev.device_dir + "/load", load)
        self.put("/sys/devices/gpu.0/load", load)
        cpu_state.write(self, state)

    def _write_rail(self, layout: str, base: str, k: int, label: str, role: str, bus_mv: int, power_w: float,
                    missing: bool) -> None:
        mv = bus_mv if role != ROLE_NC else 0
        ma = round(power_w * 1e6 / bus_mv) if role != ROLE_NC else 0
        if layout == "iio":
            files = {
                f"{base}/in_voltage{k}_input": f"{mv}\n",
                f"{base}/in_current{k}_input": f"{ma}\n",
                f"{base}/in_power{k}_input": f"{mv * ma // 1000}\n",
            }
        else:
            files = {f"{base}/in{k + 1}_input": f"{mv}\n", f"{base}/curr{k + 1}_input": f"{ma}\n"}
        for path, value in files.items():
            if missing:
                self.remove(path)
            else:
                self.put(path, value)


class _CpuState:
    """Per-core /proc/stat jiffies and cpufreq cur clocks, advanced from the CPU utilisation."""

    def __init__(self, tree: SysfsTree, profile: BoardProfile) -> None:
        self.tree = tree
        self.profile = profile
        self.online: List[bool] = [True] * profile.cpu_count
        # [user, system, idle] jiffies per core; continue a running board's counters (they only grow).
        self.jiffies: List[List[float]] = [[0.0, 0.0, 100000.0] for _ in range(profile.cpu_count)]
        for line in (tree.read_optional("/proc/stat") or "").splitlines():
            words = line.split()
            if len(words) > 4 and words[0].startswith("cpu") and words[0] != "cpu":
                try:
                    cpu = int(words[0][3:])
                    if cpu < profile.cpu_count:
                        self.jiffies[cpu] = [float(words[1]), float(words[3]), float(words[4])]
                except ValueError:
                    continue

    def advance(self, dt_s: float, util: float) -> None:
        ticks = dt_s * _USER_HZ
        for cpu, on in enumerate(self.online):
            if not on:
                continue
            j = self.jiffies[cpu]
            j[0] += ticks * util * 0.8
            j[1] += ticks * util * 0.2
            j[2] += ticks * (1.0 - util)

    def write(self, writer: _SensorWriter, state: BoardState) -> None:
        lines = []
        total = [0, 0, 0]
        for cpu, on in enumerate(self.online):
            if not on:
                continue  # an offline CPU has no line in /proc/stat
            u, s, i = (int(v) for v in self.jiffies[cpu])
            total = [total[0] + u, total[1] + s, total[2] + i]
            lines.append(f"cpu{cpu} {u} 0 {s} {i} 0 0 0 0 0 0")
        head = f"cpu  {total[0]} 0 {total[1]} {total[2]} 0 0 0 0 0 0"
        writer.put("/proc/stat", "\n".join([head, *lines, "ctxt 0", "processes 0", ""]))
        online = [c for c, on in enumerate(self.online) if on]
        writer.put("/sys/devices/system/cpu/online", _cpu_range(online) + "\n")
        table = self.profile.cpu_table_khz
        for cluster in self.profile.cpu_clusters:
            policy = f"/sys/devices/system/cpu/cpufreq/policy{cluster[0]}"
            max_khz = _read_int(self.tree, policy + "/scaling_max_freq") or table[-1]
            min_khz = _read_int(self.tree, policy + "/scaling_min_freq") or table[0]
            # schedutil: the clock follows the load between the policy's limits.
            want = min_khz + (max_khz - min_khz) * min(1.0, 2.0 * state.cpu_util)
            cur = max(min(snap_up_hz(table, int(want)), max_khz), min_khz)
            writer.put(policy + "/scaling_cur_freq", f"{cur}\n")


def _read_int(tree: SysfsTree, path: str) -> Optional[int]:
    try:
        text = tree.read_optional(path)
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


class _BoardLoop:
    """One tick of the live board: read controls, step the physics, write sensors. Used by the thread and,
    once, by create_tree. Not thread-safe by itself (SimulatedBoard serialises ticks and reads)."""

    def __init__(
        self,
        profile: BoardProfile,
        tree: SysfsTree,
        conf: NvpmodelConf,
        physics: BoardPhysics,
        gpu_busy: Callable[[], float],
        cpu_busy: Callable[[], float],
    ) -> None:
        self.profile = profile
        self.tree = tree
        self.conf = conf
        self.physics = physics
        self.gpu_busy = gpu_busy
        self.cpu_busy = cpu_busy
        self.writer = _SensorWriter(tree, profile)
        self.cpu = _CpuState(tree, profile)
        self.mode_id = current_mode_id(tree, conf)
        dev = profile.devfreq.real_dir
        table = profile.gpu_table_hz
        self._accepted = {
            dev + "/max_freq": _read_int(tree, dev + "/max_freq") or table[-1],
            dev + "/min_freq": _read_int(tree, dev + "/min_freq") or table[0],
        }

    def _devfreq_limit(self, path: str, reject: bool) -> int:
        table = self.profile.gpu_table_hz
        accepted = self._accepted[path]
        raw = _read_int(self.tree, path)
        if raw is None:
            return accepted  # mid-write (empty) or garbage: the kernel keeps its last value
        if reject:
            if raw != accepted:
                self.writer.put(path, f"{accepted}\n", cache=False)
            return accepted
        # A value not in available_frequencies is silently rounded (README): a max down, a min up.
        snapped = snap_down_hz(table, raw) if path.endswith("max_freq") else snap_up_hz(table, raw)
        if snapped != raw:
            self.writer.put(path, f"{snapped}\n", cache=False)
        self._accepted[path] = snapped
        return snapped

    def _revert_devfreq(self, mode: ConfMode) -> None:
        """The `devfreq_revert` fault: the GPU limits go back to what the mode itself sets (its GPU MAX_FREQ,
        -1 meaning the table's top; MIN_FREQ the lowest), whatever anyone capped them to."""
        table = self.profile.gpu_table_hz
        dev = self.profile.devfreq.real_dir
        cap = mode.power_mode.gpu_max_freq_hz
        limits = {dev + "/max_freq": snap_down_hz(table, cap) if cap else table[-1], dev + "/min_freq": table[0]}
        for path, value in limits.items():
            self.writer.put(path, f"{value}\n", cache=False)
            self._accepted[path] = value
        log.info("simulated board: GPU devfreq limits reverted to mode %s's (fault devfreq_revert)", mode.name)

    def tick(self, dt_s: float, lock: Optional[threading.Lock] = None) -> BoardState:
        """Read the controls, step the physics (under `lock`, which readers of the physics share) and write
        the sensors; file I/O happens outside the lock."""
        faults = read_faults(self.tree.root)
        self.mode_id = current_mode_id(self.tree, self.conf)
        mode = self.conf.mode_by_id(self.mode_id)
        assert mode is not None
        dev = self.profile.devfreq.real_dir
        if faults.get("devfreq_revert"):
            self._revert_devfreq(mode)
            write_faults(self.tree.root, {k: v for k, v in faults.items() if k != "devfreq_revert"})
        reject = bool(faults.get("devfreq_reject"))
        max_hz = self._devfreq_limit(dev + "/max_freq", reject)
        min_hz = self._devfreq_limit(dev + "/min_freq", reject)
        base = "/sys/devices/system/cpu"
        cpus = range(self.profile.cpu_count)
        online = [self.tree.read_optional(f"{base}/cpu{c}/online") != "0" for c in cpus]
        self.cpu.online = online
        mask = _read_int(self.tree, "/sys/devices/gpu.0/tpc_pg_mask")
        table = self.profile.cpu_table_khz
        ratios = []
        for cluster in self.profile.cpu_clusters:
            if any(online[c] for c in cluster):
                khz = _read_int(self.tree, f"{base}/cpufreq/policy{cluster[0]}/scaling_max_freq") or table[-1]
                ratios.append(snap_down_hz(table, khz) / table[-1])
        gpu_util = _unit(self.gpu_busy())
        cpu_util = _unit(self.cpu_busy())
        with lock if lock is not None else _NO_LOCK:
            self.physics.set_controls(
                mode_cap_hz=mode.power_mode.gpu_max_freq_hz,
                devfreq_max_hz=max_hz,
                devfreq_min_hz=min(min_hz, max_hz),
                online_cores=sum(online),
                active_tpcs=active_tpcs(self.profile, mask),
                cpu_freq_ratio=sum(ratios) / len(ratios) if ratios else 1.0,
                cooling_failed=bool(faults.get("thermal_runaway")),
            )
            self.physics.step(dt_s, gpu_util, cpu_util)
            state = self.physics.state()
        self.cpu.advance(dt_s, cpu_util)
        self.writer.write(state, faults, self.cpu)
        _write_meter(self.tree.root, state)
        return state


def _write_meter(root: Path, state: BoardState) -> None:
    """The physics' own energy total, for checking the daemon's energy metrics against the truth (no real board
    has this file: it lives in the simulator's directory, not in the board tree)."""
    path = sim_dir(root) / METER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"time_s": state.time_s, "energy_j": state.energy_j}), encoding="utf-8")
    os.replace(tmp, path)


def read_meter(root: Path) -> Dict[str, float]:
    """{"time_s", "energy_j"} as of the simulated board's latest tick."""
    return dict(json.loads((sim_dir(root) / METER_FILE).read_text(encoding="utf-8")))


_NO_LOCK = contextlib.nullcontext()


def _unit(value: float) -> float:
    v = float(value)
    if math.isnan(v):
        return 0.0
    return min(1.0, max(0.0, v))


class SimulatedBoard:
    """Owns the simulated board's directory and its physics thread.

    >>> board = SimulatedBoard("orin-nano-super", root, SystemClock(), gpu_busy=lambda: 0.5)  # doctest: +SKIP
    >>> board.start(); board.snapshot().power_w; board.stop()        # doctest: +SKIP

    `start()` materialises the tree when `root_dir` is absent or empty, or keeps a tree of the same profile
    as it is (nvpmodel mode, devfreq limits: a real board's state survives a daemon restart). `gpu_busy` and
    `cpu_busy` are called from the physics thread and must be thread-safe. `snapshot()`,
    `inference_time_s()` and `set_faults()` are thread-safe; `start()`/`stop()` belong to the owner.
    `error` holds the exception that killed the physics thread (a `WorkerThread`: logged with its traceback,
    and the daemon's supervisor watches it through `workers()`), else None.
    `prepare()` materialises (or checks) the tree and runs the first tick without starting the thread, so
    the board's files exist for whoever builds on them before `start()`.
    """

    def __init__(
        self,
        profile: str,
        root_dir: Path,
        clock: Clock,
        ambient_c: float = 25.0,
        cooling: str = "fan",
        gpu_busy: Callable[[], float] = lambda: 0.0,
        tick_s: float = 0.1,
        cpu_busy: Callable[[], float] = lambda: DEFAULT_CPU_UTIL,
    ) -> None:
        if cooling not in COOLINGS:
            raise ConfigError(f"simulator cooling must be one of {', '.join(COOLINGS)}, got {cooling!r}")
        if tick_s <= 0:
            raise ConfigError(f"simulator tick_s must be > 0, got {tick_s}")
        self.profile = get_profile(profile)
        self.root_dir = Path(root_dir)
        self.clock = clock
        self.ambient_c = ambient_c
        self.cooling = cooling
        self.tick_s = tick_s
        self._gpu_busy = gpu_busy
        self._cpu_busy = cpu_busy
        self.tree = SysfsTree(self.root_dir)
        root = str(self.root_dir)
        emulator = [sys.executable, "-m", "jetvit_daemon.sim.emulators"]
        self.programs: Dict[str, List[str]] = {
            "tegrastats": [*emulator, "tegrastats", "--root", root],
            "nvpmodel": [*emulator, "nvpmodel", "--root", root],
            "systemctl": [*emulator, "systemctl", "--root", root],
        }
        self.description = f"simulated {self.profile.long_name}"
        self.tick_errors = 0
        self._lock = threading.Lock()
        self._worker: Optional[WorkerThread] = None
        self._loop: Optional[_BoardLoop] = None
        self._state: Optional[BoardState] = None

    # -- lifecycle --

    @staticmethod
    def create_tree(
        profile: str,
        root_dir: Path,
        ambient_c: float = 25.0,
        cooling: str = "fan",
        mode_id: Optional[int] = None,
    ) -> SysfsTree:
        """Materialise a freshly booted board without starting a thread (for tests); see `create_tree`."""
        return create_tree(profile, root_dir, ambient_c, cooling, mode_id)

    @property
    def error(self) -> Optional[BaseException]:
        return self._worker.failure if self._worker is not None else None

    def workers(self) -> List[WorkerThread]:
        """The physics thread, for the supervisor (empty before start)."""
        return [self._worker] if self._worker is not None else []

    def start(self) -> None:
        if self._worker is not None and self._worker.alive:
            raise JetvitError("simulated board already started")
        if self._loop is None:
            self.prepare()
        worker = WorkerThread("sim-board", self._run)
        self._worker = worker
        worker.start()
        log.info("%s running in %s (tick %.3g s)", self.description, self.root_dir, self.tick_s)

    def prepare(self) -> None:
        """Materialise or check the tree and run the first tick (no thread). ConfigError for a foreign root."""
        meta = read_board_meta(self.root_dir)
        if meta is None:
            if self.root_dir.exists() and any(self.root_dir.iterdir()):
                raise ConfigError(
                    f"{self.root_dir} is not empty and holds no simulated board; give the simulator an empty "
                    "or new directory"
                )
            create_tree(self.profile.name, self.root_dir, self.ambient_c, self.cooling)
        elif meta["profile"] != self.profile.name:
            raise ConfigError(
                f"{self.root_dir} holds a simulated {meta['profile']} board, not {self.profile.name}; use "
                "another simulator root_dir or delete that one"
            )
        conf = read_conf(self.tree)
        # Resume at the temperature the board's junction zone last showed (a restart is not a cool-down).
        zone_i = [z.type for z in self.profile.thermal_zones].index(self.profile.physics.throttle_zone)
        zone_milli = _read_int(self.tree, f"/sys/class/thermal/thermal_zone{zone_i}/temp")
        temp_c: Optional[float] = None
        if zone_milli is not None and zone_milli > SENSOR_OFF_MILLI_C:
            temp_c = zone_milli / 1000.0 - self.profile.zone(self.profile.physics.throttle_zone).offset_c
        physics = BoardPhysics(self.profile, self.cooling, self.ambient_c, temp_c)
        loop = _BoardLoop(self.profile, self.tree, conf, physics, self._gpu_busy, self._cpu_busy)
        state = loop.tick(0.0, self._lock)
        with self._lock:
            self._loop = loop
            self._state = state

    def stop(self, timeout_s: float = 2.0) -> None:
        worker = self._worker
        if worker is not None and not worker.stop(timeout_s):
            log.warning("simulated board thread did not stop within %.1f s", timeout_s)

    @property
    def alive(self) -> bool:
        return self._worker is not None and self._worker.alive

    def _run(self, worker: WorkerThread) -> None:
        last = self.clock.monotonic()
        failures = 0
        try:
            while not worker.stop_event.wait(self.tick_s):
                worker.beat()
                now = self.clock.monotonic()
                dt, last = max(0.0, now - last), now
                try:
                    assert self._loop is not None
                    state = self._loop.tick(dt, self._lock)  # only this thread ticks: no lock around it
                    with self._lock:
                        self._state = state
                    failures = 0
                except Exception:
                    # One bad tick (a file half-replaced by a test, a transient OSError) is logged, counted;
                    # a run of them means the board directory is gone or broken: escalate.
                    failures += 1
                    self.tick_errors += 1
                    log.exception("simulated board: tick failed (%d in a row)", failures)
                    if failures >= _MAX_TICK_FAILURES:
                        raise
        except BaseException:
            log.error("simulated board thread died; the board's sensors are frozen")
            raise

    # -- queries --

    def snapshot(self) -> BoardState:
        """The physics state after the latest tick."""
        with self._lock:
            if self._state is None:
                if self._loop is None:
                    raise JetvitError("simulated board not started")
                self._state = self._loop.physics.state()
            return self._state

    def inference_time_s(self, batch_size: int) -> float:
        """Seconds a ViT-B/16-class batch takes at the GPU's current effective clock and active TPCs."""
        with self._lock:
            if self._loop is None:
                raise JetvitError("simulated board not started")
            return self._loop.physics.inference_time_s(batch_size)

    def set_faults(self, **faults: Any) -> None:
        """Replace the board's injected faults, e.g.
        `set_faults(tegrastats="exit", sensor_off=["gpu-thermal"])`; no arguments clears them.
        ConfigError on an unknown fault or value."""
        write_faults(self.root_dir, faults)
