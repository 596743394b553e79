"""Where results go: the `ResultSink` interface and its implementations (JSON Lines files, MQTT, the HTTP
latest/stream feed). Every real sink is a `QueuedSink`: the inference stage only enqueues, each sink delivers on
its own thread, and a slow or dead sink drops (counted by reason) instead of stalling frames."""

from jetvit_daemon.pipeline.sinks.base import MemorySink, ResultSink
from jetvit_daemon.pipeline.sinks.jsonl import JsonlSink
from jetvit_daemon.pipeline.sinks.queued import QueuedSink, SinkStats
from jetvit_daemon.pipeline.sinks.schema import SCHEMA_VERSION, ResultEncoder

__all__ = ["SCHEMA_VERSION", "JsonlSink", "MemorySink", "QueuedSink", "ResultEncoder", "ResultSink", "SinkStats"]
