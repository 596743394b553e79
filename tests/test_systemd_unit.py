"""The shipped unit file matches what the daemon implements (notify, watchdog, reload, restore)."""

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

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
    assert service.get("ProtectKernelTunables", "no") == "no"  # /sys must stay writable for devfreq caps


def test_run_reload_and_restore_use_the_same_config():
    service = unit()["Service"]
    start, stop_post = service["ExecStart"].split(), service["ExecStopPost"].split()
    assert start[1:3] == ["run", "--config"] and stop_post[1:3] == ["restore", "--config"]
    assert start[3] == stop_post[3]
    assert start[0] == stop_post[0]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"  # SIGHUP reloads the policy


def test_stop_signals_the_daemon_alone_and_config_errors_do_not_restart_loop():
    service = unit()["Service"]
    # SIGTERM to the main process only: the daemon stops its tegrastats child itself (no "restart" while
    # stopping); the rest of the cgroup gets SIGKILL once it has exited.
    assert service["KillMode"] == "mixed"
    # cli.py: 2 configuration/policy/usage error, 3 engine error (it cannot be loaded or warmed up): a restart
    # cannot fix them. Exit 5 (service/app.py: inference failed every batch for 60 s after a good warm-up) and
    # 1 (a worker died) are restarted: a GPU fault may clear.
    from jetvit_daemon.service import app

    assert set(service["RestartPreventExitStatus"].split()) == {"2", "3"}
    assert service["Restart"] == "on-failure"
    assert str(app.EXIT_INFERENCE_FAILING) not in service["RestartPreventExitStatus"].split()
    assert str(app.EXIT_WORKER_DIED) not in service["RestartPreventExitStatus"].split()


def _systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing in CI (.ci/run installs the systemd package)")
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    return exe


def test_unit_verifies_without_a_warning(tmp_path):
    # verify checks that ExecStart's program exists: point it at a stand-in, keep every other line as shipped.
    program = tmp_path / "jetvit-daemon"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    text = UNIT.read_text().replace("/opt/jetvit-daemon/venv/bin/jetvit-daemon", str(program))
    assert str(program) in text
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    proc = subprocess.run([_systemd_analyze(), "verify", "--man=no", str(copy)], capture_output=True,
                          text=True, timeout=120)
    # verify exits 0 even for an unknown or unparsable directive: the warning on stderr is the failure.
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


EXPOSURE_MAX = 4.5


def test_sandbox_exposure_is_at_most_4_5():
    proc = subprocess.run([_systemd_analyze(), "security", "--offline=true", str(UNIT)], capture_output=True,
                          text=True, timeout=120)
    match = re.search(r"Overall exposure level for jetvit-daemon\.service: (\d+\.\d)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= EXPOSURE_MAX, proc.stdout


def test_the_sandbox_keeps_what_actuation_needs_writable():
    service = unit()
    # configparser keeps the last of repeated keys: read every ReadWritePaths= line from the file itself.
    rw = [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith("ReadWritePaths=")]
    assert "-/var/lib/nvpmodel" in rw  # nvpmodel's persisted mode (the status file)
    s = service["Service"]
    assert s["ProtectSystem"] == "strict" and s["ProtectKernelTunables"] == "no"  # /sys stays writable
    assert s["PrivateDevices"] == "no" and "DeviceAllow" not in s  # CUDA's device nodes
    assert s.get("ProtectClock") == "no"  # it would imply a device allow-list
