"""The inference worker: `python -m jetvit_daemon.runners.worker --control-fds R,W`, started and supervised by
the daemon (runners/worker_client.py). It loads the runner (ONNX Runtime or TensorRT; the engine check runs
here, where TensorRT is, and its verdict goes back), warms it up, maps the shared slots and then runs each
submitted batch from its slot's input into its slot's outputs. Messages: runners/worker_protocol.py.

Why a process: on JetPack 4.6 (the last JetPack for the Jetson Nano) TensorRT's Python bindings exist only for
the system Python 3.6 while the daemon needs 3.8+ (`runner.python: /usr/bin/python3.6`); a CUDA crash or hang
takes down the worker, not the daemon; and inference never waits for the daemon's GIL.

This module and everything it imports run on Python 3.6 with numpy 1.13 (`vermin --target=3.6-`, and .ci/run
runs it under 3.6 where one is installed): numpy, the runner modules, the slots, the protocol. The manifest
arrives as JSON (runners/plain_manifest.py), validated by the daemon.

Exit status: 0 after `stop` or when the daemon closed the pipe; 3 the model could not be loaded (the `ready`
message said why); 1 anything else.
"""

import argparse
import importlib
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.base import RUNNERS, Runner
from jetvit_daemon.runners.plain_manifest import PlainManifest
from jetvit_daemon.runners.shm_slots import SlotFile, SlotLayout, TensorLayout
from jetvit_daemon.runners.worker_protocol import (
    ATTACH,
    ATTACHED,
    FAILED,
    LOAD,
    READY,
    STOP,
    SUBMIT,
    Channel,
)

log = logging.getLogger("jetvit_daemon.worker")

EXIT_OK, EXIT_FAILED, EXIT_ENGINE = 0, 1, 3
RSS_EVERY_S = 1.0  # how often a `done` carries the worker's resident set (a metric, scraped every few s)


def rss_bytes() -> Optional[int]:
    """This process's resident set (Linux /proc/self/statm: pages), None where there is no /proc."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def load_runner(message: Dict[str, Any]) -> Runner:
    """The runner the `load` message names, on the manifest it carries (EngineError when it cannot load)."""
    name = message["runner"]
    if name not in RUNNERS:
        raise EngineError("unknown runner {!r}: the worker knows {}".format(name, ", ".join(sorted(RUNNERS))))
    module_name, _, class_name = RUNNERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineError(f"runner {name!r} cannot be imported by {sys.executable} ({exc}): install it for that "
                          "interpreter (runner.python in daemon.yaml)") from None
    cls = getattr(module, class_name)
    options = dict(message.get("options") or {})
    runner: Runner = cls(Path(message["model"]), manifest=PlainManifest(message["manifest"]), **options)
    return runner


def describe(runner: Runner) -> Dict[str, Any]:
    """The `ready` message's info: what the daemon's RunnerInfo holds."""
    info = runner.info()
    spec = info.input
    return {"runner": info.runner, "device": info.device, "model_path": info.model_path,
            "input": {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype, "layout": spec.layout},
            "output_names": list(info.output_names), "max_batch": int(info.max_batch)}


def probe_outputs(runner: Runner) -> List[Dict[str, Any]]:
    """Each output's per-image shape and dtype, from one batch of one (after the warm-up: no extra kernels)."""
    spec = runner.info().input
    outputs = runner.infer(np.zeros([1, *list(spec.shape[1:])], dtype=spec.dtype))
    return [TensorLayout(name, np.asarray(value).shape[1:], np.asarray(value).dtype).to_dict()
            for name, value in outputs.items()]


class Worker:
    """The worker's loop over one control channel. Single-threaded."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.runner = None  # type: Optional[Runner]
        self.slots = None  # type: Optional[SlotFile]
        self._rss_due_s = 0.0

    def load(self) -> int:
        """Wait for `load`, load and warm up, answer `ready`; the exit status when it failed, else None."""
        message = self.channel.recv()
        if message is None or message["op"] != LOAD:
            raise ValueError(f"expected a load message, got {message!r}")
        t0 = time.monotonic()
        try:
            runner = load_runner(message)
            iterations = int(message.get("warmup_iterations", 0))
            if iterations:
                runner.warm_up(iterations)
            outputs = probe_outputs(runner)
        except EngineError as exc:
            self.channel.send(READY, ok=False, kind="engine", error=str(exc))
            return EXIT_ENGINE
        except Exception as exc:  # a model that cannot even warm up: the same verdict, with the exception
            text = "{}: the model failed to load or warm up: {}: {}".format(message["model"], type(exc).__name__,
                                                                            exc)
            self.channel.send(READY, ok=False, kind="engine", error=text, traceback=traceback.format_exc())
            return EXIT_ENGINE
        self.runner = runner
        self.channel.send(READY, ok=True, info=describe(runner), outputs=outputs, warmup_s=time.monotonic() - t0,
                          pid=os.getpid(), python=sys.version.split()[0], rss_bytes=rss_bytes())
        return EXIT_OK

    def serve(self) -> int:
        """Attach and run batches until `stop` or the daemon closes the pipe."""
        while True:
            try:
                message = self.channel.recv()
            except EOFError:
                return EXIT_OK  # the daemon is gone: nothing left to serve
            if message is None:
                continue
            op = message["op"]
            if op == SUBMIT:
                self.run_batch(int(message["slot"]), int(message["n"]), message.get("seq"))
            elif op == ATTACH:
                self.attach(message["path"], SlotLayout.from_dict(message["layout"]))
            elif op == STOP:
                return EXIT_OK
            else:
                raise ValueError(f"unexpected control message {message!r}")

    def attach(self, path: str, layout: SlotLayout) -> None:
        """Map the daemon's slots and let the runner page-lock them (TensorRT: no staging copy); answer with
        whether it could and, if not, why."""
        assert self.runner is not None, "attach before load"
        if self.slots is not None:
            self.runner.unpin_host_memory()
            self.slots.close()
        self.slots = SlotFile.attach(path, layout)
        reason = self.runner.pin_host_memory(self.slots.memory())
        self.channel.send(ATTACHED, pinned=reason is None, pin_error=reason)

    def run_batch(self, slot: int, n: int, seq: Any) -> None:
        assert self.runner is not None and self.slots is not None, "submit before load and attach"
        t0 = time.monotonic()
        try:
            outputs = {name: view[:n] for name, view in self.slots.outputs(slot).items()}
            self.runner.infer_into(self.slots.input(slot)[:n], outputs)
        except Exception as exc:  # one batch is the boundary: the daemon counts it, the worker goes on
            self.channel.send(FAILED, slot=slot, seq=seq, error=f"{type(exc).__name__}: {exc}")
            return
        t1 = time.monotonic()
        rss = None
        if t1 >= self._rss_due_s:  # reading /proc costs ~40 µs: once a second, not once a batch
            rss = rss_bytes()
            self._rss_due_s = t1 + RSS_EVERY_S
        self.channel.send_done(slot, n, seq, t0, t1, rss)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jetvit_daemon.runners.worker",
                                     description="jetvit-daemon's inference worker (started by the daemon)")
    parser.add_argument("--control-fds", required=True, metavar="R,W",
                        help="the control pipe's descriptors: read, write")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    # Ctrl-C in a terminal reaches the whole process group: the daemon decides when the worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="worker: %(levelname)s %(message)s")
    read_fd, write_fd = (int(x) for x in args.control_fds.split(","))
    worker = Worker(Channel(read_fd, write_fd))
    try:
        code = worker.load()
        if code != EXIT_OK:
            return code
        return worker.serve()
    except BrokenPipeError:
        return EXIT_OK  # the daemon went away while we answered
    finally:
        if worker.runner is not None:
            worker.runner.close()
        if worker.slots is not None:
            worker.slots.close()


if __name__ == "__main__":
    sys.exit(main())
