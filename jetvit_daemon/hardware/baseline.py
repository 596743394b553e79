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

While an `nvpmodel -m` switch runs, the journal also records it (`switch`: target, command, pid and start
time), written before the child is started and updated once its pid is known: a switch that outlives the
daemon (SIGKILL; the child runs in its own session) can then be found, waited for or killed before anything
is restored, so it cannot land after the restore. The journal is opened without following symlinks: a link
planted in the state directory is refused, never read or written through.
"""

import errno
import json
import logging
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.hardware.commands import ChildProcess

log = logging.getLogger(__name__)

JOURNAL_NAME = "baseline.json"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SwitchRecord:
    """An `nvpmodel -m` the daemon started and has not yet seen end."""

    target_id: int
    target_name: str
    argv: List[str]  # as the daemon ran it (`nvpmodel -m 2`), before the runner maps it to a program
    started_at: float  # wall clock, seconds since the epoch, just before the child was started
    timeout_s: float  # the daemon's deadline for it: it would have been killed after this long
    pid: Optional[int] = None  # None: SIGKILL came between the journal write and the child's start
    start_ticks: Optional[int] = None  # /proc/PID/stat start time, so a reused pid is not mistaken for it

    @property
    def child(self) -> Optional[ChildProcess]:
        return None if self.pid is None else ChildProcess(self.pid, self.start_ticks)

    def describe(self) -> str:
        pid = "pid unknown" if self.pid is None else f"pid {self.pid}"
        return f"switch to {self.target_name} (id {self.target_id}, {' '.join(self.argv)!r}, {pid})"

    @classmethod
    def from_json(cls, data: Any, source: str) -> "SwitchRecord":
        if not isinstance(data, dict):
            raise ValueError(f"{source}: field 'switch' must be an object, got {data!r}")
        argv = data.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(f"{source}: field 'switch.argv' must be a list of strings, got {argv!r}")
        for name, kinds in (("target_id", int), ("target_name", str), ("started_at", (int, float)),
                            ("timeout_s", (int, float)), ("pid", (int, type(None))),
                            ("start_ticks", (int, type(None)))):
            value = data.get(name)
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise ValueError(f"{source}: field 'switch.{name}' has the wrong type: {value!r}")
        return cls(target_id=data["target_id"], target_name=data["target_name"], argv=list(argv),
                   started_at=float(data["started_at"]), timeout_s=float(data["timeout_s"]), pid=data.get("pid"),
                   start_ticks=data.get("start_ticks"))


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
    switch: Optional[SwitchRecord] = None  # an nvpmodel switch in flight (see the module docstring)

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["version"] = _FORMAT_VERSION
        if self.switch is None:
            del data["switch"]  # the common case reads as before
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
            switch=None if data.get("switch") is None else SwitchRecord.from_json(data["switch"], source),
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
        return os.path.lexists(self.path)

    def load(self) -> Optional[Baseline]:
        """The recorded baseline, or None when there is none (or it was corrupt and has been set aside).
        ConfigError when the journal is a symlink or not a regular file (planted: never followed)."""
        try:
            text = read_state_file(self.path)
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
        if self.exists():
            return False
        self.update(baseline)
        return True

    def update(self, baseline: Baseline) -> None:
        """Overwrite the journal (the same baseline with its in-flight switch marked or cleared)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_state_file(self.path, json.dumps(baseline.to_json(), indent=2, sort_keys=True) + "\n")

    def clear(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        _fsync_dir(self.path.parent)


def _fsync_dir(directory: Path) -> None:
    # A rename or unlink is durable only once the directory entry is on disk.
    fd = os.open(str(directory), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_state_file(path: Path) -> str:
    """A state file's text, opened without following a symlink. FileNotFoundError when absent; ConfigError
    when it is a symlink or not a regular file (someone planted it: the daemon neither follows nor trusts it)."""
    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path} is a symbolic link to {os.readlink(path)!r}: refused (the daemon never "
                              "follows links in its state directory; remove it)") from None
        raise
    # Checked on the descriptor before it is wrapped: os.fdopen of a directory raises EISDIR naming the
    # descriptor's number ("state_dir: 8: Is a directory"), not the file.
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ConfigError(f"{path} is not a regular file ({stat.filemode(st.st_mode)}): refused; remove it")
    with os.fdopen(fd, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def write_state_file(path: Path, text: str) -> None:
    """Replace a state file atomically (a fresh temp file created with O_EXCL|O_NOFOLLOW, fsync, rename over
    the old name, fsync of the directory). rename(2) replaces a symlink at `path` itself, never its target."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        os.unlink(str(tmp))  # a leftover of this pid's crashed predecessor
    except FileNotFoundError:
        pass
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(str(tmp), str(path))
    except BaseException:
        try:
            os.unlink(str(tmp))
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
