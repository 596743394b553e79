"""systemd's watchdog ends a wedged daemon with SIGABRT: the daemon's every thread's stack reaches stderr (the
journal) before it dies, so an operator can see where it hung."""

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from daemon_process import DaemonProcess, write_setup

pytestmark = pytest.mark.slow


def test_sigabrt_dumps_every_threads_stack_before_dying(tmp_path):
    setup = write_setup(tmp_path)
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        daemon.proc.send_signal(signal.SIGABRT)
        daemon.proc.wait(30)
        daemon._reader.join(5)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == -signal.SIGABRT
    log = daemon.log
    assert "Fatal Python error: Aborted" in log
    # Not just the main thread: the workers' stacks (where a hang would be) are there too.
    assert log.count("Thread 0x") >= 3, log[-3000:]
    assert "in _supervise" in log or "in run" in log
