"""The real daemon and its inference worker process (issue 12): a model that cannot load ends the daemon with
exit 3 and the engine check's message (the rebuild command for a TensorRT engine built elsewhere), once, with no
restart loop, also when it breaks while the daemon runs; a SIGTERM stops the worker within the stop deadline and
leaves no process behind, also when the worker is hung (SIGSTOP) at that moment."""

import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import List, Set

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "runners"))
from daemon_process import DaemonProcess, board_mode_id, write_setup
from fake_trt import engine_bytes, write_importable

from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.runners.shm_slots import default_directory
from jetvit_daemon.runners.worker_client import MAX_LOAD_FAILURES
from jetvit_daemon.service.supervisor import STOP_BUDGET_S

pytestmark = pytest.mark.slow
pytest.importorskip("onnxruntime")

MODE_25W = 1  # the simulated Orin Nano Super's default mode, put back by every stop


def copy_model(tmp_path: Path) -> Path:
    """The bundled digits ViT and its manifest, copied where the test may break them."""
    model = tmp_path / "models" / DEFAULT_MODEL.name
    model.parent.mkdir()
    shutil.copy(DEFAULT_MODEL, model)
    manifest = DEFAULT_MODEL.with_name(DEFAULT_MODEL.stem + ".manifest.json")
    shutil.copy(manifest, model.with_name(manifest.name))
    labels = DEFAULT_MODEL.with_name(DEFAULT_MODEL.stem + ".labels.txt")
    if labels.exists():
        shutil.copy(labels, model.with_name(labels.name))
    return model


def descendants(pid: int) -> Set[int]:
    """Every process below `pid` (Linux: /proc/PID/task/TID/children)."""
    found: Set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` still exists as a process that is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def slot_files(daemon_pid: int) -> List[Path]:
    return sorted(Path(default_directory()).glob(f"jetvit-slots-{daemon_pid}-*"))


def worker_pid(daemon: DaemonProcess) -> int:
    pid = json.loads(daemon.get("/status"))["inference"]["pid"]
    assert isinstance(pid, int), daemon.get("/status")
    return pid


def wait_exit(daemon: DaemonProcess, timeout_s: float) -> float:
    t0 = time.monotonic()
    daemon.proc.wait(timeout_s)
    daemon._reader.join(2)
    return time.monotonic() - t0


def test_a_model_that_cannot_load_is_exit_3_with_the_reason_after_one_attempt(tmp_path):
    model = copy_model(tmp_path)
    model.write_bytes(b"not an onnx model")  # the manifest is fine: the worker's load is what fails
    setup = write_setup(tmp_path, runner={"name": "onnxruntime", "model": str(model)})
    daemon = DaemonProcess(setup["config"])
    try:
        wait_exit(daemon, 60)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 3, daemon.log
    assert re.search(r"error: .*vit_digits\.onnx: ONNX Runtime cannot load the model", daemon.log), daemon.log
    assert "restarting" not in daemon.log and "failed to start (" not in daemon.log, daemon.log  # no loop
    assert board_mode_id(setup["board"]) == MODE_25W
    assert slot_files(daemon.proc.pid) == []


def test_a_tensorrt_engine_built_elsewhere_is_exit_3_with_the_rebuild_command(tmp_path):
    # The worker imports `tensorrt` and `pycuda.driver`: the recorded stand-ins (TensorRT 8.6.2 here), found
    # through PYTHONPATH as any module is. The engine was built with TensorRT 10.3 (JetPack 6.1/6.2).
    modules = write_importable(tmp_path / "fake_modules", "8.6.2")
    engine = tmp_path / "vit.engine"
    engine.write_bytes(engine_bytes("10.3.0"))
    command = f"jetvit-daemon engine build /models/vit.onnx --out {engine} --precision fp16"
    (tmp_path / "vit.manifest.json").write_text(json.dumps({
        "model_name": "vit-test", "framework": "tensorrt",
        "input": {"name": "pixel_values", "shape": [-1, 3, 32, 32], "dtype": "float32", "layout": "NCHW"},
        "outputs": ["logits"], "preprocess": {}, "precision": "fp16", "batch": {"min": 1, "max": 8},
        "build": {"tensorrt_version": "10.3.0", "device": "t234 Orin sm_87", "compute_capability": "8.7",
                  "source_model": "vit.onnx", "command": command}}))
    setup = write_setup(tmp_path, runner={"name": "tensorrt", "model": str(engine)})
    path = os.pathsep.join([str(modules), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    daemon = DaemonProcess(setup["config"], env={"PYTHONPATH": path})
    try:
        wait_exit(daemon, 60)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 3, daemon.log
    assert f"error: {engine}: this engine was built for another system" in daemon.log, daemon.log
    assert "TensorRT: the engine was built with 10.3.0, this system has 8.6.2" in daemon.log
    assert f"Rebuild it on this board from its ONNX model:\n  {command}" in daemon.log
    assert "restarting" not in daemon.log and "failed to start (" not in daemon.log, daemon.log
    assert board_mode_id(setup["board"]) == MODE_25W


def test_a_model_that_breaks_while_running_ends_the_daemon_after_bounded_failed_loads(tmp_path):
    model = copy_model(tmp_path)
    setup = write_setup(tmp_path, runner={"name": "onnxruntime", "model": str(model)})
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        pid = worker_pid(daemon)
        model.write_bytes(b"truncated by a bad copy")
        os.kill(pid, signal.SIGKILL)  # the restart must load the broken file: it fails, with backoff, then gives up
        # 0.5 + 1 + 2 + 4 + 8 s of backoff before the fifth failed load, and each load is quick.
        wait_exit(daemon, 60)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 3, daemon.log
    assert f"failed to load the model {MAX_LOAD_FAILURES} times in a row" in daemon.log, daemon.log
    assert "ONNX Runtime cannot load the model" in daemon.log
    failures = re.findall(r"inference worker failed to start \((\d+) of (\d+)\)", daemon.log)
    assert failures == [(str(i), str(MAX_LOAD_FAILURES)) for i in range(1, MAX_LOAD_FAILURES)], daemon.log
    assert len(re.findall(r"inference worker \d+ exited", daemon.log)) == 1  # one crash, one restart sequence
    assert not alive(pid)
    assert board_mode_id(setup["board"]) == MODE_25W
    assert slot_files(daemon.proc.pid) == []


@pytest.mark.parametrize("hung", [False, True], ids=["healthy", "hung"])
def test_sigterm_stops_the_worker_within_the_deadline_and_leaves_no_process(tmp_path, hung):
    setup = write_setup(tmp_path)
    daemon = DaemonProcess(setup["config"])
    try:
        daemon.wait_ready()
        pid = worker_pid(daemon)
        assert slot_files(daemon.proc.pid), "the worker's slots are in /dev/shm while it runs"
        children = descendants(daemon.proc.pid)
        assert pid in children
        if hung:
            os.kill(pid, signal.SIGSTOP)  # it cannot read the stop message, nor be asked anything
        took_s = daemon.terminate(timeout_s=STOP_BUDGET_S + 5)
    finally:
        daemon.kill()
    assert daemon.proc.returncode == 0, daemon.log
    assert took_s < STOP_BUDGET_S, daemon.log
    # A healthy worker exits when asked. A hung one is killed: by the stop when it does not answer, or by the
    # hang detection if its deadline (1 s) passed while the stages before the runner's were stopping.
    killed = (f"inference worker {pid} did not exit when asked: killed" in daemon.log
              or re.search(rf"inference worker {pid} did not finish a batch of \d+ within [\d.]+ s \(hung\)",
                           daemon.log) is not None)
    assert killed == hung, daemon.log
    assert re.search(r"stopped in [\d.]+ s \(.*runner: [\d.]+ s of", daemon.log), daemon.log
    left = [p for p in children if alive(p)]
    assert left == [], f"processes left behind: {left}\n{daemon.log}"
    assert slot_files(daemon.proc.pid) == []
    assert board_mode_id(setup["board"]) == MODE_25W
