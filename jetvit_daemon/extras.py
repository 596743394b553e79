"""Optional dependencies: import one by name, or fail with one line that names the pip extra to install.

Every optional import of the daemon goes through `require()` so that a missing package is a `MissingDependency`
(a `JetvitError`: the CLI prints it as one line and exits 2) instead of a traceback. Where a dependency comes
from JetPack rather than pip on a board (TensorRT, pycuda, GStreamer-enabled OpenCV), the message says so.
"""

import importlib
from types import ModuleType

from jetvit_daemon.errors import JetvitError

# module → how to get it. One home for these hints: pyproject.toml's extras must match (tests/test_extras.py).
INSTALL_HINTS = {
    "onnxruntime": "pip install 'jetvit-daemon[cpu]' (ONNX Runtime)",
    "cv2": "pip install 'jetvit-daemon[cpu]' (a headless OpenCV); on a Jetson: sudo apt-get install python3-opencv "
           "in a venv made with --system-site-packages (JetPack's OpenCV has GStreamer)",
    "onnx": "pip install 'jetvit-daemon[export]'",
    "matplotlib": "pip install 'jetvit-daemon[plot]'",
    "jtop": "pip install 'jetvit-daemon[jtop]' (jetson-stats, AGPL) and sudo systemctl enable --now jtop.service",
    "paho.mqtt.client": "pip install 'jetvit-daemon[mqtt]'",
}


class MissingDependency(JetvitError):
    """An optional package that this feature needs is not installed."""


def require(module: str, purpose: str) -> ModuleType:
    """Import `module`, or raise MissingDependency("<purpose> needs <module>, which is not installed: <hint>")."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = INSTALL_HINTS.get(module, f"pip install {module.split('.')[0]}")
        raise MissingDependency(f"{purpose} needs {module.split('.')[0]}, which is not installed here ({exc}): "
                                f"{hint}") from None
