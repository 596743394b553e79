"""gst-launch-1.0 pipelines for each kind of source, built from the elements this board has.

Every pipeline ends in raw BGR frames of exactly the model's input size on stdout (`fdsink fd=1`), so the
reader knows each frame's byte count and the CPU never touches a full-resolution frame: on a Jetson the
crop and scale run in VIC hardware (`nvvidconv`, which outputs BGRx; `videoconvert` then only drops the X
byte of a 224×224 frame), elsewhere in `aspectratiocrop`/`videoscale` before the colour conversion.
Frames above `max_fps` are dropped by `videorate drop-only=true` straight after the decoder, before any
conversion or copy. The argv form (one token per property) needs no shell quoting: paths with spaces work.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from jetvit_daemon.pipeline.capture.elements import CSI_SOURCE, DEPAYLOADERS, GstElements
from jetvit_daemon.pipeline.capture.uri import SourceUri
from jetvit_daemon.pipeline.capture.v4l2 import V4l2Mode

# nvarguscamerasrc's default when no size is asked: 1080p30, a mode every Jetson CSI sensor driver offers.
CSI_DEFAULT_SIZE = (1920, 1080)


class PipelineUnavailable(Exception):
    """This board's GStreamer lacks an element the source needs (message names it)."""


@dataclass(frozen=True)
class Target:
    """What the model wants: width×height BGR, after a centred crop to its aspect ratio (`crop`) or not."""

    width: int
    height: int
    crop: bool = True

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * 3


@dataclass(frozen=True)
class SourceOptions:
    """The per-source settings a pipeline depends on (a subset of the config's SourceConfig)."""

    fps: float = 30.0
    max_fps: Optional[float] = None
    width: Optional[int] = None
    height: Optional[int] = None
    pace: str = "realtime"
    protocol: str = "tcp"
    latency_ms: int = 200
    codec: str = "auto"
    sensor_mode: Optional[int] = None
    flip: int = 0


@dataclass(frozen=True)
class GstPlan:
    """A ready pipeline: `argv` to run, `shown` to log (no credentials), whether it scales in hardware."""

    argv: Tuple[str, ...]
    shown: str
    hardware: bool
    target: Target


def crop_box(src_w: int, src_h: int, target: Target) -> Tuple[int, int, int, int]:
    """(left, right, top, bottom) pixel coordinates of the centred crop with the target's aspect ratio."""
    if src_w * target.height > src_h * target.width:  # wider than the target: crop the sides
        w = src_h * target.width // target.height
        left = (src_w - w) // 2
        return left, left + w, 0, src_h
    h = src_w * target.height // target.width
    top = (src_h - h) // 2
    return 0, src_w, top, top + h


def _scale_tail(elements: GstElements, target: Target, source_size: Optional[Tuple[int, int]], flip: int,
                max_fps: Optional[float], sync: bool) -> Tuple[List[List[str]], bool]:
    segs: List[List[str]] = []
    if max_fps is not None:
        segs.append(["videorate", "drop-only=true", f"max-rate={max(1, int(max_fps))}"])
    caps = f"width={target.width},height={target.height}"
    if elements.hardware_scaling:
        conv = ["nvvidconv"]
        if flip:
            conv.append(f"flip-method={flip}")
        if target.crop and source_size is not None:
            left, right, top, bottom = crop_box(source_size[0], source_size[1], target)
            conv += [f"left={left}", f"right={right}", f"top={top}", f"bottom={bottom}"]
        segs += [conv, [f"video/x-raw,format=BGRx,{caps}"], ["videoconvert"], ["video/x-raw,format=BGR"]]
        hardware = True
    else:
        missing = elements.missing(["videoscale", "videoconvert"] + (["aspectratiocrop"] if target.crop else []))
        if missing:
            raise PipelineUnavailable("GStreamer lacks " + ", ".join(missing) +
                                      " (install gstreamer1.0-plugins-base and -good)")
        if target.crop:
            segs.append(["aspectratiocrop", f"aspect-ratio={target.width}/{target.height}"])
        segs += [["videoscale"], ["videoconvert"], [f"video/x-raw,format=BGR,{caps}"]]
        hardware = False
    segs.append(["fdsink", "fd=1", f"sync={'true' if sync else 'false'}"])
    return segs, hardware


def _need(elements: GstElements, names: Sequence[str], what: str) -> None:
    missing = elements.missing(names)
    if missing:
        raise PipelineUnavailable(f"{what} needs GStreamer element(s) {', '.join(missing)}, not installed here")


def build_plan(uri: SourceUri, opts: SourceOptions, elements: GstElements, target: Target,
               v4l2_mode: Optional[V4l2Mode] = None) -> GstPlan:
    """The pipeline for one source; PipelineUnavailable when the board lacks what it needs."""
    head: List[List[str]]
    shown_head: List[List[str]]
    size: Optional[Tuple[int, int]] = (opts.width, opts.height) if opts.width and opts.height else None
    sync = False
    if uri.scheme == "file":
        _need(elements, ["filesrc", "decodebin"], "file://")
        head = [["filesrc", f"location={uri.target}"], ["decodebin"]]
        shown_head = head
        sync = opts.pace == "realtime"
    elif uri.scheme == "rtsp":
        _need(elements, ["rtspsrc"], "rtsp://")
        src = ["rtspsrc", f"location={uri.target}", f"protocols={opts.protocol}", f"latency={opts.latency_ms}"]
        shown_src = list(src)
        if uri.username is not None:
            src.append(f"user-id={uri.username}")
            shown_src.append(f"user-id={uri.username}")
        if uri.password is not None:
            src.append(f"user-pw={uri.password}")
            shown_src.append("user-pw=***")
        if opts.codec == "auto":
            _need(elements, ["decodebin"], "rtsp:// with codec auto")
            tail = [["decodebin"]]
        else:
            chain = elements.decoder(opts.codec)
            if chain is None:
                raise PipelineUnavailable(f"no {opts.codec.upper()} decoder in this GStreamer")
            _need(elements, [DEPAYLOADERS[opts.codec]], f"rtsp:// {opts.codec}")
            tail = [[DEPAYLOADERS[opts.codec]]] + [c.split() for c in chain]
        head = [src, *tail]
        shown_head = [shown_src, *tail]
    elif uri.scheme == "v4l2":
        _need(elements, ["v4l2src"], "v4l2://")
        head = [["v4l2src", f"device={uri.target}"]]
        if v4l2_mode is not None:
            head.append([v4l2_mode.caps()])
            size = (v4l2_mode.width, v4l2_mode.height)
            if v4l2_mode.kind == "mjpeg":
                chain = elements.decoder("jpeg")
                if chain is None:
                    raise PipelineUnavailable("no JPEG decoder in this GStreamer (MJPEG camera)")
                head += [c.split() for c in chain]
        shown_head = head
    elif uri.scheme == "csi":
        _need(elements, [CSI_SOURCE, "nvvidconv"], "csi://")
        w, h = size or CSI_DEFAULT_SIZE
        size = (w, h)
        src = ["nvarguscamerasrc", f"sensor-id={uri.target}"]
        if opts.sensor_mode is not None:
            src.append(f"sensor-mode={opts.sensor_mode}")
        fps = round(opts.fps)
        head = [src, [f"video/x-raw(memory:NVMM),width={w},height={h},framerate={fps}/1,format=NV12"]]
        shown_head = head
    else:
        raise PipelineUnavailable(f"{uri.scheme}:// is not captured with GStreamer")
    tail_segs, hardware = _scale_tail(elements, target, size, opts.flip if uri.scheme == "csi" else 0,
                                      opts.max_fps, sync)
    return GstPlan(argv=_argv(head + tail_segs), shown=" ! ".join(" ".join(s) for s in shown_head + tail_segs),
                   hardware=hardware, target=target)


def _argv(segments: Sequence[Sequence[str]]) -> Tuple[str, ...]:
    out: List[str] = ["gst-launch-1.0", "-q"]
    for i, seg in enumerate(segments):
        if i:
            out.append("!")
        out.extend(seg)
    return tuple(out)
