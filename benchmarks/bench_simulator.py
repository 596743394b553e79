"""Speed of the offline simulator: simulated seconds per wall-clock second, per scenario and controller.

    .venv/bin/python benchmarks/bench_simulator.py [--board orin-nano-super] [--duration 3600]

The goal is at least 1000× real time (a one-hour scenario in under 4 s on the project's 2-core machine).
Results are recorded in docs/PERFORMANCE.md.
"""

import argparse
import time

from jetvit_daemon.governor.policy import DEFAULT_POLICY_FILE
from jetvit_daemon.sim.offline import simulate
from jetvit_daemon.sim.scenario import builtin_scenarios, load_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="orin-nano-super")
    parser.add_argument("--duration", type=float, default=3600.0)
    args = parser.parse_args()
    print(f"board {args.board}, {args.duration:.0f} simulated seconds per run")
    for scenario in builtin_scenarios():
        for spec, label in ((str(DEFAULT_POLICY_FILE), "default policy"), ("threshold", "threshold")):
            start = time.perf_counter()
            simulate(args.board, spec, load_scenario(scenario), duration_s=args.duration)
            wall_s = time.perf_counter() - start
            print(f"{scenario:<8} {label:<15} {wall_s:5.2f} s wall  {args.duration / wall_s:8.0f}× real time",
                  flush=True)


if __name__ == "__main__":
    main()
