"""Offline policy simulation: hours of load against a policy in seconds.

The real governor (`governor.loop.Governor`, with the same policy loader and the same `decide()`) runs on a
virtual clock against `OfflinePlatform`: the simulated board's physics (`sim/board.py`) and its real nvpmodel
conf (same reboot rules, same frequency snapping), in-process, without files or subprocesses. A queueing model
of the pipeline stands in for the cameras and the inference stage: frames arrive from the scenario's cameras,
wait in a bounded queue (oldest dropped when full), and are served in batches whose duration is the board's
ViT inference time at the GPU clock of the moment.

Baselines for comparison: `static:MODE` (that mode, GPU uncapped, batch 4 throughout), `fixed:MODE:CAP:B:W`
(one configuration held throughout: mode, GPU cap in MHz or `max`, batch size, batch wait in ms; what the
oracle search in `sim/oracle.py` scores) and `threshold` (every 5 s: board power above a threshold → the
lowest mode, below → the highest; the naive script).
"""

import collections
import csv
import heapq
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.governor.decide import PipelineView
from jetvit_daemon.governor.loop import Governor
from jetvit_daemon.governor.policy import Policy
from jetvit_daemon.governor.policy_check import BoardFacts, load_checked
from jetvit_daemon.hardware.base import GpuFreqState, Platform, PowerMode, TelemetrySample
from jetvit_daemon.hardware.nvpmodel import ConfMode, NvpmodelConf, reboot_reason, switch_needed
from jetvit_daemon.hardware.sensors import thermal_name, throttle_trips_c
from jetvit_daemon.hardware.telemetry_thread import STALE_INTERVALS
from jetvit_daemon.pipeline.pipeline import RECENT_S
from jetvit_daemon.sim.board import BoardPhysics
from jetvit_daemon.sim.boards import BoardProfile, get_profile, load_conf, snap_down_hz
from jetvit_daemon.sim.scenario import Compiled, Scenario, compile_schedule
from jetvit_daemon.sim.workload import board_timing

BASELINE_BATCH = 4  # the static and threshold baselines' fixed batch size
THRESHOLD_EVERY_S = 5.0  # the threshold script's period
# One shared 64-frame FIFO (the daemon's queue before per-source slots). The daemon now keeps one frame per live
# camera (docs/SOURCES.md), so under overload it drops sooner and queues less than this model: the model's
# latency under overload is pessimistic, its drop counts optimistic. Kept so recorded policy results compare.
QUEUE_SIZE = 64
MAX_BATCH_WAIT_S = 0.02  # the daemon's default pipeline.max_batch_wait_ms
STATS_WINDOW_S = 10.0  # the daemon's default pipeline.stats_window_s
TELEMETRY_INTERVAL_S = 1.0  # the daemon's default telemetry.interval_s
DEFAULT_SLO_MS = 250.0  # the shipped policy's latency target, used to score the baselines
MAX_SIM_BATCH = 32  # the pipeline model's largest batch


class OfflinePlatform(Platform):
    """The simulated board in-process, for the offline simulator. One thread (the simulation loop)."""

    def __init__(self, physics: BoardPhysics, conf: NvpmodelConf, description: str,
                 boot_mode: Optional[str] = None, clock: Optional[ManualClock] = None) -> None:
        self.description = description
        self._now_s = (clock or ManualClock(start_s=0.0)).monotonic
        self.physics = physics
        self.conf = conf
        booted = conf.mode_by_name(boot_mode) if boot_mode is not None else conf.default_mode
        if booted is None:
            raise ConfigError(f"no power mode {boot_mode!r} (have: {', '.join(m.name for m in conf.modes)})")
        self._mode: ConfMode = booted
        physics.apply_mode(conf, self._mode)
        self._sample: Optional[TelemetrySample] = None
        self.mode_switches = 0
        self.cap_changes = 0

    def start(self) -> None:
        pass

    def stop(self, restore: bool = True, timeout_s: Optional[float] = None) -> None:
        pass

    def publish(self, sample: TelemetrySample) -> None:
        self._sample = sample

    def latest_telemetry(self) -> Optional[TelemetrySample]:
        return self._sample

    def telemetry_stale(self) -> bool:
        # The readers' rule (hardware/telemetry_thread.py), on the simulation's virtual clock.
        sample = self._sample
        return sample is None or self._now_s() - sample.t_mono_s > STALE_INTERVALS * TELEMETRY_INTERVAL_S

    def power_modes(self) -> Sequence[PowerMode]:
        return self.conf.power_modes

    def throttle_trips_c(self) -> Mapping[str, float]:
        """The profile's zone trips, the very ones the live board writes to its sysfs tree (sim/live.py)."""
        return throttle_trips_c((thermal_name(z.type), [(t.type, t.temp_c) for t in z.trips])
                                for z in self.physics.profile.thermal_zones)

    def current_mode(self) -> PowerMode:
        return self._mode.power_mode

    def set_mode(self, name: str) -> PowerMode:
        target = self.conf.target(name)
        if not switch_needed(self._mode.power_mode, target.power_mode):
            return target.power_mode
        self.physics.apply_mode(self.conf, target)
        self._mode = target
        self.mode_switches += 1
        return target.power_mode

    def gpu_freq_state(self) -> GpuFreqState:
        p = self.physics
        return GpuFreqState(available_hz=list(p.table_hz()), min_hz=p.devfreq_min_hz, max_hz=p.devfreq_max_hz,
                            cur_hz=p.gpu_cur_freq_hz)

    def set_gpu_cap_hz(self, cap_hz: Optional[int]) -> int:
        p = self.physics
        table = p.table_hz()
        mode_max = self._mode.power_mode.gpu_max_freq_hz or table[-1]
        target = snap_down_hz(table, min(cap_hz if cap_hz is not None else mode_max, mode_max))
        if target != p.devfreq_max_hz:
            self.cap_changes += 1
            p.set_controls(p.mode_cap_hz, target, min(p.devfreq_min_hz, target), p.online_cores, p.active_tpcs,
                           p.cpu_freq_ratio, p.cooling_failed)
        return target


# -- controllers ------------------------------------------------------------------------------------------

class Controller:
    """What decides: the real governor, or a baseline. `tick` is called every `interval_s` of virtual time."""

    name = "controller"
    interval_s = 1.0
    # The last decision: which rule (timeline.csv `rule`) and why (`reason`); a move wins over later holds
    # until the timeline has shown it (`take_decision`).
    rule = "fixed"
    reason = "one configuration throughout"
    _moved = False
    # False: it never reads the pipeline's statistics or the telemetry (one configuration set at the start),
    # so the simulation need not keep them for it.
    observes = True

    def start(self, platform: OfflinePlatform, set_batch: Callable[[int, Optional[float]], int]) -> None: ...

    def tick(self) -> None: ...

    def budget_changed(self, watts: float) -> None:
        """The scenario's power budget schedule moved (only a policy without a budget of its own listens)."""

    def state_name(self) -> str:
        return self.name

    def _decided(self, rule: str, reason: str, moved: bool) -> None:
        if moved or not self._moved:
            self.rule, self.reason = rule, reason
        self._moved = self._moved or moved

    def take_decision(self) -> Tuple[str, str]:
        """The decision to show for the timeline row ending now: the row's last move, else the last hold."""
        self._moved = False
        return self.rule, self.reason


class PolicyController(Controller):
    def __init__(self, policy: Policy, clock: ManualClock, pipeline_view: Callable[[], PipelineView],
                 name: str) -> None:
        self.policy = policy
        self.name = name
        self.interval_s = policy.interval_s
        self._clock = clock
        self._view = pipeline_view
        self.governor: Optional[Governor] = None
        self.rule, self.reason = "hold", "starting"
        self._index = policy.start_index
        self.follows_scenario_budget = False  # True: the policy has no budget; the scenario's is given to it

    def start(self, platform: OfflinePlatform, set_batch: Callable[[int, Optional[float]], int]) -> None:
        self.governor = Governor(platform, self.policy, self._view, set_batch, self._clock)

    def tick(self) -> None:
        assert self.governor is not None
        decision = self.governor.tick()
        self._decided(decision.rule, decision.reason, decision.index != self._index)
        self._index = decision.index

    def budget_changed(self, watts: float) -> None:
        """As a site would: the policy file's budget edited, the daemon reloading it (learned states kept)."""
        assert self.governor is not None
        self.policy = self.policy.model_copy(update={"power_budget": self.policy.power_budget.model_copy(
            update={"watts": watts})})
        self.governor.set_policy(self.policy)

    def state_name(self) -> str:
        assert self.governor is not None
        return str(self.governor.status()["state"])


class StaticController(Controller):
    observes = False

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.name = f"static:{mode}"
        self.interval_s = 3600.0

    def start(self, platform: OfflinePlatform, set_batch: Callable[[int, Optional[float]], int]) -> None:
        platform.set_mode(self.mode)
        platform.set_gpu_cap_hz(None)
        set_batch(BASELINE_BATCH, None)


FIXED_PREFIX = "fixed:"


@dataclass(frozen=True)
class FixedConfig:
    """One configuration held for the whole run: a power mode, a GPU cap (None: the mode's own maximum), a
    batch size and a batch wait. `spec` is its `--policy` form, `fixed:MODE:CAP_MHZ|max:BATCH:WAIT_MS`."""

    mode: str
    gpu_cap_hz: Optional[int]
    batch_size: int
    batch_wait_ms: float

    @property
    def spec(self) -> str:
        return f"{FIXED_PREFIX}{self.mode}:{_mhz_text(self.gpu_cap_hz)}:{self.batch_size}:{self.batch_wait_ms:g}"

    @property
    def label(self) -> str:
        cap = "GPU max" if self.gpu_cap_hz is None else f"GPU ≤ {_mhz_text(self.gpu_cap_hz)} MHz"
        return f"{self.mode}, {cap}, batch {self.batch_size}, wait {self.batch_wait_ms:g} ms"


def _mhz_text(hz: Optional[int]) -> str:
    """MHz exactly (318.75, not 318), or `max`."""
    return "max" if hz is None else f"{hz / 1e6:.6g}"


def parse_fixed(spec: str) -> FixedConfig:
    """`fixed:MODE:CAP_MHZ|max:BATCH:WAIT_MS` → FixedConfig; ConfigError saying what is valid otherwise."""
    usage = "expected fixed:MODE:CAP_MHZ|max:BATCH:WAIT_MS, e.g. fixed:25W:612:8:50"
    parts = spec[len(FIXED_PREFIX):].rsplit(":", 3)
    if len(parts) != 4 or not parts[0]:
        raise ConfigError(f"{spec}: {usage}")
    mode, cap, batch, wait = parts
    try:
        cap_hz = None if cap == "max" else round(float(cap) * 1e6)
        batch_size = int(batch)
        wait_ms = float(wait)
    except ValueError:
        raise ConfigError(f"{spec}: {usage}") from None
    if (cap_hz is not None and cap_hz <= 0) or not 1 <= batch_size <= MAX_SIM_BATCH or not 0 <= wait_ms <= 2000:
        raise ConfigError(f"{spec}: cap > 0 MHz, batch 1..{MAX_SIM_BATCH} and wait 0..2000 ms ({usage})")
    return FixedConfig(mode, cap_hz, batch_size, wait_ms)


class FixedController(Controller):
    """One configuration, set once at the start (the board boots in its mode, as for static:MODE)."""

    observes = False

    def __init__(self, config: FixedConfig) -> None:
        self.config = config
        self.name = config.spec
        self.interval_s = 3600.0

    def start(self, platform: OfflinePlatform, set_batch: Callable[[int, Optional[float]], int]) -> None:
        platform.set_mode(self.config.mode)
        platform.set_gpu_cap_hz(self.config.gpu_cap_hz)
        set_batch(self.config.batch_size, self.config.batch_wait_ms / 1000.0)


class ThresholdController(Controller):
    """Every 5 s: board power above `threshold_w` → `low`, else → `high` (modes in one reboot group)."""

    def __init__(self, low: str, high: str, threshold_w: float, warning: Optional[str] = None) -> None:
        self.low, self.high, self.threshold_w = low, high, threshold_w
        self.name = "threshold"
        self.interval_s = THRESHOLD_EVERY_S
        self.warning = warning  # set when the script degenerates to one mode on this board
        self._platform: Optional[OfflinePlatform] = None
        self.rule, self.reason = "threshold", f"start in {high}"

    def start(self, platform: OfflinePlatform, set_batch: Callable[[int, Optional[float]], int]) -> None:
        self._platform = platform
        platform.set_mode(self.high)
        set_batch(BASELINE_BATCH, None)

    def tick(self) -> None:
        assert self._platform is not None
        sample = self._platform.latest_telemetry()
        if sample is None or sample.board_power_w is None:
            return
        over = sample.board_power_w > self.threshold_w
        target = self.low if over else self.high
        moved = self._platform.current_mode().name != target
        self._platform.set_mode(target)
        self._platform.set_gpu_cap_hz(None)
        self._decided("threshold", f"board {sample.board_power_w:.1f} W {'>' if over else '≤'} "
                                   f"{self.threshold_w:g} W → {target}", moved)


def full_load_w(profile: BoardProfile, conf: NvpmodelConf, mode: ConfMode, cooling: str = "fan",
                ambient_c: float = 25.0) -> float:
    """Board power with the GPU busy all the time in `mode` at its own maximum clock, unthrottled."""
    probe = BoardPhysics(profile, cooling, ambient_c)
    probe.apply_mode(conf, mode)
    probe.step(0.0, 1.0)
    return probe.power_w


def threshold_for(conf: NvpmodelConf, physics: BoardPhysics, boot: Optional[ConfMode] = None) -> ThresholdController:
    """The naive script on this board: lowest and highest mode of the boot mode's reboot group (default: the
    conf's default mode), threshold at the lowest mode's nominal watts (its name, e.g. 15W) or else halfway
    between their full-load powers. It warns when it can only ever run one mode."""
    boot = boot or conf.default_mode
    group = [m for m in conf.modes if reboot_reason(boot.power_mode, m.power_mode) is None]
    power = {m.name: full_load_w(physics.profile, conf, m, physics.cooling, physics.ambient_c) for m in group}
    ranked = sorted(group, key=lambda m: power[m.name])
    low, high = ranked[0], ranked[-1]
    nominal = re.match(r"^(?:MODE_)?(\d+)W", low.name)
    threshold = float(nominal.group(1)) if nominal else (power[low.name] + power[high.name]) / 2.0
    warning = None
    if low.name == high.name:
        warning = (f"threshold: {boot.name}'s reboot group has one mode, {low.name}: the script never switches "
                   f"and scores as static:{low.name}")
    elif power[high.name] <= threshold:
        warning = (f"threshold: {high.name} draws at most {power[high.name]:.1f} W at full load, not over the "
                   f"{threshold:g} W threshold: the script never leaves it and scores as static:{high.name}")
    return ThresholdController(low.name, high.name, threshold, warning)


# -- the pipeline model -------------------------------------------------------------------------------------

class _Camera:
    """One camera: frames at its group's rate of the moment while inside [start_s, stop_s) and, for a bursty
    one, while on. A constant-rate camera that starts at 0 draws its phase and bursts exactly as version 1 did
    (same seed, same frames)."""

    def __init__(self, fps: Compiled, activity: Any, start_s: float, stop_s: Optional[float],
                 rng: np.random.Generator) -> None:
        self.fps = fps
        self.start_s = start_s
        self.stop_s = math.inf if stop_s is None else stop_s
        self.paused = not (fps.constant is not None and start_s == 0.0)
        if self.paused:
            self.phase = float(rng.uniform(0.0, 1.0))  # of a period, applied when frames (re)start
            self.period_s = math.inf
            self.next_frame_s = math.inf
        else:
            self.period_s = 1.0 / fps.constant  # type: ignore[operator]
            self.next_frame_s = float(rng.uniform(0.0, self.period_s))
        self.bursty = activity != "always"
        self.on_mean_s = getattr(activity, "on_mean_s", 0.0)
        self.off_mean_s = getattr(activity, "off_mean_s", 0.0)
        self.rng = rng
        self.active = True if not self.bursty else bool(rng.uniform() < self.on_mean_s /
                                                         (self.on_mean_s + self.off_mean_s))
        self.toggle_s = math.inf if not self.bursty else float(
            rng.exponential(self.on_mean_s if self.active else self.off_mean_s))

    def frames(self, t0: float, t1: float, out: List[float]) -> None:
        while self.toggle_s < t1:
            self.active = not self.active
            self.toggle_s += float(self.rng.exponential(self.on_mean_s if self.active else self.off_mean_s))
        if (self.fps.constant is None or self.paused) and not self._rate(t0, t1):
            return
        t = self.next_frame_s
        end = t1 if t1 < self.stop_s else self.stop_s
        while t < end:
            if self.active:
                out.append(t)
            t += self.period_s
        self.next_frame_s = t

    def _rate(self, t0: float, t1: float) -> bool:
        """Update the period for this step (a schedule, a start or a stop); False: no frames in it."""
        rate = self.fps.at(t0) if self.fps.constant is None else self.fps.constant
        if rate <= 0.0 or t1 <= self.start_s or t0 >= self.stop_s:
            self.paused = True
            return False
        self.period_s = 1.0 / rate
        if self.paused:
            self.paused = False
            self.next_frame_s = max(t0, self.start_s) + self.phase * self.period_s
        return True


# Arrivals depend only on the scenario, the seed and the step: no controller changes a camera. The oracle's runs
# of one scenario and seed (~100) share them: kept for the last scenario simulated in this process.
_ARRIVALS: Dict[Tuple[str, int, int, float], List[Tuple[float, ...]]] = {}


def arrivals_per_step(scenario: Scenario, seed: int, steps: int, dt_s: float) -> List[Tuple[float, ...]]:
    """Each step's frame arrival times (sorted), the cameras seeded with `seed`."""
    key = (scenario.model_dump_json(), seed, steps, dt_s)
    cached = _ARRIVALS.get(key)
    if cached is not None:
        return cached
    rng = np.random.default_rng(seed)
    cameras = [_Camera(compile_schedule(g.fps), g.activity, g.start_s, g.stop_s, rng)
               for g in scenario.cameras for _ in range(g.count)]
    out: List[Tuple[float, ...]] = []
    empty: Tuple[float, ...] = ()
    buf: List[float] = []
    for i in range(steps):
        t0 = i * dt_s
        t1 = t0 + dt_s
        buf.clear()
        for cam in cameras:
            cam.frames(t0, t1, buf)
        if len(cameras) > 1:
            buf.sort()
        out.append(tuple(buf) if buf else empty)
    _ARRIVALS.clear()
    _ARRIVALS[key] = out
    return out


@dataclass
class SimResult:
    summary: Dict[str, Any]
    timeline: List[Dict[str, Any]] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)  # what makes the result mean less than it seems


class _Windows:
    """Sliding-window statistics the governor sees (as the daemon's PipelineStats)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        # (t, arrived, processed, dropped, busy seconds) per step
        self.steps: Deque[Tuple[float, int, int, int, float]] = collections.deque()
        self.latencies: Deque[Tuple[float, float]] = collections.deque()
        self.arrived = self.processed = self.dropped = 0
        self.busy_s = 0.0

    def add_step(self, t: float, arrived: int, processed: int, dropped: int, busy_s: float) -> None:
        self.steps.append((t, arrived, processed, dropped, busy_s))
        self.arrived += arrived
        self.processed += processed
        self.dropped += dropped
        self.busy_s += busy_s
        horizon = t - self.window_s
        while self.steps and self.steps[0][0] <= horizon:
            _, a, p, d, b = self.steps.popleft()
            self.arrived -= a
            self.processed -= p
            self.dropped -= d
            self.busy_s -= b
        while self.latencies and self.latencies[0][0] <= horizon:
            self.latencies.popleft()

    def arrived_since(self, t_s: float) -> int:
        return self._since(t_s, 1)

    def processed_since(self, t_s: float) -> int:
        return self._since(t_s, 2)

    def _since(self, t_s: float, field: int) -> int:
        n = 0
        for step in reversed(self.steps):
            if step[0] <= t_s:
                break
            n += int(step[field])
        return n

    def p95_s(self) -> Optional[float]:
        n = len(self.latencies)
        if n == 0:
            return None
        k = max(1, math.ceil(0.05 * n))
        return heapq.nlargest(k, (lat for _, lat in self.latencies))[-1]


def board_facts(profile: BoardProfile, conf: NvpmodelConf, boot: ConfMode) -> BoardFacts:
    """What the daemon checks a policy against (governor/policy_check.py), for this simulated board booted in
    `boot`: its modes, its GPU table, and the mode it runs in (a ladder outside its reboot group can never be
    applied)."""
    return BoardFacts(f"simulated {profile.name}", conf.power_modes, list(profile.gpu_table_hz), boot.power_mode)


def make_controller(spec: str, clock: ManualClock, view: Callable[[], PipelineView], conf: NvpmodelConf,
                    physics: BoardPhysics, boot: Optional[ConfMode] = None,
                    budget_w: Optional[float] = None) -> Tuple[Controller, float]:
    """The controller named by `spec` (a policy file, `static:MODE`, `fixed:…` or `threshold`) and its SLO
    target (s). A policy file is checked against the board as the daemon checks it: PolicyError (every
    problem, file:line: field: message) when it can never be applied. `budget_w`: the scenario's budget at the
    start, given to a policy without a budget of its own."""
    boot = boot or conf.default_mode
    if spec.startswith("static:"):
        return StaticController(spec.split(":", 1)[1]), DEFAULT_SLO_MS / 1000.0
    if spec.startswith(FIXED_PREFIX):
        return FixedController(parse_fixed(spec)), DEFAULT_SLO_MS / 1000.0
    if spec == "threshold":
        return threshold_for(conf, physics, boot), DEFAULT_SLO_MS / 1000.0
    policy, _notes = load_checked(Path(spec), board_facts(physics.profile, conf, boot))
    given = budget_w is not None and policy.power_budget.watts is None
    if given:
        policy = policy.model_copy(update={"power_budget": policy.power_budget.model_copy(
            update={"watts": budget_w})})
    target_ms = policy.slo.latency_p95_ms or DEFAULT_SLO_MS
    controller = PolicyController(policy, clock, view, name=Path(spec).name)
    controller.follows_scenario_budget = given
    return controller, target_ms / 1000.0


def boot_mode_for(spec: str, boot_mode: Optional[str], conf: NvpmodelConf, board: str) -> ConfMode:
    """The mode the board boots in: static:MODE's and fixed:MODE:…'s own (as an operator would boot it,
    rebooting if the mode needs it), else `boot_mode`, else the conf's default. ConfigError naming the valid
    modes otherwise."""
    name, what = boot_mode, f"--boot-mode {boot_mode}"
    if spec.startswith("static:"):
        name, what = spec.split(":", 1)[1], spec
    elif spec.startswith(FIXED_PREFIX):
        name, what = parse_fixed(spec).mode, spec
    if name is None:
        return conf.default_mode
    mode = conf.mode_by_name(name)
    if mode is None:
        raise ConfigError(f"{what}: no such power mode on {board} (have: {', '.join(m.name for m in conf.modes)})")
    return mode


def simulate(board: str, controller_spec: str, scenario: Scenario, duration_s: Optional[float] = None,
             seed: int = 0, dt_s: float = 0.1, timeline: bool = True, slo_ms: Optional[float] = None,
             boot_mode: Optional[str] = None, workload: Optional[str] = None) -> SimResult:
    """Run `scenario` on the simulated `board` under a policy file, `static:MODE`, `fixed:…` or `threshold`;
    `slo_ms` (default: the policy's target, else 250 ms) is the latency the run is scored against; `boot_mode`
    the mode the board boots in (default: its conf's; static: and fixed: boot in their own); `workload` a
    workload profile overriding the scenario's (sim/workload.py)."""
    profile = get_profile(board)
    conf = load_conf(profile)
    ambient = compile_schedule(scenario.ambient_c)
    budget = compile_schedule(scenario.power_budget_w) if scenario.power_budget_w is not None else None
    timing = board_timing(profile, workload or scenario.workload)
    physics = BoardPhysics(profile, scenario.cooling, ambient.at(0.0), vit=timing)
    boot = boot_mode_for(controller_spec, boot_mode, conf, profile.name)
    clock = ManualClock(start_s=0.0, wall_offset_s=0.0)
    platform = OfflinePlatform(physics, conf, f"simulated {profile.long_name}", boot.name, clock)
    duration = scenario.duration_s if duration_s is None else duration_s
    warnings: List[str] = []

    queue: Deque[float] = collections.deque()
    windows = _Windows(STATS_WINDOW_S)
    batch = [BASELINE_BATCH]
    batch_wait_s = [MAX_BATCH_WAIT_S]

    def set_batch(n: int, wait_s: Optional[float] = None) -> int:
        batch[0] = max(1, min(int(n), MAX_SIM_BATCH))
        batch_wait_s[0] = MAX_BATCH_WAIT_S if wait_s is None else wait_s
        return batch[0]

    def view() -> PipelineView:
        span = min(windows.window_s, max(clock.monotonic(), dt_s))
        recent_s = min(RECENT_S, span)
        since = clock.monotonic() - RECENT_S
        return PipelineView(arrival_fps=windows.arrived / span, processed_fps=windows.processed / span,
                            dropped_fps=windows.dropped / span, queue_depth=len(queue),
                            latency_p95_s=windows.p95_s(), batch_size=batch[0],
                            arrival_recent_fps=windows.arrived_since(since) / recent_s,
                            busy_fraction=windows.busy_s / span, window_s=windows.window_s,
                            processed_recent_fps=windows.processed_since(since) / recent_s, recent_s=recent_s)

    budget_w = budget.at(0.0) if budget is not None else None
    controller, slo_s = make_controller(controller_spec, clock, view, conf, physics, boot, budget_w)
    if slo_ms is not None:
        slo_s = slo_ms / 1000.0
    if isinstance(controller, ThresholdController) and controller.warning:
        warnings.append(controller.warning)
    # A scheduled budget reaches a policy without its own as an edit of its file would (a reload).
    follow_budget = (budget is not None and budget.constant is None and isinstance(controller, PolicyController)
                     and controller.follows_scenario_budget)
    zone_names = {z.type: thermal_name(z.type) for z in profile.thermal_zones}

    def publish(board_power_w: float) -> None:
        temps = {zone_names[k]: v for k, v in physics.zone_temps_c().items() if v is not None}
        platform.publish(TelemetrySample(
            t_mono_s=clock.monotonic(), gpu_load_pct=physics.gpu_util * 100.0, gpu_freq_hz=physics.gpu_freq_hz,
            board_power_w=board_power_w, temps_c=temps, rails_w=dict(physics.rails_w)))

    physics.step(0.0, 0.0)
    publish(physics.power_w)
    controller.start(platform, set_batch)

    offered = processed = dropped = violations = 0
    energy_j = 0.0
    temp_max_c = physics.tj_c
    busy_until = 0.0
    next_tick_s = 0.0
    next_telemetry_s = TELEMETRY_INTERVAL_S
    next_row_s = 0.0
    budget_window: Deque[Tuple[float, float]] = collections.deque()
    budget_sum = 0.0
    budget_exceeded_s = 0.0
    # The board power a telemetry sample reports: the mean since the last one, as the board's power monitor
    # averages over its conversion window; a step's instantaneous power would alias with the batch timing
    # (`budget`, seed 0: read 14.7 W while the board drew 15.4 W on average).
    reading_j = reading_s = 0.0
    row_arrived = row_processed = 0
    rows: List[Dict[str, Any]] = []
    steps = round(duration / dt_s)
    per_step = arrivals_per_step(scenario, seed, steps, dt_s)
    # The pipeline statistics and telemetry only a controller that reads them (or the timeline) needs.
    observed = controller.observes or timeline
    for i in range(steps):
        t0 = i * dt_s
        t1 = t0 + dt_s
        if ambient.constant is None:
            physics.ambient_c = ambient.at(t0)
        if budget is not None and budget.constant is None:
            budget_w = budget.at(t0)
        if t0 >= next_tick_s:
            if follow_budget and budget_w is not None:
                # Whole tenths of a watt: a smooth schedule edits the policy at most once per 0.1 W.
                rounded = round(budget_w, 1)
                if rounded != controller.policy.power_budget.watts:  # type: ignore[attr-defined]
                    controller.budget_changed(rounded)
            controller.tick()
            next_tick_s += controller.interval_s
        arrivals = per_step[i]
        step_dropped = 0
        for t in arrivals:
            queue.append(t)
            if len(queue) > QUEUE_SIZE:
                queue.popleft()
                step_dropped += 1
        offered += len(arrivals)
        # Serve batches that start within this step.
        busy_s = max(0.0, min(busy_until, t1) - t0)
        step_processed = 0
        b = batch[0]
        while queue:
            # As the daemon's inference stage: once a frame waits, start when the batch is full or the batch
            # wait has passed, whichever comes first, and not before the GPU is free. The queue holds this
            # step's arrivals too, so "full" is the arrival of the b-th frame.
            full_at = queue[b - 1] if len(queue) >= b else math.inf
            start = max(busy_until, min(full_at, queue[0] + batch_wait_s[0]))
            if start >= t1:
                break  # later frames of the next step may still fill the batch
            n = 0
            for t in queue:
                if t > start or n == b:
                    break
                n += 1
            if n == 0:
                break
            finish = start + physics.inference_time_s(n)
            for _ in range(n):
                latency = finish - queue.popleft()
                if observed:
                    windows.latencies.append((finish, latency))
                if latency > slo_s:
                    violations += 1
            step_processed += n
            busy_s += min(finish, t1) - start
            busy_until = finish
        processed += step_processed
        dropped += step_dropped
        if observed:
            windows.add_step(t1, len(arrivals), step_processed, step_dropped, busy_s)
        row_arrived += len(arrivals)
        row_processed += step_processed

        physics.step(dt_s, busy_s / dt_s)
        clock.advance(dt_s)
        energy_j += physics.power_w * dt_s
        reading_j += physics.power_w * dt_s
        reading_s += dt_s
        temp_max_c = max(temp_max_c, physics.tj_c)
        if budget_w is not None:
            budget_window.append((t1, physics.power_w))
            budget_sum += physics.power_w
            while budget_window and budget_window[0][0] <= t1 - 30.0:
                budget_sum -= budget_window.popleft()[1]
            if budget_sum / len(budget_window) > budget_w:
                budget_exceeded_s += dt_s
        if t1 >= next_telemetry_s - 1e-9:
            if observed:
                publish(reading_j / reading_s)
            reading_j = reading_s = 0.0
            next_telemetry_s += TELEMETRY_INTERVAL_S
        if timeline and t1 >= next_row_s + 1.0 - 1e-9:
            p95 = windows.p95_s()
            rule, reason = controller.take_decision()
            rows.append({
                "t_s": round(t1, 3), "state": controller.state_name(), "mode": platform.current_mode().name,
                "gpu_cap_mhz": physics.devfreq_max_hz / 1e6, "gpu_freq_mhz": physics.gpu_freq_hz / 1e6,
                "batch_size": batch[0], "power_w": round(physics.power_w, 3), "temp_c": round(physics.tj_c, 2),
                "throttled": int(physics.throttled), "fps_offered": row_arrived / (t1 - next_row_s),
                "fps_processed": row_processed / (t1 - next_row_s), "queue_depth": len(queue),
                "latency_p95_ms": None if p95 is None else round(p95 * 1000.0, 1),
                "ambient_c": round(physics.ambient_c, 2), "budget_w": budget_w, "rule": rule, "reason": reason,
            })
            next_row_s = t1
            row_arrived = row_processed = 0

    violations += dropped
    summary: Dict[str, Any] = {
        "board": profile.name,
        "controller": controller.name,
        "scenario": scenario.name,
        "duration_s": duration,
        "seed": seed,
        "frames_offered": offered,
        "frames_processed": processed,
        "frames_dropped": dropped,
        "frames_in_flight": len(queue),
        "slo_target_ms": slo_s * 1000.0,
        "slo_violations": violations,
        "slo_violation_ratio": violations / offered if offered else 0.0,
        "energy_j": energy_j,
        "energy_per_frame_j": energy_j / processed if processed else None,
        "mean_power_w": energy_j / duration,
        "temp_max_c": temp_max_c,
        "throttled_s": physics.throttled_time_s,
        "throttle_events": physics.throttle_events,
        "actuations": platform.mode_switches + platform.cap_changes,
        "mode_switches": platform.mode_switches,
        "gpu_cap_changes": platform.cap_changes,
        "power_budget_w": None if budget is None else budget.at(0.0),
        "power_budget_scheduled": budget is not None and budget.constant is None,
        "throttle_trip_c": physics.throttle_trip_c,
        "budget_exceeded_s": budget_exceeded_s if budget is not None else None,
        "boot_mode": boot.name,
        "workload": workload or scenario.workload or "vit-b16 (board calibration)",
    }
    return SimResult(summary=summary, timeline=rows, warnings=warnings)


def write_outputs(result: SimResult, out_dir: Path) -> List[Path]:
    """timeline.csv, summary.json and (with matplotlib, the `plot` extra) timeline.png in `out_dir`."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    csv_path = out_dir / "timeline.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        if result.timeline:
            writer = csv.DictWriter(f, fieldnames=list(result.timeline[0]))
            writer.writeheader()
            writer.writerows(result.timeline)
    written.append(csv_path)
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(result.summary, indent=1) + "\n", encoding="utf-8")
    written.append(summary_path)
    png = plot_timeline(result, out_dir / "timeline.png")
    if png is not None:
        written.append(png)
    return written


def plot_timeline(result: SimResult, path: Path) -> Optional[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = result.timeline
    if not rows:
        return None
    t = [r["t_s"] / 60.0 for r in rows]
    s = result.summary
    panels = [("temp_c", "°C"), ("power_w", "W"), ("latency_p95_ms", "latency p95 ms"), ("gpu_cap_mhz", "GPU cap MHz"),
              ("batch_size", "batch"), ("fps_processed", "frames/s")]
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(10, 14), sharex=True)
    for ax, (key, label) in zip(axes, panels):
        ax.plot(t, [r[key] if r[key] is not None else float("nan") for r in rows], lw=0.8)
        ax.set_ylabel(label)
    # The lines each curve is judged against: the thermal trip where the board throttles, the budget, the SLO.
    references: Tuple[Tuple[int, Any, str], ...] = (
        (0, s.get("throttle_trip_c"), "passive trip (throttling)"), (1, s.get("power_budget_w"), "budget"),
        (2, s.get("slo_target_ms"), "SLO p95 target"))
    if s.get("power_budget_scheduled"):
        axes[1].plot(t, [r["budget_w"] for r in rows], color="tab:red", lw=0.8, ls="--", label="budget")
        axes[1].legend(loc="upper right")
        references = tuple(r for r in references if r[0] != 1)
    for index, value, label in references:
        if value is not None:
            axes[index].axhline(value, color="tab:red", lw=0.8, ls="--", label=label)
            axes[index].legend(loc="upper right")
    axes[-2].plot(t, [r["fps_offered"] for r in rows], lw=0.6, alpha=0.6, label="offered")
    axes[-2].legend(loc="upper right")
    modes = sorted({r["mode"] for r in rows})
    axes[-1].step(t, [modes.index(r["mode"]) for r in rows], where="post", lw=0.8)
    axes[-1].set_yticks(range(len(modes)))
    axes[-1].set_yticklabels(modes)
    axes[-1].set_ylabel("mode")
    axes[-1].set_xlabel("minutes")
    fig.suptitle(f"{s['controller']} on {s['board']}, scenario {s['scenario']}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
