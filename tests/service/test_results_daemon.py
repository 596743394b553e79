"""Result sinks in the real daemon process: what a user configures in daemon.yaml reaches its destination."""

import json
import sys
import time
import urllib.request
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


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mosquitto_broker import Broker, Subscriber, retained, wait_retained  # noqa: E402


def read_events(resp, n, timeout_s=30.0):
    """The data of the first `n` `result` events of an SSE response (a real client reading the socket)."""
    events, event, data = [], None, []
    deadline = time.monotonic() + timeout_s
    while len(events) < n:
        assert time.monotonic() < deadline, f"only {len(events)} events"
        line = resp.readline().decode().rstrip("\n")
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())
        elif line == "" and data:
            if event == "result":
                events.append(json.loads("\n".join(data)))
            event, data = None, []
    return events


def test_http_latest_stream_and_snapshot_while_the_daemon_runs(tmp_path):
    import http.client

    import cv2
    import numpy as np

    setup = write_setup(tmp_path, sinks=[{"type": "http", "max_stream_clients": 2}])
    daemon = DaemonProcess(setup["config"])
    streams = []
    try:
        port = daemon.wait_ready()
        deadline = time.monotonic() + 30
        while True:
            latest = json.loads(daemon.get("/v1/results/latest"))
            if latest:
                break
            assert time.monotonic() < deadline, daemon.log
            time.sleep(0.1)
        assert list(latest) == ["synthetic0"] and latest["synthetic0"]["v"] == 1
        one = json.loads(daemon.get("/v1/results/latest?source=synthetic0"))
        assert one["source"] == "synthetic0" and one["frame"] >= latest["synthetic0"]["frame"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v1/results/latest?source=nope")
        resp = conn.getresponse()
        assert resp.status == 404 and json.loads(resp.read())["sources"] == ["synthetic0"]
        conn.close()

        for _ in range(2):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/v1/results/stream")
            r = c.getresponse()
            assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
            streams.append((c, r))
        events = read_events(streams[0][1], 10)
        frames = [e["frame"] for e in events]
        assert frames == sorted(frames) and len(set(frames)) == 10
        assert all(e["v"] == 1 and e["source"] == "synthetic0" for e in events)
        assert len(read_events(streams[1][1], 3)) == 3
        # A third stream is refused; the server's other endpoints still answer while two streams are open.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/v1/results/stream")
        r = c.getresponse()
        assert r.status == 503 and b"streams are open" in r.read()
        c.close()
        assert "jetvit_sink_connected" in daemon.get("/metrics")

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/sources/synthetic0/snapshot.jpg", timeout=10) as s:
            assert s.headers["Content-Type"] == "image/jpeg"
            jpeg = s.read()
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (480, 640, 3) and image.std() > 1.0
        took_s = daemon.terminate()  # with two streams open: they end, the daemon does not wait on them
    finally:
        for c, _ in streams:
            c.close()
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log
    assert took_s < 10.0


def _mqtt_setup(tmp_path, broker, **extra):
    sink = {"type": "mqtt", "port": broker.port, "topic_prefix": "jetvit/test", "queue_size": 20,
            "stats_interval_s": 1, "reconnect_max_s": 1, **extra}
    return write_setup(tmp_path, sinks=[sink])


def test_mqtt_results_state_status_broker_loss_and_return_and_offline_on_stop(tmp_path):
    broker = Broker(tmp_path).start()
    sub = Subscriber(broker.port, "jetvit/#")
    daemon = DaemonProcess(_mqtt_setup(tmp_path, broker)["config"])
    try:
        daemon.wait_ready()
        record = json.loads(sub.wait_for("jetvit/test/synthetic0/result"))
        assert record["v"] == 1 and record["model"]["name"] == "vit-digits"
        stats = json.loads(sub.wait_for("jetvit/test/stats"))
        assert stats["fps_out"] >= 0 and "power_w" in stats and "mode" in stats
        assert retained(broker.port, "jetvit/test/status") == "online"
        wait_retained(broker.port, "jetvit/test/synthetic0/state", json.dumps({"state": "streaming"}))
        daemon.wait_metric('jetvit_sink_connected{sink="mqtt0"}', 1)

        broker.stop()
        daemon.wait_metric('jetvit_sink_connected{sink="mqtt0"}', 0, timeout_s=30)
        m = daemon.metrics()
        dropped = 'jetvit_sink_results_dropped_total{reason="disconnected",sink="mqtt0"}'
        before, dropped_before = m["jetvit_pipeline_frames_processed_total"], m[dropped]
        deadline = time.monotonic() + 30
        while daemon.metrics()[dropped] < dropped_before + 30:
            assert time.monotonic() < deadline, "no drops counted while the broker is down"
            time.sleep(0.2)
        m = daemon.metrics()
        assert m["jetvit_pipeline_frames_processed_total"] > before + 30  # inference went on
        assert m['jetvit_sink_queue_depth_results{sink="mqtt0"}'] == 20

        broker.start()
        sub2 = Subscriber(broker.port, "jetvit/#")
        daemon.wait_metric('jetvit_sink_connected{sink="mqtt0"}', 1, timeout_s=30)
        sub2.wait_for("jetvit/test/synthetic0/result")
        assert retained(broker.port, "jetvit/test/status") == "online"
        wait_retained(broker.port, "jetvit/test/synthetic0/state", json.dumps({"state": "streaming"}))
        daemon.terminate()
        sub2.wait_for("jetvit/test/status", "offline")
        assert retained(broker.port, "jetvit/test/status") == "offline"
        sub2.close()
    finally:
        daemon.kill()
        sub.close()
        broker.stop()
    assert daemon.proc.returncode == 0, daemon.log
    assert "offline" in daemon.log and "published offline" in daemon.log


def test_mqtt_sigkill_of_the_daemon_makes_the_broker_publish_the_will_offline(tmp_path):
    broker = Broker(tmp_path).start()
    daemon = DaemonProcess(_mqtt_setup(tmp_path, broker)["config"])
    try:
        daemon.wait_ready()
        sub = Subscriber(broker.port, "jetvit/test/status")
        sub.wait_for("jetvit/test/status", "online")
        daemon.proc.kill()  # SIGKILL: no chance to say goodbye
        sub.wait_for("jetvit/test/status", "offline")
        sub.close()
        assert retained(broker.port, "jetvit/test/status") == "offline"
    finally:
        daemon.kill()
        broker.stop()
