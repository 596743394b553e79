"""The control loop's actuation: order of writes, failure reporting, retry with backoff (not every tick)."""

from typing import List, Optional, Sequence

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.errors import ActuationError, RebootRequiredError
from jetvit_daemon.governor.decide import PipelineView
from jetvit_daemon.governor.loop import Governor
from jetvit_daemon.governor.policy import parse_policy
from jetvit_daemon.hardware.base import GpuFreqState, Platform, PowerMode, TelemetrySample

POLICY = parse_policy(
    """\
version: 1
interval_s: 1
ladder:
  - {name: low, mode: 15W, gpu_cap_mhz: 408, batch_size: 8}
  - {name: high, mode: 25W, gpu_cap_mhz: max, batch_size: 2}
""",
    "test",
)
MODES = [PowerMode(0, "15W", 612_000_000, 6, 240), PowerMode(1, "25W", 918_000_000, 6, 240)]


class ScriptedPlatform(Platform):
    """A Platform whose actuations are recorded and can be made to fail (the loop's seam, not a board)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.mode = MODES[1]
        self.cap_hz = 918_000_000
        self.calls: List[str] = []
        self.fail_mode: Optional[Exception] = None
        self.stale = False

    def start(self) -> None: ...

    def stop(self, restore: bool = True) -> None: ...

    def latest_telemetry(self) -> Optional[TelemetrySample]:
        return TelemetrySample(t_mono_s=self.clock.monotonic(), temps_c={"tj": 50.0}, board_power_w=8.0)

    def telemetry_stale(self) -> bool:
        return self.stale

    def power_modes(self) -> Sequence[PowerMode]:
        return MODES

    def current_mode(self) -> PowerMode:
        self.calls.append("query")
        return self.mode

    def set_mode(self, name: str) -> PowerMode:
        self.calls.append(f"mode {name}")
        if self.fail_mode is not None:
            raise self.fail_mode
        self.mode = next(m for m in MODES if m.name == name)
        self.cap_hz = self.mode.gpu_max_freq_hz or 0
        return self.mode

    def gpu_freq_state(self) -> GpuFreqState:
        return GpuFreqState(available_hz=[408_000_000, 918_000_000], min_hz=408_000_000, max_hz=self.cap_hz)

    def set_gpu_cap_hz(self, cap_hz: Optional[int]) -> int:
        self.calls.append(f"cap {cap_hz}")
        self.cap_hz = cap_hz if cap_hz is not None else (self.mode.gpu_max_freq_hz or 0)
        return self.cap_hz


CALM = PipelineView(arrival_fps=30, processed_fps=30, dropped_fps=0, queue_depth=0, latency_p95_s=0.05,
                    batch_size=2)


class Events:
    def __init__(self) -> None:
        self.actuations: List[str] = []
        self.decisions: List[str] = []
        self.external: List[str] = []

    def decision(self, rule, from_state, to_state, reason):
        self.decisions.append(f"{rule} {from_state}->{to_state}")

    def actuation(self, knob, result):
        self.actuations.append(f"{knob}={result}")

    def applied(self, state, index, mode, gpu_cap_hz, batch):
        pass

    def external_change(self, knob, mode, gpu_cap_hz):
        self.external.append(f"{knob}: {mode} {gpu_cap_hz}")


def make(start: str = "low"):
    clock = ManualClock()
    platform = ScriptedPlatform(clock)
    batches: List[int] = []
    events = Events()
    policy = POLICY.model_copy(update={"start_state": start})
    gov = Governor(platform, policy, lambda: CALM, lambda n, wait: batches.append(n) or n, clock,
                   events=events, backoff_initial_s=2, backoff_max_s=16)
    return gov, platform, clock, batches, events


def test_first_tick_applies_the_start_state_mode_then_cap_then_batch():
    gov, platform, _, batches, events = make()
    gov.tick()
    assert platform.calls == ["query", "mode 15W", "cap 408000000"]
    assert batches == [8]
    assert events.actuations == ["power_mode=ok", "gpu_cap=ok", "batch_size=ok"]
    assert gov.status()["mode"] == "15W" and gov.status()["gpu_cap_hz"] == 408_000_000
    platform.calls.clear()
    gov.tick()
    assert platform.calls == []  # converged: nothing to write


def test_a_failed_actuation_is_reported_and_retried_with_backoff_not_every_tick():
    gov, platform, clock, _, events = make()
    platform.fail_mode = ActuationError("nvpmodel: NVPM ERROR: failed")
    attempts = []
    for _ in range(12):
        before = platform.calls.count("mode 15W")
        gov.tick()
        if platform.calls.count("mode 15W") > before:
            attempts.append(clock.monotonic())
        clock.advance(1.0)
    start = attempts[0]
    assert [t - start for t in attempts] == [0, 2, 6]  # backoff 2 s, then 4 s, then 8 s (next at 14)
    assert events.actuations.count("power_mode=error") == 3
    status = gov.status()
    assert status["actuation_failures"] == 3 and "NVPM ERROR" in status["last_error"]
    platform.fail_mode = None
    clock.advance(10.0)
    gov.tick()
    assert gov.status()["mode"] == "15W" and gov.status()["last_error"] is None


def test_a_switch_that_needs_a_reboot_waits_the_longest_backoff():
    gov, platform, clock, _, _ = make()
    platform.fail_mode = RebootRequiredError("25W → 15W needs a reboot")
    gov.tick()
    clock.advance(15.0)
    gov.tick()
    assert platform.calls.count("mode 15W") == 1
    clock.advance(1.0)
    gov.tick()
    assert platform.calls.count("mode 15W") == 2


def test_reloading_a_policy_keeps_the_state_by_name_and_reapplies_it():
    gov, _, _, batches, _ = make(start="high")
    gov.tick()
    assert batches == [2]
    changed = POLICY.model_copy(update={"ladder": [POLICY.ladder[0], POLICY.ladder[1].model_copy(
        update={"batch_size": 4})]})
    gov.set_policy(changed)
    gov.tick()
    assert gov.status()["state"] == "high" and batches == [2, 4]


def test_regression_a_gpu_cap_the_kernel_reverted_is_reported_as_the_truth_counted_and_reapplied_with_backoff():
    """Issue 9, defect 5: an applied state was never re-verified, so /status said 408 MHz while the board ran
    at 918 MHz. Now it is read back every few ticks, reported as it is, counted and re-applied."""
    from jetvit_daemon.governor.loop import VERIFY_EVERY_TICKS

    gov, platform, clock, _, events = make()
    gov.tick()
    assert gov.status()["gpu_cap_hz"] == 408_000_000
    reapplied_at = []
    for round_ in range(3):
        platform.cap_hz = 918_000_000  # the kernel puts the mode's maximum back
        for _ in range(VERIFY_EVERY_TICKS):
            clock.advance(1.0)
            gov.tick()
        status = gov.status()
        assert status["gpu_cap_hz"] == 918_000_000, status  # the truth, not what was written
        assert status["external_changes"] == round_ + 1
        assert events.external[-1] == "gpu_cap: 15W 918000000"
        before = platform.calls.count("cap 408000000")
        for _ in range(40):
            clock.advance(1.0)
            gov.tick()
            if platform.calls.count("cap 408000000") > before:
                reapplied_at.append(clock.monotonic())
                break
        assert gov.status()["gpu_cap_hz"] == 408_000_000
    # Re-applied each time, but later each time: a board that keeps reverting is not written every tick.
    gaps = [b - a for a, b in zip(reapplied_at, reapplied_at[1:])]
    assert gaps[1] > gaps[0], reapplied_at


def test_a_mode_changed_behind_the_governor_is_reported_and_reapplied():
    from jetvit_daemon.governor.loop import VERIFY_EVERY_TICKS

    gov, platform, clock, _, events = make()
    gov.tick()
    platform.mode, platform.cap_hz = MODES[1], 918_000_000  # someone ran `nvpmodel -m 1`
    for _ in range(VERIFY_EVERY_TICKS):
        clock.advance(1.0)
        gov.tick()
    assert gov.status()["mode"] == "25W"
    assert events.external == ["power_mode: 25W 918000000", "gpu_cap: 25W 918000000"]
    for _ in range(5):
        clock.advance(1.0)
        gov.tick()
    assert platform.mode.name == "15W" and gov.status()["mode"] == "15W"


def test_leave_alone_reports_a_changed_knob_once_and_never_writes_it_again():
    """hardware.on_conflict: leave_alone (issue 14): a cap changed behind the governor is counted, then read
    rather than written, even when the state is re-applied (a reload); the power mode is still governed."""
    from jetvit_daemon.governor.loop import VERIFY_EVERY_TICKS

    clock = ManualClock()
    platform = ScriptedPlatform(clock)
    events = Events()
    low = POLICY.model_copy(update={"start_state": "low"})
    gov = Governor(platform, low, lambda: CALM, lambda n, wait: n, clock, events=events, on_conflict="leave_alone")
    gov.tick()
    platform.cap_hz = 612_000_000  # someone else's cap
    for _ in range(VERIFY_EVERY_TICKS * 4):
        clock.advance(1.0)
        gov.tick()
    assert events.external == ["gpu_cap: 15W 612000000"]
    assert platform.calls.count("cap 408000000") == 1 and platform.cap_hz == 612_000_000
    status = gov.status()
    assert list(status["left_alone"]) == ["gpu_cap"] and status["gpu_cap_hz"] == 612_000_000
    assert status["external_changes"] == 1 and status["actuation_failures"] == 0
    platform.mode = MODES[1]  # the policy's mode is still the governor's: set back on the next re-apply
    gov.set_policy(low.model_copy(update={"interval_s": 1.5}))
    platform.calls.clear()
    gov.tick()
    assert platform.calls == ["query", "mode 15W"] and gov.status()["mode"] == "15W"  # no cap written


def test_an_unknown_on_conflict_is_refused():
    import pytest

    from jetvit_daemon.errors import ConfigError

    with pytest.raises(ConfigError, match="on_conflict must be one of refuse, leave_alone, got 'ignore'"):
        Governor(ScriptedPlatform(ManualClock()), POLICY, lambda: CALM, lambda n, w: n, ManualClock(),
                 on_conflict="ignore")


def test_an_unchanged_board_is_only_read_back_every_few_ticks():
    from jetvit_daemon.governor.loop import VERIFY_EVERY_TICKS

    gov, platform, clock, _, events = make()
    gov.tick()
    platform.calls.clear()
    for _ in range(VERIFY_EVERY_TICKS * 3):
        clock.advance(1.0)
        gov.tick()
    assert platform.calls == ["query"] * 3 and events.external == []


def test_regression_reloads_every_3_s_never_delay_the_safe_state_of_stale_telemetry():
    """Issue 9 item 4: each reload reset the stale-telemetry timer, so with telemetry hung and a reload every
    3 s the board stayed at its top state; the safe state must come after_s after telemetry went stale."""
    gov, platform, clock, _, _ = make(start="high")
    gov.tick()
    assert gov.status()["state"] == "high"
    platform.stale = True
    after_s = POLICY.stale_telemetry.after_s
    reached_at = None
    for second in range(1, int(after_s) + 5):
        clock.advance(1.0)
        if second % 3 == 0:  # an operator (or a ConfigMap sync) saving the policy again and again
            gov.set_policy(POLICY.model_copy(update={"interval_s": 1.0 + second / 1000.0}))
        gov.tick()
        if gov.status()["state"] == "low":
            reached_at = second
            break
    assert reached_at is not None and reached_at <= after_s + 1


def test_a_reload_keeps_what_was_learned_of_unchanged_states_only():
    from jetvit_daemon.governor.decide import Learned, Memory
    from jetvit_daemon.governor.loop import carry_memory

    memory = Memory(index=1, entered_s=5.0, stale_since_s=3.0,
                    learned=(Learned(capacity_fps=40.0), Learned(capacity_fps=90.0, power_w=9.0)))
    low, high = POLICY.ladder
    changed = POLICY.model_copy(update={"ladder": [low.model_copy(update={"gpu_cap_mhz": 306}), high]})
    carried = carry_memory(POLICY, memory, changed)
    assert carried.index == 1 and carried.stale_since_s == 3.0 and carried.entered_s == 5.0
    assert carried.learned == (Learned(), Learned(capacity_fps=90.0, power_w=9.0))
