"""The service: the daemon's stages over the built components, its tick loop, and its one status snapshot.

>>> code = run_daemon(config, policy_path=None, duration_s=None)          # what `jetvit-daemon run` does
>>> service = Service(build(config, board, clock, platform=fake), ...)   # in-process tests   # doctest: +SKIP

Stages, started in this order and stopped in reverse under one deadline (service/supervisor.py):
HTTP (bound first: a port in use fails before the board is touched; /readyz says "starting") → simulated
board (if any) → platform (instance lock, crash restore, telemetry) → runner (warm-up) → pipeline →
governor → policy watch. The platform's stop restores the power settings; every exit path runs it.
"""

import logging
import os
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from jetvit_daemon import __version__
from jetvit_daemon.clock import Clock, SystemClock
from jetvit_daemon.config import DaemonConfig
from jetvit_daemon.errors import ConfigError, EngineError
from jetvit_daemon.hardware.probe import acquire_instance_lock
from jetvit_daemon.pipeline.sinks import QueuedSink
from jetvit_daemon.service.board import select_board
from jetvit_daemon.service.components import Components, ReloadTracker, build
from jetvit_daemon.service.http import HttpServer
from jetvit_daemon.service.notify import SystemdNotifier
from jetvit_daemon.service.results import sinks_status
from jetvit_daemon.service.signals import SignalInbox
from jetvit_daemon.service.status import StatusSnapshot, WorkerHealth, snapshot_json, status_line
from jetvit_daemon.service.supervisor import Stage, Supervisor
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger("jetvit_daemon")

TICK_S = 0.2  # the supervisor's loop: signals, deaths, status, watchdog
# A model that fails this many batches in a row is unhealthy (/healthz, /readyz 503) ...
INFERENCE_UNHEALTHY_BATCHES = 5
# ... and one that has failed every batch for this long ends the daemon with EXIT_INFERENCE_FAILING instead
# of running forever at 0 FPS. Not exit 3: the model loaded and passed its warm-up, so what fails now may pass
# after a restart (a GPU hang, nvmap exhaustion, a driver reset); systemd restarts exit 5 (the unit does not
# prevent it), and a model that then fails its warm-up is exit 3, which it does not restart. Each attempt
# costs start-up, warm-up and this bound: at most about one restart a minute, never a tight loop.
INFERENCE_FAILING_MAX_S = 60.0

EXIT_OK, EXIT_WORKER_DIED, EXIT_INFERENCE_FAILING = 0, 1, 5  # cli.py: 2 config, 3 engine, 4 actuation


def ensure_state_dir(path: Path) -> None:
    """The state directory exists, is a directory and is writable; else a ConfigError naming `state_dir`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"state_dir: {path} exists and is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"state_dir: cannot create {path}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise ConfigError(f"state_dir: {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"state_dir: {path} is not writable by uid {os.geteuid()}")


class Service:
    """One run of the daemon over built `Components`. `run()` blocks until a stop request, the duration, a
    worker's death or a model failing every batch, and returns the exit status (0; 1 a worker died; 5
    inference failed every batch for INFERENCE_FAILING_MAX_S).
    `snapshot()` is thread-safe (HTTP and metrics call it); everything else belongs to the main thread."""

    def __init__(
        self,
        parts: Components,
        notifier: Optional[SystemdNotifier] = None,
        signals: Optional[SignalInbox] = None,
        duration_s: Optional[float] = None,
        install_signals: bool = True,
    ) -> None:
        self.parts = parts
        self.clock: Clock = parts.clock
        self.reloads = parts.reloads
        self.notifier = notifier or SystemdNotifier()
        self.signals = signals or SignalInbox()
        self.duration_s = duration_s
        self.install_signals = install_signals
        self.phase = "starting"
        self.ready_sent = False
        self.exit_reason = ""
        self.http: Optional[HttpServer] = None
        self._started_s = self.clock.monotonic()
        self._wake = threading.Event()  # nothing sets it yet: the loop's Event.wait is its pace
        self._governor = WorkerThread("governor", parts.governor.body)
        self._watch = WorkerThread("policy-watch", parts.watcher.body)
        self._meter = WorkerThread("board-meter", parts.board_meter.body)
        self.supervisor = Supervisor(self._stages(), self.clock)
        parts.metrics.add_snapshot(self.snapshot)

    # -- stages --------------------------------------------------------------------------------------------
    def _stages(self) -> List[Stage]:
        p = self.parts
        stages = [Stage("http", self._start_http, self._stop_http,
                        lambda: [self.http.worker] if self.http is not None else [], max_stop_s=2.0)]
        sim = p.board.sim
        if sim is not None:
            stages.append(Stage("simulated board", sim.start, sim.stop, sim.workers, max_stop_s=2.0))
        stages += [
            Stage("platform", self._start_platform, self._stop_platform, p.platform.workers, restore=True),
            # The inference worker process; its supervision thread restarts it (stopped within the budget).
            Stage("runner", self._start_runner, p.runner.stop, p.runner.workers, max_stop_s=4.0),
            Stage("pipeline", p.pipeline.start, p.pipeline.stop, lambda: p.pipeline.workers, max_stop_s=3.0),
            # A governor stuck in a slow `nvpmodel -m` is not waited for: the platform's stop ends that switch.
            Stage("governor", self._governor.start, lambda t: self._stop_worker(self._governor, t),
                  lambda: [self._governor], max_stop_s=2.0),
            Stage("policy-watch", self._watch.start, self._stop_watch, lambda: [self._watch], max_stop_s=1.0),
            Stage("board-meter", self._meter.start, lambda t: self._stop_worker(self._meter, t),
                  lambda: [self._meter], max_stop_s=1.0),
        ]
        return stages

    def _start_http(self) -> None:
        cfg = self.parts.config.http
        self.http = HttpServer(cfg.host, cfg.port, self.parts.metrics.registry, self.health, self.status,
                               ready=self.readiness, routes=self.parts.routes)
        self.http.start()
        host, port = self.http.address
        shown = f"[{host}]" if ":" in host else host
        log.info("metrics: http://%s:%d/metrics (also /healthz, /readyz, /status)", shown, port)

    def _stop_http(self, timeout_s: float) -> None:
        if self.http is not None:
            self.http.stop(max(0.1, timeout_s))

    def _start_platform(self) -> None:
        platform = self.parts.platform
        try:
            platform.start()
        except OSError as exc:  # the state directory's files (lock, journal) are not what they must be
            raise ConfigError(f"state_dir: {exc.filename or self.parts.config.resolved_state_dir()}: "
                              f"{exc.strerror or exc}") from None
        self.parts.metrics.declare_modes([m.name for m in platform.power_modes()])

    def _stop_platform(self, timeout_s: float) -> None:
        self.parts.platform.stop(restore=self.parts.config.hardware.restore_on_stop, timeout_s=timeout_s)

    def _start_runner(self) -> None:
        p = self.parts
        p.runner.start()
        info = p.runner.info()
        log.info("runner: %s on %s, model %s (input %s %s, batch ≤ %d)", "ONNX Runtime" if info.runner ==
                 "onnxruntime" else "TensorRT", info.device, info.model_path, info.input.name,
                 info.input.shape, info.max_batch)
        p.metrics.set_build_info(info.runner, info.device, Path(info.model_path).name, p.board.description)

    @staticmethod
    def _stop_worker(worker: WorkerThread, timeout_s: float) -> None:
        worker.stop(timeout_s)

    def _stop_watch(self, timeout_s: float) -> None:
        self._watch.stop_event.set()
        self.parts.watcher.wake()
        self._watch.stop(timeout_s)

    # -- status --------------------------------------------------------------------------------------------
    def snapshot(self) -> StatusSnapshot:
        p = self.parts
        now = self.clock.monotonic()
        stats = p.pipeline.stats()
        sample = p.platform.latest_telemetry()
        workers = tuple(
            WorkerHealth(w.name, w.alive, w.heartbeat_age_s(), None if w.failure is None else repr(w.failure))
            for w in self.supervisor.workers())
        failing_s = None
        if stats.failing_since_s is not None and stats.failing_batches >= INFERENCE_UNHEALTHY_BATCHES:
            failing_s = max(0.0, now - stats.failing_since_s)
        policy = p.governor.policy
        return StatusSnapshot(
            version=__version__, board=p.board.description, phase=self.phase, uptime_s=now - self._started_s,
            first_inference=stats.frames_out_total > 0, policy_file=str(p.policy_path),
            policy_states=tuple(s.name for s in policy.ladder), last_reload=self.reloads.last,
            governor=p.governor.status(), pipeline=stats, telemetry=sample,
            telemetry_age_s=None if sample is None else now - sample.t_mono_s,
            telemetry_stale=p.platform.telemetry_stale(), workers=workers, inference_failing_s=failing_s,
            sinks=tuple(sinks_status([s for s in p.sinks if isinstance(s, QueuedSink)])),
            sources=tuple(st.as_dict() for st in p.pipeline.source_statuses()),
            inference=p.runner.status())

    def status(self) -> Dict[str, Any]:
        return snapshot_json(self.snapshot())

    def health(self) -> Tuple[bool, Dict[str, Any]]:
        problems = self.snapshot().health_problems()
        return not problems, {"problems": problems}

    def readiness(self) -> Tuple[bool, Dict[str, Any]]:
        problems = self.snapshot().ready_problems()
        return not problems, {"problems": problems}

    # -- running -------------------------------------------------------------------------------------------
    def run(self) -> int:
        if self.install_signals:
            self.signals.install()
        code = EXIT_OK
        try:
            self.supervisor.start()  # on a failure it stops what started (restore included) and re-raises
            self.phase = "running"
            # Every component that can count an error, every rule and actuation: series at 0 from the start.
            self.parts.metrics.declare_components([w.name for w in self.supervisor.workers()]
                                                  + ["telemetry", "inference"])
            self._log_policy()
            code = self._loop()
        finally:
            self.phase = "stopping"
            self.reloads.announce = False
            self.notifier.stopping()
            self.parts.platform.begin_stop()  # no child restarts from here on: their end is part of the stop
            stop_began_s = self.clock.monotonic()
            self.supervisor.stop(hurry=lambda: self.signals.hurry)
            log.info("stopped in %.1f s (%s)", self.clock.monotonic() - stop_began_s,
                     ", ".join(self.supervisor.stop_report))
            if self.install_signals:
                self.signals.restore()
        return code

    def _log_policy(self) -> None:
        p = self.parts
        log.info("policy: %s (%d states: %s), %s; obeyed and watched: a saved edit applies within 2 s, SIGHUP "
                 "reloads it", p.policy_path, len(p.policy.ladder), " < ".join(s.name for s in p.policy.ladder),
                 p.policy_origin)

    def _loop(self) -> int:
        start_s = self.clock.monotonic()
        interval_s = self.parts.config.status_interval_s
        next_status_s = start_s + interval_s
        watchdog_s = self.notifier.watchdog_interval_s
        next_watchdog_s = start_s
        while True:
            if self.signals.stop_requested:
                self.exit_reason = "stop requested"
                log.info("stop requested")
                return EXIT_OK
            if self.signals.take_reload():
                log.info("reload requested (SIGHUP)")
                self.parts.watcher.request()
            dead = self.supervisor.first_dead()
            if dead is not None and isinstance(dead.failure, EngineError):
                # The worker could not load the model again and again: the engine check's message (and the
                # rebuild command) ends the daemon with exit 3, which the unit does not restart.
                self.parts.metrics.error(dead.name, dead.failure)
                self.exit_reason = f"worker {dead.name}: the model cannot be loaded"
                raise dead.failure
            if dead is not None:
                self.parts.metrics.error(dead.name, dead.failure or RuntimeError("ended"))
                self.exit_reason = f"worker {dead.name} died"
                log.error("worker %s died%s: stopping so that the service manager restarts the daemon (exit 1)",
                          dead.name, f" ({dead.failure!r})" if dead.failure is not None else "")
                return EXIT_WORKER_DIED
            now = self.clock.monotonic()
            snap = self.snapshot()
            if snap.inference_failing_s is not None and snap.inference_failing_s >= INFERENCE_FAILING_MAX_S:
                assert snap.pipeline is not None
                self.exit_reason = "inference failing"
                log.error("inference has failed every batch for %.0f s (%d batches in a row): stopping with exit 5 "
                          "(a restart may clear a GPU fault; a model that then fails its warm-up is exit 3)",
                          snap.inference_failing_s, snap.pipeline.failing_batches)
                return EXIT_INFERENCE_FAILING
            if self.duration_s is not None and now - start_s >= self.duration_s:
                self.exit_reason = "duration"
                log.info("ran for %.0f s as asked: stopping", self.duration_s)
                return EXIT_OK
            if not self.ready_sent and snap.first_inference:
                self.ready_sent = self.reloads.announce = True
                log.info("ready: first inference done")
                self.notifier.ready(status_line(snap))
            if now >= next_status_s:
                line = status_line(snap)
                log.info("%s", line)
                self.notifier.status(line)
                next_status_s = now + interval_s
            if watchdog_s is not None and now >= next_watchdog_s:
                if snap.healthy:  # fed only while every worker is alive and turning, and inference works
                    self.notifier.watchdog()
                next_watchdog_s = now + watchdog_s
            self._wake.wait(TICK_S)


def run_daemon(config: DaemonConfig, policy_path: Optional[Path] = None, duration_s: Optional[float] = None,
               clock: Optional[Clock] = None, host_root: Path = Path("/")) -> int:
    """`jetvit-daemon run`: select the board, build, run; the exit status. Configuration, policy and engine
    errors raise (the CLI maps them to exit 2/3); the board is restored on every path out."""
    clock = clock or SystemClock()
    state_dir = config.resolved_state_dir()
    ensure_state_dir(state_dir)
    # The instance lock (and the state directory's checks) before anything else: a second instance must not
    # even start the simulated board's physics thread. The platform owns the lock once built.
    lock = acquire_instance_lock(state_dir)
    try:
        board = select_board(config, clock, host_root)
        notifier = SystemdNotifier()
        parts = build(config, board, clock, policy_path=policy_path, reloads=ReloadTracker(notifier), lock=lock)
        return Service(parts, notifier, duration_s=duration_s).run()
    finally:
        lock.release()  # the platform's stop released it already, unless it never began
