"""Log formats: journal lines carry the syslog priority and keep a traceback in one line (one journal entry);
json lines parse; the journal is recognised by JOURNAL_STREAM's device:inode, not by the variable alone."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jetvit_daemon.service.logs import (
    JOURNAL_LINE_MAX,
    JournalFormatter,
    JsonFormatter,
    resolve_format,
    setup_logging,
    stderr_is_journal,
    syslog_priority,
)


def _record_with_traceback(level: int = logging.ERROR, message: str = "worker %s died") -> logging.LogRecord:
    try:
        raise RuntimeError("boom\nsecond line of the message")
    except RuntimeError:
        return logging.getLogger("jetvit_daemon.workers").makeRecord(
            "jetvit_daemon.workers", level, __file__, 1, message, ("governor",), sys.exc_info())


def _decode(escaped: str) -> str:
    out, i = [], 0
    table = {"n": "\n", "r": "\r", "0": "\0", "\\": "\\"}
    while i < len(escaped):
        if escaped[i] == "\\":
            out.append(table[escaped[i + 1]])
            i += 2
        else:
            out.append(escaped[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("level, priority", [
    (logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6), (logging.DEBUG, 7),
    (logging.INFO + 5, 6), (logging.ERROR + 1, 3)])
def test_levels_map_to_syslog_priorities(level, priority):
    assert syslog_priority(level) == priority


def test_journal_line_has_the_priority_and_the_whole_traceback_without_a_line_break():
    line = JournalFormatter().format(_record_with_traceback())
    assert line.startswith("<3>ERROR jetvit_daemon.workers: worker governor died")
    # journald ends an entry at \n and at NUL: neither may occur inside one record.
    assert "\n" not in line and "\0" not in line
    original = _decode(line[len("<3>"):])
    assert "Traceback (most recent call last):\n" in original
    assert original.endswith("RuntimeError: boom\nsecond line of the message")


def test_journal_encoding_is_reversible_for_backslashes():
    record = logging.makeLogRecord({"msg": r"path C:\new\table", "levelno": logging.WARNING,
                                    "levelname": "WARNING", "name": "x"})
    line = JournalFormatter().format(record)
    assert line.startswith("<4>") and _decode(line[3:]) == r"WARNING x: path C:\new\table"


def test_an_oversized_record_is_cut_to_stay_one_journal_entry():
    record = logging.makeLogRecord({"msg": "x" * (2 * JOURNAL_LINE_MAX), "levelno": logging.ERROR,
                                    "levelname": "ERROR", "name": "x"})
    line = JournalFormatter().format(record)
    assert len(line) <= JOURNAL_LINE_MAX and line.startswith("<3>") and "characters cut)" in line


def test_json_lines_parse_and_carry_the_traceback():
    line = JsonFormatter().format(_record_with_traceback(logging.WARNING, "odd \u2028 thing %s"))
    assert "\n" not in line and "\u2028" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "jetvit_daemon.workers"
    assert entry["message"] == "odd \u2028 thing governor"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["time"].endswith("Z") and entry["thread"]


def test_the_journal_is_recognised_by_the_device_and_inode_of_stderr(tmp_path):
    with open(tmp_path / "stream", "w") as stream, open(tmp_path / "other", "w") as other:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert stderr_is_journal(stream, env)
        # Inherited variable, redirected stderr: not the journal.
        assert not stderr_is_journal(other, env)
        assert not stderr_is_journal(stream, {})
        assert not stderr_is_journal(stream, {"JOURNAL_STREAM": "garbage"})
        assert not stderr_is_journal(io.StringIO(), env)
        assert resolve_format(None, stream, env) == "journal"
        assert resolve_format(None, other, env) == "text"
        assert resolve_format("json", stream, env) == "json"


def test_setup_logging_writes_the_chosen_format(tmp_path):
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert setup_logging("info", "json", stream=out) == "json"
        logging.getLogger("jetvit_daemon").info("hello %d", 1)
        logging.getLogger("jetvit_daemon").debug("not shown")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["message"] for x in lines] == ["hello 1"]


def test_a_bad_config_under_the_journal_is_one_error_entry(tmp_path):
    """`journalctl -p err` must show why the service did not start: the CLI's error is <3>, in one line."""
    config = tmp_path / "daemon.yaml"
    config.write_text("version: 1\nhttp:\n  port: -5\nlog_level: loud\n")
    stderr_path = tmp_path / "stderr"
    with open(stderr_path, "w") as err:
        st = os.fstat(err.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = subprocess.run([sys.executable, "-m", "jetvit_daemon", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=60)
    assert proc.returncode == 2
    lines = Path(stderr_path).read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("<3>error: ") and "port" in lines[0] and "log_level" in lines[0]
