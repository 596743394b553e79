"""The service in-process (issue 10): fakes for the platform, the runner and the camera, a manual clock for
the stop deadline. Start order, reverse stop under one deadline, worker death → exit 1 with the watchdog
starved, readiness transitions, reload notifications, a model failing every batch (issue 9 #12)."""

import json
import logging
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from fakes import POLICY, Harness

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.service import app
from jetvit_daemon.service.supervisor import RESTORE_RESERVE_S, STOP_BUDGET_S, Stage, Supervisor


def _get(h: Harness, path: str):
    assert h.service.http is not None
    host, port = h.service.http.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_stages_start_in_order_and_stop_in_reverse_with_the_restore_last(tmp_path):
    h = Harness(tmp_path).start()
    try:
        h.wait(lambda: h.service.ready_sent, what="READY")
    finally:
        assert h.stop() == 0
    starts = [e for e in h.events if e in ("platform.start", "runner.warm_up", "source.open")]
    assert starts == ["platform.start", "runner.warm_up", "source.open"]
    stops = [e for e in h.events if e in ("source.close", "runner.close", "platform.stop restore=True")]
    assert stops == ["source.close", "runner.close", "platform.stop restore=True"]
    names = [line.split(":")[0] for line in h.service.supervisor.stop_report]
    assert names == ["board-meter", "policy-watch", "governor", "pipeline", "runner", "platform", "http"]
    assert h.notifier.sent("STOPPING=1")


def test_one_deadline_for_the_whole_stop_and_the_restore_keeps_its_reserve(tmp_path):
    h = Harness(tmp_path).start()
    h.runner.close_takes_s = 30.0  # the runner's close eats far more than the whole budget
    try:
        h.wait(lambda: h.service.ready_sent, what="READY")
    finally:
        assert h.stop() == 0
    (timeout_s,) = h.platform.stop_timeouts
    assert timeout_s is not None and 1.0 <= timeout_s <= RESTORE_RESERVE_S
    assert "platform.stop restore=True" in h.events  # restored even though the drain overran


def test_the_drain_shares_what_the_reserve_leaves_and_each_stage_is_told_what_is_left():
    clock = ManualClock()
    allowed = {}

    def stage(name, takes_s, restore=False):
        def stop(timeout_s):
            allowed[name] = timeout_s
            clock.advance(takes_s)
        return Stage(name, lambda: None, stop, restore=restore)

    sup = Supervisor([stage("platform", 2.0, restore=True), stage("pipeline", 4.0), stage("http", 1.0)], clock)
    sup.start()
    t0 = clock.monotonic()
    sup.stop(hurry=lambda: False)
    drain_s = STOP_BUDGET_S - RESTORE_RESERVE_S
    assert allowed["http"] == pytest.approx(drain_s)
    assert allowed["pipeline"] == pytest.approx(drain_s - 1.0)
    assert allowed["platform"] == pytest.approx(STOP_BUDGET_S - 5.0)
    assert clock.monotonic() - t0 <= STOP_BUDGET_S


def test_a_second_stop_request_skips_the_drain_but_still_restores():
    clock = ManualClock()
    allowed = {}
    sup = Supervisor([Stage("platform", lambda: None, lambda t: allowed.__setitem__("platform", t), restore=True),
                      Stage("pipeline", lambda: None, lambda t: allowed.__setitem__("pipeline", t))], clock)
    sup.start()
    sup.stop(hurry=lambda: True)
    assert allowed["pipeline"] <= 0.2
    assert allowed["platform"] >= RESTORE_RESERVE_S


def test_a_stage_failing_to_start_stops_what_started_in_reverse():
    clock = ManualClock()
    done = []

    def boom():
        raise RuntimeError("no")

    sup = Supervisor([Stage("a", lambda: done.append("start a"), lambda t: done.append("stop a"), restore=True),
                      Stage("b", lambda: done.append("start b"), lambda t: done.append("stop b")),
                      Stage("c", boom, lambda t: done.append("stop c"))], clock)
    with pytest.raises(RuntimeError):
        sup.start()
    assert done == ["start a", "start b", "stop b", "stop a"]


def test_a_dying_telemetry_thread_stops_the_daemon_with_exit_1_and_restores(tmp_path, caplog):
    h = Harness(tmp_path).start()
    h.wait(lambda: h.service.ready_sent, what="READY")
    h.wait(lambda: h.notifier.sent("WATCHDOG=1"), what="the watchdog fed")
    with caplog.at_level(logging.ERROR):
        h.platform.kill_telemetry.set()
        assert h.join() == 1
    assert "worker fake-telemetry died" in caplog.text
    assert any(r.exc_info for r in caplog.records if "fake-telemetry" in r.getMessage())  # with traceback
    assert "platform.stop restore=True" in h.events
    errors = h.parts.metrics.registry.get_sample_value("jetvit_errors_total", {"component": "fake-telemetry"})
    assert errors == 1


def test_a_wedged_worker_starves_the_watchdog_and_fails_healthz(tmp_path, monkeypatch):
    monkeypatch.setattr("jetvit_daemon.service.status.HEARTBEAT_MAX_AGE_S", 0.3)
    h = Harness(tmp_path).start()
    try:
        h.wait(lambda: h.notifier.sent("WATCHDOG=1"), what="the watchdog fed")
        h.platform.wedge_telemetry.set()
        h.wait(lambda: not h.service.snapshot().healthy, what="unhealthy")
        fed = len(h.notifier.sent("WATCHDOG=1"))
        code, body = _get(h, "/healthz")
        assert code == 503 and "fake-telemetry has not turned" in body
        time.sleep(0.5)  # ten watchdog intervals
        assert len(h.notifier.sent("WATCHDOG=1")) == fed
    finally:
        h.stop()


def test_readiness_needs_a_first_inference_fresh_telemetry_and_not_stopping(tmp_path):
    h = Harness(tmp_path)
    snap = h.service.snapshot()
    assert not snap.ready and "starting" in snap.ready_problems()
    h.start()
    try:
        h.wait(lambda: h.service.ready_sent, what="READY")
        code, body = _get(h, "/readyz")
        assert code == 200, body
        (ready,) = h.notifier.sent("READY=1")
        assert "STATUS=fps in" in ready
        h.platform.stale = True
        code, body = _get(h, "/readyz")
        assert code == 503 and json.loads(body)["problems"] == ["telemetry is stale"]
        assert _get(h, "/healthz")[0] == 200  # alive all the same
        h.platform.stale = False
        assert _get(h, "/readyz")[0] == 200
        status = json.loads(_get(h, "/status")[1])
        assert status["ready"] and status["policy"]["file"] == str(h.policy_file)
        assert status["governor"]["state"] == "top"
    finally:
        h.stop()
    assert "stopping" in h.service.snapshot().ready_problems()


def test_head_answers_every_endpoint_without_a_body(tmp_path):
    h = Harness(tmp_path).start()
    try:
        h.wait(lambda: h.service.ready_sent, what="READY")
        host, port = h.service.http.address
        for path in ("/metrics", "/healthz", "/readyz", "/status"):
            req = urllib.request.Request(f"http://{host}:{port}{path}", method="HEAD")
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 200 and resp.read() == b""
                assert int(resp.headers["Content-Length"]) > 0
    finally:
        h.stop()


def test_a_policy_reload_is_announced_reloading_then_ready(tmp_path):
    h = Harness(tmp_path).start()
    try:
        h.wait(lambda: h.service.ready_sent, what="READY")
        edited = dict(POLICY, ladder=[dict(s, batch_size=4) for s in POLICY["ladder"]])
        h.policy_file.write_text(yaml.safe_dump(edited))
        h.wait(lambda: h.parts.reloads.last is not None, what="the reload")
        assert h.parts.reloads.last.result == "ok"
        messages = list(h.notifier.messages)
        reloading = [i for i, m in enumerate(messages) if m.startswith("RELOADING=1")]
        assert len(reloading) == 1
        assert "MONOTONIC_USEC=" in messages[reloading[0]]
        assert int(messages[reloading[0]].split("MONOTONIC_USEC=")[1]) > 0
        assert any(m.startswith("READY=1") for m in messages[reloading[0] + 1:])
        h.policy_file.write_text("ladder: [\n")  # a bad edit: refused, still announced as done
        h.wait(lambda: h.parts.reloads.last.result == "error", what="the refused reload")
        assert len(h.notifier.sent("RELOADING=1")) == 2
        assert h.parts.governor.policy.ladder[0].batch_size == 4  # the last good policy runs
    finally:
        h.stop()


@pytest.mark.parametrize("bad", ["directory", "binary", "missing"])
def test_policy_reload_input_errors_are_refused_reloads_not_a_dead_watcher(tmp_path, bad):
    h = Harness(tmp_path, policy_permissions="ignore").start()
    try:
        h.wait(lambda: h.service.ready_sent, what="READY")
        h.policy_file.unlink()
        if bad == "directory":
            h.policy_file.mkdir()
        elif bad == "binary":
            h.policy_file.write_bytes(b"\xff\xfe\x00ladder\x80\x81")
        h.service.signals.request_reload()  # SIGHUP: read whatever is there now
        h.wait(lambda: h.parts.reloads.last is not None, what="the refused reload")
        assert h.parts.reloads.last.result == "error"
        assert str(h.policy_file) in h.parts.reloads.last.message
        assert h.service.snapshot().healthy  # the watcher lives on
    finally:
        assert h.stop() == 0
    assert "platform.stop restore=True" in h.events


def test_sighups_coalesce_into_one_reload_and_do_not_delay_the_stop(tmp_path):
    h = Harness(tmp_path).start()
    h.wait(lambda: h.service.ready_sent, what="READY")
    for _ in range(1000):
        h.service.signals.request_reload()
    h.wait(lambda: h.parts.reloads.last is not None, what="a reload")
    assert h.stop() == 0
    assert h.parts.metrics.registry.get_sample_value("jetvit_policy_reloads_total", {"result": "ok"}) <= 2


def test_a_model_failing_every_batch_is_unhealthy_logged_once_and_ends_the_daemon_with_exit_5(tmp_path, caplog):
    # Exit 5, not 3: the model loaded and warmed up, so a restart may help (a GPU hang); the unit restarts 5.
    h = Harness(tmp_path)
    h.runner.fail = True
    with caplog.at_level(logging.WARNING):
        h.start()
        h.wait(lambda: h.runner.batches >= 20, what="20 failed batches")
        code, body = _get(h, "/healthz")
        assert code == 503 and "inference has failed every batch" in body
        assert _get(h, "/readyz")[0] == 503
        assert not h.notifier.sent("READY=1")
        h.clock.advance(app.INFERENCE_FAILING_MAX_S + 1)
        assert h.join() == app.EXIT_INFERENCE_FAILING == 5
    failures = [r for r in caplog.records if "inference batch" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info  # one traceback, not one per batch
    assert "failed every batch" in caplog.text
    assert h.parts.metrics.registry.get_sample_value("jetvit_inference_failed_batches_total") >= 20
    assert "platform.stop restore=True" in h.events


def test_a_model_failing_warm_up_is_an_engine_error_and_the_board_is_restored(tmp_path):
    from jetvit_daemon.errors import EngineError

    h = Harness(tmp_path)
    h.runner.fail_warm_up = True
    h.start()
    with pytest.raises(EngineError, match="failed its warm-up batch: RuntimeError: CUDA error"):
        h.join()
    assert h.events[-1] == "platform.stop restore=True"


def test_http_binds_ipv6_and_a_client_hanging_up_is_not_an_error(caplog):
    import socket

    from prometheus_client import CollectorRegistry

    from jetvit_daemon.service.http import HttpServer

    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    server = HttpServer("::", 0, CollectorRegistry(), lambda: (True, {}), lambda: {"ok": 1})
    server.start()
    try:
        port = server.address[1]
        with urllib.request.urlopen(f"http://[::1]:{port}/status", timeout=5) as resp:
            assert json.loads(resp.read()) == {"ok": 1}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:  # dual-stack
            assert resp.status == 200
        with caplog.at_level(logging.DEBUG):
            for _ in range(5):  # ask, then hang up before the answer is read
                s = socket.create_connection(("::1", port))
                s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            time.sleep(0.5)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert "Traceback" not in caplog.text
    finally:
        server.stop()


def test_status_command_asks_the_running_daemon(tmp_path, capsys):
    from jetvit_daemon.cli import main

    h = Harness(tmp_path).start()
    try:
        h.wait(lambda: h.service.ready_sent, what="READY")
        host, port = h.service.http.address
        assert main(["status", "--url", f"http://{host}:{port}", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["ready"] and data["policy"]["file"] == str(h.policy_file)
        assert main(["status", "--url", f"http://{host}:{port}"]) == 0
        text = capsys.readouterr().out
        assert "ready" in text and "governor: state top" in text and "worker fake-telemetry: alive" in text
    finally:
        h.stop()
    assert main(["status", "--url", f"http://{host}:{port}", "--timeout", "2"]) == 1
    assert "not answering" in capsys.readouterr().err
