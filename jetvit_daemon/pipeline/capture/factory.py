"""Sources from the configuration: for each `sources:` entry, which backend captures it and why, and the
supervisor that runs it. The one place that knows the config's source fields."""

import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from jetvit_daemon.clock import Clock
from jetvit_daemon.config import SourceConfig
from jetvit_daemon.hardware.commands import CommandRunner
from jetvit_daemon.pipeline.capture.base import Capture, CaptureError, FrameSourceCapture, Grab
from jetvit_daemon.pipeline.capture.elements import GstElements
from jetvit_daemon.pipeline.capture.gst_pipeline import (
    PipelineUnavailable,
    SourceOptions,
    Target,
    build_plan,
)
from jetvit_daemon.pipeline.capture.gst_process import ARGUS_WEDGED, GstLaunchCapture
from jetvit_daemon.pipeline.capture.opencv_capture import ImageFilesCapture, OpenCvCapture, opencv_build
from jetvit_daemon.pipeline.capture.supervisor import SourceSupervisor, SupervisorSettings
from jetvit_daemon.pipeline.capture.uri import SourceUri
from jetvit_daemon.pipeline.capture.v4l2 import V4l2Mode, choose_mode, list_formats, parse_formats
from jetvit_daemon.pipeline.sources import SyntheticCamera

log = logging.getLogger(__name__)

# nvargus-daemon restarts at most this often (a restart drops every CSI camera of the board for ~2 s).
ARGUS_RESTART_MIN_INTERVAL_S = 300.0
# Synthetic frames when no size is configured: a VGA camera.
SYNTHETIC_SIZE = (640, 480)


class UnavailableCapture(Capture):
    """A source that cannot be captured here (missing file, device or elements): every attempt fails
    permanently with the reason, so the source shows `failed` and is retried slowly."""

    backend = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def open(self) -> None:
        raise CaptureError(self.reason, permanent=True)

    def read(self, timeout_s: float, stop: threading.Event) -> Optional[Grab]:  # pragma: no cover - never opened
        return None

    def close(self) -> None:
        pass


class ArgusRestarter:
    """`systemctl restart nvargus-daemon` when a CSI source reports a wedged Argus (`Failed to create
    CaptureSession`), at most once per ARGUS_RESTART_MIN_INTERVAL_S, logged. Opt-in per source. Thread-safe."""

    def __init__(self, runner: CommandRunner, clock: Clock,
                 min_interval_s: float = ARGUS_RESTART_MIN_INTERVAL_S) -> None:
        self._runner = runner
        self._clock = clock
        self._min_interval_s = min_interval_s
        self._last_s: Optional[float] = None
        self._lock = threading.Lock()
        self.restarts = 0

    def __call__(self, error: CaptureError) -> bool:
        if ARGUS_WEDGED not in error.reason:
            return False
        with self._lock:
            now = self._clock.monotonic()
            if self._last_s is not None and now - self._last_s < self._min_interval_s:
                log.warning("nvargus-daemon looks wedged again; not restarting it again within %.0f s",
                            self._min_interval_s)
                return False
            self._last_s = now
        log.warning("nvargus-daemon looks wedged (%s): systemctl restart nvargus-daemon", error.reason)
        result = self._runner.run(["systemctl", "restart", "nvargus-daemon"], 30.0)
        if not result.ok:
            log.error("restarting nvargus-daemon failed: %s %s", result.describe(), result.stderr.strip())
            return False
        self.restarts += 1
        return True


@dataclass(frozen=True)
class CaptureEnvironment:
    """What the board offers, probed once at start: GStreamer's elements (None: no gst-launch-1.0) and the
    command runner for v4l2-ctl and systemctl."""

    elements: Optional[GstElements]
    runner: CommandRunner
    gst_launch: Optional[str] = None

    @staticmethod
    def probe(runner: CommandRunner) -> "CaptureEnvironment":
        from jetvit_daemon.pipeline.capture.elements import probe_elements

        launch = shutil.which("gst-launch-1.0")
        elements = probe_elements(runner) if launch is not None else None
        return CaptureEnvironment(elements, runner, launch)


def source_options(sc: "SourceConfig") -> SourceOptions:
    return SourceOptions(fps=sc.fps, max_fps=sc.max_fps, width=sc.width, height=sc.height, pace=sc.pace,
                         protocol=sc.protocol, latency_ms=sc.latency_ms, codec=sc.codec,
                         sensor_mode=sc.sensor_mode, flip=sc.flip)


def build_supervisors(configs: Sequence[SourceConfig], clock: Clock, target: Target, env: CaptureEnvironment,
                      on_worker_death: Optional[Callable[[str, BaseException], None]] = None
                      ) -> List[SourceSupervisor]:
    """One supervisor per camera (a synthetic entry with `count: N` is N cameras). Logs each source's
    backend and why. Raises ValueError for duplicate names."""
    out: List[SourceSupervisor] = []
    argus = ArgusRestarter(env.runner, clock)
    synthetic_n = 0
    for i, sc in enumerate(configs):
        uri = sc.parsed_uri()
        if uri.scheme == "synthetic":
            for j in range(sc.count):
                name = sc.name if sc.name and sc.count == 1 else (f"{sc.name}{j}" if sc.name else
                                                                  f"synthetic{synthetic_n}")
                synthetic_n += 1
                out.append(_synthetic(sc, name, clock, 1000 * i + j, on_worker_death))
            continue
        name = sc.name or uri.default_name()
        make, backend, why = _capture_maker(sc, uri, target, env)
        settings = SupervisorSettings(
            live=uri.live, nominal_fps=_nominal_fps(sc, uri), loop=sc.loop,
            start_timeout_s=sc.start_timeout_s, failed_retry_s=sc.failed_retry_s)
        log.info("source %s: %s via %s (%s)", name, uri.redacted, backend, why)
        out.append(SourceSupervisor(name, uri.redacted, make, settings, clock, on_worker_death=on_worker_death,
                                    on_permanent=argus if (uri.scheme == "csi" and sc.restart_argus) else None,
                                    backend=backend))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"sources share the name(s) {', '.join(dupes)}: give each a unique `name:`")
    return out


def _nominal_fps(sc: SourceConfig, uri: SourceUri) -> Optional[float]:
    if uri.scheme in ("csi", "v4l2"):
        return min(sc.fps, sc.max_fps) if sc.max_fps else sc.fps
    if uri.scheme == "file" and sc.pace == "realtime":
        return sc.max_fps  # the file's own rate is not known before it plays: 3 s (or max_fps) rules
    return sc.max_fps


def _synthetic(sc: SourceConfig, name: str, clock: Clock, seed_offset: int,
               on_worker_death: Optional[Callable[[str, BaseException], None]]) -> SourceSupervisor:
    width, height = (sc.width, sc.height) if sc.width and sc.height else SYNTHETIC_SIZE
    fps = min(sc.fps, sc.max_fps) if sc.max_fps else sc.fps
    camera = SyntheticCamera(clock, fps=fps, width=width, height=height, seed=sc.seed + seed_offset, name=name)
    log.info("source %s: synthetic:// (labelled handwritten digits), %dx%d at %g FPS", name, width, height, fps)
    return SourceSupervisor(name, "synthetic://", lambda: FrameSourceCapture(camera),
                            SupervisorSettings(live=True, nominal_fps=fps), clock,
                            on_worker_death=on_worker_death, backend="in-process")


def _capture_maker(sc: SourceConfig, uri: SourceUri, target: Target, env: CaptureEnvironment
                   ) -> "tuple[Callable[[], Capture], str, str]":
    """(factory of one attempt, backend name, why) for a real source."""
    if uri.is_image_set:
        fps = sc.fps if sc.pace == "realtime" else None
        return (lambda: ImageFilesCapture(uri, target, fps)), "images", "image files decoded with OpenCV"
    gst_reason = _gst_unusable(sc, uri, target, env)
    if sc.backend != "opencv" and gst_reason is None:
        elements = env.elements
        assert elements is not None
        opts = source_options(sc)
        plan = build_plan(uri, opts, elements, target, _v4l2_mode(sc, uri, env))
        where = "nvvidconv, VIC hardware" if plan.hardware else "videoscale, CPU"
        why = f"gst-launch-1.0, scaled to {target.width}x{target.height} in the pipeline ({where}): {plan.shown}"

        def make_gst() -> Capture:
            if uri.scheme == "file" and not Path(uri.target).exists():
                return UnavailableCapture(f"no such file: {uri.target}")
            if uri.scheme == "v4l2" and not Path(uri.target).exists():
                return UnavailableCapture(f"no such device: {uri.target} (unplugged?)")
            # A replugged USB camera may come back as another model: ask it for its formats again.
            argv = plan.argv if uri.scheme != "v4l2" else build_plan(
                uri, opts, elements, target, _v4l2_mode(sc, uri, env)).argv
            return GstLaunchCapture(argv, target.width, target.height, redact=uri.redact)

        return make_gst, "gstreamer", why
    if sc.backend == "gstreamer":
        reason = f"backend: gstreamer, but {gst_reason}"
        return (lambda: UnavailableCapture(reason)), "none", reason
    if uri.scheme == "csi":
        reason = f"csi:// needs GStreamer with nvarguscamerasrc: {gst_reason}"
        return (lambda: UnavailableCapture(reason)), "none", reason
    cv_file, cv_gst, cv_ffmpeg = opencv_build()
    why = (f"{'backend: opencv' if sc.backend == 'opencv' else gst_reason}; OpenCV {cv_file}, "
           f"GStreamer: {'YES' if cv_gst else 'NO'}, FFMPEG: {'YES' if cv_ffmpeg else 'NO'}; scaled in Python")

    def make_cv() -> Capture:
        return OpenCvCapture(uri, target)

    return make_cv, "opencv", why


def _gst_unusable(sc: SourceConfig, uri: SourceUri, target: Target, env: CaptureEnvironment) -> Optional[str]:
    """Why the gst-launch backend cannot take this source, or None when it can."""
    if env.gst_launch is None or env.elements is None:
        return "gst-launch-1.0 not found" if env.gst_launch is None else "gst-inspect-1.0 listed no elements"
    try:
        build_plan(uri, source_options(sc), env.elements, target, None)
    except PipelineUnavailable as exc:
        return str(exc)
    return None


def _v4l2_mode(sc: SourceConfig, uri: SourceUri, env: CaptureEnvironment) -> Optional[V4l2Mode]:
    if uri.scheme != "v4l2":
        return None
    text = list_formats(env.runner, uri.target)
    if text is None:
        return None
    return choose_mode(parse_formats(text), sc.width, sc.height, sc.fps, sc.format)
