"""contrib/prometheus/alerts.yml: valid for Debian's real promtool, and each alert fires (or not) on the series
its unit tests feed it (contrib/prometheus/alerts_test.yml)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROM = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run must install Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=PROM, capture_output=True, text=True, timeout=120)


def test_the_rules_file_is_valid():
    result = run("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_every_alert_fires_on_its_unit_test_series():
    result = run("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test():
    rules = (PROM / "alerts.yml").read_text()
    tests = (PROM / "alerts_test.yml").read_text()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if line.strip().startswith("- alert:")]
    assert len(alerts) == 8
    for alert in alerts:
        assert f"alertname: {alert}" in tests, f"{alert} has no promtool unit test"
