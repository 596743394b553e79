"""Regression (issue 10): in the README's install, editing /etc/jetvit-daemon/policy.yaml did nothing (the
shipped daemon.yaml named no policy, so the daemon obeyed the copy inside the package). Follow the README's
steps into a temporary root and prove that an edit there applies to the running daemon."""

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from daemon_process import DaemonProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_regression_the_installed_policy_is_obeyed_and_an_edit_applies_to_the_running_daemon(tmp_path):
    readme = (REPO / "README.md").read_text()
    assert "sudo cp config/*.yaml /etc/jetvit-daemon/" in readme
    etc = tmp_path / "etc" / "jetvit-daemon"
    etc.mkdir(parents=True)
    for f in (REPO / "config").glob("*.yaml"):  # the README's `cp config/*.yaml /etc/jetvit-daemon/`
        shutil.copy(f, etc / f.name)
    # What the unit gives the daemon: StateDirectory= sets $STATE_DIRECTORY. The only deviation from the
    # shipped files: port 0, so that tests running side by side do not collide on 9847.
    config = etc / "daemon.yaml"
    config.write_text(config.read_text().replace("\n  port: 9847\n", "\n  port: 0\n"))
    assert "port: 0" in config.read_text()
    env = {"STATE_DIRECTORY": str(tmp_path / "var" / "lib" / "jetvit-daemon")}
    daemon = DaemonProcess(config, env=env)
    try:
        daemon.wait_ready()
        policy = etc / "policy.yaml"
        daemon.wait_for_log(re.escape(f"policy: {policy} (") + r".*obeyed and watched")
        status = json.loads(daemon.get("/status"))
        assert status["policy"]["file"] == str(policy)
        shipped = yaml.safe_load(policy.read_text())
        first = shipped["ladder"][0]["name"]
        edited = dict(shipped, ladder=[dict(shipped["ladder"][0], name="edited-" + first),
                                       *shipped["ladder"][1:]])
        if shipped.get("start_state") == first:
            edited["start_state"] = "edited-" + first
        if (shipped.get("stale_telemetry") or {}).get("state") == first:
            edited["stale_telemetry"] = dict(shipped["stale_telemetry"], state="edited-" + first)
        policy.write_text(yaml.safe_dump(edited, sort_keys=False))
        daemon.wait_for_log(re.escape(f"policy reloaded from {policy}"), timeout_s=30)
        status = json.loads(daemon.get("/status"))
        assert status["policy"]["states"][0] == "edited-" + first
        assert status["policy"]["last_reload"]["result"] == "ok"
        daemon.terminate(timeout_s=30)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log
