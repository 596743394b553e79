"""The one door to the board's programs (tegrastats, nvpmodel, systemctl, jetson_clocks).

`SubprocessRunner` runs real programs. On the simulated board it is given a `programs` map that points a
program name (`nvpmodel`) at the emulator's command line; nothing else changes, so the code that drives the
real tool runs unchanged against the emulator.
"""

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Set

from jetvit_daemon.errors import ActuationError

# How long a killed process group may take to disappear (SIGKILL is not ignorable; only a task stuck in
# uninterruptible sleep outlives it, and then the kill has failed).
KILL_WAIT_S = 5.0
_POLL_S = 0.05


@dataclass(frozen=True)
class ChildProcess:
    """A started child, identified well enough to find it again after the daemon died: its pid and its start
    time (`/proc/PID/stat` field 22, clock ticks since boot), so a reused pid is not mistaken for it."""

    pid: int
    start_ticks: Optional[int]


@dataclass(frozen=True)
class CommandResult:
    """What a finished (or timed-out) command left behind."""

    argv: Sequence[str]
    returncode: Optional[int]  # None when it was killed at its timeout
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.returncode == 0

    def describe(self) -> str:
        """One line for logs: the command and how it ended."""
        cmd = " ".join(self.argv)
        if self.timed_out:
            return f"{cmd!r} timed out"
        return f"{cmd!r} exited {self.returncode}"


class StreamingProcess(Protocol):
    """A long-running child whose stdout is read line by line (tegrastats)."""

    stdout: Optional[IO[str]]

    def poll(self) -> Optional[int]: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: Optional[float] = None) -> int: ...


class CommandRunner(Protocol):
    """Runs board programs. Implementations must be thread-safe."""

    def run(self, argv: Sequence[str], timeout_s: float,
            on_start: Optional[Callable[[ChildProcess], None]] = None) -> CommandResult:
        """Run to completion with stdin closed, so an interactive prompt reads EOF instead of waiting.
        `on_start` is told the child once it runs. Never returns while the child (or its group) still runs."""
        ...

    def spawn(self, argv: Sequence[str]) -> StreamingProcess:
        """Start a long-running program with a line-buffered text stdout pipe and stdin closed."""
        ...

    def cancel_running(self) -> List[int]:
        """Kill every child a `run` call is waiting for (their `run` returns as timed out); their pids."""
        ...

    def settle(self, argv: Sequence[str], child: Optional[ChildProcess], wait_s: float) -> str:
        """Make sure the program `argv` started earlier (perhaps by a process that has died since) no longer
        runs: wait up to `wait_s` for it to end, then kill its process group. `child`
        names it; None means it was started but its pid was never recorded: then any process running exactly
        `argv` counts. Returns what happened, for logs; ActuationError when it cannot be stopped."""
        ...


class SubprocessRunner:
    """Runs programs with `subprocess`. Thread-safe.

    `programs` maps a program name to the argv prefix that replaces it, e.g.
    `{"nvpmodel": [sys.executable, "-m", "jetvit_daemon.sim.emulators", "nvpmodel", "--root", root]}`.
    """

    def __init__(self, programs: Optional[Mapping[str, Sequence[str]]] = None, proc_root: str = "/proc") -> None:
        self._programs: Dict[str, List[str]] = {k: list(v) for k, v in (programs or {}).items()}
        self._proc_root = proc_root  # the process table (the host's, also on the simulated board)
        self._lock = threading.Lock()
        self._running: Set[subprocess.Popen[str]] = set()

    def resolve(self, argv: Sequence[str]) -> List[str]:
        if not argv:
            raise ValueError("empty command")
        prefix = self._programs.get(argv[0])
        return (prefix + list(argv[1:])) if prefix is not None else list(argv)

    def run(self, argv: Sequence[str], timeout_s: float,
            on_start: Optional[Callable[[ChildProcess], None]] = None) -> CommandResult:
        full = self.resolve(argv)
        try:
            proc = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                universal_newlines=True,
                # Own process group, so a timeout kills the program and anything it started.
                start_new_session=True,
            )
        except OSError as exc:
            return CommandResult(argv=list(argv), returncode=127, stdout="", stderr=str(exc))
        with self._lock:
            self._running.add(proc)
        try:
            if on_start is not None:
                on_start(ChildProcess(proc.pid, self._start_ticks(proc.pid)))
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            return CommandResult(argv=list(argv), returncode=None, stdout=out, stderr=err, timed_out=True)
        except BaseException:
            _kill_group(proc)  # whatever interrupted us, the child does not outlive this call
            proc.communicate()
            raise
        finally:
            with self._lock:
                self._running.discard(proc)
        return CommandResult(argv=list(argv), returncode=proc.returncode, stdout=out, stderr=err)

    def cancel_running(self) -> List[int]:
        with self._lock:
            procs = list(self._running)
        for proc in procs:
            _kill_group(proc)
        return [p.pid for p in procs]

    def _start_ticks(self, pid: int) -> Optional[int]:
        """The process's start time, or None when there is no such process (or only its zombie)."""
        try:
            with open(f"{self._proc_root}/{pid}/stat", encoding="ascii", errors="replace") as f:
                text = f.read()
        except OSError:
            return None
        # `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so split after the last ')'.
        fields = text[text.rfind(")") + 2 :].split()
        if not fields or fields[0] in ("Z", "X"):
            return None  # a zombie has finished: nothing of it can still write to the board
        try:
            return int(fields[19])  # field 22 of proc(5): fields[0] is field 3 (the state)
        except (IndexError, ValueError):
            return None

    def _cmdline(self, pid: int) -> Optional[List[str]]:
        try:
            with open(f"{self._proc_root}/{pid}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            return None
        return [w.decode("utf-8", "replace") for w in raw.split(b"\0")[:-1]]

    def _matching(self, argv: Sequence[str], child: Optional[ChildProcess]) -> List[int]:
        """The live processes that are the child: by pid and start time, or (no pid known) by exact argv."""
        if child is not None:
            ticks = self._start_ticks(child.pid)
            if ticks is None or (child.start_ticks is not None and ticks != child.start_ticks):
                return []  # gone, or the pid now belongs to another process
            return [child.pid]
        full = self.resolve(argv)
        try:
            pids = [int(name) for name in os.listdir(self._proc_root) if name.isdigit()]
        except OSError:
            return []
        return [pid for pid in pids
                if pid != os.getpid() and self._cmdline(pid) == full and self._start_ticks(pid) is not None]

    def settle(self, argv: Sequence[str], child: Optional[ChildProcess], wait_s: float) -> str:
        cmd = " ".join(argv)
        pids = self._matching(argv, child)
        if not pids:
            return f"{cmd!r} is not running"
        deadline_s = time.monotonic() + wait_s
        while time.monotonic() < deadline_s:
            time.sleep(_POLL_S)
            pids = self._matching(argv, child)
            if not pids:
                return f"{cmd!r} (pid {child.pid if child else '?'}) finished by itself"
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)  # started with its own session: its pgid is its pid
            except ProcessLookupError:
                pass
            except PermissionError as exc:
                raise ActuationError(f"cannot kill {cmd!r} (pid {pid}): {exc.strerror}") from None
        end = time.monotonic() + KILL_WAIT_S
        while self._matching(argv, child):
            if time.monotonic() > end:
                raise ActuationError(f"{cmd!r} (pid {', '.join(map(str, pids))}) survived SIGKILL for "
                                     f"{KILL_WAIT_S:g} s")
            time.sleep(_POLL_S)
        return f"{cmd!r} (pid {', '.join(map(str, pids))}) killed at its deadline"

    def spawn(self, argv: Sequence[str]) -> StreamingProcess:
        return subprocess.Popen(
            self.resolve(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            universal_newlines=True,
            bufsize=1,
            start_new_session=True,
        )


def _kill_group(proc: "subprocess.Popen[str]") -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
