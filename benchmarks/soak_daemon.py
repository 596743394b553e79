"""Soak: run the real daemon on the simulated board for a while, with churn (policy edits, SIGHUPs, bad edits,
telemetry outages), and sample its resident memory, thread count and open file descriptors from /proc, and
those of its inference worker process (runners/worker.py; its pid from /status, followed across restarts).

    nice -n 10 .venv/bin/python benchmarks/soak_daemon.py --seconds 600 --sample-s 10

Prints one line per sample and a summary: each quantity's first-minute median against its last-minute median
(a ratio near 1.00 is flat; a leak shows as growth proportional to run time), and for the daemon's and the
worker's RSS the drift in MB against issue 12's goal (flat within ± 5 MB over the run: every sample after the
first minute within 5 MB of the first minute's median). Results: docs/RELIABILITY.md.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Set

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "service"))
from daemon_process import FAST_POLICY, DaemonProcess, write_setup

from jetvit_daemon.sim.emulators import write_faults


def sample(pid: int) -> Dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


RSS_GOAL_MB = 5.0  # issue 12: the daemon's and the worker's RSS flat within ± 5 MB over a 10-minute run
MB_PER_MIB = 2**20 / 1e6


def worker_pid(daemon: DaemonProcess) -> Optional[int]:
    """The inference worker's pid as /status reports it (None while it restarts)."""
    pid = json.loads(daemon.get("/status")).get("inference", {}).get("pid")
    return pid if isinstance(pid, int) else None


def sample_both(daemon: DaemonProcess, worker_pids: Set[int]) -> Dict[str, float]:
    """The daemon's sample plus the worker's (keys prefixed worker_; absent while it restarts)."""
    s = sample(daemon.proc.pid)
    pid = worker_pid(daemon)
    if pid is not None:
        try:
            s.update({f"worker_{k}": v for k, v in sample(pid).items()})
            worker_pids.add(pid)
        except (OSError, KeyError):  # it was replaced between the two reads
            pass
    return s


def rss_drift(samples: List[Dict[str, float]], key: str, window: int) -> str:
    """Issue 12's check on one RSS series: every sample after the first minute within RSS_GOAL_MB of the first
    minute's median."""
    values = [x[key] for x in samples if key in x]
    if len(values) <= window:
        return f"{key}: too few samples"
    base = statistics.median(values[:window])
    later = values[window:]
    low, high = (min(later) - base) * MB_PER_MIB, (max(later) - base) * MB_PER_MIB
    verdict = "flat" if max(abs(low), abs(high)) <= RSS_GOAL_MB else "NOT flat"
    return (f"{key}: after the first minute {low:+.1f} .. {high:+.1f} MB from its median {base * MB_PER_MIB:.1f} MB "
            f"({verdict}: goal ± {RSS_GOAL_MB:g} MB)")


def thread_dump(pid: int) -> str:
    """Every thread's Python stack of a hung daemon, by py-spy (pip install py-spy) when it is installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "  (py-spy not installed: no stacks)"
    done = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--sample-s", type=float, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="jetvit-soak-"))
    policy = dict(FAST_POLICY, stale_telemetry={"after_s": 1.0, "state": "low"})
    setup = write_setup(tmp, policy=policy)
    daemon = DaemonProcess(setup["config"])
    samples: List[Dict[str, float]] = []
    churn = {"reloads": 0, "bad_edits": 0, "outages": 0}
    worker_pids: Set[int] = set()
    try:
        daemon.wait_ready(60)
        start = time.monotonic()
        next_sample = start
        step = 0
        while time.monotonic() - start < args.seconds:
            now = time.monotonic()
            if now >= next_sample:
                s = sample_both(daemon, worker_pids)
                s["t_s"] = now - start
                samples.append(s)
                print(f"t {s['t_s']:7.0f} s  rss {s['rss_mib']:6.1f} MiB  threads {s['threads']:3.0f}  "
                      f"fds {s['fds']:3.0f}  worker rss {s.get('worker_rss_mib', float('nan')):6.1f} MiB  "
                      f"threads {s.get('worker_threads', float('nan')):3.0f}  fds "
                      f"{s.get('worker_fds', float('nan')):3.0f}", flush=True)
                next_sample += args.sample_s
            # Churn every 5 s, in a cycle: a good edit, SIGHUP, a bad edit, a telemetry outage and its end.
            phase = step % 5
            if phase == 0:
                batch = 2 if (step // 5) % 2 else 4
                edited = dict(policy, ladder=[policy["ladder"][0], dict(policy["ladder"][1], batch_size=batch)])
                setup["policy"].write_text(yaml.safe_dump(edited))
                churn["reloads"] += 1
            elif phase == 1:
                daemon.proc.send_signal(signal.SIGHUP)
                churn["reloads"] += 1
            elif phase == 2:
                setup["policy"].write_text("version: 1\nladder: [{name: x, mode: TURBO}]\n")
                churn["bad_edits"] += 1
            elif phase == 3:
                write_faults(setup["board"], {"tegrastats": "hang"})
                churn["outages"] += 1
            else:
                write_faults(setup["board"], {})
            step += 1
            time.sleep(5)
        try:
            stopped = f"stopped in {daemon.terminate(30):.1f} s"
        except subprocess.TimeoutExpired:
            stopped = ("DID NOT STOP within 30 s of SIGTERM; its threads:\n" + thread_dump(daemon.proc.pid)
                       + "\nits last lines:\n  " + "\n  ".join(daemon.lines[-25:]))
    finally:
        daemon.kill()
    print(f"churn: {churn}; {stopped}, exit {daemon.proc.returncode}; inference worker pids seen: "
          f"{sorted(worker_pids)} ({len(worker_pids) - 1} restarts)")
    journal = setup["state"] / "baseline.json"
    if journal.exists():  # the stop ran out of time before the board read back as restored: what ExecStopPost does
        done = subprocess.run([sys.executable, "-m", "jetvit_daemon", "restore", "--config", str(setup["config"])],
                              capture_output=True, text=True, timeout=120)
        print(f"journal kept by the stop; `jetvit-daemon restore` (ExecStopPost) exit {done.returncode}: "
              f"{done.stdout.strip()} {done.stderr.strip()}")
    else:
        print("board restored by the daemon's own stop (no journal left)")
    window = max(1, int(60 / args.sample_s))
    first, last = samples[:window], samples[-window:]
    for key in ("rss_mib", "threads", "fds", "worker_rss_mib", "worker_threads", "worker_fds"):
        a = statistics.median(x[key] for x in first if key in x)
        b = statistics.median(x[key] for x in last if key in x)
        print(f"{key:14} first minute {a:7.1f}  last minute {b:7.1f}  ratio {b / a:5.2f}  "
              f"max {max(x[key] for x in samples if key in x):7.1f}")
    for key in ("rss_mib", "worker_rss_mib"):
        print(rss_drift(samples, key, window))
    return 0 if daemon.proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
