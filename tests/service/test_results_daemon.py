"""Result sinks in the real daemon process: what a user configures in daemon.yaml reaches its destination."""

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from daemon_process import DaemonProcess, write_setup

pytestmark = pytest.mark.slow


def test_jsonl_sink_writes_schema_v1_records_and_its_counters_are_scraped(tmp_path):
    out = tmp_path / "results" / "r.jsonl"
    setup = write_setup(tmp_path, sinks=[{"type": "jsonl", "path": str(out), "max_bytes": 20000, "keep": 2}])
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        deadline = time.monotonic() + 30
        while not (out.with_name("r.jsonl.1").exists() and out.exists() and out.stat().st_size > 0):
            assert time.monotonic() < deadline, f"no rotation; log:\n{daemon.log}"
            time.sleep(0.1)
        m = daemon.metrics()
        assert m['jetvit_sink_results_sent_total{sink="jsonl0"}'] > 0
        assert m['jetvit_sink_connected{sink="jsonl0"}'] == 1
        assert m['jetvit_sink_results_dropped_total{reason="queue_full",sink="jsonl0"}'] == 0
        daemon.terminate()
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log
    records = [json.loads(line) for line in out.with_name("r.jsonl.1").read_text().splitlines()]
    assert records and all(r["v"] == 1 and r["source"] == "synthetic0" for r in records)
    assert records[0]["model"]["name"] == "vit-digits" and records[0]["model"]["version"].startswith("sha256:")
    assert len(records[0]["top_k"]) == 5 and records[0]["top_k"][0]["label"] == records[0]["label"]
    frames = [r["frame"] for r in records]
    assert frames == sorted(frames)
    assert not out.with_name("r.jsonl.3").exists()
