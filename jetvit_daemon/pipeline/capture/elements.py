"""What GStreamer this board really has, probed once with `gst-inspect-1.0`, and the table that picks
elements from it. Table-driven on purpose: a new JetPack changes rows, not code.

Board facts behind the rows: L4T r32 (JetPack 4) has both the OMX decoders (omxh264dec ...) and
nvv4l2decoder; L4T r34+ (JetPack 5, 6) dropped OMX. nvvidconv (VIC hardware) converts and scales NVMM and
system-memory frames, but has no BGR output: it delivers BGRx and `videoconvert` drops the fourth byte.
nvarguscamerasrc is the CSI camera source on every JetPack since 4.2; nvjpegdec the hardware JPEG decoder.
"""

import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Sequence, Tuple

from jetvit_daemon.hardware.commands import CommandRunner

# "plugin:  element: Long name", one per element (gst-inspect-1.0 with no arguments, GStreamer 1.x).
_LINE = re.compile(r"^([A-Za-z0-9_.+-]+):\s+([A-Za-z0-9_.+-]+): (.*)$")

# codec → decoder chains, best first. Each chain is the elements after the depayloader/demuxer.
DECODERS: Dict[str, Tuple[Tuple[str, ...], ...]] = {
    "h264": (("h264parse", "nvv4l2decoder"), ("h264parse", "omxh264dec"), ("h264parse", "avdec_h264"),
             ("h264parse", "openh264dec")),
    "h265": (("h265parse", "nvv4l2decoder"), ("h265parse", "omxh265dec"), ("h265parse", "avdec_h265")),
    "jpeg": (("nvjpegdec",), ("jpegparse", "nvv4l2decoder mjpeg=1"), ("jpegdec",), ("avdec_mjpeg",)),
}
# RTP depayloaders per codec.
DEPAYLOADERS: Dict[str, str] = {"h264": "rtph264depay", "h265": "rtph265depay"}
# What every pipeline needs whatever the board: to read, to auto-decode, to convert and to hand frames over.
SOFTWARE_SCALING: Tuple[str, ...] = ("videoconvert", "videoscale", "aspectratiocrop", "videorate")
HARDWARE_CONVERTER = "nvvidconv"
CSI_SOURCE = "nvarguscamerasrc"
# Elements `jetvit-daemon sources` reports on.
KEY_ELEMENTS: Tuple[str, ...] = (CSI_SOURCE, HARDWARE_CONVERTER, "nvv4l2decoder", "nvjpegdec", "omxh264dec",
                                 "v4l2src", "rtspsrc", "decodebin", "avdec_h264", "avdec_h265", "jpegdec",
                                 "videoconvert", "videoscale", "aspectratiocrop", "videorate", "fdsink")


def parse_gst_inspect(text: str) -> FrozenSet[str]:
    """Element names in a `gst-inspect-1.0` listing (typefinders and the summary line are not elements)."""
    names = set()
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m and "/" not in m.group(2):
            names.add(m.group(2))
    return frozenset(names)


@dataclass(frozen=True)
class GstElements:
    """The element names of one GStreamer installation, and the choices made from them. Immutable."""

    names: FrozenSet[str]

    def has(self, *names: str) -> bool:
        return all(n.split()[0] in self.names for n in names)

    @property
    def hardware_scaling(self) -> bool:
        """nvvidconv present: scale and convert in VIC hardware (a Jetson)."""
        return self.has(HARDWARE_CONVERTER)

    @property
    def software_scaling(self) -> bool:
        return self.has(*SOFTWARE_SCALING)

    def decoder(self, codec: str) -> Optional[Tuple[str, ...]]:
        """The best decoder chain for `codec` that this installation has, or None."""
        for chain in DECODERS.get(codec, ()):
            if self.has(*chain):
                return chain
        return None

    def missing(self, needed: Sequence[str]) -> Tuple[str, ...]:
        return tuple(n for n in needed if not self.has(n))


def probe_elements(runner: CommandRunner, timeout_s: float = 30.0) -> Optional[GstElements]:
    """Run `gst-inspect-1.0` once. None when it is missing or fails (the daemon then uses OpenCV)."""
    try:
        result = runner.run(["gst-inspect-1.0"], timeout_s)
    except OSError:
        return None
    if not result.ok:
        return None
    names = parse_gst_inspect(result.stdout)
    return GstElements(names) if names else None
