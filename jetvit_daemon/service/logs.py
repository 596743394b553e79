"""Logging setup: plain lines on stderr; under systemd's journal no timestamp (the journal adds its own)."""

import logging
import os
import sys


def setup_logging(level: str = "info") -> None:
    # JOURNAL_STREAM is set by systemd when stderr is connected to the journal (systemd.exec(5)).
    under_journal = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s" if under_journal else "%(asctime)s %(levelname)s %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
