"""nvpmodel: the board's power modes (`/etc/nvpmodel.conf`) and the `nvpmodel` tool that switches them.

>>> conf = parse_conf(open("/etc/nvpmodel.conf").read(), "/etc/nvpmodel.conf")   # doctest: +SKIP
>>> [m.name for m in conf.power_modes]                                           # doctest: +SKIP
['15W', '7W']
>>> nv = Nvpmodel(SubprocessRunner(), SysfsTree("/"))                            # doctest: +SKIP
>>> nv.set_mode("7W")   # Orin Nano 8GB in 15W: RebootRequiredError   # doctest: +SKIP

File format (the header of every NVIDIA conf, e.g. nvpmodel_p3767_0003.conf, L4T r35/r36):
`< PARAM TYPE=FILE|CLOCK|HWMON NAME=x >` sections define `ARG_NAME PATH` lines; `< POWER_MODEL ID=n NAME=x >`
sections hold `PARAM_NAME ARG_NAME VALUE` settings (CLOCK value -1 means INT_MAX, i.e. no cap); the mandatory
`< PM_CONFIG DEFAULT=id >` names the boot mode; JetPack 4 files may add `< FAN_CONFIG DEFAULT=quiet >`.
"""

import re
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from jetvit_daemon.errors import ActuationError, ConfigError, RebootRequiredError
from jetvit_daemon.hardware.base import PowerMode
from jetvit_daemon.hardware.commands import ChildProcess, CommandResult, CommandRunner
from jetvit_daemon.hardware.sysfs import SysfsTree

CONF_PATH = "/etc/nvpmodel.conf"
# nvpmodel remembers the last mode set across reboots here as `pmode:000N` (jetson-reference README).
STATUS_PATH = "/var/lib/nvpmodel/status"

# The param and argument names NVIDIA's confs use for what the daemon cares about (every stock file from
# TX2 to Orin, jetson-reference/nvpmodel/SOURCES.md).
GPU_PARAM = "GPU"
CPU_ONLINE_PARAM = "CPU_ONLINE"
TPC_PG_MASK_ARG = "TPC_PG_MASK"
FBP_PG_MASK_ARG = "FBP_PG_MASK"

_HEADER_RE = re.compile(r"^<\s*([A-Za-z_]+)((?:\s+[A-Za-z_]+=\S+?)*)\s*>$")
_KNOWN_SECTIONS = ("PARAM", "POWER_MODEL", "PM_CONFIG", "FAN_CONFIG")
_QUERY_MODE_RE = re.compile(r"NV Power Mode:\s*(\S+)")
# What nvpmodel prints when a switch needs a reboot, then it waits on stdin (jetson-reference README).
_REBOOT_MARKERS = ("Reboot required", "DO YOU WANT TO REBOOT")
# Under a deadline, a call with less than this left is not started (it could not finish: a live switch takes
# well under a second on every board, jetson-reference README, but not a tenth of one).
MIN_CALL_S = 0.1


@dataclass(frozen=True)
class ParamDef:
    """A `< PARAM TYPE=... NAME=... >` section: argument name → board path.

    HWMON params (Xavier NX JetPack 5: `WARN /sys/devices/.../7-0040/hwmon curr1_max`) have two words per
    argument, the device directory and the attribute inside its hwmonN; they are kept joined by one space.
    """

    type: str
    name: str
    args: Dict[str, str]
    line: int = 0


@dataclass(frozen=True)
class ConfMode:
    """One `< POWER_MODEL >` section: the parsed `PowerMode` and the raw settings in file order.

    `settings` is a list of (param, arg, value) exactly as written (value unparsed), for whoever must apply
    them (the nvpmodel emulator of the simulated board).
    """

    power_mode: PowerMode
    gpu_min_freq_hz: Optional[int]  # GPU MIN_FREQ; 0 means "the lowest available", None when not set
    settings: List[Tuple[str, str, str]] = field(default_factory=list)
    line: int = 0

    @property
    def id(self) -> int:
        return self.power_mode.id

    @property
    def name(self) -> str:
        return self.power_mode.name

    def setting(self, param: str, arg: str) -> Optional[str]:
        """The value this mode gives `param arg` (the last one when repeated), or None."""
        found: Optional[str] = None
        for p, a, v in self.settings:
            if p == param and a == arg:
                found = v
        return found


@dataclass(frozen=True)
class NvpmodelConf:
    """A parsed nvpmodel.conf. Immutable after parsing; safe to share between threads."""

    source: str
    params: Dict[str, ParamDef]
    modes: List[ConfMode]
    default_id: int
    fan_default: Optional[str] = None  # FAN_CONFIG DEFAULT (JetPack 4), None when absent

    @property
    def power_modes(self) -> List[PowerMode]:
        return [m.power_mode for m in self.modes]

    @property
    def default_mode(self) -> ConfMode:
        mode = self.mode_by_id(self.default_id)
        assert mode is not None  # parse_conf checks PM_CONFIG DEFAULT names a defined mode
        return mode

    def mode_by_id(self, mode_id: int) -> Optional[ConfMode]:
        for m in self.modes:
            if m.id == mode_id:
                return m
        return None

    def mode_by_name(self, name: str) -> Optional[ConfMode]:
        """Exact match: nvpmodel mode names are case-sensitive identifiers (`MAXN`, `MODE_15W`, `7W_AI`)."""
        for m in self.modes:
            if m.name == name:
                return m
        return None

    def target(self, name: str) -> ConfMode:
        """The mode a switch to `name` goes to; ActuationError listing the valid names otherwise. With
        `switch_needed`, the one home of a switch's checks (the platform, nvpmodel and the offline simulator)."""
        mode = self.mode_by_name(name)
        if mode is None:
            known = ", ".join(m.name for m in self.modes)
            raise ActuationError(f"no power mode named {name!r} in {self.source}; modes: {known}")
        return mode

    def param_path(self, param: str, arg: str) -> Optional[str]:
        p = self.params.get(param)
        return p.args.get(arg) if p is not None else None

    @property
    def gpu_max_freq_path(self) -> Optional[str]:
        return self.param_path(GPU_PARAM, "MAX_FREQ")

    @property
    def gpu_min_freq_path(self) -> Optional[str]:
        return self.param_path(GPU_PARAM, "MIN_FREQ")

    @property
    def gpu_freq_table_path(self) -> Optional[str]:
        return self.param_path(GPU_PARAM, "FREQ_TABLE")


def reboot_reason(current: PowerMode, target: PowerMode) -> Optional[str]:
    """Why switching `current` → `target` needs a reboot, or None when it can be done live.

    nvpmodel asks for a reboot when the TPC/FBP power-gating masks or the online core count differ
    (jetson-reference README; e.g. Orin NX 16GB: MAXN/25W vs 10W/15W).
    """
    diffs = []
    if current.tpc_pg_mask != target.tpc_pg_mask:
        diffs.append(f"TPC_PG_MASK {_mask_text(current.tpc_pg_mask)} ≠ {_mask_text(target.tpc_pg_mask)}")
    if current.fbp_pg_mask != target.fbp_pg_mask:
        diffs.append(f"FBP_PG_MASK {_mask_text(current.fbp_pg_mask)} ≠ {_mask_text(target.fbp_pg_mask)}")
    if current.online_cores != target.online_cores:
        diffs.append(f"online CPU cores {current.online_cores} ≠ {target.online_cores}")
    if not diffs:
        return None
    return "{} → {} needs a reboot: {}".format(current.name, target.name, ", ".join(diffs))


def switch_needed(current: PowerMode, target: PowerMode, force: bool = False) -> bool:
    """Whether `current` → `target` takes an `nvpmodel -m` (False: the board is in it already, unless
    `force`); RebootRequiredError when it cannot be done live (see `reboot_reason`)."""
    if current.id == target.id and not force:
        return False
    reason = reboot_reason(current, target)
    if reason is not None:
        raise RebootRequiredError(reason)
    return True


def _mask_text(mask: Optional[int]) -> str:
    return "unset" if mask is None else str(mask)


def _parse_int(text: str) -> Optional[int]:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        return None


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.params: Dict[str, ParamDef] = {}
        self.modes: List[ConfMode] = []
        self.default_id: Optional[int] = None
        self.default_line = 0
        self.fan_default: Optional[str] = None
        # The section being filled: its kind and, for PARAM/POWER_MODEL, the header attributes and lines.
        self.kind: Optional[str] = None
        self.attrs: Dict[str, str] = {}
        self.header_line = 0
        self.args: Dict[str, str] = {}
        self.settings: List[Tuple[str, str, str, int]] = []

    def fail(self, line_no: int, expected: str, got: str) -> ConfigError:
        return ConfigError(f"{self.source}:{line_no}: expected {expected}, got {got!r}")

    def feed(self, line_no: int, raw: str) -> None:
        line = raw.strip()
        if not line or line.startswith("#"):
            return
        # Trailing comments are not in NVIDIA's files, but users add them; paths never contain " #".
        line = re.split(r"\s+#", line, maxsplit=1)[0]
        if line.startswith("<"):
            self.header(line_no, line)
            return
        words = line.split()
        if self.kind is None:
            raise self.fail(line_no, "a section header like '< PARAM TYPE=FILE NAME=X >' first", line)
        if self.kind == "PARAM":
            if len(words) < 2:
                raise self.fail(line_no, "'ARG_NAME PATH' in the PARAM section", line)
            # Extra words: HWMON args are 'DIR ATTR'; a stock Nano file wraps one KNEXT path with a run of
            # spaces (rageer-git file, FREQ_TABLE_KNEXT). nvpmodel never reads those; keep the text.
            self.args[words[0]] = " ".join(words[1:])
        elif self.kind == "POWER_MODEL":
            if len(words) < 3:
                raise self.fail(line_no, "'PARAM_NAME ARG_NAME VALUE' in the POWER_MODEL section", line)
            self.settings.append((words[0], words[1], " ".join(words[2:]), line_no))
        else:
            raise self.fail(line_no, f"nothing after a {self.kind} header but another section", line)

    def header(self, line_no: int, line: str) -> None:
        m = _HEADER_RE.match(line)
        if not m:
            raise self.fail(line_no, "a section header '< KIND KEY=VALUE ... >'", line)
        self.close()
        kind = m.group(1).upper()
        attrs = dict(kv.split("=", 1) for kv in m.group(2).split())
        attrs = {k.upper(): v for k, v in attrs.items()}
        if kind not in _KNOWN_SECTIONS:
            raise self.fail(line_no, "a section kind among {}".format(", ".join(_KNOWN_SECTIONS)), kind)
        self.kind, self.attrs, self.header_line = kind, attrs, line_no
        self.args, self.settings = {}, []
        if kind == "PARAM":
            for key in ("TYPE", "NAME"):
                if key not in attrs:
                    raise self.fail(line_no, f"{key}= in the PARAM header", line)
            if attrs["NAME"] in self.params:
                raise self.fail(line_no, "a PARAM NAME not defined before", attrs["NAME"])
        elif kind == "POWER_MODEL":
            for key in ("ID", "NAME"):
                if key not in attrs:
                    raise self.fail(line_no, f"{key}= in the POWER_MODEL header", line)
            mode_id = _parse_int(attrs["ID"])
            if mode_id is None or mode_id < 0:
                raise self.fail(line_no, "ID=<non-negative integer>", attrs["ID"])
            if any(mm.id == mode_id for mm in self.modes):
                raise self.fail(line_no, "a POWER_MODEL ID not used before", attrs["ID"])
            if any(mm.name == attrs["NAME"] for mm in self.modes):
                raise self.fail(line_no, "a POWER_MODEL NAME not used before", attrs["NAME"])
        elif kind == "PM_CONFIG":
            value = _parse_int(attrs.get("DEFAULT", ""))
            if value is None:
                raise self.fail(line_no, "DEFAULT=<mode id> in PM_CONFIG", line)
            self.default_id, self.default_line = value, line_no
        elif kind == "FAN_CONFIG":
            self.fan_default = attrs.get("DEFAULT")

    def close(self) -> None:
        if self.kind == "PARAM":
            self.params[self.attrs["NAME"]] = ParamDef(
                type=self.attrs["TYPE"].upper(),
                name=self.attrs["NAME"],
                args=dict(self.args),
                line=self.header_line,
            )
        elif self.kind == "POWER_MODEL":
            self.modes.append(self.build_mode())
        self.kind = None

    def build_mode(self) -> ConfMode:
        mode_id = _parse_int(self.attrs["ID"])
        assert mode_id is not None
        name = self.attrs["NAME"]
        gpu_max: Optional[int] = None
        gpu_min: Optional[int] = None
        tpc: Optional[int] = None
        fbp: Optional[int] = None
        cores: Dict[str, bool] = {}
        for param, arg, value, line_no in self.settings:
            pdef = self.params.get(param)
            if pdef is None:
                known = ", ".join(self.params)
                raise self.fail(line_no, f"a PARAM defined above (known: {known})", param)
            if arg not in pdef.args:
                known = ", ".join(pdef.args)
                raise self.fail(line_no, f"an argument of PARAM {param} ({known})", f"{param} {arg}")
            if pdef.type == "CLOCK":
                number = _parse_int(value)
                if number is None or number < -1:
                    raise self.fail(line_no, f"an integer value (-1 = no cap) for {param} {arg}", value)
                if param == GPU_PARAM and arg == "MAX_FREQ":
                    gpu_max = None if number == -1 else number
                elif param == GPU_PARAM and arg == "MIN_FREQ":
                    gpu_min = None if number == -1 else number
            if arg in (TPC_PG_MASK_ARG, FBP_PG_MASK_ARG):
                mask = _parse_int(value)
                if mask is None or mask < 0:
                    raise self.fail(line_no, f"a non-negative integer mask for {arg}", value)
                if arg == TPC_PG_MASK_ARG:
                    tpc = mask
                else:
                    fbp = mask
            if param == CPU_ONLINE_PARAM:
                if value not in ("0", "1"):
                    raise self.fail(line_no, f"0 or 1 for CPU_ONLINE {arg}", value)
                cores[arg] = value == "1"
        defined = self.params[CPU_ONLINE_PARAM].args if CPU_ONLINE_PARAM in self.params else {}
        if cores:
            online = sum(1 for on in cores.values() if on)
            # TX2 confs define CORE_0 but never set it: cpu0 cannot be taken offline, so it is online. Other
            # unset cores are not counted: AGX Orin 32GB (p3701_0004) defines CORE_0..11 for an 8-core SoC.
            if "CORE_0" in defined and "CORE_0" not in cores:
                online += 1
        else:
            # A mode without CPU_ONLINE lines leaves the cores as booted: all online.
            online = len(defined)
        pm = PowerMode(
            id=mode_id,
            name=name,
            gpu_max_freq_hz=gpu_max,
            online_cores=online,
            tpc_pg_mask=tpc,
            fbp_pg_mask=fbp,
        )
        return ConfMode(
            power_mode=pm,
            gpu_min_freq_hz=gpu_min,
            settings=[(p, a, v) for p, a, v, _ in self.settings],
            line=self.header_line,
        )

    def finish(self, last_line: int) -> NvpmodelConf:
        self.close()
        if not self.modes:
            raise self.fail(last_line, "at least one '< POWER_MODEL ID=n NAME=x >' section", "end of file")
        if self.default_id is None:
            raise self.fail(last_line, "the mandatory '< PM_CONFIG DEFAULT=id >' section", "end of file")
        if not any(m.id == self.default_id for m in self.modes):
            known = ", ".join(str(m.id) for m in self.modes)
            raise self.fail(
                self.default_line, f"PM_CONFIG DEFAULT naming a mode id ({known})", str(self.default_id)
            )
        return NvpmodelConf(
            source=self.source,
            params=self.params,
            modes=self.modes,
            default_id=self.default_id,
            fan_default=self.fan_default,
        )


def parse_conf(text: str, source: str = "<conf>") -> NvpmodelConf:
    """Parse an nvpmodel.conf. Raises ConfigError naming `source`, the line and what was expected."""
    parser = _Parser(source)
    line_no = 0
    for line_no, raw in enumerate(text.splitlines(), start=1):
        parser.feed(line_no, raw)
    return parser.finish(line_no)


def parse_query(stdout: str) -> Tuple[str, Optional[int]]:
    """(mode name, mode id) from `nvpmodel -q [--verbose]` output.

    Real shapes: `NV Power Mode: MAXN` then `0` on the next line; JetPack 4 may print `NV Fan Mode:quiet`
    first; `--verbose` wraps it as `NVPM VERB: Current mode: NV Power Mode: 25W` and adds `NVPM VERB:` lines.
    The id is None when nvpmodel printed none. Raises ActuationError when there is no mode line.
    """
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        m = _QUERY_MODE_RE.search(line)
        if not m:
            continue
        name = m.group(1)
        for following in lines[i + 1 :]:
            text = following.strip()
            if not text or text.startswith("NVPM VERB") or text.startswith("NV Fan Mode"):
                continue
            return name, (int(text) if text.isdigit() else None)
        return name, None
    raise ActuationError(f"nvpmodel -q printed no 'NV Power Mode:' line; output: {stdout[-500:]!r}")


def _output_of(result: CommandResult) -> str:
    return (result.stdout + ("\n" + result.stderr if result.stderr else "")).strip()


class Nvpmodel:
    """Drives the `nvpmodel` tool. Never answers its reboot prompt: refuses such switches up front.

    >>> nv = Nvpmodel(runner, tree)                       # doctest: +SKIP
    >>> nv.query().name; nv.set_mode("15W")               # doctest: +SKIP

    Not thread-safe: the conf cache is filled lazily; one owner (the platform) calls it.
    """

    def __init__(self, runner: CommandRunner, tree: SysfsTree, timeout_s: float = 10.0,
                 deadline_s: Optional[float] = None) -> None:
        self._runner = runner
        self._tree = tree
        self._timeout_s = timeout_s
        # `deadline_s` (time.monotonic()): the stop's restore runs several nvpmodel calls in a row, and each
        # may take only what is left of one deadline, not a full timeout of its own (on a starved machine
        # five calls of a few seconds each overran the service's stop budget; see docs/RELIABILITY.md).
        self._deadline_s = deadline_s
        self._conf: Optional[NvpmodelConf] = None

    def bounded(self, deadline_s: float) -> "Nvpmodel":
        """The same nvpmodel (conf cache shared) whose every call ends by `deadline_s` (time.monotonic())."""
        other = Nvpmodel(self._runner, self._tree, self._timeout_s, deadline_s)
        other._conf = self._conf
        return other

    def time_left_s(self) -> Optional[float]:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self._deadline_s is None else max(0.0, self._deadline_s - time.monotonic())

    def conf(self) -> NvpmodelConf:
        """The board's nvpmodel.conf (on JetPack 5+ a symlink into /etc/nvpmodel/), parsed once."""
        if self._conf is None:
            try:
                text = self._tree.read_text(CONF_PATH)
            except OSError as exc:
                raise ConfigError(f"cannot read {CONF_PATH}: {exc}") from exc
            self._conf = parse_conf(text, CONF_PATH)
        return self._conf

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    def _call_timeout_s(self, cmd: str) -> float:
        left_s = self.time_left_s()
        if left_s is None:
            return self._timeout_s
        if left_s < MIN_CALL_S:
            raise ActuationError(f"{cmd!r} not run: its deadline has passed")
        return min(self._timeout_s, left_s)

    def _run(self, args: Sequence[str], on_start: Optional[Callable[[ChildProcess], None]] = None) -> CommandResult:
        argv = ["nvpmodel", *args]
        cmd = " ".join(argv)
        timeout_s = self._call_timeout_s(cmd)
        result = (self._runner.run(argv, timeout_s) if on_start is None
                  else self._runner.run(argv, timeout_s, on_start=on_start))
        output = _output_of(result)
        if any(marker in output for marker in _REBOOT_MARKERS):
            # stdin is closed, so nvpmodel read EOF at its prompt and left the mode unchanged.
            raise RebootRequiredError(f"{cmd!r} asked for a reboot (not answered); output: {output!r}")
        if result.timed_out:
            raise ActuationError(
                f"{cmd!r} timed out after {timeout_s:.3g} s; output: {output!r}"
            )
        error_lines = [ln.strip() for ln in output.splitlines() if "NVPM ERROR" in ln]
        if error_lines:
            raise ActuationError("{!r} failed: {}; output: {!r}".format(cmd, "; ".join(error_lines), output))
        if result.returncode == -signal.SIGKILL:
            raise ActuationError(f"{cmd!r} was killed (the daemon is stopping, or SIGKILL from elsewhere); "
                                 f"output: {output!r}")
        if result.returncode != 0:
            raise ActuationError(f"{cmd!r} exited {result.returncode}; output: {output!r}")
        return result

    def query(self) -> PowerMode:
        """The current mode, from `nvpmodel -q`, matched to the conf by id (by name when no id printed)."""
        name, mode_id = parse_query(self._run(["-q"]).stdout)
        conf = self.conf()
        mode = conf.mode_by_id(mode_id) if mode_id is not None else conf.mode_by_name(name)
        if mode is None or mode.name != name:
            raise ActuationError(
                "nvpmodel -q reports mode {} (id {}) which {} does not define as such; modes: {}".format(
                    name, mode_id, conf.source, ", ".join(f"{m.id}={m.name}" for m in conf.modes)
                )
            )
        return mode.power_mode

    def reachable_without_reboot(self, current: PowerMode) -> List[PowerMode]:
        """Modes `current` can switch to live (itself included), in conf order."""
        return [m for m in self.conf().power_modes if m.reboot_group() == current.reboot_group()]

    def target(self, name: str) -> ConfMode:
        """The conf mode called `name`; ActuationError listing the valid names otherwise."""
        return self.conf().target(name)

    @staticmethod
    def switch_argv(mode_id: int) -> List[str]:
        """The command line of a switch to `mode_id` (what the restore journal records while it runs)."""
        return ["nvpmodel", "-m", str(mode_id)]

    def set_mode(self, name: str, current: Optional[PowerMode] = None, force: bool = False,
                 on_start: Optional[Callable[[ChildProcess], None]] = None) -> PowerMode:
        """Switch to the mode called `name` and verify with `nvpmodel -q`.

        RebootRequiredError (before running nvpmodel) when the switch needs a reboot; ActuationError when
        nvpmodel fails, times out, prompts, or the mode read back differs. `current` saves one query. `force`
        runs nvpmodel even when the board already reports the mode (an interrupted switch may have written
        part of another mode's settings; nvpmodel rewrites all of them). `on_start` is told the child.
        """
        target = self.target(name).power_mode
        if current is None:
            current = self.query()
        if not switch_needed(current, target, force):
            return current
        return self.switch(target, on_start)

    def switch(self, target: PowerMode, on_start: Optional[Callable[[ChildProcess], None]] = None) -> PowerMode:
        """`nvpmodel -m` to `target` (checked by the caller: `switch_needed`), verified with `nvpmodel -q`."""
        self._run(self.switch_argv(target.id)[1:], on_start=on_start)
        now = self.query()
        if now.id != target.id:
            raise ActuationError(
                f"nvpmodel -m {target.id} exited cleanly but the board reports mode {now.name} "
                f"(id {now.id}), not {target.name} (id {target.id})"
            )
        return now
