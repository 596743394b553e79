"""Live policy reload: the daemon re-reads the policy file within 2 s of a save and on SIGHUP; a new policy is
validated (schema, permissions, the board) before it replaces the running one, and an invalid one leaves the last
good policy running.

The file is polled by content, not by inotify or mtime: that follows editors that save by renaming a temporary
file over it, Kubernetes ConfigMap volumes (whose files are symlinks through `..data`, swapped atomically) and
filesystems with coarse mtimes alike. A partially written file is not read as a policy: a new content must hold
for one more poll before it is loaded.

With strict permissions the policy is read through `trustfs.read_trusted`: its directories and the file itself
are checked, and the bytes parsed are those read from the descriptor that was checked (checking a path and
then opening it again let a user who could write the directory swap the file in between).
"""

import hashlib
import logging
import threading
from pathlib import Path
from typing import Callable, Optional

from jetvit_daemon.errors import PolicyError
from jetvit_daemon.governor.policy import Policy
from jetvit_daemon.trustfs import UntrustedPath, read_trusted
from jetvit_daemon.workers import WorkerThread
from jetvit_daemon.yamlfile import MAX_FILE_BYTES, YamlProblem, read_bounded, read_yaml_bytes

log = logging.getLogger(__name__)

POLL_S = 0.5  # a save is loaded within two polls (one to see it, one to see it hold): 1 s < 2 s


# What reading a policy file can raise besides PolicyError: unreadable, a directory, not UTF-8, nested past
# the parser's recursion limit, too big for memory, a number the parser chokes on. Each is an input error: a
# refused reload (the running policy stays), or at start a configuration error (exit 2), never a dead thread.
INPUT_ERRORS = (OSError, UnicodeError, RecursionError, MemoryError, ValueError)


def describe_input_error(path: Path, exc: BaseException) -> str:
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a directory, not a policy file"
    if isinstance(exc, OSError):
        return f"{path}: cannot read: {exc.strerror or exc}"
    if isinstance(exc, UnicodeError):
        return f"{path}: not a text file (not UTF-8: {exc})"
    if isinstance(exc, RecursionError):
        return f"{path}: nested too deeply to be a policy"
    if isinstance(exc, MemoryError):
        return f"{path}: too large to load"
    return f"{path}: cannot be parsed: {exc}"


def guarded(load: Callable[[Path, bytes], Policy]) -> Callable[[Path, bytes], Policy]:
    """`load`, with every input error turned into a PolicyError naming the file."""
    def load_guarded(path: Path, data: bytes) -> Policy:
        try:
            return load(path, data)
        except PolicyError:
            raise
        except INPUT_ERRORS as exc:
            raise PolicyError(describe_input_error(path, exc)) from None

    return load_guarded


def read_policy(path: Path, strict: bool) -> bytes:
    """The policy file's bytes. With `strict`, only when no other non-root user could have written it or
    swapped it on the way (directories and file, checked on the descriptor it is read from): it steers the
    hardware. A symlink is followed (ConfigMaps) and its directories are checked too. PolicyError otherwise."""
    try:
        # Bounded (jetvit_daemon/yamlfile.py MAX_FILE_BYTES): a huge file or /dev/zero costs a few hundred KB;
        # the loader refuses what is over the cap.
        return read_trusted(path, MAX_FILE_BYTES + 1) if strict else read_yaml_bytes(path)
    except YamlProblem as exc:
        raise PolicyError(str(exc)) from None
    except UntrustedPath as exc:
        raise PolicyError(f"{path}: refused: the policy controls the hardware, and {exc}; or set "
                          "policy_permissions: ignore in daemon.yaml") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror or exc}") from None


def check_permissions(path: Path) -> None:
    """Refuse (PolicyError) a policy file someone other than the daemon's user or root could have written."""
    read_policy(path, strict=True)


class PolicyWatcher:
    """Owns the reload check. `body` runs in a WorkerThread (polls every POLL_S, reloads on `request()`).
    `load(path, data)` must return a valid Policy parsed from `data` (the file's bytes, read once and checked)
    or raise PolicyError (schema and board checks; any other input error, see INPUT_ERRORS, is refused the
    same way); `apply` swaps it in; `on_begin()` is told before a load, `report(result, message)` after it,
    "ok" or "error". `request()` (SIGHUP, from the main thread) makes the thread reload now. `poll` and
    `reload_now` are thread-safe: one check runs at a time."""

    def __init__(self, path: Path, load: Callable[[Path, bytes], Policy], apply: Callable[[Policy], None],
                 report: Callable[[str, str], None], check_perms: bool = True,
                 initial_text: Optional[bytes] = None, on_begin: Callable[[], None] = lambda: None) -> None:
        self.path = Path(path)
        self._load = guarded(load)
        self._apply = apply
        self._report = report
        self._check_perms = check_perms
        self._on_begin = on_begin  # told before each load (systemd: RELOADING=1); `report` after it
        self._loaded_digest = _digest(initial_text) if initial_text is not None else self._read_digest()
        self._pending_digest: Optional[str] = None
        self._failed_digest: Optional[str] = None
        self._lock = threading.Lock()
        self._requested = threading.Event()

    def _read_digest(self) -> Optional[str]:
        try:
            return _digest(read_bounded(self.path))
        except OSError:
            return None  # missing for a moment (a rename-save in progress): look again next poll

    def poll(self) -> Optional[bool]:
        """One check: True when a new policy was applied, False when a new content was refused, None otherwise."""
        with self._lock:
            return self._poll_locked()

    def _poll_locked(self) -> Optional[bool]:
        digest = self._read_digest()
        if digest is None or digest == self._loaded_digest or digest == self._failed_digest:
            self._pending_digest = None
            return None
        if digest != self._pending_digest:
            self._pending_digest = digest  # new: load it once it has held for one more poll
            return None
        self._pending_digest = None
        return self._try(digest)

    def reload_now(self) -> bool:
        """Load the file now whatever its content (SIGHUP)."""
        with self._lock:
            return self._try(self._read_digest())

    def request(self) -> None:
        """Ask the watcher thread to reload now (SIGHUP, from the main thread): requests coalesce, and the
        main thread never waits on a reload."""
        self._requested.set()

    def _try(self, digest: Optional[str]) -> bool:
        self._on_begin()
        try:
            data = read_policy(self.path, self._check_perms)
            policy = self._load(self.path, data)
        except PolicyError as exc:
            self._failed_digest = digest
            log.error("policy reload refused, the running policy stays:\n%s", exc)
            self._report("error", str(exc))
            return False
        self._apply(policy)
        self._loaded_digest, self._failed_digest = _digest(data), None
        log.info("policy reloaded from %s (%d states: %s)", self.path, len(policy.ladder),
                 " < ".join(s.name for s in policy.ladder))
        self._report("ok", "")
        return True

    def body(self, worker: WorkerThread) -> None:
        while not worker.stop_event.is_set():
            requested = self._requested.wait(POLL_S)
            if worker.stop_event.is_set():
                return
            worker.beat()
            if requested:
                self._requested.clear()
                self.reload_now()
            else:
                self.poll()

    def wake(self) -> None:
        """Make the thread look at its stop event now (the owner, when stopping)."""
        self._requested.set()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
