"""The simulated board's physics: power, temperature, thermal throttling and inference speed.

>>> from jetvit_daemon.sim.boards import get_profile
>>> phys = BoardPhysics(get_profile("orin-nano-super"), cooling="fan", ambient_c=25.0)
>>> phys.set_controls(mode_cap_hz=None, devfreq_max_hz=1020000000, devfreq_min_hz=306000000,
...                   online_cores=6, active_tpcs=4)
>>> phys.step(1.0, gpu_util=1.0)
>>> round(phys.power_w, 1), phys.gpu_freq_hz
(26.6, 1020000000)

Pure: no I/O, no clock reads, no threads. The owner feeds it the board's control state (what nvpmodel and
the daemon wrote) and a time step; `step` is a handful of float operations so an offline simulator can run it
on a virtual clock far faster than real time. Not thread-safe: one owner steps it (the live board guards it
with a lock). Every equation and parameter is explained in docs/SIMULATION.md.
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from jetvit_daemon.hardware.nvpmodel import CPU_ONLINE_PARAM, ConfMode, NvpmodelConf
from jetvit_daemon.sim.boards import (
    COOLINGS,
    ROLE_NC,
    ROLE_PART,
    ROLE_TOTAL,
    BoardProfile,
    ViTCalibration,
    active_tpcs,
    snap_down_hz,
    snap_up_hz,
)

__all__ = ["DEFAULT_CPU_UTIL", "BoardPhysics", "BoardState", "ViTModel"]

# CPU load of a board that runs the inference daemon and little else (sample 29: 11-15 % per core while the
# GPU is 63 % busy; sample 30 idle: 0-2 %).
DEFAULT_CPU_UTIL = 0.1
# A failed fan (the `thermal_runaway` fault) multiplies the thermal resistance by this much.
RUNAWAY_R_FACTOR = 4.0


@dataclass(frozen=True)
class BoardState:
    """A snapshot of the board for tests and status pages. Temperatures in °C by zone type; None: no value
    (a gated zone)."""

    time_s: float
    power_w: float
    gpu_power_w: float
    cpu_power_w: float
    rails_w: Dict[str, float]
    tj_c: float
    temps_c: Dict[str, Optional[float]]
    gpu_freq_hz: int  # the clock the GPU runs at when busy: min(devfreq max, mode cap, throttle cap)
    gpu_cur_freq_hz: int  # what devfreq `cur_freq` reports now (the floor while idle)
    gpu_util: float
    cpu_util: float
    online_cores: int
    active_tpcs: int
    throttled: bool
    throttled_time_s: float
    throttle_events: int
    energy_j: float = 0.0  # input energy since the physics started: the ground truth for the energy metrics


def cpu_freq_ratio(profile: BoardProfile, conf: NvpmodelConf, mode: ConfMode) -> float:
    """The mode's CPU clock cap over the top of the cpufreq table, averaged over the clusters it caps
    (`CPU_* MAX_FREQ`, -1 = uncapped)."""
    table = profile.cpu_table_khz
    ratios: List[float] = []
    for param, arg, value in mode.settings:
        pdef = conf.params.get(param)
        if pdef is None or pdef.type != "CLOCK" or not param.startswith("CPU") or param == CPU_ONLINE_PARAM:
            continue
        if arg != "MAX_FREQ":
            continue
        khz = int(value)
        ratios.append(1.0 if khz < 0 else snap_down_hz(table, khz) / table[-1])
    return sum(ratios) / len(ratios) if ratios else 1.0


class ViTModel:
    """Batch inference time of a ViT-B/16-class model: t(b, f) = t0 + (b + s)·W / (n_tpc·f).

    t0 is the fixed per-batch overhead (launch, copies), W the work per image in TPC·cycles, s the batch
    penalty that makes small batches less efficient. Fitted from the profile's calibration points: two
    points fix t0 and W exactly; one point (the Nano's estimate) fixes W with t0 = 5 ms. Thread-safe
    (immutable).
    """

    def __init__(self, cal: ViTCalibration) -> None:
        self.penalty = cal.batch_penalty
        b = cal.batch
        if len(cal.points) >= 2:
            (f1, fps1), (f2, fps2) = cal.points[0], cal.points[1]
            t1, t2 = b / fps1, b / fps2
            k = (t1 - t2) / (1.0 / f1 - 1.0 / f2)  # seconds × Hz: GPU cycles of one calibration batch
            self.overhead_s = t1 - k / f1
        else:
            (f1, fps1) = cal.points[0]
            self.overhead_s = 0.005
            k = (b / fps1 - self.overhead_s) * f1
        if self.overhead_s < 0 or k <= 0:
            raise ValueError(f"ViT calibration {cal.points} gives no positive overhead and work")
        self.work_tpc_cycles = k * cal.tpcs / (b + self.penalty)

    @classmethod
    def from_parameters(cls, overhead_s: float, work_tpc_cycles: float, penalty: float) -> "ViTModel":
        """The model from its parameters directly (a workload profile, sim/workload.py)."""
        model = cls.__new__(cls)
        model.overhead_s, model.work_tpc_cycles, model.penalty = overhead_s, work_tpc_cycles, penalty
        return model

    def inference_time_s(self, batch_size: int, freq_hz: float, tpcs: int) -> float:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return self.overhead_s + (batch_size + self.penalty) * self.work_tpc_cycles / (max(1, tpcs) * freq_hz)


class BoardPhysics:
    """Power, first-order thermal model and throttling of one board. See the module docstring.

    Controls (set with `set_controls`): the devfreq limits, the power mode's GPU cap, online cores and active
    TPCs. Inputs per `step`: GPU and CPU utilisation (0..1). Outputs: attributes after each step and
    `state()`.
    """

    def __init__(
        self,
        profile: BoardProfile,
        cooling: str = "fan",
        ambient_c: float = 25.0,
        temp_c: Optional[float] = None,
        vit: Optional[ViTModel] = None,
    ) -> None:
        if cooling not in COOLINGS:
            raise ValueError(f"cooling must be one of {', '.join(COOLINGS)}, got {cooling!r}")
        self.profile = profile
        self.cooling = cooling
        self.ambient_c = float(ambient_c)
        p = profile.physics
        self._spec = p
        self._cool = p.cooling[cooling]
        self._table = profile.gpu_table_hz
        # The model's batch time: a workload profile's (sim/workload.py), else the board's ViT-B/16 calibration.
        self._vit = vit if vit is not None else ViTModel(p.vit)
        zone = profile.zone(p.throttle_zone)
        passive = [t for t in zone.trips if t.type == "passive"]
        if not passive:
            raise ValueError(f"{profile.name}: throttle zone {p.throttle_zone} has no passive trip")
        self.throttle_trip_c = passive[0].temp_c
        self.throttle_release_c = passive[0].temp_c - passive[0].hyst_c
        self._throttle_zone_offset_c = zone.offset_c
        self.throttle_cap_hz = snap_down_hz(self._table, p.throttle_cap_hz)
        self._rail_specs = profile.rails
        self._total_is_sum = not any(r.role == ROLE_TOTAL for r in self._rail_specs)
        # Memos of pure functions of the controls and inputs (see _effective_freq_hz, _update_power, step).
        self._freq_memo: Dict[Tuple[int, Optional[int], bool], int] = {}
        self._power_key: Optional[Tuple[float, float, int, int, int, float]] = None
        self._power_memo: Tuple[float, float, Dict[str, float], float] = (0.0, 0.0, {}, 0.0)
        self._decay_key: Optional[Tuple[float, float]] = None
        self._decay = 1.0
        self._rail_plans: Dict[int, List[Tuple[str, float, float, float, bool]]] = {}

        # controls
        self.mode_cap_hz: Optional[int] = None
        self.devfreq_max_hz = self._table[-1]
        self.devfreq_min_hz = self._table[0]
        self.online_cores = profile.cpu_count
        self.active_tpcs = p.tpcs_module
        self.cpu_freq_ratio = 1.0
        self.cooling_failed = False

        # state
        self.time_s = 0.0
        self.energy_j = 0.0
        self.throttled = False
        self.throttled_time_s = 0.0
        self.throttle_events = 0
        self.gpu_util = 0.0
        self.cpu_util = 0.0
        self.gpu_power_w = 0.0
        self.cpu_power_w = 0.0
        self.rails_w: Dict[str, float] = {}
        self.power_w = 0.0
        self.gpu_freq_hz = self._effective_freq_hz()
        self.gpu_cur_freq_hz = self.devfreq_min_hz
        self._update_power()
        # A board that has been idle a while sits at its idle steady state.
        self.tj_c = self.steady_state_c(self.power_w) if temp_c is None else float(temp_c)

    # -- controls --

    def set_controls(
        self,
        mode_cap_hz: Optional[int],
        devfreq_max_hz: int,
        devfreq_min_hz: int,
        online_cores: int,
        active_tpcs: int,
        cpu_freq_ratio: float = 1.0,
        cooling_failed: bool = False,
    ) -> None:
        """The board's control state: `mode_cap_hz` None means the mode leaves the GPU uncapped (-1);
        `cpu_freq_ratio` is the cpufreq max over the top of the table (0..1]."""
        self.mode_cap_hz = mode_cap_hz
        self.devfreq_max_hz = int(devfreq_max_hz)
        self.devfreq_min_hz = int(devfreq_min_hz)
        self.online_cores = max(1, int(online_cores))
        self.active_tpcs = max(1, int(active_tpcs))
        self.cpu_freq_ratio = min(1.0, max(0.05, float(cpu_freq_ratio)))
        self.cooling_failed = bool(cooling_failed)
        self.gpu_freq_hz = self._effective_freq_hz()

    def apply_mode(self, conf: NvpmodelConf, mode: ConfMode) -> None:
        """What `nvpmodel -m` does to the controls: the mode's GPU cap (also written to devfreq max, min to
        the table's floor), online cores, active TPCs and CPU clock cap. For offline use; the live board
        reads the same from the files the nvpmodel emulator wrote."""
        pm = mode.power_mode
        top = self._table[-1] if pm.gpu_max_freq_hz is None else pm.gpu_max_freq_hz
        self.set_controls(
            mode_cap_hz=pm.gpu_max_freq_hz,
            devfreq_max_hz=snap_down_hz(self._table, top),
            devfreq_min_hz=self._table[0],
            online_cores=pm.online_cores,
            active_tpcs=active_tpcs(self.profile, pm.tpc_pg_mask),
            cpu_freq_ratio=cpu_freq_ratio(self.profile, conf, mode),
            cooling_failed=self.cooling_failed,
        )

    # -- model --

    def gpu_voltage_v(self, freq_hz: float) -> float:
        """V(f) = v0 + dv·f: the assumed linear DVFS curve (docs/SIMULATION.md)."""
        return self._spec.gpu_v0_v + self._spec.gpu_dv_v_per_ghz * freq_hz * 1e-9

    def gpu_power_w_at(self, util: float, freq_hz: float, tpcs: int) -> float:
        """P = n_tpc·c·f·V(f)²·(β·g(u) + u)/(1 + β), g(u) = min(1, u/u_gate): dynamic power ∝ u·f·V², plus
        the un-gated clock tree and leakage (β) while the GPU is not rail-gated; equals n·c·f·V² at u = 1."""
        if util <= 0.0:
            return 0.0
        s = self._spec
        v = self.gpu_voltage_v(freq_hz)
        full = tpcs * s.gpu_w_per_tpc_ghz_v2 * freq_hz * 1e-9 * v * v
        gate = min(1.0, util / s.gpu_gate_util)
        return full * (s.gpu_clock_share * gate + util) / (1.0 + s.gpu_clock_share)

    def cpu_power_w_at(self, util: float, online_cores: int, freq_ratio: float = 1.0) -> float:
        """P = u·n·P_core·r²: r is the cpufreq cap over the table top (power ∝ f·V², V falling with f;
        the square is the simulator's compromise, docs/SIMULATION.md)."""
        return util * online_cores * self._spec.cpu_core_w * freq_ratio * freq_ratio

    def r_c_per_w(self) -> float:
        r = self._cool.r_c_per_w
        return r * RUNAWAY_R_FACTOR if self.cooling_failed else r

    def tau_s(self) -> float:
        """τ = R·C of the current cooling (a failed fan raises R and so τ)."""
        return self.r_c_per_w() * self._cool.heat_capacity_j_per_c

    def steady_state_c(self, power_w: float) -> float:
        return self.ambient_c + self.r_c_per_w() * power_w

    def _effective_freq_hz(self) -> int:
        key = (self.devfreq_max_hz, self.mode_cap_hz, self.throttled)
        hit = self._freq_memo.get(key)
        if hit is not None:
            return hit
        cap = self.devfreq_max_hz
        if self.mode_cap_hz is not None:
            cap = min(cap, self.mode_cap_hz)
        if self.throttled:
            cap = min(cap, self.throttle_cap_hz)
        freq = self._freq_memo[key] = snap_down_hz(self._table, cap)
        return freq

    def _update_power(self) -> None:
        # The offline simulator steps ~36 000 times per simulated hour, most steps with the same inputs as the
        # one before (idle, saturated, or a held configuration): the same inputs give the same outputs.
        key = (self.gpu_util, self.cpu_util, self.gpu_freq_hz, self.active_tpcs, self.online_cores,
               self.cpu_freq_ratio)
        if key == self._power_key:
            self.gpu_power_w, self.cpu_power_w, self.rails_w, self.power_w = self._power_memo
            return
        self.gpu_power_w = self.gpu_power_w_at(self.gpu_util, self.gpu_freq_hz, self.active_tpcs)
        self.cpu_power_w = self.cpu_power_w_at(self.cpu_util, self.online_cores, self.cpu_freq_ratio)
        gpu_w, cpu_w = self.gpu_power_w, self.cpu_power_w
        rails: Dict[str, float] = {}
        total = 0.0
        for label, base_w, gpu_share, cpu_share, in_total in self._rail_plan(self.online_cores):
            w = base_w
            w += gpu_share * gpu_w + cpu_share * cpu_w
            rails[label] = w
            if in_total:
                total += w
        self.rails_w = rails
        self.power_w = total
        self._power_key = key
        self._power_memo = (self.gpu_power_w, self.cpu_power_w, rails, total)

    def _rail_plan(self, cores: int) -> List[Tuple[str, float, float, float, bool]]:
        """Each reported rail's idle power with `cores` online, its shares of GPU and CPU power, and whether it
        counts in the module's total (NC rails are left out)."""
        plan = self._rail_plans.get(cores)
        if plan is None:
            plan = self._rail_plans[cores] = [
                (r.label, r.idle_w + r.core_idle_w * cores, r.gpu_share, r.cpu_share,
                 r.role == ROLE_TOTAL or (self._total_is_sum and r.role == ROLE_PART))
                for r in self._rail_specs if r.role != ROLE_NC]
        return plan

    def step(self, dt_s: float, gpu_util: float, cpu_util: float = DEFAULT_CPU_UTIL) -> None:
        """Advance `dt_s` seconds with the GPU busy `gpu_util` and the CPUs `cpu_util` (0..1) of the time.

        Power is taken constant over the step and the temperature integrated exactly for it:
        T ← T_ss + (T − T_ss)·exp(−dt/τ), T_ss = T_amb + R·P, so any step size is stable.
        """
        if dt_s < 0:
            raise ValueError(f"dt_s must be >= 0, got {dt_s}")
        self.gpu_util = min(1.0, max(0.0, float(gpu_util)))
        self.cpu_util = min(1.0, max(0.0, float(cpu_util)))
        self.gpu_freq_hz = self._effective_freq_hz()
        self._update_power()
        if dt_s > 0:
            t_ss = self.steady_state_c(self.power_w)
            tau = self.tau_s()
            if (dt_s, tau) != self._decay_key:
                self._decay_key, self._decay = (dt_s, tau), math.exp(-dt_s / tau)
            self.tj_c = t_ss + (self.tj_c - t_ss) * self._decay
            if self.throttled:
                self.throttled_time_s += dt_s
            self.time_s += dt_s
            self.energy_j += self.power_w * dt_s  # power is constant over the step (see above)
        self._update_throttle()

    def _update_throttle(self) -> None:
        zone_c = self.tj_c + self._throttle_zone_offset_c
        if not self.throttled and zone_c >= self.throttle_trip_c:
            self.throttled = True
            self.throttle_events += 1
        elif self.throttled and zone_c < self.throttle_release_c:
            self.throttled = False
        self.gpu_freq_hz = self._effective_freq_hz()
        # devfreq reports the busy clock while the GPU works and its floor (min_freq, at most the cap) while
        # idle, as nvhost_podgov does after the load drops (the 305/306 MHz idle clocks of samples 26, 29).
        if self.gpu_util > 0.0:
            self.gpu_cur_freq_hz = self.gpu_freq_hz
        else:
            self.gpu_cur_freq_hz = min(snap_up_hz(self._table, self.devfreq_min_hz), self.gpu_freq_hz)

    # -- outputs --

    def zone_temps_c(self) -> Dict[str, Optional[float]]:
        """Each thermal zone's reading in °C (quantised as the sensor reports it); None for a gated zone."""
        temps: Dict[str, Optional[float]] = {}
        for z in self.profile.thermal_zones:
            if z.gated:
                temps[z.type] = None
            elif z.fixed_c is not None:
                temps[z.type] = z.fixed_c
            else:
                q = z.resolution_c
                temps[z.type] = math.floor((self.tj_c + z.offset_c) / q) * q
        return temps

    def inference_time_s(self, batch_size: int, freq_hz: Optional[float] = None) -> float:
        """Seconds one batch of a ViT-B/16-class model takes at `freq_hz` (default: the current busy clock)
        on the active TPCs."""
        f = self.gpu_freq_hz if freq_hz is None else freq_hz
        return self._vit.inference_time_s(batch_size, f, self.active_tpcs)

    def fps(self, batch_size: int, freq_hz: Optional[float] = None) -> float:
        return batch_size / self.inference_time_s(batch_size, freq_hz)

    def state(self) -> BoardState:
        return BoardState(
            time_s=self.time_s,
            power_w=self.power_w,
            gpu_power_w=self.gpu_power_w,
            cpu_power_w=self.cpu_power_w,
            rails_w=dict(self.rails_w),
            tj_c=self.tj_c,
            temps_c=self.zone_temps_c(),
            gpu_freq_hz=self.gpu_freq_hz,
            gpu_cur_freq_hz=self.gpu_cur_freq_hz,
            gpu_util=self.gpu_util,
            cpu_util=self.cpu_util,
            online_cores=self.online_cores,
            active_tpcs=self.active_tpcs,
            throttled=self.throttled,
            throttled_time_s=self.throttled_time_s,
            throttle_events=self.throttle_events,
            energy_j=self.energy_j,
        )

    def table_hz(self) -> Tuple[int, ...]:
        return self._table
