"""The MQTT sink against Debian's real mosquitto on 127.0.0.1: results, retained status and state, stats, the
queue while the broker is down, reconnection, `offline` before a clean stop, and credentials."""

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sinkhelpers import encoder, result, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mosquitto_broker import Broker, Subscriber, require_paho, retained

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.config_sinks import MqttSinkConfig
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.pipeline.sinks.mqtt import MqttSink

require_paho()
pytestmark = pytest.mark.slow


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()


def make_sink(port, states=None, stats=None, **cfg):
    config = MqttSinkConfig.model_validate(dict({"type": "mqtt", "port": port, "topic_prefix": "t/board",
                                                 "reconnect_max_s": 1}, **cfg))
    clock = SystemClock()
    return MqttSink(config, encoder(), clock, "board", stats=stats, states=states)


def now_result(i, **kw):
    t = SystemClock().monotonic()
    return result(i, t_capture_s=t - 0.01, **kw)


def test_results_retained_status_and_state_arrive_and_a_clean_stop_publishes_offline(broker):
    sub = Subscriber(broker.port, "t/#")
    sink = make_sink(broker.port, states=lambda: {"cam0": {"state": "running"}},
                     stats=lambda: {"fps_in": 30.0, "mode": "MAXN_SUPER"}, stats_interval_s=0.5)
    sink.start()
    try:
        wait_until(lambda: sink.connected, what="the connection")
        sink.emit([now_result(i) for i in range(5)])
        sub.wait_for("t/board/cam0/result")
        wait_until(lambda: len(sub.on("t/board/cam0/result")) == 5, what="all five results")
        records = [json.loads(p) for p in sub.on("t/board/cam0/result")]
        assert [r["frame"] for r in records] == list(range(5)) and records[0]["v"] == 1
        stats = json.loads(sub.wait_for("t/board/stats"))
        assert stats["fps_in"] == 30.0 and stats["mode"] == "MAXN_SUPER" and stats["v"] == 1
        assert retained(broker.port, "t/board/status") == "online"
        assert json.loads(retained(broker.port, "t/board/cam0/state")) == {"state": "running"}
        assert sink.stats().sent_total == 5
    finally:
        sink.close()
    sub.wait_for("t/board/status", "offline")
    assert retained(broker.port, "t/board/status") == "offline"
    sub.close()


def test_broker_down_the_queue_keeps_the_newest_counts_drops_and_delivery_resumes_on_return(broker):
    sink = make_sink(broker.port, queue_size=20)
    sink.start()
    try:
        wait_until(lambda: sink.connected, what="the connection")
        broker.stop()
        wait_until(lambda: not sink.connected, what="the sink to notice the broker is gone")
        for i in range(100):  # emit never blocks, broker or not
            sink.emit([now_result(i)])
        s = sink.stats()
        assert s.queue_depth == 20 and s.dropped_total["disconnected"] == 80 and not s.connected
        broker.start()
        sub = Subscriber(broker.port, "t/#")
        wait_until(lambda: sink.connected, timeout_s=30, what="the reconnection")
        sub.wait_for("t/board/status", "online")  # republished: the restarted broker had lost it
        frames = lambda: [json.loads(p)["frame"] for p in sub.on("t/board/cam0/result")]  # noqa: E731
        # The 20 newest were kept; some may have reached the broker before the subscriber did.
        wait_until(lambda: sink.stats().queue_depth == 0, what="the queue to drain")
        sink.emit([now_result(100)])
        wait_until(lambda: 100 in frames(), what="a new result after the reconnection")
        assert all(f >= 80 for f in frames())
        sub.close()
    finally:
        sink.close()


def test_on_change_publishes_only_label_changes_and_rate_caps_per_source(broker):
    sub = Subscriber(broker.port, "t/#")
    on_change = make_sink(broker.port, publish="on_change", topic_prefix="t/change", client_id="c1")
    rate = make_sink(broker.port, publish="rate", max_rate_hz=2, topic_prefix="t/rate", client_id="c2")
    for s in (on_change, rate):
        s.start()
    try:
        wait_until(lambda: on_change.connected and rate.connected, what="both connections")
        labels = ["1", "1", "2", "2", "2", "1"]
        on_change.emit([now_result(i, label=label) for i, label in enumerate(labels)])
        wait_until(lambda: on_change.stats().sent_total + on_change.stats().skipped_total == 6)
        assert (on_change.stats().sent_total, on_change.stats().skipped_total) == (3, 3)
        wait_until(lambda: len(sub.on("t/change/cam0/result")) == 3, what="the three changes")
        assert [json.loads(p)["label"] for p in sub.on("t/change/cam0/result")] == ["1", "2", "1"]
        # 30 results 0.1 s apart (result time is what counts): at most 2 per second → every 5th.
        base = SystemClock().monotonic()
        rate.emit([result(i, t_capture_s=base + 0.1 * i, latency_s=0.0) for i in range(30)])
        wait_until(lambda: rate.stats().sent_total + rate.stats().skipped_total == 30)
        assert rate.stats().sent_total == 6 and rate.stats().skipped_total == 24
        wait_until(lambda: len(sub.on("t/rate/cam0/result")) == 6)
        assert [json.loads(p)["frame"] for p in sub.on("t/rate/cam0/result")] == [0, 5, 10, 15, 20, 25]
    finally:
        for s in (on_change, rate):
            s.close()
        sub.close()


def test_password_from_the_environment_or_a_file_and_never_in_the_log(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    pw_file = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw_file), "jetson", "s3cret-Pw"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    b = Broker(tmp_path)
    b.conf.write_text(b.conf.read_text().replace("allow_anonymous true", "allow_anonymous false") +
                      f"password_file {pw_file}\n")
    b.start()
    try:
        monkeypatch.setenv("JETVIT_TEST_MQTT_PASSWORD", "s3cret-Pw")
        env_sink = make_sink(b.port, username="jetson", password_env="JETVIT_TEST_MQTT_PASSWORD", client_id="e")
        secret = tmp_path / "mqtt-password"
        secret.write_text("s3cret-Pw\n")
        file_sink = make_sink(b.port, username="jetson", password_file=str(secret), client_id="f")
        secret.write_text("wrong-Pw\n")
        bad_sink = make_sink(b.port, username="jetson", password_file=str(secret), client_id="b")
        for s in (env_sink, file_sink, bad_sink):
            s.start()
        try:
            wait_until(lambda: env_sink.connected and file_sink.connected, what="authenticated connections")
            wait_until(lambda: "refused the connection" in caplog.text, what="the refusal of the wrong password")
            assert not bad_sink.connected
        finally:
            for s in (env_sink, file_sink, bad_sink):
                s.close()
        assert "s3cret" not in caplog.text and "wrong-Pw" not in caplog.text
    finally:
        b.stop()
    monkeypatch.delenv("JETVIT_TEST_MQTT_PASSWORD")
    with pytest.raises(ConfigError, match=r"sinks\.password_env: the environment variable JETVIT_TEST_MQTT_PASSWORD"):
        make_sink(1883, username="jetson", password_env="JETVIT_TEST_MQTT_PASSWORD")


def test_default_topic_prefix_and_client_id_name_the_host():
    config = MqttSinkConfig.model_validate({"type": "mqtt"})
    sink = MqttSink(config, encoder(), SystemClock(), "orin-01")
    assert (sink.prefix, sink.status_topic, sink.client_id) == ("jetvit/orin-01", "jetvit/orin-01/status",
                                                                "jetvit-orin-01")
    sink.close()


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(d):
    """A test CA, a broker certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA",
             cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, ext in (("server", ["-extfile", "san.ext"]), ("client", [])):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", *ext, cwd=d)


def test_tls_with_a_client_certificate_connects_and_without_one_is_refused(tmp_path):
    make_certs(tmp_path)
    b = Broker(tmp_path)
    b.conf.write_text(b.conf.read_text() + f"cafile {tmp_path / 'ca.pem'}\ncertfile {tmp_path / 'server.pem'}\n"
                      f"keyfile {tmp_path / 'server.key'}\nrequire_certificate true\n")
    b.start()
    good = make_sink(b.port, client_id="tls-good", tls={"ca_file": str(tmp_path / "ca.pem"),
                                                        "cert_file": str(tmp_path / "client.pem"),
                                                        "key_file": str(tmp_path / "client.key")})
    no_cert = make_sink(b.port, client_id="tls-nocert", tls={"ca_file": str(tmp_path / "ca.pem")})
    for s in (good, no_cert):
        s.start()
    try:
        wait_until(lambda: good.connected, what="the TLS connection")
        good.emit([now_result(1)])
        wait_until(lambda: good.stats().sent_total == 1, what="a result over TLS")
        threading.Event().wait(1.0)
        assert not no_cert.connected
    finally:
        for s in (good, no_cert):
            s.close()
        b.stop()
    with pytest.raises(ConfigError, match=r"sinks\.tls: cannot load the certificates"):
        make_sink(1883, tls={"ca_file": str(tmp_path / "missing.pem")})
