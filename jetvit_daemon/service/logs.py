"""Logging setup: one record is one line on stderr, in one of three formats.

- `text`: `HH:MM:SS LEVEL message`, for a terminal.
- `journal`: for systemd's journal. Each record starts with its syslog priority (`<3>` …, sd-daemon(3)), so
  `journalctl -p err` finds errors; no timestamp (the journal adds its own). journald's stdout stream ends an
  entry at every newline or NUL (systemd's journald-stream.c), so a traceback written as-is becomes one entry
  per line, all but the first at the default priority. The record's newlines are therefore written as the two
  characters `\\n` (a backslash as `\\\\`): the whole traceback stays in ONE entry, at the record's priority.
- `json`: one JSON object per line (`time`, `level`, `logger`, `thread`, `message`, `exception`), for log
  shippers.

`log_format: null` (the default) picks `journal` when stderr is the journal (systemd sets `JOURNAL_STREAM` to
stderr's `device:inode`, systemd.exec(5)) and `text` otherwise.
"""

import json
import logging
import os
import sys
import time
from typing import IO, Literal, Mapping, Optional

LogFormat = Literal["text", "journal", "json"]

# syslog(3) priorities for Python's levels; a level between two standard ones takes the lower one's priority.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
_DEBUG_PRIORITY = 7
# journald splits a line longer than LineMax= (journald.conf(5), default 48K) into several entries: keep one
# record below it, the priority prefix included.
JOURNAL_LINE_MAX = 48 * 1024 - 16
# What would end a journal entry early, and the backslash that makes the encoding reversible.
_JOURNAL_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
_JSON_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def syslog_priority(levelno: int) -> int:
    """The syslog priority (0 emerg … 7 debug) for a Python logging level."""
    for level, priority in _PRIORITIES:
        if levelno >= level:
            return priority
    return _DEBUG_PRIORITY


def stderr_is_journal(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """True when `stream` is the journal stream that systemd named in `JOURNAL_STREAM` (`device:inode`).

    Checking the inode, not just the variable, matters: a child that inherited the variable but whose stderr
    was redirected (a shell pipeline, a test harness) is not writing to the journal."""
    value = environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False  # no real file descriptor (e.g. an in-memory stream)
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


class JournalFormatter(logging.Formatter):
    """`<priority>LEVEL logger: message`, the traceback included, on one newline-free line."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).translate(_JOURNAL_ESCAPES)
        line = f"<{syslog_priority(record.levelno)}>{text}"
        if len(line) > JOURNAL_LINE_MAX:
            cut = len(line) - JOURNAL_LINE_MAX
            marker = f" … ({cut} characters cut)"
            line = line[: JOURNAL_LINE_MAX - len(marker)] + marker
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (JSON escapes the newlines of a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Raw non-ASCII stays readable ("°C"); the Unicode line breaks some readers split on are escaped.
        return json.dumps(entry, ensure_ascii=False).translate(_JSON_LINE_BREAKS)


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "journal":
        return JournalFormatter()
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


def resolve_format(log_format: Optional[LogFormat], stream: IO[str],
                   environ: Optional[Mapping[str, str]] = None) -> LogFormat:
    """The format to use: the configured one, or (None) journal when `stream` is the journal, else text."""
    if log_format is not None:
        return log_format
    return "journal" if stderr_is_journal(stream, os.environ if environ is None else environ) else "text"


def setup_logging(level: str = "info", log_format: Optional[LogFormat] = None,
                  stream: Optional[IO[str]] = None) -> LogFormat:
    """Send every record to `stream` (stderr) in `log_format`; returns the format chosen."""
    out = sys.stderr if stream is None else stream
    chosen = resolve_format(log_format, out)
    handler = logging.StreamHandler(out)
    handler.setFormatter(make_formatter(chosen))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    return chosen


def report_fatal(message: str, stream: Optional[IO[str]] = None) -> None:
    """`error: message` on stderr for a command that fails before (or without) logging: at priority err and in
    one entry when stderr is the journal, so `journalctl -p err` shows why the service did not start."""
    out = sys.stderr if stream is None else stream
    text = f"error: {message}"
    if stderr_is_journal(out, os.environ):
        text = f"<{syslog_priority(logging.ERROR)}>" + text.translate(_JOURNAL_ESCAPES)
    print(text, file=out, flush=True)
