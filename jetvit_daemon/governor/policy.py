"""The power policy (policy.yaml, `version: 1`): what operators edit to trade frames per second against watts
and degrees. Validated with pydantic; every field is documented in config/policy.yaml and docs/POLICY.md."""

from collections import Counter
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jetvit_daemon.errors import PolicyError
from jetvit_daemon.yamlfile import (
    PathKey,
    YamlProblem,
    check_size,
    decode_text,
    parse_yaml,
    read_yaml_text,
    validate_document,
)

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "assets" / "policy.yaml"
MAX_LADDER_STATES = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LadderState(_Strict):
    """One rung of the ladder: a power mode, a GPU cap and a batch size."""

    name: str = Field(min_length=1, description="a short name used in logs and metrics")
    mode: str = Field(min_length=1, description="nvpmodel mode name as in /etc/nvpmodel.conf, e.g. 25W")
    # Decimals too: some boards' tables have them (AGX Orin 318.75 MHz, Nano 76.8 MHz).
    gpu_cap_mhz: Union[int, float, Literal["max"]] = Field(
        "max", description="GPU devfreq maximum in MHz, decimals allowed (snapped down to the board's table), "
                           "or max"
    )
    batch_size: int = Field(1, ge=1, le=256)
    batch_wait_ms: Optional[float] = Field(
        None, ge=0, le=2000,
        description="how long inference waits for a batch to fill once a frame is waiting; null: the daemon's "
                    "pipeline.max_batch_wait_ms. Longer: fuller batches, less GPU time per frame, more latency")

    @property
    def gpu_cap_hz(self) -> Optional[int]:
        return None if self.gpu_cap_mhz == "max" else round(self.gpu_cap_mhz * 1_000_000)

    @property
    def batch_wait_s(self) -> Optional[float]:
        return None if self.batch_wait_ms is None else self.batch_wait_ms / 1000.0


class Thermal(_Strict):
    """Heat: the governor holds the sensor at a setpoint `setpoint_margin_c` below the board's first throttling
    trip point (read from its thermal zones), by proportional-integral control of the power it allows
    (decide.py, rule_thermal). A board that declares no trip points: the setpoint is `hot_c` and the last
    resort `critical_c`."""

    sensor: str = Field("hottest", description="a tegrastats sensor name (tj, gpu, cpu, …) or hottest")
    warm_c: float = Field(70.0, description="accepted for older files; no longer used (the setpoint's "
                                            "engage_c band replaces it)")
    hot_c: float = Field(80.0, description="the setpoint where the board declares no throttling trip point")
    critical_c: float = Field(90.0, description="the last resort (lowest state at once) where the board "
                                                "declares no throttling trip point")
    hysteresis_c: float = Field(5.0, ge=0.0, description="accepted for older files; no longer used")
    setpoint_margin_c: float = Field(
        3.0, gt=0, le=30, description="hold the sensor this far below the first throttling trip point")
    critical_margin_c: float = Field(
        1.0, ge=0, le=30, description="at or above the trip minus this: the lowest state at once (last resort)")
    engage_c: float = Field(
        10.0, gt=0, le=50, description="the controller limits power only within this of the setpoint")
    k_p_w_per_c: float = Field(
        0.5, gt=0, le=20, description="proportional gain: watts less allowed per °C of predicted excess")
    k_i_w_per_c_s: float = Field(
        0.005, ge=0, le=5, description="integral gain: watts per °C·s of excess over the setpoint")
    trend_horizon_s: float = Field(
        60.0, ge=0, le=1800, description="the excess is judged this far ahead at the temperature's trend "
                                         "(a fraction of the board's thermal time constant, minutes)")

    @model_validator(mode="after")
    def _ordered(self) -> "Thermal":
        if not self.warm_c < self.hot_c < self.critical_c:
            raise ValueError(
                "thresholds must satisfy warm_c < hot_c < critical_c, "
                f"got {self.warm_c} / {self.hot_c} / {self.critical_c}"
            )
        if not self.critical_margin_c < self.setpoint_margin_c:
            raise ValueError(
                "critical_margin_c must be below setpoint_margin_c (the last resort is nearer the trip than the "
                f"setpoint), got {self.critical_margin_c} / {self.setpoint_margin_c}")
        return self


class Slo(_Strict):
    latency_p95_ms: Optional[float] = Field(250.0, gt=0, description="capture-to-result latency target")
    min_fps: Optional[float] = Field(None, gt=0, description="processed frames per second to sustain")


class PowerBudget(_Strict):
    watts: Optional[float] = Field(None, gt=0, description="board power budget; null: none")
    window_s: float = Field(30.0, gt=0, description="averaging window of the budget")


class Dwell(_Strict):
    min_state_s: float = Field(10.0, ge=0, description="minimum time in a state before any non-urgent change")
    up_after_s: float = Field(2.0, ge=0, description="how long a need to step up must persist")
    down_after_s: float = Field(30.0, ge=0, description="how long headroom must persist before stepping down")
    down_measured_after_s: float = Field(
        5.0, ge=0,
        description="the same, when the lower state's measured capacity covers demand: it may then step down "
                    "several states at once")


class Capacity(_Strict):
    """How the governor uses the capacity it measures in each state (frames/s the state can process)."""

    margin: float = Field(0.25, ge=0, le=4, description="a state must cover demand × (1 + margin)")
    near_ratio: float = Field(
        0.9, gt=0, le=1, description="demand ≥ this share of the state's measured capacity: step up early")
    headroom_latency_ratio: float = Field(
        0.5, gt=0, le=1, description="latency p95 at most this share of the target counts as headroom")
    @model_validator(mode="after")
    def _no_flapping(self) -> "Capacity":
        if self.near_ratio * (1.0 + self.margin) <= 1.0:
            raise ValueError(
                f"near_ratio × (1 + margin) must exceed 1 (got {self.near_ratio} × {1 + self.margin:g}): a state "
                "chosen to cover demand × (1 + margin) would count as at risk at once and the governor would flap")
        return self

    min_busy: float = Field(
        0.9, gt=0, le=1,
        description="learn a state's capacity only when inference is at least this busy with a full batch "
                    "waiting: saturated, so frames processed per busy second is what the state can do (lightly "
                    "loaded, batches of one understate it)")


class StaleTelemetry(_Strict):
    after_s: float = Field(10.0, gt=0, description="no fresh telemetry for this long → go to `state`")
    state: Optional[str] = Field(None, description="ladder state name; null: the lowest")


class Policy(_Strict):
    version: Literal[1] = 1
    interval_s: float = Field(1.0, gt=0, le=60, description="governor tick")
    # 64: more rungs than any board has modes × GPU table steps worth telling apart (Orin: 3-4 modes × ~8
    # steps); a bound, so that a runaway file is refused by its length, not by the time its checks take.
    ladder: List[LadderState] = Field(min_length=1, max_length=MAX_LADDER_STATES,
                                      description="states ordered low → high")
    start_state: Optional[str] = Field(None, description="state at start; null: the highest")
    thermal: Thermal = Field(default_factory=Thermal)
    slo: Slo = Field(default_factory=Slo)
    power_budget: PowerBudget = Field(default_factory=PowerBudget)
    dwell: Dwell = Field(default_factory=Dwell)
    capacity: Capacity = Field(default_factory=Capacity)
    stale_telemetry: StaleTelemetry = Field(default_factory=StaleTelemetry)

    @model_validator(mode="after")
    def _names(self) -> "Policy":
        names = [s.name for s in self.ladder]
        duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
        if duplicates:
            raise ValueError("ladder state names must be unique; repeated: {}".format(", ".join(duplicates)))
        for field, value in (("start_state", self.start_state), ("stale_telemetry.state", self.stale_telemetry.state)):
            if value is not None and value not in names:
                raise ValueError("{} {!r} is not a ladder state (have: {})".format(field, value, ", ".join(names)))
        return self

    def index_of(self, name: str) -> int:
        return [s.name for s in self.ladder].index(name)

    @property
    def start_index(self) -> int:
        return self.index_of(self.start_state) if self.start_state else len(self.ladder) - 1

    @property
    def stale_index(self) -> int:
        return self.index_of(self.stale_telemetry.state) if self.stale_telemetry.state else 0


def read_policy_text(path: Path) -> str:
    """The policy file's text; PolicyError naming the file when it cannot be read as a YAML file (missing, a
    directory, not UTF-8, too large)."""
    try:
        return read_yaml_text(path)
    except YamlProblem as exc:
        raise PolicyError(str(exc)) from None


def decode_policy(data: bytes, source: str) -> str:
    """Policy bytes read already (e.g. from a checked descriptor) → text; PolicyError when too large or not
    UTF-8, as for a file read here."""
    try:
        return decode_text(check_size(data, source), source)
    except YamlProblem as exc:
        raise PolicyError(str(exc)) from None


def parse_policy_document(text: str, source: str) -> Tuple[Policy, Dict[PathKey, int]]:
    """The policy in `text` and the line of each of its fields; PolicyError (and only that) otherwise."""
    try:
        doc = parse_yaml(text, source)
        return validate_document(doc, source, Policy), doc.lines
    except YamlProblem as exc:
        raise PolicyError(str(exc)) from None


def load_policy(path: Path) -> Policy:
    """Load and validate a policy file; PolicyError lists every problem with file, line and field."""
    return parse_policy(read_policy_text(path), str(path))


def parse_policy(text: str, source: str) -> Policy:
    return parse_policy_document(text, source)[0]
