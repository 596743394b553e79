"""The tegrastats and nvpmodel emulators, run as real subprocesses against materialised trees, checked
against the real formats (jetson-reference samples, README) and the daemon's own parsers and drivers."""

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Tuple

import pytest

from jetvit_daemon.errors import ActuationError, RebootRequiredError, TelemetryParseError
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.hardware.nvpmodel import Nvpmodel
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.hardware.tegrastats import parse_line
from jetvit_daemon.sim.emulators import REBOOT_PROMPT, write_faults

Emulator = Callable[..., "subprocess.CompletedProcess[str]"]
MakeTree = Callable[..., Path]

# The shape of sample 29 (Orin Nano, JetPack 6) and sample 7 (Nano, JetPack 4), field by field.
JP6_LINE = re.compile(
    r"^\d\d-\d\d-\d{4} \d\d:\d\d:\d\d RAM \d+/\d+MB \(lfb \d+x4MB\) SWAP \d+/\d+MB \(cached \d+MB\) "
    r"CPU \[(?:\d+%@\d+|off)(?:,(?:\d+%@\d+|off))*\] EMC_FREQ \d+%@\d+ GR3D_FREQ \d+%@\[\d+(?:,\d+)*\] "
    r"(?:[A-Z0-9_]+ (?:off|\d+) )+(?:[a-z0-9]+@-?[\d.]+C )+"
    r"(?:[A-Z0-9_]+ \d+mW/\d+mW ?)+$"
)
JP4_LINE = re.compile(
    r"^RAM \d+/\d+MB \(lfb \d+x4MB\) SWAP \d+/\d+MB \(cached \d+MB\) IRAM 0/252kB\(lfb 252kB\) "
    r"CPU \[(?:\d+%@\d+|off)(?:,(?:\d+%@\d+|off))*\] EMC_FREQ \d+%@\d+ GR3D_FREQ \d+%@\d+ APE 25 "
    r"(?:[A-Za-z]+@[\d.]+C )+POM_5V_IN \d+/\d+ POM_5V_GPU \d+/\d+ POM_5V_CPU \d+/\d+$"
)


def _tegrastats_lines(root: Path, n: int, interval_ms: int = 150,
                      timeout_s: float = 5.0) -> Tuple[List[str], List[float]]:
    """The first `n` lines of a tegrastats emulator (fewer if it stops printing within `timeout_s`) and
    the times they arrived."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jetvit_daemon.sim.emulators", "tegrastats", "--root", str(root),
         "--interval", str(interval_ms)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    lines: List[str] = []
    arrivals: List[float] = []
    buf = b""
    deadline = time.monotonic() + timeout_s
    try:
        while len(lines) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf and len(lines) < n:
                raw, buf = buf.split(b"\n", 1)
                lines.append(raw.decode())
                arrivals.append(time.monotonic())
    finally:
        proc.kill()
        proc.wait(5)
        proc.stdout.close()
    return lines, arrivals


def test_tegrastats_orin_line_is_the_real_format_and_tells_the_tree(make_tree: MakeTree) -> None:
    root = make_tree("orin-nano-super")
    lines, arrivals = _tegrastats_lines(root, 3, interval_ms=150)
    assert len(lines) == 3
    span = arrivals[-1] - arrivals[0]
    assert 0.2 < span < 1.5, arrivals  # two intervals of 150 ms (--interval is in ms), with scheduling slack
    for line in lines:
        assert JP6_LINE.match(line), line
    reading = parse_line(lines[-1])
    tree = SysfsTree(root)
    assert (reading.ram_total_mb, reading.swap_total_mb) == (7620, 3810)
    assert reading.cpus is not None and len(reading.cpus) == 6 and all(c is not None for c in reading.cpus)
    assert reading.gpu_freq_mhz == (tree.read_int("/sys/class/devfreq/17000000.gpu/cur_freq") // 1_000_000,)
    assert reading.gpu_load_pct == 0.0
    zones = {tree.read_text(z + "/type"): tree.read_int(z + "/temp") / 1000.0
             for z in tree.glob("/sys/class/thermal/thermal_zone*")}
    assert reading.temps_c == {name.split("-")[0]: pytest.approx(zones[name], abs=0.001)
                               for name in ("cpu-thermal", "gpu-thermal", "soc0-thermal", "soc1-thermal",
                                            "soc2-thermal", "tj-thermal")}
    hwmon = "/sys/class/hwmon/hwmon1"
    vdd_in_mw = tree.read_int(hwmon + "/in1_input") * tree.read_int(hwmon + "/curr1_input") // 1000
    assert reading.rails_mw["VDD_IN"].cur_mw == vdd_in_mw
    assert reading.rails_mw["VDD_IN"].avg_mw == vdd_in_mw  # steady board: the running average equals it
    assert reading.board_power_mw == vdd_in_mw
    assert set(reading.rails_mw) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}


def test_tegrastats_nano_jetpack4_format(make_tree: MakeTree) -> None:
    root = make_tree("nano")
    lines, _ = _tegrastats_lines(root, 1, interval_ms=100)
    assert len(lines) == 1 and JP4_LINE.match(lines[0]), lines
    reading = parse_line(lines[0])
    assert reading.timestamp is None
    assert reading.gpu_freq_mhz == (76,)  # idle: the floor of the 76.8 MHz table, as in sample 7
    assert reading.temps_c["pmic"] == 100.0
    assert reading.board_power_mw == reading.rails_mw["POM_5V_IN"].cur_mw
    assert 800 < reading.rails_mw["POM_5V_IN"].cur_mw < 1300


def test_tegrastats_prints_off_for_offline_cores(make_tree: MakeTree) -> None:
    root = make_tree("orin-nano", mode_id=1)  # 7W: cores 4 and 5 offline
    lines, _ = _tegrastats_lines(root, 1, interval_ms=100)
    assert re.search(r"CPU \[\d+%@\d+,\d+%@\d+,\d+%@\d+,\d+%@\d+,off,off\]", lines[0]), lines
    reading = parse_line(lines[0])
    assert reading.cpus is not None and reading.cpus[4:] == (None, None)


def test_tegrastats_faults(make_tree: MakeTree, emulator: Emulator) -> None:
    root = make_tree("orin-nano-super")
    write_faults(root, {"tegrastats": "garbage"})
    lines, _ = _tegrastats_lines(root, 2, interval_ms=100)
    assert len(lines) == 2
    for line in lines:
        with pytest.raises(TelemetryParseError):
            parse_line(line)
    write_faults(root, {"tegrastats": "exit"})
    result = emulator(root, "tegrastats", "--interval", "100", timeout_s=5)
    assert result.returncode == 1 and result.stdout == ""
    write_faults(root, {"tegrastats": "hang"})
    lines, _ = _tegrastats_lines(root, 1, interval_ms=100, timeout_s=0.6)
    assert lines == []


def test_nvpmodel_query(make_tree: MakeTree, emulator: Emulator) -> None:
    root = make_tree("orin-nano-super")
    result = emulator(root, "nvpmodel", "-q")
    assert (result.returncode, result.stdout, result.stderr) == (0, "NV Power Mode: 25W\n1\n", "")
    verbose = emulator(root, "nvpmodel", "-q", "--verbose").stdout
    assert "NVPM VERB: Current mode: NV Power Mode: 25W\n1\n" in verbose
    assert ("PARAM GPU: ARG MAX_FREQ: PATH /sys/devices/17000000.ga10b/devfreq/17000000.ga10b/max_freq: "
            "REAL_VAL: 918000000 CONF_VAL: 918000000") in verbose


def test_nvpmodel_switch_persists_and_moves_the_devfreq_cap(make_tree: MakeTree, emulator: Emulator) -> None:
    root = make_tree("orin-nano-super")
    tree = SysfsTree(root)
    result = emulator(root, "nvpmodel", "-m", "2")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert tree.read_text("/var/lib/nvpmodel/status") == "pmode:0002"
    assert tree.read_int("/sys/class/devfreq/17000000.gpu/max_freq") == 1_020_000_000  # -1: top of table
    assert emulator(root, "nvpmodel", "-q").stdout == "NV Power Mode: MAXN_SUPER\n2\n"
    assert emulator(root, "nvpmodel", "-m", "0").returncode == 0
    assert tree.read_int("/sys/class/devfreq/17000000.gpu/max_freq") == 612_000_000
    assert tree.read_int("/sys/class/devfreq/17000000.gpu/min_freq") == 306_000_000  # MIN_FREQ 0: table floor


def test_the_daemons_nvpmodel_driver_runs_unchanged_against_it(make_tree: MakeTree) -> None:
    root = make_tree("orin-nano-super")
    runner = SubprocessRunner({"nvpmodel": [sys.executable, "-m", "jetvit_daemon.sim.emulators", "nvpmodel",
                                            "--root", str(root)]})
    nv = Nvpmodel(runner, SysfsTree(root))
    assert nv.query().name == "25W"
    assert nv.set_mode("MAXN_SUPER").name == "MAXN_SUPER"
    assert nv.query().id == 2


def test_reboot_needing_switch_prompts_and_fails_with_stdin_closed(make_tree: MakeTree,
                                                                   emulator: Emulator) -> None:
    root = make_tree("orin-nano")  # boots in 15W (mask 240); 7W has mask 252
    tree = SysfsTree(root)
    max_before = tree.read_text("/sys/class/devfreq/17000000.gpu/max_freq")
    result = emulator(root, "nvpmodel", "-m", "1")  # stdin = /dev/null
    assert result.stdout == REBOOT_PROMPT.format(id=1)
    assert result.stdout.endswith("enter YES/yes to confirm:")  # no newline after the prompt
    assert "NVPM ERROR: bad input!" in result.stderr
    assert "NVPM ERROR: optMask is 1, no request for power mode" in result.stderr
    assert result.returncode != 0
    assert tree.read_text("/var/lib/nvpmodel/status") == "pmode:0000"
    assert tree.read_text("/sys/class/devfreq/17000000.gpu/max_freq") == max_before
    answered = emulator(root, "nvpmodel", "-m", "1", stdin_text="yes\n")
    assert answered.returncode == 0 and answered.stdout.endswith("confirm:NVPM WARN: rebooting\n")
    assert tree.read_text("/var/lib/nvpmodel/status") == "pmode:0000"  # the simulator never reboots


def test_daemons_driver_sees_the_reboot_prompt(make_tree: MakeTree) -> None:
    root = make_tree("orin-nano")
    runner = SubprocessRunner({"nvpmodel": [sys.executable, "-m", "jetvit_daemon.sim.emulators", "nvpmodel",
                                            "--root", str(root)]})
    nv = Nvpmodel(runner, SysfsTree(root))
    with pytest.raises(RebootRequiredError):
        nv._run(["-m", "1"])  # bypassing the driver's own up-front check: the prompt itself is recognised


def test_nvpmodel_errors_and_faults(make_tree: MakeTree, emulator: Emulator) -> None:
    root = make_tree("orin-nano-super")
    tree = SysfsTree(root)
    unknown = emulator(root, "nvpmodel", "-m", "7")
    assert unknown.returncode != 0 and unknown.stderr.startswith("NVPM ERROR")
    write_faults(root, {"nvpmodel": "fail"})
    failed = emulator(root, "nvpmodel", "-m", "2")
    assert failed.returncode != 0 and "NVPM ERROR" in failed.stderr
    assert tree.read_text("/var/lib/nvpmodel/status") == "pmode:0001"
    assert emulator(root, "nvpmodel", "-q").stdout == "NV Power Mode: 25W\n1\n"  # queries still answer
    runner = SubprocessRunner({"nvpmodel": [sys.executable, "-m", "jetvit_daemon.sim.emulators", "nvpmodel",
                                            "--root", str(root)]})
    with pytest.raises(ActuationError, match="NVPM ERROR"):
        Nvpmodel(runner, tree).set_mode("MAXN_SUPER")
    write_faults(root, {"nvpmodel": "hang"})
    hung = runner.run(["nvpmodel", "-q"], timeout_s=0.5)
    assert hung.timed_out


def test_systemctl_reports_no_services(make_tree: MakeTree, emulator: Emulator) -> None:
    root = make_tree("nano")
    inactive = emulator(root, "systemctl", "is-active", "jtop.service")
    assert (inactive.returncode, inactive.stdout) == (3, "inactive\n")
    running = emulator(root, "systemctl", "is-system-running")
    assert (running.returncode, running.stdout) == (0, "running\n")
