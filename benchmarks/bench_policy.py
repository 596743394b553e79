"""The shipped default policy against the baselines, on the simulated Orin Nano Super, per scenario and seed:
energy per frame, SLO violations, throttling and actuations, and whether the project's goals hold.

    .venv/bin/python benchmarks/bench_policy.py [--seeds 0,1,2] [--write docs/PERFORMANCE.md]

Goals (issue "Governor and policy file"): on steady and bursty at least 25% less energy per frame than
static:MAXN_SUPER with at most 1% SLO violations; no time throttled on hot (where static:MAXN_SUPER is); less
energy per frame than threshold with at most a tenth of its actuations. With --write, the table replaces the
section between the markers in the given file.
"""

import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from jetvit_daemon.governor.policy import DEFAULT_POLICY_FILE
from jetvit_daemon.sim.offline import simulate
from jetvit_daemon.sim.scenario import load_scenario

BOARD = "orin-nano-super"
START, END = "<!-- bench_policy:start -->", "<!-- bench_policy:end -->"
CONTROLLERS = (("policy", str(DEFAULT_POLICY_FILE)), ("static:MAXN_SUPER", "static:MAXN_SUPER"),
               ("threshold", "threshold"))


def run(seeds: List[int]) -> Tuple[List[str], List[str]]:
    rows = ["| scenario | seed | controller | energy/frame (J) | vs MAXN_SUPER | SLO violations | throttled (s) | "
            "actuations | mean power (W) |", "|---|---|---|---|---|---|---|---|---|"]
    verdicts: List[str] = []
    for scenario in ("steady", "bursty", "hot", "budget"):
        for seed in seeds:
            r: Dict[str, Dict] = {name: simulate(BOARD, spec, load_scenario(scenario), seed=seed).summary
                                  for name, spec in CONTROLLERS}
            maxn = r["static:MAXN_SUPER"]
            for name, _ in CONTROLLERS:
                s = r[name]
                rows.append(f"| {scenario} | {seed} | {name} | {s['energy_per_frame_j']:.4f} | "
                            f"{s['energy_per_frame_j'] / maxn['energy_per_frame_j'] - 1:+.1%} | "
                            f"{s['slo_violation_ratio']:.2%} | {s['throttled_s']:.0f} | {s['actuations']} | "
                            f"{s['mean_power_w']:.2f} |")
            p, t = r["policy"], r["threshold"]
            if scenario in ("steady", "bursty"):
                saving = 1 - p["energy_per_frame_j"] / maxn["energy_per_frame_j"]
                beats = p["energy_per_frame_j"] < t["energy_per_frame_j"] and 10 * p["actuations"] <= t["actuations"]
                verdicts.append(f"{scenario} seed {seed}: {saving:.1%} less energy per frame than MAXN_SUPER "
                                f"(goal ≥ 25%: {'met' if saving >= 0.25 else 'MISSED'}), "
                                f"{p['slo_violation_ratio']:.2%} SLO violations (goal ≤ 1%: "
                                f"{'met' if p['slo_violation_ratio'] <= 0.01 else 'MISSED'}); vs threshold: "
                                f"{p['energy_per_frame_j'] / t['energy_per_frame_j'] - 1:+.1%} energy per frame, "
                                f"{p['actuations']} vs {t['actuations']} actuations (goal: less energy and ≤ a "
                                f"tenth: {'met' if beats else 'MISSED'})")
            if scenario == "hot":
                ok = p["throttled_s"] == 0 and maxn["throttled_s"] > 0
                verdicts.append(f"hot seed {seed}: policy throttled {p['throttled_s']:.0f} s, static:MAXN_SUPER "
                                f"{maxn['throttled_s']:.0f} s (goal: none where MAXN_SUPER is: "
                                f"{'met' if ok else 'MISSED'})")
            print(f"{scenario} seed {seed} done", file=sys.stderr, flush=True)
    return rows, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--write", type=Path, default=None, metavar="FILE")
    args = parser.parse_args()
    rows, verdicts = run([int(s) for s in args.seeds.split(",")])
    body = "\n".join(rows) + "\n\n" + "\n".join(f"- {v}" for v in verdicts)
    print(body)
    if args.write is not None:
        text = args.write.read_text(encoding="utf-8")
        section = f"{START}\n{body}\n{END}"
        if START in text:
            text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: section, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        args.write.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
