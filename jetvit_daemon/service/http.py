"""The HTTP endpoint: /metrics (Prometheus), /healthz (liveness for systemd/k8s probes), /status (JSON), and
the routes of other modules (`Routes`: the /v1/ result endpoints of service/results_http.py)."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Optional, Protocol, Sequence, Tuple

from prometheus_client import CollectorRegistry

from jetvit_daemon.service.exposition import render_metrics

log = logging.getLogger(__name__)


class Routes(Protocol):
    def handle(self, request: BaseHTTPRequestHandler, path: str, query: str) -> bool:
        """Answer the request (True) if `path` is one of these routes; False: not ours."""


class HttpServer:
    """Serves the three endpoints on its own thread. start/stop from the owner's thread.

    `health()` returns (healthy, details); `status()` returns a JSON-able dict.
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Callable[[], Tuple[bool, Dict[str, Any]]],
        status: Callable[[], Dict[str, Any]],
        routes: Sequence[Routes] = (),
    ) -> None:
        handler = _make_handler(registry, health, status, routes)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="http", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout_s)
        self._server.server_close()


def _make_handler(
    registry: CollectorRegistry,
    health: Callable[[], Tuple[bool, Dict[str, Any]]],
    status: Callable[[], Dict[str, Any]],
    routes: Sequence[Routes] = (),
) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "jetvit-daemon"

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            try:
                if any(r.handle(self, path, query) for r in routes):
                    return
                if path == "/metrics":
                    payload, headers = render_metrics(registry, self.headers.get("Accept"),
                                                      self.headers.get("Accept-Encoding"))
                    self._send(200, headers.pop("Content-Type"), payload, headers)
                elif path == "/healthz":
                    ok, details = health()
                    body = dict(details, status="ok" if ok else "unhealthy")
                    self._send(200 if ok else 503, "application/json", json.dumps(body).encode())
                elif path == "/status":
                    self._send(200, "application/json", json.dumps(status(), default=str, indent=1).encode())
                else:
                    self._send(404, "text/plain", b"not found: try /metrics, /healthz or /status\n")
            except Exception:  # one request is the boundary: a broken collector must not kill the server
                log.error("HTTP %s failed", path, exc_info=True)
                self._send(500, "text/plain", b"internal error\n")

        def _send(self, code: int, content_type: str, body: bytes, extra: Optional[Dict[str, str]] = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    return Handler
