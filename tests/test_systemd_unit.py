"""The shipped unit file matches what the daemon implements (notify, watchdog, reload, restore)."""

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "jetvit-daemon.service"


def unit():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keep systemd's key case
    parser.read(UNIT)
    return parser


def test_service_is_notify_with_a_watchdog_and_a_persistent_state_directory():
    service = unit()["Service"]
    assert service["Type"] == "notify" and int(service["WatchdogSec"]) > 0
    assert service["StateDirectory"] == "jetvit-daemon"  # the baseline journal must survive reboots
    assert service["Restart"] == "on-failure"
    assert "ProtectKernelTunables" not in service  # /sys must stay writable for devfreq caps


def test_run_reload_and_restore_use_the_same_config():
    service = unit()["Service"]
    start, stop_post = service["ExecStart"].split(), service["ExecStopPost"].split()
    assert start[1:3] == ["run", "--config"] and stop_post[1:3] == ["restore", "--config"]
    assert start[3] == stop_post[3]
    assert start[0] == stop_post[0]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"  # SIGHUP reloads the policy
