"""The manifest that sits next to every model or engine: what the model takes, how to preprocess frames for
it, and what it was built for. `<model>.onnx` / `<model>.engine` is described by `<model>.manifest.json`."""

import json
from pathlib import Path
from typing import List, Literal, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jetvit_daemon.errors import EngineError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    name: str
    shape: List[int] = Field(description="with -1 for the dynamic batch axis")
    dtype: Literal["float32", "float16", "uint8"] = "float32"
    layout: Literal["NCHW", "NHWC"] = "NCHW"

    @property
    def height_width(self) -> Tuple[int, int]:
        if self.layout == "NCHW":
            return self.shape[2], self.shape[3]
        return self.shape[1], self.shape[2]


class PreprocessSpec(_Strict):
    """How a BGR uint8 camera frame becomes the model input.

    resize: `center_crop` (crop the centred square, then resize), `stretch` (resize the whole frame), or
    `none` (the graph takes uint8 frames of the input size itself).
    """

    resize: Literal["center_crop", "stretch", "none"] = "center_crop"
    interpolation: Literal["area", "linear", "nearest"] = "area"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    scale: float = 1.0 / 255.0
    mean: List[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: List[float] = Field(default_factory=lambda: [1.0, 1.0, 1.0])


class BatchRange(_Strict):
    min: int = 1
    max: int = 32

    @model_validator(mode="after")
    def _ordered(self) -> "BatchRange":
        if not 1 <= self.min <= self.max:
            raise ValueError(f"need 1 <= min <= max, got min={self.min} max={self.max}")
        return self


class BuildInfo(_Strict):
    """Where a TensorRT engine was built; an engine runs only on the same TensorRT, device and JetPack."""

    tensorrt_version: str
    device: str  # SoC / compute capability, e.g. "orin sm_87"
    jetpack: Optional[str] = None
    dla_core: Optional[int] = None


class Manifest(_Strict):
    format: Literal[1] = 1
    model_name: str
    framework: Literal["onnx", "tensorrt"]
    input: InputSpec
    outputs: List[str]
    preprocess: PreprocessSpec
    labels: Optional[str] = None  # file next to the manifest, one label per line
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    batch: BatchRange = Field(default_factory=BatchRange)
    build: Optional[BuildInfo] = None


def manifest_path_for(model_path: Path) -> Path:
    return model_path.with_name(model_path.stem + ".manifest.json")


def load_manifest(model_path: Path) -> Manifest:
    """Load the manifest next to `model_path`, with errors that name the file and the field."""
    path = manifest_path_for(model_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EngineError(
            f"{model_path}: no manifest next to the model (expected {path.name})"
        ) from None
    except (OSError, ValueError) as exc:
        raise EngineError(f"{path}: cannot read manifest: {exc}") from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            "{}: {}".format(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()
        )
        raise EngineError(f"{path}: invalid manifest: {problems}") from None


def load_labels(model_path: Path, manifest: Manifest) -> Optional[List[str]]:
    if manifest.labels is None:
        return None
    path = model_path.parent / manifest.labels
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise EngineError(f"{path}: labels file named by the manifest cannot be read: {exc}") from None
