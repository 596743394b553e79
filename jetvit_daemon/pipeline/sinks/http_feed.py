"""The feed behind the HTTP result endpoints: the latest record of each source, and the Server-Sent Events
streams. A sink like the others (own queue and thread); each stream client has its own small bounded queue, so
a client that reads slowly loses its oldest results (counted as `slow_client`) and never slows the feed."""

import collections
import threading
from typing import Callable, Deque, Dict, List, Optional

from jetvit_daemon.pipeline.frames import Result
from jetvit_daemon.pipeline.sinks.queued import QueuedSink
from jetvit_daemon.pipeline.sinks.schema import ResultEncoder

# Records a stream client may fall behind by before its oldest are dropped.
CLIENT_QUEUE = 256


class StreamClient:
    """One stream subscriber: records (JSON text) for `source` (None: every source). Thread-safe."""

    def __init__(self, source: Optional[str], capacity: int = CLIENT_QUEUE) -> None:
        self.source = source
        self._capacity = capacity
        self._items: Deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False

    def offer(self, text: str) -> bool:
        """Queue one record; False when the oldest had to be dropped to make room."""
        with self._cond:
            dropped = len(self._items) >= self._capacity
            if dropped:
                self._items.popleft()
            self._items.append(text)
            self._cond.notify()
            return not dropped

    def take(self, timeout_s: float) -> Optional[List[str]]:
        """What is queued (waiting up to `timeout_s` for something); None once the feed has closed."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout_s)
            if self._closed:
                return None
            items = list(self._items)
            self._items.clear()
            return items

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed


class HttpFeedSink(QueuedSink):
    """Keeps the newest schema-v1 record per source and fans records out to at most `max_clients` streams.

    `latest()`, `subscribe()` and `unsubscribe()` are for HTTP handler threads; thread-safe.
    """

    kind = "http"

    def __init__(
        self,
        encoder: ResultEncoder,
        queue_size: int = 1000,
        max_clients: int = 4,
        name: str = "http",
        on_death: Optional[Callable[[str, BaseException], None]] = None,
        on_error: Optional[Callable[[str, BaseException], None]] = None,
    ) -> None:
        super().__init__(name, queue_size, on_death=on_death, on_error=on_error)
        self._encoder = encoder
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._latest: Dict[str, str] = {}
        self._clients: List[StreamClient] = []
        self._closed = False
        self._set_connected(True)

    def latest(self) -> Dict[str, str]:
        """{source: its newest record as JSON text}."""
        with self._lock:
            return dict(self._latest)

    def subscribe(self, source: Optional[str] = None) -> Optional[StreamClient]:
        """A new stream client, or None when `max_clients` streams are open (or the feed has closed)."""
        with self._lock:
            if self._closed or len(self._clients) >= self.max_clients:
                return None
            client = StreamClient(source)
            self._clients.append(client)
            return client

    def unsubscribe(self, client: StreamClient) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        client.close()

    @property
    def stream_clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def _deliver(self, batch: List[Result]) -> int:
        texts = [(r.source, self._encoder.text(r)) for r in batch]
        with self._lock:
            for source, text in texts:
                self._latest[source] = text
            clients = list(self._clients)
        slow = 0
        for client in clients:
            for source, text in texts:
                if (client.source is None or client.source == source) and not client.offer(text):
                    slow += 1
        if slow:
            self._count_dropped("slow_client", slow)
        return len(batch)

    def _shutdown(self) -> None:
        with self._lock:
            self._closed = True
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
