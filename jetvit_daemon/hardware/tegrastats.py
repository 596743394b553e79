"""tegrastats: the line parser and the long-lived reader.

`parse_line()` turns one tegrastats line of any JetPack (L4T 28 → JetPack 7.2) into a `TegrastatsReading`.
Tokens are recognised by their SHAPE, never by their position: the order and the set of fields differ by
board, release and privilege (root or not), so unknown tokens are skipped. The formats handled are listed in
`jetson-reference/README.md` ("tegrastats: what a parser must survive"); the 32 real lines there are the test
fixtures.

`TegrastatsReader` runs one `tegrastats --interval <ms>` child and keeps the newest good reading as a
`TelemetrySample`, restarting the child with exponential backoff when it exits, stalls or prints garbage.
"""

import datetime
import logging
import os
import re
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from jetvit_daemon.clock import Clock
from jetvit_daemon.errors import TelemetryParseError
from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.hardware.commands import CommandRunner, StreamingProcess
from jetvit_daemon.hardware.telemetry_thread import STALE_INTERVALS, ThreadedTelemetry

log = logging.getLogger(__name__)

__all__ = [
    "MAX_LINE_CHARS",
    "CpuCore",
    "OverlongLine",
    "Rail",
    "TegrastatsReader",
    "TegrastatsReading",
    "board_power_from_rails",
    "bounded_lines",
    "is_sensor_off_c",
    "parse_line",
    "parse_lines",
    "reading_to_json",
    "reading_to_sample",
]


@dataclass(frozen=True)
class CpuCore:
    """One online CPU core: its load and, when printed, its clock (L4T 28 prints one clock for all)."""

    load_pct: float
    freq_mhz: Optional[int]


@dataclass(frozen=True)
class Rail:
    """One power rail in mW: the current value, the running average, and the maximum (R39 only)."""

    cur_mw: float
    avg_mw: Optional[float]
    max_mw: Optional[float] = None


@dataclass(frozen=True)
class TegrastatsReading:
    """Everything one tegrastats line said. A field the line did not carry is None (or empty)."""

    timestamp: Optional[datetime.datetime] = None  # leading "MM-DD-YYYY HH:MM:SS" (JetPack 5.1+), naive local
    ram_used_mb: Optional[int] = None
    ram_total_mb: Optional[int] = None
    swap_used_mb: Optional[int] = None
    swap_total_mb: Optional[int] = None
    cpus: Optional[Tuple[Optional[CpuCore], ...]] = None  # None entry: offline core ("off")
    emc_load_pct: Optional[float] = None
    emc_freq_mhz: Optional[int] = None
    gpu_load_pct: Optional[float] = None  # mean over the GPCs when each prints its own load
    gpu_freq_mhz: Tuple[int, ...] = ()  # one per GPU cluster/GPC; () when not printed
    temps_c: Dict[str, float] = field(default_factory=dict)  # lower-cased name → °C; sensors off absent
    rails_mw: Dict[str, Rail] = field(default_factory=dict)  # rail name as printed → values; NC rails skipped
    board_power_mw: Optional[float] = None  # module input power, see board_power_from_rails()


# --- board facts ------------------------------------------------------------------------------------------

# Rails that measure the whole module input on their own (jetson-reference README, "Power rails"):
# VIN on Thor, VDD_IN on TX1/TX2/Xavier NX/Orin NX/Orin Nano, POM_5V_IN on Nano (and TX1 on some releases).
_TOTAL_RAILS = ("VIN", "VDD_IN", "POM_5V_IN")

# Boards with no total rail whose INA3221 channels together cover the whole module input, so the sum IS the
# module power (jetson-reference README): AGX Orin (VDD_GPU_SOC = GPU + SoC, VDD_CPU_CV = CPU + CV,
# VIN_SYS_5V0 = the rest of the module) and AGX Xavier (GPU CPU SOC CV VDDRQ SYS5V). A sum is only given when
# every part is present: a partial sum would under-report power and look like a valid reading.
# Deliberately NOT summed:
# - Thor without VIN (VDD_GPU, VDD_CPU_SOC_MSS, VIN_SYS_5V0, samples 31-32): the README states Thor has no
#   total unless VIN is printed; nothing in the data shows those three cover the module, so no guess.
# - TX2 per-domain rails (VDD_CPU VDD_GPU VDD_SOC VDD_WIFI VDD_DDR, L4T 28, sample 8): they are sub-rails of
#   VDD_IN, and the same line shows they do not add up to it (320+400+400+0+240 = 1360 mW vs VDD_IN 2003 mW),
#   so when VDD_IN is missing their sum would under-report by a third.
# - VDDQ_VDD2_1V8AO on AGX Orin: a memory sub-rail not on the summed list (adding it would double count).
_PARTIAL_RAIL_SETS = (
    ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"),  # AGX Orin, JetPack 5/6/7
    ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"),  # AGX Xavier, JetPack 4/5
)

# Lowest physical temperature a Jetson module reports: industrial modules (AGX Orin Industrial, Xavier
# Industrial) are rated down to -40 °C. Anything colder is the "sensor powered off" value: -256 °C in
# tegrastats (AGX Orin JetPack 5, sample 23: CV0/CV1/CV2/GPU@-256C) and -256000 m°C in thermal_zone*/temp
# (jetson-reference README, "Power monitors (INA3221) and thermal zones").
_COLDEST_REAL_C = -40.0


def is_sensor_off_c(temp_c: float) -> bool:
    """True when a temperature is the "sensor off" value (-256 °C) or otherwise below any real reading."""
    return temp_c < _COLDEST_REAL_C


def board_power_from_rails(rails_mw: Mapping[str, float]) -> Optional[float]:
    """The module's total input power in mW from the rails (name → mW), or None when not knowable.

    A total rail wins (VIN, VDD_IN, POM_5V_IN); else the sum of a complete set of parts (AGX Orin, AGX
    Xavier); else None. Names are compared case-insensitively so sysfs labels and tegrastats names agree.
    Used by the tegrastats parser and by the sysfs INA3221 reader alike.
    """
    by_name = {name.upper(): value for name, value in rails_mw.items()}
    for total in _TOTAL_RAILS:
        if total in by_name:
            return by_name[total]
    for parts in _PARTIAL_RAIL_SETS:
        if all(p in by_name for p in parts):
            return float(sum(by_name[p] for p in parts))
    return None


# --- token shapes -----------------------------------------------------------------------------------------
# Every pattern is matched with fullmatch() against ONE whitespace-separated word and has bounded repeats
# with no nested ambiguity, so matching is linear in the word length (no catastrophic backtracking). Digit
# runs are bounded so int() never sees a number past Python's 4300-digit conversion limit.

_INT = r"[0-9]{1,9}"
_NUM = r"[0-9]{1,9}(?:\.[0-9]{1,9})?"
_SNUM = r"-?" + _NUM

_DATE = re.compile(r"([0-9]{2})-([0-9]{2})-([0-9]{4})", re.ASCII)
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})", re.ASCII)
# "3607/3983MB"; lfb/cached details that follow are separate words and ignored.
_SIZE_PAIR = re.compile(rf"({_INT})/({_INT})(kB|KB|MB|GB)", re.ASCII)
# "x%@f", "x%", "@f", "x%@[f1,f2]", "@[f1,f2,f3]" (GR3D_FREQ / EMC_FREQ / GR3D of every release).
_LOAD_FREQ = re.compile(
    rf"(?:({_NUM})%)?(?:@(?:({_INT})|\[({_INT}(?:,{_INT}){{0,63}})\]))?",
    re.ASCII,
)
_GR3D = re.compile(r"GR3D([0-9]?)(?:_FREQ)?", re.ASCII)
# One CPU list, possibly with the L4T 28 common clock after it: "[17%,11%]@1734", "[1%@102,off]".
_CPU_LIST = re.compile(rf"\[([^\[\]]{{1,8000}})\](?:@({_INT}))?", re.ASCII)
_CPU_CORE = re.compile(rf"({_NUM})%(?:@({_INT}))?", re.ASCII)
# "CPU@37.5C", "tj@44.343C", "CV0@-256C", R39 "cpu@52.968C/52.968C" (current/max).
_TEMP = re.compile(rf"([A-Za-z][A-Za-z0-9_\-]{{0,31}})@({_SNUM})C(?:/({_SNUM})C)?", re.ASCII)
# "VDD_IN 2532/2698" (JP4, mW without unit), "VDD_GPU_SOC 2380mW/2380mW" (JP5/6), R39 adds "/max".
_RAIL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}", re.ASCII)
_RAIL_VALUE = re.compile(rf"({_NUM})(?:mW)?/({_NUM})(?:mW)?(?:/({_NUM})(?:mW)?)?", re.ASCII)

_CPU_WORDS = ("CPU", "cpu")  # "cpu" on L4T 28 (samples 1-2)
_EMC_WORDS = ("EMC_FREQ", "EMC")  # "EMC" on L4T 28
_MAX_CORES = 512
_MAX_BRACKET_WORDS = 64  # a CPU list split by copied-log spaces is re-joined up to this many words


def _size_mb(value: str, unit: str) -> int:
    n = int(value)
    if unit in ("kB", "KB"):
        return (n + 512) // 1024
    if unit == "GB":
        return n * 1024
    return n


def _parse_cpu_list(text: str) -> Optional[Tuple[Optional[CpuCore], ...]]:
    """The cores of "[a%@f,off,...]" / "[a%,b%]@f", or None when the word is not a well-formed CPU list."""
    m = _CPU_LIST.fullmatch(text)
    if m is None:
        return None
    common_mhz = int(m.group(2)) if m.group(2) is not None else None
    entries = m.group(1).split(",")
    if len(entries) > _MAX_CORES:
        return None
    cores: List[Optional[CpuCore]] = []
    for entry in entries:
        if entry == "off":
            cores.append(None)
            continue
        cm = _CPU_CORE.fullmatch(entry)
        if cm is None:
            return None
        freq = int(cm.group(2)) if cm.group(2) is not None else common_mhz
        cores.append(CpuCore(load_pct=float(cm.group(1)), freq_mhz=freq))
    return tuple(cores)


def _parse_load_freq(text: str) -> Optional[Tuple[Optional[float], Tuple[int, ...]]]:
    """(load %, clocks MHz) of "x%@f" and its variants, or None when the word has another shape."""
    m = _LOAD_FREQ.fullmatch(text)
    if m is None or not text:
        return None
    load = float(m.group(1)) if m.group(1) is not None else None
    if m.group(2) is not None:
        freqs: Tuple[int, ...] = (int(m.group(2)),)
    elif m.group(3) is not None:
        freqs = tuple(int(f) for f in m.group(3).split(","))
    else:
        freqs = ()
    return load, freqs


def _short(line: str) -> str:
    return repr(line if len(line) <= 80 else line[:77] + "...")


def parse_line(line: str) -> TegrastatsReading:
    """Parse one tegrastats line. Raises TelemetryParseError (only) when it is not a tegrastats line.

    "Is tegrastats" means: it carries a well-formed RAM token (`RAM used/totalMB`) or CPU token (`CPU [...]`);
    every release prints both, so a line with neither is something else (a log line, JSON, noise).
    """
    if not isinstance(line, str):
        raise TelemetryParseError(f"tegrastats line must be text, got {type(line).__name__}")
    words = line.split()
    n = len(words)

    timestamp: Optional[datetime.datetime] = None
    ram: Optional[Tuple[int, int]] = None
    swap: Optional[Tuple[int, int]] = None
    cpus: Optional[Tuple[Optional[CpuCore], ...]] = None
    emc: Optional[Tuple[Optional[float], Tuple[int, ...]]] = None
    gpcs: List[Tuple[int, Optional[float], Tuple[int, ...]]] = []  # (GR3D index, load, clocks)
    temps: Dict[str, float] = {}
    rails: Dict[str, Rail] = {}

    i = 0
    while i < n:
        word = words[i]
        nxt = words[i + 1] if i + 1 < n else ""

        dm = _DATE.fullmatch(word) if timestamp is None else None
        tm = _TIME.fullmatch(nxt) if dm is not None else None
        if dm is not None and tm is not None:
            month, day, year = int(dm.group(1)), int(dm.group(2)), int(dm.group(3))
            hms = (int(tm.group(1)), int(tm.group(2)), int(tm.group(3)))
            try:
                timestamp = datetime.datetime(year, month, day, *hms)
            except ValueError:
                timestamp = None  # date-shaped but no date (13-45-2024): not a timestamp
            i += 2
            continue

        if word in ("RAM", "SWAP"):
            sm = _SIZE_PAIR.fullmatch(nxt)
            if sm is not None:
                pair = (_size_mb(sm.group(1), sm.group(3)), _size_mb(sm.group(2), sm.group(3)))
                if word == "RAM":
                    ram = pair
                else:
                    swap = pair
                i += 2
                continue

        if word in _CPU_WORDS and nxt.startswith("["):
            # Re-join a list that copied logs split with spaces ("[1%@102, 4%@102]").
            j = i + 1
            text = nxt
            while "]" not in text and j + 1 < n and j - i < _MAX_BRACKET_WORDS:
                j += 1
                text += words[j]
            parsed = _parse_cpu_list(text)
            if parsed is not None:
                cpus = parsed
                i = j + 1
                continue

        if word in _EMC_WORDS:
            lf = _parse_load_freq(nxt)
            if lf is not None:
                emc = lf
                i += 2
                continue

        gm = _GR3D.fullmatch(word)
        if gm is not None:
            lf = _parse_load_freq(nxt)
            if lf is not None:
                gpcs.append((int(gm.group(1) or "1"), lf[0], lf[1]))
                i += 2
                continue

        if _RAIL_NAME.fullmatch(word):
            rm = _RAIL_VALUE.fullmatch(nxt)
            if rm is not None:
                # Unconnected INA3221 channels print as "NC" (AGX Orin, sample 23): not a rail.
                if word != "NC":
                    rails[word] = Rail(
                        cur_mw=float(rm.group(1)),
                        avg_mw=float(rm.group(2)),
                        max_mw=float(rm.group(3)) if rm.group(3) is not None else None,
                    )
                i += 2
                continue

        em = _TEMP.fullmatch(word)
        if em is not None:
            temp_c = float(em.group(2))  # R39 "cur/max": the current value
            if not is_sensor_off_c(temp_c):
                temps[em.group(1).lower()] = temp_c
        # Anything else (engines, lfb/cached details, IRAM, MTS, VIC_FREQ, NVENC ...) is not needed.
        i += 1

    if ram is None and cpus is None:
        raise TelemetryParseError(
            f"not a tegrastats line (no 'RAM used/totalMB' and no 'CPU [...]' token): {_short(line)}"
        )

    # GR3D_FREQ + GR3D2_FREQ (early JetPack 5 AGX Orin, sample 28) print one load per GPC: the GPU load is
    # their mean, as each GPC is half of the GPU. Clocks are kept one per GPC in printed order.
    gpcs.sort(key=lambda g: g[0])
    loads = [g[1] for g in gpcs if g[1] is not None]
    gpu_load = sum(loads) / len(loads) if loads else None
    gpu_freqs: Tuple[int, ...] = tuple(f for g in gpcs for f in g[2])

    emc_load: Optional[float] = None
    emc_freq: Optional[int] = None
    if emc is not None:
        emc_load = emc[0]
        emc_freq = max(emc[1]) if emc[1] else None

    return TegrastatsReading(
        timestamp=timestamp,
        ram_used_mb=ram[0] if ram else None,
        ram_total_mb=ram[1] if ram else None,
        swap_used_mb=swap[0] if swap else None,
        swap_total_mb=swap[1] if swap else None,
        cpus=cpus,
        emc_load_pct=emc_load,
        emc_freq_mhz=emc_freq,
        gpu_load_pct=gpu_load,
        gpu_freq_mhz=gpu_freqs,
        temps_c=temps,
        rails_mw=rails,
        board_power_mw=board_power_from_rails({k: r.cur_mw for k, r in rails.items()}),
    )


def _num(value: Optional[float]) -> Any:
    """JSON number: an int when the value is whole (2532, not 2532.0)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def reading_to_json(r: TegrastatsReading) -> Dict[str, Any]:
    """The JSON object `jetvit-daemon tegrastats parse` prints for one reading (every key always present).

    Rails are `{"cur": n, "avg": n}`, plus `"max"` when the line printed it (R39).
    """
    cpus: Optional[List[Optional[Dict[str, Any]]]] = None
    if r.cpus is not None:
        cpus = [None if c is None else {"load_pct": _num(c.load_pct), "freq_mhz": c.freq_mhz} for c in r.cpus]
    rails: Dict[str, Dict[str, Any]] = {}
    for name, rail in r.rails_mw.items():
        entry = {"cur": _num(rail.cur_mw), "avg": _num(rail.avg_mw)}
        if rail.max_mw is not None:
            entry["max"] = _num(rail.max_mw)
        rails[name] = entry
    return {
        "timestamp": r.timestamp.isoformat() if r.timestamp is not None else None,
        "ram_used_mb": r.ram_used_mb,
        "ram_total_mb": r.ram_total_mb,
        "swap_used_mb": r.swap_used_mb,
        "swap_total_mb": r.swap_total_mb,
        "cpus": cpus,
        "emc_load_pct": _num(r.emc_load_pct),
        "emc_freq_mhz": r.emc_freq_mhz,
        "gpu_load_pct": _num(r.gpu_load_pct),
        "gpu_freq_mhz": list(r.gpu_freq_mhz),
        "temps_c": {k: _num(v) for k, v in r.temps_c.items()},
        "rails_mw": rails,
        "board_power_mw": _num(r.board_power_mw),
    }


def reading_to_sample(r: TegrastatsReading, t_mono_s: float) -> TelemetrySample:
    """The reading in SI units: W, Hz. GPU clock: the fastest cluster; CPU load: mean of online cores."""
    online = [c.load_pct for c in (r.cpus or ()) if c is not None]
    freqs = [c.freq_mhz for c in (r.cpus or ()) if c is not None and c.freq_mhz is not None]
    return TelemetrySample(
        t_mono_s=t_mono_s,
        gpu_load_pct=r.gpu_load_pct,
        gpu_freq_hz=max(r.gpu_freq_mhz) * 1e6 if r.gpu_freq_mhz else None,
        board_power_w=r.board_power_mw / 1000.0 if r.board_power_mw is not None else None,
        cpu_load_pct=sum(online) / len(online) if online else None,
        temps_c=dict(r.temps_c),
        rails_w={name: rail.cur_mw / 1000.0 for name, rail in r.rails_mw.items()},
        cpu_freq_hz=sum(freqs) / len(freqs) * 1e6 if freqs else None,
        ram_used_bytes=_mb_bytes(r.ram_used_mb),
        ram_total_bytes=_mb_bytes(r.ram_total_mb),
        swap_used_bytes=_mb_bytes(r.swap_used_mb),
        swap_total_bytes=_mb_bytes(r.swap_total_mb),
        emc_load_pct=r.emc_load_pct,
        emc_freq_hz=r.emc_freq_mhz * 1e6 if r.emc_freq_mhz is not None else None,
    )


def _mb_bytes(mb: Optional[int]) -> Optional[int]:
    # tegrastats' "MB" is MiB: RAM 3288/7620MB on an 8 GB Orin Nano is 7620 × 2^20 bytes (/proc/meminfo).
    return mb * 1024 * 1024 if mb is not None else None


# The longest real tegrastats line (AGX Orin, every rail and sensor, jetson-reference/tegrastats) is ~600
# characters; a "line" of more than 64 KiB is not one, and is not kept in memory to find that out.
MAX_LINE_CHARS = 64 * 1024


@dataclass(frozen=True)
class OverlongLine:
    """A line longer than MAX_LINE_CHARS, skipped unread: how long it was (at least)."""

    chars: int


def bounded_lines(stream: IO[str], max_chars: int = MAX_LINE_CHARS) -> Iterator[Union[str, OverlongLine]]:
    """The stream's lines, each at most `max_chars` long; a longer one is consumed in `max_chars` pieces and
    stands as one OverlongLine, so a 100 MB line costs 64 KiB of memory, not gigabytes."""
    while True:
        line = stream.readline(max_chars + 1)
        if not line:
            return
        if len(line) <= max_chars or line.endswith("\n"):
            yield line
            continue
        total = len(line)
        while not line.endswith("\n"):
            line = stream.readline(max_chars)
            if not line:
                break
            total += len(line)
        yield OverlongLine(total)


def parse_lines(lines: Iterable[Union[str, OverlongLine]]) -> Iterator[Dict[str, Any]]:
    """JSON objects for `jetvit-daemon tegrastats parse`: one per non-blank line, and for a line that is not
    tegrastats `{"line": <1-based number>, "error": "<message>"}`. Blank lines are skipped but counted."""
    for number, line in enumerate(lines, start=1):
        if isinstance(line, OverlongLine):
            yield {"line": number, "error": f"a line of {line.chars} characters, longer than any tegrastats line "
                                            f"(at most {MAX_LINE_CHARS}): skipped"}
            continue
        if not line.strip():
            continue
        try:
            yield reading_to_json(parse_line(line.rstrip("\r\n")))
        except TelemetryParseError as exc:
            yield {"line": number, "error": str(exc)}


# --- the reader -------------------------------------------------------------------------------------------

_GARBAGE_RUN = 3  # this many unparseable lines in a row: the child is not printing tegrastats, restart it
_POLL_S = 0.1  # longest a select() blocks, so stop() is noticed within it
_MAX_LINE_BYTES = MAX_LINE_CHARS  # a "line" longer than this without a newline is garbage, not a reading
_TERM_WAIT_S = 0.5  # grace between SIGTERM and SIGKILL for the child


class TegrastatsReader(ThreadedTelemetry):
    """Runs `tegrastats --interval <ms>` and keeps the newest good reading. Implements `TelemetrySource`.

    >>> reader = TegrastatsReader(SubprocessRunner(), SystemClock(), interval_s=1.0)   # doctest: +SKIP
    >>> reader.start(); sample = reader.latest(); reader.stop()                       # doctest: +SKIP

    One worker thread owns the child: it reads lines with `select()` (so it notices stop and stalls), kills
    and restarts the child with exponential backoff (`backoff_initial_s` doubling up to `backoff_max_s`) when
    it exits, stalls (no good line for 3 intervals) or prints only garbage (3 unparseable lines in a row).
    `on_event(kind, message)` hears "restart", "spawn_failed", "parse_error", "telemetry_stale",
    "telemetry_recovered" and "worker_died". `latest()`, `is_stale()` and the counters are thread-safe;
    `start()`/`stop()` belong to the owner.
    """

    name = "tegrastats"
    _thread_name = "tegrastats-reader"
    _stop_warning = "tegrastats reader did not stop within %.1f s; killing its child"

    def __init__(
        self,
        runner: CommandRunner,
        clock: Clock,
        interval_s: float = 1.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        on_event: Optional[Callable[[str, str], None]] = None,
        startup_grace_s: float = 2.0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        if backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError(
                f"need 0 < backoff_initial_s <= backoff_max_s, got {backoff_initial_s} and {backoff_max_s}"
            )
        super().__init__(clock, interval_s)
        self._runner = runner
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._on_event = on_event
        # The first line of a fresh child comes after one interval plus the program's start-up (a Python
        # emulator needs a few hundred ms on a loaded machine): no stall verdict before that.
        self._startup_grace_s = startup_grace_s
        self._proc: Optional[StreamingProcess] = None
        self._restarts = 0
        self._parse_errors = 0
        self._lines_read = 0
        self._stale_reported = False

    # -- public --

    @property
    def argv(self) -> List[str]:
        # tegrastats takes --interval in MILLISECONDS (NVIDIA Jetson Linux Developer Guide, "tegrastats
        # Utility": "--interval <millisec>  sample the information in <milliseconds>").
        return ["tegrastats", "--interval", str(max(1, round(self._interval_s * 1000)))]

    @property
    def restarts(self) -> int:
        with self._lock:
            return self._restarts

    @property
    def parse_errors(self) -> int:
        with self._lock:
            return self._parse_errors

    @property
    def lines_read(self) -> int:
        with self._lock:
            return self._lines_read

    def stop(self, timeout_s: float = 2.0) -> None:
        thread = self._thread
        super().stop(timeout_s)
        # Normally the worker has already killed its child; this covers a worker stuck elsewhere.
        with self._lock:
            proc = self._proc
        if proc is not None and (thread is None or thread.alive):
            _end_child(proc)

    # -- worker --

    def _check_stale(self) -> None:
        stale = self.is_stale()
        if stale and not self._stale_reported:
            self._stale_reported = True
            limit_s = STALE_INTERVALS * self._interval_s
            self._emit("telemetry_stale", f"no good tegrastats reading for {limit_s:.2f} s")
        elif not stale and self._stale_reported:
            self._stale_reported = False
            self._emit("telemetry_recovered", "tegrastats readings arrive again")

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:
            # Reported, then escaped: the WorkerThread logs the traceback and the supervisor stops the daemon.
            self._emit("worker_died", f"tegrastats reader died: {exc!r}")
            raise
        finally:
            with self._lock:
                proc, self._proc = self._proc, None
            if proc is not None:
                _end_child(proc)

    def _loop(self) -> None:
        backoff_s = self._backoff_initial_s
        first = True
        while not self._stop.is_set():
            if not first:
                with self._lock:
                    self._restarts += 1
            first = False
            try:
                proc = self._runner.spawn(self.argv)
            except OSError as exc:
                self._emit("spawn_failed", "cannot start {}: {}".format(" ".join(self.argv), exc))
                self._backoff_wait(backoff_s)
                backoff_s = min(backoff_s * 2, self._backoff_max_s)
                continue
            with self._lock:
                self._proc = proc
            try:
                reason, good = self._read_child(proc)
            finally:
                with self._lock:
                    self._proc = None
                _end_child(proc)
            if self._stop.is_set():
                break
            if good:
                backoff_s = self._backoff_initial_s  # the child worked: a fresh failure starts over
            # Reported after the backoff, when the restart really happens: a child that ended because the
            # service is stopping (SIGTERM to the whole cgroup, Ctrl-C) is neither restarted nor reported,
            # since stopping begins (begin_stop) well within the first backoff.
            self._backoff_wait(backoff_s)
            if self._stop.is_set():
                break
            self._emit("restart", f"tegrastats {reason}; restarting after {backoff_s:.1f} s")
            backoff_s = min(backoff_s * 2, self._backoff_max_s)

    def _backoff_wait(self, wait_s: float) -> None:
        # Real time (Event.wait), checked in slices so staleness is still reported during a long backoff.
        deadline = time.monotonic() + wait_s
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._stop.wait(min(remaining, self._interval_s, _POLL_S * 5))
            self._beat()
            self._check_stale()

    def _read_child(self, proc: StreamingProcess) -> Tuple[str, bool]:
        """Read until stop, exit, stall or garbage. Returns (why it ended, whether any line was good)."""
        if proc.stdout is None:
            return "has no stdout pipe", False
        fd = proc.stdout.fileno()
        buf = b""
        good_any = False
        bad_run = 0
        spawned_at = self._clock.monotonic()
        last_good_at: Optional[float] = None
        while not self._stop.is_set():
            self._beat()
            try:
                ready, _, _ = select.select([fd], [], [], min(_POLL_S, self._interval_s))
            except (OSError, ValueError) as exc:
                return f"pipe failed ({exc})", good_any
            now = self._clock.monotonic()
            if ready:
                # Raw os.read on the fd: a TextIOWrapper would buffer lines that select() cannot see.
                try:
                    chunk = os.read(fd, 65536)
                except OSError as exc:
                    return f"pipe failed ({exc})", good_any
                if not chunk:
                    if buf.strip():
                        self._handle_line(buf)
                    try:
                        code: Optional[int] = proc.wait(timeout=_TERM_WAIT_S)
                    except subprocess.TimeoutExpired:
                        code = None  # closed stdout but still running: _end_child ends it
                    return _exit_reason(code), good_any
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    ok = self._handle_line(raw)
                    if ok is True:
                        good_any = True
                        bad_run = 0
                        last_good_at = self._clock.monotonic()
                    elif ok is False:
                        bad_run += 1
                if len(buf) > _MAX_LINE_BYTES:
                    self._count_bad(f"a line longer than {_MAX_LINE_BYTES} bytes")
                    bad_run += 1
                    buf = b""
                if bad_run >= _GARBAGE_RUN:
                    return f"printed {bad_run} unparseable lines in a row", good_any
            stall_s = STALE_INTERVALS * self._interval_s
            if last_good_at is not None:
                stalled = now - last_good_at > stall_s
            else:
                stalled = now - spawned_at > stall_s + self._startup_grace_s
            self._check_stale()
            if stalled:
                return f"stalled (no good line for {stall_s:.2f} s)", good_any
        return "stopped", good_any

    def _count_bad(self, message: str) -> None:
        with self._lock:
            self._parse_errors += 1
        self._emit("parse_error", message)

    def _handle_line(self, raw: bytes) -> Optional[bool]:
        """True: a good reading; False: an unparseable line; None: a blank line."""
        with self._lock:
            self._lines_read += 1
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            return None
        try:
            reading = parse_line(text)
        except TelemetryParseError as exc:
            self._count_bad(str(exc))
            return False
        sample = reading_to_sample(reading, self._clock.monotonic())
        with self._lock:
            self._latest = sample
        self._check_stale()
        return True


def _exit_reason(code: Optional[int]) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"exited (code {code})"


def _end_child(proc: StreamingProcess) -> None:
    """Terminate, then kill after a short grace, and close the pipe. Safe on an already-ended child."""
    try:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=_TERM_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=_TERM_WAIT_S * 2)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("could not end the tegrastats child: %s", exc)
    finally:
        if proc.stdout is not None:
            try:
                proc.stdout.close()
            except OSError:
                pass
