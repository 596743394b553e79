"""Source URIs, as jetson-inference users write them: `csi://0`, `v4l2:///dev/video0`,
`rtsp://user:pass@host:554/path`, `file:///videos/a.mp4` (or a directory, an image, a glob of images) and
`synthetic://`. Parsing is strict (a typo is a configuration error); credentials are kept apart so that only
`redacted` (never the password) reaches logs, /status and metric labels."""

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

SCHEMES: Tuple[str, ...] = ("csi", "v4l2", "rtsp", "file", "synthetic")
IMAGE_SUFFIXES: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class SourceUri:
    """A parsed source URI. `target` is the sensor id (csi), device path (v4l2), URL without credentials
    (rtsp), path (file) or "" (synthetic). `password` is never part of `redacted` or `__repr__`."""

    scheme: str
    target: str
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)

    @property
    def live(self) -> bool:
        """A live camera (newest frame wins) rather than a file (every frame counts)."""
        return self.scheme != "file"

    @property
    def redacted(self) -> str:
        if self.scheme == "rtsp":
            if self.username is None:
                return self.target
            parts = urllib.parse.urlsplit(self.target)
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{self.username}:***@{parts.netloc}"))
        if self.scheme == "synthetic":
            return "synthetic://"
        if self.scheme == "v4l2":
            return f"v4l2://{self.target}"
        return f"{self.scheme}://{self.target}"

    @property
    def secrets(self) -> Tuple[str, ...]:
        """Strings that must never be logged (a child's error messages may quote the full URL)."""
        out = []
        if self.password:
            out.append(self.password)
            out.append(urllib.parse.quote(self.password, safe=""))
        return tuple(s for s in out if s)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    @property
    def is_image_set(self) -> bool:
        """A file:// URI naming an image, a directory of images or a glob (decoded in Python, not gst)."""
        if self.scheme != "file":
            return False
        return (Path(self.target).is_dir() or any(c in self.target for c in "*?[")
                or Path(self.target).suffix.lower() in IMAGE_SUFFIXES)

    def default_name(self) -> str:
        """A short, credential-free name for labels: csi0, video0, the RTSP host, the file's stem."""
        if self.scheme == "csi":
            return f"csi{self.target}"
        if self.scheme == "v4l2":
            return _label(Path(self.target).name)
        if self.scheme == "rtsp":
            parts = urllib.parse.urlsplit(self.target)
            tail = parts.path.strip("/").replace("/", "_")
            return _label(f"{parts.hostname or 'rtsp'}_{tail}" if tail else (parts.hostname or "rtsp"))
        if self.scheme == "file":
            return _label(Path(self.target.rstrip("/")).stem.replace("*", "") or "file")
        return "synthetic"


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:48] or "source"


def parse_uri(text: str) -> SourceUri:
    """Parse one source URI; ValueError says what is wrong and what would be valid (never the password)."""
    shown = _strip_credentials(text)
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(f"{shown!r} is not a source URI; write one of " + ", ".join(f"{s}://..." for s in SCHEMES))
    scheme = scheme.lower()
    if scheme == "csi":
        if not rest.isdigit():
            raise ValueError(f"{shown!r}: a CSI URI names the sensor id, e.g. csi://0")
        return SourceUri("csi", str(int(rest)))
    if scheme == "v4l2":
        if rest.isdigit():
            rest = f"/dev/video{rest}"
        if not rest.startswith("/dev/"):
            raise ValueError(f"{shown!r}: a V4L2 URI names a device, e.g. v4l2:///dev/video0 or (stable across "
                             "replugs) v4l2:///dev/v4l/by-id/usb-...-video-index0")
        return SourceUri("v4l2", rest)
    if scheme == "rtsp" or scheme == "rtsps":
        parts = urllib.parse.urlsplit(text)
        if not parts.hostname:
            raise ValueError(f"{shown!r}: an RTSP URI needs a host, e.g. rtsp://host:554/stream")
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
        clean = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        user = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password else None
        return SourceUri("rtsp", clean, user, password)
    if scheme == "file":
        if not rest:
            raise ValueError(f"{shown!r}: a file URI names a path, e.g. file:///data/video.mp4 or file://images/*.jpg")
        return SourceUri("file", rest)
    if scheme == "synthetic":
        return SourceUri("synthetic", "")
    raise ValueError(f"{shown!r}: unknown scheme {scheme!r}; valid: " + ", ".join(f"{s}://" for s in SCHEMES))


def _strip_credentials(text: str) -> str:
    return re.sub(r"//([^/:@]*):[^/@]*@", r"//\1:***@", text)
