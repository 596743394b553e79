import errno
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import boardtrees
from boardtrees import ORIN_NANO_HZ, SPECS, FakeBoardRunner, RecordingTree

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.errors import ActuationError, ConfigError, RebootRequiredError
from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.hardware.baseline import Baseline, BaselineJournal
from jetvit_daemon.hardware.jetson import JetsonPlatform, probe_report, restore_from_journal
from jetvit_daemon.hardware.probe import JTOP_CONFIG, acquire_instance_lock

XAVIER_DIR = SPECS["xavier-nx-jp5"].devfreq_dir
ORIN_DIR = SPECS["orin-nano-jp6"].devfreq_dir


class StubTelemetry:
    """Stands in for TegrastatsReader / SysfsTelemetry: records the lifecycle calls."""

    name = "stub"

    def __init__(self) -> None:
        self.events: List[str] = []
        self.sample = TelemetrySample(t_mono_s=1000.0, board_power_w=4.8)

    def start(self) -> None:
        self.events.append("start")

    def stop(self, timeout_s: float = 2.0) -> None:
        self.events.append("stop")

    def latest(self) -> Optional[TelemetrySample]:
        return self.sample

    def is_stale(self) -> bool:
        return False

    def workers(self) -> list:
        return []


class Board:
    """One fixture board with the platform's collaborators."""

    def __init__(self, tmp_path: Path, name: str, **platform_kwargs: object) -> None:
        self.root = boardtrees.make_tree(tmp_path, name)
        self.tree = RecordingTree(self.root)
        self.runner = FakeBoardRunner(self.root, devfreq_dir=SPECS[name].devfreq_dir, tree=self.tree)
        self.clock = ManualClock()
        self.state_dir = tmp_path / "state"
        self.telemetry = StubTelemetry()
        self.kwargs = platform_kwargs
        self.devfreq_dir = SPECS[name].devfreq_dir

    def platform(self, **overrides: object) -> JetsonPlatform:
        kwargs = {**self.kwargs, **overrides}
        return JetsonPlatform(
            self.tree, self.runner, self.clock, self.state_dir, self.telemetry, **kwargs  # type: ignore[arg-type]
        )

    def status(self) -> str:
        return self.tree.read_text("/var/lib/nvpmodel/status")

    def limits(self) -> Tuple[int, int]:
        return self.tree.limits(self.devfreq_dir)

    @property
    def journal(self) -> BaselineJournal:
        return BaselineJournal(self.state_dir)


def test_start_actuate_stop_restores_everything(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    assert board.limits() == (114_750_000, 510_000_000)
    p = board.platform()
    p.start()
    assert board.telemetry.events == ["start"]
    assert p.latest_telemetry() is board.telemetry.sample
    assert p.current_mode().name == "MODE_10W_DESKTOP"
    assert not board.journal.exists()  # nothing written yet, nothing recorded

    assert p.set_gpu_cap_hz(400_000_000) == 306_000_000
    recorded = board.journal.load()
    assert recorded is not None
    assert (recorded.mode_name, recorded.mode_id) == ("MODE_10W_DESKTOP", 5)
    assert (recorded.gpu_devfreq_dir, recorded.gpu_min_hz, recorded.gpu_max_hz) == (
        XAVIER_DIR,
        114_750_000,
        510_000_000,
    )
    assert recorded.recorded_at == board.clock.time()

    now = p.set_mode("MODE_10W_4CORE")
    assert now.id == 4 and board.status() == "pmode:0004"
    # nvpmodel rewrote the devfreq limits; the platform re-read them and may cap again.
    assert p.gpu_freq_state().max_hz == 803_250_000
    assert p.set_gpu_cap_hz(None) == 803_250_000
    assert board.journal.load() == recorded  # first baseline wins

    p.stop()
    assert board.telemetry.events == ["start", "stop"]
    assert board.status() == "pmode:0005"
    assert board.limits() == (114_750_000, 510_000_000)
    assert not board.journal.exists()
    acquire_instance_lock(board.state_dir).release()  # the lock was released


def test_mode_restored_before_the_devfreq_limits(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    board.tree.write_text(XAVIER_DIR + "/min_freq", "204000000")  # a floor someone set before the daemon
    p = board.platform()
    p.start()
    p.set_mode("MODE_10W_4CORE")  # nvpmodel resets min to the lowest, max to 803.25 MHz
    board.tree.writes.clear()
    p.stop()
    # nvpmodel -m 5 first (it rewrites the devfreq limits itself), then the recorded floor goes back.
    assert board.tree.writes == [
        ("/var/lib/nvpmodel/status", "pmode:0005\n"),
        (XAVIER_DIR + "/min_freq", "114750000"),
        (XAVIER_DIR + "/max_freq", "510000000"),
        (XAVIER_DIR + "/min_freq", "204000000"),
    ]
    assert board.limits() == (204_000_000, 510_000_000)


def test_crash_leftover_is_restored_first_on_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    # A run (pid 4242) recorded the baseline, switched mode and capped the GPU, then died.
    board.journal.record(
        Baseline(
            board="NVIDIA Jetson Xavier NX Developer Kit",
            mode_name="MODE_10W_DESKTOP",
            mode_id=5,
            gpu_devfreq_dir=XAVIER_DIR,
            gpu_min_hz=114_750_000,
            gpu_max_hz=510_000_000,
            recorded_at=1.7e9,
            pid=4242,
        )
    )
    board.runner.run(["nvpmodel", "-m", "4"], 10.0)
    board.tree.write_text(XAVIER_DIR + "/max_freq", "306000000")
    board.runner.calls.clear()
    board.runner.timeouts.clear()

    p = board.platform()
    with caplog.at_level(logging.WARNING):
        p.start()
    assert board.status() == "pmode:0005"
    assert board.limits() == (114_750_000, 510_000_000)
    assert not board.journal.exists()
    assert "restored power mode MODE_10W_DESKTOP left by a crashed run (pid 4242)" in caplog.text
    assert p.facts()["crash_restore"].startswith("restored power mode MODE_10W_DESKTOP")
    # Restore came first: before conflict detection (systemctl) and before telemetry started.
    first_systemctl = next(i for i, c in enumerate(board.runner.calls) if c[0] == "systemctl")
    assert board.runner.calls.index(["nvpmodel", "-m", "5"]) < first_systemctl
    assert board.telemetry.events == ["start"]
    p.stop()


def test_restore_skipped_while_the_system_shuts_down(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    p = board.platform()
    p.start()
    p.set_mode("MODE_10W_4CORE")
    board.runner.systemctl["is-system-running"] = "stopping"
    with caplog.at_level(logging.WARNING):
        p.stop()
    assert board.status() == "pmode:0004"  # left as is
    assert board.journal.exists()  # the next start restores (the mode survives the reboot)
    assert "system is shutting down: restore skipped" in caplog.text
    board.runner.systemctl["is-system-running"] = "running"
    again = board.platform()
    again.start()
    assert board.status() == "pmode:0005"
    again.stop()


def test_failed_restore_keeps_the_journal_for_a_retry(tmp_path: Path) -> None:
    board = Board(tmp_path, "orin-nano-jp6")
    p = board.platform()
    p.start()
    p.set_gpu_cap_hz(408_000_000)
    board.tree.fail[ORIN_DIR + "/max_freq"] = errno.EACCES
    p.stop()
    assert board.journal.exists()
    assert board.limits() == (306_000_000, 408_000_000)
    board.tree.fail.clear()
    report = restore_from_journal(board.tree, board.runner, board.state_dir)
    assert "GPU min/max 306 MHz/624.75 MHz" in report and "cleared" in report
    assert board.limits() == (306_000_000, 624_750_000)
    assert not board.journal.exists()


def test_switch_needing_a_reboot_is_refused_and_records_nothing(tmp_path: Path) -> None:
    board = Board(tmp_path, "orin-nano-jp6")
    p = board.platform()
    p.start()
    with pytest.raises(RebootRequiredError, match="15W → 7W needs a reboot: TPC_PG_MASK 240 ≠ 252"):
        p.set_mode("7W")
    assert board.runner.set_calls == []
    assert not board.journal.exists()
    assert [m.name for m in p.reachable_modes()] == ["15W"]
    p.stop()


def test_own_lowest_cap_is_not_mistaken_for_jetson_clocks(tmp_path: Path) -> None:
    board = Board(tmp_path, "orin-nano-jp6")
    p = board.platform()
    p.start()
    assert p.set_gpu_cap_hz(100_000_000) == ORIN_NANO_HZ[0]
    assert p.gpu_freq_state().pinned  # min = max = 306 MHz, but the daemon did it
    assert p.set_gpu_cap_hz(612_000_000) == 612_000_000
    p.stop()
    assert board.limits() == (306_000_000, 624_750_000)


def pin(board: Board) -> None:
    """What `jetson_clocks` does: min = max = the mode's maximum."""
    board.tree.write_text(board.devfreq_dir + "/min_freq", "510000000")


def test_pinned_clocks_refuse_start_by_default(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    pin(board)
    with pytest.raises(ConfigError, match=r"jetson_clocks: GPU clocks are pinned .* on_conflict: leave_alone"):
        board.platform().start()
    assert board.telemetry.events == []
    acquire_instance_lock(board.state_dir).release()  # start released the lock on failure


def test_pinned_clocks_left_alone(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5", on_conflict="leave_alone")
    pin(board)
    p = board.platform()
    p.start()
    with pytest.raises(ActuationError, match="gpu_freq left alone because jetson_clocks: GPU clocks are pinned"):
        p.set_gpu_cap_hz(306_000_000)
    assert "left_alone_gpu_freq" in p.facts()
    p.set_mode("MODE_10W_4CORE")  # the power mode is still ours; nvpmodel unpins the GPU as a side effect
    recorded = board.journal.load()
    assert recorded is not None and recorded.gpu_pinned
    assert board.limits() == (114_750_000, 803_250_000)
    p.stop()
    assert board.limits() == (510_000_000, 510_000_000)  # put back as found, pinned
    assert board.status() == "pmode:0005"


def _jtop_boots_jetson_clocks(board: "Board") -> None:
    config = board.root / JTOP_CONFIG.lstrip("/")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"jetson_clocks": {"boot": True}}))


def test_jtop_service_as_a_telemetry_server_is_no_conflict(tmp_path: Path) -> None:
    # Regression: with on_conflict: refuse (the default) the [jtop] extra could not be used at all, since
    # jtop.service (the server jtop's telemetry comes from) counted as a controller of every knob.
    board = Board(tmp_path, "orin-nano-jp6")
    board.runner.systemctl["is-active jtop.service"] = "active"
    p = board.platform()
    p.start()
    assert [(c.source, c.knobs) for c in p.conflicts] == [("jtop.service", ())]
    p.stop()


def test_jtop_running_jetson_clocks_at_boot_is_refused_nvfancontrol_tolerated(tmp_path: Path) -> None:
    board = Board(tmp_path, "orin-nano-jp6")
    board.runner.systemctl["is-active jtop.service"] = "active"
    _jtop_boots_jetson_clocks(board)
    with pytest.raises(ConfigError, match=r"jtop\.service.*jetson_clocks at boot"):
        board.platform().start()
    board.runner.systemctl["is-active jtop.service"] = "inactive"
    (board.root / "proc/77").mkdir()
    (board.root / "proc/77/comm").write_text("nvfancontrol\n")
    p = board.platform()
    p.start()  # the daemon never sets the fan: not a conflict that blocks
    assert [c.source for c in p.conflicts] == ["nvfancontrol"]
    p.stop()


def test_jtop_left_alone_blocks_the_knob_it_controls(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5", on_conflict="leave_alone")
    board.runner.systemctl["is-active jtop.service"] = "active"
    _jtop_boots_jetson_clocks(board)
    p = board.platform()
    p.start()
    with pytest.raises(ActuationError, match=r"gpu_freq left alone because jtop\.service"):
        p.set_gpu_cap_hz(306_000_000)
    assert board.tree.writes == []
    p.set_mode("MODE_10W_4CORE")  # jtop does not set power modes on its own
    p.stop()


def test_second_instance_is_refused(tmp_path: Path) -> None:
    board = Board(tmp_path, "orin-nano-jp6")
    first = board.platform()
    first.start()
    with pytest.raises(ConfigError, match=r"another jetvit-daemon \(pid \d+\) holds"):
        board.platform().start()
    with pytest.raises(ConfigError, match="another jetvit-daemon"):
        restore_from_journal(board.tree, board.runner, board.state_dir)
    first.stop()


def test_restore_command_with_nothing_recorded(tmp_path: Path) -> None:
    board = Board(tmp_path, "orin-nano-jp6")
    report = restore_from_journal(board.tree, board.runner, board.state_dir)
    assert report == f"nothing to restore: no journal at {board.state_dir / 'baseline.json'}"


def test_restore_command_after_a_crash(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    p = board.platform()
    p.start()
    p.set_mode("MODE_10W_4CORE")
    p._lock.release()  # type: ignore[union-attr]  # the process died: the kernel drops its flock
    report = restore_from_journal(board.tree, board.runner, board.state_dir)
    assert report.startswith("restoring power mode MODE_10W_DESKTOP (id 5)")
    assert "power mode MODE_10W_4CORE → MODE_10W_DESKTOP" in report
    assert board.status() == "pmode:0005" and not board.journal.exists()


def test_current_mode_is_cached_for_a_few_seconds(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    p = board.platform()
    p.start()
    board.runner.run(["nvpmodel", "-m", "4"], 10.0)  # someone else switched
    assert p.current_mode().id == 5
    board.clock.advance(5.0)
    assert p.current_mode().id == 4
    p.stop(restore=False)


def test_stop_without_restore_keeps_board_and_journal(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    p = board.platform()
    p.start()
    p.set_mode("MODE_10W_4CORE")
    p.stop(restore=False)
    assert board.status() == "pmode:0004" and board.journal.exists()


def test_facts(tmp_path: Path) -> None:
    board = Board(tmp_path, "orin-nano-jp6")
    p = board.platform()
    p.start()
    facts = p.facts()
    assert facts["board"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert (facts["l4t"], facts["jetpack"]) == ("36.4.3", "6.2")
    assert facts["power_mode"] == "15W (id 0, GPU cap none)"
    assert facts["gpu_freq"] == "306 MHz–624.75 MHz in 5 steps, limits 306 MHz–624.75 MHz"
    assert [m.name for m in p.power_modes()] == ["15W", "7W"]
    p.stop()


def test_bad_on_conflict_value(tmp_path: Path) -> None:
    board = Board(tmp_path, "orin-nano-jp6")
    with pytest.raises(ConfigError, match="on_conflict must be one of refuse, leave_alone, got 'ignore'"):
        board.platform(on_conflict="ignore")


def test_probe_report_orin_nano(tmp_path: Path) -> None:
    board = Board(tmp_path, "orin-nano-jp6")
    report = probe_report(board.tree, board.runner, clock=board.clock)
    assert report["jetson"] is True
    assert report["board"]["model"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert report["board"]["l4t_release"] == "36.4.3"
    assert [(m["name"], m["current"], m["reachable_without_reboot"]) for m in report["power_modes"]] == [
        ("15W", True, True),
        ("7W", False, False),
    ]
    assert report["power_modes"][1]["gpu_max_freq_hz"] == 408_000_000
    assert report["current_mode"]["name"] == "15W" and report["default_mode_id"] == 0
    assert report["gpu"]["devfreq_dir"] == ORIN_DIR
    assert report["gpu"]["available_hz"] == list(ORIN_NANO_HZ)
    assert (report["gpu"]["max_hz"], report["gpu"]["pinned"]) == (624_750_000, False)
    sensors = report["sensors"]
    assert {z["name"] for z in sensors["thermal_zones"]} >= {"cpu", "gpu", "tj"}
    assert [r["name"] for r in sensors["rails"]] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert sensors["board_power_w"] == pytest.approx(5.024 * 0.960, abs=0.01)
    assert report["conflicts"] == [] and report["problems"] == []
    assert board.runner.set_calls == [] and board.tree.writes == []  # probing changes nothing


def test_probe_report_thor_without_conf(tmp_path: Path) -> None:
    board = Board(tmp_path, "thor")
    report = probe_report(board.tree, board.runner, clock=board.clock)
    assert report["board"]["soc"] == "t264"
    assert report["power_modes"] == [] and report["current_mode"] is None
    assert report["gpu"]["devfreq_dir"] == "/sys/devices/platform/gpu/devfreq/gpu-gpc-0"
    assert any("cannot read /etc/nvpmodel.conf" in p for p in report["problems"])


def test_probe_report_not_a_jetson(tmp_path: Path) -> None:
    report = probe_report(RecordingTree(tmp_path), FakeBoardRunner(tmp_path), clock=ManualClock())
    assert report["jetson"] is False and report["board"] is None and report["gpu"] is None
    assert "no GPU devfreq node found" in report["problems"]


class BlockingSwitchRunner(FakeBoardRunner):
    """`nvpmodel -m` blocks like a switch still under way, until cancel_running kills it (exit -9)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.switch_started = threading.Event()
        self.cancelled = threading.Event()

    def run(self, argv, timeout_s, on_start=None):  # type: ignore[no-untyped-def]
        if list(argv[:2]) != ["nvpmodel", "-m"] or self.cancelled.is_set():
            return super().run(argv, timeout_s, on_start)
        self.calls.append(list(argv))
        if on_start is not None:
            on_start(boardtrees.ChildProcess(boardtrees.FAKE_PID, None))
        self.switch_started.set()
        self.cancelled.wait(30)
        return boardtrees.result(argv, "", -9)

    def cancel_running(self) -> List[int]:
        self.cancelled.set()
        return [boardtrees.FAKE_PID]


def test_regression_stop_does_not_restore_while_a_switch_is_in_flight(tmp_path: Path, monkeypatch) -> None:
    """Issue 9, defect 1: stop restored (and cleared the journal) while the governor's `nvpmodel -m` was still
    running; it landed afterwards and the board's original mode was lost. Now stop waits, then kills the
    switch, re-applies the recorded mode and clears the journal only once the board reads back as restored."""
    import jetvit_daemon.hardware.jetson as jetson_module

    monkeypatch.setattr(jetson_module, "SWITCH_GRACE_S", 0.2)
    board = Board(tmp_path, "xavier-nx-jp5")
    board.runner = BlockingSwitchRunner(board.root, devfreq_dir=board.devfreq_dir, tree=board.tree)
    p = board.platform()
    p.start()
    errors: List[BaseException] = []

    def governor() -> None:
        try:
            p.set_mode("MODE_10W_4CORE")
        except ActuationError as exc:
            errors.append(exc)

    t = threading.Thread(target=governor)
    t.start()
    assert board.runner.switch_started.wait(10)
    journal = board.journal.load()
    assert journal is not None and journal.switch is not None
    assert (journal.switch.target_name, journal.switch.pid) == ("MODE_10W_4CORE", boardtrees.FAKE_PID)
    p.stop()
    t.join(10)
    assert errors and "was killed" in str(errors[0])
    # The interrupted switch may have written part of its settings: the recorded mode is written again.
    assert board.runner.set_calls[-1] == ["nvpmodel", "-m", "5"]
    assert board.status() == "pmode:0005" and not board.journal.exists()
    with pytest.raises(ActuationError, match="stopping"):
        p.set_mode("MODE_10W_4CORE")  # nothing new starts after stop


def test_a_switch_is_in_the_journal_only_while_it_runs(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    p = board.platform()
    p.start()
    during: List[Optional[Baseline]] = []

    def switch(argv):  # type: ignore[no-untyped-def]
        during.append(board.journal.load())
        board.tree.write_text("/var/lib/nvpmodel/status", "pmode:0004\n")
        return boardtrees.result(argv)

    board.runner.on_set = switch
    p.set_mode("MODE_10W_4CORE")
    rec = during[0].switch if during[0] is not None else None
    assert rec is not None and rec.argv == ["nvpmodel", "-m", "4"] and rec.pid == boardtrees.FAKE_PID
    after = board.journal.load()
    assert after is not None and after.switch is None and after.mode_name == "MODE_10W_DESKTOP"
    p.stop()


def test_regression_restore_after_sigkill_mid_switch_settles_the_orphan_first(tmp_path: Path) -> None:
    """Issue 9, defect 1 (SIGKILL, then `restore`): the journal records the in-flight switch; restore waits
    for or kills that process before restoring, then re-applies the mode."""
    board = Board(tmp_path, "xavier-nx-jp5")
    switch = boardtrees.SwitchRecord(target_id=4, target_name="MODE_10W_4CORE", argv=["nvpmodel", "-m", "4"],
                                     started_at=board.clock.time(), timeout_s=10.0, pid=777, start_ticks=99)
    board.journal.update(Baseline(board="x", mode_name="MODE_10W_DESKTOP", mode_id=5, gpu_devfreq_dir=None,
                                  gpu_min_hz=None, gpu_max_hz=None, recorded_at=0.0, pid=1, switch=switch))
    report = restore_from_journal(board.tree, board.runner, board.state_dir, clock=board.clock)
    assert board.runner.settled == [(["nvpmodel", "-m", "4"], boardtrees.ChildProcess(777, 99))]
    assert "in-flight switch to MODE_10W_4CORE" in report and "(re-applied)" in report
    assert board.runner.set_calls == [["nvpmodel", "-m", "5"]]  # forced, though the board reads 5 already
    assert not board.journal.exists()


def test_restore_keeps_the_journal_when_the_board_does_not_read_back_as_restored(tmp_path: Path) -> None:
    board = Board(tmp_path, "xavier-nx-jp5")
    p = board.platform()
    p.start()
    p.set_mode("MODE_10W_4CORE")
    p._lock.release()  # type: ignore[union-attr]  # killed
    board.runner.ignore_set = True  # nvpmodel says yes but the board stays
    report = restore_from_journal(board.tree, board.runner, board.state_dir)
    assert "NOT restored" in report and board.journal.exists()


class StarvedRunner(FakeBoardRunner):
    """Every program takes `cost_s` of real time to run (a process start on a CPU-starved machine: at nice 10
    under a load of 10 on 2 cores, the simulated board's Python nvpmodel took seconds per call); killed at its
    timeout when that is shorter."""

    cost_s = 0.0

    def run(self, argv, timeout_s, on_start=None):  # type: ignore[no-untyped-def]
        if self.cost_s > timeout_s:
            self.calls.append(list(argv))
            self.timeouts.append(timeout_s)
            time.sleep(timeout_s)
            return boardtrees.result(argv, "", None, timed_out=True)
        time.sleep(self.cost_s)
        return super().run(argv, timeout_s, on_start)


def _starved_board(tmp_path: Path, cost_s: float) -> Tuple[Board, JetsonPlatform]:
    board = Board(tmp_path, "xavier-nx-jp5")
    board.runner = StarvedRunner(board.root, devfreq_dir=XAVIER_DIR, tree=board.tree)
    p = board.platform()
    p.start()
    p.set_mode("MODE_10W_4CORE")
    board.runner.cost_s = cost_s
    board.runner.calls.clear()
    board.runner.timeouts.clear()
    return board, p


def test_regression_the_restore_on_stop_keeps_one_deadline_over_all_its_programs(tmp_path: Path,
                                                                                   caplog) -> None:
    # The soak's SIGTERM that was not honoured within 30 s: the restore ran systemctl, nvpmodel -q, -m, -q
    # and -q again, each with a full timeout of its own; starved, each took seconds, 5 of them overran the
    # service's stop budget (and TimeoutStopSec). Now each gets what is left of one deadline, and when
    # that runs out the stop ends on time, says what was not restored and keeps the journal.
    board, p = _starved_board(tmp_path, cost_s=1.0)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        p.stop(timeout_s=2.5)
    took_s = time.monotonic() - started
    assert took_s < 2.5 + 0.5, f"the stop took {took_s:.1f} s of its 2.5 s"
    assert board.journal.exists(), "not restored: the journal must stay for ExecStopPost / the next start"
    assert "restore failed: power mode NOT restored" in caplog.text
    assert all(t <= 2.5 for t in board.runner.timeouts)


def test_regression_the_restore_on_stop_reads_the_mode_back_once(tmp_path: Path) -> None:
    # With time enough it restores and reads back, with no query repeated: systemctl, -q, -m, -q.
    board, p = _starved_board(tmp_path, cost_s=0.2)
    p.stop(timeout_s=5.0)
    assert board.status() == "pmode:0005" and not board.journal.exists()
    assert [c[:2] for c in board.runner.calls] == [["systemctl", "is-system-running"], ["nvpmodel", "-q"],
                                                   ["nvpmodel", "-m"], ["nvpmodel", "-q"]]
