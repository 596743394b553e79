"""The control messages between the daemon and the inference worker, over a pair of pipes (the batches
themselves lie in the shared slots, runners/shm_slots.py): each is a 4-byte big-endian length and a payload,
either a JSON object (the rare ones: load, ready, attach, failed, stop) or, for the two sent once per batch, a
fixed binary record (`submit`, `done`: struct-packed, about 5x cheaper than JSON at each end, which matters at
300+ batches a second on a Jetson's CPU). `recv` gives both as the same dicts. Runs on Python 3.6
(vermin --target=3.6-).

Daemon → worker                                   Worker → daemon
  load    {runner, model, manifest, options, …}     ready   {ok: true, info, outputs, warmup_s}
                                                    ready   {ok: false, kind: "engine"|"crash", error}
  attach  {path, layout}                            attached {}
  submit  {slot, n, seq}             (binary)       done    {slot, n, seq, t0, t1, infer_s, rss_bytes} (binary)
                                                    failed  {slot, seq, error}    (the batch raised; kept running)
  stop    {}                                        (exits 0)

One batch per slot at a time: the daemon writes slot k's input, sends `submit k`; the worker reads it, runs the
model, writes slot k's outputs and answers `done k` (or `failed k`); only then may the daemon touch slot k again.
"""

import json
import os
import select
import struct
import time
from typing import Any, Dict, Optional

MAX_MESSAGE_BYTES = 1 << 20  # control messages are small; a larger length means a corrupt stream
_HEADER = struct.Struct(">I")
# Binary records, told from JSON (which starts with "{") by their first byte. Times are time.monotonic()
# seconds of the worker (the same clock as the daemon's on one machine); rss_bytes < 0 means "not measured".
_SUBMIT = struct.Struct(">IcHHQ")  # length, b"S", slot, n, seq
_DONE = struct.Struct(">IcHHQddq")  # length, b"D", slot, n, seq, t0, t1, rss_bytes
_SUBMIT_TAG, _DONE_TAG = b"S", b"D"

LOAD, ATTACH, SUBMIT, STOP = "load", "attach", "submit", "stop"
READY, ATTACHED, DONE, FAILED = "ready", "attached", "done", "failed"


class ProtocolError(Exception):
    """The other side sent something that is not a control message (or hung up mid-message)."""


class Channel:
    """One end of the control pipes: `send` on `write_fd`, `recv` on `read_fd`. `send` from one thread, `recv`
    from one thread (they may differ)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buffer = b""

    def send(self, op: str, **fields: Any) -> None:
        """Send one message; BrokenPipeError when the other side is gone."""
        fields["op"] = op
        data = json.dumps(fields, separators=(",", ":")).encode("utf-8")
        self._write(_HEADER.pack(len(data)) + data)

    def send_submit(self, slot: int, n: int, seq: int) -> None:
        """`submit`: run slot `slot`'s first `n` rows, batch number `seq`."""
        self._write(_SUBMIT.pack(_SUBMIT.size - _HEADER.size, _SUBMIT_TAG, slot, n, seq))

    def send_done(self, slot: int, n: int, seq: int, t0: float, t1: float, rss: Optional[int] = None) -> None:
        """`done`: batch `seq` ran from `t0` to `t1` (time.monotonic()); `rss` the worker's resident bytes."""
        self._write(_DONE.pack(_DONE.size - _HEADER.size, _DONE_TAG, slot, n, seq, t0, t1,
                               -1 if rss is None else rss))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]

    def recv(self, timeout_s: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """The next message; None if none came within `timeout_s` (None: wait for ever). EOFError when the
        other side closed its end, ProtocolError on garbage."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            message = self._parse()
            if message is not None:
                return message
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                    return None
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                if self._buffer:
                    raise ProtocolError(f"the stream ended inside a message ({len(self._buffer)} bytes)")
                raise EOFError("the other side closed the control pipe")
            self._buffer += chunk

    def _parse(self) -> Optional[Dict[str, Any]]:
        buffer = self._buffer
        if len(buffer) < _HEADER.size:
            return None
        (length,) = _HEADER.unpack_from(buffer)
        if length > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"a control message of {length} bytes (at most {MAX_MESSAGE_BYTES})")
        end = _HEADER.size + length
        if len(buffer) < end:
            return None
        tag = buffer[_HEADER.size:_HEADER.size + 1]
        if tag == _SUBMIT_TAG and end == _SUBMIT.size:
            _, _, slot, n, seq = _SUBMIT.unpack_from(buffer)
            self._buffer = buffer[end:]
            return {"op": SUBMIT, "slot": slot, "n": n, "seq": seq}
        if tag == _DONE_TAG and end == _DONE.size:
            _, _, slot, n, seq, t0, t1, rss = _DONE.unpack_from(buffer)
            self._buffer = buffer[end:]
            return {"op": DONE, "slot": slot, "n": n, "seq": seq, "t0": t0, "t1": t1, "infer_s": t1 - t0,
                    "rss_bytes": None if rss < 0 else rss}
        if tag != b"{":
            raise ProtocolError(f"a control message that is neither JSON nor a submit/done record: "
                                f"{buffer[_HEADER.size:end][:16]!r}")
        data, self._buffer = buffer[_HEADER.size:end], buffer[end:]
        try:
            message = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise ProtocolError(f"not a JSON control message: {exc}") from None
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            raise ProtocolError(f"a control message needs an 'op', got {str(message)[:80]!r}")
        return message

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
