"""`jetvit-daemon sources`: what cameras and capture tools this board has; `sources test URI`: capture from
one URI for a few seconds and show its rate and frame size (the daemon's own capture code, supervisor and
all, so what works here works in the daemon)."""

import argparse
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from jetvit_daemon.clock import SystemClock
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.hardware.commands import CommandRunner, SubprocessRunner


def sources_report(root: Path, runner: CommandRunner, gst_launch: Optional[str]) -> Dict[str, Any]:
    """CSI sensors and V4L2 devices (from sysfs and /dev under `root`), stable /dev/v4l/by-id names,
    GStreamer's key elements, and the OpenCV build."""
    from jetvit_daemon.pipeline.capture.elements import KEY_ELEMENTS, probe_elements
    from jetvit_daemon.pipeline.capture.opencv_capture import opencv_build

    devices = []
    v4l_class = root / "sys" / "class" / "video4linux"
    if v4l_class.is_dir():
        for node in sorted(v4l_class.iterdir()):
            name = _read(node / "name")
            # tegra-capture-vi names CSI sensor nodes "vi-output, <sensor> <i2c bus>-<addr>" (L4T r32-r36).
            kind = "csi" if name.startswith("vi-output") else "v4l2"
            devices.append({"device": f"/dev/{node.name}", "name": name, "kind": kind})
    by_id = []
    by_id_dir = root / "dev" / "v4l" / "by-id"
    if by_id_dir.is_dir():
        for link in sorted(by_id_dir.iterdir()):
            target = os.readlink(link) if link.is_symlink() else ""
            by_id.append({"path": f"/dev/v4l/by-id/{link.name}", "target": Path(target).name or target,
                          "uri": f"v4l2:///dev/v4l/by-id/{link.name}"})
    csi = [d for d in devices if d["kind"] == "csi"]
    for i, sensor in enumerate(csi):
        sensor["uri"] = f"csi://{i}"
    elements = probe_elements(runner) if gst_launch is not None else None
    cv_file, cv_gst, cv_ffmpeg = opencv_build()
    return {
        "csi_sensors": csi,
        "v4l2_devices": [d for d in devices if d["kind"] == "v4l2"],
        "v4l2_by_id": by_id,
        "gstreamer": {
            "gst_launch": gst_launch,
            "elements": {e: (elements is not None and elements.has(e)) for e in KEY_ELEMENTS},
            "scaling": None if elements is None else ("nvvidconv (VIC hardware)" if elements.hardware_scaling
                                                      else "videoscale (CPU)"),
        },
        "opencv": {"file": cv_file, "gstreamer": cv_gst, "ffmpeg": cv_ffmpeg},
    }


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def format_report(r: Dict[str, Any]) -> str:
    out = ["CSI sensors:" if r["csi_sensors"] else "CSI sensors: none"]
    out += [f"  {d['uri']:<10} {d['device']:<12} {d['name']}" for d in r["csi_sensors"]]
    out.append("V4L2 devices:" if r["v4l2_devices"] else "V4L2 devices: none")
    out += [f"  {d['device']:<12} {d['name']}" for d in r["v4l2_devices"]]
    if r["v4l2_by_id"]:
        out.append("stable names (use these: they survive replugs):")
        out += [f"  {b['uri']}  → {b['target']}" for b in r["v4l2_by_id"]]
    g = r["gstreamer"]
    if g["gst_launch"] is None:
        out.append("GStreamer: gst-launch-1.0 not found (sources fall back to OpenCV)")
    else:
        have = [e for e, ok in g["elements"].items() if ok]
        lack = [e for e, ok in g["elements"].items() if not ok]
        out.append(f"GStreamer: {g['gst_launch']}; scaling: {g['scaling']}")
        out.append(f"  present: {', '.join(have) or '-'}")
        out.append(f"  absent:  {', '.join(lack) or '-'}")
    cv = r["opencv"]
    out.append(f"OpenCV: {cv['file']} (GStreamer: {'YES' if cv['gstreamer'] else 'NO'}, "
               f"FFMPEG: {'YES' if cv['ffmpeg'] else 'NO'})")
    return "\n".join(out)


def _cmd_sources(args: argparse.Namespace) -> int:
    if getattr(args, "sources_command", None) == "test":
        return _cmd_sources_test(args)
    report = sources_report(Path("/"), SubprocessRunner(), shutil.which("gst-launch-1.0"))
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def _cmd_sources_test(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from jetvit_daemon.config import SourceConfig
    from jetvit_daemon.pipeline.batcher import Batcher
    from jetvit_daemon.pipeline.capture.factory import CaptureEnvironment, build_supervisors
    from jetvit_daemon.pipeline.capture.gst_pipeline import Target
    from jetvit_daemon.pipeline.slots import SlotSet

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {args.size!r}: write WIDTHxHEIGHT, e.g. 224x224") from None
    try:
        config = SourceConfig(uri=args.uri, name="test", backend=args.backend, pace="realtime")
    except ValidationError as exc:
        raise ConfigError(f"{_redacted(args.uri)}: {exc.errors()[0]['msg']}") from None
    clock = SystemClock()
    env = CaptureEnvironment.probe(SubprocessRunner())
    sup = build_supervisors([config], clock, Target(width, height, crop=not args.stretch), env)[0]
    slots = SlotSet(clock)
    sup.attach(slots.add(sup.name, sup.live))
    batcher = Batcher(slots, clock, batch_size=1, max_batch_wait_s=0.0)
    print(f"{sup.uri}: {sup.backend}; capturing for {args.seconds:g} s ...", flush=True)
    sup.worker.start()
    received: List[float] = []
    shape = None
    end = time.monotonic() + args.seconds
    stop = threading.Event()
    next_line = time.monotonic() + 1.0
    try:
        while time.monotonic() < end:
            for frame in batcher.next_batch(0.1, stop):
                received.append(time.monotonic())
                shape = frame.image.shape
            if time.monotonic() >= next_line:
                st = sup.status()
                print(f"  {st.state:<9} {st.fps:5.1f} fps  {st.frames_total} frames"
                      + (f"  ({st.last_error})" if st.last_error and st.state != "streaming" else ""), flush=True)
                next_line += 1.0
        st = sup.status()
    finally:
        sup.stop()
    span = (received[-1] - received[0]) if len(received) > 1 else 0.0
    fps = (len(received) - 1) / span if span > 0 else 0.0
    size = "-" if shape is None else f"{shape[1]}x{shape[0]} BGR"
    print(f"{len(received)} frames, {fps:.1f} fps, frame {size}, state {st.state}, reconnects {st.reconnects_total}"
          + (f", last error: {st.last_error}" if st.last_error else ""))
    return 0 if received else 1


def _redacted(uri: str) -> str:
    try:
        from jetvit_daemon.pipeline.capture.uri import parse_uri

        return parse_uri(uri).redacted
    except ValueError:
        return "the URI"


def register(sub: Any) -> None:
    """Add `sources` and `sources test` to the main parser's subparsers."""
    src = sub.add_parser("sources", help="list the cameras and capture tools this board has; `sources test URI` "
                                         "captures from one")
    src.add_argument("--json", action="store_true", help="one JSON object instead of text")
    actions = src.add_subparsers(dest="sources_command", metavar="ACTION")
    test = actions.add_parser("test", help="capture from URI for a few seconds: rate, frame size, state "
                                           "(exit 0 when frames came, 1 when none did)")
    test.add_argument("uri", help="csi://0, v4l2:///dev/video0, rtsp://host/path, file:///path, synthetic://")
    test.add_argument("--seconds", type=float, default=5.0)
    test.add_argument("--size", default="224x224", metavar="WxH",
                      help="frame size to scale to in the pipeline (the model's input; default 224x224)")
    test.add_argument("--stretch", action="store_true", help="scale the whole frame instead of a centred crop")
    test.add_argument("--backend", default="auto", choices=("auto", "gstreamer", "opencv"))
    src.set_defaults(func=_cmd_sources)
