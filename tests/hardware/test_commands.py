"""The command runner supervises its children: a stop kills what `run` waits for, and a child started by a
daemon that died since is found again (by pid and start time, or by its exact command line), waited for, then
killed. Real processes (`sleep`, `sh`)."""

import os
import subprocess
import threading
import time

import pytest

from jetvit_daemon.errors import ActuationError
from jetvit_daemon.hardware.commands import ChildProcess, SubprocessRunner


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _orphan(seconds: str) -> "subprocess.Popen[bytes]":
    """A child in its own session, as the daemon's nvpmodel is; reaped by a thread like init would."""
    proc = subprocess.Popen(["sleep", seconds], start_new_session=True)
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc


def test_cancel_running_kills_the_child_a_run_waits_for_and_everything_it_started():
    runner = SubprocessRunner()
    seen = []
    out = {}
    t = threading.Thread(target=lambda: out.update(r=runner.run(["sh", "-c", "sleep 60 & echo $!; wait"], 120,
                                                                  on_start=seen.append)))
    t.start()
    deadline = time.monotonic() + 20
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # let sh start its sleep
    assert runner.cancel_running() == [seen[0].pid]
    t.join(20)
    assert not t.is_alive()
    result = out["r"]
    assert result.returncode == -9 and not result.ok
    grandchild = int(result.stdout.split()[0])
    assert not _alive(grandchild)  # the whole process group went
    assert seen[0].start_ticks is not None


def test_run_never_returns_while_its_child_runs_even_when_on_start_fails():
    runner = SubprocessRunner()
    started = []

    def fail(child: ChildProcess) -> None:
        started.append(child.pid)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        runner.run(["sleep", "60"], 60, on_start=fail)
    assert not _alive(started[0])


def test_settle_waits_for_an_orphan_that_finishes_in_time():
    runner = SubprocessRunner()
    proc = _orphan("0.5")
    child = ChildProcess(proc.pid, runner._start_ticks(proc.pid))
    assert "finished by itself" in runner.settle(["sleep", "0.5"], child, wait_s=20)


def test_settle_kills_an_orphan_still_running_at_its_deadline():
    runner = SubprocessRunner()
    proc = _orphan("60")
    child = ChildProcess(proc.pid, runner._start_ticks(proc.pid))
    started = time.monotonic()
    assert "killed at its deadline" in runner.settle(["sleep", "60"], child, wait_s=0.3)
    assert time.monotonic() - started < 20 and not _alive(proc.pid)


def test_settle_without_a_recorded_pid_finds_the_program_by_its_exact_command_line():
    runner = SubprocessRunner({"nvpmodel": ["sleep"]})  # as the simulated board maps nvpmodel to its emulator
    proc = _orphan("61")
    # Popen returns once exec has begun; the kernel sets the new command line a moment later (load_elf_binary).
    deadline = time.monotonic() + 20
    while runner._cmdline(proc.pid) != ["sleep", "61"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "killed" in runner.settle(["nvpmodel", "61"], None, wait_s=0.2)
    assert not _alive(proc.pid)
    assert runner.settle(["nvpmodel", "61"], None, wait_s=0.2).endswith("is not running")


def test_a_reused_pid_is_not_mistaken_for_the_recorded_child():
    runner = SubprocessRunner()
    me = ChildProcess(os.getpid(), start_ticks=1)  # our own pid, but another start time: not that child
    assert runner.settle(["nvpmodel", "-m", "2"], me, wait_s=0.1).endswith("is not running")


def test_settle_reports_a_child_it_may_not_kill(monkeypatch):
    runner = SubprocessRunner()
    proc = _orphan("60")
    try:
        def denied(pid: int, sig: int) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "killpg", denied)
        with pytest.raises(ActuationError, match=r"cannot kill 'sleep 60' \(pid \d+\): Operation not permitted"):
            runner.settle(["sleep", "60"], ChildProcess(proc.pid, None), wait_s=0.1)
    finally:
        monkeypatch.undo()
        proc.kill()
