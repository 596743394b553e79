"""The daemon's side of the inference worker: starts `python -m jetvit_daemon.runners.worker` (runners/worker.py)
under `runner.python`, owns the shared slots, runs batches through it with several in flight, and supervises it.

    worker = InferenceWorker(WorkerSpec(sys.executable, "onnxruntime", model, manifest, options, 3))
    worker.start()          # load + engine check + warm-up in the worker; EngineError (exit 3) with its verdict
    k = worker.acquire(0.1); worker.input(k)[:n] = batch; worker.submit(k, n, frames)
    done = worker.collect(0.1)                             # runners/executor.py has the whole protocol
    worker.stop(5.0)

Supervision (the `inference-worker` thread, its one owner): a worker that does not finish its batch within
max(1 s, 10 × its recent batch time) is killed (SIGKILL: a hung CUDA call ignores anything gentler) and
restarted, a worker that dies likewise; restarts back off (0.5 s doubling to 30 s, reset by a batch done) and
the batches it held come back as `lost` completions (their frames are dropped, reason `worker_restart`). A
worker that cannot load its model MAX_LOAD_FAILURES times in a row ends the daemon (the thread dies with the
EngineError; the service exits 3 with the engine check's message). Thread-safety: see BatchExecutor.
"""

import collections
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional, Sequence

import numpy as np

import jetvit_daemon
from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.base import RunnerInfo
from jetvit_daemon.runners.executor import N_SLOTS, BatchExecutor, Completion
from jetvit_daemon.runners.manifest import InputSpec, Manifest
from jetvit_daemon.runners.shm_slots import SlotFile, SlotLayout, TensorLayout
from jetvit_daemon.runners.worker_protocol import (
    ATTACH,
    ATTACHED,
    DONE,
    FAILED,
    LOAD,
    READY,
    STOP,
    Channel,
    ProtocolError,
)
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger("jetvit_daemon")

# Loading a TensorRT engine and warming it up takes tens of seconds on a Jetson Nano (a ViT-Base engine's
# deserialisation alone is ~10 s there); ONNX Runtime on a CPU is faster. Past this the load counts as failed.
LOAD_TIMEOUT_S = 180.0
ATTACH_TIMEOUT_S = 10.0
HANG_FLOOR_S = 1.0  # the batch deadline: max(HANG_FLOOR_S, HANG_FACTOR × recent batch time)
HANG_FACTOR = 10.0
RECENT_BATCHES = 16
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 30.0
MAX_LOAD_FAILURES = 5  # in a row, on restarts (the first start fails at once): then the daemon ends, exit 3
POLL_S = 0.05  # the supervision loop's wait on the worker's replies; also how soon a stop is seen
STOP_WAIT_S = 2.0  # how long `stop` waits for the worker to exit after asking before it kills it


class WorkerSpec(NamedTuple):
    """What to start: the interpreter, the runner (name and options) and the model with its validated
    manifest."""

    python: str
    runner: str  # "onnxruntime", "tensorrt" (resolved: not "auto")
    model: Path
    manifest: Manifest
    options: Dict[str, Any]
    warmup_iterations: int = 3


class _Batch:
    __slots__ = ("n", "paced_end_s", "paced_s", "seq", "slot", "t_submit_s", "tag")

    def __init__(self, seq: int, slot: int, n: int, tag: Any, t_submit_s: float, paced_s: float,
                 paced_end_s: float) -> None:
        self.seq, self.slot, self.n, self.tag = seq, slot, n, tag
        self.t_submit_s, self.paced_s, self.paced_end_s = t_submit_s, paced_s, paced_end_s


class _Process:
    """One started worker: the child and its control channel."""

    def __init__(self, popen: "subprocess.Popen[bytes]", channel: Channel) -> None:
        self.popen = popen
        self.channel = channel
        self.ready: Dict[str, Any] = {}
        self.pinned = False  # the worker's runner page-locked the slots (TensorRT: copies with no staging)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> Optional[int]:
        """SIGKILL (works on a stopped or hung process too), reap, close the pipes; the exit status."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            code = self.popen.wait(5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL cannot end (stuck in D state)
            code = None
        self.channel.close()
        return code


class InferenceWorker(BatchExecutor):
    """The model in a supervised worker process; see the module docstring. `pace(n)` (simulated board speed)
    makes a batch of n complete no sooner than pace(n) seconds after the previous one."""

    def __init__(self, spec: WorkerSpec, n_slots: int = N_SLOTS, pace: Optional[Callable[[int], float]] = None,
                 load_timeout_s: float = LOAD_TIMEOUT_S, slot_dir: Optional[str] = None,
                 backoff_first_s: float = BACKOFF_FIRST_S, max_load_failures: int = MAX_LOAD_FAILURES) -> None:
        self.spec = spec
        self.manifest = spec.manifest
        self._n_slots = max(2, n_slots)
        self._pace = pace
        self._load_timeout_s = load_timeout_s
        self._slot_dir = slot_dir
        self._cond = threading.Condition()
        self._proc: Optional[_Process] = None  # None while down or (re)starting
        self._slots: Optional[SlotFile] = None
        self._free: Deque[int] = collections.deque(range(self._n_slots))
        self._batches: Deque[_Batch] = collections.deque()  # in the worker, oldest first
        self._done: Deque[Completion] = collections.deque()
        self._seq = 0
        self._last_done_s = 0.0
        self._last_paced_end_s = 0.0
        self._recent: Deque[float] = collections.deque(maxlen=RECENT_BATCHES)  # seconds per batch
        self._recent_per_frame: Deque[float] = collections.deque(maxlen=RECENT_BATCHES)
        self._info: Optional[RunnerInfo] = None
        self._path_dir: Optional[str] = None  # PYTHONPATH holding only the package, for another interpreter
        self.restarts_total = 0
        self.last_restart_reason: Optional[str] = None
        self._backoff_first_s = backoff_first_s
        self._backoff_s = backoff_first_s
        self._max_load_failures = max_load_failures
        self._restart_at_s = 0.0
        self._load_failures = 0
        self._rss_bytes: Optional[int] = None
        self._closed = False
        self.thread = WorkerThread("inference-worker", self._body)

    # -- BatchExecutor: description ------------------------------------------------------------------------
    def info(self) -> RunnerInfo:
        if self._info is not None:
            return self._info
        spec = self.manifest.input
        fixed = spec.shape[0] if spec.shape[0] > 0 else None
        return RunnerInfo(runner=self.spec.runner, device="(worker not started)", model_path=str(self.spec.model),
                          input=spec, output_names=tuple(self.manifest.outputs),
                          max_batch=fixed or self.manifest.batch.max)

    def workers(self) -> Sequence[WorkerThread]:
        return [self.thread]

    @property
    def n_slots(self) -> int:
        return self._n_slots

    def status(self) -> Dict[str, Any]:
        with self._cond:
            proc = self._proc
            recent = sorted(self._recent)
            return {
                "mode": "worker", "state": "running" if proc is not None else "restarting",
                "pid": proc.pid if proc is not None else None, "python": self.spec.python,
                "python_version": proc.ready.get("python") if proc is not None else None,
                "restarts_total": self.restarts_total, "last_restart_reason": self.last_restart_reason,
                "rss_bytes": self._rss_bytes, "in_flight": len(self._batches), "slots": self._n_slots,
                "slot_bytes": self._slots.layout.total_nbytes if self._slots is not None else None,
                "slots_pinned": proc.pinned if proc is not None else None,
                "batch_p50_s": recent[len(recent) // 2] if recent else None,
                "batch_deadline_s": self._deadline_s(1),
            }

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker and wait for its verdict: EngineError (the engine check's message, the rebuild
        command) when it cannot load the model. Then the supervision thread runs."""
        proc = self._launch(threading.Event())
        with self._cond:
            self._proc = proc
            self._cond.notify_all()
        self.thread.start()

    def stop(self, timeout_s: float) -> None:
        """Stop supervising, ask the worker to exit, kill it after STOP_WAIT_S (or `timeout_s`), remove the
        slots. Within about `timeout_s`."""
        deadline = time.monotonic() + max(0.1, timeout_s)
        self.thread.stop(max(0.05, min(1.0, timeout_s / 2)))
        with self._cond:
            proc, self._proc = self._proc, None
            self._closed = True
            self._lose_batches_locked()
            self._cond.notify_all()
        if proc is not None:
            try:
                proc.channel.send(STOP)
                proc.popen.wait(max(0.05, min(STOP_WAIT_S, deadline - time.monotonic())))
            except (OSError, subprocess.TimeoutExpired):
                log.warning("inference worker %d did not exit when asked: killed", proc.pid)
            proc.kill()
        if self._slots is not None:
            self._slots.close()
            self._slots = None
        if self._path_dir is not None:
            shutil.rmtree(self._path_dir, ignore_errors=True)

    def close(self) -> None:
        self.stop(STOP_WAIT_S)

    # -- BatchExecutor: batches ----------------------------------------------------------------------------
    def input(self, slot: int) -> np.ndarray:
        assert self._slots is not None, "input() before start()"
        return self._slots.input(slot)

    def acquire(self, timeout_s: float, stop: Optional[threading.Event] = None) -> Optional[int]:
        with self._cond:
            if not self._cond.wait_for(lambda: (self._proc is not None and bool(self._free)) or self._closed,
                                       timeout_s):
                return None
            if self._closed:
                return None
            return self._free.popleft()

    def submit(self, slot: int, n: int, tag: Any) -> None:
        now = time.monotonic()
        with self._cond:
            self._seq += 1
            paced_s = paced_end = 0.0
            if self._pace is not None:
                paced_s = self._pace(n)
                paced_end = max(now, self._last_paced_end_s) + paced_s
                self._last_paced_end_s = paced_end
            batch = _Batch(self._seq, slot, n, tag, now, paced_s, paced_end)
            proc = self._proc
            if proc is None:  # it went down since acquire: the batch is lost like those it held
                self._done.append(Completion(slot, n, tag, lost=True, t_done_s=now))
                self._cond.notify_all()
                return
            self._batches.append(batch)
            try:
                proc.channel.send_submit(slot, n, batch.seq)
            except OSError:
                pass  # the worker is gone: the supervision thread sees it and gives the batch back as lost

    def collect(self, timeout_s: float) -> Optional[Completion]:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._done), timeout_s):
                return None
            done = self._done.popleft()
        wait_s = done.not_before_s - time.monotonic()
        if wait_s > 0:
            # Standing in for the simulated GPU's time (simulator.simulate_speed): the batch is handed on no
            # sooner than the board would have finished it; bounded by one batch's duration.
            time.sleep(wait_s)
        return done

    def release(self, slot: int) -> None:
        with self._cond:
            self._free.append(slot)
            self._cond.notify_all()

    def in_flight(self) -> int:
        with self._cond:
            return len(self._batches) + len(self._done)

    # -- starting a worker ---------------------------------------------------------------------------------
    def _command(self) -> List[str]:
        return [self.spec.python, "-m", "jetvit_daemon.runners.worker"]

    def _env(self) -> Dict[str, str]:
        env = dict(os.environ)
        if Path(self.spec.python).resolve() == Path(sys.executable).resolve():
            return env
        # Another interpreter (JetPack 4.6's python3.6) must find this package but nothing else of this
        # environment (its numpy is built for this Python): a directory holding only a link to the package.
        if self._path_dir is None:
            self._path_dir = tempfile.mkdtemp(prefix="jetvit-worker-path-")
            os.symlink(Path(jetvit_daemon.__file__).resolve().parent, os.path.join(self._path_dir, "jetvit_daemon"))
        env["PYTHONPATH"] = self._path_dir
        return env

    def _spawn(self) -> _Process:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        argv = [*self._command(), "--control-fds", f"{to_worker_r},{from_worker_w}"]
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, pass_fds=(to_worker_r, from_worker_w),
                                     env=self._env(), close_fds=True)
        except OSError as exc:
            for fd in (to_worker_r, to_worker_w, from_worker_r, from_worker_w):
                os.close(fd)
            raise EngineError(f"runner.python: cannot start the inference worker with {self.spec.python}: "
                              f"{exc.strerror or exc}") from None
        os.close(to_worker_r)
        os.close(from_worker_w)
        return _Process(popen, Channel(from_worker_r, to_worker_w))

    def _launch(self, stop: threading.Event) -> _Process:
        """A worker that has loaded the model and mapped the slots; EngineError with its verdict otherwise."""
        proc = self._spawn()
        try:
            proc.channel.send(LOAD, runner=self.spec.runner, model=str(self.spec.model),
                              manifest=self.manifest.model_dump(mode="json"), options=self.spec.options,
                              warmup_iterations=self.spec.warmup_iterations)
            ready = self._await(proc, READY, self._load_timeout_s, stop, "load the model")
            if not ready.get("ok"):
                proc.kill()
                raise EngineError(str(ready.get("error") or "the worker could not load the model"))
            proc.ready = ready
            self._adopt(ready)
            assert self._slots is not None
            proc.channel.send(ATTACH, path=self._slots.path, layout=self._slots.layout.to_dict())
            attached = self._await(proc, ATTACHED, ATTACH_TIMEOUT_S, stop, "map the shared slots")
            proc.pinned = bool(attached.get("pinned"))
        except (OSError, ProtocolError) as exc:
            code = proc.kill()
            raise EngineError(f"the inference worker ({' '.join(self._command())}) failed before it was ready "
                              f"({exc}; exit status {code}); its messages are in the log above") from None
        except BaseException:
            proc.kill()
            raise
        log.info("inference worker %d (%s, Python %s) ready: %s on %s, %d slots of %d bytes in %s%s", proc.pid,
                 self.spec.python, ready.get("python"), ready["info"]["runner"], ready["info"]["device"],
                 self._n_slots, self._slots.layout.slot_nbytes, self._slots.path,
                 ", page-locked" if proc.pinned else "")
        return proc

    def _await(self, proc: _Process, op: str, timeout_s: float, stop: threading.Event, what: str) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not stop.is_set():
            try:
                message = proc.channel.recv(POLL_S * 4)
            except EOFError:
                raise ProtocolError(f"it exited before it could {what}") from None
            if message is not None:
                if message["op"] != op:
                    raise ProtocolError(f"expected {op!r}, got {message['op']!r}")
                return message
        raise ProtocolError(f"it did not {what} within {timeout_s:.0f} s" if not stop.is_set() else "stopping")

    def _adopt(self, ready: Dict[str, Any]) -> None:
        """The worker's description of the model: the runner info, and the slots laid out for it (made once,
        reused by every later worker; a restarted worker reporting another layout gets new ones)."""
        info = ready["info"]
        self._info = RunnerInfo(runner=info["runner"], device=info["device"], model_path=info["model_path"],
                                input=InputSpec(**info["input"]), output_names=tuple(info["output_names"]),
                                max_batch=int(info["max_batch"]))
        spec = self._info.input
        layout = SlotLayout(TensorLayout(spec.name, spec.item_shape, spec.dtype),
                            [TensorLayout.from_dict(o) for o in ready["outputs"]], self._info.max_batch,
                            self._n_slots)
        self._rss_bytes = ready.get("rss_bytes")
        if self._slots is not None and self._slots.layout == layout:
            return
        if self._slots is not None:
            log.warning("the restarted inference worker reports another slot layout: new slots")
            self._slots.close()
        self._slots = SlotFile.create(layout, self._slot_dir)

    # -- supervision ---------------------------------------------------------------------------------------
    def _body(self, worker: WorkerThread) -> None:
        # The loop's wait is on the worker's replies (select with POLL_S), so a done batch is passed on at
        # once; the stop event is looked at every turn.
        while not worker.stop_event.is_set():
            worker.beat()
            with self._cond:
                proc = self._proc
            if proc is None:
                self._restart_when_due(worker.stop_event)
                continue
            try:
                message = proc.channel.recv(POLL_S)
            except (EOFError, ProtocolError, OSError) as exc:
                self._lose(proc, f"exited ({exc}; exit status {proc.kill()})")
                continue
            if message is not None:
                self._handle(message)
            elif proc.popen.poll() is not None:
                self._lose(proc, f"exited with status {proc.popen.returncode}")
            else:
                self._check_deadline(proc)

    def _handle(self, message: Dict[str, Any]) -> None:
        op = message["op"]
        if op not in (DONE, FAILED):
            log.warning("inference worker: unexpected message %r ignored", op)
            return
        now = time.monotonic()
        with self._cond:
            if not self._batches or self._batches[0].seq != message.get("seq"):
                log.warning("inference worker answered batch %s, expected %s: ignored", message.get("seq"),
                            self._batches[0].seq if self._batches else None)
                return
            batch = self._batches.popleft()
            self._last_done_s = now
            if op == FAILED:
                error = EngineError(f"the inference worker failed a batch of {batch.n}: {message.get('error')}")
                self._done.append(Completion(batch.slot, batch.n, batch.tag, error=error, t_done_s=now))
            else:
                infer_s = float(message.get("infer_s", now - batch.t_submit_s))
                self._recent.append(infer_s)
                self._recent_per_frame.append(infer_s / max(1, batch.n))
                rss = message.get("rss_bytes")
                self._rss_bytes = self._rss_bytes if rss is None else rss
                self._backoff_s = self._backoff_first_s
                assert self._slots is not None
                outputs = {name: view[: batch.n] for name, view in self._slots.outputs(batch.slot).items()}
                if batch.paced_s:
                    infer_s = max(infer_s, batch.paced_s)
                self._done.append(Completion(batch.slot, batch.n, batch.tag, outputs=outputs, infer_s=infer_s,
                                             t_done_s=now, not_before_s=batch.paced_end_s))
            self._cond.notify_all()

    def _deadline_s(self, n: int) -> float:
        """How long a batch of n may take: max(1 s, 10 × the recent batch time, scaled to n frames)."""
        recent = max(self._recent, default=0.0)
        per_frame = max(self._recent_per_frame, default=0.0)
        return max(HANG_FLOOR_S, HANG_FACTOR * max(recent, per_frame * n))

    def _check_deadline(self, proc: _Process) -> None:
        with self._cond:
            if not self._batches:
                return
            batch = self._batches[0]
            began_s = max(batch.t_submit_s, self._last_done_s)
            bound_s = self._deadline_s(batch.n)
        if time.monotonic() - began_s > bound_s:
            self._lose(proc, f"did not finish a batch of {batch.n} within {bound_s:.1f} s (hung)")

    def _lose(self, proc: _Process, reason: str) -> None:
        """The worker is gone or hung: kill it, give its batches back as lost, schedule the restart."""
        proc.kill()
        with self._cond:
            if self._proc is not proc:
                return
            self._proc = None
            lost = self._lose_batches_locked()
            self.restarts_total += 1
            self.last_restart_reason = reason
            self._restart_at_s = time.monotonic() + self._backoff_s
            delay, self._backoff_s = self._backoff_s, min(BACKOFF_MAX_S, self._backoff_s * 2)
            self._cond.notify_all()
        log.error("inference worker %d %s: %d frames in flight dropped (worker_restart); restarting in %.1f s",
                  proc.pid, reason, lost, delay)

    def _lose_batches_locked(self) -> int:
        now = time.monotonic()
        frames = 0
        while self._batches:
            batch = self._batches.popleft()
            frames += batch.n
            self._done.append(Completion(batch.slot, batch.n, batch.tag, lost=True, t_done_s=now))
        return frames

    def _restart_when_due(self, stop: threading.Event) -> None:
        wait_s = self._restart_at_s - time.monotonic()
        if wait_s > 0:
            stop.wait(min(wait_s, 0.2))
            return
        try:
            proc = self._launch(stop)
        except EngineError as exc:
            if stop.is_set():
                return
            self._load_failures += 1
            if self._load_failures >= self._max_load_failures:
                raise EngineError(f"the inference worker failed to load the model {self._load_failures} times in "
                                  f"a row; the last time: {exc}") from None
            with self._cond:
                self._restart_at_s = time.monotonic() + self._backoff_s
                self._backoff_s = min(BACKOFF_MAX_S, self._backoff_s * 2)
            log.error("inference worker failed to start (%d of %d): %s", self._load_failures,
                      self._max_load_failures, exc)
            return
        self._load_failures = 0
        with self._cond:
            if self._closed:
                proc.kill()
                return
            self._proc = proc
            self._last_done_s = time.monotonic()
            self._cond.notify_all()
