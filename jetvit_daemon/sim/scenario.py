"""Scenarios for the offline simulator: data files (YAML) a user can copy and edit. The built-in ones live
in `jetvit_daemon/sim/scenarios/` (steady, bursty, hot, budget); the evaluation set in benchmarks/scenarios/.

Version 1: constant camera rates, one ambient temperature, one power budget. Version 2 adds, for each camera
group's `fps`, for `ambient_c` and for `power_budget_w`, a schedule in time instead of a number (steps, points,
a ramp or a sine, optionally repeating), camera groups that start and stop at given times, the workload
profile (`workload`, sim/workload.py) and `trace`: a recorded CSV (`t_s`, one fps column per source, optionally
`ambient_c`) replayed as step schedules. docs/SIMULATION.md ("Scenario files") is the reference.

    scenario = load_scenario("bursty")            # a built-in one by name, or a path
    fps = compile_schedule(scenario.cameras[0].fps)
    fps.at(12.5)                                  # the rate at 12.5 s

Models are immutable; compiled schedules are pure (thread-safe).
"""

import bisect
import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Literal, Optional, Sequence, Tuple, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.yamlfile import YamlProblem, load_yaml_model, read_bounded

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SHAPES = ("steps", "points", "ramp", "sine")
# A trace is data, not a program: an hour at 1 s resolution with a few dozen sources is ~300 KB.
MAX_TRACE_BYTES = 8 * 1024 * 1024
MAX_TRACE_ROWS = 200_000
MAX_CAMERAS = 256  # all groups together: the simulator's per-frame loop is Python


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Activity(_Strict):
    """A camera that streams in bursts: on and off periods drawn from exponentials with these means."""

    on_mean_s: float = Field(gt=0)
    off_mean_s: float = Field(gt=0)


class Ramp(_Strict):
    """`from` until `start_s`, linear to `to` at `end_s`, `to` after."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: float = Field(alias="from")
    to: float
    start_s: float = Field(0.0, ge=0)
    end_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "Ramp":
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s:g}) must be after start_s ({self.start_s:g})")
        return self


class Sine(_Strict):
    """mean + amplitude · sin(2π (t − phase_s) / period_s): a daily cycle compressed into a scenario."""

    mean: float
    amplitude: float = Field(ge=0)
    period_s: float = Field(gt=0)
    phase_s: float = 0.0


Point = Tuple[float, float]


class Schedule(_Strict):
    """A value over time. In a file: a number (constant) or a mapping with exactly one shape:
    `steps: [[t_s, v], …]` (v from t_s until the next point), `points: [[t_s, v], …]` (linear between points),
    `ramp: {from, to, start_s, end_s}` or `sine: {mean, amplitude, period_s, phase_s}`; with `repeat_s`, steps
    and points repeat with that period (their times must lie within it). Before the first point the first
    value holds, after the last the last. Subclasses bound the values (`LOW`, `HIGH`, `WHAT`)."""

    LOW: ClassVar[float] = -math.inf
    HIGH: ClassVar[float] = math.inf
    LOW_OPEN: ClassVar[bool] = False  # True: LOW itself is not valid
    WHAT: ClassVar[str] = "value"

    constant: Optional[float] = None
    steps: Optional[List[Point]] = Field(None, min_length=1, max_length=MAX_TRACE_ROWS)
    points: Optional[List[Point]] = Field(None, min_length=1, max_length=MAX_TRACE_ROWS)
    ramp: Optional[Ramp] = None
    sine: Optional[Sine] = None
    repeat_s: Optional[float] = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _number_or_shape(cls, data: Any) -> Any:
        if isinstance(data, bool):
            raise ValueError(cls._usage())
        if isinstance(data, (int, float)):
            return {"constant": data}
        if not isinstance(data, dict):
            raise ValueError(cls._usage())
        return data

    @model_validator(mode="after")
    def _one_shape_in_bounds(self) -> "Schedule":
        given = [s for s in ("constant", *SHAPES) if getattr(self, s) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one shape, got {', '.join(given) or 'none'}: " + self._usage())
        pts = self.steps if self.steps is not None else self.points
        if pts is not None:
            times = [t for t, _ in pts]
            if any(b <= a for a, b in zip(times, times[1:])):
                raise ValueError("the points' times (the first of each pair) must increase")
            if times[0] < 0:
                raise ValueError(f"times are seconds from the start, ≥ 0 (got {times[0]:g})")
            if self.repeat_s is not None and times[-1] >= self.repeat_s:
                raise ValueError(f"with repeat_s {self.repeat_s:g} every time must be below it (got {times[-1]:g})")
        elif self.repeat_s is not None:
            raise ValueError("repeat_s applies to steps and points only")
        low, high = self.value_range()
        if low < self.LOW or (self.LOW_OPEN and low <= self.LOW) or high > self.HIGH:
            raise ValueError(f"{self._bounds()} throughout; this schedule spans {low:g}..{high:g}")
        return self

    def value_range(self) -> Tuple[float, float]:
        if self.constant is not None:
            return self.constant, self.constant
        if self.ramp is not None:
            return min(self.ramp.from_, self.ramp.to), max(self.ramp.from_, self.ramp.to)
        if self.sine is not None:
            return self.sine.mean - self.sine.amplitude, self.sine.mean + self.sine.amplitude
        pts = self.steps if self.steps is not None else self.points
        assert pts is not None
        values = [v for _, v in pts]
        return min(values), max(values)

    @classmethod
    def _bounds(cls) -> str:
        lo = "" if math.isinf(cls.LOW) else f"{cls.LOW:g} {'<' if cls.LOW_OPEN else '≤'} "
        hi = "" if math.isinf(cls.HIGH) else f" ≤ {cls.HIGH:g}"
        return f"{lo}{cls.WHAT}{hi}"

    @classmethod
    def _usage(cls) -> str:
        return (f"a number ({cls._bounds()}) or a schedule: {{steps: [[t_s, v], …]}}, {{points: [[t_s, v], …]}} "
                "(either with optional repeat_s), {ramp: {from, to, start_s, end_s}} or "
                "{sine: {mean, amplitude, period_s, phase_s}}")


class FpsSchedule(Schedule):
    LOW = 0.0  # 0: the group sends nothing then (a schedule may pause it); a constant must be > 0
    HIGH = 240.0
    WHAT = "fps"

    @model_validator(mode="after")
    def _constant_positive(self) -> "FpsSchedule":
        if self.constant is not None and self.constant <= 0:
            raise ValueError(f"a constant rate must be > 0 (got {self.constant:g}); leave the group out, or "
                             "give a schedule that is 0 while it should send nothing")
        return self


class AmbientSchedule(Schedule):
    LOW = -40.0
    HIGH = 85.0
    WHAT = "ambient °C"


class BudgetSchedule(Schedule):
    LOW = 0.0
    LOW_OPEN = True
    WHAT = "budget W"


class CameraGroup(_Strict):
    """`count` cameras alike. Version 2: `fps` may be a schedule, the group may `start_s`/`stop_s` (it sends
    frames only in [start_s, stop_s)), and `name` labels it (trace columns become groups named after them)."""

    name: Optional[str] = Field(None, min_length=1, max_length=64)
    count: int = Field(1, ge=1, le=64)
    fps: FpsSchedule
    activity: Union[Literal["always"], Activity] = "always"
    start_s: float = Field(0.0, ge=0)
    stop_s: Optional[float] = Field(None, gt=0)

    @model_validator(mode="after")
    def _valid(self) -> "CameraGroup":
        if self.stop_s is not None and self.stop_s <= self.start_s:
            raise ValueError(f"stop_s ({self.stop_s:g}) must be after start_s ({self.start_s:g})")
        return self

    @property
    def uses_v2(self) -> List[str]:
        used = [k for k in ("name", "start_s", "stop_s") if k in self.model_fields_set]
        return used + (["fps (a schedule)"] if self.fps.constant is None else [])


V2_FIELDS = ("trace", "workload")


class Scenario(_Strict):
    version: Literal[1, 2] = 1
    name: str
    description: str = ""
    duration_s: float = Field(3600.0, gt=0)
    ambient_c: AmbientSchedule = AmbientSchedule(constant=25.0)
    cooling: Literal["fan", "passive", "enclosure"] = "fan"
    power_budget_w: Optional[BudgetSchedule] = None
    # A workload profile (sim/workload.py) by name or path; null: the board's own ViT-B/16 calibration.
    workload: Optional[str] = Field(None, min_length=1)
    # A recorded trace (CSV) replayed as camera groups and ambient schedule; a path relative to this file.
    trace: Optional[str] = Field(None, min_length=1)
    cameras: List[CameraGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _versioned(self) -> "Scenario":
        if self.version == 1:
            used = [k for k in V2_FIELDS if getattr(self, k) is not None]
            used += [f"{k} (a schedule)" for k in ("ambient_c", "power_budget_w")
                     if getattr(self, k) is not None and getattr(self, k).constant is None]
            used += [f"cameras.{i}.{k}" for i, g in enumerate(self.cameras) for k in g.uses_v2]
            if used:
                raise ValueError(f"{', '.join(used)}: version 2 only (set version: 2)")
        if not self.cameras and self.trace is None:
            raise ValueError("cameras: at least one camera group (or, version 2, a trace)")
        if sum(g.count for g in self.cameras) > MAX_CAMERAS:
            raise ValueError(f"cameras: at most {MAX_CAMERAS} cameras in all")
        return self

    @property
    def ambient_at_start_c(self) -> float:
        return compile_schedule(self.ambient_c).at(0.0)


# -- compiled schedules: what the simulator evaluates every step ------------------------------------------

class Compiled:
    """A schedule as a function of time. `constant` is its value when it never changes (the fast path)."""

    constant: Optional[float] = None

    def at(self, t_s: float) -> float:
        raise NotImplementedError


class _Constant(Compiled):
    def __init__(self, value: float) -> None:
        self.constant = value

    def at(self, t_s: float) -> float:
        return self.constant  # type: ignore[return-value]


class _Pieces(Compiled):
    def __init__(self, points: Sequence[Point], linear: bool, repeat_s: Optional[float]) -> None:
        self.times = [t for t, _ in points]
        self.values = [v for _, v in points]
        self.linear = linear
        self.repeat_s = repeat_s

    def at(self, t_s: float) -> float:
        if self.repeat_s is not None:
            t_s = t_s % self.repeat_s
        i = bisect.bisect_right(self.times, t_s) - 1
        if i < 0:
            # Before the first point: the first value; repeating steps wrap to the last (the cycle's tail).
            return self.values[-1] if (self.repeat_s is not None and not self.linear) else self.values[0]
        if not self.linear or i == len(self.times) - 1:
            return self.values[i]
        t0, t1 = self.times[i], self.times[i + 1]
        return self.values[i] + (self.values[i + 1] - self.values[i]) * (t_s - t0) / (t1 - t0)


class _Ramp(Compiled):
    def __init__(self, ramp: Ramp) -> None:
        self.ramp = ramp

    def at(self, t_s: float) -> float:
        r = self.ramp
        if t_s <= r.start_s:
            return r.from_
        if t_s >= r.end_s:
            return r.to
        return r.from_ + (r.to - r.from_) * (t_s - r.start_s) / (r.end_s - r.start_s)


class _Sine(Compiled):
    def __init__(self, sine: Sine) -> None:
        self.sine = sine

    def at(self, t_s: float) -> float:
        s = self.sine
        return s.mean + s.amplitude * math.sin(2.0 * math.pi * (t_s - s.phase_s) / s.period_s)


def compile_schedule(schedule: Schedule) -> Compiled:
    if schedule.constant is not None:
        return _Constant(schedule.constant)
    if schedule.steps is not None:
        return _Pieces(schedule.steps, False, schedule.repeat_s)
    if schedule.points is not None:
        return _Pieces(schedule.points, True, schedule.repeat_s)
    if schedule.ramp is not None:
        return _Ramp(schedule.ramp)
    assert schedule.sine is not None
    return _Sine(schedule.sine)


# -- traces ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trace:
    """A recorded load: per-source fps and (optionally) ambient °C, each row holding until the next."""

    times_s: Tuple[float, ...]
    fps: Dict[str, Tuple[float, ...]]
    ambient_c: Optional[Tuple[float, ...]]


def parse_trace(text: str, source: str) -> Trace:
    """CSV with a header: `t_s`, one column per source (its fps), optionally `ambient_c`. ConfigError naming the
    file, the line and the column otherwise."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None:
        raise ConfigError(f"{source}: empty; expected a header t_s,<source>...[,ambient_c] and one row per time")
    header = [h.strip() for h in header]
    if not header or header[0] != "t_s":
        raise ConfigError(f"{source}:1: the first column must be t_s (seconds from the start), got {header[0]!r}")
    if len(set(header)) != len(header):
        raise ConfigError(f"{source}:1: a column named twice: {', '.join(header)}")
    sources = [h for h in header[1:] if h != "ambient_c"]
    if not sources or any(not s for s in sources):
        raise ConfigError(f"{source}:1: expected at least one source column (its fps) after t_s, each named")
    columns: Dict[str, List[float]] = {h: [] for h in header}
    for line, row in enumerate(rows, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if line > MAX_TRACE_ROWS + 1:
            raise ConfigError(f"{source}:{line}: more than {MAX_TRACE_ROWS} rows")
        if len(row) != len(header):
            raise ConfigError(f"{source}:{line}: {len(row)} values, the header has {len(header)} columns")
        for name, cell in zip(header, row):
            columns[name].append(_trace_value(cell, name, source, line, columns["t_s"]))
    if not columns["t_s"]:
        raise ConfigError(f"{source}: no rows after the header")
    fps = {s: tuple(columns[s]) for s in sources}
    ambient = tuple(columns["ambient_c"]) if "ambient_c" in columns else None
    return Trace(tuple(columns["t_s"]), fps, ambient)


def _trace_value(cell: str, column: str, source: str, line: int, times: List[float]) -> float:
    where = f"{source}:{line}: column {column}"
    try:
        value = float(cell)
    except ValueError:
        raise ConfigError(f"{where}: {cell.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {cell.strip()!r} is not a finite number")
    if column == "t_s":
        if value < 0 or (times and value <= times[-1]):
            raise ConfigError(f"{where}: times must be ≥ 0 and increase (got {value:g} after "
                              f"{times[-1] if times else 0:g})")
    elif column == "ambient_c":
        if not AmbientSchedule.LOW <= value <= AmbientSchedule.HIGH:
            raise ConfigError(f"{where}: {value:g} °C is outside {AmbientSchedule._bounds()}")
    elif not FpsSchedule.LOW <= value <= FpsSchedule.HIGH:
        raise ConfigError(f"{where}: {value:g} fps is outside {FpsSchedule._bounds()}")
    return value


def load_trace(path: Path) -> Trace:
    try:
        data = read_bounded(path, MAX_TRACE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the trace: {exc.strerror or exc}") from None
    if len(data) > MAX_TRACE_BYTES:
        raise ConfigError(f"{path}: over {MAX_TRACE_BYTES // (1024 * 1024)} MiB: not a trace this simulator replays")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (a CSV trace: t_s,<source>...[,ambient_c])") from None
    return parse_trace(text, str(path))


def with_trace(scenario: Scenario, trace: Trace) -> Scenario:
    """The scenario with the trace's sources as camera groups (one camera each, fps as steps) and, when the
    trace has it, its ambient temperature as the ambient schedule."""
    groups = list(scenario.cameras)
    for name, values in trace.fps.items():
        groups.append(CameraGroup(name=name, fps=FpsSchedule(steps=list(zip(trace.times_s, values)))))
    update: Dict[str, Any] = {"cameras": groups}
    if trace.ambient_c is not None:
        update["ambient_c"] = AmbientSchedule(steps=list(zip(trace.times_s, trace.ambient_c)))
    return scenario.model_copy(update=update)


# -- loading ---------------------------------------------------------------------------------------------

def builtin_scenarios() -> List[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def scenario_file(name_or_path: str) -> Path:
    """A built-in scenario's file by name, or the path given."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(
                f"no scenario {name_or_path!r}: built-in ones are {', '.join(builtin_scenarios())}, or give a "
                "path to a scenario file (copy one from jetvit_daemon/sim/scenarios/)"
            )
    return path


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario file by path, its trace (if any) read and merged in."""
    path = scenario_file(name_or_path)
    try:
        scenario = load_yaml_model(path, Scenario)
    except YamlProblem as exc:
        raise ConfigError(str(exc)) from None
    if scenario.workload is not None:
        from jetvit_daemon.sim.workload import WORKLOAD_DIR, load_workload, workload_file

        found = workload_file(scenario.workload, relative_to=path)
        if found.parent != WORKLOAD_DIR:  # a file next to the scenario: carry its full path
            scenario = scenario.model_copy(update={"workload": str(found.resolve())})
        load_workload(str(scenario.workload))  # a bad profile is the scenario's error now, not mid-run
    if scenario.trace is not None:
        trace_path = path.parent / scenario.trace
        scenario = with_trace(scenario, load_trace(trace_path))
        if sum(g.count for g in scenario.cameras) > MAX_CAMERAS:
            raise ConfigError(f"{trace_path}: with the scenario's cameras more than {MAX_CAMERAS} sources")
    return scenario
