"""Fixtures for the simulated-board tests: fresh board trees and a way to run the emulators as the daemon
does (a real subprocess through `SubprocessRunner`, stdin closed)."""

import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

from jetvit_daemon.sim.live import create_tree

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "jetson-reference"


class FastClock:
    """A monotonic clock running `factor` times faster than real time, so a live board covers minutes of
    thermal time in a second of test. Thread-safe (stateless apart from its start)."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._t0 = time.monotonic()

    def monotonic(self) -> float:
        return 1000.0 + (time.monotonic() - self._t0) * self.factor

    def time(self) -> float:
        return time.time()


@pytest.fixture
def fast_clock() -> Callable[[float], FastClock]:
    """fast_clock(200.0) -> a clock running 200 times faster than real time."""
    return FastClock


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[..., Path]:
    """make_tree("orin-nano", mode_id=1) -> root of a freshly booted simulated board under tmp_path."""
    count = [0]

    def make(profile: str, mode_id: Optional[int] = None, ambient_c: float = 25.0) -> Path:
        count[0] += 1
        root = tmp_path / f"{profile}-{count[0]}"
        create_tree(profile, root, ambient_c=ambient_c, mode_id=mode_id)
        return root

    return make


@pytest.fixture
def emulator() -> Callable[..., "subprocess.CompletedProcess[str]"]:
    """emulator(root, "nvpmodel", "-q", stdin_text=None, timeout_s=10) -> CompletedProcess (stdin closed
    unless stdin_text is given)."""

    def run(root: Path, tool: str, *args: str, stdin_text: Optional[str] = None,
            timeout_s: float = 10.0) -> "subprocess.CompletedProcess[str]":
        argv: List[str] = [sys.executable, "-m", "jetvit_daemon.sim.emulators", tool, "--root", str(root)]
        argv.extend(args)
        return subprocess.run(
            argv,
            input=stdin_text,
            stdin=subprocess.DEVNULL if stdin_text is None else None,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    return run


@pytest.fixture
def reference() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"jetson-reference data not found at {REFERENCE}")
    return REFERENCE
