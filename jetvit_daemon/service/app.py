"""The composition root: builds every component from the config, starts them in order, supervises them, and
stops them in reverse. The only place where the governor and the pipeline meet.

Start order: board (simulated, if any) → platform (crash restore, baseline, telemetry) → runner (warm-up) →
pipeline → governor → HTTP. Stop order is the reverse; the platform restores the power settings last.
"""

import logging
import queue
import socket
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from jetvit_daemon import __version__
from jetvit_daemon.clock import Clock, SystemClock
from jetvit_daemon.config import DaemonConfig
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.governor.decide import PipelineView
from jetvit_daemon.governor.loop import Governor
from jetvit_daemon.governor.policy import DEFAULT_POLICY_FILE, Policy, parse_policy
from jetvit_daemon.governor.policy_check import BoardFacts, load_checked
from jetvit_daemon.governor.reload import PolicyWatcher, read_policy
from jetvit_daemon.hardware.base import Platform, TelemetrySource
from jetvit_daemon.hardware.commands import CommandRunner, SubprocessRunner
from jetvit_daemon.hardware.energy import BoardMeter
from jetvit_daemon.hardware.jetson import JetsonPlatform
from jetvit_daemon.hardware.probe import InstanceLock, acquire_instance_lock
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.hardware.telemetry_thread import STALE_INTERVALS
from jetvit_daemon.pipeline.capture.factory import CaptureEnvironment, build_supervisors
from jetvit_daemon.pipeline.capture.gst_pipeline import Target
from jetvit_daemon.pipeline.capture.supervisor import SourceSupervisor
from jetvit_daemon.pipeline.pipeline import Pipeline, PipelineStats
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sinks.queued import QueuedSink
from jetvit_daemon.runners.base import Runner, create_runner
from jetvit_daemon.runners.manifest import load_labels
from jetvit_daemon.runners.paced import PacedRunner
from jetvit_daemon.service.board import BoardAccess, close_board, open_board
from jetvit_daemon.service.board_meter import (
    BoardMeterCollector,
    BoardMeterLoop,
    PolicyTargetsCollector,
    board_trips,
)
from jetvit_daemon.service.http import HttpServer
from jetvit_daemon.service.metrics import Metrics
from jetvit_daemon.service.notify import SystemdNotifier
from jetvit_daemon.service.results import (
    SinkCollector,
    SinkInputs,
    build_sinks,
    results_routes,
    sinks_status,
    stats_payload,
)
from jetvit_daemon.service.signals import SignalInbox
from jetvit_daemon.service.source_metrics import SourcesCollector
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger("jetvit_daemon")

# A worker whose loop has not turned for this long is considered wedged (the longest loop wait is the policy
# interval, at most 60 s; inference batches take well under a second).
HEARTBEAT_MAX_AGE_S = 90.0


class Daemon:
    """Owns every component. `run()` blocks until a stop request, the duration, or a worker's death, and
    returns the process exit status (0 clean, 1 a worker died). Use from the main thread."""

    def __init__(
        self,
        config: DaemonConfig,
        policy_path: Optional[Path] = None,
        clock: Optional[Clock] = None,
        host_root: Path = Path("/"),
        duration_s: Optional[float] = None,
        install_signals: bool = True,
    ) -> None:
        self.config = config
        self.policy_path = policy_path or config.policy_file or DEFAULT_POLICY_FILE
        self.clock: Clock = clock or SystemClock()
        self.host_root = host_root
        self.duration_s = duration_s
        self.install_signals = install_signals
        self.metrics = Metrics()
        self.notifier = SystemdNotifier()
        self.signals = SignalInbox()
        self.events: queue.Queue[Tuple[str, Any]] = queue.Queue()
        self.board: Optional[BoardAccess] = None
        self.sim_board: Any = None
        self.platform: Optional[Platform] = None
        self.runner: Optional[Runner] = None
        self.pipeline: Optional[Pipeline] = None
        self.sinks: List[QueuedSink] = []
        self.governor: Optional[Governor] = None
        self.http: Optional[HttpServer] = None
        self.workers: List[WorkerThread] = []
        self.watcher: Optional[PolicyWatcher] = None
        self._started: List[str] = []
        self._board_text = ""
        self._stop_lock = threading.Lock()
        self._instance_lock: Optional[InstanceLock] = None

    # -- building ------------------------------------------------------------------------------------------
    def _on_worker_death(self, name: str, exc: BaseException) -> None:
        self.metrics.error(name, exc)
        self.events.put(("died", name))

    def _on_error(self, component: str, exc: BaseException) -> None:
        self.metrics.error(component, exc)

    def _busy_fraction(self) -> float:
        return self.pipeline.busy_fraction() if self.pipeline is not None else 0.0

    def _build_platform(self, state_dir: Path) -> Platform:
        cfg = self.config
        self.board = open_board(cfg, self.clock, self.host_root, gpu_busy=self._busy_fraction)
        self.sim_board = self.board.sim
        if self.sim_board is not None:
            self._started.append("simulated board")
        self._board_text = self.board.description
        telemetry = self._build_telemetry(self.board.tree, self.board.runner)
        return JetsonPlatform(
            tree=self.board.tree, runner=self.board.runner, clock=self.clock, state_dir=state_dir,
            telemetry=telemetry, description=self._board_text, nvpmodel_timeout_s=cfg.hardware.nvpmodel_timeout_s,
            on_conflict=cfg.hardware.on_conflict, lock=self._instance_lock,
        )

    def _build_telemetry(self, tree: SysfsTree, commands: CommandRunner) -> TelemetrySource:
        cfg = self.config.telemetry
        if cfg.source == "tegrastats":
            from jetvit_daemon.hardware.tegrastats import TegrastatsReader

            return TegrastatsReader(commands, self.clock, interval_s=cfg.interval_s,
                                    on_event=self._telemetry_event)
        if cfg.source == "sysfs":
            from jetvit_daemon.hardware.devfreq import find_gpu_devfreq
            from jetvit_daemon.hardware.sensors import SysfsTelemetry

            return SysfsTelemetry(tree, self.clock, interval_s=cfg.interval_s,
                                  gpu_devfreq_dir=find_gpu_devfreq(tree), on_event=self._telemetry_event)
        from jetvit_daemon.hardware.jtop_source import JtopTelemetry

        return JtopTelemetry(self.clock, interval_s=cfg.interval_s, on_event=self._telemetry_event)

    def _build_board_meter(self) -> BoardMeterLoop:
        """Energy, throttling and the telemetry gauges beyond the board collector's (service/board_meter.py)."""
        assert self.board is not None and self.platform is not None and self.governor is not None
        governor, platform = self.governor, self.platform
        meter = BoardMeter(board_trips(self.board.tree, self.clock))
        loop = BoardMeterLoop(meter, platform.latest_telemetry, self._busy_fraction,
                              lambda: governor.status()["mode"], lambda: governor.status()["gpu_cap_hz"],
                              self.config.telemetry.interval_s)
        self.metrics.registry.register(BoardMeterCollector(meter, platform.latest_telemetry))
        self.metrics.registry.register(PolicyTargetsCollector(lambda: governor.policy))
        return loop

    def _telemetry_event(self, kind: str, message: str) -> None:
        if kind == "telemetry_recovered":
            log.info("telemetry %s: %s", kind, message)
            return
        self.metrics.error("telemetry", RuntimeError(message))
        log.warning("telemetry %s: %s", kind, message)

    def _build_runner(self) -> Runner:
        cfg = self.config.runner
        options: Dict[str, Any] = {}
        model = self.config.model_path()
        if cfg.name in ("auto", "onnxruntime") and model.suffix == ".onnx":
            options = {"providers": cfg.providers, "intra_op_threads": cfg.intra_op_threads}
        runner = create_runner(cfg.name, model, options)
        if cfg.warmup_iterations:
            runner.warm_up(cfg.warmup_iterations)
        if self.sim_board is not None and self.config.simulator.simulate_speed:
            runner = PacedRunner(runner, self.sim_board.inference_time_s)
        return runner

    def _build_sources(self, runner: Runner) -> List[SourceSupervisor]:
        manifest = runner.manifest
        height, width = manifest.input.height_width
        # Cameras deliver frames already cropped and scaled to the model's input (in the capture pipeline).
        target = Target(width, height, crop=manifest.preprocess.resize == "center_crop")
        env = CaptureEnvironment.probe(SubprocessRunner())
        try:
            return build_supervisors(self.config.sources, self.clock, target, env, self._on_worker_death)
        except ValueError as exc:
            raise ConfigError(f"sources: {exc}") from None

    def _build_pipeline(self, runner: Runner, policy: Policy) -> Pipeline:
        manifest = runner.manifest
        model_path = Path(runner.info().model_path)
        labels = load_labels(model_path, manifest)
        inputs = SinkInputs(socket.gethostname(), stats=self._sink_stats, states=self._source_states)
        self.sinks = build_sinks(self.config.sinks, self.clock, manifest.model_name, model_path, inputs,
                                 on_death=self._on_worker_death, on_error=self._on_error)
        pcfg = self.config.pipeline
        if pcfg.queue_size is not None:
            log.info("pipeline.queue_size is no longer used (each source has its own slot): remove it")
        return Pipeline(
            self.clock, self._build_sources(runner), runner,
            Preprocessor(manifest.preprocess, manifest.input),
            Top1Classifier(manifest.outputs[0], labels), self.sinks,
            batch_size=policy.ladder[policy.start_index].batch_size,
            max_batch_wait_s=pcfg.max_batch_wait_ms / 1000.0,
            window_s=pcfg.stats_window_s, on_worker_death=self._on_worker_death, on_error=self._on_error,
            on_batch=self.metrics.on_batch,
        )

    def _sink_stats(self) -> Dict[str, Any]:
        assert self.pipeline is not None and self.governor is not None and self.platform is not None
        t = self.platform.latest_telemetry()
        return stats_payload(self.pipeline.stats(), self.governor.status(), t.board_power_w if t else None)

    def _source_states(self) -> Dict[str, Any]:
        return self.pipeline.source_states() if self.pipeline is not None else {}

    def _pipeline_view(self) -> PipelineView:
        assert self.pipeline is not None
        s = self.pipeline.stats()
        return PipelineView(arrival_fps=s.arrival_fps, processed_fps=s.processed_fps, dropped_fps=s.dropped_fps,
                            queue_depth=s.queue_depth, latency_p95_s=s.latency_p95_s, batch_size=s.batch_size,
                            arrival_recent_fps=s.arrival_recent_fps, busy_fraction=s.busy_fraction,
                            window_s=s.window_s)

    # -- running -------------------------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        state_dir = cfg.resolved_state_dir()
        # The instance lock (and the state directory's checks) before anything else: a second instance must
        # not even start the simulated board's physics thread. The platform owns the lock from here on.
        self._instance_lock = acquire_instance_lock(state_dir)
        policy_path = Path(self.policy_path)
        # Schema and permissions first: a bad policy must not get as far as touching the board. The bundled
        # default is part of the installed package, whose files are as trusted as its code.
        strict = cfg.policy_permissions == "strict" and policy_path != DEFAULT_POLICY_FILE
        policy_text = read_policy(policy_path, strict)  # read once: what was checked is what is parsed
        parse_policy(policy_text.decode("utf-8"), str(policy_path))
        self.platform = self._build_platform(state_dir)
        self.platform.start()
        self._started.append("platform")
        policy = self._load_policy(policy_path, policy_text)
        self.metrics.declare_modes([m.name for m in self.platform.power_modes()])
        self.runner = self._build_runner()
        self._started.append("runner")
        info = self.runner.info()
        log.info("runner: %s on %s, model %s (input %s %s, batch ≤ %d)", "ONNX Runtime" if info.runner ==
                 "onnxruntime" else "TensorRT", info.device, info.model_path, info.input.name,
                 info.input.shape, info.max_batch)
        self.pipeline = self._build_pipeline(self.runner, policy)
        log.info("policy: %s (%d states: %s)", self.policy_path, len(policy.ladder),
                 " < ".join(s.name for s in policy.ladder))
        # Stale, as the readers judge it: no reading for STALE_INTERVALS intervals (plus delivery slack).
        telemetry_max_age_s = STALE_INTERVALS * cfg.telemetry.interval_s + 0.5
        self.governor = Governor(
            self.platform, policy, self._pipeline_view, self.pipeline.set_batching, self.clock,
            telemetry_max_age_s=telemetry_max_age_s, events=self.metrics,
        )
        self.metrics.set_build_info(info.runner, info.device, Path(info.model_path).name, self._board_text)
        self.metrics.add_pipeline(self.pipeline.stats)
        self.metrics.registry.register(SourcesCollector(self.pipeline.source_statuses))
        self.metrics.registry.register(SinkCollector(self.sinks))
        self.metrics.add_board(self.platform.latest_telemetry, self.clock.monotonic, telemetry_max_age_s)
        meter_loop = self._build_board_meter()
        routes = results_routes(cfg.sinks, self.sinks, self.pipeline.last_frame, lambda: self.pipeline.source_names
                                if self.pipeline is not None else [])
        self.http = HttpServer(cfg.http.host, cfg.http.port, self.metrics.registry, self.health, self.status,
                               routes)
        self.watcher = PolicyWatcher(policy_path, self._load_policy, self.governor.set_policy, self._policy_reloaded,
                                     check_perms=strict, initial_text=policy_text)
        self.pipeline.start()
        self._started.append("pipeline")
        gov = WorkerThread("governor", self.governor.body, self._on_worker_death)
        watch = WorkerThread("policy-watch", self.watcher.body, self._on_worker_death)
        meter = WorkerThread("board-meter", meter_loop.body, self._on_worker_death)
        self.workers = [*self.pipeline.workers, gov, watch, meter]
        gov.start()
        watch.start()
        meter.start()
        self.metrics.declare_components([w.name for w in self.workers] + ["telemetry", "inference"])
        self._started.append("governor")
        self.http.start()
        self._started.append("http")
        host, port = self.http.address
        log.info("metrics: http://%s:%d/metrics (also /healthz, /status)", host, port)
        self.notifier.ready(f"running on {self._board_text}")

    def health(self) -> Tuple[bool, Dict[str, Any]]:
        problems = []
        for w in self.workers:
            if not w.alive:
                problems.append(f"{w.name} is not running")
            elif w.heartbeat_age_s() > HEARTBEAT_MAX_AGE_S:
                problems.append(f"{w.name} has not turned for {w.heartbeat_age_s():.0f} s")
        if self.sim_board is not None and getattr(self.sim_board, "error", None) is not None:
            problems.append(f"simulated board thread failed: {self.sim_board.error}")
        return (not problems, {"problems": problems})

    def status(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"version": __version__, "board": self._board_text}
        if self.pipeline is not None:
            out["pipeline"] = self.pipeline.stats().__dict__
            out["sources"] = [st.as_dict() for st in self.pipeline.source_statuses()]
        out["sinks"] = sinks_status(self.sinks)
        if self.governor is not None:
            out["governor"] = self.governor.status()
        if self.platform is not None:
            t = self.platform.latest_telemetry()
            out["telemetry"] = None if t is None else {
                "age_s": self.clock.monotonic() - t.t_mono_s, "temps_c": dict(t.temps_c),
                "board_power_w": t.board_power_w, "gpu_load_pct": t.gpu_load_pct, "gpu_freq_hz": t.gpu_freq_hz}
        return out

    def status_line(self) -> str:
        assert self.pipeline is not None and self.governor is not None and self.platform is not None
        s: PipelineStats = self.pipeline.stats()
        g = self.governor.status()
        t = self.platform.latest_telemetry()

        def ms(v: Optional[float]) -> str:
            return "-" if v is None else f"{v * 1000.0:.1f}"

        cap = g.get("gpu_cap_hz")
        hottest = t.hottest_c if t is not None else None
        power = t.board_power_w if t is not None else None
        return ("fps in {:.1f} out {:.1f} | infer p50 {} ms p95 {} ms | batch {} | mode {} | gpu cap {} | "
                "hottest {} | board {}").format(
            s.arrival_fps, s.processed_fps, ms(s.infer_p50_s), ms(s.infer_p95_s), s.batch_size,
            g.get("mode") or "-", "-" if cap is None else f"{cap / 1e6:.0f} MHz",
            "-" if hottest is None else f"{hottest:.1f} °C",
            "-" if power is None else f"{power:.2f} W")

    def run(self) -> int:
        if self.install_signals:
            self.signals.install()
        try:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise
            return self._supervise()
        finally:
            if self.install_signals:
                self.signals.restore()

    def _supervise(self) -> int:
        start_s = self.clock.monotonic()
        next_status_s = start_s + self.config.status_interval_s
        watchdog_s = self.notifier.watchdog_interval_s
        next_watchdog_s = start_s
        code = 0
        while True:
            try:
                kind, what = self.events.get(timeout=0.2)
            except queue.Empty:
                kind, what = "", None
            try:
                signal_name = self.signals.inbox.get_nowait()
            except queue.Empty:
                signal_name = None
            if kind == "died":
                log.error("worker %s died: stopping so that the service manager restarts the daemon", what)
                code = 1
                break
            if signal_name == "stop":
                log.info("stop requested")
                break
            if signal_name == "reload":
                log.info("reload requested (SIGHUP)")
                self.reload_policy()
            now = self.clock.monotonic()
            if self.duration_s is not None and now - start_s >= self.duration_s:
                log.info("ran for %.0f s as asked: stopping", self.duration_s)
                break
            if now >= next_status_s:
                log.info("%s", self.status_line())
                next_status_s = now + self.config.status_interval_s
            if watchdog_s is not None and now >= next_watchdog_s:
                ok, _ = self.health()
                if ok:  # feed the watchdog only while every worker is alive and turning
                    self.notifier.watchdog()
                next_watchdog_s = now + watchdog_s
        self.stop()
        return code

    def _load_policy(self, path: Path, data: bytes) -> Policy:
        """A policy (the file's bytes) validated against this board (schema, modes, reboot groups);
        PolicyError otherwise."""
        assert self.platform is not None
        facts = BoardFacts(self._board_text, self.platform.power_modes(),
                           self.platform.gpu_freq_state().available_hz)
        policy, notes = load_checked(path, facts, data)
        for note in notes:
            log.info("policy: %s", note)
        return policy

    def _policy_reloaded(self, result: str, message: str) -> None:
        self.metrics.policy_reloads.labels(result=result).inc()

    def reload_policy(self) -> bool:
        """SIGHUP: validate the policy file now, then swap; an invalid file keeps the running policy."""
        if self.watcher is None:
            return False
        return self.watcher.reload_now()

    def stop(self) -> None:
        """Stop everything that was started, in reverse order; restore the power settings last."""
        with self._stop_lock:
            self.notifier.stopping()
            if self.platform is not None:
                self.platform.begin_stop()  # no child restarts from here on: their end is part of the stop
            if "http" in self._started and self.http is not None:
                self.http.stop()
            if "governor" in self._started:
                for w in self.workers:
                    if w.name in ("governor", "policy-watch"):
                        w.stop(2.0)
            if "pipeline" in self._started and self.pipeline is not None:
                self.pipeline.stop(2.0)
            if "runner" in self._started and self.runner is not None:
                self.runner.close()
            if "platform" in self._started and self.platform is not None:
                try:
                    self.platform.stop(restore=self.config.hardware.restore_on_stop)
                except Exception:
                    log.error("stopping the platform failed", exc_info=True)
            if "simulated board" in self._started:
                close_board(self.board)
            if self._instance_lock is not None:
                self._instance_lock.release()  # the platform's stop released it already, unless it never began
            self._started.clear()


