"""The restore journal: the board's power settings as found, written before the daemon's first change.

>>> journal = BaselineJournal(Path("/var/lib/jetvit-daemon"))        # doctest: +SKIP
>>> journal.record(Baseline(...))      # True: written; False: an older baseline is kept   # doctest: +SKIP
>>> journal.load()                     # after a crash, the next start restores from it   # doctest: +SKIP

Why a persistent directory and not /run: nvpmodel's mode survives reboots (`/var/lib/nvpmodel/status`,
`pmode:000N`), so a crash followed by a reboot would otherwise leave the board in the daemon's mode forever.

A corrupt journal (not JSON, or missing fields) cannot come from a half-finished write, since writes are
atomic; it means a damaged disk or a hand edit. `load()` then moves it aside to `baseline.json.corrupt`
(kept for inspection), logs a warning, records the move in `quarantined`, and returns None, so the daemon
starts rather than crash-looping under systemd on a file only a human can judge.
"""

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

log = logging.getLogger(__name__)

JOURNAL_NAME = "baseline.json"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Baseline:
    """What to restore: the nvpmodel mode and the GPU devfreq limits before the daemon touched them."""

    board: str
    mode_name: str
    mode_id: int
    gpu_devfreq_dir: Optional[str]  # None: no GPU devfreq node found, nothing to restore there
    gpu_min_hz: Optional[int]
    gpu_max_hz: Optional[int]
    recorded_at: float  # wall clock, seconds since the epoch
    pid: int  # the daemon process that recorded it
    gpu_pinned: bool = False  # min == max when recorded (jetson_clocks): restored as found, never capped

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["version"] = _FORMAT_VERSION
        return data

    @classmethod
    def from_json(cls, data: Any, source: str) -> "Baseline":
        """Build from a decoded journal; ValueError naming the field when it does not fit."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("version") != _FORMAT_VERSION:
            raise ValueError(f"{source}: expected version {_FORMAT_VERSION}, got {data.get('version')!r}")

        def field(name: str, kinds: Any, optional: bool = False) -> Any:
            value = data.get(name)
            if value is None and optional:
                return None
            # bool is an int subclass; a journal with "mode_id": true is still corrupt.
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
                raise ValueError(f"{source}: field {name!r} must be {_kind_names(kinds)}, got {value!r}")
            return value

        return cls(
            board=field("board", str),
            mode_name=field("mode_name", str),
            mode_id=field("mode_id", int),
            gpu_devfreq_dir=field("gpu_devfreq_dir", str, optional=True),
            gpu_min_hz=field("gpu_min_hz", int, optional=True),
            gpu_max_hz=field("gpu_max_hz", int, optional=True),
            recorded_at=float(field("recorded_at", (int, float))),
            pid=field("pid", int),
            gpu_pinned=bool(field("gpu_pinned", bool, optional=True)),
        )

    def describe(self) -> str:
        gpu = (
            f"GPU min/max {self.gpu_min_hz}/{self.gpu_max_hz} Hz"
            if self.gpu_devfreq_dir and self.gpu_min_hz is not None
            else "no GPU limits"
        )
        return f"power mode {self.mode_name} (id {self.mode_id}), {gpu}, recorded by pid {self.pid}"


def _as_tuple(kinds: Any) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _kind_names(kinds: Any) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kinds))


class BaselineJournal:
    """`state_dir/baseline.json`, written atomically (temp file, fsync, rename, fsync of the directory).

    The first baseline wins: `record` keeps an existing journal, so a restart after a crash never
    overwrites the true original with the crashed run's settings. Not thread-safe; one process owns the
    state directory (see probe.acquire_instance_lock).
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / JOURNAL_NAME
        self.quarantined: Optional[Path] = None

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> Optional[Baseline]:
        """The recorded baseline, or None when there is none (or it was corrupt and has been set aside)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return Baseline.from_json(json.loads(text), str(self.path))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            target = self.path.with_name(JOURNAL_NAME + ".corrupt")
            os.replace(self.path, target)
            self._fsync_dir()
            self.quarantined = target
            log.warning(
                "restore journal %s is corrupt (%s); moved to %s, nothing restored", self.path, exc, target
            )
            return None

    def record(self, baseline: Baseline) -> bool:
        """Write `baseline` unless one is already recorded. True when written."""
        if self.path.exists():
            return False
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{JOURNAL_NAME}.tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(baseline.to_json(), f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._fsync_dir()
        return True

    def clear(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        # The rename or unlink is durable only once the directory entry is on disk.
        fd = os.open(str(self.state_dir), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
