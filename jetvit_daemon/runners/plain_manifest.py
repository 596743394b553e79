"""The manifest as the inference worker sees it: the daemon validates `<model>.manifest.json` with pydantic
(runners/manifest.py) and sends it over as plain JSON (`Manifest.model_dump(mode="json")`); the worker, which
may run on Python 3.6 where that pydantic is not available, wraps the dict in these read-only objects with the
same attribute names the runners and the engine check read. Nothing is validated again here: the daemon did it.

    manifest = PlainManifest(load_manifest(path).model_dump(mode="json"))   # same fields, no pydantic
"""

from typing import Any, Dict, List, Optional, Tuple


class _Fields:
    """A section's fields as attributes; a field the dict lacks reads as None (optional in the manifest)."""

    _names: Tuple[str, ...] = ()

    def __init__(self, data: Optional[Dict[str, Any]]) -> None:
        data = data or {}
        for name in self._names:
            setattr(self, name, data.get(name))


class PlainBuildInfo(_Fields):
    _names = ("tensorrt_version", "device", "compute_capability", "jetpack", "l4t_release", "dla_core",
              "source_model", "command")


class PlainPrecisionSource(_Fields):
    _names = ("method", "kept_float32", "calibration_images", "calibration_method", "percentile", "per_channel")


class PlainBatchRange:
    def __init__(self, data: Dict[str, Any]) -> None:
        self.min = int(data["min"])
        self.max = int(data["max"])


class PlainInputSpec:
    """InputSpec's fields and helpers (item_shape, height_width, with_batch)."""

    def __init__(self, name: str, shape: List[int], dtype: str, layout: str) -> None:
        self.name = name
        self.shape = [int(d) for d in shape]
        self.dtype = dtype
        self.layout = layout

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PlainInputSpec":
        return cls(data["name"], data["shape"], data["dtype"], data["layout"])

    @property
    def item_shape(self) -> Tuple[int, ...]:
        return tuple(self.shape[1:])

    @property
    def height_width(self) -> Tuple[int, int]:
        if self.layout == "NCHW":
            return self.shape[2], self.shape[3]
        return self.shape[1], self.shape[2]

    def with_batch(self, batch: int) -> "PlainInputSpec":
        return PlainInputSpec(self.name, [batch, *self.shape[1:]], self.dtype, self.layout)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "layout": self.layout}


class PlainManifest:
    """The fields of `Manifest` the runners read, from its JSON dump."""

    def __init__(self, data: Dict[str, Any]) -> None:
        self.model_name = data["model_name"]
        self.framework = data["framework"]
        self.input = PlainInputSpec.from_dict(data["input"])
        self.outputs = list(data["outputs"])
        self.precision = data.get("precision", "fp32")
        self.batch = PlainBatchRange(data["batch"])
        self.build = PlainBuildInfo(data["build"]) if data.get("build") else None
        source = data.get("precision_source")
        self.precision_source = PlainPrecisionSource(source) if source else None
        self.labels = data.get("labels")
