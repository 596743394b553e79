"""The `Platform` interface: what the governor and the service may ask of a board.

`JetsonPlatform` (hardware/jetson.py) implements it on a real board and, unchanged, on the simulated board
(whose sysfs tree and programs stand in for the hardware). Units are SI in the names: Hz, W, °C, seconds.
"""

import abc
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Protocol, Sequence, Tuple

from jetvit_daemon.workers import WorkerThread


@dataclass(frozen=True)
class PowerMode:
    """One nvpmodel power mode as the board's /etc/nvpmodel.conf defines it."""

    id: int
    name: str
    gpu_max_freq_hz: Optional[int]  # None: no cap in the conf (MAX_FREQ -1 means INT_MAX)
    online_cores: int
    tpc_pg_mask: Optional[int] = None
    fbp_pg_mask: Optional[int] = None

    def reboot_group(self) -> Tuple[Optional[int], Optional[int], int]:
        """Two modes can be switched live only when this key is equal (nvpmodel asks for a reboot otherwise:
        differing TPC/FBP power-gating masks or online core count; see jetson-reference/README.md)."""
        return (self.tpc_pg_mask, self.fbp_pg_mask, self.online_cores)


@dataclass(frozen=True)
class TelemetrySample:
    """One reading of the board, whatever the source (tegrastats, sysfs, jtop). None means "not read"."""

    t_mono_s: float  # when the daemon received it (monotonic clock)
    gpu_load_pct: Optional[float] = None
    gpu_freq_hz: Optional[float] = None
    board_power_w: Optional[float] = None  # the module's total input power, when knowable
    cpu_load_pct: Optional[float] = None  # mean over online cores
    temps_c: Mapping[str, float] = field(default_factory=dict)  # lower-cased sensor name → °C; off sensors absent
    rails_w: Mapping[str, float] = field(default_factory=dict)  # rail name as printed → W (current value)
    cpu_freq_hz: Optional[float] = None  # mean clock of the online cores
    ram_used_bytes: Optional[int] = None
    ram_total_bytes: Optional[int] = None
    swap_used_bytes: Optional[int] = None  # None also where no swap is configured (tegrastats prints no SWAP)
    swap_total_bytes: Optional[int] = None
    emc_load_pct: Optional[float] = None  # memory controller; printed as root only on most releases
    emc_freq_hz: Optional[float] = None
    fan_rpm: Optional[float] = None  # where a tachometer is present (sysfs source)

    @property
    def hottest_c(self) -> Optional[float]:
        # PMIC on the Nano prints a fixed 100 °C that is not a measurement (jetson-reference README).
        values = [v for k, v in self.temps_c.items() if k != "pmic"]
        return max(values) if values else None

    def temp_c(self, sensor: str) -> Optional[float]:
        """A named sensor's temperature, or the hottest for "hottest"."""
        if sensor == "hottest":
            return self.hottest_c
        return self.temps_c.get(sensor.lower())


@dataclass(frozen=True)
class GpuFreqState:
    """The GPU devfreq limits as read back from the board."""

    available_hz: Sequence[int]
    min_hz: int
    max_hz: int
    cur_hz: Optional[int] = None

    @property
    def pinned(self) -> bool:
        """min == max below the top of the table, or at it: what jetson_clocks leaves behind."""
        return self.min_hz == self.max_hz


class TelemetrySource(Protocol):
    """A telemetry reader (tegrastats subprocess, direct sysfs sensors, jtop). Owns its thread, if any.

    `latest()` is thread-safe. `is_stale()` is True when no good reading arrived for 3 intervals, so the
    governor can tell "no fresh reading" from "reading".
    """

    name: str

    def start(self) -> None: ...

    def stop(self, timeout_s: float = 2.0) -> None: ...

    def begin_stop(self) -> None:
        """Stopping has begun: start no child again and end the loop, without waiting (`stop()` joins)."""

    def latest(self) -> Optional[TelemetrySample]: ...

    def is_stale(self) -> bool: ...

    def workers(self) -> Sequence[WorkerThread]: ...


class Platform(abc.ABC):
    """A board the daemon controls.

    Lifecycle: `start()` (records the baseline, restoring first after a crash, and starts telemetry), then any
    number of reads and actuations from one thread (the governor's), then `stop(restore=True)`.
    Reads of `latest_telemetry()` are thread-safe; actuations must come from one thread.
    """

    description: str = "board"

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self, restore: bool = True, timeout_s: Optional[float] = None) -> None:
        """Stop telemetry and, with `restore`, put the board back; `timeout_s` bounds the whole stop (the
        service's stop deadline), None: the configured program timeouts."""

    def begin_stop(self) -> None:
        """The daemon has begun to stop (its owner calls this first, `stop()` last): from now on restart no
        child, so the end of a child during the stop is not taken for a failure. Thread-safe, does not wait."""

    @abc.abstractmethod
    def latest_telemetry(self) -> Optional[TelemetrySample]:
        """The newest sample, or None when none has arrived yet (possibly stale: see `telemetry_stale`)."""

    @abc.abstractmethod
    def telemetry_stale(self) -> bool:
        """True when no good reading arrived for the source's staleness limit (3 intervals): the one verdict
        the governor, readiness and metrics share, judged by the telemetry source itself."""

    def fresh_telemetry(self) -> Optional[TelemetrySample]:
        """The newest sample while it is fresh, else None."""
        sample = self.latest_telemetry()
        return None if sample is None or self.telemetry_stale() else sample

    def workers(self) -> Sequence[WorkerThread]:
        """The platform's long-lived threads (`WorkerThread`s: the telemetry reader), for the supervisor."""
        return ()

    @abc.abstractmethod
    def power_modes(self) -> Sequence[PowerMode]: ...

    @abc.abstractmethod
    def current_mode(self) -> PowerMode: ...

    @abc.abstractmethod
    def set_mode(self, name: str) -> PowerMode:
        """Switch the nvpmodel mode by name. Raises RebootRequiredError before calling nvpmodel when the switch
        would need a reboot, ActuationError when it fails or does not take effect."""

    @abc.abstractmethod
    def gpu_freq_state(self) -> GpuFreqState: ...

    @abc.abstractmethod
    def set_gpu_cap_hz(self, cap_hz: Optional[int]) -> int:
        """Cap the GPU maximum frequency (None: the current mode's own maximum). Snaps to an available
        frequency, keeps min ≤ max, verifies by reading back, returns the applied cap."""

    def throttle_trips_c(self) -> Mapping[str, float]:
        """Each sensor's first throttling trip point in °C (tegrastats name → °C), as the board's thermal zones
        declare them; empty where the board does not say (the governor then uses the policy's fixed
        thresholds)."""
        return {}

    def facts(self) -> Dict[str, str]:
        """What to say about the board in the first log lines and in /status."""
        return {"board": self.description}
