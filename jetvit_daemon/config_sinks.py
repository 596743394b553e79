"""The `sinks:` entries of daemon.yaml (pydantic), one model per sink type, chosen by `type` (an entry without
`type` is a JSON Lines file, as in the first releases). Documented in config/daemon.yaml and docs/RESULTS.md."""

from pathlib import Path
from typing import Any, Callable, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from typing_extensions import Annotated

PathFix = Callable[[Optional[Path]], Optional[Path]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JsonlSinkConfig(_Strict):
    type: Literal["jsonl"] = "jsonl"
    path: Path
    max_bytes: int = Field(0, ge=0, description="rotate before the file would pass this size; 0: no size limit")
    rotate_interval_s: Optional[float] = Field(None, gt=0, description="rotate a file open this long; null: never")
    keep: int = Field(5, ge=0, le=1000, description="rotated files kept (results.jsonl.1 .. .keep)")
    queue_size: int = Field(10000, ge=1, le=1_000_000)

    def resolve_paths(self, fix: PathFix) -> "JsonlSinkConfig":
        return self.model_copy(update={"path": fix(self.path) or self.path})


class MqttTlsConfig(_Strict):
    ca_file: Optional[Path] = Field(None, description="CA bundle that signed the broker; null: the system's")
    cert_file: Optional[Path] = Field(None, description="client certificate (mutual TLS)")
    key_file: Optional[Path] = Field(None, description="the client certificate's private key")
    insecure: bool = Field(False, description="skip the broker hostname check (self-signed test brokers only)")

    @model_validator(mode="after")
    def _pair(self) -> "MqttTlsConfig":
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file (the client certificate it belongs to)")
        return self


class MqttSinkConfig(_Strict):
    type: Literal["mqtt"]
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535, description="1883 plain, 8883 by convention with tls")
    client_id: Optional[str] = Field(None, description="null: jetvit-<hostname>")
    topic_prefix: Optional[str] = Field(None, description="null: jetvit/<hostname>")
    qos: Literal[0, 1, 2] = 1
    keepalive_s: int = Field(30, ge=5, le=3600)
    username: Optional[str] = None
    password_file: Optional[Path] = Field(None, description="file holding the password (first line)")
    password_env: Optional[str] = Field(None, description="environment variable holding the password")
    tls: Optional[MqttTlsConfig] = None
    publish: Literal["every", "on_change", "rate"] = Field(
        "every", description="every result; on_change: when a source's label changes; rate: at most max_rate_hz")
    max_rate_hz: float = Field(1.0, gt=0, le=1000, description="per source, with publish: rate")
    stats_interval_s: float = Field(10.0, gt=0, le=3600)
    queue_size: int = Field(1000, ge=1, le=1_000_000, description="results kept while disconnected (newest)")
    reconnect_min_s: int = Field(1, ge=1, le=60)
    reconnect_max_s: int = Field(30, ge=1, le=3600)

    @model_validator(mode="after")
    def _consistent(self) -> "MqttSinkConfig":
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give password_file or password_env, not both")
        if (self.password_file is not None or self.password_env is not None) and self.username is None:
            raise ValueError("a password needs a username")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        if self.topic_prefix is not None and (not self.topic_prefix or any(c in self.topic_prefix for c in "#+")):
            raise ValueError("topic_prefix must be non-empty and contain no MQTT wildcards (# +)")
        return self

    def resolve_paths(self, fix: PathFix) -> "MqttSinkConfig":
        updates: dict = {}
        if self.password_file is not None:
            updates["password_file"] = fix(self.password_file) or self.password_file
        if self.tls is not None:
            tls = self.tls
            updates["tls"] = tls.model_copy(update={
                k: fix(getattr(tls, k)) or getattr(tls, k) for k in ("ca_file", "cert_file", "key_file")})
        return self.model_copy(update=updates) if updates else self


class HttpSinkConfig(_Strict):
    type: Literal["http"]
    queue_size: int = Field(1000, ge=1, le=1_000_000)
    max_stream_clients: int = Field(4, ge=1, le=64, description="concurrent /v1/results/stream clients")
    max_stream_s: float = Field(300.0, gt=0, le=86400,
                                description="a stream ends after this long; EventSource clients reconnect")
    snapshot_jpeg_quality: int = Field(85, ge=10, le=100)

    def resolve_paths(self, fix: PathFix) -> "HttpSinkConfig":
        return self


def _sink_type(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "jsonl"))
    return str(getattr(value, "type", "jsonl"))


SinkConfig = Annotated[
    Union[Annotated[JsonlSinkConfig, Tag("jsonl")], Annotated[MqttSinkConfig, Tag("mqtt")],
          Annotated[HttpSinkConfig, Tag("http")]],
    Discriminator(_sink_type, custom_error_type="sink_type",
                  custom_error_message="unknown sink type; valid: jsonl, mqtt, http"),
]
SINK_TYPES = {"jsonl": JsonlSinkConfig, "mqtt": MqttSinkConfig, "http": HttpSinkConfig}
SinkConfigs = List[SinkConfig]
