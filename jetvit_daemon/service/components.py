"""Construction: `build(config, board, clock) -> Components`, every part of the daemon made from the config and
wired together, nothing started (no thread, no child process, no write to the board).

>>> board = select_board(config, clock)        # the Jetson, or a prepared simulated board   # doctest: +SKIP
>>> parts = build(config, board, clock)                                                     # doctest: +SKIP
>>> parts = build(config, board, clock, platform=FakePlatform(), runner=FakeRunner())       # doctest: +SKIP

Every part can be injected (platform, runner, sources, sinks), so the whole service runs in-process in tests
with a `ManualClock` and fakes. Where a new kind of source or sink plugs in: add a factory to
`SOURCE_FACTORIES` under its config `type` / to `service/results.py`'s `build_sinks`; the runner is made by
`build_runner`.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from jetvit_daemon.clock import Clock
from jetvit_daemon.config import DaemonConfig, SourceConfig
from jetvit_daemon.errors import ConfigError, EngineError, PolicyError
from jetvit_daemon.governor.decide import PipelineView
from jetvit_daemon.governor.loop import Governor
from jetvit_daemon.governor.policy import DEFAULT_POLICY_FILE, Policy
from jetvit_daemon.governor.policy_check import BoardFacts, load_checked
from jetvit_daemon.governor.reload import PolicyWatcher, check_permissions, guarded
from jetvit_daemon.hardware.base import Platform, TelemetrySource
from jetvit_daemon.hardware.devfreq import GpuDevfreq, find_gpu_devfreq
from jetvit_daemon.hardware.jetson import JetsonPlatform
from jetvit_daemon.hardware.nvpmodel import Nvpmodel
from jetvit_daemon.pipeline.pipeline import Pipeline
from jetvit_daemon.pipeline.postprocess import Top1Classifier
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.pipeline.sinks import QueuedSink, ResultSink
from jetvit_daemon.pipeline.sources import FrameSource, SyntheticCamera
from jetvit_daemon.runners.base import Runner, create_runner
from jetvit_daemon.runners.manifest import load_labels
from jetvit_daemon.runners.paced import PacedRunner
from jetvit_daemon.service.board import BoardAccess
from jetvit_daemon.service.metrics import Metrics
from jetvit_daemon.service.notify import SystemdNotifier
from jetvit_daemon.service.results import SinkCollector, build_sinks
from jetvit_daemon.service.status import ReloadResult

log = logging.getLogger("jetvit_daemon")

# config `type` → factory(source config, index of the first camera, clock) → the cameras it describes.
SourceFactory = Callable[[SourceConfig, int, Clock], List[FrameSource]]


def _synthetic_sources(sc: SourceConfig, first: int, clock: Clock) -> List[FrameSource]:
    return [SyntheticCamera(clock, fps=sc.fps, width=sc.width, height=sc.height, seed=sc.seed + 1000 * first + j,
                            name=f"synthetic{first + j}") for j in range(sc.count)]


SOURCE_FACTORIES: Dict[str, SourceFactory] = {"synthetic": _synthetic_sources}


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
class Components:
    """What `build` made. The service starts them in the order of its stages (service/app.py)."""

    config: DaemonConfig
    clock: Clock
    board: BoardAccess
    platform: Platform
    runner: Runner
    sources: List[FrameSource]
    sinks: List[ResultSink]
    pipeline: Pipeline
    governor: Governor
    watcher: PolicyWatcher
    metrics: Metrics
    reloads: "ReloadTracker"
    policy_path: Path
    policy: Policy
    policy_origin: str  # where the path came from, for the first log lines


def build(
    config: DaemonConfig,
    board: BoardAccess,
    clock: Clock,
    *,
    policy_path: Optional[Path] = None,
    platform: Optional[Platform] = None,
    runner: Optional[Runner] = None,
    sources: Optional[Sequence[FrameSource]] = None,
    sinks: Optional[Sequence[ResultSink]] = None,
    metrics: Optional[Metrics] = None,
    reloads: Optional[ReloadTracker] = None,
    on_error: Optional[Callable[[str, BaseException], None]] = None,
) -> Components:
    """Make every part; ConfigError/PolicyError/EngineError name what is wrong. Starts nothing."""
    metrics = metrics or Metrics()
    reloads = reloads or ReloadTracker()
    reloads.metrics, reloads.clock = metrics, clock
    report = on_error or metrics.error
    path = Path(policy_path or config.policy_file or DEFAULT_POLICY_FILE)
    strict = config.policy_permissions == "strict" and path != DEFAULT_POLICY_FILE
    if strict:  # a policy someone else could write must not get as far as touching the board
        check_permissions(path)
    initial_text = _read_policy_bytes(path)
    facts = _platform_facts(platform, board.description) if platform is not None else _board_facts(board)
    platform = platform or build_platform(config, board, clock, metrics)
    load = policy_loader(facts)
    policy = load(path)
    runner = runner or build_runner(config, board)
    sources = list(sources) if sources is not None else build_sources(config, clock)
    if sinks is None:
        sinks = build_sinks(config.sinks, clock, runner.manifest.model_name, Path(runner.info().model_path),
                            on_error=report)
    sinks = list(sinks)
    metrics.registry.register(SinkCollector([s for s in sinks if isinstance(s, QueuedSink)]))
    pipeline = build_pipeline(config, clock, runner, sources, sinks, policy, metrics, report)
    board.busy.source = pipeline.busy_fraction  # the simulated GPU's load follows real inference
    governor = Governor(platform, policy, _pipeline_view(pipeline), pipeline.set_batching, clock, events=metrics)
    watcher = PolicyWatcher(path, load, governor.set_policy, reloads.done, check_perms=strict,
                            initial_text=initial_text, on_begin=reloads.begin)
    return Components(config=config, clock=clock, board=board, platform=platform, runner=runner,
                      sources=sources, sinks=sinks, pipeline=pipeline, governor=governor, watcher=watcher,
                      metrics=metrics, reloads=reloads, policy_path=path, policy=policy,
                      policy_origin=_origin(policy_path, config))


def _origin(policy_path: Optional[Path], config: DaemonConfig) -> str:
    if policy_path is not None:
        return "given with --policy"
    if config.policy_file is not None:
        return "the config's policy_file"
    return "the built-in default (the config names no policy_file)"


def _read_policy_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        from jetvit_daemon.governor.reload import describe_input_error

        raise PolicyError(describe_input_error(path, exc)) from None


def _platform_facts(platform: Platform, board_text: str) -> Callable[[], BoardFacts]:
    return lambda: BoardFacts(board_text, platform.power_modes(), platform.gpu_freq_state().available_hz)


def _board_facts(board: BoardAccess) -> Callable[[], BoardFacts]:
    """The board's power modes and GPU table read from its files (before the platform starts, and after)."""
    def facts() -> BoardFacts:
        gpu_dir = find_gpu_devfreq(board.tree)
        freqs = GpuDevfreq(board.tree, gpu_dir).available_hz() if gpu_dir is not None else []
        return BoardFacts(board.description, Nvpmodel(board.runner, board.tree).conf().power_modes, freqs)

    return facts


def policy_loader(facts: Callable[[], BoardFacts]) -> Callable[[Path], Policy]:
    """A policy file validated against this board (schema, modes, reboot groups); PolicyError otherwise, for
    every input error (unreadable, a directory, not UTF-8 …) too."""
    def load(path: Path) -> Policy:
        policy, notes = load_checked(path, facts())
        for note in notes:
            log.info("policy: %s", note)
        return policy

    return guarded(load)


def build_platform(config: DaemonConfig, board: BoardAccess, clock: Clock, metrics: Metrics) -> Platform:
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
        nvpmodel_timeout_s=hw.nvpmodel_timeout_s, on_conflict=hw.on_conflict,
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


def build_runner(config: DaemonConfig, board: BoardAccess) -> Runner:
    """The configured runner, loaded (warm-up is a start step: see `warm_up`)."""
    cfg = config.runner
    options: Dict[str, Any] = {}
    model = config.model_path()
    if cfg.name in ("auto", "onnxruntime") and model.suffix == ".onnx":
        options = {"providers": cfg.providers, "intra_op_threads": cfg.intra_op_threads}
    runner = create_runner(cfg.name, model, options)
    if board.sim is not None and config.simulator.simulate_speed:
        runner = PacedRunner(runner, board.sim.inference_time_s)
    return runner


def warm_up(runner: Runner, iterations: int) -> None:
    """Run the dummy batches; a model that cannot is an EngineError (exit 3) naming it, not a traceback."""
    if not iterations:
        return
    try:
        runner.warm_up(iterations)
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(f"{runner.info().model_path}: the model failed its warm-up batch: "
                          f"{type(exc).__name__}: {exc}") from None


def build_sources(config: DaemonConfig, clock: Clock) -> List[FrameSource]:
    sources: List[FrameSource] = []
    for i, sc in enumerate(config.sources):
        factory = SOURCE_FACTORIES.get(sc.type)
        if factory is None:
            raise ConfigError(f"sources[{i}].type: no source of type {sc.type!r} "
                              f"(known: {', '.join(sorted(SOURCE_FACTORIES))})")
        sources.extend(factory(sc, len(sources), clock))
    return sources


def build_pipeline(config: DaemonConfig, clock: Clock, runner: Runner, sources: List[FrameSource],
                   sinks: List[ResultSink], policy: Policy, metrics: Metrics,
                   on_error: Callable[[str, BaseException], None]) -> Pipeline:
    manifest = runner.manifest
    labels = load_labels(Path(runner.info().model_path), manifest)
    pcfg = config.pipeline
    return Pipeline(
        clock, sources, runner, Preprocessor(manifest.preprocess, manifest.input),
        Top1Classifier(manifest.outputs[0], labels), sinks,
        batch_size=policy.ladder[policy.start_index].batch_size, queue_size=pcfg.queue_size,
        max_batch_wait_s=pcfg.max_batch_wait_ms / 1000.0, window_s=pcfg.stats_window_s,
        on_error=on_error, on_batch=metrics.on_batch,
    )


def _pipeline_view(pipeline: Pipeline) -> Callable[[], PipelineView]:
    def view() -> PipelineView:
        s = pipeline.stats()
        return PipelineView(arrival_fps=s.arrival_fps, processed_fps=s.processed_fps, dropped_fps=s.dropped_fps,
                            queue_depth=s.queue_depth, latency_p95_s=s.latency_p95_s, batch_size=s.batch_size,
                            arrival_recent_fps=s.arrival_recent_fps, busy_fraction=s.busy_fraction,
                            window_s=s.window_s)

    return view
