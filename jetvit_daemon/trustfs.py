"""Files another user must not be able to swap: the policy (it steers the hardware) and the state directory
(its journal says what the board is restored to; the daemon writes its lock there, often as root).

>>> data = read_trusted(Path("/etc/jetvit-daemon/policy.yaml"))     # bytes, or UntrustedPath  # doctest: +SKIP
>>> check_trusted_dir(Path("/var/lib/jetvit-daemon"))              # or UntrustedPath        # doctest: +SKIP

Checking a file's own mode is not enough: whoever can write a directory on the way to it can rename another
file over it (or a symlink) between the check and the open. So the path is resolved here component by
component, as the kernel resolves it (symlinks included), and every directory a name is looked up in must be
one no other non-root user can change:

- owned by root or the daemon's user, and writable by neither its group nor others; or
- sticky (like /tmp), owned by root or the daemon's user, and the entry looked up in it owned by root or
  the daemon's user: in a sticky directory only an entry's owner (or the directory's owner, or root) may
  rename or remove it (unlink(2), EPERM), so such an entry cannot be swapped.

The file is then opened without following a link (O_NOFOLLOW on the resolved path), checked through the open
descriptor (fstat: a regular file, owner, mode) and read from that same descriptor, so what was checked is
what is read. POSIX ACLs are not consulted (a directory with an ACL granting write to another user passes).
"""

import errno
import os
import stat
from collections import deque
from pathlib import Path
from typing import List, Optional, Tuple

from jetvit_daemon.fileio import read_fd

_MAX_SYMLINKS = 40  # the kernel's limit (MAXSYMLINKS, fs/namei.c) before ELOOP


class UntrustedPath(Exception):
    """A path another non-root user could change; the message says which directory or file and why."""


def _trusted_owner(uid: int) -> bool:
    return uid == 0 or uid == os.geteuid()


def _writers(st: os.stat_result) -> List[str]:
    """Who besides the owner may write: 'group', 'others'."""
    return [name for bit, name in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others")) if st.st_mode & bit]


def _dir_problem(directory: str, dir_st: os.stat_result, entry: str, entry_st: Optional[os.stat_result]) -> \
        Optional[str]:
    """Why looking up `entry` in `directory` could give another user's choice, or None when it cannot."""
    if not _trusted_owner(dir_st.st_uid):
        return (f"directory {directory} is owned by uid {dir_st.st_uid}, who could replace {entry!r} in it "
                f"(fix: chown root {directory})")
    who = _writers(dir_st)
    if not who:
        return None
    mode = stat.filemode(dir_st.st_mode)
    if dir_st.st_mode & stat.S_ISVTX:
        if entry_st is None or _trusted_owner(entry_st.st_uid):
            return None  # sticky: nobody else may rename or remove a root's or our own entry
        return (f"{os.path.join(directory, entry)} is owned by uid {entry_st.st_uid} in the sticky directory "
                f"{directory} ({mode}), so that user can replace it")
    return (f"directory {directory} is writable by {' and '.join(who)} ({mode}), who could replace "
            f"{entry!r} in it (fix: chmod go-w {directory})")


def resolve_checked(path: Path) -> Tuple[str, List[str]]:
    """Resolve `path` as the kernel does and check every directory a name is looked up in (see the module
    docstring). Returns (the resolved path, the problems found). OSError when a component is missing."""
    text = os.fspath(path)
    if not text.startswith("/"):
        text = os.getcwd() + "/" + text  # the cwd's own chain is walked too
    parts = deque(text.split("/"))
    current = "/"
    problems: List[str] = []
    hops = 0
    while parts:
        name = parts.popleft()
        if name in ("", "."):
            continue
        if name == "..":
            current = os.path.dirname(current)  # `current` has no symlinks left in it: lexical is right
            continue
        candidate = os.path.join(current, name)
        entry_st = os.lstat(candidate)
        problem = _dir_problem(current, os.stat(current), name, entry_st)
        if problem is not None and problem not in problems:
            problems.append(problem)
        if stat.S_ISLNK(entry_st.st_mode):
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), text)
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = "/"
            parts.extendleft(reversed(target.split("/")))
            continue
        if parts and any(p not in ("", ".") for p in parts) and not stat.S_ISDIR(entry_st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), candidate)
        current = candidate
    return current, problems


def _file_problems(shown: str, st: os.stat_result) -> List[str]:
    problems = []
    who = _writers(st)
    if who:
        problems.append(f"it is writable by {' and '.join(who)} (mode {stat.filemode(st.st_mode)}; fix: chmod "
                        f"go-w {shown})")
    if not _trusted_owner(st.st_uid):
        euid = os.geteuid()
        problems.append(f"it is owned by uid {st.st_uid}, not by the daemon's uid {euid} or root (fix: chown "
                        f"{euid} {shown})")
    return problems


def read_trusted(path: Path, max_bytes: Optional[int] = None) -> bytes:
    """The content of `path` (at most `max_bytes` of it), read only if no other non-root user could have
    written it or swapped it on the way (directories and file checked; the bytes come from the descriptor that
    was checked). UntrustedPath naming every problem; OSError when it cannot be read."""
    real, problems = resolve_checked(path)
    # O_NONBLOCK: a FIFO planted as the policy must not block the open; it is refused below.
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UntrustedPath(f"{path}: not a regular file ({stat.filemode(st.st_mode)})")
        problems.extend(_file_problems(str(path), st))
        if problems:
            raise UntrustedPath(" and ".join(problems))
        return read_fd(fd, max_bytes)
    finally:
        os.close(fd)


def check_trusted_dir(path: Path) -> None:
    """A directory the daemon keeps state in: owned by the daemon's user, writable by nobody else, and reached
    through directories no other non-root user can change. UntrustedPath saying what is wrong."""
    real, problems = resolve_checked(path)
    st = os.stat(real)
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedPath(f"{path} is not a directory")
    euid = os.geteuid()
    if st.st_uid != euid:
        problems.append(f"{path} is owned by uid {st.st_uid}, not by the daemon's uid {euid} (fix: chown {euid} "
                        f"{path})")
    who = _writers(st)
    if who:
        problems.append(f"{path} is writable by {' and '.join(who)} ({stat.filemode(st.st_mode)}; fix: chmod "
                        f"go-w {path})")
    if problems:
        raise UntrustedPath("; ".join(problems))
