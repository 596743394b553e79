"""The HTTP endpoint: /metrics (Prometheus), /healthz (liveness), /readyz (readiness), /status (JSON); GET and
HEAD on each; and the GET routes of other modules (`Routes`: the /v1/ result endpoints of
service/results_http.py). IPv4 or IPv6 (`host: "::"` listens on both where the kernel allows dual-stack).

Bounded so that a local client cannot starve the daemon: at most MAX_CONNECTIONS connections are served at
once (one more is answered 503 and closed at once), each socket times out after REQUEST_TIMEOUT_S idle, and
the listen backlog is LISTEN_BACKLOG. The HTTP side can therefore hold at most MAX_CONNECTIONS + 1 file
descriptors, and nvpmodel, tegrastats and the state files keep theirs. A client that hangs up is not an error.
"""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Optional, Protocol, Sequence, Tuple

from prometheus_client import CollectorRegistry

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.service.exposition import render_metrics
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32  # Prometheus, a probe and an operator need a handful; 32 bounds the fds HTTP can hold
REQUEST_TIMEOUT_S = 5.0  # per socket operation: an idle or trickling client is dropped after this
LISTEN_BACKLOG = 128  # socketserver's default of 5 drops probes under a burst of connections

# (code, JSON-able body) for the probes; a JSON-able dict for /status.
Probe = Callable[[], Tuple[bool, Dict[str, Any]]]

class Routes(Protocol):
    def handle(self, request: BaseHTTPRequestHandler, path: str, query: str) -> bool:
        """Answer the request (True) if `path` is one of these routes; False: not ours."""


_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: Tuple[str, int], handler: Any) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.service_actions_hook: Callable[[], None] = lambda: None
        super().__init__(address, handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            try:  # "::" serves IPv4 clients too (as ::ffff:a.b.c.d) unless the kernel forbids dual-stack
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:
                pass
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE):
            log.debug("http: client %s went away: %s", client_address, exc)
            return
        log.error("http: request from %s failed", client_address, exc_info=True)

    def service_actions(self) -> None:
        self.service_actions_hook()  # once per serve_forever poll: the worker's heartbeat


def _refuse(request: socket.socket) -> None:
    try:
        request.settimeout(0.5)
        request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
                        b"Connection: close\r\n\r\ntoo many connections\n")
    except OSError:
        pass


class HttpServer:
    """Serves the endpoints on its own `WorkerThread` ("http"). start/stop from the owner's thread.

    `health()` and `ready()` return (ok, details); `status()` returns a JSON-able dict. Binding happens in the
    constructor: a port in use is a ConfigError naming `http.port`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Probe,
        status: Callable[[], Dict[str, Any]],
        ready: Optional[Probe] = None,
        routes: Sequence[Routes] = (),
    ) -> None:
        handler = _make_handler(registry, health, ready or health, status, routes)
        try:
            self._server = _Server((host, port), handler)
        except OSError as exc:
            raise ConfigError(f"http: cannot listen on [{host}]:{port}: {exc.strerror or exc} (set http.port "
                              "to a free port, or 0 for any)") from None
        self.worker = WorkerThread("http", self._serve)

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def _serve(self, worker: WorkerThread) -> None:
        self._server.service_actions_hook = worker.beat
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> None:
        self.worker.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        if self.worker.started and self.worker.alive:
            self.worker.stop_event.set()
            self._server.shutdown()
            self.worker.join(timeout_s)
        self._server.server_close()


def _make_handler(registry: CollectorRegistry, health: Probe, ready: Probe, status: Callable[[], Dict[str, Any]],
                  routes: Sequence[Routes] = ()) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "jetvit-daemon"
        timeout = REQUEST_TIMEOUT_S  # StreamRequestHandler: a socket timeout for every read and write

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            try:
                if any(r.handle(self, path, query) for r in routes):
                    return
            except _CLIENT_GONE as exc:
                log.debug("http: client went away during %s: %s", path, exc)
                self.close_connection = True
                return
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def _answer(self, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            try:
                self._extra: Dict[str, str] = {}
                code, content_type, body = self._route(path)
            except Exception:  # one request is the boundary: a broken collector must not kill the server
                log.error("HTTP %s failed", path, exc_info=True)
                code, content_type, body = 500, "text/plain", b"internal error\n"
            try:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                for key, value in self._extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
            except _CLIENT_GONE as exc:
                log.debug("http: client went away during %s: %s", path, exc)
                self.close_connection = True

        def _route(self, path: str) -> Tuple[int, str, bytes]:
            if path == "/metrics":  # OpenMetrics/gzip as the scraper asks (service/exposition.py)
                payload, headers = render_metrics(registry, self.headers.get("Accept"),
                                                  self.headers.get("Accept-Encoding"))
                self._extra = headers
                return 200, headers.pop("Content-Type"), payload
            if path in ("/healthz", "/readyz"):
                ok, details = (health if path == "/healthz" else ready)()
                body = dict(details, status="ok" if ok else ("unhealthy" if path == "/healthz" else "not ready"))
                return (200 if ok else 503), "application/json", json.dumps(body).encode()
            if path == "/status":
                return 200, "application/json", json.dumps(status(), default=str, indent=1).encode()
            return 404, "text/plain", b"not found: try /metrics, /healthz, /readyz or /status\n"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    return Handler
