"""The one door to the board's programs (tegrastats, nvpmodel, systemctl, jetson_clocks).

`SubprocessRunner` runs real programs. On the simulated board it is given a `programs` map that points a
program name (`nvpmodel`) at the emulator's command line; nothing else changes, so the code that drives the
real tool runs unchanged against the emulator.
"""

import os
import signal
import subprocess
from dataclasses import dataclass
from typing import IO, Dict, List, Mapping, Optional, Protocol, Sequence


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

    def run(self, argv: Sequence[str], timeout_s: float) -> CommandResult:
        """Run to completion with stdin closed, so an interactive prompt reads EOF instead of waiting."""
        ...

    def spawn(self, argv: Sequence[str]) -> StreamingProcess:
        """Start a long-running program with a line-buffered text stdout pipe and stdin closed."""
        ...


class SubprocessRunner:
    """Runs programs with `subprocess`. Thread-safe.

    `programs` maps a program name to the argv prefix that replaces it, e.g.
    `{"nvpmodel": [sys.executable, "-m", "jetvit_daemon.sim.emulators", "nvpmodel", "--root", root]}`.
    """

    def __init__(self, programs: Optional[Mapping[str, Sequence[str]]] = None) -> None:
        self._programs: Dict[str, List[str]] = {k: list(v) for k, v in (programs or {}).items()}

    def resolve(self, argv: Sequence[str]) -> List[str]:
        if not argv:
            raise ValueError("empty command")
        prefix = self._programs.get(argv[0])
        return (prefix + list(argv[1:])) if prefix is not None else list(argv)

    def run(self, argv: Sequence[str], timeout_s: float) -> CommandResult:
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
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            return CommandResult(argv=list(argv), returncode=None, stdout=out, stderr=err, timed_out=True)
        return CommandResult(argv=list(argv), returncode=proc.returncode, stdout=out, stderr=err)

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
