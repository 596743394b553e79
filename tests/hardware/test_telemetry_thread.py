"""ThreadedTelemetry, the lifecycle shared by the tegrastats, sysfs and jtop sources: what the sources' own
tests do not reach (double start, restart after stop, a worker that will not stop)."""

import logging
import threading

import pytest

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.errors import TelemetryError
from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.hardware.telemetry_thread import ThreadedTelemetry


class OneSample(ThreadedTelemetry):
    """Stores one sample once `go` is set; runs until stop (and, when `stuck`, on until `release`)."""

    name = "one-sample"
    _thread_name = "one-sample-telemetry"
    _stop_warning = "one-sample thread did not stop within %.1f s"

    def __init__(self, clock: ManualClock, interval_s: float = 1.0, stuck: bool = False) -> None:
        super().__init__(clock, interval_s)
        self.go = threading.Event()
        self.stored = threading.Event()
        self.release = threading.Event()
        self._stuck = stuck

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            if self.go.is_set() and not self.stored.is_set():
                with self._lock:
                    self._latest = TelemetrySample(t_mono_s=self._clock.monotonic())
                self.stored.set()
        if self._stuck:
            self.release.wait(5.0)


def test_staleness_counts_from_start_then_from_the_last_sample():
    clock = ManualClock()
    source = OneSample(clock, interval_s=1.0)
    assert source.is_stale() and source.latest() is None  # never started
    source.start()
    try:
        clock.advance(3.0)
        assert not source.is_stale()  # 3 intervals of grace after start
        clock.advance(0.1)
        assert source.is_stale()
        source.go.set()
        assert source.stored.wait(5.0)
        sample = source.latest()
        assert sample is not None and sample.t_mono_s == clock.monotonic()
        assert not source.is_stale()
        clock.advance(3.1)
        assert source.is_stale()
    finally:
        source.stop()
    assert source.failure is None


def test_second_start_is_refused_and_a_stopped_source_starts_again():
    source = OneSample(ManualClock())
    source.start()
    try:
        with pytest.raises(TelemetryError, match="OneSample already started"):
            source.start()
    finally:
        source.stop()
    assert not any(t.name == "one-sample-telemetry" for t in threading.enumerate())
    source.start()
    source.stop()


def test_a_worker_that_does_not_stop_is_reported_and_let_go(caplog: pytest.LogCaptureFixture):
    source = OneSample(ManualClock(), stuck=True)
    source.start()
    try:
        with caplog.at_level(logging.WARNING):
            source.stop(timeout_s=0.2)
        [record] = [r for r in caplog.records if r.name == OneSample.__module__]
        assert record.getMessage() == "one-sample thread did not stop within 0.2 s"
        source.start()  # stop() let the stuck thread go: the owner may start a fresh one
    finally:
        source.release.set()
        source.stop()
