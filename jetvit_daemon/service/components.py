"""Construction: `build(config, board, clock) -> Components`, every part of the daemon made from the config and
wired together, nothing started (no thread, no child process, no write to the board).

>>> board = select_board(config, clock)        # the Jetson, or a prepared simulated board   # doctest: +SKIP
>>> parts = build(config, board, clock)                                                     # doctest: +SKIP
>>> parts = build(config, board, clock, platform=FakePlatform(), runner=FakeRunner())       # doctest: +SKIP

Every part can be injected (platform, runner, sources, sinks), so the whole service runs in-process in tests
with a `ManualClock` and fakes. Where a new kind of source or sink plugs in:
`pipeline/capture/factory.py` (`build_sources` calls it) / to `service/results.py`'s `build_sinks`; the runner
is made by `build_runner`.
"""

import logging
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from jetvit_daemon.clock import Clock
from jetvit_daemon.config import DaemonConfig
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.governor.decide import PipelineView
from jetvit_daemon.governor.loop import Governor
from jetvit_daemon.governor.policy import Policy
from jetvit_daemon.governor.policy_check import BoardFacts, load_checked
from jetvit_daemon.governor.policy_init import is_bundled, shipped_policy_for
from jetvit_daemon.governor.reload import PolicyWatcher, guarded, read_policy
from jetvit_daemon.hardware.base import Platform, TelemetrySource
from jetvit_daemon.hardware.commands import SubprocessRunner
from jetvit_daemon.hardware.devfreq import GpuDevfreq, find_gpu_devfreq
from jetvit_daemon.hardware.energy import BoardMeter
from jetvit_daemon.hardware.jetson import JetsonPlatform
from jetvit_daemon.hardware.nvpmodel import Nvpmodel
from jetvit_daemon.hardware.probe import InstanceLock, detect_board
from jetvit_daemon.pipeline.capture.factory import CaptureEnvironment, build_supervisors
from jetvit_daemon.pipeline.capture.gst_pipeline import Target
from jetvit_daemon.pipeline.capture.supervisor import SourceSupervisor
from jetvit_daemon.pipeline.pipeline import RECENT_S, Pipeline
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sinks import QueuedSink, ResultSink
from jetvit_daemon.pipeline.sources import FrameSource
from jetvit_daemon.runners.base import Runner, choose_runner_name
from jetvit_daemon.runners.executor import BatchExecutor, LocalExecutor
from jetvit_daemon.runners.manifest import check_model_file, load_labels, load_manifest
from jetvit_daemon.runners.trt_runner import probe_board_facts
from jetvit_daemon.runners.worker_client import InferenceWorker, WorkerSpec
from jetvit_daemon.service.board import BoardAccess
from jetvit_daemon.service.board_meter import BoardMeterCollector, BoardMeterLoop, PolicyTargetsCollector, board_trips
from jetvit_daemon.service.http import Routes
from jetvit_daemon.service.metrics import Metrics
from jetvit_daemon.service.notify import SystemdNotifier
from jetvit_daemon.service.results import SinkCollector, SinkInputs, build_sinks, results_routes, stats_payload
from jetvit_daemon.service.source_metrics import SourcesCollector
from jetvit_daemon.service.status import ReloadResult

log = logging.getLogger("jetvit_daemon")

class ReloadTracker:
    """Policy reload bookkeeping: the last result (for the snapshot), the metric, and systemd's
    RELOADING=1 … READY=1 around each reload once the daemon has announced READY (`announce`).
    Called from the policy-watch thread; `last` is read by any (a reference swap)."""

    def __init__(self, notifier: Optional[SystemdNotifier] = None, metrics: Optional[Metrics] = None,
                 clock: Optional[Clock] = None) -> None:
        self.notifier = notifier or SystemdNotifier({})
        self.metrics = metrics
        self.clock = clock
        self.announce = False
        self.last: Optional[ReloadResult] = None

    def begin(self) -> None:
        if self.announce:
            self.notifier.reloading()

    def done(self, result: str, message: str) -> None:
        if self.metrics is not None:
            self.metrics.policy_reloads.labels(result=result).inc()
        self.last = ReloadResult(result, message, self.clock.time() if self.clock is not None else 0.0)
        if self.announce:
            self.notifier.reloaded(f"policy reload {'applied' if result == 'ok' else 'refused'}")


@dataclass
class _Late:
    """What the sinks read from parts built after them (stats for MQTT, source states)."""

    def __init__(self) -> None:
        self.pipeline: Optional[Pipeline] = None
        self.governor: Optional[Governor] = None
        self.platform: Optional[Platform] = None

    def sink_stats(self) -> Dict[str, Any]:
        assert self.pipeline is not None and self.governor is not None and self.platform is not None
        t = self.platform.fresh_telemetry()
        return stats_payload(self.pipeline.stats(), self.governor.status(), t.board_power_w if t else None)

    def source_states(self) -> Dict[str, Any]:
        return self.pipeline.source_states() if self.pipeline is not None else {}


@dataclass
class Components:
    """What `build` made. The service starts them in the order of its stages (service/app.py)."""

    config: DaemonConfig
    clock: Clock
    board: BoardAccess
    platform: Platform
    runner: BatchExecutor  # the inference worker process (an injected Runner runs in-process)
    sources: Sequence[Union[FrameSource, SourceSupervisor]]
    sinks: List[ResultSink]
    pipeline: Pipeline
    governor: Governor
    watcher: PolicyWatcher
    metrics: Metrics
    reloads: "ReloadTracker"
    policy_path: Path
    policy: Policy
    policy_origin: str  # where the path came from, for the first log lines
    routes: Sequence[Routes]  # extra HTTP routes (the http sink's /v1/ endpoints)
    board_meter: BoardMeterLoop  # energy and throttling from the telemetry (its body runs in a WorkerThread)


def build(
    config: DaemonConfig,
    board: BoardAccess,
    clock: Clock,
    *,
    policy_path: Optional[Path] = None,
    platform: Optional[Platform] = None,
    runner: Optional[Runner] = None,
    sources: Optional[Sequence[Union[FrameSource, SourceSupervisor]]] = None,
    sinks: Optional[Sequence[ResultSink]] = None,
    metrics: Optional[Metrics] = None,
    reloads: Optional[ReloadTracker] = None,
    on_error: Optional[Callable[[str, BaseException], None]] = None,
    lock: Optional[InstanceLock] = None,
) -> Components:
    """Make every part; ConfigError/PolicyError/EngineError name what is wrong. Starts nothing."""
    metrics = metrics or Metrics()
    reloads = reloads or ReloadTracker()
    reloads.metrics, reloads.clock = metrics, clock
    report = on_error or metrics.error
    path = Path(policy_path or config.policy_file or board_default_policy(board))
    strict = config.policy_permissions == "strict" and not is_bundled(path)
    # Read once, trusted only when no other user could swap it (strict): what was checked is what is parsed,
    # and a policy someone else could write never gets as far as touching the board.
    initial_text = read_policy(path, strict)
    facts = _platform_facts(platform, board.description) if platform is not None else _board_facts(board)
    platform = platform or build_platform(config, board, clock, metrics, lock)
    load = policy_loader(facts)
    policy = load(path, initial_text)
    executor = build_runner(config, board) if runner is None else LocalExecutor(
        runner, warmup_iterations=config.runner.warmup_iterations, now=clock.monotonic)
    sources = list(sources) if sources is not None else list(build_sources(config, clock, executor))
    late = _Late()  # the sinks read the pipeline, built after them
    if sinks is None:
        inputs = SinkInputs(socket.gethostname(), stats=late.sink_stats, states=late.source_states)
        sinks = build_sinks(config.sinks, clock, executor.manifest.model_name, Path(executor.info().model_path),
                            inputs, on_error=report)
    sinks = list(sinks)
    metrics.registry.register(SinkCollector([s for s in sinks if isinstance(s, QueuedSink)]))
    pipeline = build_pipeline(config, clock, executor, sources, sinks, policy, metrics, report)
    metrics.registry.register(SourcesCollector(pipeline.source_statuses))
    board.busy.source = pipeline.busy_fraction  # the simulated GPU's load follows real inference
    governor = Governor(platform, policy, _pipeline_view(pipeline), pipeline.set_batching, clock, events=metrics)
    late.pipeline, late.governor, late.platform = pipeline, governor, platform
    board_meter = build_board_meter(config, board, clock, platform, pipeline, governor, metrics)
    routes = results_routes(config.sinks, [s for s in sinks if isinstance(s, QueuedSink)], pipeline.last_frame,
                            lambda: pipeline.source_names)
    watcher = PolicyWatcher(path, load, governor.set_policy, reloads.done, check_perms=strict,
                            initial_text=initial_text, on_begin=reloads.begin)
    return Components(config=config, clock=clock, board=board, platform=platform, runner=executor,
                      sources=sources, sinks=sinks, pipeline=pipeline, governor=governor, watcher=watcher,
                      metrics=metrics, reloads=reloads, policy_path=path, policy=policy, routes=routes,
                      board_meter=board_meter,
                      policy_origin=_origin(policy_path, config))


def board_default_policy(board: BoardAccess) -> Path:
    """The policy shipped for this board (assets/policies/, governor/policy_init.py), else the bundled default."""
    info = detect_board(board.tree)
    return shipped_policy_for(info.compatible if info is not None else ())[0]


def _origin(policy_path: Optional[Path], config: DaemonConfig) -> str:
    if policy_path is not None:
        return "given with --policy"
    if config.policy_file is not None:
        return "the config's policy_file"
    return "the one shipped for this board (the config names no policy_file)"


def build_board_meter(config: DaemonConfig, board: BoardAccess, clock: Clock, platform: Platform,
                      pipeline: Pipeline, governor: Governor, metrics: Metrics) -> BoardMeterLoop:
    """Energy, throttling and the telemetry gauges beyond the snapshot's (service/board_meter.py)."""
    meter = BoardMeter(board_trips(board.tree, clock))
    loop = BoardMeterLoop(meter, platform.latest_telemetry, pipeline.busy_fraction,
                          lambda: governor.status()["mode"], lambda: governor.status()["gpu_cap_hz"],
                          config.telemetry.interval_s)
    metrics.registry.register(BoardMeterCollector(meter, platform.latest_telemetry))
    metrics.registry.register(PolicyTargetsCollector(lambda: governor.policy))
    return loop


def _platform_facts(platform: Platform, board_text: str) -> Callable[[], BoardFacts]:
    return lambda: BoardFacts(board_text, platform.power_modes(), platform.gpu_freq_state().available_hz)


def _board_facts(board: BoardAccess) -> Callable[[], BoardFacts]:
    """The board's power modes and GPU table read from its files (before the platform starts, and after)."""
    def facts() -> BoardFacts:
        gpu_dir = find_gpu_devfreq(board.tree)
        freqs = GpuDevfreq(board.tree, gpu_dir).available_hz() if gpu_dir is not None else []
        return BoardFacts(board.description, Nvpmodel(board.runner, board.tree).conf().power_modes, freqs)

    return facts


def policy_loader(facts: Callable[[], BoardFacts]) -> Callable[[Path, bytes], Policy]:
    """A policy (the file's bytes) validated against this board (schema, modes, reboot groups); PolicyError
    otherwise, for every input error (not UTF-8, nested too deeply …) too."""
    def load(path: Path, data: bytes) -> Policy:
        policy, notes = load_checked(path, facts(), data)
        for note in notes:
            log.info("policy: %s", note)
        return policy

    return guarded(load)


def build_platform(config: DaemonConfig, board: BoardAccess, clock: Clock, metrics: Metrics,
                   lock: Optional[InstanceLock] = None) -> Platform:
    """The JetsonPlatform on the board's seams; `lock`: the instance lock already taken (it owns it from here)."""
    hw = config.hardware

    def on_event(kind: str, message: str) -> None:
        if kind == "telemetry_recovered":
            log.info("telemetry %s: %s", kind, message)
            return
        metrics.error("telemetry", RuntimeError(message))
        log.warning("telemetry %s: %s", kind, message)

    return JetsonPlatform(
        tree=board.tree, runner=board.runner, clock=clock, state_dir=config.resolved_state_dir(),
        telemetry=build_telemetry(config, board, clock, on_event), description=board.description,
        nvpmodel_timeout_s=hw.nvpmodel_timeout_s, on_conflict=hw.on_conflict, lock=lock,
    )


def build_telemetry(config: DaemonConfig, board: BoardAccess, clock: Clock,
                    events: Callable[[str, str], None]) -> TelemetrySource:
    cfg = config.telemetry
    if cfg.source == "tegrastats":
        from jetvit_daemon.hardware.tegrastats import TegrastatsReader

        return TegrastatsReader(board.runner, clock, interval_s=cfg.interval_s, on_event=events)
    if cfg.source == "sysfs":
        from jetvit_daemon.hardware.sensors import SysfsTelemetry

        return SysfsTelemetry(board.tree, clock, interval_s=cfg.interval_s,
                              gpu_devfreq_dir=find_gpu_devfreq(board.tree), on_event=events)
    from jetvit_daemon.hardware.jtop_source import JtopTelemetry

    return JtopTelemetry(clock, interval_s=cfg.interval_s, on_event=events)


def build_runner(config: DaemonConfig, board: BoardAccess) -> InferenceWorker:
    """The configured runner in its worker process, not started (the runner stage starts it: load, engine
    check and warm-up happen in the worker). The manifest is validated here, before anything starts."""
    cfg = config.runner
    model = config.model_path()
    check_model_file(model)
    name = choose_runner_name(cfg.name, model)
    manifest = load_manifest(model)
    options: Dict[str, Any] = {}
    if name == "onnxruntime":
        options = {"providers": cfg.providers, "intra_op_threads": cfg.intra_op_threads}
    elif name == "tensorrt":
        options = {"board_facts": probe_board_facts()}  # the engine check in the worker compares them
    pace = board.sim.inference_time_s if board.sim is not None and config.simulator.simulate_speed else None
    spec = WorkerSpec(cfg.python or sys.executable, name, model, manifest, options, cfg.warmup_iterations)
    return InferenceWorker(spec, pace=pace)


def build_sources(config: DaemonConfig, clock: Clock, runner: BatchExecutor) -> List[SourceSupervisor]:
    """One supervisor per camera; cameras deliver frames already cropped and scaled to the model's input."""
    manifest = runner.manifest
    height, width = manifest.input.height_width
    target = Target(width, height, crop=manifest.preprocess.resize == "center_crop")
    env = CaptureEnvironment.probe(SubprocessRunner())
    try:
        return build_supervisors(config.sources, clock, target, env)
    except ValueError as exc:
        raise ConfigError(f"sources: {exc}") from None


def build_pipeline(config: DaemonConfig, clock: Clock, runner: Union[Runner, BatchExecutor],
                   sources: Sequence[Union[FrameSource, SourceSupervisor]],
                   sinks: List[ResultSink], policy: Policy, metrics: Metrics,
                   on_error: Callable[[str, BaseException], None]) -> Pipeline:
    manifest = runner.manifest
    labels = load_labels(Path(runner.info().model_path), manifest)
    pcfg = config.pipeline
    if pcfg.queue_size is not None:
        log.info("pipeline.queue_size is no longer used (each source has its own slot): remove it")
    return Pipeline(
        clock, sources, runner, Preprocessor(manifest.preprocess, manifest.input),
        Top1Classifier(manifest.outputs[0], labels), sinks,
        batch_size=policy.ladder[policy.start_index].batch_size, max_batch_wait_s=pcfg.max_batch_wait_ms / 1000.0,
        window_s=pcfg.stats_window_s,
        on_error=on_error, on_batch=metrics.on_batch,
    )


def _pipeline_view(pipeline: Pipeline) -> Callable[[], PipelineView]:
    def view() -> PipelineView:
        s = pipeline.stats()
        return PipelineView(arrival_fps=s.arrival_fps, processed_fps=s.processed_fps, dropped_fps=s.dropped_fps,
                            queue_depth=s.queue_depth, latency_p95_s=s.latency_p95_s, batch_size=s.batch_size,
                            arrival_recent_fps=s.arrival_recent_fps, busy_fraction=s.busy_fraction,
                            window_s=s.window_s, processed_recent_fps=s.processed_recent_fps,
                            recent_s=min(RECENT_S, s.window_s))

    return view
