"""The one result schema every sink speaks (version 1, documented in docs/RESULTS.md).

    {"v": 1, "ts": "2026-12-01T22:41:49.123Z", "source": "cam0", "frame": 1234, "label": "7", "class_index": 7,
     "score": 0.98731, "top_k": [{"label": "7", "score": 0.98731}, ...],
     "model": {"name": "vit-digits", "version": "sha256:4f1c2a9b7d3e"}, "latency_s": 0.01234}

`ts` is the frame's capture time on the wall clock (UTC); `latency_s` runs from capture to result. A change that
removes or renames a field, or changes its meaning, bumps `v`; new fields may appear within a version.
"""

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict

from jetvit_daemon.clock import Clock
from jetvit_daemon.pipeline.frames import Result

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelIdentity:
    """Which model produced a result: the manifest's model name, and a version that names the exact file."""

    name: str
    version: str

    @classmethod
    def of_file(cls, name: str, path: Path) -> "ModelIdentity":
        """The version is the file's content hash (the first 12 hex digits of its SHA-256): two boards report
        the same version exactly when they run the same model or engine bytes."""
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return cls(name, "sha256:" + digest.hexdigest()[:12])


def wall_time_text(t_wall_s: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. 2026-12-01T22:41:49.123Z."""
    moment = datetime.datetime.fromtimestamp(t_wall_s, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class ResultEncoder:
    """Result → schema-v1 record (a dict) or its JSON text. Stateless apart from the clock: thread-safe.

    Results carry monotonic times; the record's `ts` is the capture time moved onto the wall clock with the
    offset between the two clocks read at encoding time (the capture was at most a queue's length ago).
    """

    def __init__(self, clock: Clock, model: ModelIdentity) -> None:
        self._clock = clock
        self._model = {"name": model.name, "version": model.version}

    def record(self, r: Result) -> Dict[str, Any]:
        offset_s = self._clock.time() - self._clock.monotonic()
        return {
            "v": SCHEMA_VERSION,
            "ts": wall_time_text(r.t_capture_s + offset_s),
            "source": r.source,
            "frame": r.frame_id,
            "label": r.label,
            "class_index": r.class_index,
            "score": round(r.score, 5),
            "top_k": [{"label": label, "score": round(p, 5)} for label, p in r.top_k],
            "model": dict(self._model),
            "latency_s": round(r.latency_s, 6),
        }

    def text(self, r: Result) -> str:
        """One line of JSON, without the newline."""
        return json.dumps(self.record(r), separators=(",", ":"))
