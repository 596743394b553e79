"""The control channel between the daemon and the inference worker (runners/worker_protocol.py), over real
pipes: JSON messages and the binary per-batch records arrive as the same dicts, in order, however the bytes
are split; anything else is a ProtocolError that says what came."""

import os
import struct

import pytest

from jetvit_daemon.runners.worker_protocol import DONE, SUBMIT, Channel, ProtocolError


@pytest.fixture
def pair():
    a_r, b_w = os.pipe()
    b_r, a_w = os.pipe()
    a, b = Channel(a_r, a_w), Channel(b_r, b_w)
    yield a, b
    a.close()
    b.close()


def test_submit_done_and_json_arrive_in_order_as_dicts(pair):
    daemon, worker = pair
    daemon.send_submit(1, 8, 2**40 + 7)
    daemon.send("stop")
    assert worker.recv(1.0) == {"op": SUBMIT, "slot": 1, "n": 8, "seq": 2**40 + 7}
    assert worker.recv(1.0) == {"op": "stop"}
    worker.send_done(1, 8, 12, 100.25, 100.5, rss=123_456_789)
    worker.send_done(0, 3, 13, 100.5, 101.0)
    worker.send("failed", slot=1, seq=14, error="boom")
    first = daemon.recv(1.0)
    assert first == {"op": DONE, "slot": 1, "n": 8, "seq": 12, "t0": 100.25, "t1": 100.5, "infer_s": 0.25,
                     "rss_bytes": 123_456_789}
    assert daemon.recv(1.0)["rss_bytes"] is None  # not measured this batch
    assert daemon.recv(1.0) == {"op": "failed", "slot": 1, "seq": 14, "error": "boom"}
    assert daemon.recv(0.05) is None  # nothing more: a timeout, not an error


def test_a_record_split_across_reads_is_reassembled():
    r, w = os.pipe()
    reader = Channel(r, os.open(os.devnull, os.O_WRONLY))
    try:
        record = struct.pack(">IcHHQddq", struct.calcsize(">cHHQddq"), b"D", 2, 1, 99, 1.0, 1.5, -1)
        for k in range(len(record)):  # one byte at a time, as a slow pipe might deliver it
            os.write(w, record[k:k + 1])
            got = reader.recv(0.01)
            assert (got is None) == (k < len(record) - 1)
        assert got["seq"] == 99 and got["infer_s"] == 0.5
    finally:
        reader.close()
        os.close(w)


@pytest.mark.parametrize(("data", "message"), [
    (struct.pack(">I", 5) + b"hello", "neither JSON nor a submit/done record: b'hello'"),
    (struct.pack(">I", 1 << 30), "a control message of 1073741824 bytes \\(at most"),
    (struct.pack(">I", 7) + b'{"a":1}', "needs an 'op'"),
    (struct.pack(">I", 3) + b"{x}", "not a JSON control message"),
])
def test_garbage_and_oversized_messages_are_protocol_errors(pair, data, message):
    daemon, worker = pair
    os.write(daemon.write_fd, data)
    with pytest.raises(ProtocolError, match=message):
        worker.recv(1.0)


def test_a_closed_pipe_is_eof_and_a_torn_message_says_so():
    for head, expected in ((b"", EOFError), (struct.pack(">IcHH", 13, b"S", 0, 1), ProtocolError)):
        r, w = os.pipe()
        channel = Channel(r, os.open(os.devnull, os.O_WRONLY))
        try:
            os.write(w, head)  # nothing, or a submit record's first 9 of 17 bytes; then the writer goes
            os.close(w)
            with pytest.raises(expected, match="closed the control pipe" if head == b"" else "inside a message"):
                channel.recv(1.0)
        finally:
            channel.close()
