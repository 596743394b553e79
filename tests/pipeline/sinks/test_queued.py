"""A queued sink never makes the inference stage wait: a blocked or disconnected sink drops the oldest results
(counted by reason) and resumes with the newest."""

import threading

from sinkhelpers import GateSink, result, wait_until


def test_a_blocked_sink_does_not_block_emit_and_counts_what_it_drops():
    sink = GateSink(queue_size=100)
    sink.start()
    try:
        sink.emit([result(0)])
        wait_until(lambda: sink.stats().queue_depth == 0, what="the first result to be taken")  # now stuck
        # The sink's thread is stuck in _deliver (gate closed): emit must still return, every time.
        for i in range(1, 1001):
            sink.emit([result(i)])
        s = sink.stats()
        assert s.queue_depth == 100
        assert s.dropped_total["queue_full"] == 900
        assert s.sent_total == 0
        sink.gate.set()
        wait_until(lambda: sink.stats().sent_total == 101, what="the queue to drain")
        # It resumes with the newest: the oldest queued ones were the ones dropped.
        assert [r.frame_id for r in sink.delivered] == [0, *range(901, 1001)]
    finally:
        sink.gate.set()
        sink.close()


def test_while_disconnected_the_newest_are_kept_and_the_overflow_is_counted_as_disconnected():
    sink = GateSink(queue_size=10, connected=False)
    sink.gate.set()
    sink.start()
    try:
        sink.emit([result(i) for i in range(25)])
        threading.Event().wait(0.3)  # connected is False: the sink's thread must not take anything
        s = sink.stats()
        assert (s.queue_depth, s.sent_total, s.dropped_total["disconnected"], s.connected) == (10, 0, 15, False)
        sink._set_connected(True)
        wait_until(lambda: sink.stats().sent_total == 10, what="delivery after reconnecting")
        assert [r.frame_id for r in sink.delivered] == list(range(15, 25))
    finally:
        sink.close()


def test_a_failing_delivery_is_counted_reported_once_and_the_sink_goes_on():
    errors = []
    sink = GateSink(queue_size=100, fail=True, on_error=lambda component, exc: errors.append((component, exc)))
    sink.gate.set()
    sink.start()
    try:
        sink.emit([result(i) for i in range(5)])
        wait_until(lambda: sink.stats().dropped_total["error"] == 5, what="the failed batch to be counted")
        sink.emit([result(5)])
        wait_until(lambda: sink.stats().dropped_total["error"] == 6, what="the next batch to fail too")
        assert errors and errors[0][0] == "sink-gate" and isinstance(errors[0][1], OSError)
        sink.fail = False
        sink.emit([result(6)])
        wait_until(lambda: sink.stats().sent_total == 1, what="recovery")
        assert sink.workers[0].alive
    finally:
        sink.close()


def test_close_delivers_what_is_queued():
    sink = GateSink(queue_size=1000)
    sink.start()
    sink.emit([result(i) for i in range(300)])
    sink.gate.set()
    sink.close()
    assert len(sink.delivered) == 300
    assert not sink.workers[0].alive


def test_a_sink_thread_that_dies_is_reported():
    deaths = []

    class Broken(GateSink):
        def _open(self):
            raise RuntimeError("cannot start")

    sink = Broken(queue_size=10, on_death=lambda name, exc: deaths.append(name))
    sink.start()
    wait_until(lambda: deaths == ["sink-gate"], what="the death report")
    sink.close()
