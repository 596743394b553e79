"""The simulated board's programs: `tegrastats` and `nvpmodel` emulators, run as real subprocesses.

    python -m jetvit_daemon.sim.emulators tegrastats --root DIR [--interval MS]
    python -m jetvit_daemon.sim.emulators nvpmodel --root DIR (-q [--verbose] | -m ID)
    python -m jetvit_daemon.sim.emulators systemctl --root DIR (is-active UNIT | is-system-running)

They are the board's hardware as the daemon sees it: they read and write only the board directory DIR
(through `SysfsTree(DIR)`), print what the real tools print (jetson-reference README and samples), and
know nothing of the daemon. `SimulatedBoard.programs` (live.py) maps the tool names to these command lines.

Fault injection is board state, not an environment variable: `DIR/.sim/faults.json` (see `FAULT_KEYS`),
written by `write_faults()` / `SimulatedBoard.set_faults()` and re-read by the emulators and the physics
thread while they run.
"""

import argparse
import json
import os
import random
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.hardware.nvpmodel import (
    CONF_PATH,
    STATUS_PATH,
    ConfMode,
    NvpmodelConf,
    parse_conf,
    reboot_reason,
)
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.sim.boards import (
    ROLE_NC,
    STYLE_JP4,
    BoardProfile,
    get_profile,
    snap_down_hz,
    snap_up_hz,
)

SIM_DIR = ".sim"  # under the board root; not a board path (no real board has it)
BOARD_META = "board.json"
FAULTS_FILE = "faults.json"

# Fault keys and their allowed values (None: any list of zone types / rail labels; True/False: a flag).
FAULT_KEYS: Dict[str, Optional[Tuple[Any, ...]]] = {
    "tegrastats": ("exit", "hang", "garbage"),
    "nvpmodel": ("fail", "hang", "slow"),  # slow: a switch (-m) takes SLOW_SWITCH_S, then lands
    "sensor_off": None,  # thermal zone types that read -256 °C (powered off)
    "sensor_missing": None,  # thermal zone types or rail labels whose value files disappear
    "thermal_runaway": (True, False),  # the fan fails: thermal resistance ×4
    "devfreq_reject": (True, False),  # the "kernel" reverts writes to the GPU devfreq min/max
    # Once: the "kernel" puts the GPU devfreq limits back to the current mode's (as a BPMP or thermal
    # reset does), then the board clears this fault itself.
    "devfreq_revert": (True, False),
}
# How long a `slow` switch takes before it writes anything: long enough that a daemon told to stop, or
# killed, meanwhile is still waiting for it (real switches take well under a second).
SLOW_SWITCH_S = 8.0

# What the real tool prints when a switch needs a reboot, then it waits on stdin, with no newline after the
# last line (jetson-reference README "nvpmodel").
REBOOT_PROMPT = (
    "NVPM WARN: Golden image context is already created\n"
    "NVPM WARN: Reboot required for changing to this power mode: {id}\n"
    "NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:"
)
# Its answers (README): yes → reboot; anything else, EOF included → these two errors, mode unchanged.
REBOOTING = "NVPM WARN: rebooting"
BAD_INPUT = "NVPM ERROR: bad input!"
NO_REQUEST = "NVPM ERROR: optMask is 1, no request for power mode"

_PMODE_RE = re.compile(r"pmode:\s*([0-9]+)")
# The `garbage` fault: what tegrastats prints instead of readings when it cannot open nvmap (in a container
# without the device, or without permission), and a line cut short.
_GARBAGE_LINES = (
    "NvRmMemInitNvmap failed with Permission denied",
    "NvRmMemMgrInit failed error type: 196626",
    "RAM 3452/76",
)


# --- simulator metadata and faults ---------------------------------------------------------------------


def sim_dir(root: "os.PathLike[str] | str") -> Path:
    return Path(root) / SIM_DIR


def read_board_meta(root: "os.PathLike[str] | str") -> Optional[Dict[str, Any]]:
    """The `.sim/board.json` of a board directory, or None when it holds no simulated board."""
    path = sim_dir(root) / BOARD_META
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable simulated-board metadata ({exc})") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("profile"), str):
        raise ConfigError(f"{path}: expected an object with a 'profile' name, got {meta!r}")
    return meta


def profile_of(root: "os.PathLike[str] | str") -> BoardProfile:
    meta = read_board_meta(root)
    if meta is None:
        raise ConfigError(f"{root} holds no simulated board (no {SIM_DIR}/{BOARD_META})")
    return get_profile(meta["profile"])


def validate_faults(faults: Dict[str, Any]) -> Dict[str, Any]:
    """Check fault names and values; ConfigError naming the bad one and what is valid."""
    clean: Dict[str, Any] = {}
    for key, value in faults.items():
        if key not in FAULT_KEYS:
            raise ConfigError(f"unknown fault {key!r}; valid: {', '.join(FAULT_KEYS)}")
        allowed = FAULT_KEYS[key]
        if value is None:
            continue
        if allowed is None:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"fault {key!r} takes a list of sensor names, got {value!r}")
            clean[key] = list(value)
        else:
            if value not in allowed:
                raise ConfigError(f"fault {key!r} must be one of {allowed}, got {value!r}")
            if value is not False:
                clean[key] = value
    return clean


def write_faults(root: "os.PathLike[str] | str", faults: Dict[str, Any]) -> None:
    """Replace the board's faults (an empty dict clears them). Atomic: readers see old or new."""
    clean = validate_faults(faults)
    directory = sim_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{FAULTS_FILE}.tmp{os.getpid()}.{threading.get_ident()}"
    tmp.write_text(json.dumps(clean, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, directory / FAULTS_FILE)


def read_faults(root: "os.PathLike[str] | str") -> Dict[str, Any]:
    """The board's current faults; {} when none. A malformed file counts as no faults (it is test input,
    validated when written)."""
    try:
        with open(sim_dir(root) / FAULTS_FILE, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- nvpmodel ------------------------------------------------------------------------------------------


def read_conf(tree: SysfsTree, conf_path: str = CONF_PATH) -> NvpmodelConf:
    return parse_conf(tree.read_text(conf_path), conf_path)


def current_mode_id(tree: SysfsTree, conf: NvpmodelConf) -> int:
    """The mode in /var/lib/nvpmodel/status (`pmode:000N`), or the conf's default when there is none (as
    after the first boot)."""
    text = tree.read_optional(STATUS_PATH)
    m = _PMODE_RE.search(text or "")
    if m is not None and conf.mode_by_id(int(m.group(1))) is not None:
        return int(m.group(1))
    return conf.default_id


def write_status(tree: SysfsTree, mode_id: int) -> None:
    tree.write_atomic(STATUS_PATH, f"pmode:{mode_id:04d}\n")


def _freq_table(tree: SysfsTree, conf: NvpmodelConf, param: str) -> Optional[Tuple[int, ...]]:
    path = conf.param_path(param, "FREQ_TABLE")
    if path is None or " " in path:
        return None
    text = tree.read_optional(path)
    if not text:
        return None
    try:
        return tuple(sorted(int(w) for w in text.split()))
    except ValueError:
        return None


def _clock_value(table: Optional[Tuple[int, ...]], arg: str, value: int) -> int:
    # nvpmodel reads FREQ_TABLE for a CLOCK param: -1 (INT_MAX) is the table's top, and values land on
    # table entries (a max rounds down, a min up). Without a table, -1 is written as INT_MAX.
    if table is None:
        return 2147483647 if value < 0 else value
    if arg.startswith("MAX_FREQ"):
        return table[-1] if value < 0 else snap_down_hz(table, value)
    if arg.startswith("MIN_FREQ"):
        return table[-1] if value < 0 else snap_up_hz(table, value)
    return value


def apply_mode(tree: SysfsTree, conf: NvpmodelConf, mode: ConfMode) -> None:
    """Write a mode's settings to the board, in conf order, as nvpmodel does: FILE params verbatim
    (CPU_ONLINE, TPC/FBP masks, GPU power control), CLOCK params snapped to their FREQ_TABLE; a CLOCK's min
    and max are ordered so min ≤ max holds after each write. Then persist the mode in the status file.
    Raises OSError naming the path when the board lacks a file the conf names."""
    pending_min: Dict[str, Tuple[str, int]] = {}
    for param, arg, raw in mode.settings:
        pdef = conf.params[param]
        path = pdef.args[arg]
        if pdef.type == "CLOCK":
            table = _freq_table(tree, conf, param)
            value = _clock_value(table, arg, int(raw))
            if arg == "MIN_FREQ":
                pending_min[param] = (path, value)
                continue
            if arg == "MAX_FREQ" and param in pending_min:
                min_path, min_value = pending_min.pop(param)
                _write_clock_pair(tree, min_path, min_value, path, value)
                continue
            _write_existing(tree, path, str(value))
        else:
            _write_existing(tree, path, raw)
    for path, value in pending_min.values():
        _write_existing(tree, path, str(value))
    write_status(tree, mode.id)


def _write_clock_pair(tree: SysfsTree, min_path: str, min_value: int, max_path: str, max_value: int) -> None:
    current_max = tree.read_optional(max_path)
    try:
        raise_first = current_max is not None and min_value > int(current_max.split()[0])
    except (ValueError, IndexError):
        raise_first = True
    if raise_first:
        _write_existing(tree, max_path, str(max_value))
        _write_existing(tree, min_path, str(min_value))
    else:
        _write_existing(tree, min_path, str(min_value))
        _write_existing(tree, max_path, str(max_value))


def _write_existing(tree: SysfsTree, path: str, value: str) -> None:
    # A sysfs attribute cannot be created by writing it: a missing one is an error, as on the board.
    if not tree.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    tree.write_text(path, value)


def _print(stream: TextIO, text: str, end: str = "\n") -> None:
    stream.write(text + end)
    stream.flush()


def _block_forever() -> None:
    # The `hang` faults: the process stays alive and silent until it is killed, like a stuck tool.
    threading.Event().wait()


def nvpmodel_main(argv: Sequence[str], stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    parser = argparse.ArgumentParser(prog="nvpmodel", description="simulated nvpmodel")
    parser.add_argument("--root", required=True, help="the simulated board's directory")
    parser.add_argument("-q", action="store_true", help="query the current power mode")
    parser.add_argument("-m", dest="mode", help="set the power mode by id")
    parser.add_argument("-f", dest="conf", default=CONF_PATH, help="conf file (board path)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(list(argv))
    tree = SysfsTree(args.root)
    faults = read_faults(args.root)
    if faults.get("nvpmodel") == "hang":
        _block_forever()
    try:
        conf = read_conf(tree, args.conf)
    except (OSError, ConfigError) as exc:
        _print(stderr, f"NVPM ERROR: failed to read config file {args.conf}: {exc}")
        return 1
    if args.mode is not None:
        return _nvpmodel_set(tree, conf, args.mode, faults, stdin, stdout, stderr)
    if args.q:
        return _nvpmodel_query(tree, conf, args.verbose, args.conf, stdout)
    parser.print_usage(stderr)
    return 2


def _nvpmodel_query(tree: SysfsTree, conf: NvpmodelConf, verbose: bool, conf_path: str, out: TextIO) -> int:
    mode = conf.mode_by_id(current_mode_id(tree, conf))
    assert mode is not None  # current_mode_id only returns ids the conf defines
    if conf.fan_default is not None:
        # JetPack 4 prints the fan mode first (README "nvpmodel").
        _print(out, f"NV Fan Mode:{conf.fan_default}")
    if not verbose:
        _print(out, f"NV Power Mode: {mode.name}\n{mode.id}")
        return 0
    _print(out, f"NVPM VERB: Config file: {conf_path}")
    _print(out, f"NVPM VERB: parsing done for {conf_path}")
    _print(out, f"NVPM VERB: Current mode: NV Power Mode: {mode.name}\n{mode.id}")
    for param, arg, value in mode.settings:
        path = conf.params[param].args[arg]
        real = tree.read_optional(path)
        real_text = real.split()[0] if real else "?"
        _print(out, f"NVPM VERB: PARAM {param}: ARG {arg}: PATH {path}: "
                    f"REAL_VAL: {real_text} CONF_VAL: {value}")
    return 0


def _nvpmodel_set(
    tree: SysfsTree,
    conf: NvpmodelConf,
    requested: str,
    faults: Dict[str, Any],
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
) -> int:
    target = conf.mode_by_id(int(requested)) if requested.isdigit() else None
    if target is None:
        valid = ", ".join(str(m.id) for m in conf.modes)
        _print(err, f"NVPM ERROR: Invalid power mode id: {requested} (valid ids: {valid})")
        return 1
    current = conf.mode_by_id(current_mode_id(tree, conf))
    assert current is not None
    if reboot_reason(current.power_mode, target.power_mode) is not None:
        _print(out, REBOOT_PROMPT.format(id=target.id), end="")
        answer = stdin.readline()
        # No newline of our own after the prompt: on a terminal the echo of the answer supplies it.
        if answer.strip() in ("yes", "YES"):
            # Never anything more: the simulator does not reboot, and the mode stays as it was.
            _print(out, REBOOTING)
            return 0
        _print(err, BAD_INPUT)
        _print(err, NO_REQUEST)
        return 1
    if faults.get("nvpmodel") == "slow":
        time.sleep(SLOW_SWITCH_S)
    if faults.get("nvpmodel") == "fail":
        path = conf.gpu_max_freq_path or STATUS_PATH
        _print(err, f"NVPM ERROR: Error writing to {path}: Invalid argument (simulated fault)")
        return 1
    try:
        apply_mode(tree, conf, target)
    except OSError as exc:
        _print(err, f"NVPM ERROR: failed to set power mode {target.id}: {exc}")
        return 1
    return 0


# --- tegrastats ----------------------------------------------------------------------------------------


def _fmt_temp(milli: int) -> str:
    # tegrastats prints °C with up to three decimals, trailing zeros dropped (53.968C, 50.25C, 50C; samples
    # 29, 30) from the zone's milli-degree value.
    text = f"{milli / 1000.0:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


class _StatReader:
    """Per-core load from /proc/stat deltas, as tegrastats computes it."""

    def __init__(self, tree: SysfsTree) -> None:
        self._tree = tree
        self._prev: Dict[int, Tuple[int, int]] = self._read()

    def _read(self) -> Dict[int, Tuple[int, int]]:
        counters: Dict[int, Tuple[int, int]] = {}
        text = self._tree.read_optional("/proc/stat") or ""
        for line in text.splitlines():
            words = line.split()
            if not words or not words[0].startswith("cpu") or words[0] == "cpu":
                continue
            try:
                cpu = int(words[0][3:])
                values = [int(w) for w in words[1:8]]
            except ValueError:
                continue
            idle = values[3] + values[4]
            counters[cpu] = (sum(values) - idle, sum(values))
        return counters

    def loads_pct(self) -> Dict[int, float]:
        now = self._read()
        loads: Dict[int, float] = {}
        for cpu, (busy, total) in now.items():
            prev_busy, prev_total = self._prev.get(cpu, (busy, total))
            d_total = total - prev_total
            loads[cpu] = 100.0 * (busy - prev_busy) / d_total if d_total > 0 else 0.0
        self._prev = now
        return loads


class _TegrastatsBoard:
    """Reads one tegrastats line's worth of values from the board tree."""

    def __init__(self, tree: SysfsTree, profile: BoardProfile) -> None:
        self.tree = tree
        self.profile = profile
        self.stat = _StatReader(tree)
        self.rng = random.Random(0x7E62A)
        self.avg_sum_mw: Dict[str, float] = {}
        self.avg_n = 0
        self.zone_dirs: Dict[str, str] = {}
        for zone_dir in tree.glob("/sys/class/thermal/thermal_zone*"):
            zone_type = tree.read_optional(zone_dir + "/type")
            if zone_type:
                self.zone_dirs.setdefault(zone_type, zone_dir)

    def _int(self, path: str) -> Optional[int]:
        try:
            text = self.tree.read_optional(path)
            return int(text.split()[0]) if text else None
        except (OSError, ValueError, IndexError):
            return None

    def cpu_token(self) -> str:
        loads = self.stat.loads_pct()
        parts = []
        for cpu in range(self.profile.cpu_count):
            base = f"/sys/devices/system/cpu/cpu{cpu}"
            if self.tree.read_optional(base + "/online") == "0":
                parts.append("off")
                continue
            khz = self._int(base + "/cpufreq/scaling_cur_freq") or 0
            parts.append(f"{round(loads.get(cpu, 0.0))}%@{khz // 1000}")
        return "CPU [" + ",".join(parts) + "]"

    def gpu(self) -> Tuple[int, int]:
        dev = self.profile.devfreq
        load = self._int(dev.device_dir + "/load") or 0
        cur = self._int(dev.real_dir + "/cur_freq") or 0
        return load // 10, cur // 1000000

    def temps(self) -> List[str]:
        out = []
        for zone_type in self.profile.tegrastats_temp_order:
            spec = self.profile.zone(zone_type)
            zone_dir = self.zone_dirs.get(zone_type)
            milli = self._int(zone_dir + "/temp") if zone_dir else None
            if milli is None:
                continue
            if milli <= -256000 and self.profile.style != STYLE_JP4:
                continue  # JetPack 6 leaves powered-off sensors out (samples 24-26: no gpu@/cv@ when gated)
            out.append(f"{spec.tegrastats_name}@{_fmt_temp(milli)}C")
        return out

    def rails_mw(self) -> List[Tuple[str, Optional[int]]]:
        rails: List[Tuple[str, Optional[int]]] = []
        for mon in self.profile.power_monitors:
            for i, rail in enumerate(mon.rails):
                if mon.layout == "iio":
                    rails.append((rail.label, self._int(f"{mon.device_dir}/in_power{i}_input")))
                    continue
                mv = self._int(f"{mon.device_dir}/in{i + 1}_input")
                ma = self._int(f"{mon.device_dir}/curr{i + 1}_input")
                if rail.role == ROLE_NC:
                    if self.profile.style == STYLE_JP4:
                        rails.append((rail.label, 0))
                    continue  # JetPack 6 prints no NC channels (sample 26 vs JetPack 5 sample 23)
                rails.append((rail.label, None if mv is None or ma is None else mv * ma // 1000))
        return rails

    def line(self) -> str:
        p = self.profile
        ts = p.tegrastats
        jp4 = p.style == STYLE_JP4
        gpu_pct, gpu_mhz = self.gpu()
        ram_used = ts.ram_used_mb + self.rng.randint(-12, 12)
        words: List[str] = []
        if not jp4:
            words.append(time.strftime("%m-%d-%Y %H:%M:%S", time.localtime()))
        words.append(f"RAM {ram_used}/{ts.ram_total_mb}MB (lfb {ts.lfb})")
        if ts.swap_total_mb is not None:
            words.append(f"SWAP {ts.swap_used_mb}/{ts.swap_total_mb}MB (cached {ts.swap_cached_mb}MB)")
        if ts.iram is not None:
            words.append(ts.iram)
        words.append(self.cpu_token())
        # Memory controller load follows the GPU's (sample 29: GPU 63 % busy, EMC 43 %).
        emc_pct = min(99, 2 + (gpu_pct * 2) // 3)
        words.append(f"EMC_FREQ {emc_pct}%@{ts.emc_max_mhz}")
        if jp4:
            words.append(f"GR3D_FREQ {gpu_pct}%@{gpu_mhz}")
        else:
            words.append("GR3D_FREQ {}%@[{}]".format(gpu_pct, ",".join([str(gpu_mhz)] * ts.gpcs)))
        words.append(ts.engines)
        words.extend(self.temps())
        self.avg_n += 1
        for label, mw in self.rails_mw():
            if mw is None:
                continue  # a missing sensor file: the rail is not printed
            total = self.avg_sum_mw.get(label, 0.0) + mw
            self.avg_sum_mw[label] = total
            avg = round(total / self.avg_n)
            words.append(f"{label} {mw}/{avg}" if jp4 else f"{label} {mw}mW/{avg}mW")
        return " ".join(words)


def tegrastats_main(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    parser = argparse.ArgumentParser(prog="tegrastats", description="simulated tegrastats")
    parser.add_argument("--root", required=True, help="the simulated board's directory")
    parser.add_argument("--interval", type=int, default=1000, help="sample interval in milliseconds")
    args = parser.parse_args(list(argv))
    if args.interval <= 0:
        _print(stderr, f"tegrastats: --interval takes a positive number of milliseconds, got {args.interval}")
        return 2
    tree = SysfsTree(args.root)
    board = _TegrastatsBoard(tree, profile_of(args.root))
    interval_s = args.interval / 1000.0
    wait = threading.Event()
    next_due = time.monotonic() + interval_s
    garbage_i = 0
    while True:
        # tegrastats prints its first line one interval after start (it needs two /proc/stat reads).
        wait.wait(max(0.0, next_due - time.monotonic()))
        next_due += interval_s
        fault = read_faults(args.root).get("tegrastats")
        if fault == "exit":
            _print(stderr, "tegrastats: exiting (simulated fault)")
            return 1
        if fault == "hang":
            _block_forever()
        if fault == "garbage":
            line = _GARBAGE_LINES[garbage_i % len(_GARBAGE_LINES)]
            garbage_i += 1
        else:
            line = board.line()
        try:
            _print(stdout, line)
        except BrokenPipeError:
            # The reader went away: leave quietly, as the real tool dies on SIGPIPE.
            return 0


# --- systemctl -----------------------------------------------------------------------------------------


def systemctl_main(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """The simulated board runs no services: `is-active UNIT` prints "inactive" (exit 3, as systemctl does
    for an inactive unit) and `is-system-running` prints "running", so the daemon's conflict and shutdown
    probes never consult the host's systemd."""
    parser = argparse.ArgumentParser(prog="systemctl", description="simulated systemctl")
    parser.add_argument("--root", required=True, help="the simulated board's directory")
    parser.add_argument("verb")
    parser.add_argument("units", nargs="*")
    args = parser.parse_args(list(argv))
    if args.verb == "is-active":
        for _ in args.units or ["(none)"]:
            _print(stdout, "inactive")
        return 3
    if args.verb == "is-system-running":
        _print(stdout, "running")
        return 0
    _print(stderr, f"systemctl: {args.verb}: not supported by the simulated board")
    return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("tegrastats", "nvpmodel", "systemctl"):
        print("usage: python -m jetvit_daemon.sim.emulators {tegrastats|nvpmodel|systemctl} --root DIR ...",
              file=sys.stderr)
        return 2
    tool, rest = args[0], args[1:]
    try:
        if tool == "systemctl":
            return systemctl_main(rest, sys.stdout, sys.stderr)
        if tool == "tegrastats":
            try:
                return tegrastats_main(rest, sys.stdout, sys.stderr)
            except KeyboardInterrupt:
                return 0
            finally:
                _silence_stdout()
        return nvpmodel_main(rest, sys.stdin, sys.stdout, sys.stderr)
    except ConfigError as exc:
        # Not a simulated board directory, or an unknown profile in it: say so, no traceback.
        print(f"{tool}: {exc}", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    # After a broken pipe, Python's exit-time flush of stdout would raise again; point it at /dev/null.
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    raise SystemExit(main())
