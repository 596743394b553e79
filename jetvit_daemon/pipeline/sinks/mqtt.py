"""Results over MQTT (paho-mqtt 2.x, the optional `mqtt` extra).

Topics under `topic_prefix` (default `jetvit/<hostname>`):
  <prefix>/status           retained `online` / `offline` (the last will, and published before a clean stop:
                            a graceful DISCONNECT does not make the broker send the will, MQTT 3.1.1 §3.14.4)
  <prefix>/<source>/result  one schema-v1 record per result (`publish`: every, on_change of the label, or rate)
  <prefix>/<source>/state   retained: the source's state, published on change and on every (re)connect
  <prefix>/stats            every `stats_interval_s`: fps, latency, power, mode

paho's network thread connects and reconnects with exponential backoff (`reconnect_min_s` doubling up to
`reconnect_max_s`); this sink's own thread publishes. While disconnected, results wait in the sink's queue
(the newest `queue_size` kept, the rest counted as dropped `disconnected`). The password is read once at
start and never logged.
"""

import json
import logging
import os
import ssl
from typing import Any, Callable, Dict, List, Optional

from jetvit_daemon.clock import Clock
from jetvit_daemon.config_sinks import MqttSinkConfig
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.pipeline.frames import Result
from jetvit_daemon.pipeline.sinks.queued import QueuedSink
from jetvit_daemon.pipeline.sinks.schema import SCHEMA_VERSION, ResultEncoder, wall_time_text

log = logging.getLogger(__name__)

# Messages paho may hold for QoS 1/2 (sent but not yet acknowledged, resent after a reconnect); beyond it a
# publish is refused and counted as dropped `queue_full`. The sink's own queue is the bulk buffer.
PAHO_QUEUE_MAX = 200
# How often the sources' states are polled for changes.
STATE_POLL_S = 1.0
# How long a clean stop waits for the broker to acknowledge `offline`.
OFFLINE_TIMEOUT_S = 2.0

Provider = Callable[[], Dict[str, Any]]


def topic_part(name: str) -> str:
    """A source name as one topic level: no separators or wildcards (`/`, `+`, `#`)."""
    return "".join("_" if c in "/+#" else c for c in name) or "_"


def read_password(cfg: MqttSinkConfig, where: str) -> Optional[str]:
    if cfg.password_file is not None:
        try:
            text = cfg.password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}.password_file: cannot read {cfg.password_file}: "
                              f"{exc.strerror or exc}") from None
        lines = text.splitlines()
        return lines[0] if lines else ""
    if cfg.password_env is not None:
        value = os.environ.get(cfg.password_env)
        if value is None:
            raise ConfigError(f"{where}.password_env: the environment variable {cfg.password_env} is not set")
        return value
    return None


class MqttSink(QueuedSink):
    """Publishes results, source states, stats and an online/offline status to one broker.

    `stats()` and `states()` are the daemon's providers (called on the sink's thread): a dict for the stats
    topic, and {source: state dict} for the state topics. Thread-safety as `QueuedSink`.
    """

    kind = "mqtt"

    def __init__(
        self,
        cfg: MqttSinkConfig,
        encoder: ResultEncoder,
        clock: Clock,
        hostname: str,
        stats: Optional[Provider] = None,
        states: Optional[Provider] = None,
        name: str = "mqtt",
        where: str = "sinks",
        on_death: Optional[Callable[[str, BaseException], None]] = None,
        on_error: Optional[Callable[[str, BaseException], None]] = None,
    ) -> None:
        super().__init__(name, cfg.queue_size, on_death=on_death, on_error=on_error)
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise ConfigError(f"{where}: type mqtt needs paho-mqtt: pip install 'jetvit-daemon[mqtt]'") from None
        self._mqtt = mqtt
        self.cfg = cfg
        self._encoder = encoder
        self._clock = clock
        self._stats = stats
        self._states = states
        self.prefix = cfg.topic_prefix or f"jetvit/{topic_part(hostname)}"
        self.status_topic = f"{self.prefix}/status"
        self.client_id = cfg.client_id or f"jetvit-{hostname}"
        self._last_label: Dict[str, str] = {}
        self._last_sent_s: Dict[str, float] = {}
        self._published_states: Dict[str, str] = {}
        self._republish = False
        self._next_stats_s = clock.monotonic() + cfg.stats_interval_s
        self._next_state_poll_s = clock.monotonic()
        self._stopping = False  # our own DISCONNECT: not worth a warning
        self.client = self._make_client(mqtt, read_password(cfg, where), where)

    # -- construction --------------------------------------------------------------------------------------
    def _make_client(self, mqtt: Any, password: Optional[str], where: str) -> Any:
        cfg = self.cfg
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv311)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, password)
        if cfg.tls is not None:
            tls = cfg.tls
            try:
                client.tls_set(ca_certs=str(tls.ca_file) if tls.ca_file else None,
                               certfile=str(tls.cert_file) if tls.cert_file else None,
                               keyfile=str(tls.key_file) if tls.key_file else None,
                               cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"{where}.tls: cannot load the certificates: {exc}") from None
            if tls.insecure:
                client.tls_insecure_set(True)
        client.reconnect_delay_set(min_delay=cfg.reconnect_min_s, max_delay=cfg.reconnect_max_s)
        client.max_queued_messages_set(PAHO_QUEUE_MAX)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    # -- paho's network thread -----------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("mqtt %s: broker %s:%d refused the connection: %s", self.name, self.cfg.host,
                        self.cfg.port, reason_code)
            return
        log.info("mqtt %s: connected to %s:%d as %s, topics under %s/", self.name, self.cfg.host, self.cfg.port,
                 self.client_id, self.prefix)
        client.publish(self.status_topic, "online", qos=1, retain=True)
        self._republish = True  # the broker may have lost retained states (restart without persistence)
        self._set_connected(True)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if self.connected and not self._stopping:
            log.warning("mqtt %s: disconnected from %s:%d (%s); reconnecting with backoff up to %d s",
                        self.name, self.cfg.host, self.cfg.port, reason_code, self.cfg.reconnect_max_s)
        self._set_connected(False)

    # -- the sink's thread ---------------------------------------------------------------------------------
    def _open(self) -> None:
        log.info("mqtt %s: connecting to %s:%d", self.name, self.cfg.host, self.cfg.port)
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def _wanted(self, r: Result) -> bool:
        mode = self.cfg.publish
        if mode == "on_change":
            changed = self._last_label.get(r.source) != r.label
            self._last_label[r.source] = r.label
            return changed
        if mode == "rate":
            last = self._last_sent_s.get(r.source)
            if last is not None and r.t_result_s - last < 1.0 / self.cfg.max_rate_hz:
                return False
            self._last_sent_s[r.source] = r.t_result_s
        return True

    def _deliver(self, batch: List[Result]) -> int:
        mqtt = self._mqtt
        sent = skipped = 0
        for r in batch:
            if not self._wanted(r):
                skipped += 1
                continue
            info = self.client.publish(f"{self.prefix}/{topic_part(r.source)}/result", self._encoder.text(r),
                                       qos=self.cfg.qos)
            if info.rc == mqtt.MQTT_ERR_SUCCESS or (info.rc == mqtt.MQTT_ERR_NO_CONN and self.cfg.qos > 0):
                sent += 1  # QoS 1/2 without a connection: paho holds it and sends it after the reconnect
            elif info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self._count_dropped("queue_full")
            elif info.rc == mqtt.MQTT_ERR_NO_CONN:
                self._count_dropped("disconnected")
            else:
                self._count_dropped("error")
        if skipped:
            self._count_skipped(skipped)
        return sent

    def _tick(self) -> None:
        if not self.connected:
            return
        now = self._clock.monotonic()
        if self._states is not None and (self._republish or now >= self._next_state_poll_s):
            self._publish_states(force=self._republish)
            self._republish = False
            self._next_state_poll_s = now + STATE_POLL_S
        if self._stats is not None and now >= self._next_stats_s:
            self._next_stats_s = now + self.cfg.stats_interval_s
            payload = dict(self._stats(), v=SCHEMA_VERSION, ts=wall_time_text(self._clock.time()))
            self.client.publish(f"{self.prefix}/stats", json.dumps(payload, default=str), qos=self.cfg.qos)

    def _publish_states(self, force: bool) -> None:
        assert self._states is not None
        for source, state in self._states().items():
            text = json.dumps(state, default=str, sort_keys=True)
            if force or self._published_states.get(source) != text:
                self.client.publish(f"{self.prefix}/{topic_part(source)}/state", text, qos=self.cfg.qos,
                                    retain=True)
                self._published_states[source] = text

    def _shutdown(self) -> None:
        self._stopping = True
        try:
            if self.connected:
                info = self.client.publish(self.status_topic, "offline", qos=1, retain=True)
                info.wait_for_publish(OFFLINE_TIMEOUT_S)
                log.info("mqtt %s: published offline, disconnecting", self.name)
            self.client.disconnect()
        except Exception as exc:  # the stop must go on; the broker sends the will if this failed
            log.warning("mqtt %s: clean disconnect failed: %s", self.name, exc)
        finally:
            self.client.loop_stop()
            self._set_connected(False)
