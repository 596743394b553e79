"""The one door to the board's files (/sys, /proc, /etc/nvpmodel.conf, /var/lib/nvpmodel).

Every read and write of a board file goes through a `SysfsTree`, whose root is `/` on a real Jetson and a
directory on the simulated board or in a test fixture. Code always names the board's absolute path
(`/sys/class/thermal/thermal_zone0/temp`); the tree maps it under its root.
"""

import errno
import glob as _glob
import os
from pathlib import Path
from typing import List, Optional


class SysfsTree:
    """Reads and writes board files under `root`. Thread-safe (it holds no state besides the root).

    >>> tree = SysfsTree("/")            # a real board
    >>> tree.read_int("/sys/class/thermal/thermal_zone0/temp")   # doctest: +SKIP
    """

    def __init__(self, root: "os.PathLike[str] | str" = "/") -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"SysfsTree({str(self.root)!r})"

    def path(self, board_path: str) -> Path:
        """The local path of an absolute board path."""
        if not board_path.startswith("/"):
            raise ValueError(f"board paths are absolute, got {board_path!r}")
        return self.root / board_path.lstrip("/")

    def board_path(self, local: "os.PathLike[str] | str") -> str:
        """The absolute board path of a local path under the root (inverse of `path`)."""
        rel = os.path.relpath(os.fspath(local), os.fspath(self.root))
        if rel.startswith(".."):
            raise ValueError(f"{local} is outside {self.root}")
        return "/" if rel == "." else "/" + rel.replace(os.sep, "/")

    def exists(self, board_path: str) -> bool:
        return self.path(board_path).exists()

    def read_text(self, board_path: str) -> str:
        """The file's content without surrounding whitespace. Raises OSError (naming the path) on failure."""
        with open(self.path(board_path), encoding="utf-8", errors="replace") as f:
            return f.read().strip()

    def read_optional(self, board_path: str) -> Optional[str]:
        """The file's stripped content, or None when the file does not exist."""
        try:
            return self.read_text(board_path)
        except FileNotFoundError:
            return None

    def read_int(self, board_path: str) -> int:
        text = self.read_text(board_path)
        try:
            return int(text.split()[0])
        except (ValueError, IndexError):
            raise OSError(errno.EINVAL, f"not an integer: {text!r}", board_path) from None

    def write_text(self, board_path: str, value: str) -> None:
        """Write `value` the way a sysfs write works: one write() of the whole value, no temp file."""
        with open(self.path(board_path), "w", encoding="utf-8") as f:
            f.write(value)

    def write_atomic(self, board_path: str, value: str) -> None:
        """Write a regular (non-sysfs) file atomically: a reader sees the old or the new content, never half."""
        target = self.path(board_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(value)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def glob(self, pattern: str) -> List[str]:
        """Board paths matching an absolute glob pattern, sorted."""
        local = _glob.glob(os.fspath(self.path(pattern)))
        return sorted(self.board_path(p) for p in local)

    def listdir(self, board_path: str) -> List[str]:
        try:
            return sorted(os.listdir(self.path(board_path)))
        except FileNotFoundError:
            return []

    def realpath(self, board_path: str) -> str:
        """Resolve symlinks (as /sys/class/* links are) and return the board path."""
        return self.board_path(os.path.realpath(self.path(board_path)))
