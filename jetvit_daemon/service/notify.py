"""systemd's sd_notify protocol (sd_notify(3)) without libsystemd: READY=1, RELOADING=1, STATUS=, WATCHDOG=1,
STOPPING=1.

NOTIFY_SOCKET and WATCHDOG_USEC are set by systemd for Type=notify services with WatchdogSec=: the service
manager's contract, read once at construction.
"""

import logging
import os
import socket
import time
from typing import Mapping, Optional

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends notifications when running under systemd; does nothing otherwise. Thread-safe."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET")
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace socket
        self._address = address
        usec = env.get("WATCHDOG_USEC")
        self.watchdog_interval_s: Optional[float] = int(usec) / 1e6 / 2.0 if usec and usec.isdigit() else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, message: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as exc:
            log.warning("sd_notify %r failed: %s", message, exc)

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def reloading(self) -> None:
        # sd_notify(3): RELOADING=1 must carry MONOTONIC_USEC, CLOCK_MONOTONIC in µs, so that the manager can
        # tell this reload from an older one (systemd 253+ Type=notify-reload relies on it).
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def reloaded(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")
