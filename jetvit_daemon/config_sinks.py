"""The `sinks:` entries of daemon.yaml (pydantic), one model per sink type, chosen by `type` (an entry without
`type` is a JSON Lines file, as in the first releases). Documented in config/daemon.yaml and docs/RESULTS.md."""

from pathlib import Path
from typing import Callable, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

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


SinkConfig = JsonlSinkConfig
SINK_TYPES = {"jsonl": JsonlSinkConfig}
SinkConfigs = List[SinkConfig]
