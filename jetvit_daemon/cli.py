"""The command line: `jetvit-daemon run`, plus tools around it. The only `sys.exit` of the program lives here.

Exit status: 0 success; 1 the daemon stopped because a worker died (systemd restarts it); 2 bad configuration,
policy or usage; 3 the model or engine cannot be loaded; 4 hardware actuation failed.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from jetvit_daemon import __version__
from jetvit_daemon.config import BOARD_NAMES
from jetvit_daemon.errors import ActuationError, ConfigError, EngineError, JetvitError, PolicyError

log = logging.getLogger("jetvit_daemon")


def _cmd_run(args: argparse.Namespace) -> int:
    from jetvit_daemon.config import load_config
    from jetvit_daemon.service.app import run_daemon
    from jetvit_daemon.service.logs import setup_logging

    config = load_config(args.config)
    setup_logging(config.log_level, config.log_format)
    # systemd's watchdog ends a wedged daemon with SIGABRT (WatchdogSignal=): dump every thread's stack to
    # stderr (the journal) first, so the hang can be located.
    import faulthandler

    faulthandler.enable(file=sys.stderr, all_threads=True)
    log.info("jetvit-daemon %s starting (config: %s)", __version__, args.config or "built-in defaults")
    return run_daemon(config, policy_path=args.policy, duration_s=args.duration)


def _cmd_status(args: argparse.Namespace) -> int:
    import json
    import urllib.error
    import urllib.request

    from jetvit_daemon.config import load_config
    from jetvit_daemon.service.status import format_status

    url = args.url
    if url is None:
        http = load_config(args.config).http
        # Where the daemon listens on every address, ask it on loopback.
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(http.host, http.host)
        url = "http://{}:{}".format(f"[{host}]" if ":" in host else host, http.port)
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/status", timeout=args.timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"jetvit-daemon is not answering at {url}: {reason}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=1) if args.json else format_status(data))
    return 0 if data.get("ready") else 1


def _open_board_for_tool(args: argparse.Namespace) -> Any:
    from jetvit_daemon.clock import SystemClock
    from jetvit_daemon.config import load_config
    from jetvit_daemon.service.board import open_board

    config = load_config(args.config)
    return config, open_board(config, SystemClock())


def _cmd_restore(args: argparse.Namespace) -> int:
    from jetvit_daemon.clock import SystemClock
    from jetvit_daemon.config import load_config
    from jetvit_daemon.hardware.baseline import BaselineJournal
    from jetvit_daemon.hardware.jetson import restore_from_journal
    from jetvit_daemon.hardware.probe import acquire_instance_lock, system_is_stopping
    from jetvit_daemon.service.board import close_board, open_board

    config = load_config(args.config)
    state_dir = config.resolved_state_dir()
    # The lock first: while a daemon runs, refuse before starting anything on its (simulated) board.
    with acquire_instance_lock(state_dir) as lock:
        board = open_board(config, SystemClock())
        try:
            if system_is_stopping(board.runner):
                # nvpmodel's mode survives the reboot: the next start restores from the journal, kept as it is.
                print("the system is shutting down: restore skipped, journal kept for the next start")
                return 0
            print(restore_from_journal(board.tree, board.runner, state_dir, config.hardware.nvpmodel_timeout_s,
                                       lock=lock))
            return 4 if BaselineJournal(state_dir).exists() else 0
        finally:
            close_board(board)


def _cmd_probe(args: argparse.Namespace) -> int:
    import json

    from jetvit_daemon.hardware.jetson import probe_report
    from jetvit_daemon.service.board import close_board

    config, board = _open_board_for_tool(args)
    try:
        report = probe_report(board.tree, board.runner, config.hardware.nvpmodel_timeout_s)
    finally:
        close_board(board)
    report["simulated"] = board.sim is not None
    # "jetson": is this a real board. The simulated one carries a Jetson's files (device tree, L4T release),
    # which is how its identity reaches the "board" section, but scripts asking "am I on a Jetson?" must hear no.
    report["jetson"] = bool(report["jetson"]) and board.sim is None
    report["description"] = board.description
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print(format_probe(report))
    return 0


def format_probe(report: Dict[str, Any]) -> str:
    """The probe report for people: one section per subject."""
    out = [f"board: {report['description']}"]
    board = report.get("board") or {}
    if board:
        out.append(f"  model {board.get('model')}, SoC {board.get('soc')}, L4T {board.get('l4t_release')}, "
                   f"JetPack {board.get('jetpack') or 'unknown'}")
    out.append("power modes (* current, ~ needs a reboot from the current one):")
    for m in report.get("power_modes", []):
        mark = "*" if m.get("current") else ("~" if not m.get("reachable_without_reboot") else " ")
        cap = m.get("gpu_max_freq_hz")
        cap_text = "GPU uncapped" if cap is None else f"GPU ≤ {cap / 1e6:.0f} MHz"
        out.append(f"  {mark} {m['id']:>2} {m['name']:<16} {cap_text:<18} {m.get('online_cores')} cores")
    gpu = report.get("gpu")
    if gpu:
        table = ", ".join(f"{hz / 1e6:.0f}" for hz in gpu.get("available_hz", []))
        out.append(f"GPU devfreq {gpu.get('devfreq_dir')}")
        out.append(f"  frequencies (MHz): {table}")
        out.append(f"  min {gpu['min_hz'] / 1e6:.0f} MHz, max (cap) {gpu['max_hz'] / 1e6:.0f} MHz"
                   + (", PINNED (jetson_clocks?)" if gpu.get("pinned") else ""))
    sensors = report.get("sensors") or {}
    zones = sensors.get("thermal_zones") or []
    if zones:
        out.append("thermal zones:")
        for z in zones:
            trips = ", ".join(f"{t['type']} {t['temp_c']:.0f}" for t in z.get("trips", []))
            temp = "off" if z.get("temp_c") is None else f"{z['temp_c']:.1f} °C"
            out.append(f"  {z['name']:<10} {temp:<10} trips: {trips or 'none'}")
    rails = sensors.get("rails_w") or {}
    if rails:
        out.append("power rails: " + ", ".join(f"{k} {v:.2f} W" for k, v in rails.items())
                   + (f"; board {sensors['board_power_w']:.2f} W" if sensors.get("board_power_w") else ""))
    for c in report.get("conflicts", []):
        out.append(f"conflict: {c.get('message', c)}")
    for p in report.get("problems", []):
        out.append(f"problem: {p}")
    return "\n".join(out)


def _cmd_simulate(args: argparse.Namespace) -> int:
    import json

    from jetvit_daemon.sim.offline import simulate, write_outputs
    from jetvit_daemon.sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    spec = args.policy or str(default_policy_for(args.board))
    verdict = None
    if spec == "oracle":
        from jetvit_daemon.sim.oracle import format_oracle, search

        found = search(args.board, scenario, seed=args.seed, duration_s=args.duration, slo_ms=args.slo_ms,
                       boot_mode=args.boot_mode, workload=args.workload)
        verdict = format_oracle(found)
        # The winner once more, with its timeline, so --out shows what the oracle would have done.
        result = simulate(args.board, found.best.spec, scenario, duration_s=args.duration, seed=args.seed,
                          timeline=args.out is not None, slo_ms=found.best_summary["slo_target_ms"],
                          workload=args.workload)
        result.summary = found.summary()
    else:
        result = simulate(args.board, spec, scenario, duration_s=args.duration, seed=args.seed,
                          timeline=args.out is not None, slo_ms=args.slo_ms, boot_mode=args.boot_mode,
                          workload=args.workload)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    written = write_outputs(result, args.out) if args.out is not None else []
    if args.json:
        print(json.dumps(result.summary))
    else:
        if verdict is not None:
            print(verdict)
        print(format_summary(result.summary))
        for path in written:
            print(f"wrote {path}")
        if args.out is not None and not any(p.suffix == ".png" for p in written):
            print("no plot: install matplotlib (pip install 'jetvit-daemon[plot]') for timeline.png")
    return 0


def default_policy_for(board: str) -> Path:
    """The policy shipped for this simulated board (jetvit_daemon/assets/policies/), else the bundled default."""
    from jetvit_daemon.governor.policy import DEFAULT_POLICY_FILE
    from jetvit_daemon.governor.policy_init import board_policy

    return board_policy(board) or DEFAULT_POLICY_FILE


def format_summary(s: Dict[str, Any]) -> str:
    """The simulation summary as an aligned two-column table."""
    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return "-" if value is None else str(value)

    width = max(len(k) for k in s)
    return "\n".join(f"{k:<{width}}  {fmt(v)}" for k, v in s.items())


def board_facts(board: Optional[str], boot_mode: Optional[str] = None) -> Any:
    """The facts `policy check` checks against: a named simulated board, else the Jetson this runs on, else the
    default simulated board. The mode it runs in: the Jetson's own; a simulated board's `boot_mode` (default:
    none for `policy check`, which then checks reboot groups within the ladder only)."""
    from jetvit_daemon.governor.policy_check import BoardFacts
    from jetvit_daemon.hardware.base import PowerMode
    from jetvit_daemon.hardware.commands import SubprocessRunner
    from jetvit_daemon.hardware.devfreq import GpuDevfreq, find_gpu_devfreq
    from jetvit_daemon.hardware.nvpmodel import Nvpmodel
    from jetvit_daemon.hardware.probe import detect_board
    from jetvit_daemon.hardware.sysfs import SysfsTree
    from jetvit_daemon.sim.boards import DEFAULT_PROFILE, get_profile, load_conf

    if board is None:
        tree = SysfsTree("/")
        info = detect_board(tree)
        if info is not None:
            conf = Nvpmodel(SubprocessRunner(), tree).conf()
            gpu_dir = find_gpu_devfreq(tree)
            freqs = GpuDevfreq(tree, gpu_dir).available_hz() if gpu_dir is not None else []
            running = Nvpmodel(SubprocessRunner(), tree).query()
            return BoardFacts(info.model, conf.power_modes, freqs, running)
        board = DEFAULT_PROFILE
        print(f"no Jetson here: using the simulated {board} (choose another with --board)", file=sys.stderr)
    profile = get_profile(board)
    conf = load_conf(profile)
    current: Optional[PowerMode] = None
    if boot_mode is not None:
        mode = conf.mode_by_name(boot_mode)
        if mode is None:
            raise ConfigError(f"--boot-mode {boot_mode}: no such power mode on {profile.name} "
                              f"(have: {', '.join(m.name for m in conf.modes)})")
        current = mode.power_mode
    return BoardFacts(f"simulated {profile.name}", conf.power_modes, list(profile.gpu_table_hz), current)


def _cmd_policy_check(args: argparse.Namespace) -> int:
    from jetvit_daemon.governor.policy import read_policy_text
    from jetvit_daemon.governor.policy_check import check_policy_text
    from jetvit_daemon.governor.reload import check_permissions

    try:
        text = read_policy_text(args.file)
        policy, problems, notes = check_policy_text(text, str(args.file), board_facts(args.board, args.boot_mode))
    except PolicyError as exc:
        print(exc)
        return 1
    if not args.ignore_permissions:
        try:
            check_permissions(args.file)
        except PolicyError as exc:
            problems.append(str(exc))
    for line in problems + [f"note: {n}" for n in notes]:
        print(line)
    if problems:
        return 1
    print(f"{args.file}: valid ({len(policy.ladder)} states: {' < '.join(s.name for s in policy.ladder)})")
    return 0


def _cmd_policy_init(args: argparse.Namespace) -> int:
    from jetvit_daemon.governor.policy_check import check_policy_text
    from jetvit_daemon.governor.policy_init import starter_policy

    facts = board_facts(args.board, args.boot_mode)
    if facts.current_mode is None:  # a simulated board without --boot-mode: it boots in its conf's default
        import dataclasses

        from jetvit_daemon.sim.boards import DEFAULT_PROFILE, get_profile, load_conf

        default = load_conf(get_profile(args.board or DEFAULT_PROFILE)).default_mode.power_mode
        facts = dataclasses.replace(facts, current_mode=default)
    max_batch = args.max_batch if args.max_batch is not None else model_max_batch(args.config)
    text = starter_policy(facts, max_batch)
    _, problems, _ = check_policy_text(text, "the starter policy", facts)
    if problems:  # a bug here, not the user's: never write a policy the board would refuse
        raise PolicyError("\n".join(problems))
    if args.out is None:
        print(text, end="")
        return 0
    if args.out.exists() and not args.force:
        raise ConfigError(f"{args.out}: exists; choose another --out or add --force to replace it")
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} for {facts.name} ({text.count('  - name:')} states); check it with: "
          f"jetvit-daemon policy check {args.out}", file=sys.stderr)
    return 0


def model_max_batch(config_path: Optional[Path]) -> int:
    """The largest batch the configured model takes (its manifest), for the ladder's batch sizes."""
    from jetvit_daemon.config import load_config
    from jetvit_daemon.runners.manifest import load_manifest

    model = load_config(config_path).model_path()
    return load_manifest(model).batch.max


def _cmd_policy_schema(args: argparse.Namespace) -> int:
    import json

    from jetvit_daemon.governor.policy import Policy

    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "jetvit-daemon policy (version 1)"
    print(json.dumps(schema, indent=1))
    return 0


def _cmd_tegrastats_parse(args: argparse.Namespace) -> int:
    import json

    from jetvit_daemon.hardware.tegrastats import bounded_lines, parse_lines

    if args.file == "-":
        stream = sys.stdin
        failed = _print_parsed(parse_lines(bounded_lines(stream)), json)
    else:
        try:
            with open(args.file, encoding="utf-8", errors="replace") as stream:
                failed = _print_parsed(parse_lines(bounded_lines(stream)), json)
        except OSError as exc:
            raise ConfigError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    return 1 if failed else 0


def _print_parsed(objects: Any, json: Any) -> int:
    failed = 0
    for obj in objects:
        if "error" in obj:
            failed += 1
        print(json.dumps(obj), flush=True)
    return failed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jetvit-daemon",
        description="Power-aware ViT inference daemon for NVIDIA Jetson boards (simulated board elsewhere).",
    )
    parser.add_argument("--version", action="version", version="jetvit-daemon " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="run the daemon (Ctrl-C or SIGTERM stops it and restores the board)")
    run.add_argument("--config", type=Path, default=None, help="daemon settings (YAML); default: built-in")
    run.add_argument("--policy", type=Path, default=None,
                     help="power policy (YAML); default: policy_file from the config, else the built-in policy")
    run.add_argument("--duration", type=float, default=None, metavar="S",
                     help="stop after S seconds and exit 0 (for trying it out and for tests)")
    run.set_defaults(func=_cmd_run)

    status = sub.add_parser(
        "status", help="ask the running daemon over its HTTP port how it is (exit 0 ready, 1 not ready or not "
                       "answering)")
    status.add_argument("--config", type=Path, default=None, help="daemon settings (for http.host and port)")
    status.add_argument("--url", default=None, help="the daemon's HTTP address, e.g. http://127.0.0.1:9847 "
                                                     "(default: from the config)")
    status.add_argument("--json", action="store_true", help="the daemon's status snapshot as JSON")
    status.add_argument("--timeout", type=float, default=5.0, metavar="S", help=argparse.SUPPRESS)
    status.set_defaults(func=_cmd_status)

    restore = sub.add_parser(
        "restore", help="put back the power mode and GPU limits a killed or crashed daemon recorded")
    restore.add_argument("--config", type=Path, default=None, help="daemon settings (for state_dir and board)")
    restore.set_defaults(func=_cmd_restore)

    probe = sub.add_parser("probe", help="show the board: model, power modes, GPU frequencies, sensors, conflicts")
    probe.add_argument("--config", type=Path, default=None, help="daemon settings (for the simulated board)")
    probe.add_argument("--json", action="store_true", help="one JSON object instead of text")
    probe.set_defaults(func=_cmd_probe)

    sim = sub.add_parser("simulate", help="replay a load scenario against a policy on a simulated board, offline")
    sim.add_argument("--board", default="orin-nano-super",
                     choices=BOARD_NAMES)
    sim.add_argument("--policy", default=None, metavar="FILE|static:MODE|fixed:…|threshold|oracle",
                     help="a policy file (default: the board's shipped policy), static:MODE (that mode, GPU uncapped, "
                          "batch 4), fixed:MODE:CAP_MHZ|max:BATCH:WAIT_MS (one configuration throughout), "
                          "threshold (the naive power-threshold script) or oracle (search for the best fixed "
                          "configuration in hindsight, about a minute on two cores)")
    sim.add_argument("--scenario", default="steady", metavar="NAME|FILE",
                     help="steady, bursty, hot, budget, or a scenario file (copy one from jetvit_daemon/sim/"
                          "scenarios/)")
    sim.add_argument("--boot-mode", default=None, metavar="MODE",
                     help="the power mode the board boots in (default: its conf's; static: and fixed: boot in "
                          "their own); a policy whose ladder needs a reboot from it is refused")
    sim.add_argument("--slo-ms", type=float, default=None, metavar="MS",
                     help="score against this latency p95 target (default: the policy's, else 250 ms), "
                          "so static:, fixed:, threshold and oracle are judged by the same one")
    sim.add_argument("--workload", default=None, metavar="NAME|FILE",
                     help="workload profile: vit-b16, vit-s16, vit-tiny16 or a profile file (default: the "
                          "scenario's, else the board's ViT-B/16 calibration)")
    sim.add_argument("--duration", type=float, default=None, metavar="S", help="default: the scenario's")
    sim.add_argument("--seed", type=int, default=0, help="camera activity and phases (reproducible runs)")
    sim.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="write timeline.csv, summary.json and (with matplotlib) timeline.png here")
    sim.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    sim.set_defaults(func=_cmd_simulate)

    pol = sub.add_parser("policy", help="check a policy file, write a starter one, or print its JSON Schema")
    pol_sub = pol.add_subparsers(dest="policy_command", metavar="ACTION")
    pol_sub.required = True
    check = pol_sub.add_parser("check", help="validate a policy file against the schema and the board "
                                             "(exit 0 valid, 1 invalid, every problem listed)")
    check.add_argument("file", type=Path)
    check.add_argument("--board", default=None,
                       choices=BOARD_NAMES,
                       help="check against this simulated board (default: the Jetson this runs on, else "
                            "orin-nano-super)")
    check.add_argument("--boot-mode", default=None, metavar="MODE",
                       help="with --board: the mode the board runs in; a ladder mode that needs a reboot from it "
                            "is a problem (on a Jetson: the mode it runs in now)")
    check.add_argument("--ignore-permissions", action="store_true",
                       help="do not check who may write the file (as policy_permissions: ignore)")
    check.set_defaults(func=_cmd_policy_check)
    init = pol_sub.add_parser(
        "init", help="write a commented starter policy for this board (its reboot group's modes, GPU caps from "
                     "its table, batches within the model's maximum)")
    init.add_argument("--board", default=None, choices=BOARD_NAMES,
                      help="for this simulated board (default: the Jetson this runs on, else orin-nano-super)")
    init.add_argument("--boot-mode", default=None, metavar="MODE",
                      help="with --board: the mode it boots in (default: its conf's); the ladder stays in that "
                           "mode's reboot group")
    init.add_argument("--max-batch", type=int, default=None, metavar="N",
                      help="largest batch size (default: the configured model's maximum, from its manifest)")
    init.add_argument("--config", type=Path, default=None, help="daemon settings (for the model)")
    init.add_argument("--out", type=Path, default=None, metavar="FILE", help="write here (default: stdout)")
    init.add_argument("--force", action="store_true", help="replace --out if it exists")
    init.set_defaults(func=_cmd_policy_init)
    schema = pol_sub.add_parser("schema", help="print the policy's JSON Schema (for editor completion)")
    schema.set_defaults(func=_cmd_policy_schema)

    from jetvit_daemon import cli_engine, cli_sources

    cli_engine.register(sub)
    cli_sources.register(sub)

    tegra = sub.add_parser("tegrastats", help="tools for tegrastats output")
    tegra_sub = tegra.add_subparsers(dest="tegrastats_command", metavar="ACTION")
    tegra_sub.required = True
    parse = tegra_sub.add_parser(
        "parse", help="print one JSON object per tegrastats line (an error object for a line that fails)")
    parse.add_argument("file", nargs="?", default="-", help="a tegrastats log, or - for standard input (default)")
    parse.set_defaults(func=_cmd_tegrastats_parse)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from jetvit_daemon.service.logs import report_fatal

    try:
        code: int = args.func(args)
    except (ConfigError, PolicyError) as exc:
        report_fatal(str(exc))
        return 2
    except EngineError as exc:
        report_fatal(str(exc))
        return 3
    except ActuationError as exc:
        report_fatal(str(exc))
        return 4
    except JetvitError as exc:
        report_fatal(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
