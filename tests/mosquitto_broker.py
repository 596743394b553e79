"""Debian's real `mosquitto`, started by a test on a free 127.0.0.1 port with its own config file in a temp
dir, and a paho subscriber that records what arrives. In CI (env CI set) a missing mosquitto is a failure;
elsewhere the tests that need it skip with the reason."""

import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)
    if found is None:
        message = "Debian's mosquitto is not installed (apt-get install mosquitto; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def require_paho() -> None:
    """paho-mqtt is in the `dev` extra: missing in CI is a failure, elsewhere the MQTT tests skip."""
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("paho-mqtt is not installed (pip install -e '.[dev]')", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """One mosquitto process; `stop()` kills it, `start()` starts it again on the same port."""

    def __init__(self, tmp: Path, port: Optional[int] = None) -> None:
        self.binary = mosquitto_binary()
        self.port = port or free_port()
        self.dir = tmp
        self.conf = tmp / "mosquitto.conf"
        # No persistence: a restarted broker has lost its retained messages, as after a crash without a disk.
        # `user`: mosquitto started as root drops to the `mosquitto` user, which cannot read the test's 0700
        # temp dir (password file, log); running as whoever runs the test keeps its files readable.
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                             f"user {getpass.getuser()}\nlog_dest file {tmp / 'mosquitto.log'}\n")
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout_s: float = 20.0) -> "Broker":
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"mosquitto did not start: {self.log()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text() if path.exists() else ""


class Subscriber:
    """A paho client subscribed to `topic`; messages kept as (topic, payload, retain), in arrival order."""

    def __init__(self, port: int, topic: str = "#") -> None:
        import paho.mqtt.client as mqtt

        self.messages: List[Tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: (c.subscribe(topic, qos=1), self._connected.set())
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self._connected.wait(20), "the test subscriber could not connect"

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def on(self, topic: str) -> List[str]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def last(self) -> Dict[str, str]:
        with self._lock:
            return {t: payload for t, payload, _ in self.messages}

    def wait_for(self, topic: str, payload: Optional[str] = None, timeout_s: float = 30.0,
                 after: int = 0) -> str:
        """The first message on `topic` (equal to `payload`, if given) among those after index `after`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for t, p, _ in self.messages[after:]:
                    if t == topic and (payload is None or p == payload):
                        return p
            time.sleep(0.05)
        raise AssertionError(f"no message {payload!r} on {topic} within {timeout_s} s; got "
                             f"{[(t, p[:60]) for t, p, _ in self.messages[-10:]]}")

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str, timeout_s: float = 10.0) -> Optional[str]:
    """What a fresh subscriber receives as the retained message on `topic` (None: nothing retained)."""
    sub = Subscriber(port, topic)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with sub._lock:
                got = [(p, r) for t, p, r in sub.messages if t == topic]
            if got:
                assert got[0][1], f"the first message on {topic} was not retained"
                return got[0][0]
            time.sleep(0.05)
        return None
    finally:
        sub.close()


def wait_retained(port: int, topic: str, expected: str, timeout_s: float = 30.0) -> None:
    """Wait until the retained message on `topic` is `expected` (a state moves on: starting → streaming)."""
    deadline = time.monotonic() + timeout_s
    got: Optional[str] = None
    while time.monotonic() < deadline:
        got = retained(port, topic)
        if got == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"retained {topic} is {got!r}, not {expected!r}")
