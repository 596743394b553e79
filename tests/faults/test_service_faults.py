"""The service shell's rows of the fault matrix (issue 9 items 6, 9, 10; README.md says how a case works):
start-up errors are one line with exit 2 and no traceback, a SIGHUP storm does not delay SIGTERM, an HTTP
connection flood neither starves the daemon of file descriptors nor outlives the request timeout."""

import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import List

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from matrix import WAIT_S, Case, Run, run_case

from jetvit_daemon.service.http import MAX_CONNECTIONS, REQUEST_TIMEOUT_S

pytestmark = pytest.mark.slow


def _edit_config(run: Run, **changes: object) -> None:
    path = run.setup["config"]
    config = yaml.safe_load(path.read_text())
    config.update(changes)
    path.write_text(yaml.safe_dump(config))


def _exits(run: Run) -> None:
    run.d.proc.wait(WAIT_S * 2)


# -- start-up errors (item 10) -----------------------------------------------------------------------------
def _port_in_use(run: Run) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    run.cleanups.append(holder.close)
    _edit_config(run, http={"host": "127.0.0.1", "port": holder.getsockname()[1]})


def _state_dir_a_file(run: Run) -> None:
    run.setup["state"].write_text("not a directory\n")


def _binary_config(run: Run) -> None:
    run.setup["config"].write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x00" * 20)


def _policy_a_directory(run: Run) -> None:
    run.policy_path.unlink()
    run.policy_path.mkdir()


def _journal_a_directory(run: Run) -> None:
    run.setup["state"].mkdir(mode=0o700)
    (run.setup["state"] / "baseline.json").mkdir()


def _deep_config(run: Run) -> None:
    with run.setup["config"].open("a") as f:
        f.write("extra: " + "[" * 200 + "]" * 200 + "\n")


def _binary_policy(run: Run) -> None:
    run.policy_path.write_bytes(b"\xff\xfe\x00ladder\x80\x81" * 10)


# -- SIGHUP storm (item 9) ---------------------------------------------------------------------------------
def _sighup_storm(run: Run) -> None:
    for _ in range(100):
        run.signal(signal.SIGHUP)
        time.sleep(0.01)
    start = time.monotonic()
    run.signal(signal.SIGTERM)
    run.d.proc.wait(WAIT_S)
    run.recovered("stop after 100 SIGHUPs", time.monotonic() - start)


# -- HTTP flood (item 6) -----------------------------------------------------------------------------------
def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _http_flood(run: Run) -> None:
    pid = run.d.proc.pid
    before = _open_fds(pid)
    idle: List[socket.socket] = []
    try:
        for _ in range(300):  # idle connections that never send a request
            s = socket.create_connection(("127.0.0.1", run.d.port), timeout=5)
            idle.append(s)
        time.sleep(0.5)
        held = _open_fds(pid) - before
        assert held <= MAX_CONNECTIONS + 8, f"the daemon holds {held} more descriptors under the flood"
        start = time.monotonic()
        deadline = start + WAIT_S
        while True:  # the idle ones are dropped after the request timeout; /healthz answers again
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{run.d.port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "/healthz did not answer again after the flood"
            time.sleep(0.2)
        run.recovered("healthz under an idle-connection flood", time.monotonic() - start)
    finally:
        for s in idle:
            s.close()
    assert run.healthy()


CASES = [
    Case("startup_metrics_port_in_use", "a port in use is one line naming http.port, exit 2, board untouched",
         _exits, prepare=_port_in_use, wait_ready=False, exit_codes=(2,),
         log=(r"error: http: cannot listen on \[127\.0\.0\.1\]:\d+: Address already in use",), issue_items=("10",)),
    Case("startup_state_dir_a_file", "a state_dir that is a file is one line naming state_dir, exit 2",
         _exits, prepare=_state_dir_a_file, wait_ready=False, exit_codes=(2,),
         log=(r"error: state_dir: .* not a directory",), issue_items=("10",)),
    Case("startup_binary_config", "a binary daemon.yaml is one line naming the file, exit 2",
         _exits, prepare=_binary_config, wait_ready=False, exit_codes=(2,),
         log=(r"error: .*daemon\.yaml",), issue_items=("10",)),
    Case("startup_policy_a_directory", "a policy path that is a directory is one line naming it, exit 2",
         _exits, prepare=_policy_a_directory, wait_ready=False, exit_codes=(2,),
         config={"policy_permissions": "ignore"}, log=(r"error: .*policy\.yaml.*[Dd]irectory",),
         issue_items=("10",)),
    Case("startup_journal_a_directory", "a baseline journal that is a directory is one line naming it, exit 2",
         _exits, prepare=_journal_a_directory, wait_ready=False, exit_codes=(2,), journal="kept",
         log=(r"error: .*/state/baseline\.json is not a regular file",), issue_items=("10",)),
    Case("startup_deep_yaml_config", "a daemon.yaml nested 200 deep is one line naming the file and line, exit 2",
         _exits, prepare=_deep_config, wait_ready=False, exit_codes=(2,),
         log=(r"error: .*daemon\.yaml:\d+: .*nest",), issue_items=("3", "10")),
    Case("startup_binary_policy", "a binary policy at start is one line naming the file, exit 2",
         _exits, prepare=_binary_policy, wait_ready=False, exit_codes=(2,),
         config={"policy_permissions": "ignore"}, log=(r"error: .*policy\.yaml.*(UTF-8|binary)",),
         issue_items=("10",)),
    Case("sighup_storm_then_sigterm", "100 SIGHUPs in a second do not delay SIGTERM: exit 0 within 10 s, restored",
         _sighup_storm, max_recovery_s=10.0, issue_items=("9",)),
    Case("http_idle_connection_flood", "300 idle connections: HTTP holds at most its cap of descriptors, drops "
         "them after the request timeout, and the board is still restored on stop", _http_flood,
         max_recovery_s=REQUEST_TIMEOUT_S + 10.0, issue_items=("6",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_service_fault_matrix(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
