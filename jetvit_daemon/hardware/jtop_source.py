"""Optional third telemetry source: jtop (jetson-stats).

jetson-stats is AGPL-3.0 and an optional extra (`pip install 'jetvit-daemon[jtop]'`), so it is imported only
when a `JtopTelemetry` is built, never at module import. It talks to the `jtop.service` daemon over
/run/jtop.sock, which must be running on the board. Kept thin: it maps `jetson.stats` / `jetson.gpu` onto a
`TelemetrySample` and applies this project's own board-power rule (not jtop's "Power TOT", which on boards
without a total rail is a plain sum of every rail, sub-rails included).
"""

import logging
from typing import Any, Callable, Dict, List, Mapping, Optional

from jetvit_daemon.clock import Clock
from jetvit_daemon.errors import TelemetryError
from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.hardware.tegrastats import board_power_from_rails, is_sensor_off_c
from jetvit_daemon.hardware.telemetry_thread import ThreadedTelemetry

log = logging.getLogger(__name__)

__all__ = ["JtopTelemetry", "sample_from_jtop"]

_INSTALL_HINT = (
    "the jtop telemetry source needs jetson-stats (AGPL-3.0), which is not installed: "
    "pip install 'jetvit-daemon[jtop]' and run the jtop service (sudo systemctl start jtop.service), "
    "or choose the tegrastats or sysfs source"
)


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def sample_from_jtop(stats: Mapping[str, Any], gpu: Mapping[str, Any], t_mono_s: float) -> TelemetrySample:
    """A `TelemetrySample` from jtop's `jetson.stats` (flat dict: "GPU" load %, "CPU<n>" load % or "OFF",
    "Temp <name>" °C, "Power <rail>" mW) and `jetson.gpu` (per GPU: "freq": {"cur": kHz})."""
    temps: Dict[str, float] = {}
    rails_mw: Dict[str, float] = {}
    cpu_loads: List[float] = []
    for key, value in stats.items():
        number = _number(value)
        if number is None:
            continue
        if key.startswith("Temp "):
            if not is_sensor_off_c(number):
                temps[key[5:].strip().lower()] = number
        elif key.startswith("Power ") and key != "Power TOT":
            rails_mw[key[6:].strip()] = number
        elif key.startswith("CPU") and key[3:].isdigit():
            cpu_loads.append(number)
    gpu_freq_hz: Optional[float] = None
    for entry in gpu.values():
        freq = entry.get("freq", {}) if isinstance(entry, Mapping) else {}
        cur_khz = _number(freq.get("cur")) if isinstance(freq, Mapping) else None
        if cur_khz is not None:
            gpu_freq_hz = max(gpu_freq_hz or 0.0, cur_khz * 1000.0)
    board_mw = board_power_from_rails(rails_mw)
    return TelemetrySample(
        t_mono_s=t_mono_s,
        gpu_load_pct=_number(stats.get("GPU")),
        gpu_freq_hz=gpu_freq_hz,
        board_power_w=board_mw / 1000.0 if board_mw is not None else None,
        cpu_load_pct=sum(cpu_loads) / len(cpu_loads) if cpu_loads else None,
        temps_c=temps,
        rails_w={name: mw / 1000.0 for name, mw in rails_mw.items()},
    )


class JtopTelemetry(ThreadedTelemetry):
    """Telemetry from the jtop service; implements `TelemetrySource` (name "jtop").

    >>> source = JtopTelemetry(SystemClock(), interval_s=1.0)   # doctest: +SKIP
    >>> source.start(); source.latest(); source.stop()          # doctest: +SKIP

    The constructor raises TelemetryError when jetson-stats is not installed.

    One worker thread owns the jtop client. `latest()` and `is_stale()` are thread-safe; `start()`/`stop()`
    belong to the owner.
    """

    name = "jtop"
    _thread_name = "jtop-telemetry"
    _stop_warning = "jtop telemetry thread did not stop within %.1f s"

    def __init__(
        self,
        clock: Clock,
        interval_s: float = 1.0,
        on_event: Optional[Callable[[str, str], None]] = None,
    ) -> None:
        try:
            import jtop  # optional and AGPL: imported only when this source is chosen
        except ImportError as exc:
            raise TelemetryError(_INSTALL_HINT) from exc
        super().__init__(clock, interval_s)
        self._jtop_module: Any = jtop
        self._on_event = on_event

    def _run(self) -> None:
        client: Any = None
        try:
            client = self._jtop_module.jtop(interval=self._interval_s)
            client.start()
            # ok() blocks until jtop has new data (about one interval), so stop is noticed within that.
            while not self._stop.is_set() and client.ok():
                self._beat()
                sample = sample_from_jtop(client.stats, client.gpu, self._clock.monotonic())
                with self._lock:
                    self._latest = sample
        except Exception as exc:  # reported, then relayed by the WorkerThread (traceback, daemon stops)
            self._emit("worker_died", f"jtop telemetry died: {exc!r}")
            raise
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception:
                    log.exception("jtop telemetry: closing the jtop client failed")
