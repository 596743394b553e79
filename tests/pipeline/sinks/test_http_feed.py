"""The HTTP feed: newest record per source, bounded stream clients, a slow client loses its oldest records."""

import json

from sinkhelpers import encoder, result, wait_until

from jetvit_daemon.pipeline.sinks.http_feed import HttpFeedSink, StreamClient


def test_latest_keeps_the_newest_record_of_each_source():
    feed = HttpFeedSink(encoder())
    feed.start()
    try:
        feed.emit([result(1, "a"), result(2, "b"), result(3, "a")])
        wait_until(lambda: feed.stats().sent_total == 3)
        latest = {k: json.loads(v)["frame"] for k, v in feed.latest().items()}
        assert latest == {"a": 3, "b": 2}
    finally:
        feed.close()


def test_streams_are_bounded_filtered_by_source_and_a_slow_client_drops_its_oldest():
    feed = HttpFeedSink(encoder(), max_clients=2)
    feed.start()
    try:
        everything = feed.subscribe()
        only_b = feed.subscribe("b")
        assert everything is not None and only_b is not None
        assert feed.subscribe() is None  # the third is refused
        feed.emit([result(i, "a" if i % 2 else "b") for i in range(300)])
        wait_until(lambda: feed.stats().sent_total == 300)
        got = [json.loads(t)["frame"] for t in everything.take(0)]
        assert got == list(range(300 - 256, 300))  # it never read: only the newest 256 are left
        assert [json.loads(t)["source"] for t in only_b.take(0)] == ["b"] * 150
        assert feed.stats().dropped_total["slow_client"] == 300 - 256
        feed.unsubscribe(everything)
        assert feed.subscribe() is not None
    finally:
        feed.close()
    assert only_b.take(0) is None  # closed with the feed: its stream ends


def test_a_stream_client_wakes_when_records_come():
    client = StreamClient(None, capacity=2)
    assert client.take(0.01) == []
    assert client.offer("1") and client.offer("2") and not client.offer("3")
    assert client.take(0.01) == ["2", "3"]
