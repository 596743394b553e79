"""The command line: `jetvit-daemon run`, plus tools around it. The only `sys.exit` of the program lives here.

Exit status: 0 success; 1 the daemon stopped because a worker died (systemd restarts it); 2 bad configuration,
policy or usage; 3 the model or engine cannot be loaded; 4 hardware actuation failed.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, List, Optional

from jetvit_daemon import __version__
from jetvit_daemon.errors import ActuationError, ConfigError, EngineError, JetvitError, PolicyError

log = logging.getLogger("jetvit_daemon")


def _cmd_run(args: argparse.Namespace) -> int:
    from jetvit_daemon.config import load_config
    from jetvit_daemon.service.app import Daemon
    from jetvit_daemon.service.logs import setup_logging

    config = load_config(args.config)
    setup_logging(config.log_level)
    log.info("jetvit-daemon %s starting (config: %s)", __version__, args.config or "built-in defaults")
    daemon = Daemon(config, policy_path=args.policy, duration_s=args.duration)
    return daemon.run()


def _cmd_tegrastats_parse(args: argparse.Namespace) -> int:
    import json

    from jetvit_daemon.hardware.tegrastats import parse_lines

    if args.file == "-":
        stream = sys.stdin
        failed = _print_parsed(parse_lines(stream), json)
    else:
        try:
            with open(args.file, encoding="utf-8", errors="replace") as stream:
                failed = _print_parsed(parse_lines(stream), json)
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
    try:
        code: int = args.func(args)
    except (ConfigError, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except ActuationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except JetvitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
