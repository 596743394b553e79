"""sinks: entries in daemon.yaml, chosen by `type`: errors name the file, the line and the field."""

import pytest

from jetvit_daemon.config import load_config
from jetvit_daemon.config_sinks import HttpSinkConfig, JsonlSinkConfig, MqttSinkConfig
from jetvit_daemon.errors import ConfigError


def test_every_sink_type_loads_and_relative_paths_resolve_against_the_file(tmp_path):
    (tmp_path / "d.yaml").write_text(
        "sinks:\n"
        "  - {path: out.jsonl}\n"
        "  - type: mqtt\n"
        "    username: jetson\n"
        "    password_file: secrets/mqtt\n"
        "    tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client.key}\n"
        "  - {type: http}\n")
    jsonl, mqtt, http = load_config(tmp_path / "d.yaml").sinks
    assert isinstance(jsonl, JsonlSinkConfig) and jsonl.path == tmp_path / "out.jsonl"
    assert isinstance(mqtt, MqttSinkConfig) and mqtt.password_file == tmp_path / "secrets" / "mqtt"
    assert mqtt.tls is not None and mqtt.tls.ca_file == tmp_path / "ca.pem" and mqtt.tls.key_file == tmp_path / \
        "client.key"
    assert (mqtt.qos, mqtt.port, mqtt.publish, mqtt.topic_prefix, mqtt.stats_interval_s) == (1, 1883, "every", None, 10)
    assert isinstance(http, HttpSinkConfig)


def test_bad_sink_entries_name_the_line_and_the_field(tmp_path):
    bad = tmp_path / "daemon.yaml"
    bad.write_text(
        "sinks:\n"
        "  - path: a.jsonl\n"
        "    keep: -1\n"
        "  - type: mqtt\n"
        "    port: high\n"
        "    hots: x\n"
        "  - type: kafka\n"
        "  - type: mqtt\n"
        "    password_env: MQTT_PW\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{bad}:3: sinks.0.keep: Input should be greater than or equal to 0 (got -1)"
    assert lines[1].startswith(f"{bad}:5: sinks.1.port: Input should be a valid integer")
    assert lines[2].startswith(f"{bad}:6: sinks.1.hots: unknown field; valid here: client_id, host,")
    assert lines[3] == f"{bad}:7: sinks.2: unknown sink type; valid: jsonl, mqtt, http (got {{'type': 'kafka'}})"
    assert lines[4].startswith(f"{bad}:8: sinks.3: Value error, a password needs a username")
