"""Start the real `jetvit-daemon run` process for integration tests and talk to it over HTTP."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

FAST_POLICY = {
    "version": 1,
    "interval_s": 0.2,
    "ladder": [
        {"name": "low", "mode": "15W", "gpu_cap_mhz": 408, "batch_size": 4},
        {"name": "top", "mode": "MAXN_SUPER", "gpu_cap_mhz": "max", "batch_size": 4},
    ],
    "start_state": "top",
    "dwell": {"min_state_s": 60, "up_after_s": 1, "down_after_s": 60},
}


def write_setup(tmp: Path, policy: Optional[dict] = None, **overrides) -> Dict[str, Path]:
    """A daemon.yaml and policy.yaml in `tmp`, with the state and the simulated board kept under `tmp`."""
    config = {
        "version": 1,
        "state_dir": str(tmp / "state"),
        "policy_file": str(tmp / "policy.yaml"),
        "simulator": {"board": "orin-nano-super", "root_dir": str(tmp / "board"), "tick_s": 0.1},
        "sources": [{"type": "synthetic", "fps": 30}],
        "telemetry": {"source": "tegrastats", "interval_s": 0.2},
        "http": {"host": "127.0.0.1", "port": 0},
        "status_interval_s": 1,
    }
    for key, value in overrides.items():
        config[key] = value
    (tmp / "daemon.yaml").write_text(yaml.safe_dump(config))
    (tmp / "policy.yaml").write_text(yaml.safe_dump(policy or FAST_POLICY))
    return {"config": tmp / "daemon.yaml", "policy": tmp / "policy.yaml", "board": tmp / "board",
            "state": tmp / "state"}


class DaemonProcess:
    """The daemon as a child process; collects its log lines on a thread."""

    def __init__(self, config: Path, *extra: str, prefix: Sequence[str] = (),
                 env: Optional[Dict[str, str]] = None) -> None:
        # prefix: a command the daemon runs under, e.g. setpriv to drop a capability (tests/faults).
        # env: variables added to the daemon's environment (what systemd sets, e.g. STATE_DIRECTORY).
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "jetvit_daemon", "run", "--config", str(config), *extra],
            env=None if env is None else {**os.environ, **env},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: List[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port: Optional[int] = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, pattern: str, timeout_s: float = 30.0) -> "re.Match[str]":
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = regex.search(line)
                if m:
                    return m
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no log line matching {pattern!r}; log so far:\n{self.log}")

    def wait_ready(self, timeout_s: float = 60.0) -> int:
        m = self.wait_for_log(r"metrics: http://127\.0\.0\.1:(\d+)/metrics", timeout_s)
        self.port = int(m.group(1))
        # HTTP starts first (so /readyz can say "starting"): ready means every stage runs and a batch was done.
        self.wait_for_log(r"ready: first inference done", timeout_s)
        return self.port

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
            return resp.read().decode()

    def metrics(self) -> Dict[str, float]:
        """Metric samples by their full name with labels, e.g. 'jetvit_board_power_mode{mode="25W"}'."""
        out = {}
        for line in self.get("/metrics").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def wait_metric(self, name: str, value: float, timeout_s: float = 10.0) -> None:
        """Wait until the metric sample `name` reads `value` (a state is applied a moment after it is logged)."""
        deadline = time.monotonic() + timeout_s
        while self.metrics().get(name) != value:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} is {self.metrics().get(name)}, not {value}; log:\n{self.log}")
            time.sleep(0.05)

    def terminate(self, timeout_s: float = 10.0) -> float:
        """SIGTERM and wait; returns the seconds it took to exit."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout_s)
        self._reader.join(2)
        return time.monotonic() - start

    def kill(self) -> None:
        """Make sure the process is gone and its pipe closed (call in `finally`)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(2)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def board_mode_id(board_root: Path) -> int:
    """The simulated board's persisted nvpmodel mode (`pmode:000N`, as in /var/lib/nvpmodel/status)."""
    text = (board_root / "var" / "lib" / "nvpmodel" / "status").read_text().strip()
    return int(text.split(":")[1])
