"""The HTTP result endpoints, served by the daemon's HTTP server when a `type: http` sink is configured:

  GET /v1/results/latest[?source=NAME]   the newest record of each source ({source: record}), or of NAME
  GET /v1/results/stream[?source=NAME]   Server-Sent Events: one `result` event per record, as they come
  GET /v1/sources/<name>/snapshot.jpg    the last frame of <name> that went through the model, JPEG-encoded
                                         on request (for aiming cameras)

A stream occupies one of the server's connections, so streams are bounded on their own (`max_stream_clients`,
one more is answered 503), each ends after `max_stream_s` (EventSource clients reconnect by themselves after
the `retry:` delay), a comment line every HEARTBEAT_S finds clients that went away, and a write that blocks for
WRITE_TIMEOUT_S ends the stream. Records are those of docs/RESULTS.md.
"""

import json
import logging
import socket
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Callable, Dict, List, Optional, Tuple

from jetvit_daemon.pipeline.frames import Frame
from jetvit_daemon.pipeline.sinks.http_feed import HttpFeedSink

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
WRITE_TIMEOUT_S = 5.0
RETRY_MS = 2000  # what EventSource waits before reconnecting after a stream ends
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)

Reply = Tuple[int, str, bytes, Dict[str, str]]


def _json(code: int, body: object) -> Reply:
    return code, "application/json", json.dumps(body).encode(), {}


class ResultsRoutes:
    """Answers the /v1/ result endpoints for the HTTP server's handler threads; thread-safe.

    `last_frame(name)` is the pipeline's newest frame of a source; `source_names()` the sources it has.
    """

    def __init__(
        self,
        feed: HttpFeedSink,
        last_frame: Callable[[str], Optional[Frame]],
        source_names: Callable[[], List[str]],
        max_stream_s: float = 300.0,
        jpeg_quality: int = 85,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.feed = feed
        self._last_frame = last_frame
        self._source_names = source_names
        self.max_stream_s = max_stream_s
        self.jpeg_quality = jpeg_quality
        self.heartbeat_s = heartbeat_s

    def handle(self, request: BaseHTTPRequestHandler, path: str, query: str) -> bool:
        """Answer `path` if it is one of ours (True); False leaves it to the server."""
        params = urllib.parse.parse_qs(query)
        source = params.get("source", [None])[-1]
        if path == "/v1/results/stream":
            self._stream(request, source)
            return True
        if path == "/v1/results/latest":
            reply = self._latest(source)
        elif path.startswith("/v1/sources/") and path.endswith("/snapshot.jpg"):
            reply = self._snapshot(urllib.parse.unquote(path[len("/v1/sources/"):-len("/snapshot.jpg")]))
        else:
            return False
        _send(request, *reply)
        return True

    def _unknown(self, source: str) -> Optional[Reply]:
        names = self._source_names()
        if source in names:
            return None
        return _json(404, {"error": f"unknown source {source!r}", "sources": names})

    def _latest(self, source: Optional[str]) -> Reply:
        latest = self.feed.latest()
        if source is None:
            body = "{" + ",".join(f"{json.dumps(s)}:{text}" for s, text in sorted(latest.items())) + "}"
            return 200, "application/json", body.encode(), {}
        unknown = self._unknown(source)
        if unknown is not None:
            return unknown
        if source not in latest:
            return 503, "application/json", json.dumps({"error": f"no result from {source!r} yet"}).encode(), \
                {"Retry-After": "1"}
        return 200, "application/json", latest[source].encode(), {}

    def _snapshot(self, source: str) -> Reply:
        unknown = self._unknown(source)
        if unknown is not None:
            return unknown
        frame = self._last_frame(source)
        if frame is None:
            return 503, "application/json", json.dumps({"error": f"no frame from {source!r} yet"}).encode(), \
                {"Retry-After": "1"}
        import cv2  # OpenCV: JetPack's build on a board, the `cpu` extra elsewhere; only needed on request

        # A copy first: a source may reuse its frame buffers, and the encoder must see one whole frame.
        ok, jpeg = cv2.imencode(".jpg", frame.image.copy(), [int(cv2.IMWRITE_JPEG_QUALITY), self.jpeg_quality])
        if not ok:
            return _json(500, {"error": "JPEG encoding failed"})
        return 200, "image/jpeg", jpeg.tobytes(), {"Cache-Control": "no-store", "X-Jetvit-Frame": str(frame.frame_id)}

    def _stream(self, request: BaseHTTPRequestHandler, source: Optional[str]) -> None:
        if source is not None:
            unknown = self._unknown(source)
            if unknown is not None:
                _send(request, *unknown)
                return
        client = self.feed.subscribe(source)
        if client is None:
            _send(request, 503, "application/json", json.dumps(
                {"error": f"{self.feed.max_clients} result streams are open already"}).encode(), {"Retry-After": "5"})
            return
        try:
            request.connection.settimeout(WRITE_TIMEOUT_S)
            request.send_response(200)
            request.send_header("Content-Type", "text/event-stream")
            request.send_header("Cache-Control", "no-cache")
            request.send_header("Connection", "close")
            request.send_header("X-Accel-Buffering", "no")  # proxies (nginx) must not buffer the stream
            request.end_headers()
            request.close_connection = True
            self._write(request, f"retry: {RETRY_MS}\n\n")
            end_s = time.monotonic() + self.max_stream_s
            last_write_s = time.monotonic()
            while time.monotonic() < end_s:
                texts = client.take(min(1.0, self.heartbeat_s))
                if texts is None:  # the daemon is stopping
                    break
                if texts:
                    self._write(request, "".join(f"event: result\ndata: {t}\n\n" for t in texts))
                    last_write_s = time.monotonic()
                elif time.monotonic() - last_write_s >= self.heartbeat_s:
                    self._write(request, ": keepalive\n\n")
                    last_write_s = time.monotonic()
        except _CLIENT_GONE as exc:
            log.debug("http: result stream client went away: %s", exc)
        finally:
            self.feed.unsubscribe(client)

    @staticmethod
    def _write(request: BaseHTTPRequestHandler, text: str) -> None:
        request.wfile.write(text.encode("utf-8"))
        request.wfile.flush()


def _send(request: BaseHTTPRequestHandler, code: int, content_type: str, body: bytes,
          headers: Dict[str, str]) -> None:
    try:
        request.send_response(code)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(body)
    except _CLIENT_GONE as exc:
        log.debug("http: client went away: %s", exc)
        request.close_connection = True
