"""Soak: run the real daemon on the simulated board for a while, with churn (policy edits, SIGHUPs, bad edits,
telemetry outages), and sample its resident memory, thread count and open file descriptors from /proc.

    .venv/bin/python benchmarks/soak_daemon.py --seconds 600 --sample-s 10

Prints one line per sample and a summary: each quantity's first-minute median against its last-minute median
(a ratio near 1.00 is flat; a leak shows as growth proportional to run time). Results: docs/RELIABILITY.md.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "service"))
from daemon_process import FAST_POLICY, DaemonProcess, write_setup

from jetvit_daemon.sim.emulators import write_faults


def sample(pid: int) -> Dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


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
    try:
        daemon.wait_ready(60)
        start = time.monotonic()
        next_sample = start
        step = 0
        while time.monotonic() - start < args.seconds:
            now = time.monotonic()
            if now >= next_sample:
                s = sample(daemon.proc.pid)
                s["t_s"] = now - start
                samples.append(s)
                print(f"t {s['t_s']:7.0f} s  rss {s['rss_mib']:6.1f} MiB  threads {s['threads']:3.0f}  "
                      f"fds {s['fds']:3.0f}", flush=True)
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
    print(f"churn: {churn}; {stopped}, exit {daemon.proc.returncode}")
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
    for key in ("rss_mib", "threads", "fds"):
        a, b = statistics.median(x[key] for x in first), statistics.median(x[key] for x in last)
        print(f"{key:8} first minute {a:7.1f}  last minute {b:7.1f}  ratio {b / a:5.2f}  "
              f"max {max(x[key] for x in samples):7.1f}")
    return 0 if daemon.proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
