"""Runs INSIDE the container that tests/systemd/test_real_systemd.py boots (Debian 12, systemd 252), as root,
from a oneshot unit. Installs jetvit-daemon as the README does (venv in /opt/jetvit-daemon/venv, config in
/etc/jetvit-daemon, the shipped unit), drives the unit with systemctl against the simulated board, and writes
what it observed to out/results.json. It judges nothing: the host test asserts on the observations.

Standard library only: this is the container's own Python 3.11, not the daemon's venv.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent  # the bind-mounted test directory
OUT = HERE / "out"
UNIT = "jetvit-daemon.service"
VENV = Path("/opt/jetvit-daemon/venv")
ETC = Path("/etc/jetvit-daemon")
STATE = Path("/var/lib/jetvit-daemon")  # StateDirectory=jetvit-daemon
# The simulated board keeps its tree under the state directory: <state_dir>/simboard/<board>.
SIM_STATUS = STATE / "simboard" / "orin-nano-super" / "var" / "lib" / "nvpmodel" / "status"
URL = "http://127.0.0.1:9847"
PINNED = {"name": "pinned", "mode": "15W", "gpu_cap_mhz": 408, "batch_size": 4, "batch_wait_ms": 50}

results: Dict[str, Any] = {"steps": []}


def save() -> None:
    OUT.mkdir(exist_ok=True)
    tmp = OUT / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(OUT / "results.json")


def run(*argv: str, timeout: float = 180, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    t0 = time.monotonic()
    try:
        p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env)
        out = {"rc": p.returncode, "stdout": p.stdout[-4000:], "stderr": p.stderr[-4000:]}
    except subprocess.TimeoutExpired as exc:
        out = {"rc": None, "stdout": str(exc.stdout)[-4000:], "stderr": "timed out"}
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def show(*props: str) -> Dict[str, str]:
    p = subprocess.run(["systemctl", "show", UNIT, *(f"--property={x}" for x in props)],
                       capture_output=True, text=True, timeout=30)
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(interval_s)
    return False


def http(path: str) -> Dict[str, Any]:
    try:
        with urllib.request.urlopen(URL + path, timeout=5) as r:
            body = r.read().decode()
            code = r.status
    except urllib.error.HTTPError as exc:
        body, code = exc.read().decode(), exc.code
    except OSError as exc:
        return {"code": None, "error": str(exc)}
    try:
        return {"code": code, "json": json.loads(body)}
    except ValueError:
        return {"code": code, "text": body[-2000:]}


def sim_mode() -> Optional[str]:
    try:
        return SIM_STATUS.read_text().strip()
    except OSError:
        return None


def sandbox(pid: str) -> Dict[str, Any]:
    """What the kernel says of the running daemon's sandbox: capabilities, seccomp, mounts (ro/rw)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("CapBnd", "CapEff", "Seccomp", "NoNewPrivs"):
            fields[key] = value.strip()
    mounts = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        parts = line.split()
        mounts[parts[4]] = parts[5].split(",")[0]  # mount point -> "ro" | "rw" (the last mount wins)
    fields["mounts"] = {m: mounts.get(m) for m in ("/", "/etc", "/sys", "/tmp", str(STATE), "/home")}
    return fields


def governor() -> Dict[str, Any]:
    status = http("/status").get("json") or {}
    return status.get("governor") or {}


def journal(*args: str) -> List[Dict[str, Any]]:
    p = subprocess.run(["journalctl", "--no-pager", "-o", "json", *args], capture_output=True, text=True,
                       timeout=60)
    entries = []
    for line in p.stdout.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        msg = e.get("MESSAGE")
        if isinstance(msg, list):  # journald exports a non-UTF-8 message as bytes
            msg = bytes(msg).decode("utf-8", "replace")
        entries.append({"MESSAGE": msg, "PRIORITY": e.get("PRIORITY"), "_PID": e.get("_PID"),
                        "cursor": e.get("__CURSOR")})
    return entries


def cursor() -> str:
    p = subprocess.run(["journalctl", "--no-pager", "-n", "0", "--show-cursor"], capture_output=True,
                       text=True, timeout=30)
    return p.stdout.strip().rsplit("cursor: ", 1)[-1]


def step(name: str) -> Callable[[Callable[[], Dict[str, Any]]], None]:
    def decorate(fn: Callable[[], Dict[str, Any]]) -> None:
        t0 = time.monotonic()
        try:
            results[name] = fn()
        except Exception:
            results[name] = {"exception": traceback.format_exc()}
        results["steps"].append({"name": name, "seconds": round(time.monotonic() - t0, 1)})
        save()
    return decorate


def write_policy(ladder: List[Dict[str, Any]]) -> None:
    """Edit /etc/jetvit-daemon/policy.yaml as an editor does (new file, rename), keeping everything but the
    ladder; done with the daemon's own PyYAML from the venv."""
    code = ("import sys, yaml; p = yaml.safe_load(open(sys.argv[1])); p['ladder'] = yaml.safe_load(sys.argv[2]);"
            "p['start_state'] = None; open(sys.argv[1] + '.new', 'w').write(yaml.safe_dump(p))")
    subprocess.run([str(VENV / "bin" / "python"), "-c", code, str(ETC / "policy.yaml"), json.dumps(ladder)],
                   check=True, timeout=60)
    os.chmod(ETC / "policy.yaml.new", 0o644)
    os.replace(ETC / "policy.yaml.new", ETC / "policy.yaml")


def main() -> None:
    results["systemd_version"] = run("systemctl", "--version")["stdout"].splitlines()[0]
    save()

    @step("install")
    def _() -> Dict[str, Any]:
        # README "On a Jetson", with the wheels built on the host (pip cannot verify TLS in here).
        venv = run("python3", "-m", "venv", str(VENV))
        pip = run(str(VENV / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(HERE / "wheels"),
                  "--find-links", str(HERE / "wheels-deps"), "jetvit-daemon[cpu]", timeout=600)
        ETC.mkdir(parents=True, exist_ok=True)
        for f in sorted((HERE / "repo" / "config").glob("*.yaml")):
            shutil.copy(f, ETC / f.name)
        # The installed policy named explicitly, as an operator may write it (the README-install test covers
        # the shipped default); every other setting as shipped.
        config = ETC / "daemon.yaml"
        lines = config.read_text().splitlines()
        named = [f"policy_file: {ETC / 'policy.yaml'}" if x.startswith("policy_file:") else x for x in lines]
        config.write_text("\n".join(named) + "\n")
        shutil.copy(HERE / "repo" / "systemd" / UNIT, Path("/etc/systemd/system") / UNIT)
        reload = run("systemctl", "daemon-reload")
        verify = run("systemd-analyze", "verify", f"/etc/systemd/system/{UNIT}")
        security = run("systemd-analyze", "security", UNIT)
        # The simulated board materialises on its first use, freshly booted: its mode now is the baseline.
        probe = run(str(VENV / "bin" / "jetvit-daemon"), "probe", "--config", str(ETC / "daemon.yaml"),
                    env={**os.environ, "STATE_DIRECTORY": str(STATE)})
        return {"venv": venv, "pip": pip, "daemon_reload": reload, "verify": verify,
                "security": security["stdout"].splitlines()[-1:], "probe": probe, "baseline_mode": sim_mode()}

    @step("start")
    def _() -> Dict[str, Any]:
        start = run("systemctl", "start", UNIT)
        # Read at once: what systemctl start returning promises (READY=1 came).
        props = show("ActiveState", "SubState", "StatusText", "MainPID", "Type", "KillMode",
                     "RestartPreventExitStatus")
        return {"systemctl": start, "props": props, "healthz": http("/healthz"), "readyz": http("/readyz"),
                "status": http("/status"), "sandbox": sandbox(props["MainPID"]),
                "system_mounts": sandbox("1")["mounts"]}

    @step("reload")
    def _() -> Dict[str, Any]:
        write_policy([PINNED])
        reload = run("systemctl", "reload", UNIT)
        applied = wait_until(lambda: governor().get("applied_state") == "pinned"
                             and governor().get("mode") == "15W", 60)
        return {"systemctl": reload, "applied": applied, "governor": governor(), "mode": sim_mode(),
                "status": http("/status"),
                "props": show("ActiveState", "SubState")}

    @step("stop")
    def _() -> Dict[str, Any]:
        mode_before = sim_mode()
        since = show("ExecMainStartTimestampMonotonic")
        stop = run("systemctl", "stop", UNIT)
        props = show("ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
        return {"mode_before": mode_before, "systemctl": stop, "props": props, "mode_after": sim_mode(),
                "started": since, "journal": journal("-u", UNIT, "-b")}

    @step("watchdog")
    def _() -> Dict[str, Any]:
        dropin = Path("/etc/systemd/system") / f"{UNIT}.d"
        dropin.mkdir(exist_ok=True)
        # A short watchdog for the test; SIGABRT cannot end a stopped process, so SIGKILL follows soon.
        (dropin / "test-watchdog.conf").write_text("[Service]\nWatchdogSec=3\nTimeoutAbortSec=3\n")
        run("systemctl", "daemon-reload")
        start = run("systemctl", "start", UNIT)
        pinned = wait_until(lambda: governor().get("mode") == "15W", 60)
        mode_running = sim_mode()
        pid = show("MainPID")["MainPID"]
        os.kill(int(pid), 19)  # SIGSTOP: alive but wedged, no more WATCHDOG=1
        seen: Dict[str, Any] = {}

        def restarting() -> bool:
            p = show("SubState", "Result", "NRestarts")
            if p["SubState"] == "auto-restart":  # ExecStopPost has run; RestartSec=5 before the new start
                seen.update(p, mode=sim_mode())
                return True
            return False

        wait_until(restarting, 90, 0.1)
        back = wait_until(lambda: show("ActiveState")["ActiveState"] == "active"
                          and show("MainPID")["MainPID"] not in ("0", pid), 90)
        after = show("MainPID", "NRestarts", "ActiveState", "SubState")
        stop = run("systemctl", "stop", UNIT)
        (dropin / "test-watchdog.conf").unlink()
        run("systemctl", "daemon-reload")
        return {"start": start, "pinned": pinned, "mode_running": mode_running, "stopped_pid": pid,
                "restarting": seen, "back": back, "after": after, "stop": stop, "mode_after_stop": sim_mode()}

    @step("bad_config")
    def _() -> Dict[str, Any]:
        config = ETC / "daemon.yaml"
        good = config.read_text()
        config.write_text(good.replace("log_level: info", "log_level: loud"))
        run("systemctl", "reset-failed", UNIT)
        mark = cursor()
        start = run("systemctl", "start", UNIT)
        time.sleep(12)  # RestartSec=5: a restart loop would have restarted twice by now
        props = show("ActiveState", "Result", "ExecMainStatus", "NRestarts")
        errors = journal("-u", UNIT, "-p", "err", f"--after-cursor={mark}")
        config.write_text(good)
        run("systemctl", "reset-failed", UNIT)
        return {"systemctl": start, "props": props, "errors": errors}

    @step("traceback")
    def _() -> Dict[str, Any]:
        # The daemon's logging under a real journal stream: one exception with its traceback.
        code = ("import logging; from jetvit_daemon.service.logs import setup_logging; print(setup_logging());"
                "log = logging.getLogger('jetvit_daemon.test')\n"
                "try:\n    raise RuntimeError('boom')\nexcept RuntimeError:\n    log.exception('worker x died')\n"
                "log.warning('after the traceback')")
        ran = run("systemd-run", "--wait", "--unit=jetvit-logtest", "-p", "StandardOutput=journal",
                  "-p", "StandardError=journal", str(VENV / "bin" / "python"), "-c", code)
        time.sleep(1)
        return {"systemd_run": ran, "entries": journal("-u", "jetvit-logtest")}


if __name__ == "__main__":
    try:
        main()
    except Exception:
        results["fatal"] = traceback.format_exc()
    finally:
        save()
        with open(OUT / "journal.txt", "w") as f:
            subprocess.run(["journalctl", "--no-pager", "-b", "-o", "short-monotonic"], stdout=f, timeout=60)
        results["done"] = True
        save()
    sys.exit(0)
