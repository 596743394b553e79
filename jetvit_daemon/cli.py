"""The command line: `jetvit-daemon run`, plus tools around it. The only `sys.exit` of the program lives here.

Exit status: 0 success; 1 the daemon stopped because a worker died (systemd restarts it); 2 bad configuration,
policy or usage; 3 the model or engine cannot be loaded; 4 hardware actuation failed.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

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
